//! Rewriting messages as they pass through trunkd (RFC 3261 §16.6 for requests, §16.7
//! for responses): our Via on top, Max-Forwards decremented, Record-Route added to
//! dialog-creating requests, our own Route entry removed, the trunk header set.

use std::io::Write as _;
use std::net::SocketAddr;

use crate::config::Transport;
use crate::sip::response::{push_decimal, write_top_via};
use crate::sip::scan::{CSeq, Header, HeaderName, ListValues, NameAddr, Scan, ScanError};

/// What every forwarded request carries.
pub(crate) struct Hop<'a> {
    /// The transport toward the next hop, for our Via.
    pub transport: Transport,
    /// Our `host:port` for Via.
    pub sent_by: &'a str,
    /// The branch of our Via.
    pub branch: &'a str,
    /// Every `host:port` of ours a Record-Route named: Route entries naming one of them
    /// are removed (RFC 3261 §16.4; both of a double Record-Route, RFC 5658).
    pub ours: &'a [&'a str],
}

fn name<'a>(name: &HeaderName<'a>) -> &'a [u8] {
    match name {
        HeaderName::Other(raw) => raw,
        known => known.canonical().as_bytes(),
    }
}

/// Whether a Route value names us (`<sip:host:port;...>` with one of our sent-bys).
pub(crate) fn is_our_route(value: &[u8], ours: &[&str]) -> bool {
    let Ok(address) = NameAddr::parse(value) else {
        return false;
    };
    let uri = address.uri;
    let after_scheme = uri
        .iter()
        .position(|&b| b == b':')
        .map_or(uri, |colon| &uri[colon + 1..]);
    let host_port = after_scheme
        .split(|&b| b == b';')
        .next()
        .unwrap_or(after_scheme);
    let host_port = match host_port.iter().position(|&b| b == b'@') {
        Some(at) => &host_port[at + 1..],
        None => host_port,
    };
    ours.iter()
        .any(|sent_by| host_port.eq_ignore_ascii_case(sent_by.as_bytes()))
}

/// Our Record-Route header naming `sent_by`, reached over `transport`.
fn write_record_route(out: &mut Vec<u8>, transport: Transport, sent_by: &str) {
    out.extend_from_slice(b"Record-Route: <sip:");
    out.extend_from_slice(sent_by.as_bytes());
    out.extend_from_slice(match transport {
        Transport::Udp => b";lr>\r\n".as_slice(),
        Transport::Tcp => b";transport=tcp;lr>\r\n",
        Transport::Tls => b";transport=tls;lr>\r\n",
    });
}

/// Room for what forwarding adds to a message beyond the strings it is given: our Via's
/// and Record-Route's fixed parts, `received`/`rport`, Max-Forwards, Content-Length, the
/// full names of compact headers.
const GROWTH: usize = 256;

/// What forwarding changes in a request beyond our Via, Max-Forwards and our Route
/// entries. The default changes nothing more: a request inside a call.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Edits<'a> {
    /// Replaces the Request-URI (the initial INVITE).
    pub request_uri: Option<&'a str>,
    /// Record-Route entries naming our `host:port` over a transport, added on top in
    /// order (dialog-creating requests).
    pub record_route: &'a [Option<(Transport, &'a str)>],
    /// trunkd's own header (`X-Trunk`): whatever the sender put there is removed, and
    /// the value, when there is one, is written instead.
    pub trunk_header: Option<(&'a str, Option<&'a str>)>,
    /// From, To and CSeq as the next hop is to see them (outbound calls).
    pub parties: Parties<'a>,
    /// The initial INVITE: credentials meant for trunkd stop here, and (outbound) the
    /// sender's Route and P-Asserted-Identity go, trunkd choosing both.
    pub initial: bool,
    pub drop_route_and_pai: bool,
    /// Whole header lines to add, without their CRLF: P-Asserted-Identity, credentials.
    pub extra: &'a [&'a str],
}

/// Replacements for From and To (the name-addr without its tag: the message's own tag is
/// kept) and the CSeq number (its method is kept), for a call whose two sides see
/// different parties and sequence numbers.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Parties<'a> {
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub cseq: Option<u32>,
}

impl Parties<'_> {
    fn is_empty(&self) -> bool {
        self.from.is_none() && self.to.is_none() && self.cseq.is_none()
    }

    fn len(&self) -> usize {
        self.from.map_or(0, str::len) + self.to.map_or(0, str::len)
    }

    /// Writes `header` as replaced, or returns false when it is not one replaced here.
    fn write(&self, out: &mut Vec<u8>, header: &Header<'_>) -> bool {
        let (label, view) = match header.name {
            HeaderName::From => ("From: ", self.from),
            HeaderName::To => ("To: ", self.to),
            HeaderName::CSeq => {
                let Some(sequence) = self.cseq else {
                    return false;
                };
                let Ok(cseq) = CSeq::parse(header.value) else {
                    return false;
                };
                out.extend_from_slice(b"CSeq: ");
                push_decimal(out, sequence.into());
                out.push(b' ');
                out.extend_from_slice(cseq.method.as_bytes());
                out.extend_from_slice(b"\r\n");
                return true;
            }
            _ => return false,
        };
        let Some(view) = view else {
            return false;
        };
        let tag = NameAddr::parse(header.value)
            .ok()
            .and_then(|value| value.tag);
        out.extend_from_slice(label.as_bytes());
        out.extend_from_slice(view.as_bytes());
        if let Some(tag) = tag {
            out.extend_from_slice(b";tag=");
            out.extend_from_slice(tag);
        }
        out.extend_from_slice(b"\r\n");
        true
    }
}

/// Forwards a request with our Via on top (`hop`), as `edits` say.
pub(crate) fn request(
    out: &mut Vec<u8>,
    message: &Scan<'_, '_>,
    source: SocketAddr,
    hop: &Hop<'_>,
    edits: &Edits<'_>,
) -> Result<(), ScanError> {
    out.clear();
    let trunk_header = edits.trunk_header;
    let added: usize = [edits.request_uri, trunk_header.map(|(name, _)| name)]
        .into_iter()
        .flatten()
        .chain(trunk_header.and_then(|(_, value)| value))
        .chain(
            edits
                .record_route
                .iter()
                .flatten()
                .map(|(_, sent_by)| *sent_by),
        )
        .chain(edits.extra.iter().copied())
        .map(str::len)
        .sum::<usize>()
        + edits.parties.len();
    out.reserve(message.message_len() + hop.sent_by.len() + hop.branch.len() + added + GROWTH);
    let method = message.method().ok_or(ScanError::StartLine)?;
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    match edits.request_uri {
        Some(uri) => out.extend_from_slice(uri.as_bytes()),
        None => out.extend_from_slice(message.request_uri().ok_or(ScanError::StartLine)?),
    }
    out.extend_from_slice(b" SIP/2.0\r\n");
    out.extend_from_slice(b"Via: SIP/2.0/");
    out.extend_from_slice(via_transport(hop.transport).as_bytes());
    out.push(b' ');
    out.extend_from_slice(hop.sent_by.as_bytes());
    out.extend_from_slice(b";branch=");
    out.extend_from_slice(hop.branch.as_bytes());
    out.extend_from_slice(b";rport\r\n");
    for &(transport, sent_by) in edits.record_route.iter().flatten() {
        write_record_route(out, transport, sent_by);
    }
    let max_forwards = message.max_forwards()?.unwrap_or(70);
    let replacing = !edits.parties.is_empty();
    let mut first_via = true;
    for header in message.headers() {
        match header.name {
            HeaderName::Via if first_via => {
                first_via = false;
                out.extend_from_slice(b"Via: ");
                write_top_via(out, header.value, source)?;
                out.extend_from_slice(b"\r\n");
                continue;
            }
            HeaderName::MaxForwards | HeaderName::ContentLength => continue,
            // Credentials for trunkd (a credential trunk's digest) stop here.
            HeaderName::ProxyAuthorization if edits.initial => continue,
            HeaderName::Authorization if edits.initial && edits.drop_route_and_pai => continue,
            HeaderName::Route if edits.drop_route_and_pai => continue,
            HeaderName::Route => {
                let kept =
                    ListValues::new(header.value).filter(|value| !is_our_route(value, hop.ours));
                let mut wrote = false;
                for value in kept {
                    out.extend_from_slice(if wrote { b", " } else { b"Route: " });
                    out.extend_from_slice(value);
                    wrote = true;
                }
                if wrote {
                    out.extend_from_slice(b"\r\n");
                }
                continue;
            }
            HeaderName::Other(raw)
                if trunk_header.is_some_and(|(n, _)| raw.eq_ignore_ascii_case(n.as_bytes()))
                    || (edits.drop_route_and_pai
                        && raw.eq_ignore_ascii_case(b"P-Asserted-Identity")) =>
            {
                continue;
            }
            _ if replacing && edits.parties.write(out, header) => continue,
            _ => {}
        }
        out.extend_from_slice(name(&header.name));
        out.extend_from_slice(b": ");
        out.extend_from_slice(header.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Max-Forwards: ");
    push_decimal(out, max_forwards.saturating_sub(1).into());
    out.extend_from_slice(b"\r\n");
    if let Some((name, Some(value))) = trunk_header {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for line in edits.extra {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    write_body(out, message.body());
    Ok(())
}

/// An INVITE `request` wrote, again with a new `branch` in its (first) Via, CSeq
/// `sequence` and the `authorization` line before Content-Length: three splices of known
/// places, no scan (the challenged INVITE of every outbound call). `None` when the bytes
/// are not shaped as `request` writes them.
pub(crate) fn splice_invite(
    forwarded: &[u8],
    branch: &str,
    sequence: u32,
    authorization: &str,
) -> Option<Vec<u8>> {
    let find = |haystack: &[u8], needle: &[u8]| {
        haystack
            .windows(needle.len())
            .position(|window| window == needle)
    };
    let head = find(forwarded, b"\r\n\r\n")? + 2;
    let via = find(&forwarded[..head], b"\r\nVia: ")?;
    let branch_at = via + find(&forwarded[via..head], b";branch=")? + 8;
    let branch_end = branch_at
        + forwarded[branch_at..head]
            .iter()
            .position(|&b| b == b';' || b == b'\r')?;
    let cseq = find(&forwarded[..head], b"\r\nCSeq: ")? + 2;
    let cseq_end = cseq + find(&forwarded[cseq..head], b"\r\n")?;
    let length = find(&forwarded[..head], b"\r\nContent-Length: ")? + 2;
    if !(branch_end < cseq && cseq_end < length) {
        return None;
    }
    let mut out = Vec::with_capacity(forwarded.len() + authorization.len() + 32);
    out.extend_from_slice(&forwarded[..branch_at]);
    out.extend_from_slice(branch.as_bytes());
    out.extend_from_slice(&forwarded[branch_end..cseq]);
    out.extend_from_slice(b"CSeq: ");
    push_decimal(&mut out, sequence.into());
    out.extend_from_slice(b" INVITE");
    out.extend_from_slice(&forwarded[cseq_end..length]);
    out.extend_from_slice(authorization.as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&forwarded[length..]);
    Some(out)
}

/// The ACK to a non-2xx final `response` of an INVITE trunkd sent to `request_uri` with
/// no Route headers (RFC 3261 §17.1.1.3): the response's top Via (ours), From, To (with
/// its tag), Call-ID and CSeq number are the INVITE's, so the INVITE need not be read
/// again.
pub(crate) fn ack_from_response(
    out: &mut Vec<u8>,
    response: &Scan<'_, '_>,
    request_uri: &str,
) -> Result<(), ScanError> {
    out.clear();
    let via = response
        .header(HeaderName::Via)
        .ok_or(ScanError::MissingHeader("Via"))?;
    let via = ListValues::new(via).next().unwrap_or(via);
    let from = response
        .header(HeaderName::From)
        .ok_or(ScanError::MissingHeader("From"))?;
    let to = response
        .header(HeaderName::To)
        .ok_or(ScanError::MissingHeader("To"))?;
    let call_id = response.call_id()?;
    let cseq = response.cseq()?.sequence;
    out.reserve(160 + request_uri.len() + via.len() + from.len() + to.len() + call_id.len());
    out.extend_from_slice(b"ACK ");
    out.extend_from_slice(request_uri.as_bytes());
    out.extend_from_slice(b" SIP/2.0\r\nVia: ");
    // Our Via as we sent it: what the next hop added to it (received, the rport value)
    // goes.
    for (index, part) in via.split(|&b| b == b';').enumerate() {
        let name = part.split(|&b| b == b'=').next().unwrap_or(part);
        if index > 0 {
            if name.trim_ascii().eq_ignore_ascii_case(b"received") {
                continue;
            }
            out.push(b';');
            if name.trim_ascii().eq_ignore_ascii_case(b"rport") {
                out.extend_from_slice(b"rport");
                continue;
            }
        }
        out.extend_from_slice(part);
    }
    out.extend_from_slice(b"\r\nMax-Forwards: 70\r\nFrom: ");
    out.extend_from_slice(from);
    out.extend_from_slice(b"\r\nTo: ");
    out.extend_from_slice(to);
    out.extend_from_slice(b"\r\nCall-ID: ");
    out.extend_from_slice(call_id);
    out.extend_from_slice(b"\r\nCSeq: ");
    push_decimal(out, cseq.into());
    out.extend_from_slice(b" ACK\r\nContent-Length: 0\r\n\r\n");
    Ok(())
}

/// A request trunkd forwarded, sent again with credentials (RFC 3261 §22.2): the same
/// bytes with a new branch in our Via, CSeq `sequence`, and `authorization` (a whole
/// header line) instead of any credentials it carried.
pub(crate) fn reissue(
    out: &mut Vec<u8>,
    forwarded: &Scan<'_, '_>,
    branch: &str,
    sequence: u32,
    authorization: &str,
) -> Result<(), ScanError> {
    out.clear();
    out.reserve(forwarded.message_len() + authorization.len() + GROWTH);
    let method = forwarded.method().ok_or(ScanError::StartLine)?;
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(forwarded.request_uri().ok_or(ScanError::StartLine)?);
    out.extend_from_slice(b" SIP/2.0\r\n");
    let mut first_via = true;
    for header in forwarded.headers() {
        match header.name {
            HeaderName::Via if first_via => {
                first_via = false;
                // Ours, as `request` wrote it: `SIP/2.0/T host:port;branch=...;rport`.
                let value = header.value;
                let start = value
                    .windows(8)
                    .position(|w| w.eq_ignore_ascii_case(b";branch="))
                    .ok_or(ScanError::MissingHeader("Via"))?
                    + 8;
                let end = value[start..]
                    .iter()
                    .position(|&b| b == b';' || b == b',')
                    .map_or(value.len(), |at| start + at);
                out.extend_from_slice(b"Via: ");
                out.extend_from_slice(&value[..start]);
                out.extend_from_slice(branch.as_bytes());
                out.extend_from_slice(&value[end..]);
                out.extend_from_slice(b"\r\n");
                continue;
            }
            HeaderName::CSeq => {
                out.extend_from_slice(b"CSeq: ");
                push_decimal(out, sequence.into());
                out.push(b' ');
                out.extend_from_slice(method.as_bytes());
                out.extend_from_slice(b"\r\n");
                continue;
            }
            HeaderName::ContentLength
            | HeaderName::Authorization
            | HeaderName::ProxyAuthorization => continue,
            _ => {}
        }
        out.extend_from_slice(name(&header.name));
        out.extend_from_slice(b": ");
        out.extend_from_slice(header.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(authorization.as_bytes());
    out.extend_from_slice(b"\r\n");
    write_body(out, forwarded.body());
    Ok(())
}

fn via_transport(transport: Transport) -> &'static str {
    match transport {
        Transport::Udp => "UDP",
        Transport::Tcp => "TCP",
        Transport::Tls => "TLS",
    }
}

/// Relays a response one hop back: removes the top Via entry (ours), copies the rest,
/// with From, To and CSeq as `parties` say.
pub(crate) fn response(
    out: &mut Vec<u8>,
    message: &Scan<'_, '_>,
    parties: &Parties<'_>,
) -> Result<(), ScanError> {
    out.clear();
    out.reserve(message.message_len() + GROWTH);
    let (code, reason) = match message.start_line() {
        crate::sip::scan::StartLine::Response { code, reason } => (code, reason),
        _ => return Err(ScanError::StartLine),
    };
    out.extend_from_slice(b"SIP/2.0 ");
    push_decimal(out, code.into());
    out.push(b' ');
    out.extend_from_slice(reason);
    out.extend_from_slice(b"\r\n");
    let mut popped = false;
    for header in message.headers() {
        if header.name == HeaderName::Via && !popped {
            popped = true;
            let mut rest = ListValues::new(header.value).skip(1).peekable();
            if rest.peek().is_none() {
                continue;
            }
            out.extend_from_slice(b"Via: ");
            for (i, value) in rest.enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(value);
            }
            out.extend_from_slice(b"\r\n");
            continue;
        }
        if header.name == HeaderName::ContentLength || parties.write(out, header) {
            continue;
        }
        out.extend_from_slice(name(&header.name));
        out.extend_from_slice(b": ");
        out.extend_from_slice(header.value);
        out.extend_from_slice(b"\r\n");
    }
    write_body(out, message.body());
    Ok(())
}

/// Content-Length, the end of the headers, and the body.
fn write_body(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(b"Content-Length: ");
    push_decimal(out, body.len() as u64);
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

/// The fields of a forwarded INVITE that its ACK (for a non-2xx) and CANCEL repeat
/// (RFC 3261 §9.1, §17.1.1.3).
#[derive(Debug, Clone)]
pub(crate) struct InviteCopy {
    pub request_uri: String,
    pub via: String,
    pub from: Vec<u8>,
    pub to: Vec<u8>,
    pub call_id: Vec<u8>,
    pub cseq: u32,
    pub routes: Vec<Vec<u8>>,
}

impl InviteCopy {
    pub(crate) fn of(forwarded: &Scan<'_, '_>) -> Result<Self, ScanError> {
        let via = forwarded
            .header(HeaderName::Via)
            .ok_or(ScanError::MissingHeader("Via"))?;
        let via = ListValues::new(via).next().unwrap_or(via);
        Ok(InviteCopy {
            request_uri: String::from_utf8_lossy(forwarded.request_uri().unwrap_or_default())
                .into_owned(),
            via: String::from_utf8_lossy(via).into_owned(),
            from: forwarded
                .header(HeaderName::From)
                .unwrap_or_default()
                .to_vec(),
            to: forwarded
                .header(HeaderName::To)
                .unwrap_or_default()
                .to_vec(),
            call_id: forwarded.call_id()?.to_vec(),
            cseq: forwarded.cseq()?.sequence,
            routes: forwarded
                .headers()
                .iter()
                .filter(|h| h.name == HeaderName::Route)
                .map(|h| h.value.to_vec())
                .collect(),
        })
    }

    /// `ACK` (with the response's To, which has the tag) or `CANCEL` (the INVITE's To).
    pub(crate) fn write(&self, out: &mut Vec<u8>, method: &str, to: Option<&[u8]>) {
        out.clear();
        let _ = write!(
            out,
            "{method} {} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\n",
            self.request_uri, self.via
        );
        for route in &self.routes {
            out.extend_from_slice(b"Route: ");
            out.extend_from_slice(route);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"From: ");
        out.extend_from_slice(&self.from);
        out.extend_from_slice(b"\r\nTo: ");
        out.extend_from_slice(to.unwrap_or(&self.to));
        out.extend_from_slice(b"\r\nCall-ID: ");
        out.extend_from_slice(&self.call_id);
        let _ = write!(
            out,
            "\r\nCSeq: {} {method}\r\nContent-Length: 0\r\n\r\n",
            self.cseq
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::scan::{EMPTY_HEADER, MAX_HEADERS, scan};

    const INVITE: &str = "INVITE sip:+15550100001@192.0.2.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-1;rport\r\n\
Max-Forwards: 70\r\n\
Route: <sip:192.0.2.1:5060;lr>, <sip:other.example;lr>\r\n\
From: <sip:+15551230000@carrier.example>;tag=abc\r\n\
To: <sip:+15550100001@192.0.2.1>\r\n\
Call-ID: call-1@carrier\r\n\
CSeq: 7 INVITE\r\n\
X-Trunk: spoofed\r\n\
Contact: <sip:10.0.0.5:5060>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\n";

    #[test]
    fn forwarded_invite_has_our_via_record_route_and_trunk_header() {
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        let message = scan(INVITE.as_bytes(), &mut storage).unwrap();
        let mut out = Vec::new();
        let ours = ["192.0.2.1:5060"];
        let hop = Hop {
            transport: Transport::Udp,
            sent_by: "192.0.2.1:5060",
            branch: "z9hG4bKtk1",
            ours: &ours,
        };
        request(
            &mut out,
            &message,
            "203.0.113.5:5060".parse().unwrap(),
            &hop,
            &Edits {
                request_uri: Some("sip:+15550100001@127.0.0.1:5080"),
                record_route: &[Some((Transport::Udp, "192.0.2.1:5060"))],
                trunk_header: Some(("X-Trunk", Some("carrier"))),
                initial: true,
                ..Edits::default()
            },
        )
        .unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert_eq!(
            text,
            "INVITE sip:+15550100001@127.0.0.1:5080 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKtk1;rport\r\n\
Record-Route: <sip:192.0.2.1:5060;lr>\r\n\
Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-1;rport=5060;received=203.0.113.5\r\n\
Route: <sip:other.example;lr>\r\n\
From: <sip:+15551230000@carrier.example>;tag=abc\r\n\
To: <sip:+15550100001@192.0.2.1>\r\n\
Call-ID: call-1@carrier\r\n\
CSeq: 7 INVITE\r\n\
Contact: <sip:10.0.0.5:5060>\r\n\
Content-Type: application/sdp\r\n\
Max-Forwards: 69\r\n\
X-Trunk: carrier\r\n\
Content-Length: 4\r\n\r\nv=0\n"
        );
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        let forwarded = scan(&out, &mut storage).unwrap();
        let copy = InviteCopy::of(&forwarded).unwrap();
        let mut ack = Vec::new();
        copy.write(&mut ack, "ACK", Some(b"<sip:+15550100001@192.0.2.1>;tag=b"));
        let ack = String::from_utf8(ack).unwrap();
        assert!(ack.starts_with(
            "ACK sip:+15550100001@127.0.0.1:5080 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKtk1;rport\r\n"
        ));
        assert!(ack.contains("\r\nCSeq: 7 ACK\r\n"));
        assert!(ack.contains("\r\nTo: <sip:+15550100001@192.0.2.1>;tag=b\r\n"));
        assert!(ack.contains("\r\nRoute: <sip:other.example;lr>\r\n"));
    }

    #[test]
    fn the_ack_written_from_a_response_is_the_one_written_from_the_invite() {
        let invite = "INVITE sip:02079460000@198.51.100.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.200:5060;branch=z9hG4bKtkabc;rport\r\n\
Via: SIP/2.0/UDP 10.0.0.9:5080;branch=z9hG4bK-1;rport=5080;received=10.0.0.9\r\n\
From: <sip:02079460123@198.51.100.1>;tag=be\r\nTo: <sip:02079460000@198.51.100.1>\r\n\
Call-ID: o1@pbx\r\nCSeq: 2 INVITE\r\nContent-Length: 0\r\n\r\n";
        let response = "SIP/2.0 407 Proxy Authentication Required\r\n\
Via: SIP/2.0/UDP 192.0.2.200:5060;branch=z9hG4bKtkabc;rport=5060;received=192.0.2.200, SIP/2.0/UDP 10.0.0.9:5080;branch=z9hG4bK-1;rport=5080;received=10.0.0.9\r\n\
From: <sip:02079460123@198.51.100.1>;tag=be\r\nTo: <sip:02079460000@198.51.100.1>;tag=cr\r\n\
Call-ID: o1@pbx\r\nCSeq: 2 INVITE\r\nContent-Length: 0\r\n\r\n";
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        let forwarded = scan(invite.as_bytes(), &mut storage).unwrap();
        let mut from_invite = Vec::new();
        let to = b"<sip:02079460000@198.51.100.1>;tag=cr";
        InviteCopy::of(&forwarded)
            .unwrap()
            .write(&mut from_invite, "ACK", Some(to));
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        let response = scan(response.as_bytes(), &mut storage).unwrap();
        let mut from_response = Vec::new();
        ack_from_response(
            &mut from_response,
            &response,
            "sip:02079460000@198.51.100.1",
        )
        .unwrap();
        // What the next hop added to our Via (rport's value, received) is left out: the
        // same bytes as the ACK written from the INVITE.
        assert_eq!(
            String::from_utf8(from_response).unwrap(),
            String::from_utf8(from_invite).unwrap()
        );
    }

    #[test]
    fn a_spliced_invite_is_the_reissued_one() {
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        let message = scan(INVITE.as_bytes(), &mut storage).unwrap();
        let ours = ["192.0.2.1:5060"];
        let hop = Hop {
            transport: Transport::Udp,
            sent_by: "192.0.2.1:5060",
            branch: "z9hG4bKtk1",
            ours: &ours,
        };
        let mut forwarded = Vec::new();
        let edits = Edits {
            request_uri: Some("sip:02079460000@198.51.100.1"),
            parties: Parties {
                from: Some("<sip:02079460123@198.51.100.1>"),
                to: Some("<sip:02079460000@198.51.100.1>"),
                cseq: Some(7),
            },
            initial: true,
            drop_route_and_pai: true,
            ..Edits::default()
        };
        request(
            &mut forwarded,
            &message,
            "203.0.113.5:5060".parse().unwrap(),
            &hop,
            &edits,
        )
        .unwrap();
        let line = "Proxy-Authorization: Digest username=\"u\"";
        let spliced = splice_invite(&forwarded, "z9hG4bKtk2", 8, line).unwrap();
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        let scanned = scan(&forwarded, &mut storage).unwrap();
        let mut reissued = Vec::new();
        reissue(&mut reissued, &scanned, "z9hG4bKtk2", 8, line).unwrap();
        assert_eq!(
            String::from_utf8(spliced).unwrap(),
            String::from_utf8(reissued).unwrap()
        );
    }

    #[test]
    fn relayed_response_loses_only_our_via() {
        let response = "SIP/2.0 180 Ringing\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKtk1;rport=5060, SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-1\r\n\
Record-Route: <sip:192.0.2.1:5060;lr>\r\n\
From: <sip:a@b>;tag=abc\r\nTo: <sip:c@d>;tag=x\r\nCall-ID: call-1@carrier\r\n\
CSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n";
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        let message = scan(response.as_bytes(), &mut storage).unwrap();
        let mut out = Vec::new();
        super::response(&mut out, &message, &Parties::default()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "SIP/2.0 180 Ringing\r\n\
Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-1\r\n\
Record-Route: <sip:192.0.2.1:5060;lr>\r\n\
From: <sip:a@b>;tag=abc\r\nTo: <sip:c@d>;tag=x\r\nCall-ID: call-1@carrier\r\n\
CSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
    }
}
