//! Several trunkd hosts sharing one Redis (issue 17): a real `redis-server` and two real
//! `trunkd` binaries on loopback, calls placed by the test (or SIPp) as the carrier, a
//! SIPp (or silent) backend, Kamailio as the carrier's registrar. redis-server must be
//! installed (`apt-get install redis-server`); the tests fail, never skip, without it.

// Real processes in real time: the virtual-clock rule is for the core.
#![allow(clippy::disallowed_methods)]

mod common;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{GOOD_PASSWORD, HeldCall, Kamailio, Redis, Sipp, Trunkd, WAIT, free_port};

const DID: &str = "+15550100001";

/// A host of the cluster: its config, and its SIP address (a loopback address of its
/// own: a "b" host is 127.0.0.3, so each looks like a machine of its own to its peers).
struct Host {
    trunkd: Trunkd,
    ip: String,
    port: u16,
    config: PathBuf,
}

impl Host {
    fn address(&self) -> std::net::SocketAddr {
        format!("{}:{}", self.ip, self.port).parse().unwrap()
    }
}

/// `trunk` is the `[trunks.lab]` body past its common part.
fn host(dir: &Path, node: &str, redis: &Redis, backend: &str, trunk: &str) -> Host {
    host_with_lease(dir, node, redis, backend, trunk, "2s")
}

fn host_with_lease(
    dir: &Path,
    node: &str,
    redis: &Redis,
    backend: &str,
    trunk: &str,
    lease: &str,
) -> Host {
    let cluster = format!("lease = \"{lease}\"\n");
    host_over(dir, node, (&redis.url(), &cluster), "", backend, trunk)
}

/// A host whose `[cluster]` has `redis = url` and the lines `cluster` besides `node`,
/// and whose `[daemon]` has the lines `daemon` besides its listener and status.
fn host_over(
    dir: &Path,
    node: &str,
    (url, cluster): (&str, &str),
    daemon: &str,
    backend: &str,
    trunk: &str,
) -> Host {
    let ip = format!("127.0.0.{}", 2 + u32::from(node.as_bytes()[0] - b'a'));
    let port = free_port();
    let dir = dir.join(node);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("trunkd.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[daemon]
listen = ["udp:{ip}:{port}"]
status_interval = "1s"
status_log = "all"
status_file = ""
{daemon}

[cluster]
redis = "{url}"
node = "{node}"
{cluster}

[backend]
uri = "sip:{backend}"

[trunks.lab]
transport = "udp"
allowed_inbound_ips = ["127.0.0.1"]
numbers = ["{DID}"]
{trunk}
"#
        ),
    )
    .unwrap();
    let mut trunkd = Trunkd::start(&config);
    trunkd.wait_for(&[&format!("listening on udp:{ip}:{port}")]);
    trunkd.wait_for(&["trunk=lab", "cluster=ok"]);
    Host {
        trunkd,
        ip,
        port,
        config,
    }
}

/// A trunk with a documentation-address next hop: no keepalives, no registration.
fn quiet_trunk(max_channels: u32) -> String {
    format!("domain = \"192.0.2.77\"\noptions_interval = 0\nmax_channels = {max_channels}\n")
}

/// A trunk that registers with Kamailio's registrar (as `trunk1`), with `extra` lines.
fn registering_trunk(kamailio: &Kamailio, extra: &str) -> String {
    format!(
        "domain = \"127.0.0.1\"\nport = {}\noptions_interval = 0\nusername = \"trunk1\"\n\
         password = \"{GOOD_PASSWORD}\"\nauth_realm = \"registrar.test\"\nregister = true\n{extra}",
        kamailio.port
    )
}

fn uas(dir: &Path, calls: usize) -> Sipp {
    let flags = [
        "-t",
        "u1",
        "-m",
        &calls.to_string(),
        "-timeout",
        "60s",
        "-timeout_error",
    ];
    Sipp::start_with("sipp-backend-uas.xml", dir, &flags)
}

/// The final answer's status line, or a call that went through.
fn place(host: &Host, call_id: &str) -> Result<HeldCall, String> {
    HeldCall::place_at(host.address(), DID, call_id)
        .map_err(|answer| answer.lines().next().unwrap_or_default().to_owned())
}

#[test]
fn max_channels_holds_across_hosts_and_a_freed_channel_serves_the_other_host() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path());
    let backend = uas(dir.path(), 3);
    let backend_address = format!("127.0.0.1:{}", backend.port);
    let mut a = host(dir.path(), "a", &redis, &backend_address, &quiet_trunk(2));
    let mut b = host(dir.path(), "b", &redis, &backend_address, &quiet_trunk(2));

    let first = place(&a, "first@carrier").expect("a call via a");
    let _second = place(&b, "second@carrier").expect("a call via b");
    // Each host holds one of the two: a third is refused by either.
    for (host, id) in [(&a, "third-a@carrier"), (&b, "third-b@carrier")] {
        let refused = place(host, id).err().expect("refused at the limit");
        assert_eq!(refused, "SIP/2.0 503 Channel Limit Reached");
    }
    a.trunkd
        .wait_for(&["trunk=lab", "channels=1/2 ", "cluster_channels=2"]);
    // A BYE via a frees a channel b can use.
    assert_eq!(first.hang_up(), "SIP/2.0 200 OK");
    b.trunkd
        .wait_for(&["trunk=lab", "channels=1/2 ", "cluster_channels=1"]);
    let _fourth = place(&b, "fourth@carrier").expect("the freed channel, via b");
    b.trunkd.wait_for(&[
        "trunk=lab",
        "channels=2/2 ",
        "rejected_busy=1 ",
        "cluster_channels=2",
    ]);
}

#[test]
fn a_killed_host_frees_its_channels_within_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path());
    let backend = uas(dir.path(), 2);
    let backend_address = format!("127.0.0.1:{}", backend.port);
    let mut a = host(dir.path(), "a", &redis, &backend_address, &quiet_trunk(1));
    let b = host(dir.path(), "b", &redis, &backend_address, &quiet_trunk(1));

    let _held = place(&a, "held@carrier").expect("a call via a");
    let refused = place(&b, "busy@carrier")
        .err()
        .expect("a holds the only channel");
    assert_eq!(refused, "SIP/2.0 503 Channel Limit Reached");
    a.trunkd.kill();
    let killed = Instant::now();
    // lease = 2s: b's next claim after that finds a's lease run out.
    let deadline = killed + Duration::from_secs(2) + Duration::from_secs(2);
    let mut attempt = 0;
    let through = loop {
        attempt += 1;
        match place(&b, &format!("after-{attempt}@carrier")) {
            Ok(call) => break call,
            Err(refused) => {
                assert_eq!(refused, "SIP/2.0 503 Channel Limit Reached");
                assert!(Instant::now() < deadline, "a's channel still held");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    // a's lease ran until its last renewal (at most lease/3 before the kill) + 2 s.
    let freed_after = killed.elapsed();
    assert!(
        freed_after >= Duration::from_millis(1300),
        "freed before the lease could run out: {freed_after:?}"
    );
    drop(through);
    drop(b);
}

/// INVITEs from many sockets at once at both hosts, with a backend that never answers
/// (every call admitted stays in setup, holding its channel): the hosts admit exactly
/// `max_channels` between them.
#[test]
fn many_invites_at_once_across_hosts_never_exceed_max_channels() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path());
    let backend = UdpSocket::bind("127.0.0.1:0").unwrap();
    let backend_address = backend.local_addr().unwrap().to_string();
    let max = 5;
    let a = host(dir.path(), "a", &redis, &backend_address, &quiet_trunk(max));
    let b = host(dir.path(), "b", &redis, &backend_address, &quiet_trunk(max));

    let callers: Vec<(UdpSocket, String)> = (0..24)
        .map(|n| {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            (socket, format!("burst-{n}@carrier"))
        })
        .collect();
    for (n, (socket, call_id)) in callers.iter().enumerate() {
        let to = if n % 2 == 0 { a.address() } else { b.address() };
        socket
            .send_to(invite(socket, to, call_id).as_bytes(), to)
            .unwrap();
    }
    let (mut refused, mut trying) = (0, 0);
    for (socket, call_id) in &callers {
        let deadline = Instant::now() + WAIT;
        let mut answer = None;
        let mut buffer = [0u8; 4096];
        while answer.is_none() && Instant::now() < deadline {
            if let Ok(length) = socket.recv(&mut buffer) {
                let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
                if text.starts_with("SIP/2.0 503 ") {
                    answer = Some(false);
                } else if text.starts_with("SIP/2.0 100 ") {
                    answer = Some(true);
                }
            }
        }
        match answer.unwrap_or_else(|| panic!("{call_id}: no answer")) {
            true => trying += 1,
            false => refused += 1,
        }
    }
    // What the backend got: one INVITE per admitted call (retransmissions aside).
    backend
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut forwarded = std::collections::HashSet::new();
    let mut buffer = [0u8; 8192];
    while let Ok(length) = backend.recv(&mut buffer) {
        let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
        if let Some(call_id) = text.lines().find_map(|line| line.strip_prefix("Call-ID: ")) {
            forwarded.insert(call_id.to_owned());
        }
    }
    assert_eq!(refused + trying, callers.len());
    assert_eq!(trying, max as usize, "admitted {trying}, refused {refused}");
    assert_eq!(forwarded.len(), max as usize, "{forwarded:?}");
}

fn invite(socket: &UdpSocket, host: std::net::SocketAddr, call_id: &str) -> String {
    let local = socket.local_addr().unwrap();
    let branch: String = call_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    format!(
        "INVITE sip:{DID}@{host} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-{branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+15551230000@carrier.example>;tag={branch}\r\n\
         To: <sip:{DID}@{host}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:+15551230000@{local}>\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// A registering trunk of two hosts: one registers it; when that host is killed, the
/// other takes over and the registrar gets its Contact.
#[test]
fn one_host_registers_and_the_other_takes_over_when_it_dies() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path());
    let kamailio = Kamailio::start(dir.path());
    let trunk = registering_trunk(&kamailio, "");
    let mut a = host(dir.path(), "a", &redis, "127.0.0.1:9", &trunk);
    a.trunkd
        .wait_for(&["trunk=lab state=registered", "registrant=a"]);
    kamailio.wait_for_log(&[
        "REGISTRAR REGISTERED user=trunk1",
        &format!("from={}", a.address()),
    ]);
    let mut b = host(dir.path(), "b", &redis, "127.0.0.1:9", &trunk);
    // b knows a holds it, and does not register.
    b.trunkd.wait_for(&["trunk=lab state=idle", "registrant=a"]);

    a.trunkd.kill();
    let killed = Instant::now();
    b.trunkd
        .wait_for(&["trunk=lab state=registered", "registrant=b"]);
    kamailio.wait_for_log(&[
        "REGISTRAR REGISTERED user=trunk1",
        &format!("from={}", b.address()),
    ]);
    // lease (2 s) + a heartbeat (2/3 s) + the REGISTER's round trips.
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "{:?}",
        killed.elapsed()
    );
    let _ = (a.config, b.config);
}

/// Redis dies and comes back empty mid-test: each host goes on alone within its share,
/// the counts are rebuilt from the calls the hosts really hold (none lost, none twice),
/// and the registrant stays the only one.
#[test]
fn redis_down_and_back_empty_degrades_then_rebuilds_without_a_second_registrant() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = Redis::start(dir.path());
    let kamailio = Kamailio::start(dir.path());
    let backend = uas(dir.path(), 4);
    let backend_address = format!("127.0.0.1:{}", backend.port);
    // max_channels 4, two hosts expected: 2 each while degraded.
    let trunk = registering_trunk(&kamailio, "max_channels = 4\n");
    let mut a = host(dir.path(), "a", &redis, &backend_address, &trunk);
    a.trunkd
        .wait_for(&["trunk=lab state=registered", "registrant=a"]);
    let mut b = host(dir.path(), "b", &redis, &backend_address, &trunk);
    b.trunkd.wait_for(&["trunk=lab state=idle", "registrant=a"]);
    let first = place(&a, "one@carrier").expect("a call via a");
    let second = place(&b, "two@carrier").expect("a call via b");

    redis.kill();
    a.trunkd.wait_for(&["trunk=lab", "cluster=degraded"]);
    b.trunkd.wait_for(&["trunk=lab", "cluster=degraded"]);
    // a holds 1 of its 2; one more fits, the next does not.
    let third = place(&a, "three@carrier").expect("within a's share");
    let refused = place(&a, "four@carrier").err().expect("past a's share");
    assert_eq!(refused, "SIP/2.0 503 Channel Limit Reached");

    redis.resume();
    // Trusted again a lease after the reconnection, with the counts rebuilt.
    a.trunkd.wait_for(&[
        "trunk=lab",
        "channels=2/4 ",
        "cluster=ok",
        "cluster_channels=3",
    ]);
    b.trunkd.wait_for(&[
        "trunk=lab",
        "channels=1/4 ",
        "cluster=ok",
        "cluster_channels=3",
    ]);
    // One more channel in the cluster, via b: then 4/4.
    let fourth = place(&b, "five@carrier").expect("the fourth channel of four");
    let over = place(&b, "six@carrier").err().expect("four in use");
    assert_eq!(over, "SIP/2.0 503 Channel Limit Reached");
    // a still registers, and b never did.
    b.trunkd.wait_for(&["trunk=lab state=idle", "registrant=a"]);
    assert!(
        !kamailio
            .log_text()
            .contains(&format!("from={} ", b.address())),
        "b registered"
    );
    for call in [first, second, third, fourth] {
        assert_eq!(call.hang_up(), "SIP/2.0 200 OK");
    }
    b.trunkd.wait_for(&[
        "trunk=lab",
        "channels=0/4 ",
        "cluster=ok",
        "cluster_channels=0",
    ]);
}

/// A planned stop hands the registration over at once: the registrant un-REGISTERs and
/// gives the trunk up, and the other host registers it well before the lease would
/// have run out.
#[test]
fn a_stopping_registrant_hands_its_registration_over_before_the_lease_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path());
    let kamailio = Kamailio::start(dir.path());
    let trunk = registering_trunk(&kamailio, "");
    let lease = "9s";
    let mut a = host_with_lease(dir.path(), "a", &redis, "127.0.0.1:9", &trunk, lease);
    a.trunkd
        .wait_for(&["trunk=lab state=registered", "registrant=a"]);
    let mut b = host_with_lease(dir.path(), "b", &redis, "127.0.0.1:9", &trunk, lease);
    b.trunkd.wait_for(&["trunk=lab state=idle", "registrant=a"]);

    let a_address = a.address();
    let stopping = Instant::now();
    a.trunkd.stop();
    kamailio.wait_for_log(&[
        "REGISTRAR UNREGISTERED user=trunk1",
        &format!("from={a_address}"),
    ]);
    b.trunkd
        .wait_for(&["trunk=lab state=registered", "registrant=b"]);
    // b's heartbeat runs every lease / 3 = 3 s: at most that (and the un-REGISTER and
    // REGISTER round trips), where a dead registrant is replaced only after the 9 s lease.
    assert!(
        stopping.elapsed() < Duration::from_secs(6),
        "{:?}",
        stopping.elapsed()
    );
}

/// Outbound calls count against the same global channels: the backend's call out via
/// one host holds the trunk's one channel, and its call via the other host gets 503
/// without reaching the carrier.
#[test]
fn an_outbound_call_holds_the_trunks_channel_for_every_host() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path());
    // The carrier: takes INVITEs and answers nothing (each attempt holds its channel).
    let carrier = UdpSocket::bind("127.0.0.1:0").unwrap();
    carrier
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let trunk = format!(
        "domain = \"127.0.0.1\"\nport = {}\ndirection = \"both\"\noptions_interval = 0\n\
         max_channels = 1\n",
        carrier.local_addr().unwrap().port()
    );
    // The backend dials from another loopback address than the carrier's.
    let backend = UdpSocket::bind("127.0.0.9:0").unwrap();
    backend.set_read_timeout(Some(WAIT)).unwrap();
    let a = host(dir.path(), "a", &redis, "127.0.0.9:5080", &trunk);
    let b = host(dir.path(), "b", &redis, "127.0.0.9:5080", &trunk);

    let dial = |host: &Host, call_id: &str| {
        let local = backend.local_addr().unwrap();
        let address = host.address();
        let invite = format!(
            "INVITE sip:+15557654321@{address} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK-{call_id}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:+15550100001@127.0.0.9>;tag=be-{call_id}\r\n\
             To: <sip:+15557654321@127.0.0.1>\r\n\
             Call-ID: {call_id}@pbx\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:pbx@{local}>\r\n\
             Content-Length: 0\r\n\r\n"
        );
        backend.send_to(invite.as_bytes(), address).unwrap();
    };
    let mut buffer = [0u8; 8192];
    dial(&a, "out1");
    let length = carrier
        .recv(&mut buffer)
        .expect("a's INVITE at the carrier");
    let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
    assert!(
        text.starts_with("INVITE sip:+15557654321@127.0.0.1"),
        "{text}"
    );

    dial(&b, "out2");
    let refused = loop {
        let length = backend.recv(&mut buffer).expect("b's answer");
        let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
        if text.contains("Call-ID: out2@pbx") && !text.starts_with("SIP/2.0 100 ") {
            break text;
        }
    };
    assert!(
        refused.starts_with("SIP/2.0 503 No Trunk Available\r\n"),
        "{refused}"
    );
    // The carrier got a's INVITE (and its retransmissions) only.
    while let Ok(length) = carrier.recv(&mut buffer) {
        let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
        assert!(text.contains("Call-ID: out1@pbx"), "{text}");
    }
    drop((a, b));
}

/// `rediss://` with a password from `password_file` and the server's CA in `ca_file`:
/// the hosts connect over TLS and share the channel, and the password is in no log.
#[test]
fn hosts_share_channels_over_rediss_with_a_password_file() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("redis.pem"), dir.path().join("redis.key"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    const PASSWORD: &str = "redis-s3cret-4-cluster";
    let redis = Redis::start_tls(dir.path(), &cert, &key, PASSWORD);
    let backend = uas(dir.path(), 1);
    let backend_address = format!("127.0.0.1:{}", backend.port);
    let mut hosts = Vec::new();
    for node in ["a", "b"] {
        let host_dir = dir.path().join(node);
        std::fs::create_dir_all(&host_dir).unwrap();
        std::fs::write(host_dir.join("redis.password"), format!("{PASSWORD}\n")).unwrap();
        let url = format!("rediss://127.0.0.1:{}/0", redis.port);
        let cluster = format!(
            "password_file = \"redis.password\"\nca_file = \"{}\"\n",
            cert.display()
        );
        hosts.push(host_over(
            dir.path(),
            node,
            (&url, &cluster),
            "",
            &backend_address,
            &quiet_trunk(1),
        ));
    }
    let _held = place(&hosts[0], "tls-1@carrier").expect("a call via a");
    let refused = place(&hosts[1], "tls-2@carrier")
        .err()
        .expect("a holds the channel");
    assert_eq!(refused, "SIP/2.0 503 Channel Limit Reached");
    for host in hosts {
        let log = host.trunkd.stop();
        assert!(
            log.iter()
                .any(|line| line.contains("cluster: connected to Redis rediss://"))
        );
        assert!(
            log.iter().all(|line| !line.contains(PASSWORD)),
            "the password leaked: {log:?}"
        );
    }
}

/// `max_cps` is one rate for the cluster: with `max_cps = 1` a second call within the
/// second is refused even via the other host, whose own rate is untouched.
#[test]
fn max_cps_is_shared_by_the_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path());
    let backend = UdpSocket::bind("127.0.0.1:0").unwrap();
    let backend_address = backend.local_addr().unwrap().to_string();
    let trunk = format!("{}max_cps = 1\n", quiet_trunk(10));
    let a = host(dir.path(), "a", &redis, &backend_address, &trunk);
    let b = host(dir.path(), "b", &redis, &backend_address, &trunk);
    let answer = |host: &Host, call_id: &str| {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(WAIT)).unwrap();
        let to = host.address();
        socket
            .send_to(invite(&socket, to, call_id).as_bytes(), to)
            .unwrap();
        let mut buffer = [0u8; 4096];
        let length = socket.recv(&mut buffer).expect("an answer");
        let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
        text.lines().next().unwrap_or_default().to_owned()
    };
    assert_eq!(answer(&a, "rate-1@carrier"), "SIP/2.0 100 Trying");
    assert_eq!(
        answer(&b, "rate-2@carrier"),
        "SIP/2.0 503 Call Rate Limit Reached"
    );
    let mut b = b;
    b.trunkd.wait_for(&["trunk=lab", "rejected_busy=1 "]);
}

/// A stopping host keeps its lease, and its draining calls keep their channels, until
/// the drain is over: the other host cannot take them meanwhile, however long the drain.
#[test]
fn a_draining_host_keeps_its_channels_counted_until_it_has_left() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path());
    let backend = uas(dir.path(), 2);
    let backend_address = format!("127.0.0.1:{}", backend.port);
    let cluster = "lease = \"2s\"\n";
    let drain = "shutdown_drain = \"30s\"\n";
    let mut a = host_over(
        dir.path(),
        "a",
        (&redis.url(), cluster),
        drain,
        &backend_address,
        &quiet_trunk(1),
    );
    let b = host(dir.path(), "b", &redis, &backend_address, &quiet_trunk(1));
    let held = place(&a, "draining@carrier").expect("a call via a");
    a.trunkd.signal("TERM");
    a.trunkd.wait_for(&["draining"]);
    // Two leases later a is still draining its call: its channel still counts.
    std::thread::sleep(Duration::from_secs(4));
    let refused = place(&b, "during-drain@carrier")
        .err()
        .expect("a's draining call holds the channel");
    assert_eq!(refused, "SIP/2.0 503 Channel Limit Reached");
    // The call ends, a stops and leaves: its channel is free at once.
    assert_eq!(held.hang_up(), "SIP/2.0 200 OK");
    let (clean, _) = a.trunkd.wait_exit();
    assert!(clean);
    let _after = place(&b, "after-drain@carrier").expect("the channel a left");
}
