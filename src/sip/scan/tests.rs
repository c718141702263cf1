//! The whole scanner on hostile input: no panic on any prefix, byte flip or garbage, and
//! work bounded by the caps.

use super::fixtures::{FOLDED_IPV6, INVITE, LENIENT, garbage};
use super::frame::{FrameError, frame};
use super::lean::tests::assert_lean_agrees;
use super::*;

/// Calls every accessor and helper, for the never-panics loops.
fn exercise(bytes: &[u8]) {
    let mut storage = [EMPTY_HEADER; MAX_HEADERS];
    for options in [ScanOptions::DATAGRAM, ScanOptions::STREAM, LENIENT] {
        assert_lean_agrees(bytes, options);
        if let Ok(message) = scan_with(bytes, &mut storage, options) {
            let _ = message.top_via();
            let _ = message.vias().count();
            let _ = message.from();
            let _ = message.to();
            let _ = message.call_id();
            let _ = message.cseq();
            let _ = message.max_forwards();
            let _ = message.contact();
            let _ = message.contacts().count();
            let _ = message.request_uri_user();
            let _ = message.body();
            for header in message.headers() {
                let _ = header.unfolded().count();
                let _ = ListValues::new(header.value).count();
                let _ = Params::new(header.value).count();
                let _ = NameAddr::parse(header.value);
                let _ = Via::parse(header.value);
                let _ = CSeq::parse(header.value);
                let _ = uri_user(header.value);
            }
        }
    }
    let _ = frame(bytes, MAX_MESSAGE_LEN);
    let _ = frame(bytes, 64);
}

#[test]
fn every_prefix_is_an_error_and_never_panics() {
    for message in [INVITE, FOLDED_IPV6] {
        for end in 0..message.len() {
            let prefix = &message[..end];
            exercise(prefix);
            let mut storage = [EMPTY_HEADER; MAX_HEADERS];
            assert!(scan(prefix, &mut storage).is_err(), "prefix of {end} bytes");
        }
    }
}

#[test]
fn byte_flips_never_panic() {
    let replacements = [
        0x00, 0x7f, 0xff, b'\r', b'\n', b' ', b'\t', b':', b';', b',', b'<', b'>', b'"', b'\\',
        b'[', b']', b'@', b'=', b'/', b'0', b'9',
    ];
    for message in [INVITE, FOLDED_IPV6] {
        let mut bytes = message.to_vec();
        for index in 0..bytes.len() {
            let original = bytes[index];
            for replacement in replacements {
                bytes[index] = replacement;
                exercise(&bytes);
            }
            bytes[index] = original;
        }
    }
}

#[test]
#[allow(
    clippy::disallowed_methods,
    reason = "the test measures its own wall time; no core logic reads the clock"
)]
fn garbage_is_rejected_quickly() {
    let megabyte = garbage(1 << 20, 0x9e37_79b9_7f4a_7c15);
    let started = std::time::Instant::now();
    let mut storage = [EMPTY_HEADER; MAX_HEADERS];
    for _ in 0..100 {
        assert_eq!(
            scan(&megabyte, &mut storage).unwrap_err(),
            ScanError::TooLarge
        );
        assert_eq!(frame(&megabyte, MAX_MESSAGE_LEN), Err(FrameError::TooLarge));
        assert!(scan(&megabyte[..MAX_MESSAGE_LEN], &mut storage).is_err());
    }
    // Garbage that looks like lines: a header flood at the cap.
    let lines = "x:\r\n".repeat(MAX_MESSAGE_LEN / 4);
    for _ in 0..100 {
        assert!(scan(lines.as_bytes(), &mut storage).is_err());
    }
    let elapsed = started.elapsed();
    assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
    for seed in 1..200 {
        exercise(&garbage(2_000, seed));
    }
}
