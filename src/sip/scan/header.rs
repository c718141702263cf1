//! Header names (full and compact forms, any case), header lines as the scan keeps them,
//! and [`unfold`], which reads a raw value with each fold as one SP (RFC 3261 §7.3).

use super::bytes::is_lws;

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
pub(super) static KNOWN_HEADERS: [HeaderName<'static>; 42] = [
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
    pub(super) fn singleton_bit(&self) -> Option<u8> {
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

#[cfg(test)]
mod tests {
    use super::super::fixtures::{garbage, request};
    use super::super::lean::lean_name;
    use super::super::{EMPTY_HEADER, scan};
    use super::*;

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
}
