//! Several hosts, one set of limits (issue 17): the sans-IO side of `[cluster]`.
//!
//! [`Cluster`] decides; the shell (`io::cluster`) runs its [`Request`]s against Redis, in
//! order, on one connection, and hands back [`Reply`]s. Nothing here waits.
//!
//! - **Channels.** A host writes, per trunk, how many channels it holds now (an absolute
//!   count, so a lost or repeated write heals at the next one). An admitted inbound call
//!   asks once ([`Request::Claim`]): the script adds up the live hosts' counts and says
//!   yes or no, and the call waits for the answer before it reaches a backend. Calls that
//!   end are written back within [`REPORT_EVERY`]; until then the total is high, never
//!   low.
//! - **Liveness.** Each host renews its lease every `lease / 3` ([`Request::Heartbeat`]);
//!   a host whose lease ran out is pruned by the next script that meets it, its channels
//!   with it.
//! - **Registrant.** One host per `register = true` trunk holds it ([`Request::Acquire`]),
//!   valid while its lease (and the lease's epoch) lives. The others take over only when
//!   the holder is gone, and after Redis lost its data only once a lease has passed (the
//!   holder claims it back first).
//! - **Degraded.** Without an answer (Redis down, slow past [`CLAIM_TIMEOUT`], or just
//!   back and not yet trusted) a host decides alone, up to its `degraded_share` of
//!   `max_channels`. The registrant keeps registering; nobody takes over.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::config::cluster::Cluster as Settings;
use crate::trunk::histogram::{FINE_BOUNDS, Histogram};

/// How soon a channel freed on this host is written back to Redis.
pub(crate) const REPORT_EVERY: Duration = Duration::from_millis(100);
/// How long an admitted call waits for Redis's answer before this host decides alone.
pub(crate) const CLAIM_TIMEOUT: Duration = Duration::from_millis(500);

/// What the shell should run against Redis, in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    /// One more channel on `trunk`: this host then holds `count` (the new call included).
    Claim {
        ticket: u64,
        trunk: String,
        count: u32,
        max: u32,
        /// `max_cps` (0: none), shared by the hosts.
        rate: u32,
    },
    /// This host holds `count` channels on `trunk` now.
    Report { trunk: String, count: u32 },
    /// Renew this host's lease; learn who else is alive and the channel totals.
    Heartbeat,
    /// Become `trunk`'s registrant unless a live host holds it.
    Acquire { trunk: String, epoch: u64 },
    /// Give `trunk`'s registration up (it was removed, or no longer registers).
    Resign { trunk: String },
    /// Planned shutdown: release this host's channels, registrations and lease.
    Leave { held: Vec<String> },
}

/// Redis's answer to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Granted,
    /// The hosts' channels add up to `max_channels`.
    Busy,
    /// `max_cps` across the hosts.
    RateLimited,
    /// This host's lease had run out: its count was not trusted; decide alone.
    NotMember,
}

/// What the shell reports back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Connected,
    /// The connection failed; requests sent and not answered are lost.
    Disconnected {
        why: String,
    },
    Claimed {
        ticket: u64,
        verdict: Verdict,
    },
    Heartbeat {
        epoch: u64,
        /// Our lease had run out (or Redis had none): others may have taken our trunks.
        rejoined: bool,
        /// Changes when Redis lost its data.
        boot: String,
        alive: Vec<String>,
        /// Channels in use per trunk, over the live hosts (trunks with any).
        totals: Vec<(String, u32)>,
        /// Registrations given up by their holder (shutdown, removal), free to take.
        vacant: Vec<String>,
    },
    Acquired {
        trunk: String,
        holder: String,
    },
    Left,
}

/// How an admitted inbound call gets its cluster channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Asked; the answer comes as [`Reply::Claimed`] with this ticket (or the claim times
    /// out and [`Cluster::expired_claims`] returns it).
    Asked(u64),
    /// Decided here (degraded): the call may go on, or not.
    Local(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Down,
    /// Answers are trusted from `trusted_from` on (a lease after Redis lost its data).
    Up {
        trusted_from: Instant,
    },
}

#[derive(Debug, Default)]
struct Registrant {
    holder: Option<String>,
    mine: bool,
    /// An Acquire is out.
    asking: bool,
    /// Not before then (a lease after Redis lost its data, for the holder to return).
    eligible_at: Option<Instant>,
    /// Held back: this host's lease epoch changed since it got the trunk, and Redis has
    /// not yet confirmed the trunk under the new one (the fencing token).
    fenced: bool,
}

/// A registration this host gained or lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RegistrantChange {
    pub(crate) trunk: String,
    pub(crate) mine: bool,
    pub(crate) holder: String,
}

/// The cluster state of one host.
#[derive(Debug)]
pub(crate) struct Cluster {
    settings: Settings,
    link: Link,
    requests: VecDeque<Request>,
    next_ticket: u64,
    /// Claims asked and not answered: ticket → trunk, in the order of their deadlines.
    claims: VecDeque<(u64, Instant, String)>,
    /// The count last written per trunk (kept across disconnects, so a count that fell
    /// meanwhile is written again).
    reported: HashMap<String, u32>,
    report_due: Instant,
    heartbeat_due: Option<Instant>,
    heartbeat_out: bool,
    /// Every trunk's count is to be written with the next report (after a reconnect).
    rebuild: bool,
    epoch: Option<u64>,
    boot: Option<String>,
    alive: HashSet<String>,
    totals: HashMap<String, u32>,
    registrants: BTreeMap<String, Registrant>,
    changes: VecDeque<RegistrantChange>,
    /// (trunk, fenced): REGISTERs to hold back or let go.
    fences: VecDeque<(String, bool)>,
    /// Stopping: the registrations were handed over; none is taken again.
    resigned: bool,
    /// The end of a stop: no heartbeat, no claim (Leave sent).
    leaving: bool,
    left: bool,
    /// From a claim asked to its answer (the latency an admitted call waits).
    claim_times: Histogram,
}

impl Cluster {
    pub(crate) fn new(settings: Settings, now: Instant) -> Self {
        Cluster {
            settings,
            link: Link::Down,
            requests: VecDeque::new(),
            next_ticket: 0,
            claims: VecDeque::new(),
            reported: HashMap::new(),
            report_due: now + REPORT_EVERY,
            heartbeat_due: None,
            heartbeat_out: false,
            rebuild: false,
            epoch: None,
            boot: None,
            alive: HashSet::new(),
            totals: HashMap::new(),
            registrants: BTreeMap::new(),
            changes: VecDeque::new(),
            fences: VecDeque::new(),
            resigned: false,
            leaving: false,
            left: false,
            claim_times: Histogram::with_bounds(&FINE_BOUNDS),
        }
    }

    /// This host's `node`.
    pub(crate) fn node(&self) -> &str {
        &self.settings.node
    }

    /// Redis answers and its answers are trusted.
    pub(crate) fn is_ok(&self, now: Instant) -> bool {
        matches!(self.link, Link::Up { trusted_from } if now >= trusted_from)
            && self.epoch.is_some()
    }

    /// A new inbound call on `trunk`, whose channel this host already counts (`count`
    /// held now, this call included).
    pub(crate) fn admit(
        &mut self,
        now: Instant,
        trunk: &str,
        count: u32,
        max: u32,
        rate: u32,
    ) -> Admission {
        if !self.is_ok(now) || self.leaving {
            return Admission::Local(self.within_share(count, max));
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.requests.push_back(Request::Claim {
            ticket,
            trunk: trunk.to_string(),
            count,
            max,
            rate,
        });
        self.claims
            .push_back((ticket, now + CLAIM_TIMEOUT, trunk.to_string()));
        self.reported.insert(trunk.to_string(), count);
        Admission::Asked(ticket)
    }

    /// Whether `count` channels fit this host's degraded share of `max`.
    pub(crate) fn within_share(&self, count: u32, max: u32) -> bool {
        max == 0 || count <= self.settings.degraded_limit(max)
    }

    /// Claims that waited [`CLAIM_TIMEOUT`] without an answer: decided alone now.
    pub(crate) fn expired_claims(&mut self, now: Instant) -> Vec<u64> {
        let mut expired = Vec::new();
        while let Some(&(ticket, deadline, _)) = self.claims.front() {
            if deadline > now {
                break;
            }
            self.claims.pop_front();
            expired.push(ticket);
        }
        expired
    }

    /// The trunks that register, as configured now; a trunk no longer among them is
    /// resigned if this host held it.
    pub(crate) fn set_registering<'a>(&mut self, trunks: impl Iterator<Item = &'a str>) {
        let wanted: HashSet<&str> = trunks.collect();
        let gone: Vec<String> = self
            .registrants
            .keys()
            .filter(|id| !wanted.contains(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            if self.registrants.remove(&id).is_some_and(|r| r.mine) && self.epoch.is_some() {
                self.requests.push_back(Request::Resign { trunk: id });
            }
        }
        for id in wanted {
            self.registrants.entry(id.to_string()).or_default();
        }
        self.ask_for_registrations(None);
    }

    /// This host registers `trunk`.
    pub(crate) fn is_registrant(&self, trunk: &str) -> bool {
        self.registrants.get(trunk).is_some_and(|r| r.mine)
    }

    /// Who registers `trunk`, when known.
    pub(crate) fn registrant(&self, trunk: &str) -> Option<&str> {
        self.registrants.get(trunk)?.holder.as_deref()
    }

    /// Channels in use on `trunk` over every live host, as of the last heartbeat.
    pub(crate) fn total(&self, trunk: &str) -> Option<u32> {
        self.epoch?;
        Some(self.totals.get(trunk).copied().unwrap_or(0))
    }

    #[must_use]
    pub(crate) fn poll_request(&mut self) -> Option<Request> {
        self.requests.pop_front()
    }

    pub(crate) fn has_requests(&self) -> bool {
        !self.requests.is_empty()
    }

    #[must_use]
    pub(crate) fn poll_change(&mut self) -> Option<RegistrantChange> {
        self.changes.pop_front()
    }

    /// A trunk whose REGISTERs are to be held back (`true`) or let go.
    #[must_use]
    pub(crate) fn poll_fence(&mut self) -> Option<(String, bool)> {
        self.fences.pop_front()
    }

    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let claim = self.claims.front().map(|&(_, deadline, _)| deadline);
        let report = (self.epoch.is_some() && !self.reported.is_empty()).then_some(self.report_due);
        [claim, report, self.heartbeat_due]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs what is due: heartbeats and the write-back of counts. `counts` walks every
    /// trunk's channels held here (used after a reconnect and at each heartbeat);
    /// `count` reads one trunk's.
    pub(crate) fn handle_timeout<'a>(
        &mut self,
        now: Instant,
        counts: impl FnOnce() -> Vec<(&'a str, u32)>,
        count: impl Fn(&str) -> u32,
    ) {
        if self.heartbeat_due.is_some_and(|due| now >= due) && !self.leaving {
            self.heartbeat_due = Some(now + self.settings.lease / 3);
            if !self.heartbeat_out {
                self.heartbeat_out = true;
                self.requests.push_back(Request::Heartbeat);
            }
            // Outbound calls and calls decided alone are counted here too.
            self.rebuild = true;
        }
        if now >= self.report_due {
            self.report_due = now + REPORT_EVERY;
            if self.epoch.is_some() && matches!(self.link, Link::Up { .. }) {
                self.report(counts, count);
            }
        }
    }

    fn report<'a>(
        &mut self,
        counts: impl FnOnce() -> Vec<(&'a str, u32)>,
        count: impl Fn(&str) -> u32,
    ) {
        if std::mem::take(&mut self.rebuild) {
            // Redis may have lost what was written (a restart, or this host pruned while
            // away): every count is written again, unchanged or not.
            for last in self.reported.values_mut() {
                *last = u32::MAX;
            }
            for (trunk, held) in counts() {
                if held != 0 && !self.reported.contains_key(trunk) {
                    self.reported.insert(trunk.to_string(), u32::MAX);
                }
            }
        }
        let mut written = Vec::new();
        for (trunk, last) in &mut self.reported {
            let now_held = count(trunk);
            if now_held != *last {
                *last = now_held;
                written.push(Request::Report {
                    trunk: trunk.clone(),
                    count: now_held,
                });
            }
        }
        self.reported.retain(|_, last| *last != 0);
        self.requests.extend(written);
    }

    /// An answer from the shell. Returns the claim it answers, if it does.
    pub(crate) fn handle_reply(&mut self, now: Instant, reply: Reply) -> Option<(u64, Verdict)> {
        match reply {
            Reply::Connected => {
                // Trusted once the first heartbeat says whether Redis kept its data.
                self.link = Link::Up { trusted_from: now };
                self.heartbeat_due = Some(now);
                self.heartbeat_out = false;
                None
            }
            Reply::Disconnected { .. } => {
                self.link = Link::Down;
                self.heartbeat_due = None;
                self.heartbeat_out = false;
                self.rebuild = true;
                for registrant in self.registrants.values_mut() {
                    registrant.asking = false;
                }
                // Claims out are lost: the caller decides them alone at once.
                for (_, deadline, _) in &mut self.claims {
                    *deadline = now;
                }
                None
            }
            Reply::Claimed { ticket, verdict } => {
                let position = self.claims.iter().position(|(t, _, _)| *t == ticket);
                let (_, deadline, trunk) = self.claims.remove(position?)?;
                let asked = deadline - CLAIM_TIMEOUT;
                self.claim_times
                    .observe(now.saturating_duration_since(asked));
                if verdict != Verdict::Granted
                    && let Some(last) = self.reported.get_mut(&trunk)
                {
                    // The script wrote the count without this call.
                    *last = last.saturating_sub(1);
                }
                Some((ticket, verdict))
            }
            Reply::Heartbeat {
                epoch,
                rejoined,
                boot,
                alive,
                totals,
                vacant,
            } => {
                for trunk in vacant {
                    if let Some(registrant) = self.registrants.get_mut(&trunk)
                        && !registrant.mine
                    {
                        registrant.holder = None;
                    }
                }
                self.heartbeat(now, epoch, rejoined, boot, alive, totals);
                None
            }
            Reply::Acquired { trunk, holder } => {
                self.acquired(trunk, holder);
                None
            }
            Reply::Left => {
                self.left = true;
                None
            }
        }
    }

    fn heartbeat(
        &mut self,
        now: Instant,
        epoch: u64,
        rejoined: bool,
        boot: String,
        alive: Vec<String>,
        totals: Vec<(String, u32)>,
    ) {
        self.heartbeat_out = false;
        let lost_data = self.boot.as_ref().is_some_and(|old| *old != boot);
        if lost_data {
            // Until the other hosts have written their counts again (they reconnect and
            // rebuild within a lease), the totals would be low: decide alone meanwhile.
            self.link = Link::Up {
                trusted_from: now + self.settings.lease,
            };
        }
        let first = self.epoch.is_none();
        self.epoch = Some(epoch);
        self.boot = Some(boot);
        self.alive = alive.into_iter().collect();
        self.totals = totals.into_iter().collect();
        self.rebuild = true;
        self.report_due = now;
        let lease = self.settings.lease;
        for (id, registrant) in &mut self.registrants {
            if registrant.mine && (rejoined || lost_data) {
                // Claimed again under the new epoch (or into the new data set); no
                // REGISTER goes out until Redis answers (a loss is told then).
                registrant.asking = true;
                if !registrant.fenced {
                    registrant.fenced = true;
                    self.fences.push_back((id.clone(), true));
                }
                self.requests.push_back(Request::Acquire {
                    trunk: id.clone(),
                    epoch,
                });
            } else if lost_data && !first && !registrant.mine {
                // The holder, back too, claims it first.
                registrant.eligible_at = Some(now + lease);
            }
        }
        self.ask_for_registrations(Some(now));
    }

    /// Asks for every registration that has no live holder (and may be taken now).
    fn ask_for_registrations(&mut self, now: Option<Instant>) {
        let (Some(epoch), Link::Up { .. }) = (self.epoch, self.link) else {
            return;
        };
        if self.resigned || self.leaving {
            return;
        }
        for (id, registrant) in &mut self.registrants {
            let held_by_live = registrant
                .holder
                .as_ref()
                .is_some_and(|holder| self.alive.contains(holder));
            let eligible = match (registrant.eligible_at, now) {
                (Some(at), Some(now)) => now >= at,
                (Some(_), None) => false,
                (None, _) => true,
            };
            if registrant.mine || registrant.asking || held_by_live || !eligible {
                continue;
            }
            registrant.asking = true;
            self.requests.push_back(Request::Acquire {
                trunk: id.clone(),
                epoch,
            });
        }
    }

    fn acquired(&mut self, trunk: String, holder: String) {
        let node = &self.settings.node;
        let Some(registrant) = self.registrants.get_mut(&trunk) else {
            // Removed meanwhile: give it back if it became ours.
            if holder == *node {
                self.requests.push_back(Request::Resign { trunk });
            }
            return;
        };
        registrant.asking = false;
        registrant.eligible_at = None;
        if self.resigned && holder == *node {
            // Answered after this host handed its registrations over: given back.
            registrant.holder = None;
            self.requests.push_back(Request::Resign { trunk });
            return;
        }
        let mine = holder == *node;
        let was_mine = registrant.mine;
        registrant.mine = mine;
        // Confirmed under the current epoch: its REGISTERs go again (a lost one is
        // revoked instead, so nothing is let go).
        if std::mem::take(&mut registrant.fenced) && mine {
            self.fences.push_back((trunk.clone(), false));
        }
        registrant.holder = (!holder.is_empty()).then_some(holder.clone());
        if mine != was_mine {
            self.changes.push_back(RegistrantChange {
                trunk,
                mine,
                holder,
            });
        }
    }

    /// Planned shutdown, once the un-REGISTERs are done: the registrations go to the
    /// other hosts (they take them at their next heartbeat). The lease is still renewed
    /// and the channels still counted while calls drain: only [`Cluster::leave`] ends
    /// that.
    pub(crate) fn resign_all(&mut self) {
        self.resigned = true;
        if self.epoch.is_none() {
            return;
        }
        for (id, registrant) in &mut self.registrants {
            if std::mem::take(&mut registrant.mine) {
                registrant.holder = None;
                self.requests
                    .push_back(Request::Resign { trunk: id.clone() });
            }
        }
    }

    /// [`Cluster::resign_all`] was done.
    pub(crate) fn has_resigned(&self) -> bool {
        self.resigned
    }

    /// The end of a planned shutdown (calls drained): this host's channels and lease go.
    pub(crate) fn leave(&mut self) {
        if self.left
            || self
                .requests
                .iter()
                .any(|r| matches!(r, Request::Leave { .. }))
        {
            return;
        }
        self.leaving = true;
        self.heartbeat_due = None;
        if self.epoch.is_none() || !matches!(self.link, Link::Up { .. }) {
            self.left = true;
            return;
        }
        let held = self
            .registrants
            .iter()
            .filter(|(_, r)| r.mine)
            .map(|(id, _)| id.clone())
            .collect();
        self.requests.push_back(Request::Leave { held });
    }

    /// How long answered claims waited for Redis.
    pub(crate) fn claim_times(&self) -> &Histogram {
        &self.claim_times
    }

    /// The Leave was answered (or there was no Redis to tell).
    pub(crate) fn has_left(&self) -> bool {
        self.left
    }
}
