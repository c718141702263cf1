//! Inbound load: how many INVITEs per second the REAL `trunkd` binary answers over UDP
//! loopback, next to a trivial UDP responder driven by the same sender in the same run,
//! so the ratio between the two does not depend on the machine. The target is a
//! trunkd rate of at least 0.5× the trivial responder's, for the 403 and the 503 path.
//!
//! Run: `cargo bench --bench inbound_load`. Every run is bounded in messages
//! (`TRUNKD_LOAD_N`) and in time (`TRUNKD_LOAD_SECONDS`, plus a 200 ms drain), the whole
//! bench by a watchdog that kills trunkd and exits, and all traffic stays on 127.0.0.0/8
//! (asserted for every address the sender uses).
//!
//! One trunkd process serves the whole bench. `TRUNKD_LOAD_ROUNDS` (default 3) rounds
//! each measure the three phases below in this order, interleaved so that a busy box
//! (other builds, other benches) disturbs all three alike; the summary gives medians, and
//! the ratio of each trunkd run to the baseline of its own round. Every run is a short
//! warm-up (N/10, at most 10,000 messages, at most 3 s, not reported) and then the
//! measured run, each from a fresh sender socket:
//!
//! 1. `baseline`: a thread of this process binds 127.0.0.1:0 (default buffer sizes, as
//!    trunkd's listener has) and answers every datagram with the same fixed bytes: a
//!    347-byte `403 Forbidden` shaped like trunkd's own (346 bytes). It reads nothing:
//!    the physical limit of loopback UDP on this box with this sender.
//! 2. `trunkd 403`: trunkd has `TRUNKD_LOAD_TRUNKS` (default 100) UDP trunks whose
//!    `allowed_inbound_ips` are documentation addresses (198.51.100.x, 100.64.x.0/24) and
//!    whose `domain` is 192.0.2.x (an IP literal, so no DNS; allowed implicitly by
//!    `allow_next_hop`, and not loopback either), with `register = false` and
//!    `options_interval = 0`, so trunkd sends nothing anywhere on its own. The sender, on
//!    127.0.0.1, dials a number of trunk 57: an unknown source, `403 Forbidden` (the
//!    unknown-source warning is logged at most once per 10 s).
//! 3. `trunkd 503`: one more trunk, `busy`, allows 127.0.0.3 with `max_channels = 1`.
//!    Before the run a primer INVITE from 127.0.0.3 is admitted (`100 Trying`) and
//!    forwarded to the `[backend]`, a silent socket of ours on 127.0.0.2 (an ephemeral
//!    port rather than 5080, so concurrent test runs cannot collide) that counts what
//!    reaches it and never answers. The channel stays claimed until the INVITE client
//!    transaction times out (Timer B = 64·T1; `timer_t1 = "2s"` makes that 128 s); a
//!    primer that finds it still claimed is itself refused 503, which is fine. Every
//!    measured INVITE, from 127.0.0.3 for the busy trunk's number, is then refused
//!    `503 Channel Limit Reached`.
//!
//! The sender is one thread with one connected UDP socket (4 MiB buffers, or what
//! `net.core.rmem_max`/`wmem_max` allow) in a closed loop: it keeps at most
//! `TRUNKD_LOAD_WINDOW` requests outstanding, sending while the window has room and
//! otherwise blocking in `recv`, so it measures throughput instead of overflowing socket
//! buffers, and it never spins (on a 2-CPU box a spinning sender would take the
//! responder's CPU). The default window is 64: trunkd's listener, like the baseline's
//! socket, has the default receive buffer (`net.core.rmem_default`, 208 KiB), which holds
//! about 69 of these datagrams on loopback (each is charged ~3 KiB); a larger window
//! only loses its excess in the first burst (256 lost 187 in every run, 128 lost 59)
//! and leaves ~69 outstanding anyway. Each request is a ~740-byte carrier-style INVITE
//! with SDP whose Call-ID, Via branch and From tag carry a 16-hex-digit sequence number,
//! written in place into one reused buffer (no formatting per message). Requests are
//! never retransmitted and 403/503 answers are not ACKed (a scanner does not ACK either;
//! a stateless answer holds no state waiting for one). If nothing comes back for 200 ms
//! with the window full, the outstanding requests are written off (a "stall") and sending
//! resumes; a run with no answer in its first five stalls is aborted (so a trunkd that
//! does not answer costs 1 s per run). Loss = sent − answered.
//!
//! Every answer's status line is parsed and counted per code; every 1024th answer (and the
//! first) must also carry the run's Call-ID prefix. A run fails, and the bench exits 1
//! after printing everything, if it got no answers or any answer other than the expected
//! code (403 for the baseline's fixed bytes and the unknown source, 503 for the busy
//! trunk), in the warm-up or the measured run; so does a trunkd that does not start, dies,
//! or does not exit 0 after SIGTERM.
//!
//! Measured per run: answers per second (answers / first send → last answer), loss,
//! stalls, CPU time per answer of the responder (the baseline thread's
//! `/proc/thread-self/schedstat`; for trunkd the sum over its threads of
//! `se.sum_exec_runtime` in `/proc/<pid>/task/*/sched`, ns resolution, and utime+stime of
//! `/proc/<pid>/stat` in clock ticks as a cross-check), the sender thread's own CPU per
//! message, and the `drops` counters of both sockets in `/proc/net/udp`. trunkd's VmRSS is
//! read at READY=1 and after each run, VmHWM and its thread count at the end.
//!
//! trunkd is started as in `benches/register.rs`: `run --config` on a temp file, with
//! `NOTIFY_SOCKET` pointing at a socket of ours (READY=1: config loaded, listeners bound),
//! `RUST_LOG=warn` (`TRUNKD_LOAD_LOG` overrides) and stderr read by a thread that counts
//! lines, warnings and errors. The listener is `udp:127.0.0.1:0`; its port is read from
//! the log line `listening on udp:127.0.0.1:PORT` when the level shows it (info), and
//! otherwise found in `/proc/net/udp` by the inodes of trunkd's sockets in
//! `/proc/<pid>/fd`. At the end trunkd gets SIGTERM (bounded at 15 s, then SIGKILL); a
//! guard kills it on any early return or panic.
//!
//! The binary is `env!("CARGO_BIN_EXE_trunkd")` (built by cargo with the bench profile
//! for every bench run); `TRUNKD_BIN=/path/to/trunkd` overrides it.
//!
//! Environment:
//! - `TRUNKD_LOAD_N=200000`: measured messages per run (1,000-10,000,000).
//! - `TRUNKD_LOAD_WINDOW=64`: requests outstanding at most (1-65,536).
//! - `TRUNKD_LOAD_SECONDS=20`: time bound of a measured run (1-120).
//! - `TRUNKD_LOAD_ROUNDS=3`: rounds of the three phases (1-10).
//! - `TRUNKD_LOAD_TRUNKS=100`: trunks besides `busy` (60-10,000).
//! - `TRUNKD_LOAD_LOG=warn`: trunkd's `RUST_LOG`.
//! - `TRUNKD_LOAD_ENFORCE=1`: also exit 1 when a median ratio is below the 0.5 target.

// A benchmark of a real process measures wall time; the virtual-clock rule is for the core.
#![allow(clippy::disallowed_methods)]

#[path = "common/proc.rs"]
mod proc;

use proc::wait_ready;
use proc::{ChildGuard, Stopped, exit_on_failures, spawn_trunkd, start_watchdog, stop_trunkd};
use proc::{LogCounts, env_number, load_average, status_field, trunkd_binary};
use proc::{Ticks, clock_ticks, cpu_hires_ms, cpu_ticks, udp_drops};

/// The command that builds the binary this bench runs, for the error when it is missing.
const BUILDS_IT: &str = "cargo bench --bench inbound_load";

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, ErrorKind};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use trunkd::sip::scan::{self, EMPTY_HEADER, MAX_HEADERS, Method};

/// Bound on config load + listener bind (READY=1).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// trunkd bounds its own shutdown at 5 s; after this we SIGKILL it and say so.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// No answer for this long: the outstanding requests are written off (or, once sending is
/// over, the drain ends).
const STALL: Duration = Duration::from_millis(200);
/// A phase whose first this-many stalls brought no answer at all is aborted.
const DEAD_STALLS: u64 = 5;
/// Time bound of a warm-up.
const WARM_UP_LIMIT: Duration = Duration::from_secs(3);
/// Asked-for buffers of the sender's socket (capped by net.core.rmem_max / wmem_max).
const SENDER_BUFFER: usize = 4 << 20;
/// One answer in this many has its Call-ID checked.
const CHECK_EVERY: u64 = 1024;
/// How long the primer waits for its INVITE to reach the backend.
const PRIMER_WAIT: Duration = Duration::from_secs(3);
/// Source of the unknown-source INVITEs (allowed by no trunk) and of the baseline's.
const UNKNOWN_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
/// The silent backend's address.
const BACKEND_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// Source of the INVITEs for the busy trunk, the only address it allows.
const CARRIER_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
/// The trunk whose number the unknown source dials.
const DIALLED_TRUNK: usize = 57;
/// The busy trunk's number.
const BUSY_NUMBER: &str = "+15559990001";
/// The target: trunkd ≥ this × the trivial responder.
const TARGET_RATIO: f64 = 0.5;
/// Placeholder of the sequence number in the INVITE template.
const SEQ_PLACEHOLDER: &str = "################";

struct Settings {
    n: u64,
    window: u64,
    limit: Duration,
    rounds: u64,
    trunks: usize,
    log: String,
    enforce: bool,
}

impl Settings {
    fn from_env() -> Settings {
        Settings {
            n: env_number("TRUNKD_LOAD_N", 200_000, 1_000, 10_000_000),
            window: env_number("TRUNKD_LOAD_WINDOW", 64, 1, 65_536),
            limit: Duration::from_secs(env_number("TRUNKD_LOAD_SECONDS", 20, 1, 120)),
            rounds: env_number("TRUNKD_LOAD_ROUNDS", 3, 1, 10),
            trunks: env_number("TRUNKD_LOAD_TRUNKS", 100, 60, 10_000) as usize,
            log: std::env::var("TRUNKD_LOAD_LOG").unwrap_or_else(|_| "warn".into()),
            enforce: std::env::var("TRUNKD_LOAD_ENFORCE").is_ok_and(|v| v == "1"),
        }
    }

    fn warm_up(&self) -> u64 {
        (self.n / 10).min(10_000)
    }

    /// An upper bound of the whole bench, for the watchdog.
    fn total_bound(&self) -> Duration {
        let run = self.limit + WARM_UP_LIMIT + 4 * STALL + Duration::from_secs(2);
        let round = 3 * run + PRIMER_WAIT;
        round * self.rounds as u32 + READY_TIMEOUT + STOP_TIMEOUT + Duration::from_secs(30)
    }
}

fn main() {
    let settings = Settings::from_env();
    let binary = trunkd_binary(BUILDS_IT);
    let ticks = clock_ticks();
    start_watchdog(settings.total_bound());

    println!("trunkd inbound load benchmark");
    println!("  binary: {}", binary.display());
    println!(
        "  machine: {} CPUs; load average at start: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    println!(
        "  {} rounds of baseline / trunkd 403 / trunkd 503; N = {} measured messages per run (+ {} warm-up), window {}, bound {:?} per run; {} trunks + busy; RUST_LOG={}",
        settings.rounds,
        settings.n,
        settings.warm_up(),
        settings.window,
        settings.limit,
        settings.trunks,
        settings.log
    );
    let sample = Invite::new("sample", "+15550000114", UNKNOWN_SOURCE, 5060, 5060);
    println!(
        "  INVITE {} bytes; baseline answer {} bytes; clock ticks {}/s{}",
        sample.bytes.len(),
        baseline_answer("sample").len(),
        ticks.per_second,
        if ticks.measured {
            ""
        } else {
            " (getconf failed: ASSUMED)"
        }
    );
    println!();

    let backend = Backend::start();
    let mut daemon = Daemon::start(&settings, &binary, backend.address.port());
    let mut rows: Vec<Row> = Vec::new();
    for round in 1..=settings.rounds {
        let mut record = |row: Row| {
            eprintln!("round {round} {}: {}", row.name, row.one_line());
            rows.push(row);
        };
        record(baseline(&settings, round));
        let Some(port) = daemon.report.port else {
            break;
        };
        let target = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        let number = trunk_number(DIALLED_TRUNK, 0);
        let pid = daemon.child.pid;
        record(trunkd_run(
            &settings,
            round,
            403,
            target,
            UNKNOWN_SOURCE,
            &number,
            pid,
        ));
        let primer = prime(target, &backend);
        eprintln!("round {round} primer: {primer}");
        daemon.report.primers.push(primer);
        record(trunkd_run(
            &settings,
            round,
            503,
            target,
            CARRIER_SOURCE,
            BUSY_NUMBER,
            pid,
        ));
    }
    let mut report = daemon.stop();
    let (datagrams, first) = backend.stop();
    report.backend_datagrams = datagrams;
    report.backend_first = first;

    let below = print_report(&rows, &report, ticks);
    println!();
    println!("load average at end: {}", load_average());

    let mut failures: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            let failure = row.failure.as_ref()?;
            Some(format!("round {} {}: {failure}", row.round, row.name))
        })
        .collect();
    failures.extend(report.failure.iter().map(|f| format!("trunkd: {f}")));
    if settings.enforce {
        failures.extend(below);
    }
    exit_on_failures(&failures);
}

// ---------------------------------------------------------------------------------------
// The sender
// ---------------------------------------------------------------------------------------

/// A carrier-style INVITE with SDP; the sequence number is written in place.
struct Invite {
    bytes: Vec<u8>,
    /// Offsets of the [`SEQ_PLACEHOLDER`]s (Via branch, From tag, Call-ID).
    slots: Vec<usize>,
    /// What every answer's Call-ID starts with.
    call_id_prefix: String,
}

impl Invite {
    fn new(tag: &str, number: &str, source: Ipv4Addr, source_port: u16, port: u16) -> Invite {
        const SDP: &str = "v=0\r\n\
            o=CarrierSBC 1718293 1718293 IN IP4 198.51.100.50\r\n\
            s=-\r\n\
            c=IN IP4 198.51.100.51\r\n\
            t=0 0\r\n\
            m=audio 31452 RTP/AVP 8 0 101\r\n\
            a=rtpmap:8 PCMA/8000\r\n\
            a=rtpmap:0 PCMU/8000\r\n\
            a=rtpmap:101 telephone-event/8000\r\n\
            a=fmtp:101 0-15\r\n\
            a=sendrecv\r\n";
        let call_id_prefix = format!("{tag}-");
        let mut text = String::with_capacity(1024);
        let _ = write!(
            text,
            "INVITE sip:{number}@127.0.0.1:{port};user=phone SIP/2.0\r\n\
             Via: SIP/2.0/UDP {source}:{source_port};branch=z9hG4bK-{SEQ_PLACEHOLDER};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:+4915112345678@{source};user=phone>;tag=f{SEQ_PLACEHOLDER}\r\n\
             To: <sip:{number}@127.0.0.1;user=phone>\r\n\
             Call-ID: {call_id_prefix}{SEQ_PLACEHOLDER}@{source}\r\n\
             CSeq: 102 INVITE\r\n\
             Contact: <sip:+4915112345678@{source}:{source_port};transport=udp>\r\n\
             Allow: INVITE, ACK, BYE, CANCEL, OPTIONS\r\n\
             User-Agent: trunkd-inbound-load\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\
             \r\n\
             {SDP}",
            SDP.len()
        );
        let slots = text
            .match_indices(SEQ_PLACEHOLDER)
            .map(|(at, _)| at)
            .collect();
        let mut invite = Invite {
            bytes: text.into_bytes(),
            slots,
            call_id_prefix,
        };
        invite.set_sequence(0);
        invite
    }

    fn set_sequence(&mut self, sequence: u64) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for &slot in &self.slots {
            for (i, byte) in self.bytes[slot..slot + 16].iter_mut().enumerate() {
                *byte = HEX[((sequence >> (60 - 4 * i)) & 0xf) as usize];
            }
        }
    }

    /// Panics unless trunkd's own scanner reads it as the INVITE we mean.
    fn self_check(&self) {
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        let message = scan::scan(&self.bytes, &mut headers).expect("the INVITE scans");
        assert_eq!(message.method(), Some(Method::Invite));
        assert_eq!(message.message_len(), self.bytes.len(), "Content-Length");
        assert!(message.top_via().expect("Via").branch.is_some(), "branch");
        assert!(message.contact().expect("Contact").is_some(), "Contact");
        let call_id = message.call_id().expect("Call-ID");
        assert!(call_id.starts_with(self.call_id_prefix.as_bytes()));
        assert_eq!(self.slots.len(), 3, "sequence slots");
    }
}

/// One closed-loop run against `target`.
#[derive(Default, Clone)]
struct Load {
    sent: u64,
    answers: u64,
    /// Answers per status code (index = code; 0 = no status line).
    codes: Vec<u64>,
    checked: u64,
    foreign: u64,
    stalls: u64,
    written_off: u64,
    send_errors: u64,
    receive_errors: u64,
    last_error: Option<String>,
    /// First send → last answer.
    elapsed: Duration,
    time_limited: bool,
    aborted: bool,
    sender_cpu_ns: Option<u64>,
    sender_rcvbuf: usize,
    sender_drops: Option<u64>,
    /// Size of the first answer.
    answer_bytes: usize,
}

impl Load {
    fn rate(&self) -> f64 {
        if self.elapsed.is_zero() {
            0.0
        } else {
            self.answers as f64 / self.elapsed.as_secs_f64()
        }
    }

    fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.answers)
    }

    fn code_summary(&self) -> String {
        let parts: Vec<String> = self
            .codes
            .iter()
            .enumerate()
            .filter(|&(_, &count)| count > 0)
            .map(|(code, count)| {
                if code == 0 {
                    format!("unparsable:{count}")
                } else {
                    format!("{code}:{count}")
                }
            })
            .collect();
        if parts.is_empty() {
            "-".into()
        } else {
            parts.join(" ")
        }
    }

    /// A description of what is wrong with the answers, if anything.
    fn verify(&self, expected: u16) -> Option<String> {
        if self.aborted {
            return Some(format!(
                "no answer at all in {} ms ({} sent){}",
                (STALL * DEAD_STALLS as u32).as_millis(),
                self.sent,
                self.last_error
                    .as_ref()
                    .map(|e| format!("; last error: {e}"))
                    .unwrap_or_default()
            ));
        }
        if self.answers == 0 {
            return Some(format!("no answers ({} sent)", self.sent));
        }
        let right = self.codes[usize::from(expected)];
        if right != self.answers {
            return Some(format!(
                "expected only {expected}, got {} ({} of {} answers were {expected})",
                self.code_summary(),
                right,
                self.answers
            ));
        }
        if self.foreign > 0 {
            return Some(format!(
                "{} of {} checked answers carry another Call-ID",
                self.foreign, self.checked
            ));
        }
        None
    }
}

fn sender_socket(source: Ipv4Addr, target: SocketAddr) -> (UdpSocket, usize) {
    assert_loopback(IpAddr::V4(source));
    assert_loopback(target.ip());
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .expect("a UDP socket");
    let _ = socket.set_recv_buffer_size(SENDER_BUFFER);
    let _ = socket.set_send_buffer_size(SENDER_BUFFER);
    let local = SocketAddr::new(IpAddr::V4(source), 0);
    socket
        .bind(&local.into())
        .unwrap_or_else(|error| panic!("bind the sender to {local}: {error}"));
    // Linux reports twice the usable size it granted.
    let rcvbuf = socket.recv_buffer_size().unwrap_or(0);
    let socket: UdpSocket = socket.into();
    // Connected: only the target's answers arrive, and ICMP errors surface.
    socket.connect(target).expect("connect the sender");
    socket.set_read_timeout(Some(STALL)).unwrap();
    (socket, rcvbuf)
}

/// Sends `n` INVITEs (at most `window` outstanding, stopping at `limit`) from `source`
/// to `target` and counts the answers.
fn drive(
    target: SocketAddr,
    source: Ipv4Addr,
    tag: &str,
    number: &str,
    n: u64,
    window: u64,
    limit: Duration,
) -> Load {
    let (socket, rcvbuf) = sender_socket(source, target);
    let local = socket.local_addr().expect("the sender's address");
    let mut invite = Invite::new(tag, number, source, local.port(), target.port());
    invite.self_check();
    let prefix = invite.call_id_prefix.clone();
    let mut load = Load {
        codes: vec![0; 700],
        sender_rcvbuf: rcvbuf,
        ..Load::default()
    };
    let mut buffer = vec![0u8; 65_535];
    let cpu_start = thread_cpu_ns();
    let start = Instant::now();
    let deadline = start + limit;
    let mut last_answer = start;
    let outstanding = |load: &Load| load.sent.saturating_sub(load.answers + load.written_off);
    loop {
        let sending = load.sent < n && !load.time_limited;
        if sending {
            while load.sent < n && outstanding(&load) < window {
                invite.set_sequence(load.sent);
                match socket.send(&invite.bytes) {
                    Ok(_) => {}
                    Err(error) => {
                        load.send_errors += 1;
                        load.last_error = Some(format!("send: {error}"));
                    }
                }
                // A failed send is a lost request: counted as sent.
                load.sent += 1;
                if load.sent.is_multiple_of(64) && Instant::now() >= deadline {
                    load.time_limited = true;
                    break;
                }
            }
            if Instant::now() >= deadline {
                load.time_limited = true;
            }
        } else if outstanding(&load) == 0 {
            break;
        }
        match socket.recv(&mut buffer) {
            Ok(length) => {
                let answer = &buffer[..length];
                load.answers += 1;
                last_answer = Instant::now();
                if load.answers == 1 {
                    load.answer_bytes = length;
                }
                load.codes[status_code(answer).map_or(0, usize::from)] += 1;
                if load.answers % CHECK_EVERY == 1 {
                    load.checked += 1;
                    if memchr::memmem::find(answer, prefix.as_bytes()).is_none() {
                        load.foreign += 1;
                    }
                }
            }
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if !sending {
                    break; // the drain is over: the rest is lost
                }
                load.stalls += 1;
                load.written_off += outstanding(&load);
                if load.answers == 0 && load.stalls >= DEAD_STALLS {
                    load.aborted = true;
                    break;
                }
            }
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => {
                // ECONNREFUSED: an ICMP port unreachable, nobody listens (any more).
                load.receive_errors += 1;
                load.last_error = Some(format!("receive: {error}"));
                if load.answers == 0 && load.receive_errors >= 100 {
                    load.aborted = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    load.elapsed = last_answer.duration_since(start);
    load.sender_cpu_ns = match (cpu_start, thread_cpu_ns()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    load.sender_drops = udp_drops(local);
    load
}

/// The code of a `SIP/2.0 NNN ...` status line.
fn status_code(answer: &[u8]) -> Option<u16> {
    let rest = answer.strip_prefix(b"SIP/2.0 ")?;
    let digits = rest.get(..3)?;
    if rest.get(3) != Some(&b' ') || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u16, |n, d| n * 10 + u16::from(d - b'0')),
    )
}

// ---------------------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------------------

/// One line of the report: one measured run.
#[derive(Default)]
struct Row {
    name: &'static str,
    round: u64,
    load: Load,
    /// The responder's CPU over the measured run, ns (high resolution).
    responder_cpu_ns: Option<u64>,
    /// The same in clock ticks (trunkd only).
    responder_ticks: Option<u64>,
    /// /proc/net/udp drops of the responder's socket during the measured run.
    responder_drops: Option<u64>,
    rss_after_kib: Option<u64>,
    failure: Option<String>,
}

impl Row {
    fn one_line(&self) -> String {
        format!(
            "{:.0} answers/s, {} sent, {} answered ({}), {} stalls{}",
            self.load.rate(),
            self.load.sent,
            self.load.answers,
            self.load.code_summary(),
            self.load.stalls,
            self.failure
                .as_ref()
                .map(|f| format!(" — FAILED: {f}"))
                .unwrap_or_default()
        )
    }
}

/// The trivial responder: a warm-up and a measured run, each against a fresh thread.
fn baseline(settings: &Settings, round: u64) -> Row {
    let tag = format!("lb-base{round}-{}", std::process::id());
    let warm = Responder::start(&format!("{tag}w"));
    let warm_load = drive(
        warm.address,
        UNKNOWN_SOURCE,
        &format!("{tag}w"),
        "+15550000114",
        settings.warm_up(),
        settings.window,
        WARM_UP_LIMIT,
    );
    let _ = warm.stop();
    let responder = Responder::start(&tag);
    let drops_before = udp_drops(responder.address);
    let load = drive(
        responder.address,
        UNKNOWN_SOURCE,
        &tag,
        "+15550000114",
        settings.n,
        settings.window,
        settings.limit,
    );
    let drops_after = udp_drops(responder.address);
    let stats = responder.stop();
    let failure = warm_load
        .verify(403)
        .map(|f| format!("warm-up: {f}"))
        .or_else(|| load.verify(403))
        .or_else(|| stats.panicked.then(|| "the responder panicked".into()));
    Row {
        name: "baseline",
        round,
        load,
        responder_cpu_ns: stats.cpu_ns,
        responder_ticks: None,
        responder_drops: delta(drops_before, drops_after),
        rss_after_kib: None,
        failure,
    }
}

/// What the report says about the trunkd process.
#[derive(Default)]
struct DaemonReport {
    port: Option<u16>,
    port_from: &'static str,
    ready: Option<Duration>,
    rss_ready_kib: Option<u64>,
    primers: Vec<String>,
    backend_datagrams: u64,
    backend_first: Option<String>,
    /// VmHWM, threads, shutdown time and exit status at the end.
    stopped: Stopped,
    log: LogCounts,
    failure: Option<String>,
}

/// The running trunkd; [`ChildGuard`] kills it if this is dropped without `stop`.
struct Daemon {
    child: ChildGuard,
    log_reader: JoinHandle<LogCounts>,
    report: DaemonReport,
    /// Open until trunkd is gone: it also sends STATUS= and STOPPING=1.
    _notify: UnixDatagram,
    /// Holds the config and the notify socket's path until trunkd is gone.
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts trunkd and waits for READY=1 and its port; on failure `report.port` is
    /// `None` and `report.failure` says why.
    fn start(settings: &Settings, binary: &Path, backend_port: u16) -> Daemon {
        let mut report = DaemonReport::default();
        let dir = tempfile::tempdir().expect("a temp dir");
        let config = write_config(dir.path(), settings.trunks, backend_port);
        let start = Instant::now();
        let (notify, mut child) = spawn_trunkd(binary, &config, &settings.log, dir.path());
        let pid = child.pid;
        let listening = Arc::new(Mutex::new(None));
        let log_reader = read_log(
            child.child.stderr.take().expect("piped stderr"),
            Arc::clone(&listening),
        );

        match wait_ready(&notify, &mut child.child, start, READY_TIMEOUT) {
            Ok(ready) => report.ready = Some(ready),
            Err(failure) => report.failure = Some(failure),
        }
        if report.failure.is_none() {
            // The info line, if the level shows it, is written before READY=1.
            std::thread::sleep(Duration::from_millis(50));
            let logged = *listening.lock().unwrap_or_else(PoisonError::into_inner);
            let ports = loopback_udp_ports(pid);
            match (logged, ports.as_slice()) {
                (Some(port), _) => {
                    report.port = Some(port);
                    report.port_from = "log line";
                }
                (None, [port]) => {
                    report.port = Some(*port);
                    report.port_from = "socket inode in /proc/net/udp";
                }
                (None, ports) => {
                    report.failure = Some(format!(
                        "cannot tell trunkd's UDP port: no log line, 127.0.0.1 sockets {ports:?}"
                    ));
                }
            }
            report.rss_ready_kib = status_field(pid, "VmRSS:");
        }
        eprintln!(
            "trunkd: pid {pid}, port {} ({}){}",
            report.port.map_or("?".into(), |p| p.to_string()),
            report.port_from,
            report
                .failure
                .as_ref()
                .map(|f| format!(" — FAILED: {f}"))
                .unwrap_or_default()
        );
        Daemon {
            child,
            log_reader,
            report,
            _notify: notify,
            _dir: dir,
        }
    }

    /// SIGTERM, bounded by [`STOP_TIMEOUT`], then SIGKILL.
    fn stop(mut self) -> DaemonReport {
        let mut report = std::mem::take(&mut self.report);
        let stopped = stop_trunkd(&mut self.child, STOP_TIMEOUT, || {});
        drop(self.child);
        report.log = self.log_reader.join().unwrap_or_default();
        if report.failure.is_none() {
            report.failure = stopped.failure.clone();
        }
        report.stopped = stopped;
        report
    }
}

/// A warm-up and a measured run against trunkd, with its CPU, RSS and socket drops.
fn trunkd_run(
    settings: &Settings,
    round: u64,
    expected: u16,
    target: SocketAddr,
    source: Ipv4Addr,
    number: &str,
    pid: u32,
) -> Row {
    let name = if expected == 403 {
        "trunkd 403"
    } else {
        "trunkd 503"
    };
    let tag = format!("lb{expected}r{round}-{}", std::process::id());
    let warm = drive(
        target,
        source,
        &format!("{tag}w"),
        number,
        settings.warm_up(),
        settings.window,
        WARM_UP_LIMIT,
    );
    let warm_failure = warm.verify(expected);
    // No point measuring a path that does not answer (the warm-up gives up after 1 s).
    if warm.aborted || warm.answers == 0 {
        return Row {
            name,
            round,
            load: warm,
            failure: warm_failure.map(|f| format!("warm-up: {f}")),
            ..Row::default()
        };
    }
    let drops_before = udp_drops(target);
    let hires_before = cpu_hires_ms(pid).map(|ms| (ms * 1e6) as u64);
    let ticks_before = cpu_ticks(pid);
    let load = drive(
        target,
        source,
        &tag,
        number,
        settings.n,
        settings.window,
        settings.limit,
    );
    let hires_after = cpu_hires_ms(pid).map(|ms| (ms * 1e6) as u64);
    let ticks_after = cpu_ticks(pid);
    let drops_after = udp_drops(target);
    let failure = warm_failure
        .map(|f| format!("warm-up: {f}"))
        .or_else(|| load.verify(expected));
    Row {
        name,
        round,
        load,
        responder_cpu_ns: delta(hires_before, hires_after),
        responder_ticks: delta(ticks_before, ticks_after),
        responder_drops: delta(drops_before, drops_after),
        rss_after_kib: status_field(pid, "VmRSS:"),
        failure,
    }
}

/// Makes sure the busy trunk's only channel is claimed: one INVITE that trunkd admits
/// and forwards to the silent backend (answered 100), or, when an earlier primer still
/// holds it, refuses (503). Says what happened.
fn prime(target: SocketAddr, backend: &Backend) -> String {
    let (socket, _) = sender_socket(CARRIER_SOURCE, target);
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let local = socket.local_addr().unwrap();
    let invite = Invite::new(
        &format!("lbprime{}-{}", local.port(), std::process::id()),
        BUSY_NUMBER,
        CARRIER_SOURCE,
        local.port(),
        target.port(),
    );
    invite.self_check();
    let before = backend.datagrams.load(Ordering::SeqCst);
    let start = Instant::now();
    socket.send(&invite.bytes).expect("send the primer");
    let mut codes = Vec::new();
    let mut buffer = vec![0u8; 65_535];
    let mut reached = None;
    // Until the backend sees it (plus 200 ms for answers) or a final answer came.
    while start.elapsed() < PRIMER_WAIT
        && reached.is_none_or(|at: Duration| start.elapsed() < at + Duration::from_millis(200))
        && !codes.iter().any(|&code| code >= 200)
    {
        if reached.is_none() && backend.datagrams.load(Ordering::SeqCst) > before {
            reached = Some(start.elapsed());
        }
        if let Ok(length) = socket.recv(&mut buffer) {
            codes.push(status_code(&buffer[..length]).unwrap_or(0));
        }
    }
    let answers = if codes.is_empty() {
        "no answer".into()
    } else {
        let codes: Vec<String> = codes.iter().map(u16::to_string).collect();
        format!("answered {}", codes.join(", "))
    };
    match reached {
        Some(at) => format!(
            "{answers}; forwarded to the backend after {:.1} ms: channel claimed",
            at.as_secs_f64() * 1e3
        ),
        None if codes.contains(&503) => format!("{answers}: the channel is still claimed"),
        None => format!("{answers}; NOT forwarded to the backend within {PRIMER_WAIT:?}"),
    }
}

fn delta(before: Option<u64>, after: Option<u64>) -> Option<u64> {
    Some(after?.saturating_sub(before?))
}

// ---------------------------------------------------------------------------------------
// The trivial responder and the silent backend
// ---------------------------------------------------------------------------------------

/// A 403 shaped like trunkd's answer to our INVITE (the Call-ID carries `tag`).
fn baseline_answer(tag: &str) -> Vec<u8> {
    format!(
        "SIP/2.0 403 Forbidden\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-0000000000000000;rport=40000;received=127.0.0.1\r\n\
         From: <sip:+4915112345678@127.0.0.1;user=phone>;tag=f0000000000000000\r\n\
         To: <sip:+15550000114@127.0.0.1;user=phone>;tag=0123456789abcdef\r\n\
         Call-ID: {tag}-0000000000000000@127.0.0.1\r\n\
         CSeq: 102 INVITE\r\n\
         Content-Length: 0\r\n\
         \r\n"
    )
    .into_bytes()
}

struct Responder {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Option<u64>>,
}

struct ResponderStats {
    cpu_ns: Option<u64>,
    panicked: bool,
}

impl Responder {
    fn start(tag: &str) -> Responder {
        // Default buffer sizes, as trunkd's listener has.
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the responder");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let address = socket.local_addr().unwrap();
        let answer = baseline_answer(tag);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("responder".into())
                .spawn(move || {
                    let start = thread_cpu_ns();
                    let mut buffer = vec![0u8; 65_535];
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok((_, source)) = socket.recv_from(&mut buffer) {
                            let _ = socket.send_to(&answer, source);
                        }
                    }
                    Some(thread_cpu_ns()?.saturating_sub(start?))
                })
                .expect("the responder thread")
        };
        Responder {
            address,
            stop,
            thread,
        }
    }

    fn stop(self) -> ResponderStats {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.join() {
            Ok(cpu_ns) => ResponderStats {
                cpu_ns,
                panicked: false,
            },
            Err(_) => ResponderStats {
                cpu_ns: None,
                panicked: true,
            },
        }
    }
}

/// The `[backend]`: receives, counts, never answers.
struct Backend {
    address: SocketAddr,
    datagrams: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Option<String>>,
}

impl Backend {
    fn start() -> Backend {
        let socket = UdpSocket::bind((BACKEND_IP, 0)).expect("bind the backend on 127.0.0.2");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let address = socket.local_addr().unwrap();
        let datagrams = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let datagrams = Arc::clone(&datagrams);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("backend".into())
                .spawn(move || {
                    let mut first = None;
                    let mut buffer = vec![0u8; 65_535];
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok(length) = socket.recv(&mut buffer) {
                            datagrams.fetch_add(1, Ordering::SeqCst);
                            first.get_or_insert_with(|| {
                                let text = String::from_utf8_lossy(&buffer[..length]);
                                text.lines().next().unwrap_or("").to_owned()
                            });
                        }
                    }
                    first
                })
                .expect("the backend thread")
        };
        Backend {
            address,
            datagrams,
            stop,
            thread,
        }
    }

    fn stop(self) -> (u64, Option<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let first = self.thread.join().ok().flatten();
        (self.datagrams.load(Ordering::SeqCst), first)
    }
}

// ---------------------------------------------------------------------------------------
// trunkd: config, process, log
// ---------------------------------------------------------------------------------------

/// Trunk `index`'s numbers (two each, +1555 and seven digits).
fn trunk_number(index: usize, which: usize) -> String {
    format!("+1555{:07}", 2 * index + which)
}

fn write_config(dir: &Path, trunks: usize, backend_port: u16) -> PathBuf {
    let mut text = String::with_capacity(400 * trunks + 1024);
    let _ = write!(
        text,
        "[daemon]\n\
         listen = [\"udp:127.0.0.1:0\"]\n\
         status_interval = \"1h\"\n\
         status_file = \"status.json\"\n\
         on_unknown_source = \"reject\"\n\
         # 64·T1 = 128 s: the primer's INVITE holds the busy trunk's channel past any phase.\n\
         timer_t1 = \"2s\"\n\
         \n\
         [backend]\n\
         uri = \"sip:{BACKEND_IP}:{backend_port}\"\n"
    );
    for index in 0..trunks {
        // Documentation addresses only: no trunk allows any of 127.0.0.0/8.
        let _ = write!(
            text,
            "\n[trunks.carrier-{index:04}]\n\
             domain = \"192.0.2.{domain}\"\n\
             port = 5060\n\
             transport = \"udp\"\n\
             direction = \"both\"\n\
             register = false\n\
             options_interval = 0\n\
             inbound_auth = \"ip\"\n\
             allowed_inbound_ips = [\"198.51.100.{host}\", \"100.64.{net}.0/24\"]\n\
             numbers = [\"{first}\", \"{second}\"]\n\
             country = \"US\"\n\
             max_channels = 30\n",
            domain = 1 + index % 254,
            host = 1 + index % 254,
            net = index % 256,
            first = trunk_number(index, 0),
            second = trunk_number(index, 1),
        );
    }
    let _ = write!(
        text,
        "\n[trunks.busy]\n\
         domain = \"203.0.113.7\"\n\
         port = 5060\n\
         transport = \"udp\"\n\
         direction = \"inbound\"\n\
         register = false\n\
         options_interval = 0\n\
         inbound_auth = \"ip\"\n\
         allowed_inbound_ips = [\"{CARRIER_SOURCE}\"]\n\
         numbers = [\"{BUSY_NUMBER}\"]\n\
         country = \"US\"\n\
         max_channels = 1\n"
    );
    let path = dir.join("trunkd.toml");
    std::fs::write(&path, text).expect("write the config");
    path
}

fn read_log(
    stderr: std::process::ChildStderr,
    listening: Arc<Mutex<Option<u16>>>,
) -> JoinHandle<LogCounts> {
    std::thread::spawn(move || {
        let mut counts = LogCounts::default();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            counts.lines += 1;
            let warning = line.contains(" WARN ");
            let error = line.contains(" ERROR ");
            counts.warnings += u64::from(warning);
            counts.errors += u64::from(error);
            if let Some((_, rest)) = line.split_once("listening on udp:127.0.0.1:")
                && let Ok(port) = rest.trim().parse::<u16>()
            {
                let mut slot = listening.lock().unwrap_or_else(PoisonError::into_inner);
                slot.get_or_insert(port);
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

/// The calling thread's time on CPU, ns (first field of /proc/thread-self/schedstat).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Ports of the process's UDP sockets bound to 127.0.0.1, by socket inode.
fn loopback_udp_ports(pid: u32) -> Vec<u16> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let inodes: HashSet<String> = fds
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (ip, port) = fields.get(1)?.split_once(':')?;
            (ip == "0100007F" && inodes.contains(*fields.get(9)?))
                .then(|| u16::from_str_radix(port, 16).ok())
                .flatten()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Setup and report
// ---------------------------------------------------------------------------------------

fn assert_loopback(ip: IpAddr) {
    assert!(
        ip.is_loopback(),
        "{ip} is not loopback: this bench stays on 127.0.0.0/8"
    );
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    })
}

/// Prints the tables; returns the ratios below the target, as failure texts.
fn print_report(rows: &[Row], daemon: &DaemonReport, ticks: Ticks) -> Vec<String> {
    let tick_us = 1e6 / ticks.per_second as f64;
    let per_answer = |ns: Option<u64>, count: u64| match ns {
        Some(ns) if count > 0 => Some(ns as f64 / 1e3 / count as f64),
        _ => None,
    };
    println!(
        "Runs (answers/s = answers / first send → last answer; CPU µs = the responder's CPU per answer, the baseline thread or all of trunkd: hr = scheduler time at ns resolution, ticks = utime+stime at {tick_us:.0} µs resolution; snd µs = the sender thread's CPU per message; drops r/s = /proc/net/udp drops of the responder's / sender's socket; RSS = trunkd's VmRSS after the run; ans B = size of the first answer)"
    );
    println!(
        "{:>2} {:<11} {:>8} {:>8} {:>6} {:>7} {:>10} {:>8} {:>8} {:>6} {:>6} {:>9} {:>7} {:>5} {:>13}",
        "#",
        "phase",
        "sent",
        "answers",
        "lost",
        "loss %",
        "answers/s",
        "CPU µs",
        "ticks µs",
        "snd µs",
        "stalls",
        "drops r/s",
        "RSS MiB",
        "ans B",
        "codes"
    );
    let mib = |kib: Option<u64>| kib.map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0));
    let fixed = |value: Option<f64>| value.map_or("-".into(), |v| format!("{v:.2}"));
    for row in rows {
        let load = &row.load;
        let ticks_per = row
            .responder_ticks
            .filter(|_| load.answers > 0)
            .map(|t| t as f64 * tick_us / load.answers as f64);
        println!(
            "{:>2} {:<11} {:>8} {:>8} {:>6} {:>7.3} {:>10.0} {:>8} {:>8} {:>6} {:>6} {:>9} {:>7} {:>5} {:>13}",
            row.round,
            row.name,
            load.sent,
            load.answers,
            load.lost(),
            if load.sent > 0 {
                100.0 * load.lost() as f64 / load.sent as f64
            } else {
                0.0
            },
            load.rate(),
            fixed(per_answer(row.responder_cpu_ns, load.answers)),
            fixed(ticks_per),
            fixed(per_answer(load.sender_cpu_ns, load.sent)),
            load.stalls,
            format!(
                "{}/{}",
                row.responder_drops.map_or("?".into(), |d| d.to_string()),
                load.sender_drops.map_or("?".into(), |d| d.to_string())
            ),
            mib(row.rss_after_kib),
            load.answer_bytes,
            load.code_summary(),
        );
    }
    for row in rows {
        let load = &row.load;
        let mut notes = Vec::new();
        if load.time_limited {
            notes.push("stopped by the time bound".to_owned());
        }
        if load.send_errors + load.receive_errors > 0 {
            notes.push(format!(
                "{} send / {} receive errors, last: {}",
                load.send_errors,
                load.receive_errors,
                load.last_error.as_deref().unwrap_or("?")
            ));
        }
        if let Some(failure) = &row.failure {
            notes.push(format!("FAILED: {failure}"));
        }
        if !notes.is_empty() {
            println!("   round {} {}: {}", row.round, row.name, notes.join("; "));
        }
    }

    println!();
    println!(
        "trunkd: port {} (from the {}); READY=1 after {} ms; VmRSS {} MiB at ready, {} MiB after the last run; VmHWM {} MiB; {} threads",
        daemon.port.map_or("?".into(), |p| p.to_string()),
        if daemon.port_from.is_empty() {
            "-"
        } else {
            daemon.port_from
        },
        daemon
            .ready
            .map_or("-".into(), |d| d.as_millis().to_string()),
        mib(daemon.rss_ready_kib),
        mib(rows.iter().rev().find_map(|row| row.rss_after_kib)),
        mib(daemon.stopped.hwm_kib),
        daemon.stopped.threads.map_or("?".into(), |t| t.to_string()),
    );
    for (index, primer) in daemon.primers.iter().enumerate() {
        println!("trunkd: primer {}: {primer}", index + 1);
    }
    println!(
        "trunkd: the silent backend got {} datagram(s){}",
        daemon.backend_datagrams,
        daemon
            .backend_first
            .as_ref()
            .map(|line| format!(", the first: {line:?}"))
            .unwrap_or_default()
    );
    println!(
        "trunkd: {}; {}",
        daemon.stopped.summary(),
        daemon.log.summary(),
    );
    println!(
        "sender socket receive buffer: {} KiB (as Linux reports it, twice the usable size)",
        rows.first().map_or(0, |r| r.load.sender_rcvbuf) / 1024
    );

    // Per round: trunkd's rate over the baseline measured just before it.
    let rate_of = |name: &str, round: u64| {
        rows.iter()
            .find(|row| row.name == name && row.round == round && row.failure.is_none())
            .map(|row| row.load.rate())
    };
    let rounds: Vec<u64> = {
        let mut rounds: Vec<u64> = rows.iter().map(|row| row.round).collect();
        rounds.dedup();
        rounds
    };
    println!();
    println!(
        "Summary: medians over the rounds; ratio = trunkd / the same round's baseline (median, and the range over rounds); target ≥ {TARGET_RATIO}×"
    );
    println!(
        "  {:<11} {:>10} {:>8} {:>7} {:>14}",
        "phase", "answers/s", "CPU µs", "ratio", "ratio range"
    );
    let mut below = Vec::new();
    for name in ["baseline", "trunkd 403", "trunkd 503"] {
        let good: Vec<&Row> = rows
            .iter()
            .filter(|row| row.name == name && row.failure.is_none())
            .collect();
        let rate = median(good.iter().map(|row| row.load.rate()).collect());
        let cpu = median(
            good.iter()
                .filter_map(|row| per_answer(row.responder_cpu_ns, row.load.answers))
                .collect(),
        );
        let ratios: Vec<f64> = rounds
            .iter()
            .filter_map(|&round| Some(rate_of(name, round)? / rate_of("baseline", round)?))
            .filter(|ratio| ratio.is_finite())
            .collect();
        let range = match (
            ratios.iter().copied().reduce(f64::min),
            ratios.iter().copied().reduce(f64::max),
        ) {
            (Some(low), Some(high)) if name != "baseline" => format!("{low:.2}–{high:.2}"),
            _ => "-".into(),
        };
        let ratio = median(ratios).filter(|_| name != "baseline");
        let verdict = match ratio {
            _ if name == "baseline" => "",
            Some(ratio) if ratio >= TARGET_RATIO => "meets the target",
            Some(ratio) => {
                below.push(format!(
                    "{name}: {ratio:.2}× the trivial responder, below {TARGET_RATIO}×"
                ));
                "BELOW the target"
            }
            None => "NOT MEASURED (see above)",
        };
        println!(
            "  {:<11} {:>10} {:>8} {:>7} {:>14}  {verdict}",
            name,
            rate.map_or("-".into(), |r| format!("{r:.0}")),
            fixed(cpu),
            ratio.map_or("-".into(), |r| format!("{r:.2}×")),
            range,
        );
    }
    below
}
