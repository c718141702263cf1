//! Calls whose two sides reach trunkd in different ways, played by this test against the
//! real trunkd binary, with UDP sockets and TCP streams of the test as carrier and backend:
//! a carrier calling over TCP: the call gets a double Record-Route (RFC 5658), and when
//! the carrier's connection has closed, the backend's BYE reaches the carrier on a new
//! connection to its Contact, with trunkd's TCP Via, and the carrier's 200 on that
//! connection gets back to the backend.

// Real processes in real time: the virtual-clock rule is for the core.
#![allow(clippy::disallowed_methods)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::{Trunkd, WAIT, free_port};

const DID: &str = "+15550100001";

/// Reads one SIP message (headers and a Content-Length body) from a stream.
fn read_message(stream: &mut TcpStream, pending: &mut Vec<u8>) -> String {
    stream.set_read_timeout(Some(WAIT)).unwrap();
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

#[test]
fn the_backends_bye_reaches_a_tcp_carrier_on_a_new_connection_after_its_own_closed() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let backend = UdpSocket::bind("127.0.0.1:0").unwrap();
    let backend_port = backend.local_addr().unwrap().port();
    // Where the carrier listens, as its Via and Contact say.
    let carrier = TcpListener::bind("127.0.0.1:0").unwrap();
    let carrier_port = carrier.local_addr().unwrap().port();
    let config = dir.path().join("trunkd.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[daemon]
listen = ["udp:127.0.0.1:{port}", "tcp:127.0.0.1:{port}"]
status_interval = "1s"
status_file = ""

[backend]
uri = "sip:127.0.0.1:{backend_port}"

[trunks.lab]
domain = "192.0.2.77"
allowed_inbound_ips = ["127.0.0.1"]
numbers = ["{DID}"]
max_channels = 1
options_interval = 0
"#
        ),
    )
    .unwrap();
    let mut trunkd = Trunkd::start(&config);
    trunkd.wait_for(&["listening on tcp:127.0.0.1"]);

    // The carrier's INVITE over a connection of its own.
    let mut connection = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut pending = Vec::new();
    let contact = format!("<sip:+15551230000@127.0.0.1:{carrier_port};transport=tcp>");
    let invite = format!(
        "INVITE sip:{DID}@127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/TCP 127.0.0.1:{carrier_port};branch=z9hG4bK-tcp-1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+15551230000@carrier.example>;tag=carrier-1\r\n\
         To: <sip:{DID}@127.0.0.1:{port}>\r\n\
         Call-ID: tcp-call-1@carrier.example\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: {contact}\r\n\
         Content-Length: 0\r\n\r\n"
    );
    connection.write_all(invite.as_bytes()).unwrap();
    let trying = read_message(&mut connection, &mut pending);
    assert!(trying.starts_with("SIP/2.0 100 Trying\r\n"), "{trying}");

    let forwarded = receive(&backend, "INVITE ");
    assert_eq!(
        headers(&forwarded, "Record-Route"),
        [
            format!("<sip:127.0.0.1:{port};lr>"),
            format!("<sip:127.0.0.1:{port};transport=tcp;lr>"),
        ],
        "{forwarded}"
    );
    let backend_contact = format!("Contact: <sip:127.0.0.1:{backend_port}>\r\n");
    let ok = response(&forwarded, "200 OK", Some("backend-1"), &backend_contact);
    backend.send_to(ok.as_bytes(), ("127.0.0.1", port)).unwrap();
    let relayed = read_message(&mut connection, &mut pending);
    assert!(relayed.starts_with("SIP/2.0 200 OK\r\n"), "{relayed}");
    // The carrier's route set is the Record-Route reversed: our TCP entry first.
    let ack = format!(
        "ACK sip:127.0.0.1:{backend_port} SIP/2.0\r\n\
         Via: SIP/2.0/TCP 127.0.0.1:{carrier_port};branch=z9hG4bK-tcp-2;rport\r\n\
         Route: <sip:127.0.0.1:{port};transport=tcp;lr>, <sip:127.0.0.1:{port};lr>\r\n\
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
    std::thread::sleep(Duration::from_millis(300));

    // The backend hangs up through both of trunkd's Route entries, to the carrier's
    // Contact.
    let bye = format!(
        "BYE sip:+15551230000@127.0.0.1:{carrier_port};transport=tcp SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{backend_port};branch=z9hG4bK-backend-bye\r\n\
         Route: <sip:127.0.0.1:{port};lr>, <sip:127.0.0.1:{port};transport=tcp;lr>\r\n\
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
    carrier.set_nonblocking(false).unwrap();
    let (mut again, _) = {
        let (sender, accepted) = std::sync::mpsc::channel();
        let listener = carrier.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = sender.send(listener.accept());
        });
        accepted
            .recv_timeout(WAIT)
            .expect("trunkd connects to the carrier's Contact")
            .unwrap()
    };
    let mut pending = Vec::new();
    let received = read_message(&mut again, &mut pending);
    assert!(
        received.starts_with(&format!(
            "BYE sip:+15551230000@127.0.0.1:{carrier_port};transport=tcp SIP/2.0\r\n"
        )),
        "{received}"
    );
    assert!(
        headers(&received, "Via")[0].starts_with(&format!("SIP/2.0/TCP 127.0.0.1:{port};")),
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
