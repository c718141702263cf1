//! What the hot path reads: an immutable picture of the trunks' inbound policy, built from
//! a [`Config`] on the control path and swapped in atomically on reload.
//!
//! Lookups allocate nothing. The source table is a longest-prefix match over every trunk's
//! `allowed_inbound_ips` plus the resolved addresses of its own next hop; IPv4 sources and
//! IPv4-mapped IPv6 sources are the same key (`::ffff:a.b.c.d`).

use std::cell::OnceCell;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use ipnet::IpNet;

use crate::config::{Config, Country, Trunk, UnknownSource};
use crate::sip::SipUri;
use crate::sip::scan::uri_user;

/// Per-trunk counters the hot path updates; they outlive reloads (the control path hands the same
/// `Arc` to each new snapshot while the trunk id exists), so calls in progress keep
/// counting against their trunk whatever the reload changed.
#[derive(Debug)]
pub struct TrunkCounters {
    /// The trunk's id: a claimed channel's [`ChannelGuard`] names its trunk through it,
    /// with no reference of its own to count.
    id: Arc<str>,
    channels: AtomicU32,
    /// Calls the call path took on (forwarded to the backend), ever.
    pub calls: AtomicU64,
    /// Outbound calls sent to this trunk's carrier, ever (a call that failed over counts
    /// on each trunk it tried).
    pub calls_out: AtomicU64,
    /// Outbound calls that left this trunk for the next one (its failure, no answer,
    /// or credentials refused).
    pub failovers: AtomicU64,
    /// Outbound calls that could have gone to this trunk and were not sent to it
    /// (keepalive down, registration refused, `max_channels`, `max_cps_outbound`, next
    /// hop unknown).
    pub rejected_out: AtomicU64,
    /// INVITEs for this trunk's numbers from a source it does not allow.
    pub rejected_source: AtomicU64,
    /// Refused at `max_channels` or `max_cps`.
    pub rejected_busy: AtomicU64,
    /// The dialled number is not one of the trunk's.
    pub rejected_number: AtomicU64,
    /// Disabled, outbound-only, or malformed requests (400/483): refused by the hot path,
    /// or, for a malformed From or Contact, by the call path.
    pub rejected_other: AtomicU64,
    /// GCRA "theoretical arrival time" of `max_cps`, in ns since the snapshot epoch.
    cps_tat: AtomicU64,
}

impl TrunkCounters {
    /// The counters of trunk `id`, all zero.
    pub fn new(id: &str) -> Self {
        TrunkCounters {
            id: id.into(),
            channels: AtomicU32::new(0),
            calls: AtomicU64::new(0),
            calls_out: AtomicU64::new(0),
            failovers: AtomicU64::new(0),
            rejected_out: AtomicU64::new(0),
            rejected_source: AtomicU64::new(0),
            rejected_busy: AtomicU64::new(0),
            rejected_number: AtomicU64::new(0),
            rejected_other: AtomicU64::new(0),
            cps_tat: AtomicU64::new(0),
        }
    }

    /// The id of the trunk counted.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Channels in use now.
    pub fn channels(&self) -> u32 {
        self.channels.load(Ordering::Relaxed)
    }

    /// Claims one channel unless `max` (0: unlimited) are in use. Never over-admits: the
    /// check and the increment are one compare-and-swap.
    pub fn claim(self: &Arc<Self>, max: u32) -> Option<ChannelGuard> {
        self.channels
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (max == 0 || used < max)
                    .then(|| used.checked_add(1))
                    .flatten()
            })
            .ok()?;
        Some(ChannelGuard {
            counters: Arc::clone(self),
        })
    }

    /// Generic cell rate algorithm: at most `rate` calls per second with a burst of
    /// `rate`; one CAS, no lock, no timer.
    fn take_call_slot(&self, rate: u32, now_ns: u64) -> bool {
        if rate == 0 {
            return true;
        }
        let interval = 1_000_000_000 / u64::from(rate);
        let tolerance = interval * u64::from(rate.saturating_sub(1));
        self.cps_tat
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
                let start = tat.max(now_ns);
                (start - now_ns <= tolerance).then_some(start + interval)
            })
            .is_ok()
    }
}

/// One claimed channel. Dropping it releases the channel, exactly once, whatever ended
/// the call: BYE, CANCEL, failure, timeout, or the call table being torn down.
#[derive(Debug)]
pub struct ChannelGuard {
    counters: Arc<TrunkCounters>,
}

impl ChannelGuard {
    /// The id of the trunk whose channel this is.
    pub fn trunk(&self) -> &str {
        self.counters.id()
    }

    /// The counters of the trunk whose channel this is.
    pub fn counters(&self) -> &TrunkCounters {
        &self.counters
    }
}

impl Drop for ChannelGuard {
    fn drop(&mut self) {
        self.counters.channels.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The users a request may dial, in the order they are tried: its Request-URI's, then its
/// To's. The second is read from its URI only when the first does not decide: most
/// requests dial in the Request-URI.
#[derive(Debug)]
pub struct Users<'a> {
    first: Option<&'a [u8]>,
    second: OnceCell<Option<&'a [u8]>>,
    /// Where `second` is read from, when it is not known yet.
    second_uri: Option<&'a [u8]>,
}

impl<'a> Users<'a> {
    /// A request's Request-URI user and its To URI.
    pub fn of_request(request_uri_user: Option<&'a [u8]>, to_uri: Option<&'a [u8]>) -> Self {
        Users {
            first: request_uri_user,
            second: OnceCell::new(),
            second_uri: to_uri,
        }
    }

    fn second(&self) -> Option<&'a [u8]> {
        *self
            .second
            .get_or_init(|| self.second_uri.and_then(uri_user))
    }
}

/// Both users known.
impl<'a> From<[Option<&'a [u8]>; 2]> for Users<'a> {
    fn from([first, second]: [Option<&'a [u8]>; 2]) -> Self {
        Users {
            first,
            second: OnceCell::from(second),
            second_uri: None,
        }
    }
}

/// The inbound policy of one trunk.
#[derive(Debug)]
pub struct TrunkPolicy {
    pub enabled: bool,
    pub inbound: bool,
    pub max_channels: u32,
    pub max_cps: u32,
    /// The trunk's backend stopped answering: OPTIONS say 503 so carriers fail over.
    pub backend_down: bool,
    /// `inbound_auth = "credential"`: INVITEs must prove the trunk's username and
    /// password (digest, 407), from any address, for the trunk's numbers.
    pub credential: Option<InboundCredential>,
    /// E.164 digits as [`number_key`]s, sorted; empty means any number.
    numbers: Box<[u128]>,
    country: Option<&'static Country>,
    pub counters: Arc<TrunkCounters>,
}

impl TrunkPolicy {
    /// The trunk's id.
    pub fn id(&self) -> &str {
        self.counters.id()
    }

    /// Whether `user` (a Request-URI or To user part) names one of the trunk's numbers:
    /// `+E.164`, E.164 without `+`, or national with the country's prefix, visual
    /// separators and user parameters ignored. A trunk without numbers takes any.
    pub fn owns(&self, user: Option<&[u8]>) -> bool {
        if self.numbers.is_empty() {
            return true;
        }
        // The number as dialled, read straight into its key: most users are one of the
        // trunk's numbers as written, or `+E.164` and not one.
        let Some((key, plus)) = user.and_then(dialled_key) else {
            return false;
        };
        if self.numbers.binary_search(&key).is_ok() {
            return true;
        }
        if plus
            || self
                .country
                .and_then(|country| country.calling_code)
                .is_none()
        {
            return false;
        }
        let Some(number) = user.and_then(Dialled::parse) else {
            return false;
        };
        let find = |digits: &[u8]| {
            number_key(digits).is_some_and(|key| self.numbers.binary_search(&key).is_ok())
        };
        // National: the calling code in front, after the national prefix (`0`) if any.
        let Some(country) = self.country else {
            return false;
        };
        let Some(code) = country.calling_code else {
            return false;
        };
        let mut national = number.digits();
        if let Some(prefix) = country.national_prefix
            && national.len() > prefix.len()
            && national.starts_with(prefix.as_bytes())
        {
            let international = number.with_code(code, national);
            if international.as_ref().is_some_and(|d| find(d.digits())) {
                return true;
            }
            national = &national[prefix.len()..];
        }
        number
            .with_code(code, national)
            .is_some_and(|d| find(d.digits()))
    }

    pub fn at_capacity(&self) -> bool {
        self.max_channels != 0 && self.counters.channels() >= self.max_channels
    }

    /// One call of `max_cps` (always one when there is no limit); `now_ns` is read only
    /// when there is one.
    pub(crate) fn take_call_slot(&self, now_ns: impl FnOnce() -> u64) -> bool {
        self.max_cps == 0 || self.counters.take_call_slot(self.max_cps, now_ns())
    }
}

/// What a credential trunk's INVITEs are checked against.
#[derive(Debug)]
pub struct InboundCredential {
    pub username: Box<str>,
    pub password: crate::config::Secret,
    /// The trunk's `auth_realm`, else "trunkd".
    pub realm: Box<str>,
}

/// A string of up to 32 decimal digits as one integer, its length in the top bits so
/// that leading zeros count: two digit strings are equal exactly when their keys are.
/// Compared without `memcmp`, which the hot path would call once per probe.
fn number_key(digits: &[u8]) -> Option<u128> {
    if digits.len() > 32 {
        return None;
    }
    let mut value: u128 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u128::from(digit - b'0');
    }
    // 10^32 < 2^107: the value never reaches the length's bits.
    Some((digits.len() as u128) << 112 | value)
}

/// [`Dialled::parse`] and [`number_key`] of its digits in one pass, without the buffer:
/// the key, and whether the number had a `+`.
///
/// The first 19 digits are added up in a `u64` (10^19 - 1 < 2^64), the rest, rarely any
/// (E.164 numbers have at most 15), in a `u128`: the same key, without a 128-bit multiply
/// per digit.
fn dialled_key(user: &[u8]) -> Option<(u128, bool)> {
    const NARROW_DIGITS: u128 = 19;
    let (plus, rest) = match user.split_first() {
        Some((b'+', rest)) => (true, rest),
        _ => (false, user),
    };
    if let Some(key) = plain_number_key(rest) {
        return Some((key, plus));
    }
    let (mut narrow, mut len) = (0u64, 0u128);
    let mut read = 0;
    loop {
        // Eight digits in a row, the body of nearly every number, in one go; never up to
        // the 19th digit, which the byte loop below must see to stop at.
        if len + 8 < NARROW_DIGITS
            && let Some(eight) = rest
                .get(read..)
                .and_then(|rest| rest.first_chunk::<8>())
                .and_then(|chunk| eight_digits(u64::from_le_bytes(*chunk)))
        {
            narrow = narrow * 100_000_000 + eight;
            len += 8;
            read += 8;
            continue;
        }
        let Some(&byte) = rest.get(read) else {
            break;
        };
        read += 1;
        match byte {
            b'0'..=b'9' => {
                narrow = narrow * 10 + u64::from(byte - b'0');
                len += 1;
                if len == NARROW_DIGITS {
                    break;
                }
            }
            b'-' | b'.' | b'(' | b')' => {}
            // User parameters end the number.
            b';' => return (len > 0).then_some((len << 112 | u128::from(narrow), plus)),
            _ => return None,
        }
    }
    let mut value = u128::from(narrow);
    for &byte in rest.get(read..).unwrap_or_default() {
        match byte {
            b'0'..=b'9' if len < 32 => {
                value = value * 10 + u128::from(byte - b'0');
                len += 1;
            }
            b'-' | b'.' | b'(' | b')' => {}
            // User parameters end the number.
            b';' => break,
            _ => return None,
        }
    }
    // As number_key: the length in the top bits (10^32 < 2^107).
    (len > 0).then_some((len << 112 | value, plus))
}

/// [`number_key`] of 8 to 16 digits and nothing else (no separator, no parameter): a
/// number as nearly every carrier writes it, read as two overlapping words whose values
/// are worked out side by side. `None` for anything else, which [`dialled_key`] reads
/// byte by byte.
#[inline(always)]
fn plain_number_key(digits: &[u8]) -> Option<u128> {
    /// 10^0 to 10^8: what the first word's value is scaled by, by the length.
    const SCALE: [u64; 9] = [
        1,
        10,
        100,
        1_000,
        10_000,
        100_000,
        1_000_000,
        10_000_000,
        100_000_000,
    ];
    let len = digits.len();
    let scale = *SCALE.get(len.checked_sub(8)?)?;
    let first = u64::from_le_bytes(*digits.first_chunk::<8>()?);
    let last = u64::from_le_bytes(*digits.last_chunk::<8>()?);
    // The last word's low bytes that the first word holds too (16 - len of them): read
    // as `0`s, so that the last word is worth the digits past the first 8 alone.
    let overlap = ((1u128 << (8 * (16 - len))) - 1) as u64;
    let last = (last & !overlap) | (0x3030_3030_3030_3030 & overlap);
    let (high, low) = (eight_digits(first)?, eight_digits(last)?);
    // At most 16 digits: below 10^16 < 2^64, and never into the length's bits.
    Some((len as u128) << 112 | u128::from(high * scale + low))
}

/// The value of 8 ASCII digits read as a little-endian word (the first digit in the low
/// byte), `None` unless all 8 are digits.
#[inline(always)]
fn eight_digits(word: u64) -> Option<u64> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    // Every high nibble is 3, and adding 6 leaves it 3 (the low nibble is at most 9).
    let digits = (word & (0xF0 * ONES)) | ((word.wrapping_add(6 * ONES) & (0xF0 * ONES)) >> 4);
    if digits != 0x33 * ONES {
        return None;
    }
    // Pairs, then fours, then all eight, each step one multiply-add of neighbours.
    let word = word - 0x30 * ONES;
    let word = (word * 10 + (word >> 8)) & 0x00FF_00FF_00FF_00FF;
    let word = (word * 100 + (word >> 16)) & 0x0000_FFFF_0000_FFFF;
    Some((word * 10_000 + (word >> 32)) & 0xFFFF_FFFF)
}

/// The all-`u128` reading [`dialled_key`] replaced, as the tests' reference.
#[cfg(test)]
fn dialled_key_wide(user: &[u8]) -> Option<(u128, bool)> {
    let (plus, rest) = match user.split_first() {
        Some((b'+', rest)) => (true, rest),
        _ => (false, user),
    };
    let (mut value, mut len) = (0u128, 0u128);
    for &byte in rest {
        match byte {
            b'0'..=b'9' if len < 32 => {
                value = value * 10 + u128::from(byte - b'0');
                len += 1;
            }
            b'-' | b'.' | b'(' | b')' => {}
            b';' => break,
            _ => return None,
        }
    }
    (len > 0).then_some((len << 112 | value, plus))
}

/// The digits of a dialled number, on the stack.
struct Dialled {
    buffer: [u8; 32],
    len: usize,
}

impl Dialled {
    /// `+1 (555) 010-0001;npdi` → digits `15550100001`. `None` for anything
    /// that is not a telephone number.
    fn parse(user: &[u8]) -> Option<Self> {
        let user = user.split(|&b| b == b';').next().unwrap_or(user);
        let rest = user.strip_prefix(b"+").unwrap_or(user);
        let mut dialled = Dialled {
            buffer: [0; 32],
            len: 0,
        };
        for &byte in rest {
            match byte {
                b'0'..=b'9' if dialled.len < dialled.buffer.len() => {
                    dialled.buffer[dialled.len] = byte;
                    dialled.len += 1;
                }
                // RFC 3966 visual separators.
                b'-' | b'.' | b'(' | b')' => {}
                _ => return None,
            }
        }
        (dialled.len > 0).then_some(dialled)
    }

    fn digits(&self) -> &[u8] {
        &self.buffer[..self.len]
    }

    fn with_code(&self, code: u16, national: &[u8]) -> Option<Dialled> {
        let mut out = Dialled {
            buffer: [0; 32],
            len: 0,
        };
        let mut code_digits = [0u8; 5];
        let mut n = code;
        let mut count = 0;
        while n > 0 && count < code_digits.len() {
            code_digits[count] = b'0' + (n % 10) as u8;
            n /= 10;
            count += 1;
        }
        if count + national.len() > out.buffer.len() {
            return None;
        }
        for i in 0..count {
            out.buffer[i] = code_digits[count - 1 - i];
        }
        out.buffer[count..count + national.len()].copy_from_slice(national);
        out.len = count + national.len();
        Some(out)
    }
}

/// A longest-prefix-match table from source address to trunk indices.
#[derive(Debug, Default)]
struct PrefixTable {
    /// One level per prefix length present, longest first.
    levels: Vec<Level>,
    candidates: Vec<u32>,
    /// One bit per IPv4 /16 (by its first two octets): set when some prefix may cover
    /// an address in it. A flood from addresses no trunk allows is mostly from /16s
    /// without a bit, and those skip every level's binary search. 8 KiB.
    v4_blocks: Box<[u64]>,
}

/// IPv4 /16 blocks, and the `u64` words of their bitmap.
const V4_BLOCKS: usize = 1 << 16;
const V4_BLOCK_WORDS: usize = V4_BLOCKS / 64;
/// The top 96 bits of every IPv4-mapped key (`::ffff:0:0/96`).
const MAPPED: u128 = 0xffff << 32;

/// The prefixes of one length, in an open-addressing hash table: a lookup masks the key
/// once and reads, nearly always, one slot. The table is at most half full, and only the
/// config's prefixes are in it, so no source address can make a probe long.
#[derive(Debug)]
struct Level {
    /// The key bits of the length (the rest cleared).
    mask: u128,
    /// A power of two long; a slot whose `end` is 0 is empty.
    slots: Box<[Slot]>,
    /// What a hash is shifted right by to be a slot index: 64 - log2(slots).
    shift: u32,
}

/// One prefix of a [`Level`], and its range in [`PrefixTable::candidates`] (never empty).
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    prefix: u128,
    start: u32,
    end: u32,
}

impl Level {
    fn new(length: u8, prefixes: &[(u128, u32, u32)]) -> Self {
        let bits = (2 * prefixes.len())
            .max(2)
            .next_power_of_two()
            .trailing_zeros();
        let mut level = Level {
            mask: mask(u128::MAX, length),
            slots: vec![Slot::default(); 1 << bits].into(),
            shift: 64 - bits,
        };
        for &(prefix, start, end) in prefixes {
            let mut index = level.home(prefix);
            while level.slots[index].end != 0 {
                index = (index + 1) % level.slots.len();
            }
            level.slots[index] = Slot { prefix, start, end };
        }
        level
    }

    /// Where the probe for `prefix` starts: Fibonacci hashing of its two halves folded.
    fn home(&self, prefix: u128) -> usize {
        let folded = (prefix as u64) ^ ((prefix >> 64) as u64);
        (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// The candidate range of the prefix of this length that covers `key`.
    #[inline]
    fn find(&self, key: u128) -> Option<(u32, u32)> {
        let prefix = key & self.mask;
        let mut index = self.home(prefix);
        loop {
            let slot = self.slots.get(index)?;
            if slot.end == 0 {
                return None;
            }
            if slot.prefix == prefix {
                return Some((slot.start, slot.end));
            }
            index = (index + 1) & (self.slots.len() - 1);
        }
    }
}

/// A [`Level`] being built: its length, and its prefixes with their candidate ranges.
type LevelBuilder = (u8, Vec<(u128, u32, u32)>);

fn key(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn mask(key: u128, length: u8) -> u128 {
    match length {
        0 => 0,
        length => key & (u128::MAX << (128 - u32::from(length))),
    }
}

impl PrefixTable {
    fn build(mut routes: Vec<(IpNet, u32)>) -> Self {
        let mut keyed: Vec<(u8, u128, u32)> = routes
            .drain(..)
            .map(|(net, trunk)| {
                let length = match net {
                    IpNet::V4(v4) => v4.prefix_len() + 96,
                    IpNet::V6(v6) => v6.prefix_len(),
                };
                (length, mask(key(net.addr()), length), trunk)
            })
            .collect();
        // Longest first, then by prefix, then by trunk index.
        keyed.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        keyed.dedup();
        let mut table = PrefixTable {
            v4_blocks: vec![0; V4_BLOCK_WORDS].into(),
            ..PrefixTable::default()
        };
        let mut level: Option<LevelBuilder> = None;
        for (length, prefix, trunk) in keyed {
            table.cover_v4_blocks(length, prefix);
            if level
                .as_ref()
                .is_some_and(|(current, _)| *current != length)
            {
                table.push_level(level.take());
            }
            let (_, prefixes) = level.get_or_insert_with(|| (length, Vec::new()));
            let index = table.candidates.len() as u32;
            match prefixes.last_mut() {
                Some((last, _, end)) if *last == prefix => *end = index + 1,
                _ => prefixes.push((prefix, index, index + 1)),
            }
            table.candidates.push(trunk);
        }
        table.push_level(level);
        table
    }

    fn push_level(&mut self, level: Option<LevelBuilder>) {
        if let Some((length, prefixes)) = level {
            self.levels.push(Level::new(length, &prefixes));
        }
    }

    /// Sets the bit of every IPv4 /16 that the prefix `prefix`/`length` (of a key)
    /// reaches into.
    fn cover_v4_blocks(&mut self, length: u8, prefix: u128) {
        let (first, count) = if length <= 96 {
            // All of IPv4, or none of it.
            if mask(MAPPED, length) != prefix {
                return;
            }
            (0, V4_BLOCKS)
        } else if prefix >> 32 != 0xffff {
            // An IPv6 prefix outside ::ffff:0:0/96.
            return;
        } else {
            // An IPv4 prefix: its first /16, and how many it spans (1 from /16 on).
            let first = ((prefix >> 16) & 0xffff) as usize;
            (first, 1 << 112u8.saturating_sub(length))
        };
        for block in first..first + count {
            if let Some(word) = self.v4_blocks.get_mut(block / 64) {
                *word |= 1 << (block % 64);
            }
        }
    }

    /// Whether some prefix may cover `key`: false only for an IPv4 key in a /16 that no
    /// prefix reaches into. (A table without the bitmap may cover anything.)
    fn may_cover(&self, key: u128) -> bool {
        if key >> 32 != 0xffff {
            return true;
        }
        let block = ((key >> 16) & 0xffff) as usize;
        self.v4_blocks
            .get(block / 64)
            .is_none_or(|word| word & (1 << (block % 64)) != 0)
    }

    /// The trunks of each matching prefix, longest prefix first.
    fn matches(&self, address: IpAddr) -> impl Iterator<Item = &[u32]> {
        let key = key(canonical(address));
        let levels = match self.may_cover(key) {
            true => &self.levels[..],
            false => &[],
        };
        levels.iter().filter_map(move |level| {
            let (start, end) = level.find(key)?;
            self.candidates.get(start as usize..end as usize)
        })
    }
}

/// IPv4-mapped IPv6 (`::ffff:192.0.2.1`, from a dual-stack socket) is its IPv4 address.
pub fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// What the hot path reads; see the module documentation.
#[derive(Debug)]
pub struct Snapshot {
    pub trunks: Box<[TrunkPolicy]>,
    sources: PrefixTable,
    /// Every trunk's numbers (E.164 digits, as [`number_key`]s) → trunk index, sorted:
    /// which trunk an INVITE from an unknown source was meant for.
    numbers: Box<[(u128, u32)]>,
    /// Where admitted calls go; in-dialog requests from here are the backend's.
    backends: Box<[SocketAddr]>,
    /// `[backend] allowed_ips`: further sources that are the backend (PBX clusters).
    backend_networks: Box<[IpNet]>,
    pub on_unknown_source: UnknownSource,
    /// Time base of the `max_cps` buckets.
    epoch: Instant,
}

/// What the snapshot needs from the control path besides the config.
pub struct Inputs<'a> {
    /// The counters of a trunk id (the same `Arc` across generations).
    pub counters: &'a dyn Fn(&str) -> Arc<TrunkCounters>,
    /// The resolved addresses of a trunk's next hop, as far as they are known.
    pub next_hops: &'a dyn Fn(&Trunk) -> Vec<IpAddr>,
    /// Resolved addresses of the backend URIs.
    pub backends: Vec<SocketAddr>,
    /// Backends that recently left an INVITE unanswered.
    pub backends_down: &'a [SocketAddr],
    /// A backend URI's address: IP literals as written, names as resolved.
    pub backend_address: &'a dyn Fn(&SipUri) -> Option<SocketAddr>,
    pub epoch: Instant,
}

impl Snapshot {
    pub fn build(config: &Config, inputs: &Inputs<'_>) -> Self {
        let mut routes = Vec::new();
        let mut numbers = Vec::new();
        let mut trunks = Vec::with_capacity(config.trunks.len());
        for (index, trunk) in config.trunks.values().enumerate() {
            let index = index as u32;
            let mut networks = trunk.allowed_inbound_ips.clone();
            if trunk.allow_next_hop {
                networks.extend((inputs.next_hops)(trunk).into_iter().map(IpNet::from));
            }
            networks.sort_unstable();
            networks.dedup();
            routes.extend(networks.iter().map(|net| (*net, index)));
            let mut digits: Vec<u128> = trunk
                .numbers
                .iter()
                .filter_map(|n| number_key(n.digits().as_bytes()))
                .collect();
            digits.sort_unstable();
            numbers.extend(digits.iter().map(|&key| (key, index)));
            trunks.push(TrunkPolicy {
                enabled: trunk.enabled,
                inbound: trunk.direction.accepts_inbound(),
                max_channels: trunk.max_channels,
                max_cps: trunk.max_cps,
                credential: match (trunk.inbound_auth, &trunk.username, &trunk.password) {
                    (crate::config::InboundAuth::Credential, Some(username), Some(password)) => {
                        Some(InboundCredential {
                            username: username.as_str().into(),
                            password: password.clone(),
                            realm: trunk.auth_realm.as_deref().unwrap_or("trunkd").into(),
                        })
                    }
                    _ => None,
                },
                // Every backend of its pool down (none known counts as up: the call path
                // answers 503 itself then).
                backend_down: {
                    let mut addresses = backend_uris(config, trunk)
                        .filter_map(|uri| (inputs.backend_address)(uri))
                        .peekable();
                    addresses.peek().is_some()
                        && addresses.all(|backend| inputs.backends_down.contains(&backend))
                },
                numbers: digits.into(),
                country: trunk.country,
                counters: (inputs.counters)(&trunk.id),
            });
        }
        numbers.sort_unstable();
        let mut backends = inputs.backends.clone();
        backends.sort_unstable();
        backends.dedup();
        Snapshot {
            trunks: trunks.into(),
            sources: PrefixTable::build(routes),
            numbers: numbers.into(),
            backends: backends.into(),
            backend_networks: config
                .backend
                .as_ref()
                .map(|backend| backend.allowed_ips.clone().into())
                .unwrap_or_default(),
            on_unknown_source: config.daemon.on_unknown_source,
            epoch: inputs.epoch,
        }
    }

    /// The trunk a request from `source` belongs to. When several trunks allow the
    /// source (one carrier, several accounts), the one owning a dialled number wins, then
    /// one taking any number, then the longest prefix's first trunk (whose numbers will
    /// not match: a 404 that names the right carrier).
    pub fn trunk_for(&self, source: IpAddr, users: &Users<'_>) -> Option<u32> {
        self.trunk_and_ownership(source, users)
            .map(|(index, _)| index)
    }

    /// [`Snapshot::trunk_for`], and whether the trunk owns a dialled number (what
    /// [`TrunkPolicy::owns`] says of either user), found on the way.
    pub fn trunk_and_ownership(&self, source: IpAddr, users: &Users<'_>) -> Option<(u32, bool)> {
        let mut first = None;
        let mut any_number = None;
        for candidates in self.sources.matches(source) {
            for &index in candidates {
                first.get_or_insert(index);
                let trunk = &self.trunks[index as usize];
                if trunk.numbers.is_empty() {
                    any_number.get_or_insert(index);
                } else if trunk.owns(users.first) || trunk.owns(users.second()) {
                    return Some((index, true));
                }
            }
        }
        // A trunk without numbers takes any; the first one's numbers matched neither user.
        any_number
            .map(|index| (index, true))
            .or(first.map(|index| (index, false)))
    }

    /// The trunk owning a dialled number (exact E.164 digits), whatever the source.
    pub fn owner(&self, users: &Users<'_>) -> Option<u32> {
        let (first, second) = (users.first, users.second());
        // The Request-URI and To users are often the same: look it up once.
        let second = second.filter(|&second| Some(second) != first);
        [first, second].iter().flatten().find_map(|user| {
            let key = number_key(Dialled::parse(user)?.digits())?;
            let index = self
                .numbers
                .binary_search_by(|(number, _)| number.cmp(&key))
                .ok()?;
            Some(self.numbers[index].1)
        })
    }

    pub fn is_backend(&self, source: SocketAddr) -> bool {
        let source = SocketAddr::new(canonical(source.ip()), source.port());
        self.backends.binary_search(&source).is_ok()
            || self.backends.iter().any(|b| b.ip() == source.ip())
            || self
                .backend_networks
                .iter()
                .any(|network| network.contains(&source.ip()))
    }

    /// Nanoseconds since the snapshot's time base.
    pub fn elapsed_ns(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_nanos() as u64
    }
}

/// The next-hop addresses known without DNS: an IP-literal domain or outbound proxy.
pub fn literal_next_hop(trunk: &Trunk) -> Option<IpAddr> {
    match &trunk.outbound_proxy {
        Some(proxy) => proxy.host.ip(),
        None => trunk.domain.ip(),
    }
}

/// Where a trunk's calls go: its `route_to`, else every backend of `[backend]`.
pub fn backend_uris<'c>(
    config: &'c Config,
    trunk: &'c Trunk,
) -> impl Iterator<Item = &'c SipUri> + use<'c> {
    let pool = match trunk.route_to.is_empty() {
        true => config
            .backend
            .as_ref()
            .map_or(&[][..], |backend| &backend.uris[..]),
        false => &trunk.route_to[..],
    };
    pool.iter().map(|entry| &entry.uri)
}

/// A backend URI's address when it is an IP literal.
pub fn literal_address(uri: &SipUri) -> Option<SocketAddr> {
    Some(SocketAddr::new(
        uri.host.ip()?,
        crate::config::uri_port(uri),
    ))
}

/// Backend addresses known without DNS: every IP-literal `route_to` and `[backend]` URI.
pub fn literal_backends(config: &Config) -> Vec<SocketAddr> {
    let uris = config
        .backend
        .iter()
        .flat_map(|backend| backend.uris.iter().map(|entry| &entry.uri))
        .chain(
            config
                .trunks
                .values()
                .flat_map(|t| t.route_to.iter().map(|e| &e.uri)),
        );
    uris.filter_map(literal_address).collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{LoadOptions, load_str};

    #[allow(clippy::disallowed_methods)]
    fn epoch() -> Instant {
        Instant::now()
    }

    fn snapshot(text: &str) -> Snapshot {
        let config = load_str(Path::new("t.toml"), text, &LoadOptions::default())
            .unwrap_or_else(|errors| panic!("{errors}"));
        let inputs = Inputs {
            counters: &|id| Arc::new(TrunkCounters::new(id)),
            next_hops: &|trunk| literal_next_hop(trunk).into_iter().collect(),
            backends: literal_backends(&config),
            backends_down: &[],
            backend_address: &literal_address,
            epoch: epoch(),
        };
        Snapshot::build(&config, &inputs)
    }

    /// What `matches` must return, read off the routes one by one: for each prefix length
    /// (longest first) with a route covering `address`, the trunks of those routes, in
    /// order, once each.
    fn matches_naive(routes: &[(IpNet, u32)], address: IpAddr) -> Vec<Vec<u32>> {
        let key = key(canonical(address));
        let mut found: std::collections::BTreeMap<std::cmp::Reverse<u8>, Vec<u32>> =
            Default::default();
        for &(net, trunk) in routes {
            let length = match net {
                IpNet::V4(v4) => v4.prefix_len() + 96,
                IpNet::V6(v6) => v6.prefix_len(),
            };
            if mask(key, length) == mask(super::key(net.addr()), length) {
                found
                    .entry(std::cmp::Reverse(length))
                    .or_default()
                    .push(trunk);
            }
        }
        found
            .into_values()
            .map(|mut trunks| {
                trunks.sort_unstable();
                trunks.dedup();
                trunks
            })
            .collect()
    }

    /// A prefix of IPv4 (any length) or IPv6 (lengths and places that do and do not
    /// reach into `::ffff:0:0/96`) from a seed.
    fn net(kind: u8, bits: u128, length: u8) -> IpNet {
        let v4 = || std::net::Ipv4Addr::from(bits as u32);
        let v6 = |address: u128| std::net::Ipv6Addr::from(address);
        let net = match kind % 5 {
            0 | 1 => IpNet::V4(ipnet::Ipv4Net::new(v4(), length % 33).unwrap()),
            // Around the mapped range: ::/0..::/128 over ::ffff:a.b.c.d.
            2 => IpNet::V6(
                ipnet::Ipv6Net::new(v6(MAPPED | (bits & 0xffff_ffff)), length % 129).unwrap(),
            ),
            3 => IpNet::V6(ipnet::Ipv6Net::new(v6(bits), length % 129).unwrap()),
            _ => IpNet::V6(ipnet::Ipv6Net::new(v6(bits & 0xffff_ffff_ffff), length % 129).unwrap()),
        };
        net.trunc()
    }

    proptest::proptest! {
        /// Every covering prefix is found, longest first, through the /16 bitmap and the
        /// levels' hash tables: random routes (several on one prefix too) against the
        /// routes read one by one.
        #[test]
        fn matches_are_the_covering_prefixes_longest_first(
            routes in proptest::collection::vec(
                proptest::prelude::any::<(u8, u128, u8)>(), 0..12),
            probes in proptest::collection::vec(proptest::prelude::any::<(bool, u128)>(), 0..64),
        ) {
            let nets: Vec<IpNet> = routes
                .iter()
                .map(|&(kind, bits, length)| net(kind, bits, length))
                .collect();
            // Every third route also for the trunk before it: prefixes with several trunks.
            let trunks: Vec<(IpNet, u32)> = nets
                .iter()
                .enumerate()
                .flat_map(|(index, &net)| {
                    let index = index as u32;
                    let shared = (index % 3 == 2).then(|| (net, index - 1));
                    std::iter::once((net, index)).chain(shared)
                })
                .collect();
            let table = PrefixTable::build(trunks.clone());
            // Each route's own first address and one just outside its /16, and free probes.
            let mut addresses: Vec<IpAddr> = nets.iter().map(|net| net.addr()).collect();
            addresses.extend(nets.iter().filter_map(|net| match net {
                IpNet::V4(v4) => Some(IpAddr::V4((u32::from(v4.addr()) ^ 0x1_0000).into())),
                IpNet::V6(_) => None,
            }));
            addresses.extend(probes.iter().map(|&(v4, bits)| match v4 {
                true => IpAddr::V4((bits as u32).into()),
                false => IpAddr::V6(bits.into()),
            }));
            for address in addresses {
                let found: Vec<Vec<u32>> = table.matches(address).map(<[u32]>::to_vec).collect();
                proptest::prop_assert_eq!(found, matches_naive(&trunks, address), "{}", address);
            }
        }
    }

    /// `dialled_key` is `Dialled::parse` then `number_key`, with the `+` told.
    #[test]
    fn dialled_key_reads_what_dialled_parse_reads() {
        crate::testing::every_string(b"+0159-.();x@ ", 5, |user| {
            let reference = Dialled::parse(user).map(|dialled| {
                let key = number_key(dialled.digits()).expect("at most 32 digits");
                let number = user.split(|&b| b == b';').next().unwrap_or_default();
                (key, number.first() == Some(&b'+'))
            });
            assert_eq!(dialled_key(user), reference, "{user:?}");
        });
        let long = |digits: usize| [b"+".as_slice(), &b"9".repeat(digits)].concat();
        assert!(dialled_key(&long(32)).is_some() && Dialled::parse(&long(32)).is_some());
        assert!(dialled_key(&long(33)).is_none() && Dialled::parse(&long(33)).is_none());
    }

    /// `dialled_key` (u64 first, u128 past 19 digits) reads what the all-`u128` reading
    /// it replaced did, over every one-byte change of seeds around the 19- and 32-digit
    /// edges.
    #[test]
    fn dialled_key_reads_what_the_wide_reading_read() {
        let mut seeds: Vec<Vec<u8>> = vec![
            b"+4930901820".to_vec(),
            b"+1 (555) 010-0001;npdi".to_vec(),
            b"0049.30.901820;x=1".to_vec(),
        ];
        for digits in [18, 19, 20, 21, 31, 32, 33] {
            let number: Vec<u8> = (0..digits).map(|i| b"9876543210"[i % 10]).collect();
            seeds.push([b"+".as_slice(), &number].concat());
            seeds.push([&number[..], b";p"].concat());
            let mut dashed = number.clone();
            dashed.insert(digits / 2, b'-');
            seeds.push(dashed);
        }
        let alphabet = b"+0159-.();x@ ";
        for seed in &seeds {
            for index in 0..=seed.len() {
                let mut cut = seed.clone();
                cut.truncate(index);
                assert_eq!(dialled_key(&cut), dialled_key_wide(&cut), "{cut:?}");
                for &byte in alphabet {
                    let mut inserted = seed.clone();
                    inserted.insert(index, byte);
                    assert_eq!(dialled_key(&inserted), dialled_key_wide(&inserted));
                    if index < seed.len() {
                        let mut replaced = seed.clone();
                        replaced[index] = byte;
                        assert_eq!(dialled_key(&replaced), dialled_key_wide(&replaced));
                    }
                }
            }
        }
    }

    /// The two-word reading of 8 to 16 digits is the byte reading's: digit strings of
    /// every length around it, with and without `+`, and every byte value at every
    /// position of each.
    #[test]
    fn plain_numbers_read_as_the_byte_reading_does() {
        for len in 0..=20 {
            let number: Vec<u8> = (0..len).map(|i| b"9876543210"[(i * 7) % 10]).collect();
            for plus in [false, true] {
                let seed = [if plus { b"+".as_slice() } else { b"" }, &number].concat();
                assert_eq!(dialled_key(&seed), dialled_key_wide(&seed), "{seed:?}");
                for position in 0..seed.len() {
                    for byte in 0..=255u8 {
                        let mut changed = seed.clone();
                        changed[position] = byte;
                        assert_eq!(
                            dialled_key(&changed),
                            dialled_key_wide(&changed),
                            "{changed:?}"
                        );
                    }
                }
            }
        }
    }

    /// `eight_digits` is the digits' value exactly when all 8 bytes are digits: every
    /// byte value at every position of a few digit strings.
    #[test]
    fn eight_digits_reads_eight_ascii_digits_only() {
        for seed in [*b"49309018", *b"00000000", *b"99999999", *b"12345678"] {
            for position in 0..8 {
                for byte in 0..=255u8 {
                    let mut chunk = seed;
                    chunk[position] = byte;
                    let expected = chunk.iter().try_fold(0u64, |value, &digit| {
                        digit
                            .is_ascii_digit()
                            .then(|| value * 10 + u64::from(digit - b'0'))
                    });
                    assert_eq!(
                        eight_digits(u64::from_le_bytes(chunk)),
                        expected,
                        "{chunk:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_v4_bitmap_skips_blocks_no_prefix_reaches() {
        let v4 = |text: &str| IpNet::V4(text.parse().unwrap());
        let table = PrefixTable::build(vec![(v4("192.0.2.0/24"), 0), (v4("10.0.0.0/15"), 1)]);
        let covered = |text: &str| table.may_cover(key(text.parse().unwrap()));
        assert!(covered("192.0.2.7") && covered("192.0.200.1"));
        assert!(covered("10.0.0.1") && covered("10.1.255.255"));
        assert!(!covered("10.2.0.0") && !covered("192.1.0.1") && !covered("198.18.7.66"));
        // An IPv6 source is never skipped; IPv4-mapped is IPv4.
        assert!(covered("2001:db8::1"));
        assert!(!covered("::ffff:198.18.7.66"));
        let everything = PrefixTable::build(vec![(IpNet::V6("::/0".parse().unwrap()), 0)]);
        assert!(everything.may_cover(key("198.18.7.66".parse().unwrap())));
        let mapped = PrefixTable::build(vec![(IpNet::V6("::ffff:0:0/96".parse().unwrap()), 0)]);
        assert!(mapped.may_cover(key("198.18.7.66".parse().unwrap())));
        let other = PrefixTable::build(vec![(IpNet::V6("2001:db8::/32".parse().unwrap()), 0)]);
        assert!(!other.may_cover(key("198.18.7.66".parse().unwrap())));
    }

    const CONFIG: &str = r#"
[backend]
uri = "sip:10.9.9.9:5080"

[trunks.wide]
domain = "carrier.example"
allowed_inbound_ips = ["192.0.2.0/24"]
numbers = ["+15550100001"]

[trunks.narrow]
domain = "carrier.example"
allowed_inbound_ips = ["192.0.2.10"]
numbers = ["+15550100002"]

[trunks.shared-any]
domain = "carrier.example"
allowed_inbound_ips = ["198.51.100.0/24"]

[trunks.shared-numbers]
domain = "carrier.example"
allowed_inbound_ips = ["198.51.100.0/24"]
numbers = ["+442079460000"]
country = "GB"

[trunks.v6]
domain = "2001:db8::5"
allowed_inbound_ips = ["2001:db8:1::/48"]

[trunks.by-next-hop]
domain = "203.0.113.7"
direction = "outbound"
"#;

    fn id(snapshot: &Snapshot, index: Option<u32>) -> Option<&str> {
        index.map(|i| snapshot.trunks[i as usize].id())
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn longest_prefix_then_number_owner() {
        let s = snapshot(CONFIG);
        let none = [None, None];
        assert_eq!(
            id(&s, s.trunk_for(ip("192.0.2.11"), &none.into())),
            Some("wide")
        );
        assert_eq!(
            id(&s, s.trunk_for(ip("192.0.2.10"), &none.into())),
            Some("narrow")
        );
        // The narrow source dials the wide trunk's number: the owner wins.
        let wide_number = [Some(&b"+15550100001"[..]), None];
        assert_eq!(
            id(&s, s.trunk_for(ip("192.0.2.10"), &wide_number.into())),
            Some("wide")
        );
        assert_eq!(id(&s, s.trunk_for(ip("192.0.3.1"), &none.into())), None);
        assert_eq!(
            id(&s, s.trunk_for(ip("::ffff:192.0.2.11"), &none.into())),
            Some("wide"),
            "IPv4-mapped is IPv4"
        );
        assert_eq!(
            id(&s, s.trunk_for(ip("2001:db8:1:2::1"), &none.into())),
            Some("v6")
        );
        assert_eq!(id(&s, s.trunk_for(ip("2001:db8:2::1"), &none.into())), None);
        assert_eq!(
            id(&s, s.trunk_for(ip("2001:db8::5"), &none.into())),
            Some("v6"),
            "next hop allowed implicitly"
        );
        assert_eq!(
            id(&s, s.trunk_for(ip("203.0.113.7"), &none.into())),
            Some("by-next-hop")
        );
    }

    #[test]
    fn one_source_two_trunks_split_by_number() {
        let s = snapshot(CONFIG);
        let source = ip("198.51.100.20");
        let gb = |user: &'static [u8]| [Some(user), None];
        assert_eq!(
            id(&s, s.trunk_for(source, &gb(b"+442079460000").into())),
            Some("shared-numbers")
        );
        assert_eq!(
            id(&s, s.trunk_for(source, &gb(b"02079460000").into())),
            Some("shared-numbers"),
            "national with the 0 prefix"
        );
        assert_eq!(
            id(
                &s,
                s.trunk_for(source, &[None, Some(&b"442079460000"[..])].into())
            ),
            Some("shared-numbers"),
            "To user"
        );
        assert_eq!(
            id(&s, s.trunk_for(source, &gb(b"+15559999999").into())),
            Some("shared-any")
        );
    }

    #[test]
    fn numbers_in_every_written_form() {
        let s = snapshot(CONFIG);
        let wide = &s.trunks[s.trunk_for(ip("192.0.2.1"), &[None, None].into()).unwrap() as usize];
        for user in [
            &b"+15550100001"[..],
            b"15550100001",
            b"+1-555-010-0001",
            b"+15550100001;npdi;rn=+15550000000",
        ] {
            assert!(wide.owns(Some(user)), "{}", String::from_utf8_lossy(user));
        }
        for user in [&b"+15550100002"[..], b"alice", b"", b"+"] {
            assert!(!wide.owns(Some(user)), "{}", String::from_utf8_lossy(user));
        }
        assert!(!wide.owns(None));
        assert_eq!(
            id(&s, s.owner(&[None, Some(&b"+1-555-010-0002"[..])].into())),
            Some("narrow")
        );
    }

    #[test]
    fn ownership_comes_with_the_trunk() {
        let s = snapshot(CONFIG);
        let users: [&[u8]; 6] = [
            b"+15550100001",
            b"15550100002",
            b"02079460000",
            b"+442079460000",
            b"alice",
            b"+19999999999",
        ];
        for source in [
            "192.0.2.10",
            "192.0.2.11",
            "198.51.100.20",
            "2001:db8:1::1",
            "203.0.113.7",
            "192.0.3.1",
        ] {
            for first in users.iter().map(|&u| Some(u)).chain([None]) {
                for second in users.iter().map(|&u| Some(u)).chain([None]) {
                    let pair = [first, second];
                    let expected = s.trunk_for(ip(source), &pair.into()).map(|index| {
                        let trunk = &s.trunks[index as usize];
                        (index, pair.iter().any(|user| trunk.owns(*user)))
                    });
                    assert_eq!(s.trunk_and_ownership(ip(source), &pair.into()), expected);
                    // The To user read from its URI, only when needed: the same answer.
                    let uri = second.map(|user| [&b"sip:"[..], user, b"@192.0.2.200"].concat());
                    let lazy = Users::of_request(first, uri.as_deref());
                    assert_eq!(s.trunk_and_ownership(ip(source), &lazy), expected);
                }
            }
        }
    }

    #[test]
    fn number_keys_tell_digit_strings_apart() {
        let strings: [&[u8]; 8] = [
            b"",
            b"0",
            b"00",
            b"1",
            b"01",
            b"10",
            b"15550100001",
            b"015550100001",
        ];
        for a in strings {
            for b in strings {
                assert_eq!(number_key(a) == number_key(b), a == b, "{a:?} {b:?}");
            }
        }
        assert_eq!(number_key(&[b'9'; 32]).map(|key| key >> 112), Some(32));
        assert_eq!(number_key(&[b'9'; 33]), None);
        assert_eq!(number_key(b"12a"), None);
    }

    #[test]
    fn backends_by_address() {
        let s = snapshot(CONFIG);
        assert!(s.is_backend("10.9.9.9:5080".parse().unwrap()));
        assert!(s.is_backend("10.9.9.9:41000".parse().unwrap()));
        assert!(!s.is_backend("10.9.9.8:5080".parse().unwrap()));
    }

    #[test]
    fn channel_claims_never_exceed_the_limit_and_release_once() {
        let counters = Arc::new(TrunkCounters::new("t"));
        let guards: Vec<_> = (0..5).filter_map(|_| counters.claim(3)).collect();
        assert_eq!(guards.len(), 3);
        assert_eq!(counters.channels(), 3);
        drop(guards);
        assert_eq!(counters.channels(), 0);
        let unlimited: Vec<_> = (0..100).filter_map(|_| counters.claim(0)).collect();
        assert_eq!(unlimited.len(), 100);
    }

    #[test]
    fn concurrent_claims_never_over_admit() {
        let counters = Arc::new(TrunkCounters::new("t"));
        let peak = Arc::new(AtomicU32::new(0));
        std::thread::scope(|scope| {
            for _ in 0..8 {
                let counters = Arc::clone(&counters);
                let peak = Arc::clone(&peak);
                scope.spawn(move || {
                    for _ in 0..20_000 {
                        if let Some(guard) = counters.claim(5) {
                            peak.fetch_max(counters.channels(), Ordering::Relaxed);
                            drop(guard);
                        }
                    }
                });
            }
        });
        assert!(peak.load(Ordering::Relaxed) <= 5);
        assert_eq!(counters.channels(), 0);
    }

    #[test]
    fn cps_bucket_allows_rate_per_second() {
        let counters = TrunkCounters::new("t");
        let second = 1_000_000_000;
        let admitted = (0..20).filter(|_| counters.take_call_slot(5, 0)).count();
        assert_eq!(admitted, 5, "a burst of one second's worth");
        assert!(!counters.take_call_slot(5, second / 10));
        assert!(
            counters.take_call_slot(5, second / 5 + 1),
            "one slot per 200 ms"
        );
        assert!(!counters.take_call_slot(5, second / 5 + 2));
        assert!(counters.take_call_slot(0, 0), "0 = unlimited");
    }
}
