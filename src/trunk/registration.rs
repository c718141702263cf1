//! One trunk's registration with its carrier (RFC 3261 §10), sans IO.
//!
//! It owns the binding's identity (Call-ID for the trunk's life, CSeq, From tag), builds
//! each REGISTER, runs it through a non-INVITE client transaction, answers digest
//! challenges, refreshes from the *granted* expiry and backs off on failure, forever: a
//! registration never gives up silently, it stays visible in `state()` and retries at a
//! capped interval. It never touches a socket or the clock; responses arrive already
//! parsed as a [`RegisterResponse`].
//!
//! ```text
//!  Unregistered ──start delay──► Registering ──2xx──► Registered ──refresh──► Registering
//!                                 │  401/407: answer, same attempt (stale: new nonce)
//!                                 │  423: raise Expires to Min-Expires, same attempt
//!                                 ├─ 401/407 to our answer ───► AuthFailed ─┐
//!                                 ├─ 403/404 ─────────────────► Rejected  ──┤ retry later
//!                                 └─ timeout/408/5xx/6xx/other ► Backoff  ──┘
//! ```

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Secret, Transport};
use crate::sip::Transmit;
use crate::sip::digest;
use crate::sip::transaction::{ClientRequest, Outcome, ResponseView, TimerValues};
use crate::trunk::random::Random;

/// Refresh at min(75 % of the granted expiry, expiry − this margin), so a refresh has time
/// for a challenge round and retransmissions before the binding lapses.
pub(crate) const REFRESH_MARGIN: Duration = Duration::from_secs(32);
/// Challenges answered within one attempt before it counts as a failure: one for a cached
/// nonce the registrar no longer accepts, one for the fresh nonce, one stale round.
const MAX_CHALLENGES_PER_ATTEMPT: u8 = 3;

/// What the registration needs to know about its trunk, resolved by the shell.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    /// Request-URI, e.g. `sip:carrier.example.net` (RFC 3261 §10.2: no user part).
    pub registrar: String,
    /// Address of record in From and To, e.g. `sip:user_42@carrier.example.net`.
    pub aor: String,
    /// Our Contact URI, e.g. `sip:user_42@203.0.113.10:5060;transport=udp`.
    pub contact: String,
    /// Via sent-by (`host:port`) as advertised.
    pub via_sent_by: String,
    pub transport: Transport,
    /// Where requests go; responses from anywhere else are ignored.
    pub next_hop: SocketAddr,
    /// The host the next hop was resolved from (outbound proxy or domain): the name a TLS
    /// server certificate must carry (RFC 5922 §7).
    pub server_name: String,
    pub username: String,
    pub password: Secret,
    /// The operator's `auth_realm`: challenges for any other realm are not answered.
    pub auth_realm: Option<String>,
    /// Requested expiry in seconds.
    pub expires: u32,
    /// Shared by every trunk's registration.
    pub user_agent: Arc<str>,
    /// Learn our public address from the registrar's Via `received`/`rport` (RFC 3581) and
    /// correct the Contact. Off when the operator set `public_address`.
    pub learn_public_address: bool,
    /// First retry after a failure; doubles per consecutive failure up to `retry_max`,
    /// which is also the retry of a rejected (403/404) registration: the carrier refuses
    /// this account, and asking again soon only adds log noise.
    pub retry_min: Duration,
    pub retry_max: Duration,
}

/// The parts of a response to REGISTER that the registration acts on: what every
/// transaction of ours reads, and the REGISTER specifics.
#[derive(Debug, Clone)]
pub(crate) struct RegisterResponse<'a> {
    pub response: ResponseView<'a>,
    /// Every Contact of the 200 (the registrar lists all bindings of the AOR, other
    /// devices' too): its URI and `expires` parameter (RFC 3261 §10.2.4).
    pub contacts: Vec<(&'a str, Option<u32>)>,
    pub expires: Option<u32>,
    pub www_authenticate: Vec<&'a str>,
    pub proxy_authenticate: Vec<&'a str>,
    pub min_expires: Option<u32>,
    pub retry_after: Option<u32>,
    /// Top Via `received` and `rport` (RFC 3581): where the registrar saw us come from.
    pub received: Option<&'a str>,
    pub rport: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Unregistered,
    Registering,
    Registered,
    AuthFailed,
    Rejected,
    Backoff,
}

impl State {
    /// The registrar refused, or the last attempt failed and a retry is waiting.
    pub fn is_failing(self) -> bool {
        matches!(self, State::AuthFailed | State::Rejected | State::Backoff)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Unregistered => "unregistered",
            State::Registering => "registering",
            State::Registered => "registered",
            State::AuthFailed => "auth_failed",
            State::Rejected => "rejected",
            State::Backoff => "backoff",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// The state changed; `reason` is for the log ("401 Unauthorized: wrong password").
    StateChanged {
        state: State,
        code: Option<u16>,
        reason: String,
    },
    /// A response from an address other than the next hop was ignored.
    ForeignResponse { source: SocketAddr, code: u16 },
}

/// Which header carried the challenge, so the answer goes in the matching one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChallengeKind {
    Www,
    Proxy,
}

/// The challenge refreshes answer, kept as the header value it came in and parsed again
/// when answered (once per refresh): one allocation instead of a parsed challenge's
/// 104 bytes and its owned realm, nonce and opaque, in every idle registration.
#[derive(Debug, Clone)]
struct CachedChallenge {
    raw: Box<str>,
    kind: ChallengeKind,
    /// Requests sent with this nonce so far (RFC 7616 §3.4: nc).
    nonce_count: u32,
}

/// The REGISTER under way.
#[derive(Debug)]
struct InFlight {
    request: ClientRequest,
    /// The Expires it asked for: the binding's lifetime if the registrar names none.
    expires: u32,
    /// When it was handed to the transport: the start of its round trip.
    sent_at: Instant,
}

#[derive(Debug)]
pub(crate) struct Registration {
    params: Stored,
    /// T1, T2 and T4 in milliseconds.
    timers_ms: [u32; 3],
    random: Random,
    /// Shared with the registrations' map from Call-ID to trunk.
    call_id: Arc<str>,
    /// Written as 16 hex digits.
    from_tag: u64,
    cseq: u32,
    state: State,
    last_code: Option<u16>,
    /// Boxed: 176 bytes that an idle registration (nearly all of its life) need not
    /// carry inline.
    in_flight: Option<Box<InFlight>>,
    /// Round trips of the REGISTERs answered (any final response), for the metrics.
    round_trips: crate::trunk::histogram::Histogram,
    challenge: Option<CachedChallenge>,
    /// Challenges answered in the current attempt, and whether the last request carried
    /// an answer to a challenge received in this attempt (not a cached nonce).
    challenges_this_attempt: u8,
    answered_fresh_challenge: bool,
    /// Expires to ask for; raised by 423 Min-Expires.
    expires: u32,
    expires_at: Option<Instant>,
    /// Start, refresh or retry.
    next_attempt_at: Option<Instant>,
    consecutive_failures: u32,
    unregistering: bool,
    /// Set when an attempt failed in a way another server might not (no answer, transport
    /// error, 408, 5xx): the registrations may fail over to the next DNS target.
    failover_hint: bool,
    /// The Contact we register when it is not the one `params` make ([`Stored::contact`]):
    /// a caller's own, or the address a registrar saw behind NAT. Nearly always `None`.
    contact: Option<Box<str>>,
    /// A Contact replaced behind NAT, removed (`expires=0`) in the next REGISTER.
    retired_contact: Option<String>,
    /// What to send and to report, oldest first: rarely more than two, and drained at
    /// once by the registrations, so plain vectors (24 bytes each, 32 for a deque).
    transmits: Vec<Transmit>,
    events: Vec<Event>,
}

/// What a registration keeps of its [`Params`]. A registration lives as long as its trunk
/// and a daemon may hold 10,000 of them: the five strings share one allocation (one
/// String each cost 24 bytes inline plus a heap block), the password and User-Agent are
/// shared with the config and the other registrations.
#[derive(Debug)]
struct Stored {
    /// Registrar, AOR, Via sent-by, server name and username, back to back.
    text: Box<str>,
    /// Where each of them ends in `text`.
    ends: [u32; 5],
    transport: Transport,
    next_hop: SocketAddr,
    password: Secret,
    auth_realm: Option<Box<str>>,
    user_agent: Arc<str>,
    learn_public_address: bool,
    /// `retry_min` and `retry_max` in milliseconds.
    retry_ms: [u32; 2],
}

/// A duration kept in 4 bytes instead of 16 (config durations are far below 49 days).
fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

fn from_millis(ms: u32) -> Duration {
    Duration::from_millis(u64::from(ms))
}

impl Stored {
    /// The stored parameters, and `params.contact` when it is not the default one.
    fn new(mut params: Params) -> (Self, Option<Box<str>>) {
        let contact = std::mem::take(&mut params.contact);
        let parts = [
            &params.registrar,
            &params.aor,
            &params.via_sent_by,
            &params.server_name,
            &params.username,
        ];
        let mut text = String::with_capacity(parts.iter().map(|part| part.len()).sum());
        let mut ends = [0; 5];
        for (end, part) in ends.iter_mut().zip(parts) {
            text.push_str(part);
            // Config strings are far below 4 GiB.
            *end = text.len() as u32;
        }
        let stored = Stored {
            text: text.into_boxed_str(),
            ends,
            transport: params.transport,
            next_hop: params.next_hop,
            password: params.password,
            auth_realm: params.auth_realm.map(String::into_boxed_str),
            user_agent: params.user_agent,
            learn_public_address: params.learn_public_address,
            retry_ms: [millis(params.retry_min), millis(params.retry_max)],
        };
        let custom = (contact != stored.default_contact()).then(|| contact.into_boxed_str());
        (stored, custom)
    }

    /// The Contact every caller builds: our username at our advertised address.
    fn default_contact(&self) -> String {
        format!(
            "sip:{}@{};transport={}",
            self.username(),
            self.via_sent_by(),
            self.transport
        )
    }

    fn retry_min(&self) -> Duration {
        from_millis(self.retry_ms[0])
    }

    fn retry_max(&self) -> Duration {
        from_millis(self.retry_ms[1])
    }

    fn part(&self, index: usize) -> &str {
        let start = index.checked_sub(1).map_or(0, |before| self.ends[before]);
        &self.text[start as usize..self.ends[index] as usize]
    }

    fn registrar(&self) -> &str {
        self.part(0)
    }

    fn aor(&self) -> &str {
        self.part(1)
    }

    fn via_sent_by(&self) -> &str {
        self.part(2)
    }

    fn server_name(&self) -> &str {
        self.part(3)
    }

    fn username(&self) -> &str {
        self.part(4)
    }
}

/// Pops the front; an emptied queue gives its buffer back. A registration is idle nearly
/// all its life, and 10,000 idle trunks' drained queues held ~0.5 KiB each.
fn pop_releasing<T>(queue: &mut Vec<T>) -> Option<T> {
    if queue.is_empty() {
        return None;
    }
    let front = queue.remove(0);
    if queue.is_empty() {
        *queue = Vec::new();
    }
    Some(front)
}

impl Registration {
    /// A registration that sends its first REGISTER at `now + start_delay` (the caller
    /// spreads trunks so thousands don't hit one registrar in the same millisecond).
    pub(crate) fn new(
        params: Params,
        timers: TimerValues,
        seed: u64,
        now: Instant,
        start_delay: Duration,
    ) -> Self {
        let mut random = Random::new(seed);
        let call_id: Arc<str> = format!("{}@trunkd", random.hex()).into();
        let from_tag = random.next_u64();
        let expires = params.expires;
        let (stored, contact) = Stored::new(params);
        Registration {
            expires,
            params: stored,
            timers_ms: [millis(timers.t1), millis(timers.t2), millis(timers.t4)],
            random,
            call_id,
            from_tag,
            cseq: 0,
            state: State::Unregistered,
            last_code: None,
            in_flight: None,
            round_trips: Default::default(),
            challenge: None,
            challenges_this_attempt: 0,
            answered_fresh_challenge: false,
            expires_at: None,
            next_attempt_at: Some(now + start_delay),
            consecutive_failures: 0,
            unregistering: false,
            failover_hint: false,
            contact,
            retired_contact: None,
            transmits: Vec::new(),
            events: Vec::new(),
        }
    }

    pub(crate) fn state(&self) -> State {
        self.state
    }

    pub(crate) fn last_code(&self) -> Option<u16> {
        self.last_code
    }

    pub(crate) fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The Call-ID as the shared text, for maps keyed by it.
    pub(crate) fn shared_call_id(&self) -> Arc<str> {
        Arc::clone(&self.call_id)
    }

    /// Seconds of the current binding left at `now`.
    pub(crate) fn expires_in(&self, now: Instant) -> Option<Duration> {
        self.expires_at.map(|at| at.saturating_duration_since(now))
    }

    /// Whether the last failure suggests trying another server; reading it clears it.
    pub(crate) fn take_failover_hint(&mut self) -> bool {
        std::mem::take(&mut self.failover_hint)
    }

    /// Sends the next attempt to `next_hop` now, instead of after the backoff. A cached
    /// challenge belonged to the other server and is dropped.
    pub(crate) fn fail_over(&mut self, now: Instant, next_hop: SocketAddr) {
        self.params.next_hop = next_hop;
        self.challenge = None;
        if self.in_flight.is_none() {
            self.next_attempt_at = Some(now);
        }
    }

    /// Sends future requests to `next_hop` (new DNS data); nothing is sent now.
    pub(crate) fn move_to(&mut self, next_hop: SocketAddr) {
        self.params.next_hop = next_hop;
        self.challenge = None;
    }

    /// Whether the registrar holds (as far as we know) a binding of ours: only then is
    /// there anything to unregister.
    pub(crate) fn has_binding(&self) -> bool {
        self.expires_at.is_some()
    }

    /// When the next attempt (start, refresh or retry) is due, if one is scheduled.
    pub(crate) fn next_attempt_at(&self) -> Option<Instant> {
        self.next_attempt_at
    }

    fn timers(&self) -> TimerValues {
        let [t1, t2, t4] = self.timers_ms.map(from_millis);
        TimerValues { t1, t2, t4 }
    }

    /// Where REGISTERs go now.
    pub(crate) fn next_hop(&self) -> SocketAddr {
        self.params.next_hop
    }

    /// The Contact we register now.
    fn contact(&self) -> std::borrow::Cow<'_, str> {
        match &self.contact {
            Some(contact) => std::borrow::Cow::Borrowed(contact),
            None => std::borrow::Cow::Owned(self.params.default_contact()),
        }
    }

    /// The name the next hop was resolved from (outbound proxy or domain, no brackets).
    pub(crate) fn server_name(&self) -> &str {
        self.params.server_name()
    }

    #[must_use]
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        pop_releasing(&mut self.transmits)
    }

    #[must_use]
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        pop_releasing(&mut self.events)
    }

    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let transaction = self
            .in_flight
            .as_ref()
            .and_then(|f| f.request.poll_timeout());
        match (transaction, self.next_attempt_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Removes the binding (REGISTER with Expires: 0), for a removed or disabled trunk and
    /// at shutdown. Challenges to it are answered like any other.
    pub(crate) fn unregister(&mut self, now: Instant) {
        self.unregistering = true;
        self.next_attempt_at = None;
        self.challenges_this_attempt = 0;
        self.send(now);
    }

    /// Whether an unregistration finished (answered or given up).
    pub(crate) fn is_finished(&self) -> bool {
        self.unregistering && self.in_flight.is_none()
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.handle_timeout_limited(now, true);
    }

    /// Whether a REGISTER transaction is under way.
    pub(crate) fn round_trips(&self) -> &crate::trunk::histogram::Histogram {
        &self.round_trips
    }

    pub(crate) fn is_in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// When the current transaction's next timer fires, if one is under way.
    pub(crate) fn transaction_deadline(&self) -> Option<Instant> {
        self.in_flight
            .as_ref()
            .and_then(|in_flight| in_flight.request.poll_timeout())
    }

    /// Whether a new attempt (start, refresh, retry) is due and waits to be started.
    pub(crate) fn attempt_due(&self, now: Instant) -> bool {
        self.in_flight.is_none() && self.next_attempt_at.is_some_and(|at| now >= at)
    }

    /// Runs the transaction's timers, and starts a due attempt only if `may_start`: the
    /// registrations's cap on REGISTERs in flight decides.
    pub(crate) fn handle_timeout_limited(&mut self, now: Instant, may_start: bool) {
        if let Some(in_flight) = &mut self.in_flight {
            match in_flight.request.handle_timeout(now) {
                Outcome::Retransmit(bytes) => self.queue(bytes),
                Outcome::TimedOut => {
                    self.in_flight = None;
                    self.fail(
                        now,
                        State::Backoff,
                        None,
                        "no response (timeout)".into(),
                        None,
                    );
                }
                _ => {}
            }
        }
        if may_start && self.attempt_due(now) {
            // A new attempt: a challenge to it is fresh even if we send a cached answer.
            self.next_attempt_at = None;
            self.challenges_this_attempt = 0;
            self.answered_fresh_challenge = false;
            self.send(now);
        }
    }

    /// The transport could not deliver the request (ICMP unreachable, TCP refused, ...).
    pub(crate) fn handle_transport_error(&mut self, now: Instant, why: &str) {
        let Some(in_flight) = &mut self.in_flight else {
            return;
        };
        if in_flight.request.handle_transport_error() == Outcome::TransportFailed {
            self.in_flight = None;
            self.fail(
                now,
                State::Backoff,
                None,
                format!("transport error: {why}"),
                None,
            );
        }
    }

    pub(crate) fn handle_response(&mut self, now: Instant, response: &RegisterResponse<'_>) {
        let view = &response.response;
        if view.source != self.params.next_hop {
            // Only the next hop may answer, and above all only it may challenge: a 401
            // from elsewhere must never make us compute a response with our password.
            self.events.push(Event::ForeignResponse {
                source: view.source,
                code: view.code,
            });
            return;
        }
        let Some(in_flight) = &mut self.in_flight else {
            return;
        };
        let Outcome::Answered(code) = in_flight.request.handle_response(now, view) else {
            return;
        };
        let sent_expires = in_flight.expires;
        self.round_trips
            .observe(now.saturating_duration_since(in_flight.sent_at));
        self.in_flight = None;
        self.last_code = Some(code);
        let reason = format!("{code} {}", view.reason);
        match code {
            200..=299 => self.on_success(now, code, response, sent_expires, reason),
            401 | 407 => self.on_challenge(now, code, response, reason),
            423 => self.on_interval_too_brief(now, response, reason),
            403 | 404 => self.fail(
                now,
                State::Rejected,
                Some(code),
                reason,
                response.retry_after,
            ),
            _ => self.fail(
                now,
                State::Backoff,
                Some(code),
                reason,
                response.retry_after,
            ),
        }
    }

    fn on_success(
        &mut self,
        now: Instant,
        code: u16,
        response: &RegisterResponse<'_>,
        sent_expires: u32,
        reason: String,
    ) {
        self.consecutive_failures = 0;
        self.answered_fresh_challenge = false;
        if self.unregistering {
            self.expires_at = None;
            self.set_state(State::Unregistered, Some(code), reason);
            return;
        }
        // RFC 3261 §10.2.4: the registrar's word on our Contact wins, then Expires. URIs
        // compare case-insensitively here (registrars echo `transport=UDP`); the full
        // §19.1.4 comparison is not needed to find a Contact we wrote ourselves.
        let ours = response
            .contacts
            .iter()
            .find(|(uri, _)| uri.eq_ignore_ascii_case(&self.contact()))
            .and_then(|(_, expires)| *expires);
        let granted = ours.or(response.expires).unwrap_or(sent_expires);
        if granted == 0 {
            // A registrar that granted nothing: treat as a failure, not a success.
            self.fail(
                now,
                State::Backoff,
                Some(code),
                format!("{reason} (granted expires=0)"),
                None,
            );
            return;
        }
        let granted = Duration::from_secs(u64::from(granted));
        self.expires_at = Some(now + granted);
        self.next_attempt_at = Some(now + refresh_after(granted));
        self.retired_contact = None;
        self.set_state(State::Registered, Some(code), reason);
        self.learn_public_address(now, code, response);
    }

    /// RFC 3581: the registrar answered to where our request came from and said so in
    /// `received`/`rport`. If that is not our Contact, calls would go to an address behind
    /// NAT: register the seen address now, removing the old Contact in the same request.
    fn learn_public_address(&mut self, now: Instant, code: u16, response: &RegisterResponse<'_>) {
        if !self.params.learn_public_address
            || (response.received.is_none() && response.rport.is_none())
        {
            return;
        }
        let (our_host, our_port) = split_sent_by(self.params.via_sent_by());
        let host = response.received.unwrap_or(our_host);
        // Over TCP/TLS, rport is the ephemeral port of our client connection, which
        // says nothing about NAT: the Contact keeps our listener's port.
        let port = match self.params.transport {
            Transport::Udp => response.rport.unwrap_or(our_port),
            Transport::Tcp | Transport::Tls => our_port,
        };
        let host = match host.parse::<std::net::Ipv6Addr>() {
            Ok(v6) => format!("[{v6}]"),
            Err(_) => host.to_owned(),
        };
        let seen = format!(
            "sip:{}@{host}:{port};transport={}",
            self.params.username(),
            self.params.transport
        );
        if seen == *self.contact() {
            return;
        }
        self.events.push(Event::StateChanged {
            state: State::Registered,
            code: Some(code),
            reason: format!(
                "registrar sees us at {host}:{port} (NAT): re-registering that Contact"
            ),
        });
        self.retired_contact = Some(self.contact().into_owned());
        self.contact = Some(seen.into_boxed_str());
        self.challenges_this_attempt = 0;
        self.send(now);
    }

    fn on_challenge(
        &mut self,
        now: Instant,
        code: u16,
        response: &RegisterResponse<'_>,
        reason: String,
    ) {
        let (values, kind) = if code == 407 {
            (&response.proxy_authenticate, ChallengeKind::Proxy)
        } else {
            (&response.www_authenticate, ChallengeKind::Www)
        };
        let parsed = values
            .iter()
            .filter_map(|value| digest::parse_challenge(value).ok());
        let Some(challenge) = digest::preferred(parsed) else {
            let why = format!("{reason}: no usable Digest challenge");
            self.fail(
                now,
                State::AuthFailed,
                Some(code),
                why,
                response.retry_after,
            );
            return;
        };
        // Our answer to a challenge of this attempt was refused, and not because the nonce
        // went stale: the credentials are wrong (RFC 7616 §3.3 stale).
        if self.answered_fresh_challenge && !challenge.stale {
            let why = format!("{reason}: credentials rejected");
            self.fail(
                now,
                State::AuthFailed,
                Some(code),
                why,
                response.retry_after,
            );
            return;
        }
        if self.challenges_this_attempt >= MAX_CHALLENGES_PER_ATTEMPT {
            let why = format!("{reason}: too many challenges in one attempt");
            self.fail(
                now,
                State::AuthFailed,
                Some(code),
                why,
                response.retry_after,
            );
            return;
        }
        if let (Some(pinned), realm) = (self.params.auth_realm.as_deref(), &challenge.realm)
            && pinned != realm.as_ref()
        {
            let why = format!("{reason}: realm \"{realm}\" is not the configured auth_realm");
            self.fail(now, State::AuthFailed, Some(code), why, None);
            return;
        }
        // The header value `preferred` chose: the first that parses to the same challenge.
        let Some(raw) = values.iter().find(|value| {
            digest::parse_challenge(value).is_ok_and(|parsed| {
                parsed.algorithm == challenge.algorithm
                    && parsed.nonce == challenge.nonce
                    && parsed.realm == challenge.realm
            })
        }) else {
            // Unreachable: `challenge` was parsed from one of `values`.
            let why = format!("{reason}: no usable Digest challenge");
            self.fail(now, State::AuthFailed, Some(code), why, None);
            return;
        };
        self.challenges_this_attempt += 1;
        self.challenge = Some(CachedChallenge {
            raw: (*raw).into(),
            kind,
            nonce_count: 0,
        });
        self.answered_fresh_challenge = true;
        self.send(now);
    }

    fn on_interval_too_brief(
        &mut self,
        now: Instant,
        response: &RegisterResponse<'_>,
        reason: String,
    ) {
        // RFC 3261 §10.2.8: retry with at least Min-Expires, once per attempt.
        match response.min_expires {
            Some(minimum) if minimum > self.expires && !self.unregistering => {
                self.expires = minimum;
                self.send(now);
            }
            _ => self.fail(now, State::Backoff, Some(423), reason, response.retry_after),
        }
    }

    /// Records a failed attempt and schedules the next one: the capped exponential backoff
    /// with jitter, or Retry-After when the carrier names a later time.
    fn fail(
        &mut self,
        now: Instant,
        state: State,
        code: Option<u16>,
        reason: String,
        retry_after: Option<u32>,
    ) {
        self.answered_fresh_challenge = false;
        if self.unregistering {
            // At removal or shutdown there is no one to retry for.
            self.set_state(State::Unregistered, code, reason);
            return;
        }
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        // RFC 3263 §4.3: a timeout, transport error or 503 (here: any 5xx or 408) makes
        // the next server worth trying; a 6xx or an auth failure would be the same anywhere.
        self.failover_hint = state == State::Backoff
            && code.is_none_or(|code| code == 408 || (500..600).contains(&code));
        let mut delay = match state {
            State::Rejected => self.params.retry_max(),
            _ => backoff(
                self.consecutive_failures,
                self.params.retry_min(),
                self.params.retry_max(),
                &mut self.random,
            ),
        };
        if let Some(seconds) = retry_after {
            delay = delay.max(Duration::from_secs(u64::from(seconds)));
        }
        if self.expires_at.is_some_and(|at| now >= at) {
            self.expires_at = None;
        }
        self.next_attempt_at = Some(now + delay);
        self.set_state(state, code, reason);
    }

    fn set_state(&mut self, state: State, code: Option<u16>, reason: String) {
        if state != self.state || state != State::Registered {
            self.events.push(Event::StateChanged {
                state,
                code,
                reason,
            });
        }
        self.state = state;
    }

    /// Builds and queues a new REGISTER (new CSeq and branch) for the current attempt.
    fn send(&mut self, now: Instant) {
        self.cseq += 1;
        let branch = format!("z9hG4bK{}", self.random.hex());
        let expires = if self.unregistering { 0 } else { self.expires };
        let authorization = self.authorization();
        let bytes = self.build(&branch, expires, authorization.as_ref());
        let reliable = self.params.transport != Transport::Udp;
        self.in_flight = Some(Box::new(InFlight {
            request: ClientRequest::new(
                now,
                self.timers(),
                reliable,
                branch,
                self.cseq,
                bytes.clone(),
            ),
            expires,
            sent_at: now,
        }));
        if self.state != State::Registered
            && self.state != State::Registering
            && !self.unregistering
        {
            self.set_state(State::Registering, None, "sending REGISTER".into());
        }
        self.queue(bytes);
    }

    /// The Authorization (or Proxy-Authorization) for the next request: answers the cached
    /// challenge with the next nonce count, so refreshes reuse the nonce (RFC 7616 §3.4).
    fn authorization(&mut self) -> Option<(ChallengeKind, String)> {
        let cached = self.challenge.as_mut()?;
        cached.nonce_count += 1;
        let challenge = digest::parse_challenge(&cached.raw).ok()?;
        let cnonce = self.random.hex();
        let answer = digest::answer(
            &challenge,
            self.params.username(),
            &self.params.password,
            "REGISTER",
            self.params.registrar(),
            &cnonce,
            cached.nonce_count,
            self.params.auth_realm.as_deref(),
        )
        .ok()?;
        Some((cached.kind, answer.header_value()))
    }

    fn build(
        &self,
        branch: &str,
        expires: u32,
        authorization: Option<&(ChallengeKind, String)>,
    ) -> Vec<u8> {
        let p = &self.params;
        let transport = p.transport.as_str().to_ascii_uppercase();
        let mut m = String::with_capacity(512);
        // Writing to a String cannot fail.
        let _ = write!(
            m,
            "REGISTER {registrar} SIP/2.0\r\n\
             Via: SIP/2.0/{transport} {sent_by};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <{aor}>;tag={tag}\r\n\
             To: <{aor}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Contact: <{contact}>{retired}\r\n\
             Expires: {expires}\r\n",
            registrar = p.registrar(),
            sent_by = p.via_sent_by(),
            aor = p.aor(),
            tag = format_args!("{:016x}", self.from_tag),
            call_id = self.call_id,
            cseq = self.cseq,
            contact = self.contact(),
            retired = self
                .retired_contact
                .as_ref()
                .map(|old| format!(", <{old}>;expires=0"))
                .unwrap_or_default(),
        );
        if let Some((kind, value)) = authorization {
            let name = match kind {
                ChallengeKind::Www => "Authorization",
                ChallengeKind::Proxy => "Proxy-Authorization",
            };
            let _ = write!(m, "{name}: {value}\r\n");
        }
        let _ = write!(
            m,
            "User-Agent: {}\r\nContent-Length: 0\r\n\r\n",
            p.user_agent
        );
        m.into_bytes()
    }

    fn queue(&mut self, bytes: Vec<u8>) {
        self.transmits.push(Transmit {
            destination: self.params.next_hop,
            transport: self.params.transport,
            server_name: self.params.server_name().to_owned(),
            connection: None,
            bytes,
        });
    }
}

/// `host:port` of a Via sent-by; the port defaults to 5060 when absent.
fn split_sent_by(sent_by: &str) -> (&str, u16) {
    match sent_by.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (
            host.trim_start_matches('[').trim_end_matches(']'),
            port.parse().unwrap_or(5060),
        ),
        _ => (sent_by, 5060),
    }
}

/// When to refresh a binding granted for `granted`: min(75 %, granted − 32 s), and half
/// the expiry for bindings too short for the margin.
pub(crate) fn refresh_after(granted: Duration) -> Duration {
    if granted > 2 * REFRESH_MARGIN {
        (granted * 3 / 4).min(granted - REFRESH_MARGIN)
    } else {
        (granted / 2).max(Duration::from_secs(1))
    }
}

/// Delay before retry number `failures` (1-based): min·2^(n−1) capped at max, then
/// "equal jitter": half fixed, half random, so a registrar that comes back is not hit by
/// every trunk at once.
pub(crate) fn backoff(
    failures: u32,
    min: Duration,
    max: Duration,
    random: &mut Random,
) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    let ceiling = min.saturating_mul(1 << exponent).min(max);
    let half = ceiling / 2;
    let jitter_millis = random.below(half.as_millis() as u64 + 1);
    half + Duration::from_millis(jitter_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTRAR: &str = "192.0.2.20:5060";
    const BACKOFF_BASE: Duration = Duration::from_secs(30);
    const BACKOFF_CAP: Duration = Duration::from_secs(30 * 60);
    const NONCE: &str = "1700000000:abc";

    #[allow(clippy::disallowed_methods)]
    fn epoch() -> Instant {
        Instant::now()
    }

    fn params() -> Params {
        Params {
            registrar: "sip:carrier.example.net".into(),
            aor: "sip:user_42@carrier.example.net".into(),
            contact: "sip:user_42@198.51.100.1:5060;transport=udp".into(),
            via_sent_by: "198.51.100.1:5060".into(),
            transport: Transport::Udp,
            next_hop: REGISTRAR.parse().unwrap(),
            server_name: "carrier.example.net".into(),
            username: "user_42".into(),
            password: Secret::new("correct horse"),
            auth_realm: None,
            expires: 3600,
            user_agent: "trunkd-test".into(),
            learn_public_address: true,
            retry_min: BACKOFF_BASE,
            retry_max: BACKOFF_CAP,
        }
    }

    /// A registration whose first REGISTER is out; returns it and that request's text.
    fn started(params: Params) -> (Registration, String, Instant) {
        let t0 = epoch();
        let mut registration = Registration::new(
            params,
            TimerValues::default(),
            42,
            t0,
            Duration::from_millis(250),
        );
        assert_eq!(
            registration.poll_timeout(),
            Some(t0 + Duration::from_millis(250))
        );
        assert!(
            registration.poll_transmit().is_none(),
            "nothing before the start delay"
        );
        let t = t0 + Duration::from_millis(250);
        registration.handle_timeout(t);
        let request = sent(&mut registration);
        (registration, request, t)
    }

    fn sent(registration: &mut Registration) -> String {
        let transmit = registration.poll_transmit().expect("a REGISTER to send");
        assert_eq!(transmit.destination, REGISTRAR.parse().unwrap());
        assert!(registration.poll_transmit().is_none(), "exactly one");
        String::from_utf8(transmit.bytes).unwrap()
    }

    fn header<'a>(request: &'a str, name: &str) -> Option<&'a str> {
        request
            .split("\r\n")
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
    }

    fn branch(request: &str) -> &str {
        let via = header(request, "Via").unwrap();
        via.split(';')
            .find_map(|p| p.strip_prefix("branch="))
            .unwrap()
    }

    fn cseq(request: &str) -> u32 {
        header(request, "CSeq")
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    fn response<'a>(request: &'a str, code: u16, reason: &'a str) -> RegisterResponse<'a> {
        RegisterResponse {
            response: ResponseView {
                source: REGISTRAR.parse().unwrap(),
                code,
                reason,
                branch: branch(request),
                cseq: cseq(request),
            },
            contacts: Vec::new(),
            expires: None,
            www_authenticate: Vec::new(),
            proxy_authenticate: Vec::new(),
            min_expires: None,
            retry_after: None,
            received: None,
            rport: None,
        }
    }

    /// Answers `request` with a 401 carrying one WWW-Authenticate `challenge`.
    fn deliver_401(registration: &mut Registration, now: Instant, request: &str, challenge: &str) {
        let mut unauthorized = response(request, 401, "Unauthorized");
        unauthorized.www_authenticate = vec![challenge];
        registration.handle_response(now, &unauthorized);
    }

    fn challenge_header(nonce: &str, stale: bool) -> String {
        format!(
            "Digest realm=\"carrier.example.net\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\"{}",
            if stale { ", stale=true" } else { "" }
        )
    }

    fn states(registration: &mut Registration) -> Vec<State> {
        std::iter::from_fn(|| registration.poll_event())
            .filter_map(|event| match event {
                Event::StateChanged { state, .. } => Some(state),
                Event::ForeignResponse { .. } => None,
            })
            .collect()
    }

    /// Checks an Authorization header against an independent computation.
    fn assert_valid_authorization(request: &str, nonce: &str, nc: &str) {
        let value = header(request, "Authorization").expect("Authorization");
        let field = |name: &str| -> String {
            let start = value.find(&format!("{name}=")).unwrap() + name.len() + 1;
            let rest = &value[start..];
            let rest = rest.strip_prefix('"').unwrap_or(rest);
            rest.split(['"', ',']).next().unwrap().to_owned()
        };
        assert_eq!(field("nonce"), nonce);
        assert_eq!(field("nc"), nc);
        assert_eq!(field("uri"), "sip:carrier.example.net");
        assert_eq!(field("username"), "user_42");
        let challenge_text = challenge_header(nonce, false);
        let challenge = digest::parse_challenge(&challenge_text).unwrap();
        let nonce_count = u32::from_str_radix(nc, 16).unwrap();
        let expected = digest::answer(
            &challenge,
            "user_42",
            &Secret::new("correct horse"),
            "REGISTER",
            "sip:carrier.example.net",
            &field("cnonce"),
            nonce_count,
            None,
        )
        .unwrap();
        assert_eq!(field("response"), expected.response());
        assert!(!request.contains("correct horse"));
    }

    #[test]
    fn first_register_has_the_rfc_3261_shape() {
        let (mut registration, request, _) = started(params());
        assert!(request.starts_with("REGISTER sip:carrier.example.net SIP/2.0\r\n"));
        assert!(branch(&request).starts_with("z9hG4bK"));
        assert!(header(&request, "Via").unwrap().ends_with(";rport"));
        assert_eq!(
            header(&request, "From").unwrap(),
            format!(
                "<sip:user_42@carrier.example.net>;tag={:016x}",
                registration.from_tag
            )
        );
        assert_eq!(
            header(&request, "To"),
            Some("<sip:user_42@carrier.example.net>")
        );
        assert_eq!(header(&request, "Call-ID"), Some(registration.call_id()));
        assert_eq!(header(&request, "CSeq"), Some("1 REGISTER"));
        assert_eq!(header(&request, "Expires"), Some("3600"));
        assert_eq!(header(&request, "Authorization"), None);
        assert!(request.ends_with("Content-Length: 0\r\n\r\n"));
        assert_eq!(states(&mut registration), [State::Registering]);
    }

    #[test]
    fn challenge_answered_then_registered_and_refreshed_from_granted_expiry() {
        let (mut registration, request, t) = started(params());
        let challenge = challenge_header(NONCE, false);
        deliver_401(&mut registration, t, &request, &challenge);
        let answered = sent(&mut registration);
        assert_eq!(cseq(&answered), 2);
        assert_ne!(branch(&answered), branch(&request), "a new transaction");
        assert_eq!(header(&answered, "Call-ID"), header(&request, "Call-ID"));
        assert_valid_authorization(&answered, NONCE, "00000001");

        // The carrier grants 600 s on our Contact although we asked for 3600.
        let t = t + Duration::from_millis(40);
        let mut ok = response(&answered, 200, "OK");
        // Another device's binding first: ours is found by its URI.
        ok.contacts = vec![
            ("sip:other@203.0.113.9:5060", Some(3600)),
            ("sip:user_42@198.51.100.1:5060;transport=UDP", Some(600)),
        ];
        ok.expires = Some(3600);
        registration.handle_response(t, &ok);
        assert_eq!(registration.state(), State::Registered);
        assert_eq!(registration.expires_in(t), Some(Duration::from_secs(600)));
        assert_eq!(registration.last_code(), Some(200));
        // min(75 % of 600, 600 - 32) = 450 s.
        assert_eq!(
            registration.next_attempt_at(),
            Some(t + Duration::from_secs(450))
        );
        assert_eq!(
            states(&mut registration),
            [State::Registering, State::Registered]
        );

        // The refresh reuses the nonce with nc+1, same Call-ID, next CSeq; the visible
        // state stays registered while it is in flight.
        let t = t + Duration::from_secs(450);
        registration.handle_timeout(t);
        let refresh = sent(&mut registration);
        assert_eq!(cseq(&refresh), 3);
        assert_eq!(header(&refresh, "Call-ID"), header(&request, "Call-ID"));
        assert_valid_authorization(&refresh, NONCE, "00000002");
        assert_eq!(registration.state(), State::Registered);
        let mut ok = response(&refresh, 200, "OK");
        ok.expires = Some(120);
        registration.handle_response(t, &ok);
        // Expires header when the Contact carries none; short expiry: min(90, 88) = 88 s.
        assert_eq!(
            registration.next_attempt_at(),
            Some(t + Duration::from_secs(88))
        );
        assert!(
            states(&mut registration).is_empty(),
            "registered → registered is not news"
        );
    }

    #[test]
    fn cached_nonce_refused_at_refresh_is_answered_with_the_fresh_one() {
        let (mut registration, request, t) = started(params());
        let challenge = challenge_header(NONCE, false);
        deliver_401(&mut registration, t, &request, &challenge);
        let answered = sent(&mut registration);
        registration.handle_response(t, &response(&answered, 200, "OK"));
        let t = registration.next_attempt_at().unwrap();
        registration.handle_timeout(t);
        let refresh = sent(&mut registration);
        // The registrar expired our nonce: a fresh challenge, not a wrong password.
        let fresh = challenge_header("1700003600:def", false);
        deliver_401(&mut registration, t, &refresh, &fresh);
        let answered = sent(&mut registration);
        assert_valid_authorization(&answered, "1700003600:def", "00000001");
        registration.handle_response(t, &response(&answered, 200, "OK"));
        assert_eq!(registration.state(), State::Registered);
    }

    #[test]
    fn stale_nonce_is_retried_without_counting_as_a_failure() {
        let (mut registration, request, t) = started(params());
        let challenge = challenge_header(NONCE, false);
        deliver_401(&mut registration, t, &request, &challenge);
        let answered = sent(&mut registration);
        let stale = challenge_header("1700000100:new", true);
        deliver_401(&mut registration, t, &answered, &stale);
        let retried = sent(&mut registration);
        assert_valid_authorization(&retried, "1700000100:new", "00000001");
        registration.handle_response(t, &response(&retried, 200, "OK"));
        assert_eq!(registration.state(), State::Registered);
    }

    #[test]
    fn wrong_password_is_auth_failed_and_retried_forever_at_a_bounded_pace() {
        let (mut registration, mut request, mut t) = started(params());
        let challenge = challenge_header(NONCE, false);
        for round in 0..12 {
            deliver_401(&mut registration, t, &request, &challenge);
            let answered = sent(&mut registration);
            let mut refused = response(&answered, 401, "Unauthorized");
            refused.www_authenticate = vec![&challenge];
            registration.handle_response(t, &refused);
            assert_eq!(registration.state(), State::AuthFailed, "round {round}");
            assert!(registration.poll_transmit().is_none(), "no tight loop");
            let retry = registration.next_attempt_at().expect("never gives up");
            let delay = retry - t;
            assert!(
                delay >= Duration::from_secs(15) && delay <= BACKOFF_CAP,
                "{delay:?}"
            );
            t = retry;
            registration.handle_timeout(t);
            request = sent(&mut registration);
        }
    }

    #[test]
    fn min_expires_raises_the_requested_expiry() {
        let (mut registration, request, t) = started(params());
        let mut brief = response(&request, 423, "Interval Too Brief");
        brief.min_expires = Some(7200);
        registration.handle_response(t, &brief);
        let retried = sent(&mut registration);
        assert_eq!(header(&retried, "Expires"), Some("7200"));
        registration.handle_response(t, &response(&retried, 200, "OK"));
        assert_eq!(registration.expires_in(t), Some(Duration::from_secs(7200)));
    }

    #[test]
    fn no_answer_retransmits_then_backs_off_and_recovers() {
        let (mut registration, request, t0) = started(params());
        let mut retransmissions = 0;
        while registration.state() == State::Registering {
            let at = registration.poll_timeout().unwrap();
            registration.handle_timeout(at);
            while let Some(transmit) = registration.poll_transmit() {
                assert_eq!(
                    transmit.bytes,
                    request.as_bytes(),
                    "byte-identical retransmission"
                );
                retransmissions += 1;
            }
        }
        assert_eq!(retransmissions, 10);
        assert_eq!(registration.state(), State::Backoff);
        let retry = registration.next_attempt_at().unwrap();
        let delay = retry - (t0 + Duration::from_secs(32));
        assert!(
            delay >= BACKOFF_BASE / 2 && delay <= BACKOFF_BASE,
            "{delay:?}"
        );
        registration.handle_timeout(retry);
        let again = sent(&mut registration);
        registration.handle_response(retry, &response(&again, 200, "OK"));
        assert_eq!(registration.state(), State::Registered);
    }

    #[test]
    fn forbidden_is_rejected_with_a_long_retry_and_retry_after_is_honoured() {
        let (mut registration, request, t) = started(params());
        registration.handle_response(t, &response(&request, 403, "Forbidden"));
        assert_eq!(registration.state(), State::Rejected);
        assert_eq!(registration.next_attempt_at(), Some(t + BACKOFF_CAP));

        let (mut registration, request, t) = started(params());
        let mut unavailable = response(&request, 503, "Service Unavailable");
        unavailable.retry_after = Some(3600);
        registration.handle_response(t, &unavailable);
        assert_eq!(registration.state(), State::Backoff);
        assert_eq!(
            registration.next_attempt_at(),
            Some(t + Duration::from_secs(3600))
        );
    }

    #[test]
    fn a_challenge_from_a_foreign_address_is_ignored() {
        let (mut registration, request, t) = started(params());
        let challenge = challenge_header(NONCE, false);
        let mut spoofed = response(&request, 401, "Unauthorized");
        spoofed.response.source = "203.0.113.66:5060".parse().unwrap();
        spoofed.www_authenticate = vec![&challenge];
        registration.handle_response(t, &spoofed);
        assert!(
            registration.poll_transmit().is_none(),
            "no answer computed or sent"
        );
        assert_eq!(registration.state(), State::Registering);
        let events: Vec<Event> = std::iter::from_fn(|| registration.poll_event()).collect();
        assert!(events.contains(&Event::ForeignResponse {
            source: "203.0.113.66:5060".parse().unwrap(),
            code: 401
        }));
    }

    #[test]
    fn a_challenge_for_another_realm_than_auth_realm_is_not_answered() {
        let mut pinned = params();
        pinned.auth_realm = Some("other.example".into());
        let (mut registration, request, t) = started(pinned);
        let challenge = challenge_header(NONCE, false);
        deliver_401(&mut registration, t, &request, &challenge);
        assert!(registration.poll_transmit().is_none());
        assert_eq!(registration.state(), State::AuthFailed);
    }

    #[test]
    fn unregister_answers_its_challenge_and_finishes() {
        let (mut registration, request, t) = started(params());
        registration.handle_response(t, &response(&request, 200, "OK"));
        registration.unregister(t);
        let removal = sent(&mut registration);
        assert_eq!(header(&removal, "Expires"), Some("0"));
        let challenge = challenge_header(NONCE, false);
        let mut unauthorized = response(&removal, 407, "Proxy Authentication Required");
        unauthorized.proxy_authenticate = vec![&challenge];
        registration.handle_response(t, &unauthorized);
        let answered = sent(&mut registration);
        assert_eq!(header(&answered, "Expires"), Some("0"));
        assert!(header(&answered, "Proxy-Authorization").is_some());
        assert!(!registration.is_finished());
        registration.handle_response(t, &response(&answered, 200, "OK"));
        assert!(registration.is_finished());
        assert_eq!(registration.state(), State::Unregistered);
        assert_eq!(
            registration.poll_timeout(),
            None,
            "nothing scheduled after removal"
        );
    }

    #[test]
    fn responses_to_other_transactions_are_ignored() {
        let (mut registration, request, t) = started(params());
        let mut stray = response(&request, 200, "OK");
        stray.response.branch = "z9hG4bKsomethingelse";
        registration.handle_response(t, &stray);
        assert_eq!(registration.state(), State::Registering);
    }

    proptest::proptest! {
        /// For any policy, failure count and seed: the delay is between half and all of
        /// min·2^(n−1) capped at max, so retries never stop, never exceed the cap, and
        /// never come faster than half the first step.
        #[test]
        fn backoff_stays_within_bounds(
            min_secs in 1u64..3600,
            extra_secs in 0u64..86_400,
            failures in 1u32..10_000,
            seed in proptest::prelude::any::<u64>(),
        ) {
            let min = Duration::from_secs(min_secs);
            let max = min + Duration::from_secs(extra_secs);
            let mut random = Random::new(seed);
            let delay = backoff(failures, min, max, &mut random);
            let ceiling = min.saturating_mul(1 << (failures - 1).min(16)).min(max);
            proptest::prop_assert!(delay >= ceiling / 2 && delay <= ceiling, "{:?} {:?}", delay, ceiling);
            proptest::prop_assert!(delay <= max);
            proptest::prop_assert!(delay >= min / 2);
        }
    }

    #[test]
    fn behind_nat_the_seen_address_replaces_the_contact_once() {
        let (mut registration, request, t) = started(params());
        let mut ok = response(&request, 200, "OK");
        ok.received = Some("203.0.113.5");
        ok.rport = Some(40000);
        registration.handle_response(t, &ok);
        let corrected = sent(&mut registration);
        assert_eq!(
            header(&corrected, "Contact"),
            Some(
                "<sip:user_42@203.0.113.5:40000;transport=udp>, \
                 <sip:user_42@198.51.100.1:5060;transport=udp>;expires=0"
            )
        );
        assert_eq!(header(&corrected, "Call-ID"), header(&request, "Call-ID"));
        // The registrar sees the same address again: nothing more to correct.
        let mut ok = response(&corrected, 200, "OK");
        ok.received = Some("203.0.113.5");
        ok.rport = Some(40000);
        registration.handle_response(t, &ok);
        assert!(registration.poll_transmit().is_none());
        assert_eq!(registration.state(), State::Registered);
        // Refreshes keep the corrected Contact and drop the retired one.
        let refresh_at = registration.next_attempt_at().unwrap();
        registration.handle_timeout(refresh_at);
        let refresh = sent(&mut registration);
        assert_eq!(
            header(&refresh, "Contact"),
            Some("<sip:user_42@203.0.113.5:40000;transport=udp>")
        );
    }

    #[test]
    fn a_configured_public_address_is_never_overridden_and_no_nat_means_no_change() {
        let mut fixed = params();
        fixed.learn_public_address = false;
        let (mut registration, request, t) = started(fixed);
        let mut ok = response(&request, 200, "OK");
        ok.received = Some("203.0.113.5");
        ok.rport = Some(40000);
        registration.handle_response(t, &ok);
        assert!(registration.poll_transmit().is_none());

        let (mut registration, request, t) = started(params());
        let mut ok = response(&request, 200, "OK");
        ok.rport = Some(5060);
        registration.handle_response(t, &ok);
        assert!(
            registration.poll_transmit().is_none(),
            "rport equal to ours: no NAT"
        );
    }

    /// The usual Contact is rebuilt from the stored parameters, any other one is kept.
    #[test]
    fn the_contact_given_is_the_contact_sent() {
        for contact in [
            "sip:user_42@198.51.100.1:5060;transport=udp",
            "sip:pbx-7@203.0.113.9:5062;transport=udp",
        ] {
            let mut given = params();
            given.contact = contact.into();
            let (_, request, _) = started(given);
            assert_eq!(
                request
                    .lines()
                    .find_map(|line| line.strip_prefix("Contact: ")),
                Some(format!("<{contact}>").as_str())
            );
        }
    }

    #[test]
    fn over_tcp_the_connection_port_is_not_taken_for_nat() {
        let mut tcp = params();
        tcp.transport = Transport::Tcp;
        tcp.contact = "sip:user_42@198.51.100.1:5060;transport=tcp".into();
        let (mut registration, request, t) = started(tcp);
        let mut ok = response(&request, 200, "OK");
        ok.rport = Some(54316);
        registration.handle_response(t, &ok);
        assert!(
            registration.poll_transmit().is_none(),
            "same IP: nothing to correct"
        );
    }

    #[test]
    fn refresh_points() {
        assert_eq!(
            refresh_after(Duration::from_secs(3600)),
            Duration::from_secs(2700)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(120)),
            Duration::from_secs(88)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(60)),
            Duration::from_secs(30)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(1)),
            Duration::from_secs(1)
        );
    }
}
