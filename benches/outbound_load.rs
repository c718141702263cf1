//! Outbound call load: trunkd's CPU per outbound call (issue 14), measured on the REAL
//! binary between a SIPp backend (UAC) and a carrier that challenges every INVITE, on
//! loopback. Per call trunkd takes the backend's INVITE, answers 100, chooses the trunk,
//! sends the INVITE to the carrier, ACKs its 407, sends the INVITE again with digest
//! credentials (CSeq + 1), relays 100/180/200 back (CSeq − 1), and relays the backend's
//! ACK and BYE (CSeq + 1) and the 200 for the BYE. The target: an outbound call
//! costs at most 1.5× the trunkd CPU of an inbound admitted call (`call_load.rs`) at the
//! same rate, with no failed call.
//!
//! Run: `cargo bench --profile release --bench outbound_load` measures the release binary
//! (plain `cargo bench` rebuilds with the bench profile's LTO first); `TRUNKD_BIN`
//! overrides it. Quick run: `TRUNKD_OUT_PHASES=1500x3 TRUNKD_OUT_CLEANUP=0` (about 15 s).
//! Compare with `TRUNKD_CALL_PHASES=1500x6 TRUNKD_CALL_REJECT=0 TRUNKD_CALL_CLEANUP=0
//! cargo bench --profile release --bench call_load` run right before or after (see
//! `benches/outbound_load.md`), or give its figure as `TRUNKD_OUT_INBOUND_US`.
//!
//! The machinery is `benches/common/calls.rs`, shared with `call_load.rs`: one trunkd for
//! the whole bench, used once it says READY=1; an idle measurement (`TRUNKD_OUT_IDLE`
//! seconds, default 2); then one phase per entry of `TRUNKD_OUT_PHASES` (default
//! `1000x6,1500x6`: calls/s × seconds). Each phase starts fresh peers, then the UAC
//! (`tests/peers/sipp-backend-outbound-load.xml`, the messages of
//! `sipp-backend-outbound.xml` without its checks) dialling +442079460000 with
//! `-r RATE -rp 1000 -m RATE×SECONDS`, hold `-d TRUNKD_OUT_HOLD_MS` (default 0),
//! `-recv_timeout 10s`; trunkd's CPU is read before the UAC starts and 500 ms after it
//! exits (sum of `se.sum_exec_runtime` over its threads, per thread group too, and
//! utime+stime), its RSS sampled every 20 ms; unless `TRUNKD_OUT_CLEANUP=0` it then waits
//! 34 s for the ended calls to be forgotten and measures that too. Each peer's own CPU is
//! shown per call (over its life, so start-up included).
//!
//! trunkd: `udp:127.0.0.1:<free port>`, `[backend] uri` the UAC's address (127.0.0.1 is
//! the backend's), one trunk `out`: `direction = "outbound"`, the carrier at
//! 127.0.0.1:<port> over UDP, username `trunkout`, password `s3cret-out`,
//! `allow_next_hop = false` (the carrier shares 127.0.0.1 with the backend),
//! `max_channels = 100000`, no REGISTER, no OPTIONS keepalive; `RUST_LOG=warn`.
//!
//! The carrier (`TRUNKD_OUT_CARRIER`):
//! - `kamailio` (default): `tests/peers/kamailio-carrier.cfg`, which challenges every
//!   INVITE with a fresh nonce (407, qop=auth), checks the credentials, record-routes
//!   and relays to a SIPp callee (`tests/peers/sipp-backend-load.xml`, which serves any
//!   number of calls), with tm's 100 Trying to trunkd. Started per phase as
//!   `kamailio -DD -E -x tlsf -n TRUNKD_OUT_KAMAILIO_CHILDREN (2) -m
//!   TRUNKD_OUT_KAMAILIO_SHM_MB (1024) -M 8 -A DEBUG_LEVEL=0` in a process group of its
//!   own, used once it answers OPTIONS, stopped with SIGTERM (the group SIGKILLed after
//!   5 s). Its CPU is the sum over its processes. Why those flags: with the default
//!   allocator (`-x qm`) it took 720 µs per call at 1,000 calls/s instead of 320; with
//!   `-m 256` tm ran out of shared memory at 1,500 calls/s.
//! - `sipp`: `tests/peers/sipp-carrier-challenge-load.xml`, one SIPp UAS that is carrier
//!   and callee: 407 with a static nonce for the first INVITE, 180/200 for the second.
//!   Cheaper for the box; the same messages at trunkd except the carrier's 100.
//!
//! Bounds: each UAC runs with `-timeout` (its phase's seconds + 30 s), peers are stopped
//! after their phase, trunkd with SIGTERM at the end (SIGKILL after 15 s), and a watchdog
//! kills every child and process group and exits 3 if the bench outlives its total
//! bound. All addresses are 127.0.0.1.
//!
//! Fails (exit 1, or 2 before anything ran) when SIPp, Kamailio (when asked for) or the
//! trunkd binary is missing, trunkd does not start, dies or does not exit 0, the carrier
//! does not answer OPTIONS within 10 s, a SIPp exits with a fatal code or writes no
//! statistics; with `TRUNKD_OUT_ENFORCE=1` also when a target is missed (any failed call;
//! with `TRUNKD_OUT_INBOUND_US`, CPU per call above 1.5× that).
//!
//! Environment:
//! - `TRUNKD_OUT_PHASES=1000x6,1500x6`: calls/s × seconds per phase (1-20,000 × 1-120).
//! - `TRUNKD_OUT_CARRIER=kamailio`: or `sipp`.
//! - `TRUNKD_OUT_KAMAILIO_CHILDREN=2` (1-8), `TRUNKD_OUT_KAMAILIO_SHM_MB=1024` (64-4096).
//! - `TRUNKD_OUT_INBOUND_US`: µs per inbound call from `call_load` at the same rate, to
//!   judge the 1.5× target (not judged without it).
//! - `TRUNKD_OUT_HOLD_MS=0`, `TRUNKD_OUT_CLEANUP=1`, `TRUNKD_OUT_IDLE=2`,
//!   `TRUNKD_OUT_LOG=warn`, `TRUNKD_OUT_ENFORCE=0`, `TRUNKD_OUT_ATTACH`,
//!   `TRUNKD_OUT_ATTACH_PHASE=1`: as `call_load`'s `TRUNKD_CALL_*` (`ATTACH` runs a
//!   profiler on trunkd's pid during one phase).
//! - `TRUNKD_BIN=/path/to/trunkd`, `SIPP=/path/to/sipp`, `KAMAILIO=/path/to/kamailio`.

// A benchmark of real processes measures wall time; the virtual-clock rule is for the core.
#![allow(clippy::disallowed_methods)]

#[path = "common/calls.rs"]
mod calls;
#[path = "common/proc.rs"]
mod proc;
#[path = "common/sipp.rs"]
mod sipp;

use calls::{CallBench, Kind, Peer, PeerRun, Peers, PhaseContext, Ports, Row, Settings};
use calls::{config_head, fixed, no_failed_calls};
use proc::{cpu_ticks, env_number, find_tool, forget_group, register_group, tool_version};
use sipp::{SippRun, free_udp_port, loopback, scenario_path, signal};

use std::net::UdpSocket;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What the backend dials (any number: the trunk has no `outbound_prefixes`).
const NUMBER: &str = "+442079460000";
/// The bound: an outbound call's CPU over an inbound admitted call's.
const MAX_RATIO: f64 = 1.5;
/// Bound on Kamailio's start (first OPTIONS answered).
const KAMAILIO_READY: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Carrier {
    Kamailio,
    Sipp,
}

struct OutboundLoad {
    carrier: Carrier,
    /// The carrier's port (Kamailio's or the SIPp carrier's).
    carrier_port: u16,
    /// The callee behind Kamailio.
    callee_port: u16,
    kamailio: Option<KamailioSettings>,
    /// `TRUNKD_OUT_INBOUND_US`.
    inbound_us: Option<f64>,
}

struct KamailioSettings {
    binary: PathBuf,
    version: String,
    children: u64,
    shm_mb: u64,
}

impl CallBench for OutboundLoad {
    fn title(&self) -> &str {
        "trunkd outbound call load benchmark"
    }

    fn builds_it(&self) -> &str {
        "cargo bench --profile release --bench outbound_load"
    }

    fn config(&self, ports: &Ports) -> String {
        config_head(ports, ports.uac)
            + &format!(
                "[trunks.out]\n\
                 domain = \"127.0.0.1\"\n\
                 port = {carrier}\n\
                 transport = \"udp\"\n\
                 direction = \"outbound\"\n\
                 # The carrier shares 127.0.0.1 with the backend.\n\
                 allow_next_hop = false\n\
                 username = \"trunkout\"\n\
                 password = \"s3cret-out\"\n\
                 register = false\n\
                 options_interval = 0\n\
                 max_channels = 100000\n",
                carrier = self.carrier_port,
            )
    }

    fn describe(&self, ports: &Ports) -> String {
        let carrier = match self.carrier {
            Carrier::Kamailio => format!(
                "carrier (Kamailio) 127.0.0.1:{} → callee (SIPp UAS) 127.0.0.1:{}",
                self.carrier_port, self.callee_port
            ),
            Carrier::Sipp => format!(
                "carrier and callee (SIPp UAS) 127.0.0.1:{}",
                self.carrier_port
            ),
        };
        format!("{carrier}, backend (SIPp UAC) 127.0.0.1:{}", ports.uac)
    }

    fn preamble(&self) -> Vec<String> {
        vec![match &self.kamailio {
            Some(kamailio) => format!(
                "carrier: {} ({}), kamailio-carrier.cfg, -x tlsf -n {} -m {} MB, challenging every INVITE; callee: sipp-backend-load.xml",
                kamailio.binary.display(),
                kamailio.version,
                kamailio.children,
                kamailio.shm_mb
            ),
            None => "carrier: SIPp, sipp-carrier-challenge-load.xml (407 with a static nonce, then 180/200)".into(),
        }]
    }

    fn start_peers(&self, _kind: Kind, phase: &PhaseContext) -> Peers {
        let mut peers = Peers::default();
        match &self.kamailio {
            Some(settings) => {
                match Kamailio::start(settings, phase, self.carrier_port, self.callee_port) {
                    Ok(kamailio) => peers.list.push(Box::new(kamailio)),
                    Err(failure) => peers.failures.push(failure),
                }
                peers.sipp_uas(phase, "callee", "sipp-backend-load.xml", self.callee_port);
            }
            None => peers.sipp_uas(
                phase,
                "carrier",
                "sipp-carrier-challenge-load.xml",
                self.carrier_port,
            ),
        }
        peers
    }

    fn uac(&self, _kind: Kind) -> (&str, &str) {
        ("sipp-backend-outbound-load.xml", NUMBER)
    }

    fn targets(&self, rows: &[Row]) -> Vec<String> {
        let mut missed = Vec::new();
        for row in rows {
            missed.extend(no_failed_calls(row));
            let cpu = row.cpu_us();
            let Some(inbound) = self.inbound_us else {
                println!(
                    "  {}: ≤ {MAX_RATIO}× an inbound call's CPU: not judged ({} µs; set TRUNKD_OUT_INBOUND_US to call_load's µs per call at {} calls/s)",
                    row.name,
                    fixed(cpu),
                    row.load.rate
                );
                continue;
            };
            let ratio = cpu.map(|us| us / inbound);
            let ok = ratio.is_some_and(|ratio| ratio <= MAX_RATIO);
            println!(
                "  {}: ≤ {MAX_RATIO}× an inbound call's CPU ({inbound:.0} µs): {} ({} µs, {}×)",
                row.name,
                if ok { "met" } else { "MISSED" },
                fixed(cpu),
                ratio.map_or("-".into(), |ratio| format!("{ratio:.2}"))
            );
            if !ok {
                missed.push(format!(
                    "{}: {} µs per call, above {MAX_RATIO}× {inbound:.0}",
                    row.name,
                    fixed(cpu)
                ));
            }
        }
        missed
    }
}

fn main() {
    let settings = Settings::from_env("TRUNKD_OUT", "1000x6,1500x6", "0");
    assert!(
        settings.reject.is_none(),
        "TRUNKD_OUT_REJECT: this bench has no rejects phase"
    );
    let carrier = match std::env::var("TRUNKD_OUT_CARRIER").as_deref() {
        Err(_) | Ok("kamailio") => Carrier::Kamailio,
        Ok("sipp") => Carrier::Sipp,
        Ok(other) => panic!("TRUNKD_OUT_CARRIER: {other:?} is neither kamailio nor sipp"),
    };
    let kamailio = (carrier == Carrier::Kamailio).then(|| {
        let binary = kamailio_binary();
        KamailioSettings {
            version: tool_version(&binary, "kamailio"),
            binary,
            children: env_number("TRUNKD_OUT_KAMAILIO_CHILDREN", 2, 1, 8),
            shm_mb: env_number("TRUNKD_OUT_KAMAILIO_SHM_MB", 1024, 64, 4096),
        }
    });
    let bench = OutboundLoad {
        carrier,
        carrier_port: free_udp_port(),
        callee_port: free_udp_port(),
        kamailio,
        inbound_us: std::env::var("TRUNKD_OUT_INBOUND_US")
            .is_ok()
            .then(|| env_number("TRUNKD_OUT_INBOUND_US", 0, 1, 100_000) as f64),
    };
    calls::run(&bench, &settings);
}

// ---------------------------------------------------------------------------------------
// Kamailio
// ---------------------------------------------------------------------------------------

/// The carrier Kamailio of one phase, in a process group of its own (its workers are
/// its children).
struct Kamailio {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Kamailio {
    fn start(
        settings: &KamailioSettings,
        phase: &PhaseContext,
        port: u16,
        callee: u16,
    ) -> Result<Kamailio, String> {
        let run = phase.dir.join(format!("{}-kamailio", phase.tag));
        std::fs::create_dir_all(&run).map_err(|e| format!("the carrier's run dir: {e}"))?;
        let log = phase.dir.join(format!("{}-kamailio.stderr", phase.tag));
        let stderr =
            std::fs::File::create(&log).map_err(|e| format!("the carrier's log file: {e}"))?;
        let child = Command::new(&settings.binary)
            .arg("-f")
            .arg(scenario_path("kamailio-carrier.cfg"))
            .args(["-DD", "-E", "-x", "tlsf"])
            .args(["-n", &settings.children.to_string()])
            .args(["-m", &settings.shm_mb.to_string(), "-M", "8"])
            .arg("-Y")
            .arg(&run)
            .arg("-P")
            .arg(run.join("kamailio.pid"))
            .arg("-w")
            .arg(&run)
            .args(["-A", &format!("CALLEE=\"127.0.0.1:{callee}\"")])
            .args(["-A", "DEBUG_LEVEL=0"])
            .args(["-l", &format!("udp:127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("the carrier did not start: {e}"))?;
        register_group(child.id());
        let mut kamailio = Kamailio { child, port, log };
        if let Err(failure) = kamailio.wait_ready() {
            kamailio.kill();
            return Err(failure);
        }
        Ok(kamailio)
    }

    /// OPTIONS every 200 ms until a 200 comes (Kamailio prints no line that says its
    /// workers are up).
    fn wait_ready(&mut self) -> Result<(), String> {
        let socket = UdpSocket::bind(loopback(0)).map_err(|e| format!("a probe socket: {e}"))?;
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|e| format!("a probe socket: {e}"))?;
        let local = socket
            .local_addr()
            .map_err(|e| format!("a probe socket: {e}"))?;
        let start = Instant::now();
        let mut buffer = [0u8; 4096];
        for attempt in 1.. {
            if start.elapsed() > KAMAILIO_READY {
                return Err(format!(
                    "the carrier did not answer OPTIONS within {KAMAILIO_READY:?}: {}",
                    self.log_tail()
                ));
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "the carrier exited at start ({status}): {}",
                    self.log_tail()
                ));
            }
            let probe = format!(
                "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {local};branch=z9hG4bK-probe-{attempt};rport\r\n\
                 From: <sip:probe@127.0.0.1>;tag=probe\r\n\
                 To: <sip:127.0.0.1:{port}>\r\n\
                 Call-ID: probe-{attempt}@127.0.0.1\r\n\
                 CSeq: {attempt} OPTIONS\r\n\
                 Max-Forwards: 70\r\n\
                 Content-Length: 0\r\n\r\n",
                port = self.port
            );
            let _ = socket.send_to(probe.as_bytes(), loopback(self.port));
            if let Ok(length) = socket.recv(&mut buffer)
                && buffer[..length].starts_with(b"SIP/2.0 200")
            {
                return Ok(());
            }
        }
        unreachable!("the loop returns")
    }

    /// The last lines of its stderr, for a failure.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(3)..].join(" | ")
    }

    /// SIGKILL to the whole group, and reaps the main process.
    fn kill(&mut self) {
        // The group may be gone already: kill's complaint is not ours to show.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
        forget_group(self.child.id());
    }
}

impl Peer for Kamailio {
    fn label(&self) -> &str {
        "carrier"
    }

    fn port(&self) -> u16 {
        self.port
    }

    /// Reads the CPU of its processes, then SIGTERM (SIGKILL to the group after 5 s).
    fn stop(mut self: Box<Self>) -> PeerRun {
        let group = group_members(self.child.id());
        let ticks = group.iter().map(|pid| cpu_ticks(*pid)).sum::<Option<u64>>();
        signal(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut status = None;
        while Instant::now() < deadline {
            if let Ok(Some(exit)) = self.child.try_wait() {
                status = Some(exit);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut failures = Vec::new();
        if status.is_none() {
            failures.push("the carrier did not stop within 5 s of SIGTERM".into());
        }
        // Workers that outlived the main process, or all of them after the deadline.
        self.kill();
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let errors: Vec<&str> = text.lines().filter(|l| l.contains("ERROR:")).collect();
        let mut notes = vec![format!(
            "{} processes, {} ERROR lines",
            group.len(),
            errors.len()
        )];
        notes.extend(errors.first().map(|line| format!("e.g. {:?}", line.trim())));
        PeerRun {
            label: "carrier".into(),
            run: SippRun {
                status,
                wall: None,
                cpu_ticks: ticks,
                stats: None,
                stderr: self.log_tail(),
            },
            notes,
            failures,
        }
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

/// The processes of process group `pgid` (from /proc/<pid>/stat's field 5).
fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.split_whitespace().nth(2)?.parse::<u32>().ok()
                })
                == Some(pgid)
        })
        .collect()
}

fn kamailio_binary() -> PathBuf {
    find_tool(
        "KAMAILIO",
        "kamailio",
        "apt-get install -y kamailio; or TRUNKD_OUT_CARRIER=sipp for the SIPp carrier",
    )
}
