//! SIPp as the load benches run it (`call_load.rs`, `outbound_load.rs`): finding it, its
//! processes (killed on drop, known to the watchdog), the statistics of its `-trace_stat`
//! CSV, and the loopback ports it binds.

#![allow(dead_code, reason = "each bench uses part of it")]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::proc::{ChildGuard, cpu_ticks, find_tool, forget_child, tool_version};

/// SIPp's socket buffers (`-buff_size`; capped by net.core.rmem_max/wmem_max).
pub const SIPP_BUFFER: &str = "4194304";
/// How often a process's state is polled while the bench waits for it to exit.
pub const SAMPLE: Duration = Duration::from_millis(20);

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// A port free on 127.0.0.1 for UDP now (there is a small race until its user binds it).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind(loopback(0))
        .and_then(|socket| socket.local_addr())
        .map(|address| address.port())
        .expect("bind 127.0.0.1:0")
}

pub fn scenario_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers")
        .join(name)
}

/// Waits (≤ 5 s) until SIPp's UDP port is bound: SIPp signals nothing, and a SIP probe
/// would be a call of its own.
pub fn wait_bound(port: u16, child: &SippChild) -> bool {
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

#[derive(Default)]
pub struct SippRun {
    pub status: Option<ExitStatus>,
    /// From spawn to exit (the UAC).
    pub wall: Option<Duration>,
    /// utime+stime read from its zombie, before it was reaped.
    pub cpu_ticks: Option<u64>,
    pub stats: Option<SippStats>,
    pub stderr: String,
}

/// The last line of a `-trace_stat` CSV, by column name.
pub struct SippStats {
    pub fields: HashMap<String, String>,
}

impl SippStats {
    pub fn get(&self, name: &str) -> u64 {
        self.fields
            .get(name)
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0)
    }

    /// A SIPp duration (`HH:MM:SS` or `HH:MM:SS:uuuuuu`) in ms.
    pub fn ms(&self, name: &str) -> Option<f64> {
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
    pub fn failure_causes(&self) -> Vec<String> {
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

pub fn read_stats(csv: &Path) -> Option<SippStats> {
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

/// A SIPp process, killed on drop ([`ChildGuard`]).
pub struct SippChild {
    pub child: ChildGuard,
    pub pid: u32,
    pub stderr: PathBuf,
}

impl SippChild {
    pub fn start(
        sipp: &Path,
        args: &[String],
        dir: &Path,
        tag: &str,
    ) -> std::io::Result<SippChild> {
        let stderr = dir.join(format!("{tag}.stderr"));
        let child = Command::new(sipp)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr)?)
            .spawn()?;
        let child = ChildGuard::new(child);
        Ok(SippChild {
            pid: child.pid,
            child,
            stderr,
        })
    }

    pub fn exited(&self) -> bool {
        process_state(self.pid).is_none_or(|state| state == 'Z')
    }

    /// Waits for the process to exit by itself, calling `tick` every [`SAMPLE`]; its
    /// status and its CPU ticks (read from the zombie).
    pub fn wait_with(&mut self, mut tick: impl FnMut()) -> (Option<ExitStatus>, Option<u64>) {
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
        let status = self.child.child.wait().ok();
        forget_child(self.pid);
        (status, cpu)
    }

    /// SIGTERM (SIPp writes its final statistics), then SIGKILL after 5 s.
    pub fn stop(&mut self) -> (Option<ExitStatus>, Option<u64>) {
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

    pub fn stderr_text(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        // At most the last 2,000 bytes: a failing run can write a lot.
        let start = text.len().saturating_sub(2_000);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        text[start..].to_owned()
    }
}

/// The state letter of `/proc/<pid>/stat` (`R`, `S`, `Z`, ...); `None` once reaped.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

pub fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status();
}

pub fn sipp_binary() -> PathBuf {
    find_tool("SIPP", "sipp", "apt-get install -y sip-tester")
}

pub fn sipp_version(sipp: &Path) -> String {
    tool_version(sipp, "SIPp v")
}
