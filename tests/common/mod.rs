//! Shared harness for the real-peer tests: Kamailio, dnsmasq and the trunkd binary as
//! child processes on loopback, each stopped on drop. A missing peer fails the test.

#![allow(dead_code)] // each test file uses part of it

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const WAIT: Duration = Duration::from_secs(20);
pub const GOOD_PASSWORD: &str = "s3cret-trunk1";
pub const BAD_PASSWORD: &str = "not-the-password-of-trunk2";

/// Kamailio on a free loopback port, killed on drop; its log goes to a file.
pub struct Kamailio {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Kamailio {
    pub fn start(dir: &Path) -> Kamailio {
        Self::start_on(dir, free_port())
    }

    pub fn start_on(dir: &Path, port: u16) -> Kamailio {
        Self::start_with(dir, port, &[])
    }

    /// With compile-time knobs of the cfg (`-A NAME`), e.g. `NATPING`.
    pub fn start_with(dir: &Path, port: u16, defines: &[&str]) -> Kamailio {
        Self::start_cfg(dir, "kamailio-registrar.cfg", port, defines)
    }

    /// `tests/peers/<cfg>` (the registrar, or the carrier proxy of
    /// `kamailio-carrier.cfg`) with its knobs; its files and log under `dir/<cfg>-<port>`.
    pub fn start_cfg(dir: &Path, cfg: &str, port: u16, defines: &[&str]) -> Kamailio {
        let dir = &dir.join(format!("{cfg}-{port}"));
        std::fs::create_dir_all(dir).unwrap();
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
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/peers")
                    .join(cfg),
            )
            .args(defines.iter().flat_map(|define| ["-A", define]))
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
    pub fn wait_until_answering(&self) {
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

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for a Kamailio log line containing all `needles`.
    pub fn wait_for_log(&self, needles: &[&str]) -> String {
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

    pub fn count(&self, needle: &str) -> usize {
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

pub fn free_port() -> u16 {
    // A port free for UDP and TCP at once (Kamailio listens on both).
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub struct Trunkd {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Trunkd {
    pub fn start(config: &Path) -> Trunkd {
        Self::start_with(config, &[], &[])
    }

    /// With global options before `run` (e.g. `--log-format json`) and extra environment
    /// (e.g. `NOTIFY_SOCKET`); systemd's variables are otherwise removed.
    pub fn start_with(config: &Path, options: &[&str], env: &[(&str, &Path)]) -> Trunkd {
        let mut command = Command::new(env!("CARGO_BIN_EXE_trunkd"));
        command
            .args(options)
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("trunkd starts");
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

    pub fn wait_for(&mut self, needles: &[&str]) -> String {
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

    /// Every line that arrives before `until`, with when it arrived (kept in the log too).
    pub fn lines_until(&mut self, until: Instant) -> Vec<(Instant, String)> {
        let mut lines = Vec::new();
        while let Ok(line) = self
            .lines
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            self.log.push(line.clone());
            lines.push((Instant::now(), line));
        }
        lines
    }

    /// Like `wait_for`, but also matches a line already read (events of different trunks
    /// arrive in any order).
    pub fn seen_or_wait_for(&mut self, needles: &[&str]) -> String {
        let seen = self
            .log
            .iter()
            .find(|line| needles.iter().all(|needle| line.contains(needle)));
        match seen {
            Some(line) => line.clone(),
            None => self.wait_for(needles),
        }
    }

    /// Sends a signal by name (`HUP`, `TERM`, ...).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM; asserts a clean exit within 4 s (un-REGISTERs answered, or none needed)
    /// and returns the whole log.
    pub fn stop(mut self) -> Vec<String> {
        let started = Instant::now();
        self.signal("TERM");
        assert!(self.child.wait().unwrap().success());
        // Unregistration was answered, so shutdown did not wait for its 5 s deadline.
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        // The reader thread may still hold the last lines.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(1)) {
            self.log.push(line);
        }
        std::mem::take(&mut self.log)
    }
}

impl Trunkd {
    /// Waits for the process to exit by itself (after a signal sent earlier); returns
    /// whether it exited 0 and the whole log.
    pub fn wait_exit(mut self) -> (bool, Vec<String>) {
        let success = self.child.wait().unwrap().success();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(1)) {
            self.log.push(line);
        }
        (success, std::mem::take(&mut self.log))
    }
}

impl Trunkd {
    /// SIGKILL: no un-REGISTER, no goodbye to anyone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Trunkd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// dnsmasq serving the given records on a free loopback port, killed on drop.
pub struct Dnsmasq {
    child: Child,
    pub port: u16,
}

impl Dnsmasq {
    /// `records` are dnsmasq options such as `--srv-host=...` and `--host-record=...`.
    pub fn start(records: &[String]) -> Dnsmasq {
        let binary = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .expect("dnsmasq is not installed: apt-get install -y dnsmasq-base (see .ci/run)");
        let port = free_port();
        let child = Command::new(binary)
            .args([
                "--no-daemon",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
            ])
            .args([
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--user=root",
            ])
            .arg(format!("--port={port}"))
            .args(records)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq starts");
        let dnsmasq = Dnsmasq { child, port };
        // Ready when its UDP port is taken.
        let deadline = Instant::now() + WAIT;
        while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            assert!(Instant::now() < deadline, "dnsmasq did not bind its port");
            std::thread::sleep(Duration::from_millis(20));
        }
        dnsmasq
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SIPp running a UAS scenario from tests/peers on a free loopback UDP port. It exits on
/// its own (`-m 1`, `-timeout`); dropping it kills it if it has not.
pub struct Sipp {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Sipp {
    /// A scripted registrar that runs one call and exits (`-m 1`) on its own.
    pub fn start_uas(scenario: &str, dir: &Path) -> Sipp {
        let flags = [
            "-t",
            "u1",
            "-m",
            "1",
            "-timeout",
            "60s",
            "-timeout_error",
            "-default_behaviors",
            "abortunexp",
        ];
        Self::start_with(scenario, dir, &flags)
    }

    /// Any scenario with its own flags; the address, port, logging and `-nostdin` are set
    /// here.
    pub fn start_with(scenario: &str, dir: &Path, flags: &[&str]) -> Sipp {
        Self::start_on(scenario, dir, free_port(), flags)
    }

    /// On a given port (to bring a peer back where it was).
    pub fn start_on(scenario: &str, dir: &Path, port: u16, flags: &[&str]) -> Sipp {
        Self::start_at(scenario, dir, "127.0.0.1", port, flags)
    }

    /// On another loopback address (a peer that must not look like the others).
    pub fn start_at(scenario: &str, dir: &Path, ip: &str, port: u16, flags: &[&str]) -> Sipp {
        let binary = ["/usr/bin/sipp", "/usr/local/bin/sipp"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .expect("sipp is not installed: apt-get install -y sip-tester (see .ci/run)");
        let log = dir.join(format!("{scenario}-{port}.log"));
        let child = Command::new(binary)
            .arg("-sf")
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/peers")
                    .join(scenario),
            )
            .args(["-i", ip, "-p", &port.to_string(), "-nostdin"])
            .args(flags)
            .args(["-trace_logs", "-log_file"])
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sipp starts");
        // Ready when its port is bound, UDP or TCP by its transport (probing with SIP
        // would use up its one call).
        let tcp = flags
            .windows(2)
            .any(|pair| pair[0] == "-t" && pair[1].starts_with('t'));
        let bound = || match tcp {
            true => std::net::TcpListener::bind((ip, port)).is_err(),
            false => UdpSocket::bind((ip, port)).is_err(),
        };
        let deadline = Instant::now() + WAIT;
        let mut child = child;
        while !bound() {
            assert!(
                Instant::now() < deadline && !matches!(child.try_wait(), Ok(Some(_))),
                "sipp did not bind its port"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Sipp { child, port, log }
    }

    /// Waits for SIPp to finish its scenario; its exit code says whether every step
    /// matched (0) or not.
    pub fn wait(&mut self) -> Option<i32> {
        let deadline = Instant::now() + WAIT * 3;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "sipp did not finish");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// redis-server on a free loopback port, without persistence (a restart loses its data,
/// as a real crash of an in-memory Redis does), killed on drop.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    /// Its TLS and password options, when started with [`Redis::start_tls`].
    options: Vec<String>,
}

impl Redis {
    pub fn start(dir: &Path) -> Redis {
        let port = free_port();
        Self::start_with(dir, port, vec!["--port".to_owned(), port.to_string()])
    }

    /// TLS only (no plain port), with the PEM `cert`/`key` (also its CA file) and a
    /// password; clients are not asked for certificates.
    pub fn start_tls(dir: &Path, cert: &Path, key: &Path, password: &str) -> Redis {
        let port = free_port();
        let mut options: Vec<String> = ["--port", "0", "--tls-auth-clients", "no"]
            .map(str::to_owned)
            .to_vec();
        options.extend(["--tls-port".into(), port.to_string()]);
        for (flag, path) in [
            ("--tls-cert-file", cert),
            ("--tls-key-file", key),
            ("--tls-ca-cert-file", cert),
        ] {
            options.extend([flag.to_owned(), path.display().to_string()]);
        }
        options.extend(["--requirepass".into(), password.to_owned()]);
        Self::start_with(dir, port, options)
    }

    fn start_with(dir: &Path, port: u16, options: Vec<String>) -> Redis {
        let dir = dir.join("redis");
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Redis {
            child: None,
            port,
            dir,
            options,
        };
        redis.resume();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Starts it again on the same port (empty, like a crashed Redis without a dump).
    pub fn resume(&mut self) {
        let binary = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .expect("redis-server is not installed: apt-get install -y redis-server (see .ci/run)");
        let child = Command::new(binary)
            .args(["--bind", "127.0.0.1"])
            .args(&self.options)
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        let tls = self.options.iter().any(|option| option == "--tls-port");
        let ready = || match tls {
            false => self.query(&["PING"]).as_deref() == Some("+PONG"),
            // Over TLS: ready when its port takes connections.
            true => std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok(),
        };
        while !ready() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it (SIGKILL: no goodbye to its clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// One command over a fresh connection; the first line of the answer.
    pub fn query(&self, words: &[&str]) -> Option<String> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut command = format!("*{}\r\n", words.len());
        for word in words {
            command.push_str(&format!("${}\r\n{word}\r\n", word.len()));
        }
        stream.write_all(command.as_bytes()).ok()?;
        let mut buffer = [0u8; 4096];
        let length = stream.read(&mut buffer).ok()?;
        let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
        Some(text.lines().next()?.to_owned())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A call the test places over UDP and holds until it hangs up, where SIPp's carrier
/// holds a call for a fixed time: the test acts while the call is up, then ends it.
pub struct HeldCall {
    socket: std::net::UdpSocket,
    /// trunkd's address.
    trunkd: SocketAddr,
    /// The backend's Contact, the target of the ACK and BYE.
    target: String,
    /// trunkd's Record-Route: the route set.
    route: String,
    /// The To header with the backend's tag.
    to: String,
    call_id: String,
}

impl HeldCall {
    const FROM: &str = "<sip:+15551230000@carrier.example>;tag=held-1";

    /// INVITE to trunkd for `did`; returns once the backend's 200 is acknowledged.
    pub fn place(trunkd: u16, did: &str) -> HeldCall {
        Self::place_as(trunkd, did, "held-1@carrier.example")
            .unwrap_or_else(|refused| panic!("{refused}"))
    }

    /// The same with its own Call-ID; the final response when it is not a 200.
    pub fn place_as(trunkd: u16, did: &str, call_id: &str) -> Result<HeldCall, String> {
        Self::place_at(SocketAddr::from(([127, 0, 0, 1], trunkd)), did, call_id)
    }

    /// The same to a trunkd at `trunkd` (from 127.0.0.1).
    pub fn place_at(trunkd: SocketAddr, did: &str, call_id: &str) -> Result<HeldCall, String> {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(WAIT)).unwrap();
        let mut call = HeldCall {
            socket,
            trunkd,
            target: String::new(),
            route: String::new(),
            to: format!("<sip:{did}@{trunkd}>"),
            call_id: call_id.to_owned(),
        };
        call.send("INVITE", &format!("sip:{did}@{trunkd}"), 1);
        let ok = call.final_response("INVITE");
        if !ok.starts_with("SIP/2.0 200 OK\r\n") {
            return Err(ok);
        }
        let header = |name: &str| {
            ok.lines()
                .find_map(|line| line.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in {ok}"))
                .to_owned()
        };
        call.to = header("To: ");
        call.route = header("Record-Route: ");
        let contact = header("Contact: ");
        call.target = contact
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap()
            .to_owned();
        let target = call.target.clone();
        call.send("ACK", &target, 1);
        Ok(call)
    }

    /// BYE through trunkd; its final response's status line.
    pub fn hang_up(self) -> String {
        self.send("BYE", &self.target, 2);
        let answer = self.final_response("BYE");
        answer.lines().next().unwrap().to_owned()
    }

    /// A request of the call; once it is set up, routed by trunkd's Record-Route.
    fn send(&self, method: &str, uri: &str, cseq: u32) {
        let local = self.socket.local_addr().unwrap();
        let route = if self.route.is_empty() {
            String::new()
        } else {
            format!("Route: {}\r\n", self.route)
        };
        let request = format!(
            "{method} {uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK-{branch}-{method};rport\r\n\
             {route}Max-Forwards: 70\r\n\
             From: {from}\r\n\
             To: {to}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:+15551230000@{local}>\r\n\
             Content-Length: 0\r\n\r\n",
            from = Self::FROM,
            to = self.to,
            call_id = self.call_id,
            branch = self
                .call_id
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>(),
        );
        self.socket
            .send_to(request.as_bytes(), self.trunkd)
            .unwrap();
    }

    /// The next final response to `method` (provisional ones and retransmissions of
    /// earlier answers skipped).
    fn final_response(&self, method: &str) -> String {
        let mut buffer = [0u8; 8192];
        loop {
            let length = self.socket.recv(&mut buffer).expect("an answer in time");
            let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
            if !text.starts_with("SIP/2.0 1") && text.contains(&format!(" {method}\r\n")) {
                return text;
            }
        }
    }
}
