//! REGISTER against SIPp as a scripted registrar (tests/peers/sipp-registrar-challenge.xml):
//! it challenges, checks the digest with SIPp's own verifyauth, grants 10 s though 3600 s
//! were asked, and answers the refresh with 403 Forbidden.

// A real process in real time: the virtual-clock rule is for the core.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Instant;

use common::{Sipp, Trunkd};

#[test]
fn challenge_short_grant_refresh_then_forbidden_means_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut sipp = Sipp::start_uas("sipp-registrar-challenge.xml", dir.path());
    let config = dir.path().join("trunkd.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[daemon]
listen = ["udp:127.0.0.1:0"]
status_interval = "1h"

[trunks.sipp]
domain = "127.0.0.1"
port = {port}
transport = "udp"
direction = "outbound"
username = "trunk-sipp"
password = "s3cret-sipp"
register = true
register_expires = 3600
"#,
            port = sipp.port
        ),
    )
    .unwrap();
    let mut trunkd = Trunkd::start(&config);

    let registered = trunkd.wait_for(&["trunk=sipp state=registered"]);
    let at = Instant::now();
    assert!(
        registered.contains("expires_in=10"),
        "the granted expiry: {registered}"
    );

    // Refreshed at min(75 %, 10 s − 32 s) → half of a short grant: about 5 s later.
    let rejected = trunkd.wait_for(&["trunk=sipp state=rejected"]);
    let refreshed_after = at.elapsed();
    assert!(rejected.contains("last_code=403"), "{rejected}");
    assert!(
        rejected.contains("retry_in=1"),
        "a long retry (30 min): {rejected}"
    );
    assert!(
        refreshed_after.as_secs_f64() > 3.0 && refreshed_after.as_secs_f64() < 9.0,
        "refresh after {refreshed_after:?}"
    );

    // SIPp ran its whole script: it verified our digest (verifyauth) and saw the refresh.
    assert_eq!(sipp.wait(), Some(0), "sipp log:\n{}", sipp.log_text());
    let log = sipp.log_text();
    assert!(log.contains("AUTH-OK"), "{log}");
    assert!(log.contains("REFRESH"), "{log}");
    // SIPp has finished: an un-REGISTER would go unanswered, so no orderly stop here.
    drop(trunkd);
}
