//! The call path driven through the control path on a virtual clock: the hot path admits, the
//! control path proxies, and the channel is released however the call ends.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Connection;
use crate::config::Transport;
use crate::config::{LoadOptions, load_str};
use crate::control::{Control, Event};
use crate::inbound::{Decision, TrunkCounters, Worker};
use crate::sip::Transmit;

const CONFIG: &str = r#"
[daemon]
listen = ["udp:127.0.0.1:0"]
status_interval = "1h"
max_call_duration = "10m"

[backend]
uri = "sip:10.0.0.9:5080"

[trunks.carrier]
domain = "192.0.2.1"
allowed_inbound_ips = ["192.0.2.0/24"]
numbers = ["+15550100001"]
max_channels = 2
options_interval = 0
"#;

const CARRIER: &str = "192.0.2.10:5060";
const BACKEND: &str = "10.0.0.9:5080";
const LOCAL: &str = "192.0.2.200:5060";

#[allow(clippy::disallowed_methods)]
fn epoch() -> Instant {
    Instant::now()
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn control(text: &str, now: Instant) -> Control {
    let config = load_str(Path::new("t.toml"), text, &LoadOptions::default())
        .unwrap_or_else(|errors| panic!("{errors}"));
    Control::new(config, now)
}

fn invite(call: &str) -> String {
    format!(
        "INVITE sip:+15550100001@192.0.2.200 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-{call};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+15551230000@carrier.example>;tag=c-{call}\r\n\
         To: <sip:+15550100001@192.0.2.200>\r\n\
         Call-ID: {call}@carrier\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:+15551230000@192.0.2.10:5060>\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// What the hot path does with a datagram, then the control path's part.
fn receive(control: &mut Control, now: Instant, source: &str, bytes: &str) -> Option<String> {
    receive_over(control, now, source, None, bytes)
}

/// [`receive`] for a message that came over a connection.
fn receive_over(
    control: &mut Control,
    now: Instant,
    source: &str,
    connection: Option<Connection>,
    bytes: &str,
) -> Option<String> {
    let inbound = control.inbound();
    let mut worker = Worker::new();
    let (source, local) = (addr(source), addr(LOCAL));
    match inbound.handle(&mut worker, now, source, bytes.as_bytes()) {
        Decision::Answer(_) => return Some(String::from_utf8(worker.out).unwrap()),
        Decision::Nothing => return None,
        Decision::Control => {
            control.handle_message(now, source, local, connection, bytes.as_bytes(), None)
        }
        Decision::Admit(admitted) => control.handle_message(
            now,
            source,
            local,
            connection,
            bytes.as_bytes(),
            Some(admitted),
        ),
    }
    None
}

/// Everything the control path wants sent, as (destination, first line, text).
fn sent(control: &mut Control) -> Vec<(SocketAddr, String, String)> {
    transmits(control)
        .into_iter()
        .map(|t| {
            let text = String::from_utf8(t.bytes).unwrap();
            (t.destination, text.lines().next().unwrap().to_owned(), text)
        })
        .collect()
}

fn transmits(control: &mut Control) -> Vec<Transmit> {
    std::iter::from_fn(|| control.poll_transmit()).collect()
}

/// A UAS's answer to a request inside a dialog (its To has the tag already).
fn answer_in_dialog(request: &str, code: u16, reason: &str) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for line in request.lines() {
        for name in ["Via:", "From:", "To:", "Call-ID:", "CSeq:"] {
            if line.starts_with(name) {
                out.push_str(line);
                out.push_str("\r\n");
            }
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

/// The backend's BYE for dialog `call` (its tag `b1`), after `routes`, to `uri`.
fn backend_bye(call: &str, uri: &str, routes: &str) -> String {
    format!(
        "BYE {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.0.9:5080;branch=z9hG4bK-bye-{call}\r\n\
         Route: {routes}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+15550100001@192.0.2.200>;tag=b1\r\n\
         To: <sip:+15551230000@carrier.example>;tag=c-{call}\r\n\
         Call-ID: {call}@carrier\r\n\
         CSeq: 1 BYE\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// The carrier's BYE for the dialog of `call` with the backend's `tag`.
fn carrier_bye(call: &str, tag: &str, branch: &str) -> String {
    invite(call)
        .replace(
            "INVITE sip:+15550100001@192.0.2.200",
            "BYE sip:10.0.0.9:5080",
        )
        .replace("1 INVITE", "2 BYE")
        .replace("@192.0.2.200>\r\n", &format!("@192.0.2.200>;tag={tag}\r\n"))
        .replace(
            &format!("branch=z9hG4bK-{call}"),
            &format!("branch=z9hG4bK-{branch}"),
        )
}

fn header<'a>(message: &'a str, name: &str) -> Vec<&'a str> {
    message
        .lines()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
        .collect()
}

/// The backend's response to the request `to` it received, with a To-tag.
fn answer(request: &str, code: u16, reason: &str) -> String {
    answer_as(request, (code, reason), "b1", "<sip:10.0.0.9:5080>", "")
}

/// A UAS's response to `request`: its Via, Record-Route, From, Call-ID and CSeq, its To
/// with `tag` unless it has one, `extra` header lines, and `contact`.
fn answer_as(
    request: &str,
    (code, reason): (u16, &str),
    tag: &str,
    contact: &str,
    extra: &str,
) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for line in request.lines() {
        for name in ["Via:", "Record-Route:", "From:", "Call-ID:", "CSeq:"] {
            if line.starts_with(name) {
                out.push_str(line);
                out.push_str("\r\n");
            }
        }
        if line.starts_with("To:") {
            out.push_str(line);
            if !line.contains(";tag=") {
                out.push_str(";tag=");
                out.push_str(tag);
            }
            out.push_str("\r\n");
        }
    }
    out.push_str(extra);
    out.push_str("Contact: ");
    out.push_str(contact);
    out.push_str("\r\nContent-Length: 0\r\n\r\n");
    out
}

fn channels(control: &Control) -> u32 {
    control.inbound().snapshot().trunks[0].counters.channels()
}

#[test]
fn answered_call_keeps_its_channel_until_bye() {
    let t0 = epoch();
    let mut control = control(CONFIG, t0);
    sent(&mut control);
    assert_eq!(receive(&mut control, t0, CARRIER, &invite("a")), None);
    let out = sent(&mut control);
    assert_eq!(out[0].0, addr(CARRIER));
    assert_eq!(out[0].1, "SIP/2.0 100 Trying");
    assert_eq!(out[1].0, addr(BACKEND));
    assert_eq!(out[1].1, "INVITE sip:+15550100001@10.0.0.9:5080 SIP/2.0");
    let forwarded = out[1].2.clone();
    assert!(forwarded.contains("\r\nX-Trunk: carrier\r\n"));
    assert!(forwarded.contains("Record-Route: <sip:192.0.2.200:5060;lr>\r\n"));
    assert_eq!(channels(&control), 1);

    // A retransmitted INVITE gets the 100 again and claims nothing.
    assert_eq!(receive(&mut control, t0, CARRIER, &invite("a")), None);
    let again = sent(&mut control);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].2, out[0].2, "byte for byte the first 100");
    assert_eq!(channels(&control), 1);

    receive(
        &mut control,
        t0,
        BACKEND,
        &answer(&forwarded, 180, "Ringing"),
    );
    receive(&mut control, t0, BACKEND, &answer(&forwarded, 200, "OK"));
    let relayed = sent(&mut control);
    let lines: Vec<_> = relayed
        .iter()
        .map(|(to, line, _)| (to.to_string(), line.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (CARRIER.to_owned(), "SIP/2.0 180 Ringing"),
            (CARRIER.to_owned(), "SIP/2.0 200 OK")
        ]
    );
    assert!(
        !relayed[1].2.contains("192.0.2.200:5060;branch=z9hG4bKtk"),
        "our Via is gone from relayed responses"
    );
    assert_eq!(control.active_calls(), 1);

    // Hours later, still one channel; then the carrier hangs up.
    let later = t0 + Duration::from_secs(300);
    control.handle_timeout(later);
    assert_eq!(channels(&control), 1);
    let bye = invite("a")
        .replace(
            "INVITE sip:+15550100001@192.0.2.200",
            "BYE sip:10.0.0.9:5080",
        )
        .replace("1 INVITE", "2 BYE")
        .replace("@192.0.2.200>\r\n", "@192.0.2.200>;tag=b1\r\n")
        .replace("branch=z9hG4bK-a", "branch=z9hG4bK-bye");
    receive(&mut control, later, CARRIER, &bye);
    let out = sent(&mut control);
    assert_eq!(out[0].0, addr(BACKEND));
    assert!(out[0].1.starts_with("BYE "));
    assert_eq!(channels(&control), 0, "released at the BYE");
    assert_eq!(control.active_calls(), 0);
    // The 200 for the BYE goes back to the carrier.
    receive(&mut control, later, BACKEND, &answer(&out[0].2, 200, "OK"));
    let out = sent(&mut control);
    assert_eq!(
        (out[0].0, out[0].1.as_str()),
        (addr(CARRIER), "SIP/2.0 200 OK")
    );
    // The call is forgotten once it has lingered.
    control.handle_timeout(later + Duration::from_secs(40));
    assert_eq!(control.calls_remembered(), 0);
}

#[test]
fn a_busy_backend_releases_the_channel_and_its_ack_is_ours() {
    let t0 = epoch();
    let mut control = control(CONFIG, t0);
    sent(&mut control);
    receive(&mut control, t0, CARRIER, &invite("b"));
    let forwarded = sent(&mut control)[1].2.clone();
    receive(
        &mut control,
        t0,
        BACKEND,
        &answer(&forwarded, 486, "Busy Here"),
    );
    let out = sent(&mut control);
    let lines: Vec<_> = out
        .iter()
        .map(|(to, line, _)| (to.to_string(), line.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (
                BACKEND.to_owned(),
                "ACK sip:+15550100001@10.0.0.9:5080 SIP/2.0"
            ),
            (CARRIER.to_owned(), "SIP/2.0 486 Busy Here"),
        ]
    );
    assert_eq!(channels(&control), 0);
    // The carrier's ACK for the 486 ends at trunkd (same branch as its INVITE).
    let ack = invite("b")
        .replace("INVITE sip", "ACK sip")
        .replace("1 INVITE", "1 ACK")
        .replace("@192.0.2.200>\r\n", "@192.0.2.200>;tag=b1\r\n");
    receive(&mut control, t0, CARRIER, &ack);
    assert!(sent(&mut control).is_empty());
}

#[test]
fn a_silent_backend_gets_the_carrier_503_and_a_ringing_one_is_cancelled_at_timer_c() {
    let t0 = epoch();
    let mut control = control(CONFIG, t0);
    sent(&mut control);
    receive(&mut control, t0, CARRIER, &invite("c"));
    sent(&mut control);
    // Timer A retransmits; Timer B (64·T1 = 32 s) gives up.
    let mut now = t0;
    let mut retransmissions = 0;
    while now < t0 + Duration::from_secs(33) {
        now = control.poll_timeout().min(t0 + Duration::from_secs(33));
        control.handle_timeout(now);
        for (to, line, _) in sent(&mut control) {
            if to == addr(BACKEND) && line.starts_with("INVITE") {
                retransmissions += 1;
            }
            if to == addr(CARRIER) {
                assert_eq!(line, "SIP/2.0 503 Backend Unavailable");
            }
        }
    }
    assert_eq!(
        retransmissions, 6,
        "Timer A at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s"
    );
    assert_eq!(channels(&control), 0);
    // The carrier's ACK to our 503 reaches the transaction: no more 503s (Timer G).
    let ack = invite("c")
        .replace("INVITE sip", "ACK sip")
        .replace("1 INVITE", "1 ACK")
        .replace("@192.0.2.200>\r\n", "@192.0.2.200>;tag=x\r\n");
    assert_eq!(receive(&mut control, now, CARRIER, &ack), None);
    let quiet_until = now + Duration::from_secs(10);
    while now < quiet_until {
        now = control.poll_timeout().min(quiet_until);
        control.handle_timeout(now);
        assert!(
            sent(&mut control).is_empty(),
            "503 retransmitted after its ACK"
        );
    }

    // Another call rings: Timer C (181 s) cancels it and tells the carrier 408.
    receive(&mut control, now, CARRIER, &invite("d"));
    let forwarded = sent(&mut control)[1].2.clone();
    receive(
        &mut control,
        now,
        BACKEND,
        &answer(&forwarded, 180, "Ringing"),
    );
    sent(&mut control);
    let limit = now + Duration::from_secs(182);
    let mut seen = Vec::new();
    while now < limit {
        now = control.poll_timeout().min(limit);
        control.handle_timeout(now);
        seen.extend(
            sent(&mut control)
                .into_iter()
                .map(|(to, line, _)| (to, line)),
        );
    }
    assert!(
        seen.contains(&(
            addr(BACKEND),
            "CANCEL sip:+15550100001@10.0.0.9:5080 SIP/2.0".into()
        )),
        "{seen:?}"
    );
    assert!(
        seen.contains(&(addr(CARRIER), "SIP/2.0 408 Request Timeout".into())),
        "{seen:?}"
    );
    assert_eq!(channels(&control), 0);
    // The backend's 487 to our CANCEL is not a second final answer to the carrier.
    receive(
        &mut control,
        now,
        BACKEND,
        &answer(&forwarded, 487, "Request Terminated"),
    );
    let after: Vec<_> = sent(&mut control)
        .into_iter()
        .map(|(to, line, _)| (to, line))
        .collect();
    assert_eq!(
        after,
        [(
            addr(BACKEND),
            "ACK sip:+15550100001@10.0.0.9:5080 SIP/2.0".to_owned()
        )]
    );
}

#[test]
fn calls_survive_reloads_and_max_call_duration_ends_a_call_without_bye() {
    let t0 = epoch();
    let mut control = control(CONFIG, t0);
    sent(&mut control);
    receive(&mut control, t0, CARRIER, &invite("e"));
    let forwarded = sent(&mut control)[1].2.clone();
    receive(&mut control, t0, BACKEND, &answer(&forwarded, 200, "OK"));
    sent(&mut control);
    // Lowering max_channels below what is in use keeps the call and its count.
    let lowered = CONFIG.replace("max_channels = 2", "max_channels = 1");
    control.handle_reload(
        t0,
        Ok(load_str(Path::new("t.toml"), &lowered, &LoadOptions::default()).unwrap()),
    );
    assert_eq!(channels(&control), 1);
    assert_eq!(
        receive(&mut control, t0, CARRIER, &invite("f"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
        "SIP/2.0 503 Channel Limit Reached"
    );
    // Removing the trunk: the call goes on (BYE still routed) until it ends.
    let removed = CONFIG
        .replace("[trunks.carrier]", "[trunks.other]")
        .replace("+15550100001", "+15550100002");
    control.handle_reload(
        t0,
        Ok(load_str(Path::new("t.toml"), &removed, &LoadOptions::default()).unwrap()),
    );
    assert_eq!(control.active_calls(), 1);
    // No BYE ever comes: max_call_duration (10 min) ends it with a warning.
    drain_events(&mut control);
    let end = t0 + Duration::from_secs(601);
    let mut now = t0;
    while now < end {
        now = control.poll_timeout().min(end);
        control.handle_timeout(now);
    }
    assert_eq!(control.active_calls(), 0);
    let warned = drain_events(&mut control).into_iter().any(|event| matches!(
        event,
        Event::Warning { ref trunk, ref message } if trunk == "carrier" && message.contains("max_call_duration")
    ));
    assert!(warned);
}

/// Timers that only end the absorbing of retransmissions (Timer L, M, the linger after a
/// BYE) wake nothing while a call goes on, yet have run before anything reaches the call;
/// an ended call is forgotten in one wakeup.
#[test]
fn absorbing_timers_wake_nothing_and_an_ended_call_is_forgotten_at_once() {
    let t0 = epoch();
    let secs = |s: u64| t0 + Duration::from_secs(s);
    let mut control = control(CONFIG, t0);
    sent(&mut control);
    receive(&mut control, t0, CARRIER, &invite("l"));
    let forwarded = sent(&mut control)[1].2.clone();
    let ok = answer(&forwarded, 200, "OK");
    receive(&mut control, t0, BACKEND, &ok);
    assert_eq!(sent(&mut control).len(), 1);
    // Timer A went with the 200: max_call_duration (10 min) is next, with no early
    // wakeup at Timer A's old instant in between.
    assert_eq!(control.poll_timeout(), secs(600));
    // The backend's retransmitted 2xx is relayed within Timer M (64·T1, RFC 6026 §7.2),
    // not after it, though no wakeup ran the timer.
    receive(&mut control, secs(31), BACKEND, &ok);
    assert_eq!(sent(&mut control).len(), 1);
    receive(&mut control, secs(33), BACKEND, &ok);
    assert!(sent(&mut control).is_empty());
    // The carrier hangs up; the call lingers 64·T1 for the BYE's retransmissions and is
    // forgotten at one wakeup, on the grid ended calls are forgotten on.
    let bye = carrier_bye("l", "b1", "bye-l");
    receive(&mut control, secs(40), CARRIER, &bye);
    assert_eq!(sent(&mut control).len(), 1);
    assert_eq!(channels(&control), 0);
    let forget = control.poll_timeout();
    assert!(forget >= secs(72) && forget <= secs(72) + super::FORGET_GRID);
    // Until then, the BYE's retransmission still finds the call; past 64·T1 it does not,
    // though the wakeup has not come yet.
    receive(&mut control, secs(71), CARRIER, &bye);
    assert_eq!(sent(&mut control)[0].1, "BYE sip:10.0.0.9:5080 SIP/2.0");
    receive(&mut control, secs(72), CARRIER, &bye);
    assert_eq!(
        sent(&mut control)[0].1,
        "SIP/2.0 481 Call/Transaction Does Not Exist"
    );
    assert_eq!(control.calls_remembered(), 0);
    assert!(
        control.poll_timeout() > secs(600),
        "no stale entry left in front"
    );
}

/// `[cluster]` connected and trusted (`node` answered its first heartbeat); the
/// requests that follow are dropped.
fn join_cluster(control: &mut Control, now: Instant, node: &str) {
    use crate::cluster::{Reply, Request};
    control.handle_cluster(now, Reply::Connected);
    control.handle_timeout(now);
    assert_eq!(control.poll_cluster(), Some(Request::Heartbeat));
    let beat = Reply::Heartbeat {
        epoch: 1,
        rejoined: true,
        boot: "b".into(),
        alive: vec![node.into()],
        totals: Vec::new(),
        vacant: Vec::new(),
    };
    control.handle_cluster(now, beat);
    std::iter::from_fn(|| control.poll_cluster()).for_each(drop);
}

/// The ticket of the next channel claim the control path asks of Redis (the count
/// write-backs before it skipped).
fn claim_ticket(control: &mut Control) -> u64 {
    std::iter::from_fn(|| control.poll_cluster())
        .find_map(|request| match request {
            crate::cluster::Request::Claim { ticket, .. } => Some(ticket),
            _ => None,
        })
        .expect("a claim")
}

fn drain_events(control: &mut Control) -> Vec<Event> {
    std::iter::from_fn(|| control.poll_event()).collect()
}

#[test]
fn the_backends_bye_goes_to_the_carriers_contact_and_its_answer_comes_back() {
    let t0 = epoch();
    let mut control = control(CONFIG, t0);
    sent(&mut control);
    // Another node of the carrier, and one behind a NAT (its Contact says 192.168.1.20).
    let contacts = [
        ("g", "192.0.2.11:5070", "192.0.2.11:5070"),
        ("n", "192.168.1.20:5060", CARRIER),
    ];
    for (call, contact, expected) in contacts {
        let invite = invite(call).replace("192.0.2.10:5060>", &format!("{contact}>"));
        receive(&mut control, t0, CARRIER, &invite);
        let forwarded = sent(&mut control)[1].2.clone();
        receive(&mut control, t0, BACKEND, &answer(&forwarded, 200, "OK"));
        sent(&mut control);
        assert_eq!(channels(&control), 1);

        let uri = format!("sip:+15551230000@{contact}");
        let bye = backend_bye(call, &uri, "<sip:192.0.2.200:5060;lr>");
        receive(&mut control, t0, BACKEND, &bye);
        let out = sent(&mut control);
        assert_eq!(out.len(), 1, "{out:?}");
        let (to, line, text) = &out[0];
        assert_eq!(
            (*to, line.as_str()),
            (addr(expected), &*format!("BYE {uri} SIP/2.0"))
        );
        assert!(
            header(text, "Route").is_empty(),
            "our Route entry is removed: {text}"
        );
        assert!(
            header(text, "Via")[0].starts_with("SIP/2.0/UDP 192.0.2.200:5060;branch=z9hG4bKtk")
        );
        assert_eq!(channels(&control), 0, "released at the BYE");

        // The carrier's 200 comes from where the BYE went; it goes to the BYE's sender.
        receive(
            &mut control,
            t0,
            expected,
            &answer_in_dialog(text, 200, "OK"),
        );
        let out = sent(&mut control);
        assert_eq!(
            (out[0].0, out[0].1.as_str()),
            (addr(BACKEND), "SIP/2.0 200 OK")
        );
    }
}

#[test]
fn a_forked_answer_holds_the_channel_until_its_last_dialog_ends() {
    let t0 = epoch();
    let mut control = control(CONFIG, t0);
    sent(&mut control);
    receive(&mut control, t0, CARRIER, &invite("h"));
    let forwarded = sent(&mut control)[1].2.clone();
    let first = answer(&forwarded, 200, "OK");
    let second = first.replace("tag=b1", "tag=b2");
    receive(&mut control, t0, BACKEND, &first);
    receive(&mut control, t0, BACKEND, &second);
    let relayed = sent(&mut control);
    assert_eq!(relayed.len(), 2, "both 2xx go to the carrier: {relayed:?}");
    assert!(
        relayed
            .iter()
            .all(|(to, line, _)| *to == addr(CARRIER) && line == "SIP/2.0 200 OK")
    );

    // The carrier keeps b1 and ends b2, from another of its nodes: the BYE is the
    // carrier's by its From tag, not by its address, and its 200 goes back to that node.
    let node = "192.0.2.13:5060";
    receive(&mut control, t0, node, &carrier_bye("h", "b2", "bye-b2"));
    let out = sent(&mut control);
    assert_eq!(
        (out[0].0, out[0].1.as_str()),
        (addr(BACKEND), "BYE sip:10.0.0.9:5080 SIP/2.0")
    );
    assert_eq!(channels(&control), 1, "b1 still up");
    assert_eq!(control.active_calls(), 1);
    receive(
        &mut control,
        t0,
        BACKEND,
        &answer_in_dialog(&out[0].2, 200, "OK"),
    );
    let out = sent(&mut control);
    assert_eq!(
        (out[0].0, out[0].1.as_str()),
        (addr(node), "SIP/2.0 200 OK")
    );

    // A BYE naming no dialog of the call ends nothing.
    receive(&mut control, t0, CARRIER, &carrier_bye("h", "b9", "bye-b9"));
    sent(&mut control);
    assert_eq!(channels(&control), 1);

    receive(&mut control, t0, CARRIER, &carrier_bye("h", "b1", "bye-b1"));
    sent(&mut control);
    assert_eq!(channels(&control), 0);
    assert_eq!(control.active_calls(), 0);
}

#[test]
fn a_carrier_over_tcp_gets_a_double_record_route_and_requests_on_its_connection() {
    let t0 = epoch();
    let mut control = control(CONFIG, t0);
    sent(&mut control);
    let connection = Connection {
        transport: Transport::Tcp,
        listener: Some(addr("192.0.2.200:5070")),
    };
    let ephemeral = "192.0.2.10:40001";
    let invite = invite("t")
        .replace("SIP/2.0/UDP 192.0.2.10:5060", "SIP/2.0/TCP 192.0.2.10:5060")
        .replace("192.0.2.10:5060>", "192.0.2.10:5060;transport=tcp>");
    receive_over(&mut control, t0, ephemeral, Some(connection), &invite);
    let out = transmits(&mut control);
    // The 100 on the carrier's connection; should it close, a new one to its Via's port.
    assert_eq!(
        (out[0].transport, out[0].connection, out[0].destination),
        (Transport::Tcp, Some(addr(ephemeral)), addr(CARRIER))
    );
    assert_eq!(out[0].server_name, "192.0.2.1");
    let forwarded = String::from_utf8(out[1].bytes.clone()).unwrap();
    assert_eq!(
        (out[1].transport, out[1].destination),
        (Transport::Udp, addr(BACKEND))
    );
    assert_eq!(
        header(&forwarded, "Record-Route"),
        [
            "<sip:192.0.2.200:5060;lr>",
            "<sip:192.0.2.200:5070;transport=tcp;lr>"
        ],
        "the backend's side on top (RFC 5658)"
    );
    receive(&mut control, t0, BACKEND, &answer(&forwarded, 200, "OK"));
    let out = transmits(&mut control);
    assert_eq!(
        (out[0].transport, out[0].connection),
        (Transport::Tcp, Some(addr(ephemeral)))
    );

    // The backend hangs up through both of our Route entries: the BYE goes over TCP, on
    // the connection while it is open, else to the carrier's Contact.
    let routes = "<sip:192.0.2.200:5060;lr>, <sip:192.0.2.200:5070;transport=tcp;lr>";
    let bye = backend_bye(
        "t",
        "sip:+15551230000@192.0.2.10:5080;transport=tcp",
        routes,
    );
    receive(&mut control, t0, BACKEND, &bye);
    let out = transmits(&mut control);
    assert_eq!(
        (out[0].transport, out[0].connection, out[0].destination),
        (
            Transport::Tcp,
            Some(addr(ephemeral)),
            addr("192.0.2.10:5080")
        )
    );
    let text = String::from_utf8(out[0].bytes.clone()).unwrap();
    assert!(header(&text, "Route").is_empty(), "{text}");
    assert!(header(&text, "Via")[0].starts_with("SIP/2.0/TCP 192.0.2.200:5070;branch="));
    assert_eq!(channels(&control), 0);

    // The carrier answers on a connection of its own; the 200 reaches the backend.
    let again = Some(connection);
    receive_over(
        &mut control,
        t0,
        "192.0.2.10:40002",
        again,
        &answer_in_dialog(&text, 200, "OK"),
    );
    let out = sent(&mut control);
    assert_eq!(
        (out[0].0, out[0].1.as_str()),
        (addr(BACKEND), "SIP/2.0 200 OK")
    );
}

/// One thing that can happen to call `p<n>` in the property test below.
#[derive(Debug, Clone)]
enum Step {
    Invite(u8),
    /// The backend answers with a code, under To tag `b<n>` (forks when they differ).
    Answer(u8, u16, u8),
    CarrierBye(u8, u8),
    BackendBye(u8, u8),
    Cancel(u8),
    /// Time passes (seconds), every timer due runs.
    Wait(u16),
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        (0..4u8).prop_map(Step::Invite),
        (0..4u8, prop::sample::select(vec![180u16, 200, 486]), 0..3u8)
            .prop_map(|(call, code, tag)| Step::Answer(call, code, tag)),
        (0..4u8, 0..3u8).prop_map(|(call, tag)| Step::CarrierBye(call, tag)),
        (0..4u8, 0..3u8).prop_map(|(call, tag)| Step::BackendBye(call, tag)),
        (0..4u8).prop_map(Step::Cancel),
        (1..400u16).prop_map(Step::Wait),
    ]
}

proptest::proptest! {
    /// Whatever the order of INVITEs, answers (forks included), BYEs from either side,
    /// CANCELs and timeouts: a call holds its channel exactly while it is in progress,
    /// the trunk never counts more than max_channels (2) nor less than 0, and once
    /// max_call_duration has passed everything is released and forgotten.
    #[test]
    fn channels_follow_the_calls_in_progress_under_any_event_order(
        steps in proptest::collection::vec(step(), 0..60),
    ) {
        let t0 = epoch();
        let mut now = t0;
        let mut control = control(CONFIG, t0);
        sent(&mut control);
        let mut forwarded: [Option<String>; 4] = Default::default();
        for step in steps {
            match step {
                Step::Invite(call) => {
                    receive(&mut control, now, CARRIER, &invite(&format!("p{call}")));
                    if let Some((_, _, text)) =
                        sent(&mut control).into_iter().find(|(_, line, _)| line.starts_with("INVITE"))
                    {
                        forwarded[usize::from(call)] = Some(text);
                    }
                }
                Step::Answer(call, code, tag) => {
                    if let Some(request) = &forwarded[usize::from(call)] {
                        let reason = match code { 180 => "Ringing", 200 => "OK", _ => "Busy Here" };
                        let response = answer(request, code, reason)
                            .replace("tag=b1", &format!("tag=b{tag}"));
                        receive(&mut control, now, BACKEND, &response);
                    }
                }
                Step::CarrierBye(call, tag) => {
                    let bye = carrier_bye(&format!("p{call}"), &format!("b{tag}"), "pbye");
                    receive(&mut control, now, CARRIER, &bye);
                }
                Step::BackendBye(call, tag) => {
                    let bye = backend_bye(
                        &format!("p{call}"),
                        "sip:+15551230000@192.0.2.10:5060",
                        "<sip:192.0.2.200:5060;lr>",
                    )
                    .replace("tag=b1", &format!("tag=b{tag}"));
                    receive(&mut control, now, BACKEND, &bye);
                }
                Step::Cancel(call) => {
                    let cancel = invite(&format!("p{call}"))
                        .replace("INVITE sip", "CANCEL sip")
                        .replace("1 INVITE", "1 CANCEL");
                    receive(&mut control, now, CARRIER, &cancel);
                }
                Step::Wait(seconds) => {
                    let until = now + Duration::from_secs(u64::from(seconds));
                    while now < until {
                        now = control.poll_timeout().min(until).max(now);
                        control.handle_timeout(now);
                    }
                }
            }
            sent(&mut control);
            proptest::prop_assert!(channels(&control) <= 2);
            proptest::prop_assert_eq!(channels(&control) as usize, control.active_calls());
        }
        let end = now + Duration::from_secs(11 * 60);
        while now < end {
            now = control.poll_timeout().min(end).max(now);
            control.handle_timeout(now);
            sent(&mut control);
        }
        proptest::prop_assert_eq!(channels(&control), 0);
        proptest::prop_assert_eq!(control.calls_remembered(), 0);
    }
}

#[test]
fn on_a_wildcard_listener_the_backend_gets_our_address_that_faces_it() {
    let t0 = epoch();
    let config = CONFIG.replace("udp:127.0.0.1:0", "udp:0.0.0.0:5060");
    let mut control = control(&config, t0);
    sent(&mut control);
    // The control path asks which of our addresses faces the backend; until the answer, calls
    // name the address the carrier reached.
    let backend_ip = addr(BACKEND).ip();
    assert_eq!(control.poll_probe(), Some(backend_ip));
    assert_eq!(control.poll_probe(), None);
    receive(&mut control, t0, CARRIER, &invite("w1"));
    let before = sent(&mut control)[1].2.clone();
    assert_eq!(
        header(&before, "Record-Route"),
        ["<sip:192.0.2.200:5060;lr>"]
    );

    control.handle_probe(backend_ip, Some("10.0.0.1".parse().unwrap()));
    receive(&mut control, t0, CARRIER, &invite("w2"));
    let forwarded = sent(&mut control)[1].2.clone();
    assert!(header(&forwarded, "Via")[0].starts_with("SIP/2.0/UDP 10.0.0.1:5060;branch="));
    assert_eq!(
        header(&forwarded, "Record-Route"),
        ["<sip:10.0.0.1:5060;lr>", "<sip:192.0.2.200:5060;lr>"],
        "the backend's side on top, the carrier's below (RFC 5658)"
    );
    receive(&mut control, t0, BACKEND, &answer(&forwarded, 200, "OK"));
    sent(&mut control);
    let routes = "<sip:10.0.0.1:5060;lr>, <sip:192.0.2.200:5060;lr>";
    let bye = backend_bye("w2", "sip:+15551230000@192.0.2.10:5060", routes);
    receive(&mut control, t0, BACKEND, &bye);
    let out = sent(&mut control);
    assert_eq!(out[0].0, addr(CARRIER));
    assert!(header(&out[0].2, "Route").is_empty(), "{}", out[0].2);
    assert!(header(&out[0].2, "Via")[0].starts_with("SIP/2.0/UDP 192.0.2.200:5060;branch="));
}

/// From and Contact are only looked for by the hot path: a malformed one is admitted, and
/// the call path answers 400, gives the channel back and counts it, without a call. A
/// well-formed INVITE is counted as a call when the call path takes it on.
#[test]
fn a_malformed_from_or_contact_gets_400_from_the_call_path_and_no_channel() {
    let t0 = epoch();
    let mut control = control(CONFIG, t0);
    sent(&mut control);
    let counters = core_counters(&control);
    let malformed = [
        invite("m1").replace("From: <sip:", "From: <<sip:"),
        invite("m2").replace("Contact: <sip:", "Contact: sip:<"),
        invite("m3").replace("Contact: <sip:", "Contact: \"unterminated <sip:"),
    ];
    for (index, message) in malformed.iter().enumerate() {
        assert_eq!(
            receive(&mut control, t0, CARRIER, message),
            None,
            "{message}"
        );
        let out = sent(&mut control);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].0, addr(CARRIER));
        assert_eq!(out[0].1, "SIP/2.0 400 Bad Request", "{message}");
        assert_eq!(channels(&control), 0, "{message}");
        let counted = counters.rejected_other.load(Ordering::Relaxed);
        assert_eq!(counted, index as u64 + 1);
    }
    assert_eq!(counters.calls.load(Ordering::Relaxed), 0);
    assert_eq!(receive(&mut control, t0, CARRIER, &invite("ok")), None);
    let out = sent(&mut control);
    assert_eq!(out[1].1, "INVITE sip:+15550100001@10.0.0.9:5080 SIP/2.0");
    assert_eq!(channels(&control), 1);
    assert_eq!(counters.calls.load(Ordering::Relaxed), 1);
    // Its retransmission is the same call, not a second one.
    assert_eq!(receive(&mut control, t0, CARRIER, &invite("ok")), None);
    assert_eq!(counters.calls.load(Ordering::Relaxed), 1);
}

fn core_counters(control: &Control) -> Arc<TrunkCounters> {
    Arc::clone(&control.inbound().snapshot().trunks[0].counters)
}

mod drain;
mod outbound;
mod pool;

/// A malformed response reaches the control path unscanned by the hot path: dropped there
/// and counted malformed, and the call it names goes on (the backend's good 180 after it
/// is relayed).
#[test]
fn a_malformed_response_is_dropped_and_counted_by_the_control_path() {
    let t0 = epoch();
    let mut control = control(CONFIG, t0);
    sent(&mut control);
    receive(&mut control, t0, CARRIER, &invite("m"));
    let forwarded = sent(&mut control)[1].2.clone();
    let ringing = answer(&forwarded, 180, "Ringing");
    let broken = ringing.replacen("\r\nCSeq:", "\r\nCSeq no colon", 1);
    receive(&mut control, t0, BACKEND, &broken);
    assert!(sent(&mut control).is_empty());
    let inbound = control.inbound();
    assert_eq!(inbound.counters.malformed.load(Ordering::Relaxed), 1);
    receive(&mut control, t0, BACKEND, &ringing);
    assert_eq!(sent(&mut control)[0].1, "SIP/2.0 180 Ringing");
}
