//! Responses written from a request's own headers (RFC 3261 §8.2.6): the hot path's
//! stateless answers and the proxy's own responses.
//!
//! The writer appends to a caller-owned buffer, so a socket task that keeps its buffer
//! answers a flood without allocating. Via, From, Call-ID and CSeq are copied byte for
//! byte; the top Via gets `received` and a filled-in `rport` (RFC 3261 §18.2.1, RFC 3581)
//! so the answer reaches a client behind NAT; To gets our tag unless it has one.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};

use super::scan::{HeaderName, Lean, ListValues, NameAddr, Scan, ScanError, Via};

/// A scanned request a response can echo: a [`Scan`] or a [`Lean`].
pub(crate) trait Echo<'a> {
    /// The raw value of the first header called `name`.
    fn raw(&self, name: HeaderName<'static>) -> Option<&'a [u8]>;
    fn to(&self) -> Result<NameAddr<'a>, ScanError>;
    fn call_id(&self) -> Result<&'a [u8], ScanError>;
    /// The raw value of every Via header, top first.
    fn via_values(&self) -> impl Iterator<Item = &'a [u8]>;
    /// The first entry of the first Via header, and its parse.
    fn top_via_entry(&self) -> Result<(&'a [u8], Via<'a>), ScanError>;
}

impl<'a> Echo<'a> for Scan<'a, '_> {
    fn raw(&self, name: HeaderName<'static>) -> Option<&'a [u8]> {
        self.header(name)
    }

    fn to(&self) -> Result<NameAddr<'a>, ScanError> {
        Scan::to(self)
    }

    fn call_id(&self) -> Result<&'a [u8], ScanError> {
        Scan::call_id(self)
    }

    fn via_values(&self) -> impl Iterator<Item = &'a [u8]> {
        self.header_values(HeaderName::Via)
    }

    fn top_via_entry(&self) -> Result<(&'a [u8], Via<'a>), ScanError> {
        Scan::top_via_entry(self)
    }
}

impl<'a> Echo<'a> for Lean<'a> {
    fn raw(&self, name: HeaderName<'static>) -> Option<&'a [u8]> {
        self.header(name)
    }

    fn to(&self) -> Result<NameAddr<'a>, ScanError> {
        Lean::to(self).copied()
    }

    fn call_id(&self) -> Result<&'a [u8], ScanError> {
        Lean::call_id(self)
    }

    fn via_values(&self) -> impl Iterator<Item = &'a [u8]> {
        Lean::via_values(self)
    }

    fn top_via_entry(&self) -> Result<(&'a [u8], Via<'a>), ScanError> {
        Lean::top_via_entry(self)
    }
}

/// Reason phrases for the codes trunkd answers with itself.
pub(crate) fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        487 => "Request Terminated",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        _ => "Unknown",
    }
}

/// Writes a response to `request` into `out` (cleared first).
///
/// `to_tag` is added to To when it has no tag (a dialog-creating answer or a rejection);
/// `extra` lines (`"Retry-After: 30"`) go before Content-Length. Fails, writing nothing
/// useful, when the request lacks a header every response must echo (Via, From, To,
/// Call-ID, CSeq): such a request gets no answer.
pub(crate) fn write<'a>(
    out: &mut Vec<u8>,
    request: &impl Echo<'a>,
    source: SocketAddr,
    code: u16,
    reason: &str,
    to_tag: Option<&[u8]>,
    extra: &[&str],
) -> Result<(), ScanError> {
    out.clear();
    let from = request
        .raw(HeaderName::From)
        .ok_or(ScanError::MissingHeader("From"))?;
    let to = request.to()?;
    let to_raw = request
        .raw(HeaderName::To)
        .ok_or(ScanError::MissingHeader("To"))?;
    let call_id = request.call_id()?;
    let cseq = request
        .raw(HeaderName::CSeq)
        .ok_or(ScanError::MissingHeader("CSeq"))?;
    out.extend_from_slice(b"SIP/2.0 ");
    push_decimal(out, code.into());
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut first = true;
    for value in request.via_values() {
        out.extend_from_slice(b"Via: ");
        if first {
            first = false;
            let (entry, via) = request.top_via_entry()?;
            stamp_top_via(out, value, entry, &via, source);
        } else {
            out.extend_from_slice(value);
        }
        out.extend_from_slice(b"\r\n");
    }
    if first {
        return Err(ScanError::MissingHeader("Via"));
    }
    line(out, b"From: ", from);
    out.extend_from_slice(b"To: ");
    out.extend_from_slice(to_raw);
    if let (None, Some(tag)) = (to.tag, to_tag) {
        out.extend_from_slice(b";tag=");
        out.extend_from_slice(tag);
    }
    out.extend_from_slice(b"\r\n");
    line(out, b"Call-ID: ", call_id);
    line(out, b"CSeq: ", cseq);
    for extra in extra {
        line(out, b"", extra.as_bytes());
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Ok(())
}

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The first Via header line's value with its first entry stamped with where the request
/// really came from: `rport` filled in when asked for, `received` when the sent-by host
/// is not the source address (or rport was asked for, RFC 3581 §4).
pub(crate) fn write_top_via(
    out: &mut Vec<u8>,
    value: &[u8],
    source: SocketAddr,
) -> Result<(), ScanError> {
    let entry = ListValues::new(value)
        .next()
        .ok_or(ScanError::MalformedHeader("Via"))?;
    let via = Via::parse(entry)?;
    stamp_top_via(out, value, entry, &via, source);
    Ok(())
}

/// [`write_top_via`] with the first entry (a slice of `value`) already parsed.
fn stamp_top_via(out: &mut Vec<u8>, value: &[u8], entry: &[u8], via: &Via<'_>, source: SocketAddr) {
    let offset = |part: &[u8]| part.as_ptr() as usize - value.as_ptr() as usize;
    let entry_end = offset(entry) + entry.len();
    let source_ip = crate::inbound::snapshot::canonical(source.ip());
    // Without a valueless rport parameter there is none to fill in.
    let rport_name = via.rport_request();
    match rport_name {
        Some(name) => {
            let end = offset(name) + name.len();
            out.extend_from_slice(&value[..end]);
            out.push(b'=');
            push_decimal(out, source.port().into());
            out.extend_from_slice(&value[end..entry_end]);
        }
        None => out.extend_from_slice(&value[..entry_end]),
    }
    if via.received.is_none() {
        match source_ip {
            IpAddr::V4(v4) => {
                let mut text = [0u8; 15];
                let text = ipv4_text(v4, &mut text);
                if rport_name.is_some() || !sent_by_is(via.sent_by_host, text, source_ip) {
                    out.extend_from_slice(b";received=");
                    out.extend_from_slice(text);
                }
            }
            IpAddr::V6(v6) => {
                if rport_name.is_some() || sent_by_ip(via.sent_by_host) != Some(source_ip) {
                    let _ = write!(out, ";received={v6}");
                }
            }
        }
    }
    out.extend_from_slice(&value[entry_end..]);
}

/// The sent-by host as an IP address, brackets of an IPv6 reference removed; `None` for
/// a host name.
fn sent_by_ip(host: &[u8]) -> Option<IpAddr> {
    std::str::from_utf8(host)
        .ok()
        .map(|host| host.trim_start_matches('[').trim_end_matches(']'))
        .and_then(|host| host.parse::<IpAddr>().ok())
}

/// Whether the sent-by host is the IPv4 address `ip`, whose dotted-decimal text is
/// `text`: `sent_by_ip(host) == Some(ip)` without parsing. `Ipv4Addr`'s parser takes
/// exactly four decimal octets without leading zeros, so the one text that parses to
/// `ip` is the one `Display` writes; a host that parses as IPv6 is never equal to an
/// IPv4 `ip`.
fn sent_by_is(host: &[u8], text: &[u8], ip: IpAddr) -> bool {
    let start = host.iter().take_while(|&&b| b == b'[').count();
    let host = &host[start..];
    let end = host.len() - host.iter().rev().take_while(|&&b| b == b']').count();
    let equal = &host[..end] == text;
    debug_assert_eq!(equal, sent_by_ip(&host[..end]) == Some(ip));
    equal
}

/// The dotted-decimal text of `ip`, as `Display` writes it, into `buffer`.
fn ipv4_text(ip: std::net::Ipv4Addr, buffer: &mut [u8; 15]) -> &[u8] {
    let mut len = 0;
    for (index, octet) in ip.octets().into_iter().enumerate() {
        if index > 0 {
            buffer[len] = b'.';
            len += 1;
        }
        if octet >= 100 {
            buffer[len] = b'0' + octet / 100;
            len += 1;
        }
        if octet >= 10 {
            buffer[len] = b'0' + octet / 10 % 10;
            len += 1;
        }
        buffer[len] = b'0' + octet % 10;
        len += 1;
    }
    &buffer[..len]
}

/// `value` in decimal, as `write!(out, "{value}")` writes it, without the formatter.
pub(crate) fn push_decimal(out: &mut Vec<u8>, value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = value;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::scan::{EMPTY_HEADER, MAX_HEADERS, scan};

    const INVITE: &[u8] = b"INVITE sip:+15550100001@192.0.2.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-1;rport, SIP/2.0/UDP 10.0.0.4;branch=z9hG4bK-0\r\n\
v: SIP/2.0/UDP 10.0.0.3;branch=z9hG4bK-x\r\n\
f: <sip:+15551230000@carrier.example>;tag=abc\r\n\
t: <sip:+15550100001@192.0.2.1>\r\n\
i: call-1@carrier\r\n\
CSeq: 7 INVITE\r\n\
Max-Forwards: 70\r\n\
Content-Length: 0\r\n\r\n";

    fn answer(request: &[u8], source: &str, tag: Option<&[u8]>, extra: &[&str]) -> String {
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        let message = scan(request, &mut storage).unwrap();
        let mut out = Vec::new();
        write(
            &mut out,
            &message,
            source.parse().unwrap(),
            403,
            "Forbidden",
            tag,
            extra,
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn mirrors_the_request_and_stamps_the_top_via() {
        let text = answer(
            INVITE,
            "203.0.113.9:40000",
            Some(b"t1"),
            &["Retry-After: 30"],
        );
        assert_eq!(
            text,
            "SIP/2.0 403 Forbidden\r\n\
Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-1;rport=40000;received=203.0.113.9, SIP/2.0/UDP 10.0.0.4;branch=z9hG4bK-0\r\n\
Via: SIP/2.0/UDP 10.0.0.3;branch=z9hG4bK-x\r\n\
From: <sip:+15551230000@carrier.example>;tag=abc\r\n\
To: <sip:+15550100001@192.0.2.1>;tag=t1\r\n\
Call-ID: call-1@carrier\r\n\
CSeq: 7 INVITE\r\n\
Retry-After: 30\r\n\
Content-Length: 0\r\n\r\n"
        );
        // The answer scans as a response.
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        let response = scan(text.as_bytes(), &mut storage).unwrap();
        assert_eq!(response.status_code(), Some(403));
        assert_eq!(response.to().unwrap().tag, Some(&b"t1"[..]));
    }

    #[test]
    fn no_received_when_the_sent_by_is_the_source_and_a_to_tag_is_kept() {
        let request = String::from_utf8(INVITE.to_vec())
            .unwrap()
            .replace(";rport,", ",")
            .replace("t: <sip:+15550100001@192.0.2.1>", "t: <sip:b@c>;tag=theirs");
        let text = answer(request.as_bytes(), "10.0.0.5:5060", Some(b"ours"), &[]);
        assert!(text.contains("Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-1, SIP"));
        assert!(text.contains("To: <sip:b@c>;tag=theirs\r\n"));
        assert!(!text.contains("ours"));
    }

    #[test]
    fn ipv6_sources_and_mapped_sources() {
        let request = String::from_utf8(INVITE.to_vec())
            .unwrap()
            .replace("10.0.0.5:5060", "[2001:db8::1]:5060");
        let text = answer(request.as_bytes(), "[2001:db8::1]:5060", None, &[]);
        assert!(
            text.contains("Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK-1;rport=5060;received=2001:db8::1,"),
            "{text}"
        );
        let text = answer(INVITE, "[::ffff:10.0.0.5]:5060", None, &[]);
        assert!(text.contains(";rport=5060;received=10.0.0.5,"), "{text}");
    }

    #[test]
    fn decimals_are_written_as_the_formatter_writes_them() {
        for value in [
            0,
            1,
            9,
            10,
            99,
            100,
            403,
            5060,
            9999,
            10000,
            65535,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            push_decimal(&mut out, value);
            assert_eq!(out, value.to_string().as_bytes());
        }
    }

    #[test]
    fn a_lean_scan_gets_the_same_answer_as_a_full_one() {
        let vias = String::from_utf8(INVITE.to_vec())
            .unwrap()
            .replace(";rport,", ";rport=1;rport,");
        for request in [INVITE, vias.as_bytes()] {
            for source in [
                "203.0.113.9:40000",
                "10.0.0.5:5060",
                "[2001:db8::1]:5060",
                "[::ffff:10.0.0.5]:5060",
            ] {
                let mut storage = [EMPTY_HEADER; MAX_HEADERS];
                let full = scan(request, &mut storage).unwrap();
                let lean = crate::sip::scan::scan_lean(request, Default::default()).unwrap();
                let source = source.parse().unwrap();
                let (mut a, mut b) = (Vec::new(), Vec::new());
                write(&mut a, &full, source, 200, "OK", Some(b"t"), &["X: y"]).unwrap();
                write(&mut b, &lean, source, 200, "OK", Some(b"t"), &["X: y"]).unwrap();
                assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn a_request_missing_a_mandatory_header_gets_no_answer() {
        for removed in [
            &["i: "][..],
            &["CSeq: "],
            &["f: "],
            &["t: "],
            &["Via: ", "v: "],
        ] {
            let request = String::from_utf8(INVITE.to_vec()).unwrap();
            let request: String = request
                .split_inclusive("\r\n")
                .filter(|line| !removed.iter().any(|header| line.starts_with(header)))
                .collect();
            let mut storage = [EMPTY_HEADER; MAX_HEADERS];
            let message = scan(request.as_bytes(), &mut storage).unwrap();
            let mut out = Vec::new();
            let source = "192.0.2.1:5060".parse().unwrap();
            assert!(
                write(&mut out, &message, source, 400, "Bad Request", None, &[]).is_err(),
                "{removed:?}"
            );
        }
    }
}
