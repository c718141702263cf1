//! The start line (RFC 3261 §7.1, §7.2): the method, the Request-URI or the status, and
//! the version. The usual lines are read by a few word compares, anything else by the
//! general readers, which accept the same.

use nom::Parser;
use nom::bytes::complete::{take_while_m_n, take_while1};
use nom::character::complete::char;
use nom::combinator::rest;

use super::ScanError;
use super::bytes::{Pattern, Res, TOKEN, class_len, is_text, parse_decimal, word_at};
use super::uri::uri_scheme;
use crate::sip::classify;

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

/// `SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT`, read loosely; checked by `check_version`.
pub(super) fn version(input: &[u8]) -> Res<'_, &[u8]> {
    take_while1(|b: u8| b.is_ascii_alphanumeric() || b == b'/' || b == b'.')(input)
}

/// RFC 3261 §7.1: "The SIP-Version string is case-insensitive, but implementations MUST
/// send upper-case", and unlike HTTP the version is a literal string: `SIP/2.00` is not
/// 2.0. A well-formed other version is [`ScanError::UnsupportedVersion`] so the caller can
/// answer 505 Version Not Supported (RFC 3261 §21.5.7).
pub(super) fn check_version(version: &[u8]) -> Result<(), ScanError> {
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
pub(super) fn parse_start_line(line: &[u8]) -> Result<StartLine<'_>, ScanError> {
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
pub(super) fn plain_request_line(line: &[u8]) -> Option<StartLine<'_>> {
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

pub(super) fn request_line(line: &[u8]) -> Result<StartLine<'_>, ScanError> {
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

#[cfg(test)]
mod tests {
    use super::super::fixtures::{INVITE, scan_error, variants};
    use super::super::{EMPTY_HEADER, MAX_HEADERS, scan};
    use super::*;

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
}
