//! Outbound calls on the control path: who may dial out, which trunks a dialled number
//! goes to and in what order, what each trunk's carrier is to see, and the next hops of
//! trunks that neither register nor ping (their own DNS lookup).
//!
//! A candidate trunk is skipped when its keepalive says down, its registration failed
//! for good (`auth_failed`, `rejected`), it is at `max_channels`, over
//! `max_cps_outbound`, or its next hop is not known yet; it counts in `rejected_out`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Control;
use crate::call::outbound::{self, Attempt, Candidate, Dial, Refusal, e164_digits, format_number};
use crate::config::{Direction, Trunk};
use crate::sip::scan::{HeaderName, Method, Scan};
use crate::trunk::keepalive;
use crate::trunk::next_hop::{self, ResolveKey, ResolveRequest};
use crate::trunk::registration;

/// The trunks outbound calls may use, in the config's order (see `Control::dialable`).
pub(super) fn dialable(config: &crate::config::Config) -> std::sync::Arc<[std::sync::Arc<Trunk>]> {
    config
        .trunks
        .values()
        .filter(|trunk| trunk.enabled && trunk.direction != Direction::Inbound)
        .cloned()
        .collect()
}

/// The most trunks one outbound call tries: each failure costs the caller time (up to
/// Timer B), and past a few the backend's own retry serves it better.
pub(crate) const MAX_TRUNKS_PER_CALL: usize = 10;

impl Control {
    /// Whether `message` from `source` is a new outbound call: an INVITE outside any
    /// call from the backend.
    pub(super) fn is_dial_out(&self, source: SocketAddr, message: &Scan<'_, '_>) -> bool {
        message.method() == Some(Method::Invite)
            && message.to().is_ok_and(|to| to.tag.is_none())
            && message
                .call_id()
                .is_ok_and(|call_id| !self.calls.contains(call_id))
            && self.inbound.snapshot().is_backend(source)
    }

    /// Routes a new outbound call: the trunks to try, in order, or why none.
    pub(super) fn dial(
        &mut self,
        now: Instant,
        local: SocketAddr,
        message: &Scan<'_, '_>,
    ) -> Result<Dial, Refusal> {
        if self.inbound.is_draining() {
            return Err(Refusal::Draining);
        }
        if message.max_forwards() == Ok(Some(0)) {
            return Err(Refusal::TooManyHops);
        }
        let config = std::sync::Arc::clone(&self.config);
        let dialable = std::sync::Arc::clone(&self.dialable);
        let header = config.daemon.trunk_header.as_bytes();
        let pinned = message
            .headers()
            .iter()
            .find(|h| matches!(h.name, HeaderName::Other(raw) if raw.eq_ignore_ascii_case(header)))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_owned());
        let user = message
            .request_uri_user()
            .map(|user| String::from_utf8_lossy(user).into_owned())
            .unwrap_or_default();
        // (trunk, its reading of the number, the candidate's ordering keys)
        let mut matched: Vec<(&Trunk, String, Candidate)> = Vec::new();
        if let Some(id) = &pinned {
            let trunk = config
                .trunks
                .get(id)
                .filter(|trunk| trunk.enabled && trunk.direction != Direction::Inbound)
                .ok_or(Refusal::UnknownTrunk)?;
            let digits = e164_digits(&user, trunk.country).ok_or(Refusal::NotANumber)?;
            matched.push((trunk, digits, candidate(trunk, 0)));
        } else {
            let mut any_number = false;
            // The number as each country reads it, read once per country.
            let mut readings: Vec<(Option<&str>, Option<String>)> = Vec::new();
            for trunk in dialable.iter() {
                let country = trunk.country.map(|country| country.alpha2);
                let index = match readings.iter().position(|(c, _)| *c == country) {
                    Some(index) => index,
                    None => {
                        readings.push((country, e164_digits(&user, trunk.country)));
                        readings.len() - 1
                    }
                };
                let Some(digits) = &readings[index].1 else {
                    continue;
                };
                any_number = true;
                if let Some(prefix) = outbound::matching_prefix(&trunk.outbound_prefixes, digits) {
                    matched.push((trunk, digits.clone(), candidate(trunk, prefix)));
                }
            }
            if matched.is_empty() {
                return Err(if any_number {
                    Refusal::NoRoute
                } else {
                    Refusal::NotANumber
                });
            }
        }
        let keys: Vec<Candidate> = matched.iter().map(|(_, _, key)| *key).collect();
        let order = outbound::order(&keys, |n| self.random.below(n));
        let toward_backend = self
            .names
            .sent_by(config.daemon.public_address.as_ref(), local);
        let mut attempts = VecDeque::with_capacity(order.len());
        for index in order {
            if attempts.len() == MAX_TRUNKS_PER_CALL {
                break;
            }
            let (trunk, digits, _) = &matched[index];
            match self.attempt(now, trunk, digits, message) {
                Some(attempt) => attempts.push_back(attempt),
                None => {
                    if let Some(slot) = self.trunks.get(&trunk.id) {
                        slot.counters.rejected_out.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        if attempts.is_empty() {
            return Err(Refusal::NoTrunkAvailable);
        }
        Ok(Dial {
            attempts,
            toward_backend,
        })
    }

    /// The INVITE `trunk`'s carrier is to see, or `None` when the trunk is skipped.
    fn attempt(
        &mut self,
        now: Instant,
        trunk: &Trunk,
        digits: &str,
        message: &Scan<'_, '_>,
    ) -> Option<Attempt> {
        let id = trunk.id.as_str();
        let slot = self.trunks.get(id)?;
        let counters = std::sync::Arc::clone(&slot.counters);
        let down = self
            .keepalives
            .status(id)
            .is_some_and(|status| status.state == keepalive::State::Down);
        let refused = self.registrations.status(id, now).is_some_and(|status| {
            matches!(
                status.state,
                registration::State::AuthFailed | registration::State::Rejected
            )
        });
        let full = trunk.max_channels != 0 && counters.channels() >= trunk.max_channels;
        let hop = self.next_hop_of(trunk);
        let skipped = if down {
            Some("its keepalive says options=down")
        } else if refused {
            Some("its registration failed (auth_failed or rejected)")
        } else if full {
            Some("it is at max_channels")
        } else if hop.is_none() {
            Some("its next hop is not resolved yet")
        } else if !self.take_outbound_slot(now, trunk) {
            Some("it is over max_cps_outbound")
        } else {
            None
        };
        self.note_skip(id, skipped);
        let (next_hop, local) = hop.filter(|_| skipped.is_none())?;
        let country = trunk.country;
        let text = self.names.trunk(trunk);
        let number = format_number(digits, trunk.number_format, country);
        let dialled = match &trunk.tech_prefix {
            Some(prefix) => [prefix.as_str(), &number].concat(),
            None => number,
        };
        let request_uri = ["sip:", &dialled, "@", &text.host_port].concat();
        let to = ["<sip:", &dialled, "@", &text.host, ">"].concat();
        // The caller: the backend's From user when it is one of the trunk's numbers (in
        // the trunk's format), else `caller_id`, else the backend's From user as it is.
        let from = message.from().ok()?;
        let from_user = scan::uri_user(from.uri)
            .map(|user| String::from_utf8_lossy(user).into_owned())
            .unwrap_or_default();
        let own = e164_digits(&from_user, country).filter(|digits| {
            trunk
                .numbers
                .iter()
                .any(|number| number.digits() == digits.as_str())
        });
        let caller = match (own, &trunk.caller_id) {
            (Some(digits), _) => format_number(&digits, trunk.number_format, country),
            (None, Some(caller_id)) => {
                format_number(caller_id.digits(), trunk.number_format, country)
            }
            (None, None) => from_user,
        };
        let from_user = trunk.from_user.as_deref().unwrap_or(&caller);
        let display = from
            .display_name
            .map(|name| format!("\"{}\" ", String::from_utf8_lossy(name)))
            .unwrap_or_default();
        let pai = trunk.send_pai.then(|| {
            [
                "P-Asserted-Identity: <sip:",
                &caller,
                "@",
                &text.from_domain,
                ">",
            ]
            .concat()
        });
        Some(Attempt {
            trunk: trunk.id.clone(),
            counters,
            max_channels: trunk.max_channels,
            request_uri,
            from: [&display, "<sip:", from_user, "@", &text.from_domain, ">"].concat(),
            to,
            pai,
            next_hop,
            transport: trunk.transport,
            sent_by: self.names.sent_by(None, local),
            server_name: text.server_name.clone(),
            credentials: text.credentials.clone(),
        })
    }

    /// Where a trunk's calls go and our address toward there: the next hop its
    /// REGISTER or OPTIONS use now, else the one looked up for calls.
    fn next_hop_of(&self, trunk: &Trunk) -> Option<(SocketAddr, SocketAddr)> {
        let id = trunk.id.as_str();
        let resolved = self.hops.get(id)?;
        let address = self
            .registrations
            .next_hop(id)
            .or_else(|| self.keepalives.next_hop(id))
            .unwrap_or(resolved.next_hop);
        Some((address, resolved.local))
    }

    /// Logs why outbound calls skip a trunk, once per reason: not every call (a down
    /// trunk at 1,000 calls/s would flood the log; `rejected_out` counts each), but again
    /// whenever the reason changes or the trunk was used in between.
    fn note_skip(&mut self, id: &str, skipped: Option<&'static str>) {
        match skipped {
            Some(reason) if self.skip_reasons.get(id) != Some(&reason) => {
                self.skip_reasons.insert(id.to_owned(), reason);
                self.events.push_back(super::Event::Warning {
                    trunk: id.to_owned(),
                    message: format!(
                        "outbound calls skip this trunk: {reason} (counted in rejected_out)"
                    ),
                });
            }
            Some(_) => {}
            None => {
                self.skip_reasons.remove(id);
            }
        }
    }

    /// One call of the trunk's `max_cps_outbound` (GCRA, burst of one second's worth).
    fn take_outbound_slot(&mut self, now: Instant, trunk: &Trunk) -> bool {
        let rate = trunk.max_cps_outbound;
        if rate == 0 {
            return true;
        }
        let interval = Duration::from_secs(1) / rate;
        let tolerance = interval * rate.saturating_sub(1);
        let tat = self.cps_out.entry(trunk.id.clone()).or_insert(now);
        let start = (*tat).max(now);
        if start.saturating_duration_since(now) > tolerance {
            return false;
        }
        *tat = start + interval;
        true
    }

    /// After a lookup of `trunk`'s next hop: when only calls use it, it is looked up
    /// again at its DNS TTL (30 s to 1 h), or in 30 s when it failed; an IP address is not.
    pub(super) fn schedule_hop_refresh(
        &mut self,
        now: Instant,
        trunk: &str,
        resolved: Option<&crate::trunk::next_hop::Resolved>,
    ) {
        let Some(config) = self.config.trunks.get(trunk) else {
            return;
        };
        if !Self::looks_up_for_calls(config) {
            return;
        }
        let interval = match resolved {
            Some(resolved) => resolved.ttl.map(next_hop::resolve_interval),
            None => Some(next_hop::MIN_RESOLVE_INTERVAL),
        };
        match interval {
            Some(interval) => self.hop_refresh.insert(trunk, now + interval),
            None => self.hop_refresh.remove(trunk),
        }
    }

    /// Looks up again the next hops whose refresh is due.
    pub(super) fn refresh_hops(&mut self, now: Instant) {
        while let Some(id) = self.hop_refresh.pop_due(now) {
            if let Some(trunk) = self.config.trunks.get(&id).cloned() {
                self.lookup_outbound_hop(&trunk);
            }
        }
    }

    /// Whether calls are all that looks up the trunk's next hop: it may call out, and
    /// neither registers nor pings.
    fn looks_up_for_calls(trunk: &Trunk) -> bool {
        trunk.enabled
            && trunk.direction != Direction::Inbound
            && !crate::trunk::registrations::Registrations::wants_registration(trunk)
            && !crate::trunk::keepalives::Keepalives::wants_keepalive(trunk)
    }

    /// Asks for the next hop of a trunk that may call out and whose next hop nothing
    /// else looks up (it neither registers nor pings).
    pub(super) fn lookup_outbound_hop(&mut self, trunk: &Trunk) {
        if Self::looks_up_for_calls(trunk) {
            let mut request: ResolveRequest = next_hop::lookup_request(trunk);
            request.key = ResolveKey::Trunk(trunk.id.clone());
            self.outbound_lookups.push_back(request);
        }
    }
}

/// When each trunk's next hop is looked up again, earliest first: O(log n) per change, and
/// the earliest at once (the control loop asks for it every turn, with 100,000 trunks).
#[derive(Debug, Default)]
pub(super) struct Refresh {
    by_id: std::collections::HashMap<String, Instant>,
    order: std::collections::BTreeSet<(Instant, String)>,
}

impl Refresh {
    pub(super) fn insert(&mut self, id: &str, at: Instant) {
        self.remove(id);
        self.by_id.insert(id.to_owned(), at);
        self.order.insert((at, id.to_owned()));
    }

    pub(super) fn remove(&mut self, id: &str) {
        if let Some(at) = self.by_id.remove(id) {
            self.order.remove(&(at, id.to_owned()));
        }
    }

    pub(super) fn first(&self) -> Option<Instant> {
        self.order.first().map(|(at, _)| *at)
    }

    /// The next id due at `now`, taken out.
    fn pop_due(&mut self, now: Instant) -> Option<String> {
        let (at, _) = self.order.first()?;
        if *at > now {
            return None;
        }
        let (_, id) = self.order.pop_first()?;
        self.by_id.remove(&id);
        Some(id)
    }
}

/// A trunk's ordering keys, with the length of its matching prefix.
fn candidate(trunk: &Trunk, prefix: usize) -> Candidate {
    Candidate {
        prefix,
        priority: trunk.priority,
        weight: trunk.weight,
    }
}

use crate::sip::scan;
