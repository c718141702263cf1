//! What the operator asks of the daemon: SIGHUP reloads the config, SIGTERM and SIGINT
//! stop it (the first drains, another stops at once). The daemon reads them from the
//! operating system ([`Unix`]); a test sends them down a channel, without installing a
//! handler in its own process.

use std::fmt;
use std::future::Future;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Hangup,
    Terminate,
    Interrupt,
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Hangup => "SIGHUP",
            Signal::Terminate => "SIGTERM",
            Signal::Interrupt => "SIGINT",
        })
    }
}

/// Where signals come from.
pub trait Signals {
    /// The next signal; pending for ever when none can come. Cancel-safe: the daemon's
    /// loop drops it whenever something else happens first.
    fn next(&mut self) -> impl Future<Output = Signal> + Send;
}

/// The process's own signals.
pub(crate) struct Unix {
    hangup: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Unix {
    /// Installs the handlers: from here on these signals no longer end the process.
    pub(crate) fn install() -> std::io::Result<Self> {
        Ok(Unix {
            hangup: signal(SignalKind::hangup())?,
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }
}

impl Signals for Unix {
    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.hangup.recv() => Signal::Hangup,
            _ = self.terminate.recv() => Signal::Terminate,
            _ = self.interrupt.recv() => Signal::Interrupt,
        }
    }
}

/// Signals a test sends.
impl Signals for mpsc::UnboundedReceiver<Signal> {
    async fn next(&mut self) -> Signal {
        match self.recv().await {
            Some(signal) => signal,
            None => std::future::pending().await,
        }
    }
}
