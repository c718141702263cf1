//! The INVITE transactions of RFC 3261 §17.1.1 (client) and §17.2.1 (server), with the
//! Accepted state RFC 6026 adds to both, sans IO.
//!
//! Like [`NonInviteClient`](super::transaction::NonInviteClient) they decide *when* a
//! message is sent again, when a timer gives up, and what reaches the transaction user
//! (the proxy core); they never send bytes or read the clock. Feed them `now` and events;
//! ask them for the next deadline with `poll_timeout` and call `handle_timeout` then.
//! Neither keeps the messages: the owner keeps the bytes of the request (client) or of the
//! latest response (server) and sends them when an action says so.
//!
//! The server transaction, created when an INVITE is admitted. [`InviteServer::new`] hands
//! back [`ServerAction::Send(100)`](ServerAction::Send): the owner sends 100 Trying at once
//! (§17.2.1; a proxy always does, §16.2), and that 100 is the response a retransmitted
//! INVITE gets until the TU sends another.
//!
//! ```text
//!                              INVITE admitted: send 100 Trying
//!                                        │
//!                                        ▼
//!          INVITE: resend latest  ┌────────────┐ 101-199 from TU: send
//!                                 │ Proceeding │ transport error: to TU → Terminated
//!                                 └──┬──────┬──┘
//!      300-699 from TU: send;        │      │ 2xx from TU: send; Timer L = 64·T1
//!      Timer H = 64·T1; Timer G = T1 │      ▼
//!      (unreliable only)             │  ┌──────────┐ INVITE: absorbed
//!                                    │  │ Accepted │ 2xx from TU: send
//!                                    │  └────┬─────┘ ACK: to TU (it acknowledges a 2xx)
//!                                    │     L ▼
//!                                    │   Terminated
//!                                    ▼
//!   G: resend final,           ┌───────────┐ INVITE: resend final
//!      G = min(2G, T2)         │ Completed │ H: AckTimedOut → Terminated
//!                              └─────┬─────┘ transport error: to TU → Terminated
//!                                    │ ACK: Timer I = T4 (0 if reliable)
//!                                    ▼
//!   INVITE, ACK: absorbed      ┌───────────┐
//!                              │ Confirmed │
//!                              └─────┬─────┘
//!                                  I ▼
//!                               Terminated
//! ```
//!
//! In a proxy the 2xx is forwarded statelessly and its retransmission is the UAS's job
//! (RFC 6026 §7.1): Accepted only absorbs retransmitted INVITEs so that they are not taken
//! for new requests, and passes on whatever 2xx the TU still sends.
//!
//! The client transaction, created when an INVITE is handed to the transport.
//!
//! ```text
//!                                 INVITE sent
//!                                      │ Timer B = 64·T1; Timer A = T1 (unreliable
//!                                      ▼ only); Timer C (a proxy's, optional)
//!            A: retransmit,       ┌─────────┐ B, or C before a 1xx: TimedOut → Terminated
//!               A = 2A (no cap)   │ Calling │ transport error: to TU → Terminated
//!                                 └────┬────┘
//!                                      │ 1xx: to TU; stop A and B
//!                                      ▼
//!    1xx: to TU; 101-199 re-arm C ┌────────────┐ C: TimedOutC (CANCEL it), and TimedOut
//!                                 │ Proceeding │    64·T1 later → Terminated
//!                                 └──┬──────┬──┘ transport error: to TU → Terminated
//!      300-699 (from Calling too):   │      │ 2xx (from Calling too): to TU;
//!      to TU and send ACK; Timer D   │      ▼ Timer M = 64·T1
//!                                    │  ┌──────────┐
//!                                    │  │ Accepted │ 2xx: to TU (forks, retransmissions)
//!                                    │  └────┬─────┘
//!                                    │     M ▼
//!                                    │   Terminated
//!                                    ▼
//!   300-699: send ACK again    ┌───────────┐
//!                              │ Completed │ transport error: to TU → Terminated
//!                              └─────┬─────┘
//!                                  D ▼
//!                               Terminated
//! ```
//!
//! Timer D is 32 s on unreliable transports (64·T1 if that is longer: it must outlast the
//! server's Timer H, 64·T1) and 0 on reliable ones. CANCEL is its own non-INVITE transaction;
//! the owner may send it only once the client transaction is in
//! [`Proceeding`](ClientState::Proceeding) (§9.1), which [`InviteClient::state`] tells.

use std::time::{Duration, Instant};

use super::transaction::TimerValues;

/// Timer D's floor on unreliable transports (§17.1.1.2, Table 4).
const TIMER_D_UNRELIABLE: Duration = Duration::from_secs(32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerState {
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
    Terminated,
}

/// What the server transaction asks of its owner after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerAction {
    /// Send this response, just produced by the TU (or the 100 Trying of admission).
    Send(u16),
    /// Send the latest response (of this code) again, byte for byte: Timer G fired or the
    /// INVITE was retransmitted.
    Resend(u16),
    /// An ACK in Accepted: it acknowledges a 2xx and is not part of the transaction
    /// (§17), so the TU routes it like any other request.
    DeliverAck,
    /// Timer H: the ACK to the non-2xx final response never came; a transaction failure
    /// for the TU (§17.2.1).
    AckTimedOut,
    /// The transport failed sending a response: the TU is told (§17.2.4).
    TransportFailed,
    /// Nothing to do (a retransmission absorbed, a timer not yet due, an event the state
    /// does not take).
    Nothing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InviteServer {
    state: ServerState,
    timers: TimerValues,
    /// UDP retransmits the non-2xx final; TCP/TLS rely on the transport (§17.2.1).
    reliable: bool,
    /// The code of the latest response sent: what a retransmitted INVITE gets again.
    latest: u16,
    /// Timer G: the next retransmission of the final response, and its interval.
    retransmit_at: Option<Instant>,
    retransmit_interval: Duration,
    /// Timer H, in Completed.
    ack_deadline: Option<Instant>,
    /// Timer I in Confirmed, Timer L in Accepted.
    linger_until: Option<Instant>,
    retransmissions: u32,
}

impl InviteServer {
    /// Starts the transaction for an INVITE just admitted. The action returned is
    /// `Send(100)`: the owner sends 100 Trying at once.
    pub(crate) fn new(timers: TimerValues, reliable: bool) -> (Self, ServerAction) {
        let transaction = InviteServer {
            state: ServerState::Proceeding,
            timers,
            reliable,
            latest: 100,
            retransmit_at: None,
            retransmit_interval: timers.t1,
            ack_deadline: None,
            linger_until: None,
            retransmissions: 0,
        };
        (transaction, ServerAction::Send(100))
    }

    pub(crate) fn state(&self) -> ServerState {
        self.state
    }

    /// The code of the latest response sent (100 until the TU sends one).
    pub(crate) fn latest_response(&self) -> u16 {
        self.latest
    }

    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "the transport-error side of RFC 3261 §17, tested here; nothing feeds it while calls go to backends over UDP only"
        )
    )]
    /// How many times the latest response was sent again (Timer G and retransmitted
    /// INVITEs).
    pub(crate) fn retransmissions(&self) -> u32 {
        self.retransmissions
    }

    /// The TU sends a provisional response: `Send(code)` in Proceeding for 100-199,
    /// otherwise `Nothing` (no provisional after a final).
    pub(crate) fn send_provisional(&mut self, code: u16) -> ServerAction {
        match (self.state, code) {
            (ServerState::Proceeding, 100..=199) => {
                self.latest = code;
                ServerAction::Send(code)
            }
            _ => ServerAction::Nothing,
        }
    }

    /// The TU sends a final response. From Proceeding a 2xx leads to Accepted and a
    /// 300-699 to Completed; in Accepted a further 2xx is sent too (RFC 6026 §7.1).
    /// Anything else (a second non-2xx, a code outside 200-699) is `Nothing`.
    pub(crate) fn send_final(&mut self, now: Instant, code: u16) -> ServerAction {
        match (self.state, code) {
            (ServerState::Proceeding, 200..=299) => {
                self.clear_timers();
                self.state = ServerState::Accepted;
                self.linger_until = Some(now + 64 * self.timers.t1);
                self.latest = code;
                ServerAction::Send(code)
            }
            (ServerState::Proceeding, 300..=699) => {
                self.clear_timers();
                self.state = ServerState::Completed;
                self.retransmit_interval = self.timers.t1;
                self.retransmit_at = (!self.reliable).then(|| now + self.timers.t1);
                self.ack_deadline = Some(now + 64 * self.timers.t1);
                self.latest = code;
                ServerAction::Send(code)
            }
            (ServerState::Accepted, 200..=299) => {
                self.latest = code;
                ServerAction::Send(code)
            }
            _ => ServerAction::Nothing,
        }
    }

    /// A retransmission of the INVITE arrived: in Proceeding and Completed the latest
    /// response is sent again; in Confirmed and Accepted it is absorbed.
    pub(crate) fn handle_request_retransmission(&mut self) -> ServerAction {
        match self.state {
            ServerState::Proceeding | ServerState::Completed => {
                self.retransmissions += 1;
                ServerAction::Resend(self.latest)
            }
            ServerState::Confirmed | ServerState::Accepted | ServerState::Terminated => {
                ServerAction::Nothing
            }
        }
    }

    /// An ACK matched to this transaction arrived. In Completed it confirms the non-2xx:
    /// Timer G stops and Timer I starts. In Accepted it is the ACK to a 2xx, for the TU.
    pub(crate) fn handle_ack(&mut self, now: Instant) -> ServerAction {
        match self.state {
            ServerState::Completed => {
                self.clear_timers();
                self.state = ServerState::Confirmed;
                // Timer I absorbs retransmitted ACKs on unreliable transports.
                let linger = if self.reliable {
                    Duration::ZERO
                } else {
                    self.timers.t4
                };
                self.linger_until = Some(now + linger);
                ServerAction::Nothing
            }
            ServerState::Accepted => ServerAction::DeliverAck,
            // Retransmitted ACKs in Confirmed; an ACK before any final is no ACK of ours.
            ServerState::Proceeding | ServerState::Confirmed | ServerState::Terminated => {
                ServerAction::Nothing
            }
        }
    }

    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "the transport-error side of RFC 3261 §17, tested here; nothing feeds it while calls go to backends over UDP only"
        )
    )]
    /// The transport reported a failure sending a response. Proceeding and Completed end
    /// and tell the TU; in Accepted the 2xx is the TU's to retransmit, so nothing changes.
    pub(crate) fn handle_transport_error(&mut self) -> ServerAction {
        match self.state {
            ServerState::Proceeding | ServerState::Completed => {
                self.terminate();
                ServerAction::TransportFailed
            }
            ServerState::Confirmed | ServerState::Accepted | ServerState::Terminated => {
                ServerAction::Nothing
            }
        }
    }

    /// Runs whichever timer is due at `now` (Timer H before Timer G if both are).
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> ServerAction {
        match self.state {
            ServerState::Completed if self.ack_deadline.is_some_and(|at| now >= at) => {
                // Timer H (§17.2.1).
                self.terminate();
                ServerAction::AckTimedOut
            }
            ServerState::Completed => match self.retransmit_at {
                Some(at) if now >= at => {
                    // Timer G: doubling up to T2.
                    self.retransmit_interval = (self.retransmit_interval * 2).min(self.timers.t2);
                    self.retransmit_at = Some(now + self.retransmit_interval);
                    self.retransmissions += 1;
                    ServerAction::Resend(self.latest)
                }
                _ => ServerAction::Nothing,
            },
            ServerState::Confirmed | ServerState::Accepted
                if self.linger_until.is_some_and(|until| now >= until) =>
            {
                // Timer I or Timer L.
                self.terminate();
                ServerAction::Nothing
            }
            ServerState::Proceeding
            | ServerState::Confirmed
            | ServerState::Accepted
            | ServerState::Terminated => ServerAction::Nothing,
        }
    }

    /// The earliest instant at which `handle_timeout` has something to do; `None` in
    /// Proceeding (the TU decides when it ends) and Terminated.
    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            ServerState::Completed => earliest(self.retransmit_at, self.ack_deadline),
            ServerState::Confirmed | ServerState::Accepted => self.linger_until,
            ServerState::Proceeding | ServerState::Terminated => None,
        }
    }

    fn clear_timers(&mut self) {
        self.retransmit_at = None;
        self.ack_deadline = None;
        self.linger_until = None;
    }

    fn terminate(&mut self) {
        self.state = ServerState::Terminated;
        self.clear_timers();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientState {
    Calling,
    /// A provisional response arrived: the INVITE may be CANCELled now (§9.1).
    Proceeding,
    Completed,
    Accepted,
    Terminated,
}

/// What the client transaction asks of its owner after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientAction {
    /// Send the INVITE again, byte for byte (Timer A).
    Retransmit,
    /// Hand this response to the TU.
    Deliver(u16),
    /// The first non-2xx final response: hand it to the TU, and build and send the ACK for
    /// it (§17.1.1.3) — on every transport.
    DeliverAndAck(u16),
    /// A retransmitted non-2xx final response: send the same ACK again; the TU does not
    /// see the response.
    SendAck,
    /// No response in time (Timer B, or Timer C before any provisional, or no final
    /// response 64·T1 after Timer C fired): the TU treats it as a 408 (§8.1.3.1, §16.8).
    TimedOut,
    /// Timer C fired after a provisional response: the proxy CANCELs the branch (§16.8).
    /// The transaction stays in Proceeding to take the final response (the 487) and gives
    /// up 64·T1 later (§9.1).
    TimedOutC,
    /// The transport failed: the TU treats it as a 503 (§8.1.3.1).
    TransportFailed,
    /// Nothing to do (a retransmission absorbed, a timer not yet due, a response the state
    /// does not take).
    Nothing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InviteClient {
    state: ClientState,
    timers: TimerValues,
    /// UDP retransmits; TCP/TLS rely on the transport (§17.1.1.2).
    reliable: bool,
    /// Timer A: the next retransmission, and the interval it was armed with.
    retransmit_at: Option<Instant>,
    retransmit_interval: Duration,
    /// Timer B, in Calling.
    timeout_at: Option<Instant>,
    /// Timer C's duration, if the owner (a proxy) runs it, and its deadline while armed.
    timer_c: Option<Duration>,
    timer_c_at: Option<Instant>,
    /// After Timer C fired in Proceeding: when to stop waiting for the final response.
    give_up_at: Option<Instant>,
    /// Timer D in Completed, Timer M in Accepted.
    linger_until: Option<Instant>,
    retransmissions: u32,
}

impl InviteClient {
    /// Starts the transaction for an INVITE just handed to the transport at `now`.
    /// `timer_c` is a proxy's Timer C (§16.6 step 11, more than 3 minutes); a UAC passes
    /// `None` and stays in Proceeding until a final response or its own CANCEL ends it.
    pub(crate) fn new(
        now: Instant,
        timers: TimerValues,
        reliable: bool,
        timer_c: Option<Duration>,
    ) -> Self {
        InviteClient {
            state: ClientState::Calling,
            timers,
            reliable,
            retransmit_at: (!reliable).then(|| now + timers.t1),
            retransmit_interval: timers.t1,
            timeout_at: Some(now + 64 * timers.t1),
            timer_c,
            timer_c_at: timer_c.map(|c| now + c),
            give_up_at: None,
            linger_until: None,
            retransmissions: 0,
        }
    }

    /// A transaction not started: nothing sent, no timer (an outbound INVITE waiting for
    /// its cluster channel). Terminated, so nothing it could hear is taken.
    pub(crate) fn idle(timers: TimerValues, reliable: bool) -> Self {
        InviteClient {
            state: ClientState::Terminated,
            timers,
            reliable,
            retransmit_at: None,
            retransmit_interval: timers.t1,
            timeout_at: None,
            timer_c: None,
            timer_c_at: None,
            give_up_at: None,
            linger_until: None,
            retransmissions: 0,
        }
    }

    /// Calling until a response arrives; Proceeding means a CANCEL may be sent (§9.1).
    pub(crate) fn state(&self) -> ClientState {
        self.state
    }

    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "the transport-error side of RFC 3261 §17, tested here; nothing feeds it while calls go to backends over UDP only"
        )
    )]
    /// How many times the INVITE was sent again.
    pub(crate) fn retransmissions(&self) -> u32 {
        self.retransmissions
    }

    /// A response matched to this transaction (§17.1.3) arrived.
    pub(crate) fn handle_response(&mut self, now: Instant, code: u16) -> ClientAction {
        match (self.state, code) {
            (ClientState::Calling | ClientState::Proceeding, 100..=199) => {
                self.state = ClientState::Proceeding;
                self.retransmit_at = None;
                self.timeout_at = None;
                // §16.7 step 2: anything but 100 resets Timer C, unless it already fired.
                if code != 100 && self.give_up_at.is_none() {
                    self.timer_c_at = self.timer_c.map(|c| now + c);
                }
                ClientAction::Deliver(code)
            }
            (ClientState::Calling | ClientState::Proceeding, 200..=299) => {
                self.clear_timers();
                self.state = ClientState::Accepted;
                self.linger_until = Some(now + 64 * self.timers.t1);
                ClientAction::Deliver(code)
            }
            (ClientState::Calling | ClientState::Proceeding, 300..=699) => {
                self.clear_timers();
                self.state = ClientState::Completed;
                // Timer D absorbs retransmitted finals as long as the server may send them.
                let linger = if self.reliable {
                    Duration::ZERO
                } else {
                    TIMER_D_UNRELIABLE.max(64 * self.timers.t1)
                };
                self.linger_until = Some(now + linger);
                ClientAction::DeliverAndAck(code)
            }
            (ClientState::Completed, 300..=699) => ClientAction::SendAck,
            (ClientState::Accepted, 200..=299) => ClientAction::Deliver(code),
            // Late provisionals, stray codes, anything after the end.
            _ => ClientAction::Nothing,
        }
    }

    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "the transport-error side of RFC 3261 §17, tested here; nothing feeds it while calls go to backends over UDP only"
        )
    )]
    /// The transport reported a failure sending the INVITE (or the ACK, in Completed).
    pub(crate) fn handle_transport_error(&mut self) -> ClientAction {
        match self.state {
            ClientState::Calling | ClientState::Proceeding | ClientState::Completed => {
                self.terminate();
                ClientAction::TransportFailed
            }
            ClientState::Accepted | ClientState::Terminated => ClientAction::Nothing,
        }
    }

    /// Runs whichever timer is due at `now`; a timer that ends the transaction goes
    /// before a retransmission due at the same time.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> ClientAction {
        let due = |at: Option<Instant>| at.is_some_and(|at| now >= at);
        match self.state {
            ClientState::Calling if due(self.timeout_at) || due(self.timer_c_at) => {
                // Timer B (§17.1.1.2), or Timer C with no provisional yet (§16.8).
                self.terminate();
                ClientAction::TimedOut
            }
            ClientState::Calling if due(self.retransmit_at) => {
                // Timer A: doubling, with no T2 cap for INVITE.
                self.retransmit_interval *= 2;
                self.retransmit_at = Some(now + self.retransmit_interval);
                self.retransmissions += 1;
                ClientAction::Retransmit
            }
            ClientState::Proceeding if due(self.give_up_at) => {
                // §9.1: no final response 64·T1 after the CANCEL.
                self.terminate();
                ClientAction::TimedOut
            }
            ClientState::Proceeding if due(self.timer_c_at) => {
                self.timer_c_at = None;
                self.give_up_at = Some(now + 64 * self.timers.t1);
                ClientAction::TimedOutC
            }
            ClientState::Completed | ClientState::Accepted if due(self.linger_until) => {
                // Timer D or Timer M.
                self.terminate();
                ClientAction::Nothing
            }
            _ => ClientAction::Nothing,
        }
    }

    /// The earliest instant at which `handle_timeout` has something to do; `None` when
    /// nothing is armed (Terminated, or Proceeding without Timer C).
    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            ClientState::Calling => earliest(
                earliest(self.retransmit_at, self.timeout_at),
                self.timer_c_at,
            ),
            ClientState::Proceeding => earliest(self.timer_c_at, self.give_up_at),
            ClientState::Completed | ClientState::Accepted => self.linger_until,
            ClientState::Terminated => None,
        }
    }

    fn clear_timers(&mut self) {
        self.retransmit_at = None;
        self.timeout_at = None;
        self.timer_c_at = None;
        self.give_up_at = None;
        self.linger_until = None;
    }

    fn terminate(&mut self) {
        self.state = ClientState::Terminated;
        self.clear_timers();
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[allow(clippy::disallowed_methods)]
    fn epoch() -> Instant {
        Instant::now()
    }

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn secs(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    fn millis(durations: &[Duration]) -> Vec<u128> {
        durations.iter().map(Duration::as_millis).collect()
    }

    fn scaled() -> TimerValues {
        TimerValues {
            t1: ms(100),
            t2: ms(400),
            t4: secs(1),
        }
    }

    /// Both machines, as far as timers go, so one checker serves both.
    trait Timed: Clone + PartialEq + std::fmt::Debug {
        fn deadline(&self) -> Option<Instant>;
        fn fire(&mut self, now: Instant);
    }

    impl Timed for InviteServer {
        fn deadline(&self) -> Option<Instant> {
            self.poll_timeout()
        }
        fn fire(&mut self, now: Instant) {
            self.handle_timeout(now);
        }
    }

    impl Timed for InviteClient {
        fn deadline(&self) -> Option<Instant> {
            self.poll_timeout()
        }
        fn fire(&mut self, now: Instant) {
            self.handle_timeout(now);
        }
    }

    /// `poll_timeout` is exactly the next instant `handle_timeout` acts at: a nanosecond
    /// earlier it changes nothing, at the deadline (or at `now` if that is later) it
    /// changes something; with no deadline it never acts.
    fn assert_deadline_exact<T: Timed>(machine: &T, now: Instant) {
        match machine.deadline() {
            Some(at) => {
                let just_before = at - Duration::from_nanos(1);
                if just_before >= now {
                    let mut early = machine.clone();
                    early.fire(just_before);
                    assert_eq!(&early, machine, "acted before its deadline");
                }
                let mut due = machine.clone();
                due.fire(at.max(now));
                assert_ne!(&due, machine, "did nothing at its deadline");
            }
            None => {
                let mut late = machine.clone();
                late.fire(now + secs(86_400));
                assert_eq!(&late, machine, "acted with no deadline");
            }
        }
    }

    /// Drives the server transaction on its timers alone; returns the resends (relative
    /// to `from`), the action that ended it, and when.
    fn run_server(
        transaction: &mut InviteServer,
        from: Instant,
    ) -> (Vec<Duration>, ServerAction, Duration) {
        let mut resends = Vec::new();
        while let Some(at) = transaction.poll_timeout() {
            assert_deadline_exact(transaction, from);
            match transaction.handle_timeout(at) {
                ServerAction::Resend(code) => {
                    assert_eq!(code, transaction.latest_response());
                    resends.push(at - from);
                }
                ending if transaction.state() == ServerState::Terminated => {
                    assert_eq!(transaction.poll_timeout(), None);
                    return (resends, ending, at - from);
                }
                other => panic!("unexpected {other:?} in {:?}", transaction.state()),
            }
        }
        panic!("never terminated in {:?}", transaction.state());
    }

    /// Drives the client transaction on its timers alone; returns the retransmissions
    /// (relative to `from`), the action that ended it, and when.
    fn run_client(
        transaction: &mut InviteClient,
        from: Instant,
    ) -> (Vec<Duration>, ClientAction, Duration) {
        let mut retransmits = Vec::new();
        while let Some(at) = transaction.poll_timeout() {
            assert_deadline_exact(transaction, from);
            match transaction.handle_timeout(at) {
                ClientAction::Retransmit => retransmits.push(at - from),
                ending if transaction.state() == ClientState::Terminated => {
                    assert_eq!(transaction.poll_timeout(), None);
                    return (retransmits, ending, at - from);
                }
                other => panic!("unexpected {other:?} in {:?}", transaction.state()),
            }
        }
        panic!("never terminated in {:?}", transaction.state());
    }

    // ---- server ----

    #[test]
    fn server_admission_sends_100_which_retransmitted_invites_get_until_the_tu_responds() {
        let t0 = epoch();
        let (mut transaction, action) = InviteServer::new(TimerValues::default(), false);
        assert_eq!(action, ServerAction::Send(100));
        assert_eq!(transaction.state(), ServerState::Proceeding);
        assert_eq!(transaction.latest_response(), 100);
        assert_eq!(transaction.poll_timeout(), None);
        assert_eq!(
            transaction.handle_request_retransmission(),
            ServerAction::Resend(100)
        );
        assert_eq!(transaction.send_provisional(180), ServerAction::Send(180));
        assert_eq!(
            transaction.handle_request_retransmission(),
            ServerAction::Resend(180)
        );
        assert_eq!(transaction.send_provisional(183), ServerAction::Send(183));
        assert_eq!(
            transaction.handle_request_retransmission(),
            ServerAction::Resend(183)
        );
        assert_eq!(transaction.retransmissions(), 3);
        // Proceeding has no timer of its own: the TU decides when it ends.
        assert_deadline_exact(&transaction, t0);
        assert_eq!(
            transaction.handle_timeout(t0 + secs(3600)),
            ServerAction::Nothing
        );
        // An ACK before any final response is not ours.
        assert_eq!(transaction.handle_ack(t0), ServerAction::Nothing);
        assert_eq!(transaction.state(), ServerState::Proceeding);
    }

    #[test]
    fn server_refuses_codes_outside_their_class() {
        let t0 = epoch();
        let (mut transaction, _) = InviteServer::new(TimerValues::default(), false);
        for code in [0, 99, 200, 486, 700] {
            assert_eq!(transaction.send_provisional(code), ServerAction::Nothing);
        }
        for code in [0, 100, 199, 700, 999] {
            assert_eq!(transaction.send_final(t0, code), ServerAction::Nothing);
        }
        assert_eq!(transaction.state(), ServerState::Proceeding);
        assert_eq!(transaction.latest_response(), 100);
    }

    #[test]
    fn server_non_2xx_over_udp_timer_g_doubles_to_t2_and_timer_h_reports_the_missing_ack() {
        let t0 = epoch();
        let (mut transaction, _) = InviteServer::new(TimerValues::default(), false);
        let sent = t0 + secs(2);
        assert_eq!(transaction.send_final(sent, 486), ServerAction::Send(486));
        assert_eq!(transaction.state(), ServerState::Completed);
        let (resends, ending, at) = run_server(&mut transaction, sent);
        // G = 0.5, 1, 2, 4, 4, 4 ... s after each send (§17.2.1); H = 64·T1.
        assert_eq!(
            millis(&resends),
            [
                500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
            ]
        );
        assert_eq!(ending, ServerAction::AckTimedOut);
        assert_eq!(at, secs(32));
        assert_eq!(transaction.state(), ServerState::Terminated);
        assert_eq!(transaction.retransmissions(), 10);
    }

    #[test]
    fn server_non_2xx_over_a_reliable_transport_waits_for_the_ack_without_resending() {
        let t0 = epoch();
        let (mut transaction, _) = InviteServer::new(TimerValues::default(), true);
        assert_eq!(transaction.send_final(t0, 503), ServerAction::Send(503));
        assert_eq!(transaction.poll_timeout(), Some(t0 + secs(32)));
        let (resends, ending, at) = run_server(&mut transaction, t0);
        assert!(resends.is_empty());
        assert_eq!(ending, ServerAction::AckTimedOut);
        assert_eq!(at, secs(32));
    }

    #[test]
    fn server_retransmitted_invite_in_completed_resends_the_final_and_leaves_timer_g_alone() {
        let t0 = epoch();
        let (mut transaction, _) = InviteServer::new(TimerValues::default(), false);
        transaction.send_provisional(180);
        transaction.send_final(t0, 480);
        assert_eq!(
            transaction.handle_request_retransmission(),
            ServerAction::Resend(480)
        );
        assert_eq!(transaction.poll_timeout(), Some(t0 + ms(500)));
        assert_eq!(
            transaction.handle_timeout(t0 + ms(500)),
            ServerAction::Resend(480)
        );
        assert_eq!(transaction.poll_timeout(), Some(t0 + ms(1500)));
        assert_eq!(transaction.retransmissions(), 2);
        // Only one final response per transaction.
        assert_eq!(transaction.send_final(t0, 200), ServerAction::Nothing);
        assert_eq!(transaction.send_final(t0, 603), ServerAction::Nothing);
        assert_eq!(transaction.send_provisional(180), ServerAction::Nothing);
        assert_eq!(transaction.latest_response(), 480);
    }

    #[test]
    fn server_ack_confirms_stops_timers_g_and_h_and_timer_i_absorbs_for_t4() {
        let t0 = epoch();
        let (mut transaction, _) = InviteServer::new(TimerValues::default(), false);
        transaction.send_final(t0, 404);
        assert_eq!(
            transaction.handle_timeout(t0 + ms(500)),
            ServerAction::Resend(404)
        );
        let acked = t0 + ms(800);
        assert_eq!(transaction.handle_ack(acked), ServerAction::Nothing);
        assert_eq!(transaction.state(), ServerState::Confirmed);
        assert_eq!(transaction.poll_timeout(), Some(acked + secs(5)));
        assert_deadline_exact(&transaction, acked);
        // Retransmitted INVITEs and ACKs are absorbed; the ACK does not re-arm Timer I.
        assert_eq!(
            transaction.handle_request_retransmission(),
            ServerAction::Nothing
        );
        assert_eq!(
            transaction.handle_ack(acked + secs(1)),
            ServerAction::Nothing
        );
        assert_eq!(transaction.poll_timeout(), Some(acked + secs(5)));
        assert_eq!(transaction.send_final(acked, 500), ServerAction::Nothing);
        assert_eq!(transaction.handle_transport_error(), ServerAction::Nothing);
        assert_eq!(transaction.state(), ServerState::Confirmed);
        assert_eq!(transaction.retransmissions(), 1);
        let (resends, ending, at) = run_server(&mut transaction, acked);
        assert!(resends.is_empty());
        assert_eq!(ending, ServerAction::Nothing);
        assert_eq!(at, secs(5));
    }

    #[test]
    fn server_reliable_ack_terminates_at_once() {
        let t0 = epoch();
        let (mut transaction, _) = InviteServer::new(TimerValues::default(), true);
        transaction.send_final(t0, 486);
        let acked = t0 + secs(1);
        assert_eq!(transaction.handle_ack(acked), ServerAction::Nothing);
        assert_eq!(transaction.state(), ServerState::Confirmed);
        assert_eq!(transaction.poll_timeout(), Some(acked));
        assert_eq!(transaction.handle_timeout(acked), ServerAction::Nothing);
        assert_eq!(transaction.state(), ServerState::Terminated);
    }

    #[test]
    fn server_2xx_accepted_absorbs_invites_passes_acks_on_and_ends_at_timer_l() {
        let t0 = epoch();
        let (mut transaction, _) = InviteServer::new(TimerValues::default(), false);
        transaction.send_provisional(180);
        let sent = t0 + secs(3);
        assert_eq!(transaction.send_final(sent, 200), ServerAction::Send(200));
        assert_eq!(transaction.state(), ServerState::Accepted);
        assert_eq!(transaction.poll_timeout(), Some(sent + secs(32)));
        // Retransmitted INVITEs are absorbed, not answered: the 2xx is the UAS's to resend.
        assert_eq!(
            transaction.handle_request_retransmission(),
            ServerAction::Nothing
        );
        // A 2xx the TU forwards (a retransmission, another fork) goes out.
        assert_eq!(
            transaction.send_final(sent + secs(1), 200),
            ServerAction::Send(200)
        );
        assert_eq!(transaction.poll_timeout(), Some(sent + secs(32)));
        assert_eq!(transaction.send_final(sent, 486), ServerAction::Nothing);
        assert_eq!(transaction.send_provisional(180), ServerAction::Nothing);
        assert_eq!(
            transaction.handle_ack(sent + secs(2)),
            ServerAction::DeliverAck
        );
        assert_eq!(transaction.handle_transport_error(), ServerAction::Nothing);
        assert_eq!(transaction.state(), ServerState::Accepted);
        assert_eq!(transaction.retransmissions(), 0);
        // No Timer G for a 2xx, even over UDP.
        let (resends, ending, at) = run_server(&mut transaction, sent);
        assert!(resends.is_empty());
        assert_eq!(ending, ServerAction::Nothing);
        assert_eq!(at, secs(32));
    }

    #[test]
    fn server_timer_l_is_the_same_on_reliable_transports() {
        let t0 = epoch();
        let (mut transaction, _) = InviteServer::new(TimerValues::default(), true);
        transaction.send_final(t0, 200);
        let (_, ending, at) = run_server(&mut transaction, t0);
        assert_eq!(ending, ServerAction::Nothing);
        assert_eq!(at, secs(32));
    }

    #[test]
    fn server_transport_errors_end_proceeding_and_completed_once() {
        let t0 = epoch();
        let (mut proceeding, _) = InviteServer::new(TimerValues::default(), false);
        assert_eq!(
            proceeding.handle_transport_error(),
            ServerAction::TransportFailed
        );
        assert_eq!(proceeding.state(), ServerState::Terminated);
        assert_eq!(proceeding.handle_transport_error(), ServerAction::Nothing);

        let (mut completed, _) = InviteServer::new(TimerValues::default(), false);
        completed.send_final(t0, 486);
        assert_eq!(
            completed.handle_transport_error(),
            ServerAction::TransportFailed
        );
        assert_eq!(completed.state(), ServerState::Terminated);
        assert_eq!(completed.poll_timeout(), None);
    }

    #[test]
    fn server_ignores_everything_after_termination() {
        let t0 = epoch();
        let (mut transaction, _) = InviteServer::new(TimerValues::default(), false);
        transaction.send_final(t0, 486);
        assert_eq!(
            transaction.handle_timeout(t0 + secs(32)),
            ServerAction::AckTimedOut
        );
        let later = t0 + secs(40);
        assert_eq!(transaction.send_provisional(180), ServerAction::Nothing);
        assert_eq!(transaction.send_final(later, 200), ServerAction::Nothing);
        assert_eq!(
            transaction.handle_request_retransmission(),
            ServerAction::Nothing
        );
        assert_eq!(transaction.handle_ack(later), ServerAction::Nothing);
        assert_eq!(transaction.handle_transport_error(), ServerAction::Nothing);
        assert_eq!(transaction.handle_timeout(later), ServerAction::Nothing);
        assert_eq!(transaction.poll_timeout(), None);
        assert_eq!(transaction.state(), ServerState::Terminated);
    }

    #[test]
    fn server_configured_timer_values_scale_everything() {
        let t0 = epoch();
        let (mut unanswered, _) = InviteServer::new(scaled(), false);
        unanswered.send_final(t0, 486);
        let (resends, ending, at) = run_server(&mut unanswered, t0);
        assert_eq!(millis(&resends[..5]), [100, 300, 700, 1100, 1500]);
        assert_eq!(ending, ServerAction::AckTimedOut);
        assert_eq!(at, ms(6400));

        let (mut acked, _) = InviteServer::new(scaled(), false);
        acked.send_final(t0, 486);
        acked.handle_ack(t0 + ms(50));
        let (_, _, at) = run_server(&mut acked, t0 + ms(50));
        assert_eq!(at, secs(1), "Timer I = T4");

        let (mut accepted, _) = InviteServer::new(scaled(), false);
        accepted.send_final(t0, 200);
        let (_, _, at) = run_server(&mut accepted, t0);
        assert_eq!(at, ms(6400), "Timer L = 64·T1");
    }

    #[test]
    fn server_late_timer_calls_put_timer_h_first_and_re_arm_g_from_now() {
        let t0 = epoch();
        let (mut late, _) = InviteServer::new(TimerValues::default(), false);
        late.send_final(t0, 486);
        let called = t0 + secs(2);
        assert_eq!(late.handle_timeout(called), ServerAction::Resend(486));
        assert_eq!(late.poll_timeout(), Some(called + secs(1)));
        assert_eq!(
            late.handle_timeout(t0 + secs(40)),
            ServerAction::AckTimedOut
        );
    }

    // ---- client ----

    #[test]
    fn client_unanswered_udp_invite_doubles_timer_a_without_cap_until_timer_b() {
        let t0 = epoch();
        let mut transaction = InviteClient::new(t0, TimerValues::default(), false, None);
        assert_eq!(transaction.state(), ClientState::Calling);
        let (retransmits, ending, at) = run_client(&mut transaction, t0);
        // A = 0.5, 1, 2, 4, 8, 16 s after each send (§17.1.1.2, Figure 5); B = 64·T1.
        assert_eq!(millis(&retransmits), [500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(ending, ClientAction::TimedOut);
        assert_eq!(at, secs(32));
        assert_eq!(transaction.retransmissions(), 6);
        assert_eq!(transaction.state(), ClientState::Terminated);
    }

    #[test]
    fn client_reliable_transports_never_retransmit() {
        let t0 = epoch();
        let mut transaction = InviteClient::new(t0, TimerValues::default(), true, None);
        assert_eq!(transaction.poll_timeout(), Some(t0 + secs(32)));
        let (retransmits, ending, at) = run_client(&mut transaction, t0);
        assert!(retransmits.is_empty());
        assert_eq!(ending, ClientAction::TimedOut);
        assert_eq!(at, secs(32));
    }

    #[test]
    fn client_configured_timer_values_scale_and_t2_does_not_cap_timer_a() {
        let t0 = epoch();
        let mut transaction = InviteClient::new(t0, scaled(), false, None);
        let (retransmits, ending, at) = run_client(&mut transaction, t0);
        assert_eq!(millis(&retransmits), [100, 300, 700, 1500, 3100, 6300]);
        assert_eq!(ending, ClientAction::TimedOut);
        assert_eq!(at, ms(6400));
    }

    #[test]
    fn client_late_timer_calls_time_out_first_and_re_arm_a_from_now() {
        let t0 = epoch();
        let mut transaction = InviteClient::new(t0, TimerValues::default(), false, None);
        let called = t0 + secs(1);
        assert_eq!(transaction.handle_timeout(called), ClientAction::Retransmit);
        assert_eq!(transaction.poll_timeout(), Some(called + secs(1)));
        assert_eq!(
            transaction.handle_timeout(t0 + secs(40)),
            ClientAction::TimedOut
        );
        assert_eq!(transaction.retransmissions(), 1);
    }

    #[test]
    fn client_provisional_enters_proceeding_and_stops_timers_a_and_b() {
        let t0 = epoch();
        let mut transaction = InviteClient::new(t0, TimerValues::default(), false, None);
        assert_eq!(
            transaction.handle_timeout(t0 + ms(500)),
            ClientAction::Retransmit
        );
        let t = t0 + ms(700);
        assert_eq!(
            transaction.handle_response(t, 180),
            ClientAction::Deliver(180)
        );
        assert_eq!(transaction.state(), ClientState::Proceeding);
        assert_eq!(transaction.poll_timeout(), None);
        assert_deadline_exact(&transaction, t);
        assert_eq!(
            transaction.handle_timeout(t0 + secs(3600)),
            ClientAction::Nothing
        );
        assert_eq!(
            transaction.handle_response(t, 183),
            ClientAction::Deliver(183)
        );
        assert_eq!(
            transaction.handle_response(t, 100),
            ClientAction::Deliver(100)
        );
        assert_eq!(transaction.state(), ClientState::Proceeding);
        assert_eq!(transaction.retransmissions(), 1);
    }

    #[test]
    fn client_100_trying_also_enters_proceeding() {
        let t0 = epoch();
        let mut transaction = InviteClient::new(t0, TimerValues::default(), false, None);
        assert_eq!(
            transaction.handle_response(t0 + ms(20), 100),
            ClientAction::Deliver(100)
        );
        assert_eq!(transaction.state(), ClientState::Proceeding);
        assert_eq!(transaction.poll_timeout(), None);
    }

    #[test]
    fn client_ignores_codes_outside_100_to_699() {
        let t0 = epoch();
        let mut transaction = InviteClient::new(t0, TimerValues::default(), false, None);
        for code in [0, 99, 700, 999, u16::MAX] {
            assert_eq!(transaction.handle_response(t0, code), ClientAction::Nothing);
        }
        assert_eq!(transaction.state(), ClientState::Calling);
        assert_eq!(transaction.poll_timeout(), Some(t0 + ms(500)));
    }

    #[test]
    fn client_non_2xx_is_delivered_with_an_ack_and_each_retransmission_acked_until_timer_d() {
        let t0 = epoch();
        let mut transaction = InviteClient::new(t0, TimerValues::default(), false, None);
        assert_eq!(
            transaction.handle_timeout(t0 + ms(500)),
            ClientAction::Retransmit
        );
        let t = t0 + ms(1200);
        assert_eq!(
            transaction.handle_response(t, 486),
            ClientAction::DeliverAndAck(486)
        );
        assert_eq!(transaction.state(), ClientState::Completed);
        assert_eq!(transaction.poll_timeout(), Some(t + secs(32)));
        assert_eq!(
            transaction.handle_response(t + secs(1), 486),
            ClientAction::SendAck
        );
        assert_eq!(
            transaction.handle_response(t + secs(3), 486),
            ClientAction::SendAck
        );
        assert_eq!(transaction.handle_response(t, 180), ClientAction::Nothing);
        assert_eq!(transaction.handle_response(t, 200), ClientAction::Nothing);
        assert_eq!(transaction.poll_timeout(), Some(t + secs(32)));
        let (retransmits, ending, at) = run_client(&mut transaction, t);
        assert!(retransmits.is_empty(), "Timer A stopped");
        assert_eq!(ending, ClientAction::Nothing);
        assert_eq!(at, secs(32));
        assert_eq!(transaction.retransmissions(), 1);
    }

    #[test]
    fn client_non_2xx_after_a_provisional_completes_too() {
        let t0 = epoch();
        let mut transaction = InviteClient::new(t0, TimerValues::default(), false, None);
        transaction.handle_response(t0 + ms(100), 180);
        let t = t0 + secs(20);
        assert_eq!(
            transaction.handle_response(t, 487),
            ClientAction::DeliverAndAck(487)
        );
        assert_eq!(transaction.state(), ClientState::Completed);
        assert_eq!(transaction.poll_timeout(), Some(t + secs(32)));
    }

    #[test]
    fn client_reliable_non_2xx_is_still_acked_and_ends_at_once() {
        let t0 = epoch();
        let mut transaction = InviteClient::new(t0, TimerValues::default(), true, None);
        let t = t0 + ms(300);
        assert_eq!(
            transaction.handle_response(t, 503),
            ClientAction::DeliverAndAck(503)
        );
        assert_eq!(transaction.poll_timeout(), Some(t));
        assert_eq!(transaction.handle_timeout(t), ClientAction::Nothing);
        assert_eq!(transaction.state(), ClientState::Terminated);
    }

    #[test]
    fn client_timer_d_is_32_s_or_64_t1_when_that_is_longer() {
        let t0 = epoch();
        let mut short = InviteClient::new(t0, scaled(), false, None);
        short.handle_response(t0, 486);
        assert_eq!(short.poll_timeout(), Some(t0 + secs(32)));

        let slow = TimerValues {
            t1: secs(1),
            ..TimerValues::default()
        };
        let mut long = InviteClient::new(t0, slow, false, None);
        long.handle_response(t0, 486);
        assert_eq!(long.poll_timeout(), Some(t0 + secs(64)));
    }

    #[test]
    fn client_2xx_accepted_passes_every_2xx_to_the_tu_until_timer_m() {
        let t0 = epoch();
        let mut transaction = InviteClient::new(t0, TimerValues::default(), false, None);
        transaction.handle_response(t0 + secs(1), 180);
        let t = t0 + secs(2);
        assert_eq!(
            transaction.handle_response(t, 200),
            ClientAction::Deliver(200)
        );
        assert_eq!(transaction.state(), ClientState::Accepted);
        assert_eq!(transaction.poll_timeout(), Some(t + secs(32)));
        // A retransmission, or the 2xx of another fork: each to the TU, which ACKs it.
        assert_eq!(
            transaction.handle_response(t + ms(500), 200),
            ClientAction::Deliver(200)
        );
        assert_eq!(
            transaction.handle_response(t + secs(1), 202),
            ClientAction::Deliver(202)
        );
        assert_eq!(transaction.handle_response(t, 486), ClientAction::Nothing);
        assert_eq!(transaction.handle_response(t, 180), ClientAction::Nothing);
        assert_eq!(transaction.handle_transport_error(), ClientAction::Nothing);
        assert_eq!(transaction.poll_timeout(), Some(t + secs(32)));
        let (retransmits, ending, at) = run_client(&mut transaction, t);
        assert!(retransmits.is_empty());
        assert_eq!(ending, ClientAction::Nothing);
        assert_eq!(at, secs(32));
    }

    #[test]
    fn client_2xx_straight_from_calling_stops_timer_a_on_any_transport() {
        let t0 = epoch();
        for reliable in [false, true] {
            let mut transaction = InviteClient::new(t0, TimerValues::default(), reliable, None);
            let t = t0 + ms(200);
            assert_eq!(
                transaction.handle_response(t, 200),
                ClientAction::Deliver(200)
            );
            let (retransmits, _, at) = run_client(&mut transaction, t);
            assert!(retransmits.is_empty());
            assert_eq!(at, secs(32), "Timer M = 64·T1 whatever the transport");
        }
    }

    #[test]
    fn client_timer_c_is_re_armed_by_101_to_199_then_reports_timed_out_c() {
        let t0 = epoch();
        let mut transaction = InviteClient::new(t0, TimerValues::default(), false, Some(secs(180)));
        // In Calling, Timer A comes first; Timer C has been running since the INVITE left.
        assert_eq!(transaction.poll_timeout(), Some(t0 + ms(500)));
        assert_eq!(
            transaction.handle_response(t0 + secs(1), 180),
            ClientAction::Deliver(180)
        );
        assert_eq!(transaction.poll_timeout(), Some(t0 + secs(181)));
        assert_eq!(
            transaction.handle_response(t0 + secs(100), 183),
            ClientAction::Deliver(183)
        );
        assert_eq!(transaction.poll_timeout(), Some(t0 + secs(280)));
        // A 100 does not reset Timer C (§16.7 step 2).
        assert_eq!(
            transaction.handle_response(t0 + secs(150), 100),
            ClientAction::Deliver(100)
        );
        assert_eq!(transaction.poll_timeout(), Some(t0 + secs(280)));
        assert_deadline_exact(&transaction, t0 + secs(150));
        assert_eq!(
            transaction.handle_timeout(t0 + secs(279)),
            ClientAction::Nothing
        );
        let fired = t0 + secs(280);
        assert_eq!(transaction.handle_timeout(fired), ClientAction::TimedOutC);
        // Still Proceeding: the proxy CANCELs and waits for the 487.
        assert_eq!(transaction.state(), ClientState::Proceeding);
        assert_eq!(transaction.poll_timeout(), Some(fired + secs(32)));
        // Timer C does not run again once it fired.
        assert_eq!(
            transaction.handle_response(fired + secs(1), 180),
            ClientAction::Deliver(180)
        );
        assert_eq!(transaction.poll_timeout(), Some(fired + secs(32)));
        assert_eq!(
            transaction.handle_response(fired + secs(2), 487),
            ClientAction::DeliverAndAck(487)
        );
        assert_eq!(transaction.state(), ClientState::Completed);
        assert_eq!(transaction.poll_timeout(), Some(fired + secs(34)));
    }

    #[test]
    fn client_gives_up_64_t1_after_timer_c_when_no_final_response_comes() {
        let t0 = epoch();
        let mut transaction = InviteClient::new(t0, TimerValues::default(), true, Some(secs(180)));
        transaction.handle_response(t0 + secs(1), 183);
        let fired = t0 + secs(181);
        assert_eq!(transaction.poll_timeout(), Some(fired));
        assert_eq!(transaction.handle_timeout(fired), ClientAction::TimedOutC);
        assert_deadline_exact(&transaction, fired);
        let (_, ending, at) = run_client(&mut transaction, fired);
        assert_eq!(ending, ClientAction::TimedOut);
        assert_eq!(at, secs(32));
    }

    #[test]
    fn client_100_in_calling_leaves_timer_c_as_armed_at_the_start() {
        let t0 = epoch();
        let mut transaction = InviteClient::new(t0, TimerValues::default(), false, Some(secs(180)));
        transaction.handle_response(t0 + secs(10), 100);
        assert_eq!(transaction.poll_timeout(), Some(t0 + secs(180)));
        assert_eq!(
            transaction.handle_timeout(t0 + secs(180)),
            ClientAction::TimedOutC
        );
    }

    #[test]
    fn client_timer_c_before_any_provisional_is_a_timeout() {
        let t0 = epoch();
        let mut reliable = InviteClient::new(t0, TimerValues::default(), true, Some(secs(10)));
        let (retransmits, ending, at) = run_client(&mut reliable, t0);
        assert!(retransmits.is_empty());
        assert_eq!(ending, ClientAction::TimedOut);
        assert_eq!(at, secs(10));

        let mut unreliable = InviteClient::new(t0, TimerValues::default(), false, Some(secs(5)));
        let (retransmits, ending, at) = run_client(&mut unreliable, t0);
        assert_eq!(millis(&retransmits), [500, 1500, 3500]);
        assert_eq!(ending, ClientAction::TimedOut);
        assert_eq!(at, secs(5));

        // A long Timer C leaves Timer B to end Calling.
        let mut long = InviteClient::new(t0, TimerValues::default(), true, Some(secs(180)));
        let (_, ending, at) = run_client(&mut long, t0);
        assert_eq!(ending, ClientAction::TimedOut);
        assert_eq!(at, secs(32));
    }

    #[test]
    fn client_transport_errors_end_every_state_but_accepted() {
        let t0 = epoch();
        let timers = TimerValues::default();
        let mut calling = InviteClient::new(t0, timers, false, None);
        assert_eq!(
            calling.handle_transport_error(),
            ClientAction::TransportFailed
        );
        assert_eq!(calling.state(), ClientState::Terminated);
        assert_eq!(calling.handle_transport_error(), ClientAction::Nothing);
        assert_eq!(calling.poll_timeout(), None);

        let mut proceeding = InviteClient::new(t0, timers, false, Some(secs(180)));
        proceeding.handle_response(t0, 180);
        assert_eq!(
            proceeding.handle_transport_error(),
            ClientAction::TransportFailed
        );
        assert_eq!(proceeding.poll_timeout(), None);

        let mut completed = InviteClient::new(t0, timers, false, None);
        completed.handle_response(t0, 404);
        assert_eq!(
            completed.handle_transport_error(),
            ClientAction::TransportFailed
        );
        assert_eq!(completed.state(), ClientState::Terminated);

        let mut accepted = InviteClient::new(t0, timers, false, None);
        accepted.handle_response(t0, 200);
        assert_eq!(accepted.handle_transport_error(), ClientAction::Nothing);
        assert_eq!(accepted.state(), ClientState::Accepted);
    }

    #[test]
    fn client_ignores_responses_after_termination() {
        let t0 = epoch();
        let mut transaction = InviteClient::new(t0, TimerValues::default(), true, None);
        assert_eq!(
            transaction.handle_timeout(t0 + secs(32)),
            ClientAction::TimedOut
        );
        let later = t0 + secs(33);
        for code in [100, 180, 200, 486, 603] {
            assert_eq!(
                transaction.handle_response(later, code),
                ClientAction::Nothing
            );
        }
        assert_eq!(transaction.handle_transport_error(), ClientAction::Nothing);
        assert_eq!(transaction.handle_timeout(later), ClientAction::Nothing);
        assert_eq!(transaction.poll_timeout(), None);
        assert_eq!(transaction.state(), ClientState::Terminated);
    }

    // ---- random event sequences ----

    #[derive(Debug, Clone)]
    enum ServerEvent {
        Provisional(u16),
        Final(u16),
        InviteAgain,
        Ack,
        TransportError,
        /// `handle_timeout` at the deadline (or now, if that passed).
        Fire,
        /// `handle_timeout` at whatever `now` is.
        Tick,
    }

    #[derive(Debug, Clone)]
    enum ClientEvent {
        Response(u16),
        TransportError,
        Fire,
        Tick,
    }

    fn code() -> impl Strategy<Value = u16> {
        prop_oneof![9 => 100u16..700, 1 => any::<u16>()]
    }

    fn server_event() -> impl Strategy<Value = ServerEvent> {
        prop_oneof![
            2 => code().prop_map(ServerEvent::Provisional),
            2 => code().prop_map(ServerEvent::Final),
            2 => Just(ServerEvent::InviteAgain),
            2 => Just(ServerEvent::Ack),
            1 => Just(ServerEvent::TransportError),
            4 => Just(ServerEvent::Fire),
            2 => Just(ServerEvent::Tick),
        ]
    }

    fn client_event() -> impl Strategy<Value = ClientEvent> {
        prop_oneof![
            4 => code().prop_map(ClientEvent::Response),
            1 => Just(ClientEvent::TransportError),
            4 => Just(ClientEvent::Fire),
            2 => Just(ClientEvent::Tick),
        ]
    }

    fn timer_values() -> impl Strategy<Value = TimerValues> {
        (1u64..2_000, 0u64..8_000, 0u64..10_000).prop_map(|(t1, extra, t4)| TimerValues {
            t1: ms(t1),
            t2: ms(t1 + extra),
            t4: ms(t4),
        })
    }

    /// `None` sorts after every instant: no deadline is the latest deadline.
    fn later_or_equal(after: Option<Instant>, before: Option<Instant>) -> bool {
        match (after, before) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(after), Some(before)) => after >= before,
        }
    }

    /// Runs a machine on its timers alone from `now` until nothing is armed; returns when
    /// that was. Deadlines never go backwards and each one is exact.
    fn drain<T: Timed>(machine: &mut T, mut now: Instant) -> Instant {
        for _ in 0..10_000 {
            let Some(at) = machine.deadline() else {
                return now;
            };
            assert_deadline_exact(machine, now);
            now = now.max(at);
            machine.fire(now);
            assert!(
                later_or_equal(machine.deadline(), Some(at)),
                "went backwards"
            );
        }
        panic!("still armed after 10 000 timer firings: {machine:?}");
    }

    proptest! {
        /// Any sequence of TU, network and timer events: no panic; `poll_timeout` is exact;
        /// an event never schedules anything before `now` that was not already due; a
        /// timer firing never moves the deadline earlier; and once nothing more arrives,
        /// every state but Proceeding (which waits on the TU) terminates within
        /// max(64·T1, T4), after which every event is ignored.
        #[test]
        fn server_random_events(
            timers in timer_values(),
            reliable in any::<bool>(),
            events in proptest::collection::vec((0u64..40_000, server_event()), 0..40),
        ) {
            let t0 = epoch();
            let mut now = t0;
            let (mut transaction, first) = InviteServer::new(timers, reliable);
            prop_assert_eq!(first, ServerAction::Send(100));
            for (advance, event) in events {
                now += ms(advance);
                assert_deadline_exact(&transaction, now);
                let before = transaction.poll_timeout();
                match event {
                    ServerEvent::Fire | ServerEvent::Tick => {
                        if let (ServerEvent::Fire, Some(at)) = (&event, before) {
                            now = now.max(at);
                        }
                        transaction.handle_timeout(now);
                        prop_assert!(later_or_equal(transaction.poll_timeout(), before));
                    }
                    other => {
                        let action = match other {
                            ServerEvent::Provisional(code) => transaction.send_provisional(code),
                            ServerEvent::Final(code) => transaction.send_final(now, code),
                            ServerEvent::InviteAgain => transaction.handle_request_retransmission(),
                            ServerEvent::Ack => transaction.handle_ack(now),
                            _ => transaction.handle_transport_error(),
                        };
                        if let ServerAction::Send(code) | ServerAction::Resend(code) = action {
                            prop_assert_eq!(code, transaction.latest_response());
                        }
                        let floor = before.map_or(now, |at| at.min(now));
                        prop_assert!(later_or_equal(transaction.poll_timeout(), Some(floor)));
                    }
                }
                if transaction.state() == ServerState::Terminated {
                    prop_assert_eq!(transaction.poll_timeout(), None);
                }
            }
            let quiet = now;
            let end = drain(&mut transaction, quiet);
            if transaction.state() == ServerState::Proceeding {
                prop_assert_eq!(transaction.poll_timeout(), None);
            } else {
                prop_assert_eq!(transaction.state(), ServerState::Terminated);
                prop_assert!(end - quiet <= (64 * timers.t1).max(timers.t4));
                let ignored = [
                    transaction.send_provisional(180),
                    transaction.send_final(end, 200),
                    transaction.handle_request_retransmission(),
                    transaction.handle_ack(end),
                    transaction.handle_transport_error(),
                    transaction.handle_timeout(end + secs(3600)),
                ];
                prop_assert!(ignored.iter().all(|action| *action == ServerAction::Nothing));
                prop_assert_eq!(transaction.state(), ServerState::Terminated);
            }
        }

        /// The same for the client: it terminates within Timer C + 2·max(32 s, 64·T1) of
        /// the last event, unless it sits in Proceeding with no Timer C (a UAC waiting for
        /// its TU), and ignores every response afterwards.
        #[test]
        fn client_random_events(
            timers in timer_values(),
            reliable in any::<bool>(),
            timer_c in proptest::option::of(0u64..400_000),
            events in proptest::collection::vec((0u64..40_000, client_event()), 0..40),
        ) {
            let t0 = epoch();
            let mut now = t0;
            let timer_c = timer_c.map(ms);
            let mut transaction = InviteClient::new(t0, timers, reliable, timer_c);
            for (advance, event) in events {
                now += ms(advance);
                assert_deadline_exact(&transaction, now);
                let before = transaction.poll_timeout();
                match event {
                    ClientEvent::Fire | ClientEvent::Tick => {
                        if let (ClientEvent::Fire, Some(at)) = (&event, before) {
                            now = now.max(at);
                        }
                        transaction.handle_timeout(now);
                        prop_assert!(later_or_equal(transaction.poll_timeout(), before));
                    }
                    ClientEvent::Response(code) => {
                        let state = transaction.state();
                        let action = transaction.handle_response(now, code);
                        match action {
                            ClientAction::Deliver(delivered) | ClientAction::DeliverAndAck(delivered) => {
                                prop_assert_eq!(delivered, code);
                            }
                            ClientAction::SendAck => {
                                prop_assert_eq!(state, ClientState::Completed);
                            }
                            ClientAction::Nothing => {}
                            other => prop_assert!(false, "{:?} for a response", other),
                        }
                        let floor = before.map_or(now, |at| at.min(now));
                        prop_assert!(later_or_equal(transaction.poll_timeout(), Some(floor)));
                    }
                    ClientEvent::TransportError => {
                        transaction.handle_transport_error();
                        prop_assert!(later_or_equal(transaction.poll_timeout(), before));
                    }
                }
                if transaction.state() == ClientState::Terminated {
                    prop_assert_eq!(transaction.poll_timeout(), None);
                }
            }
            let quiet = now;
            let end = drain(&mut transaction, quiet);
            if transaction.state() == ClientState::Proceeding {
                prop_assert!(timer_c.is_none());
                prop_assert_eq!(transaction.poll_timeout(), None);
            } else {
                prop_assert_eq!(transaction.state(), ClientState::Terminated);
                let bound = timer_c.unwrap_or_default()
                    + 2 * TIMER_D_UNRELIABLE.max(64 * timers.t1);
                prop_assert!(end - quiet <= bound);
                for code in [100, 180, 200, 486] {
                    prop_assert_eq!(transaction.handle_response(end, code), ClientAction::Nothing);
                }
                prop_assert_eq!(transaction.handle_transport_error(), ClientAction::Nothing);
                prop_assert_eq!(transaction.state(), ClientState::Terminated);
            }
        }
    }
}
