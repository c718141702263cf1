//! The parsers the hand-written ones replaced, kept only as references for the tests: the
//! nom readers of the grammar (`*_nom`), and in [`before`] the parsers as they were before
//! the instruction-count rewrite of the admit path. The tests below hold the parsers in
//! use to them over every one-byte change of their seeds.

use nom::Parser;
use nom::bytes::complete::take_while1;
use nom::character::complete::char;
use nom::combinator::eof;

use super::ScanError;
use super::bytes::{
    Res, fail, is_host, is_ipv6, is_lws, is_param_value, is_token, is_uri, lws0, parse_decimal,
    trim_lws,
};
use super::cseq::CSeq;
use super::params::{Param, quoted_string};
use super::start_line::{Method, StartLine, check_version, version};
use super::uri::uri_scheme;
use super::via::parse_port;

/// The nom parser [`request_line`] replaced, as the reference the tests hold it to.
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

/// The nom parser [`sent_by`] replaced, as the reference the tests hold it to.
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

/// The nom parser [`generic_param`] replaced, as the reference the tests hold it to.
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

impl<'a> CSeq<'a> {
    /// The nom parser [`CSeq::parse`] replaced, as the reference the tests hold it to.
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

/// The parsers as they were before the instruction-count rewrite of the admit path,
/// verbatim but for their names: the references the rewritten ones are held to over
/// every one-byte change of their seeds (`rewritten_parsers_read_what_their_predecessors_read`).
pub(super) mod before {
    use super::super::bytes::{
        is_host, is_ipv6, is_lws, is_param_value, is_text, is_token, trim_lws,
    };
    use super::super::{CSeq, Method, NameAddr, Param, Rport, ScanError, Transport, Via};
    use crate::sip::classify;
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

    pub(in crate::sip::scan) fn via(value: &[u8]) -> Result<Via<'_>, ScanError> {
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
    pub(super) fn params_of(mut rest: &[u8]) -> impl Iterator<Item = Result<Param<'_>, ScanError>> {
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
        let user = if scheme.eq_ignore_ascii_case(b"sip") || scheme.eq_ignore_ascii_case(b"sips") {
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

#[cfg(test)]
mod tests {
    use super::super::NameAddr;
    use super::super::bytes::decimal_u32;
    use super::super::fixtures::{plain_via_seeds, variants};
    use super::super::params::{Params, generic_param};
    use super::super::start_line::request_line;
    use super::super::uri::uri_user;
    use super::super::via::{Transport, Via, sent_by};
    use super::*;

    /// Every rewritten parser accepts and refuses what its predecessor did, and returns
    /// the same slices, over every one-byte change of the seeds (see `variants`).
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
                assert_eq!(request_line(&line), request_line_nom(&line), "{line:?}");
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
}
