//! Admitted calls: trunkd as a record-routing, transaction-stateful proxy between the
//! carrier and the trunk's backend (RFC 3261 §16), sans IO.
//!
//! The INVITE is forwarded through a server transaction toward the carrier and a client
//! transaction toward the backend ([`crate::sip::invite`]); CANCEL is hop by hop;
//! requests inside the dialog (ACK for a 2xx, BYE, re-INVITE, UPDATE, INFO, ...) are
//! forwarded statelessly to their next hop ([`target`]: the Route entry after ours, else
//! the Request-URI), and their responses back to where each request came from.
//!
//! Which side sent a request is told by its From tag (the carrier's is the INVITE's),
//! not by its address: a carrier's BYE may come from another of its nodes, or over a new
//! connection. A carrier that called over TCP or TLS gets a second Record-Route naming our
//! listener of that transport (RFC 5658), so its requests inside the call come back over
//! it; ours toward it go on its connection while that is open, else on a new one.
//!
//! Each call holds the [`ChannelGuard`] the hot path claimed. The guard is dropped, and
//! the channel released, exactly once, whichever comes first: a non-2xx final answer, a
//! BYE ending the last dialog the INVITE made (a backend that forks may answer 2xx more
//! than once, RFC 3261 §16.7 step 5, and each such dialog lives until its own BYE), a
//! timeout (Timer B/C: 408 to the carrier), the backend being unreachable (503),
//! `max_call_duration`, or the call table going away.
//!
//! ```text
//!  carrier ──INVITE──► trunkd ──INVITE (Via, Record-Route, X-Trunk)──► backend
//!          ◄──100────        ◄──────────────── 1xx / 2xx / non-2xx ───
//!          ◄── 1xx/2xx/non-2xx relayed            (ACK for non-2xx: ours, hop by hop)
//!          ──ACK/BYE/...──► stateless forward to Route / Request-URI ◄──
//! ```

pub(crate) mod forward;
pub(crate) mod outbound;
mod table;
pub(crate) mod target;

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::config::Transport;
use crate::inbound::{Admitted, ChannelGuard, hex_tag};
use crate::sip::Transmit;
use crate::sip::invite::{
    ClientAction, ClientState, InviteClient, InviteServer, ServerAction, ServerState,
};
use crate::sip::response;
use crate::sip::scan::{self, EMPTY_HEADER, HeaderName, MAX_HEADERS, Method, Scan};
use crate::sip::transaction::TimerValues;
use forward::{Hop, InviteCopy};
use outbound::{Dial, Outbound, Refusal, authorization, claim_first, outbound_invite, without_tag};
use table::{Id, Table};
use target::Target;

/// RFC 3261 §16.6 step 11: Timer C, "greater than 3 minutes".
pub(crate) const TIMER_C: Duration = Duration::from_secs(181);
/// How long a call that ended by BYE is remembered, so BYE retransmissions and the 200
/// still find their way (64·T1 with the default T1).
const LINGER: Duration = Duration::from_secs(32);
/// Ended calls are forgotten in batches, at wakeups on this grid: forgetting sends
/// nothing, and a call found done when a message comes is forgotten then.
const FORGET_GRID: Duration = Duration::from_millis(100);

/// What the proxy needs to know, per daemon.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub trunk_header: String,
    pub timers: TimerValues,
    pub max_call_duration: Duration,
    /// `[backend] invite_timeout`: a backend that sends nothing at all this long after
    /// the INVITE is left for the next of the pool.
    pub invite_timeout: Duration,
    /// The final responses of a trunk after which an outbound call tries the next.
    pub failover_codes: std::borrow::Cow<'static, [u16]>,
    /// `[cluster]`: an outbound attempt's channel is asked of the cluster before its
    /// INVITE goes out ([`outbound::ChannelAsk`]).
    pub cluster: bool,
}

/// Where an admitted call goes.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    /// Our `host:port` toward the backend (UDP) in Via and Record-Route: the address the
    /// INVITE reached, or the UDP listener a call over a connection continues from (or
    /// `public_address`).
    pub sent_by: String,
    /// A carrier calling over TCP or TLS: the transport and our listener's `host:port`
    /// for a second Record-Route (RFC 5658) and for the Via of requests toward it.
    pub caller_side: Option<(Transport, String)>,
    /// The name a carrier's TLS certificate must carry when trunkd connects to it.
    pub server_name: String,
    pub callee: SocketAddr,
    /// How calls reach the backend, and the name its TLS certificate must carry.
    pub callee_transport: Transport,
    pub callee_name: String,
    /// The Request-URI toward the backend.
    pub request_uri: String,
}

/// How a request reached us over a connection (none for UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    pub transport: Transport,
    /// Our listener of that transport (its specific address), which a Record-Route
    /// toward the peer names; none when trunkd opened the connection and has no such
    /// listener (the carrier then comes back over UDP).
    pub listener: Option<SocketAddr>,
}

/// Where messages to one side of a call go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Peer {
    /// A UDP address, or the peer address of the connection to write on.
    address: SocketAddr,
    transport: Transport,
    /// Over TCP/TLS once that connection is gone: where a new one goes.
    reconnect: SocketAddr,
}

impl Peer {
    fn udp(address: SocketAddr) -> Self {
        Peer {
            address,
            transport: Transport::Udp,
            reconnect: address,
        }
    }
}

/// Dialogs one INVITE may make (forks); the 2xx of more are relayed but not tracked, so
/// a backend cannot grow a call without bound, and their BYEs release nothing.
const MAX_DIALOGS: usize = 16;

/// Requests forwarded statelessly and not yet answered with a final response, per call:
/// where their responses go. More are unusual (one BYE, a re-INVITE, an INFO or two);
/// beyond this the oldest is forgotten and its late response goes to the other side's
/// known address.
const PENDING: usize = 8;

/// Something for the status log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallEvent {
    /// Nothing at all came back from this backend for an INVITE of this trunk (Timer B).
    BackendUnreachable(SocketAddr, String),
    /// A backend of a pool failed a call (no answer within invite_timeout, a transport
    /// error, 408 or 5xx); the call moved on to the next.
    BackendFailed(SocketAddr, String),
    /// The backend answered something.
    BackendAnswered(SocketAddr),
    /// A call ended abnormally (timeout, unreachable backend, max duration).
    Warning { trunk: String, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// INVITE forwarded, no final answer yet.
    Setup,
    /// 2xx relayed: the call is up.
    Answered,
    /// Ended (BYE, non-2xx, timeout): lingering for retransmissions.
    Ended,
}

/// Our Via branch on a request we forward: RFC 3261's magic cookie, `tk`, and 16 hex
/// digits of a keyed hash, written on the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Branch([u8; 25]);

impl Branch {
    const PREFIX: &'static [u8; 9] = b"z9hG4bKtk";

    fn new(key: u64) -> Self {
        let mut branch = [0u8; 25];
        branch[..9].copy_from_slice(Self::PREFIX);
        branch[9..].copy_from_slice(&hex_tag(key));
        Branch(branch)
    }

    fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII")
    }
}

struct Call {
    trunk: String,
    phase: Phase,
    guard: Option<ChannelGuard>,
    /// The inbound transaction key (for the hot path's active set).
    key: u64,
    /// Who called: the carrier on an inbound call, the backend on an outbound one.
    caller: Peer,
    /// The From tag of the carrier's INVITE: requests carrying it come from the carrier.
    caller_tag: Vec<u8>,
    /// Who was called: the backend (over UDP) on an inbound call, the trunk's next hop on
    /// an outbound one.
    callee: Peer,
    caller_branch: Vec<u8>,
    /// The branch of our Via on the forwarded INVITE.
    our_branch: Branch,
    /// Our `host:port` toward the backend.
    sent_by: String,
    /// Toward the carrier when it called over a connection: transport and `host:port`.
    caller_side: Option<(Transport, String)>,
    caller_name: String,
    /// The name a TLS callee's certificate must carry (the trunk's on an outbound call, the
    /// backend URI's host on an inbound one).
    callee_name: String,
    /// The backend's To tags of the dialogs a 2xx confirmed and no BYE has ended yet.
    dialogs: Vec<Vec<u8>>,
    /// Our branch of each request forwarded statelessly, and where its responses go.
    pending: VecDeque<Pending>,
    /// Any response came back from the backend.
    callee_responded: bool,
    /// The carrier's INVITE, to answer it ourselves (100, 408, 503, CANCEL's 200); kept
    /// while the server transaction is in Proceeding.
    invite: Vec<u8>,
    /// The INVITE as forwarded, for Timer A retransmissions, and read again for the
    /// fields a CANCEL or the ACK to a failure repeat ([`InviteCopy`]): most calls need
    /// neither, so they are not copied out up front. Kept while the client transaction
    /// is in Calling or Proceeding.
    forwarded: Vec<u8>,
    /// Where the INVITE came from, for writing our 100 Trying again.
    invite_source: SocketAddr,
    /// The latest response sent to the carrier, for Timer G and retransmitted INVITEs;
    /// kept while the server transaction is in Proceeding or Completed. Empty until the
    /// first provisional: our 100 Trying is written again should a retransmitted INVITE
    /// want it (most calls' do not), byte for byte as first sent.
    latest: Vec<u8>,
    server: InviteServer,
    client: InviteClient,
    /// An outbound call's own state: none on an inbound one.
    outbound: Option<Box<Outbound>>,
    /// An inbound call's further backends, when its pool has more than one.
    pool: Option<Box<Pool>>,
    /// CANCEL received before the backend sent a provisional: send it when one comes.
    cancel_pending: bool,
    /// The ACK we sent the backend for its non-2xx, resent on its retransmissions; kept
    /// while the client transaction is in Completed.
    ack: Vec<u8>,
    ends_at: Instant,
    /// When the caller's INVITE came.
    started: Instant,
    linger_until: Option<Instant>,
    /// What [`Calls`]' counters hold of this call: whether it is active, and how many
    /// of its requests await a response.
    tallied: (bool, usize),
}

impl Call {
    fn release(&mut self) {
        self.guard = None;
    }

    /// Ends the call: the channel is released, retransmissions still find it a while.
    fn end(&mut self, linger_until: Instant) {
        self.release();
        self.phase = Phase::Ended;
        self.linger_until = Some(linger_until);
    }

    /// Whether a request inside the call comes from the carrier: by its From tag, which
    /// is the INVITE's on the carrier's requests and the backend's To tag on the
    /// backend's; by address only when the INVITE had no tag (RFC 2543).
    fn comes_from_caller(&self, message: &Scan<'_, '_>, source: SocketAddr) -> bool {
        self.has_caller_tag(message)
            .unwrap_or(source != self.callee.address)
    }

    /// Whether a message's From tag is the carrier's (true on the carrier's requests and
    /// their responses); `None` when tags cannot tell (no tag on either).
    fn has_caller_tag(&self, message: &Scan<'_, '_>) -> Option<bool> {
        let tag = message.from().ok().and_then(|from| from.tag)?;
        (!self.caller_tag.is_empty()).then(|| tag == self.caller_tag.as_slice())
    }

    /// Every `host:port` our Record-Route entries name (the one toward the backend twice
    /// when there is no second entry).
    fn ours(&self) -> [&str; 2] {
        let caller_side = self.caller_side.as_ref();
        [
            &self.sent_by,
            caller_side.map_or(&self.sent_by, |(_, sent_by)| sent_by),
        ]
    }

    /// Our Via toward the carrier: its connection's transport and our listener there,
    /// else UDP from where the INVITE arrived.
    fn toward_caller(&self) -> (Transport, &str) {
        match &self.caller_side {
            Some((transport, sent_by)) => (*transport, sent_by),
            None => (self.caller.transport, &self.sent_by),
        }
    }

    /// Where a request from the callee goes: its next hop toward the caller.
    fn caller_hop(&self, next: Option<Target>) -> Peer {
        hop_toward(self.caller, next)
    }

    /// Where a request from the caller goes: its next hop toward the callee.
    fn callee_hop(&self, next: Option<Target>) -> Peer {
        hop_toward(self.callee, next)
    }

    /// The TLS name for messages to `peer`: the callee's when it is the callee.
    fn name_of(&self, peer: Peer) -> &str {
        if peer.address == self.callee.address {
            &self.callee_name
        } else {
            &self.caller_name
        }
    }

    /// Our Via toward the callee: the callee's transport, from our `sent_by`.
    fn toward_callee(&self) -> (Transport, &str) {
        (self.callee.transport, &self.sent_by)
    }

    /// From, To and CSeq of a message on its way toward the caller (or the callee): an
    /// outbound call's backend and carrier see different parties, and the carrier a
    /// higher CSeq on the backend's requests once a challenge was answered. Nothing
    /// changes on an inbound call.
    fn parties(&self, message: &Scan<'_, '_>, toward_caller: bool) -> forward::Parties<'_> {
        let Some(out) = self.outbound.as_deref() else {
            return forward::Parties::default();
        };
        // The caller's own requests (and their responses) carry its From tag.
        let from_caller = self.has_caller_tag(message).unwrap_or(true);
        let (caller, callee) = if toward_caller {
            (&out.backend_from, &out.backend_to)
        } else {
            (&out.current.from, &out.current.to)
        };
        let (from, to) = if from_caller {
            (caller, callee)
        } else {
            (callee, caller)
        };
        let cseq = (from_caller && out.cseq_offset != 0)
            .then(|| message.cseq().ok())
            .flatten()
            .map(|cseq| {
                if toward_caller {
                    cseq.sequence.wrapping_sub(out.cseq_offset)
                } else {
                    cseq.sequence.wrapping_add(out.cseq_offset)
                }
            });
        forward::Parties {
            from: Some(from),
            to: Some(to),
            cseq,
        }
    }

    /// Runs the timers that only end the absorbing of retransmissions (Timer I and L of
    /// the server transaction, D and M of the client's, the linger after a BYE), as due
    /// at `now`. They send nothing, so they get no wakeup of their own while the call goes
    /// on (see [`Calls::settle`]); whatever the call handles next, they have run first.
    fn expire(&mut self, now: Instant) {
        if matches!(
            self.server.state(),
            ServerState::Confirmed | ServerState::Accepted
        ) {
            let _ = self.server.handle_timeout(now);
        }
        if matches!(
            self.client.state(),
            ClientState::Completed | ClientState::Accepted
        ) {
            let _ = self.client.handle_timeout(now);
        }
        if self.linger_until.is_some_and(|until| now >= until) {
            self.linger_until = None;
        }
    }

    /// The earliest timer that sends or decides something (Timer A, B, C, G, H,
    /// `max_call_duration`).
    fn acting_deadline(&self) -> Option<Instant> {
        [
            (self.server.state() == ServerState::Completed)
                .then(|| self.server.poll_timeout())
                .flatten(),
            matches!(
                self.client.state(),
                ClientState::Calling | ClientState::Proceeding
            )
            .then(|| self.client.poll_timeout())
            .flatten(),
            (self.phase != Phase::Ended).then_some(self.ends_at),
            self.backend_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// When the current backend of a pool is left for the next one, unless it answers
    /// something first.
    fn backend_deadline(&self) -> Option<Instant> {
        let pool = self.pool.as_deref()?;
        (!self.callee_responded && self.client.state() == ClientState::Calling)
            .then_some(pool.deadline)
            .flatten()
    }

    /// When an ended call has absorbed all it must and may be forgotten: the last of the
    /// server transaction's Timer I or L (RFC 3261 §17.2.1; RFC 6026 §7.1), the client's
    /// Timer D (§17.1.1.2), and the linger after a BYE (64·T1, the BYE's own Timer F), in
    /// one wakeup. Timer M of the client (RFC 6026 §7.2) does not hold the call: the
    /// backend's retransmitted 2xx stop with the server transaction's Timer L, set by the
    /// same 2xx.
    fn forget_at(&self) -> Option<Instant> {
        if self.phase != Phase::Ended {
            return None;
        }
        let server = matches!(
            self.server.state(),
            ServerState::Confirmed | ServerState::Accepted
        )
        .then(|| self.server.poll_timeout())
        .flatten();
        let client = (self.client.state() == ClientState::Completed)
            .then(|| self.client.poll_timeout())
            .flatten();
        [server, client, self.linger_until]
            .into_iter()
            .flatten()
            .max()
    }

    /// Whether the call has ended and nothing of it is left to run.
    fn is_done(&self, now: Instant) -> bool {
        self.phase == Phase::Ended
            && self.acting_deadline().is_none()
            && self.forget_at().is_none_or(|at| at <= now)
    }

    /// Drops the messages no transaction of the call can send again.
    fn shed(&mut self) {
        if !matches!(
            self.client.state(),
            ClientState::Calling | ClientState::Proceeding
        ) {
            self.forwarded = Vec::new();
        }
        if self.client.state() != ClientState::Completed {
            self.ack = Vec::new();
        }
        if self.server.state() != ServerState::Proceeding {
            self.invite = Vec::new();
        }
        if !matches!(
            self.server.state(),
            ServerState::Proceeding | ServerState::Completed
        ) {
            self.latest = Vec::new();
        }
        if self.dialogs.is_empty() {
            self.dialogs = Vec::new();
        }
        if self.pending.is_empty() {
            self.pending = VecDeque::new();
        }
    }
}

/// An INVITE of an outbound call that is not the current one (a trunk failed over from,
/// or the INVITE before a challenge): its final answer, should it come again, is ACKed
/// again.
#[derive(Debug)]
pub(crate) struct Retired {
    branch: Branch,
    peer: Peer,
    server_name: String,
    ack: Vec<u8>,
}

/// A request forwarded inside a call, awaiting its final response.
struct Pending {
    /// Our branch on it: its responses carry it.
    branch: Branch,
    /// Where its responses go.
    sender: Peer,
    /// An outbound call's request toward the carrier, where it went and as forwarded: sent
    /// again with credentials, once, should the trunk's next hop challenge it.
    resend: Option<(Peer, Box<[u8]>)>,
}

/// An inbound call's other backends, tried in turn while the carrier has heard nothing
/// but our 100 Trying.
#[derive(Debug)]
struct Pool {
    remaining: VecDeque<Route>,
    /// INVITEs sent so far (each with a branch of its own).
    sent: u32,
    /// The current backend sent nothing at all by then: the next one is tried.
    deadline: Option<Instant>,
    /// The INVITEs to backends left behind: their late final answers are ACKed.
    retired: Vec<Retired>,
}

/// The carrier's INVITE as backend `route` is to see it, with our branch (one per
/// INVITE sent, so a retried backend's answers never match another's).
fn backend_invite(
    keys: &Keys,
    (header, trunk): (&str, &str),
    (message, source): (&Scan<'_, '_>, SocketAddr),
    (call_id, carrier_branch): (&[u8], &[u8]),
    route: &Route,
    pool: &mut Pool,
) -> Option<(Vec<u8>, Branch)> {
    pool.sent += 1;
    let branch = if pool.sent == 1 {
        keys.branch_for(call_id, carrier_branch)
    } else {
        let mut salt = carrier_branch.to_vec();
        salt.extend_from_slice(&pool.sent.to_be_bytes());
        keys.branch_for(call_id, &salt)
    };
    let caller_side = route
        .caller_side
        .as_ref()
        .map(|(transport, sent_by)| (*transport, sent_by.as_str()));
    let ours = [
        route.sent_by.as_str(),
        caller_side.map_or(route.sent_by.as_str(), |(_, sent_by)| sent_by),
    ];
    // Top first: the entry the backend reaches us by, then the carrier's.
    let record_route = [
        Some((route.callee_transport, route.sent_by.as_str())),
        caller_side,
    ];
    let hop = Hop {
        transport: route.callee_transport,
        sent_by: &route.sent_by,
        branch: branch.as_str(),
        ours: &ours,
    };
    let edits = forward::Edits {
        request_uri: Some(&route.request_uri),
        record_route: &record_route,
        trunk_header: Some((header, Some(trunk))),
        initial: true,
        ..forward::Edits::default()
    };
    let mut forwarded = Vec::new();
    forward::request(&mut forwarded, message, source, &hop, &edits).ok()?;
    Some((forwarded, branch))
}

/// What differs between the calls [`Calls::take_on`] starts.
struct NewCall<'a> {
    trunk: String,
    guard: Option<ChannelGuard>,
    /// The From tag of the caller's INVITE.
    caller_tag: Option<&'a [u8]>,
    caller: Peer,
    callee: Peer,
    our_branch: Branch,
    sent_by: String,
    caller_side: Option<(Transport, String)>,
    caller_name: String,
    callee_name: String,
    forwarded: Vec<u8>,
    outbound: Option<Box<Outbound>>,
    /// The INVITE waits (for its cluster channel): nothing sent, no timer yet.
    hold: bool,
}

/// The keyed hash of our branches and tags.
struct Keys {
    branch_key: u64,
    /// SipHash-1-3 under 128 random bits.
    state: RandomState,
}

impl Keys {
    fn of(&self, call_id: &[u8], extra: &[u8]) -> u64 {
        let mut hasher = self.state.build_hasher();
        self.branch_key.hash(&mut hasher);
        call_id.hash(&mut hasher);
        extra.hash(&mut hasher);
        hasher.finish()
    }

    /// Our Via branch for a request with `branch` from the other side: the same input,
    /// the same branch (stateless forwarding, §16.11), RFC 3261's magic cookie first.
    fn branch_for(&self, call_id: &[u8], branch: &[u8]) -> Branch {
        Branch::new(self.of(call_id, branch))
    }
}

/// Every call in progress, by Call-ID.
pub(crate) struct Calls {
    settings: Settings,
    calls: Table<Call>,
    /// Calls not ended, and requests forwarded inside calls awaiting a final response.
    active: usize,
    awaiting: usize,
    transmits: VecDeque<Transmit>,
    events: VecDeque<CallEvent>,
    /// Calls forgotten (transaction key, Call-ID): the hot path forgets them too.
    finished_keys: Vec<(u64, Arc<[u8]>)>,
    keys: Keys,
    /// Where [`FORGET_GRID`] starts: the first instant a call was settled.
    origin: Option<Instant>,
    /// Post-dial delay of inbound and outbound calls, for the metrics.
    setup: [crate::trunk::histogram::Histogram; 2],
    /// Outbound attempts waiting for their cluster channel.
    asks: outbound::Asks,
}

impl Calls {
    pub(crate) fn new(settings: Settings, branch_key: u64) -> Self {
        Calls {
            settings,
            calls: Table::new(),
            active: 0,
            awaiting: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            finished_keys: Vec::new(),
            keys: Keys {
                branch_key,
                state: RandomState::new(),
            },
            origin: None,
            setup: Default::default(),
            asks: outbound::Asks::default(),
        }
    }

    /// The post-dial delay of inbound and outbound calls: from the INVITE to the first
    /// answer beyond 100 Trying the caller got.
    pub(crate) fn setup_times(&self) -> [&crate::trunk::histogram::Histogram; 2] {
        [&self.setup[0], &self.setup[1]]
    }

    pub(crate) fn set_settings(&mut self, settings: Settings) {
        self.settings = settings;
    }

    pub(crate) fn len(&self) -> usize {
        self.calls.len()
    }

    /// Calls not yet ended (setting up or answered).
    pub(crate) fn active(&self) -> usize {
        debug_assert_eq!(
            self.active,
            self.calls
                .values()
                .filter(|call| call.phase != Phase::Ended)
                .count()
        );
        self.active
    }

    /// Of the calls not yet ended, the outbound ones (counted when asked: once per
    /// status report).
    pub(crate) fn active_outbound(&self) -> usize {
        self.calls
            .values()
            .filter(|call| call.phase != Phase::Ended && call.outbound.is_some())
            .count()
    }

    #[must_use]
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    #[must_use]
    pub(crate) fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.pop_front()
    }

    /// Some request forwarded inside a call (a BYE, say) still waits for its final
    /// response.
    pub(crate) fn awaiting_responses(&self) -> bool {
        self.awaiting > 0
    }

    /// Calls the hot path should stop treating as active.
    pub(crate) fn take_finished_keys(&mut self) -> std::vec::Drain<'_, (u64, Arc<[u8]>)> {
        self.finished_keys.drain(..)
    }

    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.calls.poll_timeout()
    }

    /// The call path is working on this Call-ID.
    pub(crate) fn contains(&self, call_id: &[u8]) -> bool {
        self.calls.find(call_id).is_some()
    }

    /// A new INVITE the hot path admitted, with its channel, from `source` (over
    /// `connection`, if not UDP). `route` is `None` when the trunk's backend cannot be
    /// reached (no address): the carrier gets a 503.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn handle_invite(
        &mut self,
        now: Instant,
        source: SocketAddr,
        connection: Option<Connection>,
        (message, bytes): (&Scan<'_, '_>, &[u8]),
        admitted: Admitted,
        key: u64,
        routes: Vec<Route>,
    ) {
        let (Ok(call_id), Ok(via)) = (message.call_id(), message.top_via()) else {
            return;
        };
        let carrier = source_peer(source, connection.map(|c| c.transport), &via);
        // The hot path saw that From and Contact are there; whether they are well-formed
        // is told here, before the call is taken on (see `inbound::check_mandatory`).
        // The channel goes back with `admitted`.
        let (Ok(from), Ok(Some(_))) = (message.from(), message.contact()) else {
            let counters = admitted.guard.counters();
            counters.rejected_other.fetch_add(1, Ordering::Relaxed);
            self.reply(carrier, message, 400, "Bad Request", &[]);
            return;
        };
        let carrier_branch = via.branch.unwrap_or_default();
        if self.existing_invite(now, carrier, message, call_id, carrier_branch) {
            // The same transaction again: its transaction answered; the second channel
            // claim is released here.
            drop(admitted);
            return;
        }
        let mut routes: VecDeque<Route> = routes.into();
        let Some(route) = routes.pop_front() else {
            self.reply(carrier, message, 503, "Backend Unavailable", &[]);
            self.events.push_back(CallEvent::Warning {
                trunk: admitted.trunk().to_string(),
                message: "call refused: the backend has no address".into(),
            });
            return;
        };
        // On the stack: boxed into the call only when there are other backends to try.
        let mut pool = Pool {
            remaining: routes,
            sent: 0,
            deadline: None,
            retired: Vec::new(),
        };
        let trunk_header = (self.settings.trunk_header.as_str(), admitted.trunk());
        let forwarded = backend_invite(
            &self.keys,
            trunk_header,
            (message, source),
            (call_id, carrier_branch),
            &route,
            &mut pool,
        );
        let Some((forwarded, branch)) = forwarded else {
            self.reply(carrier, message, 400, "Bad Request", &[]);
            return;
        };
        admitted
            .guard
            .counters()
            .calls
            .fetch_add(1, Ordering::Relaxed);
        let has_backups = !pool.remaining.is_empty();
        let call = NewCall {
            trunk: admitted.trunk().to_string(),
            guard: Some(admitted.guard),
            caller_tag: from.tag,
            caller: carrier,
            callee: Peer {
                address: route.callee,
                transport: route.callee_transport,
                reconnect: route.callee,
            },
            our_branch: branch,
            sent_by: route.sent_by,
            caller_side: route.caller_side,
            caller_name: route.server_name,
            callee_name: route.callee_name,
            forwarded,
            outbound: None,
            hold: false,
        };
        self.take_on(now, key, call_id, (message, bytes), source, call);
        // A pool with more backends: one that sends nothing within invite_timeout is
        // left for the next.
        if has_backups && let Some(id) = self.calls.find(call_id) {
            pool.deadline = Some(now + self.settings.invite_timeout);
            self.calls.get_mut(id).pool = Some(Box::new(pool));
            self.settle(now, id);
        }
    }

    /// Answers an INVITE the call path does not take on (a cluster refusal), from its
    /// `source` over `connection`.
    pub(crate) fn refuse(
        &mut self,
        source: SocketAddr,
        connection: Option<Connection>,
        message: &Scan<'_, '_>,
        (code, reason): (u16, &str),
        extra: &[&str],
    ) {
        if let Ok(via) = message.top_via() {
            let carrier = source_peer(source, connection.map(|c| c.transport), &via);
            self.reply(carrier, message, code, reason, extra);
        }
    }

    /// The inbound call's backend failed before the carrier heard anything but our 100
    /// Trying (no answer within invite_timeout, a transport error, 408 or 5xx): the
    /// INVITE goes to the next backend of the pool. False when there is none.
    fn next_backend(&mut self, now: Instant, id: Id, why: &str) -> bool {
        let trunk_header = self.settings.trunk_header.as_str();
        let timers = self.settings.timers;
        let invite_timeout = self.settings.invite_timeout;
        let call = self.calls.get_mut(id);
        let Some(pool) = call.pool.as_deref_mut() else {
            return false;
        };
        let heard =
            call.server.state() != ServerState::Proceeding || call.server.latest_response() != 100;
        if heard || call.cancel_pending {
            return false;
        }
        let Some(route) = pool.remaining.pop_front() else {
            return false;
        };
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        let Ok(invite) = scan::scan(&call.invite, &mut storage) else {
            return false;
        };
        let Ok(call_id) = invite.call_id() else {
            return false;
        };
        let Some((forwarded, branch)) = backend_invite(
            &self.keys,
            (trunk_header, &call.trunk),
            (&invite, call.invite_source),
            (call_id, &call.caller_branch),
            &route,
            pool,
        ) else {
            return false;
        };
        pool.retired.push(Retired {
            branch: call.our_branch,
            peer: call.callee,
            server_name: std::mem::take(&mut call.callee_name),
            ack: std::mem::take(&mut call.ack),
        });
        pool.deadline = (!pool.remaining.is_empty()).then_some(now + invite_timeout);
        let old = call.callee.address;
        call.callee = Peer {
            address: route.callee,
            transport: route.callee_transport,
            reconnect: route.callee,
        };
        call.callee_name = route.callee_name;
        call.sent_by = route.sent_by;
        call.caller_side = route.caller_side;
        call.our_branch = branch;
        call.callee_responded = false;
        call.cancel_pending = false;
        let reliable = call.callee.transport != Transport::Udp;
        call.client = InviteClient::new(now, timers, reliable, Some(TIMER_C));
        call.forwarded = forwarded.clone();
        let trunk = call.trunk.clone();
        let new = call.callee.address;
        self.events
            .push_back(CallEvent::BackendFailed(old, trunk.clone()));
        self.events.push_back(CallEvent::Warning {
            trunk,
            message: format!("backend {old} failed ({why}): call moved to backend {new}"),
        });
        self.send_callee(id, forwarded);
        true
    }

    /// An INVITE for a Call-ID the call path knows: the same transaction again (its
    /// transaction answers; true), or another INVITE under a Call-ID in use, a loop (482;
    /// true). False when the Call-ID is new.
    fn existing_invite(
        &mut self,
        now: Instant,
        sender: Peer,
        message: &Scan<'_, '_>,
        call_id: &[u8],
        branch: &[u8],
    ) -> bool {
        // A call found done here is not forgotten first: the hot path would be told its
        // Call-ID ended after this INVITE had started a call under it.
        let Some(id) = self.calls.find(call_id) else {
            return false;
        };
        self.calls.get_mut(id).expire(now);
        if self.calls.get(id).caller_branch == branch {
            self.handle_invite_retransmission(id);
            self.settle(now, id);
        } else {
            self.reply(sender, message, 482, "Loop Detected", &[]);
        }
        true
    }

    /// Takes a new call on: our 100 Trying to the caller, the INVITE as forwarded to the
    /// callee, the transactions of both sides.
    fn take_on(
        &mut self,
        now: Instant,
        key: u64,
        call_id: &[u8],
        (message, bytes): (&Scan<'_, '_>, &[u8]),
        source: SocketAddr,
        new: NewCall<'_>,
    ) {
        let timers = self.settings.timers;
        let reliable = new.caller.transport != Transport::Udp;
        let (server, first) = InviteServer::new(timers, reliable);
        let callee_reliable = new.callee.transport != Transport::Udp;
        let client = match new.hold {
            true => InviteClient::idle(timers, callee_reliable),
            false => InviteClient::new(now, timers, callee_reliable, Some(TIMER_C)),
        };
        let mut trying = Vec::new();
        write_trying(&mut trying, message, source);
        debug_assert_eq!(first, ServerAction::Send(100));
        self.transmits
            .push_back(transmit_to(new.caller, &new.caller_name, trying));
        if !new.hold {
            self.transmits.push_back(transmit_to(
                new.callee,
                &new.callee_name,
                new.forwarded.clone(),
            ));
        }
        let caller_branch = message
            .top_via()
            .ok()
            .and_then(|via| via.branch)
            .unwrap_or_default();
        let call = Call {
            trunk: new.trunk,
            phase: Phase::Setup,
            guard: new.guard,
            key,
            caller: new.caller,
            caller_tag: new.caller_tag.unwrap_or_default().to_vec(),
            callee: new.callee,
            caller_branch: caller_branch.to_vec(),
            our_branch: new.our_branch,
            sent_by: new.sent_by,
            caller_side: new.caller_side,
            caller_name: new.caller_name,
            callee_name: new.callee_name,
            dialogs: Vec::new(),
            pending: VecDeque::new(),
            callee_responded: false,
            invite: bytes.to_vec(),
            forwarded: new.forwarded,
            invite_source: source,
            latest: Vec::new(),
            server,
            client,
            outbound: new.outbound,
            pool: None,
            cancel_pending: false,
            ack: Vec::new(),
            ends_at: now + self.settings.max_call_duration,
            started: now,
            linger_until: None,
            tallied: (false, 0),
        };
        let id = self.calls.insert(call_id, call);
        self.settle(now, id);
    }

    /// A new INVITE from the backend, outside any call: routed by the control path to
    /// the trunks in `dial` (tried in order), or refused.
    pub(crate) fn handle_outbound(
        &mut self,
        now: Instant,
        source: SocketAddr,
        (message, bytes): (&Scan<'_, '_>, &[u8]),
        key: u64,
        dial: Result<Dial, Refusal>,
    ) {
        let (Ok(call_id), Ok(via)) = (message.call_id(), message.top_via()) else {
            return;
        };
        let backend = Peer::udp(source);
        let branch = via.branch.unwrap_or_default();
        if self.existing_invite(now, backend, message, call_id, branch) {
            return;
        }
        let (Ok(from), Ok(to), Ok(cseq), Ok(Some(_))) = (
            message.from(),
            message.to(),
            message.cseq(),
            message.contact(),
        ) else {
            self.reply(backend, message, 400, "Bad Request", &[]);
            return;
        };
        let mut dial = match dial {
            Ok(dial) => dial,
            Err(refusal) => {
                let extra: Vec<&str> = refusal.retry_after().into_iter().collect();
                self.reply(backend, message, refusal.code(), refusal.reason(), &extra);
                return;
            }
        };
        let Some((first, guard)) = claim_first(&mut dial.attempts) else {
            let refusal = Refusal::NoTrunkAvailable;
            let extra: Vec<&str> = refusal.retry_after().into_iter().collect();
            self.reply(backend, message, refusal.code(), refusal.reason(), &extra);
            return;
        };
        let mut outbound = Box::new(Outbound {
            current: first,
            remaining: dial.attempts,
            backend_from: without_tag(message.header(HeaderName::From).unwrap_or_default(), &from),
            backend_to: without_tag(message.header(HeaderName::To).unwrap_or_default(), &to),
            invite_cseq: cseq.sequence,
            cseq_offset: 0,
            challenged: false,
            sent: 0,
            reached: false,
            stopped: false,
            best: None,
            retired: Vec::new(),
            awaiting: None,
        });
        let Some((forwarded, our_branch)) = outbound_invite(
            &self.keys,
            &self.settings.trunk_header,
            (message, source),
            (call_id, branch),
            &mut outbound,
            &dial.toward_backend,
            None,
        ) else {
            self.reply(backend, message, 400, "Bad Request", &[]);
            return;
        };
        let attempt = &outbound.current;
        let call = NewCall {
            trunk: attempt.trunk.clone(),
            guard: Some(guard),
            caller_tag: from.tag,
            caller: backend,
            callee: Peer {
                address: attempt.next_hop,
                transport: attempt.transport,
                reconnect: attempt.next_hop,
            },
            our_branch,
            sent_by: attempt.sent_by.clone(),
            caller_side: Some((Transport::Udp, dial.toward_backend)),
            caller_name: String::new(),
            callee_name: attempt.server_name.clone(),
            forwarded,
            outbound: Some(outbound),
            hold: self.settings.cluster,
        };
        self.take_on(now, key, call_id, (message, bytes), source, call);
        if self.settings.cluster
            && let Some(id) = self.calls.find(call_id)
        {
            self.ask_channel(id, call_id);
        }
    }

    fn handle_invite_retransmission(&mut self, id: Id) {
        let call = self.calls.get_mut(id);
        if let ServerAction::Resend(_) = call.server.handle_request_retransmission() {
            self.resend_latest(id);
        }
    }

    /// A request that is not a new INVITE: CANCEL, ACK, in-dialog requests. Returns false
    /// when no call knows it (the caller answers 481 or drops it).
    pub(crate) fn handle_request(
        &mut self,
        now: Instant,
        source: SocketAddr,
        message: &Scan<'_, '_>,
    ) -> bool {
        let (Some(method), Ok(call_id), Ok(via)) =
            (message.method(), message.call_id(), message.top_via())
        else {
            return true;
        };
        let Some(id) = self.find(now, call_id) else {
            if method != Method::Ack {
                let peer = Peer::udp(source);
                self.reply(peer, message, 481, "Call/Transaction Does Not Exist", &[]);
            }
            return false;
        };
        self.request_in_call(now, id, source, message, (method, call_id, &via));
        self.settle(now, id);
        true
    }

    fn request_in_call(
        &mut self,
        now: Instant,
        id: Id,
        source: SocketAddr,
        message: &Scan<'_, '_>,
        (method, call_id, via): (Method<'_>, &[u8], &scan::Via<'_>),
    ) {
        let call = self.calls.get_mut(id);
        let branch = via.branch.unwrap_or_default();
        let from_caller = call.comes_from_caller(message, source);
        // Where this request's responses and our answers to it go.
        let side = if from_caller {
            &mut call.caller
        } else {
            &mut call.callee
        };
        let sender = source_peer(source, Some(side.transport), via);
        if sender.transport != Transport::Udp {
            // The latest connection of a side is the one to use toward it.
            side.address = source;
        }
        let same_transaction = from_caller && branch == call.caller_branch.as_slice();
        match method {
            Method::Invite if same_transaction => {
                self.handle_invite_retransmission(id);
                return;
            }
            Method::Ack if same_transaction => {
                // ACK for our non-2xx: hop by hop, ends here (§17.2.1).
                let action = call.server.handle_ack(now);
                if action != ServerAction::DeliverAck {
                    return;
                }
            }
            Method::Cancel if same_transaction => {
                self.reply(sender, message, 200, "OK", &[]);
                self.cancel(id);
                return;
            }
            Method::Bye => {
                // The dialog it ends: the backend's tag is the To tag of the carrier's
                // requests and the From tag of its own.
                let remote = if from_caller {
                    message.to().ok().and_then(|to| to.tag)
                } else {
                    message.from().ok().and_then(|from| from.tag)
                };
                let known = remote.and_then(|tag| call.dialogs.iter().position(|d| d == tag));
                if let Some(index) = known {
                    call.dialogs.swap_remove(index);
                    if call.dialogs.is_empty() {
                        call.end(now + LINGER);
                    }
                }
            }
            _ => {}
        }
        if message.max_forwards() == Ok(Some(0)) {
            self.reply(sender, message, 483, "Too Many Hops", &[]);
            return;
        }
        let branch = self.keys.branch_for(call_id, branch);
        let call = self.calls.get_mut(id);
        let routes = message.header_values(HeaderName::Route);
        let ours = call.ours();
        let next = target::next_hop(routes, message.request_uri().unwrap_or_default(), |v| {
            forward::is_our_route(v, &ours)
        });
        let ((transport, sent_by), destination) = if from_caller {
            (call.toward_callee(), call.callee_hop(next))
        } else {
            (call.toward_caller(), call.caller_hop(next))
        };
        let hop = Hop {
            transport,
            sent_by,
            branch: branch.as_str(),
            ours: &ours,
        };
        let edits = forward::Edits {
            parties: call.parties(message, !from_caller),
            ..forward::Edits::default()
        };
        let mut out = Vec::new();
        if forward::request(&mut out, message, source, &hop, &edits).is_err() {
            return;
        }
        if method != Method::Ack {
            if call.pending.len() == PENDING {
                call.pending.pop_front();
            }
            let resend = (from_caller && call.outbound.is_some())
                .then(|| (destination, out.clone().into_boxed_slice()));
            call.pending.push_back(Pending {
                branch,
                sender,
                resend,
            });
        }
        let transmit = transmit_to(destination, call.name_of(destination), out);
        self.transmits.push_back(transmit);
    }

    /// A response from either side. Returns false when no call knows it.
    pub(crate) fn handle_response(
        &mut self,
        now: Instant,
        source: SocketAddr,
        message: &Scan<'_, '_>,
    ) -> bool {
        let (Some(code), Ok(call_id), Ok(cseq)) =
            (message.status_code(), message.call_id(), message.cseq())
        else {
            return false;
        };
        let Some(id) = self.find(now, call_id) else {
            return false;
        };
        let call = self.calls.get_mut(id);
        let branch = message.top_via().ok().and_then(|via| via.branch);
        let ours = source == call.callee.address && branch == Some(call.our_branch.as_bytes());
        let retired = match branch {
            Some(branch) if !ours && cseq.method == Method::Invite => call
                .outbound
                .iter()
                .flat_map(|out| &out.retired)
                .chain(call.pool.iter().flat_map(|pool| &pool.retired))
                .find(|retired| retired.branch.as_bytes() == branch),
            _ => None,
        };
        if ours && cseq.method == Method::Invite {
            if !call.callee_responded && call.outbound.is_none() {
                self.events
                    .push_back(CallEvent::BackendAnswered(call.callee.address));
            }
            call.callee_responded = true;
            self.invite_response(now, id, code, message);
        } else if ours && cseq.method == Method::Cancel {
            // The 200 to our CANCEL: hop by hop, ends here.
        } else if let Some(retired) = retired {
            // A trunk tried before (or our INVITE before a challenge) answers again: its
            // final answer is ACKed again, nothing reaches the backend.
            if code >= 300 && !retired.ack.is_empty() {
                let transmit = transmit_to(retired.peer, &retired.server_name, retired.ack.clone());
                self.transmits.push_back(transmit);
            }
        } else {
            // A response to a request forwarded statelessly: back to where it came from.
            let pending = branch.and_then(|branch| {
                call.pending
                    .iter()
                    .position(|pending| pending.branch.as_bytes() == branch)
            });
            let challenged = matches!(code, 401 | 407) && source == call.callee.address;
            if let Some(index) = pending
                && challenged
                && self.reauthorize(id, index, code, message)
            {
                self.settle(now, id);
                return true;
            }
            let call = self.calls.get_mut(id);
            let destination = match pending {
                Some(index) if code >= 200 => call.pending.remove(index).map(|p| p.sender),
                Some(index) => call.pending.get(index).map(|p| p.sender),
                None => None,
            };
            // Without a record: the side whose From tag it carries (the request's sender).
            let to_caller = call
                .has_caller_tag(message)
                .unwrap_or(source == call.callee.address);
            let destination =
                destination.unwrap_or(if to_caller { call.caller } else { call.callee });
            let mut out = Vec::new();
            if forward::response(&mut out, message, &call.parties(message, to_caller)).is_ok() {
                let transmit = transmit_to(destination, call.name_of(destination), out);
                self.transmits.push_back(transmit);
            }
        }
        self.settle(now, id);
        true
    }

    fn invite_response(&mut self, now: Instant, id: Id, code: u16, message: &Scan<'_, '_>) {
        let call = self.calls.get_mut(id);
        let code = match call.client.handle_response(now, code) {
            ClientAction::Deliver(code) => code,
            ClientAction::DeliverAndAck(code) => {
                // An outbound INVITE has no Route of its own, and its Request-URI is the
                // attempt's: the ACK is written from the response alone (the ACK to a 407
                // is on every challenged call). Otherwise from the INVITE as forwarded.
                match call.outbound.as_deref() {
                    Some(out) => {
                        let uri = &out.current.request_uri;
                        let _ = forward::ack_from_response(&mut call.ack, message, uri);
                    }
                    None => {
                        let to = message.header(HeaderName::To);
                        write_from_invite(&call.forwarded, &mut call.ack, "ACK", to);
                    }
                }
                let ack = call.ack.clone();
                self.send_callee(id, ack);
                code
            }
            ClientAction::SendAck => {
                let ack = call.ack.clone();
                self.send_callee(id, ack);
                return;
            }
            _ => return,
        };
        if code >= 300 && self.outbound_failure(now, id, code, message) {
            return;
        }
        if matches!(code, 408 | 500..=599) && self.next_backend(now, id, &code.to_string()) {
            return;
        }
        let call = self.calls.get_mut(id);
        // 100 is hop by hop: the caller has our own already.
        if code != 100 {
            let mut relayed = Vec::new();
            if forward::response(&mut relayed, message, &call.parties(message, true)).is_err() {
                return;
            }
            match call.outbound.as_deref_mut() {
                Some(out) if code >= 300 => {
                    out.keep_best(code, relayed);
                    self.give_up(now, id, code, response::reason_phrase(code));
                }
                _ => self.relay_to_caller(now, id, code, relayed),
            }
        }
        let call = self.calls.get_mut(id);
        match code {
            101..=199 => {
                let tagged = message.to().ok().and_then(|to| to.tag).is_some();
                if let Some(out) = call.outbound.as_deref_mut() {
                    // The callee is reached: no other trunk will ring it again.
                    out.reached |= tagged;
                }
                if call.cancel_pending {
                    call.cancel_pending = false;
                    self.send_cancel(id);
                }
            }
            200..=299 => {
                // Each 2xx with a new To tag is a dialog of its own (a fork).
                let tag = message.to().ok().and_then(|to| to.tag).unwrap_or_default();
                if !call.dialogs.iter().any(|known| known == tag)
                    && call.dialogs.len() < MAX_DIALOGS
                {
                    call.dialogs.push(tag.to_vec());
                }
                if call.phase == Phase::Setup {
                    call.phase = Phase::Answered;
                }
                if let Some(out) = call.outbound.as_deref_mut() {
                    out.reached = true;
                }
            }
            _ => {}
        }
    }

    /// A response for the caller through the server transaction: sent when the
    /// transaction takes it (after our own 408 from Timer C the callee's late 487 goes
    /// nowhere), kept for retransmissions while needed (a 2xx is not sent again by the
    /// transaction, RFC 6026 §7.1). A final failure ends the call.
    fn relay_to_caller(&mut self, now: Instant, id: Id, code: u16, relayed: Vec<u8>) {
        let call = self.calls.get_mut(id);
        if call.server.latest_response() == 100 && call.server.state() == ServerState::Proceeding {
            let direction = usize::from(call.outbound.is_some());
            self.setup[direction].observe(now.saturating_duration_since(call.started));
        }
        let server_action = match code {
            101..=199 => call.server.send_provisional(code),
            _ => call.server.send_final(now, code),
        };
        if matches!(server_action, ServerAction::Send(_)) {
            if matches!(
                call.server.state(),
                ServerState::Proceeding | ServerState::Completed
            ) {
                call.latest.clear();
                call.latest.extend_from_slice(&relayed);
            }
            let transmit = transmit_to(call.caller, &call.caller_name, relayed);
            self.transmits.push_back(transmit);
        }
        if code >= 300 {
            call.release();
            call.phase = Phase::Ended;
        }
    }

    /// A final failure from an outbound call's trunk: a challenge is answered, or the
    /// next trunk tried when the failure allows it. True when handled so; false when the
    /// failure goes to the backend.
    fn outbound_failure(
        &mut self,
        now: Instant,
        id: Id,
        code: u16,
        message: &Scan<'_, '_>,
    ) -> bool {
        let call = self.calls.get_mut(id);
        let Some(out) = call.outbound.as_deref_mut() else {
            return false;
        };
        if matches!(code, 401 | 407) && !out.stopped {
            let why = if out.challenged {
                "challenged again after our credentials (auth_failed for calls)".to_owned()
            } else {
                match authorization(
                    code,
                    message,
                    &out.current,
                    "INVITE",
                    &out.current.request_uri,
                ) {
                    Ok(line) => {
                        out.challenged = true;
                        out.cseq_offset += 1;
                        out.retired.push(Retired {
                            branch: call.our_branch,
                            peer: call.callee,
                            server_name: call.callee_name.clone(),
                            ack: std::mem::take(&mut call.ack),
                        });
                        self.send_invite(now, id, Some(&line));
                        return true;
                    }
                    Err(why) => why,
                }
            };
            let trunk = call.trunk.clone();
            self.events.push_back(CallEvent::Warning {
                trunk,
                message: format!("outbound INVITE got {code}: {why}"),
            });
            let call = self.calls.get_mut(id);
            let out = call.outbound.as_deref().expect("outbound");
            if out.may_fail_over() {
                self.fail_over(now, id, code);
            } else {
                self.give_up(now, id, 403, "Trunk Authentication Failed");
            }
            return true;
        }
        let failover = self.settings.failover_codes.contains(&code);
        if failover && out.may_fail_over() {
            let mut relayed = Vec::new();
            if forward::response(&mut relayed, message, &call.parties(message, true)).is_ok() {
                let out = call.outbound.as_deref_mut().expect("outbound");
                out.keep_best(code, relayed);
            }
            self.fail_over(now, id, code);
            return true;
        }
        false
    }

    /// The current trunk of an outbound call failed (`code`, 0 for no answer at all):
    /// the next trunk with a channel free is tried, else the backend gets the best
    /// failure, or our own 503.
    fn fail_over(&mut self, now: Instant, id: Id, code: u16) {
        let call = self.calls.get_mut(id);
        let Some(out) = call.outbound.as_deref_mut() else {
            return;
        };
        out.retired.push(Retired {
            branch: call.our_branch,
            peer: call.callee,
            server_name: std::mem::take(&mut call.callee_name),
            ack: std::mem::take(&mut call.ack),
        });
        if let Some(guard) = call.guard.take() {
            guard.counters().failovers.fetch_add(1, Ordering::Relaxed);
        }
        let from = call.trunk.clone();
        let Some(to) = self.take_next_attempt(now, id) else {
            return;
        };
        let why = match code {
            0 => "no answer".to_owned(),
            code => code.to_string(),
        };
        self.events.push_back(CallEvent::Warning {
            trunk: from,
            message: format!("outbound call failed ({why}): trying trunk {to}"),
        });
        self.start_attempt(now, id);
    }

    /// An outbound call ends without a trunk: the best failure a trunk gave, else our
    /// own `code`.
    ///
    /// A 503 from a carrier is not passed on (RFC 3261 §16.7 step 6: it would say trunkd
    /// itself is unavailable): the backend gets our own 500 instead.
    fn give_up(&mut self, now: Instant, id: Id, code: u16, reason: &str) {
        let call = self.calls.get_mut(id);
        match call.outbound.as_deref_mut().and_then(|out| out.best.take()) {
            Some((503, _)) => self.final_from_us(now, id, 500, "All Trunks Failed"),
            Some((code, relayed)) => self.relay_to_caller(now, id, code, relayed),
            None => self.final_from_us(now, id, code, reason),
        }
    }

    /// A challenge from the trunk's next hop to a request the backend sent inside an
    /// outbound call: answered once with the trunk's credentials (a re-INVITE's
    /// challenge ACKed first), the CSeq offset raised by one. False when it cannot be
    /// answered: the challenge goes to the backend.
    fn reauthorize(&mut self, id: Id, index: usize, code: u16, message: &Scan<'_, '_>) -> bool {
        let call = self.calls.get_mut(id);
        let (Some(out), Some(pending)) =
            (call.outbound.as_deref_mut(), call.pending.get_mut(index))
        else {
            return false;
        };
        let Some((destination, forwarded)) = pending.resend.take() else {
            return false;
        };
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        let Ok(request) = scan::scan(&forwarded, &mut storage) else {
            return false;
        };
        let (Some(method), Some(uri), Ok(cseq), Ok(call_id)) = (
            request.method(),
            request.request_uri(),
            request.cseq(),
            request.call_id(),
        ) else {
            return false;
        };
        let method_text = String::from_utf8_lossy(method.as_bytes()).into_owned();
        let uri = String::from_utf8_lossy(uri).into_owned();
        let line = match authorization(code, message, &out.current, &method_text, &uri) {
            Ok(line) => line,
            Err(_) => return false,
        };
        let branch = self.keys.branch_for(call_id, pending.branch.as_bytes());
        let mut again = Vec::new();
        if forward::reissue(
            &mut again,
            &request,
            branch.as_str(),
            cseq.sequence + 1,
            &line,
        )
        .is_err()
        {
            return false;
        }
        if method == Method::Invite {
            let mut ack = Vec::new();
            write_from_invite(&forwarded, &mut ack, "ACK", message.header(HeaderName::To));
            self.transmits
                .push_back(transmit_to(destination, &call.callee_name, ack));
        }
        out.cseq_offset += 1;
        pending.branch = branch;
        self.transmits
            .push_back(transmit_to(destination, &call.callee_name, again));
        true
    }

    /// (Re)sends an outbound call's INVITE to its current trunk, on a new client
    /// transaction: after a challenge (with `authorization`) or on failover.
    fn send_invite(&mut self, now: Instant, id: Id, authorization: Option<&str>) {
        let trunk_header = self.settings.trunk_header.as_str();
        let timers = self.settings.timers;
        let call = self.calls.get_mut(id);
        // Answering a challenge of the same trunk: the INVITE it challenged, spliced.
        if let (Some(line), Some(out)) = (authorization, call.outbound.as_deref_mut()) {
            out.sent += 1;
            let mut salt = call.caller_branch.clone();
            salt.extend_from_slice(&out.sent.to_be_bytes());
            let branch = self.keys.branch_for(&call.caller_tag, &salt);
            let cseq = out.invite_cseq.wrapping_add(out.cseq_offset);
            if let Some(forwarded) =
                forward::splice_invite(&call.forwarded, branch.as_str(), cseq, line)
            {
                let reliable = call.callee.transport != Transport::Udp;
                call.client = InviteClient::new(now, timers, reliable, Some(TIMER_C));
                call.our_branch = branch;
                call.ack = Vec::new();
                call.forwarded = forwarded.clone();
                self.send_callee(id, forwarded);
                return;
            }
        }
        let call = self.calls.get_mut(id);
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        let Ok(invite) = scan::scan(&call.invite, &mut storage) else {
            return;
        };
        let (Ok(call_id), Some(out)) = (invite.call_id(), call.outbound.as_deref_mut()) else {
            return;
        };
        let toward_backend = call
            .caller_side
            .as_ref()
            .map_or(call.sent_by.as_str(), |(_, sent_by)| sent_by);
        let Some((forwarded, branch)) = outbound_invite(
            &self.keys,
            trunk_header,
            (&invite, call.invite_source),
            (call_id, &call.caller_branch),
            out,
            toward_backend,
            authorization,
        ) else {
            return;
        };
        let reliable = call.callee.transport != Transport::Udp;
        call.client = InviteClient::new(now, timers, reliable, Some(TIMER_C));
        call.our_branch = branch;
        call.ack = Vec::new();
        call.forwarded = forwarded.clone();
        self.send_callee(id, forwarded);
    }

    /// CANCEL from the caller: once the callee sent a provisional, CANCEL it there
    /// (§9.1); before that, remember and send it when one comes. An outbound call tries
    /// no other trunk.
    fn cancel(&mut self, id: Id) {
        let call = self.calls.get_mut(id);
        if let Some(out) = call.outbound.as_deref_mut() {
            out.stopped = true;
        }
        match call.client.state() {
            ClientState::Proceeding => self.send_cancel(id),
            ClientState::Calling => call.cancel_pending = true,
            _ => {}
        }
    }

    fn send_cancel(&mut self, id: Id) {
        let call = self.calls.get(id);
        let mut cancel = Vec::new();
        write_from_invite(&call.forwarded, &mut cancel, "CANCEL", None);
        self.send_callee(id, cancel);
    }

    /// A connection trunkd opened to `peer` failed or could not be opened: a call whose
    /// INVITE went there and has no answer yet fails over (an outbound call to its next
    /// trunk, an inbound one to its next backend, else 503 to the carrier).
    pub(crate) fn handle_transport_error(&mut self, now: Instant, peer: SocketAddr) {
        let failed = self.calls.ids(|call| {
            call.callee.transport != Transport::Udp
                && call.callee.address == peer
                && call.client.state() == ClientState::Calling
                && call.server.state() == ServerState::Proceeding
        });
        for id in failed {
            if self.calls.get(id).outbound.is_some() {
                self.outbound_timeout(now, id);
            } else if !self.next_backend(now, id, "connection failed") {
                let call = self.calls.get(id);
                let event = CallEvent::BackendUnreachable(peer, call.trunk.clone());
                self.events.push_back(event);
                self.final_from_us(now, id, 503, "Backend Unavailable");
            }
            self.settle(now, id);
        }
    }

    /// Runs every call timer due at `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        while let Some(id) = self.calls.pop_due(now) {
            self.run_timers(now, id);
            self.settle(now, id);
        }
    }

    fn run_timers(&mut self, now: Instant, id: Id) {
        let call = self.calls.get_mut(id);
        call.expire(now);
        if call.backend_deadline().is_some_and(|at| now >= at) {
            if call.cancel_pending {
                // The carrier gave up while the backend said nothing at all.
                self.final_from_us(now, id, 487, response::reason_phrase(487));
            } else {
                self.next_backend(now, id, "no answer within invite_timeout");
            }
        }
        let call = self.calls.get_mut(id);
        match call.client.handle_timeout(now) {
            ClientAction::Retransmit => {
                let bytes = call.forwarded.clone();
                self.send_callee(id, bytes);
            }
            ClientAction::TimedOut if call.server.state() == ServerState::Proceeding => {
                if call.outbound.is_some() {
                    self.outbound_timeout(now, id);
                } else {
                    // Nothing came back at all: the backend is unreachable (503, so
                    // the carrier may try elsewhere); else it stopped answering (408).
                    let code = if call.callee_responded { 408 } else { 503 };
                    if !call.callee_responded {
                        let event =
                            CallEvent::BackendUnreachable(call.callee.address, call.trunk.clone());
                        self.events.push_back(event);
                    }
                    let reason = match code {
                        503 => "Backend Unavailable",
                        _ => response::reason_phrase(code),
                    };
                    self.final_from_us(now, id, code, reason);
                    let trunk = self.calls.get(id).trunk.clone();
                    self.events.push_back(CallEvent::Warning {
                        trunk,
                        message: format!(
                            "backend did not answer an INVITE in time; carrier answered {code}"
                        ),
                    });
                }
            }
            ClientAction::TimedOutC => {
                self.send_cancel(id);
                self.final_from_us(now, id, 408, response::reason_phrase(408));
            }
            _ => {}
        }
        let call = self.calls.get_mut(id);
        match call.server.handle_timeout(now) {
            ServerAction::Resend(_) => self.resend_latest(id),
            ServerAction::AckTimedOut => {}
            _ => {}
        }
        let call = self.calls.get_mut(id);
        if call.phase != Phase::Ended && now >= call.ends_at {
            call.end(now);
            let trunk = call.trunk.clone();
            let limit = self.settings.max_call_duration;
            self.events.push_back(CallEvent::Warning {
                trunk,
                message: format!(
                    "call ended by max_call_duration ({}s) without a BYE; channel released",
                    limit.as_secs()
                ),
            });
        }
    }

    /// An outbound call's trunk answered nothing at all (Timer B): the next trunk, else
    /// the best failure so far, else 408 (487 when the backend cancelled).
    fn outbound_timeout(&mut self, now: Instant, id: Id) {
        let call = self.calls.get_mut(id);
        let Some(out) = call.outbound.as_deref() else {
            return;
        };
        let (stopped, may_fail_over) = (out.stopped, out.may_fail_over());
        self.events.push_back(CallEvent::Warning {
            trunk: call.trunk.clone(),
            message: "the carrier did not answer an outbound INVITE (no response in time, or the connection failed)".into(),
        });
        if may_fail_over {
            self.fail_over(now, id, 0);
        } else if stopped {
            self.final_from_us(now, id, 487, response::reason_phrase(487));
        } else {
            self.give_up(now, id, 408, response::reason_phrase(408));
        }
    }

    /// Our own final response to the caller (408, 503, ...), ending the call.
    fn final_from_us(&mut self, now: Instant, id: Id, code: u16, reason: &str) {
        let call = self.calls.get_mut(id);
        if call.server.send_final(now, code) != ServerAction::Send(code) {
            return;
        }
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        let Ok(message) = scan::scan(&call.invite, &mut storage) else {
            return;
        };
        // Not the hot path's stateless tag (that is `key`): the caller's ACK to this
        // answer must reach the server transaction, not be dropped as a stateless one's.
        let tag = hex_tag(call.key.rotate_left(32) ^ 0x7472_756e_6b64_0001);
        let mut out = Vec::new();
        let written = response::write(
            &mut out,
            &message,
            call.caller.address,
            code,
            reason,
            Some(&tag),
            &[],
        );
        if written.is_ok() {
            call.latest = out;
            call.release();
            call.phase = Phase::Ended;
            self.resend_latest(id);
        }
    }
    /// The latest response of the INVITE transaction, to the carrier (again).
    fn resend_latest(&mut self, id: Id) {
        let call = self.calls.get_mut(id);
        if call.latest.is_empty() && call.server.latest_response() == 100 {
            let mut storage = [EMPTY_HEADER; MAX_HEADERS];
            if let Ok(invite) = scan::scan(&call.invite, &mut storage) {
                write_trying(&mut call.latest, &invite, call.invite_source);
            }
        }
        let transmit = transmit_to(call.caller, &call.caller_name, call.latest.clone());
        self.transmits.push_back(transmit);
    }

    fn reply(&mut self, to: Peer, message: &Scan<'_, '_>, code: u16, reason: &str, extra: &[&str]) {
        let mut out = Vec::new();
        let tag = hex_tag(
            self.keys
                .of(message.call_id().unwrap_or_default(), b"reply"),
        );
        if response::write(
            &mut out,
            message,
            to.address,
            code,
            reason,
            Some(&tag),
            extra,
        )
        .is_ok()
        {
            self.transmits.push_back(transmit_to(to, "", out));
        }
    }

    /// To a call's callee.
    fn send_callee(&mut self, id: Id, bytes: Vec<u8>) {
        let call = self.calls.get(id);
        let transmit = transmit_to(call.callee, &call.callee_name, bytes);
        self.transmits.push_back(transmit);
    }

    /// The call with this Call-ID, its absorbing timers run as due at `now`; none when
    /// it is done and only waits to be forgotten (it is forgotten now).
    fn find(&mut self, now: Instant, call_id: &[u8]) -> Option<Id> {
        let id = self.calls.find(call_id)?;
        let call = self.calls.get_mut(id);
        call.expire(now);
        if call.is_done(now) {
            self.forget(id);
            self.calls.purge();
            return None;
        }
        Some(id)
    }

    /// After anything a call handled: the counters learn what changed, the messages no
    /// transaction needs any more go, and the call is woken at its next deadline or, when
    /// nothing of it is left, forgotten.
    fn settle(&mut self, now: Instant, id: Id) {
        let call = self.calls.get_mut(id);
        let (was_active, was_pending) = call.tallied;
        let is_active = call.phase != Phase::Ended;
        self.active = self.active + usize::from(is_active) - usize::from(was_active);
        self.awaiting = self.awaiting + call.pending.len() - was_pending;
        call.tallied = (is_active, call.pending.len());
        if call.is_done(now) {
            self.forget(id);
        } else {
            call.shed();
            let origin = *self.origin.get_or_insert(now);
            let forget = call.forget_at().map(|at| on_grid(origin, at));
            let wake = match (call.acting_deadline(), forget) {
                (Some(acting), Some(forget)) => Some(acting.min(forget)),
                (acting, forget) => acting.or(forget),
            };
            if let Some(at) = wake {
                self.calls.arm(id, at);
            }
        }
        self.calls.purge();
    }

    fn forget(&mut self, id: Id) {
        let (call_id, call) = self.calls.remove(id);
        self.active -= usize::from(call.tallied.0);
        self.awaiting -= call.tallied.1;
        self.finished_keys.push((call.key, call_id));
    }
}

/// The first instant at or after `at` on [`FORGET_GRID`] from `origin`.
fn on_grid(origin: Instant, at: Instant) -> Instant {
    let grid = FORGET_GRID.as_nanos();
    let since = at.saturating_duration_since(origin).as_nanos();
    u64::try_from(since.div_ceil(grid) * grid)
        .ok()
        .and_then(|offset| origin.checked_add(Duration::from_nanos(offset)))
        .unwrap_or(at)
}

/// Where a request goes next toward `peer`: the `next` hop its route set or Contact
/// gives (behind NAT: its source address), on `peer`'s connection while that is open.
fn hop_toward(peer: Peer, next: Option<Target>) -> Peer {
    let target = next.map(|target| target::behind_nat(target.address, peer.address));
    match peer.transport {
        Transport::Udp => Peer::udp(target.unwrap_or(peer.address)),
        transport => Peer {
            address: peer.address,
            transport,
            reconnect: target.unwrap_or(peer.reconnect),
        },
    }
}

/// The sender of a request from `source` (over a connection of `transport`, if any)
/// whose top Via is `via`: a new connection, should this one close, goes to the source's
/// IP at the Via's port (RFC 3261 §18.2.2).
fn source_peer(source: SocketAddr, transport: Option<Transport>, via: &scan::Via<'_>) -> Peer {
    match transport {
        None | Some(Transport::Udp) => Peer::udp(source),
        Some(transport) => {
            let default = if transport == Transport::Tls {
                5061
            } else {
                5060
            };
            let port = via.sent_by_port.unwrap_or(default);
            Peer {
                address: source,
                transport,
                reconnect: SocketAddr::new(source.ip(), port),
            }
        }
    }
}

/// A UDP datagram, or bytes for the connection with `peer.address` (while open, else a
/// new one to `peer.reconnect`, verified against `server_name` for TLS; a datagram needs
/// no name, and gets none).
fn transmit_to(peer: Peer, server_name: &str, bytes: Vec<u8>) -> Transmit {
    let stream = peer.transport != Transport::Udp;
    Transmit {
        destination: if stream { peer.reconnect } else { peer.address },
        transport: peer.transport,
        server_name: if stream {
            server_name.to_owned()
        } else {
            String::new()
        },
        connection: stream.then_some(peer.address),
        bytes,
    }
}

/// Our 100 Trying to an INVITE from `source` (RFC 3261 §16.2).
fn write_trying(out: &mut Vec<u8>, invite: &Scan<'_, '_>, source: SocketAddr) {
    out.reserve(invite.message_len());
    let _ = response::write(out, invite, source, 100, "Trying", None, &[]);
}

/// Writes the ACK to a failure or a CANCEL (RFC 3261 §9.1, §17.1.1.3) from the INVITE as
/// forwarded. It scans: trunkd wrote those bytes from a message that scanned.
fn write_from_invite(forwarded: &[u8], out: &mut Vec<u8>, method: &str, to: Option<&[u8]>) {
    let mut storage = [EMPTY_HEADER; MAX_HEADERS];
    if let Ok(copy) = scan::scan(forwarded, &mut storage).and_then(|f| InviteCopy::of(&f)) {
        copy.write(out, method, to);
    }
}

#[cfg(test)]
mod tests;
