//! `trunkd status` against the status file a real daemon writes.

// Real processes in real time: the virtual-clock rule is for the core.
#![allow(clippy::disallowed_methods)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::Trunkd;

fn status(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_trunkd"))
        .arg("status")
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn status_prints_the_running_daemons_table_and_json_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("trunkd.toml");
    std::fs::write(
        &config,
        r#"
[daemon]
listen = ["udp:127.0.0.1:0"]
status_interval = "1h"
status_file = "run/status.json"

[backend]
uri = "sip:127.0.0.1:5080"

[trunks.carrier-a]
domain = "192.0.2.10"
transport = "udp"
username = "user-a"
password = "pw-never-shown-4711"
allowed_inbound_ips = ["192.0.2.0/24"]
max_channels = 30
options_interval = 0

[trunks.carrier-b]
domain = "192.0.2.20"
transport = "udp"
direction = "outbound"
enabled = false
"#,
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("run")).unwrap();
    let config = config.to_str().unwrap().to_owned();
    let trunkd = Trunkd::start(std::path::Path::new(&config));
    let file = dir.path().join("run/status.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !file.exists() {
        assert!(Instant::now() < deadline, "no status file");
        std::thread::sleep(Duration::from_millis(50));
    }

    let (ok, table, stderr) = status(&["--config", &config]);
    assert!(ok, "{stderr}");
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("TRUNK "), "{table}");
    let a = lines.next().unwrap();
    assert!(
        a.starts_with("carrier-a  idle ") && a.contains(" 0/30 "),
        "{table}"
    );
    let b = lines.next().unwrap();
    assert!(b.starts_with("carrier-b  disabled  off "), "{table}");
    assert!(
        table.contains("2 trunks (1 enabled), 0 active calls"),
        "{table}"
    );

    let (ok, json, _) = status(&["--file", file.to_str().unwrap(), "--json"]);
    assert!(ok);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["trunks"][0]["id"], "carrier-a");
    assert_eq!(value["trunks"][0]["max_channels"], 30);
    assert_eq!(value["trunks"][1]["options"], "off");
    let raw = std::fs::read_to_string(&file).unwrap();
    assert!(!raw.contains("pw-never-shown-4711") && !json.contains("pw-never-shown"));

    drop(trunkd);
    let (ok, _, stderr) = status(&["--config", &config]);
    assert!(!ok, "a dead daemon's status is not success");
    assert!(stderr.contains("is not running"), "{stderr}");

    let (ok, _, stderr) = status(&["--file", dir.path().join("none.json").to_str().unwrap()]);
    assert!(!ok && stderr.contains("cannot read"), "{stderr}");
}
