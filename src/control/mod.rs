//! The control path, sans IO ([`Control`]): every trunk's config and runtime across
//! reloads, their registrations and keepalives, the calls the hot path admitted, the
//! snapshot the hot path decides on, backends, the status schedule, and the shutdown
//! ([`shutdown`]: unregister, drain, settle).
//!
//! One task owns it. The shell feeds it `now` and inputs (`handle_message`,
//! `handle_timeout`, `handle_reload`, `handle_resolved`, `shutdown`, …) and drains
//! `poll_transmit`, `poll_resolve`, `poll_event` and `poll_timeout`, until
//! [`Control::is_stopped`]. It never reads the clock, touches a socket or a file, so tests
//! drive it on a virtual clock (`tests.rs`). A trunk's [`TrunkRuntime`] and counters
//! survive any reload that leaves the trunk unchanged.

pub(crate) mod backends;
mod cluster;
pub(crate) mod metrics;
mod names;
mod outbound;
pub(crate) mod shutdown;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::call::{self, CallEvent, Calls};
use crate::config::{Config, ConfigErrors, Diff, StatusLog, Transport, Trunk, TrunkField, diff};
use crate::inbound::snapshot::{self, Inputs, Snapshot, TrunkCounters};
use crate::inbound::{Admitted, Inbound};
use crate::sip::Transmit;
use crate::sip::scan::{self, EMPTY_HEADER, MAX_HEADERS};
use crate::status::{Summary, TrunkState, TrunkStatus};
use crate::trunk::keepalives::{self, Keepalives};
use crate::trunk::next_hop::{self, ResolveError, ResolveKey, ResolveRequest, Resolved};
use crate::trunk::registration;
use crate::trunk::registrations::{Notice, Registrations};
use shutdown::{Progress, Shutdown};

/// What the control path needs from its environment besides the config.
#[derive(Debug, Clone)]
pub struct Context {
    /// Seeds Call-IDs, tags, branches, cnonces and jitter (the shell draws it from the OS).
    pub seed: u64,
    pub user_agent: String,
}

impl Default for Context {
    fn default() -> Self {
        Context {
            seed: 0,
            user_agent: format!("trunkd/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// Runtime state of one trunk; replaced only when its config changes.
#[derive(Debug)]
pub struct TrunkRuntime {
    /// When this trunk's current config took effect.
    pub since: Instant,
}

#[derive(Debug, Clone)]
pub struct TrunkSlot {
    pub config: Arc<Trunk>,
    pub runtime: Arc<TrunkRuntime>,
    /// The hot path's counters of this trunk id: the same across reloads, so calls in
    /// progress count on whatever a reload changed.
    pub counters: Arc<TrunkCounters>,
    /// The carrier answered OPTIONS or accepted a REGISTER ("verify trunk" of trunk APIs):
    /// sticky until the fields that decide where the trunk goes change.
    pub verified: bool,
    /// [`TrunkStatus::line_key`] of what the log last said about this trunk (its last
    /// event line, or the last report, whether or not that report logged its line); `None`
    /// until the start-up report. With `status_log = "changes"` a report logs the trunk
    /// only when its key moved or it is in trouble.
    logged: Option<u64>,
}

impl TrunkSlot {
    fn new(config: Arc<Trunk>, now: Instant) -> Self {
        TrunkSlot {
            counters: Arc::new(TrunkCounters::new(&config.id)),
            config,
            runtime: Arc::new(TrunkRuntime { since: now }),
            verified: false,
            logged: None,
        }
    }

    pub fn state(&self) -> TrunkState {
        if self.config.enabled {
            TrunkState::Idle
        } else {
            TrunkState::Disabled
        }
    }

    pub fn status(&self) -> TrunkStatus {
        TrunkStatus::new(&self.config, self.state())
    }
}

/// Why a trunk's line is logged outside the periodic report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeReason {
    Added,
    /// The fields whose change caused it.
    Changed(Vec<TrunkField>),
    /// Its registration changed state; the reason as the registrar gave it.
    Registration(String),
    /// Its OPTIONS keepalive went up or down; the new state and the answer that did it.
    Options(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The start-up and periodic report: the trunks `[daemon] status_log` selects (every
    /// one, or those in trouble or changed since the log last showed them), then the
    /// summary.
    Report {
        trunks: Vec<TrunkStatus>,
        summary: Summary,
    },
    /// A trunk came into being or changed; its new status.
    TrunkUpdated {
        status: TrunkStatus,
        reason: ChangeReason,
    },
    TrunkRemoved {
        id: String,
    },
    /// A new generation is in force.
    Reloaded {
        generation: u64,
        diff: Diff,
        summary: Summary,
    },
    /// The new files were invalid; the running generation stays.
    ReloadRejected {
        errors: ConfigErrors,
        generation: u64,
    },
    /// Something an operator should see that is not a state change (a trunk that cannot
    /// register, a response from an unexpected address).
    Warning {
        trunk: String,
        message: String,
    },
    /// Something worth a line that is not a problem (where a trunk's calls now go).
    Info {
        trunk: String,
        message: String,
    },
    /// What the shutdown under way has to say (draining, a deadline passed).
    Shutdown(shutdown::Notice),
    /// A backend's health check changed its state.
    BackendUpdated {
        status: backends::BackendStatus,
        reason: String,
    },
}

pub struct Control {
    config: Arc<Config>,
    /// The trunks a dialled number is matched against: enabled, `direction` outbound or
    /// both, in the config's order. Kept per config so that an outbound call walks these
    /// rather than every trunk (most of thousands are usually inbound-only DIDs).
    dialable: Arc<[Arc<Trunk>]>,
    generation: u64,
    trunks: BTreeMap<String, TrunkSlot>,
    registrations: Registrations,
    /// The hot path's shared state: the snapshot the control path publishes, its counters.
    inbound: Arc<Inbound>,
    /// The next-hop addresses changed: publish a new snapshot at this instant (batched,
    /// so thousands of DNS answers at start-up rebuild it a few times, not thousands).
    snapshot_due: Option<Instant>,
    epoch: Instant,
    calls: Calls,
    keepalives: Keepalives,
    /// Backends that left an INVITE unanswered, until when they count as down (OPTIONS
    /// answered 503); a backend answering anything clears it at once.
    backends_down: BTreeMap<SocketAddr, Instant>,
    /// Backend URIs given by name (`host:port`) and their resolved addresses, first one
    /// used; re-resolved at `backend_resolve_at`.
    backend_names: BTreeMap<String, Vec<SocketAddr>>,
    /// Text every call routed alike writes, formatted once per config.
    names: names::Names,
    backend_resolve_at: Option<Instant>,
    backend_lookups: VecDeque<ResolveRequest>,
    /// On a UDP listener bound to every address: our address that faces each backend
    /// (the kernel's choice, asked of the shell), which the Via and Record-Route toward
    /// that backend name.
    facing: HashMap<IpAddr, IpAddr>,
    /// Backends whose facing address the shell is asked for, and those asked for.
    probes: VecDeque<IpAddr>,
    probing: HashSet<IpAddr>,
    /// When the next periodic status report is due.
    next_report: Instant,
    events: VecDeque<Event>,
    /// Asked to stop: when it may (see [`Control::shutdown`]).
    shutdown: Option<Shutdown>,
    /// The weighted draw among outbound trunks of equal priority.
    random: crate::trunk::random::Random,
    /// Every trunk's next hop as last resolved: where outbound calls go, and our
    /// address toward it.
    hops: HashMap<String, Resolved>,
    /// Next hops of trunks that call out and neither register nor ping, to look up.
    outbound_lookups: VecDeque<ResolveRequest>,
    /// `max_cps_outbound`: each trunk's GCRA theoretical arrival time.
    cps_out: HashMap<String, Instant>,
    /// Why outbound calls last skipped each trunk, logged once per reason.
    skip_reasons: HashMap<String, &'static str>,
    /// When the next hops looked up for calls alone are looked up again (DNS TTL).
    hop_refresh: outbound::Refresh,
    /// OPTIONS health checks of the backends, and our address toward each (by the key of
    /// its lookup), which their Via names.
    checks: backends::BackendChecks,
    backend_locals: BTreeMap<String, SocketAddr>,
    user_agent: String,
    /// `[cluster]`: channels and registrations shared with other hosts through Redis.
    cluster: Option<cluster::ClusterCalls>,
}

impl Control {
    /// Starts generation 1 with a default context and queues the start-up report.
    pub fn new(config: Config, now: Instant) -> Self {
        Self::with_context(config, now, Context::default())
    }

    pub fn with_context(config: Config, now: Instant, context: Context) -> Self {
        let trunks: BTreeMap<String, TrunkSlot> = config
            .trunks
            .iter()
            .map(|(id, trunk)| (id.clone(), TrunkSlot::new(trunk.clone(), now)))
            .collect();
        let daemon = &config.daemon;
        let config_timers = daemon.timers;
        let mut registrations =
            Registrations::new(context.seed, daemon.timers, context.user_agent.clone());
        registrations.set_policy(
            daemon.timers,
            daemon.register_retry_min,
            daemon.register_retry_max,
        );
        let mut keepalives = Keepalives::new(
            context.seed ^ 0x0971_0125,
            daemon.timers,
            context.user_agent.clone(),
        );
        if config.cluster.is_some() {
            registrations.hold_back();
        }
        for slot in trunks.values() {
            registrations.add(&slot.config);
            keepalives.add(&slot.config);
        }
        let calls = Calls::new(
            call_settings(&config, config.cluster.is_some()),
            context.seed ^ 0x5eed_ca11,
        );
        let inbound = Arc::new(Inbound::new(
            build_snapshot(
                &config,
                &trunks,
                &registrations,
                &keepalives,
                &[],
                &BTreeMap::new(),
                now,
            ),
            context.seed,
        ));
        let mut control = Control {
            next_report: now + config.daemon.status_interval,
            dialable: outbound::dialable(&config),
            config: Arc::new(config),
            generation: 1,
            trunks,
            registrations,
            inbound,
            snapshot_due: None,
            epoch: now,
            calls,
            keepalives,
            backends_down: BTreeMap::new(),
            backend_names: BTreeMap::new(),
            names: names::Names::default(),
            backend_resolve_at: None,
            backend_lookups: VecDeque::new(),
            facing: HashMap::new(),
            probes: VecDeque::new(),
            probing: HashSet::new(),
            events: VecDeque::new(),
            shutdown: None,
            random: crate::trunk::random::Random::new(context.seed ^ 0x0d1a_1007),
            hops: HashMap::new(),
            outbound_lookups: VecDeque::new(),
            cps_out: HashMap::new(),
            skip_reasons: HashMap::new(),
            hop_refresh: outbound::Refresh::default(),
            checks: backends::BackendChecks::new(config_timers, context.seed ^ 0xbac0_e7d5),
            backend_locals: BTreeMap::new(),
            user_agent: context.user_agent.clone(),
            cluster: None,
        };
        control.set_up_cluster(now);
        let config = Arc::clone(&control.config);
        for trunk in config.trunks.values() {
            control.lookup_outbound_hop(trunk);
        }
        control.collect_notices(now);
        control.lookup_backend_names(now);
        control.probe_backends();
        control.queue_report(now);
        control
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn trunk(&self, id: &str) -> Option<&TrunkSlot> {
        self.trunks.get(id)
    }

    pub fn summary(&self) -> Summary {
        let counters = &self.inbound.counters;
        Summary {
            trunks: self.trunks.len(),
            enabled: self.trunks.values().filter(|s| s.config.enabled).count(),
            generation: self.generation,
            active_calls: self.calls.active(),
            active_outbound: self.calls.active_outbound(),
            unknown_source: counters.unknown_source.load(Ordering::Relaxed),
            malformed: counters.malformed.load(Ordering::Relaxed),
            registering: self
                .trunks
                .values()
                .filter(|slot| slot.config.enabled && slot.config.register)
                .count(),
            registered: self
                .registrations
                .count(|state| state == registration::State::Registered),
            register_failing: self.registrations.count(registration::State::is_failing),
            options_down: self.keepalives.down(),
        }
    }

    /// Applies a freshly loaded generation, or records why it was refused. Only trunks
    /// the diff names are touched; the others keep their slot as it was.
    pub fn handle_reload(&mut self, now: Instant, loaded: Result<Config, ConfigErrors>) {
        let config = match loaded {
            Ok(config) => config,
            Err(errors) => {
                self.events.push_back(Event::ReloadRejected {
                    errors,
                    generation: self.generation,
                });
                return;
            }
        };
        let diff = diff(&self.config, &config);
        self.registrations.set_policy(
            config.daemon.timers,
            config.daemon.register_retry_min,
            config.daemon.register_retry_max,
        );
        self.keepalives.set_timers(config.daemon.timers);
        for id in &diff.removed {
            self.trunks.remove(id);
            self.hops.remove(id);
            self.cps_out.remove(id);
            self.skip_reasons.remove(id);
            self.hop_refresh.remove(id);
            self.registrations.remove(now, id);
            self.keepalives.remove(id);
            self.events
                .push_back(Event::TrunkRemoved { id: id.clone() });
        }
        for id in &diff.added {
            let mut slot = TrunkSlot::new(config.trunks[id].clone(), now);
            self.registrations.add(&slot.config);
            self.keepalives.add(&slot.config);
            self.lookup_outbound_hop(&config.trunks[id]);
            slot.logged = Some(self.status_of(&slot, now).line_key());
            self.events.push_back(Event::TrunkUpdated {
                status: slot.status(),
                reason: ChangeReason::Added,
            });
            self.trunks.insert(id.clone(), slot);
        }
        for (id, fields) in &diff.changed {
            let mut slot = TrunkSlot::new(config.trunks[id].clone(), now);
            self.registrations.change(now, &slot.config, fields);
            if fields.iter().any(|field| NEXT_HOP_FIELDS.contains(field)) {
                self.hops.remove(id);
            }
            self.lookup_outbound_hop(&config.trunks[id]);
            let moved = fields.iter().any(|field| KEEPALIVE_FIELDS.contains(field));
            if moved {
                self.keepalives.remove(id);
                self.keepalives.add(&slot.config);
            }
            if let Some(old) = self.trunks.get(id) {
                slot.verified = !moved && old.verified;
                slot.counters = Arc::clone(&old.counters);
            }
            let status = self.status_of(&slot, now);
            slot.logged = Some(status.line_key());
            self.events.push_back(Event::TrunkUpdated {
                status,
                reason: ChangeReason::Changed(fields.clone()),
            });
            self.trunks.insert(id.clone(), slot);
        }
        self.collect_notices(now);
        // [cluster] is as it was at start (a change needs a restart).
        self.calls
            .set_settings(call_settings(&config, self.cluster.is_some()));
        let backends_changed = config.backend != self.config.backend
            || config.trunks.values().map(|t| &t.route_to).ne(self
                .config
                .trunks
                .values()
                .map(|t| &t.route_to));
        let down: Vec<SocketAddr> = self.down_backends();
        self.inbound.publish(build_snapshot(
            &config,
            &self.trunks,
            &self.registrations,
            &self.keepalives,
            &down,
            &self.backend_names,
            self.epoch,
        ));
        self.snapshot_due = None;
        if config.daemon.status_interval != self.config.daemon.status_interval {
            self.next_report = now + config.daemon.status_interval;
        }
        self.dialable = outbound::dialable(&config);
        self.config = Arc::new(config);
        self.names.clear();
        if backends_changed {
            self.lookup_backend_names(now);
        }
        self.sync_checks(now);
        self.probe_backends();
        self.cluster_reloaded(now);
        self.generation += 1;
        self.events.push_back(Event::Reloaded {
            generation: self.generation,
            diff,
            summary: self.summary(),
        });
    }

    /// Runs what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.registrations.handle_timeout(now);
        self.collect_notices(now);
        self.calls.handle_timeout(now);
        self.collect_call_events(now);
        let registrations = &self.registrations;
        self.keepalives
            .handle_timeout(now, &|id| registrations.next_hop(id));
        self.collect_notices(now);
        if self.backend_resolve_at.is_some_and(|at| now >= at) {
            self.lookup_backend_names(now);
        }
        self.refresh_hops(now);
        self.checks.handle_timeout(now);
        self.collect_checks();
        self.cluster_timeout(now);
        let before = self.backends_down.len();
        self.backends_down.retain(|_, until| *until > now);
        if self.snapshot_due.is_some_and(|due| now >= due) || self.backends_down.len() != before {
            self.snapshot_due = None;
            self.publish_snapshot();
        }
        if now >= self.next_report {
            self.queue_report(now);
            let interval = self.config.daemon.status_interval;
            // After a stall (suspend, overload) report once, not once per missed interval.
            self.next_report = (self.next_report + interval).max(now + interval / 2);
        }
        self.step_shutdown(now);
    }

    /// When `handle_timeout` next has something to do.
    #[must_use]
    pub fn poll_timeout(&self) -> Instant {
        [
            self.registrations.poll_timeout(),
            self.calls.poll_timeout(),
            self.keepalives.poll_timeout(),
            self.snapshot_due,
            self.backends_down.values().min().copied(),
            self.backend_resolve_at,
            self.hop_refresh.first(),
            self.checks.poll_timeout(),
            self.shutdown.as_ref().and_then(Shutdown::poll_timeout),
            self.cluster_deadline(),
        ]
        .into_iter()
        .flatten()
        .fold(self.next_report, Instant::min)
    }

    /// The hot path's shared state, for the socket tasks.
    pub fn inbound(&self) -> Arc<Inbound> {
        Arc::clone(&self.inbound)
    }

    /// Every trunk's status and the summary, as the status file shows them.
    pub fn statuses(&self, now: Instant) -> (Summary, Vec<TrunkStatus>) {
        let trunks = self
            .trunks
            .values()
            .map(|slot| self.status_of(slot, now))
            .collect();
        (self.summary(), trunks)
    }

    /// A shutdown is under way: new calls get 503 (see [`Control::shutdown`]).
    pub fn is_draining(&self) -> bool {
        self.shutdown.is_some()
    }

    /// Calls in progress (setting up or answered).
    pub fn active_calls(&self) -> usize {
        self.calls.active()
    }

    /// Calls still remembered, ended ones lingering for retransmissions included.
    pub fn calls_remembered(&self) -> usize {
        self.calls.len()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// A message the hot path handed over: a response, a request inside a call, or an
    /// admitted INVITE with its claimed channel. `local` is our UDP address it reached
    /// (for a call over a connection: the UDP listener the call continues from);
    /// `connection` says how it came when not over UDP.
    pub fn handle_message(
        &mut self,
        now: Instant,
        source: SocketAddr,
        local: SocketAddr,
        connection: Option<call::Connection>,
        bytes: &[u8],
        admitted: Option<Admitted>,
    ) {
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        let Ok(message) = scan::scan(bytes, &mut headers) else {
            // Only a response can be malformed here: the hot path dropped (and counted)
            // every other malformed message, and its lean scan refuses what this does.
            self.inbound.count_malformed();
            return;
        };
        if let Some(admitted) = admitted {
            match self.cluster.is_some() {
                true => self.admit_in_cluster(
                    now,
                    source,
                    local,
                    connection,
                    (&message, bytes),
                    admitted,
                ),
                false => {
                    self.take_admitted(now, source, local, connection, (&message, bytes), admitted);
                }
            }
        } else if self.is_dial_out(source, &message) {
            let key = self.inbound.transaction_key(&message);
            let dial = self.dial(now, local, &message);
            self.calls
                .handle_outbound(now, source, (&message, bytes), key, dial);
            if let Ok(call_id) = message.call_id()
                && self.calls.contains(call_id)
            {
                self.inbound.invite_started(key);
                self.inbound.call_started(call_id);
            }
        } else if message.is_request() {
            self.calls.handle_request(now, source, &message);
        } else if self.registrations.handle_response(now, source, &message)
            || self.keepalives.handle_response(now, source, &message)
        {
            self.collect_notices(now);
        } else if self.checks.handle_response(now, source, &message) {
            self.collect_checks();
        } else {
            self.calls.handle_response(now, source, &message);
        }
        self.collect_call_events(now);
        self.step_shutdown(now);
    }

    /// Takes an admitted INVITE on: to the trunk's backends.
    fn take_admitted(
        &mut self,
        now: Instant,
        source: SocketAddr,
        local: SocketAddr,
        connection: Option<call::Connection>,
        (message, bytes): (&scan::Scan<'_, '_>, &[u8]),
        admitted: Admitted,
    ) {
        let key = self.inbound.transaction_key(message);
        let user = message.request_uri_user();
        let routes = self.routes(admitted.trunk(), local, connection, user);
        self.calls.handle_invite(
            now,
            source,
            connection,
            (message, bytes),
            admitted,
            key,
            routes,
        );
        // Only a call that exists has a transaction for retransmissions to reach;
        // an INVITE refused here (no backend address, loop) was answered statelessly.
        if let Ok(call_id) = message.call_id()
            && self.calls.contains(call_id)
        {
            self.inbound.invite_started(key);
            self.inbound.call_started(call_id);
        }
    }

    /// Where an admitted call of `trunk` goes, in the order to try: its `route_to`, else
    /// the `[backend]` pool by priority and weight, the backends counted as down last
    /// (calls are their probe when every one is down).
    fn routes(
        &mut self,
        trunk: &str,
        local: SocketAddr,
        connection: Option<call::Connection>,
        user: Option<&[u8]>,
    ) -> Vec<call::Route> {
        let whole = Arc::clone(&self.config);
        let Some(config) = whole.trunks.get(trunk) else {
            return Vec::new();
        };
        let entries = match config.route_to.is_empty() {
            false => &config.route_to[..],
            true => whole
                .backend
                .as_ref()
                .map_or(&[][..], |backend| &backend.uris[..]),
        };
        // One backend, as most trunks have: no order to draw, nothing to put last.
        if let [only] = entries {
            let route = self.route(&whole, config, &only.uri, (local, connection), user);
            return route.into_iter().collect();
        }
        let pool: Vec<(&crate::sip::SipUri, u32, u32)> = entries
            .iter()
            .map(|entry| (&entry.uri, entry.priority, entry.weight))
            .collect();
        let order = if pool.len() > 1 {
            let keys: Vec<call::outbound::Candidate> = pool
                .iter()
                .map(|&(_, priority, weight)| call::outbound::Candidate {
                    prefix: 0,
                    priority,
                    weight,
                })
                .collect();
            call::outbound::order(&keys, |n| self.random.below(n))
        } else {
            (0..pool.len()).collect()
        };
        let (mut live, mut down) = (Vec::new(), Vec::new());
        for index in order {
            let Some(route) = self.route(&whole, config, pool[index].0, (local, connection), user)
            else {
                continue;
            };
            if self.backends_down.contains_key(&route.callee) || self.checks.is_down(&route.callee)
            {
                down.push(route);
            } else {
                live.push(route);
            }
        }
        live.extend(down);
        live
    }

    /// The way to one backend `uri`, with the dialled user kept when the URI names none;
    /// `None` while it has no address, or when trunkd has no listener of its transport
    /// (the backend could not reach us back inside the call).
    fn route(
        &mut self,
        whole: &Config,
        config: &Trunk,
        uri: &crate::sip::SipUri,
        (local, connection): (SocketAddr, Option<call::Connection>),
        user: Option<&[u8]>,
    ) -> Option<call::Route> {
        let backend = backend_address(uri, &self.backend_names)?;
        let transport = crate::config::uri_transport(uri);
        let public = whole.daemon.public_address.as_ref();
        // On a wildcard listener the backend may sit behind another of our addresses than
        // the one the carrier reached (a public and a private interface): the backend gets
        // that one, the carrier keeps its own (RFC 5658), once the shell has said which.
        let mut toward_backend = local;
        if self.wildcard_udp() {
            match self.facing.get(&backend.ip()) {
                Some(&ip) if local.ip().is_ipv4() == ip.is_ipv4() => {
                    toward_backend = SocketAddr::new(ip, local.port());
                }
                Some(_) => {}
                None => self.want_probe(backend.ip()),
            }
        }
        // Over TCP or TLS, our listener of that transport is what the backend reaches us
        // by (at the address facing it when the listener is a wildcard).
        if transport != Transport::Udp {
            let listener = whole.daemon.listen.iter().find(|listen| {
                listen.transport == transport && listen.address.is_ipv4() == backend.is_ipv4()
            })?;
            let ip = match listener.address.ip() {
                ip if ip.is_unspecified() => toward_backend.ip(),
                ip => ip,
            };
            toward_backend = SocketAddr::new(ip, listener.address.port());
        }
        let names = &mut self.names;
        let caller_side = match connection {
            Some(connection) if connection.transport != Transport::Udp => connection
                .listener
                .map(|listener| (connection.transport, names.sent_by(public, listener))),
            _ if toward_backend != local || transport != Transport::Udp => {
                Some((Transport::Udp, names.sent_by(public, local)))
            }
            _ => None,
        };
        Some(call::Route {
            sent_by: names.sent_by(public, toward_backend),
            caller_side,
            server_name: names.bare(next_hop::server_host(config)),
            callee: backend,
            callee_transport: transport,
            callee_name: names.bare(&uri.host),
            request_uri: names.request_uri(uri, user),
        })
    }

    fn collect_call_events(&mut self, now: Instant) {
        self.ask_cluster_for_channels(now);
        for (key, call_id) in self.calls.take_finished_keys() {
            self.inbound.invite_ended(key);
            self.inbound.call_ended(&call_id);
        }
        let mut health_changed = false;
        while let Some(event) = self.calls.poll_event() {
            match event {
                CallEvent::Warning { trunk, message } => {
                    self.events.push_back(Event::Warning { trunk, message });
                }
                CallEvent::BackendUnreachable(backend, trunk) => {
                    health_changed |= self
                        .backends_down
                        .insert(backend, now + BACKEND_DOWN_HOLD)
                        .is_none();
                    self.events.push_back(Event::Warning {
                        trunk,
                        message: format!(
                            "backend {backend} is not answering: counted down for {}s (OPTIONS from carriers get 503 while every backend of a trunk is)",
                            BACKEND_DOWN_HOLD.as_secs()
                        ),
                    });
                }
                CallEvent::BackendFailed(backend, _) => {
                    // Left out of the next calls' first choices for a while; the call
                    // path said which trunk and why.
                    health_changed |= self
                        .backends_down
                        .insert(backend, now + BACKEND_DOWN_HOLD)
                        .is_none();
                }
                CallEvent::BackendAnswered(backend) => {
                    health_changed |= self.backends_down.remove(&backend).is_some();
                }
            }
        }
        if health_changed {
            self.publish_snapshot();
        }
    }

    fn publish_snapshot(&mut self) {
        let down: Vec<SocketAddr> = self.down_backends();
        self.inbound.publish(build_snapshot(
            &self.config,
            &self.trunks,
            &self.registrations,
            &self.keepalives,
            &down,
            &self.backend_names,
            self.epoch,
        ));
    }

    /// The shell's answer to a [`Control::poll_resolve`] request.
    pub fn handle_resolved(
        &mut self,
        now: Instant,
        key: &ResolveKey,
        resolved: Result<Resolved, ResolveError>,
    ) {
        let trunk = match key {
            ResolveKey::Trunk(trunk) => trunk,
            ResolveKey::Backend(name) => {
                self.backend_resolved(now, name, resolved);
                return;
            }
        };
        if let Ok(resolved) = &resolved {
            let previous = self.hops.insert(trunk.clone(), resolved.clone());
            // The first answer of every trunk would be a line per trunk at start (100,000
            // of them): only with status_log = "all"; a move is always worth a line.
            let every = self.config.daemon.status_log == crate::config::StatusLog::All;
            let moved = match previous {
                Some(old) => old.next_hop != resolved.next_hop,
                None => every,
            };
            let for_calls = self.config.trunks.get(trunk).is_some_and(|config| {
                config.enabled && config.direction != crate::config::Direction::Inbound
            });
            if moved && for_calls {
                self.events.push_back(Event::Info {
                    trunk: trunk.clone(),
                    message: format!(
                        "outbound calls go to {} (from {})",
                        resolved.next_hop, resolved.local
                    ),
                });
            }
        }
        self.schedule_hop_refresh(now, trunk, resolved.as_ref().ok());
        self.keepalives.handle_resolved(now, trunk, &resolved);
        self.registrations.handle_resolved(now, trunk, resolved);
        self.collect_notices(now);
        // A next hop's addresses are allowed to send requests (allow_next_hop).
        self.snapshot_due.get_or_insert(now + SNAPSHOT_BATCH);
        self.step_shutdown(now);
    }

    /// A connection the shell opened for us failed or closed.
    pub fn handle_transport_error(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        transport: crate::config::Transport,
        why: &str,
    ) {
        self.registrations
            .handle_transport_error(now, peer, transport, why);
        self.keepalives.handle_transport_error(now, peer, why);
        self.calls.handle_transport_error(now, peer);
        self.checks.handle_transport_error(now, peer, why);
        self.collect_checks();
        self.collect_call_events(now);
        self.collect_notices(now);
        self.step_shutdown(now);
    }

    /// The shell has more to do than send: events to log, lookups or probes to start.
    /// A thread that handled a message without the rest of the shell nudges it then.
    pub fn wants_shell(&self) -> bool {
        !self.events.is_empty()
            || !self.probes.is_empty()
            || !self.backend_lookups.is_empty()
            || self.registrations.wants_resolve()
            || self.keepalives.wants_resolve()
            || !self.outbound_lookups.is_empty()
            || self.cluster_wants_shell()
    }

    /// A next hop the shell should resolve.
    #[must_use]
    pub fn poll_resolve(&mut self) -> Option<ResolveRequest> {
        self.registrations
            .poll_resolve()
            .or_else(|| self.keepalives.poll_resolve())
            .or_else(|| self.backend_lookups.pop_front())
            .or_else(|| self.outbound_lookups.pop_front())
    }

    /// Whether a UDP listener is bound to every address (and no `public_address` names
    /// trunkd instead): calls then name, toward each backend, our address that faces it.
    fn wildcard_udp(&self) -> bool {
        let daemon = &self.config.daemon;
        daemon.public_address.is_none()
            && daemon
                .listen
                .iter()
                .any(|l| l.transport == Transport::Udp && l.address.ip().is_unspecified())
    }

    /// Asks again which of our addresses faces each backend (at start and on reload).
    fn probe_backends(&mut self) {
        if !self.wildcard_udp() {
            self.facing.clear();
            return;
        }
        let config = Arc::clone(&self.config);
        let addresses: Vec<SocketAddr> = backend_uris(&config)
            .filter_map(|uri| backend_address(uri, &self.backend_names))
            .collect();
        for address in addresses {
            self.want_probe(address.ip());
        }
    }

    fn want_probe(&mut self, backend: IpAddr) {
        if self.probing.insert(backend) {
            self.probes.push_back(backend);
        }
    }

    /// A backend whose facing address the shell should find (see [`Self::handle_probe`]).
    #[must_use]
    pub fn poll_probe(&mut self) -> Option<IpAddr> {
        self.probes.pop_front()
    }

    /// Our address that faces `backend`, as the kernel's routing table says (`None`: no
    /// route; calls then name the address the carrier reached).
    pub fn handle_probe(&mut self, backend: IpAddr, local: Option<IpAddr>) {
        self.probing.remove(&backend);
        match local {
            Some(local) => self.facing.insert(backend, local),
            None => self.facing.remove(&backend),
        };
    }

    /// Asks for every backend given by name to be resolved (at start, on reload, and
    /// every [`BACKEND_RESOLVE_INTERVAL`]).
    /// With health checks on, IP-address backends are looked up too: the answer says
    /// which of our addresses their pings name.
    fn lookup_backend_names(&mut self, now: Instant) {
        let config = Arc::clone(&self.config);
        let checked = config
            .backend
            .as_ref()
            .is_some_and(|backend| !backend.options_interval.is_zero());
        let uris = backend_uris(&config).filter(|uri| checked || uri.host.ip().is_none());
        let mut wanted = std::collections::BTreeSet::new();
        for uri in uris {
            let key = backend_key(uri);
            if wanted.insert(key.clone()) {
                self.backend_lookups.push_back(ResolveRequest {
                    key: ResolveKey::Backend(key),
                    host: uri.host.bare(),
                    port: Some(crate::config::uri_port(uri)),
                    transport: crate::config::uri_transport(uri),
                });
            }
        }
        self.backend_names.retain(|key, _| wanted.contains(key));
        self.backend_locals.retain(|key, _| wanted.contains(key));
        self.sync_checks(now);
        self.backend_resolve_at = (!wanted.is_empty()).then(|| now + BACKEND_RESOLVE_INTERVAL);
    }

    fn backend_resolved(
        &mut self,
        now: Instant,
        key: &str,
        resolved: Result<Resolved, ResolveError>,
    ) {
        match resolved {
            Ok(resolved) => {
                if self.backend_locals.insert(key.to_owned(), resolved.local)
                    != Some(resolved.local)
                {
                    self.sync_checks(now);
                }
                let addresses: Vec<SocketAddr> = std::iter::once(resolved.next_hop)
                    .chain(resolved.alternatives)
                    .collect();
                if self.backend_names.get(key) != Some(&addresses) {
                    for address in &addresses {
                        if self.wildcard_udp() && !self.facing.contains_key(&address.ip()) {
                            self.want_probe(address.ip());
                        }
                    }
                    self.backend_names.insert(key.to_owned(), addresses);
                    self.publish_snapshot();
                    self.sync_checks(now);
                }
            }
            Err(reason) => self.events.push_back(Event::Warning {
                trunk: "-".into(),
                message: format!(
                    "backend {key} cannot be resolved ({reason}); calls routed there get 503"
                ),
            }),
        }
    }

    /// Bytes to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.registrations
            .poll_transmit()
            .or_else(|| self.keepalives.poll_transmit())
            .or_else(|| self.calls.poll_transmit())
            .or_else(|| self.checks.poll_transmit())
    }

    /// The backends counted as down: by calls (for a while) or by their health checks.
    fn down_backends(&self) -> Vec<SocketAddr> {
        let mut down: Vec<SocketAddr> = self.backends_down.keys().copied().collect();
        down.extend(self.checks.down());
        down
    }

    /// The backends to check, from the pool and the trunks' `route_to`, once their
    /// addresses and our address toward them are known.
    fn sync_checks(&mut self, now: Instant) {
        let config = Arc::clone(&self.config);
        let mut wanted = Vec::new();
        if let Some(backend) = config
            .backend
            .as_ref()
            .filter(|backend| !backend.options_interval.is_zero())
        {
            let mut seen = std::collections::HashSet::new();
            for uri in backend_uris(&config) {
                let Some(address) = backend_address(uri, &self.backend_names) else {
                    continue;
                };
                let Some(local) = self.backend_locals.get(&backend_key(uri)) else {
                    continue;
                };
                if seen.insert(address) {
                    let local = next_hop::sent_by(*local);
                    let params = backends::params(uri, address, &local, &self.user_agent, backend);
                    wanted.push(backends::Wanted {
                        uri: uri.to_string(),
                        params,
                    });
                }
            }
        }
        self.checks.set(now, config.daemon.timers, wanted);
    }

    /// What the backends' checks changed: logged, and the hot path's view of them.
    fn collect_checks(&mut self) {
        let mut changed = false;
        while let Some((status, reason)) = self.checks.poll_change() {
            changed = true;
            self.events
                .push_back(Event::BackendUpdated { status, reason });
        }
        if changed {
            self.publish_snapshot();
        }
    }

    /// The backends' checks, for the status file.
    pub fn backend_statuses(&self) -> Vec<backends::BackendStatus> {
        self.checks.statuses()
    }

    /// Starts stopping: new calls get 503, every binding is removed, and the calls in
    /// progress may drain (`[daemon] shutdown_drain`). The shell keeps driving the control
    /// path, timers included, until [`Control::is_stopped`]; asking again changes nothing.
    pub fn shutdown(&mut self, now: Instant) {
        if self.shutdown.is_some() {
            return;
        }
        self.inbound.start_draining();
        self.registrations.unregister_all(now);
        let drain = self.config.daemon.shutdown_drain;
        self.shutdown = Some(Shutdown::start(now, drain, self.shutdown_progress()));
        self.collect_shutdown_notices();
    }

    /// The shutdown is over: the shell may exit.
    pub fn is_stopped(&self) -> bool {
        self.shutdown.as_ref().is_some_and(Shutdown::is_stopped)
    }

    fn shutdown_progress(&self) -> Progress {
        Progress {
            unregistered: self.registrations.is_idle(),
            calls: self.calls.active(),
            awaiting_responses: self.calls.awaiting_responses(),
        }
    }

    /// Lets a shutdown under way see what the last input or timer changed; nothing
    /// otherwise (this runs after every input).
    fn step_shutdown(&mut self, now: Instant) {
        if self.shutdown.is_none() {
            return;
        }
        self.cluster_shutdown_step();
        let progress = self.shutdown_progress();
        if let Some(shutdown) = &mut self.shutdown {
            shutdown.step(now, progress);
            self.collect_shutdown_notices();
        }
    }

    fn collect_shutdown_notices(&mut self) {
        if let Some(shutdown) = &mut self.shutdown {
            self.events
                .extend(std::iter::from_fn(|| shutdown.poll_notice()).map(Event::Shutdown));
        }
    }

    fn status_of(&self, slot: &TrunkSlot, now: Instant) -> TrunkStatus {
        let mut status = slot
            .status()
            .with_registration(self.registrations.status(&slot.config.id, now));
        status.calls = Some(crate::status::CallCounts::of(&slot.counters));
        status.options = self.keepalives.status(&slot.config.id);
        status.verified = slot.verified;
        status.cluster = self.cluster_status(&slot.config, now);
        status
    }

    /// Turns registrations notices into events; a state change logs the trunk's line.
    fn collect_notices(&mut self, now: Instant) {
        while let Some(notice) = self.registrations.poll_notice() {
            let event = match notice {
                Notice::StateChanged {
                    trunk,
                    reason,
                    state,
                } => {
                    if state == registration::State::Registered
                        && let Some(slot) = self.trunks.get_mut(&trunk)
                    {
                        slot.verified = true;
                    }
                    let Some(status) = self.logged_status(&trunk, now) else {
                        continue;
                    };
                    Event::TrunkUpdated {
                        status,
                        reason: ChangeReason::Registration(reason),
                    }
                }
                Notice::ForeignResponse {
                    trunk,
                    source,
                    code,
                } => Event::Warning {
                    trunk,
                    message: format!(
                        "ignored a {code} response from {source}: not the trunk's next hop"
                    ),
                },
                Notice::FailedOver { trunk, next_hop } => Event::Warning {
                    trunk,
                    message: format!("next hop failed; trying the next DNS target {next_hop}"),
                },
                Notice::NotRegistering { trunk, reason } => Event::Warning {
                    trunk,
                    message: format!("not registering: {reason}"),
                },
            };
            self.events.push_back(event);
        }
        while let Some(notice) = self.keepalives.poll_notice() {
            let event = match notice {
                keepalives::Notice::StateChanged {
                    trunk,
                    state,
                    reason,
                } => {
                    if self.keepalives.status(&trunk).is_some_and(|s| s.answered)
                        && let Some(slot) = self.trunks.get_mut(&trunk)
                    {
                        slot.verified = true;
                    }
                    let Some(status) = self.logged_status(&trunk, now) else {
                        continue;
                    };
                    Event::TrunkUpdated {
                        status,
                        reason: ChangeReason::Options(format!("{} ({reason})", state.as_str())),
                    }
                }
                keepalives::Notice::ForeignResponse {
                    trunk,
                    source,
                    code,
                } => Event::Warning {
                    trunk,
                    message: format!(
                        "ignored a {code} response to OPTIONS from {source}: not the trunk's next hop"
                    ),
                },
                keepalives::Notice::NotPinging { trunk, reason } => Event::Warning {
                    trunk,
                    message: format!("not sending OPTIONS: {reason}"),
                },
            };
            self.events.push_back(event);
        }
    }

    /// A trunk's status for an event line, remembered as what the log last said of it.
    fn logged_status(&mut self, trunk: &str, now: Instant) -> Option<TrunkStatus> {
        let status = self.status_of(self.trunks.get(trunk)?, now);
        if let Some(slot) = self.trunks.get_mut(trunk) {
            slot.logged = Some(status.line_key());
        }
        Some(status)
    }

    /// The start-up or periodic report. `status_log = "all"`: every trunk. `"changes"`:
    /// the trunks in trouble ([`TrunkStatus::in_trouble`]) and those whose line changed
    /// since the log last showed them (at start, when nothing was shown yet, only the
    /// former), so a daemon with many healthy trunks logs little more than the summary.
    fn queue_report(&mut self, now: Instant) {
        let statuses: Vec<TrunkStatus> = self
            .trunks
            .values()
            .map(|slot| self.status_of(slot, now))
            .collect();
        let every = self.config.daemon.status_log == StatusLog::All;
        let trunks = self
            .trunks
            .values_mut()
            .zip(statuses)
            .filter_map(|(slot, status)| {
                let key = status.line_key();
                let changed = slot.logged.replace(key).is_some_and(|last| last != key);
                (every || changed || status.in_trouble()).then_some(status)
            })
            .collect();
        self.events.push_back(Event::Report {
            trunks,
            summary: self.summary(),
        });
    }
}

/// Trunk fields whose change restarts the keepalive.
/// The fields that say where a trunk sends: a change forgets its resolved next hop.
const NEXT_HOP_FIELDS: &[TrunkField] = &[
    TrunkField::Domain,
    TrunkField::Port,
    TrunkField::PortExplicit,
    TrunkField::Transport,
    TrunkField::OutboundProxy,
];

const KEEPALIVE_FIELDS: &[TrunkField] = &[
    TrunkField::Enabled,
    TrunkField::Domain,
    TrunkField::Port,
    TrunkField::PortExplicit,
    TrunkField::Transport,
    TrunkField::OutboundProxy,
    TrunkField::Register,
    TrunkField::OptionsInterval,
    TrunkField::OptionsFrom,
    TrunkField::OptionsDownAfter,
    TrunkField::OptionsUpAfter,
    TrunkField::OptionsFailureCodes,
    TrunkField::OptionsTimeout,
];

/// A backend URI's address: an IP literal as written, a name as last resolved.
fn backend_address(
    uri: &crate::sip::SipUri,
    names: &BTreeMap<String, Vec<SocketAddr>>,
) -> Option<SocketAddr> {
    snapshot::literal_address(uri).or_else(|| {
        names
            .get(&backend_key(uri))
            .and_then(|addresses| addresses.first().copied())
    })
}

/// Every backend URI: `[backend] uri` and the trunks' `route_to`.
fn backend_uris(config: &Config) -> impl Iterator<Item = &crate::sip::SipUri> {
    config
        .backend
        .iter()
        .flat_map(|backend| backend.uris.iter().map(|entry| &entry.uri))
        .chain(
            config
                .trunks
                .values()
                .flat_map(|t| t.route_to.iter().map(|entry| &entry.uri)),
        )
}

/// `host:port` of a backend URI, the key of its lookup.
fn backend_key(uri: &crate::sip::SipUri) -> String {
    format!("{}:{}", uri.host, crate::config::uri_port(uri))
}

/// Backend names are looked up again this often.
const BACKEND_RESOLVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);

/// How long a backend that left an INVITE unanswered counts as down. Then OPTIONS say
/// 200 again and the next call tries it: calls are the probe.
const BACKEND_DOWN_HOLD: std::time::Duration = std::time::Duration::from_secs(30);

/// How long DNS answers are batched before the hot path's snapshot is rebuilt.
const SNAPSHOT_BATCH: std::time::Duration = std::time::Duration::from_millis(500);

fn call_settings(config: &Config, cluster: bool) -> call::Settings {
    call::Settings {
        cluster,
        trunk_header: config.daemon.trunk_header.clone(),
        timers: config.daemon.timers,
        max_call_duration: config.daemon.max_call_duration,
        failover_codes: config.daemon.outbound_failover_codes.clone(),
        invite_timeout: config
            .backend
            .as_ref()
            .map_or(std::time::Duration::from_secs(2), |backend| {
                backend.invite_timeout
            }),
    }
}

/// The hot path's view of `config`: allowlists plus every next-hop address known (IP
/// literals at once, names once resolved), backends, and the trunks' counters.
fn build_snapshot(
    config: &Config,
    trunks: &BTreeMap<String, TrunkSlot>,
    registrations: &Registrations,
    keepalives: &Keepalives,
    backends_down: &[SocketAddr],
    backend_names: &BTreeMap<String, Vec<SocketAddr>>,
    epoch: Instant,
) -> Snapshot {
    let mut backends = snapshot::literal_backends(config);
    backends.extend(backend_names.values().flatten().copied());
    let inputs = Inputs {
        counters: &|id| {
            trunks
                .get(id)
                .map(|slot| Arc::clone(&slot.counters))
                .unwrap_or_else(|| Arc::new(TrunkCounters::new(id)))
        },
        next_hops: &|trunk| {
            let mut addresses: Vec<_> = registrations
                .targets(&trunk.id)
                .iter()
                .map(|a| a.ip())
                .collect();
            addresses.extend(snapshot::literal_next_hop(trunk));
            addresses.extend(keepalives.next_hop(&trunk.id).map(|a| a.ip()));
            addresses
        },
        backends,
        backends_down,
        backend_address: &|uri| backend_address(uri, backend_names),
        epoch,
    };
    Snapshot::build(config, &inputs)
}

#[cfg(test)]
mod tests;
