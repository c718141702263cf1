//! Address headers: From, To and Contact entries (RFC 3261 §20.10, §20.20, §20.39).

use super::ScanError;
use super::bytes::{Pattern, is_lws, is_text, trim_lws, word_at};
use super::params::{Param, Params, quoted_string};
use super::uri::{uri_scheme, uri_user};
use crate::sip::classify;

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
    ///
    /// [`Scan`]: super::Scan
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

#[cfg(test)]
mod tests {
    use super::super::fixtures::request;
    use super::super::{EMPTY_HEADER, scan};
    use super::*;

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
}
