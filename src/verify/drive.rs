//! Driving a sans-IO machine in real time: the [`Probe`] trait the OPTIONS and REGISTER
//! steps implement, the loop that feeds it the clock and the link's responses, and what
//! those responses told about us.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::time::{Instant as TokioInstant, sleep_until};

use crate::io::clock;
use crate::sip::Transmit;
use crate::sip::scan::{self, EMPTY_HEADER, MAX_HEADERS, Rport, Scan};
use crate::sip::transaction::TimerValues;

use super::transport::{Incoming, Link};

/// What the responses told about us and the carrier.
#[derive(Debug, Default)]
pub(super) struct Observed {
    pub(super) vias: Vec<SeenVia>,
    /// Responses to our requests from another address than the target: the daemon
    /// ignores them.
    pub(super) foreign: Vec<(SocketAddr, u16)>,
}

/// The top Via of a response to one of our requests (RFC 3581 `received`/`rport`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SeenVia {
    pub(super) method: &'static str,
    pub(super) source: SocketAddr,
    pub(super) received: Option<String>,
    pub(super) rport: Option<u16>,
}

/// A machine verify drives: the keepalive for OPTIONS, the registration for REGISTER.
pub(super) trait Probe {
    fn method(&self) -> &'static str;
    #[must_use]
    fn poll_transmit(&mut self) -> Option<Transmit>;
    #[must_use]
    fn poll_timeout(&self) -> Option<Instant>;
    fn handle_timeout(&mut self, now: Instant);
    fn handle_transport_error(&mut self, now: Instant, why: &str);
    /// Whether the response (by Call-ID) belongs to this machine.
    fn owns(&self, call_id: &str) -> bool;
    fn handle_response(&mut self, now: Instant, source: SocketAddr, message: &Scan<'_, '_>);
    /// Whether the outcome is known; drains the machine's events.
    fn finished(&mut self) -> bool;
}

/// Runs `probe` until it finishes or `limit` passes. Returns how many requests were
/// sent (first copies and retransmissions), or an error when the limit was hit.
pub(super) async fn drive(
    link: &mut Link,
    probe: &mut dyn Probe,
    observed: &mut Observed,
    limit: Duration,
) -> Result<u32, String> {
    let give_up = clock::now() + limit;
    let mut sent = 0;
    loop {
        // Before sending: a keepalive that timed out has already queued its next ping.
        if probe.finished() {
            return Ok(sent);
        }
        while let Some(transmit) = probe.poll_transmit() {
            sent += 1;
            if let Err(why) = link.send(&transmit).await {
                probe.handle_transport_error(clock::now(), &why);
            }
        }
        if probe.finished() {
            return Ok(sent);
        }
        if clock::now() >= give_up {
            return Err(format!("no outcome within {} s", limit.as_secs()));
        }
        let wake = probe.poll_timeout().unwrap_or(give_up).min(give_up);
        tokio::select! {
            () = sleep_until(TokioInstant::from_std(wake)) => probe.handle_timeout(clock::now()),
            incoming = link.recv() => match incoming {
                Incoming::Message { source, bytes } => {
                    deliver(link.peer, probe, observed, source, &bytes);
                }
                Incoming::Closed(why) => {
                    probe.handle_transport_error(clock::now(), &format!("connection {why}"));
                }
            },
        }
    }
}

/// Hands a response to the probe it belongs to, noting its Via; requests (a carrier
/// pinging our Contact) and strays are dropped.
fn deliver(
    peer: SocketAddr,
    probe: &mut dyn Probe,
    observed: &mut Observed,
    source: SocketAddr,
    bytes: &[u8],
) {
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    let Ok(message) = scan::scan(bytes, &mut headers) else {
        return;
    };
    let Some(code) = message.status_code() else {
        return;
    };
    let Some(call_id) = message
        .call_id()
        .ok()
        .and_then(|id| std::str::from_utf8(id).ok())
    else {
        return;
    };
    if !probe.owns(call_id) {
        return;
    }
    if source != peer {
        observed.foreign.push((source, code));
    } else if let Ok(via) = message.top_via() {
        observed.vias.push(SeenVia {
            method: probe.method(),
            source,
            received: via
                .received
                .and_then(|value| std::str::from_utf8(value).ok())
                .map(str::to_owned),
            rport: match via.rport {
                Rport::Value(port) => Some(port),
                Rport::Absent | Rport::Empty => None,
            },
        });
    }
    probe.handle_response(clock::now(), source, &message);
}

/// The longest a probe may take: Timer F for each request of a challenged exchange, and
/// some slack.
pub(super) fn probe_limit(timers: TimerValues) -> Duration {
    64 * timers.t1 * 5 + Duration::from_secs(10)
}
