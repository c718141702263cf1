//! The TLS and TCP listeners of the real binary: a certificate from `[tls]` is served and
//! a client that trusts it completes a handshake, then SIP is served on the connection (a
//! CRLF CRLF ping gets a pong, an OPTIONS a 200); a broken key fails validation without
//! printing it; a call over TLS reaches the backend (over UDP) and its answer the carrier.

// A real process in real time: the virtual-clock rule is for the core.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

fn write_config(dir: &std::path::Path) {
    std::fs::write(
        dir.join("trunkd.toml"),
        r#"
[daemon]
listen = ["tls:127.0.0.1:0", "tcp:127.0.0.1:0"]
status_file = ""

[tls]
certificate = "cert.pem"
private_key = "key.pem"

# Its next hop, 127.0.0.1, may send requests (allow_next_hop).
[trunks.local]
domain = "127.0.0.1"
transport = "tcp"
direction = "outbound"
options_interval = 0
"#,
    )
    .unwrap();
}

/// A self-signed certificate for "localhost", written as `[tls]` expects it.
fn certificate(dir: &std::path::Path) -> rcgen::CertifiedKey<rcgen::KeyPair> {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.join("cert.pem"), certified.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem()).unwrap();
    certified
}

/// trunkd on `dir/trunkd.toml`, once started: the process and its listeners' addresses
/// by transport (`tls`, `tcp`, `udp`).
fn start(dir: &std::path::Path) -> (std::process::Child, Vec<(String, String)>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trunkd"))
        .args(["run", "--config"])
        .arg(dir.join("trunkd.toml"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut listening = Vec::new();
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        if let Some((_, listen)) = line.trim().rsplit_once("listening on ")
            && let Some((transport, address)) = listen.split_once(':')
        {
            listening.push((transport.to_owned(), address.to_owned()));
        }
        if line.contains("started with") {
            break;
        }
        line.clear();
    }
    // Keep reading: a closed pipe would fail trunkd's log writes.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (child, listening)
}

fn address_of(listening: &[(String, String)], transport: &str) -> String {
    listening
        .iter()
        .find(|(t, _)| t == transport)
        .map(|(_, address)| address.clone())
        .unwrap_or_else(|| panic!("a {transport} listener in {listening:?}"))
}

/// A TLS connection to `address` that trusts only `certified`, handshake done.
fn connect_tls(
    certified: &rcgen::CertifiedKey<rcgen::KeyPair>,
    address: &str,
) -> StreamOwned<ClientConnection, TcpStream> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(certified.cert.der().to_vec()))
        .unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let connection = ClientConnection::new(Arc::new(client), name).unwrap();
    let mut tls = StreamOwned::new(connection, TcpStream::connect(address).unwrap());
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .expect("handshake with trunkd");
    }
    tls
}

#[test]
fn serves_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certified = certificate(dir.path());
    write_config(dir.path());
    let (mut child, listening) = start(dir.path());
    let address = address_of(&listening, "tls");
    let tcp_address = address_of(&listening, "tcp");
    let mut tls = connect_tls(&certified, &address);
    let presented = tls.conn.peer_certificates().unwrap()[0].clone();
    assert_eq!(presented.as_ref(), certified.cert.der().as_ref());
    // SIP over the connection: a keepalive ping gets its pong, an OPTIONS its 200.
    let local = tls.sock.local_addr().unwrap();
    tls.write_all(b"\r\n\r\n").unwrap();
    tls.write_all(options(local, "tls").as_bytes()).unwrap();
    let answer = read_answer(&mut tls);
    assert!(answer.starts_with("\r\nSIP/2.0 200 OK\r\n"), "{answer:?}");
    assert!(answer.contains(";branch=z9hG4bK-tls;"), "{answer:?}");

    let mut tcp = TcpStream::connect(&tcp_address).unwrap();
    let local = tcp.local_addr().unwrap();
    tcp.write_all(options(local, "tcp").as_bytes()).unwrap();
    let answer = read_answer(&mut tcp);
    assert!(answer.starts_with("SIP/2.0 200 OK\r\n"), "{answer:?}");

    child.kill().unwrap();
    child.wait().unwrap();
}

fn options(local: std::net::SocketAddr, tag: &str) -> String {
    let transport = tag.to_uppercase();
    format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport} {local};branch=z9hG4bK-{tag};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:edge@127.0.0.1>;tag={tag}\r\nTo: <sip:127.0.0.1>\r\n\
         Call-ID: options-{tag}@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Reads until a whole response (its empty line; answers here have no body) or 5 s.
fn read_answer(stream: &mut impl Read) -> String {
    let mut answer = Vec::new();
    let mut chunk = [0u8; 2048];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !answer.windows(4).skip(1).any(|w| w == b"\r\n\r\n") {
        assert!(
            std::time::Instant::now() < deadline,
            "no answer: {answer:?}"
        );
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(read) => answer.extend_from_slice(&chunk[..read]),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn a_broken_private_key_fails_validation_without_printing_key_material() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), certified.cert.pem()).unwrap();
    let key = certified.signing_key.serialize_pem();
    // Keep the PEM armour, damage the body.
    let damaged = key.replacen("MI", "XX", 1);
    std::fs::write(dir.path().join("key.pem"), &damaged).unwrap();
    write_config(dir.path());

    let output = Command::new(env!("CARGO_BIN_EXE_trunkd"))
        .args(["run", "--config"])
        .arg(dir.path().join("trunkd.toml"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Caught by validation, so it points into the config file (and check-config sees it).
    assert!(
        stderr.contains("trunkd.toml:8:15: private_key: "),
        "{stderr}"
    );
    assert!(stderr.contains("key.pem: "), "{stderr}");
    let body_line = damaged.lines().nth(1).unwrap();
    assert!(
        !stderr.contains(&body_line[4..20]),
        "key material printed: {stderr}"
    );
}

/// A carrier calling over TLS: trunkd answers 100 on the connection, the INVITE goes on to
/// the backend over UDP, and the backend's 200 comes back on the carrier's connection.
#[test]
fn a_call_over_tls_reaches_the_backend_and_its_answer_the_carrier() {
    let dir = tempfile::tempdir().unwrap();
    let certified = certificate(dir.path());
    let backend = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    backend
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let backend_port = backend.local_addr().unwrap().port();
    std::fs::write(
        dir.path().join("trunkd.toml"),
        format!(
            r#"
[daemon]
listen = ["tls:127.0.0.1:0", "udp:127.0.0.1:0"]
status_file = ""

[tls]
certificate = "cert.pem"
private_key = "key.pem"

[backend]
uri = "sip:127.0.0.1:{backend_port}"

[trunks.carrier]
domain = "192.0.2.77"
direction = "inbound"
allowed_inbound_ips = ["127.0.0.1"]
numbers = ["+15550100001"]
options_interval = 0
"#
        ),
    )
    .unwrap();
    let (mut child, listening) = start(dir.path());
    let mut tls = connect_tls(&certified, &address_of(&listening, "tls"));
    let local = tls.sock.local_addr().unwrap();
    let invite = format!(
        "INVITE sip:+15550100001@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/TLS {local};branch=z9hG4bK-tls-call;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+15551230000@carrier.example>;tag=c1\r\n\
         To: <sip:+15550100001@127.0.0.1>\r\n\
         Call-ID: tls-call@carrier\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:+15551230000@{local};transport=tls>\r\n\
         Content-Length: 0\r\n\r\n"
    );
    tls.write_all(invite.as_bytes()).unwrap();
    let trying = read_answer(&mut tls);
    assert!(trying.starts_with("SIP/2.0 100 Trying\r\n"), "{trying:?}");

    let mut buffer = [0u8; 4096];
    let (length, from) = backend
        .recv_from(&mut buffer)
        .expect("the INVITE at the backend");
    let forwarded = String::from_utf8_lossy(&buffer[..length]).into_owned();
    assert!(
        forwarded.starts_with("INVITE sip:+15550100001@127.0.0.1:"),
        "{forwarded}"
    );
    assert!(
        forwarded.contains("\r\nVia: SIP/2.0/UDP 127.0.0.1:"),
        "{forwarded}"
    );
    assert!(
        forwarded.contains("\r\nX-Trunk: carrier\r\n"),
        "{forwarded}"
    );
    // The backend answers 200 with every Via, Record-Route, From, Call-ID and CSeq.
    let mut ok = String::from("SIP/2.0 200 OK\r\n");
    for line in forwarded.lines() {
        if ["Via:", "Record-Route:", "From:", "Call-ID:", "CSeq:"]
            .iter()
            .any(|name| line.starts_with(name))
        {
            ok.push_str(line);
            ok.push_str("\r\n");
        }
        if line.starts_with("To:") {
            ok.push_str(line);
            ok.push_str(";tag=b1\r\n");
        }
    }
    ok.push_str(&format!(
        "Contact: <sip:127.0.0.1:{backend_port}>\r\nContent-Length: 0\r\n\r\n"
    ));
    backend.send_to(ok.as_bytes(), from).unwrap();
    let answered = read_answer(&mut tls);
    assert!(answered.starts_with("SIP/2.0 200 OK\r\n"), "{answered:?}");
    assert!(
        answered.contains(&format!(
            "Via: SIP/2.0/TLS {local};branch=z9hG4bK-tls-call;"
        )),
        "{answered:?}"
    );
    assert!(answered.contains("\r\nRecord-Route: "), "{answered:?}");

    child.kill().unwrap();
    child.wait().unwrap();
}
