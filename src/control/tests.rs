//! The control path on a virtual clock: reloads, registrations, keepalives, reports.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::config::{LoadOptions, load_str};

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
    let mut control = Control::new(config(BASE), t0);
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

/// "verified" sticks to a trunk until the fields that decide where it goes change.
#[test]
fn verified_survives_reloads_until_the_next_hop_changes() {
    let text = |extra: &str| {
        format!(
            "[daemon]\nlisten = [\"udp:127.0.0.1:0\"]\n[trunks.alpha]\n\
             domain = \"192.0.2.1\"\nport = 5060\ndirection = \"outbound\"\n\
             username = \"u\"\npassword = \"p\"\nregister = true\n\
             options_interval = 0\n{extra}\n"
        )
    };
    let t0 = epoch();
    let mut control = Control::new(config(&text("")), t0);
    let verified = |control: &Control| control.statuses(t0).1[0].verified;
    let request = control.poll_resolve().expect("a lookup");
    let registrar: SocketAddr = "192.0.2.1:5060".parse().unwrap();
    let resolved = Resolved {
        next_hop: registrar,
        alternatives: Vec::new(),
        local: "192.0.2.200:5060".parse().unwrap(),
        public: false,
        ttl: None,
    };
    control.handle_resolved(t0, &request.key, Ok(resolved));
    let t1 = t0 + crate::trunk::registrations::START_SPREAD;
    control.handle_timeout(t1);
    let register = String::from_utf8(control.poll_transmit().expect("REGISTER").bytes).unwrap();
    assert!(!verified(&control));
    let header = |name: &str| {
        register
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .unwrap()
            .to_owned()
    };
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia:{}\r\nFrom:{}\r\nTo:{};tag=r\r\nCall-ID:{}\r\n\
         CSeq:{}\r\nContact: <sip:u@192.0.2.200:5060;transport=udp>;expires=600\r\n\
         Content-Length: 0\r\n\r\n",
        header("Via:"),
        header("From:"),
        header("To:"),
        header("Call-ID:"),
        header("CSeq:"),
    );
    let local = "192.0.2.200:5060".parse().unwrap();
    control.handle_message(t1, registrar, local, None, ok.as_bytes(), None);
    assert!(verified(&control), "a REGISTER accepted verifies the trunk");

    control.handle_reload(t1, Ok(config(&text("max_channels = 5"))));
    assert!(verified(&control), "max_channels does not move the trunk");
    control.handle_reload(
        t1,
        Ok(config(&text(
            "max_channels = 5\noptions_from = \"sip:x@example.net\"",
        ))),
    );
    assert!(
        !verified(&control),
        "options_from decides what OPTIONS verify"
    );
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
