//! OPTIONS both ways with real peers on loopback: trunkd pings a SIPp carrier and tracks
//! it down and up again; Kamailio's nathelper pings trunkd's registered contact and gets
//! 200; trunkd pings Kamailio.

// Real processes in real time: the virtual-clock rule is for the core.
#![allow(clippy::disallowed_methods)]

mod common;

use common::{GOOD_PASSWORD, Kamailio, Sipp, Trunkd, free_port};

fn responder(dir: &std::path::Path, port: u16) -> Sipp {
    let flags = ["-t", "u1", "-m", "1000", "-timeout", "60s"];
    Sipp::start_on("sipp-options-responder.xml", dir, port, &flags)
}

#[test]
fn trunkd_pings_a_carrier_reports_rtt_and_tracks_it_down_and_up() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let sipp = responder(dir.path(), port);
    let config = dir.path().join("trunkd.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[daemon]
listen = ["udp:127.0.0.1:0"]
status_interval = "1h"
# Timer F = 64·T1 = 1.6 s: an unanswered ping fails quickly.
timer_t1 = "25ms"

[trunks.sbc]
domain = "127.0.0.1"
port = {port}
transport = "udp"
direction = "outbound"
options_interval = "1s"
options_down_after = 2
options_up_after = 2
"#
        ),
    )
    .unwrap();
    let mut trunkd = Trunkd::start(&config);
    let up = trunkd.wait_for(&["trunk=sbc", "event=options", "options=up"]);
    assert!(
        up.contains("rtt_ms=") && up.contains("verified=yes"),
        "{up}"
    );
    assert!(up.contains("reason=\"up (200 OK)\""), "{up}");

    drop(sipp);
    let down = trunkd.wait_for(&["trunk=sbc", "event=options", "options=down"]);
    assert!(
        down.contains("WARN"),
        "a trunk going down is a warning: {down}"
    );
    assert!(down.contains("reason=\"down (timeout)\""), "{down}");
    assert!(down.contains("verified=yes"), "verified stays: {down}");

    let _back = responder(dir.path(), port);
    let up = trunkd.wait_for(&["trunk=sbc", "event=options", "options=up"]);
    assert!(up.contains("rtt_ms="), "{up}");
}

#[test]
fn a_dead_carrier_shows_down_within_down_after_times_interval_plus_options_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let sipp = responder(dir.path(), port);
    let config = dir.path().join("trunkd.toml");
    // The default T1 (Timer F 32 s); options_timeout decides.
    std::fs::write(
        &config,
        format!(
            r#"
[daemon]
listen = ["udp:127.0.0.1:0"]
status_interval = "1h"

[trunks.sbc]
domain = "127.0.0.1"
port = {port}
transport = "udp"
direction = "outbound"
options_interval = "1s"
options_timeout = "500ms"
options_down_after = 2
"#
        ),
    )
    .unwrap();
    let mut trunkd = Trunkd::start(&config);
    trunkd.wait_for(&["trunk=sbc", "event=options", "options=up"]);
    let killed = std::time::Instant::now();
    drop(sipp);
    let down = trunkd.wait_for(&["trunk=sbc", "event=options", "options=down"]);
    let took = killed.elapsed();
    assert!(
        down.contains("no answer within options_timeout (500ms)"),
        "{down}"
    );
    // down_after × (interval + 10 % jitter + options_timeout), plus a second.
    let bound = std::time::Duration::from_millis(2 * (1100 + 500) + 1000);
    assert!(took <= bound, "down after {took:?}, more than {bound:?}");
}

#[test]
fn kamailio_pings_the_registered_contact_and_trunkd_pings_kamailio() {
    let dir = tempfile::tempdir().unwrap();
    let kamailio = Kamailio::start_with(dir.path(), free_port(), &["NATPING"]);
    let config = dir.path().join("trunkd.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[daemon]
listen = ["udp:127.0.0.1:0"]
status_interval = "1h"

[trunks.kam]
domain = "127.0.0.1"
port = {port}
transport = "udp"
direction = "outbound"
username = "trunk1"
password = "{GOOD_PASSWORD}"
register = true
register_expires = 600
options_interval = "1s"
"#,
            port = kamailio.port
        ),
    )
    .unwrap();
    let mut trunkd = Trunkd::start(&config);
    trunkd.wait_for(&["trunk=kam state=registered"]);
    // nathelper pings the contact every 2 s; trunkd answers from the hot path.
    let reply = kamailio.wait_for_log(&["REGISTRAR REPLY status=200 method=OPTIONS"]);
    assert!(reply.contains("from=127.0.0.1:"), "{reply}");
    // And trunkd's own pings reach Kamailio, which answers them.
    let up = trunkd.seen_or_wait_for(&["trunk=kam", "event=options", "options=up"]);
    assert!(up.contains("verified=yes"), "{up}");
    assert!(kamailio.count("REGISTRAR OPTIONS") >= 1);
}

/// Accepts one TCP connection on `listener` and gives the address it came from.
fn first_connection_from(listener: &std::net::TcpListener) -> std::net::SocketAddr {
    listener.set_nonblocking(true).unwrap();
    let deadline = std::time::Instant::now() + common::WAIT;
    loop {
        match listener.accept() {
            Ok((_, from)) => return from,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(std::time::Instant::now() < deadline, "no connection came");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(error) => panic!("accept: {error}"),
        }
    }
}

#[test]
fn outgoing_tcp_connections_leave_from_the_listeners_address() {
    let dir = tempfile::tempdir().unwrap();
    // The carrier on 127.0.0.1, trunkd listening on 127.0.0.45 only: its pings over TCP
    // must come from 127.0.0.45, not from the host's default source 127.0.0.1.
    let carrier = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = carrier.local_addr().unwrap().port();
    let ours = free_port();
    let config = dir.path().join("trunkd.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[daemon]
listen = ["udp:127.0.0.45:{ours}", "tcp:127.0.0.45:{ours}"]
status_interval = "1h"
status_file = ""

[trunks.sbc]
domain = "127.0.0.1"
port = {port}
transport = "tcp"
direction = "outbound"
options_interval = "1s"
"#
        ),
    )
    .unwrap();
    let trunkd = Trunkd::start(&config);
    let from = first_connection_from(&carrier);
    assert_eq!(
        from.ip().to_string(),
        "127.0.0.45",
        "the daemon's connection"
    );
    drop(trunkd);
    // `trunkd verify` connects the same way.
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_trunkd"))
        .args(["verify", "sbc", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let from = first_connection_from(&carrier);
    assert_eq!(from.ip().to_string(), "127.0.0.45", "verify's connection");
    let mut verify = verify;
    let _ = verify.kill();
    let _ = verify.wait();
}

#[test]
fn backends_are_health_checked_and_shown_up_or_down() {
    let dir = tempfile::tempdir().unwrap();
    let live = free_port();
    let _responder = responder(dir.path(), live);
    let dead = free_port();
    let status_file = dir.path().join("status.json");
    let config = dir.path().join("trunkd.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[daemon]
listen = ["udp:127.0.0.1:0"]
status_interval = "1h"
status_file = "{}"

[backend]
uris = ["sip:127.0.0.1:{live}", "sip:127.0.0.1:{dead}"]
options_interval = "1s"
options_timeout = "500ms"
options_down_after = 1

[trunks.lab]
domain = "192.0.2.77"
transport = "udp"
allowed_inbound_ips = ["192.0.2.77"]
options_interval = 0
"#,
            status_file.display()
        ),
    )
    .unwrap();
    let mut trunkd = Trunkd::start(&config);
    let up = trunkd.wait_for(&[&format!("backend=sip:127.0.0.1:{live} "), "state=up"]);
    assert!(up.contains("rtt_ms="), "{up}");
    let down = trunkd.seen_or_wait_for(&[&format!("backend=sip:127.0.0.1:{dead} "), "state=down"]);
    assert!(down.contains("WARN"), "{down}");
    assert!(
        down.contains("no answer within options_timeout (500ms)"),
        "{down}"
    );
    // `trunkd status` shows both.
    let deadline = std::time::Instant::now() + common::WAIT;
    loop {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_trunkd"))
            .args(["status", "--file"])
            .arg(&status_file)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&status.stdout).into_owned();
        if text.contains(&format!(
            "backend sip:127.0.0.1:{dead} (127.0.0.1:{dead}): down"
        )) && text.contains(&format!(
            "backend sip:127.0.0.1:{live} (127.0.0.1:{live}): up"
        )) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
