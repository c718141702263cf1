//! A pool of backends on the virtual clock: an admitted call moves to the next backend
//! when one sends nothing within invite_timeout, fails with 408/5xx, or its connection
//! fails — while the carrier has heard nothing but our 100 Trying.

use super::*;

const POOL: &str = r#"
[daemon]
listen = ["udp:127.0.0.1:0", "tcp:127.0.0.1:5060"]
status_interval = "1h"
max_call_duration = "10m"

[backend]
uris = ["sip:10.0.0.9:5080", { uri = "sip:10.0.0.10:5080", priority = 200 }]
invite_timeout = "2s"

[trunks.carrier]
domain = "192.0.2.1"
allowed_inbound_ips = ["192.0.2.0/24"]
numbers = ["+15550100001"]
max_channels = 2
options_interval = 0
"#;

const SECOND_BACKEND: &str = "10.0.0.10:5080";

/// The carrier's call `call` taken on: the INVITE to the first backend.
fn admitted(control: &mut Control, now: Instant, call: &str) -> String {
    sent(control);
    receive(control, now, CARRIER, &invite(call));
    let out = sent(control);
    assert_eq!(out[0].1, "SIP/2.0 100 Trying");
    assert_eq!(out[1].0, addr(BACKEND), "{out:#?}");
    out[1].2.clone()
}

#[test]
fn a_silent_backend_is_left_for_the_next_after_invite_timeout() {
    let t0 = epoch();
    let mut control = control(POOL, t0);
    let first = admitted(&mut control, t0, "p1");
    // Retransmissions go to the first backend until invite_timeout, then the call moves.
    let mut now;
    let second = loop {
        now = control.poll_timeout();
        assert!(now <= t0 + Duration::from_secs(2), "moved late: {now:?}");
        control.handle_timeout(now);
        let out = sent(&mut control);
        assert!(out.iter().all(|(to, ..)| *to != addr(CARRIER)), "{out:#?}");
        if let Some((_, _, text)) = out.into_iter().find(|(to, ..)| *to == addr(SECOND_BACKEND)) {
            break text;
        }
    };
    assert_eq!(now, t0 + Duration::from_secs(2));
    assert!(second.starts_with("INVITE sip:+15550100001@10.0.0.10:5080 SIP/2.0\r\n"));
    assert_ne!(
        header(&second, "Via")[0],
        header(&first, "Via")[0],
        "a branch of its own"
    );
    // The second answers: the carrier gets its answer, the call holds one channel.
    receive(
        &mut control,
        now,
        SECOND_BACKEND,
        &answer(&second, 200, "OK"),
    );
    let out = sent(&mut control);
    assert_eq!(
        (out[0].0, out[0].1.as_str()),
        (addr(CARRIER), "SIP/2.0 200 OK")
    );
    assert_eq!(channels(&control), 1);
    // The next call goes to the second backend first: the first counts as down.
    let next = {
        receive(&mut control, now, CARRIER, &invite("p2"));
        sent(&mut control)[1].clone()
    };
    assert_eq!(next.0, addr(SECOND_BACKEND));
}

#[test]
fn a_503_or_408_moves_the_call_and_after_a_ringing_backend_nothing_does() {
    let t0 = epoch();
    let mut control = control(POOL, t0);
    let first = admitted(&mut control, t0, "p3");
    receive(
        &mut control,
        t0,
        BACKEND,
        &answer(&first, 503, "Service Unavailable"),
    );
    let out = sent(&mut control);
    let lines: Vec<_> = out
        .iter()
        .map(|(to, line, _)| (*to, line.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (addr(BACKEND), "ACK sip:+15550100001@10.0.0.9:5080 SIP/2.0"),
            (
                addr(SECOND_BACKEND),
                "INVITE sip:+15550100001@10.0.0.10:5080 SIP/2.0"
            ),
        ]
    );
    // The second rings, then fails: the carrier has heard it ring, so it gets the 500.
    let second = out[1].2.clone();
    receive(
        &mut control,
        t0,
        SECOND_BACKEND,
        &answer(&second, 180, "Ringing"),
    );
    receive(
        &mut control,
        t0,
        SECOND_BACKEND,
        &answer(&second, 500, "Server Internal Error"),
    );
    let out = sent(&mut control);
    let to_carrier: Vec<_> = out
        .iter()
        .filter(|(to, ..)| *to == addr(CARRIER))
        .map(|(_, line, _)| line.as_str())
        .collect();
    assert_eq!(
        to_carrier,
        ["SIP/2.0 180 Ringing", "SIP/2.0 500 Server Internal Error"]
    );
    assert_eq!(channels(&control), 0);
}

#[test]
fn a_busy_backend_is_not_a_failure_of_the_pool() {
    let t0 = epoch();
    let mut control = control(POOL, t0);
    let first = admitted(&mut control, t0, "p4");
    receive(&mut control, t0, BACKEND, &answer(&first, 486, "Busy Here"));
    let out = sent(&mut control);
    assert!(
        out.iter().all(|(to, ..)| *to != addr(SECOND_BACKEND)),
        "{out:#?}"
    );
    assert!(
        out.iter()
            .any(|(to, line, _)| *to == addr(CARRIER) && line == "SIP/2.0 486 Busy Here")
    );
}

#[test]
fn a_backend_over_tcp_gets_its_own_record_route_and_a_failed_connection_moves_the_call() {
    let t0 = epoch();
    let text = POOL.replace("sip:10.0.0.9:5080\"", "sip:10.0.0.9:5080;transport=tcp\"");
    let mut control = control(&text, t0);
    sent(&mut control);
    receive(&mut control, t0, CARRIER, &invite("p5"));
    let out = transmits(&mut control);
    let forwarded = String::from_utf8(out[1].bytes.clone()).unwrap();
    assert_eq!(
        (out[1].destination, out[1].transport),
        (addr(BACKEND), Transport::Tcp)
    );
    assert!(
        forwarded.contains("\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch="),
        "{forwarded}"
    );
    assert_eq!(
        header(&forwarded, "Record-Route"),
        [
            "<sip:127.0.0.1:5060;transport=tcp;lr>",
            "<sip:192.0.2.200:5060;lr>"
        ]
    );
    control.handle_transport_error(t0, addr(BACKEND), Transport::Tcp, "connection refused");
    let out = sent(&mut control);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].0, addr(SECOND_BACKEND));
}
