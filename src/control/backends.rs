//! OPTIONS health checks of the backends (`[backend] options_interval`), sans IO: one
//! [`Keepalive`] per backend address, the same machine and hysteresis as a trunk's, so a
//! dead PBX is known before a call waits on it. A backend that pings down is tried after
//! the live ones (see `Control::routes`), and when every backend of a trunk is down the
//! trunk's carriers get 503 to OPTIONS.
//!
//! Backends are few: their checks live in a map scanned whole at each wake-up.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::config::Transport;
use crate::sip::Transmit;
use crate::sip::scan::Scan;
use crate::sip::transaction::TimerValues;
use crate::trunk::keepalive::{self, Event, Keepalive, Params, State};
use crate::trunk::keepalives::options_response;

/// What a status line says of a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendStatus {
    /// The backend URI as configured, and the address it is checked at.
    pub uri: String,
    pub address: SocketAddr,
    pub state: State,
    pub rtt_last: Option<Duration>,
}

impl fmt::Display for BackendStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "backend={} address={} state={}",
            self.uri,
            self.address,
            self.state.as_str()
        )?;
        if let Some(rtt) = self.rtt_last {
            write!(f, " rtt_ms={}", rtt.as_millis())?;
        }
        Ok(())
    }
}

/// One backend to check: where, and how (the keepalive's parameters).
#[derive(Debug, Clone)]
pub(crate) struct Wanted {
    pub uri: String,
    pub params: Params,
}

struct Check {
    uri: String,
    keepalive: Keepalive,
}

pub(crate) struct BackendChecks {
    timers: TimerValues,
    seed: u64,
    checks: BTreeMap<SocketAddr, Check>,
    /// The Call-ID of each check's ping in flight.
    call_ids: HashMap<String, SocketAddr>,
    transmits: VecDeque<Transmit>,
    /// State changes, with why.
    changes: VecDeque<(BackendStatus, String)>,
}

impl BackendChecks {
    pub(crate) fn new(timers: TimerValues, seed: u64) -> Self {
        BackendChecks {
            timers,
            seed,
            checks: BTreeMap::new(),
            call_ids: HashMap::new(),
            transmits: VecDeque::new(),
            changes: VecDeque::new(),
        }
    }

    /// The backends to check now: new ones start (their first ping within one interval),
    /// changed ones start again, gone ones stop.
    pub(crate) fn set(&mut self, now: Instant, timers: TimerValues, wanted: Vec<Wanted>) {
        let restart = timers != self.timers;
        self.timers = timers;
        let mut keep = BTreeMap::new();
        for wanted in wanted {
            let address = wanted.params.next_hop;
            let check = match self.checks.remove(&address) {
                Some(check) if !restart && same(check.keepalive.params(), &wanted.params) => check,
                _ => {
                    self.seed = self.seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let keepalive = Keepalive::new(wanted.params, self.timers, self.seed, now);
                    Check {
                        uri: wanted.uri,
                        keepalive,
                    }
                }
            };
            keep.insert(address, check);
        }
        self.checks = keep;
        let checks = &self.checks;
        self.call_ids
            .retain(|_, address| checks.contains_key(address));
    }

    /// Whether a backend address is checked and its checks say down.
    pub(crate) fn is_down(&self, address: &SocketAddr) -> bool {
        self.checks
            .get(address)
            .is_some_and(|check| check.keepalive.state() == State::Down)
    }

    /// The addresses whose checks say down.
    pub(crate) fn down(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.checks
            .iter()
            .filter(|(_, check)| check.keepalive.state() == State::Down)
            .map(|(address, _)| *address)
    }

    pub(crate) fn statuses(&self) -> Vec<BackendStatus> {
        self.checks
            .iter()
            .map(|(address, check)| status(*address, check))
            .collect()
    }

    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.checks
            .values()
            .filter_map(|check| check.keepalive.poll_timeout())
            .min()
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<SocketAddr> = self
            .checks
            .iter()
            .filter(|(_, check)| check.keepalive.poll_timeout().is_some_and(|at| at <= now))
            .map(|(address, _)| *address)
            .collect();
        for address in due {
            if let Some(check) = self.checks.get_mut(&address) {
                check.keepalive.handle_timeout(now);
            }
            self.collect(address);
        }
    }

    /// A response to one of our pings; false when it is none of theirs.
    pub(crate) fn handle_response(
        &mut self,
        now: Instant,
        source: SocketAddr,
        message: &Scan<'_, '_>,
    ) -> bool {
        let Ok(call_id) = message.call_id() else {
            return false;
        };
        let Some(&address) = std::str::from_utf8(call_id)
            .ok()
            .and_then(|call_id| self.call_ids.get(call_id))
        else {
            return false;
        };
        if let Some(check) = self.checks.get_mut(&address) {
            options_response(message, source, |view| {
                check.keepalive.handle_response(now, view);
            });
        }
        self.collect(address);
        true
    }

    /// A connection to `peer` failed: its ping fails.
    pub(crate) fn handle_transport_error(&mut self, now: Instant, peer: SocketAddr, why: &str) {
        if let Some(check) = self.checks.get_mut(&peer) {
            check.keepalive.handle_transport_error(now, why);
            self.collect(peer);
        }
    }

    #[must_use]
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// A backend's state changed: its status and why.
    #[must_use]
    pub(crate) fn poll_change(&mut self) -> Option<(BackendStatus, String)> {
        self.changes.pop_front()
    }

    fn collect(&mut self, address: SocketAddr) {
        let Some(check) = self.checks.get_mut(&address) else {
            return;
        };
        while let Some(transmit) = check.keepalive.poll_transmit() {
            self.transmits.push_back(transmit);
        }
        if let Some(call_id) = check.keepalive.call_id() {
            self.call_ids.insert(call_id.to_owned(), address);
        }
        while let Some(event) = check.keepalive.poll_event() {
            if let Event::StateChanged { state, reason, .. } = event {
                let reason = format!("{} ({reason})", state.as_str());
                self.changes.push_back((status(address, check), reason));
            }
        }
        let current = check.keepalive.call_id().map(str::to_owned);
        self.call_ids
            .retain(|call_id, at| *at != address || current.as_deref() == Some(call_id));
    }
}

fn status(address: SocketAddr, check: &Check) -> BackendStatus {
    BackendStatus {
        uri: check.uri.clone(),
        address,
        state: check.keepalive.state(),
        rtt_last: check.keepalive.rtt_last(),
    }
}

/// Whether two checks would ping alike (a reload that changes nothing of a backend keeps
/// its state).
fn same(a: &Params, b: &Params) -> bool {
    a.request_uri == b.request_uri
        && a.via_sent_by == b.via_sent_by
        && a.transport == b.transport
        && a.next_hop == b.next_hop
        && a.interval == b.interval
        && a.timeout == b.timeout
        && a.down_after == b.down_after
        && a.up_after == b.up_after
}

/// The keepalive parameters of a backend check.
#[allow(clippy::too_many_arguments)]
pub(crate) fn params(
    uri: &crate::sip::SipUri,
    address: SocketAddr,
    local: &str,
    user_agent: &str,
    backend: &crate::config::Backend,
) -> Params {
    let transport: Transport = crate::config::uri_transport(uri);
    let mut target = uri.clone();
    target.user = None;
    let target = target.to_string();
    Params {
        request_uri: target.clone(),
        from_uri: keepalive::default_from_uri(local),
        to_uri: target,
        via_sent_by: local.to_owned(),
        transport,
        next_hop: address,
        server_name: uri.host.bare(),
        user_agent: user_agent.to_owned(),
        interval: backend.options_interval,
        down_after: backend.options_down_after,
        up_after: backend.options_up_after,
        failure_codes: std::borrow::Cow::Borrowed(&[408, 500, 503]),
        timeout: backend.options_timeout,
    }
}
