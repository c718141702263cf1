//! One trunk's OPTIONS keepalive ("qualify", RFC 3261 §11), sans IO.
//!
//! Every `interval` (±10 % jitter; the first ping after a random delay in `[0, interval)`
//! so thousands of trunks started together don't ping in the same second) it sends an
//! OPTIONS to the trunk's next hop through a non-INVITE client transaction, one ping at a
//! time, and folds the outcome into a reachability state with hysteresis:
//!
//! ```text
//!            first success               down_after failures in a row
//!   Unknown ─────────────────► Up ◄──────────────────────────────────┐
//!      │                        │ down_after failures in a row       │ up_after successes
//!      │                        ▼                                    │ in a row
//!      └─────────────────────► Down ─────────────────────────────────┘
//!        down_after failures
//! ```
//!
//! A ping *succeeds* on any final response except the configured failure codes (default
//! 408 and 503): a 404 or 486 still proves that the carrier's SIP stack is alive and
//! answering. It *fails* on a failure code, on Timer F (64·T1 without a final response)
//! and on a transport error. From `Unknown` the first success is enough for `Up` (at start
//! we would rather show a trunk up as soon as it answered once than wait `up_after`
//! intervals), while `Down` needs `down_after` failures from `Unknown` as from `Up` (a
//! single lost datagram at start must not flag a carrier as down).
//!
//! Nothing is registered with anyone, so there is nothing to undo: to stop, the owner
//! drops the [`Keepalive`]. A ping still in flight is abandoned; a late response to it
//! simply finds no machine (the owner routes by Call-ID, see [`Keepalive::call_id`]).
//!
//! NAT: the response's Via `received`/`rport` (RFC 3581) is deliberately *not* read here.
//! The registration already learns our public address from its own REGISTER responses
//! and corrects its Contact; a second source for the same fact could only disagree with
//! it. OPTIONS has no binding that a wrong address would break, and it keeps a NAT
//! mapping open simply by being sent (and answered) from our listener every interval.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::config::Transport;
use crate::sip::transaction::{ClientRequest, Outcome, ResponseView, TimerValues};
use crate::trunk::histogram::Histogram;
use crate::trunk::random::Random;

/// The same bytes-to-send type as the registration's, so the shell sends both alike.
use crate::sip::Transmit;

/// Each interval is drawn uniformly from `interval ± JITTER_PERCENT %`.
pub(crate) const JITTER_PERCENT: u32 = 10;
/// Shortest interval used, whatever `Params::interval` says: the config's own floor. The
/// owner never creates a keepalive for interval 0 (off); a zero that slipped through must
/// not become a ping loop at the rate of the round trip.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// The From URI when the operator set no `options_from`: a user part the carrier's To
/// (`sip:<domain>`) never has, at our own address, so From never equals To.
pub(crate) fn default_from_uri(via_sent_by: &str) -> String {
    format!("sip:trunkd@{via_sent_by}")
}

/// What the keepalive needs to know about its trunk, resolved by the owner.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    /// Request-URI, `sip:<domain>[:port]`, e.g. `sip:carrier.example.net`.
    pub request_uri: String,
    /// From URI: the operator's `options_from`, by default [`default_from_uri`].
    pub from_uri: String,
    /// To URI, e.g. `sip:carrier.example.net`. Must differ from `from_uri`: some carriers
    /// drop requests whose From equals To as a loop or spoofing attempt. The owner's
    /// defaults guarantee it; `Keepalive::new` asserts it in debug builds.
    pub to_uri: String,
    /// Via sent-by (`host:port`) as advertised.
    pub via_sent_by: String,
    pub transport: Transport,
    /// Where pings go (the same next hop as REGISTER); see [`Keepalive::move_to`].
    pub next_hop: SocketAddr,
    /// For TLS: the name the server's certificate must carry.
    pub server_name: String,
    pub user_agent: String,
    /// Mean time between pings, from send to send; at least [`MIN_INTERVAL`].
    pub interval: Duration,
    /// A ping with no final response this long after it was sent has failed
    /// (`options_timeout`); Timer F when longer, or 0.
    pub timeout: Duration,
    /// Consecutive failures to go `Down` (`options_down_after`); 0 counts as 1.
    pub down_after: u32,
    /// Consecutive successes to leave `Down` (`options_up_after`); 0 counts as 1.
    pub up_after: u32,
    /// Final response codes that count as failures (`options_failure_codes`).
    pub failure_codes: std::borrow::Cow<'static, [u16]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No ping has decided anything yet.
    Unknown,
    Up,
    Down,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unknown => "unknown",
            State::Up => "up",
            State::Down => "down",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// The state changed; `reason` is the outcome of the ping that changed it, for the log:
    /// "200 OK", "503 Service Unavailable", "timeout", "transport error: ...". `code` is
    /// `None` when no response came.
    StateChanged {
        state: State,
        code: Option<u16>,
        reason: String,
    },
    /// A response from another address than the one the ping went to was ignored.
    ForeignResponse { source: SocketAddr, code: u16 },
}

/// The ping under way.
#[derive(Debug)]
struct InFlight {
    request: ClientRequest,
    /// Where this ping went: retransmissions go there and only it may answer, even after
    /// [`Keepalive::move_to`].
    destination: SocketAddr,
    call_id: String,
    /// When the first copy was handed to the transport: the start of the RTT.
    sent_at: Instant,
}

#[derive(Debug)]
pub(crate) struct Keepalive {
    params: Params,
    timers: TimerValues,
    random: Random,
    /// CSeq of the last ping. Every ping is a new request with its own Call-ID, so any
    /// value would do; counting up numbers the pings of a trunk in captures and logs.
    cseq: u32,
    state: State,
    in_flight: Option<InFlight>,
    /// When the next ping is due. If a ping is still in flight then, the next one waits
    /// for it to end (one transaction at a time) and goes out at once.
    next_ping_at: Instant,
    consecutive_failures: u32,
    consecutive_successes: u32,
    last_code: Option<u16>,
    rtt_last: Option<Duration>,
    rtt_last_retransmitted: bool,
    rtt_smoothed: Option<Duration>,
    /// Every answered ping's round trip, for the metrics.
    rtt_histogram: Histogram,
    ever_answered: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl Keepalive {
    /// A keepalive whose first ping goes out after a random delay in `[0, interval)`
    /// from `now`, drawn from `seed` (which also seeds the identifiers and the jitter).
    pub(crate) fn new(params: Params, timers: TimerValues, seed: u64, now: Instant) -> Self {
        debug_assert!(
            !same_uri(&params.from_uri, &params.to_uri),
            "OPTIONS From must differ from To (carriers drop From == To): {}",
            params.from_uri
        );
        debug_assert!(
            !params.interval.is_zero(),
            "interval 0 means keepalives off"
        );
        let mut random = Random::new(seed);
        let interval = params.interval.max(MIN_INTERVAL);
        let start_delay = Duration::from_nanos(random.below(nanos(interval)));
        Keepalive {
            params,
            timers,
            random,
            cseq: 0,
            state: State::Unknown,
            in_flight: None,
            next_ping_at: now + start_delay,
            consecutive_failures: 0,
            consecutive_successes: 0,
            last_code: None,
            rtt_last: None,
            rtt_last_retransmitted: false,
            rtt_smoothed: None,
            rtt_histogram: Histogram::default(),
            ever_answered: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub(crate) fn state(&self) -> State {
        self.state
    }

    /// Time from the first send of the last answered ping to its final response. When the
    /// request had been retransmitted (UDP), the value still runs from the first send, so
    /// it may overstate the path's RTT: see [`Keepalive::rtt_last_retransmitted`].
    /// Timeouts and transport errors leave it as it was (there is no sample).
    pub(crate) fn rtt_last(&self) -> Option<Duration> {
        self.rtt_last
    }

    /// Whether the request behind [`Keepalive::rtt_last`] was retransmitted, so the
    /// response may answer a later copy and the sample is ambiguous.
    pub(crate) fn rtt_last_retransmitted(&self) -> bool {
        self.rtt_last_retransmitted
    }

    /// RFC 6298 smoothed RTT: the first sample, then SRTT = 7/8·SRTT + 1/8·R. Following
    /// Karn's rule, samples from retransmitted requests are left out.
    /// The round trips of every answered ping (retransmitted ones included).
    pub(crate) fn rtt_histogram(&self) -> &Histogram {
        &self.rtt_histogram
    }

    pub(crate) fn rtt_smoothed(&self) -> Option<Duration> {
        self.rtt_smoothed
    }

    #[cfg(test)]
    /// The final response code of the last finished ping; `None` before any, and after a
    /// ping that got no response (timeout, transport error).
    pub(crate) fn last_code(&self) -> Option<u16> {
        self.last_code
    }

    #[cfg(test)]
    pub(crate) fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    #[cfg(test)]
    pub(crate) fn consecutive_successes(&self) -> u32 {
        self.consecutive_successes
    }

    /// Whether the next hop ever sent a final response to a ping, any code, failure codes
    /// included: the address, transport and TLS settings are right ("verified=yes").
    pub(crate) fn ever_answered(&self) -> bool {
        self.ever_answered
    }

    /// Where the next ping goes.
    pub(crate) fn params(&self) -> &Params {
        &self.params
    }

    pub(crate) fn next_hop(&self) -> SocketAddr {
        self.params.next_hop
    }

    #[cfg(test)]
    /// When the next ping is due (it waits for a ping still in flight).
    pub(crate) fn next_ping_at(&self) -> Instant {
        self.next_ping_at
    }

    pub(crate) fn is_in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// The Call-ID of the ping in flight, by which the owner routes responses here. It is
    /// new with every ping (see `send`), so the owner re-reads it after each transmit.
    pub(crate) fn call_id(&self) -> Option<&str> {
        self.in_flight.as_ref().map(|f| f.call_id.as_str())
    }

    /// Sends future pings to `next_hop` (new DNS data, failover). A ping in flight keeps
    /// its destination: it retransmits there and only that address may answer it. The
    /// state and counters stay: they describe the trunk, not one server.
    pub(crate) fn move_to(&mut self, next_hop: SocketAddr) {
        self.params.next_hop = next_hop;
    }

    #[must_use]
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    #[must_use]
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next instant [`Keepalive::handle_timeout`] acts at: the ping's retransmission
    /// or Timer F while one is in flight, else the next ping (possibly already past, after
    /// a response that came later than the next ping was due). Never `None`: a keepalive
    /// pings until dropped; the `Option` matches the other machines.
    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match &self.in_flight {
            Some(in_flight) => {
                let given_up = in_flight.sent_at + self.timeout();
                in_flight
                    .request
                    .poll_timeout()
                    .map_or(Some(given_up), |at| Some(at.min(given_up)))
            }
            None => Some(self.next_ping_at),
        }
    }

    /// Runs the ping's timers, and sends the next ping when it is due and none is in
    /// flight (also right after a ping timed out, if the next one was already due).
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if let Some(in_flight) = &self.in_flight
            && now >= in_flight.sent_at + self.timeout()
            && self.timeout() < self.timers.t1 * 64
        {
            // No final response within options_timeout: the ping failed; a late one
            // finds no machine (its Call-ID is forgotten).
            self.in_flight = None;
            self.last_code = None;
            let waited = crate::config::format_duration(self.timeout());
            self.fail(None, format!("no answer within options_timeout ({waited})"));
        }
        if let Some(in_flight) = &mut self.in_flight {
            match in_flight.request.handle_timeout(now) {
                Outcome::Retransmit(bytes) => {
                    let transmit = transmit(&self.params, in_flight.destination, bytes);
                    self.transmits.push_back(transmit);
                }
                Outcome::TimedOut => {
                    self.in_flight = None;
                    self.last_code = None;
                    self.fail(None, "timeout".into());
                }
                _ => {}
            }
        }
        if self.in_flight.is_none() && now >= self.next_ping_at {
            self.send(now);
        }
    }

    /// The transport could not deliver the ping (ICMP unreachable, TCP refused, TLS
    /// handshake failed, ...): a failed ping.
    pub(crate) fn handle_transport_error(&mut self, _now: Instant, why: &str) {
        let Some(in_flight) = &mut self.in_flight else {
            return;
        };
        if in_flight.request.handle_transport_error() == Outcome::TransportFailed {
            self.in_flight = None;
            self.last_code = None;
            self.fail(None, format!("transport error: {why}"));
        }
    }

    /// A response to OPTIONS (the owner passes only responses whose CSeq method is
    /// OPTIONS).
    pub(crate) fn handle_response(&mut self, now: Instant, response: &ResponseView<'_>) {
        let expected = self
            .in_flight
            .as_ref()
            .map_or(self.params.next_hop, |f| f.destination);
        if response.source != expected {
            self.events.push_back(Event::ForeignResponse {
                source: response.source,
                code: response.code,
            });
            return;
        }
        let Some(in_flight) = &mut self.in_flight else {
            return;
        };
        let Outcome::Answered(code) = in_flight.request.handle_response(now, response) else {
            return;
        };
        let rtt = now.saturating_duration_since(in_flight.sent_at);
        let retransmitted = in_flight.request.retransmissions() > 0;
        self.in_flight = None;
        self.rtt_last = Some(rtt);
        self.rtt_histogram.observe(rtt);
        self.rtt_last_retransmitted = retransmitted;
        if !retransmitted {
            self.rtt_smoothed = Some(match self.rtt_smoothed {
                None => rtt,
                Some(srtt) => smooth(srtt, rtt),
            });
        }
        self.last_code = Some(code);
        self.ever_answered = true;
        let reason = if response.reason.is_empty() {
            code.to_string()
        } else {
            format!("{code} {}", response.reason)
        };
        if self.params.failure_codes.contains(&code) {
            self.fail(Some(code), reason);
        } else {
            self.succeed(code, reason);
        }
    }

    fn succeed(&mut self, code: u16, reason: String) {
        self.consecutive_failures = 0;
        self.consecutive_successes = self.consecutive_successes.saturating_add(1);
        let up = match self.state {
            State::Unknown => true,
            State::Down => self.consecutive_successes >= self.params.up_after.max(1),
            State::Up => false,
        };
        if up {
            self.set_state(State::Up, Some(code), reason);
        }
    }

    fn fail(&mut self, code: Option<u16>, reason: String) {
        self.consecutive_successes = 0;
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if self.state != State::Down && self.consecutive_failures >= self.params.down_after.max(1) {
            self.set_state(State::Down, code, reason);
        }
    }

    fn set_state(&mut self, state: State, code: Option<u16>, reason: String) {
        self.state = state;
        self.events.push_back(Event::StateChanged {
            state,
            code,
            reason,
        });
    }

    /// Builds and queues a new ping, and schedules the one after it.
    ///
    /// Each ping is a new request outside any dialog, so it gets a fresh Call-ID (RFC 3261
    /// §8.1.1.4: globally unique per such request; only REGISTER keeps one Call-ID), a
    /// fresh From tag (§8.1.1.3) and a fresh branch. A Call-ID kept for the trunk's life
    /// would make stateful SBCs and capture tools treat thousands of pings as one long
    /// dialog-like exchange, and gains nothing: one ping is one transaction.
    fn send(&mut self, now: Instant) {
        // CSeq stays below 2^31 (RFC 3261 §8.1.1.5).
        self.cseq = self.cseq % ((1 << 31) - 1) + 1;
        let branch = format!("z9hG4bK{}", self.random.hex());
        let call_id = format!("{}@trunkd", self.random.hex());
        let from_tag = self.random.hex();
        let bytes = self.build(&branch, &call_id, &from_tag);
        let destination = self.params.next_hop;
        let reliable = self.params.transport != Transport::Udp;
        self.in_flight = Some(InFlight {
            request: ClientRequest::new(
                now,
                self.timers,
                reliable,
                branch,
                self.cseq,
                bytes.clone(),
            ),
            destination,
            call_id,
            sent_at: now,
        });
        self.next_ping_at = now + self.jittered_interval();
        let transmit = transmit(&self.params, destination, bytes);
        self.transmits.push_back(transmit);
    }

    /// How long a ping may go unanswered: `options_timeout`, at most Timer F (64·T1).
    fn timeout(&self) -> Duration {
        let timer_f = self.timers.t1 * 64;
        match self.params.timeout {
            timeout if timeout.is_zero() => timer_f,
            timeout => timeout.min(timer_f),
        }
    }

    /// `interval` ± [`JITTER_PERCENT`] %, uniformly.
    fn jittered_interval(&mut self) -> Duration {
        let interval = self.params.interval.max(MIN_INTERVAL);
        let spread = interval * JITTER_PERCENT / 100;
        let offset = self.random.below(nanos(spread).saturating_mul(2) + 1);
        interval - spread + Duration::from_nanos(offset)
    }

    fn build(&self, branch: &str, call_id: &str, from_tag: &str) -> Vec<u8> {
        let p = &self.params;
        let transport = p.transport.as_str().to_ascii_uppercase();
        let mut m = String::with_capacity(400);
        // Writing to a String cannot fail.
        let _ = write!(
            m,
            "OPTIONS {request_uri} SIP/2.0\r\n\
             Via: SIP/2.0/{transport} {sent_by};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <{from}>;tag={from_tag}\r\n\
             To: <{to}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} OPTIONS\r\n\
             Accept: application/sdp\r\n\
             User-Agent: {user_agent}\r\n\
             Content-Length: 0\r\n\r\n",
            request_uri = p.request_uri,
            sent_by = p.via_sent_by,
            from = p.from_uri,
            to = p.to_uri,
            cseq = self.cseq,
            user_agent = p.user_agent,
        );
        m.into_bytes()
    }
}

fn transmit(params: &Params, destination: SocketAddr, bytes: Vec<u8>) -> Transmit {
    Transmit {
        destination,
        transport: params.transport,
        server_name: params.server_name.clone(),
        connection: None,
        bytes,
    }
}

/// RFC 6298 §2.3 with α = 1/8: SRTT = 7/8·SRTT + 1/8·R, in whole nanoseconds.
fn smooth(srtt: Duration, sample: Duration) -> Duration {
    let nanos = (7 * srtt.as_nanos() + sample.as_nanos()) / 8;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// A duration in nanoseconds, saturating (only absurd intervals exceed 584 years).
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX / 4)
}

/// Whether two URIs are the same for the From ≠ To rule: angle brackets and ASCII case
/// aside. Catches the configuration mistake, not every equivalent spelling.
fn same_uri(a: &str, b: &str) -> bool {
    let bare = |uri: &str| {
        uri.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned()
    };
    bare(a).eq_ignore_ascii_case(&bare(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::scan::{self, EMPTY_HEADER, HeaderName, MAX_HEADERS, Method, Rport};

    const HOP: &str = "192.0.2.20:5060";
    const OTHER_HOP: &str = "192.0.2.21:5060";
    const INTERVAL: Duration = Duration::from_secs(30);
    const TIMER_F: Duration = Duration::from_secs(32);

    #[allow(clippy::disallowed_methods)]
    fn epoch() -> Instant {
        Instant::now()
    }

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn params() -> Params {
        Params {
            request_uri: "sip:carrier.example.net".into(),
            from_uri: default_from_uri("198.51.100.1:5060"),
            to_uri: "sip:carrier.example.net".into(),
            via_sent_by: "198.51.100.1:5060".into(),
            transport: Transport::Udp,
            next_hop: HOP.parse().unwrap(),
            server_name: "carrier.example.net".into(),
            user_agent: "trunkd-test".into(),
            interval: INTERVAL,
            // The config's defaults.
            down_after: 3,
            up_after: 2,
            failure_codes: vec![408, 503].into(),
            // Timer F: the tests below predate options_timeout and wait it out.
            timeout: Duration::ZERO,
        }
    }

    /// Drives a keepalive on a virtual clock, only ever to the instants it asks for.
    struct Harness {
        keepalive: Keepalive,
        now: Instant,
        /// The last new ping, its destination and when it went out.
        request: String,
        destination: Option<SocketAddr>,
        sent_at: Instant,
        /// A new ping went out that `ping()` has not handed over yet.
        fresh: bool,
        /// Retransmissions of the last new ping, and of all pings.
        retransmissions: u32,
        retransmissions_total: u32,
    }

    impl Harness {
        fn new(params: Params) -> Self {
            Self::with_seed(params, 42)
        }

        fn with_seed(params: Params, seed: u64) -> Self {
            let now = epoch();
            Harness {
                keepalive: Keepalive::new(params, TimerValues::default(), seed, now),
                now,
                request: String::new(),
                destination: None,
                sent_at: now,
                fresh: false,
                retransmissions: 0,
                retransmissions_total: 0,
            }
        }

        /// Advances to the keepalive's next deadline and runs it.
        fn step(&mut self) {
            let at = self.keepalive.poll_timeout().expect("always scheduled");
            assert!(
                at >= self.now,
                "deadline in the past only right after a response"
            );
            self.now = at;
            self.keepalive.handle_timeout(at);
            self.collect();
        }

        fn collect(&mut self) {
            while let Some(transmit) = self.keepalive.poll_transmit() {
                let text = String::from_utf8(transmit.bytes).unwrap();
                if text == self.request {
                    assert_eq!(Some(transmit.destination), self.destination);
                    self.retransmissions += 1;
                    self.retransmissions_total += 1;
                } else {
                    assert!(!self.fresh, "two pings at once");
                    self.request = text;
                    self.destination = Some(transmit.destination);
                    self.sent_at = self.now;
                    self.fresh = true;
                    self.retransmissions = 0;
                }
            }
        }

        /// Runs the clock until the next ping is out; returns its text.
        fn ping(&mut self) -> String {
            while !self.fresh {
                assert!(!self.keepalive.is_in_flight(), "a ping is still running");
                self.step();
            }
            self.fresh = false;
            self.request.clone()
        }

        /// Answers the current ping `after` its send with `code`, from the next hop.
        fn answer(&mut self, after: Duration, code: u16) {
            self.answer_from(after, code, self.destination.unwrap());
        }

        fn answer_from(&mut self, after: Duration, code: u16, source: SocketAddr) {
            self.now = self.sent_at + after;
            let request = self.request.clone();
            let view = response(&request, code, source);
            self.keepalive.handle_response(self.now, &view);
            self.collect();
        }

        /// Lets the current ping go unanswered until Timer F; returns how often it was
        /// retransmitted.
        fn time_out(&mut self) -> u32 {
            let call_id = header(&self.request, "Call-ID").unwrap().to_owned();
            let before = self.retransmissions_total;
            while self.keepalive.call_id() == Some(call_id.as_str()) {
                self.step();
            }
            self.retransmissions_total - before
        }

        fn events(&mut self) -> Vec<Event> {
            std::iter::from_fn(|| self.keepalive.poll_event()).collect()
        }

        fn states(&mut self) -> Vec<State> {
            self.events()
                .into_iter()
                .filter_map(|event| match event {
                    Event::StateChanged { state, .. } => Some(state),
                    Event::ForeignResponse { .. } => None,
                })
                .collect()
        }

        /// One ping answered with `code` after 20 ms.
        fn answered(&mut self, code: u16) {
            self.ping();
            self.answer(ms(20), code);
        }

        /// One ping that times out.
        fn unanswered(&mut self) {
            self.ping();
            self.time_out();
        }
    }

    fn reason_phrase(code: u16) -> &'static str {
        match code {
            200 => "OK",
            404 => "Not Found",
            408 => "Request Timeout",
            486 => "Busy Here",
            500 => "Server Internal Error",
            503 => "Service Unavailable",
            _ => "Whatever",
        }
    }

    fn response(request: &str, code: u16, source: SocketAddr) -> ResponseView<'_> {
        ResponseView {
            source,
            code,
            reason: reason_phrase(code),
            branch: branch(request),
            cseq: cseq(request),
        }
    }

    fn header<'a>(request: &'a str, name: &str) -> Option<&'a str> {
        request
            .split("\r\n")
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
    }

    fn branch(request: &str) -> &str {
        header(request, "Via")
            .unwrap()
            .split(';')
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

    fn from_tag(request: &str) -> &str {
        header(request, "From")
            .unwrap()
            .split_once(";tag=")
            .unwrap()
            .1
    }

    #[test]
    fn options_has_the_rfc_3261_shape() {
        let mut h = Harness::new(params());
        let request = h.ping();
        assert_eq!(h.destination, Some(HOP.parse().unwrap()));
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        let message = scan::scan(request.as_bytes(), &mut storage).expect("our own bytes scan");
        assert_eq!(message.method(), Some(Method::Options));
        assert_eq!(message.request_uri(), Some(&b"sip:carrier.example.net"[..]));
        let via = message.top_via().unwrap();
        assert_eq!(message.via_count(), 1);
        assert_eq!(via.transport, scan::Transport::Udp);
        assert_eq!(via.sent_by_host, b"198.51.100.1");
        assert_eq!(via.sent_by_port, Some(5060));
        let branch = via.branch.unwrap();
        assert!(branch.starts_with(b"z9hG4bK") && branch.len() > 7 + 8);
        assert_eq!(via.rport, Rport::Empty);
        assert_eq!(message.max_forwards(), Ok(Some(70)));
        let from = message.from().unwrap();
        assert_eq!(from.uri, b"sip:trunkd@198.51.100.1:5060");
        assert!(from.tag.is_some_and(|tag| !tag.is_empty()));
        let to = message.to().unwrap();
        assert_eq!(to.uri, b"sip:carrier.example.net");
        assert_eq!(to.tag, None, "no To tag outside a dialog");
        assert_ne!(from.uri, to.uri);
        let call_id = message.call_id().unwrap();
        assert_eq!(Some(call_id), h.keepalive.call_id().map(str::as_bytes));
        let cseq = message.cseq().unwrap();
        assert_eq!((cseq.sequence, cseq.method), (1, Method::Options));
        assert_eq!(
            message.header(HeaderName::Accept),
            Some(&b"application/sdp"[..])
        );
        assert_eq!(
            message.header(HeaderName::UserAgent),
            Some(&b"trunkd-test"[..])
        );
        assert_eq!(message.header(HeaderName::Contact), None);
        assert_eq!(message.content_length(), Some(0));
        assert!(message.body().is_empty());
        assert_eq!(message.message_len(), request.len());
    }

    #[test]
    fn over_tls_the_via_says_so_and_the_server_name_travels_along() {
        let mut tls = params();
        tls.transport = Transport::Tls;
        tls.request_uri = "sip:carrier.example.net:5061".into();
        let mut keepalive = Keepalive::new(tls, TimerValues::default(), 1, epoch());
        let at = keepalive.poll_timeout().unwrap();
        keepalive.handle_timeout(at);
        let transmit = keepalive.poll_transmit().unwrap();
        assert_eq!(transmit.transport, Transport::Tls);
        assert_eq!(transmit.server_name, "carrier.example.net");
        let text = String::from_utf8(transmit.bytes).unwrap();
        assert!(text.starts_with("OPTIONS sip:carrier.example.net:5061 SIP/2.0\r\n"));
        assert!(header(&text, "Via").unwrap().starts_with("SIP/2.0/TLS "));
    }

    #[test]
    fn every_ping_is_a_new_request_with_the_cseq_counting_up() {
        let mut h = Harness::new(params());
        let first = h.ping();
        h.answer(ms(20), 200);
        let second = h.ping();
        assert_ne!(header(&first, "Call-ID"), header(&second, "Call-ID"));
        assert_ne!(from_tag(&first), from_tag(&second));
        assert_ne!(branch(&first), branch(&second));
        assert!(branch(&second).starts_with("z9hG4bK"));
        assert_eq!((cseq(&first), cseq(&second)), (1, 2));
        assert_eq!(header(&second, "CSeq"), Some("2 OPTIONS"));
    }

    #[test]
    fn the_default_from_differs_from_the_to() {
        let p = params();
        assert!(!same_uri(&p.from_uri, &p.to_uri));
        assert!(same_uri(
            "<SIP:Carrier.example.net>",
            "sip:carrier.example.net"
        ));
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "From must differ from To")]
    fn from_equal_to_to_is_caught_in_debug_builds() {
        let mut p = params();
        p.from_uri = p.to_uri.clone();
        let _ = Keepalive::new(p, TimerValues::default(), 1, epoch());
    }

    #[test]
    fn first_pings_of_many_trunks_spread_over_the_interval() {
        let t0 = epoch();
        let delays: Vec<Duration> = (0..2000)
            .map(|seed| {
                let keepalive = Keepalive::new(params(), TimerValues::default(), seed, t0);
                assert_eq!(keepalive.poll_timeout(), Some(keepalive.next_ping_at()));
                keepalive.next_ping_at() - t0
            })
            .collect();
        assert!(delays.iter().all(|delay| *delay < INTERVAL));
        let earliest = delays.iter().min().unwrap();
        let latest = delays.iter().max().unwrap();
        assert!(*earliest < Duration::from_secs(1), "{earliest:?}");
        assert!(*latest > Duration::from_secs(29), "{latest:?}");
        // Roughly uniform: about a tenth in each tenth of the interval.
        for tenth in 0..10 {
            let lo = INTERVAL * tenth / 10;
            let hi = INTERVAL * (tenth + 1) / 10;
            let count = delays.iter().filter(|d| **d >= lo && **d < hi).count();
            assert!((120..=280).contains(&count), "tenth {tenth}: {count}");
        }
        // Nothing is sent before the first ping is due.
        let mut keepalive = Keepalive::new(params(), TimerValues::default(), 7, t0);
        let due = keepalive.next_ping_at();
        keepalive.handle_timeout(due - Duration::from_nanos(1));
        assert!(keepalive.poll_transmit().is_none());
        keepalive.handle_timeout(due);
        assert!(keepalive.poll_transmit().is_some());
    }

    #[test]
    fn intervals_are_jittered_within_ten_percent() {
        let mut h = Harness::with_seed(params(), 1234);
        h.ping();
        let mut previous = h.sent_at;
        let mut gaps = Vec::new();
        for _ in 0..1000 {
            h.answer(ms(20), 200);
            h.ping();
            gaps.push(h.sent_at - previous);
            previous = h.sent_at;
        }
        let (lo, hi) = (Duration::from_secs(27), Duration::from_secs(33));
        assert!(gaps.iter().all(|gap| *gap >= lo && *gap <= hi));
        assert!(*gaps.iter().min().unwrap() < Duration::from_millis(27_200));
        assert!(*gaps.iter().max().unwrap() > Duration::from_millis(32_800));
        let mean = gaps.iter().sum::<Duration>() / 1000;
        assert!(
            mean.abs_diff(INTERVAL) < Duration::from_millis(300),
            "{mean:?}"
        );
    }

    #[test]
    fn unknown_becomes_up_on_the_first_200() {
        let mut h = Harness::new(params());
        assert_eq!(h.keepalive.state(), State::Unknown);
        assert!(!h.keepalive.ever_answered());
        h.ping();
        h.answer(ms(35), 200);
        assert_eq!(h.keepalive.state(), State::Up);
        assert_eq!(
            h.events(),
            [Event::StateChanged {
                state: State::Up,
                code: Some(200),
                reason: "200 OK".into()
            }]
        );
        assert!(h.keepalive.ever_answered());
        assert_eq!(h.keepalive.last_code(), Some(200));
        h.answered(200);
        assert!(h.events().is_empty(), "up → up is not news");
    }

    #[test]
    fn up_goes_down_after_exactly_three_failures() {
        let mut h = Harness::new(params());
        h.answered(200);
        h.events();
        h.answered(503);
        assert_eq!(h.keepalive.consecutive_failures(), 1);
        h.unanswered();
        assert_eq!(h.keepalive.consecutive_failures(), 2);
        assert_eq!(h.keepalive.state(), State::Up);
        assert!(h.events().is_empty());
        h.answered(503);
        assert_eq!(h.keepalive.consecutive_failures(), 3);
        assert_eq!(h.keepalive.state(), State::Down);
        assert_eq!(
            h.events(),
            [Event::StateChanged {
                state: State::Down,
                code: Some(503),
                reason: "503 Service Unavailable".into()
            }]
        );
        h.unanswered();
        assert!(h.events().is_empty(), "down → down is not news");
        assert_eq!(h.keepalive.consecutive_failures(), 4);
    }

    #[test]
    fn a_single_success_resets_the_failure_count() {
        let mut h = Harness::new(params());
        h.answered(200);
        h.unanswered();
        h.unanswered();
        h.answered(200);
        assert_eq!(h.keepalive.consecutive_failures(), 0);
        h.unanswered();
        h.unanswered();
        assert_eq!(h.keepalive.state(), State::Up);
        h.unanswered();
        assert_eq!(h.keepalive.state(), State::Down);
        assert_eq!(h.states(), [State::Up, State::Down]);
    }

    #[test]
    fn down_comes_back_up_after_two_successes_and_not_one() {
        let mut h = Harness::new(params());
        for _ in 0..3 {
            h.answered(408);
        }
        assert_eq!(h.keepalive.state(), State::Down);
        h.answered(200);
        assert_eq!(
            h.keepalive.state(),
            State::Down,
            "one success is not enough"
        );
        h.answered(503);
        h.answered(200);
        assert_eq!(h.keepalive.state(), State::Down, "the run restarted");
        h.answered(200);
        assert_eq!(h.keepalive.state(), State::Up);
        assert_eq!(h.states(), [State::Down, State::Up]);
    }

    #[test]
    fn unknown_goes_down_after_three_failures_not_sooner() {
        let mut h = Harness::new(params());
        h.unanswered();
        h.unanswered();
        assert_eq!(h.keepalive.state(), State::Unknown);
        h.unanswered();
        assert_eq!(h.keepalive.state(), State::Down);
        assert_eq!(
            h.events(),
            [Event::StateChanged {
                state: State::Down,
                code: None,
                reason: "timeout".into()
            }]
        );
        assert!(!h.keepalive.ever_answered());
        assert_eq!(h.keepalive.last_code(), None);
    }

    #[test]
    fn failure_codes_fail_and_every_other_final_response_succeeds() {
        for code in [408, 503] {
            let mut h = Harness::new(params());
            h.answered(code);
            assert_eq!(h.keepalive.consecutive_failures(), 1, "{code}");
            assert_eq!(h.keepalive.state(), State::Unknown);
            assert_eq!(h.keepalive.last_code(), Some(code));
            assert!(h.keepalive.ever_answered(), "an answer, if a failing one");
        }
        for code in [200, 202, 404, 486, 500, 603] {
            let mut h = Harness::new(params());
            h.answered(code);
            assert_eq!(h.keepalive.state(), State::Up, "{code}");
            assert_eq!(h.keepalive.consecutive_failures(), 0);
        }
        // The list is the operator's.
        let mut strict = params();
        strict.failure_codes = vec![500].into();
        let mut h = Harness::new(strict);
        h.answered(503);
        assert_eq!(h.keepalive.state(), State::Up);
        h.answered(500);
        assert_eq!(h.keepalive.consecutive_failures(), 1);
    }

    #[test]
    fn provisional_responses_neither_decide_nor_measure() {
        let mut h = Harness::new(params());
        h.ping();
        h.answer(ms(10), 100);
        assert!(h.keepalive.is_in_flight());
        assert_eq!(h.keepalive.rtt_last(), None);
        assert_eq!(h.keepalive.state(), State::Unknown);
        h.answer(ms(30), 200);
        assert_eq!(h.keepalive.rtt_last(), Some(ms(30)));
    }

    #[test]
    fn no_answer_retransmits_then_fails_at_timer_f() {
        let mut h = Harness::new(params());
        let request = h.ping();
        let sent_at = h.sent_at;
        let retransmissions = h.time_out();
        assert_eq!(h.now - sent_at, TIMER_F, "64·T1");
        assert_eq!(retransmissions, 10);
        assert_eq!(h.keepalive.consecutive_failures(), 1);
        assert_eq!(h.keepalive.rtt_last(), None);
        // The next ping keeps its schedule: 27..33 s after the first.
        let next = h.ping();
        assert_ne!(next, request);
        let gap = h.sent_at - sent_at;
        assert!(gap >= Duration::from_secs(27) && gap <= Duration::from_secs(33));
        assert!(gap >= TIMER_F, "one ping at a time");
    }

    #[test]
    fn over_tcp_nothing_is_retransmitted_and_timer_f_still_applies() {
        let mut tcp = params();
        tcp.transport = Transport::Tcp;
        let mut h = Harness::new(tcp);
        h.ping();
        let sent_at = h.sent_at;
        assert_eq!(h.time_out(), 0);
        assert_eq!(h.now - sent_at, TIMER_F);
        assert_eq!(h.keepalive.consecutive_failures(), 1);
    }

    #[test]
    fn a_ping_due_during_a_slow_one_goes_out_when_it_ends() {
        let mut short = params();
        short.interval = Duration::from_secs(10);
        let mut h = Harness::new(short);
        h.ping();
        let sent_at = h.sent_at;
        assert!(h.keepalive.next_ping_at() < sent_at + TIMER_F);
        h.time_out();
        // The next ping was overdue: it left in the same call that ran Timer F.
        assert!(h.fresh);
        assert_eq!(h.sent_at - sent_at, TIMER_F);
        // Answered late, after the following ping was due: poll_timeout says "now".
        h.ping();
        h.answer(Duration::from_secs(12), 200);
        let due = h.keepalive.poll_timeout().unwrap();
        assert!(due < h.now);
        h.keepalive.handle_timeout(h.now);
        h.collect();
        assert!(h.fresh);
    }

    #[test]
    fn a_transport_error_is_a_failure() {
        let mut h = Harness::new(params());
        h.answered(200);
        for round in 0..3 {
            h.ping();
            h.keepalive
                .handle_transport_error(h.now, "connection refused");
            assert!(!h.keepalive.is_in_flight(), "round {round}");
        }
        assert_eq!(h.keepalive.state(), State::Down);
        let events = h.events();
        assert_eq!(
            events.last(),
            Some(&Event::StateChanged {
                state: State::Down,
                code: None,
                reason: "transport error: connection refused".into()
            })
        );
        // With nothing in flight there is nothing to fail.
        h.keepalive.handle_transport_error(h.now, "late");
        assert_eq!(h.keepalive.consecutive_failures(), 3);
    }

    #[test]
    fn responses_from_elsewhere_or_for_another_transaction_are_ignored() {
        let mut h = Harness::new(params());
        let request = h.ping();
        let t = h.sent_at + ms(20);
        let foreign: SocketAddr = "203.0.113.66:5060".parse().unwrap();
        h.keepalive
            .handle_response(t, &response(&request, 200, foreign));
        let mut wrong_branch = response(&request, 200, HOP.parse().unwrap());
        wrong_branch.branch = "z9hG4bKsomethingelse";
        h.keepalive.handle_response(t, &wrong_branch);
        let mut wrong_cseq = response(&request, 200, HOP.parse().unwrap());
        wrong_cseq.cseq += 1;
        h.keepalive.handle_response(t, &wrong_cseq);
        // Same address, another port: another sender.
        h.keepalive.handle_response(
            t,
            &response(&request, 200, "192.0.2.20:5080".parse().unwrap()),
        );
        assert!(h.keepalive.is_in_flight());
        assert_eq!(h.keepalive.state(), State::Unknown);
        assert!(!h.keepalive.ever_answered());
        assert_eq!(
            h.events(),
            [
                Event::ForeignResponse {
                    source: foreign,
                    code: 200
                },
                Event::ForeignResponse {
                    source: "192.0.2.20:5080".parse().unwrap(),
                    code: 200
                },
            ]
        );
        // The real answer still counts; a retransmitted copy of it does not count twice.
        h.answer(ms(30), 200);
        assert_eq!(h.keepalive.state(), State::Up);
        h.answer(ms(40), 200);
        assert_eq!(h.keepalive.consecutive_successes(), 1);
        assert_eq!(h.keepalive.rtt_last(), Some(ms(30)));
    }

    #[test]
    fn rtt_is_exact_and_smoothed_per_rfc_6298() {
        let mut h = Harness::new(params());
        assert_eq!(h.keepalive.rtt_smoothed(), None);
        h.ping();
        h.answer(ms(80), 200);
        assert_eq!(h.keepalive.rtt_last(), Some(ms(80)));
        assert_eq!(h.keepalive.rtt_smoothed(), Some(ms(80)), "first sample");
        h.ping();
        h.answer(ms(160), 200);
        assert_eq!(h.keepalive.rtt_last(), Some(ms(160)));
        // 7/8·80 + 1/8·160 = 90 ms.
        assert_eq!(h.keepalive.rtt_smoothed(), Some(ms(90)));
        h.ping();
        h.answer(ms(40), 503);
        // A failure code is still a round trip: 7/8·90 + 1/8·40 = 83.75 ms.
        assert_eq!(h.keepalive.rtt_last(), Some(ms(40)));
        assert_eq!(
            h.keepalive.rtt_smoothed(),
            Some(Duration::from_micros(83_750))
        );
        assert!(!h.keepalive.rtt_last_retransmitted());
        // A timeout has no sample: both stay.
        h.unanswered();
        assert_eq!(h.keepalive.rtt_last(), Some(ms(40)));
        assert_eq!(
            h.keepalive.rtt_smoothed(),
            Some(Duration::from_micros(83_750))
        );
    }

    #[test]
    fn a_retransmitted_ping_is_measured_from_the_first_send_and_kept_out_of_srtt() {
        let mut h = Harness::new(params());
        h.ping();
        h.answer(ms(100), 200);
        h.ping();
        // Timer E fires at 500 ms: one retransmission.
        h.step();
        assert_eq!(h.retransmissions, 1);
        assert_eq!(h.now - h.sent_at, ms(500));
        h.answer(ms(700), 200);
        assert_eq!(h.keepalive.rtt_last(), Some(ms(700)));
        assert!(h.keepalive.rtt_last_retransmitted());
        assert_eq!(h.keepalive.rtt_smoothed(), Some(ms(100)), "Karn's rule");
        h.ping();
        h.answer(ms(20), 200);
        assert!(!h.keepalive.rtt_last_retransmitted());
        // 7/8·100 + 1/8·20 = 90 ms.
        assert_eq!(h.keepalive.rtt_smoothed(), Some(ms(90)));
    }

    #[test]
    fn move_to_sends_the_next_ping_elsewhere_and_lets_the_current_one_finish() {
        let mut h = Harness::new(params());
        h.ping();
        h.step(); // a retransmission
        let other: SocketAddr = OTHER_HOP.parse().unwrap();
        h.keepalive.move_to(other);
        assert_eq!(h.keepalive.next_hop(), other);
        // The ping in flight still retransmits to where it went, and only there answers.
        h.step();
        assert_eq!(h.retransmissions, 2);
        assert_eq!(h.destination, Some(HOP.parse().unwrap()));
        h.answer_from(ms(1600), 200, other);
        assert!(
            h.keepalive.is_in_flight(),
            "the new hop did not get this ping"
        );
        h.answer_from(ms(1700), 200, HOP.parse().unwrap());
        assert!(!h.keepalive.is_in_flight());
        h.events();
        // The next ping goes to the new hop, which alone may answer it.
        h.ping();
        assert_eq!(h.destination, Some(other));
        h.answer_from(ms(20), 503, HOP.parse().unwrap());
        assert!(h.keepalive.is_in_flight());
        h.answer(ms(25), 200);
        assert_eq!(h.keepalive.rtt_last(), Some(ms(25)));
        assert!(h.events().iter().any(|event| *event
            == Event::ForeignResponse {
                source: HOP.parse().unwrap(),
                code: 503
            }));
    }

    /// What the next `handle_timeout` may change, to compare before and after.
    fn snapshot(keepalive: &Keepalive) -> (Option<Instant>, Option<String>, u32, State) {
        (
            keepalive.poll_timeout(),
            keepalive.call_id().map(str::to_owned),
            keepalive.consecutive_failures(),
            keepalive.state(),
        )
    }

    #[test]
    fn poll_timeout_is_exactly_when_handle_timeout_acts() {
        let mut h = Harness::with_seed(params(), 9);
        for round in 0..40 {
            // Step to the next deadline, checking that a nanosecond earlier nothing
            // happens and at the deadline something does.
            let steps = if round % 3 == 0 { 14 } else { 2 };
            for _ in 0..steps {
                h.events();
                let at = h.keepalive.poll_timeout().unwrap();
                let before = snapshot(&h.keepalive);
                h.keepalive.handle_timeout(at - Duration::from_nanos(1));
                assert_eq!(snapshot(&h.keepalive), before, "round {round}: acted early");
                assert!(h.keepalive.poll_transmit().is_none());
                assert!(h.keepalive.poll_event().is_none());
                h.now = at;
                h.keepalive.handle_timeout(at);
                let acted = !h.keepalive.transmits.is_empty() || snapshot(&h.keepalive) != before;
                assert!(acted, "round {round}: woken for nothing");
                h.collect();
                h.fresh = false;
            }
            if h.keepalive.is_in_flight() && round % 2 == 0 {
                h.answer(h.now - h.sent_at + ms(15), 200);
            }
        }
    }

    /// The hysteresis rules restated over the whole history of outcomes (true = success).
    fn expected_state(previous: State, history: &[bool], up_after: u32, down_after: u32) -> State {
        let tail = |n: u32, value: bool| {
            let n = n.max(1) as usize;
            history.len() >= n && history[history.len() - n..].iter().all(|&o| o == value)
        };
        let last = *history.last().unwrap();
        match previous {
            State::Unknown if last => State::Up,
            State::Unknown | State::Up if tail(down_after, false) => State::Down,
            State::Down if tail(up_after, true) => State::Up,
            unchanged => unchanged,
        }
    }

    /// Runs one ping to the given outcome; returns whether it counts as a success.
    fn run_ping(h: &mut Harness, outcome: u8) -> bool {
        h.ping();
        match outcome {
            0 => h.answer(ms(10), 200),
            1 => h.answer(ms(10), 486),
            2 => h.answer(ms(10), 503),
            3 => h.answer(ms(10), 408),
            4 => {
                h.time_out();
            }
            _ => h.keepalive.handle_transport_error(h.now, "unreachable"),
        }
        outcome < 2
    }

    proptest::proptest! {
        /// Under any sequence of outcomes (answers with success and failure codes,
        /// timeouts, transport errors) and any thresholds, the state changes exactly as
        /// the hysteresis rules say, with one event per change and none otherwise.
        #[test]
        fn state_follows_the_hysteresis_rules(
            outcomes in proptest::collection::vec(0u8..6, 1..60),
            up_after in 0u32..5,
            down_after in 0u32..5,
            seed in proptest::prelude::any::<u64>(),
        ) {
            let mut p = params();
            p.up_after = up_after;
            p.down_after = down_after;
            let mut h = Harness::with_seed(p, seed);
            let mut history = Vec::new();
            let mut state = State::Unknown;
            for outcome in outcomes {
                history.push(run_ping(&mut h, outcome));
                let expected = expected_state(state, &history, up_after, down_after);
                proptest::prop_assert_eq!(h.keepalive.state(), expected);
                let changes = h.states();
                if expected == state {
                    proptest::prop_assert!(changes.is_empty(), "{:?}", changes);
                } else {
                    proptest::prop_assert_eq!(changes, vec![expected]);
                }
                let failures = history.iter().rev().take_while(|&&o| !o).count();
                proptest::prop_assert_eq!(h.keepalive.consecutive_failures() as usize, failures);
                state = expected;
            }
        }
    }

    #[test]
    fn options_timeout_fails_a_ping_long_before_timer_f() {
        let timeout = Duration::from_secs(3);
        let interval = Duration::from_secs(1);
        let mut h = Harness::new(Params {
            timeout,
            interval,
            ..params()
        });
        let first = h.ping();
        let start = h.sent_at;
        // Retransmitted until the timeout (T1 = 500 ms: at 0.5, 1.5 s), then failed.
        let retransmitted = h.time_out();
        assert_eq!(
            h.now - start,
            timeout,
            "failed at options_timeout, not Timer F"
        );
        assert_eq!(retransmitted, 2);
        assert_ne!(h.ping(), first);
        h.time_out();
        h.ping();
        h.time_out();
        assert_eq!(h.states(), [State::Down]);
        // The bound the issue gives: down_after × (interval + timeout) (+10 % jitter).
        let bound = (interval + interval / 10 + timeout) * 3;
        assert!(h.now - start <= bound, "{:?}", h.now - start);
        // A late answer to a ping given up on changes nothing.
        h.answer(Duration::from_secs(4), 200);
        assert!(h.states().is_empty());
    }
}
