//! What the load benches read from /proc about the process under test: CPU time, memory
//! and UDP socket drops. Shared by `register.rs`, `inbound_load.rs`, `call_load.rs` and
//! `outbound_load.rs`, with the settings, binary lookup and process handling they all make.

#![allow(dead_code, reason = "each bench uses part of it")]

use std::net::{IpAddr, SocketAddr};
use std::process::Command;

#[derive(Clone, Copy)]
pub struct Ticks {
    pub per_second: u64,
    pub measured: bool,
}

pub fn clock_ticks() -> Ticks {
    let measured = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
        .filter(|&ticks| ticks > 0);
    Ticks {
        per_second: measured.unwrap_or(100),
        measured: measured.is_some(),
    }
}

/// utime + stime of the whole process (threads that exited included), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Sum of `se.sum_exec_runtime` (ms, ns precision) over the live threads: finer than
/// clock ticks, but blind to threads that already exited.
pub fn cpu_hires_ms(pid: u32) -> Option<f64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0.0;
    for task in tasks.flatten() {
        let Ok(sched) = std::fs::read_to_string(task.path().join("sched")) else {
            continue;
        };
        total += sched
            .lines()
            .find(|line| line.starts_with("se.sum_exec_runtime"))
            .and_then(|line| line.split(':').nth(1))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
    }
    Some(total)
}

/// A `Name:   value kB` line of /proc/<pid>/status.
pub fn status_kib(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
}

/// /proc/net/udp's local-address form of an IPv4 socket address: `0100007F:13C4`.
pub fn proc_address(address: SocketAddr) -> Option<String> {
    let IpAddr::V4(ip) = address.ip() else {
        return None;
    };
    Some(format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(ip.octets()),
        address.port()
    ))
}

/// The `drops` counter of the UDP socket bound to `address` (/proc/net/udp).
pub fn udp_drops(address: SocketAddr) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    let local = proc_address(address)?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&local.as_str()))
            .then(|| fields.last()?.parse().ok())
            .flatten()
    })
}

/// A field of `/proc/<pid>/status` in kB (or a count, for `Threads:`).
pub fn status_field(pid: u32, name: &str) -> Option<u64> {
    status_kib(
        &std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?,
        name,
    )
}

/// The 1, 5 and 15 minute load averages, for the report: the figures of a busy box are
/// not those of an idle one.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "?".into())
}

/// A bench setting from the environment, within the bench's bounds (a panic otherwise).
pub fn env_number(name: &str, default: u64, min: u64, max: u64) -> u64 {
    let Ok(text) = std::env::var(name) else {
        return default;
    };
    let value: u64 = text
        .trim()
        .replace('_', "")
        .parse()
        .unwrap_or_else(|_| panic!("{name}: {text:?} is not a number"));
    assert!(
        (min..=max).contains(&value),
        "{name}: {value} is outside this bench's bounds {min}-{max}"
    );
    value
}

/// The trunkd binary under test: `TRUNKD_BIN`, else the crate's own. Exits 2 when it is
/// missing, saying which command builds it.
pub fn trunkd_binary(builds_it: &str) -> std::path::PathBuf {
    let path = std::env::var_os("TRUNKD_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_BIN_EXE_trunkd")));
    if !path.is_file() {
        eprintln!(
            "error: the trunkd binary is not at {}.\n\
             `{builds_it}` builds it; or set TRUNKD_BIN=/path/to/trunkd.",
            path.display()
        );
        std::process::exit(2);
    }
    path
}

/// How the process under test ended when the bench stopped it.
#[derive(Default)]
pub struct Terminated {
    /// From SIGTERM to its exit, when it exited by itself.
    pub shutdown: Option<std::time::Duration>,
    /// Its exit status, or what happened instead.
    pub exit: Option<String>,
    /// It had exited before it was asked to: the bench's failure.
    pub early: Option<String>,
}

/// SIGTERM, then waits up to `timeout` before SIGKILL; `stuck` runs first then (to
/// describe the threads of a process that did not stop).
pub fn terminate(
    child: &mut std::process::Child,
    timeout: std::time::Duration,
    stuck: impl FnOnce(),
) -> Terminated {
    let mut terminated = Terminated::default();
    let stop = std::time::Instant::now();
    match child.try_wait() {
        Ok(None) => {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        terminated.shutdown = Some(stop.elapsed());
                        terminated.exit = Some(status.to_string());
                        break;
                    }
                    Ok(None) if stop.elapsed() > timeout => {
                        stuck();
                        let _ = child.kill();
                        let status = child.wait().ok();
                        terminated.exit = status.map(|s| format!("killed after {timeout:?}: {s}"));
                        break;
                    }
                    Ok(None) => std::thread::sleep(std::time::Duration::from_millis(5)),
                    Err(error) => {
                        terminated.exit = Some(format!("wait failed: {error}"));
                        break;
                    }
                }
            }
        }
        Ok(Some(status)) => {
            terminated.exit = Some(format!("had already exited: {status}"));
            terminated.early = Some(format!("trunkd exited during the bench: {status}"));
        }
        Err(error) => terminated.exit = Some(format!("wait failed: {error}")),
    }
    terminated
}

/// What the bench read of trunkd as it stopped it ([`stop_trunkd`]).
#[derive(Default)]
pub struct Stopped {
    pub hwm_kib: Option<u64>,
    pub threads: Option<u64>,
    /// From SIGTERM to its exit, when it exited by itself.
    pub shutdown: Option<std::time::Duration>,
    pub exit: Option<String>,
    /// It had exited before it was asked to, or did not exit 0.
    pub failure: Option<String>,
}

impl Stopped {
    /// `stopped 12 ms after SIGTERM, exit status: 0`, for the report.
    pub fn summary(&self) -> String {
        format!(
            "stopped {} ms after SIGTERM, {}",
            self.shutdown
                .map_or("-".into(), |d| d.as_millis().to_string()),
            self.exit.as_deref().unwrap_or("?")
        )
    }
}

/// Reads trunkd's VmHWM and thread count, then [`terminate`]s it (`stuck` runs if it
/// does not stop within `timeout`).
pub fn stop_trunkd(
    child: &mut ChildGuard,
    timeout: std::time::Duration,
    stuck: impl FnOnce(),
) -> Stopped {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.pid)).unwrap_or_default();
    let terminated = terminate(&mut child.child, timeout, stuck);
    let failure = terminated.early.or_else(|| {
        (terminated.exit.as_deref() != Some("exit status: 0"))
            .then(|| format!("trunkd did not exit 0: {:?}", terminated.exit))
    });
    Stopped {
        hwm_kib: status_kib(&status, "VmHWM:"),
        threads: status_kib(&status, "Threads:"),
        shutdown: terminated.shutdown,
        exit: terminated.exit,
        failure,
    }
}

/// Every child's pid, for the watchdog.
static CHILDREN: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());
/// Every process group of ours (a child that forks workers), for the watchdog.
static GROUPS: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

fn known(list: &'static std::sync::Mutex<Vec<u32>>) -> std::sync::MutexGuard<'static, Vec<u32>> {
    list.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn register_child(pid: u32) {
    known(&CHILDREN).push(pid);
}

pub fn forget_child(pid: u32) {
    known(&CHILDREN).retain(|&known| known != pid);
}

/// A child started in a process group of its own (`process_group(0)`): the watchdog
/// kills the whole group, workers included.
pub fn register_group(pgid: u32) {
    known(&GROUPS).push(pgid);
}

pub fn forget_group(pgid: u32) {
    known(&GROUPS).retain(|&known| known != pgid);
}

/// A child process of the bench (trunkd, SIPp), killed unless it has exited whenever
/// this is dropped, and known to the watchdog meanwhile.
pub struct ChildGuard {
    pub child: std::process::Child,
    pub pid: u32,
}

impl ChildGuard {
    pub fn new(child: std::process::Child) -> ChildGuard {
        let pid = child.id();
        register_child(pid);
        ChildGuard { child, pid }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        forget_child(self.pid);
    }
}

/// Kills every child and exits if the bench outlives its bound.
pub fn start_watchdog(bound: std::time::Duration) {
    std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            std::thread::sleep(bound);
            let pids = known(&CHILDREN).clone();
            let groups = known(&GROUPS).clone();
            let groups = groups.iter().map(|pgid| format!("-{pgid}"));
            for target in pids.iter().map(u32::to_string).chain(groups) {
                let _ = Command::new("kill").args(["-KILL", "--", &target]).status();
            }
            eprintln!("FAILED: the bench ran longer than its bound of {bound:?}; children killed");
            std::process::exit(3);
        })
        .expect("the watchdog thread");
}

/// Starts `trunkd run --config <config>` with `RUST_LOG=<log>`, stderr piped and
/// `NOTIFY_SOCKET` at `<dir>/notify.sock` (bound here, 50 ms read timeout; systemd's own
/// watchdog and credentials variables removed). The child is known to the watchdog.
pub fn spawn_trunkd(
    binary: &std::path::Path,
    config: &std::path::Path,
    log: &str,
    dir: &std::path::Path,
) -> (std::os::unix::net::UnixDatagram, ChildGuard) {
    let notify_path = dir.join("notify.sock");
    let notify =
        std::os::unix::net::UnixDatagram::bind(&notify_path).expect("bind the notify socket");
    notify
        .set_read_timeout(Some(std::time::Duration::from_millis(50)))
        .expect("a read timeout");
    let child = Command::new(binary)
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", log)
        .env("NOTIFY_SOCKET", &notify_path)
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env_remove("CREDENTIALS_DIRECTORY")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
    (notify, ChildGuard::new(child))
}

/// Waits up to `timeout` (from `start`, when trunkd was spawned) for READY=1 on `notify`
/// (config loaded, listeners bound): how long it took, or why it did not come.
pub fn wait_ready(
    notify: &std::os::unix::net::UnixDatagram,
    child: &mut std::process::Child,
    start: std::time::Instant,
    timeout: std::time::Duration,
) -> Result<std::time::Duration, String> {
    let mut buffer = [0u8; 4096];
    loop {
        if start.elapsed() > timeout {
            return Err(format!("no READY=1 within {timeout:?}"));
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("trunkd exited before READY=1: {status}"));
        }
        // The socket's 50 ms read timeout paces the loop.
        if let Ok(length) = notify.recv(&mut buffer)
            && String::from_utf8_lossy(&buffer[..length])
                .lines()
                .any(|line| line == "READY=1")
        {
            return Ok(start.elapsed());
        }
    }
}

/// What the bench read from trunkd's log on stderr.
#[derive(Default, Clone)]
pub struct LogCounts {
    pub lines: u64,
    pub warnings: u64,
    pub errors: u64,
    /// The first few WARN/ERROR lines, to show in the report.
    pub samples: Vec<String>,
}

impl LogCounts {
    /// `log 3 lines, 1 WARN, 0 ERROR, e.g. [...]`, for the report.
    pub fn summary(&self) -> String {
        let samples = if self.samples.is_empty() {
            String::new()
        } else {
            format!(", e.g. {:?}", self.samples)
        };
        format!(
            "log {} lines, {} WARN, {} ERROR{samples}",
            self.lines, self.warnings, self.errors
        )
    }
}

/// Prints each failure as `FAILED: ...` and exits 1 if there is any.
pub fn exit_on_failures(failures: &[String]) {
    if !failures.is_empty() {
        for failure in failures {
            eprintln!("FAILED: {failure}");
        }
        std::process::exit(1);
    }
}

/// A tool the bench runs: `$<env>` if set, else `<name>` in PATH or an sbin directory.
/// Exits 2 when it is missing, saying how to install it (`install`).
pub fn find_tool(env: &str, name: &str, install: &str) -> std::path::PathBuf {
    let found = std::env::var_os(env)
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let path = std::env::var_os("PATH").unwrap_or_default();
            std::env::split_paths(&path)
                .chain(["/usr/sbin", "/usr/local/sbin"].map(std::path::PathBuf::from))
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        });
    match found {
        Some(path) if path.is_file() => path,
        _ => {
            eprintln!("error: {name} is not installed ({install}), or set {env}=/path/to/{name}");
            std::process::exit(2);
        }
    }
}

/// The first line of `<binary> -v` that contains `marker`, for the report.
pub fn tool_version(binary: &std::path::Path, marker: &str) -> String {
    Command::new(binary)
        .arg("-v")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()
        .and_then(|output| {
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .find(|line| line.contains(marker))
                .map(|line| line.trim().to_owned())
        })
        .unwrap_or_else(|| "version unknown".into())
}
