//! The lean scan, the hot path's: [`scan_lean`] checks what [`scan_with`] checks in one
//! pass over the control bytes, and keeps only the headers admission reads.

use core::cell::OnceCell;

use memchr::memchr;

use super::bytes::{Pattern, is_wsp, parse_decimal, word_at};
use super::full::{
    Scan, call_id, contact, cseq, max_forwards, name_addr, next_line, read_header, scan_with,
    top_via,
};
use super::header::{EMPTY_HEADER, Header, HeaderName};
use super::limits::{MAX_CONTENT_LENGTH, MAX_HEADER_LINE, MAX_HEADERS, MAX_MESSAGE_LEN, MAX_VIAS};
use super::name_addr::{Contact, NameAddr};
use super::params::ListValues;
use super::start_line::{Method, StartLine, parse_start_line, plain_request_line};
use super::uri::uri_user;
use super::{CSeq, ScanError, ScanOptions, Via};
use crate::sip::classify;

/// A message scanned by [`scan_lean`]: the same checks as [`scan_with`] (it accepts and
/// refuses exactly what `scan_with` does with [`MAX_HEADERS`] slots, with the same
/// error), but instead of every header it keeps where the first Via, From, To, Call-ID,
/// CSeq, Max-Forwards, Contact and Content-Length are. Any other header is found by
/// walking the (already checked) header lines again, in [`Lean::headers`].
///
/// The top Via and To are parsed at most once, on first use, and kept.
#[derive(Clone, Debug)]
pub struct Lean<'a> {
    bytes: &'a [u8],
    start_line: StartLine<'a>,
    /// Where the first header line starts (just past the start line).
    headers_start: usize,
    kept: Kept<'a>,
    body: &'a [u8],
    message_len: usize,
    top_via: OnceCell<TopVia<'a>>,
    to_parsed: OnceCell<Result<NameAddr<'a>, ScanError>>,
}

type TopVia<'a> = Result<(&'a [u8], Via<'a>), ScanError>;

/// Scans one complete message like [`scan_with`] (with [`MAX_HEADERS`] header slots),
/// without header storage: see [`Lean`].
///
/// A single pass finds the control bytes (64 at a time), which must be exactly each
/// line's CR and LF, checks each header name and records the headers of [`Lean`].
/// Anything else (a fold, a bare LF, a stray control
/// byte, any error) is handed to [`scan_with`], whose answer is returned: the fast path
/// only ever accepts, never refuses.
pub fn scan_lean(bytes: &[u8], options: ScanOptions) -> Result<Lean<'_>, ScanError> {
    match lean_fast(bytes, options) {
        Some(lean) => Ok(lean),
        None => lean_full(bytes, options),
    }
}

/// [`scan_lean`]'s way for what the fast path does not take. Never inlined: its header
/// storage (several kB) would otherwise widen the stack frame of every caller, the hot
/// path's included.
#[cold]
#[inline(never)]
fn lean_full(bytes: &[u8], options: ScanOptions) -> Result<Lean<'_>, ScanError> {
    let mut storage = [EMPTY_HEADER; MAX_HEADERS];
    let scanned = scan_with(bytes, &mut storage, options)?;
    Ok(Lean::of(bytes, &scanned))
}

/// A control byte: C0 but HTAB, and DEL. No start line or header value may hold one
/// (TEXT-UTF8char, WSP and the lenient bytes ≥ 0x80 are exactly the others), so in a head
/// without folds the only control bytes are each line's CR LF. Found 64 at a time, with
/// the HTABs, by [`classify::control_mask`].
#[cfg(test)]
fn is_control(byte: u8) -> bool {
    classify::is_control(byte)
}

/// The positions of the control bytes of a message, in order, found 64 bytes at a time:
/// the lean scan's line ends, and every byte it must refuse, in one pass.
struct Controls<'a> {
    bytes: &'a [u8],
    /// Where the current block starts.
    block: usize,
    /// The current block's control bytes and HTABs not yet passed, one bit each. HTABs
    /// are passed over one at a time: rare, they cost less there than in every block's
    /// mask.
    mask: u64,
}

impl<'a> Controls<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Controls {
            bytes,
            block: 0,
            mask: Self::block_mask(bytes, 0),
        }
    }

    /// [`classify::control_mask`] of the 64 bytes from `block`, or of all that is left.
    fn block_mask(bytes: &[u8], block: usize) -> u64 {
        let rest = bytes.get(block..).unwrap_or_default();
        if let Some(chunk) = rest.first_chunk::<64>() {
            return classify::control_mask(chunk);
        }
        if let Some(last) = bytes.last_chunk::<64>()
            && !rest.is_empty()
        {
            // The last 64 bytes: `rest` is their top lanes, the ones below were read as
            // whole blocks already, and are shifted out.
            return classify::control_mask(last) >> (64 - rest.len());
        }
        // A message shorter than 64 bytes, padded with bytes that are no control bytes.
        let mut padded = [b' '; 64];
        if let Some(prefix) = padded.get_mut(..rest.len()) {
            prefix.copy_from_slice(rest);
        }
        classify::control_mask(&padded)
    }

    /// Moves to the next block that holds a control byte; `false` at the end of the
    /// message.
    ///
    /// A line end split across two blocks (its CR the last byte of one, its LF the first
    /// of the next) was taken whole by [`Controls::line_end`], so the LF's bit is dropped
    /// here: a CR at the end of a block is only ever passed by taking it as a line end.
    #[inline(always)]
    fn refill(&mut self) -> bool {
        while self.mask == 0 {
            self.block += 64;
            if self.block >= self.bytes.len() {
                return false;
            }
            let split_crlf = self.bytes.get(self.block - 1) == Some(&b'\r');
            self.mask = Self::block_mask(self.bytes, self.block) & !u64::from(split_crlf);
        }
        true
    }

    /// Where the current line's CR is: the next control byte, if it is a CR and the one
    /// after it is an LF. Takes both, and the HTABs before them. That is `scan_with`'s
    /// line split (at LF, CR before it) and its check that no line holds another control
    /// byte, done together.
    /// Inlined: as a call per line it costs the lean scan a tenth of its time.
    #[inline(always)]
    fn line_end(&mut self) -> Option<usize> {
        loop {
            if self.mask == 0 && !self.refill() {
                return None;
            }
            let bit = self.mask.trailing_zeros();
            let cr = self.block + bit as usize;
            if self.bytes.get(cr..cr + 2) == Some(b"\r\n") {
                // The LF is a control byte too: its bit is the next one, or (CR at bit 63)
                // the first of the next block, which `refill` drops. So the two lowest
                // bits go (with the CR at bit 63 the mask is empty after the first).
                self.mask &= self.mask - 1;
                self.mask &= self.mask.wrapping_sub(1);
                return Some(cr);
            }
            if self.bytes.get(cr) != Some(&b'\t') {
                return None;
            }
            // An HTAB (WSP, allowed in a line) in the mask: skipped.
            self.mask &= self.mask - 1;
        }
    }
}

#[cfg(test)]
impl Iterator for Controls<'_> {
    type Item = usize;

    /// Every control byte, one at a time (what [`Controls::line_end`] takes two at a
    /// time): for the tests.
    fn next(&mut self) -> Option<usize> {
        loop {
            while self.mask == 0 {
                self.block += 64;
                if self.block >= self.bytes.len() {
                    return None;
                }
                self.mask = Self::block_mask(self.bytes, self.block);
            }
            let bit = self.mask.trailing_zeros() as usize;
            self.mask &= self.mask - 1;
            if self.bytes.get(self.block + bit) != Some(&b'\t') {
                return Some(self.block + bit);
            }
        }
    }
}

/// The headers [`Lean`] keeps (the first of each name), and the counts it checks.
#[derive(Clone, Debug, Default)]
struct Kept<'a> {
    header_count: usize,
    via: Option<&'a [u8]>,
    /// Via header lines (not entries).
    via_headers: usize,
    /// `via` is known to be one entry (no comma, not empty), the top Via as it is: its
    /// comma need not be looked for again. `false` when not known.
    via_single: bool,
    via_count: usize,
    from: Option<&'a [u8]>,
    to: Option<&'a [u8]>,
    call_id: Option<&'a [u8]>,
    cseq: Option<&'a [u8]>,
    max_forwards: Option<&'a [u8]>,
    contact: Option<&'a [u8]>,
    content_length: Option<usize>,
}

/// The common case of [`scan_with`]: CRLF lines, no folds, nothing refused. `None` for
/// anything else, which [`scan_lean`] hands to `scan_with`.
///
/// Lines end at control bytes, found by [`Controls::line_end`]: each line's first control
/// byte must be its CR, followed by its LF.
///
/// The [`Lean`] is built at the end, in one go, from what the loop kept: built early and
/// filled in, it would be copied whole (hundreds of bytes, with its caches) on return.
fn lean_fast(bytes: &[u8], options: ScanOptions) -> Option<Lean<'_>> {
    if bytes.len() > MAX_MESSAGE_LEN {
        return None;
    }
    let mut controls = Controls::new(bytes);
    let content_end = controls.line_end()?;
    if content_end > MAX_HEADER_LINE {
        return None;
    }
    let line = bytes.get(..content_end)?;
    // The usual request line read here, inlined; anything else by the full reading.
    let start_line = match plain_request_line(line) {
        Some(start_line) => start_line,
        None => parse_start_line(line).ok()?,
    };
    let headers_start = content_end + 2;
    let mut kept = Kept::default();
    let mut position = headers_start;
    loop {
        let cr = controls.line_end()?;
        let rest = bytes.get(position..)?;
        let line = bytes.get(position..cr)?;
        position = cr + 2;
        if line.is_empty() {
            break;
        }
        // A fold needs no check of its own: its continuation line starts with WSP, so
        // it has no header name and is refused as a header line when its turn comes.
        // The header count is checked once at the end: more lines cost no more than the
        // bytes they are made of.
        if line.len() > MAX_HEADER_LINE {
            return None;
        }
        kept.header_count += 1;
        let (name, colon) = match kept_name(rest) {
            Some(found) => found,
            None => {
                let (name, colon) = header_name(rest, line)?;
                if let HeaderName::Other(_) = name {
                    // Most lines: checked, counted, not kept, so not trimmed either.
                    continue;
                }
                (name, colon)
            }
        };
        let value = trim_wsp(line.get(colon + 1..)?);
        let slot = match name {
            HeaderName::Via => {
                let single = !classify::has_comma(value);
                let entries = if single {
                    usize::from(!value.is_empty())
                } else {
                    ListValues::new(value).take(MAX_VIAS + 1).count()
                };
                kept.via_count += entries;
                if kept.via_count > MAX_VIAS {
                    return None;
                }
                kept.via_headers += 1;
                if kept.via.is_none() {
                    kept.via = Some(value);
                    kept.via_single = single && entries == 1;
                }
                continue;
            }
            HeaderName::Contact => {
                kept.contact.get_or_insert(value);
                continue;
            }
            HeaderName::ContentLength => {
                if kept.content_length.is_some() {
                    return None;
                }
                // `parse_content_length` without its trim: the value is trimmed.
                let length = match short_decimal(value) {
                    Some(length) => u64::from(length),
                    None => parse_decimal(value, MAX_CONTENT_LENGTH)?,
                };
                kept.content_length = Some(usize::try_from(length).ok()?);
                continue;
            }
            HeaderName::From => &mut kept.from,
            HeaderName::To => &mut kept.to,
            HeaderName::CallId => &mut kept.call_id,
            HeaderName::CSeq => &mut kept.cseq,
            HeaderName::MaxForwards => &mut kept.max_forwards,
            _ => continue,
        };
        // A singleton: a second one is refused by scan_with.
        if slot.replace(value).is_some() {
            return None;
        }
    }
    if kept.header_count > MAX_HEADERS {
        return None;
    }
    let available = bytes.get(position..)?;
    let body = match kept.content_length {
        Some(length) => available.get(..length)?,
        None if options.require_content_length => return None,
        None => available,
    };
    Some(Lean {
        bytes,
        start_line,
        headers_start,
        kept,
        body,
        message_len: position + body.len(),
        top_via: OnceCell::new(),
        to_parsed: OnceCell::new(),
    })
}

/// [`trim_lws`] for a value that holds no line break (a fold sends the lean scan to
/// [`scan_with`]): usually one SP in front and nothing behind.
///
/// [`trim_lws`]: super::bytes::trim_lws
fn trim_wsp(value: &[u8]) -> &[u8] {
    if let [b' ', rest @ ..] = value
        && let ([first, ..], [.., last]) = (rest, rest)
        && !is_wsp(*first)
        && !is_wsp(*last)
    {
        // `Name: value`, the way nearly every header is written.
        return rest;
    }
    let mut value = value;
    while let [first, rest @ ..] = value
        && is_wsp(*first)
    {
        value = rest;
    }
    while let [rest @ .., last] = value
        && is_wsp(*last)
    {
        value = rest;
    }
    value
}

/// [`parse_decimal`] of 1 to 9 digits, inline: no 9-digit number overflows a `u32` or
/// passes [`MAX_CONTENT_LENGTH`]. `None` for anything else, also for what
/// `parse_decimal` reads (more digits).
#[inline(always)]
fn short_decimal(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 9 {
        return None;
    }
    let mut value = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(digit - b'0');
    }
    Some(value)
}

/// The names [`Lean`] keeps, when written right before their colon (`Via:`, `v:`, any
/// case): the name and the colon's offset in `line_rest` (the header line and whatever
/// follows it). `None` for anything else, also a kept name with whitespace before its
/// colon, which [`header_name`] reads.
///
/// The bytes up to the colon are compared 8 at a time: a match means they are exactly
/// the name's (so token bytes, not the line's CR, hence all of the line's) and the colon.
/// Reading past the line end costs nothing: the words are compared only as far as the
/// pattern goes.
#[inline(always)]
fn kept_name(line_rest: &[u8]) -> Option<(HeaderName<'static>, usize)> {
    const VIA: Pattern = Pattern::new(b"via:");
    const FROM: Pattern = Pattern::new(b"from:");
    const TO: Pattern = Pattern::new(b"to:");
    const CSEQ: Pattern = Pattern::new(b"cseq:");
    const CALL_ID: Pattern = Pattern::new(b"call-id:");
    const CONTACT: Pattern = Pattern::new(b"contact:");
    const CONTENT_: Pattern = Pattern::new(b"content-");
    const LENGTH: Pattern = Pattern::new(b"length:");
    const MAX_FORW: Pattern = Pattern::new(b"max-forw");
    const ARDS: Pattern = Pattern::new(b"ards:");
    let word = word_at(line_rest);
    let second_word = || word_at(line_rest.get(8..).unwrap_or_default());
    let [first, second, ..] = word.to_le_bytes();
    // RFC 3261 §7.3.3's compact forms of the kept names: the letter and the colon.
    let compact = second == b':';
    // `| 0x20` maps a letter onto its lower case, and nothing else onto a letter.
    Some(match first | 0x20 {
        b'v' if VIA.matches(word) => (HeaderName::Via, 3),
        b'v' if compact => (HeaderName::Via, 1),
        b'f' if FROM.matches(word) => (HeaderName::From, 4),
        b'f' if compact => (HeaderName::From, 1),
        b't' if TO.matches(word) => (HeaderName::To, 2),
        b't' if compact => (HeaderName::To, 1),
        b'c' if CSEQ.matches(word) => (HeaderName::CSeq, 4),
        b'c' if CALL_ID.matches(word) => (HeaderName::CallId, 7),
        b'c' if CONTACT.matches(word) => (HeaderName::Contact, 7),
        b'c' if CONTENT_.matches(word) && LENGTH.matches(second_word()) => {
            (HeaderName::ContentLength, 14)
        }
        b'm' if MAX_FORW.matches(word) && ARDS.matches(second_word()) => {
            (HeaderName::MaxForwards, 12)
        }
        b'm' if compact => (HeaderName::Contact, 1),
        b'i' if compact => (HeaderName::CallId, 1),
        b'l' if compact => (HeaderName::ContentLength, 1),
        _ => return None,
    })
}

/// The name of a header line [`kept_name`] did not recognise, as [`lean_name`] reads it,
/// and its colon's offset; `None` where [`split_header_line`] refuses the line.
/// `line_rest` is the line and whatever follows it.
///
/// [`split_header_line`]: super::full::split_header_line
fn header_name<'a>(line_rest: &'a [u8], line: &'a [u8]) -> Option<(HeaderName<'a>, usize)> {
    // The line's CR is no token byte, so the run read from the rest of the message
    // (16 bytes at a time, more often whole) is the line's.
    let name_len = classify::header_name_len(line_rest);
    let name = line.get(..name_len).filter(|name| !name.is_empty())?;
    if line.get(name_len) == Some(&b':') {
        // Right before its colon a kept name is `kept_name`'s.
        return Some((HeaderName::Other(name), name_len));
    }
    let spaces = line
        .get(name_len..)?
        .iter()
        .take_while(|&&b| is_wsp(b))
        .count();
    let colon = name_len + spaces;
    (line.get(colon) == Some(&b':')).then(|| (lean_name(name), colon))
}

/// [`HeaderName::parse`] for the names [`Lean`] keeps (and the singletons among them);
/// `Other` for every other name, known or not. Most names are told apart by their length
/// and first letter without comparing them.
pub(super) fn lean_name(name: &[u8]) -> HeaderName<'_> {
    fn is(name: &[u8], lower: &[u8]) -> bool {
        name.len() == lower.len()
            && name
                .iter()
                .zip(lower)
                .all(|(&byte, &expected)| byte.to_ascii_lowercase() == expected)
    }
    let Some(&first) = name.first() else {
        return HeaderName::Other(name);
    };
    match (name.len(), first | 0x20) {
        (1, b'v') => HeaderName::Via,
        (1, b'f') => HeaderName::From,
        (1, b't') => HeaderName::To,
        (1, b'i') => HeaderName::CallId,
        (1, b'l') => HeaderName::ContentLength,
        (1, b'm') => HeaderName::Contact,
        (2, b't') if is(name, b"to") => HeaderName::To,
        (3, b'v') if is(name, b"via") => HeaderName::Via,
        (4, b'f') if is(name, b"from") => HeaderName::From,
        (4, b'c') if is(name, b"cseq") => HeaderName::CSeq,
        (7, b'c') if is(name, b"call-id") => HeaderName::CallId,
        (7, b'c') if is(name, b"contact") => HeaderName::Contact,
        (12, b'm') if is(name, b"max-forwards") => HeaderName::MaxForwards,
        (14, b'c') if is(name, b"content-length") => HeaderName::ContentLength,
        _ => HeaderName::Other(name),
    }
}

impl<'a> Lean<'a> {
    /// The lean view of a message [`scan_with`] accepted.
    fn of(bytes: &'a [u8], scanned: &Scan<'a, '_>) -> Self {
        let first = |name: HeaderName<'static>| scanned.header(name);
        Lean {
            bytes,
            start_line: scanned.start_line(),
            headers_start: memchr(b'\n', bytes).map_or(bytes.len(), |lf| lf + 1),
            kept: Kept {
                header_count: scanned.headers().len(),
                via: first(HeaderName::Via),
                via_headers: scanned.header_values(HeaderName::Via).count(),
                via_single: false,
                via_count: scanned.via_count(),
                from: first(HeaderName::From),
                to: first(HeaderName::To),
                call_id: first(HeaderName::CallId),
                cseq: first(HeaderName::CSeq),
                max_forwards: first(HeaderName::MaxForwards),
                contact: first(HeaderName::Contact),
                content_length: scanned.content_length(),
            },
            body: scanned.body(),
            message_len: scanned.message_len(),
            top_via: OnceCell::new(),
            to_parsed: OnceCell::new(),
        }
    }

    pub fn start_line(&self) -> StartLine<'a> {
        self.start_line
    }

    pub fn is_request(&self) -> bool {
        self.start_line.is_request()
    }

    /// The request method; `None` for a response.
    pub fn method(&self) -> Option<Method<'a>> {
        self.start_line.method()
    }

    /// The status code; `None` for a request.
    pub fn status_code(&self) -> Option<u16> {
        self.start_line.status_code()
    }

    /// The raw Request-URI; `None` for a response.
    pub fn request_uri(&self) -> Option<&'a [u8]> {
        self.start_line.request_uri()
    }

    /// The user part of a sip:, sips: or tel: Request-URI (see [`uri_user`]).
    pub fn request_uri_user(&self) -> Option<&'a [u8]> {
        self.start_line.request_uri().and_then(uri_user)
    }

    /// How many header lines the message has.
    pub fn header_count(&self) -> usize {
        self.kept.header_count
    }

    /// Every header, in message order, as [`Scan::headers`] holds them: read again from
    /// the checked bytes.
    pub fn headers(&self) -> LeanHeaders<'a> {
        LeanHeaders {
            bytes: self.bytes,
            position: self.headers_start,
        }
    }

    /// The raw value of the first header called `name`.
    pub fn header(&self, name: HeaderName<'_>) -> Option<&'a [u8]> {
        match name {
            HeaderName::Via => self.kept.via,
            HeaderName::From => self.kept.from,
            HeaderName::To => self.kept.to,
            HeaderName::CallId => self.kept.call_id,
            HeaderName::CSeq => self.kept.cseq,
            HeaderName::MaxForwards => self.kept.max_forwards,
            HeaderName::Contact => self.kept.contact,
            _ => self.header_values(name).next(),
        }
    }

    /// The raw values of every header called `name`, in message order.
    pub fn header_values<'n>(
        &self,
        name: HeaderName<'n>,
    ) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        self.headers()
            .filter(move |header| header.name == name)
            .map(|header| header.value)
    }

    /// The raw values of every Via header, top first.
    pub fn via_values(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        // One Via header (the usual case) needs no walk.
        let single = (self.kept.via_headers == 1)
            .then_some(self.kept.via)
            .flatten();
        let walk = (self.kept.via_headers > 1).then(|| self.header_values(HeaderName::Via));
        single.into_iter().chain(walk.into_iter().flatten())
    }

    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    pub fn content_length(&self) -> Option<usize> {
        self.kept.content_length
    }

    pub fn message_len(&self) -> usize {
        self.message_len
    }

    pub fn via_count(&self) -> usize {
        self.kept.via_count
    }

    /// The top Via, parsed on the first call and kept: see [`Scan::top_via`].
    pub fn top_via(&self) -> Result<Via<'a>, ScanError> {
        self.top_via_entry().map(|(_, via)| via)
    }

    /// The top Via entry as written (the first entry of the first Via header) and its
    /// parse.
    pub fn top_via_entry(&self) -> Result<(&'a [u8], Via<'a>), ScanError> {
        self.top_via_ref().copied()
    }

    /// The top Via's branch parameter: `None` when it has none (see [`Lean::top_via`]).
    pub fn top_via_branch(&self) -> Result<Option<&'a [u8]>, ScanError> {
        self.top_via_ref().map(|(_, via)| via.branch)
    }

    /// The kept parse of the top Via, read in place: copied out, the fields just written
    /// would be loaded in wider pieces than they were stored in, which waits.
    fn top_via_ref(&self) -> Result<&(&'a [u8], Via<'a>), ScanError> {
        self.top_via
            .get_or_init(|| match self.kept.via {
                Some(value) if self.kept.via_single => Via::parse(value).map(|via| (value, via)),
                value => top_via(value),
            })
            .as_ref()
            .map_err(|&error| error)
    }

    /// Every Via entry, top first, each parsed when the iterator reaches it.
    pub fn vias(&self) -> impl Iterator<Item = Result<Via<'a>, ScanError>> + use<'a> {
        self.via_values().flat_map(ListValues::new).map(Via::parse)
    }

    pub fn from(&self) -> Result<NameAddr<'a>, ScanError> {
        name_addr(HeaderName::From, self.kept.from)
    }

    /// The To header, parsed on the first call and kept.
    /// Read in place, as [`Lean::top_via_branch`] reads the top Via.
    pub fn to(&self) -> Result<&NameAddr<'a>, ScanError> {
        self.to_parsed
            .get_or_init(|| name_addr(HeaderName::To, self.kept.to))
            .as_ref()
            .map_err(|&error| error)
    }

    pub fn call_id(&self) -> Result<&'a [u8], ScanError> {
        call_id(self.kept.call_id)
    }

    pub fn cseq(&self) -> Result<CSeq<'a>, ScanError> {
        cseq(self.kept.cseq)
    }

    /// Whether the CSeq is well-formed and names the request's method: what
    /// [`Lean::cseq`] and a compare of its method say, told without the parse for the
    /// usual `digits SP METHOD`. `Err` as `cseq()` for a malformed or missing CSeq.
    pub fn cseq_matches_method(&self) -> Result<bool, ScanError> {
        let method = self.method();
        if let (Some(value), Some(method)) = (self.kept.cseq, method)
            && CSeq::is_plain(value, method.as_bytes())
        {
            return Ok(true);
        }
        Ok(Some(self.cseq()?.method) == method)
    }

    pub fn max_forwards(&self) -> Result<Option<u32>, ScanError> {
        max_forwards(self.kept.max_forwards)
    }

    pub fn contact(&self) -> Result<Option<Contact<'a>>, ScanError> {
        contact(self.kept.contact)
    }

    pub fn contacts(&self) -> impl Iterator<Item = Result<Contact<'a>, ScanError>> + use<'a> {
        self.header_values(HeaderName::Contact)
            .flat_map(ListValues::new)
            .map(Contact::parse)
    }
}

/// The headers of a [`Lean`] message, read again from its checked bytes.
#[derive(Clone, Debug)]
pub struct LeanHeaders<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Iterator for LeanHeaders<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Header<'a>> {
        // The message scanned: every line ends (in CRLF, or in LF where that was allowed),
        // and reading it again with bare LF allowed finds the same lines.
        let line = next_line(self.bytes, self.position, true).ok()?;
        if line.content_end == self.position {
            return None;
        }
        let (header, next) = read_header(self.bytes, self.position, line, true).ok()?;
        self.position = next;
        Some(header)
    }
}

#[cfg(test)]
pub(super) mod tests;
