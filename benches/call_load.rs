//! Call load: trunkd's CPU per full call, measured on the REAL binary between a SIPp
//! carrier (UAC) and a SIPp backend (UAS) on loopback, as the issue measured it:
//! INVITE/100/180/200/ACK/BYE/200 at a fixed call rate for a bounded number of calls.
//! The targets: at most 60 µs of trunkd CPU per admitted call at 1,500 calls/s
//! with no failed call, and no failed call at 4,000 calls/s offered.
//!
//! Run: `cargo bench --profile release --bench call_load` measures the release binary, as
//! the issue did (plain `cargo bench --bench call_load` rebuilds everything with the bench
//! profile's LTO first). The trunkd it starts is `TRUNKD_BIN`, else the crate's binary of
//! the profile it was built with. Quick run: `TRUNKD_CALL_PHASES=1500x3
//! TRUNKD_CALL_REJECT=0 TRUNKD_CALL_CLEANUP=0` (about 10 s). The machinery below is
//! `benches/common/calls.rs`, shared with `outbound_load.rs`; this file gives it the
//! config, the peers, the UAC's scenarios and the targets.
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
//! - `TRUNKD_CALL_CLUSTER=0`: `1` starts a `redis-server` (`REDIS_SERVER`, or from PATH)
//!   on loopback and gives trunkd a `[cluster]` on it, so every admitted call asks Redis
//!   for its channel (issue 17): compare the CPU per call and the setup time (`setup ms`)
//!   with a run without it; Redis's own CPU per call is printed at the end.

// A benchmark of real processes measures wall time; the virtual-clock rule is for the core.
#![allow(clippy::disallowed_methods)]

#[path = "common/calls.rs"]
mod calls;
#[path = "common/proc.rs"]
mod proc;
#[path = "common/sipp.rs"]
mod sipp;

use calls::{CallBench, Kind, Peers, PhaseContext, Ports, Row, Settings};
use calls::{config_head, fixed, no_failed_calls};
use proc::{ChildGuard, clock_ticks, cpu_ticks, env_number, find_tool};
use sipp::free_udp_port;
use std::cell::Cell;

/// The trunk's number: what the UAC dials.
const DID: &str = "+15550100001";
/// A number no trunk has: the rejects phase's 404.
const WRONG_NUMBER: &str = "+15550100999";
/// The call rate for the CPU target.
const TARGET_RATE: u64 = 1_500;

/// Inbound calls: the SIPp UAC is the carrier, a SIPp UAS the backend.
struct CallLoad {
    /// The backend's (the UAS's) port.
    uas: u16,
    /// `TRUNKD_CALL_TARGET_US`.
    target_us: f64,
    /// `TRUNKD_CALL_CLUSTER=1`: the Redis trunkd's `[cluster]` uses.
    redis: Option<Redis>,
}

/// A loopback port free for TCP (redis-server's, and trunkd's `[metrics]`).
fn free_tcp_port() -> u16 {
    loop {
        let port = free_udp_port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A `redis-server` on loopback, without persistence, for `[cluster]`.
struct Redis {
    guard: ChildGuard,
    port: u16,
    /// trunkd's `[metrics] listen` port, for `trunkd_cluster_claim_seconds`.
    metrics: u16,
    /// Its CPU ticks when the first phase started.
    ticks_at_start: Cell<Option<u64>>,
}

impl Redis {
    fn start() -> Redis {
        let binary = find_tool(
            "REDIS_SERVER",
            "redis-server",
            "apt-get install -y redis-server",
        );
        let port = free_tcp_port();
        let child = std::process::Command::new(binary)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let guard = ChildGuard::new(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not listen"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let metrics = free_tcp_port();
        Redis {
            guard,
            port,
            metrics,
            ticks_at_start: Cell::new(None),
        }
    }
}

impl CallBench for CallLoad {
    fn title(&self) -> &str {
        "trunkd call load benchmark"
    }

    fn builds_it(&self) -> &str {
        "cargo bench --profile release --bench call_load"
    }

    fn config(&self, ports: &Ports) -> String {
        config_head(ports, self.uas)
            + &format!(
                "[trunks.load]\n\
                 # A documentation address: no REGISTER, no keepalive, nothing leaves loopback.\n\
                 domain = \"192.0.2.77\"\n\
                 transport = \"udp\"\n\
                 register = false\n\
                 options_interval = 0\n\
                 allowed_inbound_ips = [\"127.0.0.1\"]\n\
                 numbers = [\"{DID}\"]\n\
                 max_channels = 100000\n"
            )
            + &self.redis.as_ref().map_or(String::new(), |redis| {
                format!(
                    "\n[cluster]\nredis = \"redis://127.0.0.1:{}/0\"\nnode = \"bench\"\n\
                     \n[metrics]\nlisten = \"127.0.0.1:{}\"\n",
                    redis.port, redis.metrics
                )
            })
    }

    fn preamble(&self) -> Vec<String> {
        match &self.redis {
            Some(redis) => vec![format!(
                "[cluster] on redis-server 127.0.0.1:{} (pid {}): each admitted call asks Redis once",
                redis.port, redis.guard.pid
            )],
            None => Vec::new(),
        }
    }

    fn describe(&self, ports: &Ports) -> String {
        format!(
            "backend (SIPp UAS) 127.0.0.1:{}, carrier (SIPp UAC) 127.0.0.1:{}",
            self.uas, ports.uac
        )
    }

    fn start_peers(&self, kind: Kind, phase: &PhaseContext) -> Peers {
        let mut peers = Peers::default();
        if let Some(redis) = &self.redis
            && redis.ticks_at_start.get().is_none()
        {
            redis.ticks_at_start.set(cpu_ticks(redis.guard.pid));
        }
        if kind == Kind::Calls {
            peers.sipp_uas(phase, "UAS", "sipp-backend-load.xml", self.uas);
        }
        peers
    }

    fn uac(&self, kind: Kind) -> (&str, &str) {
        match kind {
            Kind::Calls => ("sipp-carrier-load.xml", DID),
            Kind::Rejects => ("sipp-carrier-rejected.xml", WRONG_NUMBER),
        }
    }

    fn before_stop(&self) -> Vec<String> {
        let Some(redis) = &self.redis else {
            return Vec::new();
        };
        vec![claim_latency(redis.metrics)]
    }

    fn targets(&self, rows: &[Row]) -> Vec<String> {
        if let Some(redis) = &self.redis {
            let calls: u64 = rows
                .iter()
                .filter(|row| row.kind == Kind::Calls)
                .map(Row::calls)
                .sum();
            let ticks = cpu_ticks(redis.guard.pid)
                .zip(redis.ticks_at_start.get())
                .map(|(now, start)| now.saturating_sub(start));
            let us = ticks
                .filter(|_| calls > 0)
                .map(|t| t as f64 * 1e6 / clock_ticks().per_second as f64 / calls as f64);
            println!(
                "  redis-server CPU per admitted call (all phases, clock ticks): {} µs",
                fixed(us)
            );
        }
        let mut missed = Vec::new();
        for row in rows.iter().filter(|row| row.kind == Kind::Calls) {
            missed.extend(no_failed_calls(row));
            if row.load.rate <= TARGET_RATE {
                let cpu = row.cpu_us();
                let ok = cpu.is_some_and(|us| us <= self.target_us);
                println!(
                    "  {}: ≤ {:.0} µs trunkd CPU per call: {} ({} µs)",
                    row.name,
                    self.target_us,
                    if ok { "met" } else { "MISSED" },
                    fixed(cpu)
                );
                if !ok {
                    missed.push(format!(
                        "{}: {} µs per call, above {:.0}",
                        row.name,
                        fixed(cpu),
                        self.target_us
                    ));
                }
            }
        }
        missed
    }
}

/// What `trunkd_cluster_claim_seconds` says of the claims (the latency `[cluster]` adds
/// to an admitted call): the mean, and the bucket holding the median and the 99th
/// percentile.
fn claim_latency(port: u16) -> String {
    use std::io::{Read, Write};
    let mut body = String::new();
    let fetched = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut stream| {
        stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n")?;
        stream.read_to_string(&mut body)
    });
    if let Err(error) = fetched {
        return format!("claim latency: /metrics unreadable ({error})");
    }
    let value = |prefix: &str| -> Vec<(String, f64)> {
        body.lines()
            .filter(|line| line.starts_with(prefix))
            .filter_map(|line| {
                let (name, value) = line.rsplit_once(' ')?;
                Some((name.to_owned(), value.parse().ok()?))
            })
            .collect()
    };
    let sum = value("trunkd_cluster_claim_seconds_sum");
    let count = value("trunkd_cluster_claim_seconds_count");
    let (Some((_, sum)), Some(&(_, count))) = (sum.first(), count.first()) else {
        return "claim latency: no trunkd_cluster_claim_seconds in /metrics".into();
    };
    let buckets: Vec<(String, f64)> = value("trunkd_cluster_claim_seconds_bucket")
        .into_iter()
        .map(|(name, n)| {
            let le = name
                .split("le=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or("?")
                .to_owned();
            (le, n)
        })
        .collect();
    let quantile = |q: f64| {
        buckets
            .iter()
            .find(|(_, n)| *n >= q * count)
            .map_or("?".to_owned(), |(le, _)| format!("≤ {le} s"))
    };
    format!(
        "claim latency (trunkd_cluster_claim_seconds, {count} claims): mean {:.1} µs, median {}, p99 {}",
        sum / count.max(1.0) * 1e6,
        quantile(0.5),
        quantile(0.99)
    )
}

fn main() {
    let settings = Settings::from_env("TRUNKD_CALL", "1500x10,4000x5", "1500x4");
    let bench = CallLoad {
        uas: free_udp_port(),
        target_us: env_number("TRUNKD_CALL_TARGET_US", 60, 1, 100_000) as f64,
        redis: (env_number("TRUNKD_CALL_CLUSTER", 0, 0, 1) == 1).then(Redis::start),
    };
    calls::run(&bench, &settings);
}
