//! The hot path: every request that reaches a listener passes through [`Inbound::handle`],
//! on the socket's own task, before anything else sees it. It is two steps: the decision
//! ([`Inbound::decide`]: scan, admission, counters and channels, giving a [`Decision`])
//! and, when the decision is an [`Answer`], writing that answer.
//!
//! It decides from the start line and a few headers (read by [`scan::scan_lean`], which
//! checks the whole message as `scan` does but keeps only those), against an immutable
//! [`Snapshot`] (swapped atomically on reload), touching no lock and allocating nothing on
//! the reject path: a rejection is written into the task's reusable buffer and sent back
//! at once (RFC 3261 §8.2.7 stateless), with a To-tag derived from Call-ID + top-Via
//! branch so a retransmission gets the same bytes and its ACK is recognised and dropped
//! without a table. Only admitted INVITEs (holding a claimed channel) and requests inside existing
//! calls go on to the control path.
//!
//! Order of checks, cheapest first (each with its [`Reject`] reason):
//! source → trunk (prefix table) · trunk disabled / outbound-only · dialled number ·
//! Max-Forwards · mandatory headers · draining · `max_channels` (CAS) · `max_cps`.

pub mod snapshot;

use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;
use dashmap::DashMap;
use tracing::warn;

use crate::config::UnknownSource;
use crate::sip::digest;
use crate::sip::response;
use crate::sip::scan::{self, HeaderName, Lean, Method, Scan, ScanError, ScanOptions};
use snapshot::Users;
pub use snapshot::{ChannelGuard, Snapshot, TrunkCounters};
use std::io::Write as _;

/// Retry-After on a 503 for a full trunk or a draining daemon.
pub const BUSY_RETRY_AFTER: &str = "Retry-After: 5";
pub const DRAINING_RETRY_AFTER: &str = "Retry-After: 30";
/// What trunkd serves, for Allow in OPTIONS answers and 405s. In-dialog methods are
/// routed between carrier and backend.
macro_rules! allow {
    () => {
        "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, PRACK, REFER, NOTIFY"
    };
}
pub const ALLOW: &str = allow!();
/// The lines an OPTIONS answer adds (RFC 3261 §11.2), as one: the writer copies it once.
const OPTIONS_EXTRA: &str = concat!(allow!(), "\r\nAccept: application/sdp\r\nSupported: ");
/// How long a digest nonce of ours is good for.
const NONCE_LIFETIME_NS: u64 = 300_000_000_000;
/// Beyond this many remembered credentials, expired ones are swept.
const MAX_USED_CREDENTIALS: usize = 50_000;
/// Unknown-source samples logged at most this often (the counter counts every one).
const SAMPLE_EVERY_NS: u64 = 10_000_000_000;

/// Why a request was refused; each maps to one status code and one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// No trunk allows the source address (403, or silence per `on_unknown_source`).
    UnknownSource,
    /// The trunk is `enabled = false` (403).
    Disabled,
    /// The trunk is `direction = "outbound"` (403).
    OutboundOnly,
    /// The dialled number is not one of the trunk's (404).
    UnknownNumber,
    /// Max-Forwards reached 0 (483).
    TooManyHops,
    /// A mandatory header is missing or malformed (400).
    BadRequest(ScanError),
    /// Shutting down (503 with Retry-After).
    Draining,
    /// `max_channels` in use (503 with Retry-After).
    Busy,
    /// Over `max_cps` (503 with Retry-After).
    RateLimited,
    /// The control path is overloaded (503).
    Overloaded,
    /// OPTIONS while the trunk's backend is not answering (503), so the carrier fails
    /// over before sending calls that would wait for Timer B.
    BackendDown,
    /// Digest credentials for another user or realm, or a wrong password (403).
    BadCredentials,
    /// A method trunkd does not serve outside a call (405), or does not know (501).
    MethodNotAllowed,
    NotImplemented,
}

impl Reject {
    pub fn code(self) -> u16 {
        match self {
            Reject::UnknownSource | Reject::Disabled | Reject::OutboundOnly => 403,
            Reject::BadCredentials => 403,
            Reject::UnknownNumber => 404,
            Reject::TooManyHops => 483,
            Reject::BadRequest(_) => 400,
            Reject::Draining
            | Reject::Busy
            | Reject::RateLimited
            | Reject::Overloaded
            | Reject::BackendDown => 503,
            Reject::MethodNotAllowed => 405,
            Reject::NotImplemented => 501,
        }
    }

    /// The reason phrase: specific enough for a carrier's engineer reading a trace,
    /// never naming what the source should have been.
    pub fn reason(self) -> &'static str {
        match self {
            Reject::UnknownSource => "Forbidden",
            Reject::Disabled => "Trunk Disabled",
            Reject::OutboundOnly => "Trunk Does Not Accept Inbound Calls",
            Reject::BadCredentials => "Forbidden",
            Reject::UnknownNumber => "Not Found",
            Reject::TooManyHops => "Too Many Hops",
            Reject::BadRequest(_) => "Bad Request",
            Reject::Draining => "Shutting Down",
            Reject::Busy => "Channel Limit Reached",
            Reject::RateLimited => "Call Rate Limit Reached",
            Reject::Overloaded => "Service Unavailable",
            Reject::BackendDown => "Backend Unavailable",
            Reject::MethodNotAllowed => "Method Not Allowed",
            Reject::NotImplemented => "Not Implemented",
        }
    }

    fn extra(self) -> &'static [&'static str] {
        match self {
            Reject::Busy | Reject::RateLimited | Reject::Overloaded | Reject::BackendDown => {
                &[BUSY_RETRY_AFTER]
            }
            Reject::Draining => &[DRAINING_RETRY_AFTER],
            Reject::MethodNotAllowed | Reject::NotImplemented => &[ALLOW],
            _ => &[],
        }
    }
}

/// An admitted INVITE: its trunk's claimed channel, handed to the call path.
#[derive(Debug)]
pub struct Admitted {
    pub guard: ChannelGuard,
}

impl Admitted {
    /// The id of the trunk that admitted the call.
    pub fn trunk(&self) -> &str {
        self.guard.trunk()
    }
}

/// What admission made of one message. [`Inbound::decide`] only decides;
/// [`Inbound::handle`] also writes the answer, so after it `Answer` means the worker's
/// buffer holds the bytes to send back to the source.
#[derive(Debug)]
#[must_use]
pub enum Decision {
    /// Answer the source statelessly.
    Answer(Answer),
    /// Nothing to send (dropped, or an ACK to a stateless answer).
    Nothing,
    /// A response, or a request inside a call: the control path's.
    Control,
    /// A new call: the control path routes it.
    Admit(Admitted),
}

/// The stateless answer a [`Decision`] calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 200 with what trunkd allows and accepts (RFC 3261 §11.2).
    Options,
    /// A refusal: [`Reject::code`] and [`Reject::reason`].
    Reject(Reject),
    /// 407 with a fresh nonce, for the credential trunk at this index of the snapshot
    /// decided on; `stale` when the nonce, not the password, was the trouble.
    Challenge { trunk: u32, stale: bool },
}

impl Answer {
    pub fn code(self) -> u16 {
        match self {
            Answer::Options => 200,
            Answer::Reject(reject) => reject.code(),
            Answer::Challenge { .. } => 407,
        }
    }
}

/// Daemon-wide counters of the hot path.
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests from sources no trunk allows.
    pub unknown_source: AtomicU64,
    /// Datagrams that do not scan as SIP (dropped).
    pub malformed: AtomicU64,
    next_sample_ns: AtomicU64,
}

/// Whether `bytes` is a response by its start line: every response goes to the control
/// path, from any source, and the control path scans it (in full, as it must anyway)
/// and counts it malformed if it is, so the hot path does not scan it first. A start
/// line this does not recognise takes the lean scan as before.
fn is_response(worker: &mut Worker, bytes: &[u8]) -> bool {
    worker.start_message();
    bytes.starts_with(b"SIP/2.0 ")
}

/// Scan failures over a cap that a response can still be written for.
fn over_cap(error: ScanError) -> bool {
    matches!(
        error,
        ScanError::TooManyHeaders | ScanError::HeaderStorageFull | ScanError::LineTooLong
    )
}

/// The start line and the headers a response echoes (Via, From, To, Call-ID, CSeq), of
/// at most [`scan::MAX_HEADER_LINE`] bytes each, as a message of their own; `None` when
/// the start line is too long.
fn salvage(bytes: &[u8]) -> Option<Vec<u8>> {
    let head = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(bytes, |end| &bytes[..end]);
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let start = lines.next()?;
    if start.len() > scan::MAX_HEADER_LINE {
        return None;
    }
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(start);
    out.extend_from_slice(b"\r\n");
    let mut kept = 0;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = HeaderName::parse(line[..colon].trim_ascii());
        let echoed = matches!(
            name,
            HeaderName::Via
                | HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::CSeq
        );
        if echoed && line.len() <= scan::MAX_HEADER_LINE && kept < scan::MAX_VIAS + 4 {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
            kept += 1;
        }
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Some(out)
}

/// Numbers the snapshots of every [`Inbound`] in the process, so a [`Worker`] can tell
/// the one it keeps is still current (whichever `Inbound` it is used with).
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

/// Shared by every socket task.
pub struct Inbound {
    snapshot: ArcSwap<Snapshot>,
    /// The [`GENERATIONS`] number of `snapshot`, raised after every swap: a worker whose
    /// copy has this number needs one atomic load instead of an `ArcSwap` load (its
    /// debt-slot protocol, ~120 instructions).
    generation: AtomicU64,
    draining: AtomicBool,
    pub counters: Counters,
    /// INVITE transactions the call path is working on, by [`Inbound::transaction_key`]:
    /// a retransmitted INVITE goes to its transaction instead of claiming a second
    /// channel (or being refused 503 when the first took the last one).
    active: DashMap<u64, ()>,
    /// Never fewer than the entries of `active`: raised before an insert, lowered after a
    /// removal. Zero means `active` is empty, so an INVITE needs neither its transaction
    /// key nor a map lookup to know it starts no retransmission.
    active_count: AtomicUsize,
    /// Call-IDs (hashed) of calls in progress: their in-dialog requests, CANCEL and ACK go
    /// to the call path from whatever address (a carrier's BYE may come from another of
    /// its servers, a credential trunk's from anywhere).
    calls: DashMap<u64, ()>,
    /// Digest credentials already used (nonce, cnonce, nc, user) → the transaction that
    /// used them, with the nonce's time: the same values in another transaction are a
    /// replay.
    used_credentials: DashMap<u64, (u64, u64)>,
    /// Keys the stateless To-tags, transaction keys and nonce MACs (per process: a
    /// restart answers differently, which only matters for a retransmission straddling
    /// the restart): SipHash-1-3 under 128 random bits, with `tag_key` mixed in first.
    keys: RandomState,
    tag_key: u64,
}

/// Per-task scratch: the response buffer, reused for every answer.
#[derive(Debug, Default)]
pub struct Worker {
    pub out: Vec<u8>,
    /// The current message's transaction key once computed: the active-INVITE check,
    /// the To-tag of an answer and replay protection all use it, and it is hashed once.
    key: Option<u64>,
    /// The snapshot the last message was decided on, with its generation. Kept until the
    /// next message finds a newer one: an idle task holds an old snapshot a while longer.
    snapshot: Option<(u64, Arc<Snapshot>)>,
    /// The current message did not scan because it is over a cap trunkd can still answer
    /// ([`over_cap`]).
    over_cap: Option<ScanError>,
}

impl Worker {
    pub fn new() -> Self {
        Worker {
            out: Vec::with_capacity(2048),
            key: None,
            snapshot: None,
            over_cap: None,
        }
    }

    /// Forgets what the previous message left (its transaction key, its cap error).
    fn start_message(&mut self) {
        self.key = None;
        self.over_cap = None;
    }
}

impl Inbound {
    pub fn new(snapshot: Snapshot, tag_key: u64) -> Self {
        Inbound {
            snapshot: ArcSwap::from_pointee(snapshot),
            generation: AtomicU64::new(GENERATIONS.fetch_add(1, Ordering::Relaxed)),
            draining: AtomicBool::new(false),
            counters: Counters::default(),
            active: DashMap::new(),
            active_count: AtomicUsize::new(0),
            calls: DashMap::new(),
            used_credentials: DashMap::new(),
            keys: RandomState::new(),
            tag_key,
        }
    }

    pub fn publish(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
        // After the store: a worker that sees the new number loads the new snapshot. One
        // that loads it under the old number reloads once more at its next message.
        let generation = GENERATIONS.fetch_add(1, Ordering::Relaxed);
        self.generation.store(generation, Ordering::Release);
    }

    /// The current snapshot and its generation: the worker's copy while it is current,
    /// else a fresh load. Taken out of the worker; [`Inbound::handle`] puts it back.
    fn current(&self, worker: &mut Worker) -> (u64, Arc<Snapshot>) {
        let generation = self.generation.load(Ordering::Acquire);
        match worker.snapshot.take() {
            Some((kept, snapshot)) if kept == generation => (kept, snapshot),
            _ => (generation, self.snapshot.load_full()),
        }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// From now on new calls get 503 and OPTIONS say 503, so carriers fail over while
    /// calls in progress finish.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Decides what to do with one datagram or frame from `source`, and writes the
    /// stateless answer, if there is one, into the worker's buffer: `Decision::Answer`
    /// only when it was written (an answer that cannot be written is `Nothing`).
    pub fn handle(
        &self,
        worker: &mut Worker,
        now: Instant,
        source: SocketAddr,
        bytes: &[u8],
    ) -> Decision {
        if is_response(worker, bytes) {
            return Decision::Control;
        }
        self.scanned(worker, bytes, |worker, snapshot, message| {
            match self.decide_scanned(worker, snapshot, now, source, message) {
                Decision::Answer(answer) => {
                    if self.answer(worker, snapshot, now, source, message, answer) {
                        Decision::Answer(answer)
                    } else {
                        Decision::Nothing
                    }
                }
                decision => decision,
            }
        })
        .unwrap_or_else(|| match worker.over_cap.take() {
            Some(cap) => self.answer_over_cap(worker, source, bytes, cap),
            None => Decision::Nothing,
        })
    }

    /// [`Inbound::handle`]'s decision, with the same effects (counters, channels,
    /// credentials seen), but nothing written.
    pub fn decide(
        &self,
        worker: &mut Worker,
        now: Instant,
        source: SocketAddr,
        bytes: &[u8],
    ) -> Decision {
        if is_response(worker, bytes) {
            return Decision::Control;
        }
        self.scanned(worker, bytes, |worker, snapshot, message| {
            self.decide_scanned(worker, snapshot, now, source, message)
        })
        .unwrap_or(Decision::Nothing)
    }

    /// A message the control path found malformed (a response: the hot path leaves
    /// those to it unscanned).
    pub fn count_malformed(&self) {
        self.counters.malformed.fetch_add(1, Ordering::Relaxed);
    }

    /// `then` on the lean scan of `bytes` and the current snapshot; `None` (counted) when
    /// the bytes are not a SIP message: without its headers there is nobody to answer
    /// (RFC 3261 §18.3).
    fn scanned<R>(
        &self,
        worker: &mut Worker,
        bytes: &[u8],
        then: impl FnOnce(&mut Worker, &Snapshot, &Lean<'_>) -> R,
    ) -> Option<R> {
        worker.start_message();
        let (generation, snapshot) = self.current(worker);
        // The lean scan checks the whole message as `scan::scan` does, but keeps only the
        // headers decided on and answered from.
        // Matched by reference: moving the `Lean` out of the `Result` would copy it.
        let result = match &scan::scan_lean(bytes, ScanOptions::DATAGRAM) {
            Ok(message) => Some(then(worker, &snapshot, message)),
            Err(error) => {
                self.counters.malformed.fetch_add(1, Ordering::Relaxed);
                worker.over_cap = over_cap(*error).then_some(*error);
                None
            }
        };
        worker.snapshot = Some((generation, snapshot));
        result
    }

    fn decide_scanned(
        &self,
        worker: &mut Worker,
        snapshot: &Snapshot,
        now: Instant,
        source: SocketAddr,
        message: &Lean<'_>,
    ) -> Decision {
        let Some(method) = message.method() else {
            return Decision::Control;
        };
        if method == Method::Ack && self.is_our_ack(worker, message) {
            // The ACK to one of our stateless answers, from wherever it came.
            return Decision::Nothing;
        }
        let to = message.to().ok();
        let users = Users::of_request(message.request_uri_user(), to.map(|to| to.uri));
        let in_dialog = to.is_some_and(|to| to.tag.is_some());
        let direct = snapshot.trunk_and_ownership(source.ip(), &users);
        // Which trunk's number an INVITE from an unknown source dials: looked up once,
        // for a credential trunk (which takes INVITEs from anywhere) and for the counters.
        let owner = (direct.is_none() && method == Method::Invite && !in_dialog)
            .then(|| snapshot.owner(&users))
            .flatten();
        // (The trunk, and whether it owns a dialled number: the owner of a number does.)
        let (trunk, owned) = direct
            .or_else(|| {
                owner
                    .filter(|&index| snapshot.trunks[index as usize].credential.is_some())
                    .map(|index| (index, true))
            })
            .unzip();
        let backend = trunk.is_none() && snapshot.is_backend(source);
        if trunk.is_none() && !backend {
            let in_call = in_dialog || matches!(method, Method::Ack | Method::Cancel);
            if in_call
                && message
                    .call_id()
                    .is_ok_and(|id| self.calls.contains_key(&self.call_key(id)))
            {
                return Decision::Control;
            }
            return self.unknown_source(snapshot, now, source, method, owner);
        }
        match method {
            Method::Ack | Method::Cancel => Decision::Control,
            _ if in_dialog => Decision::Control,
            Method::Invite if self.is_active(worker, message) => Decision::Control,
            Method::Invite => match trunk {
                Some(index) => {
                    let owned = owned.unwrap_or(false);
                    self.admit(worker, snapshot, now, message, index, owned)
                }
                // The backend dialling out: the control path chooses the trunk.
                None => Decision::Control,
            },
            Method::Options => {
                let trunk = trunk.map(|index| &snapshot.trunks[index as usize]);
                if self.is_draining() {
                    self.reject(Reject::Draining, None)
                } else if trunk.is_some_and(|trunk| trunk.at_capacity()) {
                    self.reject(Reject::Busy, None)
                } else if trunk.is_some_and(|trunk| trunk.backend_down) {
                    self.reject(Reject::BackendDown, None)
                } else {
                    Decision::Answer(Answer::Options)
                }
            }
            Method::Bye => Decision::Control,
            Method::Other(_) => self.reject(Reject::NotImplemented, None),
            _ => self.reject(Reject::MethodNotAllowed, None),
        }
    }

    /// A request over a cap (too many header fields, a header line too long) that still
    /// has what a response echoes: answered 400 with a reason naming the cap, so a
    /// legitimate but unusual carrier learns why its call failed. The headers a response
    /// needs are copied into a message of their own and scanned: anything that is not a
    /// request, an ACK, or lacks them, stays unanswered.
    fn answer_over_cap(
        &self,
        worker: &mut Worker,
        source: SocketAddr,
        bytes: &[u8],
        cap: ScanError,
    ) -> Decision {
        let Some(salvaged) = salvage(bytes) else {
            return Decision::Nothing;
        };
        let Ok(message) = scan::scan_lean(&salvaged, ScanOptions::DATAGRAM) else {
            return Decision::Nothing;
        };
        if matches!(message.method(), None | Some(Method::Ack)) {
            return Decision::Nothing;
        }
        let reason = match cap {
            ScanError::LineTooLong => "Header Line Too Long (limit 8192 bytes)",
            _ => "Too Many Header Fields (limit 128)",
        };
        if self.write(worker, source, &message, 400, reason, &[]) {
            Decision::Answer(Answer::Reject(Reject::BadRequest(cap)))
        } else {
            Decision::Nothing
        }
    }

    // One caller, on the hot path: out of line, the call costs ~50 instructions per INVITE.
    #[inline(always)]
    fn admit(
        &self,
        worker: &mut Worker,
        snapshot: &Snapshot,
        now: Instant,
        message: &Lean<'_>,
        index: u32,
        owned: bool,
    ) -> Decision {
        let trunk = &snapshot.trunks[index as usize];
        let counters = Some(&*trunk.counters);
        let max_forwards = message.max_forwards();
        let reject = if !trunk.enabled {
            Some(Reject::Disabled)
        } else if !trunk.inbound {
            Some(Reject::OutboundOnly)
        } else if !owned {
            Some(Reject::UnknownNumber)
        } else if max_forwards == Ok(Some(0)) {
            Some(Reject::TooManyHops)
        } else if let Err(error) = check_mandatory(message, max_forwards) {
            Some(Reject::BadRequest(error))
        } else if self.is_draining() {
            Some(Reject::Draining)
        } else {
            None
        };
        if let Some(reject) = reject {
            return self.reject(reject, counters);
        }
        if let Some(credential) = &trunk.credential
            && let Some(refused) =
                self.authenticate(worker, snapshot, now, message, index, credential)
        {
            return refused;
        }
        let Some(guard) = trunk.counters.claim(trunk.max_channels) else {
            return self.reject(Reject::Busy, counters);
        };
        if !trunk.take_call_slot(|| snapshot.elapsed_ns(now)) {
            return self.reject(Reject::RateLimited, counters);
        }
        // Counted as a call (`calls`) by the call path, once it takes the call on.
        Decision::Admit(Admitted { guard })
    }

    fn unknown_source(
        &self,
        snapshot: &Snapshot,
        now: Instant,
        source: SocketAddr,
        method: Method<'_>,
        intended: Option<u32>,
    ) -> Decision {
        let count = self.counters.unknown_source.fetch_add(1, Ordering::Relaxed) + 1;
        if method == Method::Invite
            && let Some(index) = intended
        {
            let trunk = &snapshot.trunks[index as usize];
            trunk
                .counters
                .rejected_source
                .fetch_add(1, Ordering::Relaxed);
        }
        self.sample(snapshot, now, source, method, intended, count);
        if method == Method::Ack || snapshot.on_unknown_source == UnknownSource::Drop {
            return Decision::Nothing;
        }
        self.reject(Reject::UnknownSource, None)
    }

    /// One log line per [`SAMPLE_EVERY_NS`] at most, whatever the flood.
    fn sample(
        &self,
        snapshot: &Snapshot,
        now: Instant,
        source: SocketAddr,
        method: Method<'_>,
        intended: Option<u32>,
        count: u64,
    ) {
        let now_ns = snapshot.elapsed_ns(now);
        let next = self.counters.next_sample_ns.load(Ordering::Relaxed);
        if now_ns < next
            || self
                .counters
                .next_sample_ns
                .compare_exchange(
                    next,
                    now_ns + SAMPLE_EVERY_NS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        let method = String::from_utf8_lossy(method.as_bytes());
        match intended {
            Some(index) => warn!(
                "request from unknown source {source}: {method} for a number of trunk {} \
                 (not in its allowed_inbound_ips); unknown_source={count} so far",
                snapshot.trunks[index as usize].id()
            ),
            None => warn!(
                "request from unknown source {source}: {method}; unknown_source={count} so far"
            ),
        }
    }

    /// Counts `reject` against the trunk, if it has one, and answers with it.
    fn reject(&self, reject: Reject, counters: Option<&TrunkCounters>) -> Decision {
        if let Some(counters) = counters {
            let counter = match reject {
                Reject::Busy | Reject::RateLimited => &counters.rejected_busy,
                Reject::UnknownNumber => &counters.rejected_number,
                Reject::UnknownSource => &counters.rejected_source,
                _ => &counters.rejected_other,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Decision::Answer(Answer::Reject(reject))
    }

    /// Writes `answer` to `message` into the worker's buffer; whether it could.
    fn answer(
        &self,
        worker: &mut Worker,
        snapshot: &Snapshot,
        now: Instant,
        source: SocketAddr,
        message: &Lean<'_>,
        answer: Answer,
    ) -> bool {
        match answer {
            Answer::Options => self.write(worker, source, message, 200, "OK", &[OPTIONS_EXTRA]),
            Answer::Reject(reject) => self.write(
                worker,
                source,
                message,
                reject.code(),
                reject.reason(),
                reject.extra(),
            ),
            Answer::Challenge { trunk, stale } => {
                match &snapshot.trunks[trunk as usize].credential {
                    Some(credential) => {
                        let now_ns = snapshot.elapsed_ns(now);
                        self.challenge(worker, source, message, credential, now_ns, stale)
                    }
                    None => false,
                }
            }
        }
    }

    /// A stateless answer (RFC 3261 §8.2.6) with the request's To-tag of
    /// [`Inbound::tag`].
    fn write(
        &self,
        worker: &mut Worker,
        source: SocketAddr,
        message: &Lean<'_>,
        code: u16,
        reason: &str,
        extra: &[&str],
    ) -> bool {
        let tag = hex_tag(self.key(worker, message));
        response::write(
            &mut worker.out,
            message,
            source,
            code,
            reason,
            Some(&tag),
            extra,
        )
        .is_ok()
    }

    /// Writes the answer for a request the control path could not take (queue full).
    pub fn reply_overloaded(&self, worker: &mut Worker, source: SocketAddr, bytes: &[u8]) -> bool {
        worker.key = None;
        let Ok(message) = scan::scan_lean(bytes, ScanOptions::DATAGRAM) else {
            return false;
        };
        let reject = Reject::Overloaded;
        self.write(
            worker,
            source,
            &message,
            reject.code(),
            reject.reason(),
            reject.extra(),
        )
    }

    /// Checks a credential trunk's INVITE (RFC 3261 §22.3, RFC 7616): `None` when its
    /// Proxy-Authorization is right; else the 407 challenge or 403 it gets. Nonces are
    /// stateless (time + keyed hash, valid [`NONCE_LIFETIME_NS`]); a (nonce, cnonce, nc)
    /// seen in another transaction is a replay and gets a fresh challenge.
    fn authenticate(
        &self,
        worker: &mut Worker,
        snapshot: &Snapshot,
        now: Instant,
        message: &Lean<'_>,
        index: u32,
        credential: &snapshot::InboundCredential,
    ) -> Option<Decision> {
        let trunk = &snapshot.trunks[index as usize];
        let challenge = |stale| {
            Some(Decision::Answer(Answer::Challenge {
                trunk: index,
                stale,
            }))
        };
        let now_ns = snapshot.elapsed_ns(now);
        let header = message
            .header(HeaderName::ProxyAuthorization)
            .and_then(|value| std::str::from_utf8(value).ok());
        let Some(credentials) = header.and_then(|value| digest::parse_credentials(value).ok())
        else {
            return challenge(false);
        };
        if *credentials.username != *credential.username || *credentials.realm != *credential.realm
        {
            trunk
                .counters
                .rejected_source
                .fetch_add(1, Ordering::Relaxed);
            return Some(self.reject(Reject::BadCredentials, None));
        }
        let Some(issued_ns) = self.nonce_time(&credentials.nonce) else {
            return challenge(true);
        };
        if now_ns.saturating_sub(issued_ns) > NONCE_LIFETIME_NS {
            return challenge(true);
        }
        if !credentials.verify(&credential.password, "INVITE") {
            trunk
                .counters
                .rejected_source
                .fetch_add(1, Ordering::Relaxed);
            return Some(self.reject(Reject::BadCredentials, None));
        }
        // Replay protection: the same nonce/cnonce/nc may come again only in a
        // retransmission of the same transaction.
        let mut hasher = self.hasher();
        credentials.nonce.hash(&mut hasher);
        credentials.cnonce.hash(&mut hasher);
        credentials.nonce_count.hash(&mut hasher);
        let used = hasher.finish();
        let transaction = self.key(worker, message);
        if self.used_credentials.len() > MAX_USED_CREDENTIALS {
            self.used_credentials
                .retain(|_, (_, issued)| now_ns.saturating_sub(*issued) <= NONCE_LIFETIME_NS);
        }
        let first = *self
            .used_credentials
            .entry(used)
            .or_insert((transaction, issued_ns));
        if first.0 != transaction {
            return challenge(true);
        }
        None
    }

    /// A 407 with a fresh nonce, offering MD5 then SHA-256. RFC 8760 §2.4 asks for the
    /// preferred algorithm first, but UACs that take the first challenge and know only MD5
    /// (SIPp, many carrier SBCs) would fail on a SHA-256 one; a UAC that picks the
    /// strongest it supports (as trunkd's own client does) still answers SHA-256.
    fn challenge(
        &self,
        worker: &mut Worker,
        source: SocketAddr,
        message: &Lean<'_>,
        credential: &snapshot::InboundCredential,
        now_ns: u64,
        stale: bool,
    ) -> bool {
        let mut nonce = [0u8; 33];
        let nonce = self.nonce(now_ns, &mut nonce);
        let stale = if stale { ", stale=true" } else { "" };
        let mut sha = [0u8; 256];
        let mut md5 = [0u8; 256];
        let (Some(sha), Some(md5)) = (
            format_into(
                &mut sha,
                format_args!(
                    "Proxy-Authenticate: Digest realm=\"{}\", nonce=\"{nonce}\", algorithm=SHA-256, qop=\"auth\"{stale}",
                    credential.realm
                ),
            ),
            format_into(
                &mut md5,
                format_args!(
                    "Proxy-Authenticate: Digest realm=\"{}\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\"{stale}",
                    credential.realm
                ),
            ),
        ) else {
            return false;
        };
        self.write(
            worker,
            source,
            message,
            407,
            "Proxy Authentication Required",
            &[md5, sha],
        )
    }

    /// `<ns since epoch, hex>.<keyed hash, hex>`: checkable without any table.
    fn nonce<'b>(&self, now_ns: u64, buffer: &'b mut [u8; 33]) -> &'b str {
        let mac = self.nonce_mac(now_ns);
        let mut cursor = std::io::Cursor::new(&mut buffer[..]);
        let _ = write!(cursor, "{now_ns:016x}{mac:016x}");
        let len = cursor.position() as usize;
        std::str::from_utf8(&buffer[..len]).unwrap_or_default()
    }

    /// A keyed hasher (see `keys`).
    fn hasher(&self) -> std::hash::DefaultHasher {
        let mut hasher = self.keys.build_hasher();
        hasher.write_u64(self.tag_key);
        hasher
    }

    fn nonce_mac(&self, issued_ns: u64) -> u64 {
        let mut hasher = self.hasher();
        ("nonce", issued_ns).hash(&mut hasher);
        hasher.finish()
    }

    /// When a nonce of ours was issued; `None` for anything we did not issue.
    fn nonce_time(&self, nonce: &str) -> Option<u64> {
        if nonce.len() != 32 {
            return None;
        }
        let issued = u64::from_str_radix(&nonce[..16], 16).ok()?;
        let mac = u64::from_str_radix(&nonce[16..], 16).ok()?;
        (mac == self.nonce_mac(issued)).then_some(issued)
    }

    /// A call started (its Call-ID); see `calls`.
    pub fn call_started(&self, call_id: &[u8]) {
        self.calls.insert(self.call_key(call_id), ());
    }

    pub fn call_ended(&self, call_id: &[u8]) {
        self.calls.remove(&self.call_key(call_id));
    }

    fn call_key(&self, call_id: &[u8]) -> u64 {
        let mut hasher = self.hasher();
        ("call", call_id).hash(&mut hasher);
        hasher.finish()
    }

    /// The call path took over an INVITE transaction; see `active`.
    pub fn invite_started(&self, key: u64) {
        self.active_count.fetch_add(1, Ordering::SeqCst);
        if self.active.insert(key, ()).is_some() {
            self.active_count.fetch_sub(1, Ordering::SeqCst);
        }
    }

    pub fn invite_ended(&self, key: u64) {
        if self.active.remove(&key).is_some() {
            self.active_count.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Whether the call path is working on this INVITE's transaction (a retransmission).
    fn is_active(&self, worker: &mut Worker, message: &Lean<'_>) -> bool {
        // `active_count` is zero only while `active` is empty: the lookup would miss.
        self.active_count.load(Ordering::SeqCst) != 0
            && self.active.contains_key(&self.key(worker, message))
    }

    /// A keyed hash of Call-ID and top-Via branch: the same for a request and its
    /// retransmissions (and for the ACK of a non-2xx answer, RFC 3261 §17.1.1.3).
    pub fn transaction_key(&self, message: &Scan<'_, '_>) -> u64 {
        let branch = message.top_via().ok().and_then(|via| via.branch);
        self.hash_transaction(message.call_id(), branch)
    }

    /// [`Inbound::transaction_key`] of a lean scan: the same key for the same bytes.
    fn lean_transaction_key(&self, message: &Lean<'_>) -> u64 {
        let branch = message.top_via().ok().and_then(|via| via.branch);
        self.hash_transaction(message.call_id(), branch)
    }

    fn hash_transaction(&self, call_id: Result<&[u8], ScanError>, branch: Option<&[u8]>) -> u64 {
        let mut hasher = self.hasher();
        // A Call-ID holds only 0x21-0x7E, so an 0xFF ends it unambiguously: one stream,
        // without the two length prefixes `Hash for [u8]` would write.
        hasher.write(call_id.unwrap_or_default());
        hasher.write_u8(0xff);
        hasher.write(branch.unwrap_or_default());
        hasher.finish()
    }

    /// The stateless To-tag of a request: the 16 hex digits of its transaction key, so
    /// retransmissions get the same tag.
    pub fn tag(&self, message: &Scan<'_, '_>) -> [u8; 16] {
        hex_tag(self.transaction_key(message))
    }

    /// An ACK carrying the tag of one of our stateless answers (RFC 3261 §17.1.1.3: the
    /// ACK for a non-2xx has the INVITE's branch, so the tag recomputes).
    fn is_our_ack(&self, worker: &mut Worker, message: &Lean<'_>) -> bool {
        let Ok(to) = message.to() else {
            return false;
        };
        to.tag == Some(&hex_tag(self.key(worker, message))[..])
    }

    /// [`Inbound::transaction_key`], hashed at most once per message.
    fn key(&self, worker: &mut Worker, message: &Lean<'_>) -> u64 {
        *worker
            .key
            .get_or_insert_with(|| self.lean_transaction_key(message))
    }
}

/// 16 lower-case hex digits of a transaction key: a stateless To-tag.
pub(crate) fn hex_tag(value: u64) -> [u8; 16] {
    let mut tag = [0u8; 16];
    for (i, byte) in tag.iter_mut().enumerate() {
        *byte = b"0123456789abcdef"[((value >> (60 - 4 * i)) & 0xf) as usize];
    }
    tag
}

/// Formats into a stack buffer; `None` if it does not fit.
fn format_into<'b>(buffer: &'b mut [u8], args: std::fmt::Arguments<'_>) -> Option<&'b str> {
    let mut cursor = std::io::Cursor::new(&mut *buffer);
    cursor.write_fmt(args).ok()?;
    let len = cursor.position() as usize;
    std::str::from_utf8(&buffer[..len]).ok()
}

/// The headers every request must carry (RFC 3261 §8.1.1) and an INVITE's Contact are
/// there; `max_forwards` is the message's, read once by the caller.
///
/// What admission and a stateless answer read is read whole: the top Via (its branch keys
/// the transaction), To (its user and tag route), Call-ID, CSeq (its method must be the
/// request's) and Max-Forwards. From and Contact need only be there: the hot path reads
/// neither, and the call path checks both before it takes the call on (a 400 then, with
/// the channel released). RFC 3261 §16.3 has a proxy check the parts it uses, no more;
/// on the carrier's INVITE their two parses cost the decision ~90 ns, a fifth of it.
fn check_mandatory(
    message: &Lean<'_>,
    max_forwards: Result<Option<u32>, ScanError>,
) -> Result<(), ScanError> {
    message
        .top_via_branch()?
        .ok_or(ScanError::MalformedHeader("Via"))?;
    message
        .header(HeaderName::From)
        .ok_or(ScanError::MissingHeader("From"))?;
    message.to()?;
    message.call_id()?;
    if !message.cseq_matches_method()? {
        return Err(ScanError::MalformedHeader("CSeq"));
    }
    max_forwards?;
    match message.header(HeaderName::Contact) {
        Some(_) => Ok(()),
        None => Err(ScanError::MissingHeader("Contact")),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::snapshot::{Inputs, literal_backends, literal_next_hop};
    use super::*;
    use crate::config::{LoadOptions, load_str};

    const CONFIG: &str = r#"
[daemon]
on_unknown_source = "reject"

[backend]
uri = "sip:127.0.0.1:5080"

[trunks.carrier]
domain = "carrier.example"
allowed_inbound_ips = ["192.0.2.0/24"]
numbers = ["+15550100001"]
max_channels = 2

[trunks.off]
domain = "off.example"
allowed_inbound_ips = ["198.51.100.1"]
enabled = false

[trunks.out]
domain = "out.example"
allowed_inbound_ips = ["198.51.100.2"]
direction = "outbound"

[trunks.paced]
domain = "paced.example"
allowed_inbound_ips = ["198.51.100.3"]
max_cps = 1

[trunks.roaming]
domain = "roaming.example"
inbound_auth = "credential"
username = "roamer"
password = "roam-pw-1"
auth_realm = "edge.test"
numbers = ["+15550100009"]
"#;

    #[allow(clippy::disallowed_methods)]
    fn epoch() -> Instant {
        Instant::now()
    }

    fn inbound(text: &str) -> (Inbound, Instant) {
        let now = epoch();
        (Inbound::new(build(text, now), 7), now)
    }

    fn build(text: &str, now: Instant) -> Snapshot {
        let config = load_str(Path::new("t.toml"), text, &LoadOptions::default())
            .unwrap_or_else(|errors| panic!("{errors}"));
        let inputs = Inputs {
            counters: &|id| Arc::new(TrunkCounters::new(id)),
            next_hops: &|trunk| literal_next_hop(trunk).into_iter().collect(),
            backends: literal_backends(&config),
            backends_down: &[],
            backend_address: &snapshot::literal_address,
            epoch: now,
        };
        Snapshot::build(&config, &inputs)
    }

    fn invite(branch: &str, to_user: &str) -> String {
        format!(
            "INVITE sip:{to_user}@192.0.2.200 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.10:5060;branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:+15551230000@carrier.example>;tag=f1\r\n\
             To: <sip:{to_user}@192.0.2.200>\r\n\
             Call-ID: call-{branch}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:+15551230000@192.0.2.10:5060>\r\n\
             Content-Length: 0\r\n\r\n"
        )
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    /// The status code of the reply in the worker's buffer, or the outcome's name.
    fn run(inbound: &Inbound, now: Instant, source: &str, message: &str) -> (String, Decision) {
        let mut worker = Worker::new();
        let outcome = inbound.handle(&mut worker, now, addr(source), message.as_bytes());
        let text = String::from_utf8(worker.out).unwrap();
        (text, outcome)
    }

    fn code(inbound: &Inbound, now: Instant, source: &str, message: &str) -> String {
        match run(inbound, now, source, message) {
            (text, Decision::Answer(_)) => text.lines().next().unwrap().to_owned(),
            (_, outcome) => format!("{outcome:?}"),
        }
    }

    #[test]
    fn a_request_over_a_cap_gets_400_naming_it_and_other_input_nothing() {
        let (inbound, now) = inbound(CONFIG);
        let good = invite("z9hG4bK-cap", "+15550100001");
        let padding: String = (0..130).map(|i| format!("X-Pad-{i}: x\r\n")).collect();
        let many = good.replace("Content-Length: 0", &format!("{padding}Content-Length: 0"));
        let (text, decision) = run(&inbound, now, "192.0.2.10:5060", &many);
        assert!(matches!(decision, Decision::Answer(_)), "{decision:?}");
        assert!(
            text.starts_with("SIP/2.0 400 Too Many Header Fields (limit 128)\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-cap;rport=5060;received=192.0.2.10\r\n"), "{text}");
        assert!(text.contains("\r\nCall-ID: call-z9hG4bK-cap\r\n"), "{text}");
        assert!(
            text.contains("\r\nTo: <sip:+15550100001@192.0.2.200>;tag="),
            "{text}"
        );
        let long = good.replace(
            "Content-Length: 0",
            &format!("X-Long: {}\r\nContent-Length: 0", "y".repeat(9000)),
        );
        let (text, _) = run(&inbound, now, "192.0.2.10:5060", &long);
        assert!(
            text.starts_with("SIP/2.0 400 Header Line Too Long (limit 8192 bytes)\r\n"),
            "{text}"
        );
        // Without what a response echoes, or an ACK: nothing.
        for silent in [
            many.replace("Call-ID: call-z9hG4bK-cap\r\n", ""),
            many.replace("INVITE sip:", "ACK sip:")
                .replace("1 INVITE", "1 ACK"),
        ] {
            let (text, decision) = run(&inbound, now, "192.0.2.10:5060", &silent);
            assert!(
                matches!(decision, Decision::Nothing),
                "{decision:?}: {text}"
            );
        }
        // A response is the control path's, which drops it (and counts it malformed).
        let response = many.replace(
            "INVITE sip:+15550100001@192.0.2.200 SIP/2.0",
            "SIP/2.0 200 OK",
        );
        let (text, decision) = run(&inbound, now, "192.0.2.10:5060", &response);
        assert!(matches!(decision, Decision::Control) && text.is_empty());
    }

    #[test]
    fn every_rejection_reason_has_its_code() {
        let (inbound, now) = inbound(CONFIG);
        let number = "+15550100001";
        let good = invite("z9hG4bK-1", number);
        let cases = [
            ("203.0.113.1:5060", good.clone(), "SIP/2.0 403 Forbidden"),
            (
                "198.51.100.1:5060",
                good.clone(),
                "SIP/2.0 403 Trunk Disabled",
            ),
            (
                "198.51.100.2:5060",
                good.clone(),
                "SIP/2.0 403 Trunk Does Not Accept Inbound Calls",
            ),
            (
                "192.0.2.10:5060",
                invite("z9hG4bK-2", "+15559999999"),
                "SIP/2.0 404 Not Found",
            ),
            (
                "192.0.2.10:5060",
                good.replace("Max-Forwards: 70", "Max-Forwards: 0"),
                "SIP/2.0 483 Too Many Hops",
            ),
            (
                "192.0.2.10:5060",
                good.replace("Contact: <sip:+15551230000@192.0.2.10:5060>\r\n", ""),
                "SIP/2.0 400 Bad Request",
            ),
            (
                "192.0.2.10:5060",
                good.replace("CSeq: 1 INVITE", "CSeq: 1 BYE"),
                "SIP/2.0 400 Bad Request",
            ),
            // The backend dialling out: the control path routes it through a trunk.
            ("127.0.0.1:5080", good.clone(), "Control"),
            (
                "192.0.2.10:5060",
                good.replace("INVITE", "REGISTER"),
                "SIP/2.0 405 Method Not Allowed",
            ),
            (
                "192.0.2.10:5060",
                good.replace("INVITE", "FROBNICATE"),
                "SIP/2.0 501 Not Implemented",
            ),
        ];
        for (source, message, expected) in cases {
            assert_eq!(code(&inbound, now, source, &message), expected, "{message}");
        }
        let snapshot = inbound.snapshot();
        let carrier = &snapshot.trunks[0].counters;
        assert_eq!(carrier.rejected_number.load(Ordering::Relaxed), 1);
        assert_eq!(
            carrier.rejected_other.load(Ordering::Relaxed),
            3,
            "483, 400, 400"
        );
        assert_eq!(
            carrier.rejected_source.load(Ordering::Relaxed),
            1,
            "the unknown source dialled its number"
        );
        assert_eq!(inbound.counters.unknown_source.load(Ordering::Relaxed), 1);
    }

    /// `decide` then `handle` on the same message: what each made of it, in one form.
    fn decided_and_handled(
        inbound: &Inbound,
        now: Instant,
        source: &str,
        message: &str,
    ) -> (String, String) {
        let mut worker = Worker::new();
        let decided = match inbound.decide(&mut worker, now, addr(source), message.as_bytes()) {
            Decision::Answer(answer) => format!("answer {}", answer.code()),
            Decision::Admit(admitted) => format!("admit {}", admitted.trunk()),
            other => format!("{other:?}"),
        };
        assert!(worker.out.is_empty(), "decide writes nothing");
        let handled = match run(inbound, now, source, message) {
            (text, Decision::Answer(_)) => format!("answer {}", &text[8..11]),
            (_, Decision::Admit(admitted)) => format!("admit {}", admitted.trunk()),
            (_, other) => format!("{other:?}"),
        };
        (decided, handled)
    }

    #[test]
    fn decide_is_handle_without_the_writing() {
        let (inbound, now) = inbound(CONFIG);
        let good = invite("z9hG4bK-d1", "+15550100001");
        let options = good
            .replace("INVITE sip", "OPTIONS sip")
            .replace("1 INVITE", "1 OPTIONS");
        let cases = [
            ("192.0.2.10:5060", good.clone(), "admit carrier"),
            ("192.0.2.10:5060", options, "answer 200"),
            ("203.0.113.1:5060", good.clone(), "answer 403"),
            (
                "192.0.2.10:5060",
                invite("z9hG4bK-d2", "+15559999999"),
                "answer 404",
            ),
            (
                "192.0.2.10:5060",
                good.replace("Max-Forwards: 70", "Max-Forwards: 0"),
                "answer 483",
            ),
            (
                "192.0.2.10:5060",
                good.replace("INVITE", "FROBNICATE"),
                "answer 501",
            ),
            (
                "203.0.113.50:5070",
                invite("z9hG4bK-d3", "+15550100009"),
                "answer 407",
            ),
            (
                "192.0.2.10:5060",
                good.replace("INVITE sip", "BYE sip")
                    .replace("1 INVITE", "2 BYE")
                    .replace("@192.0.2.200>\r\n", "@192.0.2.200>;tag=t1\r\n"),
                "Control",
            ),
            ("192.0.2.10:5060", "NOT SIP\r\n\r\n".to_owned(), "Nothing"),
            // From and Contact need only be there: the call path reads them.
            (
                "192.0.2.10:5060",
                good.replace("From: <sip:", "From: <<sip:"),
                "admit carrier",
            ),
            (
                "192.0.2.10:5060",
                good.replace("Contact: <sip:", "Contact: sip:<"),
                "admit carrier",
            ),
            (
                "192.0.2.10:5060",
                good.replace(
                    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-d1;",
                    "Via: SIP/2.0/UDP 192.0.2.10:5060;",
                ),
                "answer 400",
            ),
        ];
        for (source, message, expected) in cases {
            let (decided, handled) = decided_and_handled(&inbound, now, source, &message);
            assert_eq!(decided, expected, "{message}");
            assert_eq!(handled, expected, "{message}");
        }
        // Both count: the unknown source twice, the 404 twice.
        assert_eq!(inbound.counters.unknown_source.load(Ordering::Relaxed), 2);
        let snapshot = inbound.snapshot();
        let carrier = &snapshot.trunks[0].counters;
        assert_eq!(carrier.rejected_number.load(Ordering::Relaxed), 2);
        assert_eq!(
            carrier.rejected_other.load(Ordering::Relaxed),
            4,
            "483, 400"
        );
        // Calls are counted by the call path, once it takes one on.
        assert_eq!(carrier.calls.load(Ordering::Relaxed), 0);
        assert_eq!(carrier.channels(), 0, "every guard was dropped");
    }

    #[test]
    fn stateless_rejects_are_byte_identical_and_their_ack_is_dropped() {
        let (inbound, now) = inbound(CONFIG);
        let message = invite("z9hG4bK-77", "+15550100001");
        let (first, _) = run(&inbound, now, "203.0.113.1:5060", &message);
        let (again, _) = run(&inbound, now, "203.0.113.1:5060", &message);
        assert_eq!(first, again);
        let tag = first
            .lines()
            .find_map(|line| line.strip_prefix("To: "))
            .and_then(|to| to.split(";tag=").nth(1))
            .unwrap()
            .to_owned();
        assert_eq!(tag.len(), 16);
        let other = run(
            &inbound,
            now,
            "203.0.113.1:5060",
            &invite("z9hG4bK-78", "x"),
        )
        .0;
        assert!(!other.contains(&tag), "another transaction, another tag");

        // The ACK for the 403 from an allowed source: same branch, our tag.
        let ack = message
            .replace("INVITE sip", "ACK sip")
            .replace("1 INVITE", "1 ACK")
            .replace("@192.0.2.200>\r\n", &format!("@192.0.2.200>;tag={tag}\r\n"));
        let (_, outcome) = run(&inbound, now, "192.0.2.10:5060", &ack);
        assert!(matches!(outcome, Decision::Nothing), "{outcome:?}");
        let foreign_ack = ack.replace(&tag, "0123456789abcdef");
        let (_, outcome) = run(&inbound, now, "192.0.2.10:5060", &foreign_ack);
        assert!(matches!(outcome, Decision::Control), "{outcome:?}");
        // From an unknown source an ACK is never answered.
        let (text, outcome) = run(&inbound, now, "203.0.113.1:5060", &foreign_ack);
        assert!(matches!(outcome, Decision::Nothing) && text.is_empty());
    }

    #[test]
    fn lean_and_full_scans_give_the_same_transaction_key() {
        let (inbound, _) = inbound(CONFIG);
        let mut vectors = vec![invite("z9hG4bK-k", "+15550100001").into_bytes()];
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data")).unwrap()
        {
            vectors.push(std::fs::read(entry.unwrap().path()).unwrap());
        }
        let mut compared = 0;
        for bytes in &vectors {
            let mut storage = [scan::EMPTY_HEADER; scan::MAX_HEADERS];
            let (Ok(full), Ok(lean)) = (
                scan::scan(bytes, &mut storage),
                scan::scan_lean(bytes, ScanOptions::DATAGRAM),
            ) else {
                continue;
            };
            assert_eq!(
                inbound.transaction_key(&full),
                inbound.lean_transaction_key(&lean)
            );
            compared += 1;
        }
        assert!(compared >= 12, "{compared}");
    }

    #[test]
    fn drop_policy_answers_nothing_but_counts() {
        let (inbound, now) = inbound(&CONFIG.replace("\"reject\"", "\"drop\""));
        let (text, outcome) = run(&inbound, now, "203.0.113.1:5060", &invite("b1", "x"));
        assert!(matches!(outcome, Decision::Nothing) && text.is_empty());
        assert_eq!(inbound.counters.unknown_source.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn channels_are_claimed_up_to_max_and_released_by_the_guard() {
        let (inbound, now) = inbound(CONFIG);
        let number = "+15550100001";
        let mut admitted = Vec::new();
        for branch in ["a1", "a2"] {
            match run(&inbound, now, "192.0.2.10:5060", &invite(branch, number)).1 {
                Decision::Admit(call) => admitted.push(call),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(admitted[0].trunk(), "carrier");
        let busy = code(&inbound, now, "192.0.2.10:5060", &invite("a3", number));
        assert_eq!(busy, "SIP/2.0 503 Channel Limit Reached");
        let (text, _) = run(&inbound, now, "192.0.2.10:5060", &invite("a3", number));
        assert!(text.contains("\r\nRetry-After: 5\r\n"));
        // OPTIONS says so too, so the carrier can fail over.
        let options = invite("o1", number).replace("INVITE", "OPTIONS");
        assert_eq!(
            code(&inbound, now, "192.0.2.10:5060", &options),
            "SIP/2.0 503 Channel Limit Reached"
        );
        admitted.pop();
        assert!(matches!(
            run(&inbound, now, "192.0.2.10:5060", &invite("a4", number)).1,
            Decision::Admit(_)
        ));
        let counters = &inbound.snapshot().trunks[0].counters;
        assert_eq!(counters.channels(), 1, "the one left in `admitted`");
        assert_eq!(
            counters.rejected_busy.load(Ordering::Relaxed),
            2,
            "INVITEs only"
        );
    }

    /// A worker keeps the snapshot it decided on; a reload, or another `Inbound`, must
    /// still be decided on its own.
    #[test]
    fn a_worker_decides_on_the_current_snapshot() {
        let (inbound, now) = inbound(CONFIG);
        let mut worker = Worker::new();
        let options = invite("g1", "x").replace("INVITE", "OPTIONS");
        let mut status = |inbound: &Inbound| {
            let _ = inbound.handle(
                &mut worker,
                now,
                addr("192.0.2.10:5060"),
                options.as_bytes(),
            );
            String::from_utf8_lossy(&worker.out)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(status(&inbound), "SIP/2.0 200 OK");
        assert_eq!(status(&inbound), "SIP/2.0 200 OK");
        // The carrier's allow-list moves elsewhere: its OPTIONS are now from nobody.
        let moved = CONFIG.replace("192.0.2.0/24", "203.0.113.0/24");
        inbound.publish(build(&moved, now));
        let (reloaded, _) = self::inbound(&moved);
        assert_eq!(status(&inbound), "SIP/2.0 403 Forbidden");
        // The same worker on another `Inbound` (the old config) and back.
        let (other, _) = self::inbound(CONFIG);
        assert_eq!(status(&other), "SIP/2.0 200 OK");
        assert_eq!(status(&inbound), "SIP/2.0 403 Forbidden");
        assert_eq!(status(&reloaded), "SIP/2.0 403 Forbidden");
        assert_eq!(status(&other), "SIP/2.0 200 OK");
    }

    #[test]
    fn max_cps_paces_new_calls() {
        let (inbound, now) = inbound(CONFIG);
        let first = run(&inbound, now, "198.51.100.3:5060", &invite("c1", "1")).1;
        assert!(matches!(first, Decision::Admit(_)));
        let second = code(&inbound, now, "198.51.100.3:5060", &invite("c2", "1"));
        assert_eq!(second, "SIP/2.0 503 Call Rate Limit Reached");
        let later = now + std::time::Duration::from_millis(1001);
        let third = run(&inbound, later, "198.51.100.3:5060", &invite("c3", "1")).1;
        assert!(matches!(third, Decision::Admit(_)));
    }

    #[test]
    fn options_are_answered_and_draining_turns_everything_away() {
        let (inbound, now) = inbound(CONFIG);
        let options = invite("o1", "x").replace("INVITE", "OPTIONS");
        let (text, _) = run(&inbound, now, "192.0.2.10:5060", &options);
        assert!(text.starts_with("SIP/2.0 200 OK\r\n"), "{text}");
        assert!(text.contains(&format!("\r\n{ALLOW}\r\n")));
        assert!(text.contains("\r\nAccept: application/sdp\r\n"));
        assert!(text.contains(
            "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=o1;rport=5060;received=192.0.2.10\r\n"
        ));
        inbound.start_draining();
        assert_eq!(
            code(&inbound, now, "192.0.2.10:5060", &options),
            "SIP/2.0 503 Shutting Down"
        );
        assert_eq!(
            code(
                &inbound,
                now,
                "192.0.2.10:5060",
                &invite("d1", "+15550100001")
            ),
            "SIP/2.0 503 Shutting Down"
        );
    }

    #[test]
    fn responses_in_dialog_requests_and_cancel_go_to_the_control_path() {
        let (inbound, now) = inbound(CONFIG);
        let bye = invite("b1", "+15550100001")
            .replace("INVITE sip", "BYE sip")
            .replace("1 INVITE", "2 BYE")
            .replace("@192.0.2.200>\r\n", "@192.0.2.200>;tag=x\r\n");
        let cancel = invite("b1", "+15550100001").replace("INVITE", "CANCEL");
        let response = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z\r\n\
                        From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: c\r\n\
                        CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        for (source, message) in [
            ("192.0.2.10:5060", bye.as_str()),
            ("127.0.0.1:5080", bye.as_str()),
            ("192.0.2.10:5060", cancel.as_str()),
            ("127.0.0.1:5080", response),
        ] {
            let (text, outcome) = run(&inbound, now, source, message);
            assert!(
                matches!(outcome, Decision::Control) && text.is_empty(),
                "{message}"
            );
        }
    }

    #[test]
    fn a_message_with_many_headers_is_scanned_in_full() {
        let (inbound, now) = inbound(CONFIG);
        let extra: String = (0..60).map(|i| format!("X-Extra-{i}: {i}\r\n")).collect();
        let message = invite("many", "+15550100001")
            .replace("Content-Length: 0", &format!("{extra}Content-Length: 0"));
        assert!(matches!(
            run(&inbound, now, "192.0.2.10:5060", &message).1,
            Decision::Admit(_)
        ));
        assert_eq!(inbound.counters.malformed.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn garbage_is_dropped_and_counted() {
        let (inbound, now) = inbound(CONFIG);
        for junk in [
            "",
            "\r\n\r\n",
            "hello",
            "INVITE sip:a SIP/2.0\r\nVia: x\r\n",
        ] {
            let (text, outcome) = run(&inbound, now, "192.0.2.10:5060", junk);
            assert!(matches!(outcome, Decision::Nothing) && text.is_empty());
        }
        assert_eq!(inbound.counters.malformed.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn responses_go_to_the_control_path_unscanned_from_anywhere() {
        let (inbound, now) = inbound(CONFIG);
        for response in [
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\n\r\n",
            // Malformed: the control path's full scan drops and counts it.
            "SIP/2.0 180 Ringing\r\nno colon here\r\n\r\n",
        ] {
            let (text, outcome) = run(&inbound, now, "198.51.100.7:5060", response);
            assert!(matches!(outcome, Decision::Control) && text.is_empty());
        }
        assert_eq!(inbound.counters.malformed.load(Ordering::Relaxed), 0);
        // A start line it does not recognise as a response is scanned as before.
        let (_, outcome) = run(&inbound, now, "198.51.100.7:5060", "SIP/2.0\r\n\r\n");
        assert!(matches!(outcome, Decision::Nothing));
        assert_eq!(inbound.counters.malformed.load(Ordering::Relaxed), 1);
    }

    fn with_authorization(message: &str, challenge: &str, password: &str, cnonce: &str) -> String {
        let header = challenge
            .lines()
            .find_map(|line| line.strip_prefix("Proxy-Authenticate: "))
            .expect("a challenge");
        let challenge = digest::parse_challenge(header).unwrap();
        let answer = digest::answer(
            &challenge,
            "roamer",
            &crate::config::Secret::new(password),
            "INVITE",
            "sip:+15550100009@192.0.2.200",
            cnonce,
            1,
            None,
        )
        .unwrap();
        message.replace(
            "Content-Length: 0",
            &format!(
                "Proxy-Authorization: {}\r\nContent-Length: 0",
                answer.header_value()
            ),
        )
    }

    #[test]
    fn credential_trunks_challenge_verify_and_refuse_replays() {
        let (inbound, now) = inbound(CONFIG);
        let anywhere = "203.0.113.50:5070";
        let first = invite("r1", "+15550100009");
        let (challenge, _) = run(&inbound, now, anywhere, &first);
        assert!(
            challenge.starts_with("SIP/2.0 407 Proxy Authentication Required\r\n"),
            "{challenge}"
        );
        assert!(challenge.contains("Proxy-Authenticate: Digest realm=\"edge.test\", nonce=\""));
        assert!(challenge.contains("algorithm=SHA-256, qop=\"auth\"\r\n"));
        assert!(challenge.contains("algorithm=MD5, qop=\"auth\"\r\n"));

        // The answer, in a new transaction as a UAC sends it.
        let answered =
            with_authorization(&invite("r2", "+15550100009"), &challenge, "roam-pw-1", "c1");
        let (_, outcome) = run(&inbound, now, anywhere, &answered);
        let Decision::Admit(call) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(call.trunk(), "roaming");
        // Its retransmission is the same transaction: not a replay.
        assert!(matches!(
            run(&inbound, now, anywhere, &answered).1,
            Decision::Admit(_)
        ));
        // The same credentials in another transaction are.
        let replay = answered.replace("branch=r2", "branch=r3");
        assert!(
            run(&inbound, now, anywhere, &replay)
                .0
                .contains("stale=true")
        );
        // A wrong password is refused outright.
        let wrong = with_authorization(&invite("r4", "+15550100009"), &challenge, "guess", "c2");
        assert_eq!(
            code(&inbound, now, anywhere, &wrong),
            "SIP/2.0 403 Forbidden"
        );
        // Five minutes on, the nonce is stale.
        let late = now + std::time::Duration::from_secs(301);
        let old = with_authorization(&invite("r5", "+15550100009"), &challenge, "roam-pw-1", "c3");
        assert!(run(&inbound, late, anywhere, &old).0.contains("stale=true"));
        // From anywhere only its own numbers, and only INVITEs.
        assert_eq!(
            code(&inbound, now, anywhere, &invite("r6", "+15550100001")),
            "SIP/2.0 403 Forbidden"
        );
        // Once the call exists, its BYE comes in from wherever the carrier sends it.
        let bye = first
            .replace("INVITE sip", "BYE sip")
            .replace("1 INVITE", "2 BYE")
            .replace("@192.0.2.200>\r\n", "@192.0.2.200>;tag=x\r\n");
        assert_eq!(
            code(&inbound, now, "198.18.0.1:5060", &bye),
            "SIP/2.0 403 Forbidden"
        );
        inbound.call_started(b"call-r1");
        assert!(matches!(
            run(&inbound, now, "198.18.0.1:5060", &bye).1,
            Decision::Control
        ));
        inbound.call_ended(b"call-r1");
        assert_eq!(
            code(&inbound, now, "198.18.0.1:5060", &bye),
            "SIP/2.0 403 Forbidden"
        );
    }

    proptest::proptest! {
        /// Any interleaving of admissions and releases keeps 0 ≤ channels ≤ max.
        #[test]
        fn channel_count_stays_within_bounds(
            max in 0u32..5,
            steps in proptest::collection::vec(proptest::prelude::any::<(bool, u8)>(), 0..200),
        ) {
            let counters = Arc::new(TrunkCounters::new("t"));
            let mut held: Vec<ChannelGuard> = Vec::new();
            for (admit, pick) in steps {
                if admit {
                    let before = counters.channels();
                    match counters.claim(max) {
                        Some(guard) => held.push(guard),
                        None => proptest::prop_assert!(max != 0 && before >= max),
                    }
                } else if !held.is_empty() {
                    let index = usize::from(pick) % held.len();
                    held.swap_remove(index);
                }
                proptest::prop_assert_eq!(counters.channels() as usize, held.len());
                proptest::prop_assert!(max == 0 || counters.channels() <= max);
            }
            held.clear();
            proptest::prop_assert_eq!(counters.channels(), 0);
        }
    }
}
