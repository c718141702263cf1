//! Zero-copy SIP message scanner (RFC 3261 §7, §20, §25) and the stream framer that cuts
//! TCP/TLS byte streams into messages for it (RFC 3261 §18.3, RFC 5626 §3.5.1).
//!
//! Every inbound datagram or stream frame passes through here before anything else looks at
//! it, floods from scanners included. So this module:
//! - borrows: the start line, header names, raw header values and the body are slices of the
//!   input, and the caller supplies the header storage (`&mut [Header]`), as in httparse;
//! - never allocates (no `Vec`, `String` or `Box` outside the tests) and never panics, on any
//!   input;
//! - bounds its work: the message is capped at [`MAX_MESSAGE_LEN`], a header line at
//!   [`MAX_HEADER_LINE`], the header count at [`MAX_HEADERS`] and the Via entries at
//!   [`MAX_VIAS`], and every pass over the bytes is linear;
//! - parses eagerly only what it needs to find the body and enforce those caps: the start
//!   line, header names, Content-Length and the Via count. The top Via, From, To, CSeq,
//!   Contact, Max-Forwards and the rest are parsed by an accessor on [`Scan`] when called.
//!   [`scan_lean`] checks the same and keeps only the headers admission reads, without
//!   header storage (the hot path's scan).
//!
//! It decides nothing: admitting, rejecting and answering belong to the callers.
//!
//! Leniency is explicit. Beyond the RFC 3261 ABNF the scanner accepts only:
//! - bare LF line endings, and only when [`ScanOptions::allow_bare_lf`] is set (off by
//!   default; see there why);
//! - any byte ≥ 0x80 in header values, reason phrases and display names, without UTF-8
//!   validation, so a Latin-1 display name from an old PBX still scans;
//! - empty elements in comma-separated lists (`a,,b`), which are skipped.
//!
//! Layout: caps and options, errors, character classes, the wire types, [`scan`], the lazy
//! accessors on [`Scan`], the lean scan ([`scan_lean`], [`Lean`]), the typed header views ([`Via`], [`NameAddr`], [`CSeq`],
//! [`Params`], [`ListValues`], [`unfold`]), then the stream framer in [`frame`]. Line
//! finding (`next_line`), header-name lookup (`HeaderName::parse`) and the byte classes are
//! small separate functions so a benchmark can swap any one of them.

use core::cell::OnceCell;

use super::classify;

use memchr::memchr;
#[cfg(test)]
use nom::combinator::eof;
use nom::{
    IResult, Parser,
    bytes::complete::{take_while, take_while_m_n, take_while1},
    character::complete::char,
    combinator::rest,
};

// ---------------------------------------------------------------------------------------
// Caps and options
// ---------------------------------------------------------------------------------------

/// Largest message accepted, start line, headers and body together: the largest UDP
/// payload, and the cap the stream framer never exceeds.
pub const MAX_MESSAGE_LEN: usize = 65_535;

/// Most header lines in one message. Real INVITEs carry 15 to 40.
pub const MAX_HEADERS: usize = 128;

/// Most Via entries in one message, counted across all Via headers and comma-separated
/// values. Real calls cross fewer than ten proxies; loops and floods carry more.
pub const MAX_VIAS: usize = 32;

/// Longest start line, or longest header including its folded continuation lines, not
/// counting the final line end. Long Authorization and Identity headers stay well below.
pub const MAX_HEADER_LINE: usize = 8_192;

/// Largest Max-Forwards value (RFC 3261 §20.22: "an integer in the range 0-255").
pub const MAX_MAX_FORWARDS: u32 = 255;

/// Largest Content-Length value that scans as a number. Bigger values are
/// [`ScanError::InvalidContentLength`]; values up to this but beyond the bytes at hand are
/// [`ScanError::Truncated`].
pub const MAX_CONTENT_LENGTH: u64 = u32::MAX as u64;

/// What the scanner accepts beyond the strict grammar, and what it requires per transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanOptions {
    /// Accept a bare LF where RFC 3261 §7 requires CRLF ("The start-line, each
    /// message-header line, and the empty line MUST be terminated by a carriage-return
    /// line-feed sequence (CRLF)").
    ///
    /// Off by default. Carriers and SIP stacks send CRLF; the senders of bare LF are
    /// hand-made scripts and scanners. Accepting it would let one message mean different
    /// things to us and to a stricter stack behind us (a header hidden behind an LF that
    /// only one side treats as a line end), and the stream framer looks for CRLF CRLF only.
    /// Turn it on for a listener whose real peer needs it.
    pub allow_bare_lf: bool,
    /// Require a Content-Length header. RFC 3261 §20.14: it MUST be sent on stream
    /// transports; on UDP it may be missing and then the body runs to the end of the
    /// datagram (RFC 3261 §18.3).
    pub require_content_length: bool,
}

impl ScanOptions {
    /// For a UDP datagram: strict line endings, Content-Length optional.
    pub const DATAGRAM: Self = Self {
        allow_bare_lf: false,
        require_content_length: false,
    };
    /// For a frame cut by [`frame::frame`] from TCP or TLS: strict line endings,
    /// Content-Length required.
    pub const STREAM: Self = Self {
        allow_bare_lf: false,
        require_content_length: true,
    };
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self::DATAGRAM
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Why a message, or one of its headers, did not scan. `Copy` and allocation-free so the
/// reject path stays cheap; the `&'static str` payloads are canonical header names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("message too large")]
    TooLarge,
    #[error("empty message, or only CRLF keepalives")]
    Empty,
    #[error("start line or header too long")]
    LineTooLong,
    #[error("malformed start line")]
    StartLine,
    #[error("unsupported SIP version")]
    UnsupportedVersion,
    #[error("bare LF line ending")]
    BareLf,
    #[error("control character in a line")]
    ControlCharacter,
    #[error("invalid header name")]
    HeaderName,
    #[error("header line without a colon")]
    MissingColon,
    #[error("no empty line after the headers")]
    UnterminatedHeaders,
    #[error("too many headers")]
    TooManyHeaders,
    #[error("header storage full")]
    HeaderStorageFull,
    #[error("too many Via entries")]
    TooManyVias,
    #[error("duplicate {0} header")]
    DuplicateHeader(&'static str),
    #[error("invalid Content-Length")]
    InvalidContentLength,
    #[error("missing Content-Length")]
    MissingContentLength,
    #[error("body shorter than Content-Length")]
    Truncated,
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("malformed {0} header")]
    MalformedHeader(&'static str),
    #[error("malformed parameters")]
    MalformedParameters,
}

// ---------------------------------------------------------------------------------------
// Character classes (RFC 3261 §25.1), one 256-entry table each
// ---------------------------------------------------------------------------------------

/// Builds a 256-entry table from a byte pattern at compile time.
macro_rules! byte_class {
    ($pattern:pat) => {{
        let mut table = [false; 256];
        let mut index = 0;
        while index < 256 {
            table[index] = matches!(index as u8, $pattern);
            index += 1;
        }
        table
    }};
}

/// ```text
/// token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )
/// ```
static TOKEN: [bool; 256] = byte_class!(
    b'a'..=b'z'
        | b'A'..=b'Z'
        | b'0'..=b'9'
        | b'-'
        | b'.'
        | b'!'
        | b'%'
        | b'*'
        | b'_'
        | b'+'
        | b'`'
        | b'\''
        | b'~'
);

/// Bytes allowed inside one line of a header value or reason phrase:
/// ```text
/// TEXT-UTF8char = %x21-7E / UTF8-NONASCII
/// LWS           = [*WSP CRLF] 1*WSP
/// WSP           = SP / HTAB
/// ```
/// Lenient: every byte ≥ 0x80 passes, UTF-8 sequences are not checked. CR, LF, NUL and
/// the other controls never pass; folds are handled by the line splitter.
static TEXT: [bool; 256] = byte_class!(b'\t' | b' ' | 0x21..=0x7E | 0x80..=0xFF);

/// Request-URI bytes. RFC 3261 §7.1: "The Request-URI MUST NOT contain unescaped spaces
/// or control characters and MUST NOT be enclosed in "<>"", and non-ASCII must be
/// escaped (RFC 3261 §19.1.1):
/// ```text
/// Request-URI = SIP-URI / SIPS-URI / absoluteURI
/// ```
#[cfg(test)]
static URI: [bool; 256] = byte_class!(0x21..=0x3B | 0x3D | 0x3F..=0x7E);

/// Host bytes outside an IPv6 reference:
/// ```text
/// hostname    = *( domainlabel "." ) toplabel [ "." ]
/// domainlabel = alphanum / alphanum *( alphanum / "-" ) alphanum
/// IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT
/// ```
static HOST: [bool; 256] = byte_class!(b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.');

/// Bytes inside the brackets of an IPv6 reference:
/// ```text
/// IPv6reference = "[" IPv6address "]"
/// IPv6address   = hexpart [ ":" IPv4address ]
/// hexpart       = hexseq / hexseq "::" [ hexseq ] / "::" [ hexseq ]
/// ```
static IPV6: [bool; 256] = byte_class!(b'a'..=b'f' | b'A'..=b'F' | b'0'..=b'9' | b':' | b'.');

/// Unquoted parameter value bytes:
/// ```text
/// gen-value = token / host / quoted-string
/// host      = hostname / IPv4address / IPv6reference
/// ```
/// plus a bare IPv6 address, which RFC 5118 §4.5 shows in `received=`.
static PARAM_VALUE: [bool; 256] = byte_class!(
    b'a'..=b'z'
        | b'A'..=b'Z'
        | b'0'..=b'9'
        | b'-'
        | b'.'
        | b'!'
        | b'%'
        | b'*'
        | b'_'
        | b'+'
        | b'`'
        | b'\''
        | b'~'
        | b':'
        | b'['
        | b']'
);

/// `Call-ID = word [ "@" word ]`; `word` holds every visible ASCII byte but `;` and `,`.
/// Lenient: those two pass as well (they cannot split a Call-ID, which is not a list).
/// Read 16 at a time by [`classify::visible_len`]; the table is the tests' reference.
#[cfg(test)]
static CALL_ID: [bool; 256] = byte_class!(0x21..=0x7E);

#[cfg(test)]
pub(crate) fn is_call_id(byte: u8) -> bool {
    CALL_ID[usize::from(byte)]
}

pub(crate) fn is_token(byte: u8) -> bool {
    TOKEN[usize::from(byte)]
}

fn is_text(byte: u8) -> bool {
    TEXT[usize::from(byte)]
}

#[cfg(test)]
pub(crate) fn is_uri(byte: u8) -> bool {
    URI[usize::from(byte)]
}

#[cfg(test)]
pub(crate) fn is_host(byte: u8) -> bool {
    HOST[usize::from(byte)]
}

fn is_ipv6(byte: u8) -> bool {
    IPV6[usize::from(byte)]
}

#[cfg(test)]
fn is_param_value(byte: u8) -> bool {
    PARAM_VALUE[usize::from(byte)]
}

/// `WSP = SP / HTAB`
fn is_wsp(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

/// Whitespace inside a scanned header value: WSP, and the CR/LF of a fold. After
/// [`scan`] a value holds CR or LF only as part of a fold, so this reads `LWS`.
fn is_lws(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

fn trim_lws(bytes: &[u8]) -> &[u8] {
    // Most values the scan keeps are trimmed already: two bytes tell.
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) if !is_lws(first) && !is_lws(last) => return bytes,
        (None, _) => return bytes,
        _ => {}
    }
    let start = bytes
        .iter()
        .position(|&b| !is_lws(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !is_lws(b))
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

fn trim_wsp_end(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|&b| !is_wsp(b)).map_or(0, |i| i + 1);
    bytes.get(..end).unwrap_or_default()
}

/// `1*DIGIT` as an integer no larger than `max`; `None` if empty, not all digits, or above
/// `max`. Stops at the first digit that overflows, so leading zeros cost nothing extra.
fn parse_decimal(digits: &[u8], max: u64) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
        if value > max {
            return None;
        }
    }
    Some(value)
}

/// [`parse_decimal`] for a `u32` bound: no value at most `max` overflows a `u64` when
/// multiplied by 10, so nothing but the bound is checked.
#[inline]
fn decimal_u32(digits: &[u8], max: u32) -> Option<u32> {
    if digits.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u64::from(digit - b'0');
        if value > u64::from(max) {
            return None;
        }
    }
    u32::try_from(value).ok()
}

/// RFC 3261 §20.14: `Content-Length = ( "Content-Length" / "l" ) HCOLON 1*DIGIT`. Shared
/// by [`scan`] and the framer so the two can never disagree on a message's length.
fn parse_content_length(value: &[u8]) -> Option<usize> {
    parse_decimal(trim_lws(value), MAX_CONTENT_LENGTH).and_then(|n| usize::try_from(n).ok())
}

// ---------------------------------------------------------------------------------------
// Wire types
// ---------------------------------------------------------------------------------------

/// A request method. RFC 3261 §7.1: "The method token is case-sensitive", so `invite` is
/// an extension method, not INVITE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method<'a> {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Prack,
    Subscribe,
    Notify,
    Publish,
    Info,
    Refer,
    Message,
    Update,
    /// An extension method: a valid token that is none of the above.
    Other(&'a [u8]),
}

impl<'a> Method<'a> {
    /// Reads a method token; `None` if `token` is empty or holds a non-token byte.
    pub fn parse(token: &'a [u8]) -> Option<Self> {
        // The known names are tokens: only an extension method's bytes need checking.
        Some(match token {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"OPTIONS" => Method::Options,
            b"REGISTER" => Method::Register,
            b"PRACK" => Method::Prack,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"PUBLISH" => Method::Publish,
            b"INFO" => Method::Info,
            b"REFER" => Method::Refer,
            b"MESSAGE" => Method::Message,
            b"UPDATE" => Method::Update,
            other => {
                if other.is_empty() || class_len(other, &TOKEN) != other.len() {
                    return None;
                }
                Method::Other(other)
            }
        })
    }

    /// The method as it appears on the wire.
    pub fn as_bytes(&self) -> &'a [u8] {
        match self {
            Method::Invite => b"INVITE",
            Method::Ack => b"ACK",
            Method::Bye => b"BYE",
            Method::Cancel => b"CANCEL",
            Method::Options => b"OPTIONS",
            Method::Register => b"REGISTER",
            Method::Prack => b"PRACK",
            Method::Subscribe => b"SUBSCRIBE",
            Method::Notify => b"NOTIFY",
            Method::Publish => b"PUBLISH",
            Method::Info => b"INFO",
            Method::Refer => b"REFER",
            Method::Message => b"MESSAGE",
            Method::Update => b"UPDATE",
            Method::Other(token) => token,
        }
    }
}

/// A header name. Known names are recognised case-insensitively and in compact form
/// (RFC 3261 §7.3.1, §7.3.3; the IANA registry adds the compact forms past RFC 3261).
/// Two `Other` names are equal when they match ignoring ASCII case; build names from text
/// with [`HeaderName::parse`] so `Other(b"via")` never stands in for [`HeaderName::Via`].
#[derive(Clone, Copy, Debug)]
pub enum HeaderName<'a> {
    Via,
    From,
    To,
    CallId,
    CSeq,
    MaxForwards,
    ContentLength,
    ContentType,
    ContentEncoding,
    Contact,
    Supported,
    Require,
    ProxyRequire,
    Unsupported,
    Allow,
    Accept,
    Expires,
    MinExpires,
    WwwAuthenticate,
    ProxyAuthenticate,
    Authorization,
    ProxyAuthorization,
    RecordRoute,
    Route,
    RetryAfter,
    UserAgent,
    Server,
    Subject,
    SessionExpires,
    MinSe,
    Event,
    AllowEvents,
    ReferTo,
    ReferredBy,
    AcceptContact,
    RejectContact,
    RequestDisposition,
    Identity,
    IdentityInfo,
    PAssertedIdentity,
    Privacy,
    Reason,
    /// Any other name, as written.
    Other(&'a [u8]),
}

/// Every known name: what the tests check [`HeaderName::parse`] against.
#[cfg(test)]
static KNOWN_HEADERS: [HeaderName<'static>; 42] = [
    HeaderName::Via,
    HeaderName::From,
    HeaderName::To,
    HeaderName::CallId,
    HeaderName::CSeq,
    HeaderName::MaxForwards,
    HeaderName::ContentLength,
    HeaderName::ContentType,
    HeaderName::ContentEncoding,
    HeaderName::Contact,
    HeaderName::Supported,
    HeaderName::Require,
    HeaderName::ProxyRequire,
    HeaderName::Unsupported,
    HeaderName::Allow,
    HeaderName::Accept,
    HeaderName::Expires,
    HeaderName::MinExpires,
    HeaderName::WwwAuthenticate,
    HeaderName::ProxyAuthenticate,
    HeaderName::Authorization,
    HeaderName::ProxyAuthorization,
    HeaderName::RecordRoute,
    HeaderName::Route,
    HeaderName::RetryAfter,
    HeaderName::UserAgent,
    HeaderName::Server,
    HeaderName::Subject,
    HeaderName::SessionExpires,
    HeaderName::MinSe,
    HeaderName::Event,
    HeaderName::AllowEvents,
    HeaderName::ReferTo,
    HeaderName::ReferredBy,
    HeaderName::AcceptContact,
    HeaderName::RejectContact,
    HeaderName::RequestDisposition,
    HeaderName::Identity,
    HeaderName::IdentityInfo,
    HeaderName::PAssertedIdentity,
    HeaderName::Privacy,
    HeaderName::Reason,
];

impl<'a> HeaderName<'a> {
    /// Recognises a header name as written on the wire: full or compact form, any case.
    ///
    /// One comparison at most: the length and the first and last letters (lower-cased)
    /// pick the only known name the bytes can be, which is then compared ignoring case.
    /// Every known name starts and ends with a letter, and no two share all three.
    pub fn parse(name: &'a [u8]) -> Self {
        let (Some(&first), Some(&last)) = (name.first(), name.last()) else {
            return HeaderName::Other(name);
        };
        if name.len() == 1 {
            return Self::compact(first).unwrap_or(HeaderName::Other(name));
        }
        let candidate = match (name.len(), first | 0x20, last | 0x20) {
            (2, b't', b'o') => HeaderName::To,
            (3, b'v', b'a') => HeaderName::Via,
            (4, b'f', b'm') => HeaderName::From,
            (4, b'c', b'q') => HeaderName::CSeq,
            (5, b'a', b'w') => HeaderName::Allow,
            (5, b'r', b'e') => HeaderName::Route,
            (5, b'e', b't') => HeaderName::Event,
            (6, b'a', b't') => HeaderName::Accept,
            (6, b's', b'r') => HeaderName::Server,
            (6, b'm', b'e') => HeaderName::MinSe,
            (6, b'r', b'n') => HeaderName::Reason,
            (7, b'c', b'd') => HeaderName::CallId,
            (7, b'c', b't') => HeaderName::Contact,
            (7, b'r', b'e') => HeaderName::Require,
            (7, b'e', b's') => HeaderName::Expires,
            (7, b's', b't') => HeaderName::Subject,
            (7, b'p', b'y') => HeaderName::Privacy,
            (8, b'r', b'o') => HeaderName::ReferTo,
            (8, b'i', b'y') => HeaderName::Identity,
            (9, b's', b'd') => HeaderName::Supported,
            (10, b'u', b't') => HeaderName::UserAgent,
            (11, b'u', b'd') => HeaderName::Unsupported,
            (11, b'm', b's') => HeaderName::MinExpires,
            (11, b'r', b'r') => HeaderName::RetryAfter,
            (11, b'r', b'y') => HeaderName::ReferredBy,
            (12, b'm', b's') => HeaderName::MaxForwards,
            (12, b'c', b'e') => HeaderName::ContentType,
            (12, b'r', b'e') => HeaderName::RecordRoute,
            (12, b'a', b's') => HeaderName::AllowEvents,
            (13, b'p', b'e') => HeaderName::ProxyRequire,
            (13, b'a', b'n') => HeaderName::Authorization,
            (13, b'i', b'o') => HeaderName::IdentityInfo,
            (14, b'c', b'h') => HeaderName::ContentLength,
            (14, b'a', b't') => HeaderName::AcceptContact,
            (14, b'r', b't') => HeaderName::RejectContact,
            (15, b's', b's') => HeaderName::SessionExpires,
            (16, b'c', b'g') => HeaderName::ContentEncoding,
            (16, b'w', b'e') => HeaderName::WwwAuthenticate,
            (18, b'p', b'e') => HeaderName::ProxyAuthenticate,
            (19, b'p', b'n') => HeaderName::ProxyAuthorization,
            (19, b'p', b'y') => HeaderName::PAssertedIdentity,
            (19, b'r', b'n') => HeaderName::RequestDisposition,
            _ => return HeaderName::Other(name),
        };
        if candidate.canonical().as_bytes().eq_ignore_ascii_case(name) {
            candidate
        } else {
            HeaderName::Other(name)
        }
    }

    /// RFC 3261 §7.3.3 compact forms, with the later ones from the IANA registry.
    fn compact(letter: u8) -> Option<Self> {
        Some(match letter.to_ascii_lowercase() {
            b'a' => HeaderName::AcceptContact,
            b'b' => HeaderName::ReferredBy,
            b'c' => HeaderName::ContentType,
            b'd' => HeaderName::RequestDisposition,
            b'e' => HeaderName::ContentEncoding,
            b'f' => HeaderName::From,
            b'i' => HeaderName::CallId,
            b'j' => HeaderName::RejectContact,
            b'k' => HeaderName::Supported,
            b'l' => HeaderName::ContentLength,
            b'm' => HeaderName::Contact,
            b'n' => HeaderName::IdentityInfo,
            b'o' => HeaderName::Event,
            b'r' => HeaderName::ReferTo,
            b's' => HeaderName::Subject,
            b't' => HeaderName::To,
            b'u' => HeaderName::AllowEvents,
            b'v' => HeaderName::Via,
            b'x' => HeaderName::SessionExpires,
            b'y' => HeaderName::Identity,
            _ => return None,
        })
    }

    /// The registered full-form spelling; `"extension"` for [`HeaderName::Other`].
    pub fn canonical(&self) -> &'static str {
        match self {
            HeaderName::Via => "Via",
            HeaderName::From => "From",
            HeaderName::To => "To",
            HeaderName::CallId => "Call-ID",
            HeaderName::CSeq => "CSeq",
            HeaderName::MaxForwards => "Max-Forwards",
            HeaderName::ContentLength => "Content-Length",
            HeaderName::ContentType => "Content-Type",
            HeaderName::ContentEncoding => "Content-Encoding",
            HeaderName::Contact => "Contact",
            HeaderName::Supported => "Supported",
            HeaderName::Require => "Require",
            HeaderName::ProxyRequire => "Proxy-Require",
            HeaderName::Unsupported => "Unsupported",
            HeaderName::Allow => "Allow",
            HeaderName::Accept => "Accept",
            HeaderName::Expires => "Expires",
            HeaderName::MinExpires => "Min-Expires",
            HeaderName::WwwAuthenticate => "WWW-Authenticate",
            HeaderName::ProxyAuthenticate => "Proxy-Authenticate",
            HeaderName::Authorization => "Authorization",
            HeaderName::ProxyAuthorization => "Proxy-Authorization",
            HeaderName::RecordRoute => "Record-Route",
            HeaderName::Route => "Route",
            HeaderName::RetryAfter => "Retry-After",
            HeaderName::UserAgent => "User-Agent",
            HeaderName::Server => "Server",
            HeaderName::Subject => "Subject",
            HeaderName::SessionExpires => "Session-Expires",
            HeaderName::MinSe => "Min-SE",
            HeaderName::Event => "Event",
            HeaderName::AllowEvents => "Allow-Events",
            HeaderName::ReferTo => "Refer-To",
            HeaderName::ReferredBy => "Referred-By",
            HeaderName::AcceptContact => "Accept-Contact",
            HeaderName::RejectContact => "Reject-Contact",
            HeaderName::RequestDisposition => "Request-Disposition",
            HeaderName::Identity => "Identity",
            HeaderName::IdentityInfo => "Identity-Info",
            HeaderName::PAssertedIdentity => "P-Asserted-Identity",
            HeaderName::Privacy => "Privacy",
            HeaderName::Reason => "Reason",
            HeaderName::Other(_) => "extension",
        }
    }

    /// The bit of a header that RFC 3261 allows once only (its value is not a list, so
    /// §7.3.1 forbids a second row), or `None` for list and extension headers.
    fn singleton_bit(&self) -> Option<u8> {
        match self {
            HeaderName::From => Some(1),
            HeaderName::To => Some(1 << 1),
            HeaderName::CallId => Some(1 << 2),
            HeaderName::CSeq => Some(1 << 3),
            HeaderName::MaxForwards => Some(1 << 4),
            HeaderName::ContentLength => Some(1 << 5),
            _ => None,
        }
    }
}

impl PartialEq for HeaderName<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            (HeaderName::Other(_), _) | (_, HeaderName::Other(_)) => false,
            _ => core::mem::discriminant(self) == core::mem::discriminant(other),
        }
    }
}

impl Eq for HeaderName<'_> {}

/// One header line: its name and its raw value, the bytes after the colon with leading and
/// trailing whitespace trimmed. Folded continuation lines (RFC 3261 §7.3.1) stay inside the
/// value as written; read it with [`unfold`] to see each fold as one SP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    pub name: HeaderName<'a>,
    pub value: &'a [u8],
}

impl<'a> Header<'a> {
    /// The value with each fold read as a single SP.
    pub fn unfolded(&self) -> Unfolded<'a> {
        unfold(self.value)
    }
}

/// Filler for caller-supplied header storage: `[EMPTY_HEADER; MAX_HEADERS]`.
pub const EMPTY_HEADER: Header<'static> = Header {
    name: HeaderName::Other(b""),
    value: b"",
};

/// The first line of a message (RFC 3261 §7.1, §7.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartLine<'a> {
    /// `Method SP Request-URI SP SIP-Version`
    Request { method: Method<'a>, uri: &'a [u8] },
    /// `SIP-Version SP Status-Code SP Reason-Phrase`
    Response { code: u16, reason: &'a [u8] },
}

impl<'a> StartLine<'a> {
    pub fn is_request(&self) -> bool {
        matches!(self, StartLine::Request { .. })
    }

    /// The request method; `None` for a response.
    pub fn method(&self) -> Option<Method<'a>> {
        match *self {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code; `None` for a request.
    pub fn status_code(&self) -> Option<u16> {
        match *self {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// The raw Request-URI; `None` for a response.
    pub fn request_uri(&self) -> Option<&'a [u8]> {
        match *self {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Scanning a complete message
// ---------------------------------------------------------------------------------------

/// A scanned message: the start line, the headers (in the caller's storage) and the body,
/// all borrowed. Typed header views are parsed by the accessors, when called.
#[derive(Clone, Copy, Debug)]
pub struct Scan<'a, 'h> {
    start_line: StartLine<'a>,
    headers: &'h [Header<'a>],
    body: &'a [u8],
    content_length: Option<usize>,
    via_count: usize,
    message_len: usize,
}

/// Scans one complete UDP datagram with [`ScanOptions::DATAGRAM`]. See [`scan_with`].
pub fn scan<'a, 'h>(
    bytes: &'a [u8],
    headers: &'h mut [Header<'a>],
) -> Result<Scan<'a, 'h>, ScanError> {
    scan_with(bytes, headers, ScanOptions::DATAGRAM)
}

/// Scans one complete message: a UDP datagram, or a frame cut by [`frame::frame`].
///
/// Headers are written to the front of `storage`; fewer than [`MAX_HEADERS`] slots make
/// [`ScanError::HeaderStorageFull`] possible for a message the scanner would otherwise
/// accept. The body is the bytes after the empty line, cut to Content-Length when present:
/// RFC 3261 §18.3 discards the extra bytes of a datagram, and a Content-Length beyond the
/// end is [`ScanError::Truncated`].
pub fn scan_with<'a, 'h>(
    bytes: &'a [u8],
    storage: &'h mut [Header<'a>],
    options: ScanOptions,
) -> Result<Scan<'a, 'h>, ScanError> {
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(ScanError::TooLarge);
    }
    if bytes.iter().all(|&byte| byte == b'\r' || byte == b'\n') {
        return Err(ScanError::Empty);
    }
    let allow_bare_lf = options.allow_bare_lf;
    let first = next_line(bytes, 0, allow_bare_lf)?;
    let start_line = parse_start_line(bytes.get(..first.content_end).unwrap_or_default())?;

    let mut position = first.next;
    let mut count = 0;
    let mut via_count = 0;
    let mut content_length = None;
    let mut seen_singletons = 0u8;
    loop {
        let line = next_line(bytes, position, allow_bare_lf)?;
        if line.content_end == position {
            // The empty line that ends the headers.
            position = line.next;
            break;
        }
        let (header, next) = read_header(bytes, position, line, allow_bare_lf)?;
        position = next;

        if count >= MAX_HEADERS {
            return Err(ScanError::TooManyHeaders);
        }
        if let Some(bit) = header.name.singleton_bit() {
            if seen_singletons & bit != 0 {
                return Err(ScanError::DuplicateHeader(header.name.canonical()));
            }
            seen_singletons |= bit;
        }
        match header.name {
            HeaderName::Via => {
                // Count at most one past the cap, so a value of 8 000 commas costs little.
                let allowed = MAX_VIAS - via_count;
                via_count += ListValues::new(header.value).take(allowed + 1).count();
                if via_count > MAX_VIAS {
                    return Err(ScanError::TooManyVias);
                }
            }
            HeaderName::ContentLength => {
                content_length = Some(
                    parse_content_length(header.value).ok_or(ScanError::InvalidContentLength)?,
                );
            }
            _ => {}
        }
        match storage.get_mut(count) {
            Some(slot) => *slot = header,
            None => return Err(ScanError::HeaderStorageFull),
        }
        count += 1;
    }

    let available = bytes.get(position..).unwrap_or_default();
    let body = match content_length {
        Some(length) => available.get(..length).ok_or(ScanError::Truncated)?,
        None if options.require_content_length => return Err(ScanError::MissingContentLength),
        None => available,
    };
    let storage: &'h [Header<'a>] = storage;
    Ok(Scan {
        start_line,
        headers: storage.get(..count).unwrap_or_default(),
        body,
        content_length,
        via_count,
        message_len: position + body.len(),
    })
}

/// Where one line ends: `content_end` excludes the line end, `next` is the first byte of
/// the following line.
#[derive(Clone, Copy, Debug)]
struct Line {
    content_end: usize,
    next: usize,
}

/// Finds the end of the line starting at `start`. Looks at no more than
/// [`MAX_HEADER_LINE`] + 2 bytes, so a line-less flood costs one bounded memchr.
fn next_line(bytes: &[u8], start: usize, allow_bare_lf: bool) -> Result<Line, ScanError> {
    let rest = bytes.get(start..).unwrap_or_default();
    let window = rest.get(..MAX_HEADER_LINE + 2).unwrap_or(rest);
    let Some(lf) = memchr(b'\n', window) else {
        return Err(if window.len() > MAX_HEADER_LINE + 1 {
            ScanError::LineTooLong
        } else {
            ScanError::UnterminatedHeaders
        });
    };
    let content_len = if lf > 0 && window.get(lf - 1) == Some(&b'\r') {
        lf - 1
    } else if allow_bare_lf {
        lf
    } else {
        return Err(ScanError::BareLf);
    };
    if content_len > MAX_HEADER_LINE {
        return Err(ScanError::LineTooLong);
    }
    Ok(Line {
        content_end: start + content_len,
        next: start + lf + 1,
    })
}

/// Reads one header starting at `start`, whose first line is `first`, together with its
/// continuation lines (RFC 3261 §7.3.1: a line starting with SP or HTAB continues the
/// previous one). Returns the header and where the next line starts.
fn read_header(
    bytes: &[u8],
    start: usize,
    first: Line,
    allow_bare_lf: bool,
) -> Result<(Header<'_>, usize), ScanError> {
    let line = bytes.get(start..first.content_end).unwrap_or_default();
    let (name, value_offset) = split_header_line(line)?;
    check_text(line.get(value_offset..).unwrap_or_default())?;
    let mut end = first.content_end;
    let mut next = first.next;
    while bytes.get(next).is_some_and(|&byte| is_wsp(byte)) {
        let continuation = next_line(bytes, next, allow_bare_lf)?;
        check_text(
            bytes
                .get(next..continuation.content_end)
                .unwrap_or_default(),
        )?;
        end = continuation.content_end;
        next = continuation.next;
        if end - start > MAX_HEADER_LINE {
            return Err(ScanError::LineTooLong);
        }
    }
    let value = trim_lws(bytes.get(start + value_offset..end).unwrap_or_default());
    let header = Header {
        name: HeaderName::parse(name),
        value,
    };
    Ok((header, next))
}

/// Splits the first line of a header at its colon (RFC 3261 §7.3.1, §25.1):
/// ```text
/// message-header = header-name HCOLON header-value
/// HCOLON         = *( SP / HTAB ) ":" SWS
/// ```
/// Returns the name and the offset just past the colon.
fn split_header_line(line: &[u8]) -> Result<(&[u8], usize), ScanError> {
    let name_len = line.iter().take_while(|&&b| is_token(b)).count();
    if name_len == 0 {
        return Err(ScanError::HeaderName);
    }
    let spaces = line
        .iter()
        .skip(name_len)
        .take_while(|&&b| is_wsp(b))
        .count();
    let colon = name_len + spaces;
    match line.get(colon) {
        Some(b':') => Ok((line.get(..name_len).unwrap_or_default(), colon + 1)),
        // `Max-Forwards 70` or a bare word: the colon is missing, the name is fine.
        None => Err(ScanError::MissingColon),
        Some(_) if spaces > 0 => Err(ScanError::MissingColon),
        Some(_) => Err(ScanError::HeaderName),
    }
}

/// Every byte of one line of a value must be TEXT-UTF8char or WSP: a stray CR, a NUL or
/// another control byte is refused (a C stack behind us would cut the line there).
fn check_text(bytes: &[u8]) -> Result<(), ScanError> {
    if bytes.iter().all(|&b| is_text(b)) {
        Ok(())
    } else {
        Err(ScanError::ControlCharacter)
    }
}

type Res<'a, T> = IResult<&'a [u8], T>;

/// Fails a hand-written nom parser at `input`.
fn fail<T>(input: &[u8]) -> Res<'_, T> {
    Err(nom::Err::Error(nom::error::Error::new(
        input,
        nom::error::ErrorKind::Verify,
    )))
}

/// `SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT`, read loosely; checked by `check_version`.
fn version(input: &[u8]) -> Res<'_, &[u8]> {
    take_while1(|b: u8| b.is_ascii_alphanumeric() || b == b'/' || b == b'.')(input)
}

/// RFC 3261 §7.1: "The SIP-Version string is case-insensitive, but implementations MUST
/// send upper-case", and unlike HTTP the version is a literal string: `SIP/2.00` is not
/// 2.0. A well-formed other version is [`ScanError::UnsupportedVersion`] so the caller can
/// answer 505 Version Not Supported (RFC 3261 §21.5.7).
fn check_version(version: &[u8]) -> Result<(), ScanError> {
    if version.eq_ignore_ascii_case(b"SIP/2.0") {
        return Ok(());
    }
    let numbers = match version.get(..4) {
        Some(prefix) if prefix.eq_ignore_ascii_case(b"SIP/") => version.get(4..),
        _ => None,
    };
    let well_formed = numbers.is_some_and(|numbers| {
        let mut parts = numbers.splitn(2, |&b| b == b'.');
        let major = parts.next().unwrap_or_default();
        let minor = parts.next().unwrap_or_default();
        [major, minor]
            .iter()
            .all(|part| !part.is_empty() && part.iter().all(u8::is_ascii_digit))
    });
    if well_formed {
        Err(ScanError::UnsupportedVersion)
    } else {
        Err(ScanError::StartLine)
    }
}

/// ```text
/// start-line   = Request-Line / Status-Line
/// Request-Line = Method SP Request-URI SP SIP-Version CRLF
/// Status-Line  = SIP-Version SP Status-Code SP Reason-Phrase CRLF
/// ```
/// `SIP/` cannot begin a method (`/` is not a token byte), so it marks a response.
fn parse_start_line(line: &[u8]) -> Result<StartLine<'_>, ScanError> {
    if let Some(start_line) = plain_request_line(line).or_else(|| plain_status_line(line)) {
        return Ok(start_line);
    }
    let is_response = line
        .get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"SIP/"));
    if is_response {
        status_line(line)
    } else {
        request_line(line)
    }
}

/// The usual request line, read in a few word compares: one of the methods below, the
/// URI, and ` SIP/2.0` in upper case. `None` for anything else, which [`request_line`]
/// reads; what this accepts, `request_line` accepts the same.
#[inline(always)]
fn plain_request_line(line: &[u8]) -> Option<StartLine<'_>> {
    // Each method with the SP after it, so a match also says where the URI starts.
    const INVITE: Pattern = Pattern::exact(b"INVITE ");
    const ACK: Pattern = Pattern::exact(b"ACK ");
    const BYE: Pattern = Pattern::exact(b"BYE ");
    const CANCEL: Pattern = Pattern::exact(b"CANCEL ");
    const OPTIONS: Pattern = Pattern::exact(b"OPTIONS ");
    const REGISTER: Pattern = Pattern::exact(b"REGISTER");
    const PRACK: Pattern = Pattern::exact(b"PRACK ");
    const NOTIFY: Pattern = Pattern::exact(b"NOTIFY ");
    const PUBLISH: Pattern = Pattern::exact(b"PUBLISH ");
    const INFO: Pattern = Pattern::exact(b"INFO ");
    const REFER: Pattern = Pattern::exact(b"REFER ");
    const MESSAGE: Pattern = Pattern::exact(b"MESSAGE ");
    const UPDATE: Pattern = Pattern::exact(b"UPDATE ");
    const SIP: Pattern = Pattern::new(b"sip:");
    let (head, version) = line.split_last_chunk::<8>()?;
    if version != b" SIP/2.0" {
        return None;
    }
    let word = word_at(head);
    let [first, ..] = word.to_le_bytes();
    let (method, len) = match first {
        b'I' if INVITE.matches(word) => (Method::Invite, 6),
        b'I' if INFO.matches(word) => (Method::Info, 4),
        b'A' if ACK.matches(word) => (Method::Ack, 3),
        b'B' if BYE.matches(word) => (Method::Bye, 3),
        b'C' if CANCEL.matches(word) => (Method::Cancel, 6),
        b'O' if OPTIONS.matches(word) => (Method::Options, 7),
        b'R' if REGISTER.matches(word) && head.get(8) == Some(&b' ') => (Method::Register, 8),
        b'R' if REFER.matches(word) => (Method::Refer, 5),
        b'P' if PRACK.matches(word) => (Method::Prack, 5),
        b'P' if PUBLISH.matches(word) => (Method::Publish, 7),
        b'N' if NOTIFY.matches(word) => (Method::Notify, 6),
        b'M' if MESSAGE.matches(word) => (Method::Message, 7),
        b'U' if UPDATE.matches(word) => (Method::Update, 6),
        _ => return None,
    };
    let uri = head.get(len + 1..).filter(|uri| !uri.is_empty())?;
    let scheme = SIP.matches(word_at(uri)) || uri_scheme(uri).is_some();
    (scheme && classify::uri_len(uri) == uri.len()).then_some(StartLine::Request { method, uri })
}

/// The usual status line, `SIP/2.0 200 OK` with the version in upper case; `None` for
/// anything else, which [`status_line`] reads; what this accepts, `status_line` accepts
/// the same.
#[inline(always)]
fn plain_status_line(line: &[u8]) -> Option<StartLine<'_>> {
    let (version, rest) = line.split_first_chunk::<8>()?;
    if version != b"SIP/2.0 " {
        return None;
    }
    let ([class, tens, ones, b' '], reason) = rest.split_first_chunk::<4>()? else {
        return None;
    };
    if !(b'1'..=b'6').contains(class)
        || !tens.is_ascii_digit()
        || !ones.is_ascii_digit()
        || !reason.iter().all(|&b| is_text(b))
    {
        return None;
    }
    let code = [class, tens, ones]
        .iter()
        .fold(0, |code, &&digit| code * 10 + u16::from(digit - b'0'));
    Some(StartLine::Response { code, reason })
}

fn request_line(line: &[u8]) -> Result<StartLine<'_>, ScanError> {
    // token SP 1*URI SP version, all of the line.
    let method_len = classify::token_len(line);
    let after_method = line.get(method_len + 1..).unwrap_or_default();
    let uri_len = classify::uri_len(after_method);
    let version = after_method.get(uri_len + 1..).unwrap_or_default();
    let well_formed = method_len > 0
        && line.get(method_len) == Some(&b' ')
        && uri_len > 0
        && after_method.get(uri_len) == Some(&b' ')
        && !version.is_empty()
        && version
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'/' || b == b'.');
    if !well_formed {
        return Err(ScanError::StartLine);
    }
    let method = line.get(..method_len).unwrap_or_default();
    let uri = after_method.get(..uri_len).unwrap_or_default();
    check_version(version)?;
    if uri_scheme(uri).is_none() {
        return Err(ScanError::StartLine);
    }
    let method = Method::parse(method).ok_or(ScanError::StartLine)?;
    Ok(StartLine::Request { method, uri })
}

/// The nom parser [`request_line`] replaced, as the reference the tests hold it to.
#[cfg(test)]
fn request_line_nom(line: &[u8]) -> Result<StartLine<'_>, ScanError> {
    let parsed: Res<'_, _> = (
        take_while1(is_token),
        char(' '),
        take_while1(is_uri),
        char(' '),
        version,
        eof,
    )
        .parse(line);
    let (_, (method, _, uri, _, version, _)) = parsed.map_err(|_| ScanError::StartLine)?;
    check_version(version)?;
    if uri_scheme(uri).is_none() {
        return Err(ScanError::StartLine);
    }
    let method = Method::parse(method).ok_or(ScanError::StartLine)?;
    Ok(StartLine::Request { method, uri })
}

/// RFC 3261 §7.2, §21: `Status-Code` is three digits, and only the classes 1xx to 6xx
/// exist. `Reason-Phrase` is read as TEXT (lenient: the ABNF excludes a few ASCII marks).
fn status_line(line: &[u8]) -> Result<StartLine<'_>, ScanError> {
    let parsed: Res<'_, _> = (
        version,
        char(' '),
        take_while_m_n(3, 3, |b: u8| b.is_ascii_digit()),
        char(' '),
        rest,
    )
        .parse(line);
    let (_, (version, _, code, _, reason)) = parsed.map_err(|_| ScanError::StartLine)?;
    check_version(version)?;
    let code = parse_decimal(code, 699)
        .and_then(|code| u16::try_from(code).ok())
        .filter(|code| *code >= 100)
        .ok_or(ScanError::StartLine)?;
    if !reason.iter().all(|&b| is_text(b)) {
        return Err(ScanError::StartLine);
    }
    Ok(StartLine::Response { code, reason })
}

// ---------------------------------------------------------------------------------------
// Lazy accessors
// ---------------------------------------------------------------------------------------

impl<'a, 'h> Scan<'a, 'h> {
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

    /// Every header, in message order.
    pub fn headers(&self) -> &'h [Header<'a>] {
        self.headers
    }

    /// The raw value of the first header called `name`.
    pub fn header(&self, name: HeaderName<'_>) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|header| header.name == name)
            .map(|header| header.value)
    }

    /// The raw values of every header called `name`, in message order.
    pub fn header_values<'n>(
        &self,
        name: HeaderName<'n>,
    ) -> impl Iterator<Item = &'a [u8]> + use<'a, 'h, 'n> {
        self.headers
            .iter()
            .filter(move |header| header.name == name)
            .map(|header| header.value)
    }

    /// The message body: Content-Length bytes after the empty line, or the rest of the
    /// datagram when there is no Content-Length.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The Content-Length value, already checked by [`scan`].
    pub fn content_length(&self) -> Option<usize> {
        self.content_length
    }

    /// Bytes the message occupies: start line, headers, empty line and body. Smaller than
    /// the input when a datagram carries bytes past Content-Length.
    pub fn message_len(&self) -> usize {
        self.message_len
    }

    /// Via entries across all Via headers, already checked against [`MAX_VIAS`].
    pub fn via_count(&self) -> usize {
        self.via_count
    }

    /// The top Via: the first value of the first Via header (RFC 3261 §8.2.6, §18.2.1).
    pub fn top_via(&self) -> Result<Via<'a>, ScanError> {
        self.top_via_entry().map(|(_, via)| via)
    }

    /// The top Via entry as written (the first entry of the first Via header) and its
    /// parse.
    pub fn top_via_entry(&self) -> Result<(&'a [u8], Via<'a>), ScanError> {
        top_via(self.header(HeaderName::Via))
    }

    /// Every Via entry, top first, each parsed when the iterator reaches it.
    pub fn vias(&self) -> impl Iterator<Item = Result<Via<'a>, ScanError>> + use<'a, 'h> {
        self.header_values(HeaderName::Via)
            .flat_map(ListValues::new)
            .map(Via::parse)
    }

    /// The From header (RFC 3261 §20.20).
    pub fn from(&self) -> Result<NameAddr<'a>, ScanError> {
        self.name_addr(HeaderName::From)
    }

    /// The To header (RFC 3261 §20.39).
    pub fn to(&self) -> Result<NameAddr<'a>, ScanError> {
        self.name_addr(HeaderName::To)
    }

    fn name_addr(&self, name: HeaderName<'static>) -> Result<NameAddr<'a>, ScanError> {
        name_addr(name, self.header(name))
    }

    /// The Call-ID (RFC 3261 §20.8): `word [ "@" word ]`, compared byte for byte.
    pub fn call_id(&self) -> Result<&'a [u8], ScanError> {
        call_id(self.header(HeaderName::CallId))
    }

    /// The CSeq (RFC 3261 §20.16).
    pub fn cseq(&self) -> Result<CSeq<'a>, ScanError> {
        cseq(self.header(HeaderName::CSeq))
    }

    /// Max-Forwards (RFC 3261 §20.22), `None` when absent; above 255 is malformed.
    pub fn max_forwards(&self) -> Result<Option<u32>, ScanError> {
        max_forwards(self.header(HeaderName::MaxForwards))
    }

    /// The first Contact entry (RFC 3261 §20.10), `None` when there is no Contact header.
    pub fn contact(&self) -> Result<Option<Contact<'a>>, ScanError> {
        contact(self.header(HeaderName::Contact))
    }

    /// Every Contact entry across all Contact headers, each parsed when reached.
    pub fn contacts(&self) -> impl Iterator<Item = Result<Contact<'a>, ScanError>> + use<'a, 'h> {
        self.header_values(HeaderName::Contact)
            .flat_map(ListValues::new)
            .map(Contact::parse)
    }
}

// ---------------------------------------------------------------------------------------
// The lean scan: one pass, only what admission reads
// ---------------------------------------------------------------------------------------

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

/// The first 8 bytes of `bytes` as a little-endian word, padded with zero bytes past its
/// end.
#[inline(always)]
fn word_at(bytes: &[u8]) -> u64 {
    match bytes.first_chunk::<8>() {
        Some(chunk) => u64::from_le_bytes(*chunk),
        None => bytes
            .iter()
            .rev()
            .fold(0, |word, &byte| (word << 8) | u64::from(byte)),
    }
}

/// Up to 8 bytes of a header name and its colon, compared with a word read by
/// [`word_at`] in one go: letters in either case, other bytes exactly, bytes past the
/// pattern ignored.
#[derive(Clone, Copy)]
struct Pattern {
    value: u64,
    /// `0xFF` for each byte of the pattern.
    mask: u64,
    /// `0x20` for each letter of the pattern: OR-ed in, it maps `A-Z` onto `a-z`, and
    /// only `X` and `x` onto `x`.
    case: u64,
}

impl Pattern {
    /// `lower` is the pattern in lower case, at most 8 bytes.
    const fn new(lower: &[u8]) -> Self {
        assert!(lower.len() <= 8);
        let (mut value, mut mask, mut case) = (0, 0, 0);
        let mut shift = 0;
        let mut rest = lower;
        while let [byte, tail @ ..] = rest {
            value |= (*byte as u64) << shift;
            mask |= 0xFF << shift;
            if byte.is_ascii_lowercase() {
                case |= 0x20 << shift;
            }
            shift += 8;
            rest = tail;
        }
        Pattern { value, mask, case }
    }

    /// `bytes` exactly, case and all (at most 8 bytes).
    const fn exact(bytes: &[u8]) -> Self {
        let pattern = Self::new(bytes);
        Pattern {
            value: pattern.value,
            mask: pattern.mask,
            case: 0,
        }
    }

    #[inline(always)]
    fn matches(self, word: u64) -> bool {
        (word | self.case) & self.mask == self.value
    }
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
fn lean_name(name: &[u8]) -> HeaderName<'_> {
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

// What the accessors of [`Scan`] and [`Lean`] read from a header's raw value (the first
// header of its name, `None` when there is none), so the two can never disagree.

/// The first entry of the first Via value, and its parse.
fn top_via(value: Option<&[u8]>) -> Result<(&[u8], Via<'_>), ScanError> {
    let value = value.ok_or(ScanError::MissingHeader("Via"))?;
    let first = first_list_value(value).ok_or(ScanError::MalformedHeader("Via"))?;
    Ok((first, Via::parse(first)?))
}

/// `ListValues::new(value).next()`, without walking a value that holds no comma.
fn first_list_value(value: &[u8]) -> Option<&[u8]> {
    if !classify::has_comma(value) {
        let value = trim_lws(value);
        return (!value.is_empty()).then_some(value);
    }
    ListValues::new(value).next()
}

fn name_addr<'a>(
    name: HeaderName<'static>,
    value: Option<&'a [u8]>,
) -> Result<NameAddr<'a>, ScanError> {
    let label = name.canonical();
    let value = value.ok_or(ScanError::MissingHeader(label))?;
    NameAddr::parse(value).map_err(|_| ScanError::MalformedHeader(label))
}

fn call_id(value: Option<&[u8]>) -> Result<&[u8], ScanError> {
    let value = value.ok_or(ScanError::MissingHeader("Call-ID"))?;
    if value.is_empty() || classify::visible_len(value) != value.len() {
        return Err(ScanError::MalformedHeader("Call-ID"));
    }
    Ok(value)
}

fn cseq(value: Option<&[u8]>) -> Result<CSeq<'_>, ScanError> {
    CSeq::parse(value.ok_or(ScanError::MissingHeader("CSeq"))?)
}

fn max_forwards(value: Option<&[u8]>) -> Result<Option<u32>, ScanError> {
    let Some(value) = value else {
        return Ok(None);
    };
    decimal_u32(value, MAX_MAX_FORWARDS)
        .map(Some)
        .ok_or(ScanError::MalformedHeader("Max-Forwards"))
}

fn contact(value: Option<&[u8]>) -> Result<Option<Contact<'_>>, ScanError> {
    match value {
        None => Ok(None),
        Some(value) => {
            let first = first_list_value(value).ok_or(ScanError::MalformedHeader("Contact"))?;
            Contact::parse(first).map(Some)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Typed header views
// ---------------------------------------------------------------------------------------

/// The transport of a Via (`SIP/2.0/UDP`), compared case-insensitively (it is a token).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport<'a> {
    Udp,
    Tcp,
    Tls,
    Sctp,
    Ws,
    Wss,
    Other(&'a [u8]),
}

impl<'a> Transport<'a> {
    fn parse(token: &'a [u8]) -> Self {
        Self::of(token, word_at(token))
    }

    /// [`Transport::parse`] of `token`, given `word`: the word at `token`'s start (as
    /// [`word_at`] reads it), of which only `token`'s bytes are compared.
    #[inline(always)]
    fn of(token: &'a [u8], word: u64) -> Self {
        const UDP: Pattern = Pattern::new(b"udp");
        const TCP: Pattern = Pattern::new(b"tcp");
        const TLS: Pattern = Pattern::new(b"tls");
        const SCTP: Pattern = Pattern::new(b"sctp");
        const WS: Pattern = Pattern::new(b"ws");
        const WSS: Pattern = Pattern::new(b"wss");
        match token.len() {
            3 if UDP.matches(word) => Transport::Udp,
            3 if TCP.matches(word) => Transport::Tcp,
            3 if TLS.matches(word) => Transport::Tls,
            4 if SCTP.matches(word) => Transport::Sctp,
            2 if WS.matches(word) => Transport::Ws,
            3 if WSS.matches(word) => Transport::Wss,
            _ => Transport::Other(token),
        }
    }
}

/// The `rport` Via parameter (RFC 3581): absent, present without a value (a request asking
/// for it), or filled in (a response).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rport {
    Absent,
    Empty,
    Value(u16),
}

/// One Via entry (RFC 3261 §20.42):
/// ```text
/// via-parm      = sent-protocol LWS sent-by *( SEMI via-params )
/// sent-protocol = protocol-name SLASH protocol-version SLASH transport
/// sent-by       = host [ COLON port ]
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Via<'a> {
    pub transport: Transport<'a>,
    /// The host as written; an IPv6 reference keeps its brackets (`[2001:db8::1]`).
    pub sent_by_host: &'a [u8],
    pub sent_by_port: Option<u16>,
    pub branch: Option<&'a [u8]>,
    pub rport: Rport,
    pub received: Option<&'a [u8]>,
    /// Every parameter, raw, starting at the first `;` (empty when there are none).
    pub params: &'a [u8],
    /// The name of the first `rport` parameter without a value (a slice of the entry),
    /// found while parsing so a response writer can fill it in without reading the
    /// parameters again.
    rport_request: Option<&'a [u8]>,
}

impl<'a> Via<'a> {
    /// The first `rport` parameter without a value, as written (RFC 3581 §4: the client
    /// asks for the source port; the response fills it in). `None` when there is none.
    pub fn rport_request(&self) -> Option<&'a [u8]> {
        self.rport_request
    }

    /// Parses one Via entry, as split by [`ListValues`].
    pub fn parse(value: &'a [u8]) -> Result<Self, ScanError> {
        const MALFORMED: ScanError = ScanError::MalformedHeader("Via");
        // `SIP/2.0/` in any case, compared as one word.
        const SIP_2_0: Pattern = Pattern::new(b"sip/2.0/");
        let value = trim_lws(value);
        // The usual `SIP/2.0/UDP host...`, without LWS inside sent-protocol, read by hand;
        // anything else by the grammar below.
        if let Some((prefix, rest)) = value.split_first_chunk::<8>()
            && SIP_2_0.matches(u64::from_le_bytes(*prefix))
        {
            if let Some(via) = Self::parse_plain(rest) {
                return Ok(via);
            }
            let transport_len = class_len(rest, &TOKEN);
            let spaces = skip_lws(rest, transport_len) - transport_len;
            if transport_len > 0 && spaces > 0 {
                let transport = rest.get(..transport_len).unwrap_or_default();
                let after = rest.get(transport_len + spaces..).unwrap_or_default();
                // The transport's letters are read from the word at `rest`, whose bytes
                // past the token no pattern looks at.
                let transport = Transport::of(transport, word_at(rest));
                return Self::parse_sent_by(transport, after);
            }
        }
        let (after, (protocol, _, _, _, version, _, _, _, transport, _)) = (
            take_while1(is_token),
            lws0,
            char('/'),
            lws0,
            take_while1(is_token),
            lws0,
            char('/'),
            lws0,
            take_while1(is_token),
            take_while1(is_lws),
        )
            .parse(value)
            .map_err(|_: nom::Err<nom::error::Error<&[u8]>>| MALFORMED)?;
        if !protocol.eq_ignore_ascii_case(b"SIP") || version != b"2.0" {
            return Err(MALFORMED);
        }
        Self::parse_sent_by(Transport::parse(transport), after)
    }

    /// What follows sent-protocol and its LWS: `sent-by *( SEMI via-params )`.
    fn parse_sent_by(transport: Transport<'a>, after: &'a [u8]) -> Result<Self, ScanError> {
        const MALFORMED: ScanError = ScanError::MalformedHeader("Via");
        let (params, host, port) = sent_by(after).ok_or(MALFORMED)?;
        let mut via = Via {
            transport,
            sent_by_host: host,
            sent_by_port: port,
            branch: None,
            rport: Rport::Absent,
            received: None,
            params: trim_lws(params),
            rport_request: None,
        };
        for param in Params::new(params) {
            let param = param.map_err(|_| MALFORMED)?;
            via.note(param, || word_at(param.name))?;
        }
        Ok(via)
    }

    /// Takes in one parameter, in order: the first `branch`, `received` and `rport`.
    /// `name` is the word at the parameter's name (as [`word_at`] reads it), of which only
    /// the name's bytes are compared.
    #[inline(always)]
    fn note(&mut self, param: Param<'a>, name: impl Fn() -> u64) -> Result<(), ScanError> {
        const MALFORMED: ScanError = ScanError::MalformedHeader("Via");
        const BRANCH: Pattern = Pattern::new(b"branch");
        const RECEIVED: Pattern = Pattern::new(b"received");
        const RPORT: Pattern = Pattern::new(b"rport");
        // Told apart by length first: most parameters are compared with one name, as one
        // word (the names are letters, so the word compare is `eq_ignore_ascii_case`).
        match param.name.len() {
            6 if self.branch.is_none() && BRANCH.matches(name()) => {
                self.branch = Some(param.value.ok_or(MALFORMED)?);
            }
            8 if self.received.is_none() && RECEIVED.matches(name()) => {
                self.received = Some(param.value.ok_or(MALFORMED)?);
            }
            5 if RPORT.matches(name()) => {
                if param.value.is_none() && self.rport_request.is_none() {
                    self.rport_request = Some(param.name);
                }
                if self.rport == Rport::Absent {
                    self.rport = match param.value {
                        None => Rport::Empty,
                        Some(port) => Rport::Value(parse_port(port).ok_or(MALFORMED)?),
                    };
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// [`Via::parse`] of the plain shape, after `SIP/2.0/` (`rest`, 16 to 128 bytes):
    /// ```text
    /// transport SP host [ ":" port ] *( ";" name [ "=" value ] )
    /// ```
    /// with one space and every other byte a letter, a digit, `-`, `.` or one of the
    /// delimiters `:` `;` `=`. `None` for anything else (and for whatever the general
    /// parser refuses), left to the general parser, which then reads what it always read.
    ///
    /// Classified once, 16 bytes at a time ([`classify::via_delimiters`]: every byte
    /// that is not plain), then read from delimiter to delimiter, each checked to be the
    /// one expected there. Every run between two delimiters is plain, which is exactly
    /// what each part reads (a token, a host, a parameter name or value stop at the first
    /// delimiter and at nothing plain), so no byte is looked at one at a time but a
    /// port's digits.
    #[inline(always)]
    fn parse_plain(rest: &'a [u8]) -> Option<Self> {
        // Every byte that is not plain, each of which must be the delimiter the grammar
        // expects there.
        let mut delimiters = classify::via_delimiters(rest)?;
        // The next delimiter's position (the end when there is none), taken off.
        let mut next = || match delimiters {
            0 => rest.len(),
            mask => {
                delimiters = mask & (mask - 1);
                mask.trailing_zeros() as usize
            }
        };
        let space = next();
        if space == 0 || rest.get(space) != Some(&b' ') {
            return None;
        }
        let transport = Transport::of(rest.get(..space)?, word_at(rest));
        let host_end = next();
        let host = rest
            .get(space + 1..host_end)
            .filter(|host| !host.is_empty())?;
        let mut at = host_end;
        let mut port = None;
        if rest.get(at) == Some(&b':') {
            let port_end = next();
            port = Some(parse_port(rest.get(at + 1..port_end)?)?);
            at = port_end;
        }
        let mut via = Via {
            transport,
            sent_by_host: host,
            sent_by_port: port,
            branch: None,
            rport: Rport::Absent,
            received: None,
            params: rest.get(at..)?,
            rport_request: None,
        };
        // Each parameter starts at a `;`.
        while at < rest.len() {
            if rest.get(at) != Some(&b';') {
                return None;
            }
            let name_end = next();
            let name = rest.get(at + 1..name_end).filter(|name| !name.is_empty())?;
            let value = if rest.get(name_end) == Some(&b'=') {
                at = next();
                Some(
                    rest.get(name_end + 1..at)
                        .filter(|value| !value.is_empty())?,
                )
            } else {
                at = name_end;
                None
            };
            via.note(Param { name, value }, || word_at(name)).ok()?;
        }
        Some(via)
    }
}

/// `port = 1*DIGIT`, as a u16 other than 0.
fn parse_port(digits: &[u8]) -> Option<u16> {
    decimal_u32(digits, u32::from(u16::MAX))
        .and_then(|port| u16::try_from(port).ok())
        .filter(|port| *port != 0)
}

/// `SWS`: optional linear whitespace, folds included.
fn lws0(input: &[u8]) -> Res<'_, &[u8]> {
    take_while(is_lws)(input)
}

/// `host [ COLON port ]` with `COLON = SWS ":" SWS`; an IPv6 reference keeps its brackets.
/// Returns what follows, the host and the port; `None` when there is no host or the port
/// is out of range. Written out by hand (every Via the hot path answers goes through
/// here); [`sent_by_nom`] is the reference the tests hold it to.
fn sent_by(input: &[u8]) -> Option<(&[u8], &[u8], Option<u16>)> {
    let host_len = if input.first() == Some(&b'[') {
        let inner = input.iter().skip(1).take_while(|&&b| is_ipv6(b)).count();
        if inner < 2 || input.get(1 + inner) != Some(&b']') {
            return None;
        }
        inner + 2
    } else {
        match class_len(input, &HOST) {
            0 => return None,
            len => len,
        }
    };
    let (host, rest) = input.split_at_checked(host_len)?;
    // The port is optional: without digits after the colon, the host ends the sent-by
    // and what follows is left to the parameters (which refuse the colon).
    let colon = skip_lws(rest, 0);
    if rest.get(colon) == Some(&b':') {
        let digits = rest.get(skip_lws(rest, colon + 1)..).unwrap_or_default();
        let len = digits.iter().take_while(|&&b| b.is_ascii_digit()).count();
        if len > 0 {
            let port = parse_port(digits.get(..len)?)?;
            return Some((digits.get(len..)?, host, Some(port)));
        }
    }
    Some((rest, host, None))
}

/// The nom parser [`sent_by`] replaced, as the reference the tests hold it to.
#[cfg(test)]
fn sent_by_nom(input: &[u8]) -> Res<'_, (&[u8], Option<u16>)> {
    use nom::{combinator::opt, sequence::preceded};
    let (input, host) = host(input)?;
    let (input, port) = opt(preceded(
        (lws0, char(':'), lws0),
        take_while1(|b: u8| b.is_ascii_digit()),
    ))
    .parse(input)?;
    let port = match port {
        None => None,
        Some(digits) => match parse_port(digits) {
            Some(port) => Some(port),
            None => return fail(input),
        },
    };
    Ok((input, (host, port)))
}

/// `host = hostname / IPv4address / IPv6reference`
#[cfg(test)]
fn host(input: &[u8]) -> Res<'_, &[u8]> {
    if input.first() == Some(&b'[') {
        let inner = input.iter().skip(1).take_while(|&&b| is_ipv6(b)).count();
        if inner >= 2 && input.get(1 + inner) == Some(&b']') {
            let (reference, rest) = input.split_at(inner + 2);
            return Ok((rest, reference));
        }
        return fail(input);
    }
    take_while1(is_host)(input)
}

/// `quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE`, returned with its quotes
/// and with escapes as written.
fn quoted_string(input: &[u8]) -> Res<'_, &[u8]> {
    if input.first() != Some(&b'"') {
        return fail(input);
    }
    // From one `"` or `\` to the next, 16 bytes at a time: display names are mostly
    // plain.
    let mut index = 1;
    while let Some(found) = classify::find_quote_or_escape(input, index) {
        index += found;
        if input.get(index) == Some(&b'"') {
            return Ok((
                input.get(index + 1..).unwrap_or_default(),
                input.get(..=index).unwrap_or_default(),
            ));
        }
        // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F): the escaped byte is skipped.
        index += 2;
    }
    fail(input)
}

/// One generic parameter (RFC 3261 §25.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param<'a> {
    pub name: &'a [u8],
    /// The value as written (a quoted string keeps its quotes); `None` for a bare flag.
    pub value: Option<&'a [u8]>,
}

/// `generic-param = token [ EQUAL gen-value ]`, preceded by `SEMI = SWS ";" SWS`.
/// Returns the parameter and what follows it; `None` when `input` does not start with
/// one. Once `=` is seen a value must follow: `;a="open` is malformed, not a flag.
/// [`Params`] calls [`generic_param_at`] with the LWS it already skipped.
#[cfg(test)]
fn generic_param(input: &[u8]) -> Option<(&[u8], Param<'_>)> {
    generic_param_at(input, skip_lws(input, 0))
}

/// [`generic_param`] of `input`, whose LWS before the `;` ends at `semi`.
///
/// The SWS around `;` and `=` is nearly always empty: [`skip_lws`] looks at one byte
/// before it walks.
#[inline(always)]
fn generic_param_at(input: &[u8], semi: usize) -> Option<(&[u8], Param<'_>)> {
    if input.get(semi) != Some(&b';') {
        return None;
    }
    let name_start = skip_lws(input, semi + 1);
    let after_name = input.get(name_start..)?;
    let name_len = class_len(after_name, &TOKEN);
    if name_len == 0 {
        return None;
    }
    let name = after_name.get(..name_len)?;
    let name_end = name_start + name_len;
    let equal = skip_lws(input, name_end);
    if input.get(equal) != Some(&b'=') {
        let rest = input.get(name_end..)?;
        return Some((rest, Param { name, value: None }));
    }
    let value_start = skip_lws(input, equal + 1);
    let tail = input.get(value_start..)?;
    let (rest, value) = if tail.first() == Some(&b'"') {
        quoted_string(tail).ok()?
    } else {
        let len = class_len(tail, &PARAM_VALUE);
        if len == 0 {
            return None;
        }
        tail.split_at_checked(len)
            .map(|(value, rest)| (rest, value))?
    };
    Some((
        rest,
        Param {
            name,
            value: Some(value),
        },
    ))
}

/// `from` moved past the LWS that starts there: `from` itself, after one look, when there
/// is none (the usual case).
#[inline(always)]
fn skip_lws(bytes: &[u8], from: usize) -> usize {
    match bytes.get(from) {
        Some(&byte) if is_lws(byte) => {
            let after = bytes.get(from + 1..).unwrap_or_default();
            from + 1 + after.iter().take_while(|&&b| is_lws(b)).count()
        }
        _ => from,
    }
}

/// How many bytes at the start of `bytes` are in `class`. Each byte is still looked up,
/// but 8 at a time while 8 remain: one bounds test and one add per 8 bytes instead of per
/// byte. (The parameter and host classes have too many ranges for SSE2 to pay on values
/// this short.)
#[inline(always)]
fn class_len(bytes: &[u8], class: &[bool; 256]) -> usize {
    let mut len = 0;
    while let Some(chunk) = bytes.get(len..).and_then(|rest| rest.first_chunk::<8>()) {
        for (offset, &byte) in chunk.iter().enumerate() {
            if !class[usize::from(byte)] {
                return len + offset;
            }
        }
        len += 8;
    }
    let rest = bytes.get(len..).unwrap_or_default();
    len + rest
        .iter()
        .take_while(|&&byte| class[usize::from(byte)])
        .count()
}

/// The nom parser [`generic_param`] replaced, as the reference the tests hold it to.
#[cfg(test)]
fn generic_param_nom(input: &[u8]) -> Res<'_, Param<'_>> {
    use nom::{
        branch::alt,
        combinator::{cut, opt},
        sequence::preceded,
    };
    let (input, (_, _, _, name, value)) = (
        lws0,
        char(';'),
        lws0,
        take_while1(is_token),
        opt(preceded(
            (lws0, char('='), lws0),
            cut(alt((quoted_string, take_while1(is_param_value)))),
        )),
    )
        .parse(input)?;
    Ok((input, Param { name, value }))
}

/// Iterates `*( SEMI generic-param )`, the parameters after a Via sent-by or a From, To or
/// Contact address. Yields one [`ScanError::MalformedParameters`] and stops at the first
/// byte that does not fit.
#[derive(Clone, Debug)]
pub struct Params<'a> {
    rest: &'a [u8],
}

impl<'a> Params<'a> {
    pub fn new(raw: &'a [u8]) -> Self {
        Self { rest: raw }
    }

    /// The first parameter called `name` (case-insensitive), ignoring anything malformed.
    pub fn get(self, name: &[u8]) -> Option<Param<'a>> {
        self.map_while(Result::ok)
            .find(|param| param.name.eq_ignore_ascii_case(name))
    }
}

impl<'a> Iterator for Params<'a> {
    type Item = Result<Param<'a>, ScanError>;

    fn next(&mut self) -> Option<Self::Item> {
        // Nothing but LWS left is the end; else the first other byte must be the `;`.
        // Nothing at all, the usual end, is told before anything else is set up.
        let &first = self.rest.first()?;
        let semi = if first == b';' {
            0
        } else {
            skip_lws(self.rest, 0)
        };
        if semi >= self.rest.len() {
            return None;
        }
        match generic_param_at(self.rest, semi) {
            Some((rest, param)) => {
                self.rest = rest;
                Some(Ok(param))
            }
            None => {
                self.rest = &[];
                Some(Err(ScanError::MalformedParameters))
            }
        }
    }
}

/// Splits a list header value (`#element`: Via, Contact, Route, ...) at the commas that
/// are not inside a quoted string or an `<...>` URI. Yields each element trimmed, and
/// skips empty ones.
#[derive(Clone, Debug)]
pub struct ListValues<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> ListValues<'a> {
    pub fn new(value: &'a [u8]) -> Self {
        Self { rest: Some(value) }
    }
}

impl<'a> Iterator for ListValues<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let rest = self.rest?;
            let mut in_quotes = false;
            let mut in_angle = false;
            let mut escaped = false;
            let mut split = None;
            for (index, &byte) in rest.iter().enumerate() {
                if escaped {
                    escaped = false;
                } else if in_quotes {
                    match byte {
                        b'\\' => escaped = true,
                        b'"' => in_quotes = false,
                        _ => {}
                    }
                } else {
                    match byte {
                        b'"' => in_quotes = true,
                        b'<' => in_angle = true,
                        b'>' => in_angle = false,
                        b',' if !in_angle => {
                            split = Some(index);
                            break;
                        }
                        _ => {}
                    }
                }
            }
            let element = match split {
                Some(index) => {
                    self.rest = rest.get(index + 1..);
                    rest.get(..index).unwrap_or_default()
                }
                None => {
                    self.rest = None;
                    rest
                }
            };
            let element = trim_lws(element);
            if !element.is_empty() {
                return Some(element);
            }
        }
    }
}

/// An address header value: From, To, one Contact entry (RFC 3261 §20.10, §25.1):
/// ```text
/// ( name-addr / addr-spec ) *( SEMI param )
/// name-addr    = [ display-name ] LAQUOT addr-spec RAQUOT
/// display-name = *(token LWS) / quoted-string
/// ```
/// Without angle brackets the parameters belong to the header, not to the URI: in
/// `sip:a@b;tag=x` the tag is a header tag (RFC 3261 §20.10). Inside brackets,
/// `<sip:a@b;tag=x>` has no header tag at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// Without the quotes of a quoted string and with its escapes as written; may hold
    /// any byte ≥ 0x80, UTF-8 or not.
    pub display_name: Option<&'a [u8]>,
    pub uri: &'a [u8],
    pub tag: Option<&'a [u8]>,
    /// The header parameters, raw, from the first `;` (empty when there are none).
    pub params: &'a [u8],
}

impl<'a> NameAddr<'a> {
    /// Parses one address value. Errors are [`ScanError::MalformedParameters`] or
    /// [`ScanError::MalformedHeader`] with the label `"address"`; the accessors on
    /// [`Scan`] replace them with the header's name.
    pub fn parse(value: &'a [u8]) -> Result<Self, ScanError> {
        const MALFORMED: ScanError = ScanError::MalformedHeader("address");
        const SIP: Pattern = Pattern::new(b"sip:");
        let value = trim_lws(value);
        let (display_name, uri, params) = if value.first() == Some(&b'"') {
            let (after, quoted) = quoted_string(value).map_err(|_| MALFORMED)?;
            let inner = quoted
                .get(1..quoted.len().saturating_sub(1))
                .unwrap_or_default();
            let (uri, params) = angle_addr(trim_lws(after)).ok_or(MALFORMED)?;
            (Some(inner), uri, params)
        } else {
            match value.iter().position(|&b| b == b'<' || b == b';') {
                Some(index) if value.get(index) == Some(&b'<') => {
                    let name = trim_lws(value.get(..index).unwrap_or_default());
                    // display-name = *(token LWS), read leniently as any TEXT but DQUOTE.
                    if name
                        .iter()
                        .any(|&b| (!is_text(b) && !is_lws(b)) || b == b'"')
                    {
                        return Err(MALFORMED);
                    }
                    let (uri, params) =
                        angle_addr(value.get(index..).unwrap_or_default()).ok_or(MALFORMED)?;
                    ((!name.is_empty()).then_some(name), uri, params)
                }
                // addr-spec: the URI runs to the first `;`, the rest are header params.
                split => {
                    let end = split.unwrap_or(value.len());
                    let uri = trim_lws(value.get(..end).unwrap_or_default());
                    (None, uri, value.get(end..).unwrap_or_default())
                }
            }
        };
        // `sip:` in any case, nearly every address, is a scheme by one word compare.
        let scheme = SIP.matches(word_at(uri)) || uri_scheme(uri).is_some();
        if uri.is_empty() || classify::uri_len(uri) != uri.len() || !scheme {
            return Err(MALFORMED);
        }
        let params = trim_lws(params);
        let mut tag = None;
        // Most To and Contact values end at the `>`: no parameters, no iterator.
        if !params.is_empty() {
            for param in Params::new(params) {
                let param = param?;
                if tag.is_none() && param.name.eq_ignore_ascii_case(b"tag") {
                    tag = Some(param.value.ok_or(MALFORMED)?);
                }
            }
        }
        Ok(NameAddr {
            display_name,
            uri,
            tag,
            params,
        })
    }

    /// The user part of a sip:, sips: or tel: URI (see [`uri_user`]), read on demand: most
    /// addresses are checked, not routed on.
    pub fn user(&self) -> Option<&'a [u8]> {
        uri_user(self.uri)
    }

    pub fn params(&self) -> Params<'a> {
        Params::new(self.params)
    }

    /// The first header parameter called `name` (case-insensitive), e.g. `expires`.
    pub fn param(&self, name: &[u8]) -> Option<Param<'a>> {
        self.params().get(name)
    }
}

/// `LAQUOT addr-spec RAQUOT` at the start of `input`: the URI and what follows the `>`.
fn angle_addr(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let inner = input.strip_prefix(b"<")?;
    let close = classify::find_close_angle(inner)?;
    Some((inner.get(..close)?, inner.get(close + 1..)?))
}

/// One Contact entry (RFC 3261 §20.10): `"*"` or an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contact<'a> {
    /// `Contact: *`, only meaningful in a REGISTER removing every binding.
    Wildcard,
    Address(NameAddr<'a>),
}

impl<'a> Contact<'a> {
    pub fn parse(value: &'a [u8]) -> Result<Self, ScanError> {
        if trim_lws(value) == b"*" {
            return Ok(Contact::Wildcard);
        }
        NameAddr::parse(value)
            .map(Contact::Address)
            .map_err(|_| ScanError::MalformedHeader("Contact"))
    }
}

/// `CSeq = 1*DIGIT LWS Method` (RFC 3261 §20.16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// RFC 3261 §8.1.1.5: "MUST be expressible as a 32-bit unsigned integer".
    pub sequence: u32,
    pub method: Method<'a>,
}

impl<'a> CSeq<'a> {
    /// Whether `value` is 1 to 9 digits, one SP and `method`, nothing else: then
    /// [`CSeq::parse`] reads it, with the method `method` parses to. (Nine digits always
    /// fit a `u32`; `method`, a request line's, is a token.)
    fn is_plain(value: &[u8], method: &[u8]) -> bool {
        let digits = value
            .iter()
            .take(10)
            .take_while(|byte| byte.is_ascii_digit())
            .count();
        (1..=9).contains(&digits)
            && value.get(digits) == Some(&b' ')
            && value.get(digits + 1..) == Some(method)
    }

    /// Read by hand (every request the hot path admits has one); [`CSeq::parse_nom`] is
    /// the grammar the tests hold it to.
    pub fn parse(value: &'a [u8]) -> Result<Self, ScanError> {
        const MALFORMED: ScanError = ScanError::MalformedHeader("CSeq");
        let value = trim_lws(value);
        let digits = value.iter().take_while(|b| b.is_ascii_digit()).count();
        let (sequence, rest) = value.split_at_checked(digits).ok_or(MALFORMED)?;
        let spaces = skip_lws(rest, 0);
        let method = rest.get(spaces..).unwrap_or_default();
        if digits == 0 || spaces == 0 || method.is_empty() {
            return Err(MALFORMED);
        }
        let sequence = decimal_u32(sequence, u32::MAX).ok_or(MALFORMED)?;
        // Method::parse refuses anything but a token.
        let method = Method::parse(method).ok_or(MALFORMED)?;
        Ok(CSeq { sequence, method })
    }

    /// The nom parser [`CSeq::parse`] replaced, as the reference the tests hold it to.
    #[cfg(test)]
    fn parse_nom(value: &'a [u8]) -> Result<Self, ScanError> {
        const MALFORMED: ScanError = ScanError::MalformedHeader("CSeq");
        let parsed: Res<'_, _> = (
            take_while1(|b: u8| b.is_ascii_digit()),
            take_while1(is_lws),
            take_while1(is_token),
            eof,
        )
            .parse(trim_lws(value));
        let (_, (digits, _, method, _)) = parsed.map_err(|_| MALFORMED)?;
        let sequence = parse_decimal(digits, u64::from(u32::MAX))
            .and_then(|n| u32::try_from(n).ok())
            .ok_or(MALFORMED)?;
        let method = Method::parse(method).ok_or(MALFORMED)?;
        Ok(CSeq { sequence, method })
    }
}

/// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` before the first `:`; returns
/// the scheme and what follows the colon.
///
/// Reads only the scheme's bytes: a colon is no scheme byte, so the first byte that is
/// not one must be the first colon, or the URI has no valid scheme. (A memchr for the
/// colon would cost more than the four bytes of `sip:`.)
pub fn uri_scheme(uri: &[u8]) -> Option<(&[u8], &[u8])> {
    // `sip:` in any case, nearly every URI the hot path reads, by one compare. `| 0x20`
    // maps `S I P` onto `s i p` and nothing else onto them; the colon is compared as is.
    if let Some(&[s, i, p, b':']) = uri.first_chunk::<4>()
        && [s | 0x20, i | 0x20, p | 0x20] == *b"sip"
    {
        return Some((uri.get(..3)?, uri.get(4..).unwrap_or_default()));
    }
    let (first, others) = uri.split_first()?;
    let colon = 1 + others
        .iter()
        .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        .count();
    if !first.is_ascii_alphabetic() || uri.get(colon) != Some(&b':') {
        return None;
    }
    Some((uri.get(..colon)?, uri.get(colon + 1..).unwrap_or_default()))
}

/// The user part of a URI, raw (escapes as written), for the schemes trunkd routes on:
/// - `sip:`/`sips:` (RFC 3261 §19.1.1): the `user` of `userinfo = user [":" password] "@"`,
///   found at the first `@`, which no host, port or parameter may hold unescaped; a
///   telephone-subscriber user keeps its own `;` parameters. An IPv6 host in brackets,
///   `sip:+15551234567@[2001:db8::1]:5060;user=phone`, does not confuse it.
/// - `tel:` (RFC 3966): the number before the first `;`.
///
/// `None` for other schemes and for URIs without a user.
///
/// The three schemes are told from the URI's first word: `sip:`, `sips:` or `tel:` in any
/// case is exactly a scheme [`uri_scheme`] reads as one of them.
pub fn uri_user(uri: &[u8]) -> Option<&[u8]> {
    const SIP: Pattern = Pattern::new(b"sip:");
    const SIPS: Pattern = Pattern::new(b"sips:");
    const TEL: Pattern = Pattern::new(b"tel:");
    let word = word_at(uri);
    let sip = if SIP.matches(word) {
        Some(4)
    } else if SIPS.matches(word) {
        Some(5)
    } else {
        None
    };
    let user = if let Some(start) = sip {
        // The user ends at the first `:` or `@`; it is one only if an `@` follows. (The
        // searches take the whole URI, so that a short rest is still read 16 at once.)
        let end = start + classify::find_user_end(uri, start)?;
        if uri.get(end) != Some(&b'@') {
            classify::find_at(uri, end)?;
        }
        uri.get(start..end)?
    } else if TEL.matches(word) {
        let rest = uri.get(4..)?;
        rest.split(|&b| b == b';' || b == b'?').next()?
    } else {
        return None;
    };
    (!user.is_empty()).then_some(user)
}

/// Reads a raw header value with each fold (`[*WSP CRLF] 1*WSP`, RFC 3261 §7.3.1) as a
/// single SP, without allocating. Whitespace that holds no line break is kept as is.
pub fn unfold(value: &[u8]) -> Unfolded<'_> {
    Unfolded {
        rest: value,
        verbatim: 0,
    }
}

/// See [`unfold`].
#[derive(Clone, Debug)]
pub struct Unfolded<'a> {
    rest: &'a [u8],
    /// Bytes of the current whitespace run already known to hold no line break.
    verbatim: usize,
}

impl Iterator for Unfolded<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let (&first, tail) = self.rest.split_first()?;
        if self.verbatim == 0 && is_lws(first) {
            let run = self.rest.iter().take_while(|&&b| is_lws(b)).count();
            let (whitespace, after) = self.rest.split_at(run);
            if whitespace.iter().any(|&b| b == b'\r' || b == b'\n') {
                self.rest = after;
                return Some(b' ');
            }
            self.verbatim = run;
        }
        self.verbatim = self.verbatim.saturating_sub(1);
        self.rest = tail;
        Some(first)
    }
}

/// Whether a raw value equals `expected` once folds are read as single spaces.
pub fn eq_unfolded(value: &[u8], expected: &[u8]) -> bool {
    unfold(value).eq(expected.iter().copied())
}

/// [`eq_unfolded`], ignoring ASCII case (for tokens, RFC 3261 §7.3.1).
pub fn eq_unfolded_ignore_case(value: &[u8], expected: &[u8]) -> bool {
    unfold(value)
        .map(|b| b.to_ascii_lowercase())
        .eq(expected.iter().map(u8::to_ascii_lowercase))
}

// ---------------------------------------------------------------------------------------
// Stream framing
// ---------------------------------------------------------------------------------------

pub mod frame {
    //! Cuts a TCP or TLS byte stream into SIP messages and keepalives, before [`scan`]
    //! (RFC 3261 §18.3, RFC 5626 §3.5.1). A cheap completeness check, as in mini-redis's
    //! `Frame::check`: it finds the end of the headers and reads Content-Length, nothing
    //! more. It keeps no state; the caller owns the buffer and consumes `len` bytes per
    //! frame.
    //!
    //! Every error is fatal for the connection: once the length of a message is unknown
    //! the stream cannot be resynchronised, so close it.
    //!
    //! [`scan`]: super::scan

    use super::{HeaderName, MAX_MESSAGE_LEN, is_wsp, parse_content_length, trim_wsp_end};
    use memchr::{memchr, memmem};

    /// What the front of the buffer holds.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Frame {
        /// Not enough bytes yet; read more and call again with the grown buffer.
        Incomplete,
        /// A keepalive to consume (RFC 5626 §3.5.1): `len == 4` is a ping (CRLF CRLF) to
        /// answer with a pong, `len == 2` a pong (a lone CRLF). RFC 3261 §7.5 also makes
        /// stray CRLFs before a start line ignorable, which this covers.
        KeepAlive { len: usize },
        /// A complete message in the first `len` bytes: headers, empty line and body.
        Message { len: usize },
    }

    impl Frame {
        /// A CRLF CRLF ping, which RFC 5626 §3.5.1 says to answer with a CRLF pong.
        pub fn is_ping(&self) -> bool {
            *self == Frame::KeepAlive { len: 4 }
        }
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
    pub enum FrameError {
        #[error("message larger than the stream cap")]
        TooLarge,
        #[error("missing Content-Length on a stream")]
        MissingContentLength,
        #[error("invalid Content-Length")]
        InvalidContentLength,
        #[error("duplicate Content-Length")]
        DuplicateContentLength,
    }

    /// Frames the front of `buffer`. `max_len` caps a whole message (clamped to
    /// [`MAX_MESSAGE_LEN`]); it is checked before waiting for more bytes, both while the
    /// headers have no end yet and as soon as Content-Length is known, so a hostile peer
    /// cannot make us buffer more than `max_len`.
    ///
    /// Content-Length is required: RFC 3261 §18.3 frames stream messages by it, and
    /// §20.14 says "If a stream-based protocol (such as TCP) is used as transport, the
    /// header field MUST be used". A lone CRLF at the end of the buffer is read as a pong,
    /// not as half a ping: pongs arrive alone and must not wait for more bytes, while a
    /// ping is one 4-byte write that is almost never split (if one is, it reads as two
    /// pongs).
    ///
    /// Work per call is one bounded search over at most `max_len` bytes; a caller that
    /// calls again on every read of a slow stream pays that search again, at most
    /// `max_len` bytes per read.
    pub fn frame(buffer: &[u8], max_len: usize) -> Result<Frame, FrameError> {
        let max_len = max_len.min(MAX_MESSAGE_LEN);
        match buffer {
            [] | [b'\r'] | [b'\r', b'\n', b'\r'] => return Ok(Frame::Incomplete),
            [b'\r', b'\n', b'\r', b'\n', ..] => return Ok(Frame::KeepAlive { len: 4 }),
            [b'\r', b'\n', ..] => return Ok(Frame::KeepAlive { len: 2 }),
            _ => {}
        }
        let window = buffer.get(..max_len).unwrap_or(buffer);
        let Some(empty_line) = memmem::find(window, b"\r\n\r\n") else {
            return if buffer.len() >= max_len {
                Err(FrameError::TooLarge)
            } else {
                Ok(Frame::Incomplete)
            };
        };
        // The start line and every header line, each with its CRLF.
        let head = buffer.get(..empty_line + 2).unwrap_or_default();
        let content_length = content_length(head)?.ok_or(FrameError::MissingContentLength)?;
        let len = (empty_line + 4)
            .checked_add(content_length)
            .ok_or(FrameError::TooLarge)?;
        if len > max_len {
            Err(FrameError::TooLarge)
        } else if buffer.len() < len {
            Ok(Frame::Incomplete)
        } else {
            Ok(Frame::Message { len })
        }
    }

    /// The Content-Length of a message head (start line and headers, each ending in
    /// CRLF), folded values included; `None` if there is none. Uses the scanner's name
    /// lookup and number parser so the framer and [`super::scan`] always agree.
    fn content_length(head: &[u8]) -> Result<Option<usize>, FrameError> {
        let mut found = None;
        // The byte range of the Content-Length value being read, continuations included.
        let mut pending: Option<(usize, usize)> = None;
        let mut start = match memchr(b'\n', head) {
            Some(lf) => lf + 1, // skip the start line
            None => return Ok(None),
        };
        while let Some(lf) = head.get(start..).and_then(|rest| memchr(b'\n', rest)) {
            let end = start + lf;
            let content_end = if end > start && head.get(end - 1) == Some(&b'\r') {
                end - 1
            } else {
                end
            };
            let line = head.get(start..content_end).unwrap_or_default();
            if line.first().is_some_and(|&b| is_wsp(b)) {
                if let Some((_, value_end)) = &mut pending {
                    *value_end = content_end;
                }
            } else {
                finish(head, pending.take(), &mut found)?;
                if let Some(colon) = memchr(b':', line) {
                    let name = trim_wsp_end(line.get(..colon).unwrap_or_default());
                    if HeaderName::parse(name) == HeaderName::ContentLength {
                        pending = Some((start + colon + 1, content_end));
                    }
                }
            }
            start = end + 1;
        }
        finish(head, pending, &mut found)?;
        Ok(found)
    }

    fn finish(
        head: &[u8],
        pending: Option<(usize, usize)>,
        found: &mut Option<usize>,
    ) -> Result<(), FrameError> {
        let Some((value_start, value_end)) = pending else {
            return Ok(());
        };
        if found.is_some() {
            return Err(FrameError::DuplicateContentLength);
        }
        let value = head.get(value_start..value_end).unwrap_or_default();
        *found = Some(parse_content_length(value).ok_or(FrameError::InvalidContentLength)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::frame::{Frame, FrameError, frame};
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:+15551234567@trunk.example.com;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK776asdhds;rport\r\n\
Via: SIP/2.0/TCP proxy.example.net;branch=z9hG4bKnashds8;received=192.0.2.3\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@carrier.example.net>;tag=1928301774\r\n\
To: <sip:+15551234567@trunk.example.com>\r\n\
Call-ID: a84b4c76e66710@pc33.example.net\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@198.51.100.7:5060>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 5\r\n\
\r\n\
v=0\r\n";

    const LENIENT: ScanOptions = ScanOptions {
        allow_bare_lf: true,
        require_content_length: false,
    };

    /// A request with the given header block (each line ending in CRLF) and no body.
    fn request(headers: &str) -> Vec<u8> {
        format!("OPTIONS sip:trunk.example.com SIP/2.0\r\n{headers}\r\n").into_bytes()
    }

    fn scan_error(bytes: &[u8]) -> ScanError {
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        scan(bytes, &mut storage).expect_err("scan should fail")
    }

    /// [`scan_lean`] accepts and refuses what [`scan_with`] does, with the same error,
    /// and every accessor of the two agrees. Returns whether the fast path took it.
    fn assert_lean_agrees(bytes: &[u8], options: ScanOptions) -> bool {
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        let full = scan_with(bytes, &mut storage, options);
        let fast = lean_fast(bytes, options).is_some();
        let lean = scan_lean(bytes, options);
        let (full, lean) = match (full, lean) {
            (Err(a), Err(b)) => {
                assert_eq!(a, b, "{bytes:?}");
                assert!(!fast);
                return false;
            }
            (Ok(full), Ok(lean)) => (full, lean),
            (full, lean) => panic!("scan_with {full:?}, scan_lean {lean:?}: {bytes:?}"),
        };
        let headers: Vec<Header<'_>> = lean.headers().collect();
        assert_eq!(headers, full.headers(), "{bytes:?}");
        assert_eq!(lean.header_count(), full.headers().len());
        assert_eq!(lean.start_line(), full.start_line());
        assert_eq!(lean.method(), full.method());
        assert_eq!(lean.status_code(), full.status_code());
        assert_eq!(lean.request_uri_user(), full.request_uri_user());
        let tracked = [
            HeaderName::Via,
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
            HeaderName::MaxForwards,
            HeaderName::Contact,
            HeaderName::ContentLength,
            HeaderName::ProxyAuthorization,
        ];
        for name in tracked
            .into_iter()
            .chain(full.headers().iter().map(|header| header.name))
        {
            assert_eq!(lean.header(name), full.header(name), "{name:?}");
            assert!(lean.header_values(name).eq(full.header_values(name)));
        }
        assert!(lean.via_values().eq(full.header_values(HeaderName::Via)));
        assert_eq!(lean.body().as_ptr(), full.body().as_ptr());
        assert_eq!(lean.body().len(), full.body().len());
        assert_eq!(lean.content_length(), full.content_length());
        assert_eq!(lean.message_len(), full.message_len());
        assert_eq!(lean.via_count(), full.via_count());
        for _ in 0..2 {
            // Twice: the second answer comes from the cache.
            assert_eq!(lean.top_via(), full.top_via());
            assert_eq!(lean.to().copied(), full.to());
        }
        if let Ok((entry, via)) = lean.top_via_entry() {
            assert_eq!(
                Some(entry),
                full.header(HeaderName::Via)
                    .and_then(|v| ListValues::new(v).next())
            );
            assert_eq!(Via::parse(entry), Ok(via));
        }
        assert!(lean.vias().eq(full.vias()));
        assert_eq!(lean.from(), full.from());
        assert_eq!(lean.call_id(), full.call_id());
        assert_eq!(lean.cseq(), full.cseq());
        assert_eq!(lean.max_forwards(), full.max_forwards());
        assert_eq!(lean.contact(), full.contact());
        assert!(lean.contacts().eq(full.contacts()));
        fast
    }

    /// Calls every accessor and helper, for the never-panics loops.
    fn exercise(bytes: &[u8]) {
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        for options in [ScanOptions::DATAGRAM, ScanOptions::STREAM, LENIENT] {
            assert_lean_agrees(bytes, options);
            if let Ok(message) = scan_with(bytes, &mut storage, options) {
                let _ = message.top_via();
                let _ = message.vias().count();
                let _ = message.from();
                let _ = message.to();
                let _ = message.call_id();
                let _ = message.cseq();
                let _ = message.max_forwards();
                let _ = message.contact();
                let _ = message.contacts().count();
                let _ = message.request_uri_user();
                let _ = message.body();
                for header in message.headers() {
                    let _ = header.unfolded().count();
                    let _ = ListValues::new(header.value).count();
                    let _ = Params::new(header.value).count();
                    let _ = NameAddr::parse(header.value);
                    let _ = Via::parse(header.value);
                    let _ = CSeq::parse(header.value);
                    let _ = uri_user(header.value);
                }
            }
        }
        let _ = frame(bytes, MAX_MESSAGE_LEN);
        let _ = frame(bytes, 64);
    }

    // --- the lean scan ----------------------------------------------------------------

    #[test]
    fn control_positions_are_every_control_byte_in_order() {
        // Every byte value at every offset of a block, then messy lengths around 64.
        let mut block = [b'a'; 64];
        for index in 0..64 {
            for byte in 0..=255u8 {
                block[index] = byte;
                let expected = u64::from(is_control(byte) || byte == b'\t') << index;
                assert_eq!(
                    classify::control_mask(&block),
                    expected,
                    "{byte:#04x} at {index}"
                );
            }
            block[index] = b'a';
        }
        for len in [0, 1, 63, 64, 65, 127, 128, 129, 200, 1_000] {
            for seed in 1..20 {
                let bytes = garbage(len, seed);
                let expected: Vec<usize> = (0..len).filter(|&i| is_control(bytes[i])).collect();
                let found: Vec<usize> = Controls::new(&bytes).collect();
                assert_eq!(found, expected, "{len} bytes, seed {seed}");
            }
        }
    }

    #[test]
    fn lean_scan_agrees_with_the_full_scan_on_the_corpus() {
        let mut fast = 0;
        let mut files = 0;
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data")).unwrap()
        {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|extension| extension != "sip") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            files += 1;
            for options in [ScanOptions::DATAGRAM, ScanOptions::STREAM, LENIENT] {
                fast += usize::from(assert_lean_agrees(&bytes, options));
                // Line by line, every prefix and every line dropped.
                for end in 0..bytes.len() {
                    assert_lean_agrees(&bytes[..end], options);
                }
                let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
                for skip in 0..lines.len() {
                    let without: Vec<u8> = lines
                        .iter()
                        .enumerate()
                        .filter(|(index, _)| *index != skip)
                        .flat_map(|(_, line)| line.iter().copied())
                        .collect();
                    assert_lean_agrees(&without, options);
                    let doubled: Vec<u8> = lines
                        .iter()
                        .enumerate()
                        .flat_map(|(index, line)| {
                            let times = if index == skip { 2 } else { 1 };
                            std::iter::repeat_n(line.iter().copied(), times).flatten()
                        })
                        .collect();
                    assert_lean_agrees(&doubled, options);
                }
            }
        }
        assert!(files >= 20, "{files} vectors");
        assert!(fast >= 20, "the fast path took only {fast} scans");
    }

    #[test]
    fn lean_scan_takes_the_fast_path_for_plain_messages_only() {
        assert!(assert_lean_agrees(INVITE, ScanOptions::DATAGRAM));
        assert!(!assert_lean_agrees(FOLDED_IPV6, ScanOptions::DATAGRAM));
        let bare = String::from_utf8(INVITE.to_vec())
            .unwrap()
            .replace("\r\n", "\n");
        assert!(!assert_lean_agrees(bare.as_bytes(), LENIENT));
        let tab = String::from_utf8(INVITE.to_vec())
            .unwrap()
            .replace("Max-Forwards: 70", "Max-Forwards:\t70\t");
        assert!(assert_lean_agrees(tab.as_bytes(), ScanOptions::DATAGRAM));
        for control in [0u8, 0x7f, b'\r', 0x1b] {
            let mut bytes = INVITE.to_vec();
            let at = bytes.windows(2).position(|w| w == b"70").unwrap();
            bytes[at] = control;
            assert!(!assert_lean_agrees(&bytes, ScanOptions::DATAGRAM));
        }
        let many_vias =
            request(&"Via: SIP/2.0/UDP h;branch=z9hG4bK1, SIP/2.0/UDP g\r\n".repeat(16));
        assert!(assert_lean_agrees(&many_vias, ScanOptions::DATAGRAM));
        let too_many = request(&"Via: SIP/2.0/UDP h;branch=z9hG4bK1, SIP/2.0/UDP g\r\n".repeat(17));
        assert!(!assert_lean_agrees(&too_many, ScanOptions::DATAGRAM));
        let headers = request(&"X-A: 1\r\n".repeat(MAX_HEADERS));
        assert!(assert_lean_agrees(&headers, ScanOptions::DATAGRAM));
        let headers = request(&"X-A: 1\r\n".repeat(MAX_HEADERS + 1));
        assert!(!assert_lean_agrees(&headers, ScanOptions::DATAGRAM));
    }

    /// Every spelling of `name` in upper and lower case (each letter either way).
    fn case_variants(name: &[u8]) -> Vec<Vec<u8>> {
        let letters: Vec<usize> = (0..name.len())
            .filter(|&index| name[index].is_ascii_alphabetic())
            .collect();
        (0..1u32 << letters.len())
            .map(|upper| {
                let mut variant = name.to_ascii_lowercase();
                for (bit, &index) in letters.iter().enumerate() {
                    if upper & (1 << bit) != 0 {
                        variant[index] = variant[index].to_ascii_uppercase();
                    }
                }
                variant
            })
            .collect()
    }

    /// The lean scan's name reading ([`kept_name`], then [`header_name`]) against
    /// [`split_header_line`] and [`lean_name`], for `line` followed by each `tails`.
    fn assert_names_agree(line: &[u8]) {
        let expected = split_header_line(line)
            .ok()
            .map(|(name, after_colon)| (lean_name(name), after_colon - 1));
        for tail in [&b""[..], b"\r\n", b"\r\n\r\n", b"\r\nVia: x\r\n\r\nbody"] {
            let rest = [line, tail].concat();
            let found = kept_name(&rest).or_else(|| header_name(&rest, line));
            assert_eq!(found, expected, "{:?}", String::from_utf8_lossy(&rest));
        }
    }

    #[test]
    fn kept_names_are_read_as_the_full_scan_reads_them() {
        let kept = [
            &b"via"[..],
            b"from",
            b"to",
            b"cseq",
            b"call-id",
            b"contact",
            b"content-length",
            b"max-forwards",
        ];
        let mut names: Vec<Vec<u8>> = Vec::new();
        for name in kept {
            names.extend(case_variants(name));
            // Names that share a prefix with a kept name, or are one byte short of it.
            for more in [&b"x"[..], b"-foo", b"s", b"0", b"~"] {
                names.push([name, more].concat());
            }
            names.push(name[..name.len() - 1].to_vec());
            names.push(name[1..].to_vec());
            for index in 0..name.len() {
                for replacement in [
                    b'x',
                    b'-',
                    b'.',
                    b'_',
                    name[index] ^ 0x20,
                    name[index] ^ 0x01,
                ] {
                    let mut changed = name.to_vec();
                    changed[index] = replacement;
                    names.push(changed);
                }
            }
        }
        for byte in 0..=255u8 {
            names.push(vec![byte]);
            names.push(vec![b'x', byte]);
        }
        for known in &KNOWN_HEADERS {
            names.push(known.canonical().as_bytes().to_vec());
        }
        for name in &names {
            for colon in [
                &b":"[..],
                b": value",
                b":value",
                b" : v",
                b"\t:",
                b"  ",
                b"",
                b" x:",
            ] {
                let line = [name, colon].concat();
                if line.iter().any(|&b| is_control(b)) {
                    // A lean scan line ends at its first control byte.
                    continue;
                }
                assert_names_agree(&line);
            }
        }
        // Each kept name is recognised without the general reading, in every spelling.
        for name in kept
            .iter()
            .chain(&[&b"v"[..], b"f", b"t", b"i", b"l", b"m"])
        {
            for variant in case_variants(name) {
                let line = [&variant[..], b": x\r\n"].concat();
                assert!(kept_name(&line).is_some(), "{variant:?}");
                // Also at the very end of the message, with nothing after the colon.
                let line = [&variant[..], b":"].concat();
                assert!(kept_name(&line).is_some(), "{variant:?}");
            }
        }
    }

    #[test]
    fn line_ends_split_across_blocks_are_found() {
        // The CR of the first header line at every offset around the first two block
        // ends, then at the end of the message.
        for pad in 0..140 {
            let mut message = b"OPTIONS sip:a SIP/2.0\r\nX: ".to_vec();
            message.extend(std::iter::repeat_n(b'a', pad));
            let cr = message.len();
            message.extend_from_slice(b"\r\nl: 0\r\n\r\n");
            let mut controls = Controls::new(&message);
            let ends: Vec<usize> = std::iter::from_fn(|| controls.line_end()).collect();
            assert_eq!(ends, [21, cr, cr + 6, cr + 8], "{pad}");
            assert!(assert_lean_agrees(&message, ScanOptions::DATAGRAM), "{pad}");
            // HTABs (skipped one at a time) anywhere in the line, and right before the
            // CR or the next line's CR.
            for at in 25..cr + 6 {
                let mut tabs = message.clone();
                if tabs[at] == b'a' || tabs[at] == b' ' || tabs[at] == b'0' {
                    tabs[at] = b'\t';
                    tabs[cr - 1] = b'\t';
                    let mut controls = Controls::new(&tabs);
                    let ends: Vec<usize> = std::iter::from_fn(|| controls.line_end()).collect();
                    assert_eq!(ends, [21, cr, cr + 6, cr + 8], "{pad} {at}");
                    assert_lean_agrees(&tabs, ScanOptions::DATAGRAM);
                }
            }
            // A CR without its LF, or an LF without its CR, at the same place.
            for broken in [&b"\rX"[..], b"\r\r", b"\n\n", b"X\n"] {
                let mut bad = message.clone();
                bad[cr..cr + 2].copy_from_slice(broken);
                let mut controls = Controls::new(&bad);
                let ends: Vec<usize> = std::iter::from_fn(|| controls.line_end()).collect();
                assert_eq!(ends, [21], "{pad} {broken:?}");
                assert!(!assert_lean_agrees(&bad, ScanOptions::DATAGRAM));
                assert!(!assert_lean_agrees(&bad, LENIENT));
            }
        }
    }

    #[test]
    fn short_decimals_are_parse_decimal() {
        let mut values: Vec<Vec<u8>> = Vec::new();
        for len in 0..=12 {
            values.push(vec![b'9'; len]);
            values.push(vec![b'0'; len]);
            values.push((0..len).map(|i| b'0' + (i % 10) as u8).collect());
        }
        for value in [
            &b"4294967295"[..],
            b"4294967296",
            b"12a",
            b" 1",
            b"1 ",
            b"+1",
            b"-0",
            b"/",
            b":",
        ] {
            values.push(value.to_vec());
        }
        for value in &values {
            let expected = parse_decimal(value, MAX_CONTENT_LENGTH);
            let short = short_decimal(value);
            let plain = (1..=9).contains(&value.len()) && value.iter().all(u8::is_ascii_digit);
            assert_eq!(short.is_some(), plain, "{value:?}");
            if let Some(short) = short {
                assert_eq!(Some(u64::from(short)), expected, "{value:?}");
            }
        }
    }

    #[test]
    fn trimming_a_value_without_folds_is_trim_lws() {
        for value in [
            &b""[..],
            b" ",
            b"\t",
            b" \t ",
            b"x",
            b" x",
            b"x ",
            b" \tx y\t ",
            b"\tx\t",
            b"  x  y  ",
        ] {
            assert_eq!(trim_wsp(value), trim_lws(value), "{value:?}");
        }
    }

    #[test]
    fn words_are_padded_past_the_end() {
        assert_eq!(word_at(b""), 0);
        assert_eq!(word_at(b"v:"), u64::from_le_bytes(*b"v:\0\0\0\0\0\0"));
        assert_eq!(word_at(b"1234567"), u64::from_le_bytes(*b"1234567\0"));
        assert_eq!(word_at(b"123456789"), u64::from_le_bytes(*b"12345678"));
    }

    /// Every line from `seed` with one byte replaced, cut short, or one byte inserted.
    fn variants(seed: &[u8]) -> Vec<Vec<u8>> {
        let replacements = [
            0x00, 0x7f, 0xff, b'\r', b'\n', b' ', b'\t', b':', b';', b',', b'<', b'>', b'"', b'\\',
            b'[', b']', b'@', b'=', b'/', b'0', b'9', b'a', b'Z', b'.', b'-',
        ];
        let mut out = vec![seed.to_vec()];
        for index in 0..=seed.len() {
            out.push(seed[..index].to_vec());
            for replacement in replacements {
                let mut inserted = seed.to_vec();
                inserted.insert(index, replacement);
                out.push(inserted);
                if index < seed.len() {
                    let mut replaced = seed.to_vec();
                    replaced[index] = replacement;
                    out.push(replaced);
                }
            }
        }
        out
    }

    /// A CSeq taken as plain is one `CSeq::parse` reads, with the request's method; and the
    /// usual ones are taken. Every variant of a few seeds, against each of a few methods.
    #[test]
    fn plain_cseqs_are_what_the_parse_reads() {
        let methods: [&[u8]; 5] = [b"INVITE", b"ACK", b"OPTIONS", b"X-FOO", b"9A"];
        let seeds: [&[u8]; 6] = [
            b"102 INVITE",
            b"1 ACK",
            b"123456789 OPTIONS",
            b"4294967295 INVITE",
            b"0 X-FOO",
            b"7 9A",
        ];
        let mut plain = 0;
        for seed in seeds {
            for value in variants(seed) {
                for method in methods {
                    if !CSeq::is_plain(&value, method) {
                        continue;
                    }
                    plain += 1;
                    let parsed = CSeq::parse(&value).map(|cseq| cseq.method);
                    assert_eq!(parsed, Ok(Method::parse(method).unwrap()), "{value:?}");
                }
            }
        }
        assert!(plain > 6, "{plain}");
        assert!(CSeq::is_plain(b"102 INVITE", b"INVITE"));
        assert!(!CSeq::is_plain(b"102 INVITE", b"ACK"));
        assert!(!CSeq::is_plain(b"1234567890 INVITE", b"INVITE"));
        assert!(!CSeq::is_plain(b"102  INVITE", b"INVITE"));
    }

    #[test]
    fn plain_start_lines_are_read_as_the_general_parsers_read_them() {
        fn general(line: &[u8]) -> Result<StartLine<'_>, ScanError> {
            if line
                .get(..4)
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"SIP/"))
            {
                super::status_line(line)
            } else {
                super::request_line(line)
            }
        }
        let methods = [
            "INVITE",
            "ACK",
            "BYE",
            "CANCEL",
            "OPTIONS",
            "REGISTER",
            "PRACK",
            "SUBSCRIBE",
            "NOTIFY",
            "PUBLISH",
            "INFO",
            "REFER",
            "MESSAGE",
            "UPDATE",
        ];
        let mut seeds: Vec<String> = Vec::new();
        for method in methods {
            seeds.push(format!("{method} sip:a@b SIP/2.0"));
            // Not the method: longer, shorter, another case.
            seeds.push(format!("{method}S sip:a@b SIP/2.0"));
            seeds.push(format!("{} sip:a@b SIP/2.0", &method[1..]));
            seeds.push(format!("{} sip:a@b SIP/2.0", method.to_ascii_lowercase()));
        }
        for line in [
            "INVITE sips:a SIP/2.0",
            "INVITE SIP:a SIP/2.0",
            "INVITE tel:+1 SIP/2.0",
            "INVITE sip: SIP/2.0",
            "INVITE x SIP/2.0",
            "INVITE <sip:a> SIP/2.0",
            "INVITE sip:a sip/2.0",
            "INVITE sip:a SIP/2.1",
            "INVITE  SIP/2.0",
            "INVITE SIP/2.0",
            "SIP/2.0 200 OK",
            "SIP/2.0 699 ",
            "SIP/2.0 100 Trying",
            "SIP/2.0 099 x",
            "SIP/2.0 700 x",
            "SIP/2.0 100",
            "sip/2.0 180 Ringing",
            "SIP/2.0 486 Busy Here \u{e9}",
        ] {
            seeds.push(line.to_string());
        }
        for seed in &seeds {
            for line in variants(seed.as_bytes()) {
                assert_eq!(
                    parse_start_line(&line),
                    general(&line),
                    "{:?}",
                    String::from_utf8_lossy(&line)
                );
            }
        }
        // The fast paths take the plain lines.
        for method in methods.iter().filter(|&&method| method != "SUBSCRIBE") {
            let line = format!("{method} sip:100@192.0.2.10 SIP/2.0");
            let parsed = plain_request_line(line.as_bytes()).expect(method);
            assert_eq!(Ok(parsed), general(line.as_bytes()));
        }
        for line in [
            &b"SIP/2.0 200 OK"[..],
            b"SIP/2.0 100 ",
            b"SIP/2.0 603 Decline",
        ] {
            let parsed = plain_status_line(line).expect("plain status line");
            assert_eq!(Ok(parsed), general(line));
        }
    }

    /// The parsers as they were before the instruction-count rewrite of the admit path,
    /// verbatim but for their names: the references the rewritten ones are held to over
    /// every one-byte change of their seeds (`rewritten_parsers_read_what_their_predecessors_read`).
    mod before {
        use super::super::{
            CSeq, Method, NameAddr, Param, Rport, ScanError, Transport, Via, classify, is_host,
            is_ipv6, is_lws, is_param_value, is_text, is_token, trim_lws,
        };
        use nom::{
            Parser,
            bytes::complete::{take_while, take_while1},
            character::complete::char,
        };

        type Res<'a, T> = nom::IResult<&'a [u8], T>;

        fn fail<T>(input: &[u8]) -> Res<'_, T> {
            Err(nom::Err::Error(nom::error::Error::new(
                input,
                nom::error::ErrorKind::Verify,
            )))
        }

        pub(super) fn parse_decimal(digits: &[u8], max: u64) -> Option<u64> {
            if digits.is_empty() {
                return None;
            }
            let mut value: u64 = 0;
            for &digit in digits {
                if !digit.is_ascii_digit() {
                    return None;
                }
                value = value
                    .checked_mul(10)?
                    .checked_add(u64::from(digit - b'0'))?;
                if value > max {
                    return None;
                }
            }
            Some(value)
        }

        pub(super) fn method(token: &[u8]) -> Option<Method<'_>> {
            if token.is_empty() || !token.iter().all(|&b| is_token(b)) {
                return None;
            }
            Some(match token {
                b"INVITE" => Method::Invite,
                b"ACK" => Method::Ack,
                b"BYE" => Method::Bye,
                b"CANCEL" => Method::Cancel,
                b"OPTIONS" => Method::Options,
                b"REGISTER" => Method::Register,
                b"PRACK" => Method::Prack,
                b"SUBSCRIBE" => Method::Subscribe,
                b"NOTIFY" => Method::Notify,
                b"PUBLISH" => Method::Publish,
                b"INFO" => Method::Info,
                b"REFER" => Method::Refer,
                b"MESSAGE" => Method::Message,
                b"UPDATE" => Method::Update,
                other => Method::Other(other),
            })
        }

        pub(super) fn via(value: &[u8]) -> Result<Via<'_>, ScanError> {
            const MALFORMED: ScanError = ScanError::MalformedHeader("Via");
            let value = trim_lws(value);
            if let Some(rest) = value
                .get(..8)
                .filter(|prefix| prefix.eq_ignore_ascii_case(b"SIP/2.0/"))
                .and_then(|_| value.get(8..))
            {
                let transport_len = rest.iter().take_while(|&&b| is_token(b)).count();
                let spaces = rest
                    .get(transport_len..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|&&b| is_lws(b))
                    .count();
                if transport_len > 0 && spaces > 0 {
                    let transport = rest.get(..transport_len).unwrap_or_default();
                    let after = rest.get(transport_len + spaces..).unwrap_or_default();
                    return via_sent_by(transport, after);
                }
            }
            let lws0 = take_while(is_lws);
            let (after, (protocol, _, _, _, version, _, _, _, transport, _)) = (
                take_while1(is_token),
                lws0,
                char('/'),
                take_while(is_lws),
                take_while1(is_token),
                take_while(is_lws),
                char('/'),
                take_while(is_lws),
                take_while1(is_token),
                take_while1(is_lws),
            )
                .parse(value)
                .map_err(|_: nom::Err<nom::error::Error<&[u8]>>| MALFORMED)?;
            if !protocol.eq_ignore_ascii_case(b"SIP") || version != b"2.0" {
                return Err(MALFORMED);
            }
            via_sent_by(transport, after)
        }

        fn via_sent_by<'a>(transport: &'a [u8], after: &'a [u8]) -> Result<Via<'a>, ScanError> {
            const MALFORMED: ScanError = ScanError::MalformedHeader("Via");
            let (params, host, port) = sent_by(after).ok_or(MALFORMED)?;
            let mut via = Via {
                transport: Transport::parse(transport),
                sent_by_host: host,
                sent_by_port: port,
                branch: None,
                rport: Rport::Absent,
                received: None,
                params: trim_lws(params),
                rport_request: None,
            };
            for param in params_of(params) {
                let param = param.map_err(|_| MALFORMED)?;
                match param.name.len() {
                    6 if via.branch.is_none() && param.name.eq_ignore_ascii_case(b"branch") => {
                        via.branch = Some(param.value.ok_or(MALFORMED)?);
                    }
                    8 if via.received.is_none() && param.name.eq_ignore_ascii_case(b"received") => {
                        via.received = Some(param.value.ok_or(MALFORMED)?);
                    }
                    5 if param.name.eq_ignore_ascii_case(b"rport") => {
                        if param.value.is_none() && via.rport_request.is_none() {
                            via.rport_request = Some(param.name);
                        }
                        if via.rport == Rport::Absent {
                            via.rport = match param.value {
                                None => Rport::Empty,
                                Some(port) => Rport::Value(parse_port(port).ok_or(MALFORMED)?),
                            };
                        }
                    }
                    _ => {}
                }
            }
            Ok(via)
        }

        fn parse_port(digits: &[u8]) -> Option<u16> {
            parse_decimal(digits, u64::from(u16::MAX))
                .and_then(|port| u16::try_from(port).ok())
                .filter(|port| *port != 0)
        }

        pub(super) fn sent_by(input: &[u8]) -> Option<(&[u8], &[u8], Option<u16>)> {
            let host_len = if input.first() == Some(&b'[') {
                let inner = input.iter().skip(1).take_while(|&&b| is_ipv6(b)).count();
                if inner < 2 || input.get(1 + inner) != Some(&b']') {
                    return None;
                }
                inner + 2
            } else {
                match input.iter().take_while(|&&b| is_host(b)).count() {
                    0 => return None,
                    len => len,
                }
            };
            let (host, rest) = input.split_at_checked(host_len)?;
            let spaces = rest.iter().take_while(|&&b| is_lws(b)).count();
            if rest.get(spaces) == Some(&b':') {
                let after = rest.get(spaces + 1..).unwrap_or_default();
                let spaces = after.iter().take_while(|&&b| is_lws(b)).count();
                let digits = after.get(spaces..).unwrap_or_default();
                let len = digits.iter().take_while(|&&b| b.is_ascii_digit()).count();
                if len > 0 {
                    let port = parse_port(digits.get(..len)?)?;
                    return Some((digits.get(len..)?, host, Some(port)));
                }
            }
            Some((rest, host, None))
        }

        pub(super) fn quoted_string(input: &[u8]) -> Res<'_, &[u8]> {
            if input.first() != Some(&b'"') {
                return fail(input);
            }
            let mut index = 1;
            while let Some(&byte) = input.get(index) {
                match byte {
                    b'"' => {
                        return Ok((
                            input.get(index + 1..).unwrap_or_default(),
                            input.get(..=index).unwrap_or_default(),
                        ));
                    }
                    b'\\' => index += 2,
                    _ => index += 1,
                }
            }
            fail(input)
        }

        pub(super) fn generic_param(input: &[u8]) -> Option<(&[u8], Param<'_>)> {
            let skip_lws = |bytes: &[u8], from: usize| {
                from + bytes
                    .get(from..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|&&b| is_lws(b))
                    .count()
            };
            let semi = skip_lws(input, 0);
            if input.get(semi) != Some(&b';') {
                return None;
            }
            let name_start = skip_lws(input, semi + 1);
            let after_name = input.get(name_start..)?;
            let name_len = after_name.iter().take_while(|&&b| is_token(b)).count();
            if name_len == 0 {
                return None;
            }
            let name = after_name.get(..name_len)?;
            let name_end = name_start + name_len;
            let equal = skip_lws(input, name_end);
            if input.get(equal) != Some(&b'=') {
                let rest = input.get(name_end..)?;
                return Some((rest, Param { name, value: None }));
            }
            let value_start = skip_lws(input, equal + 1);
            let tail = input.get(value_start..)?;
            let (rest, value) = if tail.first() == Some(&b'"') {
                quoted_string(tail).ok()?
            } else {
                let len = tail.iter().take_while(|&&b| is_param_value(b)).count();
                if len == 0 {
                    return None;
                }
                (tail.get(len..)?, tail.get(..len)?)
            };
            Some((
                rest,
                Param {
                    name,
                    value: Some(value),
                },
            ))
        }

        /// `Params::new(raw)` as it was.
        pub(super) fn params_of(
            mut rest: &[u8],
        ) -> impl Iterator<Item = Result<Param<'_>, ScanError>> {
            core::iter::from_fn(move || {
                if rest.iter().all(|&b| is_lws(b)) {
                    return None;
                }
                match generic_param(rest) {
                    Some((after, param)) => {
                        rest = after;
                        Some(Ok(param))
                    }
                    None => {
                        rest = &[];
                        Some(Err(ScanError::MalformedParameters))
                    }
                }
            })
        }

        pub(super) fn name_addr(value: &[u8]) -> Result<NameAddr<'_>, ScanError> {
            const MALFORMED: ScanError = ScanError::MalformedHeader("address");
            let value = trim_lws(value);
            let (display_name, uri, params) = if value.first() == Some(&b'"') {
                let (after, quoted) = quoted_string(value).map_err(|_| MALFORMED)?;
                let inner = quoted
                    .get(1..quoted.len().saturating_sub(1))
                    .unwrap_or_default();
                let (uri, params) = angle_addr(trim_lws(after)).ok_or(MALFORMED)?;
                (Some(inner), uri, params)
            } else {
                match value.iter().position(|&b| b == b'<' || b == b';') {
                    Some(index) if value.get(index) == Some(&b'<') => {
                        let name = trim_lws(value.get(..index).unwrap_or_default());
                        if name
                            .iter()
                            .any(|&b| (!is_text(b) && !is_lws(b)) || b == b'"')
                        {
                            return Err(MALFORMED);
                        }
                        let (uri, params) =
                            angle_addr(value.get(index..).unwrap_or_default()).ok_or(MALFORMED)?;
                        ((!name.is_empty()).then_some(name), uri, params)
                    }
                    split => {
                        let end = split.unwrap_or(value.len());
                        let uri = trim_lws(value.get(..end).unwrap_or_default());
                        (None, uri, value.get(end..).unwrap_or_default())
                    }
                }
            };
            if uri.is_empty() || classify::uri_len(uri) != uri.len() || uri_scheme(uri).is_none() {
                return Err(MALFORMED);
            }
            let params = trim_lws(params);
            let mut tag = None;
            for param in params_of(params) {
                let param = param?;
                if tag.is_none() && param.name.eq_ignore_ascii_case(b"tag") {
                    tag = Some(param.value.ok_or(MALFORMED)?);
                }
            }
            Ok(NameAddr {
                display_name,
                uri,
                tag,
                params,
            })
        }

        fn angle_addr(input: &[u8]) -> Option<(&[u8], &[u8])> {
            let inner = input.strip_prefix(b"<")?;
            let close = inner.iter().position(|&b| b == b'>')?;
            Some((inner.get(..close)?, inner.get(close + 1..)?))
        }

        pub(super) fn cseq(value: &[u8]) -> Result<CSeq<'_>, ScanError> {
            const MALFORMED: ScanError = ScanError::MalformedHeader("CSeq");
            let value = trim_lws(value);
            let digits = value.iter().take_while(|b| b.is_ascii_digit()).count();
            let rest = value.get(digits..).unwrap_or_default();
            let spaces = rest.iter().take_while(|&&b| is_lws(b)).count();
            let method_token = rest.get(spaces..).unwrap_or_default();
            if digits == 0 || spaces == 0 || method_token.is_empty() {
                return Err(MALFORMED);
            }
            let sequence = value
                .get(..digits)
                .and_then(|digits| parse_decimal(digits, u64::from(u32::MAX)))
                .and_then(|n| u32::try_from(n).ok())
                .ok_or(MALFORMED)?;
            let method = method(method_token).ok_or(MALFORMED)?;
            Ok(CSeq { sequence, method })
        }

        pub(super) fn uri_scheme(uri: &[u8]) -> Option<(&[u8], &[u8])> {
            if let Some(&[s, i, p, b':']) = uri.first_chunk::<4>()
                && [s | 0x20, i | 0x20, p | 0x20] == *b"sip"
            {
                return Some((uri.get(..3)?, uri.get(4..).unwrap_or_default()));
            }
            let (first, others) = uri.split_first()?;
            let colon = 1 + others
                .iter()
                .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
                .count();
            if !first.is_ascii_alphabetic() || uri.get(colon) != Some(&b':') {
                return None;
            }
            Some((uri.get(..colon)?, uri.get(colon + 1..).unwrap_or_default()))
        }

        pub(super) fn uri_user(uri: &[u8]) -> Option<&[u8]> {
            let (scheme, rest) = uri_scheme(uri)?;
            let user =
                if scheme.eq_ignore_ascii_case(b"sip") || scheme.eq_ignore_ascii_case(b"sips") {
                    let at = rest.iter().position(|&b| b == b'@')?;
                    let userinfo = rest.get(..at)?;
                    userinfo.split(|&b| b == b':').next()?
                } else if scheme.eq_ignore_ascii_case(b"tel") {
                    rest.split(|&b| b == b';' || b == b'?').next()?
                } else {
                    return None;
                };
            (!user.is_empty()).then_some(user)
        }
    }

    /// Every rewritten parser accepts and refuses what its predecessor did, and returns
    /// the same slices, over every one-byte change of the seeds (see `variants`).
    /// Vias of the plain shape: transports, hosts, ports, parameter orders and cases, and
    /// lengths after `SIP/2.0/` at and around 16, 32, 48, 64 and 128.
    fn plain_via_seeds() -> Vec<Vec<u8>> {
        let mut seeds: Vec<Vec<u8>> = [
            &b"SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-524287-1---a3f2c9e1d7b04c55;rport"[..],
            b"SIP/2.0/TCP a.example.com:5061;branch=z9hG4bK.1;received=192.0.2.44;rport=5060",
            b"SIP/2.0/TLS pbx-1.carrier.example.net;rport;branch=z9hG4bKabc-DEF.9",
            b"SIP/2.0/SCTP 10.0.0.1:1;BRANCH=z9hG4bK7;RPORT;RECEIVED=10.1.1.1;ttl=3;maddr=h.x",
            b"SIP/2.0/WS h.example:80;received=a;received=b;branch=x;branch=y;rport=1;rport",
            b"sip/2.0/wss Host.Example.ORG:65535;Branch=z9hG4bK-;Rport=65535;Received=h",
            b"Sip/2.0/Udp 198.51.100.7:5060;branch=z9hG4bK776;rport;received=192.0.2.1",
            b"SIP/2.0/UDPX h:5060;x;y=1;branch=z9hG4bK5;rport=5060;rport=6;received=1.2.3.4",
            b"SIP/2.0/udp 203.0.113.10;branch=z9hG4bK1",
        ]
        .iter()
        .map(|seed| seed.to_vec())
        .collect();
        for len in [
            15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 127, 128, 129,
        ] {
            // A longer host, or a longer branch.
            let mut seed = b"SIP/2.0/UDP a".to_vec();
            seed.resize(8 + len - 5, b'b');
            seed.extend(b":5060");
            seeds.push(seed);
            if len >= 31 {
                let mut seed = b"SIP/2.0/UDP 1.2.3.4:5060;branch=z9hG4bK".to_vec();
                seed.resize(8 + len, b'c');
                seeds.push(seed);
            }
        }
        seeds
    }

    #[test]
    fn plain_vias_take_the_fast_path() {
        for seed in plain_via_seeds() {
            let rest = &seed[8..];
            if (16..=128).contains(&rest.len()) {
                let fast = Via::parse_plain(rest);
                assert!(fast.is_some(), "{:?}", String::from_utf8_lossy(&seed));
                assert_eq!(fast.map(Ok), Some(before::via(&seed)));
            } else {
                assert_eq!(Via::parse_plain(rest), None);
            }
        }
    }

    mod plain_vias {
        use super::before;
        use crate::sip::scan::Via;
        use proptest::prelude::*;

        const PLAIN: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.";
        const DIGITS: &[u8] = b"0123456789";
        /// What breaks the plain shape, or changes what it says.
        const ODD: &[u8] = b" \t\r\n:;=,\"<>[]/@!%*_+`'~\\\x00\x7f\x80\xff0a.-";

        fn run(bytes: &'static [u8], max: usize) -> impl Strategy<Value = Vec<u8>> {
            prop::collection::vec(prop::sample::select(bytes), 0..=max)
        }

        fn name() -> impl Strategy<Value = Vec<u8>> {
            let known = prop::sample::select(
                &[
                    "branch", "BRANCH", "Branch", "rport", "RPORT", "received", "Received", "ttl",
                    "maddr", "branchx", "rpor", "receive",
                ][..],
            )
            .prop_map(|name| name.as_bytes().to_vec());
            prop_oneof![3 => known, 1 => run(PLAIN, 10)]
        }

        fn value() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![run(PLAIN, 40), run(DIGITS, 7)]
        }

        /// `SIP/2.0/transport host[:port](;name[=value])*`, most of them plain.
        fn via() -> impl Strategy<Value = Vec<u8>> {
            let transport = prop_oneof![
                prop::sample::select(&["UDP", "udp", "Tcp", "TLS", "SCTP", "ws", "WSS", "wsx"][..])
                    .prop_map(|name| name.as_bytes().to_vec()),
                run(PLAIN, 5),
            ];
            let params = prop::collection::vec((name(), prop::option::of(value())), 0..6);
            (
                prop::sample::select(&["SIP/2.0/", "sip/2.0/", "SIP/2.1/"][..]),
                transport,
                run(PLAIN, 30),
                prop::option::of(run(DIGITS, 7)),
                params,
            )
                .prop_map(|(protocol, transport, host, port, params)| {
                    let mut via = protocol.as_bytes().to_vec();
                    via.extend(transport);
                    via.push(b' ');
                    via.extend(host);
                    if let Some(port) = port {
                        via.push(b':');
                        via.extend(port);
                    }
                    for (name, value) in params {
                        via.push(b';');
                        via.extend(name);
                        if let Some(value) = value {
                            via.push(b'=');
                            via.extend(value);
                        }
                    }
                    via
                })
        }

        /// A plain Via with a few bytes replaced, inserted or taken out.
        fn near_plain() -> impl Strategy<Value = Vec<u8>> {
            let edit = (
                any::<prop::sample::Index>(),
                prop::sample::select(ODD),
                0..3u8,
            );
            (via(), prop::collection::vec(edit, 1..4)).prop_map(|(mut via, edits)| {
                for (index, byte, kind) in edits {
                    let at = index.index(via.len() + 1);
                    match kind {
                        0 => via.insert(at, byte),
                        1 if at < via.len() => via[at] = byte,
                        _ if at < via.len() => {
                            via.remove(at);
                        }
                        _ => via.push(byte),
                    }
                }
                via
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: 4096,
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            #[test]
            fn plain_vias_parse_as_before(via in via()) {
                prop_assert_eq!(Via::parse(&via), before::via(&via));
            }

            #[test]
            fn near_plain_vias_parse_as_before(via in near_plain()) {
                prop_assert_eq!(Via::parse(&via), before::via(&via));
            }
        }
    }

    #[test]
    fn rewritten_parsers_read_what_their_predecessors_read() {
        for seed in [
            &b"SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-524287-1---a3f2c9e1d7b04c55;rport"[..],
            b"SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK776;rport;received=192.0.2.1",
            b" sip/2.0/tls [2001:db8::1]:5061 ;branch=z9hG4bKx;received=1.2.3.4 ;rport=5060",
            b"SIP / 2.0 / TCP h.example\r\n :\t65535 ; BRANCH = \"q\\\"x\" ;rport;rport=7",
            b"SIP/2.0/WSS host:0;x;branch;received",
            b"SIP/2.0/UDP h:65536;branch=z9hG4bK1",
            b"SIP/2.0/UDP h:005060;rport=0000000000000000000000005060",
        ] {
            for via in variants(seed) {
                assert_eq!(Via::parse(&via), before::via(&via), "{via:?}");
            }
        }
        // The plain shape, which `Via::parse_plain` reads (`plain_vias_take_the_fast_path`
        // holds that it does), and its neighbours, which it reads or leaves.
        for seed in plain_via_seeds() {
            for via in variants(&seed) {
                assert_eq!(Via::parse(&via), before::via(&via), "{via:?}");
            }
        }
        for seed in [
            &b"\"+4915112345678\" <sip:+4915112345678@sip.carrier.example.net;user=phone>;tag=as7d8f6a2e"[..],
            b"<sip:+4930901820@192.0.2.10;user=phone>",
            b"<sip:+4915112345678@203.0.113.10:5060;transport=udp>",
            b" \"A \\\"B\\\" C\"\t<sip:x@example.com> ; tag = \"t;1\" ;lr;expires=60 ",
            b"Bob Smith <sips:bob@example.com>;TAG=x1;foo",
            b"sip:bob@example.com;tag=abc;user=phone",
            b"tel:+15551234567;tag=a;tag=b",
            b"\"\\\\\"<sip:a@b>",
        ] {
            for value in variants(seed) {
                assert_eq!(
                    NameAddr::parse(&value),
                    before::name_addr(&value),
                    "{value:?}"
                );
                assert_eq!(super::quoted_string(&value), before::quoted_string(&value));
                let params: Vec<_> = Params::new(&value).collect();
                let reference: Vec<_> = before::params_of(&value).collect();
                assert_eq!(params, reference, "{value:?}");
                assert_eq!(generic_param(&value), before::generic_param(&value));
                assert_eq!(uri_user(&value), before::uri_user(&value), "{value:?}");
                assert_eq!(uri_scheme(&value), before::uri_scheme(&value));
            }
        }
        for seed in [
            &b";branch=z9hG4bK-524287-1---a3f2c9e1d7b04c55;rport"[..],
            b" ; tag = \"a\\\"b\" ;x=[2001:db8::1];lr ",
            b";expires=60;q=0.5\r\n ;a=\"\"",
            b";a=b;c",
        ] {
            for params in variants(seed) {
                let ours: Vec<_> = Params::new(&params).collect();
                let reference: Vec<_> = before::params_of(&params).collect();
                assert_eq!(ours, reference, "{params:?}");
                assert_eq!(generic_param(&params), before::generic_param(&params));
                assert_eq!(
                    super::quoted_string(&params),
                    before::quoted_string(&params)
                );
            }
        }
        for seed in [
            &b"203.0.113.10:5060;branch=z9hG4bK1"[..],
            b"[2001:db8::1] : 00065535 ;received=1.2.3.4",
            b"host:0;x",
            b"a-b.example:99999",
        ] {
            for sent in variants(seed) {
                assert_eq!(sent_by(&sent), before::sent_by(&sent), "{sent:?}");
            }
        }
        for seed in [
            &b"102 INVITE"[..],
            b"4294967295 OPTIONS",
            b"4294967296 ACK",
            b" 0000000000001\t\r\n x-Foo.bar ",
            b"1 SUBSCRIBE",
        ] {
            for value in variants(seed) {
                assert_eq!(CSeq::parse(&value), before::cseq(&value), "{value:?}");
                assert_eq!(Method::parse(&value), before::method(&value), "{value:?}");
            }
        }
        for seed in [
            &b"sip:+4930901820@192.0.2.10:5060;user=phone"[..],
            b"sips:alice:secret@example.com",
            b"SIP:a@b",
            b"tel:+1-555;x?y",
            b"Tel:+1",
            b"sipx:a@b",
        ] {
            for uri in variants(seed) {
                assert_eq!(uri_user(&uri), before::uri_user(&uri), "{uri:?}");
                assert_eq!(uri_scheme(&uri), before::uri_scheme(&uri), "{uri:?}");
            }
        }
        for seed in [
            &b"65535"[..],
            b"4294967295",
            b"0000000000000000000070",
            b"255",
        ] {
            for digits in variants(seed) {
                for max in [255, u64::from(u16::MAX), u64::from(u32::MAX)] {
                    assert_eq!(
                        parse_decimal(&digits, max),
                        before::parse_decimal(&digits, max),
                        "{digits:?}"
                    );
                    assert_eq!(
                        decimal_u32(&digits, max as u32).map(u64::from),
                        before::parse_decimal(&digits, max),
                        "{digits:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn hand_written_parsers_agree_with_their_grammar() {
        for seed in [
            &b"INVITE sip:+15551234567@trunk.example.com;user=phone SIP/2.0"[..],
            b"OPTIONS sips:a@[2001:db8::1]:5061 sip/2.0",
            b"FOO tel:+1-555 SIP/3.1",
        ] {
            for line in variants(seed) {
                assert_eq!(
                    super::request_line(&line),
                    request_line_nom(&line),
                    "{line:?}"
                );
            }
        }
        for seed in [
            &b";branch=z9hG4bK776;rport;received=192.0.2.1"[..],
            b" ; tag = \"a\\\"b\" ;x=[2001:db8::1];lr",
            b";expires=60;q=0.5",
        ] {
            for params in variants(seed) {
                let nom = generic_param_nom(&params).ok();
                assert_eq!(generic_param(&params), nom, "{params:?}");
            }
        }
        // The list search Transport::parse replaced.
        fn transport_reference(token: &[u8]) -> Transport<'_> {
            [
                (&b"UDP"[..], Transport::Udp),
                (b"TCP", Transport::Tcp),
                (b"TLS", Transport::Tls),
                (b"SCTP", Transport::Sctp),
                (b"WS", Transport::Ws),
                (b"WSS", Transport::Wss),
            ]
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(token))
            .map_or(Transport::Other(token), |(_, transport)| transport)
        }
        for seed in [&b"udp"[..], b"TcP", b"tls", b"SCTP", b"ws", b"Wss", b"XYZ"] {
            for token in variants(seed) {
                assert_eq!(
                    Transport::parse(&token),
                    transport_reference(&token),
                    "{token:?}"
                );
            }
        }
        for seed in [&b"4294967295 INVITE"[..], b" 1\t\r\n x-Foo.bar ", b"01 ACK"] {
            for cseq in variants(seed) {
                assert_eq!(CSeq::parse(&cseq), CSeq::parse_nom(&cseq), "{cseq:?}");
            }
        }
        for seed in [
            &b"198.51.100.7:5060;branch=z9hG4bK776;rport"[..],
            b"[2001:db8::1] : 5061 ;received=1.2.3.4",
            b"h.example\r\n :\t65535, SIP/2.0/UDP x",
            b"host:0;x",
            b"host:;x",
        ] {
            for sent in variants(seed) {
                let nom = sent_by_nom(&sent)
                    .ok()
                    .map(|(rest, (host, port))| (rest, host, port));
                assert_eq!(sent_by(&sent), nom, "{sent:?}");
            }
        }
        for seed in [
            &b"SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK776;rport"[..],
            b"sip/2.0/tls [2001:db8::1]:5061 ;branch=z9hG4bKx;received=1.2.3.4",
        ] {
            for via in variants(seed) {
                // A space inside sent-protocol takes the grammar's path, which must read
                // the same entry.
                let slow = String::from_utf8_lossy(&via).replacen("/2.0/", "/ 2.0 /", 1);
                if slow.len() == via.len() + 2 {
                    assert_eq!(Via::parse(&via), Via::parse(slow.as_bytes()), "{via:?}");
                }
            }
        }
    }

    // --- start line ------------------------------------------------------------------

    #[test]
    fn request_line() {
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        let message = scan(INVITE, &mut storage).unwrap();
        assert_eq!(
            message.start_line(),
            StartLine::Request {
                method: Method::Invite,
                uri: b"sip:+15551234567@trunk.example.com;user=phone",
            }
        );
        assert!(message.is_request());
        assert_eq!(message.method(), Some(Method::Invite));
        assert_eq!(message.status_code(), None);
        assert_eq!(message.request_uri_user(), Some(&b"+15551234567"[..]));
        assert_eq!(message.headers().len(), 10);
        assert_eq!(message.body(), b"v=0\r\n");
        assert_eq!(message.message_len(), INVITE.len());
    }

    #[test]
    fn response_line() {
        let bytes = b"SIP/2.0 180 Ringing\r\nContent-Length: 0\r\n\r\n";
        let mut storage = [EMPTY_HEADER; 4];
        let message = scan(bytes, &mut storage).unwrap();
        assert_eq!(
            message.start_line(),
            StartLine::Response {
                code: 180,
                reason: b"Ringing"
            }
        );
        assert_eq!(message.status_code(), Some(180));
        assert_eq!(message.method(), None);
        assert_eq!(message.request_uri(), None);
        assert_eq!(message.request_uri_user(), None);

        let mut storage = [EMPTY_HEADER; 4];
        let empty_reason = scan(b"SIP/2.0 200 \r\n\r\n", &mut storage).unwrap();
        assert_eq!(
            empty_reason.start_line(),
            StartLine::Response {
                code: 200,
                reason: b""
            }
        );
        let mut storage = [EMPTY_HEADER; 4];
        let utf8_reason = "SIP/2.0 486 Besetzt – später\r\n\r\n".as_bytes();
        assert!(scan(utf8_reason, &mut storage).is_ok());
    }

    #[test]
    fn bad_status_lines() {
        for line in [
            "SIP/2.0 099 Too Low\r\n\r\n",
            "SIP/2.0 700 Too High\r\n\r\n",
            "SIP/2.0 20 OK\r\n\r\n",
            "SIP/2.0 2000 OK\r\n\r\n",
            "SIP/2.0 200\r\n\r\n",
            "SIP/2.0  200 OK\r\n\r\n",
            "SIP/2.0 2x0 OK\r\n\r\n",
        ] {
            assert_eq!(
                scan_error(line.as_bytes()),
                ScanError::StartLine,
                "{line:?}"
            );
        }
        assert_eq!(
            scan_error(b"SIP/2.0 200 O\x00K\r\n\r\n"),
            ScanError::StartLine
        );
    }

    #[test]
    fn version_is_case_insensitive() {
        // RFC 3261 §7.1: "The SIP-Version string is case-insensitive".
        let mut storage = [EMPTY_HEADER; 4];
        assert!(scan(b"OPTIONS sip:a.example.com sip/2.0\r\n\r\n", &mut storage).is_ok());
        let mut storage = [EMPTY_HEADER; 4];
        assert!(scan(b"Sip/2.0 200 OK\r\n\r\n", &mut storage).is_ok());
    }

    #[test]
    fn other_versions() {
        for (line, error) in [
            (
                "OPTIONS sip:a.example.com SIP/3.0\r\n\r\n",
                ScanError::UnsupportedVersion,
            ),
            (
                "OPTIONS sip:a.example.com SIP/2.00\r\n\r\n",
                ScanError::UnsupportedVersion,
            ),
            ("SIP/1.0 200 OK\r\n\r\n", ScanError::UnsupportedVersion),
            (
                "OPTIONS sip:a.example.com HTTP/1.1\r\n\r\n",
                ScanError::StartLine,
            ),
            (
                "OPTIONS sip:a.example.com SIP/2\r\n\r\n",
                ScanError::StartLine,
            ),
            (
                "OPTIONS sip:a.example.com SIP/2.0 \r\n\r\n",
                ScanError::StartLine,
            ),
            ("OPTIONS sip:a.example.com\r\n\r\n", ScanError::StartLine),
        ] {
            assert_eq!(scan_error(line.as_bytes()), error, "{line:?}");
        }
    }

    #[test]
    fn methods_are_case_sensitive_tokens() {
        let cases: [(&[u8], Method<'_>); 16] = [
            (b"INVITE", Method::Invite),
            (b"ACK", Method::Ack),
            (b"BYE", Method::Bye),
            (b"CANCEL", Method::Cancel),
            (b"OPTIONS", Method::Options),
            (b"REGISTER", Method::Register),
            (b"PRACK", Method::Prack),
            (b"SUBSCRIBE", Method::Subscribe),
            (b"NOTIFY", Method::Notify),
            (b"PUBLISH", Method::Publish),
            (b"INFO", Method::Info),
            (b"REFER", Method::Refer),
            (b"MESSAGE", Method::Message),
            (b"UPDATE", Method::Update),
            (b"invite", Method::Other(b"invite")),
            (b"FOO-BAR.1", Method::Other(b"FOO-BAR.1")),
        ];
        for (token, method) in cases {
            assert_eq!(Method::parse(token), Some(method));
            assert_eq!(method.as_bytes(), token);
        }
        assert_eq!(Method::parse(b""), None);
        assert_eq!(Method::parse(b"IN VITE"), None);
        assert_eq!(Method::parse(b"INV@TE"), None);
    }

    #[test]
    fn unknown_method_is_other() {
        let bytes = b"FROBNICATE sip:a@b.example.com SIP/2.0\r\nContent-Length: 0\r\n\r\n";
        let mut storage = [EMPTY_HEADER; 4];
        let message = scan(bytes, &mut storage).unwrap();
        assert_eq!(message.method(), Some(Method::Other(b"FROBNICATE")));
    }

    #[test]
    fn bad_request_lines() {
        for line in [
            "INVITE  sip:a@b SIP/2.0\r\n\r\n",
            "INVITE sip:a@b  SIP/2.0\r\n\r\n",
            "INV@TE sip:a@b SIP/2.0\r\n\r\n",
            "INVITE 1234 SIP/2.0\r\n\r\n",
            "INVITE <sip:a@b> SIP/2.0\r\n\r\n",
            "INVITE sip:a@b\tSIP/2.0\r\n\r\n",
            " INVITE sip:a@b SIP/2.0\r\n\r\n",
            "INVITE sip:a\x00@b SIP/2.0\r\n\r\n",
            "INVITE\r\n\r\n",
        ] {
            assert_eq!(
                scan_error(line.as_bytes()),
                ScanError::StartLine,
                "{line:?}"
            );
        }
    }

    // --- headers ---------------------------------------------------------------------

    #[test]
    fn compact_forms() {
        let cases: [(&[u8], HeaderName<'_>); 20] = [
            (b"a", HeaderName::AcceptContact),
            (b"b", HeaderName::ReferredBy),
            (b"c", HeaderName::ContentType),
            (b"d", HeaderName::RequestDisposition),
            (b"e", HeaderName::ContentEncoding),
            (b"f", HeaderName::From),
            (b"i", HeaderName::CallId),
            (b"j", HeaderName::RejectContact),
            (b"k", HeaderName::Supported),
            (b"l", HeaderName::ContentLength),
            (b"m", HeaderName::Contact),
            (b"n", HeaderName::IdentityInfo),
            (b"o", HeaderName::Event),
            (b"r", HeaderName::ReferTo),
            (b"s", HeaderName::Subject),
            (b"t", HeaderName::To),
            (b"u", HeaderName::AllowEvents),
            (b"V", HeaderName::Via),
            (b"x", HeaderName::SessionExpires),
            (b"y", HeaderName::Identity),
        ];
        for (name, expected) in cases {
            assert_eq!(HeaderName::parse(name), expected, "{:?}", name);
        }
        assert_eq!(HeaderName::parse(b"g"), HeaderName::Other(b"g"));

        let bytes = request(
            "v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKc\r\nf: <sip:a@b.example>;tag=1\r\n\
             t: <sip:c@d.example>\r\ni: compact@192.0.2.1\r\nm: <sip:a@192.0.2.1>\r\n\
             k: timer\r\nl: 0\r\n",
        );
        let mut storage = [EMPTY_HEADER; 8];
        let message = scan(&bytes, &mut storage).unwrap();
        assert_eq!(message.top_via().unwrap().branch, Some(&b"z9hG4bKc"[..]));
        assert_eq!(message.from().unwrap().tag, Some(&b"1"[..]));
        assert_eq!(message.to().unwrap().uri, b"sip:c@d.example");
        assert_eq!(message.call_id().unwrap(), b"compact@192.0.2.1");
        assert_eq!(message.header(HeaderName::Supported), Some(&b"timer"[..]));
        assert_eq!(message.content_length(), Some(0));
        assert!(message.contact().unwrap().is_some());
    }

    /// The linear search `HeaderName::parse` replaced, as the reference it must agree with.
    fn parse_name_linearly(name: &[u8]) -> HeaderName<'_> {
        if let [letter] = name {
            return HeaderName::compact(*letter).unwrap_or(HeaderName::Other(name));
        }
        KNOWN_HEADERS
            .iter()
            .find(|known| known.canonical().as_bytes().eq_ignore_ascii_case(name))
            .copied()
            .unwrap_or(HeaderName::Other(name))
    }

    #[test]
    fn name_lookup_agrees_with_a_linear_search() {
        let mut names: Vec<Vec<u8>> = Vec::new();
        for known in &KNOWN_HEADERS {
            let canonical = known.canonical().as_bytes();
            names.push(canonical.to_vec());
            // One byte changed anywhere, and one byte more or less.
            for index in 0..canonical.len() {
                for replacement in [b'x', b'-', b'A', b'z', canonical[index] ^ 0x20, b'0'] {
                    let mut name = canonical.to_vec();
                    name[index] = replacement;
                    names.push(name);
                }
            }
            names.push(canonical[1..].to_vec());
            names.push([canonical, b"s"].concat());
        }
        for byte in 0..=255u8 {
            names.push(vec![byte]);
            names.push(vec![byte, b'o']);
        }
        names.push(Vec::new());
        for name in &names {
            let parsed = HeaderName::parse(name);
            assert_eq!(parsed, parse_name_linearly(name), "{name:?}");
            let lean = match parsed {
                HeaderName::Via
                | HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::CSeq
                | HeaderName::MaxForwards
                | HeaderName::ContentLength
                | HeaderName::Contact => parsed,
                _ => HeaderName::Other(name),
            };
            assert_eq!(lean_name(name), lean, "{name:?}");
        }
        for seed in 1..2_000 {
            let name = garbage(1 + (seed as usize % 20), seed);
            assert_eq!(HeaderName::parse(&name), parse_name_linearly(&name));
        }
    }

    #[test]
    fn names_are_case_insensitive() {
        for known in &KNOWN_HEADERS {
            let canonical = known.canonical();
            assert_eq!(HeaderName::parse(canonical.as_bytes()), *known);
            let upper = canonical.to_ascii_uppercase();
            assert_eq!(HeaderName::parse(upper.as_bytes()), *known);
            let lower = canonical.to_ascii_lowercase();
            assert_eq!(HeaderName::parse(lower.as_bytes()), *known);
        }
        assert_eq!(
            HeaderName::Other(b"X-Custom"),
            HeaderName::Other(b"x-CUSTOM")
        );
        assert_ne!(HeaderName::Other(b"Via"), HeaderName::Via);

        let bytes = request("VIA: SIP/2.0/UDP h.example\r\ncAlL-iD: x@y\r\nX-Custom: 1\r\n");
        let mut storage = [EMPTY_HEADER; 8];
        let message = scan(&bytes, &mut storage).unwrap();
        assert_eq!(message.via_count(), 1);
        assert_eq!(message.call_id().unwrap(), b"x@y");
        assert_eq!(
            message.header(HeaderName::Other(b"x-custom")),
            Some(&b"1"[..])
        );
        assert_eq!(message.header(HeaderName::Other(b"X-Missing")), None);
    }

    #[test]
    fn values_are_trimmed() {
        let bytes = request("Call-ID   :   spaced@host  \t\r\nSubject:\r\nX-Tab:\tv\r\n");
        let mut storage = [EMPTY_HEADER; 8];
        let message = scan(&bytes, &mut storage).unwrap();
        assert_eq!(message.call_id().unwrap(), b"spaced@host");
        assert_eq!(message.header(HeaderName::Subject), Some(&b""[..]));
        assert_eq!(message.header(HeaderName::Other(b"X-Tab")), Some(&b"v"[..]));
    }

    #[test]
    fn folded_headers() {
        let bytes = request(
            "Subject: I know you're there,\r\n     pay attention!\r\n\
             From: \"Folded\"\r\n\t<sip:f@example.com>\r\n ;tag=ff\r\n\
             CSeq: 8\r\n  INVITE\r\n",
        );
        let mut storage = [EMPTY_HEADER; 8];
        let message = scan(&bytes, &mut storage).unwrap();
        let subject = message.header(HeaderName::Subject).unwrap();
        assert_eq!(subject, b"I know you're there,\r\n     pay attention!");
        assert!(eq_unfolded(subject, b"I know you're there, pay attention!"));
        let unfolded: Vec<u8> = message.headers()[0].unfolded().collect();
        assert_eq!(unfolded, b"I know you're there, pay attention!");
        let from = message.from().unwrap();
        assert_eq!(from.display_name, Some(&b"Folded"[..]));
        assert_eq!(from.uri, b"sip:f@example.com");
        assert_eq!(from.tag, Some(&b"ff"[..]));
        assert_eq!(
            message.cseq().unwrap(),
            CSeq {
                sequence: 8,
                method: Method::Invite
            }
        );
    }

    #[test]
    fn unfold_reads_each_fold_as_one_space() {
        let cases: [(&[u8], &[u8]); 7] = [
            (b"a \r\n\t b", b"a b"),
            (b"a\r\n b", b"a b"),
            (b"a\n b", b"a b"),
            (b"a  b", b"a  b"),
            (b"a\t b", b"a\t b"),
            (b"", b""),
            (b"plain", b"plain"),
        ];
        for (raw, expected) in cases {
            assert_eq!(unfold(raw).collect::<Vec<u8>>(), expected, "{raw:?}");
            assert!(eq_unfolded(raw, expected));
        }
        assert!(eq_unfolded_ignore_case(b"Foo\r\n BAR", b"foo bar"));
        assert!(!eq_unfolded(b"Foo\r\n BAR", b"foo bar"));
        assert!(!eq_unfolded(b"a\r\n b", b"a  b"));
    }

    #[test]
    fn header_lookup() {
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        let message = scan(INVITE, &mut storage).unwrap();
        let vias: Vec<&[u8]> = message.header_values(HeaderName::Via).collect();
        assert_eq!(vias.len(), 2);
        assert_eq!(
            vias[1],
            b"SIP/2.0/TCP proxy.example.net;branch=z9hG4bKnashds8;received=192.0.2.3"
        );
        assert_eq!(
            message.header(HeaderName::ContentType),
            Some(&b"application/sdp"[..])
        );
        assert_eq!(message.headers()[0].name, HeaderName::Via);
        assert_eq!(message.header(HeaderName::Route), None);
    }

    // --- accessors -------------------------------------------------------------------

    #[test]
    fn top_via_and_vias() {
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        let message = scan(INVITE, &mut storage).unwrap();
        assert_eq!(
            message.top_via().unwrap(),
            Via {
                transport: Transport::Udp,
                sent_by_host: b"198.51.100.7",
                sent_by_port: Some(5060),
                branch: Some(b"z9hG4bK776asdhds"),
                rport: Rport::Empty,
                received: None,
                params: b";branch=z9hG4bK776asdhds;rport",
                rport_request: Some(b"rport"),
            }
        );
        assert_eq!(message.via_count(), 2);
        let second = message.vias().nth(1).unwrap().unwrap();
        assert_eq!(second.transport, Transport::Tcp);
        assert_eq!(second.sent_by_host, b"proxy.example.net");
        assert_eq!(second.sent_by_port, None);
        assert_eq!(second.received, Some(&b"192.0.2.3"[..]));
        assert_eq!(second.rport, Rport::Absent);
    }

    #[test]
    fn via_forms() {
        let via =
            Via::parse(b"SIP/2.0/UDP 192.0.2.1:5060;rport=5061;received=192.0.2.9;branch=z9hG4bKx")
                .unwrap();
        assert_eq!(via.rport, Rport::Value(5061));
        assert_eq!(via.received, Some(&b"192.0.2.9"[..]));
        assert_eq!(via.branch, Some(&b"z9hG4bKx"[..]));

        let via =
            Via::parse(b"SIP / 2.0 / tls  host.example.com : 5061 ; branch = z9hG4bKsp").unwrap();
        assert_eq!(via.transport, Transport::Tls);
        assert_eq!(via.sent_by_host, b"host.example.com");
        assert_eq!(via.sent_by_port, Some(5061));
        assert_eq!(via.branch, Some(&b"z9hG4bKsp"[..]));

        let via = Via::parse(b"SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKws;alias").unwrap();
        assert_eq!(via.transport, Transport::Wss);
        assert_eq!(via.params, b";branch=z9hG4bKws;alias");

        let via = Via::parse(b"SIP/2.0/FOO host;branch=\"quoted\"").unwrap();
        assert_eq!(via.transport, Transport::Other(b"FOO"));
        assert_eq!(via.branch, Some(&b"\"quoted\""[..]));
    }

    #[test]
    fn ipv6_via_sent_by() {
        let via =
            Via::parse(b"SIP/2.0/UDP [2001:db8::9]:5070;branch=z9hG4bKv6;received=2001:db8::9:1")
                .unwrap();
        assert_eq!(via.sent_by_host, b"[2001:db8::9]");
        assert_eq!(via.sent_by_port, Some(5070));
        assert_eq!(via.received, Some(&b"2001:db8::9:1"[..]));

        let via = Via::parse(b"SIP/2.0/TCP [::ffff:192.0.2.1];branch=z9hG4bKm").unwrap();
        assert_eq!(via.sent_by_host, b"[::ffff:192.0.2.1]");
        assert_eq!(via.sent_by_port, None);
    }

    #[test]
    fn malformed_vias() {
        for value in [
            &b"SIP/2.0/UDP"[..],
            b"SIP/2.0/UDP ",
            b"SIP/3.0/UDP host",
            b"HTTP/2.0/UDP host",
            b"SIP/2.0 host",
            b"SIP/2.0/UDPhost",
            b"SIP/2.0/UDP host:70000",
            b"SIP/2.0/UDP host:0",
            b"SIP/2.0/UDP host:",
            b"SIP/2.0/UDP [2001:db8::1",
            b"SIP/2.0/UDP []",
            b"SIP/2.0/UDP [zz::1]",
            b"SIP/2.0/UDP host;branch",
            b"SIP/2.0/UDP host;received",
            b"SIP/2.0/UDP host;rport=abc",
            b"SIP/2.0/UDP host;rport=",
            b"SIP/2.0/UDP host garbage",
            b"SIP/2.0/UDP host;;",
            b"SIP/2.0/UDP ho_st",
        ] {
            assert_eq!(
                Via::parse(value),
                Err(ScanError::MalformedHeader("Via")),
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
        let bytes = request("Via: ,\r\n");
        let mut storage = [EMPTY_HEADER; 4];
        let message = scan(&bytes, &mut storage).unwrap();
        assert_eq!(message.via_count(), 0);
        assert_eq!(message.top_via(), Err(ScanError::MalformedHeader("Via")));
    }

    #[test]
    fn via_count_spans_headers_and_commas() {
        let bytes = request(
            "Via: SIP/2.0/UDP a.example;branch=z9hG4bK1, SIP/2.0/UDP b.example;branch=z9hG4bK2\r\n\
             Via: SIP/2.0/UDP c.example;branch=z9hG4bK3\r\n",
        );
        let mut storage = [EMPTY_HEADER; 4];
        let message = scan(&bytes, &mut storage).unwrap();
        assert_eq!(message.via_count(), 3);
        let hosts: Vec<&[u8]> = message
            .vias()
            .map(|via| via.unwrap().sent_by_host)
            .collect();
        assert_eq!(hosts, [&b"a.example"[..], b"b.example", b"c.example"]);
        assert_eq!(message.top_via().unwrap().sent_by_host, b"a.example");
    }

    #[test]
    fn missing_headers() {
        let bytes = request("Content-Length: 0\r\n");
        let mut storage = [EMPTY_HEADER; 4];
        let message = scan(&bytes, &mut storage).unwrap();
        assert_eq!(message.top_via(), Err(ScanError::MissingHeader("Via")));
        assert_eq!(message.from(), Err(ScanError::MissingHeader("From")));
        assert_eq!(message.to(), Err(ScanError::MissingHeader("To")));
        assert_eq!(message.call_id(), Err(ScanError::MissingHeader("Call-ID")));
        assert_eq!(message.cseq(), Err(ScanError::MissingHeader("CSeq")));
        assert_eq!(message.max_forwards(), Ok(None));
        assert_eq!(message.contact(), Ok(None));
        assert_eq!(message.contacts().count(), 0);
        assert_eq!(message.via_count(), 0);
        assert_eq!(message.vias().count(), 0);
    }

    #[test]
    fn name_addr_forms() {
        let quoted = NameAddr::parse(
            b"\"Alice Example\" <sip:+4915112345678@carrier.example.net;user=phone>;tag=8a7f3c21",
        )
        .unwrap();
        assert_eq!(
            quoted,
            NameAddr {
                display_name: Some(b"Alice Example"),
                uri: b"sip:+4915112345678@carrier.example.net;user=phone",
                tag: Some(b"8a7f3c21"),
                params: b";tag=8a7f3c21",
            }
        );

        assert_eq!(quoted.user(), Some(&b"+4915112345678"[..]));

        let tokens = NameAddr::parse(b"Bob Smith <sip:bob@example.com>").unwrap();
        assert_eq!(tokens.display_name, Some(&b"Bob Smith"[..]));
        assert_eq!(tokens.tag, None);
        assert_eq!(tokens.params, b"");

        let bare = NameAddr::parse(b"<sip:bob@example.com>;tag=x1;foo").unwrap();
        assert_eq!(bare.display_name, None);
        assert_eq!(bare.tag, Some(&b"x1"[..]));
        assert_eq!(bare.param(b"FOO").unwrap().value, None);

        // RFC 3261 §20.10: without brackets the parameters belong to the header.
        let addr_spec = NameAddr::parse(b"sip:bob@example.com;tag=abc;user=phone").unwrap();
        assert_eq!(addr_spec.uri, b"sip:bob@example.com");
        assert_eq!(addr_spec.tag, Some(&b"abc"[..]));
        assert_eq!(addr_spec.params, b";tag=abc;user=phone");
        assert_eq!(addr_spec.user(), Some(&b"bob"[..]));

        // ... and inside brackets to the URI: there is no header tag.
        let in_uri = NameAddr::parse(b"<sip:bob@example.com;tag=abc>").unwrap();
        assert_eq!(in_uri.uri, b"sip:bob@example.com;tag=abc");
        assert_eq!(in_uri.tag, None);

        let escaped = NameAddr::parse(b"\"A \\\"B\\\" C\" <sip:x@example.com>").unwrap();
        assert_eq!(escaped.display_name, Some(&br#"A \"B\" C"#[..]));

        let tel = NameAddr::parse(b"<tel:+15551234567;phone-context=example.com>;tag=t").unwrap();
        assert_eq!(tel.user(), Some(&b"+15551234567"[..]));

        let no_space = NameAddr::parse(b"\"Name\"<sip:n@example.com>").unwrap();
        assert_eq!(no_space.display_name, Some(&b"Name"[..]));

        let commas = NameAddr::parse(b"\"Doe, John\" <sip:j@example.com>").unwrap();
        assert_eq!(commas.display_name, Some(&b"Doe, John"[..]));
    }

    #[test]
    fn non_utf8_display_name() {
        let quoted = NameAddr::parse(b"\"Caf\xE9 \xFF\" <sip:cafe@example.com>;tag=l1").unwrap();
        assert_eq!(quoted.display_name, Some(&b"Caf\xE9 \xFF"[..]));
        let unquoted = NameAddr::parse(b"M\xFCller <sip:m@example.com>").unwrap();
        assert_eq!(unquoted.display_name, Some(&b"M\xFCller"[..]));

        let mut bytes = b"OPTIONS sip:a.example.com SIP/2.0\r\nFrom: \"\xC3\x28\xE9\" <sip:x@example.com>;tag=z\r\n\r\n".to_vec();
        let mut storage = [EMPTY_HEADER; 4];
        let message = scan(&bytes, &mut storage).unwrap();
        assert_eq!(
            message.from().unwrap().display_name,
            Some(&b"\xC3\x28\xE9"[..])
        );
        bytes.clear();
    }

    #[test]
    fn malformed_addresses() {
        for value in [
            &b"<sip:a@example.com"[..],
            b"sip-without-scheme",
            b"<sip:a@example.com> garbage",
            b"\"unterminated <sip:a@example.com>",
            b"\"Name\" sip:a@example.com",
            b"<sip:a@example.com>;tag",
            b"<>",
            b"<sip:a b@example.com>",
            b"Na\"me <sip:a@example.com>",
            b"",
        ] {
            assert!(
                NameAddr::parse(value).is_err(),
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
        let bytes = request("From: <sip:a@example.com\r\nTo: broken\r\n");
        let mut storage = [EMPTY_HEADER; 4];
        let message = scan(&bytes, &mut storage).unwrap();
        assert_eq!(message.from(), Err(ScanError::MalformedHeader("From")));
        assert_eq!(message.to(), Err(ScanError::MalformedHeader("To")));
    }

    #[test]
    fn uri_users() {
        let cases: [(&[u8], Option<&[u8]>); 12] = [
            (
                b"sip:+15551234567@[2001:db8::1]:5060;user=phone",
                Some(b"+15551234567"),
            ),
            (b"sip:[2001:db8::1]:5060", None),
            (b"sip:alice@example.com", Some(b"alice")),
            (b"SIPS:alice@example.com", Some(b"alice")),
            (b"sip:alice:secret@example.com", Some(b"alice")),
            (b"sip:example.com;transport=tcp", None),
            (b"sip:@example.com", None),
            (
                b"sip:+1555;phone-context=example.com@example.com",
                Some(b"+1555;phone-context=example.com"),
            ),
            (
                b"tel:+15551234567;phone-context=example.com",
                Some(b"+15551234567"),
            ),
            (b"tel:+15551234567", Some(b"+15551234567")),
            (b"http://example.com/", None),
            (b"no-scheme", None),
        ];
        for (uri, user) in cases {
            assert_eq!(uri_user(uri), user, "{:?}", String::from_utf8_lossy(uri));
        }
        // The two-pass reading it replaced, as the reference, over every one-byte change.
        fn user_reference(uri: &[u8]) -> Option<&[u8]> {
            let (scheme, rest) = uri_scheme(uri)?;
            let user =
                if scheme.eq_ignore_ascii_case(b"sip") || scheme.eq_ignore_ascii_case(b"sips") {
                    let at = rest.iter().position(|&b| b == b'@')?;
                    rest.get(..at)?.split(|&b| b == b':').next()?
                } else if scheme.eq_ignore_ascii_case(b"tel") {
                    rest.split(|&b| b == b';' || b == b'?').next()?
                } else {
                    return None;
                };
            (!user.is_empty()).then_some(user)
        }
        for seed in [
            &b"sip:alice:secret@example.com:5060;transport=tcp"[..],
            b"SIPS:+1555;phone-context=x@[2001:db8::1]",
            b"tel:+15551234567;phone-context=example.com",
        ] {
            for uri in variants(seed) {
                assert_eq!(uri_user(&uri), user_reference(&uri), "{uri:?}");
            }
        }
        assert_eq!(uri_scheme(b"sip:a"), Some((&b"sip"[..], &b"a"[..])));
        assert_eq!(uri_scheme(b"1sip:a"), None);
        assert_eq!(uri_scheme(b":a"), None);
        // The colon search it replaced, as the reference.
        fn reference(uri: &[u8]) -> Option<(&[u8], &[u8])> {
            let colon = memchr(b':', uri)?;
            let scheme = uri.get(..colon)?;
            let (first, others) = scheme.split_first()?;
            let valid = first.is_ascii_alphabetic()
                && others
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
            valid.then(|| (scheme, uri.get(colon + 1..).unwrap_or_default()))
        }
        crate::testing::every_string(b"sSiIpP1+-.:@;\x1a \xff", 5, |uri| {
            assert_eq!(uri_scheme(uri), reference(uri), "{uri:?}");
        });
    }

    #[test]
    fn ipv6_request_uri() {
        let bytes = b"INVITE sip:+15551234567@[2001:db8::1]:5060;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP [2001:db8::20]:5060;branch=z9hG4bK6\r\nContent-Length: 0\r\n\r\n";
        let mut storage = [EMPTY_HEADER; 4];
        let message = scan(bytes, &mut storage).unwrap();
        assert_eq!(
            message.request_uri(),
            Some(&b"sip:+15551234567@[2001:db8::1]:5060;user=phone"[..])
        );
        assert_eq!(message.request_uri_user(), Some(&b"+15551234567"[..]));
        assert_eq!(message.top_via().unwrap().sent_by_host, b"[2001:db8::20]");
    }

    #[test]
    fn call_id_and_cseq() {
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        let message = scan(INVITE, &mut storage).unwrap();
        assert_eq!(
            message.call_id().unwrap(),
            b"a84b4c76e66710@pc33.example.net"
        );
        assert_eq!(
            message.cseq().unwrap(),
            CSeq {
                sequence: 314_159,
                method: Method::Invite
            }
        );
        assert_eq!(
            CSeq::parse(b"4294967295 foo").unwrap(),
            CSeq {
                sequence: u32::MAX,
                method: Method::Other(b"foo")
            }
        );
        for value in [
            &b"abc INVITE"[..],
            b"4294967296 INVITE",
            b"1INVITE",
            b"1 INVITE x",
            b"-1 INVITE",
            b"1",
            b"INVITE",
            b"1 INV@TE",
        ] {
            assert_eq!(
                CSeq::parse(value),
                Err(ScanError::MalformedHeader("CSeq")),
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
        let bytes = request("Call-ID: has space@host\r\n");
        let mut storage = [EMPTY_HEADER; 4];
        let message = scan(&bytes, &mut storage).unwrap();
        assert_eq!(
            message.call_id(),
            Err(ScanError::MalformedHeader("Call-ID"))
        );
        let bytes = request("Call-ID:\r\n");
        let mut storage = [EMPTY_HEADER; 4];
        let message = scan(&bytes, &mut storage).unwrap();
        assert_eq!(
            message.call_id(),
            Err(ScanError::MalformedHeader("Call-ID"))
        );
    }

    #[test]
    fn max_forwards() {
        for (value, expected) in [
            ("0", Ok(Some(0))),
            ("70", Ok(Some(70))),
            ("255", Ok(Some(255))),
            ("0070", Ok(Some(70))),
            ("256", Err(ScanError::MalformedHeader("Max-Forwards"))),
            (
                "99999999999999999999999",
                Err(ScanError::MalformedHeader("Max-Forwards")),
            ),
            ("-1", Err(ScanError::MalformedHeader("Max-Forwards"))),
            ("7 0", Err(ScanError::MalformedHeader("Max-Forwards"))),
            ("", Err(ScanError::MalformedHeader("Max-Forwards"))),
        ] {
            let bytes = request(&format!("Max-Forwards: {value}\r\n"));
            let mut storage = [EMPTY_HEADER; 4];
            let message = scan(&bytes, &mut storage).unwrap();
            assert_eq!(message.max_forwards(), expected, "{value:?}");
        }
    }

    #[test]
    fn content_length_and_body() {
        let head = "OPTIONS sip:a.example.com SIP/2.0\r\n";
        let with =
            |length: &str, body: &str| format!("{head}Content-Length: {length}\r\n\r\n{body}");

        let exact = with("5", "hello");
        let mut storage = [EMPTY_HEADER; 4];
        let message = scan(exact.as_bytes(), &mut storage).unwrap();
        assert_eq!(message.content_length(), Some(5));
        assert_eq!(message.body(), b"hello");
        assert_eq!(message.message_len(), exact.len());

        // RFC 3261 §18.3: bytes past Content-Length in a datagram are discarded.
        let extra = with("2", "hello");
        let mut storage = [EMPTY_HEADER; 4];
        let message = scan(extra.as_bytes(), &mut storage).unwrap();
        assert_eq!(message.body(), b"he");
        assert_eq!(message.message_len(), extra.len() - 3);

        let missing = format!("{head}\r\nrest of datagram");
        let mut storage = [EMPTY_HEADER; 4];
        let message = scan(missing.as_bytes(), &mut storage).unwrap();
        assert_eq!(message.content_length(), None);
        assert_eq!(message.body(), b"rest of datagram");
        let mut storage = [EMPTY_HEADER; 4];
        assert_eq!(
            scan_with(missing.as_bytes(), &mut storage, ScanOptions::STREAM).unwrap_err(),
            ScanError::MissingContentLength
        );

        let compact = format!("{head}l:3\r\n\r\nabc");
        let mut storage = [EMPTY_HEADER; 4];
        assert_eq!(
            scan(compact.as_bytes(), &mut storage).unwrap().body(),
            b"abc"
        );

        let folded = format!("{head}Content-Length:\r\n 3\r\n\r\nabc");
        let mut storage = [EMPTY_HEADER; 4];
        assert_eq!(
            scan(folded.as_bytes(), &mut storage).unwrap().body(),
            b"abc"
        );

        for (length, error) in [
            ("6", ScanError::Truncated),
            ("70000", ScanError::Truncated),
            ("4294967295", ScanError::Truncated),
            ("4294967296", ScanError::InvalidContentLength),
            ("18446744073709551616", ScanError::InvalidContentLength),
            ("-1", ScanError::InvalidContentLength),
            ("+5", ScanError::InvalidContentLength),
            ("5 5", ScanError::InvalidContentLength),
            ("0x5", ScanError::InvalidContentLength),
            ("", ScanError::InvalidContentLength),
        ] {
            assert_eq!(
                scan_error(with(length, "hello").as_bytes()),
                error,
                "{length:?}"
            );
        }
    }

    #[test]
    fn contacts() {
        let bytes = request(
            "Contact: <sip:trunk1@192.0.2.10:5060;transport=udp>;expires=3600\r\n\
             m: \"Bob, Jr\" <sip:bob@192.0.2.11>;expires=60;q=0.5, sip:carol@192.0.2.12\r\n",
        );
        let mut storage = [EMPTY_HEADER; 4];
        let message = scan(&bytes, &mut storage).unwrap();
        let Some(Contact::Address(first)) = message.contact().unwrap() else {
            panic!("expected an address");
        };
        assert_eq!(first.uri, b"sip:trunk1@192.0.2.10:5060;transport=udp");
        assert_eq!(first.user(), Some(&b"trunk1"[..]));
        assert_eq!(first.param(b"expires").unwrap().value, Some(&b"3600"[..]));
        let all: Vec<Contact<'_>> = message.contacts().map(Result::unwrap).collect();
        assert_eq!(all.len(), 3);
        let Contact::Address(bob) = all[1] else {
            panic!("expected an address");
        };
        assert_eq!(bob.display_name, Some(&b"Bob, Jr"[..]));
        assert_eq!(bob.param(b"q").unwrap().value, Some(&b"0.5"[..]));
        let Contact::Address(carol) = all[2] else {
            panic!("expected an address");
        };
        assert_eq!(carol.uri, b"sip:carol@192.0.2.12");

        let wildcard = request("Contact: *\r\nExpires: 0\r\n");
        let mut storage = [EMPTY_HEADER; 4];
        let message = scan(&wildcard, &mut storage).unwrap();
        assert_eq!(message.contact(), Ok(Some(Contact::Wildcard)));

        let broken = request("Contact: <sip:a@b\r\n");
        let mut storage = [EMPTY_HEADER; 4];
        let message = scan(&broken, &mut storage).unwrap();
        assert_eq!(
            message.contact(),
            Err(ScanError::MalformedHeader("Contact"))
        );
    }

    #[test]
    fn params_iterator() {
        let params: Vec<Param<'_>> = Params::new(b" ; a=1 ;b; c = \"x;y\" ;d=[2001:db8::1]")
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            params,
            [
                Param {
                    name: b"a",
                    value: Some(b"1")
                },
                Param {
                    name: b"b",
                    value: None
                },
                Param {
                    name: b"c",
                    value: Some(b"\"x;y\"")
                },
                Param {
                    name: b"d",
                    value: Some(b"[2001:db8::1]")
                },
            ]
        );
        let mut broken = Params::new(b";a=1;=2;b=3");
        assert!(broken.next().unwrap().is_ok());
        assert_eq!(broken.next(), Some(Err(ScanError::MalformedParameters)));
        assert_eq!(broken.next(), None);
        assert_eq!(
            Params::new(b";a=\"open").next(),
            Some(Err(ScanError::MalformedParameters))
        );
    }

    #[test]
    fn list_values() {
        let values: Vec<&[u8]> =
            ListValues::new(b" a , \"b,c\" <sip:d,e@f>;x=\"\\\",\" ,, g ,").collect();
        assert_eq!(
            values,
            [&b"a"[..], b"\"b,c\" <sip:d,e@f>;x=\"\\\",\"", b"g"]
        );
        assert_eq!(ListValues::new(b"").count(), 0);
        assert_eq!(ListValues::new(b" , ,").count(), 0);
    }

    #[test]
    fn duplicate_single_value_headers() {
        for (headers, name) in [
            ("Content-Length: 0\r\nl: 0\r\n", "Content-Length"),
            (
                "From: <sip:a@b.example>\r\nf: <sip:c@d.example>\r\n",
                "From",
            ),
            ("To: <sip:a@b.example>\r\nTo: <sip:a@b.example>\r\n", "To"),
            ("Call-ID: a\r\ni: b\r\n", "Call-ID"),
            ("CSeq: 1 INVITE\r\nCSeq: 2 INVITE\r\n", "CSeq"),
            ("Max-Forwards: 70\r\nMax-Forwards: 69\r\n", "Max-Forwards"),
        ] {
            assert_eq!(
                scan_error(&request(headers)),
                ScanError::DuplicateHeader(name),
                "{headers:?}"
            );
        }
        // List headers may repeat.
        let bytes =
            request("Supported: timer\r\nk: 100rel\r\nRoute: <sip:a>\r\nRoute: <sip:b>\r\n");
        let mut storage = [EMPTY_HEADER; 8];
        assert_eq!(scan(&bytes, &mut storage).unwrap().headers().len(), 4);
    }

    // --- caps and errors -------------------------------------------------------------

    #[test]
    fn too_many_headers() {
        let at_cap = request(&"X-H: v\r\n".repeat(MAX_HEADERS));
        let mut storage = [EMPTY_HEADER; MAX_HEADERS + 10];
        assert_eq!(
            scan(&at_cap, &mut storage).unwrap().headers().len(),
            MAX_HEADERS
        );

        let over = request(&"X-H: v\r\n".repeat(MAX_HEADERS + 1));
        let mut storage = [EMPTY_HEADER; MAX_HEADERS + 10];
        assert_eq!(
            scan(&over, &mut storage).unwrap_err(),
            ScanError::TooManyHeaders
        );
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        assert_eq!(
            scan(&over, &mut storage).unwrap_err(),
            ScanError::TooManyHeaders
        );

        let flood = request(&"a:\r\n".repeat(10_000));
        assert_eq!(scan_error(&flood), ScanError::TooManyHeaders);
    }

    #[test]
    fn header_storage_too_small() {
        let bytes = request("A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n");
        let mut storage = [EMPTY_HEADER; 3];
        assert_eq!(
            scan(&bytes, &mut storage).unwrap_err(),
            ScanError::HeaderStorageFull
        );
        let mut storage: [Header<'_>; 0] = [];
        assert_eq!(
            scan(&bytes, &mut storage).unwrap_err(),
            ScanError::HeaderStorageFull
        );
        let mut storage = [EMPTY_HEADER; 4];
        assert_eq!(scan(&bytes, &mut storage).unwrap().headers().len(), 4);
    }

    #[test]
    fn too_many_vias() {
        let via = "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKv\r\n";
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        let at_cap = request(&via.repeat(MAX_VIAS));
        assert_eq!(scan(&at_cap, &mut storage).unwrap().via_count(), MAX_VIAS);
        assert_eq!(
            scan_error(&request(&via.repeat(MAX_VIAS + 1))),
            ScanError::TooManyVias
        );

        let entry = "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKv";
        let one_header = vec![entry; MAX_VIAS + 1].join(", ");
        assert_eq!(
            scan_error(&request(&format!("v: {one_header}\r\n"))),
            ScanError::TooManyVias
        );
        let mixed = format!("Via: {entry}, {entry}\r\n{}", via.repeat(MAX_VIAS - 1));
        assert_eq!(scan_error(&request(&mixed)), ScanError::TooManyVias);
        let commas = format!("Via: {}\r\n", "x,".repeat(4_000));
        assert_eq!(scan_error(&request(&commas)), ScanError::TooManyVias);
    }

    #[test]
    fn bare_lf_is_refused_unless_allowed() {
        let lf = b"OPTIONS sip:a.example.com SIP/2.0\nVia: SIP/2.0/UDP h.example;branch=z9hG4bKlf\nCall-ID: lf@h\nSubject: one\n two\nContent-Length: 2\n\nok";
        assert_eq!(scan_error(lf), ScanError::BareLf);
        let mut storage = [EMPTY_HEADER; 8];
        let message = scan_with(lf, &mut storage, LENIENT).unwrap();
        assert_eq!(message.call_id().unwrap(), b"lf@h");
        assert_eq!(message.top_via().unwrap().branch, Some(&b"z9hG4bKlf"[..]));
        assert!(eq_unfolded(
            message.header(HeaderName::Subject).unwrap(),
            b"one two"
        ));
        assert_eq!(message.body(), b"ok");

        // One bare LF anywhere in the head is enough, the empty line included.
        let mixed = b"OPTIONS sip:a.example.com SIP/2.0\r\nCall-ID: x\r\n\nbody";
        assert_eq!(scan_error(mixed), ScanError::BareLf);
        let mixed = b"OPTIONS sip:a.example.com SIP/2.0\r\nCall-ID: x\nTo: <sip:t@h>\r\n\r\n";
        assert_eq!(scan_error(mixed), ScanError::BareLf);
        // A bare LF in the body is the body's business.
        let mut storage = [EMPTY_HEADER; 8];
        let body_lf = b"OPTIONS sip:a.example.com SIP/2.0\r\nl: 4\r\n\r\na\nb\n";
        assert_eq!(scan(body_lf, &mut storage).unwrap().body(), b"a\nb\n");
    }

    #[test]
    fn control_characters() {
        assert_eq!(
            scan_error(&request("Subject: a\rb\r\n")),
            ScanError::ControlCharacter
        );
        assert_eq!(
            scan_error(&request("Subject: a\x00b\r\n")),
            ScanError::ControlCharacter
        );
        assert_eq!(
            scan_error(&request("Subject: a\r\n b\x7f\r\n")),
            ScanError::ControlCharacter
        );
        assert_eq!(
            scan_error(&request("Subject: a\x1bb\r\n")),
            ScanError::ControlCharacter
        );
        let mut storage = [EMPTY_HEADER; 4];
        assert!(scan(&request("Subject: tab\there \u{e9}\r\n"), &mut storage).is_ok());
    }

    #[test]
    fn malformed_header_lines() {
        assert_eq!(
            scan_error(&request("Max-Forwards 70\r\n")),
            ScanError::MissingColon
        );
        assert_eq!(
            scan_error(&request("NoColonHere\r\n")),
            ScanError::MissingColon
        );
        assert_eq!(
            scan_error(&request("Bad@Name: x\r\n")),
            ScanError::HeaderName
        );
        assert_eq!(scan_error(&request(": x\r\n")), ScanError::HeaderName);
        assert_eq!(scan_error(&request("\x00: x\r\n")), ScanError::HeaderName);
        // A fold needs a header to continue.
        assert_eq!(
            scan_error(&request(" continued: x\r\n")),
            ScanError::HeaderName
        );
    }

    #[test]
    fn unterminated_headers() {
        let cases: [&[u8]; 5] = [
            b"OPTIONS sip:a.example.com SIP/2.0",
            b"OPTIONS sip:a.example.com SIP/2.0\r\n",
            b"OPTIONS sip:a.example.com SIP/2.0\r\nCall-ID: x\r\n",
            b"OPTIONS sip:a.example.com SIP/2.0\r\nCall-ID: x",
            b"OPTIONS sip:a.example.com SIP/2.0\r\nCall-ID: x\r\n\r",
        ];
        for bytes in cases {
            assert_eq!(
                scan_error(bytes),
                ScanError::UnterminatedHeaders,
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn long_lines() {
        let at_cap = format!("X-Long: {}\r\n", "a".repeat(MAX_HEADER_LINE - 8));
        let mut storage = [EMPTY_HEADER; 4];
        assert!(scan(&request(&at_cap), &mut storage).is_ok());
        let over = format!("X-Long: {}\r\n", "a".repeat(MAX_HEADER_LINE - 7));
        assert_eq!(scan_error(&request(&over)), ScanError::LineTooLong);
        let folded = format!(
            "X-Long: a\r\n{}",
            format!(" {}\r\n", "b".repeat(1_000)).repeat(9)
        );
        assert_eq!(scan_error(&request(&folded)), ScanError::LineTooLong);
        let start = format!(
            "OPTIONS sip:{} SIP/2.0\r\n\r\n",
            "a".repeat(MAX_HEADER_LINE)
        );
        assert_eq!(scan_error(start.as_bytes()), ScanError::LineTooLong);
        let no_lf = vec![b'A'; MAX_MESSAGE_LEN];
        assert_eq!(scan_error(&no_lf), ScanError::LineTooLong);
    }

    #[test]
    fn empty_and_oversized() {
        assert_eq!(scan_error(b""), ScanError::Empty);
        assert_eq!(scan_error(b"\r\n"), ScanError::Empty);
        assert_eq!(scan_error(b"\r\n\r\n"), ScanError::Empty);
        assert_eq!(
            scan_error(&vec![b'x'; MAX_MESSAGE_LEN + 1]),
            ScanError::TooLarge
        );
    }

    #[test]
    fn errors_are_small_and_display() {
        assert!(core::mem::size_of::<ScanError>() <= 24);
        assert_eq!(
            ScanError::MissingHeader("Via").to_string(),
            "missing Via header"
        );
        assert_eq!(
            ScanError::DuplicateHeader("Content-Length").to_string(),
            "duplicate Content-Length header"
        );
        assert_eq!(
            FrameError::TooLarge.to_string(),
            "message larger than the stream cap"
        );
    }

    #[test]
    fn character_tables_follow_the_abnf() {
        let token_marks = b"-.!%*_+`'~";
        for byte in 0..=255u8 {
            let token = byte.is_ascii_alphanumeric() || token_marks.contains(&byte);
            assert_eq!(is_token(byte), token, "{byte:#04x}");
            let text =
                byte == b'\t' || byte == b' ' || (0x21..=0x7e).contains(&byte) || byte >= 0x80;
            assert_eq!(is_text(byte), text, "{byte:#04x}");
            let uri = (0x21..=0x7e).contains(&byte) && byte != b'<' && byte != b'>';
            assert_eq!(is_uri(byte), uri, "{byte:#04x}");
        }
    }

    // --- never panic, bounded work ---------------------------------------------------

    const FOLDED_IPV6: &[u8] = b"INVITE sip:+15551234567@[2001:db8::1]:5060;user=phone SIP/2.0\r\n\
v: SIP/2.0/UDP [2001:db8::20]:5060\r\n ;branch=z9hG4bK6;rport, SIP/2.0/TCP h.example\r\n\
f: \"Caf\xE9\"\r\n <sip:a@example.com>;tag=t1\r\n\
t: sip:+15551234567@example.com;tag=t2\r\n\
i: fold@h\r\nCSeq: 1\r\n INVITE\r\nMax-Forwards: 0\r\n\
m: *\r\nl: 4\r\n\r\nbody";

    #[test]
    fn max_forwards_zero_and_folded_ipv6_message() {
        let mut storage = [EMPTY_HEADER; 16];
        let message = scan(FOLDED_IPV6, &mut storage).unwrap();
        assert_eq!(message.max_forwards(), Ok(Some(0)));
        assert_eq!(message.via_count(), 2);
        let via = message.top_via().unwrap();
        assert_eq!(via.sent_by_host, b"[2001:db8::20]");
        assert_eq!(via.rport, Rport::Empty);
        assert_eq!(message.from().unwrap().display_name, Some(&b"Caf\xE9"[..]));
        assert_eq!(message.to().unwrap().tag, Some(&b"t2"[..]));
        assert_eq!(message.contact(), Ok(Some(Contact::Wildcard)));
        assert_eq!(message.body(), b"body");
    }

    #[test]
    fn every_prefix_is_an_error_and_never_panics() {
        for message in [INVITE, FOLDED_IPV6] {
            for end in 0..message.len() {
                let prefix = &message[..end];
                exercise(prefix);
                let mut storage = [EMPTY_HEADER; MAX_HEADERS];
                assert!(scan(prefix, &mut storage).is_err(), "prefix of {end} bytes");
            }
        }
    }

    #[test]
    fn byte_flips_never_panic() {
        let replacements = [
            0x00, 0x7f, 0xff, b'\r', b'\n', b' ', b'\t', b':', b';', b',', b'<', b'>', b'"', b'\\',
            b'[', b']', b'@', b'=', b'/', b'0', b'9',
        ];
        for message in [INVITE, FOLDED_IPV6] {
            let mut bytes = message.to_vec();
            for index in 0..bytes.len() {
                let original = bytes[index];
                for replacement in replacements {
                    bytes[index] = replacement;
                    exercise(&bytes);
                }
                bytes[index] = original;
            }
        }
    }

    /// A deterministic byte generator (xorshift), so the garbage is the same on every run.
    fn garbage(len: usize, mut state: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect()
    }

    #[test]
    #[allow(
        clippy::disallowed_methods,
        reason = "the test measures its own wall time; no core logic reads the clock"
    )]
    fn garbage_is_rejected_quickly() {
        let megabyte = garbage(1 << 20, 0x9e37_79b9_7f4a_7c15);
        let started = std::time::Instant::now();
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        for _ in 0..100 {
            assert_eq!(
                scan(&megabyte, &mut storage).unwrap_err(),
                ScanError::TooLarge
            );
            assert_eq!(frame(&megabyte, MAX_MESSAGE_LEN), Err(FrameError::TooLarge));
            assert!(scan(&megabyte[..MAX_MESSAGE_LEN], &mut storage).is_err());
        }
        // Garbage that looks like lines: a header flood at the cap.
        let lines = "x:\r\n".repeat(MAX_MESSAGE_LEN / 4);
        for _ in 0..100 {
            assert!(scan(lines.as_bytes(), &mut storage).is_err());
        }
        let elapsed = started.elapsed();
        assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
        for seed in 1..200 {
            exercise(&garbage(2_000, seed));
        }
    }

    // --- framer ----------------------------------------------------------------------

    const OPTIONS: &[u8] =
        b"OPTIONS sip:a.example.com SIP/2.0\r\nCall-ID: 1@h\r\nContent-Length: 0\r\n\r\n";
    const MESSAGE: &[u8] =
        b"MESSAGE sip:a.example.com SIP/2.0\r\nCall-ID: 2@h\r\nl: 11\r\n\r\nhello\r\n\r\n!!";
    const RESPONSE: &[u8] = b"SIP/2.0 200 OK\r\nCall-ID: 3@h\r\nContent-Length:\r\n 3\r\n\r\nabc";

    #[test]
    fn keepalives() {
        assert_eq!(frame(b"", 100), Ok(Frame::Incomplete));
        assert_eq!(frame(b"\r", 100), Ok(Frame::Incomplete));
        assert_eq!(frame(b"\r\n\r", 100), Ok(Frame::Incomplete));
        assert_eq!(frame(b"\r\n", 100), Ok(Frame::KeepAlive { len: 2 }));
        assert_eq!(frame(b"\r\n\r\n", 100), Ok(Frame::KeepAlive { len: 4 }));
        assert_eq!(
            frame(b"\r\n\r\nOPTIONS", 100),
            Ok(Frame::KeepAlive { len: 4 })
        );
        assert_eq!(frame(b"\r\nOPTIONS", 100), Ok(Frame::KeepAlive { len: 2 }));
        assert!(Frame::KeepAlive { len: 4 }.is_ping());
        assert!(!Frame::KeepAlive { len: 2 }.is_ping());
    }

    #[test]
    fn frames_messages() {
        assert_eq!(
            frame(OPTIONS, 1_000),
            Ok(Frame::Message { len: OPTIONS.len() })
        );
        assert_eq!(
            frame(MESSAGE, 1_000),
            Ok(Frame::Message { len: MESSAGE.len() })
        );
        assert_eq!(
            frame(RESPONSE, 1_000),
            Ok(Frame::Message {
                len: RESPONSE.len()
            })
        );
        for message in [OPTIONS, MESSAGE, RESPONSE] {
            for end in 1..message.len() {
                assert_eq!(
                    frame(&message[..end], 1_000),
                    Ok(Frame::Incomplete),
                    "{end}"
                );
            }
        }
        let mut followed = MESSAGE.to_vec();
        followed.extend_from_slice(OPTIONS);
        assert_eq!(
            frame(&followed, 1_000),
            Ok(Frame::Message { len: MESSAGE.len() })
        );
    }

    #[test]
    fn framing_errors() {
        let no_length = b"OPTIONS sip:a SIP/2.0\r\nCall-ID: x\r\n\r\n";
        assert_eq!(
            frame(no_length, 1_000),
            Err(FrameError::MissingContentLength)
        );
        let twice = b"OPTIONS sip:a SIP/2.0\r\nl: 0\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(frame(twice, 1_000), Err(FrameError::DuplicateContentLength));
        let bad = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: -3\r\n\r\n";
        assert_eq!(frame(bad, 1_000), Err(FrameError::InvalidContentLength));
        // The start line is not a header, even when it looks like one.
        let start = b"Content-Length: 0\r\nCall-ID: x\r\n\r\n";
        assert_eq!(frame(start, 1_000), Err(FrameError::MissingContentLength));
    }

    #[test]
    fn framing_cap_is_checked_before_waiting() {
        // The headers promise more than the cap: refuse before the body arrives.
        let promise = b"MESSAGE sip:a SIP/2.0\r\nContent-Length: 60000\r\n\r\n";
        assert_eq!(frame(promise, 1_000), Err(FrameError::TooLarge));
        assert_eq!(frame(promise, 100_000), Ok(Frame::Incomplete));
        let beyond = b"MESSAGE sip:a SIP/2.0\r\nContent-Length: 65500\r\n\r\n";
        assert_eq!(frame(beyond, usize::MAX), Err(FrameError::TooLarge));
        // Headers that never end: wait up to the cap, then refuse.
        let endless = "X: y\r\n".repeat(50);
        assert_eq!(frame(&endless.as_bytes()[..99], 100), Ok(Frame::Incomplete));
        assert_eq!(
            frame(&endless.as_bytes()[..100], 100),
            Err(FrameError::TooLarge)
        );
        assert_eq!(frame(endless.as_bytes(), 100), Err(FrameError::TooLarge));
        // A message exactly at the cap is fine.
        assert_eq!(
            frame(OPTIONS, OPTIONS.len()),
            Ok(Frame::Message { len: OPTIONS.len() })
        );
        assert_eq!(frame(OPTIONS, OPTIONS.len() - 1), Err(FrameError::TooLarge));
    }

    /// Frames and consumes everything complete at the front of `buffer`.
    fn drain(buffer: &mut Vec<u8>, messages: &mut Vec<Vec<u8>>, keepalive_bytes: &mut usize) {
        loop {
            match frame(buffer, MAX_MESSAGE_LEN).expect("stream should frame") {
                Frame::Incomplete => return,
                Frame::KeepAlive { len } => {
                    *keepalive_bytes += len;
                    buffer.drain(..len);
                }
                Frame::Message { len } => {
                    messages.push(buffer.drain(..len).collect());
                }
            }
        }
    }

    #[test]
    fn three_messages_split_at_every_offset() {
        let stream = [OPTIONS, MESSAGE, RESPONSE].concat();
        for split in 0..=stream.len() {
            let mut buffer = Vec::new();
            let mut messages = Vec::new();
            let mut keepalive_bytes = 0;
            for chunk in [&stream[..split], &stream[split..]] {
                buffer.extend_from_slice(chunk);
                drain(&mut buffer, &mut messages, &mut keepalive_bytes);
            }
            assert_eq!(messages, [OPTIONS, MESSAGE, RESPONSE], "split at {split}");
            assert!(buffer.is_empty());
            assert_eq!(keepalive_bytes, 0);
        }
    }

    #[test]
    fn byte_by_byte_stream_with_keepalives() {
        let stream = [
            b"\r\n\r\n",
            OPTIONS,
            b"\r\n",
            MESSAGE,
            b"\r\n\r\n",
            RESPONSE,
        ]
        .concat();
        let mut buffer = Vec::new();
        let mut messages = Vec::new();
        let mut keepalive_bytes = 0;
        for &byte in &stream {
            buffer.push(byte);
            drain(&mut buffer, &mut messages, &mut keepalive_bytes);
        }
        assert_eq!(messages, [OPTIONS, MESSAGE, RESPONSE]);
        assert_eq!(keepalive_bytes, 10);
        assert!(buffer.is_empty());

        // Whole writes keep pings and pongs apart.
        let mut buffer = stream.clone();
        let mut kinds = Vec::new();
        while !buffer.is_empty() {
            let framed = frame(&buffer, MAX_MESSAGE_LEN).unwrap();
            let len = match framed {
                Frame::KeepAlive { len } | Frame::Message { len } => len,
                Frame::Incomplete => panic!("complete stream reported incomplete"),
            };
            kinds.push(framed);
            buffer.drain(..len);
        }
        assert_eq!(
            kinds,
            [
                Frame::KeepAlive { len: 4 },
                Frame::Message { len: OPTIONS.len() },
                Frame::KeepAlive { len: 2 },
                Frame::Message { len: MESSAGE.len() },
                Frame::KeepAlive { len: 4 },
                Frame::Message {
                    len: RESPONSE.len()
                },
            ]
        );
    }

    #[test]
    fn framer_and_scanner_agree() {
        for message in [OPTIONS, MESSAGE, RESPONSE, INVITE, FOLDED_IPV6] {
            let Ok(Frame::Message { len }) = frame(message, MAX_MESSAGE_LEN) else {
                panic!("{:?} did not frame", String::from_utf8_lossy(message));
            };
            let mut storage = [EMPTY_HEADER; MAX_HEADERS];
            let scanned = scan_with(&message[..len], &mut storage, ScanOptions::STREAM).unwrap();
            assert_eq!(scanned.message_len(), len);
        }
    }
}
