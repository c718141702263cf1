//! When trunkd may stop once asked to, sans IO.
//!
//! Stopping removes every binding (REGISTER Expires: 0) and waits for the answers, up to
//! [`UNREGISTER_DEADLINE`], so carriers stop sending calls to an address about to go away.
//! With `[daemon] shutdown_drain` it also waits that long for the calls in progress to end
//! (new INVITEs get 503 meanwhile: the hot path's part), and once the last one has ended,
//! up to [`SETTLE`] for the answer to its BYE.
//!
//! [`Shutdown`] owns only those deadlines and the decision. [`super::Control`] starts it,
//! reports [`Progress`] after every input and timer, and turns its [`Notice`]s into
//! events; the shell asks whether it has stopped. It never reads the clock, sends
//! anything or logs.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crate::config::format_duration;

/// How long a shutdown waits for the answers to its un-REGISTERs.
pub(crate) const UNREGISTER_DEADLINE: Duration = Duration::from_secs(5);
/// While draining, how long the answers to the last call's BYE may take once it ended.
pub(crate) const SETTLE: Duration = Duration::from_secs(4);

/// What the control path reports at each step of a shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Progress {
    /// No binding left and no un-REGISTER waiting for its answer.
    pub unregistered: bool,
    /// Calls in progress (setting up or answered).
    pub calls: usize,
    /// A request forwarded inside a call (the BYE that ended the last one) still waits
    /// for its final response.
    pub awaiting_responses: bool,
}

/// What a shutdown has to say to the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Calls are in progress and `shutdown_drain` waits for them; stopping may take up
    /// to `stop_within` in all (what systemd is asked for, EXTEND_TIMEOUT_USEC).
    Draining {
        calls: usize,
        drain: Duration,
        stop_within: Duration,
    },
    /// Un-REGISTERs were still unanswered at [`UNREGISTER_DEADLINE`]; stopping goes on.
    UnregistrationsUnanswered,
    /// `shutdown_drain` ran out with calls in progress; they lose trunkd.
    DrainOver { calls: usize },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::Draining { calls, drain, .. } => write!(
                f,
                "draining: {calls} calls in progress; waiting up to {} for them to end (new calls get 503)",
                format_duration(*drain)
            ),
            Notice::UnregistrationsUnanswered => {
                f.write_str("shutdown deadline reached with unregistrations unanswered")
            }
            Notice::DrainOver { calls } => write!(
                f,
                "shutdown_drain is over with {calls} calls in progress; stopping anyway"
            ),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Shutdown {
    /// Still waiting for un-REGISTERs to be answered (until [`Self::unregistered_by`]).
    unregistering: bool,
    unregistered_by: Instant,
    drain: Duration,
    drained_by: Instant,
    /// The last call has ended: its BYE's answer may pass until then.
    settled_by: Option<Instant>,
    stopped: bool,
    notices: VecDeque<Notice>,
}

impl Shutdown {
    /// A shutdown asked for at `now`, its un-REGISTERs already queued, draining calls
    /// for `drain`; takes its first step.
    pub(crate) fn start(now: Instant, drain: Duration, progress: Progress) -> Self {
        let mut shutdown = Shutdown {
            unregistering: true,
            unregistered_by: now + UNREGISTER_DEADLINE,
            drain,
            drained_by: now + drain,
            settled_by: None,
            stopped: false,
            notices: VecDeque::new(),
        };
        if !drain.is_zero() && progress.calls > 0 {
            shutdown.notices.push_back(Notice::Draining {
                calls: progress.calls,
                drain,
                stop_within: drain + UNREGISTER_DEADLINE,
            });
        }
        shutdown.step(now, progress);
        shutdown
    }

    /// Decides, from what the control path reports at `now`, whether trunkd may stop:
    /// once the un-REGISTERs are answered (or their deadline passed), and the calls have
    /// ended and settled (or the drain is over).
    pub(crate) fn step(&mut self, now: Instant, progress: Progress) {
        if self.stopped {
            return;
        }
        if self.unregistering && progress.unregistered {
            self.unregistering = false;
        } else if self.unregistering && now >= self.unregistered_by {
            self.notices.push_back(Notice::UnregistrationsUnanswered);
            self.unregistering = false;
        }
        // Once the last call has ended, its BYE's answer still has to pass.
        if progress.calls > 0 || self.drain.is_zero() {
            self.settled_by = None;
        } else {
            self.settled_by.get_or_insert(now + SETTLE);
        }
        let settled = self
            .settled_by
            .is_none_or(|by| now >= by || !progress.awaiting_responses);
        let drained = (progress.calls == 0 && settled) || now >= self.drained_by;
        if !self.unregistering && drained {
            if progress.calls > 0 && !self.drain.is_zero() {
                self.notices.push_back(Notice::DrainOver {
                    calls: progress.calls,
                });
            }
            self.stopped = true;
        }
    }

    /// When [`Self::step`] next has something to decide by time alone. Stopping waits for
    /// the un-REGISTERs first, so the drain's deadlines count only after them (both are
    /// still ahead then: had either passed, the last step would have stopped).
    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped {
            None
        } else if self.unregistering {
            Some(self.unregistered_by)
        } else {
            Some(
                self.settled_by
                    .map_or(self.drained_by, |by| by.min(self.drained_by)),
            )
        }
    }

    #[must_use]
    pub(crate) fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }

    /// trunkd may exit now.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DRAIN: Duration = Duration::from_secs(30);

    /// The virtual clock's epoch; only tests create Instants from nothing.
    #[allow(clippy::disallowed_methods)]
    fn epoch() -> Instant {
        Instant::now()
    }

    fn progress(unregistered: bool, calls: usize, awaiting_responses: bool) -> Progress {
        Progress {
            unregistered,
            calls,
            awaiting_responses,
        }
    }

    fn notices(shutdown: &mut Shutdown) -> Vec<String> {
        std::iter::from_fn(|| shutdown.poll_notice())
            .map(|notice| notice.to_string())
            .collect()
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn nothing_to_wait_for_stops_at_once() {
        let t0 = epoch();
        for drain in [Duration::ZERO, DRAIN] {
            let mut shutdown = Shutdown::start(t0, drain, progress(true, 0, false));
            assert!(shutdown.is_stopped(), "drain {drain:?}");
            assert_eq!(shutdown.poll_timeout(), None);
            assert!(notices(&mut shutdown).is_empty());
        }
    }

    #[test]
    fn an_answered_unregistration_stops_when_it_arrives() {
        let t0 = epoch();
        let mut shutdown = Shutdown::start(t0, Duration::ZERO, progress(false, 0, false));
        assert!(!shutdown.is_stopped());
        assert_eq!(shutdown.poll_timeout(), Some(t0 + UNREGISTER_DEADLINE));
        shutdown.step(t0 + SECOND, progress(false, 0, false));
        assert!(!shutdown.is_stopped(), "an unrelated input");
        shutdown.step(t0 + 2 * SECOND, progress(true, 0, false));
        assert!(shutdown.is_stopped());
        assert_eq!(shutdown.poll_timeout(), None);
        assert!(notices(&mut shutdown).is_empty());
    }

    #[test]
    fn an_unanswered_unregistration_stops_at_the_deadline_and_says_so() {
        let t0 = epoch();
        let mut shutdown = Shutdown::start(t0, Duration::ZERO, progress(false, 0, false));
        let deadline = t0 + UNREGISTER_DEADLINE;
        shutdown.step(
            deadline - Duration::from_millis(1),
            progress(false, 0, false),
        );
        assert!(!shutdown.is_stopped());
        shutdown.step(deadline, progress(false, 0, false));
        assert!(shutdown.is_stopped());
        assert_eq!(
            notices(&mut shutdown),
            ["shutdown deadline reached with unregistrations unanswered"]
        );
        // An answer after the deadline changes nothing.
        shutdown.step(deadline + SECOND, progress(true, 0, false));
        assert!(notices(&mut shutdown).is_empty());
    }

    /// `shutdown_drain = 0`: calls in progress do not hold the stop, and nobody is told
    /// they were cut off (the README says so: they lose trunkd).
    #[test]
    fn no_drain_stops_with_calls_in_progress_once_unregistered() {
        let t0 = epoch();
        let mut shutdown = Shutdown::start(t0, Duration::ZERO, progress(false, 3, true));
        assert!(notices(&mut shutdown).is_empty(), "no draining notice");
        assert_eq!(shutdown.poll_timeout(), Some(t0 + UNREGISTER_DEADLINE));
        shutdown.step(t0 + SECOND, progress(true, 3, true));
        assert!(shutdown.is_stopped());
        assert!(notices(&mut shutdown).is_empty());
    }

    #[test]
    fn draining_says_how_long_and_asks_systemd_for_the_unregistration_too() {
        let t0 = epoch();
        let mut shutdown = Shutdown::start(t0, DRAIN, progress(false, 2, false));
        let draining = shutdown.poll_notice().unwrap();
        assert_eq!(
            draining,
            Notice::Draining {
                calls: 2,
                drain: DRAIN,
                stop_within: DRAIN + UNREGISTER_DEADLINE
            }
        );
        assert_eq!(
            draining.to_string(),
            "draining: 2 calls in progress; waiting up to 30s for them to end (new calls get 503)"
        );
    }

    /// The calls end before the unregistrations are answered: the stop waits for those.
    #[test]
    fn calls_ending_first_still_wait_for_the_unregistrations() {
        let t0 = epoch();
        let mut shutdown = Shutdown::start(t0, DRAIN, progress(false, 1, false));
        shutdown.step(t0 + SECOND, progress(false, 0, false));
        assert!(!shutdown.is_stopped());
        assert_eq!(shutdown.poll_timeout(), Some(t0 + UNREGISTER_DEADLINE));
        shutdown.step(t0 + 2 * SECOND, progress(true, 0, false));
        assert!(shutdown.is_stopped());
        assert_eq!(notices(&mut shutdown).len(), 1, "only the draining notice");
    }

    /// The last call ends during the drain with its BYE answered: stop at that instant.
    #[test]
    fn the_last_call_ending_within_the_drain_stops_at_once() {
        let t0 = epoch();
        let mut shutdown = Shutdown::start(t0, DRAIN, progress(true, 2, false));
        assert!(!shutdown.is_stopped());
        assert_eq!(shutdown.poll_timeout(), Some(t0 + DRAIN));
        shutdown.step(t0 + 10 * SECOND, progress(true, 1, false));
        assert!(!shutdown.is_stopped());
        shutdown.step(t0 + 12 * SECOND, progress(true, 0, false));
        assert!(shutdown.is_stopped());
    }

    /// The last call's BYE was forwarded, its 200 not yet back: wait for it, at most
    /// [`SETTLE`].
    #[test]
    fn the_last_bye_settles_when_answered_or_after_settle() {
        let t0 = epoch();
        let ended = t0 + 10 * SECOND;
        for answered_after in [SECOND, SETTLE + SECOND] {
            let mut shutdown = Shutdown::start(t0, DRAIN, progress(true, 1, false));
            shutdown.step(ended, progress(true, 0, true));
            assert!(!shutdown.is_stopped(), "the BYE's 200 is still to pass");
            assert_eq!(shutdown.poll_timeout(), Some(ended + SETTLE));
            if answered_after < SETTLE {
                shutdown.step(ended + answered_after, progress(true, 0, false));
                assert!(shutdown.is_stopped(), "stops with the 200");
            } else {
                shutdown.step(ended + SETTLE, progress(true, 0, true));
                assert!(shutdown.is_stopped(), "stops when SETTLE is over");
            }
            assert_eq!(notices(&mut shutdown).len(), 1, "only the draining notice");
        }
    }

    /// Settling never outlasts the drain.
    #[test]
    fn the_drain_ends_a_settle_that_started_late() {
        let t0 = epoch();
        let mut shutdown = Shutdown::start(t0, DRAIN, progress(true, 1, false));
        let ended = t0 + DRAIN - SECOND;
        shutdown.step(ended, progress(true, 0, true));
        assert_eq!(shutdown.poll_timeout(), Some(t0 + DRAIN));
        shutdown.step(t0 + DRAIN, progress(true, 0, true));
        assert!(shutdown.is_stopped());
        assert_eq!(notices(&mut shutdown).len(), 1, "no call was cut off");
    }

    #[test]
    fn calls_outlasting_the_drain_are_cut_off_with_a_warning() {
        let t0 = epoch();
        let mut shutdown = Shutdown::start(t0, DRAIN, progress(false, 2, false));
        notices(&mut shutdown);
        shutdown.step(t0 + SECOND, progress(true, 2, false));
        assert_eq!(shutdown.poll_timeout(), Some(t0 + DRAIN));
        shutdown.step(t0 + DRAIN - SECOND, progress(true, 1, false));
        assert!(!shutdown.is_stopped());
        shutdown.step(t0 + DRAIN, progress(true, 1, false));
        assert!(shutdown.is_stopped());
        assert_eq!(
            notices(&mut shutdown),
            ["shutdown_drain is over with 1 calls in progress; stopping anyway"]
        );
    }

    /// A drain shorter than the unregistration deadline: a late answer finds the drain
    /// over and stops with it, the calls cut off.
    #[test]
    fn a_short_drain_ends_with_the_late_unregistration() {
        let t0 = epoch();
        let drain = 2 * SECOND;
        let mut shutdown = Shutdown::start(t0, drain, progress(false, 1, false));
        notices(&mut shutdown);
        assert_eq!(shutdown.poll_timeout(), Some(t0 + UNREGISTER_DEADLINE));
        shutdown.step(t0 + drain, progress(false, 1, false));
        assert!(!shutdown.is_stopped(), "the un-REGISTERs come first");
        shutdown.step(t0 + 3 * SECOND, progress(true, 1, false));
        assert!(shutdown.is_stopped());
        assert_eq!(
            notices(&mut shutdown),
            ["shutdown_drain is over with 1 calls in progress; stopping anyway"]
        );
    }

    /// The calls and the drain outlast the unregistrations, which are never answered.
    #[test]
    fn unanswered_unregistrations_then_the_drain() {
        let t0 = epoch();
        let mut shutdown = Shutdown::start(t0, DRAIN, progress(false, 1, false));
        notices(&mut shutdown);
        shutdown.step(t0 + UNREGISTER_DEADLINE, progress(false, 1, false));
        assert!(!shutdown.is_stopped());
        assert_eq!(
            notices(&mut shutdown),
            ["shutdown deadline reached with unregistrations unanswered"]
        );
        assert_eq!(shutdown.poll_timeout(), Some(t0 + DRAIN));
        shutdown.step(t0 + 20 * SECOND, progress(false, 0, false));
        assert!(shutdown.is_stopped());
        assert!(notices(&mut shutdown).is_empty());
    }
}
