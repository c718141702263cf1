//! What the tests of several files share: messages, and generators of inputs.

use super::{EMPTY_HEADER, MAX_HEADERS, ScanError, ScanOptions, scan};

pub(super) const INVITE: &[u8] =
    b"INVITE sip:+15551234567@trunk.example.com;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK776asdhds;rport\r\n\
Via: SIP/2.0/TCP proxy.example.net;branch=z9hG4bKnashds8;received=192.0.2.3\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@carrier.example.net>;tag=1928301774\r\n\
To: <sip:+15551234567@trunk.example.com>\r\n\
Call-ID: a84b4c76e66710@pc33.example.net\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@198.51.100.7:5060>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 5\r\n\
\r\n\
v=0\r\n";

pub(super) const LENIENT: ScanOptions = ScanOptions {
    allow_bare_lf: true,
    require_content_length: false,
};

/// A request with the given header block (each line ending in CRLF) and no body.
pub(super) fn request(headers: &str) -> Vec<u8> {
    format!("OPTIONS sip:trunk.example.com SIP/2.0\r\n{headers}\r\n").into_bytes()
}

pub(super) fn scan_error(bytes: &[u8]) -> ScanError {
    let mut storage = [EMPTY_HEADER; MAX_HEADERS];
    scan(bytes, &mut storage).expect_err("scan should fail")
}

/// Every line from `seed` with one byte replaced, cut short, or one byte inserted.
pub(super) fn variants(seed: &[u8]) -> Vec<Vec<u8>> {
    let replacements = [
        0x00, 0x7f, 0xff, b'\r', b'\n', b' ', b'\t', b':', b';', b',', b'<', b'>', b'"', b'\\',
        b'[', b']', b'@', b'=', b'/', b'0', b'9', b'a', b'Z', b'.', b'-',
    ];
    let mut out = vec![seed.to_vec()];
    for index in 0..=seed.len() {
        out.push(seed[..index].to_vec());
        for replacement in replacements {
            let mut inserted = seed.to_vec();
            inserted.insert(index, replacement);
            out.push(inserted);
            if index < seed.len() {
                let mut replaced = seed.to_vec();
                replaced[index] = replacement;
                out.push(replaced);
            }
        }
    }
    out
}

/// Vias of the plain shape: transports, hosts, ports, parameter orders and cases, and
/// lengths after `SIP/2.0/` at and around 16, 32, 48, 64 and 128.
pub(super) fn plain_via_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = [
        &b"SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-524287-1---a3f2c9e1d7b04c55;rport"[..],
        b"SIP/2.0/TCP a.example.com:5061;branch=z9hG4bK.1;received=192.0.2.44;rport=5060",
        b"SIP/2.0/TLS pbx-1.carrier.example.net;rport;branch=z9hG4bKabc-DEF.9",
        b"SIP/2.0/SCTP 10.0.0.1:1;BRANCH=z9hG4bK7;RPORT;RECEIVED=10.1.1.1;ttl=3;maddr=h.x",
        b"SIP/2.0/WS h.example:80;received=a;received=b;branch=x;branch=y;rport=1;rport",
        b"sip/2.0/wss Host.Example.ORG:65535;Branch=z9hG4bK-;Rport=65535;Received=h",
        b"Sip/2.0/Udp 198.51.100.7:5060;branch=z9hG4bK776;rport;received=192.0.2.1",
        b"SIP/2.0/UDPX h:5060;x;y=1;branch=z9hG4bK5;rport=5060;rport=6;received=1.2.3.4",
        b"SIP/2.0/udp 203.0.113.10;branch=z9hG4bK1",
    ]
    .iter()
    .map(|seed| seed.to_vec())
    .collect();
    for len in [
        15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 127, 128, 129,
    ] {
        // A longer host, or a longer branch.
        let mut seed = b"SIP/2.0/UDP a".to_vec();
        seed.resize(8 + len - 5, b'b');
        seed.extend(b":5060");
        seeds.push(seed);
        if len >= 31 {
            let mut seed = b"SIP/2.0/UDP 1.2.3.4:5060;branch=z9hG4bK".to_vec();
            seed.resize(8 + len, b'c');
            seeds.push(seed);
        }
    }
    seeds
}

pub(super) const FOLDED_IPV6: &[u8] =
    b"INVITE sip:+15551234567@[2001:db8::1]:5060;user=phone SIP/2.0\r\n\
v: SIP/2.0/UDP [2001:db8::20]:5060\r\n ;branch=z9hG4bK6;rport, SIP/2.0/TCP h.example\r\n\
f: \"Caf\xE9\"\r\n <sip:a@example.com>;tag=t1\r\n\
t: sip:+15551234567@example.com;tag=t2\r\n\
i: fold@h\r\nCSeq: 1\r\n INVITE\r\nMax-Forwards: 0\r\n\
m: *\r\nl: 4\r\n\r\nbody";

/// A deterministic byte generator (xorshift), so the garbage is the same on every run.
pub(super) fn garbage(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}
