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
# SIPp's script expects REGISTERs only.
options_interval = 0
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

#[test]
fn a_silent_registrar_sees_the_rfc_3261_retransmissions_then_trunkd_backs_off() {
    let dir = tempfile::tempdir().unwrap();
    // Never answers; -nr makes SIPp log every retransmission too.
    let flags = [
        "-t",
        "u1",
        "-nr",
        "-timeout",
        "30s",
        "-default_behaviors",
        "none",
    ];
    let sipp = Sipp::start_with("sipp-registrar-silent.xml", dir.path(), &flags);
    let config = dir.path().join("trunkd.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[daemon]
listen = ["udp:127.0.0.1:0"]
status_interval = "1h"
# Timer F = 64·T1 = 3.2 s; the next attempt only after the test is over.
timer_t1 = "50ms"
timer_t2 = "200ms"
register_retry_min = "60s"

[trunks.silent]
domain = "127.0.0.1"
port = {port}
transport = "udp"
direction = "outbound"
username = "trunk-sipp"
password = "s3cret-sipp"
register = true
options_interval = 0
"#,
            port = sipp.port
        ),
    )
    .unwrap();
    let mut trunkd = Trunkd::start(&config);
    let backoff = trunkd.wait_for(&["trunk=silent state=backoff"]);
    assert!(backoff.contains("no response (timeout)"), "{backoff}");
    assert!(backoff.contains("retry_in="), "{backoff}");

    // RFC 3261 §17.1.2.2 over UDP: the request, then Timer E at T1, 2·T1, 4·T1, then
    // every T2, until Timer F (64·T1) ends the transaction: with T1 = 50 ms and T2 =
    // 200 ms, 1 + 17 sends by 3.2 s (50, 150, 350, 550, ... 3150 ms) when every timer
    // fires on time. Timer E is re-armed from when it fired (§17.1.2.2), so a late
    // wakeup (a loaded machine) shifts the later ones; the test reads the schedule off
    // SIPp's timestamps instead of counting to 18.
    // Backoff came with Timer F: every send is out; SIPp gets a moment to log the last.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = sipp.log_text();
    let sends: Vec<i64> = log
        .lines()
        .filter_map(|line| {
            let rest = line.split("t_ms=").nth(1)?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .collect();
    assert!(sends.len() >= 15, "too few sends: {log}");
    let first = sends[0];
    let (mut interval, mut due) = (50, 0);
    for pair in sends.windows(2) {
        due += interval;
        // Never early against the on-time schedule (30 ms for SIPp's own read jitter),
        // and each one late by at most a loaded wakeup.
        let (gap, at) = (pair[1] - pair[0], pair[1] - first);
        assert!(
            at >= due - 30 && gap <= interval + 150,
            "a send at {at} ms ({gap} ms after the last) where Timer E said {due} ({interval}):\n{log}"
        );
        interval = (interval * 2).min(200);
    }
    let last = *sends.last().unwrap();
    // Nothing after Timer F (3.2 s after the first send), and nothing missing before it:
    // the next retransmission would have come at or after Timer F.
    assert!(last - first <= 3200 + 50, "sent after Timer F:\n{log}");
    assert!(
        last + interval >= first + 3200 - 50,
        "stopped early:\n{log}"
    );
    // One transaction throughout: the same Call-ID, CSeq and branch.
    let branches: std::collections::BTreeSet<&str> = log
        .lines()
        .filter_map(|line| line.split("branch=").nth(1)?.split_whitespace().next())
        .collect();
    assert_eq!(branches.len(), 1, "{log}");
    drop(trunkd);
}
