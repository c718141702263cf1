//! Outbound calls on the virtual clock: the backend dials, the control path chooses the
//! trunks, the call path answers the carrier's challenge and carries the CSeq offset
//! through the whole dialog, and fails over to the next trunk when one fails.

use super::*;
use crate::trunk::next_hop::Resolved;
use std::sync::atomic::AtomicU64;

const OUTBOUND: &str = r#"
[daemon]
listen = ["udp:127.0.0.1:0"]
status_interval = "1h"
max_call_duration = "10m"

[backend]
uri = "sip:10.0.0.9:5080"

[trunks.first]
domain = "198.51.100.1"
transport = "udp"
direction = "outbound"
username = "trunkout"
password = "s3cret-out"
country = "GB"
numbers = ["+442079460123"]
number_format = "national"
send_pai = true
priority = 10
max_channels = 1
options_interval = 0

[trunks.second]
domain = "198.51.100.2"
transport = "udp"
direction = "both"
allowed_inbound_ips = ["198.51.100.2"]
country = "GB"
number_format = "+e164"
tech_prefix = "99#"
priority = 20
options_interval = 0
"#;

const FIRST: &str = "198.51.100.1:5060";
const SECOND: &str = "198.51.100.2:5060";
const PASSWORD: &str = "s3cret-out";

/// The control path with every trunk's next hop resolved.
fn outbound_control(text: &str, now: Instant) -> Control {
    let mut control = control(text, now);
    while let Some(request) = control.poll_resolve() {
        let next_hop = match request.key.trunk() {
            Some("first") => FIRST,
            Some("second") => SECOND,
            _ => continue,
        };
        let resolved = Resolved {
            next_hop: addr(next_hop),
            alternatives: Vec::new(),
            local: addr(LOCAL),
            public: false,
            ttl: None,
        };
        control.handle_resolved(now, &request.key, Ok(resolved));
    }
    sent(&mut control);
    drain_events(&mut control);
    control
}

/// The backend's INVITE for `number`, with `extra` header lines.
fn dial(call: &str, number: &str, extra: &str) -> String {
    format!(
        "INVITE sip:{number}@192.0.2.200 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.0.9:5080;branch=z9hG4bK-{call};rport\r\n\
         Max-Forwards: 70\r\n\
         Route: <sip:192.0.2.200:5060;lr>\r\n\
         From: \"Alice\" <sip:+442079460123@10.0.0.9>;tag=be-{call}\r\n\
         To: <sip:{number}@192.0.2.200>\r\n\
         Call-ID: {call}@pbx\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:alice@10.0.0.9:5080>\r\n\
         {extra}\
         Content-Type: application/sdp\r\n\
         Content-Length: 4\r\n\r\nv=0\n"
    )
}

/// The carrier's answer to `request`, with its To tag `cr1` and `extra` lines.
fn carrier_answer(request: &str, code: u16, reason: &str, extra: &str) -> String {
    let contact = "<sip:callee@198.51.100.1:5060>";
    answer_as(request, (code, reason), "cr1", contact, extra)
}

/// The backend's request inside the dialog of `call` (ACK, BYE), through our route.
fn backend_in_dialog(call: &str, method: &str, cseq: u32, branch: &str) -> String {
    format!(
        "{method} sip:callee@198.51.100.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.0.9:5080;branch=z9hG4bK-{branch}\r\n\
         Route: <sip:192.0.2.200:5060;lr>\r\n\
         Max-Forwards: 70\r\n\
         From: \"Alice\" <sip:+442079460123@10.0.0.9>;tag=be-{call}\r\n\
         To: <sip:02079460000@192.0.2.200>;tag=cr1\r\n\
         Call-ID: {call}@pbx\r\n\
         CSeq: {cseq} {method}\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// The backend dials `number` in call `call`: the INVITE trunkd sends the first trunk
/// tried (after its 100 Trying to the backend).
fn dialled(control: &mut Control, now: Instant, call: &str, number: &str) -> String {
    receive(control, now, BACKEND, &dial(call, number, ""));
    let out = sent(control);
    assert_eq!(out[0].1, "SIP/2.0 100 Trying", "{out:#?}");
    out[1].2.clone()
}

/// The carrier's challenge to `invite`, answered: the INVITE again with credentials.
fn challenged(control: &mut Control, now: Instant, invite: &str) -> String {
    let challenge = carrier_answer(invite, 407, "Proxy Authentication Required", CHALLENGE);
    receive(control, now, FIRST, &challenge);
    sent(control)[1].2.clone()
}

/// Where each message went, and its first line.
fn first_lines(out: &[(SocketAddr, String, String)]) -> Vec<(SocketAddr, &str)> {
    out.iter()
        .map(|(to, line, _)| (*to, line.as_str()))
        .collect()
}

/// One counter of a trunk.
fn count(control: &Control, id: &str, counter: fn(&TrunkCounters) -> &AtomicU64) -> u64 {
    counter(&trunk_counters(control, id)).load(Ordering::Relaxed)
}

fn trunk_counters(control: &Control, id: &str) -> Arc<TrunkCounters> {
    let snapshot = control.inbound().snapshot();
    let trunk = snapshot.trunks.iter().find(|t| t.id() == id).unwrap();
    Arc::clone(&trunk.counters)
}

const CHALLENGE: &str = "Proxy-Authenticate: Digest realm=\"carrier.test\", nonce=\"n0nce\", qop=\"auth\", algorithm=MD5\r\n";

#[test]
fn a_challenged_outbound_call_carries_the_cseq_offset_through_the_dialog() {
    let t0 = epoch();
    let mut control = outbound_control(OUTBOUND, t0);
    assert_eq!(
        receive(&mut control, t0, BACKEND, &dial("o1", "02079460000", "")),
        None
    );
    let out = sent(&mut control);
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(
        (out[0].0, out[0].1.as_str()),
        (addr(BACKEND), "SIP/2.0 100 Trying")
    );
    assert_eq!(out[1].0, addr(FIRST));
    assert_eq!(out[1].1, "INVITE sip:02079460000@198.51.100.1 SIP/2.0");
    let invite = out[1].2.clone();
    assert_eq!(
        header(&invite, "From"),
        ["\"Alice\" <sip:02079460123@198.51.100.1>;tag=be-o1"]
    );
    assert_eq!(header(&invite, "To"), ["<sip:02079460000@198.51.100.1>"]);
    assert_eq!(
        header(&invite, "P-Asserted-Identity"),
        ["<sip:02079460123@198.51.100.1>"]
    );
    assert_eq!(header(&invite, "CSeq"), ["1 INVITE"]);
    assert_eq!(
        header(&invite, "Record-Route"),
        ["<sip:192.0.2.200:5060;lr>"]
    );
    assert!(
        header(&invite, "Route").is_empty(),
        "the backend's Route stops here"
    );
    assert!(invite.starts_with("INVITE sip:02079460000@198.51.100.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.200:5060;branch=z9hG4bKtk"));
    assert!(invite.ends_with("\r\n\r\nv=0\n"));
    assert_eq!(trunk_counters(&control, "first").channels(), 1);
    let summary = control.summary();
    assert_eq!((summary.active_calls, summary.active_outbound), (1, 1));

    // The carrier challenges: our ACK, and the INVITE again with credentials, CSeq 2.
    receive(
        &mut control,
        t0,
        FIRST,
        &carrier_answer(&invite, 407, "Proxy Authentication Required", CHALLENGE),
    );
    let out = sent(&mut control);
    let lines = first_lines(&out);
    assert_eq!(
        lines,
        [
            (addr(FIRST), "ACK sip:02079460000@198.51.100.1 SIP/2.0"),
            (addr(FIRST), "INVITE sip:02079460000@198.51.100.1 SIP/2.0"),
        ]
    );
    assert_eq!(header(&out[0].2, "CSeq"), ["1 ACK"]);
    let authed = out[1].2.clone();
    assert_eq!(header(&authed, "CSeq"), ["2 INVITE"]);
    let credentials = header(&authed, "Proxy-Authorization");
    assert_eq!(credentials.len(), 1);
    assert!(credentials[0].starts_with("Digest username=\"trunkout\", realm=\"carrier.test\", nonce=\"n0nce\", uri=\"sip:02079460000@198.51.100.1\""), "{}", credentials[0]);
    assert_eq!(header(&authed, "Call-ID"), ["o1@pbx"]);
    assert_eq!(header(&authed, "From"), header(&invite, "From"));
    assert_ne!(
        header(&authed, "Via")[0],
        header(&invite, "Via")[0],
        "a new branch"
    );

    // Ringing and the answer reach the backend with its own CSeq, From and To.
    receive(
        &mut control,
        t0,
        FIRST,
        &carrier_answer(&authed, 180, "Ringing", ""),
    );
    receive(
        &mut control,
        t0,
        FIRST,
        &carrier_answer(&authed, 200, "OK", ""),
    );
    let out = sent(&mut control);
    let lines = first_lines(&out);
    assert_eq!(
        lines,
        [
            (addr(BACKEND), "SIP/2.0 180 Ringing"),
            (addr(BACKEND), "SIP/2.0 200 OK")
        ]
    );
    // The post-dial delay of the call (INVITE to 180) is in the metrics.
    let metrics = control.metrics(
        t0,
        crate::control::metrics::LastReload {
            success: true,
            timestamp_seconds: 0.0,
        },
    );
    assert!(
        metrics.contains("trunkd_call_setup_seconds_count{direction=\"outbound\"} 1\n")
            && metrics.contains("trunkd_call_setup_seconds_count{direction=\"inbound\"} 0\n"),
        "{metrics}"
    );
    for (_, _, text) in &out {
        assert_eq!(header(text, "CSeq"), ["1 INVITE"]);
        assert_eq!(
            header(text, "From"),
            ["\"Alice\" <sip:+442079460123@10.0.0.9>;tag=be-o1"]
        );
        assert_eq!(
            header(text, "To"),
            ["<sip:02079460000@192.0.2.200>;tag=cr1"]
        );
        assert_eq!(
            header(text, "Via"),
            ["SIP/2.0/UDP 10.0.0.9:5080;branch=z9hG4bK-o1;rport=5080;received=10.0.0.9"]
        );
    }

    // The backend's ACK and BYE go out one higher; the BYE's 200 comes back as its own.
    receive(
        &mut control,
        t0,
        BACKEND,
        &backend_in_dialog("o1", "ACK", 1, "ack-o1"),
    );
    receive(
        &mut control,
        t0,
        BACKEND,
        &backend_in_dialog("o1", "BYE", 2, "bye-o1"),
    );
    let out = sent(&mut control);
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(
        (out[0].0, header(&out[0].2, "CSeq")),
        (addr(FIRST), vec!["2 ACK"])
    );
    assert_eq!(
        (out[1].0, header(&out[1].2, "CSeq")),
        (addr(FIRST), vec!["3 BYE"])
    );
    assert_eq!(
        header(&out[1].2, "From"),
        ["\"Alice\" <sip:02079460123@198.51.100.1>;tag=be-o1"]
    );
    assert_eq!(
        header(&out[1].2, "To"),
        ["<sip:02079460000@198.51.100.1>;tag=cr1"]
    );
    let bye = out[1].2.clone();
    receive(&mut control, t0, FIRST, &answer_in_dialog(&bye, 200, "OK"));
    let out = sent(&mut control);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].0, out[0].1.as_str()),
        (addr(BACKEND), "SIP/2.0 200 OK")
    );
    assert_eq!(header(&out[0].2, "CSeq"), ["2 BYE"]);
    assert_eq!(
        header(&out[0].2, "To"),
        ["<sip:02079460000@192.0.2.200>;tag=cr1"]
    );
    assert_eq!(trunk_counters(&control, "first").channels(), 0);
    assert_eq!(count(&control, "first", |c| &c.calls_out), 1);
    assert_eq!(control.active_calls(), 0);
}

#[test]
fn the_carriers_bye_reaches_the_backend_with_the_backends_view() {
    let t0 = epoch();
    let mut control = outbound_control(OUTBOUND, t0);
    let invite = dialled(&mut control, t0, "o2", "+442079460000");
    let authed = challenged(&mut control, t0, &invite);
    receive(
        &mut control,
        t0,
        FIRST,
        &carrier_answer(&authed, 200, "OK", ""),
    );
    sent(&mut control);
    receive(
        &mut control,
        t0,
        BACKEND,
        &backend_in_dialog("o2", "ACK", 1, "ack-o2"),
    );
    sent(&mut control);
    let bye = "BYE sip:alice@10.0.0.9:5080 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK-cbye\r\n\
         Route: <sip:192.0.2.200:5060;lr>\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:02079460000@198.51.100.1>;tag=cr1\r\n\
         To: \"Alice\" <sip:02079460123@198.51.100.1>;tag=be-o2\r\n\
         Call-ID: o2@pbx\r\n\
         CSeq: 7 BYE\r\n\
         Content-Length: 0\r\n\r\n";
    receive(&mut control, t0, FIRST, bye);
    let out = sent(&mut control);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(
        (out[0].0, out[0].1.as_str()),
        (addr(BACKEND), "BYE sip:alice@10.0.0.9:5080 SIP/2.0")
    );
    let forwarded = out[0].2.clone();
    assert_eq!(
        header(&forwarded, "CSeq"),
        ["7 BYE"],
        "the carrier's own CSeq"
    );
    assert_eq!(
        header(&forwarded, "From"),
        ["<sip:+442079460000@192.0.2.200>;tag=cr1"]
    );
    assert_eq!(
        header(&forwarded, "To"),
        ["\"Alice\" <sip:+442079460123@10.0.0.9>;tag=be-o2"]
    );
    receive(
        &mut control,
        t0,
        BACKEND,
        &answer_in_dialog(&forwarded, 200, "OK"),
    );
    let out = sent(&mut control);
    assert_eq!(
        (out[0].0, out[0].1.as_str()),
        (addr(FIRST), "SIP/2.0 200 OK")
    );
    assert_eq!(
        header(&out[0].2, "From"),
        ["<sip:02079460000@198.51.100.1>;tag=cr1"]
    );
    assert_eq!(header(&out[0].2, "CSeq"), ["7 BYE"]);
    assert_eq!(trunk_counters(&control, "first").channels(), 0);
}

#[test]
fn a_failing_trunk_fails_over_and_a_busy_callee_is_not_rung_again() {
    let t0 = epoch();
    let mut control = outbound_control(OUTBOUND, t0);
    let invite = dialled(&mut control, t0, "o3", "442079460000");
    receive(
        &mut control,
        t0,
        FIRST,
        &carrier_answer(&invite, 503, "Service Unavailable", ""),
    );
    let out = sent(&mut control);
    let lines = first_lines(&out);
    assert_eq!(
        lines,
        [
            (addr(FIRST), "ACK sip:02079460000@198.51.100.1 SIP/2.0"),
            (
                addr(SECOND),
                "INVITE sip:99#+442079460000@198.51.100.2 SIP/2.0"
            ),
        ]
    );
    let second = out[1].2.clone();
    assert_eq!(header(&second, "CSeq"), ["1 INVITE"]);
    assert_eq!(
        header(&second, "From"),
        ["\"Alice\" <sip:+442079460123@198.51.100.2>;tag=be-o3"],
        "not a number of trunk second: as the backend sent it"
    );
    assert!(header(&second, "P-Asserted-Identity").is_empty());
    assert_eq!(trunk_counters(&control, "first").channels(), 0);
    assert_eq!(count(&control, "first", |c| &c.failovers), 1);
    assert_eq!(trunk_counters(&control, "second").channels(), 1);
    // A retransmitted 503 from the first trunk gets our ACK again, nothing else.
    receive(
        &mut control,
        t0,
        FIRST,
        &carrier_answer(&invite, 503, "Service Unavailable", ""),
    );
    let out = sent(&mut control);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].0, out[0].1.as_str()),
        (addr(FIRST), "ACK sip:02079460000@198.51.100.1 SIP/2.0")
    );

    // Busy: the backend gets the 486 (better than the 503), no third attempt.
    receive(
        &mut control,
        t0,
        SECOND,
        &carrier_answer(&second, 486, "Busy Here", ""),
    );
    let out = sent(&mut control);
    let lines = first_lines(&out);
    assert_eq!(
        lines,
        [
            (
                addr(SECOND),
                "ACK sip:99#+442079460000@198.51.100.2 SIP/2.0"
            ),
            (addr(BACKEND), "SIP/2.0 486 Busy Here"),
        ]
    );
    assert_eq!(header(&out[1].2, "CSeq"), ["1 INVITE"]);
    assert_eq!(trunk_counters(&control, "second").channels(), 0);
}

#[test]
fn a_silent_trunk_fails_over_at_timer_b_and_a_last_503_reaches_the_backend_as_500() {
    let t0 = epoch();
    let mut control = outbound_control(OUTBOUND, t0);
    receive(&mut control, t0, BACKEND, &dial("o4", "02079460000", ""));
    sent(&mut control);
    let timer_b = t0 + Duration::from_millis(32_000);
    let mut now = t0;
    let mut to_first = 0;
    while now < timer_b {
        now = control.poll_timeout().min(timer_b);
        control.handle_timeout(now);
        to_first += sent(&mut control)
            .iter()
            .filter(|(to, ..)| *to == addr(FIRST))
            .count();
    }
    assert!(to_first >= 6, "Timer A retransmissions: {to_first}");
    let second = loop {
        now = control.poll_timeout();
        control.handle_timeout(now);
        let out = sent(&mut control);
        if let Some((_, _, text)) = out.into_iter().find(|(to, ..)| *to == addr(SECOND)) {
            break text;
        }
        assert!(now < t0 + Duration::from_secs(40), "no failover");
    };
    assert!(second.starts_with("INVITE sip:99#+442079460000@198.51.100.2 SIP/2.0"));
    assert_eq!(trunk_counters(&control, "first").channels(), 0);
    receive(
        &mut control,
        now,
        SECOND,
        &carrier_answer(&second, 503, "Service Unavailable", ""),
    );
    let out = sent(&mut control);
    let lines = first_lines(&out);
    assert_eq!(
        lines,
        [
            (
                addr(SECOND),
                "ACK sip:99#+442079460000@198.51.100.2 SIP/2.0"
            ),
            (addr(BACKEND), "SIP/2.0 500 All Trunks Failed"),
        ]
    );
    assert_eq!(trunk_counters(&control, "second").channels(), 0);
}

#[test]
fn x_trunk_pins_the_trunk_and_unknown_numbers_or_trunks_are_refused() {
    let t0 = epoch();
    let mut control = outbound_control(OUTBOUND, t0);
    receive(
        &mut control,
        t0,
        BACKEND,
        &dial("o5", "02079460000", "X-Trunk: second\r\n"),
    );
    let out = sent(&mut control);
    assert_eq!(out[1].0, addr(SECOND));
    assert!(
        header(&out[1].2, "X-Trunk").is_empty(),
        "X-Trunk never leaves trunkd"
    );

    receive(
        &mut control,
        t0,
        BACKEND,
        &dial("o6", "02079460000", "X-Trunk: nosuch\r\n"),
    );
    let out = sent(&mut control);
    assert_eq!(
        (out.len(), out[0].1.as_str()),
        (1, "SIP/2.0 404 Unknown Trunk")
    );

    let text = OUTBOUND
        .replace(
            "priority = 10",
            "priority = 10\noutbound_prefixes = [\"+44\"]",
        )
        .replace(
            "priority = 20",
            "priority = 20\noutbound_prefixes = [\"+44\"]",
        );
    let mut control = outbound_control(&text, t0);
    receive(&mut control, t0, BACKEND, &dial("o7", "+33123456789", ""));
    let out = sent(&mut control);
    assert_eq!((out.len(), out[0].1.as_str()), (1, "SIP/2.0 404 No Route"));
    receive(&mut control, t0, BACKEND, &dial("o8", "alice", ""));
    assert_eq!(sent(&mut control)[0].1, "SIP/2.0 404 No Route");
}

#[test]
fn a_full_trunk_is_skipped_and_with_none_left_the_backend_gets_503() {
    let t0 = epoch();
    let text = OUTBOUND.replace(
        "tech_prefix = \"99#\"",
        "tech_prefix = \"99#\"\nmax_channels = 1",
    );
    let mut control = outbound_control(&text, t0);
    receive(&mut control, t0, BACKEND, &dial("o9", "02079460000", ""));
    assert_eq!(sent(&mut control)[1].0, addr(FIRST));
    receive(&mut control, t0, BACKEND, &dial("o10", "02079460000", ""));
    assert_eq!(
        sent(&mut control)[1].0,
        addr(SECOND),
        "first is at max_channels"
    );
    receive(&mut control, t0, BACKEND, &dial("o11", "02079460000", ""));
    let out = sent(&mut control);
    assert_eq!(
        (out.len(), out[0].1.as_str()),
        (1, "SIP/2.0 503 No Trunk Available")
    );
    assert_eq!(header(&out[0].2, "Retry-After"), ["5"]);
    assert_eq!(count(&control, "first", |c| &c.rejected_out), 2);
}

#[test]
fn a_cancel_stops_the_search() {
    let t0 = epoch();
    let mut control = outbound_control(OUTBOUND, t0);
    let invite = dialled(&mut control, t0, "o12", "02079460000");
    receive(
        &mut control,
        t0,
        FIRST,
        &carrier_answer(&invite, 180, "Ringing", ""),
    );
    sent(&mut control);
    let cancel = dial("o12", "02079460000", "")
        .replace("INVITE sip:", "CANCEL sip:")
        .replace("1 INVITE", "1 CANCEL")
        .replace(
            "Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n",
            "Content-Length: 0\r\n\r\n",
        );
    receive(&mut control, t0, BACKEND, &cancel);
    let out = sent(&mut control);
    let lines = first_lines(&out);
    assert_eq!(
        lines,
        [
            (addr(BACKEND), "SIP/2.0 200 OK"),
            (addr(FIRST), "CANCEL sip:02079460000@198.51.100.1 SIP/2.0"),
        ]
    );
    // The carrier's 487 goes to the backend; the second trunk is never tried.
    receive(
        &mut control,
        t0,
        FIRST,
        &carrier_answer(&invite, 487, "Request Terminated", ""),
    );
    let out = sent(&mut control);
    assert!(out.iter().all(|(to, ..)| *to != addr(SECOND)), "{out:#?}");
    assert!(
        out.iter()
            .any(|(to, line, _)| *to == addr(BACKEND) && line == "SIP/2.0 487 Request Terminated")
    );
}

#[test]
fn the_password_is_in_no_message_and_no_event() {
    let t0 = epoch();
    let mut control = outbound_control(OUTBOUND, t0);
    let invite = dialled(&mut control, t0, "o13", "02079460000");
    let authed = challenged(&mut control, t0, &invite);
    assert!(!authed.contains(PASSWORD));
    // A second challenge: the credentials are refused; the next trunk is tried.
    receive(
        &mut control,
        t0,
        FIRST,
        &carrier_answer(&authed, 407, "Proxy Authentication Required", CHALLENGE),
    );
    let out = sent(&mut control);
    assert!(
        out.iter()
            .any(|(to, line, _)| *to == addr(SECOND) && line.starts_with("INVITE ")),
        "{out:#?}"
    );
    let events = format!("{:?}", drain_events(&mut control));
    assert!(events.contains("auth_failed"), "{events}");
    assert!(!events.contains(PASSWORD));
    assert!(out.iter().all(|(_, _, text)| !text.contains(PASSWORD)));
}

#[test]
fn a_challenged_bye_is_answered_and_its_200_reaches_the_backend_as_its_own() {
    let t0 = epoch();
    let mut control = outbound_control(OUTBOUND, t0);
    let invite = dialled(&mut control, t0, "o14", "02079460000");
    let challenge = carrier_answer(&invite, 407, "Proxy Authentication Required", CHALLENGE);
    receive(&mut control, t0, FIRST, &challenge);
    let authed = sent(&mut control)[1].2.clone();
    receive(
        &mut control,
        t0,
        FIRST,
        &carrier_answer(&authed, 200, "OK", ""),
    );
    receive(
        &mut control,
        t0,
        BACKEND,
        &backend_in_dialog("o14", "ACK", 1, "ack-o14"),
    );
    receive(
        &mut control,
        t0,
        BACKEND,
        &backend_in_dialog("o14", "BYE", 2, "bye-o14"),
    );
    let bye = sent(&mut control).pop().unwrap().2;
    assert_eq!(header(&bye, "CSeq"), ["3 BYE"]);
    // The carrier challenges the BYE too: it goes again with credentials, CSeq 4.
    let challenge = answer_in_dialog(&bye, 407, "Proxy Authentication Required").replace(
        "Content-Length: 0\r\n",
        &format!("{CHALLENGE}Content-Length: 0\r\n"),
    );
    receive(&mut control, t0, FIRST, &challenge);
    let out = sent(&mut control);
    assert_eq!(out.len(), 1, "nothing to the backend: {out:#?}");
    let again = out[0].2.clone();
    assert_eq!(out[0].0, addr(FIRST));
    assert_eq!(header(&again, "CSeq"), ["4 BYE"]);
    let credentials = header(&again, "Proxy-Authorization");
    assert!(
        credentials.len() == 1 && credentials[0].contains("uri=\"sip:callee@198.51.100.1:5060\""),
        "{again}"
    );
    assert_ne!(header(&again, "Via")[0], header(&bye, "Via")[0]);
    assert_eq!(header(&again, "Via")[1..], header(&bye, "Via")[1..]);
    // Its 200 reaches the backend with the backend's CSeq.
    receive(
        &mut control,
        t0,
        FIRST,
        &answer_in_dialog(&again, 200, "OK"),
    );
    let out = sent(&mut control);
    assert_eq!(
        (out[0].0, out[0].1.as_str()),
        (addr(BACKEND), "SIP/2.0 200 OK")
    );
    assert_eq!(header(&out[0].2, "CSeq"), ["2 BYE"]);
    assert_eq!(control.active_calls(), 0);
}

#[test]
fn a_connection_that_fails_is_a_failover_at_once() {
    let t0 = epoch();
    let text = OUTBOUND.replacen("transport = \"udp\"", "transport = \"tcp\"", 1);
    let mut control = outbound_control(&text, t0);
    receive(&mut control, t0, BACKEND, &dial("o15", "02079460000", ""));
    let out = transmits(&mut control);
    assert_eq!(
        (out[1].destination, out[1].transport),
        (addr(FIRST), Transport::Tcp)
    );
    control.handle_transport_error(t0, addr(FIRST), Transport::Tcp, "connection refused");
    let out = sent(&mut control);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].0, addr(SECOND));
    assert_eq!(count(&control, "first", |c| &c.failovers), 1);
}

#[test]
fn a_trunk_whose_keepalive_is_down_is_skipped() {
    let t0 = epoch();
    let text = OUTBOUND.replacen(
        "options_interval = 0",
        "options_interval = \"10s\"\noptions_down_after = 1",
        1,
    );
    let mut control = outbound_control(&text, t0);
    // The first trunk's pings go unanswered until its keepalive says down.
    let mut now = t0;
    while !drain_events(&mut control)
        .iter()
        .any(|event| format!("{event:?}").contains("Down"))
    {
        now = control.poll_timeout();
        control.handle_timeout(now);
        sent(&mut control);
        assert!(now < t0 + Duration::from_secs(120), "never down");
    }
    receive(&mut control, now, BACKEND, &dial("o16", "02079460000", ""));
    let out = sent(&mut control);
    assert_eq!(out[1].0, addr(SECOND), "{out:#?}");
    assert_eq!(count(&control, "first", |c| &c.rejected_out), 1);
    // Logged once, not per call.
    receive(&mut control, now, BACKEND, &dial("o16b", "02079460000", ""));
    sent(&mut control);
    let skips = drain_events(&mut control)
        .into_iter()
        .filter(|event| {
            format!("{event:?}")
                .contains("outbound calls skip this trunk: its keepalive says options=down")
        })
        .count();
    assert_eq!(skips, 1);
}

#[test]
fn a_reload_that_removes_the_trunk_ends_no_call_and_new_calls_use_the_new_config() {
    let t0 = epoch();
    let mut control = outbound_control(OUTBOUND, t0);
    let invite = dialled(&mut control, t0, "o17", "02079460000");
    receive(
        &mut control,
        t0,
        FIRST,
        &carrier_answer(&invite, 200, "OK", ""),
    );
    receive(
        &mut control,
        t0,
        BACKEND,
        &backend_in_dialog("o17", "ACK", 1, "ack-o17"),
    );
    sent(&mut control);
    let counters = trunk_counters(&control, "first");
    assert_eq!(counters.channels(), 1);
    // The first trunk goes; the call through it goes on, and so does its BYE.
    let start = OUTBOUND.find("[trunks.first]").unwrap();
    let end = OUTBOUND.find("[trunks.second]").unwrap();
    let without_first = format!("{}{}", &OUTBOUND[..start], &OUTBOUND[end..]);
    let config = load_str(Path::new("t.toml"), &without_first, &LoadOptions::default()).unwrap();
    control.handle_reload(t0, Ok(config));
    sent(&mut control);
    receive(&mut control, t0, BACKEND, &dial("o18", "02079460000", ""));
    assert_eq!(
        sent(&mut control)[1].0,
        addr(SECOND),
        "new calls: the new config"
    );
    receive(
        &mut control,
        t0,
        BACKEND,
        &backend_in_dialog("o17", "BYE", 2, "bye-o17"),
    );
    let bye = sent(&mut control).pop().unwrap();
    assert_eq!(
        (bye.0, header(&bye.2, "CSeq")),
        (addr(FIRST), vec!["2 BYE"])
    );
    receive(
        &mut control,
        t0,
        FIRST,
        &answer_in_dialog(&bye.2, 200, "OK"),
    );
    assert_eq!(sent(&mut control)[0].1, "SIP/2.0 200 OK");
    assert_eq!(counters.channels(), 0, "released exactly once");
}

#[test]
fn a_next_hop_only_calls_use_is_looked_up_again_at_its_ttl() {
    let t0 = epoch();
    let text = OUTBOUND.replace(
        "domain = \"198.51.100.2\"",
        "domain = \"carrier-b.example\"",
    );
    let mut control = control(&text, t0);
    let mut asked = Vec::new();
    while let Some(request) = control.poll_resolve() {
        asked.push(request.host.clone());
        let resolved = Resolved {
            next_hop: addr(if request.key.trunk() == Some("first") {
                FIRST
            } else {
                SECOND
            }),
            alternatives: Vec::new(),
            local: addr(LOCAL),
            public: false,
            ttl: (request.host == "carrier-b.example").then_some(Duration::from_secs(60)),
        };
        control.handle_resolved(t0, &request.key, Ok(resolved));
    }
    assert!(asked.contains(&"carrier-b.example".to_owned()), "{asked:?}");
    assert!(control.poll_timeout() <= t0 + Duration::from_secs(60));
    control.handle_timeout(t0 + Duration::from_secs(60));
    let again = control.poll_resolve().expect("looked up again at the TTL");
    assert_eq!(again.host, "carrier-b.example");
    assert!(
        control.poll_resolve().is_none(),
        "an IP address is not looked up again"
    );
}

#[test]
fn backend_allowed_ips_may_dial_out_and_other_sources_may_not() {
    let t0 = epoch();
    let text = OUTBOUND.replace(
        "uri = \"sip:10.0.0.9:5080\"",
        "uri = \"sip:10.0.0.9:5080\"\nallowed_ips = [\"10.1.0.0/16\"]",
    );
    let mut control = outbound_control(&text, t0);
    receive(
        &mut control,
        t0,
        "10.1.2.3:5060",
        &dial("o19", "02079460000", ""),
    );
    let out = sent(&mut control);
    assert_eq!(
        first_lines(&out)[0],
        (addr("10.1.2.3:5060"), "SIP/2.0 100 Trying")
    );
    assert_eq!(out[1].0, addr(FIRST));
    let refused = receive(
        &mut control,
        t0,
        "10.2.0.1:5060",
        &dial("o20", "02079460000", ""),
    );
    assert!(refused.is_some_and(|text| text.starts_with("SIP/2.0 403 Forbidden\r\n")));
    assert!(sent(&mut control).is_empty());
}

/// With `[cluster]` each attempt's channel is asked of the cluster before its INVITE
/// goes out: a trunk the cluster says is full is skipped for the next; while Redis
/// cannot be asked, this host decides alone within its share.
#[test]
fn with_a_cluster_an_attempt_waits_for_its_channel_and_a_refused_trunk_is_skipped() {
    use crate::cluster::{Reply, Request, Verdict};
    let t0 = epoch();
    let text =
        format!("{OUTBOUND}\n[cluster]\nredis = \"redis://127.0.0.1:6379\"\nnode = \"edge\"\n");
    let mut control = outbound_control(&text, t0);
    // Redis not connected: decided alone (first has max_channels 1: a share of 1).
    let invite = dialled(&mut control, t0, "alone", "02079460000");
    assert!(
        invite.starts_with("INVITE sip:02079460000@198.51.100.1"),
        "{invite}"
    );
    assert_eq!(control.poll_cluster(), None);

    join_cluster(&mut control, t0, "edge");

    // The first trunk's one channel is held by the call above: the second is tried, and
    // its INVITE waits for the cluster.
    let t1 = t0 + Duration::from_secs(1);
    receive(&mut control, t1, BACKEND, &dial("asked", "02079460001", ""));
    let out = sent(&mut control);
    assert_eq!(out.len(), 1, "only the 100 Trying: {out:#?}");
    assert_eq!(out[0].1, "SIP/2.0 100 Trying");
    let Some(Request::Claim {
        ticket,
        trunk,
        count,
        max,
        ..
    }) = control.poll_cluster()
    else {
        panic!("a claim");
    };
    assert_eq!((trunk.as_str(), count, max), ("second", 1, 0));
    // Nothing goes to the second trunk while it waits (the first call's INVITE is
    // retransmitted to the first meanwhile).
    control.handle_timeout(t1 + Duration::from_millis(400));
    let out = sent(&mut control);
    assert!(out.iter().all(|(to, _, _)| *to != addr(SECOND)), "{out:#?}");
    let granted = Reply::Claimed {
        ticket,
        verdict: Verdict::Granted,
    };
    control.handle_cluster(t1 + Duration::from_millis(2), granted);
    let out = sent(&mut control);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].0, addr(SECOND));
    assert!(
        out[0]
            .1
            .starts_with("INVITE sip:99#+442079460001@198.51.100.2"),
        "{}",
        out[0].1
    );

    // Refused by the cluster, with no other trunk: 503 to the backend, the channel back.
    let t2 = t1 + Duration::from_secs(1);
    receive(
        &mut control,
        t2,
        BACKEND,
        &dial("refused", "02079460002", ""),
    );
    sent(&mut control);
    let ticket = claim_ticket(&mut control);
    let busy = Reply::Claimed {
        ticket,
        verdict: Verdict::Busy,
    };
    control.handle_cluster(t2, busy);
    let out = sent(&mut control);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].0, addr(BACKEND));
    assert_eq!(out[0].1, "SIP/2.0 503 No Trunk Available");
    let second = &control.trunk("second").unwrap().counters;
    assert_eq!(second.channels(), 1, "the granted call's only");
    assert_eq!(second.rejected_busy.load(Ordering::Relaxed), 1);
}

/// The trunks a number is matched against follow the config: a trunk a reload disables
/// (its slot and next hop still there) gets no new call, and one enabled again does.
#[test]
fn a_trunk_disabled_by_a_reload_is_not_dialled_and_enabled_again_is() {
    let t0 = epoch();
    let mut control = outbound_control(OUTBOUND, t0);
    let disabled = OUTBOUND.replace("[trunks.first]\n", "[trunks.first]\nenabled = false\n");
    for (text, call, expected) in [(disabled.as_str(), "o40", SECOND), (OUTBOUND, "o41", FIRST)] {
        let config = load_str(Path::new("t.toml"), text, &LoadOptions::default()).unwrap();
        control.handle_reload(t0, Ok(config));
        sent(&mut control);
        receive(&mut control, t0, BACKEND, &dial(call, "02079460000", ""));
        assert_eq!(sent(&mut control)[1].0, addr(expected), "{call}");
    }
}
