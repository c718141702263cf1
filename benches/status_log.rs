//! Issue 16's status log budget: the REAL `trunkd` binary with 100,000 healthy trunks and
//! `status_interval = "10s"`, and how many lines it logs in any 30 s, next to journald's
//! default limit of 10,000 messages per 30 s per service (`RateLimitIntervalSec=30s`,
//! `RateLimitBurst=10000`), above which journald drops the service's messages.
//!
//! Run: `cargo bench --bench status_log`. Each run is bounded (60 s to READY=1, 35 s
//! watched, 15 s to stop; a watchdog kills everything after 5 minutes) and nothing is
//! sent: the trunks are outbound-only on 127.0.0.x with `register = false` and
//! `options_interval = 0`, so every trunk stays `idle`.
//!
//! Per `status_log` value (`changes`, the default, then `all`):
//!
//! 1. A temp config with N such trunks, `listen = ["udp:127.0.0.1:0"]`, the status file
//!    in the temp dir (a deployment writes one).
//! 2. trunkd starts with `RUST_LOG=info` (the default level) and `NOTIFY_SOCKET` of ours;
//!    a thread reads stderr (a pipe, as journald's stream is) and stamps each line with
//!    when it arrived, as journald would count it.
//! 3. From READY=1 on, 35 s are watched: the start-up report and three periodic ones.
//! 4. The counts: lines of the start-up (from the spawn to the start-up report's summary
//!    line), lines in the busiest 30 s (windows starting at every line from the spawn
//!    on, so start-up is in them), trunk and summary lines, and trunkd's CPU over the
//!    35 s: all it did, the reports and status file writes and whatever start-up work
//!    was still under way (the next-hop lookups of 100,000 outbound trunks), so it is
//!    not the cost of the log alone.
//!
//! Environment: `TRUNKD_BENCH_N=100000` (trunks), `TRUNKD_BENCH_STATUS_LOG=changes,all`.
//! The binary is `env!("CARGO_BIN_EXE_trunkd")` (built with the bench profile) or
//! `TRUNKD_BIN`.

// A benchmark of a real process measures wall time; the virtual-clock rule is for the core.
#![allow(clippy::disallowed_methods)]

#[path = "common/proc.rs"]
mod proc;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use proc::{clock_ticks, cpu_ticks, load_average, spawn_trunkd, start_watchdog, terminate};

const BUILDS_IT: &str = "cargo bench --bench status_log";
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const WATCHED: Duration = Duration::from_secs(35);
const WINDOW: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
const BOUND: Duration = Duration::from_secs(300);
/// journald's default `RateLimitBurst` per `RateLimitIntervalSec=30s`.
const JOURNALD_BURST: usize = 10_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Line {
    /// `trunkd::status: trunk=...`
    Trunk,
    /// `trunkd::status: summary ...`
    Summary,
    Other,
}

struct Outcome {
    mode: String,
    ready: Option<Duration>,
    start_up_lines: usize,
    busiest_30s: usize,
    lines: usize,
    trunk_lines: usize,
    summaries: usize,
    cpu_ms: Option<u64>,
    failure: Option<String>,
}

fn main() {
    let binary = proc::trunkd_binary(BUILDS_IT);
    let trunks: usize = std::env::var("TRUNKD_BENCH_N")
        .ok()
        .map(|text| text.trim().parse().expect("TRUNKD_BENCH_N: a number"))
        .unwrap_or(100_000);
    let modes: Vec<String> = std::env::var("TRUNKD_BENCH_STATUS_LOG")
        .unwrap_or_else(|_| "changes,all".into())
        .split(',')
        .map(|mode| mode.trim().to_owned())
        .filter(|mode| !mode.is_empty())
        .collect();
    start_watchdog(BOUND);
    let ticks = clock_ticks();
    println!("trunkd status log benchmark");
    println!("  binary: {}", binary.display());
    println!(
        "  machine: {} CPUs; load average at start: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    println!(
        "  {trunks} trunks, status_interval = \"10s\", RUST_LOG=info, {WATCHED:?} watched after READY=1"
    );
    println!();

    let outcomes: Vec<Outcome> = modes
        .iter()
        .map(|mode| run(&binary, trunks, mode, ticks.per_second))
        .collect();

    println!(
        "{:<8} {:>8} {:>10} {:>12} {:>8} {:>11} {:>9} {:>9}",
        "mode", "ready", "start-up", "busiest 30s", "lines", "trunk lines", "summaries", "CPU"
    );
    let mut failed = false;
    for outcome in &outcomes {
        println!(
            "{:<8} {:>8} {:>10} {:>12} {:>8} {:>11} {:>9} {:>9}",
            outcome.mode,
            outcome
                .ready
                .map_or("-".into(), |ready| format!("{:.1}s", ready.as_secs_f64())),
            outcome.start_up_lines,
            outcome.busiest_30s,
            outcome.lines,
            outcome.trunk_lines,
            outcome.summaries,
            outcome.cpu_ms.map_or("-".into(), |ms| format!("{ms}ms")),
        );
        if let Some(failure) = &outcome.failure {
            println!("  FAILED: {failure}");
            failed = true;
        }
    }
    println!();
    println!(
        "journald's default limit: {JOURNALD_BURST} messages per 30 s per service; \"start-up\" \
         counts from the spawn to the first summary line, \"busiest 30s\" any window from the spawn on"
    );
    for outcome in outcomes.iter().filter(|o| o.failure.is_none()) {
        let verdict = if outcome.busiest_30s < JOURNALD_BURST {
            "under"
        } else {
            "OVER"
        };
        println!(
            "  {}: {verdict} the limit ({} in the busiest 30 s)",
            outcome.mode, outcome.busiest_30s
        );
    }
    if failed {
        std::process::exit(1);
    }
}

fn write_config(dir: &Path, trunks: usize, mode: &str) -> PathBuf {
    let mut text = format!(
        "[daemon]\nlisten = [\"udp:127.0.0.1:0\"]\nstatus_interval = \"10s\"\n\
         status_log = \"{mode}\"\nstatus_file = \"status.json\"\n"
    );
    for index in 0..trunks {
        write!(
            text,
            "\n[trunks.t{index:06}]\ndomain = \"127.0.0.{}\"\ndirection = \"outbound\"\n\
             register = false\noptions_interval = 0\n",
            index % 250 + 1
        )
        .expect("writing to a String");
    }
    let path = dir.join("trunkd.toml");
    std::fs::write(&path, text).expect("write the config");
    path
}

fn run(binary: &Path, trunks: usize, mode: &str, ticks_per_second: u64) -> Outcome {
    let mut outcome = Outcome {
        mode: mode.to_owned(),
        ready: None,
        start_up_lines: 0,
        busiest_30s: 0,
        lines: 0,
        trunk_lines: 0,
        summaries: 0,
        cpu_ms: None,
        failure: None,
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = write_config(dir.path(), trunks, mode);
    let start = Instant::now();
    let (notify, mut guard) = spawn_trunkd(binary, &config, "info", dir.path());
    let pid = guard.pid;
    // When each line arrived and what it was: not the text (400,000 lines in "all").
    let (sender, arrived) = mpsc::channel::<(Instant, Line)>();
    let stderr = guard.child.stderr.take().expect("stderr piped");
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let kind = if line.contains("trunkd::status: trunk=") {
                Line::Trunk
            } else if line.contains("trunkd::status: summary ") {
                Line::Summary
            } else {
                Line::Other
            };
            if sender.send((Instant::now(), kind)).is_err() {
                break;
            }
        }
    });

    let mut buffer = [0u8; 4096];
    while outcome.ready.is_none() && outcome.failure.is_none() {
        if start.elapsed() > READY_TIMEOUT {
            outcome.failure = Some(format!("no READY=1 within {READY_TIMEOUT:?}"));
        } else if let Ok(Some(status)) = guard.child.try_wait() {
            outcome.failure = Some(format!("trunkd exited before READY=1: {status}"));
        } else if let Ok(length) = notify.recv(&mut buffer)
            && String::from_utf8_lossy(&buffer[..length])
                .lines()
                .any(|line| line == "READY=1")
        {
            outcome.ready = Some(start.elapsed());
        }
    }
    if outcome.failure.is_none() {
        let cpu_before = cpu_ticks(pid);
        std::thread::sleep(WATCHED);
        let cpu_after = cpu_ticks(pid);
        if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
            outcome.cpu_ms = Some((after - before) * 1000 / ticks_per_second.max(1));
        }
        if let Ok(Some(status)) = guard.child.try_wait() {
            outcome.failure = Some(format!("trunkd exited while watched: {status}"));
        }
    }
    // Lines until now; what the stop logs is not counted.
    let watched_until = Instant::now();
    let terminated = terminate(&mut guard.child, STOP_TIMEOUT, || {});
    let _ = reader.join();
    let lines: Vec<(Instant, Line)> = arrived
        .try_iter()
        .filter(|(at, _)| *at <= watched_until)
        .collect();
    if outcome.failure.is_none()
        && let Some(early) = terminated.early
    {
        outcome.failure = Some(early);
    }

    outcome.lines = lines.len();
    outcome.trunk_lines = lines.iter().filter(|(_, l)| *l == Line::Trunk).count();
    outcome.summaries = lines.iter().filter(|(_, l)| *l == Line::Summary).count();
    outcome.start_up_lines = lines
        .iter()
        .position(|(_, l)| *l == Line::Summary)
        .map_or(lines.len(), |index| index + 1);
    // Windows from each line on; the times are sorted, so a moving end index suffices.
    let mut end = 0;
    for (index, (from, _)) in lines.iter().enumerate() {
        while end < lines.len() && lines[end].0 < *from + WINDOW {
            end += 1;
        }
        outcome.busiest_30s = outcome.busiest_30s.max(end - index);
    }
    if outcome.failure.is_none() && outcome.summaries < 4 {
        outcome.failure = Some(format!(
            "expected the start-up report and three periodic ones, saw {} summaries",
            outcome.summaries
        ));
    }
    outcome
}
