//! Where a request inside a call goes next (RFC 3261 §16.5, §16.6 step 7, §12.2.1.1):
//! the first Route entry left once ours are removed, else the Request-URI, which inside a
//! dialog is the other side's Contact.
//!
//! Only IP literals are used as they are; a host name falls back to the address the
//! call already knows for that side (the control path resolves nothing on the call path). An
//! address in a private range while the peer talks to us from a public one is what a NAT
//! does to a Contact, and the peer's own address is used instead.

use std::net::{IpAddr, SocketAddr};

use crate::config::Transport;
use crate::sip::scan::{ListValues, NameAddr, Params, uri_scheme};

/// A URI's next hop as an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target {
    pub address: SocketAddr,
    pub transport: Transport,
}

/// The host, port and transport of a `sip:` or `sips:` URI whose host is an IP literal;
/// the port defaults to 5060 (5061 for TLS). `None` for other schemes, host names and
/// anything malformed.
pub(crate) fn of_uri(uri: &[u8]) -> Option<Target> {
    let (scheme, rest) = uri_scheme(uri)?;
    let secure = if scheme.eq_ignore_ascii_case(b"sips") {
        true
    } else if scheme.eq_ignore_ascii_case(b"sip") {
        false
    } else {
        return None;
    };
    let rest = rest.split(|&b| b == b'?').next().unwrap_or_default();
    let rest = match rest.iter().position(|&b| b == b'@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    let (host_port, params) = match rest.iter().position(|&b| b == b';') {
        Some(semi) => (&rest[..semi], &rest[semi..]),
        None => (rest, &rest[rest.len()..]),
    };
    let (host, port) = split_host_port(host_port)?;
    let ip: IpAddr = std::str::from_utf8(host).ok()?.parse().ok()?;
    let mut transport = if secure {
        Transport::Tls
    } else {
        Transport::Udp
    };
    for param in Params::new(params) {
        let param = param.ok()?;
        if param.name.eq_ignore_ascii_case(b"transport") {
            let value = param.value.unwrap_or_default();
            transport = match value {
                _ if secure => Transport::Tls,
                v if v.eq_ignore_ascii_case(b"udp") => Transport::Udp,
                v if v.eq_ignore_ascii_case(b"tcp") => Transport::Tcp,
                v if v.eq_ignore_ascii_case(b"tls") => Transport::Tls,
                _ => return None,
            };
        }
    }
    let port = match port {
        Some(port) => port,
        None if transport == Transport::Tls => 5061,
        None => 5060,
    };
    Some(Target {
        address: SocketAddr::new(ip, port),
        transport,
    })
}

/// `host[:port]` with an IPv6 reference in brackets; the host without them.
fn split_host_port(text: &[u8]) -> Option<(&[u8], Option<u16>)> {
    let (host, port) = if let Some(inner) = text.strip_prefix(b"[") {
        let close = inner.iter().position(|&b| b == b']')?;
        let after = &inner[close + 1..];
        let port = match after {
            [] => None,
            [b':', digits @ ..] => Some(digits),
            _ => return None,
        };
        (&inner[..close], port)
    } else {
        match text.iter().position(|&b| b == b':') {
            Some(colon) => (&text[..colon], Some(&text[colon + 1..])),
            None => (text, None),
        }
    };
    let port = match port {
        None => None,
        Some(digits) => Some(std::str::from_utf8(digits).ok()?.parse::<u16>().ok()?),
    };
    (!host.is_empty()).then_some((host, port))
}

/// The next hop of a request inside a call: the first Route entry not `ours`, else the
/// Request-URI. `None` when that hop is not an address (a host name, another scheme).
pub(crate) fn next_hop<'a>(
    routes: impl Iterator<Item = &'a [u8]>,
    request_uri: &[u8],
    ours: impl Fn(&[u8]) -> bool,
) -> Option<Target> {
    let mut routes = routes
        .flat_map(ListValues::new)
        .filter(|value| !ours(value));
    let uri = match routes.next() {
        Some(route) => NameAddr::parse(route).ok()?.uri,
        None => request_uri,
    };
    of_uri(uri)
}

/// `target`, unless it is an internal address while `peer` is not: then a NAT rewrote
/// the peer's address and the Contact still names the inside, so the peer's address wins.
pub(crate) fn behind_nat(target: SocketAddr, peer: SocketAddr) -> SocketAddr {
    if is_internal(target.ip()) && !is_internal(peer.ip()) {
        peer
    } else {
        target
    }
}

/// Private, shared (RFC 6598), loopback, link-local, unique-local or unspecified.
fn is_internal(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(address: &str, transport: Transport) -> Option<Target> {
        Some(Target {
            address: address.parse().unwrap(),
            transport,
        })
    }

    #[test]
    fn ip_literal_uris_name_their_hop() {
        let cases: &[(&str, Option<Target>)] = &[
            ("sip:10.0.0.9:5080", target("10.0.0.9:5080", Transport::Udp)),
            (
                "sip:+15551230000@203.0.113.10;user=phone",
                target("203.0.113.10:5060", Transport::Udp),
            ),
            (
                "sip:a@203.0.113.10:5070;transport=TCP;ob",
                target("203.0.113.10:5070", Transport::Tcp),
            ),
            (
                "sip:203.0.113.10;lr;transport=tls",
                target("203.0.113.10:5061", Transport::Tls),
            ),
            (
                "sips:b@[2001:db8::7]",
                target("[2001:db8::7]:5061", Transport::Tls),
            ),
            (
                "sip:b@[2001:db8::7]:5090;transport=udp?Subject=x",
                target("[2001:db8::7]:5090", Transport::Udp),
            ),
            ("sip:b@sbc.carrier.example:5060", None),
            ("tel:+15551230000", None),
            ("sip:b@203.0.113.10:99999", None),
            ("sip:b@203.0.113.10;transport=sctp", None),
            ("sip:b@[2001:db8::7", None),
            ("sip:", None),
        ];
        for (uri, expected) in cases {
            assert_eq!(of_uri(uri.as_bytes()), *expected, "{uri}");
        }
    }

    #[test]
    fn the_first_route_not_ours_wins_over_the_request_uri() {
        let ours = |value: &[u8]| value == b"<sip:192.0.2.200:5060;lr>";
        let routes: [&[u8]; 2] = [
            b"<sip:192.0.2.200:5060;lr>",
            b"<sip:203.0.113.10;lr;ftag=x>, <sip:198.51.100.1;lr>",
        ];
        assert_eq!(
            next_hop(routes.into_iter(), b"sip:10.0.0.1:5060", ours),
            target("203.0.113.10:5060", Transport::Udp)
        );
        assert_eq!(
            next_hop(routes[..1].iter().copied(), b"sip:a@10.0.0.9:5080", ours),
            target("10.0.0.9:5080", Transport::Udp)
        );
        assert_eq!(
            next_hop(std::iter::empty(), b"sip:a@pbx.example", ours),
            None
        );
    }

    #[test]
    fn a_private_contact_from_a_public_peer_is_a_nat() {
        let peer: SocketAddr = "203.0.113.10:38211".parse().unwrap();
        let private: SocketAddr = "192.168.1.20:5060".parse().unwrap();
        let public: SocketAddr = "203.0.113.11:5060".parse().unwrap();
        assert_eq!(behind_nat(private, peer), peer);
        assert_eq!(behind_nat(public, peer), public);
        let backend: SocketAddr = "10.0.0.9:5080".parse().unwrap();
        let lan: SocketAddr = "10.0.0.12:5080".parse().unwrap();
        assert_eq!(behind_nat(lan, backend), lan, "both inside: no NAT");
        for inside in [
            "100.64.0.1:5060",
            "[fd00::1]:5060",
            "[fe80::1]:5060",
            "127.0.0.1:5060",
        ] {
            assert_eq!(behind_nat(inside.parse().unwrap(), peer), peer, "{inside}");
        }
    }
}
