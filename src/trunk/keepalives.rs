//! Every trunk's OPTIONS keepalive ([`Keepalive`]), sans IO: which trunks ping, where,
//! and what their answers mean for the status line.
//!
//! A trunk pings when it is enabled and `options_interval` is not 0. It pings the same
//! next hop its REGISTER uses: a registering trunk's keepalive waits for the registrations'
//! DNS answer and, before each ping, follows the registrations' current next hop (failover,
//! DNS refresh), so OPTIONS never probe a target REGISTER has left; a trunk that does not
//! register asks for its own lookup.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::config::Trunk;
use crate::sip::Transmit;
use crate::sip::scan::{Method, Scan};
use crate::sip::transaction::{ResponseView, TimerValues};
use crate::trunk::deadlines::{self, Deadlines};
use crate::trunk::keepalive::{self, Event, Keepalive, Params, State};
use crate::trunk::next_hop::{self, ResolveError, ResolveRequest, Resolved, lookup_request};
use crate::trunk::random::Random;

/// Something for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Notice {
    StateChanged {
        trunk: String,
        state: State,
        reason: String,
    },
    ForeignResponse {
        trunk: String,
        source: SocketAddr,
        code: u16,
    },
    NotPinging {
        trunk: String,
        reason: String,
    },
}

/// What the status line shows about a trunk's keepalive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepaliveStatus {
    pub state: State,
    pub rtt_last: Option<Duration>,
    pub rtt_smoothed: Option<Duration>,
    /// An OPTIONS was ever answered.
    pub answered: bool,
}

struct Entry {
    keepalive: Keepalive,
    scheduled: Option<Instant>,
    call_id: Option<String>,
}

pub(crate) struct Keepalives {
    random: Random,
    timers: TimerValues,
    user_agent: String,
    entries: HashMap<String, Entry>,
    /// Trunks waiting for a DNS answer (their own, or the registrations').
    pending: HashMap<String, Trunk>,
    resolve_requests: VecDeque<ResolveRequest>,
    /// The current ping's Call-ID → trunk.
    call_ids: HashMap<String, String>,
    deadlines: Deadlines<String>,
    transmits: VecDeque<Transmit>,
    notices: VecDeque<Notice>,
}

impl Keepalives {
    pub(crate) fn new(seed: u64, timers: TimerValues, user_agent: String) -> Self {
        Keepalives {
            random: Random::new(seed),
            timers,
            user_agent,
            entries: HashMap::new(),
            pending: HashMap::new(),
            resolve_requests: VecDeque::new(),
            call_ids: HashMap::new(),
            deadlines: Deadlines::new(),
            transmits: VecDeque::new(),
            notices: VecDeque::new(),
        }
    }

    pub(crate) fn set_timers(&mut self, timers: TimerValues) {
        self.timers = timers;
    }

    pub(crate) fn wants_keepalive(trunk: &Trunk) -> bool {
        trunk.enabled && !trunk.options_interval.is_zero()
    }

    /// Starts a trunk's keepalive once its next hop is known. A registering trunk uses
    /// the registrations' lookup (its answer reaches [`Keepalives::handle_resolved`] too).
    pub(crate) fn add(&mut self, trunk: &Trunk) {
        if !Self::wants_keepalive(trunk) {
            return;
        }
        self.pending.insert(trunk.id.clone(), trunk.clone());
        if !crate::trunk::registrations::Registrations::wants_registration(trunk) {
            self.resolve_requests.push_back(lookup_request(trunk));
        }
    }

    pub(crate) fn remove(&mut self, id: &str) {
        self.pending.remove(id);
        if let Some(entry) = self.entries.remove(id)
            && let Some(call_id) = entry.call_id
        {
            self.call_ids.remove(&call_id);
        }
    }

    #[must_use]
    pub(crate) fn poll_resolve(&mut self) -> Option<ResolveRequest> {
        self.resolve_requests.pop_front()
    }

    /// A lookup waits to be taken by [`Self::poll_resolve`].
    pub(crate) fn wants_resolve(&self) -> bool {
        !self.resolve_requests.is_empty()
    }

    pub(crate) fn handle_resolved(
        &mut self,
        now: Instant,
        id: &str,
        resolved: &Result<Resolved, ResolveError>,
    ) {
        let Some(trunk) = self.pending.remove(id) else {
            return;
        };
        let resolved = match resolved {
            Ok(resolved) => resolved,
            Err(error) => {
                self.notices.push_back(Notice::NotPinging {
                    trunk: id.to_owned(),
                    reason: error.why_not_started(),
                });
                return;
            }
        };
        let params = params(&trunk, resolved, &self.user_agent);
        let keepalive = Keepalive::new(params, self.timers, self.random.next_u64(), now);
        self.entries.insert(
            id.to_owned(),
            Entry {
                keepalive,
                scheduled: None,
                call_id: None,
            },
        );
        self.schedule(id);
    }

    /// Runs the pings due at `now`. `next_hop_of` gives a registering trunk's current
    /// next hop, which the next ping follows.
    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        next_hop_of: &dyn Fn(&str) -> Option<SocketAddr>,
    ) {
        while let Some(id) = self.deadlines.pop_due(now, |id, at| {
            let entry = self.entries.get_mut(id);
            entry.is_some_and(|entry| deadlines::disarm(&mut entry.scheduled, at))
        }) {
            let Some(entry) = self.entries.get_mut(&id) else {
                continue;
            };
            if let Some(next_hop) = next_hop_of(&id)
                && next_hop != entry.keepalive.next_hop()
            {
                entry.keepalive.move_to(next_hop);
            }
            entry.keepalive.handle_timeout(now);
            self.collect(&id);
        }
    }

    /// A response to one of our pings (by Call-ID). Returns whether it was one.
    pub(crate) fn handle_response(
        &mut self,
        now: Instant,
        source: SocketAddr,
        message: &Scan<'_, '_>,
    ) -> bool {
        let Ok(call_id) = message.call_id() else {
            return false;
        };
        let Some(id) = std::str::from_utf8(call_id)
            .ok()
            .and_then(|call_id| self.call_ids.get(call_id))
            .cloned()
        else {
            return false;
        };
        if let Some(entry) = self.entries.get_mut(&id) {
            options_response(message, source, |view| {
                entry.keepalive.handle_response(now, view);
            });
        }
        self.collect(&id);
        true
    }

    /// A connection a ping went over failed.
    pub(crate) fn handle_transport_error(&mut self, now: Instant, peer: SocketAddr, why: &str) {
        let ids: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, entry)| {
                entry.keepalive.is_in_flight() && entry.keepalive.next_hop() == peer
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            if let Some(entry) = self.entries.get_mut(&id) {
                entry.keepalive.handle_transport_error(now, why);
            }
            self.collect(&id);
        }
    }

    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.poll_timeout()
    }

    #[must_use]
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    #[must_use]
    pub(crate) fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }

    /// Where a trunk's pings go, once resolved.
    pub(crate) fn next_hop(&self, id: &str) -> Option<SocketAddr> {
        self.entries.get(id).map(|entry| entry.keepalive.next_hop())
    }

    /// Trunks whose keepalive says down.
    pub(crate) fn down(&self) -> usize {
        self.entries
            .values()
            .filter(|entry| entry.keepalive.state() == State::Down)
            .count()
    }

    /// The round trips of a trunk's answered pings, while it pings.
    pub(crate) fn rtt_histogram(&self, id: &str) -> Option<&crate::trunk::histogram::Histogram> {
        Some(self.entries.get(id)?.keepalive.rtt_histogram())
    }

    pub(crate) fn status(&self, id: &str) -> Option<KeepaliveStatus> {
        let keepalive = &self.entries.get(id)?.keepalive;
        Some(KeepaliveStatus {
            state: keepalive.state(),
            rtt_last: keepalive.rtt_last(),
            rtt_smoothed: keepalive.rtt_smoothed(),
            answered: keepalive.ever_answered(),
        })
    }

    /// Moves what a keepalive produced to the shared queues and re-arms its deadline.
    fn collect(&mut self, id: &str) {
        let Some(entry) = self.entries.get_mut(id) else {
            return;
        };
        while let Some(transmit) = entry.keepalive.poll_transmit() {
            self.transmits.push_back(transmit);
        }
        let current = entry.keepalive.call_id().map(str::to_owned);
        if current != entry.call_id {
            if let Some(old) = entry.call_id.take() {
                self.call_ids.remove(&old);
            }
            if let Some(new) = &current {
                self.call_ids.insert(new.clone(), id.to_owned());
            }
            entry.call_id = current;
        }
        while let Some(event) = entry.keepalive.poll_event() {
            self.notices.push_back(match event {
                Event::StateChanged { state, reason, .. } => Notice::StateChanged {
                    trunk: id.to_owned(),
                    state,
                    reason,
                },
                Event::ForeignResponse { source, code } => Notice::ForeignResponse {
                    trunk: id.to_owned(),
                    source,
                    code,
                },
            });
        }
        self.schedule(id);
    }

    fn schedule(&mut self, id: &str) {
        let Some(entry) = self.entries.get_mut(id) else {
            return;
        };
        let at = entry.keepalive.poll_timeout();
        self.deadlines
            .arm(&mut entry.scheduled, at, || id.to_owned());
    }
}

/// `then` on the view of `message` from `source` when it is a response to OPTIONS.
pub(crate) fn options_response(
    message: &Scan<'_, '_>,
    source: SocketAddr,
    then: impl FnOnce(&ResponseView<'_>),
) {
    let (Some(code), Ok(cseq), Ok(via)) =
        (message.status_code(), message.cseq(), message.top_via())
    else {
        return;
    };
    if cseq.method != Method::Options {
        return;
    }
    let reason = match message.start_line() {
        crate::sip::scan::StartLine::Response { reason, .. } => String::from_utf8_lossy(reason),
        _ => std::borrow::Cow::Borrowed(""),
    };
    let branch = via
        .branch
        .and_then(|branch| std::str::from_utf8(branch).ok())
        .unwrap_or_default();
    then(&ResponseView {
        source,
        code,
        reason: &reason,
        branch,
        cseq: cseq.sequence,
    });
}

fn params(trunk: &Trunk, resolved: &Resolved, user_agent: &str) -> Params {
    let local = next_hop::sent_by(resolved.local);
    let target = next_hop::domain_uri(trunk);
    let from_uri = match &trunk.options_from {
        Some(uri) => uri.to_string(),
        None => keepalive::default_from_uri(&local),
    };
    Params {
        request_uri: target.clone(),
        from_uri,
        to_uri: target,
        via_sent_by: local,
        transport: trunk.transport,
        next_hop: resolved.next_hop,
        server_name: next_hop::server_name(trunk),
        user_agent: user_agent.to_owned(),
        interval: trunk.options_interval,
        down_after: trunk.options_down_after,
        timeout: trunk.options_timeout,
        up_after: trunk.options_up_after,
        failure_codes: trunk.options_failure_codes.clone(),
    }
}
