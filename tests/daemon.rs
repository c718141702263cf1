//! The real `trunkd` binary, run on loopback with configs in a temp dir: start-up, reload
//! on edit / rename-over-save / SIGHUP, invalid edits, sd_notify, and secrets in the log.

// These tests watch a real process in real time; the virtual-clock rule is for the core.
#![allow(clippy::disallowed_methods)]

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Trunkd, WAIT};

/// Passwords used in these configs; none may ever appear in the daemon's output.
const SECRETS: [&str; 3] = ["inline-pa55word-x", "file-pa55word-y", "rotated-pa55word-z"];

/// Stops trunkd and checks its whole log for the configured passwords.
fn stop(daemon: Trunkd) -> Vec<String> {
    let log = daemon.stop();
    for line in &log {
        for secret in SECRETS {
            assert!(!line.contains(secret), "secret in log line: {line}");
        }
    }
    log
}

/// A config tree: main file with two listeners on port 0, one trunk per included file.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("trunks.d")).unwrap();
        std::fs::write(
            dir.path().join("alpha.password"),
            format!("{}\n", SECRETS[1]),
        )
        .unwrap();
        let tree = Tree { dir };
        tree.write(
            "trunkd.toml",
            r#"
[daemon]
listen = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]
status_interval = "1h"
# Every trunk line in the start-up report, which these tests read.
status_log = "all"
include = ["trunks.d/*.toml"]

[backend]
uri = "sip:127.0.0.1:5080"
"#,
        );
        tree.write("trunks.d/alpha.toml", &trunk("alpha", "max_channels = 10"));
        tree.write("trunks.d/beta.toml", &trunk("beta", "enabled = false"));
        tree
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn main(&self) -> PathBuf {
        self.path("trunkd.toml")
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    /// Saves like vim or an atomic writer: a new file, renamed over the old one.
    fn replace(&self, name: &str, text: &str) {
        let temporary = self.path(&format!("{name}.tmp~"));
        std::fs::write(&temporary, text).unwrap();
        std::fs::rename(&temporary, self.path(name)).unwrap();
    }
}

fn trunk(id: &str, extra: &str) -> String {
    let password = if id == "alpha" {
        "password_file = \"../alpha.password\"".to_owned()
    } else {
        format!("password = \"{}\"", SECRETS[0])
    };
    format!(
        r#"
[trunks.{id}]
domain = "127.0.0.1"
port = 5070
transport = "udp"
username = "{id}"
{password}
register = false
allowed_inbound_ips = ["127.0.0.1"]
{extra}
"#
    )
}

#[test]
fn starts_binds_listeners_and_logs_status_lines() {
    let tree = Tree::new();
    let mut daemon = Trunkd::start_with(&tree.main(), &[], &[]);
    let udp = daemon.wait_for(&["listening on udp:127.0.0.1:"]);
    let tcp = daemon.wait_for(&["listening on tcp:127.0.0.1:"]);
    let alpha = daemon.wait_for(&["trunk=alpha "]);
    let beta = daemon.wait_for(&["trunk=beta "]);
    let summary = daemon.wait_for(&["summary "]);
    assert!(alpha.contains("trunk=alpha state=idle direction=both next_hop=udp:127.0.0.1:5070"));
    assert!(beta.contains("trunk=beta state=disabled"));
    assert!(summary.contains("summary trunks=2 enabled=1 disabled=1 config_generation=1"));

    // The ports are really bound: binding them again fails.
    let udp_address = udp.rsplit("udp:").next().unwrap().trim();
    let tcp_address = tcp.rsplit("tcp:").next().unwrap().trim();
    assert!(
        std::net::UdpSocket::bind(udp_address).is_err(),
        "{udp_address} not bound"
    );
    assert!(
        std::net::TcpListener::bind(tcp_address).is_err(),
        "{tcp_address} not bound"
    );

    let log = stop(daemon);
    assert!(
        log.iter()
            .any(|line| line.contains("SIGTERM; shutting down"))
    );
    assert!(log.last().unwrap().contains("stopped"));
}

#[test]
fn reloads_on_in_place_edit_and_applies_only_the_diff() {
    let tree = Tree::new();
    let mut daemon = Trunkd::start_with(&tree.main(), &[], &[]);
    daemon.wait_for(&["summary "]);

    tree.write("trunks.d/alpha.toml", &trunk("alpha", "max_channels = 20"));
    // Each touched trunk's line first, then the one-line summary of the reload.
    let line = daemon.wait_for(&["event=changed"]);
    assert!(line.contains("trunk=alpha state=idle") && line.ends_with("fields=max_channels"));
    let applied = daemon.wait_for(&["reload applied"]);
    assert!(
        applied.ends_with(
            "reload applied: generation=2 added=0 removed=0 changed=1 unchanged=1 \
             changed_trunks=alpha(max_channels)"
        ),
        "{applied}"
    );

    // A new file adds a trunk, deleting one removes it.
    tree.write("trunks.d/gamma.toml", &trunk("gamma", ""));
    daemon.wait_for(&["trunk=gamma state=idle", "event=added"]);
    daemon.wait_for(&[
        "reload applied: generation=3 added=1 removed=0 changed=0 unchanged=2 added_trunks=gamma",
    ]);
    std::fs::remove_file(tree.path("trunks.d/beta.toml")).unwrap();
    daemon.wait_for(&["trunk=beta state=removed event=removed"]);
    daemon.wait_for(&[
        "reload applied: generation=4 added=0 removed=1 changed=0 unchanged=2 removed_trunks=beta",
    ]);

    let log = stop(daemon);
    // One save is one reload: the debounce merged the write's events.
    let reloads = log.iter().filter(|l| l.contains("reload applied")).count();
    assert_eq!(reloads, 3, "{log:#?}");
}

#[test]
fn reloads_when_an_editor_renames_a_new_file_over_the_old_one() {
    let tree = Tree::new();
    let mut daemon = Trunkd::start_with(&tree.main(), &[], &[]);
    daemon.wait_for(&["summary "]);

    tree.replace("trunks.d/beta.toml", &trunk("beta", "enabled = true"));
    daemon.wait_for(&["trunk=beta state=idle", "event=changed fields=enabled"]);
    daemon.wait_for(&[
        "reload applied: generation=2",
        "changed_trunks=beta(enabled)",
    ]);

    // The watch survives the first replacement: the main file too, twice.
    let main = std::fs::read_to_string(tree.main()).unwrap();
    tree.replace("trunkd.toml", &main.replace("\"1h\"", "\"30m\""));
    daemon.wait_for(&[
        "reload applied: generation=3",
        "daemon_changed=status_interval",
    ]);
    tree.replace("trunks.d/beta.toml", &trunk("beta", "enabled = false"));
    daemon.wait_for(&["trunk=beta state=disabled", "event=changed"]);
    daemon.wait_for(&[
        "reload applied: generation=4",
        "changed_trunks=beta(enabled)",
    ]);
    stop(daemon);
}

#[test]
fn sighup_reloads_files_the_watch_does_not_cover() {
    // A rotated password file is not watched: SIGHUP (systemctl reload) picks it up.
    let tree = Tree::new();
    let mut daemon = Trunkd::start_with(&tree.main(), &[], &[]);
    daemon.wait_for(&["summary "]);
    std::fs::write(tree.path("alpha.password"), SECRETS[2]).unwrap();
    // A window, not an event: nothing marks the watch ignoring this write. It is longer
    // than the watch's debounce (300 ms), so a reload the write caused would come before
    // the SIGHUP's and take generation 2.
    std::thread::sleep(Duration::from_millis(500));
    daemon.signal("HUP");
    daemon.wait_for(&["SIGHUP; reloading"]);
    daemon.wait_for(&["reload applied: generation=2 added=0 removed=0 changed=1 unchanged=1 changed_trunks=alpha(password)"]);

    // Nothing changed: a SIGHUP still reloads, and says so.
    daemon.signal("HUP");
    daemon.wait_for(&["reload applied: generation=3 added=0 removed=0 changed=0 unchanged=2"]);
    stop(daemon);
}

#[test]
fn invalid_edit_keeps_the_running_config_and_says_why() {
    let tree = Tree::new();
    let mut daemon = Trunkd::start_with(&tree.main(), &[], &[]);
    daemon.wait_for(&["summary "]);

    let broken = trunk(
        "alpha",
        "max_channels = -5\nallowed_inbound_ips = [\"10.0.0.1/8\"]",
    )
    .replace("allowed_inbound_ips = [\"127.0.0.1\"]\n", "");
    tree.write("trunks.d/alpha.toml", &broken);
    let first = daemon.wait_for(&["trunks.d/alpha.toml:"]);
    assert!(first.contains("ERROR"), "{first}");
    assert!(
        first.contains("alpha.toml:9:16: trunk alpha: max_channels: -5 is out of range"),
        "{first}"
    );
    let second = daemon.wait_for(&["trunks.d/alpha.toml:"]);
    assert!(
        second.contains(
            "alpha.toml:10:24: trunk alpha: allowed_inbound_ips: \"10.0.0.1/8\" has host bits set"
        ),
        "{second}"
    );
    daemon.wait_for(&["reload rejected: 2 errors; generation 1 stays in force"]);

    // The running config is still generation 1 with alpha as it was: the next valid edit
    // is diffed against it, not against the broken one.
    tree.write(
        "trunks.d/alpha.toml",
        &trunk("alpha", "max_channels = 10\nname = \"Alpha\""),
    );
    daemon.wait_for(&["reload applied: generation=2 added=0 removed=0 changed=1 unchanged=1 changed_trunks=alpha(name)"]);
    stop(daemon);
}

#[test]
fn config_warnings_are_logged_at_start_and_after_each_applied_reload() {
    let tree = Tree::new();
    // No allowed_inbound_ips: only the next hop may call in, a warning, not an error.
    let open =
        trunk("alpha", "max_channels = 10").replace("allowed_inbound_ips = [\"127.0.0.1\"]\n", "");
    tree.write("trunks.d/alpha.toml", &open);
    let warning = "alpha.toml:2:9: trunk alpha: inbound_auth = \"ip\" without allowed_inbound_ips: \
                   only the next hop 127.0.0.1 may send inbound calls";
    let mut daemon = Trunkd::start_with(&tree.main(), &[], &[]);
    let line = daemon.wait_for(&[warning]);
    assert!(line.contains("WARN"), "{line}");
    daemon.wait_for(&["summary "]);

    tree.write(
        "trunks.d/alpha.toml",
        &open.replace("max_channels = 10", "max_channels = 11"),
    );
    daemon.wait_for(&["reload applied: generation=2"]);
    let line = daemon.wait_for(&[warning]);
    assert!(line.contains("WARN"), "{line}");
    stop(daemon);
}

#[test]
fn sd_notify_messages_arrive_in_order() {
    let tree = Tree::new();
    let socket_path = tree.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let mut daemon = Trunkd::start_with(&tree.main(), &[], &[("NOTIFY_SOCKET", &socket_path)]);
    let receive = || {
        let mut buffer = [0u8; 4096];
        let length = socket.recv(&mut buffer).expect("an sd_notify message");
        String::from_utf8_lossy(&buffer[..length]).into_owned()
    };

    let ready = receive();
    assert!(ready.starts_with("READY=1\n"), "{ready:?}");
    assert!(
        ready.contains("STATUS=2 trunks (1 enabled, 1 disabled), 0 calls, config generation 1"),
        "{ready:?}"
    );
    // READY=1 is sent after the listeners are bound, which the log showed first.
    daemon.wait_for(&["listening on tcp:"]);

    daemon.signal("HUP");
    let reloading = receive();
    let mut fields = reloading.lines();
    assert_eq!(fields.next(), Some("RELOADING=1"), "{reloading:?}");
    let monotonic = fields
        .next()
        .and_then(|f| f.strip_prefix("MONOTONIC_USEC="));
    assert!(
        monotonic.is_some_and(|usec| usec.parse::<u64>().unwrap() > 0),
        "{reloading:?}"
    );
    let ready = receive();
    assert!(
        ready.starts_with("READY=1\n") && ready.contains("config generation 2"),
        "{ready:?}"
    );

    // A rejected reload still ends in READY=1, and STATUS says the reload failed: port out
    // of range, domain required (who may call in depends on the domain: not checked).
    tree.write("trunks.d/alpha.toml", "[trunks.alpha]\nport = 0\n");
    assert!(receive().starts_with("RELOADING=1\n"));
    let ready = receive();
    assert!(ready.starts_with("READY=1\n"), "{ready:?}");
    assert!(
        ready.contains("config generation 2; last reload rejected (2 errors)"),
        "{ready:?}"
    );

    daemon.signal("TERM");
    assert_eq!(receive(), "STOPPING=1\nSTATUS=stopping\n");
    stop(daemon);
}

#[test]
fn watchdog_pings_when_systemd_asks_for_them() {
    let tree = Tree::new();
    let socket_path = tree.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_trunkd"));
    let mut child = command
        .args(["run", "--config"])
        .arg(tree.main())
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut pings = 0;
    let mut buffer = [0u8; 4096];
    while pings < 3 {
        assert!(started.elapsed() < WAIT, "only {pings} watchdog pings");
        let length = socket.recv(&mut buffer).expect("watchdog pings");
        if &buffer[..length] == b"WATCHDOG=1\n" {
            pings += 1;
        }
    }
    // Three pings at half of 400 ms take about 400 ms (the first is immediate); far less
    // than the 1.2 s that pinging only at the limit would need.
    assert!(started.elapsed() < Duration::from_secs(5));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn json_log_format_carries_the_status_line_as_message() {
    let tree = Tree::new();
    let mut daemon = Trunkd::start_with(&tree.main(), &["--log-format", "json"], &[]);
    let line = daemon.wait_for(&["trunk=alpha state=idle"]);
    let json: serde_json::Value = serde_json::from_str(&line).expect("one JSON object per line");
    assert!(
        json["fields"]["message"]
            .as_str()
            .unwrap()
            .starts_with("trunk=alpha state=idle")
    );
    assert_eq!(json["target"], "trunkd::status");
    stop(daemon);
}

#[test]
fn invalid_config_at_start_fails_without_ready() {
    let tree = Tree::new();
    tree.write(
        "trunks.d/alpha.toml",
        "[trunks.alpha]\ndomain = \"127.0.0.1\"\nbogus = 1\n",
    );
    let socket_path = tree.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_nonblocking(true).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_trunkd"))
        .args(["run", "--config"])
        .arg(tree.main())
        .env("NOTIFY_SOCKET", &socket_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("trunks.d/alpha.toml:3:1: trunk alpha: unknown key \"bogus\""),
        "{stderr}"
    );
    assert!(stderr.contains("config is invalid"), "{stderr}");
    let mut buffer = [0u8; 64];
    assert!(
        socket.recv(&mut buffer).is_err(),
        "no READY=1 for a daemon that did not start"
    );
}

#[test]
fn busy_port_fails_the_start_with_the_address() {
    let tree = Tree::new();
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    let main = std::fs::read_to_string(tree.main()).unwrap();
    tree.write(
        "trunkd.toml",
        &main.replace("udp:127.0.0.1:0", &format!("udp:{address}")),
    );
    let output = Command::new(env!("CARGO_BIN_EXE_trunkd"))
        .args(["run", "--config"])
        .arg(tree.main())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot bind udp:{address}: Address")),
        "{stderr}"
    );
}

#[test]
fn status_lines_repeat_every_status_interval() {
    let tree = Tree::new();
    let main = std::fs::read_to_string(tree.main()).unwrap();
    tree.write("trunkd.toml", &main.replace("\"1h\"", "\"1s\""));
    let mut daemon = Trunkd::start_with(&tree.main(), &[], &[]);
    let started = Instant::now();
    for _ in 0..3 {
        daemon.wait_for(&["trunk=alpha state=idle"]);
        daemon.wait_for(&["trunk=beta state=disabled"]);
        daemon.wait_for(&["summary trunks=2 enabled=1 disabled=1 config_generation=1"]);
    }
    // Start-up report plus two periodic ones: about 2 s, never all at once.
    assert!(
        started.elapsed() >= Duration::from_millis(1800),
        "{:?}",
        started.elapsed()
    );
    stop(daemon);
}

#[test]
fn ipv4_and_ipv6_wildcards_can_share_a_port() {
    // Linux sockets are dual-stack by default, so "[::]:P" after "0.0.0.0:P" would fail
    // with EADDRINUSE; trunkd makes IPv6 listeners IPv6-only. Binding only: no traffic.
    let free_port = |probe: &str| match probe {
        "udp" => std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
        _ => std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
    };
    let (udp, tcp) = (free_port("udp"), free_port("tcp"));
    let tree = Tree::new();
    let main = std::fs::read_to_string(tree.main()).unwrap();
    let listen = format!(
        "listen = [\"udp:0.0.0.0:{udp}\", \"udp:[::]:{udp}\", \"tcp:0.0.0.0:{tcp}\", \"tcp:[::]:{tcp}\"]"
    );
    tree.write(
        "trunkd.toml",
        &main.replace(
            "listen = [\"udp:127.0.0.1:0\", \"tcp:127.0.0.1:0\"]",
            &listen,
        ),
    );
    let mut daemon = Trunkd::start_with(&tree.main(), &[], &[]);
    daemon.wait_for(&[&format!("listening on udp:0.0.0.0:{udp}")]);
    daemon.wait_for(&[&format!("listening on udp:[::]:{udp}")]);
    daemon.wait_for(&[&format!("listening on tcp:0.0.0.0:{tcp}")]);
    daemon.wait_for(&[&format!("listening on tcp:[::]:{tcp}")]);
    daemon.wait_for(&["summary "]);
    stop(daemon);
}

/// stderr closed under the daemon (its reader went away): log lines are lost, the daemon
/// runs on (tracing's eprintln! of the write error used to panic and end it).
#[test]
fn a_closed_stderr_does_not_stop_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("trunkd.toml");
    let status_file = dir.path().join("status.json");
    std::fs::write(
        &config,
        format!(
            "[daemon]\nlisten = [\"udp:127.0.0.1:0\"]\nstatus_interval = \"1s\"\n\
             status_file = \"{}\"\n\n\
             [trunks.a]\ndomain = \"127.0.0.1\"\ndirection = \"outbound\"\noptions_interval = 0\n",
            status_file.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_trunkd"))
        .args(["run", "--config"])
        .arg(&config)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0
        && !line.contains("started with")
    {
        line.clear();
    }
    drop(stderr);
    // Each status report (every second, its lines a failed write now) marks the status
    // file to be written again: two new versions of it after the first, and the daemon
    // has lived through two reports.
    let version = || {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&status_file)
            .ok()
            .map(|file| (file.ino(), file.mtime(), file.mtime_nsec()))
    };
    let deadline = Instant::now() + WAIT;
    let mut versions = Vec::new();
    while versions.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "status file versions: {versions:?}"
        );
        if let Some(current) = version()
            && versions.last() != Some(&current)
        {
            versions.push(current);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "trunkd exited: {:?}",
        child.try_wait()
    );
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_request_over_the_header_cap_gets_400_naming_it() {
    let tree = Tree::new();
    let mut daemon = Trunkd::start_with(&tree.main(), &[], &[]);
    let udp = daemon.wait_for(&["listening on udp:127.0.0.1:"]);
    let address = udp.rsplit("udp:").next().unwrap().trim().to_owned();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let local = socket.local_addr().unwrap();
    let padding: String = (0..200).map(|i| format!("X-Pad-{i}: x\r\n")).collect();
    let invite = format!(
        "INVITE sip:+15550100001@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-cap1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+15551230000@127.0.0.1>;tag=cap\r\n\
         To: <sip:+15550100001@127.0.0.1>\r\n\
         Call-ID: cap-1@test\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:{local}>\r\n\
         {padding}Content-Length: 0\r\n\r\n"
    );
    assert!(invite.len() < 65_535);
    socket.send_to(invite.as_bytes(), &address).unwrap();
    let mut buffer = [0u8; 4096];
    let length = socket.recv(&mut buffer).expect("an answer, not silence");
    let answer = String::from_utf8_lossy(&buffer[..length]);
    assert!(
        answer.starts_with("SIP/2.0 400 Too Many Header Fields (limit 128)\r\n"),
        "{answer}"
    );
    assert!(answer.contains("\r\nCall-ID: cap-1@test\r\n"), "{answer}");
    stop(daemon);
}
