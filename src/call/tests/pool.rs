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

#[test]
fn a_backend_whose_health_checks_fail_is_tried_last_and_logged() {
    let t0 = epoch();
    let text = POOL
        .replace(
            "{ uri = \"sip:10.0.0.10:5080\", priority = 200 }",
            "{ uri = \"sip:10.0.0.10:5080\", priority = 0 }",
        )
        .replace(
            "invite_timeout = \"2s\"",
            "invite_timeout = \"2s\"\noptions_interval = \"1s\"\noptions_timeout = \"500ms\"\noptions_down_after = 1",
        );
    let mut control = control(&text, t0);
    // Both backends are looked up (IP addresses too): the answers say our address.
    let mut asked = Vec::new();
    while let Some(request) = control.poll_resolve() {
        if request.key.trunk().is_some() {
            continue;
        }
        let host = request.host.clone();
        let port = request.port.unwrap();
        asked.push(format!("{host}:{port}"));
        let resolved = crate::trunk::next_hop::Resolved {
            next_hop: addr(&format!("{host}:{port}")),
            alternatives: Vec::new(),
            local: addr(LOCAL),
            public: false,
            ttl: None,
        };
        control.handle_resolved(t0, &request.key, Ok(resolved));
    }
    asked.sort();
    assert_eq!(asked, ["10.0.0.10:5080", "10.0.0.9:5080"]);
    // Pings go out; the first backend answers, the preferred one never does.
    let mut now;
    let down = loop {
        now = control.poll_timeout();
        assert!(now < t0 + Duration::from_secs(5), "never down");
        control.handle_timeout(now);
        for (to, line, text) in sent(&mut control) {
            assert!(line.starts_with("OPTIONS sip:10.0.0."), "{line}");
            assert!(
                text.contains("Via: SIP/2.0/UDP 192.0.2.200:5060;branch="),
                "{text}"
            );
            if to == addr(BACKEND) {
                let ok = answer_in_dialog(&text, 200, "OK");
                control.handle_message(now, to, addr(LOCAL), None, ok.as_bytes(), None);
            }
        }
        let events = drain_events(&mut control);
        if let Some(line) = events.iter().find_map(|event| match event {
            Event::BackendUpdated { status, .. } => Some(status.to_string()),
            _ => None,
        }) && line.contains("state=down")
        {
            break line;
        }
    };
    assert!(
        down.starts_with("backend=sip:10.0.0.10:5080 address=10.0.0.10:5080 state=down"),
        "{down}"
    );
    // The next call goes to the backend that answers, despite its priority.
    receive(&mut control, now, CARRIER, &invite("p6"));
    let out = sent(&mut control);
    assert_eq!(out[1].0, addr(BACKEND), "{out:#?}");
    let statuses = control.backend_statuses();
    assert_eq!(statuses.len(), 2);
}
