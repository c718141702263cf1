//! REGISTER over TLS with the real binary: the carrier's certificate is verified against
//! `[tls] ca_file` for the trunk's domain. The registrar here is a small in-test TLS
//! server (rustls) answering 200 OK; digest and state handling are covered elsewhere.
//! After its 200 it sends an RFC 5626 CRLF CRLF ping and an OPTIONS over the same
//! connection, and expects trunkd's CRLF pong and a 200.

// A real process in real time: the virtual-clock rule is for the core.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{ServerConfig, ServerConnection, StreamOwned};
use trunkd::sip::scan::frame::{Frame, frame};
use trunkd::sip::scan::{EMPTY_HEADER, HeaderName, MAX_HEADERS, scan};

const WAIT: Duration = Duration::from_secs(20);

/// A test CA and a server certificate for "localhost" signed by it.
struct Pki {
    ca_pem: String,
    leaf_pem: String,
    leaf_key_pem: String,
    leaf_der: CertificateDer<'static>,
    leaf_key_der: Vec<u8>,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        leaf_pem: leaf.pem(),
        leaf_key_pem: leaf_key.serialize_pem(),
        leaf_der: leaf.der().clone(),
        leaf_key_der: leaf_key.serialize_der(),
    }
}

/// Accepts TLS connections and answers every REGISTER with 200 OK (expires=300); reports
/// each REGISTER's first lines on `seen`.
fn registrar(pki: &Pki, seen: mpsc::Sender<String>) -> u16 {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.leaf_key_der.clone()));
    let config = Arc::new(
        ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![pki.leaf_der.clone()], key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let config = Arc::clone(&config);
            let seen = seen.clone();
            std::thread::spawn(move || serve(config, stream, seen));
        }
    });
    port
}

fn serve(config: Arc<ServerConfig>, stream: TcpStream, seen: mpsc::Sender<String>) {
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let connection = ServerConnection::new(config).unwrap();
    let mut tls = StreamOwned::new(connection, stream);
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Ok(read) = tls.read(&mut chunk) else {
            return;
        };
        if read == 0 {
            return;
        }
        buffer.extend_from_slice(&chunk[..read]);
        loop {
            let len = match frame(&buffer, 65_535) {
                Ok(Frame::Message { len }) => len,
                Ok(Frame::KeepAlive { len }) => {
                    buffer.drain(..len);
                    let _ = seen.send(if len == 2 { "PONG" } else { "PING" }.to_owned());
                    continue;
                }
                _ => break,
            };
            let message: Vec<u8> = buffer.drain(..len).collect();
            let mut headers = [EMPTY_HEADER; MAX_HEADERS];
            let request = scan(&message, &mut headers).unwrap();
            if let Some(code) = request.status_code() {
                // trunkd's answer to our OPTIONS or INVITE over this connection.
                let cseq =
                    String::from_utf8_lossy(request.header(HeaderName::CSeq).unwrap()).into_owned();
                let method = cseq.split(' ').nth(1).unwrap_or_default().to_owned();
                let _ = seen.send(format!("ANSWER {code} {method}"));
                continue;
            }
            let header = |name| String::from_utf8_lossy(request.header(name).unwrap()).into_owned();
            let _ = seen.send(String::from_utf8_lossy(&message).into_owned());
            let response = format!(
                "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=tls1\r\nCall-ID: {}\r\nCSeq: {}\r\n\
                 Contact: {};expires=300\r\nContent-Length: 0\r\n\r\n",
                header(HeaderName::Via),
                header(HeaderName::From),
                header(HeaderName::To),
                header(HeaderName::CallId),
                header(HeaderName::CSeq),
                header(HeaderName::Contact).split(',').next().unwrap(),
            );
            // The 200, then a keepalive ping (RFC 5626 §3.5.1) and an OPTIONS on the same
            // connection, as a carrier's edge does.
            let options = format!(
                "OPTIONS sip:trunk1@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:{port};branch=z9hG4bK-opt-{n}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:edge@localhost>;tag=e1\r\nTo: <sip:trunk1@127.0.0.1>\r\n\
                 Call-ID: opt-{n}@localhost\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
                port = tls.sock.local_addr().unwrap().port(),
                n = header(HeaderName::CSeq).split(' ').next().unwrap(),
            );
            // And a call to the trunk's number, as carriers send over the registration's
            // connection.
            let invite = format!(
                "INVITE sip:{DID}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:{port};branch=z9hG4bK-inv-{n}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:+15551230000@localhost>;tag=c{n}\r\nTo: <sip:{DID}@127.0.0.1>\r\n\
                 Call-ID: call-{n}@localhost\r\nCSeq: 1 INVITE\r\n\
                 Contact: <sip:+15551230000@127.0.0.1:{port};transport=tls>\r\nContent-Length: 0\r\n\r\n",
                port = tls.sock.local_addr().unwrap().port(),
                n = header(HeaderName::CSeq).split(' ').next().unwrap(),
            );
            if tls.write_all(response.as_bytes()).is_err()
                || tls.write_all(b"\r\n\r\n").is_err()
                || tls.write_all(options.as_bytes()).is_err()
                || tls.write_all(invite.as_bytes()).is_err()
            {
                return;
            }
        }
    }
}

/// The trunk's number (the registrar calls it over the registration's connection).
const DID: &str = "+15550100001";

/// A backend on UDP that answers every INVITE 200 OK; returns its port.
fn backend() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 8192];
        while let Ok((length, from)) = socket.recv_from(&mut buffer) {
            let request = String::from_utf8_lossy(&buffer[..length]).into_owned();
            if !request.starts_with("INVITE ") {
                continue;
            }
            let mut ok = String::from("SIP/2.0 200 OK\r\n");
            for line in request.lines() {
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
                "Contact: <sip:127.0.0.1:{port}>\r\nContent-Length: 0\r\n\r\n"
            ));
            let _ = socket.send_to(ok.as_bytes(), from);
        }
    });
    port
}

#[test]
fn registers_over_tls_verifying_the_certificate_for_the_domain() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("ca.pem", &pki.ca_pem);
    write("leaf.pem", &pki.leaf_pem);
    write("leaf.key", &pki.leaf_key_pem);
    let (seen_tx, seen) = mpsc::channel();
    let port = registrar(&pki, seen_tx);
    let backend_port = backend();
    write(
        "trunkd.toml",
        &format!(
            r#"
[daemon]
listen = ["udp:127.0.0.1:0", "tls:127.0.0.1:0"]
status_interval = "1h"

[tls]
certificate = "leaf.pem"
private_key = "leaf.key"
ca_file = "ca.pem"

[backend]
uri = "sip:127.0.0.1:{backend_port}"

[trunks.secure]
domain = "localhost"
port = {port}
transport = "tls"
direction = "both"
numbers = ["{DID}"]
allowed_inbound_ips = ["127.0.0.1"]
username = "trunk1"
password = "s3cret-tls"
register = true
options_interval = 0

# The same server reached as 127.0.0.1: its certificate names only "localhost".
[trunks.wrong-name]
domain = "127.0.0.1"
port = {port}
transport = "tls"
direction = "outbound"
username = "trunk2"
password = "s3cret-tls2"
register = true
options_interval = 0
"#
        ),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_trunkd"))
        .args(["run", "--config"])
        .arg(dir.path().join("trunkd.toml"))
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut log = Vec::new();
    let mut wait_for = |needle: &str| -> String {
        if let Some(line) = log.iter().find(|line: &&String| line.contains(needle)) {
            return line.clone();
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no line with {needle:?}:\n{}", log.join("\n")));
            log.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    };
    let tls_listener = wait_for("listening on tls:127.0.0.1:");
    let tls_port = tls_listener.rsplit(':').next().unwrap().trim().to_owned();

    let registered = wait_for("trunk=secure state=registered");
    assert!(registered.contains("expires_in=300"), "{registered}");
    assert!(
        registered.contains(&format!("next_hop=tls:127.0.0.1:{port}")),
        "{registered}"
    );
    let request = seen
        .recv_timeout(WAIT)
        .expect("the REGISTER reached the TLS registrar");
    assert!(
        request.starts_with(&format!("REGISTER sip:localhost:{port} SIP/2.0\r\n")),
        "{request}"
    );
    assert!(request.contains("Via: SIP/2.0/TLS "), "{request}");
    assert!(
        request.contains(&format!(
            "Contact: <sip:trunk1@127.0.0.1:{tls_port};transport=tls>"
        )),
        "{request}"
    );

    // The registrar's ping after its 200 got trunkd's pong on the same connection, and its
    // OPTIONS a 200 from trunkd's hot path (the registrar's address is the trunk's next
    // hop, allowed implicitly). Its INVITE got 100 on the connection, went on to the
    // backend over UDP, and the backend's 200 came back on the connection.
    let deadline = Instant::now() + WAIT;
    let (mut pong, mut answered, mut trying, mut call_answered) = (false, false, false, false);
    while !(pong && answered && trying && call_answered) {
        let left = deadline.saturating_duration_since(Instant::now());
        let next = seen.recv_timeout(left).unwrap_or_else(|_| {
            panic!(
                "pong {pong}, OPTIONS answered {answered}, INVITE 100 {trying}, \
                 INVITE 200 {call_answered}"
            )
        });
        pong |= next == "PONG";
        answered |= next == "ANSWER 200 OPTIONS";
        trying |= next == "ANSWER 100 INVITE";
        call_answered |= next == "ANSWER 200 INVITE";
    }

    let refused = wait_for("trunk=wrong-name state=backoff");
    assert!(refused.contains("TLS handshake failed"), "{refused}");
    assert!(
        refused.contains("NotValidForName") || refused.contains("not valid for name"),
        "{refused}"
    );

    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !log.iter().any(|line| line.contains("s3cret-tls")),
        "password logged"
    );
}
