//! The non-INVITE client transaction of RFC 3261 §17.1.2, sans IO.
//!
//! It decides *when* a request is retransmitted, when the transaction times out, and which
//! responses reach the transaction user (the registration or keepalive machine); it never
//! sends bytes or reads the clock. Feed it `now` and events; ask it for the next deadline.
//! [`ClientRequest`] is what the registration and keepalive machines hold while a request
//! of theirs is under way: the transaction, what a response must carry to answer it
//! ([`ResponseView`]: branch and CSeq) and the bytes to send again.
//!
//! ```text
//!              request sent
//!                   │  Timer F = 64·T1; Timer E = T1 (unreliable transports only)
//!                   ▼
//!   E: retransmit ┌──────────┐ 1xx ┌────────────┐ E: retransmit, E = T2
//!   E = min(2E,T2)│  Trying  ├────►│ Proceeding │ 1xx: to TU
//!                 └────┬─────┘     └─────┬──────┘
//!        200-699: to TU│    F or transport error: timeout to TU → Terminated
//!                      ▼                 │ 200-699: to TU
//!                 ┌───────────┐◄─────────┘
//!                 │ Completed │ responses absorbed; Timer K = T4 (0 if reliable)
//!                 └────┬──────┘
//!                      ▼ K
//!                 Terminated
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// RFC 3261 §17.1.1.1 / Table 4 timer base values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerValues {
    /// RTT estimate; default 500 ms.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests; default 4 s.
    pub t2: Duration,
    /// Maximum time a message stays in the network; default 5 s.
    pub t4: Duration,
}

impl Default for TimerValues {
    fn default() -> Self {
        TimerValues {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

/// What the transaction asks of its owner after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Send the request again, byte for byte.
    Retransmit,
    /// Hand this response to the transaction user.
    Deliver(u16),
    /// No final response in time (Timer F): the TU treats it as a 408 (§8.1.3.1).
    TimedOut,
    /// The transport failed: the TU treats it as a 503 (§8.1.3.1).
    TransportFailed,
    /// Nothing to do (a retransmitted response absorbed, a timer not yet due).
    Nothing,
}

#[derive(Debug, Clone)]
pub(crate) struct NonInviteClient {
    state: State,
    timers: TimerValues,
    /// UDP retransmits; TCP/TLS rely on the transport (§17.1.2.2).
    reliable: bool,
    /// Timer E: the next retransmission, and the interval it was armed with.
    retransmit_at: Option<Instant>,
    retransmit_interval: Duration,
    /// Timer F, in Trying and Proceeding.
    timeout_at: Instant,
    /// Timer K, in Completed.
    linger_until: Option<Instant>,
    retransmissions: u32,
}

impl NonInviteClient {
    /// Starts the transaction for a request just handed to the transport at `now`.
    pub(crate) fn new(now: Instant, timers: TimerValues, reliable: bool) -> Self {
        NonInviteClient {
            state: State::Trying,
            timers,
            reliable,
            retransmit_at: (!reliable).then(|| now + timers.t1),
            retransmit_interval: timers.t1,
            timeout_at: now + 64 * timers.t1,
            linger_until: None,
            retransmissions: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn state(&self) -> State {
        self.state
    }

    /// How many times the request was sent again.
    pub(crate) fn retransmissions(&self) -> u32 {
        self.retransmissions
    }

    /// A response matched to this transaction (§17.1.3) arrived.
    pub(crate) fn handle_response(&mut self, now: Instant, code: u16) -> Action {
        match (self.state, code) {
            (State::Trying | State::Proceeding, 100..=199) => {
                self.state = State::Proceeding;
                Action::Deliver(code)
            }
            (State::Trying | State::Proceeding, 200..=699) => {
                self.complete(now);
                Action::Deliver(code)
            }
            // Retransmissions of the final response, or anything after the end.
            _ => Action::Nothing,
        }
    }

    /// The transport reported a failure sending the request.
    pub(crate) fn handle_transport_error(&mut self) -> Action {
        match self.state {
            State::Trying | State::Proceeding => {
                self.terminate();
                Action::TransportFailed
            }
            State::Completed | State::Terminated => Action::Nothing,
        }
    }

    /// Runs whichever timer is due at `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Action {
        match self.state {
            State::Trying | State::Proceeding if now >= self.timeout_at => {
                // Timer F (§17.1.2.2).
                self.terminate();
                Action::TimedOut
            }
            State::Trying | State::Proceeding => match self.retransmit_at {
                Some(at) if now >= at => {
                    // Timer E: doubling up to T2 in Trying, T2 flat in Proceeding.
                    self.retransmit_interval = match self.state {
                        State::Trying => (self.retransmit_interval * 2).min(self.timers.t2),
                        _ => self.timers.t2,
                    };
                    self.retransmit_at = Some(now + self.retransmit_interval);
                    self.retransmissions += 1;
                    Action::Retransmit
                }
                _ => Action::Nothing,
            },
            State::Completed if self.linger_until.is_some_and(|until| now >= until) => {
                // Timer K.
                self.terminate();
                Action::Nothing
            }
            State::Completed | State::Terminated => Action::Nothing,
        }
    }

    /// The earliest instant at which `handle_timeout` has something to do.
    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Trying | State::Proceeding => Some(
                self.retransmit_at
                    .map_or(self.timeout_at, |at| at.min(self.timeout_at)),
            ),
            State::Completed => self.linger_until,
            State::Terminated => None,
        }
    }

    fn complete(&mut self, now: Instant) {
        self.state = State::Completed;
        self.retransmit_at = None;
        // Timer K absorbs retransmitted responses on unreliable transports.
        let linger = if self.reliable {
            Duration::ZERO
        } else {
            self.timers.t4
        };
        self.linger_until = Some(now + linger);
    }

    fn terminate(&mut self) {
        self.state = State::Terminated;
        self.retransmit_at = None;
        self.linger_until = None;
    }
}

/// The parts of a response that every client transaction of ours matches and reports on.
/// Method-specific parts (a REGISTER's Contact bindings and challenges) travel beside it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseView<'a> {
    /// Where it came from: only the request's next hop may answer.
    pub source: SocketAddr,
    pub code: u16,
    pub reason: &'a str,
    /// Branch of the top Via: which transaction this answers.
    pub branch: &'a str,
    pub cseq: u32,
}

/// What became of a [`ClientRequest`] after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub(crate) enum Outcome {
    /// Nothing for the owner to do: a provisional response, a response to another
    /// transaction or a retransmitted one, a timer not yet due.
    Pending,
    /// Send these bytes again (Timer E).
    Retransmit(Vec<u8>),
    /// The final response (200-699) arrived: the request is answered.
    Answered(u16),
    /// No final response in time (Timer F): the owner treats it as a 408 (§8.1.3.1).
    TimedOut,
    /// The transport failed: the owner treats it as a 503 (§8.1.3.1).
    TransportFailed,
}

/// A request of ours under way: its non-INVITE client transaction, what a response must
/// carry to answer it, and its bytes, sent again byte for byte (§17.1.2.2).
#[derive(Debug)]
pub(crate) struct ClientRequest {
    transaction: NonInviteClient,
    /// Boxed text, not a `String`: 8 bytes less in every request held (see
    /// `registration`'s boxed in-flight request).
    branch: Box<str>,
    cseq: u32,
    bytes: Vec<u8>,
}

impl ClientRequest {
    /// Starts the transaction of a request whose `bytes` were just handed to the
    /// transport at `now`, its top Via carrying `branch` and its CSeq `cseq`.
    pub(crate) fn new(
        now: Instant,
        timers: TimerValues,
        reliable: bool,
        branch: String,
        cseq: u32,
        bytes: Vec<u8>,
    ) -> Self {
        ClientRequest {
            transaction: NonInviteClient::new(now, timers, reliable),
            branch: branch.into_boxed_str(),
            cseq,
            bytes,
        }
    }

    /// How many times the request was sent again.
    pub(crate) fn retransmissions(&self) -> u32 {
        self.transaction.retransmissions()
    }

    /// When [`ClientRequest::handle_timeout`] has something to do.
    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.transaction.poll_timeout()
    }

    /// A response from the request's next hop (the owner checks the source). It answers
    /// this request only if it carries the request's branch and CSeq (§17.1.3);
    /// provisional responses change the timers but decide nothing.
    pub(crate) fn handle_response(&mut self, now: Instant, response: &ResponseView<'_>) -> Outcome {
        if *self.branch != *response.branch || self.cseq != response.cseq {
            return Outcome::Pending;
        }
        match self.transaction.handle_response(now, response.code) {
            Action::Deliver(code) if code >= 200 => Outcome::Answered(code),
            _ => Outcome::Pending,
        }
    }

    /// Runs whichever timer is due at `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Outcome {
        match self.transaction.handle_timeout(now) {
            Action::Retransmit => Outcome::Retransmit(self.bytes.clone()),
            Action::TimedOut => Outcome::TimedOut,
            _ => Outcome::Pending,
        }
    }

    /// The transport reported a failure sending the request.
    pub(crate) fn handle_transport_error(&mut self) -> Outcome {
        match self.transaction.handle_transport_error() {
            Action::TransportFailed => Outcome::TransportFailed,
            _ => Outcome::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)]
    fn epoch() -> Instant {
        Instant::now()
    }

    /// Drives the transaction with no response at all; returns the retransmission times
    /// (relative to the start) and when it timed out.
    fn run_unanswered(transaction: &mut NonInviteClient, t0: Instant) -> (Vec<Duration>, Duration) {
        let mut retransmits = Vec::new();
        while let Some(at) = transaction.poll_timeout() {
            match transaction.handle_timeout(at) {
                Action::Retransmit => retransmits.push(at - t0),
                Action::TimedOut => return (retransmits, at - t0),
                other => panic!("unexpected {other:?}"),
            }
        }
        panic!("never timed out");
    }

    #[test]
    fn udp_retransmits_double_up_to_t2_then_times_out_at_64_t1() {
        let t0 = epoch();
        let mut transaction = NonInviteClient::new(t0, TimerValues::default(), false);
        let (retransmits, timeout) = run_unanswered(&mut transaction, t0);
        let millis: Vec<u128> = retransmits.iter().map(Duration::as_millis).collect();
        // E = 0.5, 1, 2, 4, 4, 4 ... s after each send (§17.1.2.2, Figure 6).
        assert_eq!(
            millis,
            [
                500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
            ]
        );
        assert_eq!(timeout, Duration::from_secs(32));
        assert_eq!(transaction.state(), State::Terminated);
        assert_eq!(transaction.retransmissions(), 10);
        assert_eq!(transaction.poll_timeout(), None);
    }

    #[test]
    fn reliable_transports_never_retransmit() {
        let t0 = epoch();
        let mut transaction = NonInviteClient::new(t0, TimerValues::default(), true);
        let (retransmits, timeout) = run_unanswered(&mut transaction, t0);
        assert!(retransmits.is_empty());
        assert_eq!(timeout, Duration::from_secs(32));
    }

    #[test]
    fn provisional_response_switches_to_t2_interval() {
        let t0 = epoch();
        let mut transaction = NonInviteClient::new(t0, TimerValues::default(), false);
        assert_eq!(
            transaction.handle_timeout(t0 + Duration::from_millis(500)),
            Action::Retransmit
        );
        let t = t0 + Duration::from_millis(600);
        assert_eq!(transaction.handle_response(t, 100), Action::Deliver(100));
        assert_eq!(transaction.state(), State::Proceeding);
        // The Timer E armed in Trying (1 s after the first retransmission) still fires,
        // and re-arms with T2 from then on.
        let first = transaction.poll_timeout().unwrap();
        assert_eq!(first - t0, Duration::from_millis(1500));
        assert_eq!(transaction.handle_timeout(first), Action::Retransmit);
        assert_eq!(
            transaction.poll_timeout().unwrap() - first,
            Duration::from_secs(4)
        );
    }

    #[test]
    fn final_response_is_delivered_once_and_retransmissions_absorbed_until_timer_k() {
        let t0 = epoch();
        let mut transaction = NonInviteClient::new(t0, TimerValues::default(), false);
        let t = t0 + Duration::from_millis(80);
        assert_eq!(transaction.handle_response(t, 401), Action::Deliver(401));
        assert_eq!(transaction.state(), State::Completed);
        assert_eq!(
            transaction.handle_response(t, 401),
            Action::Nothing,
            "absorbed"
        );
        assert_eq!(
            transaction.handle_response(t, 180),
            Action::Nothing,
            "late 1xx"
        );
        assert_eq!(transaction.poll_timeout(), Some(t + Duration::from_secs(5)));
        assert_eq!(
            transaction.handle_timeout(t + Duration::from_secs(4)),
            Action::Nothing
        );
        assert_eq!(transaction.state(), State::Completed);
        transaction.handle_timeout(t + Duration::from_secs(5));
        assert_eq!(transaction.state(), State::Terminated);
    }

    #[test]
    fn reliable_completion_terminates_at_once() {
        let t0 = epoch();
        let mut transaction = NonInviteClient::new(t0, TimerValues::default(), true);
        assert_eq!(transaction.handle_response(t0, 200), Action::Deliver(200));
        assert_eq!(transaction.poll_timeout(), Some(t0));
        transaction.handle_timeout(t0);
        assert_eq!(transaction.state(), State::Terminated);
    }

    #[test]
    fn transport_error_terminates_with_failure_once() {
        let t0 = epoch();
        let mut transaction = NonInviteClient::new(t0, TimerValues::default(), true);
        assert_eq!(
            transaction.handle_transport_error(),
            Action::TransportFailed
        );
        assert_eq!(transaction.handle_transport_error(), Action::Nothing);
        assert_eq!(transaction.poll_timeout(), None);
    }

    #[test]
    fn configured_timer_values_scale_everything() {
        let t0 = epoch();
        let timers = TimerValues {
            t1: Duration::from_millis(100),
            t2: Duration::from_millis(400),
            t4: Duration::from_secs(1),
        };
        let mut transaction = NonInviteClient::new(t0, timers, false);
        let (retransmits, timeout) = run_unanswered(&mut transaction, t0);
        assert_eq!(timeout, Duration::from_millis(6400));
        assert_eq!(
            retransmits[..4],
            [100, 300, 700, 1100].map(Duration::from_millis)
        );
    }

    fn view<'a>(branch: &'a str, cseq: u32, code: u16) -> ResponseView<'a> {
        ResponseView {
            source: "192.0.2.20:5060".parse().unwrap(),
            code,
            reason: "",
            branch,
            cseq,
        }
    }

    fn request(t0: Instant, reliable: bool) -> ClientRequest {
        let bytes = b"OPTIONS sip:a SIP/2.0\r\n\r\n".to_vec();
        ClientRequest::new(
            t0,
            TimerValues::default(),
            reliable,
            "z9hG4bK1".into(),
            7,
            bytes,
        )
    }

    #[test]
    fn a_request_is_answered_only_by_a_final_response_with_its_branch_and_cseq() {
        let t0 = epoch();
        let mut request = request(t0, false);
        assert_eq!(
            request.handle_response(t0, &view("z9hG4bK2", 7, 200)),
            Outcome::Pending
        );
        assert_eq!(
            request.handle_response(t0, &view("z9hG4bK1", 8, 200)),
            Outcome::Pending
        );
        assert_eq!(
            request.handle_response(t0, &view("z9hG4bK1", 7, 100)),
            Outcome::Pending
        );
        assert_eq!(
            request.handle_response(t0, &view("z9hG4bK1", 7, 404)),
            Outcome::Answered(404)
        );
        // A retransmission of the final response is absorbed (§17.1.2.2, Completed).
        assert_eq!(
            request.handle_response(t0, &view("z9hG4bK1", 7, 404)),
            Outcome::Pending
        );
    }

    #[test]
    fn a_request_unanswered_is_sent_again_byte_for_byte_then_times_out() {
        let t0 = epoch();
        let mut request = request(t0, false);
        let first = request.poll_timeout().unwrap();
        assert_eq!(first - t0, Duration::from_millis(500));
        assert_eq!(
            request.handle_timeout(first - Duration::from_nanos(1)),
            Outcome::Pending
        );
        assert_eq!(
            request.handle_timeout(first),
            Outcome::Retransmit(b"OPTIONS sip:a SIP/2.0\r\n\r\n".to_vec())
        );
        assert_eq!(request.retransmissions(), 1);
        assert_eq!(
            request.handle_timeout(t0 + 64 * Duration::from_millis(500)),
            Outcome::TimedOut
        );
        assert_eq!(request.poll_timeout(), None);
    }

    #[test]
    fn a_request_fails_once_on_a_transport_error() {
        let t0 = epoch();
        let mut request = request(t0, true);
        assert_eq!(request.handle_transport_error(), Outcome::TransportFailed);
        assert_eq!(request.handle_transport_error(), Outcome::Pending);
    }
}
