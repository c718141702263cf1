//! The one place the daemon reads the clock. Everything below `io` gets `now` passed in
//! (clippy.toml bans `Instant::now` elsewhere), so the control path runs on a virtual clock in tests.

use std::time::Instant;

#[allow(clippy::disallowed_methods)]
pub fn now() -> Instant {
    Instant::now()
}
