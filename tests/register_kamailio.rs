//! REGISTER against a real registrar: Kamailio on loopback (tests/peers/
//! kamailio-registrar.cfg, digest with qop=auth, in-memory usrloc) and the real `trunkd`.
//! Kamailio must be installed (`apt-get install kamailio`); the test fails, never skips,
//! without it.

// A real process in real time: the virtual-clock rule is for the core.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};

use common::{BAD_PASSWORD, GOOD_PASSWORD, Kamailio, Trunkd, free_port};

fn config(dir: &Path, port: u16, extra_for_good: &str) -> PathBuf {
    config_with_daemon(dir, port, extra_for_good, "")
}

fn config_with_daemon(dir: &Path, port: u16, extra_for_good: &str, daemon: &str) -> PathBuf {
    let path = dir.join("trunkd.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[daemon]
listen = ["udp:127.0.0.1:0"]
status_interval = "1h"
{daemon}

[trunks.good]
domain = "127.0.0.1"
port = {port}
transport = "udp"
direction = "outbound"
username = "trunk1"
password = "{GOOD_PASSWORD}"
auth_realm = "registrar.test"
register = true
register_expires = 3600
{extra_for_good}

[trunks.wrong]
domain = "127.0.0.1"
port = {port}
transport = "udp"
direction = "outbound"
username = "trunk2"
password = "{BAD_PASSWORD}"
register = true
"#
        ),
    )
    .unwrap();
    path
}

#[test]
fn registers_with_digest_honours_granted_expiry_fails_wrong_password_and_unregisters() {
    let dir = tempfile::tempdir().unwrap();
    let kamailio = Kamailio::start(dir.path());
    let config = config(dir.path(), kamailio.port, "");
    let mut trunkd = Trunkd::start(&config);

    // Challenge answered; Kamailio grants 600 s of the 3600 asked, and trunkd says so.
    let registered = trunkd.wait_for(&["trunk=good state=registered", "event=registration"]);
    // Kamailio's Contact expires is (absolute expiry - now): 599 across a second boundary.
    assert!(
        registered.contains("expires_in=600 ") || registered.contains("expires_in=599 "),
        "{registered}"
    );
    assert!(registered.contains("last_code=200"), "{registered}");
    assert!(
        registered.contains(&format!("next_hop=udp:127.0.0.1:{}", kamailio.port)),
        "{registered}"
    );
    let binding = kamailio.wait_for_log(&["REGISTRAR REGISTERED user=trunk1"]);
    // Kamailio computes granted as (absolute expiry - now): 599 when a second boundary
    // passes between its save() and that subtraction.
    assert!(
        (binding.contains("granted=600") || binding.contains("granted=599"))
            && binding.contains("cseq=2"),
        "{binding}"
    );

    // The wrong password: one challenge answered, refused, then a scheduled retry.
    let failed = trunkd.seen_or_wait_for(&["trunk=wrong state=auth_failed"]);
    assert!(
        failed.contains("last_code=401") && failed.contains("retry_in="),
        "{failed}"
    );
    assert!(failed.contains("credentials rejected"), "{failed}");
    kamailio.wait_for_log(&["REGISTRAR AUTH-FAIL user=trunk2", "invalid-password"]);

    // A reload that changes no registration field leaves the binding alone: the trunk is
    // still registered in the reload's own line, and (below) no new REGISTER reaches the
    // registrar before the un-REGISTER at the stop.
    let before = kamailio.count("REGISTRAR REGISTERED user=trunk1");
    config_with(&config, kamailio.port, "max_channels = 7");
    trunkd.wait_for(&[
        "trunk=good state=registered",
        "event=changed fields=max_channels",
    ]);
    trunkd.wait_for(&["reload applied"]);
    // The summary counts registrations: one registered of two, the other failing.
    trunkd.wait_for(&[
        "summary ",
        "registered=1/2 register_failing=1 options_down=0",
    ]);

    // SIGTERM removes the binding (Expires: 0) before exiting.
    let log = trunkd.stop();
    let removal = kamailio.wait_for_log(&["REGISTRAR UNREGISTERED user=trunk1"]);
    assert!(removal.contains("expires-hdr=0"), "{removal}");
    // Kamailio handles one socket's requests in order: what trunkd sent before its
    // un-REGISTER has been logged by now. No REGISTER came between the binding and the
    // removal: its CSeq follows the binding's (cseq=2), answered without a challenge.
    assert_eq!(kamailio.count("REGISTRAR REGISTERED user=trunk1"), before);
    assert!(removal.contains(" cseq=3 "), "{removal}");
    let call_id = |line: &str| {
        line.split("call-id=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        call_id(&removal),
        call_id(&binding),
        "one Call-ID for the trunk's life"
    );

    for line in &log {
        assert!(
            !line.contains(GOOD_PASSWORD) && !line.contains(BAD_PASSWORD),
            "secret logged: {line}"
        );
    }
}

fn config_with(path: &Path, port: u16, extra: &str) {
    let dir = path.parent().unwrap();
    let written = config(dir, port, extra);
    assert_eq!(written, path);
}

#[test]
fn registrar_down_means_backoff_and_its_return_means_registered() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Short RFC 3261 timers and retries, so Timer F (64·T1) fires in 3.2 s, not 32 s.
    let timers = "timer_t1 = \"50ms\"\ntimer_t2 = \"200ms\"\n\
                  register_retry_min = \"1s\"\nregister_retry_max = \"2s\"";
    let config = config_with_daemon(dir.path(), port, "", timers);
    let mut trunkd = Trunkd::start(&config);
    let down = trunkd.wait_for(&["trunk=good state=backoff"]);
    assert!(
        down.contains("no response (timeout)") && down.contains("retry_in="),
        "{down}"
    );

    let kamailio = Kamailio::start_on(dir.path(), port);
    let up = trunkd.wait_for(&["trunk=good state=registered"]);
    assert!(
        up.contains("expires_in=600 ") || up.contains("expires_in=599 "),
        "{up}"
    );
    kamailio.wait_for_log(&["REGISTRAR REGISTERED user=trunk1"]);
    trunkd.stop();
}

#[test]
fn registers_over_tcp_and_a_refused_connection_backs_off_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let kamailio = Kamailio::start(dir.path());
    let closed = free_port();
    let path = dir.path().join("trunkd.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[daemon]
listen = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]
status_interval = "1h"

[trunks.tcp]
domain = "127.0.0.1"
port = {port}
transport = "tcp"
direction = "outbound"
username = "trunk2"
password = "s3cret-trunk2"
register = true

[trunks.refused]
domain = "127.0.0.1"
port = {closed}
transport = "tcp"
direction = "outbound"
username = "trunk1"
password = "{GOOD_PASSWORD}"
register = true
"#,
            port = kamailio.port
        ),
    )
    .unwrap();
    let mut trunkd = Trunkd::start(&path);
    let tcp_listener = trunkd.wait_for(&["listening on tcp:127.0.0.1:"]);
    let tcp_port = tcp_listener.rsplit(':').next().unwrap().trim().to_owned();

    let registered = trunkd.wait_for(&["trunk=tcp state=registered"]);
    assert!(
        registered.contains(&format!("next_hop=tcp:127.0.0.1:{}", kamailio.port)),
        "{registered}"
    );
    let binding = kamailio.wait_for_log(&["REGISTRAR REGISTERED user=trunk2"]);
    assert!(binding.contains("proto=tcp"), "{binding}");
    // The Contact names our TCP listener, so the carrier can open connections to us.
    assert!(
        binding.contains(&format!(
            "contact=<sip:trunk2@127.0.0.1:{tcp_port};transport=tcp>"
        )),
        "{binding}"
    );

    // Nothing listens on `closed`: the refused connect fails the transaction at once
    // (a 503 per RFC 3261 §8.1.3.1), not after Timer F's 32 s.
    let refused = trunkd.seen_or_wait_for(&["trunk=refused state=backoff"]);
    assert!(
        refused.contains("transport error: connect failed"),
        "{refused}"
    );
    // The first failure: the retry is the first backoff step (15-30 s), not a later one.
    let retry_in: u64 = refused
        .split("retry_in=")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|seconds| seconds.parse().ok())
        .expect("retry_in");
    assert!(retry_in <= 30, "{refused}");

    trunkd.stop();
    let removal = kamailio.wait_for_log(&["REGISTRAR UNREGISTERED user=trunk2"]);
    assert!(
        removal.contains("proto=tcp") && removal.contains("expires-hdr=0"),
        "{removal}"
    );
}
