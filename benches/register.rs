//! Issue 3's load benchmark: the REAL `trunkd` binary registers N trunks against an
//! in-process loopback registrar, and we measure what it costs.
//!
//! Run: `cargo bench --bench register`. Every run is bounded (60 s to register, 12 s idle,
//! 15 s to stop) and all traffic stays on 127.0.0.1.
//!
//! Per run:
//!
//! 1. A registrar thread binds a free UDP port on 127.0.0.1 (4 MiB receive buffer, or
//!    what `net.core.rmem_max` allows). It scans each REGISTER with `trunkd::sip::scan`,
//!    answers the first one of a Call-ID with `401` and a per-Call-ID nonce (qop=auth,
//!    MD5), the one with `Authorization` with `200 OK` and `Contact: <..>;expires=3600`,
//!    and every `Expires: 0` with `200 OK`. It verifies the digest with
//!    `trunkd::sip::digest` for every 10th Call-ID (a wrong digest gets 403). A REGISTER
//!    whose (Call-ID, CSeq) was seen before is a retransmission.
//! 2. A temp config with N UDP trunks (`u<i>` / `p<i>`, `register_expires = 3600`,
//!    `status_interval = "1h"`) and `listen = ["udp:127.0.0.1:0"]`.
//! 3. trunkd starts with `NOTIFY_SOCKET` pointing at a socket of ours, so `READY=1` tells
//!    when the config is loaded and the listeners are bound, and with
//!    `RUST_LOG=<level>,trunkd::io::listeners=debug,trunkd::io::network=debug`: those two
//!    targets log at debug only when a response is dropped because the control queue (1024
//!    datagrams) is full, or a send fails, so the extra directives cost nothing unless
//!    something is dropped, which we want to count. stderr is read by a thread (a pipe,
//!    not a terminal, so no colour), which counts lines, warnings and those drops.
//! 4. "All registered" is seen from the registrar: N distinct Call-IDs answered 200. Then
//!    trunkd's CPU time (utime+stime of /proc/<pid>/stat, in clock ticks; the high-res
//!    sum of `se.sum_exec_runtime` of /proc/<pid>/task/*/sched as a cross-check) is
//!    sampled, we wait 12 s with nothing due (one trim period of trunkd's), and read VmRSS/VmHWM from /proc/<pid>/status
//!    and the sockets' drop counters from /proc/net/udp.
//! 5. SIGTERM: trunkd un-REGISTERs every binding (it waits at most 5 s for answers); we
//!    time it until the process exits.
//!
//! The binary is `env!("CARGO_BIN_EXE_trunkd")`: cargo builds the package's binaries
//! whenever it builds a benchmark and sets this variable for benchmarks as for
//! integration tests, so it is the binary of the same sources, built with the bench
//! profile (`lto = true`, `codegen-units = 1`). `TRUNKD_BIN=/path/to/trunkd` overrides
//! it. The bench fails at once, saying so, if the file is not there.
//!
//! Environment:
//! - `TRUNKD_BENCH_N=1000,10000`: trunk counts (default `0,1000,10000`). N = 0 is always
//!   run first: it is the RSS baseline for "RSS per trunk".
//! - `TRUNKD_BENCH_INFO_N=1000`: counts also run with `RUST_LOG=info`, to see what one log
//!   line per state change costs (default `1000`; empty for none).
//! - `TRUNKD_BENCH_REPEAT=3`: runs of each (default 1).
//! - `TRUNKD_BENCH_DOMAIN=localhost`: the trunks' `domain` (default `127.0.0.1`). A name
//!   goes through trunkd's DNS lookup (RFC 3263; with the explicit port, A/AAAA) once per
//!   trunk; an IP literal is used as it is, without any lookup.

// A benchmark of a real process measures wall time; the virtual-clock rule is for the core.
#![allow(clippy::disallowed_methods)]

#[path = "common/proc.rs"]
mod proc;

use proc::{Ticks, clock_ticks, cpu_hires_ms, cpu_ticks, status_kib, udp_drops};
use proc::{load_average, trunkd_binary};

/// The command that builds the binary this bench runs, for the error when it is missing.
const BUILDS_IT: &str = "cargo bench --bench register";

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, ErrorKind};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use trunkd::config::Secret;
use trunkd::sip::digest;
use trunkd::sip::scan::{self, EMPTY_HEADER, HeaderName, MAX_HEADERS, Method, StartLine};

/// Bound on config load + listener bind (READY=1).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on "all N registered", counted from the start of the process.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle time after all are registered, before RSS is read: longer than trunkd's period of
/// giving freed memory back (`trunkd::io::memory::TRIM_PERIOD`), so the reading is the
/// idle daemon's, not the start-up burst's.
const IDLE: Duration = Duration::from_secs(12);
/// trunkd bounds its shutdown at 5 s; after this we SIGKILL it and say so.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Asked-for receive buffer of the registrar socket (capped by net.core.rmem_max).
const REGISTRAR_RCVBUF: usize = 4 << 20;
/// Verify the digest of one Call-ID in this many.
const VERIFY_EVERY: usize = 10;
const REALM: &str = "bench";
const GRANTED: u32 = 3600;

fn main() {
    let binary = trunkd_binary(BUILDS_IT);
    let counts = env_counts("TRUNKD_BENCH_N").unwrap_or_else(|| vec![0, 1000, 10000]);
    let info_counts = env_counts("TRUNKD_BENCH_INFO_N").unwrap_or_else(|| vec![1000]);
    let repeat: usize = std::env::var("TRUNKD_BENCH_REPEAT")
        .ok()
        .map(|text| text.trim().parse().expect("TRUNKD_BENCH_REPEAT: a number"))
        .unwrap_or(1)
        .clamp(1, 20);
    let domain = std::env::var("TRUNKD_BENCH_DOMAIN").unwrap_or_else(|_| "127.0.0.1".into());
    let ticks = clock_ticks();

    // The plan: the N = 0 baseline first, then every N at warn, then the info ones.
    let mut plan: Vec<(usize, &str)> = vec![(0, "warn")];
    plan.extend(counts.iter().filter(|&&n| n > 0).map(|&n| (n, "warn")));
    plan.extend(info_counts.iter().map(|&n| (n, "info")));

    println!("trunkd register benchmark");
    println!("  binary: {}", binary.display());
    println!(
        "  machine: {} CPUs; load average at start: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    println!(
        "  clock ticks: {} per second ({})",
        ticks.per_second,
        if ticks.measured {
            "getconf CLK_TCK"
        } else {
            "getconf failed: ASSUMED 100"
        }
    );
    println!("  trunk domain: {domain}; repeat: {repeat}");
    println!(
        "  RUST_LOG=<level>,trunkd::io::listeners=debug,trunkd::io::network=debug (debug = drops only)"
    );
    println!();

    let mut results: Vec<Outcome> = Vec::new();
    for &(trunks, level) in &plan {
        for round in 0..repeat {
            eprintln!("run: N={trunks} log={level} round={}", round + 1);
            let outcome = run(&binary, trunks, level, &domain);
            eprintln!("     {}", outcome.one_line());
            results.push(outcome);
        }
    }
    let baseline_kib = {
        let zeros: Vec<u64> = results
            .iter()
            .filter(|o| o.trunks == 0)
            .filter_map(|o| o.rss_kib)
            .collect();
        (!zeros.is_empty()).then(|| zeros.iter().sum::<u64>() / zeros.len() as u64)
    };
    print_tables(&results, baseline_kib, ticks);
    println!();
    println!("load average at end: {}", load_average());
    let failed: Vec<&Outcome> = results.iter().filter(|o| o.failure.is_some()).collect();
    if !failed.is_empty() {
        for outcome in &failed {
            eprintln!(
                "FAILED: N={} log={}: {}",
                outcome.trunks,
                outcome.level,
                outcome.failure.as_deref().unwrap_or("")
            );
        }
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------
// One run
// ---------------------------------------------------------------------------------------

/// What one run measured. Times are from just before trunkd was spawned.
#[derive(Default)]
struct Outcome {
    trunks: usize,
    level: &'static str,
    ready: Option<Duration>,
    first_register: Option<Duration>,
    /// When the N-th distinct Call-ID sent its first REGISTER: the end of the start spread.
    last_new_call_id: Option<Duration>,
    all_registered: Option<Duration>,
    registered: usize,
    /// REGISTERs received before SIGTERM, and how many were retransmissions.
    registers: u64,
    retransmissions: u64,
    /// 401 sent → the answer to it received, per Call-ID: trunkd's turnaround.
    turnaround: Vec<Duration>,
    digest_checked: u64,
    digest_bad: u64,
    cpu_ready_ticks: Option<u64>,
    cpu_registered_ticks: Option<u64>,
    cpu_idle_end_ticks: Option<u64>,
    cpu_registered_hires_ms: Option<f64>,
    cpu_ready_hires_ms: Option<f64>,
    threads: Option<u64>,
    rss_kib: Option<u64>,
    hwm_kib: Option<u64>,
    /// /proc/net/udp `drops` of trunkd's socket (read while idle) and the registrar's (at
    /// the end).
    trunkd_drops: Option<u64>,
    /// The same, last read while trunkd was shutting down (sampled every 2 ms).
    trunkd_drops_at_exit: Option<u64>,
    registrar_drops: Option<u64>,
    registrar_rcvbuf: usize,
    registrar_errors: Option<String>,
    /// Most Call-IDs between their first REGISTER and their 200 at once.
    max_outstanding: usize,
    shutdown: Option<Duration>,
    shutdown_killed: bool,
    exit: Option<String>,
    unregisters: usize,
    shutdown_registers: u64,
    shutdown_retransmissions: u64,
    log: LogCounts,
    failure: Option<String>,
}

fn run(binary: &Path, trunks: usize, level: &'static str, domain: &str) -> Outcome {
    let mut outcome = Outcome {
        trunks,
        level,
        ..Outcome::default()
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    let registrar = Registrar::start(trunks);
    outcome.registrar_rcvbuf = registrar.rcvbuf;
    let config = write_config(dir.path(), trunks, registrar.port, domain);
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).expect("bind the notify socket");
    notify
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();

    let start = Instant::now();
    let mut child = Command::new(binary)
        .args(["run", "--config"])
        .arg(&config)
        .env(
            "RUST_LOG",
            format!("{level},trunkd::io::listeners=debug,trunkd::io::network=debug"),
        )
        .env("NOTIFY_SOCKET", &notify_path)
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env_remove("CREDENTIALS_DIRECTORY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
    let pid = child.id();
    let guard = KillOnDrop(Some(child.id()));
    let log_reader = read_log(child.stderr.take().unwrap());

    // READY=1: config loaded, listeners bound, first pump done.
    let mut buffer = [0u8; 4096];
    while outcome.ready.is_none() {
        if start.elapsed() > READY_TIMEOUT {
            outcome.failure = Some(format!("no READY=1 within {READY_TIMEOUT:?}"));
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            outcome.failure = Some(format!("trunkd exited before READY=1: {status}"));
            break;
        }
        if let Ok(length) = notify.recv(&mut buffer)
            && String::from_utf8_lossy(&buffer[..length])
                .lines()
                .any(|line| line == "READY=1")
        {
            outcome.ready = Some(start.elapsed());
            outcome.cpu_ready_ticks = cpu_ticks(pid);
            outcome.cpu_ready_hires_ms = cpu_hires_ms(pid);
        }
    }

    // All registered, as the registrar saw it.
    if outcome.failure.is_none() {
        loop {
            // N = 0 has nothing to register: "all registered" once ready.
            let done = trunks == 0 || lock(&registrar.shared).all_registered_at.is_some();
            if done {
                outcome.cpu_registered_ticks = cpu_ticks(pid);
                outcome.cpu_registered_hires_ms = cpu_hires_ms(pid);
                break;
            }
            if start.elapsed() > REGISTER_TIMEOUT {
                let registered = lock(&registrar.shared).registered;
                outcome.failure = Some(format!(
                    "only {registered} of {trunks} registered within {REGISTER_TIMEOUT:?}"
                ));
                outcome.cpu_registered_ticks = cpu_ticks(pid);
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                outcome.failure = Some(format!("trunkd exited while registering: {status}"));
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    // Idle: nothing is due for 45 minutes (refresh at 75 % of 3600 s).
    if outcome.failure.is_none() {
        std::thread::sleep(IDLE);
        outcome.cpu_idle_end_ticks = cpu_ticks(pid);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        outcome.rss_kib = status_kib(&status, "VmRSS:");
        outcome.hwm_kib = status_kib(&status, "VmHWM:");
        outcome.threads = status_kib(&status, "Threads:");
        let trunkd_port = lock(&registrar.shared).trunkd_port;
        outcome.trunkd_drops = trunkd_port.and_then(loopback_udp_drops);
    }
    {
        let mut shared = lock(&registrar.shared);
        outcome.registers = shared.registers[0];
        outcome.retransmissions = shared.retransmissions[0];
        shared.phase_shutdown = true;
    }

    // SIGTERM: un-REGISTER everything, bounded at 5 s by trunkd.
    let trunkd_port = lock(&registrar.shared).trunkd_port;
    let stop = Instant::now();
    if child.try_wait().ok().flatten().is_none() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    outcome.shutdown = Some(stop.elapsed());
                    outcome.exit = Some(status.to_string());
                    break;
                }
                Ok(None) if stop.elapsed() > STOP_TIMEOUT => {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    outcome.shutdown_killed = true;
                    outcome.exit = status.map(|s| format!("killed after {STOP_TIMEOUT:?}: {s}"));
                    break;
                }
                _ => {
                    // trunkd's socket closes at exit: keep its last drop count.
                    if let Some(drops) = trunkd_port.and_then(loopback_udp_drops) {
                        outcome.trunkd_drops_at_exit = Some(drops);
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    } else {
        outcome.exit = child.try_wait().ok().flatten().map(|s| s.to_string());
    }
    drop(guard);
    outcome.log = log_reader.join().unwrap_or_default();

    let stats = registrar.stop();
    outcome.registrar_drops = stats.registrar_drops;
    if stats.panicked {
        outcome.failure = Some("the registrar thread panicked (message above)".into());
    }
    let shared = stats.shared;
    outcome.max_outstanding = shared.max_outstanding;
    if shared.receive_errors > 0 {
        outcome.registrar_errors = Some(format!(
            "{} receive errors, last: {}",
            shared.receive_errors,
            shared.last_receive_error.as_deref().unwrap_or("?")
        ));
    }
    let since = |at: Option<Instant>| at.map(|at| at.duration_since(start));
    outcome.first_register = since(shared.first_register_at);
    outcome.last_new_call_id = since(shared.last_new_call_id_at);
    outcome.all_registered = since(shared.all_registered_at);
    outcome.registered = shared.registered;
    outcome.turnaround = shared.turnaround;
    outcome.digest_checked = shared.digest_checked;
    outcome.digest_bad = shared.digest_bad;
    outcome.unregisters = shared.unregistered;
    outcome.shutdown_registers = shared.registers[1];
    outcome.shutdown_retransmissions = shared.retransmissions[1];
    if outcome.failure.is_none() && outcome.digest_bad > 0 {
        outcome.failure = Some(format!("{} wrong digests", outcome.digest_bad));
    }
    if outcome.failure.is_none() && outcome.exit.as_deref() != Some("exit status: 0") {
        outcome.failure = Some(format!("trunkd did not exit 0: {:?}", outcome.exit));
    }
    outcome
}

fn write_config(dir: &Path, trunks: usize, port: u16, domain: &str) -> PathBuf {
    let mut text = String::with_capacity(300 * trunks + 200);
    text.push_str("[daemon]\nlisten = [\"udp:127.0.0.1:0\"]\nstatus_interval = \"1h\"\n# The status file a deployment writes (to /run/trunkd), here in the temp dir.\nstatus_file = \"status.json\"\n\n");
    for index in 0..trunks {
        let _ = write!(
            text,
            "[trunks.t{index}]\n\
             direction = \"outbound\"\n\
             transport = \"udp\"\n\
             domain = \"{domain}\"\n\
             port = {port}\n\
             username = \"u{index}\"\n\
             password = \"p{index}\"\n\
             register = true\n\
             register_expires = 3600\n\
             options_interval = 0\n\n"
        );
    }
    let path = dir.join("trunkd.toml");
    std::fs::write(&path, text).expect("write the config");
    path
}

/// Kills trunkd if the bench panics half-way, so no daemon outlives it.
struct KillOnDrop(Option<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(pid) = self.0.take()
        {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

// ---------------------------------------------------------------------------------------
// The loopback registrar
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct CallState {
    /// Order of first appearance: the digest is checked for every VERIFY_EVERY-th.
    index: usize,
    nonce: String,
    /// CSeqs seen so far (a handful per Call-ID).
    cseqs: Vec<u32>,
    challenged_at: Option<Instant>,
    registered: bool,
    unregistered: bool,
}

#[derive(Default)]
struct Shared {
    /// Index 0: before SIGTERM; 1: after.
    registers: [u64; 2],
    retransmissions: [u64; 2],
    phase_shutdown: bool,
    target: usize,
    registered: usize,
    unregistered: usize,
    first_register_at: Option<Instant>,
    last_new_call_id_at: Option<Instant>,
    all_registered_at: Option<Instant>,
    turnaround: Vec<Duration>,
    digest_checked: u64,
    digest_bad: u64,
    malformed: u64,
    receive_errors: u64,
    last_receive_error: Option<String>,
    trunkd_port: Option<u16>,
    /// Call-IDs that sent a first REGISTER and have no 200 yet: trunkd's REGISTERs in
    /// flight as the registrar sees them (trunkd caps its own count at 256).
    outstanding: usize,
    max_outstanding: usize,
}

/// The registrar's state, even if a panic poisoned the lock (the report says so).
fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Registrar {
    port: u16,
    rcvbuf: usize,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

struct RegistrarStats {
    shared: Shared,
    registrar_drops: Option<u64>,
    panicked: bool,
}

impl Registrar {
    fn start(target: usize) -> Registrar {
        let socket = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )
        .expect("a UDP socket");
        let _ = socket.set_recv_buffer_size(REGISTRAR_RCVBUF);
        let _ = socket.set_send_buffer_size(REGISTRAR_RCVBUF);
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        socket.bind(&any.into()).expect("bind the registrar");
        // Linux reports twice the usable size it granted.
        let rcvbuf = socket.recv_buffer_size().unwrap_or(0);
        let socket: UdpSocket = socket.into();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let port = socket.local_addr().unwrap().port();
        let shared = Arc::new(Mutex::new(Shared {
            target,
            turnaround: Vec::with_capacity(target),
            ..Shared::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("registrar".into())
                .spawn(move || serve(socket, shared, stop))
                .expect("the registrar thread")
        };
        Registrar {
            port,
            rcvbuf,
            shared,
            stop,
            thread,
        }
    }

    fn stop(self) -> RegistrarStats {
        // Read while the socket is still open.
        let registrar_drops = loopback_udp_drops(self.port);
        self.stop.store(true, Ordering::SeqCst);
        let panicked = self.thread.join().is_err();
        let shared = std::mem::take(&mut *lock(&self.shared));
        RegistrarStats {
            shared,
            registrar_drops,
            panicked,
        }
    }
}

fn serve(socket: UdpSocket, shared: Arc<Mutex<Shared>>, stop: Arc<AtomicBool>) {
    let mut calls: HashMap<String, CallState> = HashMap::new();
    let mut buffer = vec![0u8; 65_535];
    let mut response = String::with_capacity(1024);
    while !stop.load(Ordering::Relaxed) {
        let (length, source) = match socket.recv_from(&mut buffer) {
            Ok(received) => received,
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                continue;
            }
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) => {
                let mut shared = lock(&shared);
                shared.receive_errors += 1;
                shared.last_receive_error = Some(error.to_string());
                drop(shared);
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
        };
        let now = Instant::now();
        let mut shared = lock(&shared);
        response.clear();
        if answer(
            &buffer[..length],
            source,
            now,
            &mut calls,
            &mut shared,
            &mut response,
        ) {
            drop(shared);
            if let Err(error) = socket.send_to(response.as_bytes(), source) {
                eprintln!("registrar send to {source}: {error}");
            }
        } else {
            shared.malformed += 1;
        }
    }
}

/// Handles one datagram; writes the response into `out`. False if it is not a REGISTER
/// we can answer.
fn answer(
    bytes: &[u8],
    source: SocketAddr,
    now: Instant,
    calls: &mut HashMap<String, CallState>,
    shared: &mut Shared,
    out: &mut String,
) -> bool {
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    let Ok(message) = scan::scan(bytes, &mut headers) else {
        return false;
    };
    let StartLine::Request {
        method: Method::Register,
        uri,
    } = message.start_line()
    else {
        return false;
    };
    let (Some(call_id), Ok(cseq), Some(via), Some(from), Some(to), Some(cseq_raw)) = (
        text(message.call_id().ok()),
        message.cseq(),
        text(message.header(HeaderName::Via)),
        text(message.header(HeaderName::From)),
        text(message.header(HeaderName::To)),
        text(message.header(HeaderName::CSeq)),
    ) else {
        return false;
    };
    let expires = text(message.header(HeaderName::Expires))
        .and_then(|value| value.trim().parse::<u32>().ok())
        .unwrap_or(GRANTED);
    let contact = text(message.header(HeaderName::Contact)).unwrap_or("");
    let authorization = text(message.header(HeaderName::Authorization));
    let phase = usize::from(shared.phase_shutdown);

    shared.registers[phase] += 1;
    shared.first_register_at.get_or_insert(now);
    shared.trunkd_port.get_or_insert(source.port());
    if !calls.contains_key(call_id) {
        let index = calls.len();
        calls.insert(
            call_id.to_owned(),
            CallState {
                index,
                nonce: format!("{index:x}.{:x}", bench_hash(call_id)),
                ..CallState::default()
            },
        );
        if calls.len() == shared.target {
            shared.last_new_call_id_at = Some(now);
        }
        shared.outstanding += 1;
        shared.max_outstanding = shared.max_outstanding.max(shared.outstanding);
    }
    let call = calls.get_mut(call_id).expect("inserted above");
    if call.cseqs.contains(&cseq.sequence) {
        shared.retransmissions[phase] += 1;
    } else {
        call.cseqs.push(cseq.sequence);
    }

    let to_tag = if to.contains(";tag=") {
        ""
    } else {
        ";tag=bench"
    };
    let common = |out: &mut String, status: &str| {
        let _ = write!(
            out,
            "SIP/2.0 {status}\r\nVia: {via}\r\nFrom: {from}\r\nTo: {to}{to_tag}\r\n\
             Call-ID: {call_id}\r\nCSeq: {cseq_raw}\r\nServer: trunkd-bench\r\n"
        );
    };
    if expires == 0 {
        if !call.unregistered {
            call.unregistered = true;
            shared.unregistered += 1;
        }
        common(out, "200 OK");
        out.push_str("Content-Length: 0\r\n\r\n");
        return true;
    }
    let Some(authorization) = authorization else {
        call.challenged_at.get_or_insert(now);
        common(out, "401 Unauthorized");
        let _ = write!(
            out,
            "WWW-Authenticate: {}\r\nContent-Length: 0\r\n\r\n",
            challenge_text(&call.nonce)
        );
        return true;
    };
    if call.index.is_multiple_of(VERIFY_EVERY) {
        shared.digest_checked += 1;
        let uri = std::str::from_utf8(uri).unwrap_or("");
        if !digest_ok(authorization, &call.nonce, uri) {
            shared.digest_bad += 1;
            common(out, "403 Forbidden");
            out.push_str("Content-Length: 0\r\n\r\n");
            return true;
        }
    }
    if !call.registered {
        call.registered = true;
        shared.registered += 1;
        shared.outstanding -= 1;
        if let Some(challenged) = call.challenged_at {
            shared.turnaround.push(now.duration_since(challenged));
        }
        if shared.registered == shared.target {
            shared.all_registered_at = Some(now);
        }
    }
    common(out, "200 OK");
    let _ = write!(
        out,
        "Contact: {contact};expires={GRANTED}\r\nContent-Length: 0\r\n\r\n"
    );
    true
}

/// The bytes as text, if they are UTF-8.
fn text(value: Option<&[u8]>) -> Option<&str> {
    value.and_then(|v| std::str::from_utf8(v).ok())
}

fn challenge_text(nonce: &str) -> String {
    format!("Digest realm=\"{REALM}\", nonce=\"{nonce}\", qop=\"auth\", algorithm=MD5")
}

/// Recomputes the digest for the user's password (`u<i>` has `p<i>`) and compares.
fn digest_ok(authorization: &str, nonce: &str, request_uri: &str) -> bool {
    let Some(fields) = authorization.trim_start().strip_prefix("Digest ") else {
        return false;
    };
    let param = |name: &str| {
        fields.split(',').find_map(|part| {
            let (key, value) = part.trim().split_once('=')?;
            (key.trim() == name).then(|| value.trim().trim_matches('"'))
        })
    };
    let (Some(username), Some(uri), Some(cnonce), Some(nc), Some(response), Some(sent_nonce)) = (
        param("username"),
        param("uri"),
        param("cnonce"),
        param("nc"),
        param("response"),
        param("nonce"),
    ) else {
        return false;
    };
    let Ok(nc) = u32::from_str_radix(nc, 16) else {
        return false;
    };
    if sent_nonce != nonce || uri != request_uri || param("realm") != Some(REALM) {
        return false;
    }
    let Some(index) = username.strip_prefix('u') else {
        return false;
    };
    let password = Secret::new(&format!("p{index}"));
    let challenge_header = challenge_text(nonce);
    let Ok(challenge) = digest::parse_challenge(&challenge_header) else {
        return false;
    };
    digest::answer(
        &challenge, username, &password, "REGISTER", uri, cnonce, nc, None,
    )
    .is_ok_and(|expected| expected.response() == response)
}

/// FNV-1a, to make nonces look like nonces.
fn bench_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

// ---------------------------------------------------------------------------------------
// trunkd's log
// ---------------------------------------------------------------------------------------

#[derive(Default, Clone)]
struct LogCounts {
    lines: u64,
    bytes: u64,
    warnings: u64,
    errors: u64,
    control_queue_drops: u64,
    send_failures: u64,
    /// The first few WARN/ERROR lines, to show in the report.
    samples: Vec<String>,
}

fn read_log(stderr: std::process::ChildStderr) -> JoinHandle<LogCounts> {
    std::thread::spawn(move || {
        let mut counts = LogCounts::default();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            counts.lines += 1;
            counts.bytes += line.len() as u64 + 1;
            let warning = line.contains(" WARN ");
            let error = line.contains(" ERROR ");
            counts.warnings += u64::from(warning);
            counts.errors += u64::from(error);
            if line.contains("control path busy") {
                counts.control_queue_drops += 1;
            }
            if line.contains("send failed") {
                counts.send_failures += 1;
            }
            if (warning || error) && counts.samples.len() < 3 {
                counts.samples.push(line);
            }
        }
        counts
    })
}

// ---------------------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------------------

/// The `drops` counter of the UDP socket bound to 127.0.0.1:`port`.
fn loopback_udp_drops(port: u16) -> Option<u64> {
    udp_drops(SocketAddr::from(([127, 0, 0, 1], port)))
}

// ---------------------------------------------------------------------------------------
// Setup and report
// ---------------------------------------------------------------------------------------

fn env_counts(name: &str) -> Option<Vec<usize>> {
    let text = std::env::var(name).ok()?;
    Some(
        text.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                let n: usize = part
                    .replace('_', "")
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}: {part:?} is not a count"));
                assert!(
                    n <= 100_000,
                    "{name}: {n} trunks is beyond this bench's bounds"
                );
                n
            })
            .collect(),
    )
}

impl Outcome {
    fn one_line(&self) -> String {
        format!(
            "all registered at {} ms, {} REGISTERs, {} retransmissions, shutdown {} ms{}",
            ms(self.all_registered),
            self.registers,
            self.retransmissions,
            ms(self.shutdown),
            self.failure
                .as_ref()
                .map(|f| format!(" — FAILED: {f}"))
                .unwrap_or_default()
        )
    }
}

fn ms(duration: Option<Duration>) -> String {
    duration.map_or("-".into(), |d| format!("{}", d.as_millis()))
}

fn percentile(sorted: &[Duration], fraction: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let index = ((sorted.len() - 1) as f64 * fraction).round() as usize;
    Some(sorted[index])
}

fn print_tables(results: &[Outcome], baseline_kib: Option<u64>, ticks: Ticks) {
    let tick_ms = 1000.0 / ticks.per_second as f64;
    println!(
        "Registration (times in ms from spawning trunkd; max in = most Call-IDs between their first REGISTER and their 200 at once; turn = 401 sent → its answer received; drops t/r = /proc/net/udp drops of trunkd's socket before SIGTERM / of the registrar's)"
    );
    println!(
        "{:>6} {:>5} {:>6} {:>7} {:>8} {:>8} {:>7} {:>7} {:>6} {:>17} {:>8} {:>11}",
        "N",
        "log",
        "ready",
        "1st REG",
        "last new",
        "all reg",
        "REGs",
        "retrans",
        "max in",
        "turn p50/p99/max",
        "digests",
        "drops t/r"
    );
    for o in results {
        let mut sorted = o.turnaround.clone();
        sorted.sort();
        let turn = match (
            percentile(&sorted, 0.5),
            percentile(&sorted, 0.99),
            sorted.last(),
        ) {
            (Some(a), Some(b), Some(c)) => format!(
                "{:.1}/{:.1}/{:.1}",
                a.as_secs_f64() * 1e3,
                b.as_secs_f64() * 1e3,
                c.as_secs_f64() * 1e3
            ),
            _ => "-".into(),
        };
        println!(
            "{:>6} {:>5} {:>6} {:>7} {:>8} {:>8} {:>7} {:>7} {:>6} {:>17} {:>8} {:>11}",
            o.trunks,
            o.level,
            ms(o.ready),
            ms(o.first_register),
            ms(o.last_new_call_id),
            if o.all_registered.is_some() || o.trunks > 0 {
                ms(o.all_registered)
            } else {
                "n/a".into()
            },
            o.registers,
            o.retransmissions,
            o.max_outstanding,
            turn,
            format!("{}/{}", o.digest_checked - o.digest_bad, o.digest_checked),
            format!(
                "{}/{}",
                o.trunkd_drops.map_or("?".into(), |d| d.to_string()),
                o.registrar_drops.map_or("?".into(), |d| d.to_string())
            ),
        );
    }
    println!();
    println!(
        "Resources and shutdown (CPU ms: utime+stime at {} ticks/s, i.e. {tick_ms} ms resolution; µs/reg = (CPU@reg - CPU@rdy) / N; hr = live threads' se.sum_exec_runtime; stop drops = trunkd socket drops, last read before exit)",
        ticks.per_second
    );
    println!(
        "{:>6} {:>5} {:>8} {:>8} {:>8} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>10} {:>9}",
        "N",
        "log",
        "CPU@rdy",
        "CPU@reg",
        "CPU idle",
        "µs/reg",
        "µs/reg hr",
        "RSS MiB",
        "HWM MiB",
        "KiB/trk",
        "threads",
        "stop ms",
        "unREGs",
        "stop rtx",
        "stop drops",
        "log lines"
    );
    for o in results {
        let cpu_ms = |t: Option<u64>| t.map(|t| t as f64 * tick_ms);
        let ready = cpu_ms(o.cpu_ready_ticks);
        let registered = cpu_ms(o.cpu_registered_ticks);
        let idle = match (o.cpu_idle_end_ticks, o.cpu_registered_ticks) {
            (Some(end), Some(start)) => Some((end - start) as f64 * tick_ms),
            _ => None,
        };
        let per_reg = match (ready, registered) {
            (Some(a), Some(b)) if o.trunks > 0 => format!("{:.0}", (b - a) * 1e3 / o.trunks as f64),
            _ => "-".into(),
        };
        let per_reg_hires = match (o.cpu_ready_hires_ms, o.cpu_registered_hires_ms) {
            (Some(a), Some(b)) if o.trunks > 0 => format!("{:.0}", (b - a) * 1e3 / o.trunks as f64),
            _ => "-".into(),
        };
        let per_trunk = match (o.rss_kib, baseline_kib) {
            (Some(rss), Some(base)) if o.trunks > 0 => {
                format!("{:.2}", (rss as f64 - base as f64) / o.trunks as f64)
            }
            _ => "-".into(),
        };
        let fmt_ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}"));
        let mib = |v: Option<u64>| v.map_or("-".into(), |v| format!("{:.1}", v as f64 / 1024.0));
        println!(
            "{:>6} {:>5} {:>8} {:>8} {:>8} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>10} {:>9}",
            o.trunks,
            o.level,
            fmt_ms(ready),
            fmt_ms(registered),
            fmt_ms(idle),
            per_reg,
            per_reg_hires,
            mib(o.rss_kib),
            mib(o.hwm_kib),
            per_trunk,
            o.threads.map_or("-".into(), |t| t.to_string()),
            format!(
                "{}{}",
                ms(o.shutdown),
                if o.shutdown_killed { "!" } else { "" }
            ),
            format!("{}/{}", o.unregisters, o.trunks),
            o.shutdown_retransmissions,
            o.trunkd_drops_at_exit.map_or("?".into(), |d| d.to_string()),
            o.log.lines,
        );
    }
    println!();
    println!("Notes per run:");
    for o in results {
        let mut notes = Vec::new();
        if let Some(failure) = &o.failure {
            notes.push(format!("FAILED: {failure}"));
        }
        if o.log.control_queue_drops > 0 {
            notes.push(format!(
                "{} responses dropped by trunkd's control queue (full at 1024)",
                o.log.control_queue_drops
            ));
        }
        if let Some(errors) = &o.registrar_errors {
            notes.push(format!("registrar: {errors}"));
        }
        if o.log.send_failures > 0 {
            notes.push(format!("{} send failures logged", o.log.send_failures));
        }
        if o.log.warnings + o.log.errors > 0 {
            notes.push(format!(
                "{} WARN and {} ERROR lines, e.g. {:?}",
                o.log.warnings, o.log.errors, o.log.samples
            ));
        }
        notes.push(format!(
            "log {} lines / {} KiB; shutdown REGISTERs {}; registrar rcvbuf {} KiB; exit {}",
            o.log.lines,
            o.log.bytes / 1024,
            o.shutdown_registers,
            o.registrar_rcvbuf / 1024,
            o.exit.as_deref().unwrap_or("?")
        ));
        println!("  N={} log={}: {}", o.trunks, o.level, notes.join("; "));
    }
}
