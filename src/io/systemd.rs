//! sd_notify(3): tell systemd when we are ready, reloading, stopping, alive and how we are.
//! Without `$NOTIFY_SOCKET` (not started by systemd) every call is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;
use tracing::warn;

pub struct Notifier {
    enabled: bool,
}

impl Notifier {
    pub fn from_env() -> Self {
        Notifier {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some(),
        }
    }

    /// Sends nothing (a daemon in a test).
    pub fn disabled() -> Self {
        Notifier { enabled: false }
    }

    /// `WatchdogSec=` as passed in `$WATCHDOG_USEC` (for this process): we ping at half of it.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        sd_notify::watchdog_enabled().map(|limit| limit / 2)
    }

    fn send(&self, states: &[NotifyState]) {
        if !self.enabled {
            return;
        }
        if let Err(error) = sd_notify::notify(states) {
            warn!("sd_notify failed: {error}");
        }
    }

    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// RELOADING=1 with MONOTONIC_USEC, as sd_notify(3) asks since systemd 253 (which
    /// needs it for Type=notify-reload); older versions ignore the extra field.
    pub fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now]),
            Err(_) => self.send(&[NotifyState::Reloading]),
        }
    }

    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }

    /// Stopping takes longer than `TimeoutStopSec=` may allow: ask for `extra` more.
    pub fn draining(&self, extra: Duration, calls: usize) {
        // EXTEND_TIMEOUT_USEC is 32 bits here: ~71 minutes at most.
        let usec = u32::try_from(extra.as_micros()).unwrap_or(u32::MAX);
        let status = format!("stopping: draining {calls} calls");
        self.send(&[
            NotifyState::ExtendTimeoutUsec(usec),
            NotifyState::Status(&status),
        ]);
    }

    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }
}
