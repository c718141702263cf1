//! What an outbound call needs beyond what an inbound one does: the trunks to try, in
//! order ([`order`]), and for each the INVITE as that trunk's carrier is to see it
//! ([`Attempt`]): the dialled number in the trunk's format ([`format_number`]), the caller
//! number, where to send, and the credentials a challenge is answered with.
//!
//! The call itself is the same proxy as an inbound one ([`super::Calls`]) with the sides
//! swapped (the backend calls, the carrier is called) and three differences kept in
//! [`Outbound`]: From, To and CSeq differ between the two sides (the carrier sees the
//! trunk's numbers and, after a digest challenge, a CSeq one higher for every request the
//! backend sends in the dialog), a challenge is answered, and a failed trunk is followed
//! by the next. The pieces of that which stand alone live here too: the first trunk
//! with a channel free ([`claim_first`]), the INVITE a trunk is to see
//! ([`outbound_invite`]), and the answer to its challenge ([`authorization`]).

use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::forward::{self, Hop};
use super::{Branch, Keys};
use crate::config::{Country, NumberFormat, Secret, Transport};
use crate::inbound::{ChannelGuard, TrunkCounters, hex_tag};
use crate::sip::digest;
use crate::sip::scan::{self, HeaderName, Scan};

/// Which carrier to try, and the INVITE it is to see.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub trunk: String,
    /// The trunk's channels, claimed when the attempt starts.
    pub counters: Arc<TrunkCounters>,
    pub max_channels: u32,
    pub request_uri: String,
    /// From and To as the carrier sees them, without tags.
    pub from: String,
    pub to: String,
    /// The whole `P-Asserted-Identity` line, when the trunk sends one.
    pub pai: Option<String>,
    pub next_hop: SocketAddr,
    pub transport: Transport,
    /// Our `host:port` toward the next hop.
    pub sent_by: String,
    /// The name a TLS next hop's certificate must carry.
    pub server_name: String,
    pub credentials: Option<Arc<Credentials>>,
}

/// What a digest challenge from the trunk's next hop is answered with. `Debug` shows no
/// password ([`Secret`]).
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    pub username: String,
    pub password: Secret,
    /// `auth_realm`: a challenge for another realm is not answered.
    pub realm: Option<String>,
}

/// A new outbound call as the control path routed it.
#[derive(Debug)]
pub(crate) struct Dial {
    /// The trunks to try, first first; never empty.
    pub attempts: VecDeque<Attempt>,
    /// Our `host:port` toward the backend (UDP), for the Record-Route it reaches us by.
    pub toward_backend: String,
}

/// Why an outbound INVITE is answered at once: the status code, the reason phrase, and
/// whether to add `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `X-Trunk` names no trunk that may call out (404).
    UnknownTrunk,
    /// No trunk's `outbound_prefixes` match the number (404).
    NoRoute,
    /// Trunks match, every one was skipped (503, Retry-After).
    NoTrunkAvailable,
    /// The Request-URI has no number to dial (404 as well: nothing routes it).
    NotANumber,
    /// Max-Forwards 0 (483).
    TooManyHops,
    /// Shutting down (503, Retry-After).
    Draining,
}

impl Refusal {
    pub(crate) fn code(self) -> u16 {
        match self {
            Refusal::UnknownTrunk | Refusal::NoRoute | Refusal::NotANumber => 404,
            Refusal::NoTrunkAvailable | Refusal::Draining => 503,
            Refusal::TooManyHops => 483,
        }
    }

    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refusal::UnknownTrunk => "Unknown Trunk",
            Refusal::NoRoute | Refusal::NotANumber => "No Route",
            Refusal::NoTrunkAvailable => "No Trunk Available",
            Refusal::TooManyHops => "Too Many Hops",
            Refusal::Draining => "Shutting Down",
        }
    }

    pub(crate) fn retry_after(self) -> Option<&'static str> {
        match self {
            Refusal::NoTrunkAvailable => Some(crate::inbound::BUSY_RETRY_AFTER),
            Refusal::Draining => Some(crate::inbound::DRAINING_RETRY_AFTER),
            _ => None,
        }
    }
}

/// An outbound call's own state, beside the proxy's.
#[derive(Debug)]
pub(crate) struct Outbound {
    /// The trunk tried now.
    pub current: Attempt,
    /// The trunks left to try.
    pub remaining: VecDeque<Attempt>,
    /// From and To of the backend's INVITE, without tags: what the backend sees.
    pub backend_from: String,
    pub backend_to: String,
    /// The CSeq of the backend's INVITE.
    pub invite_cseq: u32,
    /// Added to the CSeq of every request the backend sends in the dialog: one per
    /// challenge answered (RFC 3261 §22.2: the retried request has CSeq one higher).
    pub cseq_offset: u32,
    /// The current trunk's challenge was answered: a second one means bad credentials.
    pub challenged: bool,
    /// INVITEs sent so far (each with a branch of its own).
    pub sent: u32,
    /// A provisional with a To tag came: the callee is reached, no other trunk is tried.
    pub reached: bool,
    /// The backend cancelled: no other trunk is tried.
    pub stopped: bool,
    /// The best final response of the trunks that failed, as relayed to the backend
    /// (RFC 3261 §16.7 step 6).
    pub best: Option<(u16, Vec<u8>)>,
    /// The INVITEs sent before the current one.
    pub retired: Vec<super::Retired>,
    /// `[cluster]`: the current attempt waits for its channel (the ask's ticket).
    pub awaiting: Option<u64>,
}

impl Outbound {
    /// Whether a failure of the current trunk may go on to the next.
    pub(crate) fn may_fail_over(&self) -> bool {
        !self.reached && !self.stopped && !self.remaining.is_empty()
    }

    /// Keeps `relayed` (a final response with `code`) if it is better than the best so
    /// far: a 6xx over anything, else the lowest class, the first of a class.
    pub(crate) fn keep_best(&mut self, code: u16, relayed: Vec<u8>) {
        let rank = |code: u16| if code >= 600 { 0 } else { code / 100 };
        if self
            .best
            .as_ref()
            .is_none_or(|(best, _)| rank(code) < rank(*best))
        {
            self.best = Some((code, relayed));
        }
    }
}

/// The E.164 digits (no `+`) of a dialled user part as a trunk of `country` reads it:
/// `+E.164`; digits with the country's national prefix (`0…`, read as national); digits
/// starting with its calling code (E.164 without `+`); other digits, national without
/// the prefix. Visual separators and user parameters are ignored. `None` when the user
/// is not a telephone number.
pub(crate) fn e164_digits(user: &str, country: Option<&Country>) -> Option<String> {
    let user = user.split(';').next().unwrap_or(user);
    let (plus, rest) = match user.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, user),
    };
    let mut digits = String::with_capacity(rest.len() + 4);
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let code = country.and_then(|country| country.calling_code);
    let (Some(country), Some(code), false) = (country, code, plus) else {
        return Some(digits);
    };
    let code = code.to_string();
    if let Some(prefix) = country.national_prefix
        && digits.len() > prefix.len()
        && digits.starts_with(prefix)
        // NANP: the national prefix is the calling code; the number is E.164 already.
        && prefix != code
    {
        return Some(format!("{code}{}", &digits[prefix.len()..]));
    }
    if digits.starts_with(&code) {
        return Some(digits);
    }
    Some(format!("{code}{digits}"))
}

/// E.164 digits (no `+`) written in a trunk's `number_format`: `+E.164`, E.164 digits, or
/// national (the country's national prefix, then the number without its calling code;
/// a number of another country stays international, with `+`... as `+e164`).
pub(crate) fn format_number(
    digits: &str,
    format: NumberFormat,
    country: Option<&Country>,
) -> String {
    match format {
        NumberFormat::PlusE164 => format!("+{digits}"),
        NumberFormat::E164 => digits.to_owned(),
        NumberFormat::National => {
            let code = country.and_then(|country| country.calling_code);
            let national = code
                .map(|code| code.to_string())
                .and_then(|code| digits.strip_prefix(code.as_str()).map(str::to_owned));
            match (country, national) {
                (Some(country), Some(national)) => {
                    let prefix = country.national_prefix.unwrap_or("");
                    format!("{prefix}{national}")
                }
                _ => format!("+{digits}"),
            }
        }
    }
}

/// A trunk that may carry an outbound call, as [`order`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// The length of its longest `outbound_prefixes` entry the number starts with (0:
    /// the trunk takes every number).
    pub prefix: usize,
    pub priority: u32,
    pub weight: u32,
}

/// The order to try candidates in: longest matching prefix first, then lower
/// `priority`, then a weighted random draw (by `weight`) among equals: each candidate
/// gets an exponential key of rate `weight` and the smallest goes first (Efraimidis and
/// Spirakis' weighted sampling without replacement: a trunk of weight 3 comes first three
/// times as often as one of weight 1; O(n log n) for any number of trunks).
/// `random(n)` gives a number in `0..n`.
pub(crate) fn order(candidates: &[Candidate], mut random: impl FnMut(u64) -> u64) -> Vec<usize> {
    const SCALE: u64 = 1 << 53;
    let mut keyed: Vec<(std::cmp::Reverse<usize>, u32, f64, usize)> = candidates
        .iter()
        .enumerate()
        .map(|(index, candidate)| {
            // Uniform in (0, 1]: never 0, whose logarithm has no end.
            let uniform = (random(SCALE) + 1) as f64 / SCALE as f64;
            let draw = -uniform.ln() / f64::from(candidate.weight.max(1));
            (
                std::cmp::Reverse(candidate.prefix),
                candidate.priority,
                draw,
                index,
            )
        })
        .collect();
    keyed.sort_by(|a, b| {
        (a.0, a.1)
            .cmp(&(b.0, b.1))
            .then(a.2.total_cmp(&b.2))
            .then(a.3.cmp(&b.3))
    });
    keyed.into_iter().map(|(.., index)| index).collect()
}

/// The length of the longest of `prefixes` that `digits` starts with: `Some(0)` when
/// there are none (every number), `None` when none matches.
pub(crate) fn matching_prefix(prefixes: &[String], digits: &str) -> Option<usize> {
    if prefixes.is_empty() {
        return Some(0);
    }
    prefixes
        .iter()
        .filter(|prefix| digits.starts_with(prefix.as_str()))
        .map(String::len)
        .max()
}

/// The first of `attempts` whose trunk has a channel free, with the channel; the ones
/// before it (full since the control path chose them) are dropped.
pub(super) fn claim_first(attempts: &mut VecDeque<Attempt>) -> Option<(Attempt, ChannelGuard)> {
    while let Some(attempt) = attempts.pop_front() {
        if let Some(guard) = attempt.counters.claim(attempt.max_channels) {
            attempt.counters.calls_out.fetch_add(1, Ordering::Relaxed);
            return Some((attempt, guard));
        }
        attempt
            .counters
            .rejected_busy
            .fetch_add(1, Ordering::Relaxed);
    }
    None
}

/// A From or To value without its tag (`"Alice" <sip:a@b>;tag=x` → `"Alice" <sip:a@b>`),
/// other parameters kept.
pub(super) fn without_tag(value: &[u8], parsed: &scan::NameAddr<'_>) -> String {
    let value = String::from_utf8_lossy(value);
    let Some(tag) = parsed.tag else {
        return value.into_owned();
    };
    let tag = String::from_utf8_lossy(tag);
    let mut out = String::with_capacity(value.len());
    for (i, part) in split_outside_brackets(&value).into_iter().enumerate() {
        let param = part.trim();
        let is_tag = i > 0
            && param.split_once('=').is_some_and(|(name, v)| {
                name.trim().eq_ignore_ascii_case("tag") && v.trim() == tag
            });
        if is_tag {
            continue;
        }
        if i > 0 {
            out.push(';');
        }
        out.push_str(part);
    }
    out
}

/// Splits a name-addr at the `;` outside `<...>` and quotes.
fn split_outside_brackets(value: &str) -> Vec<&str> {
    let (mut parts, mut start, mut depth, mut quoted) = (Vec::new(), 0, 0i32, false);
    let bytes = value.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'<' if !quoted => depth += 1,
            b'>' if !quoted => depth -= 1,
            b';' if !quoted && depth == 0 => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

/// The backend's INVITE as the current trunk of `outbound` is to see it, with our
/// branch (one per INVITE sent), and `authorization` when answering a challenge.
pub(super) fn outbound_invite(
    keys: &Keys,
    trunk_header: &str,
    (message, source): (&Scan<'_, '_>, SocketAddr),
    (call_id, backend_branch): (&[u8], &[u8]),
    outbound: &mut Outbound,
    toward_backend: &str,
    authorization: Option<&str>,
) -> Option<(Vec<u8>, Branch)> {
    outbound.sent += 1;
    let mut salt = backend_branch.to_vec();
    salt.extend_from_slice(&outbound.sent.to_be_bytes());
    let branch = keys.branch_for(call_id, &salt);
    let attempt = &outbound.current;
    let ours = [attempt.sent_by.as_str(), toward_backend];
    let second = (attempt.transport != Transport::Udp || attempt.sent_by != toward_backend)
        .then_some((Transport::Udp, toward_backend));
    let record_route = [Some((attempt.transport, attempt.sent_by.as_str())), second];
    let hop = Hop {
        transport: attempt.transport,
        sent_by: &attempt.sent_by,
        branch: branch.as_str(),
        ours: &ours,
    };
    let extra: Vec<&str> = [attempt.pai.as_deref(), authorization]
        .into_iter()
        .flatten()
        .collect();
    let edits = forward::Edits {
        request_uri: Some(&attempt.request_uri),
        record_route: &record_route,
        trunk_header: Some((trunk_header, None)),
        parties: forward::Parties {
            from: Some(&attempt.from),
            to: Some(&attempt.to),
            cseq: Some(outbound.invite_cseq.wrapping_add(outbound.cseq_offset)),
        },
        initial: true,
        drop_route_and_pai: true,
        extra: &extra,
    };
    let mut forwarded = Vec::new();
    forward::request(&mut forwarded, message, source, &hop, &edits).ok()?;
    Some((forwarded, branch))
}

/// The `Authorization` (401) or `Proxy-Authorization` (407) line answering the challenge
/// of `response` with the trunk's credentials, or why it cannot be answered.
pub(super) fn authorization(
    code: u16,
    response: &Scan<'_, '_>,
    attempt: &Attempt,
    method: &str,
    digest_uri: &str,
) -> Result<String, String> {
    let Some(credentials) = &attempt.credentials else {
        return Err("the trunk has no credentials".into());
    };
    let (name, answer_name) = if code == 407 {
        (HeaderName::ProxyAuthenticate, "Proxy-Authorization")
    } else {
        (HeaderName::WwwAuthenticate, "Authorization")
    };
    let values: Vec<String> = response
        .header_values(name)
        .map(|value| String::from_utf8_lossy(value).into_owned())
        .collect();
    let challenge = digest::preferred(
        values
            .iter()
            .filter_map(|value| digest::parse_challenge(value).ok()),
    )
    .ok_or("no usable Digest challenge")?;
    if let Some(realm) = &credentials.realm
        && realm.as_str() != challenge.realm.as_ref()
    {
        return Err(format!(
            "realm \"{}\" is not the configured auth_realm",
            challenge.realm
        ));
    }
    let cnonce = hex_tag(cnonce_seed());
    let cnonce = std::str::from_utf8(&cnonce).unwrap_or("0");
    let answer = digest::answer(
        &challenge,
        &credentials.username,
        &credentials.password,
        method,
        digest_uri,
        cnonce,
        1,
        credentials.realm.as_deref(),
    )
    .map_err(|error| error.to_string())?;
    let mut line = String::from(answer_name);
    line.push_str(": ");
    answer.write_header_value(&mut line);
    Ok(line)
}

/// Random bits for a client nonce: fresh per call of [`RandomState`].
fn cnonce_seed() -> u64 {
    RandomState::new().hash_one(0x636e_6f6e_6365u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lookup_country;

    #[test]
    fn dialled_numbers_are_read_as_the_trunks_country_would() {
        let gb = lookup_country("GB");
        let us = lookup_country("US");
        assert_eq!(
            e164_digits("+442079460000", gb).as_deref(),
            Some("442079460000")
        );
        assert_eq!(
            e164_digits("442079460000", gb).as_deref(),
            Some("442079460000")
        );
        assert_eq!(
            e164_digits("02079460000", gb).as_deref(),
            Some("442079460000")
        );
        assert_eq!(
            e164_digits("2079460000", gb).as_deref(),
            Some("442079460000")
        );
        assert_eq!(
            e164_digits("+1-212-555-0100;npdi", us).as_deref(),
            Some("12125550100")
        );
        assert_eq!(
            e164_digits("12125550100", us).as_deref(),
            Some("12125550100")
        );
        assert_eq!(
            e164_digits("2125550100", us).as_deref(),
            Some("12125550100")
        );
        assert_eq!(
            e164_digits("02079460000", None).as_deref(),
            Some("02079460000")
        );
        assert_eq!(e164_digits("alice", gb), None);
        assert_eq!(e164_digits("", gb), None);
        assert_eq!(e164_digits("+1234567890123456", None), None);
    }

    #[test]
    fn numbers_are_written_in_each_format() {
        let gb = lookup_country("GB");
        let d = "442079460000";
        assert_eq!(
            format_number(d, NumberFormat::PlusE164, gb),
            "+442079460000"
        );
        assert_eq!(format_number(d, NumberFormat::E164, gb), "442079460000");
        assert_eq!(format_number(d, NumberFormat::National, gb), "02079460000");
        // Another country's number stays international.
        assert_eq!(
            format_number("12125550100", NumberFormat::National, gb),
            "+12125550100"
        );
        assert_eq!(
            format_number(d, NumberFormat::National, None),
            "+442079460000"
        );
    }

    #[test]
    fn longest_prefix_then_priority_then_weight() {
        let c = |prefix, priority, weight| Candidate {
            prefix,
            priority,
            weight,
        };
        let candidates = [c(0, 100, 1), c(2, 200, 1), c(4, 300, 1), c(2, 100, 1)];
        assert_eq!(order(&candidates, |_| 0), vec![2, 3, 1, 0]);
        // Equal prefix and priority: drawn by weight; with equal draws, the heavier first.
        let candidates = [c(0, 100, 1), c(0, 100, 3)];
        assert_eq!(order(&candidates, |_| 0), vec![1, 0]);
        let mut draws = [(1 << 53) - 1, 0].into_iter();
        assert_eq!(order(&candidates, |_| draws.next().unwrap()), vec![0, 1]);
        // Over many draws, about 3 in 4 start with the heavier trunk.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut random = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let first_heavy = (0..4000)
            .filter(|_| order(&candidates, &mut random)[0] == 1)
            .count();
        assert!((2800..3200).contains(&first_heavy), "{first_heavy}");
    }

    #[test]
    fn prefixes_match_longest_first() {
        let prefixes = vec!["44".to_owned(), "4420".to_owned(), "1".to_owned()];
        assert_eq!(matching_prefix(&prefixes, "442079460000"), Some(4));
        assert_eq!(matching_prefix(&prefixes, "441619460000"), Some(2));
        assert_eq!(matching_prefix(&prefixes, "33123456789"), None);
        assert_eq!(matching_prefix(&[], "33123456789"), Some(0));
    }
}

/// An outbound attempt's channel asked of the cluster (`[cluster]`): its INVITE waits
/// for the answer ([`super::Calls::channel_answer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChannelAsk {
    pub ticket: u64,
    pub trunk: String,
    /// Channels this host holds on the trunk, this attempt's included.
    pub count: u32,
    pub max: u32,
}

/// The attempts waiting for their cluster channel.
#[derive(Debug, Default)]
pub(super) struct Asks {
    queue: VecDeque<ChannelAsk>,
    /// Ticket → the call's Call-ID.
    waiting: std::collections::HashMap<u64, Vec<u8>>,
    next: u64,
}

impl super::Calls {
    /// The current attempt of outbound call `id` asks for its cluster channel; its
    /// INVITE goes out with the answer.
    pub(super) fn ask_channel(&mut self, id: super::Id, call_id: &[u8]) {
        let call = self.calls.get_mut(id);
        let (Some(out), Some(guard)) = (call.outbound.as_deref_mut(), call.guard.as_ref()) else {
            return;
        };
        let ticket = self.asks.next;
        self.asks.next += 1;
        out.awaiting = Some(ticket);
        self.asks.queue.push_back(ChannelAsk {
            ticket,
            trunk: out.current.trunk.clone(),
            count: guard.counters().channels(),
            max: out.current.max_channels,
        });
        self.asks.waiting.insert(ticket, call_id.to_vec());
    }

    /// A channel for the control path to ask of the cluster.
    #[must_use]
    pub(crate) fn poll_channel_ask(&mut self) -> Option<ChannelAsk> {
        self.asks.queue.pop_front()
    }

    /// The cluster's answer to an attempt's channel: its INVITE goes out, or the next
    /// trunk is tried (the refused one counted busy), or, the backend having cancelled
    /// meanwhile, the call ends with 487.
    pub(crate) fn channel_answer(&mut self, now: Instant, ticket: u64, granted: bool) {
        let Some(call_id) = self.asks.waiting.remove(&ticket) else {
            return;
        };
        let Some(id) = self.find(now, &call_id) else {
            return;
        };
        let call = self.calls.get_mut(id);
        let Some(out) = call.outbound.as_deref_mut() else {
            return;
        };
        if out.awaiting != Some(ticket) {
            return;
        }
        out.awaiting = None;
        if out.stopped {
            call.guard = None;
            self.final_from_us(now, id, 487, crate::sip::response::reason_phrase(487));
        } else if granted {
            self.send_invite(now, id, None);
        } else {
            if let Some(guard) = call.guard.take() {
                let counters = guard.counters();
                counters.rejected_busy.fetch_add(1, Ordering::Relaxed);
                counters.calls_out.fetch_sub(1, Ordering::Relaxed);
            }
            if self.take_next_attempt(now, id).is_some() {
                self.start_attempt(now, id);
            }
        }
        self.settle(now, id);
    }

    /// Outbound call `id` moves to its next trunk with a channel free (claimed here);
    /// its name, or `None` when there is none and the call was given up.
    pub(super) fn take_next_attempt(&mut self, now: Instant, id: super::Id) -> Option<String> {
        let call = self.calls.get_mut(id);
        let out = call.outbound.as_deref_mut()?;
        let Some((next, guard)) = claim_first(&mut out.remaining) else {
            self.give_up(now, id, 503, "No Trunk Available");
            return None;
        };
        let to = next.trunk.clone();
        call.callee = super::Peer {
            address: next.next_hop,
            transport: next.transport,
            reconnect: next.next_hop,
        };
        call.sent_by = next.sent_by.clone();
        call.callee_name = next.server_name.clone();
        call.trunk = next.trunk.clone();
        call.guard = Some(guard);
        call.callee_responded = false;
        out.current = next;
        out.challenged = false;
        out.cseq_offset = 0;
        Some(to)
    }

    /// Starts outbound call `id`'s current attempt: its INVITE, or with `[cluster]` first
    /// the question for its channel (no INVITE, no timer meanwhile).
    pub(super) fn start_attempt(&mut self, now: Instant, id: super::Id) {
        if !self.settings.cluster {
            self.send_invite(now, id, None);
            return;
        }
        let timers = self.settings.timers;
        let call = self.calls.get_mut(id);
        call.client =
            crate::sip::invite::InviteClient::idle(timers, call.callee.transport != Transport::Udp);
        let mut storage = [scan::EMPTY_HEADER; scan::MAX_HEADERS];
        let call_id = match scan::scan(&call.invite, &mut storage) {
            Ok(invite) => invite.call_id().map(<[u8]>::to_vec).unwrap_or_default(),
            Err(_) => return,
        };
        self.ask_channel(id, &call_id);
    }
}
