//! What the load benches read from /proc about the process under test: CPU time, memory
//! and UDP socket drops. Shared by `register.rs` and `inbound_load.rs`.

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
