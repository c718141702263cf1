//! Wire vectors for the hot-path scanner and the stream framer: one test per
//! `tests/data/*.sip` file, asserting exact extracted values or the exact error.
//!
//! 01–09 are copies of the shared corpus; 10–12 add IPv6, folding and a scanner's INVITE;
//! 9x are malformed. Files are CRLF and kept byte-exact by `tests/data/.gitattributes`.

use trunkd::sip::scan::frame::{Frame, FrameError, frame};
use trunkd::sip::scan::{
    CSeq, Contact, EMPTY_HEADER, HeaderName, MAX_HEADERS, MAX_MESSAGE_LEN, Method, Rport, Scan,
    ScanError, ScanOptions, Transport, eq_unfolded, scan, scan_lean, scan_with,
};

macro_rules! vector {
    ($name:literal) => {
        ($name, include_bytes!(concat!("data/", $name)) as &[u8])
    };
}

const INVITE_CARRIER: (&str, &[u8]) = vector!("01-invite-carrier.sip");
const INVITE_COMPACT: (&str, &[u8]) = vector!("02-invite-compact.sip");
const OPTIONS_PING: (&str, &[u8]) = vector!("03-options-ping.sip");
const REGISTER_AUTH: (&str, &[u8]) = vector!("04-register-auth.sip");
const CHALLENGE_401: (&str, &[u8]) = vector!("05-401-challenge.sip");
const OK_200_REGISTER: (&str, &[u8]) = vector!("06-200-register.sip");
const BYE: (&str, &[u8]) = vector!("07-bye.sip");
const CANCEL: (&str, &[u8]) = vector!("08-cancel.sip");
const ACK: (&str, &[u8]) = vector!("09-ack.sip");
const INVITE_IPV6: (&str, &[u8]) = vector!("10-invite-ipv6.sip");
const INVITE_FOLDED: (&str, &[u8]) = vector!("11-invite-folded.sip");
const INVITE_SCANNER: (&str, &[u8]) = vector!("12-invite-scanner.sip");

const BAD_MISSING_EMPTY_LINE: (&str, &[u8]) = vector!("90-bad-missing-empty-line.sip");
const BAD_START_LINE: (&str, &[u8]) = vector!("91-bad-start-line.sip");
const BAD_NEGATIVE_LENGTH: (&str, &[u8]) = vector!("92-bad-negative-content-length.sip");
const BAD_HUGE_LENGTH: (&str, &[u8]) = vector!("93-bad-huge-content-length.sip");
const BAD_TRUNCATED_BODY: (&str, &[u8]) = vector!("94-bad-truncated-body.sip");
const BAD_NO_COLON: (&str, &[u8]) = vector!("95-bad-header-without-colon.sip");
const BAD_BARE_LF: (&str, &[u8]) = vector!("96-bad-bare-lf.sip");
const BAD_VERSION: (&str, &[u8]) = vector!("97-bad-version.sip");

const WELL_FORMED: [(&str, &[u8]); 12] = [
    INVITE_CARRIER,
    INVITE_COMPACT,
    OPTIONS_PING,
    REGISTER_AUTH,
    CHALLENGE_401,
    OK_200_REGISTER,
    BYE,
    CANCEL,
    ACK,
    INVITE_IPV6,
    INVITE_FOLDED,
    INVITE_SCANNER,
];

const MALFORMED: [(&str, &[u8]); 8] = [
    BAD_MISSING_EMPTY_LINE,
    BAD_START_LINE,
    BAD_NEGATIVE_LENGTH,
    BAD_HUGE_LENGTH,
    BAD_TRUNCATED_BODY,
    BAD_NO_COLON,
    BAD_BARE_LF,
    BAD_VERSION,
];

/// The values every well-formed vector is checked for.
struct Expected<'e> {
    method: Option<Method<'e>>,
    status: Option<u16>,
    uri_user: Option<&'e [u8]>,
    via_count: usize,
    branch: &'e [u8],
    from_tag: Option<&'e [u8]>,
    to_tag: Option<&'e [u8]>,
    call_id: &'e [u8],
    cseq: CSeq<'e>,
    content_length: usize,
    body_len: usize,
}

/// Scans `vector`, checks the common values, then runs `more` on the scan.
fn check(vector: (&str, &[u8]), expected: Expected<'_>, more: impl FnOnce(&Scan<'_, '_>)) {
    let (name, bytes) = vector;
    let mut storage = [EMPTY_HEADER; MAX_HEADERS];
    let message = scan(bytes, &mut storage).unwrap_or_else(|error| panic!("{name}: {error}"));
    assert_eq!(message.method(), expected.method, "{name}: method");
    assert_eq!(message.status_code(), expected.status, "{name}: status");
    assert_eq!(
        message.request_uri_user(),
        expected.uri_user,
        "{name}: user"
    );
    assert_eq!(message.via_count(), expected.via_count, "{name}: via count");
    let via = message.top_via().unwrap();
    assert_eq!(via.branch, Some(expected.branch), "{name}: branch");
    assert_eq!(
        message.from().unwrap().tag,
        expected.from_tag,
        "{name}: from tag"
    );
    assert_eq!(message.to().unwrap().tag, expected.to_tag, "{name}: to tag");
    assert_eq!(
        message.call_id().unwrap(),
        expected.call_id,
        "{name}: call-id"
    );
    assert_eq!(message.cseq().unwrap(), expected.cseq, "{name}: cseq");
    assert_eq!(
        message.content_length(),
        Some(expected.content_length),
        "{name}: content length"
    );
    assert_eq!(
        message.body().len(),
        expected.body_len,
        "{name}: body length"
    );
    assert_eq!(message.message_len(), bytes.len(), "{name}: message length");
    more(&message);
}

fn scan_error(vector: (&str, &[u8])) -> ScanError {
    let mut storage = [EMPTY_HEADER; MAX_HEADERS];
    match scan(vector.1, &mut storage) {
        Ok(_) => panic!("{} scanned", vector.0),
        Err(error) => error,
    }
}

fn cseq(sequence: u32, method: Method<'_>) -> CSeq<'_> {
    CSeq { sequence, method }
}

fn contact_address<'a>(message: &Scan<'a, '_>) -> trunkd::sip::scan::NameAddr<'a> {
    match message.contact() {
        Ok(Some(Contact::Address(address))) => address,
        other => panic!("expected a contact address, got {other:?}"),
    }
}

// --- well-formed ---------------------------------------------------------------------

#[test]
fn v01_invite_carrier() {
    let expected = Expected {
        method: Some(Method::Invite),
        status: None,
        uri_user: Some(b"+4930901820"),
        via_count: 3,
        branch: b"z9hG4bK-c4a1f0e2-3b1d-1",
        from_tag: Some(b"8a7f3c21"),
        to_tag: None,
        call_id: b"3f2a9c7e-51d4-4b6a-9e8f-0c1d2e3f4a5b@198.51.100.77",
        cseq: cseq(102, Method::Invite),
        content_length: 296,
        body_len: 296,
    };
    check(INVITE_CARRIER, expected, |message| {
        assert_eq!(
            message.request_uri(),
            Some(&b"sip:+4930901820@trunk1.edge.example.com:5060;user=phone"[..])
        );
        assert_eq!(message.headers().len(), 21);
        let via = message.top_via().unwrap();
        assert_eq!(via.transport, Transport::Udp);
        assert_eq!(via.sent_by_host, b"203.0.113.10");
        assert_eq!(via.sent_by_port, Some(5060));
        assert_eq!(via.rport, Rport::Empty);
        assert_eq!(via.received, None);
        let second = message.vias().nth(1).unwrap().unwrap();
        assert_eq!(second.received, Some(&b"198.51.100.20"[..]));
        assert_eq!(second.rport, Rport::Absent);
        let third = message.vias().nth(2).unwrap().unwrap();
        assert_eq!(third.sent_by_host, b"198.51.100.77");
        assert_eq!(third.sent_by_port, None);
        assert_eq!(message.max_forwards(), Ok(Some(67)));
        let from = message.from().unwrap();
        assert_eq!(from.display_name, Some(&b"Alice Example"[..]));
        assert_eq!(
            from.uri,
            b"sip:+4915112345678@carrier.example.net;user=phone"
        );
        assert_eq!(from.user(), Some(&b"+4915112345678"[..]));
        let to = message.to().unwrap();
        assert_eq!(
            to.uri,
            b"sip:+4930901820@trunk1.edge.example.com;user=phone"
        );
        assert_eq!(to.display_name, None);
        let contact = contact_address(message);
        assert_eq!(
            contact.uri,
            b"sip:+4915112345678@203.0.113.10:5060;transport=udp"
        );
        assert_eq!(
            message
                .header_values(HeaderName::RecordRoute)
                .collect::<Vec<_>>(),
            [
                &b"<sip:203.0.113.10;lr;ftag=8a7f3c21>"[..],
                b"<sip:198.51.100.20:5060;lr>"
            ]
        );
        assert_eq!(
            message.header(HeaderName::PAssertedIdentity),
            Some(&b"\"Alice Example\" <sip:+4915112345678@carrier.example.net;user=phone>"[..])
        );
        assert_eq!(
            message.header(HeaderName::Other(b"diversion")),
            Some(&b"<sip:+4930901800@carrier.example.net>;reason=unconditional;counter=1"[..])
        );
        assert_eq!(
            message.header(HeaderName::Supported),
            Some(&b"100rel, timer, replaces"[..])
        );
        assert_eq!(message.header(HeaderName::MinSe), Some(&b"90"[..]));
        assert_eq!(
            message.header(HeaderName::UserAgent),
            Some(&b"CarrierSBC/7.2"[..])
        );
        assert_eq!(
            message.header(HeaderName::ContentType),
            Some(&b"application/sdp"[..])
        );
        assert!(message.body().starts_with(b"v=0\r\no=CarrierSBC 1718293"));
        assert!(message.body().ends_with(b"a=sendrecv\r\n"));
    });
}

#[test]
fn v02_invite_compact() {
    let expected = Expected {
        method: Some(Method::Invite),
        status: None,
        uri_user: Some(b"4930901821"),
        via_count: 2,
        branch: b"z9hG4bKcmp8812",
        from_tag: Some(b"cmp-77f1"),
        to_tag: None,
        call_id: b"cmp-0c3b5e9a1f@192.0.2.44",
        cseq: cseq(1, Method::Invite),
        content_length: 165,
        body_len: 165,
    };
    check(INVITE_COMPACT, expected, |message| {
        assert_eq!(message.headers().len(), 14);
        let via = message.top_via().unwrap();
        assert_eq!(via.sent_by_host, b"198.51.100.33");
        assert_eq!(via.sent_by_port, Some(5060));
        assert_eq!(via.rport, Rport::Empty);
        let second = message.vias().nth(1).unwrap().unwrap();
        assert_eq!(second.sent_by_host, b"192.0.2.44");
        assert_eq!(second.sent_by_port, Some(5080));
        assert_eq!(second.branch, Some(&b"z9hG4bKcmp0071"[..]));
        assert_eq!(message.max_forwards(), Ok(Some(69)));
        assert_eq!(
            message.from().unwrap().uri,
            b"sip:4971112233@pbx.example.org"
        );
        assert_eq!(message.to().unwrap().user(), Some(&b"4930901821"[..]));
        assert_eq!(
            contact_address(message).uri,
            b"sip:4971112233@198.51.100.33:5060"
        );
        assert_eq!(
            message
                .header_values(HeaderName::Supported)
                .collect::<Vec<_>>(),
            [&b"timer"[..], b"100rel"]
        );
        assert_eq!(
            message.header(HeaderName::SessionExpires),
            Some(&b"600"[..])
        );
        let subject = message.header(HeaderName::Subject).unwrap();
        assert_eq!(subject, b"compact form\r\n  headers with a folded line");
        assert!(eq_unfolded(
            subject,
            b"compact form headers with a folded line"
        ));
        assert_eq!(
            message.header(HeaderName::ContentType),
            Some(&b"application/sdp"[..])
        );
        assert!(
            message
                .body()
                .ends_with(b"a=rtpmap:101 telephone-event/8000\r\n")
        );
    });
}

#[test]
fn v03_options_ping() {
    let expected = Expected {
        method: Some(Method::Options),
        status: None,
        uri_user: None,
        via_count: 1,
        branch: b"z9hG4bK-opt-5521a",
        from_tag: Some(b"opt-19d2"),
        to_tag: None,
        call_id: b"opt-4b1e77c0@203.0.113.10",
        cseq: cseq(48211, Method::Options),
        content_length: 0,
        body_len: 0,
    };
    check(OPTIONS_PING, expected, |message| {
        assert_eq!(
            message.request_uri(),
            Some(&b"sip:trunk1.edge.example.com:5060"[..])
        );
        assert_eq!(message.max_forwards(), Ok(Some(70)));
        assert_eq!(message.from().unwrap().user(), Some(&b"ping"[..]));
        assert_eq!(message.to().unwrap().uri, b"sip:trunk1.edge.example.com");
        assert_eq!(message.to().unwrap().user(), None);
        assert_eq!(message.contact(), Ok(None));
        assert_eq!(
            message.header(HeaderName::Accept),
            Some(&b"application/sdp"[..])
        );
    });
}

#[test]
fn v04_register_auth() {
    let expected = Expected {
        method: Some(Method::Register),
        status: None,
        uri_user: None,
        via_count: 1,
        branch: b"z9hG4bK-reg-00002",
        from_tag: Some(b"reg-a1b2c3"),
        to_tag: None,
        call_id: b"reg-5f0e4d3c2b1a@192.0.2.10",
        cseq: cseq(2, Method::Register),
        content_length: 0,
        body_len: 0,
    };
    check(REGISTER_AUTH, expected, |message| {
        assert_eq!(
            message.request_uri(),
            Some(&b"sip:registrar.carrier.example.net"[..])
        );
        assert_eq!(message.from().unwrap().user(), Some(&b"trunk1"[..]));
        let contact = contact_address(message);
        assert_eq!(contact.uri, b"sip:trunk1@192.0.2.10:5060;transport=udp");
        assert_eq!(contact.param(b"expires").unwrap().value, Some(&b"3600"[..]));
        let authorization = message.header(HeaderName::Authorization).unwrap();
        assert!(
            authorization.starts_with(b"Digest username=\"trunk1\", realm=\"carrier.example.net\"")
        );
        assert!(authorization.ends_with(b"nc=00000001, opaque=\"6b8d0f2a\""));
        assert_eq!(message.header(HeaderName::Expires), Some(&b"3600"[..]));
        assert_eq!(
            message.header(HeaderName::Allow),
            Some(&b"INVITE, ACK, BYE, CANCEL, OPTIONS"[..])
        );
    });
}

#[test]
fn v05_401_challenge() {
    let expected = Expected {
        method: None,
        status: Some(401),
        uri_user: None,
        via_count: 1,
        branch: b"z9hG4bK-reg-00001",
        from_tag: Some(b"reg-a1b2c3"),
        to_tag: Some(b"as-4e1f9a"),
        call_id: b"reg-5f0e4d3c2b1a@192.0.2.10",
        cseq: cseq(1, Method::Register),
        content_length: 0,
        body_len: 0,
    };
    check(CHALLENGE_401, expected, |message| {
        assert_eq!(
            message.start_line(),
            trunkd::sip::scan::StartLine::Response {
                code: 401,
                reason: b"Unauthorized"
            }
        );
        let via = message.top_via().unwrap();
        assert_eq!(via.rport, Rport::Value(5060));
        assert_eq!(via.received, Some(&b"192.0.2.10"[..]));
        assert_eq!(
            message.header(HeaderName::WwwAuthenticate),
            Some(
                &b"Digest realm=\"carrier.example.net\", nonce=\"5f3a7c1e9b2d4f60a8c1e3b5d7f9a1c3\", \
opaque=\"6b8d0f2a\", algorithm=MD5, qop=\"auth\""[..]
            )
        );
        assert_eq!(
            message.header(HeaderName::Server),
            Some(&b"CarrierRegistrar/3.1"[..])
        );
        assert_eq!(message.max_forwards(), Ok(None));
    });
}

#[test]
fn v06_200_register() {
    let expected = Expected {
        method: None,
        status: Some(200),
        uri_user: None,
        via_count: 1,
        branch: b"z9hG4bK-reg-00002",
        from_tag: Some(b"reg-a1b2c3"),
        to_tag: Some(b"as-4e1f9a"),
        call_id: b"reg-5f0e4d3c2b1a@192.0.2.10",
        cseq: cseq(2, Method::Register),
        content_length: 0,
        body_len: 0,
    };
    check(OK_200_REGISTER, expected, |message| {
        let via = message.top_via().unwrap();
        assert_eq!(via.rport, Rport::Value(5060));
        assert_eq!(via.received, Some(&b"192.0.2.10"[..]));
        let contacts: Vec<_> = message
            .contacts()
            .map(|contact| match contact.unwrap() {
                Contact::Address(address) => (
                    address.uri,
                    address.user(),
                    address.param(b"expires").and_then(|p| p.value),
                ),
                Contact::Wildcard => panic!("unexpected wildcard"),
            })
            .collect();
        assert_eq!(
            contacts,
            [
                (
                    &b"sip:trunk1@192.0.2.10:5060;transport=udp"[..],
                    Some(&b"trunk1"[..]),
                    Some(&b"3600"[..])
                ),
                (
                    b"sip:trunk1@192.0.2.11:5060;transport=udp",
                    Some(b"trunk1"),
                    Some(b"1187")
                ),
                (
                    b"sip:trunk1@[2001:db8::10]:5060",
                    Some(b"trunk1"),
                    Some(b"45")
                ),
            ]
        );
        assert_eq!(
            message.header(HeaderName::Other(b"Date")),
            Some(&b"Mon, 03 Mar 2025 10:15:42 GMT"[..])
        );
    });
}

#[test]
fn v07_bye() {
    let expected = Expected {
        method: Some(Method::Bye),
        status: None,
        uri_user: Some(b"trunkd"),
        via_count: 3,
        branch: b"z9hG4bK-c4a1f0e2-bye-1",
        from_tag: Some(b"8a7f3c21"),
        to_tag: Some(b"td-9e0f1a2b"),
        call_id: b"3f2a9c7e-51d4-4b6a-9e8f-0c1d2e3f4a5b@198.51.100.77",
        cseq: cseq(103, Method::Bye),
        content_length: 0,
        body_len: 0,
    };
    check(BYE, expected, |message| {
        assert_eq!(
            message.request_uri(),
            Some(&b"sip:trunkd@192.0.2.10:5060"[..])
        );
        assert_eq!(message.max_forwards(), Ok(Some(68)));
        assert_eq!(
            message.header(HeaderName::Reason),
            Some(&b"Q.850;cause=16;text=\"Normal call clearing\""[..])
        );
    });
}

#[test]
fn v08_cancel() {
    let expected = Expected {
        method: Some(Method::Cancel),
        status: None,
        uri_user: Some(b"+4930901820"),
        via_count: 1,
        // RFC 3261 §9.1: a CANCEL carries the branch of the INVITE it cancels.
        branch: b"z9hG4bK-c4a1f0e2-3b1d-1",
        from_tag: Some(b"8a7f3c21"),
        to_tag: None,
        call_id: b"3f2a9c7e-51d4-4b6a-9e8f-0c1d2e3f4a5b@198.51.100.77",
        cseq: cseq(102, Method::Cancel),
        content_length: 0,
        body_len: 0,
    };
    check(CANCEL, expected, |message| {
        assert_eq!(message.max_forwards(), Ok(Some(70)));
        assert_eq!(
            message.header(HeaderName::Reason),
            Some(&b"SIP;cause=487;text=\"Request Terminated\""[..])
        );
    });
}

#[test]
fn v09_ack() {
    let expected = Expected {
        method: Some(Method::Ack),
        status: None,
        uri_user: Some(b"+4930901820"),
        via_count: 1,
        branch: b"z9hG4bK-c4a1f0e2-3b1d-1",
        from_tag: Some(b"8a7f3c21"),
        to_tag: Some(b"td-503-7c1d"),
        call_id: b"3f2a9c7e-51d4-4b6a-9e8f-0c1d2e3f4a5b@198.51.100.77",
        cseq: cseq(102, Method::Ack),
        content_length: 0,
        body_len: 0,
    };
    check(ACK, expected, |message| {
        assert_eq!(message.headers().len(), 7);
        assert_eq!(message.contact(), Ok(None));
    });
}

#[test]
fn v10_invite_ipv6() {
    let expected = Expected {
        method: Some(Method::Invite),
        status: None,
        uri_user: Some(b"+15551234567"),
        via_count: 1,
        branch: b"z9hG4bK-v6-0001",
        from_tag: Some(b"v6-from-1"),
        to_tag: None,
        call_id: b"v6-call-0001@2001:db8::20",
        cseq: cseq(1, Method::Invite),
        content_length: 163,
        body_len: 163,
    };
    check(INVITE_IPV6, expected, |message| {
        assert_eq!(
            message.request_uri(),
            Some(&b"sip:+15551234567@[2001:db8::1]:5060;user=phone"[..])
        );
        let via = message.top_via().unwrap();
        assert_eq!(via.sent_by_host, b"[2001:db8::20]");
        assert_eq!(via.sent_by_port, Some(5060));
        assert_eq!(via.rport, Rport::Empty);
        let from = message.from().unwrap();
        assert_eq!(from.display_name, Some(&b"Carrier v6"[..]));
        assert_eq!(from.uri, b"sip:+4915112345678@[2001:db8::20]");
        assert_eq!(from.user(), Some(&b"+4915112345678"[..]));
        assert_eq!(message.to().unwrap().user(), Some(&b"+15551234567"[..]));
        assert_eq!(
            contact_address(message).uri,
            b"sip:+4915112345678@[2001:db8::20]:5060"
        );
        assert!(
            message
                .body()
                .starts_with(b"v=0\r\no=- 40011 40011 IN IP6 2001:db8::20\r\n")
        );
    });
}

#[test]
fn v11_invite_folded() {
    let expected = Expected {
        method: Some(Method::Invite),
        status: None,
        uri_user: Some(b"4930901822"),
        via_count: 1,
        branch: b"z9hG4bK-fold-01",
        from_tag: Some(b"fold-a1"),
        to_tag: None,
        call_id: b"fold-7d1c@198.51.100.40",
        cseq: cseq(7, Method::Invite),
        content_length: 0,
        body_len: 0,
    };
    check(INVITE_FOLDED, expected, |message| {
        assert_eq!(message.headers().len(), 8);
        assert_eq!(
            message.header(HeaderName::Via),
            Some(&b"SIP/2.0/UDP 198.51.100.40:5060\r\n ;branch=z9hG4bK-fold-01;rport"[..])
        );
        let via = message.top_via().unwrap();
        assert_eq!(via.sent_by_host, b"198.51.100.40");
        assert_eq!(via.sent_by_port, Some(5060));
        assert_eq!(via.rport, Rport::Empty);
        let from = message.from().unwrap();
        assert_eq!(from.display_name, Some(&b"Folded Caller"[..]));
        assert_eq!(from.uri, b"sip:4971100000@pbx.example.org");
        assert_eq!(
            message.header(HeaderName::CSeq),
            Some(&b"7\r\n\tINVITE"[..])
        );
        let subject = message.header(HeaderName::Subject).unwrap();
        assert!(eq_unfolded(subject, b"first part, second part"));
    });
}

#[test]
fn v12_invite_scanner() {
    let expected = Expected {
        method: Some(Method::Invite),
        status: None,
        uri_user: Some(b"100"),
        via_count: 1,
        branch: b"z9hG4bK-2718281828",
        from_tag: Some(b"3663326131303531313363340131363139373432353331"),
        to_tag: None,
        call_id: b"842793061467163532417339",
        cseq: cseq(1, Method::Invite),
        content_length: 0,
        body_len: 0,
    };
    check(INVITE_SCANNER, expected, |message| {
        assert_eq!(
            message.header(HeaderName::UserAgent),
            Some(&b"friendly-scanner"[..])
        );
        let via = message.top_via().unwrap();
        assert_eq!(via.sent_by_host, b"203.0.113.66");
        assert_eq!(via.sent_by_port, Some(5061));
        assert_eq!(message.from().unwrap().display_name, Some(&b"100"[..]));
        assert_eq!(message.to().unwrap().display_name, Some(&b"100"[..]));
        // An addr-spec Contact, without angle brackets.
        let contact = contact_address(message);
        assert_eq!(contact.display_name, None);
        assert_eq!(contact.uri, b"sip:100@203.0.113.66:5061");
        assert_eq!(contact.user(), Some(&b"100"[..]));
    });
}

// --- malformed -----------------------------------------------------------------------

#[test]
fn v90_bad_missing_empty_line() {
    assert_eq!(
        scan_error(BAD_MISSING_EMPTY_LINE),
        ScanError::UnterminatedHeaders
    );
    // On a stream it is simply not complete yet.
    assert_eq!(
        frame(BAD_MISSING_EMPTY_LINE.1, MAX_MESSAGE_LEN),
        Ok(Frame::Incomplete)
    );
}

#[test]
fn v91_bad_start_line() {
    assert_eq!(scan_error(BAD_START_LINE), ScanError::StartLine);
}

#[test]
fn v92_bad_negative_content_length() {
    assert_eq!(
        scan_error(BAD_NEGATIVE_LENGTH),
        ScanError::InvalidContentLength
    );
    assert_eq!(
        frame(BAD_NEGATIVE_LENGTH.1, MAX_MESSAGE_LEN),
        Err(FrameError::InvalidContentLength)
    );
}

#[test]
fn v93_bad_huge_content_length() {
    assert_eq!(scan_error(BAD_HUGE_LENGTH), ScanError::InvalidContentLength);
    assert_eq!(
        frame(BAD_HUGE_LENGTH.1, MAX_MESSAGE_LEN),
        Err(FrameError::InvalidContentLength)
    );
}

#[test]
fn v94_bad_truncated_body() {
    assert_eq!(scan_error(BAD_TRUNCATED_BODY), ScanError::Truncated);
    assert_eq!(
        frame(BAD_TRUNCATED_BODY.1, MAX_MESSAGE_LEN),
        Ok(Frame::Incomplete)
    );
}

#[test]
fn v95_bad_header_without_colon() {
    assert_eq!(scan_error(BAD_NO_COLON), ScanError::MissingColon);
}

#[test]
fn v96_bad_bare_lf() {
    assert_eq!(scan_error(BAD_BARE_LF), ScanError::BareLf);
    // Accepted only when a listener opts in.
    let lenient = ScanOptions {
        allow_bare_lf: true,
        ..ScanOptions::DATAGRAM
    };
    let mut storage = [EMPTY_HEADER; MAX_HEADERS];
    let message = scan_with(BAD_BARE_LF.1, &mut storage, lenient).unwrap();
    assert_eq!(message.method(), Some(Method::Options));
    assert_eq!(message.call_id(), Ok(&b"bad-0001@203.0.113.10"[..]));
    assert_eq!(message.cseq(), Ok(cseq(1, Method::Options)));
    assert_eq!(
        message.top_via().unwrap().branch,
        Some(&b"z9hG4bK-bad-0001"[..])
    );
    assert_eq!(message.body(), b"");
    // The framer looks for CRLF CRLF only.
    assert_eq!(frame(BAD_BARE_LF.1, MAX_MESSAGE_LEN), Ok(Frame::Incomplete));
}

#[test]
fn v97_bad_version() {
    assert_eq!(scan_error(BAD_VERSION), ScanError::UnsupportedVersion);
}

// --- the set as a whole --------------------------------------------------------------

#[test]
fn every_vector_file_has_a_test() {
    let directory = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let mut on_disk: Vec<String> = std::fs::read_dir(directory)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".sip"))
        .collect();
    on_disk.sort();
    let mut known: Vec<String> = WELL_FORMED
        .iter()
        .chain(MALFORMED.iter())
        .map(|(name, _)| (*name).to_owned())
        .collect();
    known.sort();
    assert_eq!(on_disk, known);
}

#[test]
fn vectors_use_crlf() {
    for (name, bytes) in WELL_FORMED.iter().chain(MALFORMED.iter()) {
        if *name == BAD_BARE_LF.0 {
            assert!(!bytes.contains(&b'\r'), "{name} should be LF only");
            continue;
        }
        for (index, &byte) in bytes.iter().enumerate() {
            if byte == b'\n' {
                assert!(
                    index > 0 && bytes[index - 1] == b'\r',
                    "{name}: bare LF at byte {index} (was the file converted?)"
                );
            }
        }
    }
}

#[test]
fn well_formed_vectors_frame_as_one_stream() {
    let stream: Vec<u8> = WELL_FORMED
        .iter()
        .flat_map(|(_, bytes)| bytes.iter().copied().chain(*b"\r\n\r\n"))
        .collect();
    let mut buffer = Vec::new();
    let mut framed = Vec::new();
    for &byte in &stream {
        buffer.push(byte);
        loop {
            match frame(&buffer, MAX_MESSAGE_LEN).unwrap() {
                Frame::Incomplete => break,
                Frame::KeepAlive { len } => {
                    buffer.drain(..len);
                }
                Frame::Message { len } => framed.push(buffer.drain(..len).collect::<Vec<u8>>()),
            }
        }
    }
    assert!(buffer.is_empty());
    assert_eq!(framed.len(), WELL_FORMED.len());
    for ((name, bytes), message) in WELL_FORMED.iter().zip(&framed) {
        assert_eq!(message.as_slice(), *bytes, "{name}");
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        let scanned = scan_with(message, &mut storage, ScanOptions::STREAM)
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(scanned.message_len(), bytes.len(), "{name}");
    }
}

/// The hot path reads every datagram with `scan_lean`: on each vector it must give what
/// `scan` gives, the error of a malformed one included.
#[test]
fn lean_scan_reads_every_vector_as_scan_does() {
    for (name, bytes) in WELL_FORMED.iter().chain(MALFORMED.iter()) {
        let mut storage = [EMPTY_HEADER; MAX_HEADERS];
        match (
            scan(bytes, &mut storage),
            scan_lean(bytes, ScanOptions::DATAGRAM),
        ) {
            (Err(full), Err(lean)) => assert_eq!(full, lean, "{name}"),
            (Ok(full), Ok(lean)) => {
                assert!(lean.headers().eq(full.headers().iter().copied()), "{name}");
                assert_eq!(lean.start_line(), full.start_line(), "{name}");
                assert_eq!(lean.top_via(), full.top_via(), "{name}");
                assert_eq!(lean.from(), full.from(), "{name}");
                assert_eq!(lean.to().copied(), full.to(), "{name}");
                assert_eq!(lean.call_id(), full.call_id(), "{name}");
                assert_eq!(lean.cseq(), full.cseq(), "{name}");
                assert_eq!(lean.max_forwards(), full.max_forwards(), "{name}");
                assert_eq!(lean.contact(), full.contact(), "{name}");
                assert_eq!(lean.via_count(), full.via_count(), "{name}");
                assert_eq!(lean.body(), full.body(), "{name}");
                assert_eq!(lean.message_len(), full.message_len(), "{name}");
            }
            (full, lean) => panic!("{name}: scan {full:?}, scan_lean {lean:?}"),
        }
    }
}
