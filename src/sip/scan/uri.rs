//! The two URI reads the scanner's callers route on: the scheme, and the user part of a
//! sip:, sips: or tel: URI, borrowed as written.

use super::bytes::{Pattern, word_at};
use crate::sip::classify;

/// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` before the first `:`; returns
/// the scheme and what follows the colon.
///
/// Reads only the scheme's bytes: a colon is no scheme byte, so the first byte that is
/// not one must be the first colon, or the URI has no valid scheme. (A memchr for the
/// colon would cost more than the four bytes of `sip:`.)
pub fn uri_scheme(uri: &[u8]) -> Option<(&[u8], &[u8])> {
    // `sip:` in any case, nearly every URI the hot path reads, by one compare. `| 0x20`
    // maps `S I P` onto `s i p` and nothing else onto them; the colon is compared as is.
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

/// The user part of a URI, raw (escapes as written), for the schemes trunkd routes on:
/// - `sip:`/`sips:` (RFC 3261 §19.1.1): the `user` of `userinfo = user [":" password] "@"`,
///   found at the first `@`, which no host, port or parameter may hold unescaped; a
///   telephone-subscriber user keeps its own `;` parameters. An IPv6 host in brackets,
///   `sip:+15551234567@[2001:db8::1]:5060;user=phone`, does not confuse it.
/// - `tel:` (RFC 3966): the number before the first `;`.
///
/// `None` for other schemes and for URIs without a user.
///
/// The three schemes are told from the URI's first word: `sip:`, `sips:` or `tel:` in any
/// case is exactly a scheme [`uri_scheme`] reads as one of them.
pub fn uri_user(uri: &[u8]) -> Option<&[u8]> {
    const SIP: Pattern = Pattern::new(b"sip:");
    const SIPS: Pattern = Pattern::new(b"sips:");
    const TEL: Pattern = Pattern::new(b"tel:");
    let word = word_at(uri);
    let sip = if SIP.matches(word) {
        Some(4)
    } else if SIPS.matches(word) {
        Some(5)
    } else {
        None
    };
    let user = if let Some(start) = sip {
        // The user ends at the first `:` or `@`; it is one only if an `@` follows. (The
        // searches take the whole URI, so that a short rest is still read 16 at once.)
        let end = start + classify::find_user_end(uri, start)?;
        if uri.get(end) != Some(&b'@') {
            classify::find_at(uri, end)?;
        }
        uri.get(start..end)?
    } else if TEL.matches(word) {
        let rest = uri.get(4..)?;
        rest.split(|&b| b == b';' || b == b'?').next()?
    } else {
        return None;
    };
    (!user.is_empty()).then_some(user)
}

#[cfg(test)]
mod tests {
    use memchr::memchr;

    use super::super::fixtures::variants;
    use super::super::{EMPTY_HEADER, scan};
    use super::*;

    #[test]
    fn uri_users() {
        let cases: [(&[u8], Option<&[u8]>); 12] = [
            (
                b"sip:+15551234567@[2001:db8::1]:5060;user=phone",
                Some(b"+15551234567"),
            ),
            (b"sip:[2001:db8::1]:5060", None),
            (b"sip:alice@example.com", Some(b"alice")),
            (b"SIPS:alice@example.com", Some(b"alice")),
            (b"sip:alice:secret@example.com", Some(b"alice")),
            (b"sip:example.com;transport=tcp", None),
            (b"sip:@example.com", None),
            (
                b"sip:+1555;phone-context=example.com@example.com",
                Some(b"+1555;phone-context=example.com"),
            ),
            (
                b"tel:+15551234567;phone-context=example.com",
                Some(b"+15551234567"),
            ),
            (b"tel:+15551234567", Some(b"+15551234567")),
            (b"http://example.com/", None),
            (b"no-scheme", None),
        ];
        for (uri, user) in cases {
            assert_eq!(uri_user(uri), user, "{:?}", String::from_utf8_lossy(uri));
        }
        // The two-pass reading it replaced, as the reference, over every one-byte change.
        fn user_reference(uri: &[u8]) -> Option<&[u8]> {
            let (scheme, rest) = uri_scheme(uri)?;
            let user =
                if scheme.eq_ignore_ascii_case(b"sip") || scheme.eq_ignore_ascii_case(b"sips") {
                    let at = rest.iter().position(|&b| b == b'@')?;
                    rest.get(..at)?.split(|&b| b == b':').next()?
                } else if scheme.eq_ignore_ascii_case(b"tel") {
                    rest.split(|&b| b == b';' || b == b'?').next()?
                } else {
                    return None;
                };
            (!user.is_empty()).then_some(user)
        }
        for seed in [
            &b"sip:alice:secret@example.com:5060;transport=tcp"[..],
            b"SIPS:+1555;phone-context=x@[2001:db8::1]",
            b"tel:+15551234567;phone-context=example.com",
        ] {
            for uri in variants(seed) {
                assert_eq!(uri_user(&uri), user_reference(&uri), "{uri:?}");
            }
        }
        assert_eq!(uri_scheme(b"sip:a"), Some((&b"sip"[..], &b"a"[..])));
        assert_eq!(uri_scheme(b"1sip:a"), None);
        assert_eq!(uri_scheme(b":a"), None);
        // The colon search it replaced, as the reference.
        fn reference(uri: &[u8]) -> Option<(&[u8], &[u8])> {
            let colon = memchr(b':', uri)?;
            let scheme = uri.get(..colon)?;
            let (first, others) = scheme.split_first()?;
            let valid = first.is_ascii_alphabetic()
                && others
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
            valid.then(|| (scheme, uri.get(colon + 1..).unwrap_or_default()))
        }
        crate::testing::every_string(b"sSiIpP1+-.:@;\x1a \xff", 5, |uri| {
            assert_eq!(uri_scheme(uri), reference(uri), "{uri:?}");
        });
    }

    #[test]
    fn ipv6_request_uri() {
        let bytes = b"INVITE sip:+15551234567@[2001:db8::1]:5060;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP [2001:db8::20]:5060;branch=z9hG4bK6\r\nContent-Length: 0\r\n\r\n";
        let mut storage = [EMPTY_HEADER; 4];
        let message = scan(bytes, &mut storage).unwrap();
        assert_eq!(
            message.request_uri(),
            Some(&b"sip:+15551234567@[2001:db8::1]:5060;user=phone"[..])
        );
        assert_eq!(message.request_uri_user(), Some(&b"+15551234567"[..]));
        assert_eq!(message.top_via().unwrap().sent_by_host, b"[2001:db8::20]");
    }
}
