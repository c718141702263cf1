//! REGISTER against a real registrar: Kamailio on loopback (tests/peers/
//! kamailio-registrar.cfg, digest with qop=auth, in-memory usrloc) and the real `trunkd`.
//! Kamailio must be installed (`apt-get install kamailio`); the test fails, never skips,
//! without it.

// A real process in real time: the virtual-clock rule is for the core.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);
const GOOD_PASSWORD: &str = "s3cret-trunk1";
const BAD_PASSWORD: &str = "not-the-password-of-trunk2";

/// Kamailio on a free loopback port, killed on drop; its log goes to a file.
struct Kamailio {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Kamailio {
    fn start(dir: &Path) -> Kamailio {
        Self::start_on(dir, free_port())
    }

    fn start_on(dir: &Path, port: u16) -> Kamailio {
        let binary = ["/usr/sbin/kamailio", "/usr/bin/kamailio"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .expect("kamailio is not installed: apt-get install -y kamailio (see .ci/run)");
        let runtime = dir.join("kamailio-run");
        std::fs::create_dir_all(&runtime).unwrap();
        let log = dir.join("kamailio.log");
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(binary)
            .arg("-f")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/kamailio-registrar.cfg"))
            .args(["-DD", "-E", "-n", "1", "-m", "32", "-M", "8", "-Y"])
            .arg(&runtime)
            .arg("-P")
            .arg(runtime.join("kamailio.pid"))
            .arg("-w")
            .arg(&runtime)
            .args([
                "-l",
                &format!("udp:{listen}"),
                "-l",
                &format!("tcp:{listen}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            // Its own process group, so the forked workers can be stopped together.
            .process_group(0)
            .spawn()
            .expect("kamailio starts");
        let kamailio = Kamailio { child, port, log };
        kamailio.wait_until_answering();
        kamailio
    }

    /// Sends OPTIONS until Kamailio answers 200 (it needs a moment to fork its workers).
    fn wait_until_answering(&self) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let local = socket.local_addr().unwrap();
        let deadline = Instant::now() + WAIT;
        let mut buffer = [0u8; 4096];
        for attempt in 0.. {
            assert!(
                Instant::now() < deadline,
                "kamailio never answered OPTIONS:\n{}",
                self.log_text()
            );
            let options = format!(
                "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKready{attempt}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=probe\r\nTo: <sip:127.0.0.1:{port}>\r\n\
                 Call-ID: ready-{attempt}@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
                port = self.port
            );
            socket
                .send_to(options.as_bytes(), ("127.0.0.1", self.port))
                .unwrap();
            if let Ok(length) = socket.recv(&mut buffer)
                && buffer[..length].starts_with(b"SIP/2.0 200")
            {
                return;
            }
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for a Kamailio log line containing all `needles`.
    fn wait_for_log(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(line) = self
                .log_text()
                .lines()
                .find(|line| needles.iter().all(|needle| line.contains(needle)))
            {
                return line.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no kamailio line with {needles:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn count(&self, needle: &str) -> usize {
        self.log_text()
            .lines()
            .filter(|line| line.contains(needle))
            .count()
    }
}

impl Drop for Kamailio {
    /// SIGTERM lets Kamailio stop its workers; then the whole group is killed in case any
    /// survived (SIGKILL to the main process alone would orphan them).
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    // A port free for UDP and TCP at once (Kamailio listens on both).
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

struct Trunkd {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Trunkd {
    fn start(config: &Path) -> Trunkd {
        let mut child = Command::new(env!("CARGO_BIN_EXE_trunkd"))
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Trunkd {
            child,
            lines,
            log: Vec::new(),
        }
    }

    fn wait_for(&mut self, needles: &[&str]) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if needles.iter().all(|needle| line.contains(needle)) {
                        return line;
                    }
                }
                Err(_) => panic!("no trunkd line with {needles:?}:\n{}", self.log.join("\n")),
            }
        }
    }

    /// Like `wait_for`, but also matches a line already read (events of different trunks
    /// arrive in any order).
    fn seen_or_wait_for(&mut self, needles: &[&str]) -> String {
        let seen = self
            .log
            .iter()
            .find(|line| needles.iter().all(|needle| line.contains(needle)));
        match seen {
            Some(line) => line.clone(),
            None => self.wait_for(needles),
        }
    }

    fn stop(mut self) -> Vec<String> {
        let started = Instant::now();
        Command::new("kill")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(self.child.wait().unwrap().success());
        // Unregistration was answered, so shutdown did not wait for its 5 s deadline.
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        self.log.extend(self.lines.try_iter());
        std::mem::take(&mut self.log)
    }
}

impl Drop for Trunkd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(dir: &Path, port: u16, extra_for_good: &str) -> PathBuf {
    config_with_daemon(dir, port, extra_for_good, "")
}

fn config_with_daemon(dir: &Path, port: u16, extra_for_good: &str, daemon: &str) -> PathBuf {
    let path = dir.join("trunkd.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[daemon]
listen = ["udp:127.0.0.1:0"]
status_interval = "1h"
{daemon}

[trunks.good]
domain = "127.0.0.1"
port = {port}
transport = "udp"
direction = "outbound"
username = "trunk1"
password = "{GOOD_PASSWORD}"
auth_realm = "registrar.test"
register = true
register_expires = 3600
{extra_for_good}

[trunks.wrong]
domain = "127.0.0.1"
port = {port}
transport = "udp"
direction = "outbound"
username = "trunk2"
password = "{BAD_PASSWORD}"
register = true
"#
        ),
    )
    .unwrap();
    path
}

#[test]
fn registers_with_digest_honours_granted_expiry_fails_wrong_password_and_unregisters() {
    let dir = tempfile::tempdir().unwrap();
    let kamailio = Kamailio::start(dir.path());
    let config = config(dir.path(), kamailio.port, "");
    let mut trunkd = Trunkd::start(&config);

    // Challenge answered; Kamailio grants 600 s of the 3600 asked, and trunkd says so.
    let registered = trunkd.wait_for(&["trunk=good state=registered", "event=registration"]);
    assert!(registered.contains("expires_in=600"), "{registered}");
    assert!(registered.contains("last_code=200"), "{registered}");
    assert!(
        registered.contains(&format!("next_hop=udp:127.0.0.1:{}", kamailio.port)),
        "{registered}"
    );
    let binding = kamailio.wait_for_log(&["REGISTRAR REGISTERED user=trunk1"]);
    assert!(
        binding.contains("granted=600") && binding.contains("cseq=2"),
        "{binding}"
    );

    // The wrong password: one challenge answered, refused, then a scheduled retry.
    let failed = trunkd.seen_or_wait_for(&["trunk=wrong state=auth_failed"]);
    assert!(
        failed.contains("last_code=401") && failed.contains("retry_in="),
        "{failed}"
    );
    assert!(failed.contains("credentials rejected"), "{failed}");
    kamailio.wait_for_log(&["REGISTRAR AUTH-FAIL user=trunk2", "invalid-password"]);

    // A reload that changes no registration field leaves the binding alone: no new
    // REGISTER reaches the registrar.
    let before = kamailio.count("REGISTRAR REGISTERED user=trunk1");
    config_with(&config, kamailio.port, "max_channels = 7");
    trunkd.wait_for(&[
        "trunk=good state=registered",
        "event=changed fields=max_channels",
    ]);
    trunkd.wait_for(&["reload applied"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(kamailio.count("REGISTRAR REGISTERED user=trunk1"), before);

    // SIGTERM removes the binding (Expires: 0) before exiting.
    let log = trunkd.stop();
    let removal = kamailio.wait_for_log(&["REGISTRAR UNREGISTERED user=trunk1"]);
    assert!(removal.contains("expires-hdr=0"), "{removal}");
    let call_id = |line: &str| {
        line.split("call-id=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        call_id(&removal),
        call_id(&binding),
        "one Call-ID for the trunk's life"
    );

    for line in &log {
        assert!(
            !line.contains(GOOD_PASSWORD) && !line.contains(BAD_PASSWORD),
            "secret logged: {line}"
        );
    }
}

fn config_with(path: &Path, port: u16, extra: &str) {
    let dir = path.parent().unwrap();
    let written = config(dir, port, extra);
    assert_eq!(written, path);
}

#[test]
fn registrar_down_means_backoff_and_its_return_means_registered() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Short RFC 3261 timers and retries, so Timer F (64·T1) fires in 3.2 s, not 32 s.
    let timers = "timer_t1 = \"50ms\"\ntimer_t2 = \"200ms\"\n\
                  register_retry_min = \"1s\"\nregister_retry_max = \"2s\"";
    let config = config_with_daemon(dir.path(), port, "", timers);
    let mut trunkd = Trunkd::start(&config);
    let down = trunkd.wait_for(&["trunk=good state=backoff"]);
    assert!(
        down.contains("no response (timeout)") && down.contains("retry_in="),
        "{down}"
    );

    let kamailio = Kamailio::start_on(dir.path(), port);
    let up = trunkd.wait_for(&["trunk=good state=registered"]);
    assert!(up.contains("expires_in=600"), "{up}");
    kamailio.wait_for_log(&["REGISTRAR REGISTERED user=trunk1"]);
    trunkd.stop();
}

#[test]
fn registers_over_tcp_and_a_refused_connection_backs_off_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let kamailio = Kamailio::start(dir.path());
    let closed = free_port();
    let path = dir.path().join("trunkd.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[daemon]
listen = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]
status_interval = "1h"

[trunks.tcp]
domain = "127.0.0.1"
port = {port}
transport = "tcp"
direction = "outbound"
username = "trunk2"
password = "s3cret-trunk2"
register = true

[trunks.refused]
domain = "127.0.0.1"
port = {closed}
transport = "tcp"
direction = "outbound"
username = "trunk1"
password = "{GOOD_PASSWORD}"
register = true
"#,
            port = kamailio.port
        ),
    )
    .unwrap();
    let mut trunkd = Trunkd::start(&path);
    let tcp_listener = trunkd.wait_for(&["listening on tcp:127.0.0.1:"]);
    let tcp_port = tcp_listener.rsplit(':').next().unwrap().trim().to_owned();

    let registered = trunkd.wait_for(&["trunk=tcp state=registered"]);
    assert!(
        registered.contains(&format!("next_hop=tcp:127.0.0.1:{}", kamailio.port)),
        "{registered}"
    );
    let binding = kamailio.wait_for_log(&["REGISTRAR REGISTERED user=trunk2"]);
    assert!(binding.contains("proto=tcp"), "{binding}");
    // The Contact names our TCP listener, so the carrier can open connections to us.
    assert!(
        binding.contains(&format!(
            "contact=<sip:trunk2@127.0.0.1:{tcp_port};transport=tcp>"
        )),
        "{binding}"
    );

    // Nothing listens on `closed`: the refused connect fails the transaction at once
    // (a 503 per RFC 3261 §8.1.3.1), not after Timer F's 32 s.
    let refused = trunkd.seen_or_wait_for(&["trunk=refused state=backoff"]);
    assert!(
        refused.contains("transport error: connect failed"),
        "{refused}"
    );
    // The first failure: the retry is the first backoff step (15-30 s), not a later one.
    let retry_in: u64 = refused
        .split("retry_in=")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|seconds| seconds.parse().ok())
        .expect("retry_in");
    assert!(retry_in <= 30, "{refused}");

    trunkd.stop();
    let removal = kamailio.wait_for_log(&["REGISTRAR UNREGISTERED user=trunk2"]);
    assert!(
        removal.contains("proto=tcp") && removal.contains("expires-hdr=0"),
        "{removal}"
    );
}
