//! The one place the daemon reads the clock. Everything below `io` gets `now` passed in
//! (clippy.toml bans `Instant::now` elsewhere), so the control path runs on a virtual clock in tests.
//!
//! The clock read is tokio's, the one the shell's sleeps run on. Without tokio's
//! `test-util` (every build but the tests') that is `std::time::Instant::now()` itself, and
//! so it is with it until some runtime of the process pauses its clock. In a test on a
//! paused runtime (`tokio::time::pause`) it is the paused clock, so a daemon-level test
//! drives the control path's timers and the shell's sleeps alike; outside a runtime (the
//! hot path's UDP threads) it stays the system's.

use std::time::Instant;

#[allow(clippy::disallowed_methods)]
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
