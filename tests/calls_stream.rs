//! A carrier calling over TCP and over TLS, played by this test against the real trunkd
//! binary, with a UDP socket of the test as the backend: the call gets a double
//! Record-Route (RFC 5658), and when the carrier's connection has closed, the backend's
//! BYE reaches the carrier on a new connection to its Contact (over TLS: verified for the
//! trunk's domain against `[tls] ca_file`), with trunkd's TCP/TLS Via, and the carrier's
//! 200 on that connection gets back to the backend.

// Real processes in real time: the virtual-clock rule is for the core.
#![allow(clippy::disallowed_methods)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tokio_rustls::rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName,
};
use tokio_rustls::rustls::{
    ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection, StreamOwned,
};

use common::{Trunkd, WAIT, free_port};

const DID: &str = "+15550100001";

/// A connection of the carrier's: TCP, or TLS over TCP.
trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// Reads one SIP message (headers and a Content-Length body) from a stream.
fn read_message(stream: &mut dyn Stream, pending: &mut Vec<u8>) -> String {
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("Content-Length: "))
                .map_or(0, |value| value.trim().parse().unwrap());
            let total = end + 4 + length;
            if pending.len() >= total {
                let message: Vec<u8> = pending.drain(..total).collect();
                return String::from_utf8(message).unwrap();
            }
        }
        let mut chunk = [0u8; 4096];
        let read = stream
            .read(&mut chunk)
            .expect("a message before the timeout");
        assert!(read > 0, "closed before a whole message");
        pending.extend_from_slice(&chunk[..read]);
    }
}

/// The next datagram the backend gets that starts with `start`, skipping others
/// (retransmissions).
fn receive(backend: &UdpSocket, start: &str) -> String {
    backend.set_read_timeout(Some(WAIT)).unwrap();
    let deadline = Instant::now() + WAIT;
    let mut buffer = [0u8; 8192];
    while Instant::now() < deadline {
        let (read, _) = backend.recv_from(&mut buffer).expect("a datagram in time");
        let text = String::from_utf8_lossy(&buffer[..read]).into_owned();
        if text.starts_with(start) {
            return text;
        }
    }
    panic!("the backend got no {start}");
}

fn headers<'a>(message: &'a str, name: &str) -> Vec<&'a str> {
    message
        .lines()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
        .collect()
}

/// A response to `request` copying what RFC 3261 §8.2.6.2 says, plus `extra` lines.
fn response(request: &str, status: &str, to_tag: Option<&str>, extra: &str) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for line in request.lines() {
        for name in ["Via:", "Record-Route:", "From:", "Call-ID:", "CSeq:"] {
            if line.starts_with(name) {
                out.push_str(line);
                out.push_str("\r\n");
            }
        }
        if line.starts_with("To:") {
            out.push_str(line);
            if let Some(tag) = to_tag {
                out.push_str(&format!(";tag={tag}"));
            }
            out.push_str("\r\n");
        }
    }
    out.push_str(extra);
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

/// A self-signed certificate for "localhost": trunkd's TLS listener, the carrier's TLS
/// server, and the CA trunkd trusts (`[tls] ca_file`).
struct Certificate {
    der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

fn certificate(dir: &Path) -> Certificate {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.join("cert.pem"), certified.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem()).unwrap();
    Certificate {
        der: certified.cert.der().clone(),
        key_der: certified.signing_key.serialize_der(),
    }
}

fn provider() -> Arc<tokio_rustls::rustls::crypto::CryptoProvider> {
    Arc::new(tokio_rustls::rustls::crypto::ring::default_provider())
}

/// The carrier's connection to trunkd, with a read timeout.
fn connect(tls: Option<&Certificate>, port: u16) -> Box<dyn Stream> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let Some(certificate) = tls else {
        return Box::new(tcp);
    };
    let mut roots = RootCertStore::empty();
    roots.add(certificate.der.clone()).unwrap();
    let client = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let connection = ClientConnection::new(Arc::new(client), name).unwrap();
    Box::new(StreamOwned::new(connection, tcp))
}

/// The next connection trunkd opens to the carrier's listener (TLS: the carrier's side of
/// the handshake), with a read timeout.
fn accept(listener: &TcpListener, tls: Option<&Certificate>) -> Box<dyn Stream> {
    let (sender, accepted) = std::sync::mpsc::channel();
    let listener = listener.try_clone().unwrap();
    std::thread::spawn(move || {
        let _ = sender.send(listener.accept());
    });
    let (tcp, _) = accepted
        .recv_timeout(WAIT)
        .expect("trunkd connects to the carrier's Contact")
        .unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let Some(certificate) = tls else {
        return Box::new(tcp);
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certificate.key_der.clone()));
    let server = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certificate.der.clone()], key)
        .unwrap();
    let connection = ServerConnection::new(Arc::new(server)).unwrap();
    Box::new(StreamOwned::new(connection, tcp))
}

#[test]
fn the_backends_bye_reaches_a_tcp_carrier_on_a_new_connection_after_its_own_closed() {
    call_then_reconnect(false);
}

#[test]
fn the_backends_bye_reaches_a_tls_carrier_on_a_new_verified_connection_after_its_own_closed() {
    call_then_reconnect(true);
}

fn call_then_reconnect(tls: bool) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let backend = UdpSocket::bind("127.0.0.1:0").unwrap();
    let backend_port = backend.local_addr().unwrap().port();
    // Where the carrier listens, as its Via and Contact say.
    let carrier = TcpListener::bind("127.0.0.1:0").unwrap();
    let carrier_port = carrier.local_addr().unwrap().port();
    let certificate = tls.then(|| certificate(dir.path()));
    let (name, upper) = if tls { ("tls", "TLS") } else { ("tcp", "TCP") };
    // Over TLS the trunk's domain is the name trunkd verifies the carrier's certificate for.
    let (domain, tls_table) = if tls {
        (
            "localhost",
            "[tls]\ncertificate = \"cert.pem\"\nprivate_key = \"key.pem\"\nca_file = \"cert.pem\"\n",
        )
    } else {
        ("192.0.2.77", "")
    };
    let config = dir.path().join("trunkd.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[daemon]
listen = ["udp:127.0.0.1:{port}", "{name}:127.0.0.1:{port}"]
status_interval = "1s"
# Every trunk line in every report: the tests read the counters off the next one.
status_log = "all"
status_file = ""

{tls_table}
[backend]
uri = "sip:127.0.0.1:{backend_port}"

[trunks.lab]
domain = "{domain}"
allowed_inbound_ips = ["127.0.0.1"]
numbers = ["{DID}"]
max_channels = 1
options_interval = 0
"#
        ),
    )
    .unwrap();
    // At debug, the listeners say when a carrier's connection is gone.
    let log_filter = Path::new("info,trunkd::io::listeners=debug");
    let mut trunkd = Trunkd::start_with(&config, &[], &[("RUST_LOG", log_filter)]);
    trunkd.wait_for(&[&format!("listening on {name}:127.0.0.1")]);

    // The carrier's INVITE over a connection of its own.
    let mut connection = connect(certificate.as_ref(), port);
    let mut pending = Vec::new();
    let contact = format!("<sip:+15551230000@127.0.0.1:{carrier_port};transport={name}>");
    let invite = format!(
        "INVITE sip:{DID}@127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/{upper} 127.0.0.1:{carrier_port};branch=z9hG4bK-tcp-1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+15551230000@carrier.example>;tag=carrier-1\r\n\
         To: <sip:{DID}@127.0.0.1:{port}>\r\n\
         Call-ID: tcp-call-1@carrier.example\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: {contact}\r\n\
         Content-Length: 0\r\n\r\n"
    );
    connection.write_all(invite.as_bytes()).unwrap();
    let trying = read_message(&mut *connection, &mut pending);
    assert!(trying.starts_with("SIP/2.0 100 Trying\r\n"), "{trying}");

    let forwarded = receive(&backend, "INVITE ");
    let ours = format!("<sip:127.0.0.1:{port};transport={name};lr>");
    assert_eq!(
        headers(&forwarded, "Record-Route"),
        [format!("<sip:127.0.0.1:{port};lr>"), ours.clone()],
        "{forwarded}"
    );
    let backend_contact = format!("Contact: <sip:127.0.0.1:{backend_port}>\r\n");
    let ok = response(&forwarded, "200 OK", Some("backend-1"), &backend_contact);
    backend.send_to(ok.as_bytes(), ("127.0.0.1", port)).unwrap();
    let relayed = read_message(&mut *connection, &mut pending);
    assert!(relayed.starts_with("SIP/2.0 200 OK\r\n"), "{relayed}");
    // The carrier's route set is the Record-Route reversed: our TCP/TLS entry first.
    let ack = format!(
        "ACK sip:127.0.0.1:{backend_port} SIP/2.0\r\n\
         Via: SIP/2.0/{upper} 127.0.0.1:{carrier_port};branch=z9hG4bK-tcp-2;rport\r\n\
         Route: {ours}, <sip:127.0.0.1:{port};lr>\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+15551230000@carrier.example>;tag=carrier-1\r\n\
         To: <sip:{DID}@127.0.0.1:{port}>;tag=backend-1\r\n\
         Call-ID: tcp-call-1@carrier.example\r\n\
         CSeq: 1 ACK\r\n\
         Content-Length: 0\r\n\r\n"
    );
    connection.write_all(ack.as_bytes()).unwrap();
    let acked = receive(&backend, "ACK ");
    assert!(headers(&acked, "Route").is_empty(), "{acked}");
    trunkd.wait_for(&["trunk=lab", "channels=1/1 calls=1 "]);

    // The carrier closes its connection; trunkd forgets it.
    drop(connection);
    trunkd.wait_for(&["connection closed"]);

    // The backend hangs up through both of trunkd's Route entries, to the carrier's
    // Contact.
    let target = format!("sip:+15551230000@127.0.0.1:{carrier_port};transport={name}");
    let bye = format!(
        "BYE {target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{backend_port};branch=z9hG4bK-backend-bye\r\n\
         Route: <sip:127.0.0.1:{port};lr>, {ours}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{DID}@127.0.0.1:{port}>;tag=backend-1\r\n\
         To: <sip:+15551230000@carrier.example>;tag=carrier-1\r\n\
         Call-ID: tcp-call-1@carrier.example\r\n\
         CSeq: 1 BYE\r\n\
         Content-Length: 0\r\n\r\n"
    );
    backend
        .send_to(bye.as_bytes(), ("127.0.0.1", port))
        .unwrap();
    let mut again = accept(&carrier, certificate.as_ref());
    let mut pending = Vec::new();
    let received = read_message(&mut *again, &mut pending);
    assert!(
        received.starts_with(&format!("BYE {target} SIP/2.0\r\n")),
        "{received}"
    );
    assert!(
        headers(&received, "Via")[0].starts_with(&format!("SIP/2.0/{upper} 127.0.0.1:{port};")),
        "{received}"
    );
    assert!(headers(&received, "Route").is_empty(), "{received}");
    trunkd.wait_for(&["trunk=lab", "channels=0/1 calls=1 "]);

    // The carrier's 200 on the new connection goes back to the backend.
    let ok = response(&received, "200 OK", None, "");
    again.write_all(ok.as_bytes()).unwrap();
    let answered = receive(&backend, "SIP/2.0 200 OK");
    assert!(answered.contains("CSeq: 1 BYE\r\n"), "{answered}");
    assert!(
        headers(&answered, "Via")[0].contains("branch=z9hG4bK-backend-bye"),
        "{answered}"
    );
    trunkd.stop();
}

#[test]
fn a_backend_over_tls_gets_the_call_on_a_verified_connection_with_its_own_record_route() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let certificate = certificate(dir.path());
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend_port = backend.local_addr().unwrap().port();
    let config = dir.path().join("trunkd.toml");
    // The backend by name: trunkd verifies its certificate for "localhost" against
    // `[tls] ca_file`.
    std::fs::write(
        &config,
        format!(
            r#"
[daemon]
listen = ["udp:127.0.0.1:{port}", "tls:127.0.0.1:{port}"]
status_interval = "1h"
status_file = ""

[tls]
certificate = "cert.pem"
private_key = "key.pem"
ca_file = "cert.pem"

[backend]
uri = "sip:localhost:{backend_port};transport=tls"

[trunks.lab]
domain = "192.0.2.77"
allowed_inbound_ips = ["127.0.0.1"]
numbers = ["{DID}"]
options_interval = 0
"#
        ),
    )
    .unwrap();
    let mut trunkd = Trunkd::start(&config);
    trunkd.wait_for(&["listening on tls:127.0.0.1"]);
    // The backend's name is looked up asynchronously (trunkd says nothing when it
    // resolves): a window, as in calls_sipp's backend-by-name test.
    std::thread::sleep(std::time::Duration::from_millis(500));

    let carrier = UdpSocket::bind("127.0.0.1:0").unwrap();
    carrier.set_read_timeout(Some(WAIT)).unwrap();
    let local = carrier.local_addr().unwrap();
    let invite = format!(
        "INVITE sip:{DID}@127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-tls-backend-1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+15551230000@carrier.example>;tag=carrier-1\r\n\
         To: <sip:{DID}@127.0.0.1:{port}>\r\n\
         Call-ID: tls-backend-1@carrier.example\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:+15551230000@{local}>\r\n\
         Content-Length: 0\r\n\r\n"
    );
    carrier
        .send_to(invite.as_bytes(), ("127.0.0.1", port))
        .unwrap();
    let mut connection = accept(&backend, Some(&certificate));
    let mut pending = Vec::new();
    let forwarded = read_message(&mut *connection, &mut pending);
    assert!(
        forwarded.starts_with(&format!(
            "INVITE sip:{DID}@localhost:{backend_port};transport=tls SIP/2.0\r\n"
        )),
        "{forwarded}"
    );
    assert!(
        headers(&forwarded, "Via")[0].starts_with(&format!("SIP/2.0/TLS 127.0.0.1:{port};")),
        "{forwarded}"
    );
    assert_eq!(
        headers(&forwarded, "Record-Route"),
        [
            format!("<sip:127.0.0.1:{port};transport=tls;lr>"),
            format!("<sip:127.0.0.1:{port};lr>")
        ],
        "{forwarded}"
    );
    let ok = response(
        &forwarded,
        "200 OK",
        Some("backend-1"),
        "Contact: <sip:localhost;transport=tls>\r\n",
    );
    connection.write_all(ok.as_bytes()).unwrap();
    let deadline = Instant::now() + WAIT;
    let answered = loop {
        let mut buffer = [0u8; 4096];
        let length = carrier.recv(&mut buffer).expect("the backend's answer");
        let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
        if text.starts_with("SIP/2.0 200 OK") {
            break text;
        }
        assert!(Instant::now() < deadline, "{text}");
    };
    assert!(
        answered.contains("To: <sip:+15550100001@127.0.0.1:"),
        "{answered}"
    );
    trunkd.stop();
}
