//! The hot path's price per message, next to `rsip::SipMessage::try_from` on the SAME
//! bytes, in the same run: absolute times depend on the machine (and on what else it is
//! running), the ratio between the two much less. trunkd is timed twice:
//!
//! - `decision`: [`Inbound::decide`]: scan, trunk lookup in a 100-trunk prefix table,
//!   the admission checks, counters and channel claim. This is what the goal
//!   (≤ 0.1× rsip's parse) is about: a parse against a parse-and-decide.
//! - `answered`: [`Inbound::handle`]: the same, plus, when there is one, the stateless
//!   answer written into the worker's buffer (Via list, From, To with a keyed tag,
//!   Call-ID, CSeq copied; RFC 3261 §8.2.6). rsip's side has no equivalent: it would
//!   still have to serialise a response.
//!
//! Run: `cargo bench --bench inbound` (quicker: `-- --warm-up-time 1 --measurement-time 3`;
//! one group: `-- scanner_invite_reject`). Every benchmark counts one message as one
//! element, so criterion prints messages per second next to the time per message.
//!
//! Groups, each with a `trunkd` (answered), a `trunkd_decision` and an `rsip` function:
//!
//! - `carrier_invite_admit`: a carrier's INVITE (16 headers incl. Record-Route,
//!   P-Asserted-Identity, Supported, Allow, Content-Type; a 311-byte SDP body) from an
//!   allowed source for one of the trunk's numbers: [`Decision::Admit`]. The channel
//!   guard is dropped inside the timed loop (`max_channels = 0`), as a call ending would.
//! - `carrier_options_answer`: the carrier's OPTIONS keepalive: [`Decision::Answer`], the
//!   `200 OK` written.
//! - `scanner_invite_reject`: a sipvicious ("friendly-scanner") INVITE from a source no
//!   trunk allows: [`Decision::Answer`], the `403 Forbidden` written.
//! - `scanner_invite_reject_drop`: the same bytes with `on_unknown_source = "drop"`:
//!   [`Decision::Nothing`].
//!
//! What the two sides do is not the same work, which is the point: trunkd scans just
//! enough to decide, rsip builds an owned message (start line, every header
//! as an owned string, the body copied) that a decision would then still have to be made
//! from. Parsed rsip messages are dropped inside the timed loop: freeing is part of what a
//! parser that allocates costs.
//!
//! `now` is one `Instant` taken at start-up, so the unknown-source log sample (one per
//! 10 s) is taken once, before measuring, and never again; `max_cps` is off.
//!
//! Before measuring, the bench checks that every message takes the expected path through
//! both entry points (panicking otherwise: a bench that silently measures another path
//! reports nonsense) and prints the heap allocations per message of each path, counted by
//! a `#[global_allocator]` wrapper around `System` that counts only while a check runs (a
//! relaxed load per allocation otherwise). The goal is zero on the reject and OPTIONS
//! paths; the number is printed, not asserted. It then prints, for each case, the fastest
//! of 200 batches of 500 messages of each of the three and the ratios to rsip: on a shared
//! machine the minimum is steadier than criterion's means, which drift apart from run to
//! run. Last, the same for [`scan::scan_lean`] alone: how much of the decision the scan is,
//! and for the carrier INVITE's mandatory headers, each parsed after the scan: what the
//! admit decision's 400 checks cost.

// `now` for the hot path: the virtual-clock rule is for the core, a bench reads the clock.
#![allow(clippy::disallowed_methods)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::hint::black_box;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trunkd::config::{LoadOptions, load_str};
use trunkd::inbound::snapshot::{Inputs, literal_address, literal_backends, literal_next_hop};
use trunkd::inbound::{Decision, Inbound, Snapshot, TrunkCounters, Worker};
use trunkd::sip::scan::{self, Lean, ScanOptions};

/// Counts allocations (`alloc`, `alloc_zeroed`, `realloc`) while [`COUNTING`] is set.
struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

impl CountingAllocator {
    fn count() {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// SAFETY: every call is forwarded unchanged to `System`.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::count();
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::count();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::count();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Not read: `load_str` takes the text.
const MAIN_PATH: &str = "/etc/trunkd/bench.toml";
/// Trunks in the generated config, the carrier's included.
const TRUNKS: usize = 100;
/// Where the carrier's trunk sits in the config file (the snapshot orders trunks by id).
const CARRIER_POSITION: usize = 57;
const CARRIER_TRUNK: &str = "carrier-de";
const CARRIER_SOURCE: &str = "203.0.113.10:5060";
/// RFC 2544's benchmarking range: allowed by no trunk.
const SCANNER_SOURCE: &str = "198.18.7.66:5071";
/// `handle` calls before counting allocations, and counted ones.
const WARM_UP: u64 = 1_000;
const COUNTED: u64 = 10_000;

/// A carrier SBC's INVITE for the number `+4930901820` of trunk `carrier-de`.
const CARRIER_INVITE: &str = "\
INVITE sip:+4930901820@192.0.2.10:5060;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-524287-1---a3f2c9e1d7b04c55;rport\r\n\
Record-Route: <sip:203.0.113.10;lr;ftag=as7d8f6a2e>\r\n\
Max-Forwards: 69\r\n\
From: \"+4915112345678\" <sip:+4915112345678@sip.carrier.example.net;user=phone>;tag=as7d8f6a2e\r\n\
To: <sip:+4930901820@192.0.2.10;user=phone>\r\n\
Call-ID: 7c1f3b2a9d8e4f60a1b2c3d4e5f60718@203.0.113.10\r\n\
CSeq: 102 INVITE\r\n\
Contact: <sip:+4915112345678@203.0.113.10:5060;transport=udp>\r\n\
P-Asserted-Identity: \"+4915112345678\" <sip:+4915112345678@sip.carrier.example.net;user=phone>\r\n\
Privacy: none\r\n\
Supported: 100rel, timer, replaces\r\n\
Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, PRACK, UPDATE, INFO, REFER, NOTIFY\r\n\
Session-Expires: 1800;refresher=uac\r\n\
User-Agent: CarrierSBC 7.2\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 311\r\n\
\r\n\
v=0\r\n\
o=CarrierSBC 1718293 1718293 IN IP4 203.0.113.50\r\n\
s=SIP Media\r\n\
c=IN IP4 203.0.113.51\r\n\
t=0 0\r\n\
m=audio 31452 RTP/AVP 8 0 18 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=maxptime:40\r\n\
a=sendrecv\r\n";

/// The same SBC's keepalive.
const CARRIER_OPTIONS: &str = "\
OPTIONS sip:192.0.2.10:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-524287-1---5e0b1c7a9f3d2e84;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:ping@sip.carrier.example.net>;tag=as1f0e9d8c\r\n\
To: <sip:192.0.2.10:5060>\r\n\
Call-ID: 2b8e4d1a6c3f5e7091a2b3c4d5e6f708@203.0.113.10\r\n\
CSeq: 48211 OPTIONS\r\n\
Contact: <sip:ping@203.0.113.10:5060>\r\n\
Accept: application/sdp\r\n\
User-Agent: CarrierSBC 7.2\r\n\
Content-Length: 0\r\n\
\r\n";

/// SIPVicious' `svwar`-style probe: its header order, `"name"<uri>` without a space, a
/// bare Contact URI, the bogus 1.1.1.1 host.
const SCANNER_INVITE: &str = "\
INVITE sip:100@192.0.2.10 SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.18.7.66:5071;branch=z9hG4bK-1871433946;rport\r\n\
Content-Length: 0\r\n\
From: \"sipvicious\"<sip:100@1.1.1.1>;tag=6438323566373637313363340131363532393034363935\r\n\
Accept: application/sdp\r\n\
User-Agent: friendly-scanner\r\n\
To: \"sipvicious\"<sip:100@1.1.1.1>\r\n\
Contact: sip:100@1.1.1.1:5071\r\n\
CSeq: 1 INVITE\r\n\
Call-ID: 462137935826781853163052\r\n\
Max-Forwards: 70\r\n\
\r\n";

/// `TRUNKS` trunks, US numbers and an allow-list of a /32 and a /24 each (every fourth
/// also a /16), and at [`CARRIER_POSITION`] the German carrier that sends the vectors above.
fn config_text(on_unknown_source: &str) -> String {
    let mut text = String::with_capacity(600 * TRUNKS + 512);
    write!(
        text,
        "[daemon]\n\
         listen = [\"udp:0.0.0.0:5060\"]\n\
         on_unknown_source = \"{on_unknown_source}\"\n\
         \n\
         [backend]\n\
         uri = \"sip:10.200.0.10:5080\"\n"
    )
    .expect("writing to a String");
    for index in 0..TRUNKS {
        if index == CARRIER_POSITION {
            text.push_str(
                "\n[trunks.carrier-de]\n\
                 name = \"German carrier\"\n\
                 provider = \"carrier-de\"\n\
                 domain = \"sip.carrier.example.net\"\n\
                 transport = \"udp\"\n\
                 inbound_auth = \"ip\"\n\
                 allowed_inbound_ips = [\"203.0.113.10\", \"203.0.113.11\"]\n\
                 numbers = [\"+4930901820\", \"+4930901821\", \"+4930901822\"]\n\
                 country = \"DE\"\n\
                 max_channels = 0\n",
            );
            continue;
        }
        let wide = if index % 4 == 0 {
            format!(", \"10.{index}.0.0/16\"")
        } else {
            String::new()
        };
        writeln!(
            text,
            "\n[trunks.carrier-{index:03}]\n\
             domain = \"sip{index}.carrier-{provider}.example\"\n\
             transport = \"udp\"\n\
             inbound_auth = \"ip\"\n\
             allowed_inbound_ips = [\"198.51.100.{host}\", \"100.64.{index}.0/24\"{wide}]\n\
             numbers = [\"+1555{first:07}\", \"+1555{second:07}\"]\n\
             country = \"US\"\n\
             max_channels = 30",
            provider = index % 40,
            host = index + 1,
            first = 2 * index,
            second = 2 * index + 1,
        )
        .expect("writing to a String");
    }
    text
}

fn inbound(on_unknown_source: &str, now: Instant) -> Inbound {
    let text = config_text(on_unknown_source);
    let config = load_str(Path::new(MAIN_PATH), &text, &LoadOptions::default())
        .unwrap_or_else(|errors| panic!("generated config does not load:\n{errors}"));
    assert_eq!(config.trunks.len(), TRUNKS, "generated trunk count");
    let inputs = Inputs {
        counters: &|id| Arc::new(TrunkCounters::new(id)),
        next_hops: &|trunk| literal_next_hop(trunk).into_iter().collect(),
        backends: literal_backends(&config),
        backends_down: &[],
        backend_address: &literal_address,
        epoch: now,
    };
    Inbound::new(Snapshot::build(&config, &inputs), 42)
}

/// Channels in use on the carrier's trunk.
fn carrier_channels(inbound: &Inbound) -> u32 {
    let snapshot = inbound.snapshot();
    let trunk = snapshot
        .trunks
        .iter()
        .find(|trunk| trunk.id() == CARRIER_TRUNK)
        .expect("the carrier's trunk");
    trunk.counters.channels()
}

/// The path a message is expected to take.
#[derive(Clone, Copy, Debug)]
enum Expect {
    Admit,
    /// A reply with this code, starting with this status line.
    Reply(u16, &'static str),
    Nothing,
}

struct Case {
    group: &'static str,
    inbound: &'static Inbound,
    source: SocketAddr,
    bytes: &'static [u8],
    expect: Expect,
}

struct Fixture {
    now: Instant,
    cases: [Case; 4],
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let now = Instant::now();
    let reject: &'static Inbound = Box::leak(Box::new(inbound("reject", now)));
    let drop: &'static Inbound = Box::leak(Box::new(inbound("drop", now)));
    let carrier = CARRIER_SOURCE.parse().expect("carrier address");
    let scanner = SCANNER_SOURCE.parse().expect("scanner address");
    Fixture {
        now,
        cases: [
            Case {
                group: "carrier_invite_admit",
                inbound: reject,
                source: carrier,
                bytes: CARRIER_INVITE.as_bytes(),
                expect: Expect::Admit,
            },
            Case {
                group: "carrier_options_answer",
                inbound: reject,
                source: carrier,
                bytes: CARRIER_OPTIONS.as_bytes(),
                expect: Expect::Reply(200, "SIP/2.0 200 OK\r\n"),
            },
            Case {
                group: "scanner_invite_reject",
                inbound: reject,
                source: scanner,
                bytes: SCANNER_INVITE.as_bytes(),
                expect: Expect::Reply(403, "SIP/2.0 403 Forbidden\r\n"),
            },
            Case {
                group: "scanner_invite_reject_drop",
                inbound: drop,
                source: scanner,
                bytes: SCANNER_INVITE.as_bytes(),
                expect: Expect::Nothing,
            },
        ],
    }
});

impl Case {
    fn handle(&self, worker: &mut Worker, now: Instant) -> Decision {
        self.inbound.handle(worker, now, self.source, self.bytes)
    }

    fn decide(&self, worker: &mut Worker, now: Instant) -> Decision {
        self.inbound.decide(worker, now, self.source, self.bytes)
    }

    /// Panics unless `decide` and `handle` take the expected path and rsip parses the
    /// bytes as the same request.
    fn check(&self, now: Instant) {
        let text = std::str::from_utf8(self.bytes).expect("vectors are ASCII");
        let (head, body) = text.split_once("\r\n\r\n").expect("a blank line");
        assert!(
            !text.replace("\r\n", "").contains(['\r', '\n']),
            "{}: CRLF line ends only",
            self.group
        );
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("Content-Length: "))
            .and_then(|value| value.trim().parse().ok())
            .expect("Content-Length");
        assert_eq!(length, body.len(), "{}: Content-Length", self.group);

        let mut worker = Worker::new();
        let outcome = self.handle(&mut worker, now);
        let reply = String::from_utf8_lossy(&worker.out);
        match (self.expect, &outcome) {
            (Expect::Admit, Decision::Admit(admitted)) => {
                assert_eq!(admitted.trunk(), CARRIER_TRUNK, "{}", self.group);
            }
            (Expect::Reply(_, status), Decision::Answer(_)) => assert!(
                reply.starts_with(status),
                "{}: expected {status:?}, wrote:\n{reply}",
                self.group
            ),
            (Expect::Nothing, Decision::Nothing) => {
                assert!(worker.out.is_empty(), "{}: wrote {reply}", self.group);
            }
            (expect, outcome) => {
                panic!(
                    "{}: expected {expect:?}, got {outcome:?} (buffer: {reply:?})",
                    self.group
                )
            }
        }
        drop(outcome);
        let decision = self.decide(&mut worker, now);
        match (self.expect, &decision) {
            (Expect::Admit, Decision::Admit(admitted)) => {
                assert_eq!(admitted.trunk(), CARRIER_TRUNK, "{}", self.group);
            }
            (Expect::Reply(code, _), Decision::Answer(answer)) if answer.code() == code => {}
            (Expect::Nothing, Decision::Nothing) => {}
            (expect, decision) => {
                panic!("{}: expected {expect:?}, decided {decision:?}", self.group)
            }
        }
        drop(decision);
        let channels = carrier_channels(self.inbound);
        assert_eq!(
            channels, 0,
            "{}: the guard released its channel",
            self.group
        );

        let method = text.split(' ').next().expect("a method");
        match rsip::SipMessage::try_from(self.bytes) {
            Ok(rsip::SipMessage::Request(request)) => {
                assert_eq!(request.method.to_string(), method, "{}: rsip", self.group);
            }
            other => panic!("{}: rsip parses it as {other:?}", self.group),
        }
    }
}

/// Heap allocations per call of `run`, after [`WARM_UP`] calls, over [`COUNTED`] calls.
fn allocations_per_call(mut run: impl FnMut()) -> f64 {
    for _ in 0..WARM_UP {
        run();
    }
    ALLOCATIONS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::SeqCst);
    for _ in 0..COUNTED {
        run();
    }
    COUNTING.store(false, Ordering::SeqCst);
    ALLOCATIONS.load(Ordering::Relaxed) as f64 / COUNTED as f64
}

/// The fastest of [`BATCHES`] batches of [`BATCH`] calls of `run`, in ns per call: on a
/// busy machine the minimum moves much less than criterion's mean.
fn fastest_batch_ns(mut run: impl FnMut()) -> f64 {
    for _ in 0..WARM_UP {
        run();
    }
    (0..BATCHES)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..BATCH {
                run();
            }
            started.elapsed().as_nanos() as f64 / BATCH as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// [`fastest_batch_ns`] of each of `runs`, measured in [`ROUNDS`] rounds that take turns
/// ([`BATCHES`] / [`ROUNDS`] batches of each per round). This VM has spells of tens of
/// milliseconds at about half speed; one measurement after the other, a spell can cover
/// all of one side's batches and none of the other's, and the ratio is off by 2x. Taking
/// turns, a spell covers part of one round of each.
fn fastest_batches_ns<const N: usize>(mut runs: [&mut dyn FnMut(); N]) -> [f64; N] {
    for run in runs.iter_mut() {
        for _ in 0..WARM_UP {
            run();
        }
    }
    let mut fastest = [f64::INFINITY; N];
    for _ in 0..ROUNDS {
        for (run, fastest) in runs.iter_mut().zip(&mut fastest) {
            for _ in 0..BATCHES / ROUNDS {
                let started = Instant::now();
                for _ in 0..BATCH {
                    run();
                }
                *fastest = fastest.min(started.elapsed().as_nanos() as f64 / BATCH as f64);
            }
        }
    }
    fastest
}

/// Batches, and calls per batch, of [`fastest_batch_ns`]; rounds of [`fastest_batches_ns`].
const BATCHES: u32 = 200;
const BATCH: u32 = 500;
const ROUNDS: u32 = 10;

/// Not a benchmark: checks every case's path and prints allocations per message, and the
/// fastest batch of each side with their ratio.
fn check(_: &mut Criterion) {
    let fixture = &*FIXTURE;
    println!("inbound: heap allocations per message ({COUNTED} messages after {WARM_UP}):");
    for case in &fixture.cases {
        case.check(fixture.now);
        let mut worker = Worker::new();
        let decision = allocations_per_call(|| {
            let _ = black_box(case.decide(&mut worker, fixture.now));
        });
        let answered = allocations_per_call(|| {
            let _ = black_box(case.handle(&mut worker, fixture.now));
        });
        let rsip = allocations_per_call(|| {
            black_box(rsip::SipMessage::try_from(black_box(case.bytes)).ok());
        });
        println!(
            "  {:<28} decision {decision:>5.2}   answered {answered:>5.2}   rsip {rsip:>6.2}",
            case.group
        );
    }
    println!(
        "inbound: fastest of {BATCHES} batches of {BATCH} messages (in {ROUNDS} rounds that \
         take turns), ns per message, and the ratio to rsip (goal: decision <= 0.1):"
    );
    for case in &fixture.cases {
        let (mut deciding, mut answering) = (Worker::new(), Worker::new());
        let [decision, answered, rsip] = fastest_batches_ns([
            &mut || {
                let _ = black_box(case.decide(&mut deciding, black_box(fixture.now)));
            },
            &mut || {
                let _ = black_box(case.handle(&mut answering, black_box(fixture.now)));
                black_box(&answering.out);
            },
            &mut || {
                black_box(rsip::SipMessage::try_from(black_box(case.bytes)).ok());
            },
        ]);
        println!(
            "  {:<28} decision {decision:>7.1} ({:.3})   answered {answered:>7.1} ({:.3})   \
             rsip {rsip:>7.1}",
            case.group,
            decision / rsip,
            answered / rsip,
        );
    }
    // Of which the scan: where the decision's time goes.
    println!("inbound: of which scan::scan_lean, fastest batch, ns per message:");
    for case in &fixture.cases {
        let scan = fastest_batch_ns(|| {
            black_box(scan::scan_lean(black_box(case.bytes), ScanOptions::DATAGRAM).is_ok());
        });
        println!("  {:<28} scan   {scan:>8.1}", case.group);
    }
    // And what the admit decision's header checks cost: each parsed on the lean scan of the
    // carrier's INVITE, as `check_mandatory` does, less the scan alone. From and Contact
    // are the call path's (admission only looks for them), shown for comparison.
    let bytes = CARRIER_INVITE.as_bytes();
    let scan_alone = fastest_batch_ns(|| {
        black_box(scan::scan_lean(black_box(bytes), ScanOptions::DATAGRAM).is_ok());
    });
    type Check = fn(&Lean<'_>) -> bool;
    let checks: [(&str, Check); 7] = [
        ("top Via", |message| message.top_via().is_ok()),
        ("To", |message| message.to().is_ok()),
        ("CSeq", |message| message.cseq_matches_method().is_ok()),
        ("Call-ID", |message| message.call_id().is_ok()),
        ("all four", |message| {
            message.top_via().is_ok()
                && message.to().is_ok()
                && message.cseq_matches_method().is_ok()
                && message.call_id().is_ok()
        }),
        ("From (call path)", |message| message.from().is_ok()),
        ("Contact (call path)", |message| message.contact().is_ok()),
    ];
    println!(
        "inbound: carrier_invite_admit's headers, each parsed after the scan, fastest batch, \
         ns per message on top of the scan ({scan_alone:.1}):"
    );
    for (name, check) in checks {
        let total = fastest_batch_ns(|| {
            if let Ok(message) = &scan::scan_lean(black_box(bytes), ScanOptions::DATAGRAM) {
                black_box(check(message));
            }
        });
        println!("  {name:<19} {:>6.1}", total - scan_alone);
    }
}

fn bench_cases(c: &mut Criterion) {
    let fixture = &*FIXTURE;
    let now = fixture.now;
    for case in &fixture.cases {
        let mut group = c.benchmark_group(case.group);
        group.throughput(Throughput::Elements(1));
        let mut worker = Worker::new();
        // The outcome (and an admitted call's channel guard) is dropped in the loop.
        group.bench_function("trunkd", |b| {
            b.iter(|| {
                let outcome = case.handle(&mut worker, black_box(now));
                black_box(&worker.out);
                outcome
            })
        });
        group.bench_function("trunkd_decision", |b| {
            b.iter(|| case.decide(&mut worker, black_box(now)))
        });
        group.bench_function("rsip", |b| {
            b.iter(|| rsip::SipMessage::try_from(black_box(case.bytes)))
        });
        group.finish();
    }
}

criterion_group!(benches, check, bench_cases);
criterion_main!(benches);
