//! The daemon's state, sans IO: trunks, the config generation, the status schedule.
//!
//! The shell feeds it `now` and inputs (`handle_reload`, `handle_timeout`) and drains
//! `poll_event` / `poll_timeout`. It never reads the clock, touches a socket or a file, so
//! tests drive it on a virtual clock. Registration and keepalive machines (later issues)
//! hang off [`TrunkRuntime`], which survives any reload that leaves its trunk unchanged.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::call::{self, CallEvent, Calls};
use crate::config::{Config, ConfigErrors, Diff, Transport, Trunk, diff};
use crate::inbound::snapshot::{self, Inputs, Snapshot, TrunkCounters};
use crate::inbound::{Admitted, Inbound};
use crate::sip::scan::{self, EMPTY_HEADER, MAX_HEADERS};
use crate::status::{Summary, TrunkState, TrunkStatus};
use crate::trunk::qualify::{self, Qualifiers};
use crate::trunk::registration::{self, Transmit};
use crate::trunk::registry::{self, Notice, Registry, ResolveRequest, Resolved};

/// What the core needs from its environment besides the config.
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
}

impl TrunkSlot {
    fn new(config: Arc<Trunk>, now: Instant) -> Self {
        TrunkSlot {
            counters: Arc::new(TrunkCounters::new(&config.id)),
            config,
            runtime: Arc::new(TrunkRuntime { since: now }),
            verified: false,
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
    Changed(Vec<&'static str>),
    /// Its registration changed state; the reason as the registrar gave it.
    Registration(String),
    /// Its OPTIONS keepalive went up or down; the new state and the answer that did it.
    Options(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The periodic report: one status per trunk, then the summary.
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
}

pub struct Core {
    config: Arc<Config>,
    generation: u64,
    trunks: BTreeMap<String, TrunkSlot>,
    registry: Registry,
    /// The hot path's shared state: the snapshot this core publishes, its counters.
    inbound: Arc<Inbound>,
    /// The next-hop addresses changed: publish a new snapshot at this instant (batched,
    /// so thousands of DNS answers at start-up rebuild it a few times, not thousands).
    snapshot_due: Option<Instant>,
    epoch: Instant,
    calls: Calls,
    qualifiers: Qualifiers,
    /// Backends that left an INVITE unanswered, until when they count as down (OPTIONS
    /// answered 503); a backend answering anything clears it at once.
    backends_down: BTreeMap<SocketAddr, Instant>,
    /// Backend URIs given by name (`host:port`) and their resolved addresses, first one
    /// used; re-resolved at `backend_resolve_at`.
    backend_names: BTreeMap<String, Vec<SocketAddr>>,
    backend_resolve_at: Option<Instant>,
    backend_lookups: VecDeque<ResolveRequest>,
    /// On a UDP listener bound to every address: our address that faces each backend
    /// (the kernel's choice, asked of the shell), which the Via and Record-Route toward
    /// that backend name.
    facing: HashMap<IpAddr, IpAddr>,
    /// Backends whose facing address the shell is asked for, and those asked for.
    probes: VecDeque<IpAddr>,
    probing: HashSet<IpAddr>,
    /// Trunks that proved reachable (OPTIONS answered or REGISTER succeeded), ever.
    next_report: Instant,
    events: VecDeque<Event>,
}

impl Core {
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
        let mut registry = Registry::new(context.seed, daemon.timers, context.user_agent.clone());
        registry.set_policy(
            daemon.timers,
            daemon.register_retry_min,
            daemon.register_retry_max,
        );
        let mut qualifiers = Qualifiers::new(
            context.seed ^ 0x0971_0125,
            daemon.timers,
            context.user_agent.clone(),
        );
        for slot in trunks.values() {
            registry.add(&slot.config);
            qualifiers.add(&slot.config);
        }
        let calls = Calls::new(call_settings(&config), context.seed ^ 0x5eed_ca11);
        let inbound = Arc::new(Inbound::new(
            build_snapshot(
                &config,
                &trunks,
                &registry,
                &qualifiers,
                &[],
                &BTreeMap::new(),
                now,
            ),
            context.seed,
        ));
        let mut core = Core {
            next_report: now + config.daemon.status_interval,
            config: Arc::new(config),
            generation: 1,
            trunks,
            registry,
            inbound,
            snapshot_due: None,
            epoch: now,
            calls,
            qualifiers,
            backends_down: BTreeMap::new(),
            backend_names: BTreeMap::new(),
            backend_resolve_at: None,
            backend_lookups: VecDeque::new(),
            facing: HashMap::new(),
            probes: VecDeque::new(),
            probing: HashSet::new(),
            events: VecDeque::new(),
        };
        core.collect_notices(now);
        core.lookup_backend_names(now);
        core.probe_backends();
        core.queue_report(now);
        core
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
            unknown_source: counters.unknown_source.load(Ordering::Relaxed),
            malformed: counters.malformed.load(Ordering::Relaxed),
            registering: self
                .trunks
                .values()
                .filter(|slot| slot.config.enabled && slot.config.register)
                .count(),
            registered: self
                .registry
                .count(|state| state == registration::State::Registered),
            register_failing: self.registry.count(registration::State::is_failing),
            options_down: self.qualifiers.down(),
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
        self.registry.set_policy(
            config.daemon.timers,
            config.daemon.register_retry_min,
            config.daemon.register_retry_max,
        );
        self.qualifiers.set_timers(config.daemon.timers);
        for id in &diff.removed {
            self.trunks.remove(id);
            self.registry.remove(now, id);
            self.qualifiers.remove(id);
            self.events
                .push_back(Event::TrunkRemoved { id: id.clone() });
        }
        for id in &diff.added {
            let slot = TrunkSlot::new(config.trunks[id].clone(), now);
            self.registry.add(&slot.config);
            self.qualifiers.add(&slot.config);
            self.events.push_back(Event::TrunkUpdated {
                status: slot.status(),
                reason: ChangeReason::Added,
            });
            self.trunks.insert(id.clone(), slot);
        }
        for (id, fields) in &diff.changed {
            let mut slot = TrunkSlot::new(config.trunks[id].clone(), now);
            self.registry.change(now, &slot.config, fields);
            let moved = fields.iter().any(|field| QUALIFY_FIELDS.contains(field));
            if moved {
                self.qualifiers.remove(id);
                self.qualifiers.add(&slot.config);
            }
            if let Some(old) = self.trunks.get(id) {
                slot.verified = !moved && old.verified;
                slot.counters = Arc::clone(&old.counters);
            }
            self.events.push_back(Event::TrunkUpdated {
                status: self.status_of(&slot, now),
                reason: ChangeReason::Changed(fields.clone()),
            });
            self.trunks.insert(id.clone(), slot);
        }
        self.collect_notices(now);
        self.calls.set_settings(call_settings(&config));
        let backends_changed = config.backend != self.config.backend
            || config.trunks.values().map(|t| &t.route_to).ne(self
                .config
                .trunks
                .values()
                .map(|t| &t.route_to));
        let down: Vec<SocketAddr> = self.backends_down.keys().copied().collect();
        self.inbound.publish(build_snapshot(
            &config,
            &self.trunks,
            &self.registry,
            &self.qualifiers,
            &down,
            &self.backend_names,
            self.epoch,
        ));
        self.snapshot_due = None;
        if config.daemon.status_interval != self.config.daemon.status_interval {
            self.next_report = now + config.daemon.status_interval;
        }
        self.config = Arc::new(config);
        if backends_changed {
            self.lookup_backend_names(now);
        }
        self.probe_backends();
        self.generation += 1;
        self.events.push_back(Event::Reloaded {
            generation: self.generation,
            diff,
            summary: self.summary(),
        });
    }

    /// Runs what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.registry.handle_timeout(now);
        self.collect_notices(now);
        self.calls.handle_timeout(now);
        self.collect_call_events(now);
        let registry = &self.registry;
        self.qualifiers
            .handle_timeout(now, &|id| registry.next_hop(id));
        self.collect_notices(now);
        if self.backend_resolve_at.is_some_and(|at| now >= at) {
            self.lookup_backend_names(now);
        }
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
    }

    /// When `handle_timeout` next has something to do.
    pub fn poll_timeout(&self) -> Instant {
        [
            self.registry.poll_timeout(),
            self.calls.poll_timeout(),
            self.qualifiers.poll_timeout(),
            self.snapshot_due,
            self.backends_down.values().min().copied(),
            self.backend_resolve_at,
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

    pub fn is_draining(&self) -> bool {
        self.inbound.is_draining()
    }

    /// Calls in progress (setting up or answered).
    pub fn active_calls(&self) -> usize {
        self.calls.active()
    }

    /// A request forwarded inside a call still waits for its final response (the 200 to
    /// a BYE that ended the last call, at shutdown).
    pub fn calls_awaiting_responses(&self) -> bool {
        self.calls.awaiting_responses()
    }

    /// Calls still remembered, ended ones lingering for retransmissions included.
    pub fn calls_remembered(&self) -> usize {
        self.calls.len()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// A message the hot path handed over: a response, a request inside a call, or an
    /// admitted INVITE with its claimed channel. `local` is our UDP address it reached
    /// (for a call over a connection: the UDP listener the call continues from);
    /// `connection` says how it came when not over UDP.
    pub fn handle_datagram(
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
            return;
        };
        if let Some(admitted) = admitted {
            let key = self.inbound.transaction_key(&message);
            let user = message.request_uri_user();
            let route = self.route(admitted.trunk(), local, connection, user);
            self.calls
                .handle_invite(now, source, connection, bytes, admitted, key, route);
            // Only a call that exists has a transaction for retransmissions to reach;
            // an INVITE refused here (no backend address, loop) was answered statelessly.
            if let Ok(call_id) = message.call_id()
                && self.calls.contains(call_id)
            {
                self.inbound.invite_started(key);
                self.inbound.call_started(call_id);
            }
        } else if message.is_request() {
            self.calls.handle_request(now, source, bytes);
        } else if self.registry.handle_response(now, source, &message)
            || self.qualifiers.handle_response(now, source, &message)
        {
            self.collect_notices(now);
        } else {
            self.calls.handle_response(now, source, bytes);
        }
        self.collect_call_events(now);
    }

    /// Where an admitted call of `trunk` goes: its `route_to`, else `[backend] uri`,
    /// with the dialled user kept when the URI names none.
    fn route(
        &mut self,
        trunk: &str,
        local: SocketAddr,
        connection: Option<call::Connection>,
        user: Option<&[u8]>,
    ) -> Option<call::Route> {
        let whole = Arc::clone(&self.config);
        let config = whole.trunks.get(trunk)?;
        let uri = config
            .route_to
            .as_deref()
            .or(whole.backend.as_ref().map(|b| &b.uri))?;
        let backend = backend_address(uri, &self.backend_names)?;
        let mut target = uri.clone();
        if target.user.is_none() {
            target.user = user.map(|user| String::from_utf8_lossy(user).into_owned());
        }
        let public = whole.daemon.public_address.as_ref();
        let sent_by = |address: SocketAddr| {
            let host = match public {
                Some(public) => public.to_string(),
                None => match address.ip() {
                    IpAddr::V6(v6) => format!("[{v6}]"),
                    v4 => v4.to_string(),
                },
            };
            format!("{host}:{}", address.port())
        };
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
        let carrier_side = match connection {
            Some(connection) if connection.transport != Transport::Udp => connection
                .listener
                .map(|listener| (connection.transport, sent_by(listener))),
            _ if toward_backend != local => Some((Transport::Udp, sent_by(local))),
            _ => None,
        };
        Some(call::Route {
            sent_by: sent_by(toward_backend),
            carrier_side,
            server_name: registry::server_name(config),
            backend,
            request_uri: target.to_string(),
        })
    }

    fn collect_call_events(&mut self, now: Instant) {
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
                            "backend {backend} is not answering: OPTIONS from carriers get 503 for {}s",
                            BACKEND_DOWN_HOLD.as_secs()
                        ),
                    });
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
        let down: Vec<SocketAddr> = self.backends_down.keys().copied().collect();
        self.inbound.publish(build_snapshot(
            &self.config,
            &self.trunks,
            &self.registry,
            &self.qualifiers,
            &down,
            &self.backend_names,
            self.epoch,
        ));
    }

    /// The shell's answer to a [`Core::poll_resolve`] request.
    pub fn handle_resolved(
        &mut self,
        now: Instant,
        trunk: &str,
        resolved: Result<Resolved, String>,
    ) {
        if let Some(key) = trunk.strip_prefix(BACKEND_LOOKUP) {
            self.backend_resolved(key, resolved);
            return;
        }
        self.qualifiers.handle_resolved(now, trunk, &resolved);
        self.registry.handle_resolved(now, trunk, resolved);
        self.collect_notices(now);
        // A next hop's addresses are allowed to send requests (allow_next_hop).
        self.snapshot_due.get_or_insert(now + SNAPSHOT_BATCH);
    }

    /// A connection the shell opened for us failed or closed.
    pub fn handle_transport_error(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        transport: crate::config::Transport,
        why: &str,
    ) {
        self.registry
            .handle_transport_error(now, peer, transport, why);
        self.qualifiers.handle_transport_error(now, peer, why);
        self.collect_notices(now);
    }

    /// A next hop the shell should resolve.
    pub fn poll_resolve(&mut self) -> Option<ResolveRequest> {
        self.registry
            .poll_resolve()
            .or_else(|| self.qualifiers.poll_resolve())
            .or_else(|| self.backend_lookups.pop_front())
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
    fn lookup_backend_names(&mut self, now: Instant) {
        let config = Arc::clone(&self.config);
        let uris = backend_uris(&config).filter(|uri| uri.host.ip().is_none());
        let mut wanted = std::collections::BTreeSet::new();
        for uri in uris {
            let key = backend_key(uri);
            if wanted.insert(key.clone()) {
                self.backend_lookups.push_back(ResolveRequest {
                    trunk: format!("{BACKEND_LOOKUP}{key}"),
                    host: uri.host.to_string(),
                    port: Some(uri.port.unwrap_or(5060)),
                    transport: crate::config::Transport::Udp,
                });
            }
        }
        self.backend_names.retain(|key, _| wanted.contains(key));
        self.backend_resolve_at = (!wanted.is_empty()).then(|| now + BACKEND_RESOLVE_INTERVAL);
    }

    fn backend_resolved(&mut self, key: &str, resolved: Result<Resolved, String>) {
        match resolved {
            Ok(resolved) => {
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
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.registry
            .poll_transmit()
            .or_else(|| self.qualifiers.poll_transmit())
            .or_else(|| self.calls.poll_transmit())
    }

    /// Shutdown: unregister every trunk. The shell keeps driving the core until
    /// [`Core::is_quiescent`] or its deadline.
    pub fn shutdown(&mut self, now: Instant) {
        self.inbound.start_draining();
        self.registry.unregister_all(now);
    }

    /// Nothing in flight that shutdown should wait for.
    pub fn is_quiescent(&self) -> bool {
        self.registry.is_idle()
    }

    fn status_of(&self, slot: &TrunkSlot, now: Instant) -> TrunkStatus {
        let mut status = slot
            .status()
            .with_registration(self.registry.status(&slot.config.id, now));
        status.calls = Some(crate::status::CallCounts::of(&slot.counters));
        status.options = self.qualifiers.status(&slot.config.id);
        status.verified = slot.verified;
        status
    }

    /// Turns registry notices into events; a state change logs the trunk's line.
    fn collect_notices(&mut self, now: Instant) {
        while let Some(notice) = self.registry.poll_notice() {
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
                    let Some(slot) = self.trunks.get(&trunk) else {
                        continue;
                    };
                    Event::TrunkUpdated {
                        status: self.status_of(slot, now),
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
        while let Some(notice) = self.qualifiers.poll_notice() {
            let event = match notice {
                qualify::Notice::StateChanged {
                    trunk,
                    state,
                    reason,
                } => {
                    if self.qualifiers.status(&trunk).is_some_and(|s| s.answered)
                        && let Some(slot) = self.trunks.get_mut(&trunk)
                    {
                        slot.verified = true;
                    }
                    let Some(slot) = self.trunks.get(&trunk) else {
                        continue;
                    };
                    Event::TrunkUpdated {
                        status: self.status_of(slot, now),
                        reason: ChangeReason::Options(format!("{} ({reason})", state.as_str())),
                    }
                }
                qualify::Notice::ForeignResponse {
                    trunk,
                    source,
                    code,
                } => Event::Warning {
                    trunk,
                    message: format!(
                        "ignored a {code} response to OPTIONS from {source}: not the trunk's next hop"
                    ),
                },
                qualify::Notice::NotPinging { trunk, reason } => Event::Warning {
                    trunk,
                    message: format!("not sending OPTIONS: {reason}"),
                },
            };
            self.events.push_back(event);
        }
    }

    fn queue_report(&mut self, now: Instant) {
        let trunks = self
            .trunks
            .values()
            .map(|slot| self.status_of(slot, now))
            .collect();
        self.events.push_back(Event::Report {
            trunks,
            summary: self.summary(),
        });
    }
}

/// Trunk fields whose change restarts the keepalive.
const QUALIFY_FIELDS: &[&str] = &[
    "enabled",
    "domain",
    "port",
    "port_explicit",
    "transport",
    "outbound_proxy",
    "register",
    "options_interval",
    "options_from",
    "options_down_after",
    "options_up_after",
    "options_failure_codes",
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
        .map(|backend| &backend.uri)
        .chain(config.trunks.values().filter_map(|t| t.route_to.as_deref()))
}

/// `host:port` of a backend URI, the key of its lookup.
fn backend_key(uri: &crate::sip::SipUri) -> String {
    format!("{}:{}", uri.host, uri.port.unwrap_or(5060))
}

/// Marks resolve requests for backends (trunk ids cannot contain ':').
const BACKEND_LOOKUP: &str = "backend:";
/// Backend names are looked up again this often.
const BACKEND_RESOLVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);

/// How long a backend that left an INVITE unanswered counts as down. Then OPTIONS say
/// 200 again and the next call tries it: calls are the probe.
const BACKEND_DOWN_HOLD: std::time::Duration = std::time::Duration::from_secs(30);

/// How long DNS answers are batched before the hot path's snapshot is rebuilt.
const SNAPSHOT_BATCH: std::time::Duration = std::time::Duration::from_millis(500);

fn call_settings(config: &Config) -> call::Settings {
    call::Settings {
        trunk_header: config.daemon.trunk_header.clone(),
        timers: config.daemon.timers,
        max_call_duration: config.daemon.max_call_duration,
    }
}

/// The hot path's view of `config`: allowlists plus every next-hop address known (IP
/// literals at once, names once resolved), backends, and the trunks' counters.
fn build_snapshot(
    config: &Config,
    trunks: &BTreeMap<String, TrunkSlot>,
    registry: &Registry,
    qualifiers: &Qualifiers,
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
            let mut addresses: Vec<_> =
                registry.targets(&trunk.id).iter().map(|a| a.ip()).collect();
            addresses.extend(snapshot::literal_next_hop(trunk));
            addresses.extend(qualifiers.next_hop(&trunk.id).map(|a| a.ip()));
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
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::config::{LoadOptions, load_str};

    const BASE: &str = r#"
[daemon]
listen = ["udp:127.0.0.1:0"]
status_interval = "10s"

[backend]
uri = "sip:127.0.0.1:5080"

[trunks.alpha]
domain = "alpha.example"
allowed_inbound_ips = ["192.0.2.1"]

[trunks.beta]
domain = "beta.example"
allowed_inbound_ips = ["192.0.2.2"]
enabled = false
"#;

    fn config(text: &str) -> Config {
        load_str(Path::new("test.toml"), text, &LoadOptions::default())
            .unwrap_or_else(|errors| panic!("{errors}"))
    }

    fn drain(core: &mut Core) -> Vec<Event> {
        std::iter::from_fn(|| core.poll_event()).collect()
    }

    /// The virtual clock's epoch; only tests create Instants from nothing.
    #[allow(clippy::disallowed_methods)]
    fn epoch() -> Instant {
        Instant::now()
    }

    #[test]
    fn reports_at_start_and_every_interval_but_once_after_a_stall() {
        let t0 = epoch();
        let mut core = Core::new(config(BASE), t0);
        let events = drain(&mut core);
        assert_eq!(events.len(), 1);
        let Event::Report { trunks, summary } = &events[0] else {
            panic!("{events:?}")
        };
        let states: Vec<_> = trunks.iter().map(|s| (s.id.as_str(), s.state)).collect();
        assert_eq!(
            states,
            [("alpha", TrunkState::Idle), ("beta", TrunkState::Disabled)]
        );
        assert_eq!(
            (summary.trunks, summary.enabled, summary.generation),
            (2, 1, 1)
        );

        assert_eq!(core.poll_timeout(), t0 + Duration::from_secs(10));
        core.handle_timeout(t0 + Duration::from_secs(9));
        assert!(drain(&mut core).is_empty(), "nothing before the deadline");
        core.handle_timeout(t0 + Duration::from_secs(10));
        assert_eq!(drain(&mut core).len(), 1);
        assert_eq!(core.poll_timeout(), t0 + Duration::from_secs(20));

        // The process was stopped for 100 s: one report, then the schedule moves on.
        let late = t0 + Duration::from_secs(120);
        core.handle_timeout(late);
        assert_eq!(drain(&mut core).len(), 1);
        assert!(core.poll_timeout() > late);
        core.handle_timeout(late);
        assert!(drain(&mut core).is_empty());
    }

    /// "verified" sticks to a trunk until the fields that decide where it goes change.
    #[test]
    fn verified_survives_reloads_until_the_next_hop_changes() {
        let text = |extra: &str| {
            format!(
                "[daemon]\nlisten = [\"udp:127.0.0.1:0\"]\n[trunks.alpha]\n\
                 domain = \"192.0.2.1\"\nport = 5060\ndirection = \"outbound\"\n\
                 username = \"u\"\npassword = \"p\"\nregister = true\n\
                 options_interval = 0\n{extra}\n"
            )
        };
        let t0 = epoch();
        let mut core = Core::new(config(&text("")), t0);
        let verified = |core: &Core| core.statuses(t0).1[0].verified;
        let request = core.poll_resolve().expect("a lookup");
        let registrar: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let resolved = Resolved {
            next_hop: registrar,
            alternatives: Vec::new(),
            local: "192.0.2.200:5060".parse().unwrap(),
            public: false,
            ttl: None,
        };
        core.handle_resolved(t0, &request.trunk, Ok(resolved));
        let t1 = t0 + crate::trunk::registry::START_SPREAD;
        core.handle_timeout(t1);
        let register = String::from_utf8(core.poll_transmit().expect("REGISTER").bytes).unwrap();
        assert!(!verified(&core));
        let header = |name: &str| {
            register
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .unwrap()
                .to_owned()
        };
        let ok = format!(
            "SIP/2.0 200 OK\r\nVia:{}\r\nFrom:{}\r\nTo:{};tag=r\r\nCall-ID:{}\r\n\
             CSeq:{}\r\nContact: <sip:u@192.0.2.200:5060;transport=udp>;expires=600\r\n\
             Content-Length: 0\r\n\r\n",
            header("Via:"),
            header("From:"),
            header("To:"),
            header("Call-ID:"),
            header("CSeq:"),
        );
        let local = "192.0.2.200:5060".parse().unwrap();
        core.handle_datagram(t1, registrar, local, None, ok.as_bytes(), None);
        assert!(verified(&core), "a REGISTER accepted verifies the trunk");

        core.handle_reload(t1, Ok(config(&text("max_channels = 5"))));
        assert!(verified(&core), "max_channels does not move the trunk");
        core.handle_reload(
            t1,
            Ok(config(&text(
                "max_channels = 5\noptions_from = \"sip:x@example.net\"",
            ))),
        );
        assert!(!verified(&core), "options_from decides what OPTIONS verify");
    }

    #[test]
    fn reload_touches_only_what_changed() {
        let t0 = epoch();
        let mut core = Core::new(config(BASE), t0);
        drain(&mut core);
        let alpha_runtime = Arc::clone(&core.trunk("alpha").unwrap().runtime);
        let alpha_config = Arc::clone(&core.trunk("alpha").unwrap().config);
        let beta_runtime = Arc::clone(&core.trunk("beta").unwrap().runtime);

        let edited = BASE
            .replace("enabled = false", "enabled = true\nmax_channels = 5")
            .replace("status_interval = \"10s\"", "status_interval = \"30s\"")
            + "\n[trunks.gamma]\ndomain = \"gamma.example\"\ndirection = \"outbound\"\n";
        let t1 = t0 + Duration::from_secs(3);
        core.handle_reload(t1, Ok(config(&edited)));

        let alpha = core.trunk("alpha").unwrap();
        assert!(
            Arc::ptr_eq(&alpha.runtime, &alpha_runtime),
            "unchanged trunk untouched"
        );
        assert!(
            Arc::ptr_eq(&alpha.config, &alpha_config),
            "unchanged trunk keeps its config"
        );
        let beta = core.trunk("beta").unwrap();
        assert!(!Arc::ptr_eq(&beta.runtime, &beta_runtime));
        assert_eq!(beta.state(), TrunkState::Idle);
        assert_eq!(beta.runtime.since, t1);
        assert_eq!(core.generation(), 2);
        assert_eq!(
            core.poll_timeout(),
            t1 + Duration::from_secs(30),
            "rescheduled"
        );

        let events = drain(&mut core);
        let kinds: Vec<String> = events
            .iter()
            .map(|event| match event {
                Event::TrunkUpdated { status, reason } => format!("{} {reason:?}", status.id),
                Event::TrunkRemoved { id } => format!("{id} removed"),
                Event::Reloaded {
                    generation, diff, ..
                } => format!("reloaded {generation} {diff}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "gamma Added",
                "beta Changed([\"enabled\", \"max_channels\"])",
                "reloaded 2 added=1 removed=0 changed=1 unchanged=1 added_trunks=gamma \
                 changed_trunks=beta(enabled,max_channels) daemon_changed=status_interval",
            ]
        );

        // Removing a trunk.
        core.handle_reload(t1, Ok(config(BASE)));
        let events = drain(&mut core);
        assert!(events.contains(&Event::TrunkRemoved { id: "gamma".into() }));
        assert!(core.trunk("gamma").is_none());
        let alpha = core.trunk("alpha").unwrap();
        assert!(
            Arc::ptr_eq(&alpha.runtime, &alpha_runtime),
            "still untouched"
        );
    }

    #[test]
    fn rejected_reload_keeps_the_running_generation() {
        let t0 = epoch();
        let mut core = Core::new(config(BASE), t0);
        drain(&mut core);
        let before = Arc::clone(core.config());
        let errors = load_str(
            Path::new("test.toml"),
            &BASE.replace("192.0.2.1", "192.0.2.300"),
            &LoadOptions::default(),
        )
        .map(|_| ())
        .unwrap_err();
        core.handle_reload(t0, Err(errors.clone()));
        assert!(Arc::ptr_eq(&before, core.config()));
        assert_eq!(core.generation(), 1);
        assert_eq!(
            drain(&mut core),
            [Event::ReloadRejected {
                errors,
                generation: 1
            }]
        );
    }

    #[test]
    fn a_reload_without_changes_keeps_every_slot() {
        let t0 = epoch();
        let mut core = Core::new(config(BASE), t0);
        drain(&mut core);
        let runtimes: Vec<_> = ["alpha", "beta"]
            .map(|id| Arc::clone(&core.trunk(id).unwrap().runtime))
            .into();
        core.handle_reload(t0, Ok(config(BASE)));
        for (id, runtime) in ["alpha", "beta"].iter().zip(&runtimes) {
            assert!(Arc::ptr_eq(&core.trunk(id).unwrap().runtime, runtime));
        }
        let events = drain(&mut core);
        let [Event::Reloaded { diff, .. }] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert!(diff.is_empty());
        assert_eq!(diff.unchanged, ["alpha", "beta"]);
    }
}
