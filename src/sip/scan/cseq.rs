//! The CSeq view (RFC 3261 §20.16).

use super::ScanError;
use super::bytes::{decimal_u32, skip_lws, trim_lws};
use super::start_line::Method;

/// `CSeq = 1*DIGIT LWS Method` (RFC 3261 §20.16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// RFC 3261 §8.1.1.5: "MUST be expressible as a 32-bit unsigned integer".
    pub sequence: u32,
    pub method: Method<'a>,
}

impl<'a> CSeq<'a> {
    /// Whether `value` is 1 to 9 digits, one SP and `method`, nothing else: then
    /// [`CSeq::parse`] reads it, with the method `method` parses to. (Nine digits always
    /// fit a `u32`; `method`, a request line's, is a token.)
    pub(super) fn is_plain(value: &[u8], method: &[u8]) -> bool {
        let digits = value
            .iter()
            .take(10)
            .take_while(|byte| byte.is_ascii_digit())
            .count();
        (1..=9).contains(&digits)
            && value.get(digits) == Some(&b' ')
            && value.get(digits + 1..) == Some(method)
    }

    /// Read by hand (every request the hot path admits has one); `CSeq::parse_nom` (test only) is
    /// the grammar the tests hold it to.
    pub fn parse(value: &'a [u8]) -> Result<Self, ScanError> {
        const MALFORMED: ScanError = ScanError::MalformedHeader("CSeq");
        let value = trim_lws(value);
        let digits = value.iter().take_while(|b| b.is_ascii_digit()).count();
        let (sequence, rest) = value.split_at_checked(digits).ok_or(MALFORMED)?;
        let spaces = skip_lws(rest, 0);
        let method = rest.get(spaces..).unwrap_or_default();
        if digits == 0 || spaces == 0 || method.is_empty() {
            return Err(MALFORMED);
        }
        let sequence = decimal_u32(sequence, u32::MAX).ok_or(MALFORMED)?;
        // Method::parse refuses anything but a token.
        let method = Method::parse(method).ok_or(MALFORMED)?;
        Ok(CSeq { sequence, method })
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{INVITE, request, variants};
    use super::super::{EMPTY_HEADER, MAX_HEADERS, scan};
    use super::*;

    /// A CSeq taken as plain is one `CSeq::parse` reads, with the request's method; and the
    /// usual ones are taken. Every variant of a few seeds, against each of a few methods.
    #[test]
    fn plain_cseqs_are_what_the_parse_reads() {
        let methods: [&[u8]; 5] = [b"INVITE", b"ACK", b"OPTIONS", b"X-FOO", b"9A"];
        let seeds: [&[u8]; 6] = [
            b"102 INVITE",
            b"1 ACK",
            b"123456789 OPTIONS",
            b"4294967295 INVITE",
            b"0 X-FOO",
            b"7 9A",
        ];
        let mut plain = 0;
        for seed in seeds {
            for value in variants(seed) {
                for method in methods {
                    if !CSeq::is_plain(&value, method) {
                        continue;
                    }
                    plain += 1;
                    let parsed = CSeq::parse(&value).map(|cseq| cseq.method);
                    assert_eq!(parsed, Ok(Method::parse(method).unwrap()), "{value:?}");
                }
            }
        }
        assert!(plain > 6, "{plain}");
        assert!(CSeq::is_plain(b"102 INVITE", b"INVITE"));
        assert!(!CSeq::is_plain(b"102 INVITE", b"ACK"));
        assert!(!CSeq::is_plain(b"1234567890 INVITE", b"INVITE"));
        assert!(!CSeq::is_plain(b"102  INVITE", b"INVITE"));
    }

    #[test]
    fn call_id_and_cseq() {
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        let message = scan(INVITE, &mut storage).unwrap();
        assert_eq!(
            message.call_id().unwrap(),
            b"a84b4c76e66710@pc33.example.net"
        );
        assert_eq!(
            message.cseq().unwrap(),
            CSeq {
                sequence: 314_159,
                method: Method::Invite
            }
        );
        assert_eq!(
            CSeq::parse(b"4294967295 foo").unwrap(),
            CSeq {
                sequence: u32::MAX,
                method: Method::Other(b"foo")
            }
        );
        for value in [
            &b"abc INVITE"[..],
            b"4294967296 INVITE",
            b"1INVITE",
            b"1 INVITE x",
            b"-1 INVITE",
            b"1",
            b"INVITE",
            b"1 INV@TE",
        ] {
            assert_eq!(
                CSeq::parse(value),
                Err(ScanError::MalformedHeader("CSeq")),
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
        let bytes = request("Call-ID: has space@host\r\n");
        let mut storage = [EMPTY_HEADER; 4];
        let message = scan(&bytes, &mut storage).unwrap();
        assert_eq!(
            message.call_id(),
            Err(ScanError::MalformedHeader("Call-ID"))
        );
        let bytes = request("Call-ID:\r\n");
        let mut storage = [EMPTY_HEADER; 4];
        let message = scan(&bytes, &mut storage).unwrap();
        assert_eq!(
            message.call_id(),
            Err(ScanError::MalformedHeader("Call-ID"))
        );
    }
}
