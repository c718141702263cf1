//! The full scan: [`scan`] and [`scan_with`] check a whole message and keep every header
//! in the caller's storage; [`Scan`]'s accessors parse the typed views when called. The
//! line reading here is shared with the lean scan, and so are the readers of a header's
//! raw value at the end, so the two can never disagree.

use memchr::memchr;

use super::bytes::{decimal_u32, is_text, is_token, is_wsp, parse_content_length, trim_lws};
use super::header::{Header, HeaderName};
use super::limits::{MAX_HEADER_LINE, MAX_HEADERS, MAX_MAX_FORWARDS, MAX_MESSAGE_LEN, MAX_VIAS};
use super::name_addr::{Contact, NameAddr};
use super::params::ListValues;
use super::start_line::{Method, StartLine, parse_start_line};
use super::uri::uri_user;
use super::{CSeq, ScanError, ScanOptions, Via};
use crate::sip::classify;

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
///
/// [`frame::frame`]: super::frame::frame
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
pub(super) struct Line {
    pub(super) content_end: usize,
    pub(super) next: usize,
}

/// Finds the end of the line starting at `start`. Looks at no more than
/// [`MAX_HEADER_LINE`] + 2 bytes, so a line-less flood costs one bounded memchr.
pub(super) fn next_line(
    bytes: &[u8],
    start: usize,
    allow_bare_lf: bool,
) -> Result<Line, ScanError> {
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
pub(super) fn read_header(
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
pub(super) fn split_header_line(line: &[u8]) -> Result<(&[u8], usize), ScanError> {
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

// What the accessors of [`Scan`] and [`Lean`] read from a header's raw value (the first
// header of its name, `None` when there is none), so the two can never disagree.

/// The first entry of the first Via value, and its parse.
pub(super) fn top_via(value: Option<&[u8]>) -> Result<(&[u8], Via<'_>), ScanError> {
    let value = value.ok_or(ScanError::MissingHeader("Via"))?;
    let first = ListValues::new(value)
        .next()
        .ok_or(ScanError::MalformedHeader("Via"))?;
    Ok((first, Via::parse(first)?))
}

pub(super) fn name_addr<'a>(
    name: HeaderName<'static>,
    value: Option<&'a [u8]>,
) -> Result<NameAddr<'a>, ScanError> {
    let label = name.canonical();
    let value = value.ok_or(ScanError::MissingHeader(label))?;
    NameAddr::parse(value).map_err(|_| ScanError::MalformedHeader(label))
}

pub(super) fn call_id(value: Option<&[u8]>) -> Result<&[u8], ScanError> {
    let value = value.ok_or(ScanError::MissingHeader("Call-ID"))?;
    if value.is_empty() || classify::visible_len(value) != value.len() {
        return Err(ScanError::MalformedHeader("Call-ID"));
    }
    Ok(value)
}

pub(super) fn cseq(value: Option<&[u8]>) -> Result<CSeq<'_>, ScanError> {
    CSeq::parse(value.ok_or(ScanError::MissingHeader("CSeq"))?)
}

pub(super) fn max_forwards(value: Option<&[u8]>) -> Result<Option<u32>, ScanError> {
    let Some(value) = value else {
        return Ok(None);
    };
    decimal_u32(value, MAX_MAX_FORWARDS)
        .map(Some)
        .ok_or(ScanError::MalformedHeader("Max-Forwards"))
}

pub(super) fn contact(value: Option<&[u8]>) -> Result<Option<Contact<'_>>, ScanError> {
    match value {
        None => Ok(None),
        Some(value) => {
            let first = ListValues::new(value)
                .next()
                .ok_or(ScanError::MalformedHeader("Contact"))?;
            Contact::parse(first).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{FOLDED_IPV6, INVITE, LENIENT, request, scan_error};
    use super::super::{EMPTY_HEADER, Rport, eq_unfolded};
    use super::*;

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
}
