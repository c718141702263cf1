//! Every trunk's registration, sans IO: which trunks register, with what parameters,
//! which registration an incoming response belongs to, and what a reload does to them.
//!
//! A trunk registers when it is enabled, has `register = true` and its next hop is known.
//! Resolving the next hop (a name lookup, and the local address the kernel would use
//! toward it) is IO: the registrations asks for it with [`Registrations::poll_resolve`] and the shell
//! answers with [`Registrations::handle_resolved`]. On reload, a trunk whose registration
//! fields are unchanged keeps its registration untouched (Call-ID, CSeq, binding); one
//! whose fields changed, or that was removed or disabled, unregisters the old binding
//! while the new one (if any) starts.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Transport, Trunk, TrunkField};
use crate::sip::Transmit;
use crate::sip::scan::{self, Contact, HeaderName, Scan, StartLine};
use crate::sip::transaction::{ResponseView, TimerValues};
use crate::trunk::deadlines::{self, Deadlines};
use crate::trunk::next_hop::{
    MIN_RESOLVE_INTERVAL, ResolveError, ResolveKey, ResolveRequest, Resolved, domain_uri,
    lookup_request, resolve_interval, sent_by, server_name,
};
use crate::trunk::random::Random;
use crate::trunk::registration::{self, Params, RegisterResponse, Registration};

/// Fields whose change means a new registration (RFC 3261 §10: a new binding).
pub(crate) const REGISTRATION_FIELDS: &[TrunkField] = &[
    TrunkField::Enabled,
    TrunkField::Domain,
    TrunkField::Port,
    TrunkField::PortExplicit,
    TrunkField::Transport,
    TrunkField::OutboundProxy,
    TrunkField::Username,
    TrunkField::Password,
    TrunkField::AuthRealm,
    TrunkField::Register,
    TrunkField::RegisterExpires,
];

/// At most this many REGISTER transactions at once across all trunks: after a registrar
/// outage every trunk is due at about the same time, and a recovering registrar should
/// not meet all of them in one burst. Deferred attempts start as slots free up.
pub(crate) const MAX_REGISTERS_IN_FLIGHT: usize = 256;

/// Spread of first REGISTERs after start or reload, so many trunks don't hit one
/// registrar in the same millisecond.
pub(crate) const START_SPREAD: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Notice {
    /// A registration event worth a log line, with the trunk's id.
    StateChanged {
        trunk: String,
        state: registration::State,
        reason: String,
    },
    ForeignResponse {
        trunk: String,
        source: SocketAddr,
        code: u16,
    },
    /// The next hop failed; the next DNS target is tried at once.
    FailedOver { trunk: String, next_hop: SocketAddr },
    /// The trunk would register but cannot yet (unsupported transport, resolution failed).
    NotRegistering { trunk: String, reason: String },
}

/// One trunk's registration and what the status line shows about it.
#[derive(Debug)]
struct Entry {
    registration: Registration,
    transport: Transport,
    /// Every DNS target, in order; the registration's next hop is one of them.
    targets: Targets,
    /// Targets tried since the last success, for failover within one round.
    tried: usize,
    /// The port of the lookup that found the targets (`None`: SRV), to look them up
    /// again; its host is the registration's server name ([`lookup_request`]).
    lookup_port: Option<u16>,
    /// When to look them up again (DNS TTL), or `None` for an IP address.
    resolve_at: Option<Instant>,
    /// A lookup is under way.
    resolving: bool,
    /// The deadline last put on the heap for it.
    scheduled: Option<Instant>,
    /// Its due attempt waits in the deferred queue for a slot.
    deferred: bool,
}

/// Every DNS target of a trunk, in order. Nearly every trunk has one (an IP address, or a
/// name with one record): kept inline then, without a heap block per trunk.
#[derive(Debug)]
enum Targets {
    One(SocketAddr),
    Many(Box<[SocketAddr]>),
}

impl Targets {
    fn of(resolved: &Resolved) -> Self {
        if resolved.alternatives.is_empty() {
            Targets::One(resolved.next_hop)
        } else {
            Targets::Many(
                std::iter::once(resolved.next_hop)
                    .chain(resolved.alternatives.iter().copied())
                    .collect(),
            )
        }
    }

    fn get(&self) -> &[SocketAddr] {
        match self {
            Targets::One(target) => std::slice::from_ref(target),
            Targets::Many(targets) => targets,
        }
    }
}

impl Entry {
    /// New DNS answers for a running registration: keep the current next hop if it is
    /// still among the targets, else move to the first of them (the next REGISTER goes
    /// there; RFC 3263 §4.3 lets a client switch when the data changes). A failed lookup
    /// keeps the old targets and tries again later.
    fn refresh_targets(
        &mut self,
        now: Instant,
        resolved: Result<Resolved, ResolveError>,
        notices: &mut VecDeque<Notice>,
        id: &str,
    ) {
        let resolved = match resolved {
            Ok(resolved) => resolved,
            Err(reason) => {
                self.resolve_at = Some(now + MIN_RESOLVE_INTERVAL);
                notices.push_back(Notice::NotRegistering {
                    trunk: id.to_owned(),
                    reason: format!("DNS refresh failed, keeping the known targets: {reason}"),
                });
                return;
            }
        };
        self.targets = Targets::of(&resolved);
        self.resolve_at = resolved.ttl.map(|ttl| now + resolve_interval(ttl));
        if !self.targets.get().contains(&self.registration.next_hop()) {
            let next_hop = self.targets.get()[0];
            self.registration.move_to(next_hop);
            notices.push_back(Notice::FailedOver {
                trunk: id.to_owned(),
                next_hop,
            });
        }
    }

    /// After a failure another server might not share, moves to the next target and
    /// retries at once, until each target was tried once since the last success; then
    /// the registration's own backoff applies.
    fn consider_failover(&mut self, now: Instant, notices: &mut VecDeque<Notice>, id: &str) {
        let targets = self.targets.get();
        if !self.registration.take_failover_hint() || targets.len() < 2 {
            return;
        }
        self.tried += 1;
        if self.tried >= targets.len() {
            // Every target failed since the last success: the DNS data may be stale, so
            // look it up again now (the registration's backoff paces the retries).
            self.tried = 0;
            if self.resolve_at.is_some() {
                self.resolve_at = Some(now);
            }
            return;
        }
        let position = targets
            .iter()
            .position(|t| *t == self.registration.next_hop())
            .unwrap_or(0);
        let next_hop = targets[(position + 1) % targets.len()];
        self.registration.fail_over(now, next_hop);
        notices.push_back(Notice::FailedOver {
            trunk: id.to_owned(),
            next_hop,
        });
    }
}

/// Which registration a deadline or a queued start belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Key {
    /// The live registration of a trunk, by trunk id (shared with `entries`' key).
    Trunk(Arc<str>),
    /// A binding being removed, by its Call-ID.
    Retiring(String),
}

/// A binding being removed (REGISTER Expires: 0) after a change, a removal or at shutdown.
#[derive(Debug)]
struct Retiring {
    registration: Registration,
    /// Its un-REGISTER waits for a free slot under [`MAX_REGISTERS_IN_FLIGHT`].
    waiting: bool,
    scheduled: Option<Instant>,
}

/// Every trunk's registration, driven by events: each operation touches only the
/// registrations it concerns. Deadlines sit in a min-heap (stale items are skipped when
/// popped), what registrations emit is collected into queues as they are touched, and the
/// number of transactions in flight is counted as they start and end, so nothing walks all
/// N registrations per event (which made 10,000 trunks cost O(N²)).
pub(crate) struct Registrations {
    timers: TimerValues,
    retry_min: Duration,
    retry_max: Duration,
    user_agent: Arc<str>,
    random: Random,
    /// Boxed: a B-tree node holds 11 values, mostly partly filled, and an `Entry` inline
    /// is about 1 KB; boxed, the nodes hold pointers and each entry costs its own size.
    entries: BTreeMap<Arc<str>, Box<Entry>>,
    /// Call-ID → trunk, to route responses.
    call_ids: HashMap<Arc<str>, Arc<str>>,
    /// Old bindings being removed, by Call-ID.
    retiring: HashMap<String, Retiring>,
    /// Trunks waiting for the shell to resolve their next hop.
    pending: BTreeMap<String, Trunk>,
    resolve_requests: VecDeque<ResolveRequest>,
    notices: VecDeque<Notice>,
    transmits: VecDeque<Transmit>,
    deadlines: Deadlines<Key>,
    /// Attempts due while every slot was taken, oldest first, with when they were due.
    deferred: VecDeque<(Instant, Key)>,
    in_flight: usize,
    /// With `[cluster]`: the trunks this host is the registrant of, the only ones it
    /// registers. `None`: every trunk that registers.
    granted: Option<HashSet<Arc<str>>>,
    /// With `[cluster]`: granted trunks whose grant is not confirmed under this host's
    /// current lease epoch (its fencing token). Their due REGISTERs wait.
    fenced: HashSet<Arc<str>>,
}

impl Registrations {
    pub(crate) fn new(seed: u64, timers: TimerValues, user_agent: String) -> Self {
        Registrations {
            timers,
            retry_min: Duration::from_secs(30),
            retry_max: Duration::from_secs(30 * 60),
            user_agent: user_agent.into(),
            random: Random::new(seed),
            entries: BTreeMap::new(),
            call_ids: HashMap::new(),
            retiring: HashMap::new(),
            pending: BTreeMap::new(),
            resolve_requests: VecDeque::new(),
            notices: VecDeque::new(),
            transmits: VecDeque::new(),
            deadlines: Deadlines::new(),
            deferred: VecDeque::new(),
            in_flight: 0,
            granted: None,
            fenced: HashSet::new(),
        }
    }

    /// From now on only trunks [`Registrations::grant`]ed are registered (`[cluster]`:
    /// one host per trunk).
    pub(crate) fn hold_back(&mut self) {
        self.granted.get_or_insert_with(HashSet::new);
    }

    /// This host registers `trunk` from now on (it became the registrant).
    pub(crate) fn grant(&mut self, trunk: &Trunk) {
        if let Some(granted) = &mut self.granted
            && granted.insert(trunk.id.as_str().into())
        {
            self.add(trunk);
        }
    }

    /// Forgets the grants `keep` refuses (trunks removed or no longer registering, whose
    /// registrations the reload already removed).
    pub(crate) fn keep_granted(&mut self, keep: impl Fn(&str) -> bool) {
        if let Some(granted) = &mut self.granted {
            granted.retain(|id| keep(id));
        }
    }

    /// Holds back (`true`) or lets go (`false`) the REGISTERs of `id`: a registrant whose
    /// lease epoch changed sends none until Redis confirms the trunk is still its own.
    /// A transaction already under way finishes.
    pub(crate) fn set_fenced(&mut self, now: Instant, id: &str, fenced: bool) {
        if !fenced {
            if self.fenced.remove(id) {
                let key = Key::Trunk(id.into());
                let may_start = self.in_flight < MAX_REGISTERS_IN_FLIGHT;
                self.touch(now, &key, |registration| {
                    registration.handle_timeout_limited(now, may_start);
                });
            }
        } else if self.granted.as_ref().is_some_and(|g| g.contains(id)) {
            self.fenced.insert(id.into());
        }
    }

    /// This host no longer registers `id`: its binding is removed.
    pub(crate) fn revoke(&mut self, now: Instant, id: &str) {
        self.fenced.remove(id);
        if let Some(granted) = &mut self.granted
            && granted.remove(id)
        {
            self.remove(now, id);
        }
    }

    /// Timers and retry policy for registrations created from now on (a reload does not
    /// disturb registrations in progress).
    pub(crate) fn set_policy(
        &mut self,
        timers: TimerValues,
        retry_min: Duration,
        retry_max: Duration,
    ) {
        self.timers = timers;
        self.retry_min = retry_min;
        self.retry_max = retry_max;
    }

    /// Whether this trunk should hold a registration at all.
    pub(crate) fn wants_registration(trunk: &Trunk) -> bool {
        trunk.enabled && trunk.register
    }

    /// Adds a trunk: asks for its next hop to be resolved.
    pub(crate) fn add(&mut self, trunk: &Trunk) {
        let held_back = self
            .granted
            .as_ref()
            .is_some_and(|granted| !granted.contains(trunk.id.as_str()));
        if !Self::wants_registration(trunk) || held_back {
            return;
        }
        self.pending.insert(trunk.id.clone(), trunk.clone());
        self.resolve_requests.push_back(lookup_request(trunk));
    }

    /// Removes a trunk's registration, unregistering its binding if it has one.
    pub(crate) fn remove(&mut self, now: Instant, id: &str) {
        self.pending.remove(id);
        let Some(entry) = self.entries.remove(id) else {
            return;
        };
        let call_id = entry.registration.call_id().to_owned();
        self.call_ids.remove(call_id.as_str());
        let in_flight = entry.registration.is_in_flight();
        // Without a binding there is nothing to remove at the registrar.
        if !entry.registration.has_binding() {
            if in_flight {
                self.in_flight -= 1;
            }
            return;
        }
        self.retiring.insert(
            call_id.clone(),
            Retiring {
                registration: entry.registration,
                waiting: true,
                scheduled: None,
            },
        );
        let key = Key::Retiring(call_id);
        // A transaction already under way keeps its slot; otherwise wait for one.
        if in_flight || self.in_flight < MAX_REGISTERS_IN_FLIGHT {
            self.start_retiring(now, &key);
        } else {
            self.deferred.push_back((now, key));
        }
    }

    fn start_retiring(&mut self, now: Instant, key: &Key) {
        if let Key::Retiring(call_id) = key
            && let Some(retiring) = self.retiring.get_mut(call_id)
            && retiring.waiting
        {
            retiring.waiting = false;
            self.touch(now, key, |registration| registration.unregister(now));
        }
    }

    /// Applies a changed trunk: untouched unless a registration field changed.
    pub(crate) fn change(&mut self, now: Instant, trunk: &Trunk, fields: &[TrunkField]) {
        if fields
            .iter()
            .any(|field| REGISTRATION_FIELDS.contains(field))
        {
            self.remove(now, &trunk.id);
            self.add(trunk);
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

    /// The shell's answer to a [`ResolveRequest`]: a new trunk's registration starts, an
    /// existing one gets its refreshed targets. Stale answers (the trunk was removed or
    /// changed meanwhile) are ignored.
    pub(crate) fn handle_resolved(
        &mut self,
        now: Instant,
        id: &str,
        resolved: Result<Resolved, ResolveError>,
    ) {
        if let Some(entry) = self.entries.get_mut(id)
            && entry.resolving
        {
            entry.resolving = false;
            entry.refresh_targets(now, resolved, &mut self.notices, id);
            let key = self.key_of(id);
            self.collect(now, &key);
            return;
        }
        let Some(trunk) = self.pending.remove(id) else {
            return;
        };
        let resolved = match resolved {
            Ok(resolved) => resolved,
            Err(error) => {
                self.notices.push_back(Notice::NotRegistering {
                    trunk: id.to_owned(),
                    reason: error.why_not_started(),
                });
                return;
            }
        };
        let params = self.params(&trunk, &resolved);
        let delay = Duration::from_millis(self.random.below(START_SPREAD.as_millis() as u64));
        let registration =
            Registration::new(params, self.timers, self.random.next_u64(), now, delay);
        let id: Arc<str> = id.into();
        self.call_ids
            .insert(registration.shared_call_id(), Arc::clone(&id));
        self.entries.insert(
            Arc::clone(&id),
            Box::new(Entry {
                registration,
                transport: trunk.transport,
                targets: Targets::of(&resolved),
                tried: 0,
                lookup_port: lookup_request(&trunk).port,
                resolve_at: resolved.ttl.map(|ttl| now + resolve_interval(ttl)),
                resolving: false,
                scheduled: None,
                deferred: false,
            }),
        );
        self.collect(now, &Key::Trunk(id));
    }

    /// Routes a response to the registration whose Call-ID it carries. Returns whether it
    /// was a REGISTER response for one of ours.
    pub(crate) fn handle_response(
        &mut self,
        now: Instant,
        source: SocketAddr,
        message: &Scan<'_, '_>,
    ) -> bool {
        let Ok(call_id) = message.call_id() else {
            return false;
        };
        let Ok(call_id) = std::str::from_utf8(call_id) else {
            return false;
        };
        let key = match self.call_ids.get(call_id) {
            Some(id) => Key::Trunk(id.clone()),
            None if self.retiring.contains_key(call_id) => Key::Retiring(call_id.to_owned()),
            None => return false,
        };
        let Some(view) = response_view(message, source) else {
            return false;
        };
        self.touch(now, &key, |registration| {
            registration.handle_response(now, &view);
        });
        self.start_deferred(now);
        true
    }

    /// Runs the registrations whose deadline has come, then starts waiting attempts while
    /// slots are free.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        while let Some(key) = self.deadlines.pop_due(now, |key, at| {
            let scheduled = match key {
                Key::Trunk(id) => self.entries.get_mut(id).map(|e| &mut e.scheduled),
                Key::Retiring(call_id) => self.retiring.get_mut(call_id).map(|r| &mut r.scheduled),
            };
            scheduled.is_some_and(|scheduled| deadlines::disarm(scheduled, at))
        }) {
            if let Key::Trunk(id) = &key
                && let Some(entry) = self.entries.get_mut(id)
                && !entry.resolving
                && entry.resolve_at.is_some_and(|at| at <= now)
            {
                entry.resolving = true;
                entry.resolve_at = None;
                self.resolve_requests.push_back(ResolveRequest {
                    key: ResolveKey::Trunk(id.to_string()),
                    host: entry.registration.server_name().to_owned(),
                    port: entry.lookup_port,
                    transport: entry.transport,
                });
            }
            let fenced = matches!(&key, Key::Trunk(id) if self.fenced.contains(id));
            let may_start = self.in_flight < MAX_REGISTERS_IN_FLIGHT && !fenced;
            self.touch(now, &key, |registration| {
                registration.handle_timeout_limited(now, may_start);
            });
        }
        self.start_deferred(now);
    }

    /// Starts attempts and un-REGISTERs that waited for a slot, oldest first.
    fn start_deferred(&mut self, now: Instant) {
        while self.in_flight < MAX_REGISTERS_IN_FLIGHT {
            let Some((_, key)) = self.deferred.pop_front() else {
                // The start-up wave queued nearly every trunk; give that buffer back.
                if self.deferred.capacity() > 0 {
                    self.deferred = VecDeque::new();
                }
                break;
            };
            match &key {
                Key::Retiring(_) => self.start_retiring(now, &key),
                Key::Trunk(id) => {
                    let Some(entry) = self.entries.get_mut(id) else {
                        continue;
                    };
                    if !std::mem::take(&mut entry.deferred) || self.fenced.contains(id) {
                        continue;
                    }
                    self.touch(now, &key, |registration| {
                        registration.handle_timeout_limited(now, true);
                    });
                }
            }
        }
    }

    /// Runs `action` on one registration, then accounts for what it did.
    fn touch(&mut self, now: Instant, key: &Key, action: impl FnOnce(&mut Registration)) {
        let registration = match key {
            Key::Trunk(id) => self.entries.get_mut(id).map(|e| &mut e.registration),
            Key::Retiring(call_id) => self.retiring.get_mut(call_id).map(|r| &mut r.registration),
        };
        let Some(registration) = registration else {
            return;
        };
        let was_in_flight = registration.is_in_flight();
        action(registration);
        match (was_in_flight, registration.is_in_flight()) {
            (false, true) => self.in_flight += 1,
            (true, false) => self.in_flight -= 1,
            _ => {}
        }
        self.collect(now, key);
    }

    /// Collects a registration's transmits and events, applies failover, and (re)schedules
    /// its next deadline or defers its due attempt while no slot is free.
    fn collect(&mut self, now: Instant, key: &Key) {
        let slots_free = self.in_flight < MAX_REGISTERS_IN_FLIGHT;
        match key {
            Key::Trunk(id) => {
                let Some(entry) = self.entries.get_mut(id) else {
                    return;
                };
                let registration = &mut entry.registration;
                self.transmits
                    .extend(std::iter::from_fn(|| registration.poll_transmit()));
                while let Some(event) = registration.poll_event() {
                    self.notices.push_back(match event {
                        registration::Event::StateChanged { state, reason, .. } => {
                            Notice::StateChanged {
                                trunk: id.to_string(),
                                state,
                                reason,
                            }
                        }
                        registration::Event::ForeignResponse { source, code } => {
                            Notice::ForeignResponse {
                                trunk: id.to_string(),
                                source,
                                code,
                            }
                        }
                    });
                }
                if registration.state() == registration::State::Registered {
                    entry.tried = 0;
                }
                entry.consider_failover(now, &mut self.notices, id);
                let registration = &entry.registration;
                // A fenced trunk's attempt waits for `set_fenced(.., false)`, not a timer.
                let mut attempt = registration
                    .next_attempt_at()
                    .filter(|_| !registration.is_in_flight() && !self.fenced.contains(id));
                if attempt.is_some_and(|at| at <= now) && !slots_free {
                    if !entry.deferred {
                        entry.deferred = true;
                        self.deferred.push_back((now, key.clone()));
                    }
                    attempt = None;
                }
                let lookup = entry.resolve_at.filter(|_| !entry.resolving);
                let wake = [registration.transaction_deadline(), attempt, lookup]
                    .into_iter()
                    .flatten()
                    .min();
                self.deadlines
                    .arm(&mut entry.scheduled, wake, || key.clone());
            }
            Key::Retiring(call_id) => {
                let Some(retiring) = self.retiring.get_mut(call_id) else {
                    return;
                };
                let registration = &mut retiring.registration;
                self.transmits
                    .extend(std::iter::from_fn(|| registration.poll_transmit()));
                // A removed trunk has no status line left to report on.
                while registration.poll_event().is_some() {}
                if registration.is_finished() && !retiring.waiting {
                    self.retiring.remove(call_id);
                    return;
                }
                let wake = registration.poll_timeout();
                self.deadlines
                    .arm(&mut retiring.scheduled, wake, || key.clone());
            }
        }
    }

    /// The next deadline, or now-ish when attempts wait and a slot is free. A stale heap
    /// item may wake the shell early; `handle_timeout` then skips it.
    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let heap = self.deadlines.poll_timeout();
        let deferred = self
            .deferred
            .front()
            .filter(|_| self.in_flight < MAX_REGISTERS_IN_FLIGHT)
            .map(|(at, _)| *at);
        match (heap, deferred) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Bytes to send, from any registration.
    #[must_use]
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// What the registrations reported, naming their trunk.
    #[must_use]
    pub(crate) fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }

    /// A connection to `peer` failed or closed: the registrations using it fail their
    /// transaction now (RFC 3261 §8.1.3.1: a transport error is a 503) and back off.
    pub(crate) fn handle_transport_error(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        transport: Transport,
        why: &str,
    ) {
        // Rare (a connection failing), so a walk over the trunks is fine here.
        let affected: Vec<Key> = self
            .entries
            .iter()
            .filter(|(_, entry)| {
                entry.registration.next_hop() == peer && entry.transport == transport
            })
            .map(|(id, _)| Key::Trunk(id.clone()))
            .collect();
        for key in affected {
            self.touch(now, &key, |registration| {
                registration.handle_transport_error(now, why);
            });
        }
        self.start_deferred(now);
    }

    /// The key of a trunk's live registration, sharing the id `entries` holds.
    fn key_of(&self, id: &str) -> Key {
        match self.entries.get_key_value(id) {
            Some((id, _)) => Key::Trunk(Arc::clone(id)),
            None => Key::Trunk(id.into()),
        }
    }

    /// Unregisters everything (shutdown). `is_idle` says when all are done.
    pub(crate) fn unregister_all(&mut self, now: Instant) {
        let ids: Vec<Arc<str>> = self.entries.keys().cloned().collect();
        for id in ids {
            self.remove(now, &id);
        }
        self.pending.clear();
    }

    /// No registration left and no unregistration in flight or waiting.
    pub(crate) fn is_idle(&self) -> bool {
        self.entries.is_empty() && self.retiring.is_empty()
    }

    /// Round trips of a registering trunk's answered REGISTERs.
    pub(crate) fn round_trips(&self, id: &str) -> Option<&crate::trunk::histogram::Histogram> {
        self.entries
            .get(id)
            .map(|entry| entry.registration.round_trips())
    }

    /// The next hop a registering trunk uses now (after failover or DNS refresh).
    pub(crate) fn next_hop(&self, id: &str) -> Option<SocketAddr> {
        self.entries
            .get(id)
            .map(|entry| entry.registration.next_hop())
    }

    /// Every resolved address of a trunk's next hop (empty until resolved, or when the
    /// trunk does not register).
    pub(crate) fn targets(&self, id: &str) -> &[SocketAddr] {
        self.entries
            .get(id)
            .map_or(&[], |entry| entry.targets.get())
    }

    /// How many registrations are in a state `matching` accepts.
    pub(crate) fn count(&self, matching: impl Fn(registration::State) -> bool) -> usize {
        self.entries
            .values()
            .filter(|entry| matching(entry.registration.state()))
            .count()
    }

    /// The registration fields of a trunk's status line, if it registers.
    pub(crate) fn status(&self, id: &str, now: Instant) -> Option<RegistrationStatus> {
        let entry = self.entries.get(id)?;
        let registration = &entry.registration;
        Some(RegistrationStatus {
            state: registration.state(),
            expires_in: registration.expires_in(now),
            last_code: registration.last_code(),
            retry_in: match registration.state() {
                registration::State::Backoff
                | registration::State::AuthFailed
                | registration::State::Rejected => registration
                    .next_attempt_at()
                    .map(|at| at.saturating_duration_since(now)),
                _ => None,
            },
            next_hop: entry.registration.next_hop(),
        })
    }
}

/// What a status line shows about a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrationStatus {
    pub state: registration::State,
    pub expires_in: Option<Duration>,
    pub last_code: Option<u16>,
    pub retry_in: Option<Duration>,
    pub next_hop: SocketAddr,
}

impl Registrations {
    /// A trunk's registration parameters, with the registrations' current retry policy.
    fn params(&self, trunk: &Trunk, resolved: &Resolved) -> Params {
        params(
            trunk,
            resolved,
            &self.user_agent,
            self.retry_min,
            self.retry_max,
        )
    }
}

fn params(
    trunk: &Trunk,
    resolved: &Resolved,
    user_agent: &Arc<str>,
    retry_min: Duration,
    retry_max: Duration,
) -> Params {
    let username = trunk.username.clone().unwrap_or_default();
    let local = sent_by(resolved.local);
    Params {
        server_name: server_name(trunk),
        registrar: domain_uri(trunk),
        aor: format!("sip:{username}@{}", trunk.domain),
        contact: format!("sip:{username}@{local};transport={}", trunk.transport),
        via_sent_by: local,
        transport: trunk.transport,
        next_hop: resolved.next_hop,
        username,
        password: trunk
            .password
            .clone()
            .unwrap_or_else(|| crate::config::Secret::new("")),
        auth_realm: trunk.auth_realm.clone(),
        expires: trunk.register_expires,
        user_agent: Arc::clone(user_agent),
        learn_public_address: !resolved.public,
        retry_min,
        retry_max,
    }
}

/// The parts of a REGISTER response the registration needs, or `None` when the message
/// is not a response to REGISTER.
pub(crate) fn response_view<'a>(
    message: &Scan<'a, '_>,
    source: SocketAddr,
) -> Option<RegisterResponse<'a>> {
    let StartLine::Response { code, reason } = message.start_line() else {
        return None;
    };
    let cseq = message.cseq().ok()?;
    if cseq.method != scan::Method::Register {
        return None;
    }
    let via = message.top_via().ok()?;
    let text = |bytes: &'a [u8]| std::str::from_utf8(bytes).ok();
    let number = |name: HeaderName<'_>| {
        message
            .header(name)
            .and_then(|value| std::str::from_utf8(value).ok())
            .and_then(|value| value.trim().parse::<u32>().ok())
    };
    let contacts = message
        .contacts()
        .filter_map(Result::ok)
        .filter_map(|contact| match contact {
            Contact::Address(address) => {
                let expires = scan::Params::new(address.params)
                    .get(b"expires")
                    .and_then(|param| param.value)
                    .and_then(|value| std::str::from_utf8(value).ok())
                    .and_then(|value| value.parse::<u32>().ok());
                Some((text(address.uri)?, expires))
            }
            Contact::Wildcard => None,
        })
        .collect();
    let values = |name: HeaderName<'_>| -> Vec<&'a str> {
        message.header_values(name).filter_map(text).collect()
    };
    // Retry-After may carry a comment and parameters: take the leading number.
    let retry_after = message
        .header(HeaderName::RetryAfter)
        .and_then(text)
        .and_then(|value| value.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok());
    Some(RegisterResponse {
        response: ResponseView {
            source,
            code,
            reason: text(reason).unwrap_or(""),
            branch: via.branch.and_then(text).unwrap_or(""),
            cseq: cseq.sequence,
        },
        contacts,
        expires: number(HeaderName::Expires),
        www_authenticate: values(HeaderName::WwwAuthenticate),
        proxy_authenticate: values(HeaderName::ProxyAuthenticate),
        min_expires: number(HeaderName::MinExpires),
        retry_after,
        received: via.received.and_then(text),
        rport: match via.rport {
            scan::Rport::Value(port) => Some(port),
            scan::Rport::Absent | scan::Rport::Empty => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{LoadOptions, load_str};
    use crate::sip::scan::{EMPTY_HEADER, MAX_HEADERS};

    const REGISTRAR: &str = "127.0.0.1:5070";

    #[allow(clippy::disallowed_methods)]
    fn epoch() -> Instant {
        Instant::now()
    }

    fn trunk(extra: &str) -> Trunk {
        let text = format!(
            r#"
[daemon]
listen = ["udp:127.0.0.1:0"]
[trunks.alpha]
domain = "127.0.0.1"
port = 5070
transport = "udp"
direction = "outbound"
username = "trunk1"
password = "s3cret"
register = true
{extra}
"#
        );
        let config = load_str(Path::new("t.toml"), &text, &LoadOptions::default())
            .unwrap_or_else(|errors| panic!("{errors}"));
        (*config.trunks["alpha"]).clone()
    }

    fn resolved() -> Resolved {
        Resolved {
            next_hop: REGISTRAR.parse().unwrap(),
            alternatives: Vec::new(),
            local: "127.0.0.1:5060".parse().unwrap(),
            public: false,
            ttl: None,
        }
    }

    /// A registrations whose trunk "alpha" has sent its first REGISTER; returns that request.
    fn started(trunk: &Trunk) -> (Registrations, String, Instant) {
        let t0 = epoch();
        let mut registrations = Registrations::new(1, TimerValues::default(), "test".into());
        registrations.add(trunk);
        let request = registrations.poll_resolve().expect("a lookup request");
        assert_eq!(
            request,
            ResolveRequest {
                key: ResolveKey::Trunk("alpha".into()),
                host: "127.0.0.1".into(),
                port: Some(5070),
                transport: Transport::Udp,
            }
        );
        registrations.handle_resolved(t0, "alpha", Ok(resolved()));
        let t = t0 + START_SPREAD;
        registrations.handle_timeout(t);
        let transmit = registrations.poll_transmit().expect("REGISTER");
        (registrations, String::from_utf8(transmit.bytes).unwrap(), t)
    }

    fn header<'a>(request: &'a str, name: &str) -> &'a str {
        request
            .split("\r\n")
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
            .unwrap()
    }

    /// The registrar's 200 OK to `request`, as bytes on the wire.
    fn ok_for(request: &str) -> Vec<u8> {
        format!(
            "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=r1\r\nCall-ID: {}\r\nCSeq: {}\r\n\
             Contact: <sip:trunk1@127.0.0.1:5060;transport=udp>;expires=600\r\nContent-Length: 0\r\n\r\n",
            header(request, "Via"),
            header(request, "From"),
            header(request, "To"),
            header(request, "Call-ID"),
            header(request, "CSeq"),
        )
        .into_bytes()
    }

    fn deliver(registrations: &mut Registrations, now: Instant, bytes: &[u8]) -> bool {
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        let message = scan::scan(bytes, &mut headers).unwrap();
        registrations.handle_response(now, REGISTRAR.parse().unwrap(), &message)
    }

    /// At the DNS TTL a trunk is looked up again with the same question as the first time
    /// (the entry rebuilds it from the registration's server name and the lookup port).
    #[test]
    fn the_lookup_at_the_ttl_repeats_the_first_one() {
        for (domain, extra) in [
            ("carrier.example.net", ""),
            ("[2001:db8::1]", ""),
            (
                "carrier.example.net",
                "outbound_proxy = \"sip:[2001:db8::2]:5080\"",
            ),
            (
                "carrier.example.net",
                "outbound_proxy = \"sip:edge.example.net\"",
            ),
        ] {
            let text = format!(
                "[daemon]\nlisten = [\"udp:127.0.0.1:0\"]\n[trunks.alpha]\ndomain = \"{domain}\"\n\
                 transport = \"udp\"\ndirection = \"outbound\"\nusername = \"u\"\n\
                 password = \"p\"\nregister = true\n{extra}\n"
            );
            let config = load_str(Path::new("t.toml"), &text, &LoadOptions::default())
                .unwrap_or_else(|errors| panic!("{errors}"));
            let trunk = &config.trunks["alpha"];
            let t0 = epoch();
            let mut registrations = Registrations::new(1, TimerValues::default(), "test".into());
            registrations.add(trunk);
            let first = registrations.poll_resolve().expect("a lookup request");
            assert_eq!(first, lookup_request(trunk));
            let ttl = Duration::from_secs(300);
            let answer = Resolved {
                ttl: Some(ttl),
                ..resolved()
            };
            registrations.handle_resolved(t0, "alpha", Ok(answer));
            assert!(registrations.poll_resolve().is_none());
            registrations.handle_timeout(t0 + ttl);
            assert_eq!(
                registrations.poll_resolve(),
                Some(first),
                "{domain} {extra}"
            );
        }
    }

    #[test]
    fn a_wire_200_registers_with_the_contact_expiry() {
        let trunk = trunk("");
        let (mut registrations, request, t) = started(&trunk);
        assert!(request.contains("Contact: <sip:trunk1@127.0.0.1:5060;transport=udp>\r\n"));
        assert!(deliver(&mut registrations, t, &ok_for(&request)));
        let status = registrations.status("alpha", t).unwrap();
        assert_eq!(status.state, registration::State::Registered);
        assert_eq!(status.expires_in, Some(Duration::from_secs(600)));
        assert_eq!(status.next_hop, REGISTRAR.parse().unwrap());
    }

    /// With `[cluster]`: a granted trunk's refresh waits while it is fenced (its lease
    /// epoch changed, Redis not yet asked), and goes out the moment it is let go.
    #[test]
    fn a_fenced_trunk_sends_no_refresh_until_it_is_let_go() {
        let trunk = trunk("");
        let t0 = epoch();
        let mut registrations = Registrations::new(1, TimerValues::default(), "test".into());
        registrations.hold_back();
        registrations.add(&trunk);
        assert!(registrations.poll_resolve().is_none(), "not granted yet");
        registrations.grant(&trunk);
        assert!(registrations.poll_resolve().is_some());
        registrations.handle_resolved(t0, "alpha", Ok(resolved()));
        let t = t0 + START_SPREAD;
        registrations.handle_timeout(t);
        let request = String::from_utf8(registrations.poll_transmit().unwrap().bytes).unwrap();
        assert!(deliver(&mut registrations, t, &ok_for(&request)));
        registrations.set_fenced(t, "alpha", true);
        // The refresh is due long before the 600 s expire: nothing goes out, nor is a
        // wakeup armed for it.
        let late = t + Duration::from_secs(590);
        registrations.handle_timeout(late);
        assert!(registrations.poll_transmit().is_none());
        assert!(registrations.poll_timeout().is_none_or(|at| at > late));
        registrations.set_fenced(late, "alpha", false);
        let refresh = registrations.poll_transmit().expect("the refresh, at once");
        let refresh = String::from_utf8(refresh.bytes).unwrap();
        assert!(refresh.starts_with("REGISTER "), "{refresh}");
    }

    #[test]
    fn reload_keeps_the_registration_unless_a_registration_field_changed() {
        let trunk = trunk("");
        let (mut registrations, request, t) = started(&trunk);
        deliver(&mut registrations, t, &ok_for(&request));
        let call_id = header(&request, "Call-ID").to_owned();

        // max_channels is not a registration field: nothing happens.
        registrations.change(
            t,
            &self::trunk("max_channels = 5"),
            &[TrunkField::MaxChannels],
        );
        assert!(registrations.poll_transmit().is_none());
        assert!(registrations.poll_resolve().is_none());
        assert_eq!(
            registrations.status("alpha", t).unwrap().state,
            registration::State::Registered
        );

        // A new password: the old binding is removed and a new registration starts.
        // (The diff's field list drives the decision; the values are the config's.)
        let rotated = self::trunk("");
        registrations.change(t, &rotated, &[TrunkField::Password]);
        let removal = String::from_utf8(registrations.poll_transmit().unwrap().bytes).unwrap();
        assert_eq!(header(&removal, "Expires"), "0");
        assert_eq!(
            header(&removal, "Call-ID"),
            call_id,
            "the old binding's Call-ID"
        );
        assert!(
            registrations.poll_resolve().is_some(),
            "the new registration resolves again"
        );
        // The old binding's answer still reaches it, though the trunk has a new one.
        assert!(deliver(&mut registrations, t, &ok_for(&removal)));
        registrations.handle_timeout(t);
        assert!(
            registrations.retiring.is_empty(),
            "the removed binding is done"
        );
        assert!(
            registrations.pending.contains_key("alpha"),
            "the new registration awaits its lookup"
        );
    }

    #[test]
    fn removal_unregisters_and_shutdown_waits_for_it() {
        let trunk = trunk("");
        let (mut registrations, request, t) = started(&trunk);
        deliver(&mut registrations, t, &ok_for(&request));
        registrations.unregister_all(t);
        assert!(!registrations.is_idle());
        let removal = String::from_utf8(registrations.poll_transmit().unwrap().bytes).unwrap();
        assert_eq!(header(&removal, "Expires"), "0");
        deliver(&mut registrations, t, &ok_for(&removal));
        assert!(registrations.is_idle());
    }

    #[test]
    fn a_trunk_that_never_registered_has_nothing_to_unregister() {
        let trunk = trunk("");
        let (mut registrations, _request, t) = started(&trunk);
        registrations.unregister_all(t);
        assert!(registrations.poll_transmit().is_none());
        assert!(registrations.is_idle());
    }

    #[test]
    fn tls_trunks_resolve_for_their_tls_listener() {
        let mut registrations = Registrations::new(1, TimerValues::default(), "test".into());
        registrations.add(&trunk("").clone().tap_transport(Transport::Tls));
        let request = registrations.poll_resolve().expect("a lookup");
        assert_eq!(request.transport, Transport::Tls);
    }

    #[test]
    fn responses_from_strangers_or_unknown_call_ids_are_not_ours() {
        let trunk = trunk("");
        let (mut registrations, request, t) = started(&trunk);
        let other = ok_for(&request.replace(header(&request, "Call-ID"), "someone-else"));
        assert!(!deliver(&mut registrations, t, &other));
        assert_eq!(
            registrations.status("alpha", t).unwrap().state,
            registration::State::Registering
        );
    }

    #[test]
    fn registers_in_flight_are_capped_and_deferred_ones_start_as_slots_free() {
        let t0 = epoch();
        let mut registrations = Registrations::new(1, TimerValues::default(), "test".into());
        let count = MAX_REGISTERS_IN_FLIGHT + 10;
        for index in 0..count {
            let mut trunk = trunk("");
            trunk.id = format!("t{index:04}");
            registrations.add(&trunk);
        }
        while let Some(request) = registrations.poll_resolve() {
            registrations.handle_resolved(t0, request.key.trunk().unwrap(), Ok(resolved()));
        }
        let t = t0 + START_SPREAD;
        registrations.handle_timeout(t);
        let mut sent = Vec::new();
        while let Some(transmit) = registrations.poll_transmit() {
            sent.push(String::from_utf8(transmit.bytes).unwrap());
        }
        assert_eq!(sent.len(), MAX_REGISTERS_IN_FLIGHT);
        // Ten attempts wait, but do not make the registrations ask to be woken for them now.
        assert!(
            registrations.poll_timeout().unwrap() > t,
            "no busy loop while the cap is full"
        );

        // One answer frees one slot: one deferred attempt starts at once, with no timer.
        assert!(deliver(&mut registrations, t, &ok_for(&sent[0])));
        assert!(registrations.poll_transmit().is_some());
        assert!(registrations.poll_transmit().is_none(), "exactly one more");
        assert_eq!(registrations.in_flight, MAX_REGISTERS_IN_FLIGHT);
    }

    #[test]
    fn dns_answers_are_refreshed_at_their_ttl_and_a_moved_registrar_is_followed() {
        let t0 = epoch();
        let mut registrations = Registrations::new(1, TimerValues::default(), "test".into());
        registrations.add(&trunk(""));
        let request = registrations.poll_resolve().unwrap();
        let mut first = resolved();
        first.ttl = Some(Duration::from_secs(120));
        registrations.handle_resolved(t0, "alpha", Ok(first));
        registrations.handle_timeout(t0 + START_SPREAD);
        let register = String::from_utf8(registrations.poll_transmit().unwrap().bytes).unwrap();
        assert!(deliver(
            &mut registrations,
            t0 + START_SPREAD,
            &ok_for(&register)
        ));

        // Nothing to look up before the TTL; at the TTL, the same lookup again.
        let expiry = t0 + Duration::from_secs(120);
        assert!(registrations.poll_timeout().unwrap() <= expiry);
        registrations.handle_timeout(expiry - Duration::from_secs(1));
        assert!(registrations.poll_resolve().is_none());
        registrations.handle_timeout(expiry);
        assert_eq!(registrations.poll_resolve(), Some(request));

        // The registrar moved: the next REGISTER (the refresh) goes to the new address.
        let mut moved = resolved();
        moved.next_hop = "127.0.0.2:5070".parse().unwrap();
        moved.ttl = Some(Duration::from_secs(120));
        registrations.handle_resolved(expiry, "alpha", Ok(moved));
        assert!(
            std::iter::from_fn(|| registrations.poll_notice())
                .any(|notice| matches!(notice, Notice::FailedOver { .. }))
        );
        // Drive time to the refresh (at 450 s), answering the DNS refreshes on the way.
        let (transmit, at) = loop {
            let at = registrations.poll_timeout().unwrap();
            assert!(
                at < t0 + Duration::from_secs(600),
                "no refresh before expiry"
            );
            registrations.handle_timeout(at);
            while let Some(lookup) = registrations.poll_resolve() {
                let mut again = resolved();
                again.next_hop = "127.0.0.2:5070".parse().unwrap();
                again.ttl = Some(Duration::from_secs(120));
                registrations.handle_resolved(at, lookup.key.trunk().unwrap(), Ok(again));
            }
            if let Some(transmit) = registrations.poll_transmit() {
                break (transmit, at);
            }
        };
        assert_eq!(transmit.destination, "127.0.0.2:5070".parse().unwrap());
        assert_eq!(at, t0 + START_SPREAD + Duration::from_secs(450));
        let status = registrations.status("alpha", at).unwrap();
        assert_eq!(status.next_hop, "127.0.0.2:5070".parse().unwrap());
    }

    #[test]
    fn ip_address_next_hops_are_never_looked_up_again() {
        let t0 = epoch();
        let mut registrations = Registrations::new(1, TimerValues::default(), "test".into());
        registrations.add(&trunk(""));
        registrations.poll_resolve().unwrap();
        registrations.handle_resolved(t0, "alpha", Ok(resolved()));
        registrations.handle_timeout(t0 + Duration::from_secs(7200));
        while registrations.poll_transmit().is_some() {}
        assert!(registrations.poll_resolve().is_none());
    }

    trait TapTransport {
        fn tap_transport(self, transport: Transport) -> Self;
    }

    impl TapTransport for Trunk {
        fn tap_transport(mut self, transport: Transport) -> Self {
            self.transport = transport;
            self
        }
    }
}
