//! `trunkd verify <trunk>` with the real binary against real peers on loopback: the
//! Kamailio registrar (tests/peers/kamailio-registrar.cfg; required, never skipped),
//! dnsmasq for SRV records, and an in-test TLS server for certificate checks.

// Real processes in real time: the virtual-clock rule is for the core.
#![allow(clippy::disallowed_methods)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{BAD_PASSWORD, Dnsmasq, GOOD_PASSWORD, Kamailio, Trunkd, free_port};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{ServerConfig, ServerConnection, StreamOwned};
use trunkd::sip::scan::frame::{Frame, frame};
use trunkd::sip::scan::{EMPTY_HEADER, HeaderName, MAX_HEADERS, scan};

/// What one `trunkd verify` run printed, and its exit code.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Run {
    /// The report line of a step (`[ok] dns: ...`), with its detail lines.
    fn step(&self, name: &str) -> String {
        let mut lines = self.stdout.lines();
        let mut text = String::new();
        while let Some(line) = lines.next() {
            if line.starts_with('[') && line.contains(&format!("] {name}: ")) {
                text.push_str(line);
                for detail in lines.by_ref() {
                    if !detail.starts_with(' ') {
                        break;
                    }
                    text.push('\n');
                    text.push_str(detail);
                }
                return text;
            }
        }
        panic!("no {name} step in the report:\n{}", self.stdout);
    }

    fn assert_no_secret(&self) {
        for secret in [GOOD_PASSWORD, BAD_PASSWORD, "s3cret-trunk2"] {
            assert!(
                !self.stdout.contains(secret) && !self.stderr.contains(secret),
                "a password was printed:\n{}\n{}",
                self.stdout,
                self.stderr
            );
        }
        for header in ["Authorization:", "response=\"", "nonce="] {
            assert!(!self.stdout.contains(header), "{}", self.stdout);
        }
    }
}

fn verify(config: &Path, trunk: &str) -> Run {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_trunkd"))
        .args(["verify", trunk, "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let run = Run {
        code: output.status.code().expect("exited"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
        took: started.elapsed(),
    };
    // Shown when a test fails.
    println!("$ trunkd verify {trunk}\n{}{}", run.stdout, run.stderr);
    run.assert_no_secret();
    run
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("trunkd.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A trunk to Kamailio with the given user and password.
fn kamailio_config(dir: &Path, daemon: &str, port: u16) -> PathBuf {
    write_config(
        dir,
        &format!(
            r#"
[daemon]
listen = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]
status_interval = "1h"
{daemon}

[backend]
uri = "sip:127.0.0.1:5080"

[trunks.good]
domain = "127.0.0.1"
port = {port}
transport = "udp"
direction = "both"
allowed_inbound_ips = ["127.0.0.1"]
username = "trunk1"
password = "{GOOD_PASSWORD}"
auth_realm = "registrar.test"
register = true
register_expires = 3600

[trunks.wrong]
domain = "127.0.0.1"
port = {port}
transport = "udp"
direction = "outbound"
username = "trunk2"
password = "{BAD_PASSWORD}"
register = true

[trunks.tcp]
domain = "127.0.0.1"
port = {port}
transport = "tcp"
direction = "outbound"
username = "trunk2"
password = "s3cret-trunk2"
register = true
"#
        ),
    )
}

#[test]
fn right_password_passes_every_step_and_removes_its_binding() {
    let dir = tempfile::tempdir().unwrap();
    let kamailio = Kamailio::start(dir.path());
    let config = kamailio_config(dir.path(), "", kamailio.port);

    let run = verify(&config, "good");
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.step("config")
            .starts_with("[ok] config: trunk \"good\"")
    );
    let dns = run.step("dns");
    assert!(
        dns.starts_with("[ok] dns: 127.0.0.1 is an IP address")
            && dns.contains(&format!("chosen target udp:127.0.0.1:{}", kamailio.port)),
        "{dns}"
    );
    assert!(
        run.step("transport")
            .starts_with("[skip] transport: udp is connectionless")
    );
    let options = run.step("options");
    assert!(
        options.starts_with("[ok] options: 200 OK in ") && options.contains(" ms from "),
        "{options}"
    );
    let register = run.step("register");
    assert!(
        register.starts_with("[ok] register: registered trunk1: 200 OK, granted 60 s"),
        "{register}"
    );
    assert!(
        register.contains("challenge: 401 realm \"registrar.test\", algorithm MD5, qop auth"),
        "{register}"
    );
    assert!(
        run.step("unregister")
            .starts_with("[ok] unregister: binding removed")
    );
    assert!(run.step("nat").starts_with("[ok] nat: no NAT"));
    assert!(
        run.step("allowlist")
            .contains("127.0.0.1: allowed by allowed_inbound_ips")
    );
    assert!(
        run.stdout.ends_with("result: ok (0 warnings)\n"),
        "{}",
        run.stdout
    );

    // verify's own binding came and went: registered, then removed with Expires: 0.
    let registered = kamailio.wait_for_log(&["REGISTRAR REGISTERED user=trunk1"]);
    // granted is (absolute expiry - now) in Kamailio: 59 across a second boundary.
    assert!(
        registered.contains("granted=60 ") || registered.contains("granted=59 "),
        "{registered}"
    );
    let removed = kamailio.wait_for_log(&["REGISTRAR UNREGISTERED user=trunk1"]);
    assert!(
        removed.contains("expires-hdr=0") && removed.contains("contacts=0"),
        "{removed}"
    );
}

#[test]
fn wrong_password_is_reported_as_auth_failed() {
    let dir = tempfile::tempdir().unwrap();
    let kamailio = Kamailio::start(dir.path());
    let config = kamailio_config(dir.path(), "", kamailio.port);

    let run = verify(&config, "wrong");
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.step("options").starts_with("[ok] options: 200 OK"));
    let register = run.step("register");
    assert!(
        register.starts_with("[FAIL] register: wrong password (or username)")
            && register.contains("state auth_failed"),
        "{register}"
    );
    assert!(register.contains("check username \"trunk2\""), "{register}");
    assert!(
        !run.stdout.contains("] unregister:"),
        "nothing to remove: {}",
        run.stdout
    );
    kamailio.wait_for_log(&["REGISTRAR AUTH-FAIL user=trunk2", "invalid-password"]);
    assert!(
        run.stdout
            .ends_with("result: FAIL (1 failed step, 0 warnings)\n")
    );
}

#[test]
fn registers_over_tcp_on_its_own_connection() {
    let dir = tempfile::tempdir().unwrap();
    let kamailio = Kamailio::start(dir.path());
    let config = kamailio_config(dir.path(), "", kamailio.port);

    let run = verify(&config, "tcp");
    assert_eq!(run.code, 0, "{}", run.stdout);
    let transport = run.step("transport");
    assert!(
        transport.starts_with(&format!(
            "[ok] transport: tcp connected to 127.0.0.1:{}",
            kamailio.port
        )),
        "{transport}"
    );
    assert!(run.step("options").starts_with("[ok] options: 200 OK"));
    assert!(
        run.step("register")
            .starts_with("[ok] register: registered trunk2")
    );
    assert!(run.step("unregister").starts_with("[ok] unregister:"));
    let removed = kamailio.wait_for_log(&["REGISTRAR UNREGISTERED user=trunk2"]);
    assert!(removed.contains("proto=tcp"), "{removed}");
}

#[test]
fn nothing_listening_fails_options_and_register_with_a_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(
        dir.path(),
        &format!(
            r#"
[daemon]
listen = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]
status_interval = "1h"
# Timer F = 64·T1 = 3.2 s.
timer_t1 = "50ms"

[trunks.silent]
domain = "127.0.0.1"
port = {port}
transport = "udp"
direction = "outbound"
username = "trunk1"
password = "{GOOD_PASSWORD}"
register = true

[trunks.refused]
domain = "127.0.0.1"
port = {port}
transport = "tcp"
direction = "outbound"
"#
        ),
    );

    let run = verify(&config, "silent");
    assert_eq!(run.code, 1, "{}", run.stdout);
    let options = run.step("options");
    assert!(
        options.starts_with(&format!(
            "[FAIL] options: timeout: no response from udp 127.0.0.1:{port} within 64·T1 = 3200 ms"
        )),
        "{options}"
    );
    assert!(
        options.contains("7 transmissions"),
        "retransmitted: {options}"
    );
    let register = run.step("register");
    assert!(
        register.starts_with("[FAIL] register: timeout: no response to REGISTER"),
        "{register}"
    );
    assert!(run.step("nat").starts_with("[skip] nat: no response"));
    assert!(run.took < Duration::from_secs(15), "{:?}", run.took);

    // Over TCP the refused connect fails the transport step at once.
    let run = verify(&config, "refused");
    assert_eq!(run.code, 1, "{}", run.stdout);
    let transport = run.step("transport");
    assert!(
        transport.starts_with(&format!(
            "[FAIL] transport: tcp connect to 127.0.0.1:{port} failed: Connection refused"
        )),
        "{transport}"
    );
    assert!(
        run.step("options")
            .starts_with("[skip] options: no connection")
    );
    assert!(
        run.step("register")
            .starts_with("[skip] register: the trunk has no username and password")
    );
    assert!(run.took < Duration::from_secs(5), "{:?}", run.took);
}

#[test]
fn config_warnings_of_the_trunk_show_in_the_config_step() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // No allowed_inbound_ips: only the next hop may call in, which loads with a warning.
    let config = write_config(
        dir.path(),
        &format!(
            r#"
[daemon]
listen = ["tcp:127.0.0.1:0"]

[backend]
uri = "sip:127.0.0.1:5080"

[trunks.open]
domain = "127.0.0.1"
port = {port}
transport = "tcp"
"#
        ),
    );
    let run = verify(&config, "open");
    let step = run.step("config");
    assert!(step.starts_with("[warn] config: trunk \"open\""), "{step}");
    assert!(
        step.contains(&format!(
            "warning: {}:8:9: trunk open: inbound_auth = \"ip\" without allowed_inbound_ips: \
             only the next hop 127.0.0.1 may send inbound calls",
            config.display()
        )),
        "{step}"
    );
    // Nothing listens there: the transport fails, the warning stays a warning.
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("result: FAIL (1 failed step"),
        "{}",
        run.stdout
    );
}

#[test]
fn unknown_trunk_exits_2_and_lists_the_ids() {
    let dir = tempfile::tempdir().unwrap();
    let config = kamailio_config(dir.path(), "", 5060);
    let run = verify(&config, "nope");
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stdout.contains("no trunk \"nope\"") && run.stdout.contains("trunks: good, tcp, wrong"),
        "{}",
        run.stdout
    );
}

#[test]
fn runs_beside_a_daemon_with_the_same_config_without_touching_its_binding() {
    let dir = tempfile::tempdir().unwrap();
    let kamailio = Kamailio::start(dir.path());
    // Fixed listen ports: verify binding one of them would fail.
    let listen = free_port();
    let path = kamailio_config(dir.path(), "", kamailio.port);
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "listen = [\"udp:127.0.0.1:0\", \"tcp:127.0.0.1:0\"]",
        &format!("listen = [\"udp:127.0.0.1:{listen}\", \"tcp:127.0.0.1:{listen}\"]"),
    );
    let config = write_config(dir.path(), &text);
    let mut trunkd = Trunkd::start(&config);
    trunkd.wait_for(&["trunk=good state=registered"]);
    let daemon = kamailio.wait_for_log(&["REGISTRAR REGISTERED user=trunk1"]);
    assert!(
        daemon.contains(&format!("contact=<sip:trunk1@127.0.0.1:{listen};")),
        "{daemon}"
    );

    let run = verify(&config, "good");
    assert_eq!(run.code, 0, "{}", run.stdout);
    let transport = run.step("transport");
    assert!(
        !transport.contains(&format!(":{listen} ")),
        "verify sends from its own port: {transport}"
    );
    // verify's REGISTER is a second binding; removing it leaves the daemon's (contacts=1).
    let removed = kamailio.wait_for_log(&["REGISTRAR UNREGISTERED user=trunk1"]);
    assert!(
        removed.contains("contacts=1") && !removed.contains(&format!(":{listen};")),
        "{removed}"
    );
    assert_eq!(kamailio.count("REGISTRAR REGISTERED user=trunk1"), 2);

    // The daemon never noticed: still registered, and its own shutdown removes its binding.
    let log = trunkd.stop();
    assert!(
        !log.iter()
            .any(|line| line.contains("trunk=good") && line.contains("state=backoff")),
        "{log:#?}"
    );
    let last = kamailio
        .log_text()
        .lines()
        .filter(|line| line.contains("REGISTRAR UNREGISTERED user=trunk1"))
        .count();
    assert_eq!(last, 2, "{}", kamailio.log_text());
}

#[test]
fn srv_records_are_shown_with_priority_weight_port_and_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let kamailio = Kamailio::start(dir.path());
    let dead = free_port();
    let dnsmasq = Dnsmasq::start(&[
        format!(
            "--srv-host=_sip._udp.carrier.test,sip1.carrier.test,{},10,60",
            kamailio.port
        ),
        format!("--srv-host=_sip._udp.carrier.test,sip2.carrier.test,{dead},20,0"),
        "--host-record=sip1.carrier.test,127.0.0.1".into(),
        "--host-record=sip2.carrier.test,127.0.0.1".into(),
    ]);
    let config = write_config(
        dir.path(),
        &format!(
            r#"
[daemon]
listen = ["udp:127.0.0.1:0"]
status_interval = "1h"
dns_servers = ["127.0.0.1:{dns}"]

[trunks.srv]
domain = "carrier.test"
transport = "udp"
direction = "outbound"
"#,
            dns = dnsmasq.port
        ),
    );
    let run = verify(&config, "srv");
    assert_eq!(run.code, 0, "{}", run.stdout);
    let dns = run.step("dns");
    let kam = kamailio.port;
    for expected in [
        "[ok] dns: carrier.test resolved (RFC 3263: SRV, else A/AAAA)".to_owned(),
        format!("chosen target udp:127.0.0.1:{kam}"),
        format!(
            "SRV _sip._udp.carrier.test. priority 10 weight 60 port {kam} target sip1.carrier.test. (TTL "
        ),
        format!(
            "SRV _sip._udp.carrier.test. priority 20 weight 0 port {dead} target sip2.carrier.test."
        ),
        format!("A/AAAA sip1.carrier.test → 127.0.0.1:{kam}"),
        format!("order: 127.0.0.1:{kam}, 127.0.0.1:{dead}\n"),
        "the daemon fails over along them; verify tests the first".to_owned(),
        format!("asking dns_servers 127.0.0.1:{}", dnsmasq.port),
    ] {
        assert!(dns.contains(&expected), "{expected:?} in\n{dns}");
    }
    assert!(run.step("options").starts_with("[ok] options: 200 OK"));
    assert!(run.step("register").starts_with("[skip] register:"));
}

/// A CA, and a server certificate signed by it for `names`.
fn pki(names: &[&str]) -> (String, String, String, Arc<ServerConfig>) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    let leaf = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    (ca.pem(), leaf.pem(), key.serialize_pem(), Arc::new(server))
}

/// A TLS server answering every request with 200 OK.
fn tls_responder(config: Arc<ServerConfig>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let config = Arc::clone(&config);
            std::thread::spawn(move || answer(config, stream));
        }
    });
    port
}

fn answer(config: Arc<ServerConfig>, stream: TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut tls = StreamOwned::new(ServerConnection::new(config).unwrap(), stream);
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(read) = tls.read(&mut chunk) {
        if read == 0 {
            return;
        }
        buffer.extend_from_slice(&chunk[..read]);
        while let Ok(Frame::Message { len }) = frame(&buffer, 65_535) {
            let message: Vec<u8> = buffer.drain(..len).collect();
            let mut headers = [EMPTY_HEADER; MAX_HEADERS];
            let request = scan(&message, &mut headers).unwrap();
            let header = |name| String::from_utf8_lossy(request.header(name).unwrap()).into_owned();
            let response = format!(
                "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=tls\r\nCall-ID: {}\r\n\
                 CSeq: {}\r\nContent-Length: 0\r\n\r\n",
                header(HeaderName::Via),
                header(HeaderName::From),
                header(HeaderName::To),
                header(HeaderName::CallId),
                header(HeaderName::CSeq),
            );
            if tls.write_all(response.as_bytes()).is_err() {
                return;
            }
        }
    }
}

#[test]
fn tls_certificate_is_verified_for_the_trunks_name() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, leaf, key, server) = pki(&["localhost"]);
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("ca.pem", &ca);
    write("leaf.pem", &leaf);
    write("leaf.key", &key);
    let port = tls_responder(server);
    let config = write_config(
        dir.path(),
        &format!(
            r#"
[daemon]
listen = ["udp:127.0.0.1:0", "tls:127.0.0.1:0"]
status_interval = "1h"

[tls]
certificate = "leaf.pem"
private_key = "leaf.key"
ca_file = "ca.pem"

[trunks.secure]
domain = "localhost"
port = {port}
transport = "tls"
direction = "outbound"

# The same server as 127.0.0.1: its certificate names only "localhost".
[trunks.wrong-name]
domain = "127.0.0.1"
port = {port}
transport = "tls"
direction = "outbound"
"#
        ),
    );

    let run = verify(&config, "secure");
    assert_eq!(run.code, 0, "{}", run.stdout);
    let transport = run.step("transport");
    assert!(
        transport.starts_with(&format!(
            "[ok] transport: tls to 127.0.0.1:{port}: certificate verified for \"localhost\""
        )),
        "{transport}"
    );
    assert!(
        transport.contains("chain of 1 certificate")
            && transport.contains("names (SAN): localhost")
            && transport.contains("valid until Jan  1 00:00:00 4096")
            && transport.contains("days from now"),
        "{transport}"
    );
    assert!(run.step("options").starts_with("[ok] options: 200 OK"));

    let run = verify(&config, "wrong-name");
    assert_eq!(run.code, 1, "{}", run.stdout);
    let transport = run.step("transport");
    assert!(
        transport.starts_with(&format!(
            "[FAIL] transport: TLS handshake with 127.0.0.1:{port} failed: invalid peer certificate"
        )) && transport.contains("not valid for name"),
        "{transport}"
    );
    assert!(
        run.step("options")
            .starts_with("[skip] options: no connection")
    );
}
