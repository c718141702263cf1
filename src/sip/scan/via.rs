//! The Via view (RFC 3261 §20.42, RFC 3581 `rport`): the usual `SIP/2.0/UDP host;params`
//! read from delimiter to delimiter, anything else by the grammar.

use nom::Parser;
use nom::bytes::complete::take_while1;
use nom::character::complete::char;

use super::ScanError;
use super::bytes::{
    HOST, Pattern, TOKEN, class_len, decimal_u32, is_ipv6, is_lws, is_token, lws0, skip_lws,
    trim_lws, word_at,
};
use super::params::{Param, Params};
use crate::sip::classify;

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
    pub(super) fn parse(token: &'a [u8]) -> Self {
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
    pub(super) rport_request: Option<&'a [u8]>,
}

impl<'a> Via<'a> {
    /// The first `rport` parameter without a value, as written (RFC 3581 §4: the client
    /// asks for the source port; the response fills it in). `None` when there is none.
    pub fn rport_request(&self) -> Option<&'a [u8]> {
        self.rport_request
    }

    /// Parses one Via entry, as split by [`ListValues`].
    ///
    /// [`ListValues`]: super::ListValues
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
pub(super) fn parse_port(digits: &[u8]) -> Option<u16> {
    decimal_u32(digits, u32::from(u16::MAX))
        .and_then(|port| u16::try_from(port).ok())
        .filter(|port| *port != 0)
}

/// `host [ COLON port ]` with `COLON = SWS ":" SWS`; an IPv6 reference keeps its brackets.
/// Returns what follows, the host and the port; `None` when there is no host or the port
/// is out of range. Written out by hand (every Via the hot path answers goes through
/// here); [`sent_by_nom`] is the reference the tests hold it to.
pub(super) fn sent_by(input: &[u8]) -> Option<(&[u8], &[u8], Option<u16>)> {
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

#[cfg(test)]
mod tests {
    use super::super::fixtures::{INVITE, plain_via_seeds, request};
    use super::super::oracle::before;
    use super::super::{EMPTY_HEADER, MAX_HEADERS, scan};
    use super::*;

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
}
