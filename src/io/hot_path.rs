//! The shell's side of the hot path, once for every transport: what a listener thread or
//! a connection task does with [`Inbound::handle`]'s [`Decision`] on one message. A UDP
//! socket, an accepted TCP/TLS connection and a connection trunkd opened differ only in
//! the [`Origin`] they describe; a new transport or a new decision changes this file.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant;

use tokio::sync::{Notify, mpsc};
use tracing::debug;

use crate::call::Connection;
use crate::control::Control;
use crate::inbound::{Admitted, Decision, Inbound, Worker};
use crate::io::clock;
use crate::io::network::Network;

/// A message handed to the control path: a response, a request inside a call, or a new
/// call the hot path admitted (with its claimed channel). It came as a UDP datagram or
/// as a frame cut from a TCP/TLS stream (`connection`).
#[derive(Debug)]
pub struct Received<B = Vec<u8>> {
    pub source: SocketAddr,
    /// Our address it arrived at (specific, even on a wildcard listener); for an INVITE
    /// over a connection, the UDP listener its call continues from.
    pub local: SocketAddr,
    /// How it came over a connection (none for UDP).
    pub connection: Option<Connection>,
    /// The message: owned when queued, borrowed when handled where it was read.
    pub bytes: B,
    pub admitted: Option<Admitted>,
}

/// Messages waiting for the control path; beyond this, responses are dropped (and the
/// transaction retransmits) rather than queued without bound.
pub(crate) const CONTROL_QUEUE: usize = 1024;

/// Where one message came from, as the control path must see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin {
    pub source: SocketAddr,
    /// The connection it came on; `None` for a UDP datagram.
    pub connection: Option<Connection>,
    /// Our address it reached, for responses and requests inside a call. A wildcard
    /// listener's address is made specific only for what goes on to the control path:
    /// it costs a system call, which a rejection must not pay.
    pub local: SocketAddr,
    /// Our UDP address an admitted call continues from toward the backend (made specific
    /// as `local` is); `None` when this listener cannot carry calls on (no UDP listener
    /// of its address family), and an admitted INVITE is refused as if the control path
    /// were busy.
    pub calls_from: Option<SocketAddr>,
}

/// What the caller still has to do.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub(crate) enum Passed {
    /// Send the worker's buffer back to the source.
    Answer,
    /// Nothing (dropped, or handed to the control path).
    Done,
    /// The control path is gone: the daemon is shutting down.
    ControlGone,
}

/// The control path as a UDP listener thread reaches it: the message it read is handled
/// on that thread, under the lock, and what it causes is sent from there. A datagram
/// handed to the control loop instead costs a copy, a queue and a wake-up of the loop's
/// thread (two context switches) per message, which was a fifth of an admitted call's
/// CPU. The loop in [`crate::io::serve`] takes the same lock for timers, reloads and
/// everything else, and is nudged when a message left it work: an earlier deadline,
/// events to log, lookups to start.
pub struct Direct {
    pub control: Arc<Mutex<Control>>,
    pub nudge: Arc<Nudge>,
    pub network: Network,
    /// With `[cluster]`: where the control path's Redis requests go, sent under the
    /// lock so they reach Redis in the order they were made.
    pub(crate) cluster: Option<crate::io::cluster::Link>,
}

/// How a thread that handled a message wakes the control loop. The loop tells it where
/// its timer is armed; the thread wakes it only when the control path's next deadline
/// is now earlier than that (or there is other work for the loop). Comparing with the
/// control path's own deadline before the message instead woke the loop for most new
/// calls: a call's first timer (T1) is nearer than anything an idle gap leaves armed.
#[derive(Debug)]
pub struct Nudge {
    notify: Notify,
    /// Read and written under the control lock, so it names the timer the loop armed
    /// for the state the thread sees.
    armed: Mutex<Instant>,
}

impl Nudge {
    pub(crate) fn new(armed: Instant) -> Self {
        Nudge {
            notify: Notify::new(),
            armed: Mutex::new(armed),
        }
    }

    /// The loop armed its timer at `at` (called under the control lock).
    pub(crate) fn arm(&self, at: Instant) {
        *self.armed.lock().unwrap_or_else(PoisonError::into_inner) = at;
    }

    fn armed(&self) -> Instant {
        *self.armed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the loop (or makes its next wait return at once).
    pub(crate) fn notify(&self) {
        self.notify.notify_one();
    }

    /// Until a thread nudges the loop.
    pub(crate) async fn notified(&self) {
        self.notify.notified().await;
    }
}

/// Set once the control path and the network exist; until then (start-up) the listener
/// threads queue what they pass on.
pub(crate) type DirectSlot = Arc<OnceLock<Direct>>;

/// The control path's lock. A panic while it was held (there is none: nothing the
/// network sends may panic) would leave the state as it was; it is used as it is.
pub(crate) fn lock(control: &Mutex<Control>) -> MutexGuard<'_, Control> {
    control.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<B: AsRef<[u8]>> Received<B> {
    fn owned(self) -> Received {
        Received {
            source: self.source,
            local: self.local,
            connection: self.connection,
            bytes: self.bytes.as_ref().to_vec(),
            admitted: self.admitted,
        }
    }
}

/// Hands one message to the control path, queued or read where it arrived alike.
pub(crate) fn deliver<B: AsRef<[u8]>>(control: &mut Control, received: Received<B>) {
    control.handle_message(
        clock::now(),
        received.source,
        received.local,
        received.connection,
        received.bytes.as_ref(),
        received.admitted,
    );
}

impl Direct {
    /// Handles one message on the calling thread and sends what it caused.
    fn handle(&self, received: Received<&[u8]>) {
        self.run(|control| deliver(control, received));
    }

    /// Runs `step` on the control path and does what it left for the shell here: sends
    /// its transmits and Redis requests, and nudges the control loop only when there is
    /// more (a nearer timer, events, lookups).
    pub(crate) fn run(&self, step: impl FnOnce(&mut Control)) {
        let mut control = lock(&self.control);
        step(&mut control);
        while let Some(transmit) = control.poll_transmit() {
            self.network.send(transmit);
        }
        if let Some(link) = &self.cluster {
            while let Some(request) = control.poll_cluster() {
                link.send(request);
            }
        }
        let nudge = control.poll_timeout() < self.nudge.armed()
            || control.wants_shell()
            || control.is_stopped();
        drop(control);
        if nudge {
            self.nudge.notify();
        }
    }
}

/// Runs one message through the hot path and hands what it does not answer to the
/// control path: on this thread through `direct` when given and set, else queued to the
/// control loop. `on_call` runs just before an admitted call is handed on (a connection
/// trunkd opened registers itself then, so the call's responses find it).
pub(crate) fn pass_on(
    inbound: &Inbound,
    worker: &mut Worker,
    control: &mpsc::Sender<Received>,
    direct: Option<&Direct>,
    origin: Origin,
    bytes: &[u8],
    on_call: impl FnOnce(),
) -> Passed {
    let (local, admitted) = match inbound.handle(worker, clock::now(), origin.source, bytes) {
        Decision::Answer(_) => return Passed::Answer,
        Decision::Nothing => return Passed::Done,
        Decision::Control => (specific(origin.local, origin.source), None),
        Decision::Admit(admitted) => match origin.calls_from {
            Some(calls_from) => {
                on_call();
                (specific(calls_from, origin.source), Some(admitted))
            }
            None => {
                drop(admitted);
                return overloaded(inbound, worker, origin.source, bytes);
            }
        },
    };
    if control.is_closed() {
        return Passed::ControlGone;
    }
    let received = Received {
        source: origin.source,
        local,
        connection: origin.connection,
        bytes,
        admitted,
    };
    if let Some(direct) = direct {
        direct.handle(received);
        return Passed::Done;
    }
    let is_call = received.admitted.is_some();
    match control.try_send(received.owned()) {
        Ok(()) => Passed::Done,
        Err(mpsc::error::TrySendError::Closed(_)) => Passed::ControlGone,
        Err(mpsc::error::TrySendError::Full(refused)) => {
            // The channel claim (if any) is released with the refused message; a carrier
            // whose call it was hears why.
            drop(refused);
            debug!(source = %origin.source, "control path busy: message dropped");
            if is_call {
                overloaded(inbound, worker, origin.source, bytes)
            } else {
                Passed::Done
            }
        }
    }
}

fn overloaded(inbound: &Inbound, worker: &mut Worker, source: SocketAddr, bytes: &[u8]) -> Passed {
    if inbound.reply_overloaded(worker, source, bytes) {
        Passed::Answer
    } else {
        Passed::Done
    }
}

/// The address a wildcard listener was reached at, as the kernel would pick it to
/// answer `peer` (a connected UDP socket sends nothing).
fn specific(local: SocketAddr, peer: SocketAddr) -> SocketAddr {
    if !local.ip().is_unspecified() {
        return local;
    }
    let any = SocketAddr::new(local.ip(), 0);
    std::net::UdpSocket::bind(any)
        .and_then(|probe| {
            probe.connect(peer)?;
            probe.local_addr()
        })
        .map_or(local, |found| SocketAddr::new(found.ip(), local.port()))
}
