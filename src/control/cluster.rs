//! The control path's side of `[cluster]` (issue 17): an admitted inbound call waits
//! here for its cluster channel, and this host registers only the trunks it holds.
//! The decisions are [`crate::cluster::Cluster`]'s; this file applies them.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::call;
use crate::call::outbound::ChannelAsk;
use crate::cluster::{Admission, Cluster, Reply, Request, Verdict};
use crate::inbound::{Admitted, BUSY_RETRY_AFTER};
use crate::sip::scan::{self, EMPTY_HEADER, MAX_HEADERS, Scan};
use crate::trunk::registrations::Registrations;

use super::Control;

/// An admitted INVITE waiting for Redis's answer. It holds its local channel meanwhile;
/// a retransmission of it is dropped (the carrier sends it again, and by then the call
/// exists or was refused), and so is a CANCEL (answered when resent, by the call).
#[derive(Debug)]
struct Waiting {
    source: SocketAddr,
    local: SocketAddr,
    connection: Option<call::Connection>,
    bytes: Vec<u8>,
    admitted: Admitted,
    call_id: Vec<u8>,
}

/// `[cluster]` on the control path.
#[derive(Debug)]
pub(crate) struct ClusterCalls {
    pub(crate) cluster: Cluster,
    waiting: HashMap<u64, Waiting>,
    waiting_calls: HashSet<Vec<u8>>,
    /// Outbound attempts asked: the cluster's ticket → the call path's ask.
    outbound: HashMap<u64, ChannelAsk>,
}

impl ClusterCalls {
    pub(crate) fn new(cluster: Cluster) -> Self {
        ClusterCalls {
            cluster,
            waiting: HashMap::new(),
            waiting_calls: HashSet::new(),
            outbound: HashMap::new(),
        }
    }
}

impl Control {
    /// `[cluster]` as configured at start (a change needs a restart).
    pub(super) fn set_up_cluster(&mut self, now: Instant) {
        let Some(settings) = self.config.cluster.clone() else {
            return;
        };
        self.registrations.hold_back();
        let mut calls = ClusterCalls::new(Cluster::new(settings, now));
        calls.cluster.set_registering(
            self.config
                .trunks
                .values()
                .filter(|trunk| Registrations::wants_registration(trunk))
                .map(|trunk| trunk.id.as_str()),
        );
        self.cluster = Some(calls);
    }

    /// After a reload: the trunks that register now.
    pub(super) fn cluster_reloaded(&mut self, now: Instant) {
        let config = std::sync::Arc::clone(&self.config);
        if let Some(calls) = &mut self.cluster {
            calls.cluster.set_registering(
                config
                    .trunks
                    .values()
                    .filter(|trunk| Registrations::wants_registration(trunk))
                    .map(|trunk| trunk.id.as_str()),
            );
        }
        if let Some(calls) = &self.cluster {
            let cluster = &calls.cluster;
            self.registrations
                .keep_granted(|id| cluster.is_registrant(id));
        }
        self.apply_registrant_changes(now);
    }

    /// An admitted INVITE, with `[cluster]`: asks Redis for the trunk's channel first
    /// (or decides alone while degraded).
    pub(super) fn admit_in_cluster(
        &mut self,
        now: Instant,
        source: SocketAddr,
        local: SocketAddr,
        connection: Option<call::Connection>,
        (message, bytes): (&Scan<'_, '_>, &[u8]),
        admitted: Admitted,
    ) {
        let Ok(call_id) = message.call_id() else {
            return;
        };
        let trunk = admitted.trunk().to_string();
        let Some(calls) = &mut self.cluster else {
            return;
        };
        // A retransmission while Redis is asked: its second channel is released here.
        if calls.waiting_calls.contains(call_id) {
            return;
        }
        // A retransmission of a call taken on: the call path answers it.
        let (max, rate) = match self.config.trunks.get(&trunk) {
            Some(config) if !self.calls.contains(call_id) => (config.max_channels, config.max_cps),
            _ => {
                self.take_admitted(now, source, local, connection, (message, bytes), admitted);
                return;
            }
        };
        let count = admitted.guard.counters().channels();
        match calls.cluster.admit(now, &trunk, count, max, rate) {
            Admission::Local(true) => {
                self.take_admitted(now, source, local, connection, (message, bytes), admitted);
            }
            Admission::Local(false) => {
                self.refuse_in_cluster(source, connection, message, &admitted, Verdict::Busy);
            }
            Admission::Asked(ticket) => {
                calls.waiting_calls.insert(call_id.to_vec());
                calls.waiting.insert(
                    ticket,
                    Waiting {
                        source,
                        local,
                        connection,
                        bytes: bytes.to_vec(),
                        admitted,
                        call_id: call_id.to_vec(),
                    },
                );
            }
        }
    }

    fn refuse_in_cluster(
        &mut self,
        source: SocketAddr,
        connection: Option<call::Connection>,
        message: &Scan<'_, '_>,
        admitted: &Admitted,
        verdict: Verdict,
    ) {
        let counters = admitted.guard.counters();
        counters.rejected_busy.fetch_add(1, Ordering::Relaxed);
        let reason = match verdict {
            Verdict::RateLimited => "Call Rate Limit Reached",
            _ => "Channel Limit Reached",
        };
        self.calls.refuse(
            source,
            connection,
            message,
            (503, reason),
            &[BUSY_RETRY_AFTER],
        );
    }

    /// Redis answered (or the link changed).
    pub(crate) fn handle_cluster(&mut self, now: Instant, reply: Reply) {
        let Some(calls) = &mut self.cluster else {
            return;
        };
        if let Some((ticket, verdict)) = calls.cluster.handle_reply(now, reply) {
            self.decide_waiting(now, ticket, Some(verdict));
        }
        self.expire_claims(now);
        self.apply_registrant_changes(now);
        self.collect_call_events(now);
        self.step_shutdown(now);
    }

    /// Claims Redis did not answer in time (or lost): decided alone.
    fn expire_claims(&mut self, now: Instant) {
        let expired = match &mut self.cluster {
            Some(calls) => calls.cluster.expired_claims(now),
            None => return,
        };
        for ticket in expired {
            self.decide_waiting(now, ticket, None);
        }
    }

    /// The channels outbound attempts wait for, asked of the cluster (or decided alone
    /// while degraded).
    pub(super) fn ask_cluster_for_channels(&mut self, now: Instant) {
        while let Some(ask) = self.calls.poll_channel_ask() {
            let Some(calls) = &mut self.cluster else {
                self.calls.channel_answer(now, ask.ticket, true);
                continue;
            };
            match calls.cluster.admit(now, &ask.trunk, ask.count, ask.max, 0) {
                Admission::Local(granted) => self.calls.channel_answer(now, ask.ticket, granted),
                Admission::Asked(ticket) => {
                    calls.outbound.insert(ticket, ask);
                }
            }
        }
    }

    fn decide_waiting(&mut self, now: Instant, ticket: u64, verdict: Option<Verdict>) {
        let Some(calls) = &mut self.cluster else {
            return;
        };
        if let Some(ask) = calls.outbound.remove(&ticket) {
            let granted = match verdict {
                Some(Verdict::Granted) => true,
                Some(Verdict::NotMember) | None => calls.cluster.within_share(ask.count, ask.max),
                Some(_) => false,
            };
            self.calls.channel_answer(now, ask.ticket, granted);
            return;
        }
        let Some(waiting) = calls.waiting.remove(&ticket) else {
            return;
        };
        calls.waiting_calls.remove(&waiting.call_id);
        let verdict = match verdict {
            Some(Verdict::NotMember) | None => {
                let counters = waiting.admitted.guard.counters();
                let max = self
                    .config
                    .trunks
                    .get(counters.id())
                    .map_or(0, |trunk| trunk.max_channels);
                match calls.cluster.within_share(counters.channels(), max) {
                    true => Verdict::Granted,
                    false => Verdict::Busy,
                }
            }
            Some(verdict) => verdict,
        };
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        let Ok(message) = scan::scan(&waiting.bytes, &mut headers) else {
            return;
        };
        if self.is_draining() {
            // The stop began while Redis was asked: refused as the hot path now would.
            let counters = waiting.admitted.guard.counters();
            counters.rejected_other.fetch_add(1, Ordering::Relaxed);
            let retry = [crate::inbound::DRAINING_RETRY_AFTER];
            self.calls.refuse(
                waiting.source,
                waiting.connection,
                &message,
                (503, "Shutting Down"),
                &retry,
            );
        } else if verdict == Verdict::Granted {
            self.take_admitted(
                now,
                waiting.source,
                waiting.local,
                waiting.connection,
                (&message, &waiting.bytes),
                waiting.admitted,
            );
        } else {
            self.refuse_in_cluster(
                waiting.source,
                waiting.connection,
                &message,
                &waiting.admitted,
                verdict,
            );
        }
    }

    /// Registrations this host gained (it registers them) or lost (un-REGISTERed).
    fn apply_registrant_changes(&mut self, now: Instant) {
        let Some(calls) = &mut self.cluster else {
            return;
        };
        let mut changes = Vec::new();
        while let Some(change) = calls.cluster.poll_change() {
            changes.push(change);
        }
        let fences: Vec<(String, bool)> =
            std::iter::from_fn(|| calls.cluster.poll_fence()).collect();
        for (trunk, fenced) in fences {
            self.registrations.set_fenced(now, &trunk, fenced);
        }
        for change in changes {
            let Some(trunk) = self.config.trunks.get(&change.trunk) else {
                continue;
            };
            if change.mine {
                self.registrations.grant(trunk);
                self.events.push_back(super::Event::Info {
                    trunk: change.trunk,
                    message: "this host is the registrant now".into(),
                });
            } else {
                self.registrations.revoke(now, &change.trunk);
                self.events.push_back(super::Event::Info {
                    trunk: change.trunk,
                    message: format!("registered by {} now", change.holder),
                });
            }
        }
        self.collect_notices(now);
    }

    /// The cluster's timers (heartbeats, write-back, claims that waited too long).
    pub(super) fn cluster_timeout(&mut self, now: Instant) {
        let Some(calls) = &mut self.cluster else {
            return;
        };
        let trunks = &self.trunks;
        calls.cluster.handle_timeout(
            now,
            || {
                trunks
                    .iter()
                    .map(|(id, slot)| (id.as_str(), slot.counters.channels()))
                    .collect()
            },
            |id| trunks.get(id).map_or(0, |slot| slot.counters.channels()),
        );
        self.expire_claims(now);
        self.apply_registrant_changes(now);
    }

    /// What a trunk's status line says of the cluster.
    pub(super) fn cluster_status(
        &self,
        trunk: &crate::config::Trunk,
        now: Instant,
    ) -> Option<crate::status::ClusterStatus> {
        let cluster = &self.cluster.as_ref()?.cluster;
        Some(crate::status::ClusterStatus {
            ok: cluster.is_ok(now),
            registrant: Registrations::wants_registration(trunk)
                .then(|| cluster.registrant(&trunk.id).map(str::to_owned)),
            mine: cluster.is_registrant(&trunk.id),
            channels: cluster.total(&trunk.id),
        })
    }

    /// How long answered claims waited for Redis (with `[cluster]`).
    pub(super) fn claim_times(&self) -> Option<&crate::trunk::histogram::Histogram> {
        Some(self.cluster.as_ref()?.cluster.claim_times())
    }

    /// This host's `node` as the cluster runs (empty without `[cluster]`).
    pub(super) fn cluster_node(&self) -> &str {
        self.cluster
            .as_ref()
            .map_or("", |calls| calls.cluster.node())
    }

    pub(super) fn cluster_deadline(&self) -> Option<Instant> {
        self.cluster.as_ref()?.cluster.poll_timeout()
    }

    /// During a shutdown: once the un-REGISTERs are done, the registrations go to the
    /// other hosts.
    pub(super) fn cluster_shutdown_step(&mut self) {
        let idle = self.registrations.is_idle();
        if let Some(calls) = &mut self.cluster
            && idle
            && !calls.cluster.has_resigned()
        {
            calls.cluster.resign_all();
        }
    }

    /// The end of a shutdown: this host's channels and lease are released.
    pub(crate) fn leave_cluster(&mut self) {
        if let Some(calls) = &mut self.cluster {
            calls.cluster.leave();
        }
    }

    /// The cluster was told everything (or there is none).
    pub(crate) fn has_left_cluster(&self) -> bool {
        self.cluster
            .as_ref()
            .is_none_or(|calls| calls.cluster.has_left())
    }

    /// A request for the shell to run against Redis.
    #[must_use]
    pub(crate) fn poll_cluster(&mut self) -> Option<Request> {
        self.cluster.as_mut()?.cluster.poll_request()
    }

    pub(super) fn cluster_wants_shell(&self) -> bool {
        self.cluster
            .as_ref()
            .is_some_and(|calls| calls.cluster.has_requests())
    }
}
