//! Inbound calls through the real trunkd binary between two real SIPp instances on
//! loopback: a carrier (UAC, tests/peers/sipp-carrier-*.xml) and the trunk's backend (UAS,
//! tests/peers/sipp-backend-*.xml). Each test checks what both peers saw (SIPp's exit
//! code says every scenario step matched) and what trunkd's status line counts.

// Real processes in real time: the virtual-clock rule is for the core.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::Path;

use common::{HeldCall, Sipp, Trunkd, free_port};

const DID: &str = "+15550100001";

/// trunkd on a free loopback port with one inbound trunk `lab` for [`DID`].
fn start_trunkd(dir: &Path, backend: &str, allowed: &str, extra: &str) -> (Trunkd, u16) {
    start_trunkd_on(dir, backend, allowed, extra, false)
}

/// trunkd whose backend is the SIPp `uas`, for calls from 127.0.0.1.
fn start_for(dir: &Path, uas: &Sipp) -> (Trunkd, u16) {
    start_trunkd(dir, &format!("127.0.0.1:{}", uas.port), "127.0.0.1", "")
}

/// The same as [`start_trunkd`], also listening on TCP at the same port when `tcp`.
fn start_trunkd_on(
    dir: &Path,
    backend: &str,
    allowed: &str,
    extra: &str,
    tcp: bool,
) -> (Trunkd, u16) {
    let port = free_port();
    let tcp_listen = if tcp {
        format!(", \"tcp:127.0.0.1:{port}\"")
    } else {
        String::new()
    };
    let config = dir.join("trunkd.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[daemon]
listen = ["udp:127.0.0.1:{port}"{tcp_listen}]
status_interval = "1s"
# Every trunk line in every report: the tests read the counters off the next one.
status_log = "all"
status_file = ""
{extra}

[backend]
uri = "sip:{backend}"

[trunks.lab]
domain = "192.0.2.77"
transport = "udp"
allowed_inbound_ips = ["{allowed}"]
numbers = ["{DID}"]
max_channels = 1
# Its domain is a documentation address: no keepalives off this machine.
options_interval = 0
"#
        ),
    )
    .unwrap();
    let mut trunkd = Trunkd::start(&config);
    trunkd.wait_for(&["listening on udp:127.0.0.1"]);
    (trunkd, port)
}

fn backend(dir: &Path, scenario: &str, calls: &str) -> Sipp {
    let messages = dir.join(format!("{scenario}.messages"));
    let flags = [
        "-t",
        "u1",
        "-m",
        calls,
        "-timeout",
        "30s",
        "-timeout_error",
        "-trace_msg",
        "-message_file",
        messages.to_str().unwrap(),
    ];
    Sipp::start_with(scenario, dir, &flags)
}

/// A carrier placing calls to `number` at trunkd, holding answered ones `hold_ms`.
fn carrier(dir: &Path, scenario: &str, number: &str, hold_ms: &str, trunkd: u16) -> Sipp {
    carrier_over("u1", dir, scenario, number, hold_ms, trunkd)
}

/// The same over SIPp transport `transport` (`u1`: UDP, `t1`: one TCP connection).
fn carrier_over(
    transport: &str,
    dir: &Path,
    scenario: &str,
    number: &str,
    hold_ms: &str,
    trunkd: u16,
) -> Sipp {
    let messages = dir.join(format!("{scenario}-{number}-{hold_ms}.messages"));
    let target = format!("127.0.0.1:{trunkd}");
    let flags = [
        "-t",
        transport,
        "-m",
        "1",
        "-s",
        number,
        "-d",
        hold_ms,
        "-timeout",
        "20s",
        "-timeout_error",
        "-trace_msg",
        "-message_file",
        messages.to_str().unwrap(),
        &target,
    ];
    Sipp::start_with(scenario, dir, &flags)
}

fn messages(dir: &Path, scenario: &str, number: &str, hold_ms: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{scenario}-{number}-{hold_ms}.messages")))
        .unwrap_or_default()
}

#[test]
fn a_call_is_routed_to_the_backend_and_its_channel_released_on_bye() {
    let dir = tempfile::tempdir().unwrap();
    let mut uas = backend(dir.path(), "sipp-backend-uas.xml", "1");
    let (mut trunkd, port) = start_for(dir.path(), &uas);
    let mut uac = carrier(dir.path(), "sipp-carrier-call.xml", DID, "500", port);
    assert_eq!(uac.wait(), Some(0), "carrier: {}", uac.log_text());
    assert_eq!(uas.wait(), Some(0), "backend: {}", uas.log_text());
    let answer = options(port);
    assert!(answer.starts_with("SIP/2.0 200 OK\r\n"), "{answer}");
    assert!(
        answer.contains("\r\nAllow: INVITE, ACK, CANCEL, BYE, OPTIONS"),
        "{answer}"
    );
    let backend_saw =
        std::fs::read_to_string(dir.path().join("sipp-backend-uas.xml.messages")).unwrap();
    assert!(
        !backend_saw.contains("spoofed-by-carrier"),
        "the carrier's own X-Trunk never reaches the backend"
    );
    assert!(backend_saw.contains("X-Trunk: lab\r\n"));
    assert!(backend_saw.contains("Max-Forwards: 69\r\n"));
    trunkd.wait_for(&["trunk=lab", "channels=0/1 calls=1 "]);
    let stopped = trunkd.stop();
    assert!(
        stopped.iter().all(|line| !line.contains("WARN")),
        "{stopped:#?}"
    );
}

/// A carrier calling over TCP: trunkd answers on the carrier's connection (100, the
/// backend's 180/200, the 200 to BYE), the call goes on to the backend over UDP, and the
/// carrier's ACK and BYE over the same connection reach the backend.
#[test]
fn a_call_over_tcp_is_answered_on_its_connection_and_routed_over_udp() {
    let dir = tempfile::tempdir().unwrap();
    let mut uas = backend(dir.path(), "sipp-backend-uas.xml", "1");
    let (mut trunkd, port) = start_trunkd_on(
        dir.path(),
        &format!("127.0.0.1:{}", uas.port),
        "127.0.0.1",
        "",
        true,
    );
    trunkd.wait_for(&["listening on tcp:127.0.0.1"]);
    let mut uac = carrier_over("t1", dir.path(), "sipp-carrier-call.xml", DID, "500", port);
    assert_eq!(uac.wait(), Some(0), "carrier: {}", uac.log_text());
    assert_eq!(uas.wait(), Some(0), "backend: {}", uas.log_text());
    let carrier_saw = messages(dir.path(), "sipp-carrier-call.xml", DID, "500");
    assert!(carrier_saw.contains("SIP/2.0/TCP"), "{carrier_saw}");
    let backend_saw =
        std::fs::read_to_string(dir.path().join("sipp-backend-uas.xml.messages")).unwrap();
    // trunkd's own Via toward the backend is UDP, from its UDP listener.
    assert!(
        backend_saw.contains(&format!("Via: SIP/2.0/UDP 127.0.0.1:{port};branch=")),
        "{backend_saw}"
    );
    assert!(backend_saw.contains("BYE sip:"), "{backend_saw}");
    trunkd.wait_for(&["trunk=lab", "channels=0/1 calls=1 "]);
    let stopped = trunkd.stop();
    assert!(
        stopped.iter().all(|line| !line.contains("WARN")),
        "{stopped:#?}"
    );
}

/// The backend hangs up: its BYE follows trunkd's Record-Route and the carrier's Contact,
/// over UDP, and over the carrier's own TCP connection with trunkd's TCP Via (the carrier
/// reached trunkd over TCP, so its route set starts with trunkd's TCP entry, RFC 5658).
#[test]
fn the_backends_bye_reaches_the_carrier_over_udp_and_over_its_tcp_connection() {
    for (transport, via) in [("u1", "UDP"), ("t1", "TCP")] {
        let dir = tempfile::tempdir().unwrap();
        let mut uas = backend(dir.path(), "sipp-backend-hangup.xml", "1");
        let backend = format!("127.0.0.1:{}", uas.port);
        let (mut trunkd, port) = start_trunkd_on(dir.path(), &backend, "127.0.0.1", "", true);
        trunkd.wait_for(&["listening on tcp:127.0.0.1"]);
        let scenario = "sipp-carrier-hungup.xml";
        let mut uac = carrier_over(transport, dir.path(), scenario, DID, "0", port);
        assert_eq!(uac.wait(), Some(0), "carrier: {}", uac.log_text());
        assert_eq!(uas.wait(), Some(0), "backend: {}", uas.log_text());
        let carrier_saw = messages(dir.path(), scenario, DID, "0");
        assert!(
            carrier_saw.contains("BYE sip:+15551230000@127.0.0.1:"),
            "{carrier_saw}"
        );
        assert!(
            carrier_saw.contains(&format!(
                "Via: SIP/2.0/{via} 127.0.0.1:{port};branch=z9hG4bKtk"
            )),
            "{carrier_saw}"
        );
        trunkd.wait_for(&["trunk=lab", "channels=0/1 calls=1 "]);
        trunkd.stop();
    }
}

/// `shutdown_drain`: SIGTERM during a call refuses new calls (503) but waits for the call
/// in progress, whose BYE still passes; trunkd exits as soon as its 200 has passed back.
#[test]
fn a_stop_with_shutdown_drain_waits_for_the_call_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let mut uas = backend(dir.path(), "sipp-backend-uas.xml", "1");
    let backend = format!("127.0.0.1:{}", uas.port);
    let drain = "shutdown_drain = \"30s\"";
    let (mut trunkd, port) = start_trunkd(dir.path(), &backend, "127.0.0.1", drain);
    let call = HeldCall::place(port, DID);
    trunkd.wait_for(&["trunk=lab", "channels=1/1 calls=1 "]);
    trunkd.signal("TERM");
    trunkd.wait_for(&["draining: 1 calls in progress; waiting up to 30s"]);
    // A new call meanwhile is refused.
    let mut refused = carrier(dir.path(), "sipp-carrier-rejected.xml", DID, "0", port);
    assert_eq!(refused.wait(), Some(0), "{}", refused.log_text());
    let refused_saw = messages(dir.path(), "sipp-carrier-rejected.xml", DID, "0");
    assert!(
        refused_saw.contains("SIP/2.0 503 Shutting Down"),
        "{refused_saw}"
    );
    // The call in progress ends normally, through trunkd, and trunkd stops with it.
    let hung_up = std::time::Instant::now();
    assert_eq!(call.hang_up(), "SIP/2.0 200 OK");
    let (success, log) = trunkd.wait_exit();
    assert_eq!(uas.wait(), Some(0), "backend: {}", uas.log_text());
    assert!(success, "{log:#?}");
    let waited = hung_up.elapsed();
    assert!(
        waited < std::time::Duration::from_secs(4),
        "stopped {waited:?} after the hang-up: at its 200, not at the drain's end (30 s) \
         nor SETTLE's (4 s)"
    );
    assert!(log.iter().any(|line| line.contains("stopped")), "{log:#?}");
    assert!(
        log.iter()
            .all(|line| !line.contains("shutdown_drain is over")),
        "{log:#?}"
    );
}

#[test]
fn unknown_sources_get_403_and_unknown_numbers_404() {
    let dir = tempfile::tempdir().unwrap();
    // 127.0.0.1 (where SIPp sends from) is not allowed, and neither the trunk's next hop
    // nor the backend is there.
    let backend = "127.0.0.3:5080";
    let (mut trunkd, port) = start_trunkd(dir.path(), backend, "127.0.0.2", "");
    let mut uac = carrier(dir.path(), "sipp-carrier-rejected.xml", DID, "0", port);
    assert_eq!(uac.wait(), Some(0), "{}", uac.log_text());
    let trace = messages(dir.path(), "sipp-carrier-rejected.xml", DID, "0");
    assert!(trace.contains("SIP/2.0 403 Forbidden\r\n"), "{trace}");
    trunkd.wait_for(&["summary", "unknown_source=1 "]);
    trunkd.wait_for(&["trunk=lab", "calls=0 rejected_source=1 "]);
    drop(trunkd);

    let (mut trunkd, port) = start_trunkd(dir.path(), backend, "127.0.0.1", "");
    let wrong = "+15559999999";
    let mut uac = carrier(dir.path(), "sipp-carrier-rejected.xml", wrong, "0", port);
    assert_eq!(uac.wait(), Some(0), "{}", uac.log_text());
    let trace = messages(dir.path(), "sipp-carrier-rejected.xml", wrong, "0");
    assert!(trace.contains("SIP/2.0 404 Not Found\r\n"), "{trace}");
    trunkd.wait_for(&["trunk=lab", "calls=0 ", "rejected_number=1 "]);
}

#[test]
fn max_channels_refuses_with_503_until_a_bye_frees_the_channel() {
    let dir = tempfile::tempdir().unwrap();
    let mut uas = backend(dir.path(), "sipp-backend-uas.xml", "2");
    let (mut trunkd, port) = start_for(dir.path(), &uas);
    // The first call holds the only channel until the test hangs up.
    let first = HeldCall::place(port, DID);
    trunkd.wait_for(&["trunk=lab", "channels=1/1 "]);
    let mut refused = carrier(dir.path(), "sipp-carrier-rejected.xml", DID, "0", port);
    assert_eq!(refused.wait(), Some(0), "{}", refused.log_text());
    let trace = messages(dir.path(), "sipp-carrier-rejected.xml", DID, "0");
    assert!(
        trace.contains("SIP/2.0 503 Channel Limit Reached\r\n") && trace.contains("Retry-After: "),
        "{trace}"
    );
    assert_eq!(first.hang_up(), "SIP/2.0 200 OK");
    // BYE released the channel: the next call goes through.
    let mut next = carrier(dir.path(), "sipp-carrier-call.xml", DID, "100", port);
    assert_eq!(next.wait(), Some(0), "{}", next.log_text());
    assert_eq!(uas.wait(), Some(0), "{}", uas.log_text());
    trunkd.wait_for(&["trunk=lab", "channels=0/1 calls=2 ", "rejected_busy=1 "]);
}

#[test]
fn cancel_is_passed_on_hop_by_hop_and_releases_the_channel() {
    let dir = tempfile::tempdir().unwrap();
    let mut uas = backend(dir.path(), "sipp-backend-cancel.xml", "1");
    let (mut trunkd, port) = start_for(dir.path(), &uas);
    let mut uac = carrier(dir.path(), "sipp-carrier-cancel.xml", DID, "0", port);
    assert_eq!(uac.wait(), Some(0), "carrier: {}", uac.log_text());
    assert_eq!(uas.wait(), Some(0), "backend: {}", uas.log_text());
    trunkd.wait_for(&["trunk=lab", "channels=0/1 calls=1 "]);
}

#[test]
fn an_unreachable_backend_gets_the_carrier_a_503_and_frees_the_channel() {
    let dir = tempfile::tempdir().unwrap();
    let nobody = format!("127.0.0.1:{}", free_port());
    // T1 = 50 ms: Timer B gives up after 64·T1 = 3.2 s instead of 32 s.
    let (mut trunkd, port) = start_trunkd(dir.path(), &nobody, "127.0.0.1", "timer_t1 = \"50ms\"");
    let mut uac = carrier(dir.path(), "sipp-carrier-rejected.xml", DID, "0", port);
    assert_eq!(uac.wait(), Some(0), "{}", uac.log_text());
    let trace = messages(dir.path(), "sipp-carrier-rejected.xml", DID, "0");
    assert!(trace.contains("SIP/2.0 100 Trying\r\n"), "{trace}");
    assert!(
        trace.contains("SIP/2.0 503 Backend Unavailable\r\n"),
        "{trace}"
    );
    trunkd.wait_for(&["trunk lab: backend did not answer an INVITE in time"]);
    trunkd.seen_or_wait_for(&["trunk lab: backend 127.0.0.1:", "is not answering"]);
    trunkd.wait_for(&["trunk=lab", "channels=0/1 calls=1 "]);
    // While the backend counts as down, the carrier's OPTIONS say so: it can fail over.
    let answer = options(port);
    assert!(
        answer.starts_with("SIP/2.0 503 Backend Unavailable\r\n")
            && answer.contains("Retry-After:"),
        "{answer}"
    );
}

/// One OPTIONS from 127.0.0.1 to trunkd; its answer.
fn options(port: u16) -> String {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let local = socket.local_addr().unwrap();
    let request = format!(
        "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-opt-1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:carrier@{local}>;tag=c1\r\n\
         To: <sip:127.0.0.1:{port}>\r\n\
         Call-ID: options-1@test\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    socket
        .send_to(request.as_bytes(), ("127.0.0.1", port))
        .unwrap();
    let mut buffer = [0u8; 4096];
    let (length, _) = socket.recv_from(&mut buffer).expect("an answer to OPTIONS");
    String::from_utf8_lossy(&buffer[..length]).into_owned()
}

#[test]
fn a_backend_given_by_name_is_resolved_and_used() {
    let dir = tempfile::tempdir().unwrap();
    let mut uas = backend(dir.path(), "sipp-backend-uas.xml", "1");
    // "localhost" from /etc/hosts: 127.0.0.1 for the IPv4 listener (and perhaps ::1,
    // which has no listener here and is skipped).
    let name = format!("localhost:{}", uas.port);
    let (mut trunkd, port) = start_trunkd(dir.path(), &name, "127.0.0.1", "");
    // The lookup is asynchronous; give it a moment before the call. A window, not an
    // event: trunkd says nothing when a backend name resolves (only when it fails).
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut uac = carrier(dir.path(), "sipp-carrier-call.xml", DID, "200", port);
    assert_eq!(uac.wait(), Some(0), "carrier: {}", uac.log_text());
    assert_eq!(uas.wait(), Some(0), "backend: {}", uas.log_text());
    let backend_saw =
        std::fs::read_to_string(dir.path().join("sipp-backend-uas.xml.messages")).unwrap();
    assert!(
        backend_saw.contains(&format!("INVITE sip:{DID}@{name} SIP/2.0")),
        "{backend_saw}"
    );
    trunkd.wait_for(&["trunk=lab", "channels=0/1 calls=1 "]);
}

#[test]
fn a_credential_trunk_challenges_and_admits_the_authenticated_call() {
    let dir = tempfile::tempdir().unwrap();
    let mut uas = backend(dir.path(), "sipp-backend-uas.xml", "1");
    let port = free_port();
    let config = dir.path().join("trunkd.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[daemon]
listen = ["udp:127.0.0.1:{port}"]
status_interval = "1s"
# Every trunk line in every report: the tests read the counters off the next one.
status_log = "all"
status_file = ""

[backend]
uri = "sip:127.0.0.1:{backend}"

# No allowlist: calls for its number are taken from anywhere, with the password.
[trunks.lab]
domain = "192.0.2.77"
transport = "udp"
inbound_auth = "credential"
username = "roamer"
password = "roam-pw-sipp"
auth_realm = "edge.test"
numbers = ["{DID}"]
options_interval = 0
"#,
            backend = uas.port
        ),
    )
    .unwrap();
    let mut trunkd = Trunkd::start(&config);
    trunkd.wait_for(&["listening on udp:127.0.0.1"]);
    let messages = dir.path().join("auth.messages");
    let target = format!("127.0.0.1:{port}");
    let flags = [
        "-t",
        "u1",
        "-m",
        "1",
        "-s",
        DID,
        "-d",
        "200",
        "-au",
        "roamer",
        "-ap",
        "roam-pw-sipp",
        "-timeout",
        "20s",
        "-timeout_error",
        "-trace_msg",
        "-message_file",
        messages.to_str().unwrap(),
        &target,
    ];
    let mut uac = Sipp::start_with("sipp-carrier-auth-call.xml", dir.path(), &flags);
    let exit = uac.wait();
    let trace = std::fs::read_to_string(&messages).unwrap_or_default();
    assert_eq!(exit, Some(0), "carrier: {}\n{trace}", uac.log_text());
    assert_eq!(uas.wait(), Some(0), "backend: {}", uas.log_text());
    let trace = std::fs::read_to_string(&messages).unwrap();
    assert!(
        trace.contains("SIP/2.0 407 Proxy Authentication Required\r\n"),
        "{trace}"
    );
    let backend_saw =
        std::fs::read_to_string(dir.path().join("sipp-backend-uas.xml.messages")).unwrap();
    assert!(
        !backend_saw.contains("Proxy-Authorization"),
        "the carrier's credentials stop at trunkd"
    );
    trunkd.wait_for(&["trunk=lab", "channels=0/unlimited calls=1 "]);
    let log = trunkd.stop();
    assert!(log.iter().all(|line| !line.contains("roam-pw-sipp")));
}

/// trunkd whose `[backend] uris` are `backends` (tried in that order), for calls from
/// 127.0.0.1 to [`DID`].
fn start_pool(dir: &Path, backends: &[String], extra: &str) -> (Trunkd, u16) {
    let uris: Vec<String> = backends
        .iter()
        .enumerate()
        .map(|(index, address)| format!("{{ uri = \"sip:{address}\", priority = {index} }}"))
        .collect();
    let port = free_port();
    let config = dir.join("trunkd.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[daemon]
listen = ["udp:127.0.0.1:{port}"]
status_interval = "1s"
status_file = ""
{extra}

[backend]
uris = [{}]
invite_timeout = "1s"

[trunks.lab]
domain = "192.0.2.77"
transport = "udp"
allowed_inbound_ips = ["127.0.0.1"]
numbers = ["{DID}"]
max_channels = 2
options_interval = 0
"#,
            uris.join(", ")
        ),
    )
    .unwrap();
    let mut trunkd = Trunkd::start(&config);
    trunkd.wait_for(&["listening on udp:127.0.0.1"]);
    (trunkd, port)
}

#[test]
fn a_backend_of_a_pool_that_dies_costs_the_carrier_nothing_and_is_used_again_once_back() {
    let dir = tempfile::tempdir().unwrap();
    let first_port = free_port();
    let first = format!("127.0.0.1:{first_port}");
    let mut second = backend(dir.path(), "sipp-backend-uas.xml", "1");
    let second_address = format!("127.0.0.1:{}", second.port);
    // T1 = 50 ms: a backend that never answers gives up at Timer B after 3.2 s.
    let (mut trunkd, port) = start_pool(
        dir.path(),
        &[first.clone(), second_address.clone()],
        "timer_t1 = \"50ms\"",
    );
    // The first backend takes a call, then dies (SIPp's -m 1: it exits after it).
    let mut first_up = Sipp::start_on(
        "sipp-backend-uas.xml",
        dir.path(),
        first_port,
        &["-t", "u1", "-m", "1", "-timeout", "30s", "-timeout_error"],
    );
    let mut uac = carrier(dir.path(), "sipp-carrier-call.xml", DID, "150", port);
    assert_eq!(uac.wait(), Some(0), "carrier: {}", uac.log_text());
    assert_eq!(
        first_up.wait(),
        Some(0),
        "first backend: {}",
        first_up.log_text()
    );
    // The first backend is dead now: after invite_timeout (1 s) the next call goes to the
    // second, and the carrier's call completes as if nothing happened.
    let mut uac = carrier(dir.path(), "sipp-carrier-call.xml", DID, "200", port);
    assert_eq!(uac.wait(), Some(0), "carrier: {}", uac.log_text());
    assert_eq!(
        second.wait(),
        Some(0),
        "second backend: {}",
        second.log_text()
    );
    let trace = messages(dir.path(), "sipp-carrier-call.xml", DID, "200");
    assert!(
        !trace.contains("SIP/2.0 5"),
        "no failure reached the carrier: {trace}"
    );
    trunkd.seen_or_wait_for(&[&format!(
        "backend {first} failed (no answer within invite_timeout)"
    )]);

    // Both dead: the carrier gets 503, and its OPTIONS 503 too.
    let mut uac = carrier(dir.path(), "sipp-carrier-rejected.xml", DID, "0", port);
    assert_eq!(uac.wait(), Some(0), "{}", uac.log_text());
    let trace = messages(dir.path(), "sipp-carrier-rejected.xml", DID, "0");
    assert!(
        trace.contains("SIP/2.0 503 Backend Unavailable\r\n"),
        "{trace}"
    );
    let answer = options(port);
    assert!(
        answer.starts_with("SIP/2.0 503 Backend Unavailable\r\n"),
        "{answer}"
    );

    // The first comes back: the next call, tried there first (both count as down, and it
    // has the lower priority), lands on it and counts it up again.
    let messages_file = dir.path().join("first-back.messages");
    let mut first_back = Sipp::start_on(
        "sipp-backend-uas.xml",
        dir.path(),
        first_port,
        &[
            "-t",
            "u1",
            "-m",
            "1",
            "-timeout",
            "30s",
            "-timeout_error",
            "-trace_msg",
            "-message_file",
            messages_file.to_str().unwrap(),
        ],
    );
    let mut uac = carrier(dir.path(), "sipp-carrier-call.xml", DID, "100", port);
    assert_eq!(uac.wait(), Some(0), "carrier: {}", uac.log_text());
    assert_eq!(
        first_back.wait(),
        Some(0),
        "first backend: {}",
        first_back.log_text()
    );
    let answer = options(port);
    assert!(answer.starts_with("SIP/2.0 200 OK\r\n"), "{answer}");
}

#[test]
fn a_backend_over_tcp_takes_the_call_on_a_connection_from_trunkd() {
    let dir = tempfile::tempdir().unwrap();
    let messages_file = dir.path().join("tcp-backend.messages");
    let mut uas = Sipp::start_with(
        "sipp-backend-uas.xml",
        dir.path(),
        &[
            "-t",
            "t1",
            "-m",
            "1",
            "-timeout",
            "30s",
            "-timeout_error",
            "-trace_msg",
            "-message_file",
            messages_file.to_str().unwrap(),
        ],
    );
    let backend = format!("127.0.0.1:{};transport=tcp", uas.port);
    let (_trunkd, port) = start_trunkd_on(dir.path(), &backend, "127.0.0.1", "", true);
    let mut uac = carrier(dir.path(), "sipp-carrier-call.xml", DID, "200", port);
    assert_eq!(uac.wait(), Some(0), "carrier: {}", uac.log_text());
    assert_eq!(uas.wait(), Some(0), "backend: {}", uas.log_text());
    let seen = std::fs::read_to_string(&messages_file).unwrap_or_default();
    assert!(seen.contains("Via: SIP/2.0/TCP 127.0.0.1:"), "{seen}");
    assert!(seen.contains(";transport=tcp;lr>"), "{seen}");
}
