//! Outbound calls through the real trunkd binary on loopback: a SIPp backend (UAC,
//! tests/peers/sipp-backend-outbound*.xml) dials, trunkd chooses a trunk and sends the
//! call to a Kamailio carrier that challenges INVITEs with 407
//! (tests/peers/kamailio-carrier.cfg), which relays it to a SIPp callee
//! (tests/peers/sipp-callee-*.xml). Each test checks what every peer saw: SIPp's exit
//! code (its CSeq and Request-URI checks), the carrier's log lines, trunkd's status line.
//!
//! The backend sends from 127.0.0.1; the carriers listen on 127.0.0.1 too, so the trunks
//! set `allow_next_hop = false` (else the backend's address would be a trunk's source).

// Real processes in real time: the virtual-clock rule is for the core.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::Path;

use common::{Kamailio, Sipp, Trunkd, free_port};

const PASSWORD: &str = "s3cret-out";

/// The carrier: Kamailio challenging INVITEs, relaying to the callee at `callee`.
fn carrier(dir: &Path, callee: u16, knobs: &[&str]) -> Kamailio {
    let target = format!("CALLEE=\"127.0.0.1:{callee}\"");
    let mut defines = vec![target.as_str()];
    defines.extend_from_slice(knobs);
    Kamailio::start_cfg(dir, "kamailio-carrier.cfg", free_port(), &defines)
}

/// One trunk toward the carrier at `port`, with `extra` keys.
fn trunk(id: &str, port: u16, extra: &str) -> String {
    format!(
        r#"
[trunks.{id}]
domain = "127.0.0.1"
port = {port}
transport = "udp"
direction = "outbound"
allow_next_hop = false
username = "trunkout"
password = "{PASSWORD}"
country = "GB"
options_interval = 0
{extra}
"#
    )
}

/// trunkd with `trunks`, its backend on 127.0.0.1 (any port: the source is what counts).
fn start_trunkd(dir: &Path, daemon: &str, trunks: &str) -> (Trunkd, u16) {
    let port = free_port();
    let config = dir.join("trunkd.toml");
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
{daemon}

[backend]
uri = "sip:127.0.0.1:5999"
{trunks}
"#
        ),
    )
    .unwrap();
    let mut trunkd = Trunkd::start(&config);
    trunkd.wait_for(&["listening on udp:127.0.0.1"]);
    // Calls find a trunk once its next hop is known (before, 503 No Trunk Available).
    for id in trunks
        .lines()
        .filter_map(|line| line.strip_prefix("[trunks.")?.strip_suffix(']'))
    {
        trunkd.seen_or_wait_for(&[&format!("trunk {id}: outbound calls go to ")]);
    }
    (trunkd, port)
}

/// The backend placing one call to `number` through trunkd.
fn backend(dir: &Path, scenario: &str, number: &str, trunkd: u16, extra: &[&str]) -> Sipp {
    let messages = dir.join(format!("{scenario}-{number}.messages"));
    let target = format!("127.0.0.1:{trunkd}");
    let mut flags = vec![
        "-t",
        "u1",
        "-m",
        "1",
        "-s",
        number,
        "-d",
        "300",
        "-timeout",
        "30s",
        "-timeout_error",
        "-default_behaviors",
        "abortunexp",
        "-trace_msg",
        "-message_file",
        messages.to_str().unwrap(),
    ];
    flags.extend_from_slice(extra);
    flags.push(&target);
    Sipp::start_with(scenario, dir, &flags)
}

/// The callee behind the carrier, for `calls` calls.
fn callee(dir: &Path, scenario: &str, calls: &str, extra: &[&str]) -> Sipp {
    let mut flags = vec![
        "-t",
        "u1",
        "-m",
        calls,
        "-timeout",
        "30s",
        "-timeout_error",
        "-default_behaviors",
        "abortunexp",
    ];
    flags.extend_from_slice(extra);
    Sipp::start_with(scenario, dir, &flags)
}

/// One call from the backend to +442079460000 that reaches the callee: the backend's
/// checks (its own CSeq on the 200s) and the callee's pass.
fn answered_call(dir: &Path, trunkd: u16, callee: &mut Sipp) {
    let mut uac = backend(
        dir,
        "sipp-backend-outbound.xml",
        "+442079460000",
        trunkd,
        &[],
    );
    let traced = || messages(dir, "sipp-backend-outbound.xml", "+442079460000");
    assert_eq!(
        uac.wait(),
        Some(0),
        "backend: {}\n{}",
        uac.log_text(),
        traced()
    );
    assert_eq!(callee.wait(), Some(0), "callee: {}", callee.log_text());
}

fn messages(dir: &Path, scenario: &str, number: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{scenario}-{number}.messages"))).unwrap_or_default()
}

#[test]
fn a_challenged_call_completes_and_the_callee_takes_the_backends_bye() {
    let dir = tempfile::tempdir().unwrap();
    let mut callee = callee(
        dir.path(),
        "sipp-callee-uas.xml",
        "1",
        &["-set", "expect_ruri_user", "02079460000"],
    );
    let kamailio = carrier(dir.path(), callee.port, &[]);
    let trunks = trunk(
        "carrier",
        kamailio.port,
        "number_format = \"national\"\nsend_pai = true\nnumbers = [\"+442079460123\"]",
    );
    let (mut trunkd, port) = start_trunkd(dir.path(), "", &trunks);
    answered_call(dir.path(), port, &mut callee);
    // The carrier challenged the first INVITE and took the second with credentials.
    kamailio.wait_for_log(&[
        "CARRIER INVITE",
        "ruri_user=02079460000",
        "cseq=1",
        "-> 407",
    ]);
    let relayed = kamailio.wait_for_log(&["CARRIER INVITE", "cseq=2", "auth=ok", "-> relay"]);
    assert!(relayed.contains("from_user=02079460123"), "{relayed}");
    assert!(
        relayed.contains("pai=sip:02079460123@127.0.0.1 "),
        "{relayed}"
    );
    // The ACK to the 407 was trunkd's own; the backend's ACK and BYE came one higher.
    kamailio.wait_for_log(&["CARRIER ACK", "cseq=1", "-> hop-by-hop"]);
    kamailio.wait_for_log(&["CARRIER ACK", "cseq=2", "-> relay"]);
    kamailio.wait_for_log(&["CARRIER BYE", "cseq=3", "-> relay"]);
    let callee_log = callee.log_text();
    assert!(callee_log.contains("increasing=true"), "{callee_log}");
    // A report during the call says channels=1/: the one after it has ended, 0.
    trunkd.wait_for(&["trunk=carrier ", "channels=0/", "calls_out=1"]);
    let lines = trunkd.stop();
    assert!(
        lines.iter().all(|line| !line.contains(PASSWORD)),
        "password in the log"
    );
}

#[test]
fn a_challenged_bye_is_answered_and_the_backend_sees_its_own_cseq() {
    let dir = tempfile::tempdir().unwrap();
    let mut callee = callee(dir.path(), "sipp-callee-uas.xml", "1", &[]);
    let kamailio = carrier(dir.path(), callee.port, &["CHALLENGE_BYE"]);
    let trunks = trunk("carrier", kamailio.port, "");
    let (_trunkd, port) = start_trunkd(dir.path(), "", &trunks);
    // The backend checks the 200 for its BYE says `CSeq: 2 BYE`.
    answered_call(dir.path(), port, &mut callee);
    kamailio.wait_for_log(&["CARRIER BYE", "cseq=3", "-> 407"]);
    kamailio.wait_for_log(&["CARRIER BYE", "cseq=4", "-> relay"]);
}

#[test]
fn each_number_format_on_the_wire_with_a_pinned_trunk() {
    let dir = tempfile::tempdir().unwrap();
    let mut callee = callee(dir.path(), "sipp-callee-uas.xml", "3", &[]);
    let kamailio = carrier(dir.path(), callee.port, &[]);
    let trunks = [
        trunk("national", kamailio.port, "number_format = \"national\""),
        trunk("plain", kamailio.port, "number_format = \"e164\""),
        trunk(
            "plus",
            kamailio.port,
            "number_format = \"+e164\"\ntech_prefix = \"99#\"",
        ),
    ]
    .concat();
    let (_trunkd, port) = start_trunkd(dir.path(), "", &trunks);
    for (id, expected) in [
        ("national", "ruri_user=02079460000 "),
        ("plain", "ruri_user=442079460000 "),
        ("plus", "ruri_user=99#+442079460000 "),
    ] {
        let mut uac = backend(
            dir.path(),
            "sipp-backend-outbound.xml",
            "02079460000",
            port,
            &["-set", "xtrunk", id],
        );
        assert_eq!(
            uac.wait(),
            Some(0),
            "backend via {id}: {}\n{}",
            uac.log_text(),
            messages(dir.path(), "sipp-backend-outbound.xml", "02079460000")
        );
        kamailio.wait_for_log(&["CARRIER INVITE", expected, "auth=ok"]);
        let sent = messages(dir.path(), "sipp-backend-outbound.xml", "02079460000");
        assert!(sent.contains("X-Trunk: "), "the backend pinned the trunk");
    }
    assert_eq!(callee.wait(), Some(0), "callee: {}", callee.log_text());
    assert_eq!(kamailio.count("X-Trunk"), 0, "X-Trunk never leaves trunkd");
}

#[test]
fn a_503_trunk_fails_over_to_the_next_by_priority() {
    let dir = tempfile::tempdir().unwrap();
    let mut callee = callee(dir.path(), "sipp-callee-uas.xml", "1", &[]);
    let failing = carrier(dir.path(), callee.port, &["REJECT_CODE=503"]);
    let working = carrier(dir.path(), callee.port, &[]);
    let trunks = [
        trunk("failing", failing.port, "priority = 10"),
        trunk("working", working.port, "priority = 20"),
    ]
    .concat();
    let (mut trunkd, port) = start_trunkd(dir.path(), "", &trunks);
    answered_call(dir.path(), port, &mut callee);
    failing.wait_for_log(&["CARRIER INVITE", "auth=ok", "-> 503"]);
    working.wait_for_log(&["CARRIER INVITE", "auth=ok", "-> relay"]);
    trunkd.wait_for(&["trunk=failing ", "failovers=1"]);
    trunkd.wait_for(&["trunk=working ", "calls_out=1"]);
}

#[test]
fn a_silent_trunk_fails_over_at_timer_b() {
    let dir = tempfile::tempdir().unwrap();
    let mut callee = callee(dir.path(), "sipp-callee-uas.xml", "1", &[]);
    let silent = carrier(dir.path(), callee.port, &["SILENT"]);
    let working = carrier(dir.path(), callee.port, &[]);
    let trunks = [
        trunk("silent", silent.port, "priority = 10"),
        trunk("working", working.port, "priority = 20"),
    ]
    .concat();
    // T1 = 50 ms: Timer B is 3.2 s.
    let (mut trunkd, port) = start_trunkd(dir.path(), "timer_t1 = \"50ms\"", &trunks);
    answered_call(dir.path(), port, &mut callee);
    assert!(
        silent.count("CARRIER INVITE") >= 3,
        "retransmitted: {}",
        silent.log_text()
    );
    working.wait_for_log(&["CARRIER INVITE", "auth=ok", "-> relay"]);
    trunkd.wait_for(&["trunk=silent ", "failovers=1"]);
}

#[test]
fn a_busy_callee_is_not_rung_again_through_another_trunk() {
    let dir = tempfile::tempdir().unwrap();
    let mut busy = callee(dir.path(), "sipp-callee-busy.xml", "1", &[]);
    let first = carrier(dir.path(), busy.port, &[]);
    let second = carrier(dir.path(), busy.port, &[]);
    let trunks = [
        trunk("first", first.port, "priority = 10"),
        trunk("second", second.port, "priority = 20"),
    ]
    .concat();
    let (_trunkd, port) = start_trunkd(dir.path(), "", &trunks);
    let mut uac = backend(
        dir.path(),
        "sipp-backend-outbound-rejected.xml",
        "+442079460000",
        port,
        &[],
    );
    assert_eq!(uac.wait(), Some(0), "backend: {}", uac.log_text());
    assert_eq!(busy.wait(), Some(0), "callee: {}", busy.log_text());
    let log = uac.log_text();
    assert!(log.contains("REFUSED code=486"), "{log}");
    assert_eq!(second.count("CARRIER INVITE"), 0, "{}", second.log_text());
}

#[test]
fn inbound_and_outbound_calls_share_max_channels() {
    let dir = tempfile::tempdir().unwrap();
    let mut callee = callee(dir.path(), "sipp-callee-uas.xml", "1", &[]);
    let kamailio = carrier(dir.path(), callee.port, &[]);
    // One trunk for both directions, one channel: its carrier also calls in from
    // 127.0.0.3 (a SIPp of its own), and gets 503 while the outbound call holds it.
    let trunks = trunk(
        "both",
        kamailio.port,
        "max_channels = 1\nallowed_inbound_ips = [\"127.0.0.3\"]\nnumbers = [\"+442079460123\"]",
    )
    .replace("direction = \"outbound\"", "direction = \"both\"");
    let (mut trunkd, port) = start_trunkd(dir.path(), "", &trunks);
    let target = format!("127.0.0.1:{port}");
    let mut uac = Sipp::start_with(
        "sipp-backend-outbound.xml",
        dir.path(),
        &[
            "-t",
            "u1",
            "-m",
            "1",
            "-s",
            "+442079460000",
            "-d",
            "3000",
            "-timeout",
            "30s",
            "-timeout_error",
            &target,
        ],
    );
    trunkd.wait_for(&["trunk=both ", "channels=1/1"]);
    let messages = dir.path().join("inbound.messages");
    let mut inbound = Sipp::start_at(
        "sipp-carrier-rejected.xml",
        dir.path(),
        "127.0.0.3",
        free_port(),
        &[
            "-t",
            "u1",
            "-m",
            "1",
            "-s",
            "+442079460123",
            "-timeout",
            "20s",
            "-timeout_error",
            "-trace_msg",
            "-message_file",
            messages.to_str().unwrap(),
            &target,
        ],
    );
    assert_eq!(inbound.wait(), Some(0), "inbound: {}", inbound.log_text());
    let seen = std::fs::read_to_string(&messages).unwrap_or_default();
    assert!(seen.contains("SIP/2.0 503 Channel Limit Reached"), "{seen}");
    assert_eq!(uac.wait(), Some(0), "backend: {}", uac.log_text());
    assert_eq!(callee.wait(), Some(0), "callee: {}", callee.log_text());
    trunkd.wait_for(&[
        "trunk=both ",
        "channels=0/1",
        "calls_out=1",
        "rejected_busy=1",
    ]);
}

#[test]
fn a_cancel_after_a_failover_reaches_the_ringing_trunk_and_stops_the_search() {
    let dir = tempfile::tempdir().unwrap();
    let mut callee = callee(dir.path(), "sipp-callee-cancel.xml", "1", &[]);
    let failing = carrier(dir.path(), callee.port, &["REJECT_CODE=503"]);
    let ringing = carrier(dir.path(), callee.port, &[]);
    let spare = carrier(dir.path(), callee.port, &[]);
    let trunks = [
        trunk("failing", failing.port, "priority = 10"),
        trunk("ringing", ringing.port, "priority = 20"),
        trunk("spare", spare.port, "priority = 30"),
    ]
    .concat();
    let (_trunkd, port) = start_trunkd(dir.path(), "", &trunks);
    let mut uac = backend(
        dir.path(),
        "sipp-backend-outbound-cancel.xml",
        "+442079460000",
        port,
        &[],
    );
    assert_eq!(uac.wait(), Some(0), "backend: {}", uac.log_text());
    assert_eq!(callee.wait(), Some(0), "callee: {}", callee.log_text());
    assert!(
        uac.log_text().contains("TERMINATED code=487 cseq=1"),
        "{}",
        uac.log_text()
    );
    failing.wait_for_log(&["CARRIER INVITE", "-> 503"]);
    ringing.wait_for_log(&["CARRIER CANCEL", "-> relay"]);
    assert_eq!(spare.count("CARRIER INVITE"), 0, "{}", spare.log_text());
}

#[test]
fn a_trunk_whose_keepalive_says_down_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let mut callee = callee(dir.path(), "sipp-callee-uas.xml", "1", &[]);
    let working = carrier(dir.path(), callee.port, &[]);
    // Nothing listens at the first trunk's port: its pings time out (Timer F, 3.2 s at
    // T1 = 50 ms) and one failure is enough to say down.
    let dead = free_port();
    let trunks = [
        trunk("dead", dead, "priority = 10").replace(
            "options_interval = 0",
            "options_interval = \"1s\"\noptions_down_after = 1",
        ),
        trunk("working", working.port, "priority = 20"),
    ]
    .concat();
    let (mut trunkd, port) = start_trunkd(dir.path(), "timer_t1 = \"50ms\"", &trunks);
    trunkd.wait_for(&["trunk=dead ", "options=down"]);
    answered_call(dir.path(), port, &mut callee);
    working.wait_for_log(&["CARRIER INVITE", "auth=ok", "-> relay"]);
    trunkd.wait_for(&["trunk=dead ", "rejected_out=1", "calls_out=0"]);
}
