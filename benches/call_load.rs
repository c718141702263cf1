//! Call load: trunkd's CPU per full call, measured on the REAL binary between a SIPp
//! carrier (UAC) and a SIPp backend (UAS) on loopback, as the issue measured it:
//! INVITE/100/180/200/ACK/BYE/200 at a fixed call rate for a bounded number of calls.
//! The issue's targets: at most 60 µs of trunkd CPU per admitted call at 1,500 calls/s
//! with no failed call, and no failed call at 4,000 calls/s offered.
//!
//! Run: `cargo bench --profile release --bench call_load` measures the release binary, as
//! the issue did (plain `cargo bench --bench call_load` rebuilds everything with the bench
//! profile's LTO first). The trunkd it starts is `TRUNKD_BIN`, else the crate's binary of
//! the profile it was built with. Quick run: `TRUNKD_CALL_PHASES=1500x3
//! TRUNKD_CALL_REJECT=0 TRUNKD_CALL_CLEANUP=0` (about 10 s).
//!
//! One trunkd serves the whole bench: one trunk `load` allowing 127.0.0.1 for one number,
//! `max_channels = 100000`, no `max_cps`, no REGISTER, no OPTIONS keepalive, its
//! `[backend] uri` the SIPp UAS; `udp:127.0.0.1:<free port>`, `status_interval = "60s"`,
//! no status file, `RUST_LOG=warn` (`TRUNKD_CALL_LOG`). It is started with `NOTIFY_SOCKET`
//! and used once it says READY=1 (config loaded, listener bound).
//!
//! Phases, in this order (`TRUNKD_CALL_PHASES`, default `1500x10,4000x5`: calls/s ×
//! seconds, so 15,000 and 20,000 calls):
//!
//! 1. `idle`: trunkd's own CPU over `TRUNKD_CALL_IDLE` seconds (default 2) with no
//!    traffic, to show what is not the calls' (status tick, malloc trim).
//! 2. One `calls` phase per entry: a fresh SIPp UAS (`tests/peers/sipp-backend-load.xml`)
//!    on the backend port, then a SIPp UAC (`tests/peers/sipp-carrier-load.xml`, the same
//!    messages as `sipp-carrier-call.xml`) with `-r RATE -rp 1000 -m RATE×SECONDS`, call
//!    hold `-d TRUNKD_CALL_HOLD_MS` (default 0), `-recv_timeout 10s` (a call that loses a
//!    message for good fails instead of hanging), 4 MiB socket buffers. trunkd's CPU is
//!    read before the UAC starts and once its last call is over (UAC exit + 500 ms):
//!    utime+stime of `/proc/<pid>/stat` in clock ticks and, finer, the sum of
//!    `se.sum_exec_runtime` over its threads (also per thread: the UDP listener thread,
//!    the tokio workers, the rest, with their context switches). Then, unless
//!    `TRUNKD_CALL_CLEANUP=0`, it waits 34 s, past the 32 s that ended calls linger, and
//!    reads trunkd's CPU again: what forgetting the calls costs, less the idle rate.
//! 3. `rejects` (`TRUNKD_CALL_REJECT`, default `1500x4`; `0` skips it): the UAC with
//!    `tests/peers/sipp-carrier-rejected.xml` to a number the trunk does not have: a
//!    stateless 404 and its ACK, for comparison (the issue: ~5 µs).
//!
//! Calls are counted by SIPp: the last line of each instance's `-trace_stat` CSV (written
//! at exit) gives created, successful and failed calls (and why they failed),
//! retransmissions and the INVITE → 200 time (response time 1). SIPp's own CPU comes from
//! its `/proc/<pid>/stat` read as a zombie, before it is reaped. trunkd's RSS is sampled
//! every 20 ms during each phase (peak) and read after it; its listener socket's `drops`
//! (`/proc/net/udp`) and the SIPp sockets' are read around each phase.
//!
//! Bounds: each UAC runs with `-timeout` (its phase's seconds + 30 s, an error then), each
//! UAS is stopped with SIGTERM after its phase, trunkd with SIGTERM at the end (SIGKILL
//! after 15 s), and a watchdog kills every child and exits 3 if the bench outlives its
//! total bound. All addresses are 127.0.0.1.
//!
//! Fails (exit 1, or 2 before anything ran) when SIPp or the trunkd binary is missing,
//! trunkd does not start, dies or does not exit 0, a SIPp exits with a fatal code (not 0
//! or 1) or writes no statistics; with `TRUNKD_CALL_ENFORCE=1` also when a target is
//! missed (any failed call; CPU per call above `TRUNKD_CALL_TARGET_US`, default 60, in a
//! phase at 1,500 calls/s or less).
//!
//! Profiling hook: `TRUNKD_CALL_ATTACH='perf record -g -o /tmp/trunkd.perf -p {pid}'`
//! runs that command (`sh -c`, `{pid}` replaced by trunkd's pid) from just before the UAC
//! of phase `TRUNKD_CALL_ATTACH_PHASE` (default 1) starts until its last call is over,
//! then sends it SIGINT (perf and strace write their reports on SIGINT). Its figures for
//! that phase include the tool's overhead.
//!
//! Environment:
//! - `TRUNKD_CALL_PHASES=1500x10,4000x5`: calls/s × seconds per calls phase (1-20,000 ×
//!   1-120).
//! - `TRUNKD_CALL_REJECT=1500x4`: the rejects phase, or `0`.
//! - `TRUNKD_CALL_HOLD_MS=0`: time between ACK and BYE (0-60,000).
//! - `TRUNKD_CALL_CLEANUP=1`: wait for and measure the linger cleanup after calls phases.
//! - `TRUNKD_CALL_IDLE=2`: seconds of the idle measurement (0-60).
//! - `TRUNKD_CALL_LOG=warn`: trunkd's `RUST_LOG`.
//! - `TRUNKD_CALL_TARGET_US=60`, `TRUNKD_CALL_ENFORCE=0`.
//! - `TRUNKD_CALL_ATTACH`, `TRUNKD_CALL_ATTACH_PHASE=1`: see above.
//! - `TRUNKD_BIN=/path/to/trunkd`, `SIPP=/path/to/sipp`.

// A benchmark of real processes measures wall time; the virtual-clock rule is for the core.
#![allow(clippy::disallowed_methods)]

#[path = "common/proc.rs"]
mod proc;

use proc::{ChildGuard, forget_child, register_child, spawn_trunkd, start_watchdog};
use proc::{LogCounts, env_number, load_average, status_field, trunkd_binary};
use proc::{Stopped, exit_on_failures, stop_trunkd, wait_ready};
use proc::{Ticks, clock_ticks, cpu_hires_ms, cpu_ticks, status_kib, udp_drops};

/// The command that builds the binary this bench runs, for the error when it is missing.
const BUILDS_IT: &str = "cargo bench --profile release --bench call_load";

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The trunk's number: what the UAC dials.
const DID: &str = "+15550100001";
/// A number no trunk has: the rejects phase's 404.
const WRONG_NUMBER: &str = "+15550100999";
/// Bound on config load + listener bind (READY=1).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// trunkd bounds its own shutdown at 5 s; after this we SIGKILL it and say so.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// After the UAC's last call: trunkd has relayed the last 200 by then.
const DRAIN: Duration = Duration::from_millis(500);
/// Ended calls linger 32 s in trunkd (`call::LINGER`); this is past it.
const CLEANUP_WAIT: Duration = Duration::from_secs(34);
/// A UAC may run this much longer than its phase's seconds.
const UAC_SLACK: u64 = 30;
/// How often RSS and child state are sampled during a phase.
const SAMPLE: Duration = Duration::from_millis(20);
/// SIPp's socket buffers (`-buff_size`; capped by net.core.rmem_max/wmem_max).
const SIPP_BUFFER: &str = "4194304";
/// The issue's call rate for the CPU target.
const TARGET_RATE: u64 = 1_500;

#[derive(Clone, Copy)]
struct Load {
    rate: u64,
    seconds: u64,
}

impl Load {
    fn calls(self) -> u64 {
        self.rate * self.seconds
    }
}

struct Settings {
    phases: Vec<Load>,
    reject: Option<Load>,
    hold_ms: u64,
    cleanup: bool,
    idle: Duration,
    log: String,
    target_us: f64,
    enforce: bool,
    attach: Option<String>,
    attach_phase: usize,
}

impl Settings {
    fn from_env() -> Settings {
        let phases = std::env::var("TRUNKD_CALL_PHASES")
            .unwrap_or_else(|_| "1500x10,4000x5".into())
            .split(',')
            .filter(|part| !part.trim().is_empty())
            .map(|part| parse_load("TRUNKD_CALL_PHASES", part))
            .collect::<Vec<_>>();
        assert!(!phases.is_empty(), "TRUNKD_CALL_PHASES: no phase");
        let reject = match std::env::var("TRUNKD_CALL_REJECT") {
            Ok(text) if text.trim() == "0" => None,
            Ok(text) => Some(parse_load("TRUNKD_CALL_REJECT", &text)),
            Err(_) => Some(Load {
                rate: 1_500,
                seconds: 4,
            }),
        };
        Settings {
            phases,
            reject,
            hold_ms: env_number("TRUNKD_CALL_HOLD_MS", 0, 0, 60_000),
            cleanup: env_number("TRUNKD_CALL_CLEANUP", 1, 0, 1) == 1,
            idle: Duration::from_secs(env_number("TRUNKD_CALL_IDLE", 2, 0, 60)),
            log: std::env::var("TRUNKD_CALL_LOG").unwrap_or_else(|_| "warn".into()),
            target_us: env_number("TRUNKD_CALL_TARGET_US", 60, 1, 100_000) as f64,
            enforce: env_number("TRUNKD_CALL_ENFORCE", 0, 0, 1) == 1,
            attach: std::env::var("TRUNKD_CALL_ATTACH")
                .ok()
                .filter(|command| !command.trim().is_empty()),
            attach_phase: env_number("TRUNKD_CALL_ATTACH_PHASE", 1, 1, 100) as usize,
        }
    }

    /// An upper bound of the whole bench, for the watchdog.
    fn total_bound(&self) -> Duration {
        let hold = Duration::from_millis(self.hold_ms);
        let per_phase = |load: &Load, cleanup: bool| {
            Duration::from_secs(load.seconds + UAC_SLACK + 10)
                + hold
                + if cleanup {
                    CLEANUP_WAIT
                } else {
                    Duration::ZERO
                }
        };
        let phases: Duration = self
            .phases
            .iter()
            .map(|load| per_phase(load, self.cleanup))
            .sum();
        let reject = self
            .reject
            .as_ref()
            .map_or(Duration::ZERO, |load| per_phase(load, false));
        phases + reject + self.idle + READY_TIMEOUT + STOP_TIMEOUT + Duration::from_secs(60)
    }
}

fn parse_load(name: &str, text: &str) -> Load {
    let (rate, seconds) = text
        .trim()
        .split_once('x')
        .unwrap_or_else(|| panic!("{name}: {text:?} is not RATExSECONDS"));
    let number = |value: &str| -> u64 {
        value
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}: {text:?} is not RATExSECONDS"))
    };
    let load = Load {
        rate: number(rate),
        seconds: number(seconds),
    };
    assert!(
        (1..=20_000).contains(&load.rate) && (1..=120).contains(&load.seconds),
        "{name}: {text:?} is outside this bench's bounds (1-20,000 calls/s × 1-120 s)"
    );
    load
}

fn main() {
    let settings = Settings::from_env();
    let binary = trunkd_binary(BUILDS_IT);
    let sipp = sipp_binary();
    let ticks = clock_ticks();
    start_watchdog(settings.total_bound());
    let dir = tempfile::tempdir().expect("a temp dir");

    println!("trunkd call load benchmark");
    println!("  binary: {}", binary.display());
    println!("  sipp: {} ({})", sipp.display(), sipp_version(&sipp));
    println!(
        "  machine: {} CPUs; load average at start: {}; clock ticks {}/s{}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average(),
        ticks.per_second,
        if ticks.measured {
            ""
        } else {
            " (getconf failed: ASSUMED)"
        }
    );
    let describe = |load: &Load| {
        format!(
            "{} calls/s × {} s = {} calls",
            load.rate,
            load.seconds,
            load.calls()
        )
    };
    println!(
        "  calls phases: {}; hold {} ms; rejects: {}; cleanup wait: {}; RUST_LOG={}",
        settings
            .phases
            .iter()
            .map(describe)
            .collect::<Vec<_>>()
            .join(", "),
        settings.hold_ms,
        settings.reject.as_ref().map_or("none".into(), describe),
        if settings.cleanup {
            format!("{}s", CLEANUP_WAIT.as_secs())
        } else {
            "off".into()
        },
        settings.log
    );
    if let Some(attach) = &settings.attach {
        println!(
            "  attached to calls phase {}: {attach} (its figures include the tool)",
            settings.attach_phase
        );
    }
    println!();

    let ports = Ports {
        trunkd: free_udp_port(),
        uas: free_udp_port(),
        uac: free_udp_port(),
    };
    let mut daemon = Daemon::start(&settings, &binary, dir.path(), &ports);
    let mut rows = Vec::new();
    let mut idle_per_s = None;
    if daemon.report.failure.is_none() {
        let pid = daemon.child.pid;
        if !settings.idle.is_zero() {
            let before = Usage::read(pid);
            std::thread::sleep(settings.idle);
            let after = Usage::read(pid);
            idle_per_s = after
                .cpu_ns_since(&before)
                .map(|ns| ns as f64 / 1e3 / after.at.duration_since(before.at).as_secs_f64());
        }
        for (index, load) in settings.phases.iter().enumerate() {
            let attach = settings
                .attach
                .as_deref()
                .filter(|_| index + 1 == settings.attach_phase);
            let row = run_phase(
                &settings,
                &sipp,
                dir.path(),
                &ports,
                &mut daemon,
                Kind::Calls,
                *load,
                index + 1,
                attach,
                idle_per_s,
            );
            eprintln!("{}", row.one_line());
            rows.push(row);
            if daemon.report.failure.is_some() {
                break;
            }
        }
        if let Some(load) = settings.reject
            && daemon.report.failure.is_none()
        {
            let row = run_phase(
                &settings,
                &sipp,
                dir.path(),
                &ports,
                &mut daemon,
                Kind::Rejects,
                load,
                rows.len() + 1,
                None,
                idle_per_s,
            );
            eprintln!("{}", row.one_line());
            rows.push(row);
        }
    }
    let report = daemon.stop();

    let missed = print_report(&settings, &rows, &report, idle_per_s, ticks);
    println!();
    println!("load average at end: {}", load_average());

    let mut failures: Vec<String> = rows
        .iter()
        .flat_map(|row| {
            row.failures
                .iter()
                .map(move |failure| format!("{}: {failure}", row.name))
        })
        .collect();
    failures.extend(report.failure.iter().map(|f| format!("trunkd: {f}")));
    if settings.enforce {
        failures.extend(missed);
    }
    exit_on_failures(&failures);
}

// ---------------------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Full calls through trunkd to the UAS.
    Calls,
    /// INVITEs refused statelessly (404) and their ACKs.
    Rejects,
}

struct Ports {
    trunkd: u16,
    uas: u16,
    uac: u16,
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// One phase's figures.
struct Row {
    name: String,
    kind: Kind,
    load: Load,
    uac: SippRun,
    uas: Option<SippRun>,
    /// trunkd from before the UAC started to its last call's end (+ [`DRAIN`]).
    trunkd: Option<Delta>,
    /// trunkd over the linger cleanup wait, if measured.
    cleanup: Option<Delta>,
    /// trunkd's CPU per second when idle (subtracted from the cleanup window).
    idle_per_s: Option<f64>,
    rss_before_kib: Option<u64>,
    rss_peak_kib: Option<u64>,
    rss_after_kib: Option<u64>,
    rss_cleaned_kib: Option<u64>,
    /// `drops` of trunkd's, the UAC's and the UAS's socket during the phase.
    drops: [Option<u64>; 3],
    failures: Vec<String>,
}

impl Row {
    /// Calls that count for the per-call figures: the UAC's successful ones.
    fn calls(&self) -> u64 {
        self.uac
            .stats
            .as_ref()
            .map_or(0, |s| s.get("SuccessfulCall(C)"))
    }

    fn failed(&self) -> Option<u64> {
        self.uac.stats.as_ref().map(|s| s.get("FailedCall(C)"))
    }

    /// trunkd's CPU per successful call, µs (scheduler time).
    fn cpu_us(&self) -> Option<f64> {
        per_call(self.trunkd.as_ref()?.cpu_ns, self.calls())
    }

    /// The cleanup window's CPU per call less the idle rate over it, µs.
    fn cleanup_us(&self) -> Option<f64> {
        let cleanup = self.cleanup.as_ref()?;
        let idle_ns = self.idle_per_s.unwrap_or(0.0) * 1e3 * cleanup.wall.as_secs_f64();
        let ns = cleanup.cpu_ns? as f64 - idle_ns;
        let calls = self.calls();
        (calls > 0).then(|| ns.max(0.0) / 1e3 / calls as f64)
    }

    fn one_line(&self) -> String {
        format!(
            "{}: {} calls, {} ok, {} failed, trunkd {} µs/call{}{}",
            self.name,
            self.uac
                .stats
                .as_ref()
                .map_or("?".into(), |s| s.get("TotalCallCreated").to_string()),
            self.calls(),
            self.failed().map_or("?".into(), |f| f.to_string()),
            fixed(self.cpu_us()),
            self.cleanup_us()
                .map(|us| format!(" + {us:.1} µs cleanup"))
                .unwrap_or_default(),
            if self.failures.is_empty() {
                String::new()
            } else {
                format!(" — FAILED: {}", self.failures.join("; "))
            }
        )
    }
}

fn per_call(ns: Option<u64>, calls: u64) -> Option<f64> {
    let ns = ns?;
    (calls > 0).then(|| ns as f64 / 1e3 / calls as f64)
}

#[allow(clippy::too_many_arguments)]
fn run_phase(
    settings: &Settings,
    sipp: &Path,
    dir: &Path,
    ports: &Ports,
    daemon: &mut Daemon,
    kind: Kind,
    load: Load,
    number: usize,
    attach: Option<&str>,
    idle_per_s: Option<f64>,
) -> Row {
    let pid = daemon.child.pid;
    let name = match kind {
        Kind::Calls => format!("calls {}/s", load.rate),
        Kind::Rejects => format!("rejects {}/s", load.rate),
    };
    let tag = format!("phase{number}");
    let mut failures = Vec::new();
    let uas = (kind == Kind::Calls).then(|| {
        let csv = dir.join(format!("{tag}-uas.csv"));
        let bound = (load.seconds + UAC_SLACK + 30).to_string() + "s";
        let scenario = scenario_path("sipp-backend-load.xml");
        let args: Vec<String> = [
            "-sf",
            scenario.to_str().expect("a UTF-8 path"),
            "-i",
            "127.0.0.1",
            "-p",
            &ports.uas.to_string(),
            "-t",
            "u1",
            "-nostdin",
            "-buff_size",
            SIPP_BUFFER,
            "-recv_timeout",
            "10000",
            "-timeout",
            &bound,
            "-trace_stat",
            "-stf",
            csv.to_str().expect("a UTF-8 path"),
            "-fd",
            "1",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        (
            SippChild::start(sipp, &args, dir, &format!("{tag}-uas")),
            csv,
        )
    });
    let mut uas = uas.and_then(|(child, csv)| match child {
        Ok(child) => {
            if !wait_bound(ports.uas, &child) {
                failures.push("the UAS did not bind its port".into());
            }
            Some((child, csv))
        }
        Err(error) => {
            failures.push(format!("the UAS did not start: {error}"));
            None
        }
    });

    let drops_of = || {
        [
            udp_drops(loopback(ports.trunkd)),
            udp_drops(loopback(ports.uac)),
            udp_drops(loopback(ports.uas)),
        ]
    };
    let drops_before = drops_of();
    let rss_before_kib = status_field(pid, "VmRSS:");
    let mut rss_peak_kib = rss_before_kib;
    let mut tool = attach.map(|command| Attached::start(command, pid));
    let before = Usage::read(pid);

    let csv = dir.join(format!("{tag}-uac.csv"));
    let scenario = scenario_path(match kind {
        Kind::Calls => "sipp-carrier-load.xml",
        Kind::Rejects => "sipp-carrier-rejected.xml",
    });
    let calls = load.calls().to_string();
    // Calls open at once: ten seconds' worth, under SIPp's 20,000 open files.
    let limit = (load.rate * 10).clamp(1_000, 15_000).to_string();
    let bound = format!(
        "{}s",
        load.seconds + UAC_SLACK + settings.hold_ms.div_ceil(1000)
    );
    let number_dialled = match kind {
        Kind::Calls => DID,
        Kind::Rejects => WRONG_NUMBER,
    };
    let target = format!("127.0.0.1:{}", ports.trunkd);
    let args: Vec<String> = [
        "-sf",
        scenario.to_str().expect("a UTF-8 path"),
        "-s",
        number_dialled,
        "-d",
        &settings.hold_ms.to_string(),
        "-i",
        "127.0.0.1",
        "-p",
        &ports.uac.to_string(),
        "-t",
        "u1",
        "-nostdin",
        "-r",
        &load.rate.to_string(),
        "-rp",
        "1000",
        "-m",
        &calls,
        "-l",
        &limit,
        "-buff_size",
        SIPP_BUFFER,
        "-recv_timeout",
        "10000",
        "-timeout",
        &bound,
        "-timeout_error",
        "-trace_stat",
        "-stf",
        csv.to_str().expect("a UTF-8 path"),
        "-fd",
        "1",
        &target,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    // The UAC's socket is gone once it exits: its drops are sampled while it runs.
    let mut uac_drops = None;
    let started = Instant::now();
    let uac = match SippChild::start(sipp, &args, dir, &format!("{tag}-uac")) {
        Ok(mut child) => {
            // Waits for the UAC to exit, sampling trunkd's RSS meanwhile.
            let (status, cpu) = child.wait_with(|| {
                if let Some(rss) = status_field(pid, "VmRSS:") {
                    rss_peak_kib = Some(rss_peak_kib.map_or(rss, |peak| peak.max(rss)));
                }
                if let Some(drops) = udp_drops(loopback(ports.uac)) {
                    uac_drops = Some(drops);
                }
            });
            SippRun {
                status,
                wall: Some(started.elapsed()),
                cpu_ticks: cpu,
                stats: read_stats(&csv),
                stderr: child.stderr_text(),
            }
        }
        Err(error) => {
            failures.push(format!("the UAC did not start: {error}"));
            SippRun::default()
        }
    };
    std::thread::sleep(DRAIN);
    let after = Usage::read(pid);
    if let Some(tool) = tool.take() {
        tool.stop();
    }
    let drops_after = drops_of();
    let rss_after_kib = status_field(pid, "VmRSS:");

    let uas = uas.take().map(|(mut child, csv)| {
        let (status, cpu) = child.stop();
        SippRun {
            status,
            wall: None,
            cpu_ticks: cpu,
            stats: read_stats(&csv),
            stderr: child.stderr_text(),
        }
    });

    let mut cleanup = None;
    let mut rss_cleaned_kib = None;
    if kind == Kind::Calls && settings.cleanup && daemon.alive() {
        std::thread::sleep(CLEANUP_WAIT);
        let cleaned = Usage::read(pid);
        cleanup = Some(cleaned.since(&after));
        rss_cleaned_kib = status_field(pid, "VmRSS:");
    }

    for (who, run) in [("UAC", Some(&uac)), ("UAS", uas.as_ref())] {
        let Some(run) = run else { continue };
        if run.stats.is_none() {
            failures.push(format!("the {who} wrote no statistics"));
        }
        // SIPp: 0 all calls passed, 1 some failed (counted below), 97 exited on request,
        // 99 normal exit without calls; SIGTERM'd UASes end by the signal.
        match run.status.and_then(|status| status.code()) {
            Some(0 | 1 | 97 | 99) | None => {}
            Some(code) => failures.push(format!(
                "the {who} exited {code}: {}",
                run.stderr.lines().last().unwrap_or("")
            )),
        }
    }
    if !daemon.alive() {
        daemon
            .report
            .failure
            .get_or_insert_with(|| "trunkd died during a phase".into());
    }
    let mut drops = [0, 1, 2].map(|i| delta(drops_before[i], drops_after[i]));
    // A new socket's counter starts at 0.
    drops[1] = uac_drops;
    Row {
        name,
        kind,
        load,
        uac,
        uas,
        trunkd: Some(after.since(&before)),
        cleanup,
        idle_per_s,
        rss_before_kib,
        rss_peak_kib,
        rss_after_kib,
        rss_cleaned_kib,
        drops,
        failures,
    }
}

fn scenario_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers")
        .join(name)
}

/// Waits (≤ 5 s) until SIPp's UDP port is bound: SIPp signals nothing, and a SIP probe
/// would be a call of its own.
fn wait_bound(port: u16, child: &SippChild) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if UdpSocket::bind(loopback(port)).is_err() {
            return true;
        }
        if child.exited() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

// ---------------------------------------------------------------------------------------
// SIPp
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct SippRun {
    status: Option<ExitStatus>,
    /// From spawn to exit (the UAC).
    wall: Option<Duration>,
    /// utime+stime read from its zombie, before it was reaped.
    cpu_ticks: Option<u64>,
    stats: Option<SippStats>,
    stderr: String,
}

/// The last line of a `-trace_stat` CSV, by column name.
struct SippStats {
    fields: HashMap<String, String>,
}

impl SippStats {
    fn get(&self, name: &str) -> u64 {
        self.fields
            .get(name)
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0)
    }

    /// A SIPp duration (`HH:MM:SS` or `HH:MM:SS:uuuuuu`) in ms.
    fn ms(&self, name: &str) -> Option<f64> {
        let parts: Vec<f64> = self
            .fields
            .get(name)?
            .split(':')
            .map(|part| part.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .ok()?;
        match parts.as_slice() {
            [h, m, s] => Some(((h * 60.0 + m) * 60.0 + s) * 1e3),
            [h, m, s, us] => Some(((h * 60.0 + m) * 60.0 + s) * 1e3 + us / 1e3),
            _ => None,
        }
    }

    /// The non-zero `Failed...(C)` counters, as `name=count`.
    fn failure_causes(&self) -> Vec<String> {
        let mut causes: Vec<String> = self
            .fields
            .iter()
            .filter(|(name, _)| {
                name.starts_with("Failed") && name.ends_with("(C)") && *name != "FailedCall(C)"
            })
            .filter(|(_, value)| value.trim() != "0")
            .map(|(name, value)| format!("{}={value}", name.trim_end_matches("(C)")))
            .collect();
        causes.sort();
        causes
    }
}

fn read_stats(csv: &Path) -> Option<SippStats> {
    let text = std::fs::read_to_string(csv).ok()?;
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    let header: Vec<&str> = lines.next()?.split(';').collect();
    let last: Vec<&str> = lines.next_back()?.split(';').collect();
    let fields = header
        .iter()
        .zip(last)
        .map(|(name, value)| ((*name).to_owned(), value.to_owned()))
        .collect();
    Some(SippStats { fields })
}

/// A SIPp process, killed on drop.
struct SippChild {
    child: Child,
    pid: u32,
    stderr: PathBuf,
}

impl SippChild {
    fn start(sipp: &Path, args: &[String], dir: &Path, tag: &str) -> std::io::Result<SippChild> {
        let stderr = dir.join(format!("{tag}.stderr"));
        let child = Command::new(sipp)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr)?)
            .spawn()?;
        let pid = child.id();
        register_child(pid);
        Ok(SippChild { child, pid, stderr })
    }

    fn exited(&self) -> bool {
        process_state(self.pid).is_none_or(|state| state == 'Z')
    }

    /// Waits for the process to exit by itself, calling `tick` every [`SAMPLE`]; its
    /// status and its CPU ticks (read from the zombie).
    fn wait_with(&mut self, mut tick: impl FnMut()) -> (Option<ExitStatus>, Option<u64>) {
        let mut cpu = None;
        loop {
            match process_state(self.pid) {
                Some('Z') => {
                    cpu = cpu_ticks(self.pid);
                    break;
                }
                Some(_) => {}
                None => break,
            }
            tick();
            std::thread::sleep(SAMPLE);
        }
        let status = self.child.wait().ok();
        forget_child(self.pid);
        (status, cpu)
    }

    /// SIGTERM (SIPp writes its final statistics), then SIGKILL after 5 s.
    fn stop(&mut self) -> (Option<ExitStatus>, Option<u64>) {
        signal(self.pid, "TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut killed = false;
        let pid = self.pid;
        self.wait_with(|| {
            if !killed && Instant::now() > deadline {
                signal(pid, "KILL");
                killed = true;
            }
        })
    }

    fn stderr_text(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        // At most the last 2,000 bytes: a failing run can write a lot.
        let start = text.len().saturating_sub(2_000);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        text[start..].to_owned()
    }
}

impl Drop for SippChild {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        forget_child(self.pid);
    }
}

/// The state letter of `/proc/<pid>/stat` (`R`, `S`, `Z`, ...); `None` once reaped.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status();
}

fn sipp_binary() -> PathBuf {
    let found = std::env::var_os("SIPP").map(PathBuf::from).or_else(|| {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("sipp"))
                .find(|candidate| candidate.is_file())
        })
    });
    match found {
        Some(path) if path.is_file() => path,
        _ => {
            eprintln!(
                "error: sipp is not installed (apt-get install -y sip-tester), or set SIPP=/path/to/sipp"
            );
            std::process::exit(2);
        }
    }
}

fn sipp_version(sipp: &Path) -> String {
    Command::new(sipp)
        .arg("-v")
        .stdin(Stdio::null())
        .output()
        .ok()
        .map(|output| {
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .find(|line| line.contains("SIPp v"))
                .unwrap_or("version unknown")
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|| "version unknown".into())
}

/// A profiler or tracer attached to trunkd for one phase (`TRUNKD_CALL_ATTACH`).
struct Attached {
    child: Child,
}

impl Attached {
    fn start(command: &str, pid: u32) -> Attached {
        let command = command.replace("{pid}", &pid.to_string());
        let child = Command::new("sh")
            .args(["-c", &command])
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
        register_child(child.id());
        // perf and strace need a moment to attach to every thread.
        std::thread::sleep(Duration::from_millis(500));
        Attached { child }
    }

    /// SIGINT to its process group; waits up to 60 s for it to write its report.
    fn stop(mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-INT", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                forget_child(self.child.id());
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
        forget_child(self.child.id());
    }
}

// ---------------------------------------------------------------------------------------
// trunkd
// ---------------------------------------------------------------------------------------

/// trunkd's CPU at one moment: the whole process and each live thread.
struct Usage {
    at: Instant,
    ticks: Option<u64>,
    /// Per thread id: (name, ns on CPU, voluntary + involuntary context switches).
    threads: HashMap<u32, (String, u64, u64)>,
    hires_ns: Option<u64>,
}

impl Usage {
    fn read(pid: u32) -> Usage {
        let mut threads = HashMap::new();
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for task in tasks.flatten() {
                let Some(tid) = task.file_name().to_str().and_then(|s| s.parse().ok()) else {
                    continue;
                };
                let path = task.path();
                let name = std::fs::read_to_string(path.join("comm"))
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                let ns = std::fs::read_to_string(path.join("schedstat"))
                    .ok()
                    .and_then(|text| text.split_whitespace().next()?.parse().ok())
                    .unwrap_or(0);
                let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
                let switches = status_kib(&status, "voluntary_ctxt_switches:").unwrap_or(0)
                    + status_kib(&status, "nonvoluntary_ctxt_switches:").unwrap_or(0);
                threads.insert(tid, (name, ns, switches));
            }
        }
        Usage {
            at: Instant::now(),
            ticks: cpu_ticks(pid),
            threads,
            hires_ns: cpu_hires_ms(pid).map(|ms| (ms * 1e6) as u64),
        }
    }

    fn cpu_ns_since(&self, before: &Usage) -> Option<u64> {
        delta(before.hires_ns, self.hires_ns)
    }

    fn since(&self, before: &Usage) -> Delta {
        let mut groups: [(u64, u64); 3] = [(0, 0); 3];
        for (tid, (name, ns, switches)) in &self.threads {
            let (ns_before, switches_before) = before
                .threads
                .get(tid)
                .map_or((0, 0), |(_, ns, switches)| (*ns, *switches));
            let group = if name.starts_with("udp ") {
                0
            } else if name.starts_with("tokio-r") {
                1
            } else {
                2
            };
            groups[group].0 += ns.saturating_sub(ns_before);
            groups[group].1 += switches.saturating_sub(switches_before);
        }
        Delta {
            wall: self.at.duration_since(before.at),
            ticks: delta(before.ticks, self.ticks),
            cpu_ns: self.cpu_ns_since(before),
            groups,
        }
    }
}

/// trunkd's usage over a window.
struct Delta {
    wall: Duration,
    ticks: Option<u64>,
    cpu_ns: Option<u64>,
    /// (ns, context switches) of the UDP listener thread(s), the tokio workers, the rest.
    groups: [(u64, u64); 3],
}

#[derive(Default)]
struct DaemonReport {
    ready: Option<Duration>,
    rss_ready_kib: Option<u64>,
    /// VmHWM, threads, shutdown time and exit status at the end.
    stopped: Stopped,
    /// What each thread was doing when trunkd did not stop in time.
    stuck: Option<String>,
    /// sd_notify messages after READY=1, and the last one.
    notify_count: u64,
    notify_last: Option<String>,
    log: LogCounts,
    failure: Option<String>,
}

/// The running trunkd; [`ChildGuard`] kills it if this is dropped without `stop`.
struct Daemon {
    child: ChildGuard,
    log_reader: JoinHandle<LogCounts>,
    report: DaemonReport,
    /// Reads what trunkd sends after READY=1 (STATUS=, STOPPING=1) until told to stop,
    /// so no sd_notify of trunkd's ever waits on a full socket of ours.
    notify_reader: JoinHandle<(u64, Option<String>)>,
    notify_stop: Arc<AtomicBool>,
}

impl Daemon {
    /// Starts trunkd and waits for READY=1; on failure `report.failure` says why.
    fn start(settings: &Settings, binary: &Path, dir: &Path, ports: &Ports) -> Daemon {
        let mut report = DaemonReport::default();
        let config = write_config(dir, ports);
        let start = Instant::now();
        let (notify, mut child) = spawn_trunkd(binary, &config, &settings.log, dir);
        let log_reader = read_log(child.child.stderr.take().expect("piped stderr"));
        match wait_ready(&notify, &mut child.child, start, READY_TIMEOUT) {
            Ok(ready) => report.ready = Some(ready),
            Err(failure) => report.failure = Some(failure),
        }
        report.rss_ready_kib = status_field(child.pid, "VmRSS:");
        eprintln!(
            "trunkd: pid {}, udp:127.0.0.1:{}, backend (SIPp UAS) 127.0.0.1:{}, carrier (SIPp UAC) 127.0.0.1:{}{}",
            child.pid,
            ports.trunkd,
            ports.uas,
            ports.uac,
            report
                .failure
                .as_ref()
                .map(|f| format!(" — FAILED: {f}"))
                .unwrap_or_default()
        );
        let mut buffer = [0u8; 4096];
        let notify_stop = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&notify_stop);
        let notify_reader = std::thread::spawn(move || {
            let (mut count, mut last) = (0, None);
            while !stop.load(Ordering::SeqCst) {
                if let Ok(length) = notify.recv(&mut buffer) {
                    count += 1;
                    last = Some(String::from_utf8_lossy(&buffer[..length]).trim().to_owned());
                }
            }
            (count, last)
        });
        Daemon {
            child,
            log_reader,
            report,
            notify_reader,
            notify_stop,
        }
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.child.try_wait(), Ok(None))
    }

    /// SIGTERM, bounded by [`STOP_TIMEOUT`], then SIGKILL.
    fn stop(mut self) -> DaemonReport {
        let pid = self.child.pid;
        let mut report = std::mem::take(&mut self.report);
        let stopped = stop_trunkd(&mut self.child, STOP_TIMEOUT, || {
            report.stuck = Some(stuck_threads(pid));
        });
        drop(self.child);
        report.log = self.log_reader.join().unwrap_or_default();
        self.notify_stop.store(true, Ordering::SeqCst);
        (report.notify_count, report.notify_last) = self.notify_reader.join().unwrap_or_default();
        if report.failure.is_none() {
            report.failure = stopped.failure.clone();
        }
        report.stopped = stopped;
        report
    }
}

/// For a trunkd that did not stop: each thread's name, state, kernel wait channel and CPU
/// ticks, and, when gdb is installed, every thread's backtrace (bounded at 30 s).
fn stuck_threads(pid: u32) -> String {
    let mut text = String::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let path = task.path();
            let read = |name: &str| {
                std::fs::read_to_string(path.join(name))
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            };
            let stat = read("stat");
            let fields: Vec<&str> = stat
                .rfind(')')
                .map(|end| stat[end + 1..].split_whitespace().collect())
                .unwrap_or_default();
            text.push_str(&format!(
                "    {} {}: state {} wchan {} utime {} stime {}\n",
                task.file_name().to_string_lossy(),
                read("comm"),
                fields.first().unwrap_or(&"?"),
                read("wchan"),
                fields.get(11).unwrap_or(&"?"),
                fields.get(12).unwrap_or(&"?"),
            ));
        }
    }
    let gdb = Path::new("/usr/bin/gdb");
    if gdb.is_file() {
        let output = Command::new("timeout")
            .args([
                "30",
                "/usr/bin/gdb",
                "-p",
                &pid.to_string(),
                "-batch",
                "-nx",
            ])
            .args(["-ex", "thread apply all bt 30"])
            .stdin(Stdio::null())
            .output();
        if let Ok(output) = output {
            let backtrace = String::from_utf8_lossy(&output.stdout);
            for line in backtrace
                .lines()
                .filter(|line| line.starts_with("Thread ") || line.starts_with('#'))
            {
                text.push_str("    ");
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    text
}

fn write_config(dir: &Path, ports: &Ports) -> PathBuf {
    let text = format!(
        "[daemon]\n\
         listen = [\"udp:127.0.0.1:{trunkd}\"]\n\
         status_interval = \"60s\"\n\
         status_file = \"\"\n\
         \n\
         [backend]\n\
         uri = \"sip:127.0.0.1:{uas}\"\n\
         \n\
         [trunks.load]\n\
         # A documentation address: no REGISTER, no keepalive, nothing leaves loopback.\n\
         domain = \"192.0.2.77\"\n\
         transport = \"udp\"\n\
         register = false\n\
         options_interval = 0\n\
         allowed_inbound_ips = [\"127.0.0.1\"]\n\
         numbers = [\"{DID}\"]\n\
         max_channels = 100000\n",
        trunkd = ports.trunkd,
        uas = ports.uas,
    );
    let path = dir.join("trunkd.toml");
    std::fs::write(&path, text).expect("write the config");
    path
}

/// A port free on 127.0.0.1 for UDP now (there is a small race until its user binds it).
fn free_udp_port() -> u16 {
    UdpSocket::bind(loopback(0))
        .and_then(|socket| socket.local_addr())
        .map(|address| address.port())
        .expect("bind 127.0.0.1:0")
}

fn read_log(stderr: std::process::ChildStderr) -> JoinHandle<LogCounts> {
    std::thread::spawn(move || {
        let mut counts = LogCounts::default();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            counts.lines += 1;
            let warning = line.contains(" WARN ");
            let error = line.contains(" ERROR ");
            counts.warnings += u64::from(warning);
            counts.errors += u64::from(error);
            if (warning || error) && counts.samples.len() < 3 {
                counts.samples.push(line);
            }
        }
        counts
    })
}

// ---------------------------------------------------------------------------------------
// Helpers and the report
// ---------------------------------------------------------------------------------------

fn delta(before: Option<u64>, after: Option<u64>) -> Option<u64> {
    Some(after?.saturating_sub(before?))
}

fn fixed(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.1}"))
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0))
}

/// Prints the tables; returns the targets missed, as failure texts.
fn print_report(
    settings: &Settings,
    rows: &[Row],
    daemon: &DaemonReport,
    idle_per_s: Option<f64>,
    ticks: Ticks,
) -> Vec<String> {
    let tick_us = 1e6 / ticks.per_second as f64;
    println!(
        "Phases (ok/failed = the UAC's successful/failed calls; cps = ok / the UAC's run time from spawn to exit; trunkd µs = trunkd's CPU per ok call, scheduler time of all its threads from the UAC's start to its last call's end + {} ms; ticks = the same from utime+stime at {tick_us:.0} µs resolution; cleanup = per call over the {} s linger wait, less the idle rate; UAC/UAS µs = SIPp's own CPU per ok call; ms s/len = mean INVITE → 200 and mean call length at the UAC (SIPp's 1 ms clock); drops = /proc/net/udp drops of trunkd's / the UAC's / the UAS's socket)",
        DRAIN.as_millis(),
        CLEANUP_WAIT.as_secs()
    );
    println!(
        "{:<15} {:>6} {:>7} {:>7} {:>6} {:>7} {:>6} {:>8} {:>8} {:>8} {:>6} {:>6} {:>6} {:>8} {:>11}",
        "phase",
        "rate",
        "calls",
        "ok",
        "failed",
        "retrans",
        "cps",
        "trunkd µs",
        "ticks µs",
        "cleanup",
        "UAC µs",
        "UAS µs",
        "trunkd%",
        "ms s/len",
        "drops t/c/b"
    );
    for row in rows {
        let stats = row.uac.stats.as_ref();
        let calls = row.calls();
        let elapsed_s = row
            .uac
            .wall
            .map(|wall| wall.as_secs_f64())
            .filter(|s| *s > 0.0);
        let trunkd_ticks = row
            .trunkd
            .as_ref()
            .and_then(|d| d.ticks)
            .filter(|_| calls > 0)
            .map(|t| t as f64 * tick_us / calls as f64);
        let sipp_us = |run: Option<&SippRun>| {
            run.and_then(|run| run.cpu_ticks)
                .filter(|_| calls > 0)
                .map(|t| t as f64 * tick_us / calls as f64)
        };
        let busy = row.trunkd.as_ref().and_then(|d| {
            let wall = d.wall.as_secs_f64();
            d.cpu_ns
                .filter(|_| wall > 0.0)
                .map(|ns| ns as f64 / 1e9 / wall * 100.0)
        });
        let setup = stats.and_then(|s| s.ms("ResponseTime1(C)"));
        let length = stats.and_then(|s| s.ms("CallLength(C)"));
        println!(
            "{:<15} {:>6} {:>7} {:>7} {:>6} {:>7} {:>6} {:>8} {:>8} {:>8} {:>6} {:>6} {:>6} {:>8} {:>11}",
            row.name,
            row.load.rate,
            stats.map_or("-".into(), |s| s.get("TotalCallCreated").to_string()),
            calls,
            row.failed().map_or("-".into(), |f| f.to_string()),
            stats.map_or("-".into(), |s| s.get("Retransmissions(C)").to_string()),
            elapsed_s.map_or("-".into(), |s| format!("{:.0}", calls as f64 / s)),
            fixed(row.cpu_us()),
            fixed(trunkd_ticks),
            fixed(row.cleanup_us()),
            fixed(sipp_us(Some(&row.uac))),
            fixed(sipp_us(row.uas.as_ref())),
            busy.map_or("-".into(), |b| format!("{b:.0}")),
            match (setup, length) {
                (Some(setup), Some(length)) => format!("{setup:.0}/{length:.0}"),
                _ => "-".into(),
            },
            row.drops
                .iter()
                .map(|d| d.map_or("?".into(), |d| d.to_string()))
                .collect::<Vec<_>>()
                .join("/"),
        );
    }
    println!();
    println!(
        "trunkd per thread group (µs CPU per ok call, context switches per ok call) and memory:"
    );
    for row in rows {
        let calls = row.calls();
        let Some(trunkd) = &row.trunkd else { continue };
        let group = |(ns, switches): (u64, u64)| {
            if calls == 0 {
                return "-".to_owned();
            }
            format!(
                "{:.1} µs {:.2} cs",
                ns as f64 / 1e3 / calls as f64,
                switches as f64 / calls as f64
            )
        };
        println!(
            "  {:<15} listener {} · tokio workers {} · other {} · RSS {} → peak {} → {} MiB{}",
            row.name,
            group(trunkd.groups[0]),
            group(trunkd.groups[1]),
            group(trunkd.groups[2]),
            mib(row.rss_before_kib),
            mib(row.rss_peak_kib),
            mib(row.rss_after_kib),
            row.rss_cleaned_kib
                .map(|kib| format!(" ({} MiB after the cleanup wait)", mib(Some(kib))))
                .unwrap_or_default()
        );
    }
    println!();
    for row in rows {
        let mut notes = Vec::new();
        for (who, run) in [("UAC", Some(&row.uac)), ("UAS", row.uas.as_ref())] {
            let Some(run) = run else { continue };
            let status = run.status.map_or("?".into(), |status| status.to_string());
            let causes = run
                .stats
                .as_ref()
                .map(SippStats::failure_causes)
                .unwrap_or_default();
            let extra = run
                .stats
                .as_ref()
                .map(|s| {
                    format!(
                        "created {} ok {} failed {} retrans {} dead-call msgs {} out-of-call msgs {}",
                        s.get("TotalCallCreated"),
                        s.get("SuccessfulCall(C)"),
                        s.get("FailedCall(C)"),
                        s.get("Retransmissions(C)"),
                        s.get("DeadCallMsgs(C)"),
                        s.get("OutOfCallMsgs(C)")
                    )
                })
                .unwrap_or_else(|| "no statistics".into());
            notes.push(format!(
                "{who} {status}: {extra}{}",
                if causes.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", causes.join(", "))
                }
            ));
        }
        for failure in &row.failures {
            notes.push(format!("FAILED: {failure}"));
        }
        println!("  {}: {}", row.name, notes.join("; "));
    }
    println!();
    println!(
        "trunkd: READY=1 after {} ms; VmRSS {} MiB at ready; VmHWM {} MiB; {} threads; idle CPU {} µs/s; {}; {}",
        daemon
            .ready
            .map_or("-".into(), |d| d.as_millis().to_string()),
        mib(daemon.rss_ready_kib),
        mib(daemon.stopped.hwm_kib),
        daemon.stopped.threads.map_or("?".into(), |t| t.to_string()),
        fixed(idle_per_s),
        daemon.stopped.summary(),
        daemon.log.summary(),
    );

    println!(
        "trunkd: {} sd_notify messages after READY=1, the last {:?}",
        daemon.notify_count,
        daemon.notify_last.as_deref().unwrap_or("-")
    );
    if let Some(stuck) = &daemon.stuck {
        println!("trunkd did not stop within {STOP_TIMEOUT:?} of SIGTERM; its threads then:");
        print!("{stuck}");
    }

    println!();
    println!("Targets (the issue):");
    let mut missed = Vec::new();
    for row in rows.iter().filter(|row| row.kind == Kind::Calls) {
        let failed = row.failed();
        let ok = failed == Some(0) && row.calls() > 0;
        let verdict = if ok { "met" } else { "MISSED" };
        println!(
            "  {}: 0 failed calls: {verdict} ({} failed of {})",
            row.name,
            failed.map_or("?".into(), |f| f.to_string()),
            row.uac
                .stats
                .as_ref()
                .map_or("?".into(), |s| s.get("TotalCallCreated").to_string())
        );
        if !ok {
            missed.push(format!("{}: failed calls", row.name));
        }
        if row.load.rate <= TARGET_RATE {
            let cpu = row.cpu_us();
            let ok = cpu.is_some_and(|us| us <= settings.target_us);
            println!(
                "  {}: ≤ {:.0} µs trunkd CPU per call: {} ({} µs)",
                row.name,
                settings.target_us,
                if ok { "met" } else { "MISSED" },
                fixed(cpu)
            );
            if !ok {
                missed.push(format!(
                    "{}: {} µs per call, above {:.0}",
                    row.name,
                    fixed(cpu),
                    settings.target_us
                ));
            }
        }
    }
    missed
}
