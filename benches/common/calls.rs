//! The machinery of the call load benches (`call_load.rs`: inbound calls, SIPp carrier →
//! trunkd → SIPp backend; `outbound_load.rs`: outbound calls, SIPp backend → trunkd →
//! challenging carrier): one trunkd started once and used after READY=1, an idle
//! measurement, then phases of calls placed by a SIPp UAC at a fixed rate towards the
//! peers the bench starts for each phase, with trunkd's CPU per call (all threads, and per
//! thread group), RSS, socket drops, the peers' own CPU, and the report. What differs
//! between the benches is a [`CallBench`]: trunkd's config, the peers, the UAC's scenario
//! and number, the targets. Each bench's own doc comment describes the phases and settings
//! as it runs them.

#![allow(dead_code, reason = "each bench uses part of it")]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::proc::{ChildGuard, forget_child, register_child, spawn_trunkd, start_watchdog};
use crate::proc::{LogCounts, env_number, load_average, status_field, trunkd_binary};
use crate::proc::{Stopped, exit_on_failures, stop_trunkd, wait_ready};
use crate::proc::{Ticks, clock_ticks, cpu_hires_ms, cpu_ticks, status_kib, udp_drops};
use crate::sipp::{SIPP_BUFFER, SippChild, SippRun, SippStats, free_udp_port, loopback};
use crate::sipp::{read_stats, scenario_path, sipp_binary, sipp_version, wait_bound};

/// Bound on config load + listener bind (READY=1).
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// trunkd bounds its own shutdown at 5 s; after this we SIGKILL it and say so.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// After the UAC's last call: trunkd has relayed the last 200 by then.
pub const DRAIN: Duration = Duration::from_millis(500);
/// Ended calls linger 32 s in trunkd (`call::LINGER`); this is past it.
pub const CLEANUP_WAIT: Duration = Duration::from_secs(34);
/// A UAC may run this much longer than its phase's seconds.
pub const UAC_SLACK: u64 = 30;
/// Per phase, for starting and stopping its peers (a Kamailio takes up to 15 s).
const PEER_SLACK: u64 = 30;

/// What one call load bench puts around trunkd.
pub trait CallBench {
    /// The first line of the report: `trunkd call load benchmark`.
    fn title(&self) -> &str;
    /// The command that builds the binary it runs, for the error when that is missing.
    fn builds_it(&self) -> &str;
    /// trunkd's config, listening on `udp:127.0.0.1:<ports.trunkd>`.
    fn config(&self, ports: &Ports) -> String;
    /// trunkd's peers, after its pid and port on the line that says it started.
    fn describe(&self, ports: &Ports) -> String;
    /// Starts what the UAC's calls go to through trunkd, before the UAC.
    fn start_peers(&self, kind: Kind, phase: &PhaseContext) -> Peers;
    /// The UAC's scenario (a file of tests/peers) and the number it dials.
    fn uac(&self, kind: Kind) -> (&str, &str);
    /// Prints the bench's targets, one line each; returns those missed.
    fn targets(&self, rows: &[Row]) -> Vec<String>;
    /// Lines printed after the settings at the start (the peers' versions and settings).
    fn preamble(&self) -> Vec<String> {
        Vec::new()
    }
    /// Lines read off the running trunkd after the last phase (its metrics), printed with
    /// the targets.
    fn before_stop(&self) -> Vec<String> {
        Vec::new()
    }
}

/// What a bench's peers know of the phase they are started for.
pub struct PhaseContext<'a> {
    pub sipp: &'a Path,
    pub dir: &'a Path,
    /// `phase1`: a prefix for their files in `dir`.
    pub tag: &'a str,
    pub load: Load,
}

/// A peer process of one phase (a SIPp UAS, a Kamailio).
pub trait Peer {
    /// `UAS`, `carrier`, `callee`: in the report's columns and failures.
    fn label(&self) -> &str;
    /// Its UDP socket on 127.0.0.1, for `/proc/net/udp` drops.
    fn port(&self) -> u16;
    /// Stops it; what it did over its life.
    fn stop(self: Box<Self>) -> PeerRun;
}

/// A peer after its phase.
pub struct PeerRun {
    pub label: String,
    /// Its exit, CPU over its life, and (SIPp) statistics.
    pub run: SippRun,
    /// What the report says about it besides (a peer without SIPp statistics).
    pub notes: Vec<String>,
    pub failures: Vec<String>,
}

/// The peers of one phase, and what went wrong starting them.
#[derive(Default)]
pub struct Peers {
    pub list: Vec<Box<dyn Peer>>,
    pub failures: Vec<String>,
}

impl Peers {
    /// Adds a SIPp UAS running `scenario` on `port` for the whole phase (stopped with
    /// SIGTERM after it), `-recv_timeout 10s`, its statistics in `<tag>-<label>.csv`.
    pub fn sipp_uas(&mut self, phase: &PhaseContext, label: &str, scenario: &str, port: u16) {
        let name = format!("{}-{}", phase.tag, label.to_lowercase());
        let csv = phase.dir.join(format!("{name}.csv"));
        let bound = (phase.load.seconds + UAC_SLACK + 30).to_string() + "s";
        let args = sipp_args(scenario, port, &bound, &csv);
        match SippChild::start(phase.sipp, &args, phase.dir, &name) {
            Ok(child) => {
                if !wait_bound(port, &child) {
                    self.failures
                        .push(format!("the {label} did not bind its port"));
                }
                self.list.push(Box::new(SippUas {
                    label: label.to_owned(),
                    port,
                    child,
                    csv,
                }));
            }
            Err(error) => self
                .failures
                .push(format!("the {label} did not start: {error}")),
        }
    }
}

/// A SIPp UAS of one phase.
struct SippUas {
    label: String,
    port: u16,
    child: SippChild,
    csv: PathBuf,
}

impl Peer for SippUas {
    fn label(&self) -> &str {
        &self.label
    }

    fn port(&self) -> u16 {
        self.port
    }

    fn stop(mut self: Box<Self>) -> PeerRun {
        let (status, cpu) = self.child.stop();
        let run = SippRun {
            status,
            wall: None,
            cpu_ticks: cpu,
            stats: read_stats(&self.csv),
            stderr: self.child.stderr_text(),
        };
        PeerRun {
            failures: sipp_failures(&self.label, &run),
            label: self.label.clone(),
            run,
            notes: Vec::new(),
        }
    }
}

/// The start of trunkd's config in every call load bench: `[daemon]` listening on
/// `udp:127.0.0.1:<ports.trunkd>`, the status line every 60 s, no status file, and
/// `[backend] uri` 127.0.0.1:`backend` (requests from 127.0.0.1, any port, are the
/// backend's). The bench appends its trunk.
pub fn config_head(ports: &Ports, backend: u16) -> String {
    format!(
        "[daemon]\n\
         listen = [\"udp:127.0.0.1:{trunkd}\"]\n\
         status_interval = \"60s\"\n\
         status_file = \"\"\n\
         \n\
         [backend]\n\
         uri = \"sip:127.0.0.1:{backend}\"\n\
         \n",
        trunkd = ports.trunkd,
    )
}

/// What every SIPp of a phase runs with: `scenario` (a file of tests/peers) on
/// 127.0.0.1:`port` over UDP, 4 MiB socket buffers, `-recv_timeout 10s` (a call that
/// loses a message for good fails instead of hanging), `-timeout bound`, and its final
/// statistics in `csv`.
fn sipp_args(scenario: &str, port: u16, bound: &str, csv: &Path) -> Vec<String> {
    let scenario = scenario_path(scenario);
    [
        "-sf",
        scenario.to_str().expect("a UTF-8 path"),
        "-i",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-t",
        "u1",
        "-nostdin",
        "-buff_size",
        SIPP_BUFFER,
        "-recv_timeout",
        "10000",
        "-timeout",
        bound,
        "-trace_stat",
        "-stf",
        csv.to_str().expect("a UTF-8 path"),
        "-fd",
        "1",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// A SIPp that wrote no statistics or exited with a fatal code.
fn sipp_failures(who: &str, run: &SippRun) -> Vec<String> {
    let mut failures = Vec::new();
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
    failures
}

#[derive(Clone, Copy)]
pub struct Load {
    pub rate: u64,
    pub seconds: u64,
}

impl Load {
    pub fn calls(self) -> u64 {
        self.rate * self.seconds
    }
}

/// The settings every call load bench reads, each from `<prefix>_<NAME>`.
pub struct Settings {
    pub phases: Vec<Load>,
    pub reject: Option<Load>,
    pub hold_ms: u64,
    pub cleanup: bool,
    pub idle: Duration,
    pub log: String,
    pub enforce: bool,
    pub attach: Option<String>,
    pub attach_phase: usize,
}

impl Settings {
    /// `<prefix>_PHASES` (default `phases`), `_REJECT` (default `reject`; `0`: none),
    /// `_HOLD_MS`, `_CLEANUP`, `_IDLE`, `_LOG`, `_ENFORCE`, `_ATTACH`, `_ATTACH_PHASE`.
    pub fn from_env(prefix: &str, phases: &str, reject: &str) -> Settings {
        let name = |what: &str| format!("{prefix}_{what}");
        let phases_name = name("PHASES");
        let phases = std::env::var(&phases_name)
            .unwrap_or_else(|_| phases.into())
            .split(',')
            .filter(|part| !part.trim().is_empty())
            .map(|part| parse_load(&phases_name, part))
            .collect::<Vec<_>>();
        assert!(!phases.is_empty(), "{phases_name}: no phase");
        let reject_name = name("REJECT");
        let reject = std::env::var(&reject_name).unwrap_or_else(|_| reject.into());
        let reject = (reject.trim() != "0").then(|| parse_load(&reject_name, &reject));
        Settings {
            phases,
            reject,
            hold_ms: env_number(&name("HOLD_MS"), 0, 0, 60_000),
            cleanup: env_number(&name("CLEANUP"), 1, 0, 1) == 1,
            idle: Duration::from_secs(env_number(&name("IDLE"), 2, 0, 60)),
            log: std::env::var(name("LOG")).unwrap_or_else(|_| "warn".into()),
            enforce: env_number(&name("ENFORCE"), 0, 0, 1) == 1,
            attach: std::env::var(name("ATTACH"))
                .ok()
                .filter(|command| !command.trim().is_empty()),
            attach_phase: env_number(&name("ATTACH_PHASE"), 1, 1, 100) as usize,
        }
    }

    /// An upper bound of the whole bench, for the watchdog.
    fn total_bound(&self) -> Duration {
        let hold = Duration::from_millis(self.hold_ms);
        let per_phase = |load: &Load, cleanup: bool| {
            Duration::from_secs(load.seconds + UAC_SLACK + PEER_SLACK)
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

/// The whole bench: trunkd, the idle measurement, the phases, the report; exits 1 on a
/// failure (and, with `<prefix>_ENFORCE=1`, a missed target), 2 when a binary is missing.
pub fn run(bench: &dyn CallBench, settings: &Settings) {
    let binary = trunkd_binary(bench.builds_it());
    let sipp = sipp_binary();
    let ticks = clock_ticks();
    start_watchdog(settings.total_bound());
    let dir = tempfile::tempdir().expect("a temp dir");

    println!("{}", bench.title());
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
    for line in bench.preamble() {
        println!("  {line}");
    }
    if let Some(attach) = &settings.attach {
        println!(
            "  attached to calls phase {}: {attach} (its figures include the tool)",
            settings.attach_phase
        );
    }
    println!();

    let ports = Ports {
        trunkd: free_udp_port(),
        uac: free_udp_port(),
    };
    let mut daemon = Daemon::start(bench, settings, &binary, dir.path(), &ports);
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
        let mut phases: Vec<(Kind, Load)> = settings
            .phases
            .iter()
            .map(|load| (Kind::Calls, *load))
            .collect();
        phases.extend(settings.reject.map(|load| (Kind::Rejects, load)));
        for (index, (kind, load)) in phases.into_iter().enumerate() {
            let attach = settings
                .attach
                .as_deref()
                .filter(|_| kind == Kind::Calls && index + 1 == settings.attach_phase);
            let phase = Phase {
                kind,
                load,
                number: index + 1,
                attach,
                idle_per_s,
            };
            let row = run_phase(
                bench,
                settings,
                &sipp,
                dir.path(),
                &ports,
                &mut daemon,
                phase,
            );
            eprintln!("{}", row.one_line());
            rows.push(row);
            if daemon.report.failure.is_some() {
                break;
            }
        }
    }
    let notes = bench.before_stop();
    let report = daemon.stop();

    print_report(&rows, &report, idle_per_s, ticks);
    println!();
    println!("Targets (the issue):");
    for note in notes {
        println!("  {note}");
    }
    let missed = bench.targets(&rows);
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
pub enum Kind {
    /// Full calls through trunkd to the peers.
    Calls,
    /// INVITEs refused statelessly and their ACKs.
    Rejects,
}

/// trunkd's and the UAC's ports (the peers' are the bench's).
pub struct Ports {
    pub trunkd: u16,
    pub uac: u16,
}

/// One phase's figures.
pub struct Row {
    pub name: String,
    pub kind: Kind,
    pub load: Load,
    pub uac: SippRun,
    pub peers: Vec<PeerRun>,
    /// trunkd from before the UAC started to its last call's end (+ [`DRAIN`]).
    pub trunkd: Option<Delta>,
    /// trunkd over the linger cleanup wait, if measured.
    pub cleanup: Option<Delta>,
    /// trunkd's CPU per second when idle (subtracted from the cleanup window).
    pub idle_per_s: Option<f64>,
    pub rss_before_kib: Option<u64>,
    pub rss_peak_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    pub rss_cleaned_kib: Option<u64>,
    /// `drops` of trunkd's, the UAC's and each peer's socket during the phase.
    pub drops: Vec<Option<u64>>,
    pub failures: Vec<String>,
}

impl Row {
    /// Calls that count for the per-call figures: the UAC's successful ones.
    pub fn calls(&self) -> u64 {
        self.uac
            .stats
            .as_ref()
            .map_or(0, |s| s.get("SuccessfulCall(C)"))
    }

    pub fn failed(&self) -> Option<u64> {
        self.uac.stats.as_ref().map(|s| s.get("FailedCall(C)"))
    }

    /// trunkd's CPU per successful call, µs (scheduler time).
    pub fn cpu_us(&self) -> Option<f64> {
        per_call(self.trunkd.as_ref()?.cpu_ns, self.calls())
    }

    /// The cleanup window's CPU per call less the idle rate over it, µs.
    pub fn cleanup_us(&self) -> Option<f64> {
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

/// Which phase [`run_phase`] runs.
struct Phase<'a> {
    kind: Kind,
    load: Load,
    /// 1, 2, ...: its files are `phase<number>-*`.
    number: usize,
    /// The profiler command of `<prefix>_ATTACH`, for this phase.
    attach: Option<&'a str>,
    idle_per_s: Option<f64>,
}

fn run_phase(
    bench: &dyn CallBench,
    settings: &Settings,
    sipp: &Path,
    dir: &Path,
    ports: &Ports,
    daemon: &mut Daemon,
    phase: Phase,
) -> Row {
    let Phase {
        kind,
        load,
        number,
        attach,
        idle_per_s,
    } = phase;
    let pid = daemon.child.pid;
    let name = match kind {
        Kind::Calls => format!("calls {}/s", load.rate),
        Kind::Rejects => format!("rejects {}/s", load.rate),
    };
    let tag = format!("phase{number}");
    let Peers {
        list: peers,
        mut failures,
    } = bench.start_peers(
        kind,
        &PhaseContext {
            sipp,
            dir,
            tag: &tag,
            load,
        },
    );

    let peer_ports: Vec<u16> = peers.iter().map(|peer| peer.port()).collect();
    let drops_of = || {
        [ports.trunkd, ports.uac]
            .iter()
            .chain(&peer_ports)
            .map(|port| udp_drops(loopback(*port)))
            .collect::<Vec<_>>()
    };
    let drops_before = drops_of();
    let rss_before_kib = status_field(pid, "VmRSS:");
    let mut rss_peak_kib = rss_before_kib;
    let mut tool = attach.map(|command| Attached::start(command, pid));
    let before = Usage::read(pid);

    let csv = dir.join(format!("{tag}-uac.csv"));
    let (scenario, number_dialled) = bench.uac(kind);
    let calls = load.calls().to_string();
    // Calls open at once: ten seconds' worth, under SIPp's 20,000 open files.
    let limit = (load.rate * 10).clamp(1_000, 15_000).to_string();
    let bound = format!(
        "{}s",
        load.seconds + UAC_SLACK + settings.hold_ms.div_ceil(1000)
    );
    let mut args = sipp_args(scenario, ports.uac, &bound, &csv);
    args.extend(
        [
            "-s",
            number_dialled,
            "-d",
            &settings.hold_ms.to_string(),
            "-r",
            &load.rate.to_string(),
            "-rp",
            "1000",
            "-m",
            &calls,
            "-l",
            &limit,
            "-timeout_error",
            // The remote host goes last.
            &format!("127.0.0.1:{}", ports.trunkd),
        ]
        .map(str::to_owned),
    );
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

    let peers: Vec<PeerRun> = peers.into_iter().map(|peer| peer.stop()).collect();

    let mut cleanup = None;
    let mut rss_cleaned_kib = None;
    if kind == Kind::Calls && settings.cleanup && daemon.alive() {
        std::thread::sleep(CLEANUP_WAIT);
        let cleaned = Usage::read(pid);
        cleanup = Some(cleaned.since(&after));
        rss_cleaned_kib = status_field(pid, "VmRSS:");
    }

    failures.extend(sipp_failures("UAC", &uac));
    for peer in &peers {
        failures.extend(peer.failures.iter().cloned());
    }
    if !daemon.alive() {
        daemon
            .report
            .failure
            .get_or_insert_with(|| "trunkd died during a phase".into());
    }
    let mut drops: Vec<Option<u64>> = drops_before
        .iter()
        .zip(&drops_after)
        .map(|(before, after)| delta(*before, *after))
        .collect();
    // A new socket's counter starts at 0.
    drops[1] = uac_drops;
    Row {
        name,
        kind,
        load,
        uac,
        peers,
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

/// A profiler or tracer attached to trunkd for one phase (`<prefix>_ATTACH`).
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
pub struct Delta {
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
    fn start(
        bench: &dyn CallBench,
        settings: &Settings,
        binary: &Path,
        dir: &Path,
        ports: &Ports,
    ) -> Daemon {
        let mut report = DaemonReport::default();
        let config = dir.join("trunkd.toml");
        std::fs::write(&config, bench.config(ports)).expect("write the config");
        let start = Instant::now();
        let (notify, mut child) = spawn_trunkd(binary, &config, &settings.log, dir);
        let log_reader = read_log(child.child.stderr.take().expect("piped stderr"));
        match wait_ready(&notify, &mut child.child, start, READY_TIMEOUT) {
            Ok(ready) => report.ready = Some(ready),
            Err(failure) => report.failure = Some(failure),
        }
        report.rss_ready_kib = status_field(child.pid, "VmRSS:");
        eprintln!(
            "trunkd: pid {}, udp:127.0.0.1:{}, {}{}",
            child.pid,
            ports.trunkd,
            bench.describe(ports),
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

pub fn delta(before: Option<u64>, after: Option<u64>) -> Option<u64> {
    Some(after?.saturating_sub(before?))
}

pub fn fixed(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.1}"))
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0))
}

/// The peers' labels in the order they first appear: the report's peer columns.
fn peer_labels(rows: &[Row]) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for peer in rows.iter().flat_map(|row| &row.peers) {
        if !labels.contains(&peer.label) {
            labels.push(peer.label.clone());
        }
    }
    labels
}

/// Prints the tables.
fn print_report(rows: &[Row], daemon: &DaemonReport, idle_per_s: Option<f64>, ticks: Ticks) {
    let tick_us = 1e6 / ticks.per_second as f64;
    let labels = peer_labels(rows);
    let peer_columns: String = labels
        .iter()
        .map(|label| format!(" {:>6}", format!("{label} µs")))
        .collect();
    println!(
        "Phases (ok/failed = the UAC's successful/failed calls; cps = ok / the UAC's run time from spawn to exit; trunkd µs = trunkd's CPU per ok call, scheduler time of all its threads from the UAC's start to its last call's end + {} ms; ticks = the same from utime+stime at {tick_us:.0} µs resolution; cleanup = per call over the {} s linger wait, less the idle rate; UAC{} µs = the UAC's{} own CPU per ok call, over its life; ms s/len = mean INVITE → 200 and mean call length at the UAC (SIPp's 1 ms clock); drops = /proc/net/udp drops of trunkd's / the UAC's{} socket)",
        DRAIN.as_millis(),
        CLEANUP_WAIT.as_secs(),
        labels.iter().map(|l| format!("/{l}")).collect::<String>(),
        labels
            .iter()
            .map(|l| format!(", the {l}'s"))
            .collect::<String>(),
        labels
            .iter()
            .map(|l| format!(" / the {l}'s"))
            .collect::<String>(),
    );
    println!(
        "{:<15} {:>6} {:>7} {:>7} {:>6} {:>7} {:>6} {:>8} {:>8} {:>8} {:>6}{peer_columns} {:>6} {:>8} {:>11}",
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
        "trunkd%",
        "ms s/len",
        "drops"
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
        let own_us = |run: Option<&SippRun>| {
            run.and_then(|run| run.cpu_ticks)
                .filter(|_| calls > 0)
                .map(|t| t as f64 * tick_us / calls as f64)
        };
        let peers: String = labels
            .iter()
            .map(|label| {
                let run = row
                    .peers
                    .iter()
                    .find(|peer| &peer.label == label)
                    .map(|peer| &peer.run);
                format!(" {:>width$}", fixed(own_us(run)), width = label.len() + 3)
            })
            .collect();
        let busy = row.trunkd.as_ref().and_then(|d| {
            let wall = d.wall.as_secs_f64();
            d.cpu_ns
                .filter(|_| wall > 0.0)
                .map(|ns| ns as f64 / 1e9 / wall * 100.0)
        });
        let setup = stats.and_then(|s| s.ms("ResponseTime1(C)"));
        let length = stats.and_then(|s| s.ms("CallLength(C)"));
        println!(
            "{:<15} {:>6} {:>7} {:>7} {:>6} {:>7} {:>6} {:>8} {:>8} {:>8} {:>6}{peers} {:>6} {:>8} {:>11}",
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
            fixed(own_us(Some(&row.uac))),
            busy.map_or("-".into(), |b| format!("{b:.0}")),
            match (setup, length) {
                (Some(setup), Some(length)) => format!("{setup:.2}/{length:.0}"),
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
        let mut notes = vec![sipp_note("UAC", &row.uac, &[])];
        for peer in &row.peers {
            notes.push(sipp_note(&peer.label, &peer.run, &peer.notes));
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
}

/// `UAC exit status: 0: created 100 ok 100 ...` for the notes under the tables; a peer
/// without SIPp statistics gives its own `notes` instead.
fn sipp_note(who: &str, run: &SippRun, notes: &[String]) -> String {
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
        .unwrap_or_else(|| {
            if notes.is_empty() {
                "no statistics".into()
            } else {
                notes.join(", ")
            }
        });
    format!(
        "{who} {status}: {extra}{}",
        if causes.is_empty() {
            String::new()
        } else {
            format!(" ({})", causes.join(", "))
        }
    )
}

/// The target every calls phase has: no failed call. Prints its line; the miss, if any.
pub fn no_failed_calls(row: &Row) -> Option<String> {
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
    (!ok).then(|| format!("{}: failed calls", row.name))
}
