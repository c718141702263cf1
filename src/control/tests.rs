//! The control path on a virtual clock: reloads, registrations, keepalives, reports.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::config::{LoadOptions, load_str};
use crate::testing::registrar_ok;

const BASE: &str = r#"
[daemon]
listen = ["udp:127.0.0.1:0"]
status_interval = "10s"

[backend]
uri = "sip:127.0.0.1:5080"

[trunks.alpha]
domain = "alpha.example"
allowed_inbound_ips = ["192.0.2.1"]

[trunks.beta]
domain = "beta.example"
allowed_inbound_ips = ["192.0.2.2"]
enabled = false
"#;

fn config(text: &str) -> Config {
    load_str(Path::new("test.toml"), text, &LoadOptions::default())
        .unwrap_or_else(|errors| panic!("{errors}"))
}

fn drain(control: &mut Control) -> Vec<Event> {
    std::iter::from_fn(|| control.poll_event()).collect()
}

/// The virtual clock's epoch; only tests create Instants from nothing.
#[allow(clippy::disallowed_methods)]
fn epoch() -> Instant {
    Instant::now()
}

#[test]
fn reports_at_start_and_every_interval_but_once_after_a_stall() {
    let t0 = epoch();
    let every_trunk = BASE.replace("status_interval", "status_log = \"all\"\nstatus_interval");
    let mut control = Control::new(config(&every_trunk), t0);
    let events = drain(&mut control);
    assert_eq!(events.len(), 1);
    let Event::Report { trunks, summary } = &events[0] else {
        panic!("{events:?}")
    };
    let states: Vec<_> = trunks.iter().map(|s| (s.id.as_str(), s.state)).collect();
    assert_eq!(
        states,
        [("alpha", TrunkState::Idle), ("beta", TrunkState::Disabled)]
    );
    assert_eq!(
        (summary.trunks, summary.enabled, summary.generation),
        (2, 1, 1)
    );

    assert_eq!(control.poll_timeout(), t0 + Duration::from_secs(10));
    control.handle_timeout(t0 + Duration::from_secs(9));
    assert!(
        drain(&mut control).is_empty(),
        "nothing before the deadline"
    );
    control.handle_timeout(t0 + Duration::from_secs(10));
    assert_eq!(drain(&mut control).len(), 1);
    assert_eq!(control.poll_timeout(), t0 + Duration::from_secs(20));

    // The process was stopped for 100 s: one report, then the schedule moves on.
    let late = t0 + Duration::from_secs(120);
    control.handle_timeout(late);
    assert_eq!(drain(&mut control).len(), 1);
    assert!(control.poll_timeout() > late);
    control.handle_timeout(late);
    assert!(drain(&mut control).is_empty());
}

/// A trunk that registers with 192.0.2.1 over UDP, no OPTIONS.
fn registering(extra: &str) -> String {
    format!(
        "[daemon]\nlisten = [\"udp:127.0.0.1:0\"]\n[trunks.alpha]\n\
         domain = \"192.0.2.1\"\nport = 5060\ntransport = \"udp\"\ndirection = \"outbound\"\n\
         username = \"u\"\npassword = \"p\"\nregister = true\n\
         options_interval = 0\n{extra}\n"
    )
}

const REGISTRAR: &str = "192.0.2.1:5060";
const LOCAL: &str = "192.0.2.200:5060";

/// Resolves the trunk's next hop and runs the start-up spread: the REGISTER's text.
fn first_register(control: &mut Control, t0: Instant) -> (Instant, String) {
    let request = control.poll_resolve().expect("a lookup");
    let resolved = Resolved {
        next_hop: REGISTRAR.parse().unwrap(),
        alternatives: Vec::new(),
        local: LOCAL.parse().unwrap(),
        public: false,
        ttl: None,
    };
    control.handle_resolved(t0, &request.key, Ok(resolved));
    let t1 = t0 + crate::trunk::registrations::START_SPREAD;
    control.handle_timeout(t1);
    (t1, sent_register(control))
}

/// The one REGISTER the control path has to send.
fn sent_register(control: &mut Control) -> String {
    let transmit = control.poll_transmit().expect("a REGISTER");
    assert_eq!(transmit.destination, REGISTRAR.parse().unwrap());
    assert!(control.poll_transmit().is_none());
    String::from_utf8(transmit.bytes).unwrap()
}

fn from_registrar(control: &mut Control, now: Instant, message: &str) {
    let (registrar, local) = (REGISTRAR.parse().unwrap(), LOCAL.parse().unwrap());
    control.handle_message(now, registrar, local, None, message.as_bytes(), None);
}

/// A control path whose trunk registered and has been idle since; the instant it is.
fn registered() -> (Control, Instant) {
    let t0 = epoch();
    let mut control = Control::new(config(&registering("")), t0);
    let (t1, register) = first_register(&mut control, t0);
    from_registrar(&mut control, t1, &registrar_ok(&register, 600));
    // Past the REGISTER transaction's last timer (RFC 3261 §17.1.2.2: Timer K).
    let idle = t1 + Duration::from_secs(60);
    while control.poll_timeout() <= idle {
        control.handle_timeout(control.poll_timeout());
    }
    assert!(control.poll_transmit().is_none(), "no refresh yet");
    drain(&mut control);
    (control, idle)
}

/// "verified" sticks to a trunk until the fields that decide where it goes change.
#[test]
fn verified_survives_reloads_until_the_next_hop_changes() {
    let t0 = epoch();
    let mut control = Control::new(config(&registering("")), t0);
    let verified = |control: &Control| control.statuses(t0).1[0].verified;
    let (t1, register) = first_register(&mut control, t0);
    assert!(!verified(&control));
    from_registrar(&mut control, t1, &registrar_ok(&register, 600));
    assert!(verified(&control), "a REGISTER accepted verifies the trunk");

    control.handle_reload(t1, Ok(config(&registering("max_channels = 5"))));
    assert!(verified(&control), "max_channels does not move the trunk");
    control.handle_reload(
        t1,
        Ok(config(&registering(
            "max_channels = 5\noptions_from = \"sip:x@example.net\"",
        ))),
    );
    assert!(
        !verified(&control),
        "options_from decides what OPTIONS verify"
    );
}

fn shutdown_notices(control: &mut Control) -> Vec<String> {
    drain(control)
        .into_iter()
        .filter_map(|event| match event {
            Event::Shutdown(notice) => Some(notice.to_string()),
            _ => None,
        })
        .collect()
}

/// A stop sends the un-REGISTER at once and is over the instant its answer arrives.
#[test]
fn shutdown_unregisters_and_stops_when_answered() {
    let (mut control, stop) = registered();
    assert!(!control.is_draining());
    control.shutdown(stop);
    assert!(control.is_draining() && !control.is_stopped());
    let unregister = sent_register(&mut control);
    assert!(unregister.contains("Expires: 0\r\n"), "{unregister}");

    let answered = stop + Duration::from_millis(700);
    control.handle_timeout(answered - Duration::from_millis(1));
    assert!(!control.is_stopped());
    assert!(
        sent_register(&mut control).contains("Expires: 0\r\n"),
        "RFC 3261 §17.1.2.2: retransmitted at Timer E"
    );
    from_registrar(&mut control, answered, &registrar_ok(&unregister, 0));
    assert!(control.is_stopped());
    assert!(shutdown_notices(&mut control).is_empty());
    // Asking again (a second SIGTERM is the shell's business) changes nothing.
    control.shutdown(answered);
    assert!(control.poll_transmit().is_none());
}

/// The un-REGISTER goes unanswered (retransmitted meanwhile): the stop comes at the
/// deadline with a warning, and an answer after it changes nothing.
#[test]
fn shutdown_gives_up_on_an_unanswered_unregistration_at_the_deadline() {
    let (mut control, stop) = registered();
    control.shutdown(stop);
    let unregister = sent_register(&mut control);
    let deadline = stop + shutdown::UNREGISTER_DEADLINE;
    let mut now = stop;
    let mut retransmissions = 0;
    while !control.is_stopped() {
        now = control.poll_timeout();
        assert!(now <= deadline);
        control.handle_timeout(now);
        retransmissions += std::iter::from_fn(|| control.poll_transmit()).count();
    }
    assert_eq!(now, deadline);
    assert!(retransmissions > 0, "RFC 3261 §17.1.2.2: Timer E");
    assert_eq!(
        shutdown_notices(&mut control),
        ["shutdown deadline reached with unregistrations unanswered"]
    );
    from_registrar(&mut control, deadline, &registrar_ok(&unregister, 0));
    assert!(control.is_stopped() && shutdown_notices(&mut control).is_empty());
}

/// Nothing registered, no calls: stopped the instant it is asked.
#[test]
fn shutdown_with_nothing_to_wait_for_is_immediate() {
    let t0 = epoch();
    let mut control = Control::new(config(BASE), t0);
    control.shutdown(t0);
    assert!(control.is_stopped());
    assert!(control.poll_transmit().is_none());
}

#[test]
fn reload_touches_only_what_changed() {
    let t0 = epoch();
    let mut control = Control::new(config(BASE), t0);
    drain(&mut control);
    let alpha_runtime = Arc::clone(&control.trunk("alpha").unwrap().runtime);
    let alpha_config = Arc::clone(&control.trunk("alpha").unwrap().config);
    let beta_runtime = Arc::clone(&control.trunk("beta").unwrap().runtime);

    let edited = BASE
        .replace("enabled = false", "enabled = true\nmax_channels = 5")
        .replace("status_interval = \"10s\"", "status_interval = \"30s\"")
        + "\n[trunks.gamma]\ndomain = \"gamma.example\"\ndirection = \"outbound\"\n";
    let t1 = t0 + Duration::from_secs(3);
    control.handle_reload(t1, Ok(config(&edited)));

    let alpha = control.trunk("alpha").unwrap();
    assert!(
        Arc::ptr_eq(&alpha.runtime, &alpha_runtime),
        "unchanged trunk untouched"
    );
    assert!(
        Arc::ptr_eq(&alpha.config, &alpha_config),
        "unchanged trunk keeps its config"
    );
    let beta = control.trunk("beta").unwrap();
    assert!(!Arc::ptr_eq(&beta.runtime, &beta_runtime));
    assert_eq!(beta.state(), TrunkState::Idle);
    assert_eq!(beta.runtime.since, t1);
    assert_eq!(control.generation(), 2);
    assert_eq!(
        control.poll_timeout(),
        t1 + Duration::from_secs(30),
        "rescheduled"
    );

    let events = drain(&mut control);
    let kinds: Vec<String> = events
        .iter()
        .map(|event| match event {
            Event::TrunkUpdated { status, reason } => format!("{} {reason:?}", status.id),
            Event::TrunkRemoved { id } => format!("{id} removed"),
            Event::Reloaded {
                generation, diff, ..
            } => format!("reloaded {generation} {diff}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "gamma Added",
            "beta Changed([Enabled, MaxChannels])",
            "reloaded 2 added=1 removed=0 changed=1 unchanged=1 added_trunks=gamma \
             changed_trunks=beta(enabled,max_channels) daemon_changed=status_interval",
        ]
    );

    // Removing a trunk.
    control.handle_reload(t1, Ok(config(BASE)));
    let events = drain(&mut control);
    assert!(events.contains(&Event::TrunkRemoved { id: "gamma".into() }));
    assert!(control.trunk("gamma").is_none());
    let alpha = control.trunk("alpha").unwrap();
    assert!(
        Arc::ptr_eq(&alpha.runtime, &alpha_runtime),
        "still untouched"
    );
}

#[test]
fn rejected_reload_keeps_the_running_generation() {
    let t0 = epoch();
    let mut control = Control::new(config(BASE), t0);
    drain(&mut control);
    let before = Arc::clone(control.config());
    let errors = load_str(
        Path::new("test.toml"),
        &BASE.replace("192.0.2.1", "192.0.2.300"),
        &LoadOptions::default(),
    )
    .map(|_| ())
    .unwrap_err();
    control.handle_reload(t0, Err(errors.clone()));
    assert!(Arc::ptr_eq(&before, control.config()));
    assert_eq!(control.generation(), 1);
    assert_eq!(
        drain(&mut control),
        [Event::ReloadRejected {
            errors,
            generation: 1
        }]
    );
}

#[test]
fn a_reload_without_changes_keeps_every_slot() {
    let t0 = epoch();
    let mut control = Control::new(config(BASE), t0);
    drain(&mut control);
    let runtimes: Vec<_> = ["alpha", "beta"]
        .map(|id| Arc::clone(&control.trunk(id).unwrap().runtime))
        .into();
    control.handle_reload(t0, Ok(config(BASE)));
    for (id, runtime) in ["alpha", "beta"].iter().zip(&runtimes) {
        assert!(Arc::ptr_eq(&control.trunk(id).unwrap().runtime, runtime));
    }
    let events = drain(&mut control);
    let [Event::Reloaded { diff, .. }] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert!(diff.is_empty());
    assert_eq!(diff.unchanged, ["alpha", "beta"]);
}

/// The ids of the trunk lines of each report among `events`.
fn reported(events: &[Event]) -> Vec<Vec<String>> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Report { trunks, .. } => {
                Some(trunks.iter().map(|status| status.id.clone()).collect())
            }
            _ => None,
        })
        .collect()
}

/// Runs the control path up to `until`, as the shell does; the reports on the way.
fn reports_until(control: &mut Control, until: Instant) -> Vec<Vec<String>> {
    let mut reports = Vec::new();
    while control.poll_timeout() <= until {
        control.handle_timeout(control.poll_timeout());
        reports.extend(reported(&drain(control)));
    }
    reports
}

#[test]
fn status_log_changes_logs_only_trunks_in_trouble_or_changed_besides_the_summary() {
    let t0 = epoch();
    let s = Duration::from_secs;
    let mut control = Control::new(config(BASE), t0);
    assert_eq!(
        control.config().daemon.status_log,
        StatusLog::Changes,
        "the default"
    );
    let start = drain(&mut control);
    assert!(
        matches!(&start[..], [Event::Report { trunks, summary }]
            if trunks.is_empty() && summary.trunks == 2),
        "at start the summary alone: idle and disabled trunks are not in trouble: {start:?}"
    );
    assert_eq!(
        reports_until(&mut control, t0 + s(10)),
        [Vec::<&str>::new()]
    );

    // A call on alpha changes its line: logged in the next report, not in the one after.
    let alpha = Arc::clone(&control.trunk("alpha").unwrap().counters);
    alpha.calls.fetch_add(1, Ordering::Relaxed);
    assert_eq!(
        reports_until(&mut control, t0 + s(30)),
        [vec!["alpha"], vec![]]
    );

    // A reload's event line counts as shown: beta is not repeated in the next report.
    let enabled = BASE.replace("enabled = false", "enabled = true");
    control.handle_reload(t0 + s(31), Ok(config(&enabled)));
    assert_eq!(
        drain(&mut control).len(),
        2,
        "beta's event=changed and the summary"
    );
    assert_eq!(
        reports_until(&mut control, t0 + s(40)),
        [Vec::<&str>::new()]
    );

    // "all" applies from the next report on.
    let all = enabled.replace("status_interval", "status_log = \"all\"\nstatus_interval");
    control.handle_reload(t0 + s(41), Ok(config(&all)));
    let events = drain(&mut control);
    assert!(
        matches!(events.last(), Some(Event::Reloaded { diff, .. })
            if diff.daemon_changed == ["status_log"]),
        "{events:?}"
    );
    assert_eq!(
        reports_until(&mut control, t0 + s(50)),
        [vec!["alpha", "beta"]]
    );
}

#[test]
fn status_log_changes_repeats_a_trunk_in_trouble_but_not_a_registered_one() {
    // Registered: expires_in counts down in every line, which is no change.
    let (mut control, idle) = registered();
    let reports = reports_until(&mut control, idle + Duration::from_secs(240));
    assert!(
        !reports.is_empty() && reports.iter().all(Vec::is_empty),
        "{reports:?}"
    );

    // Rejected (403): its event line at once, then its line in every report.
    let t0 = epoch();
    let mut control = Control::new(config(&registering("")), t0);
    let (t1, register) = first_register(&mut control, t0);
    let forbidden = registrar_ok(&register, 600).replace("200 OK", "403 Forbidden");
    from_registrar(&mut control, t1, &forbidden);
    let events = drain(&mut control);
    assert!(
        events.iter().any(|event| matches!(event,
            Event::TrunkUpdated { status, reason: ChangeReason::Registration(_) }
                if status.state == TrunkState::Registration(registration::State::Rejected))),
        "{events:?}"
    );
    let reports = reports_until(&mut control, t0 + Duration::from_secs(180));
    assert_eq!(reports, [["alpha"], ["alpha"], ["alpha"]]);
}

/// journald drops a service's messages above 10,000 per 30 s (its default
/// RateLimitIntervalSec/RateLimitBurst). 100,000 healthy trunks, a report every 10 s:
/// "all" would write 300,003 lines per 30 s; "changes" writes the summaries.
#[test]
fn status_log_changes_keeps_100000_healthy_trunks_under_journalds_rate_limit() {
    const TRUNKS: u32 = 100_000;
    const LIMIT: usize = 10_000;
    let window = Duration::from_secs(30);
    // One trunk as loaded, copied 100,000 times (parsing that much TOML takes a debug
    // build 13 s): outbound-only, no REGISTER, no OPTIONS, on 127.0.0.x.
    let mut config = config(
        "[daemon]\nlisten = [\"udp:127.0.0.1:0\"]\nstatus_interval = \"10s\"\n\
         [trunks.t]\ndomain = \"127.0.0.1\"\ndirection = \"outbound\"\n\
         register = false\noptions_interval = 0\n",
    );
    let template = config.trunks.remove("t").unwrap();
    for index in 0..TRUNKS {
        let mut trunk = (*template).clone();
        trunk.id = format!("t{index}");
        let host = u8::try_from(index % 250 + 1).unwrap();
        trunk.domain = crate::sip::Host::Ipv4(std::net::Ipv4Addr::new(127, 0, 0, host));
        config.trunks.insert(trunk.id.clone(), Arc::new(trunk));
    }
    let t0 = epoch();
    let mut control = Control::new(config, t0);
    // The shell answers the lookups of the trunks' next hops, addresses as they are.
    while let Some(request) = control.poll_resolve() {
        let address = SocketAddr::new(request.host.parse().unwrap(), 5060);
        let resolved = Resolved {
            next_hop: address,
            alternatives: Vec::new(),
            local: "127.0.0.1:5060".parse().unwrap(),
            public: false,
            ttl: None,
        };
        control.handle_resolved(t0, &request.key, Ok(resolved));
    }
    // (instant, lines) of every event: the lines drain_events writes for it.
    fn log(control: &mut Control, now: Instant, lines: &mut Vec<(Instant, usize)>) {
        for event in drain(control) {
            let count = match &event {
                Event::Report { trunks, .. } => trunks.len() + 1,
                Event::Reloaded { .. } => 2,
                Event::ReloadRejected { errors, .. } => errors.0.len() + 1,
                _ => 1,
            };
            lines.push((now, count));
        }
    }
    let mut lines = Vec::new();
    log(&mut control, t0, &mut lines);
    assert_eq!(lines, [(t0, 1)], "at start the summary alone");
    // Six reports (each of 100,000 statuses takes a debug build 0.8 s).
    let end = t0 + Duration::from_secs(60);
    while control.poll_timeout() <= end {
        let now = control.poll_timeout();
        control.handle_timeout(now);
        log(&mut control, now, &mut lines);
    }
    assert_eq!(lines.len(), 7, "a report at start and every 10 s");
    let busiest = lines
        .iter()
        .map(|(from, _)| {
            lines
                .iter()
                .filter(|(at, _)| at >= from && *at < *from + window)
                .map(|line| line.1)
                .sum::<usize>()
        })
        .max()
        .unwrap();
    assert_eq!(busiest, 3, "three summaries in any 30 s: far under {LIMIT}");
}

/// The metrics are read from the current state: a registration's state set, the hot
/// path's counters, and nothing of a trunk a reload removed.
#[test]
fn metrics_render_the_current_state_and_forget_removed_trunks() {
    use super::metrics::LastReload;
    let (mut control, now) = registered();
    let beta =
        "[trunks.beta]\ndomain = \"192.0.2.9\"\ndirection = \"outbound\"\nmax_channels = 7\n";
    control.handle_reload(now, Ok(config(&registering(beta))));
    let alpha = &control.trunk("alpha").unwrap().counters;
    alpha.calls_out.fetch_add(3, Ordering::Relaxed);
    alpha.rejected_out.fetch_add(2, Ordering::Relaxed);
    alpha.failovers.fetch_add(1, Ordering::Relaxed);
    let last_reload = LastReload {
        success: true,
        timestamp_seconds: 1_765_000_000.5,
    };
    let text = control.metrics(now, last_reload);
    let lines: Vec<&str> = text.lines().collect();
    // alpha's REGISTER was answered once: one round trip.
    assert!(
        lines.contains(&"trunkd_trunk_register_round_trip_seconds_count{trunk=\"alpha\"} 1"),
        "{text}"
    );
    for expected in [
        "# TYPE trunkd_build_info gauge",
        concat!(
            "trunkd_build_info{version=\"",
            env!("CARGO_PKG_VERSION"),
            "\"} 1"
        ),
        "trunkd_config_generation 2",
        "trunkd_config_last_reload_success 1",
        "trunkd_config_last_reload_timestamp_seconds 1765000000.5",
        "# TYPE trunkd_unknown_source_total counter",
        "trunkd_unknown_source_total 0",
        "trunkd_active_calls{direction=\"inbound\"} 0",
        "trunkd_active_calls{direction=\"outbound\"} 0",
        "trunkd_trunk_registration_state{trunk=\"alpha\",state=\"registered\"} 1",
        "trunkd_trunk_registration_state{trunk=\"alpha\",state=\"backoff\"} 0",
        "trunkd_trunk_max_channels{trunk=\"alpha\"} 0",
        "trunkd_trunk_max_channels{trunk=\"beta\"} 7",
        "trunkd_trunk_channels{trunk=\"beta\"} 0",
        "trunkd_trunk_calls_total{trunk=\"alpha\",direction=\"outbound\"} 3",
        "trunkd_trunk_rejected_total{trunk=\"alpha\",reason=\"outbound_skipped\"} 2",
        "trunkd_trunk_failovers_total{trunk=\"alpha\"} 1",
    ] {
        assert!(lines.contains(&expected), "{expected:?} not in\n{text}");
    }
    let states = lines
        .iter()
        .filter(|line| line.starts_with("trunkd_trunk_registration_state{"))
        .count();
    assert_eq!(states, 6, "one state set, for the one registering trunk");
    assert!(!text.contains("trunkd_trunk_options_up"), "no trunk pings");
    assert!(!text.contains("trunkd_backend_up"), "no backend is checked");
    // Each family's samples follow its HELP and TYPE, once.
    let types = lines
        .iter()
        .filter(|line| line.starts_with("# TYPE"))
        .count();
    let helps = lines
        .iter()
        .filter(|line| line.starts_with("# HELP"))
        .count();
    assert_eq!(types, helps);

    control.handle_reload(
        now,
        Ok(config(&format!(
            "[daemon]\nlisten = [\"udp:127.0.0.1:0\"]\n{beta}"
        ))),
    );
    let text = control.metrics(now, last_reload);
    assert!(!text.contains("trunk=\"alpha\""), "{text}");
    assert!(!text.contains("trunkd_trunk_registration_state"), "{text}");
    assert!(text.contains("trunkd_trunk_max_channels{trunk=\"beta\"} 7\n"));
    assert!(text.contains("trunkd_config_generation 3\n"));
}

/// A 200 to an OPTIONS: its Via, From, To (tagged), Call-ID and CSeq back.
fn options_ok(options: &str) -> String {
    let header = |name: &str| {
        options
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {options}"))
            .trim()
    };
    format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=o\r\nCall-ID: {}\r\nCSeq: {}\r\n\
         Content-Length: 0\r\n\r\n",
        header("Via:"),
        header("From:"),
        header("To:"),
        header("Call-ID:"),
        header("CSeq:"),
    )
}

/// An answered ping shows as up, as the last RTT and in the round-trip histogram.
#[test]
fn metrics_show_an_answered_ping() {
    use super::metrics::LastReload;
    let text = "[daemon]\nlisten = [\"udp:127.0.0.1:0\"]\n[trunks.alpha]\n\
                domain = \"192.0.2.1\"\nport = 5060\ndirection = \"outbound\"\n\
                options_interval = \"30s\"\n";
    let t0 = epoch();
    let mut control = Control::new(config(text), t0);
    let request = control.poll_resolve().expect("a lookup");
    let resolved = Resolved {
        next_hop: REGISTRAR.parse().unwrap(),
        alternatives: Vec::new(),
        local: LOCAL.parse().unwrap(),
        public: false,
        ttl: None,
    };
    control.handle_resolved(t0, &request.key, Ok(resolved));
    let (now, options) = loop {
        let now = control.poll_timeout();
        control.handle_timeout(now);
        if let Some(transmit) = control.poll_transmit() {
            break (now, String::from_utf8(transmit.bytes).unwrap());
        }
    };
    assert!(options.starts_with("OPTIONS "), "{options}");
    from_registrar(
        &mut control,
        now + Duration::from_millis(30),
        &options_ok(&options),
    );
    let last_reload = LastReload {
        success: true,
        timestamp_seconds: 0.0,
    };
    let text = control.metrics(now + Duration::from_millis(30), last_reload);
    let name = "trunkd_trunk_options_round_trip_seconds";
    for expected in [
        "trunkd_trunk_options_rtt_seconds{trunk=\"alpha\"} 0.03".to_owned(),
        format!("# TYPE {name} histogram"),
        format!("{name}_bucket{{trunk=\"alpha\",le=\"0.025\"}} 0"),
        format!("{name}_bucket{{trunk=\"alpha\",le=\"0.05\"}} 1"),
        format!("{name}_bucket{{trunk=\"alpha\",le=\"+Inf\"}} 1"),
        format!("{name}_sum{{trunk=\"alpha\"}} 0.03"),
        format!("{name}_count{{trunk=\"alpha\"}} 1"),
    ] {
        assert!(
            text.lines().any(|line| line == expected),
            "{expected:?} not in\n{text}"
        );
    }
    // A pinging trunk has its up/down series (its value is the keepalive's to decide).
    assert!(
        text.contains("trunkd_trunk_options_up{trunk=\"alpha\"} "),
        "{text}"
    );
}

/// With `[cluster]` a registering trunk waits for its registrant lease: nothing to
/// resolve or send until Redis says this host holds it; the status line and the metrics
/// say where the cluster stands.
#[test]
fn a_cluster_host_registers_only_the_trunks_it_holds() {
    use super::metrics::LastReload;
    use crate::cluster::{Reply, Request};
    let now = epoch();
    let text = "[cluster]\nredis = \"redis://127.0.0.1:6379\"\nnode = \"edge-1\"\n\n\
         [trunks.alpha]\ndomain = \"alpha.example\"\ndirection = \"outbound\"\n\
         username = \"u\"\npassword = \"p\"\nregister = true\nmax_channels = 4\n";
    let mut control = Control::new(config(text), now);
    assert_eq!(control.poll_resolve(), None, "held back until it is ours");
    let line = control.statuses(now).1[0].to_string();
    assert!(line.ends_with(" cluster=degraded registrant=-"), "{line}");
    let last_reload = LastReload {
        success: true,
        timestamp_seconds: 1.0,
    };
    let metrics = control.metrics(now, last_reload);
    assert!(metrics.contains("\ntrunkd_cluster_up 0\n"), "{metrics}");

    control.handle_cluster(now, Reply::Connected);
    control.handle_timeout(now);
    assert_eq!(control.poll_cluster(), Some(Request::Heartbeat));
    let beat = Reply::Heartbeat {
        epoch: 3,
        rejoined: true,
        boot: "b".into(),
        alive: vec!["edge-1".into()],
        totals: vec![("alpha".into(), 2)],
        vacant: Vec::new(),
    };
    control.handle_cluster(now, beat);
    let acquire = Request::Acquire {
        trunk: "alpha".into(),
        epoch: 3,
    };
    assert_eq!(control.poll_cluster(), Some(acquire));
    assert_eq!(control.poll_resolve(), None);
    let ours = Reply::Acquired {
        trunk: "alpha".into(),
        holder: "edge-1".into(),
    };
    control.handle_cluster(now, ours);
    assert!(control.poll_resolve().is_some(), "registers now");
    let line = control.statuses(now).1[0].to_string();
    assert!(
        line.ends_with(" cluster=ok registrant=edge-1 cluster_channels=2"),
        "{line}"
    );
    let metrics = control.metrics(now, last_reload);
    for expected in [
        "\ntrunkd_cluster_up 1\n",
        "\ntrunkd_trunk_cluster_channels{trunk=\"alpha\"} 2\n",
        "\ntrunkd_trunk_registrant{trunk=\"alpha\"} 1\n",
        "\ntrunkd_cluster_claim_seconds_bucket{node=\"edge-1\",le=\"0.0001\"} 0\n",
        "\ntrunkd_cluster_claim_seconds_count{node=\"edge-1\"} 0\n",
    ] {
        assert!(metrics.contains(expected), "{expected}\n{metrics}");
    }
}
