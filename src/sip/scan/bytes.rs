//! Character classes (RFC 3261 §25.1), one 256-entry table each, and the small byte
//! helpers every part of the scanner shares: trimming, decimals, 8-byte words and their
//! patterns, and the few nom helpers the grammar readers are built from.

use nom::IResult;
use nom::bytes::complete::take_while;

use super::limits::MAX_CONTENT_LENGTH;

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
pub(super) static TOKEN: [bool; 256] = byte_class!(
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
pub(super) static HOST: [bool; 256] =
    byte_class!(b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.');

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
pub(super) static PARAM_VALUE: [bool; 256] = byte_class!(
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

pub(super) fn is_text(byte: u8) -> bool {
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

pub(super) fn is_ipv6(byte: u8) -> bool {
    IPV6[usize::from(byte)]
}

#[cfg(test)]
pub(super) fn is_param_value(byte: u8) -> bool {
    PARAM_VALUE[usize::from(byte)]
}

/// `WSP = SP / HTAB`
pub(super) fn is_wsp(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

/// Whitespace inside a scanned header value: WSP, and the CR/LF of a fold. After
/// [`scan`] a value holds CR or LF only as part of a fold, so this reads `LWS`.
///
/// [`scan`]: super::scan
pub(super) fn is_lws(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

pub(super) fn trim_lws(bytes: &[u8]) -> &[u8] {
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

pub(super) fn trim_wsp_end(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|&b| !is_wsp(b)).map_or(0, |i| i + 1);
    bytes.get(..end).unwrap_or_default()
}

/// `1*DIGIT` as an integer no larger than `max`; `None` if empty, not all digits, or above
/// `max`. Stops at the first digit that overflows, so leading zeros cost nothing extra.
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

/// [`parse_decimal`] for a `u32` bound: no value at most `max` overflows a `u64` when
/// multiplied by 10, so nothing but the bound is checked.
#[inline]
pub(super) fn decimal_u32(digits: &[u8], max: u32) -> Option<u32> {
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
///
/// [`scan`]: super::scan
pub(super) fn parse_content_length(value: &[u8]) -> Option<usize> {
    parse_decimal(trim_lws(value), MAX_CONTENT_LENGTH).and_then(|n| usize::try_from(n).ok())
}

/// The first 8 bytes of `bytes` as a little-endian word, padded with zero bytes past its
/// end.
#[inline(always)]
pub(super) fn word_at(bytes: &[u8]) -> u64 {
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
pub(super) struct Pattern {
    value: u64,
    /// `0xFF` for each byte of the pattern.
    mask: u64,
    /// `0x20` for each letter of the pattern: OR-ed in, it maps `A-Z` onto `a-z`, and
    /// only `X` and `x` onto `x`.
    case: u64,
}

impl Pattern {
    /// `lower` is the pattern in lower case, at most 8 bytes.
    pub(super) const fn new(lower: &[u8]) -> Self {
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
    pub(super) const fn exact(bytes: &[u8]) -> Self {
        let pattern = Self::new(bytes);
        Pattern {
            value: pattern.value,
            mask: pattern.mask,
            case: 0,
        }
    }

    #[inline(always)]
    pub(super) fn matches(self, word: u64) -> bool {
        (word | self.case) & self.mask == self.value
    }
}

/// `from` moved past the LWS that starts there: `from` itself, after one look, when there
/// is none (the usual case).
#[inline(always)]
pub(super) fn skip_lws(bytes: &[u8], from: usize) -> usize {
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
pub(super) fn class_len(bytes: &[u8], class: &[bool; 256]) -> usize {
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

pub(super) type Res<'a, T> = IResult<&'a [u8], T>;

/// Fails a hand-written nom parser at `input`.
pub(super) fn fail<T>(input: &[u8]) -> Res<'_, T> {
    Err(nom::Err::Error(nom::error::Error::new(
        input,
        nom::error::ErrorKind::Verify,
    )))
}

/// `SWS`: optional linear whitespace, folds included.
pub(super) fn lws0(input: &[u8]) -> Res<'_, &[u8]> {
    take_while(is_lws)(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_padded_past_the_end() {
        assert_eq!(word_at(b""), 0);
        assert_eq!(word_at(b"v:"), u64::from_le_bytes(*b"v:\0\0\0\0\0\0"));
        assert_eq!(word_at(b"1234567"), u64::from_le_bytes(*b"1234567\0"));
        assert_eq!(word_at(b"123456789"), u64::from_le_bytes(*b"12345678"));
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
}
