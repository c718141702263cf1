//! `trunkd::sip::digest::parse_challenge` on arbitrary header values: no panic, and when
//! a challenge parses and is answerable, the answer's header carries no CR, LF or NUL
//! (it is echoed into our request, so a carrier must not be able to inject a header).

#![no_main]

use libfuzzer_sys::fuzz_target;
use trunkd::config::Secret;
use trunkd::sip::digest::{answer, parse_challenge};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(challenge) = parse_challenge(text) else {
        return;
    };
    if challenge.answerable().is_err() {
        return;
    }
    let password = Secret::new("fuzz-password");
    if let Ok(answer) = answer(
        &challenge,
        "alice",
        &password,
        "REGISTER",
        "sip:carrier.example.net",
        "0a4f113b",
        1,
        None,
    ) {
        let header = answer.header_value();
        assert!(!header.contains(['\r', '\n', '\0']), "{header:?}");
        // The password may only appear if the challenge itself carried that text (the
        // nonce, realm and opaque are echoed back verbatim).
        if !text.contains("fuzz-password") {
            assert!(!header.contains("fuzz-password"), "{header:?}");
        }
    }
});
