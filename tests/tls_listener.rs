//! The TLS listener of the real binary: a certificate from `[tls]` is served and a client
//! that trusts it completes a handshake; a broken key fails validation without printing it.

use std::io::{BufRead, BufReader, Read};
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
listen = ["tls:127.0.0.1:0"]

[tls]
certificate = "cert.pem"
private_key = "key.pem"
"#,
    )
    .unwrap();
}

#[test]
fn serves_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), certified.cert.pem()).unwrap();
    std::fs::write(
        dir.path().join("key.pem"),
        certified.signing_key.serialize_pem(),
    )
    .unwrap();
    write_config(dir.path());

    let mut child = Command::new(env!("CARGO_BIN_EXE_trunkd"))
        .args(["run", "--config"])
        .arg(dir.path().join("trunkd.toml"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut address = None;
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        if let Some(found) = line.trim().rsplit_once("listening on tls:") {
            address = Some(found.1.to_owned());
            break;
        }
        line.clear();
    }
    let address = address.expect("a tls listener");

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
    let mut tls = StreamOwned::new(connection, TcpStream::connect(&address).unwrap());
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .expect("handshake with trunkd");
    }
    let presented = tls.conn.peer_certificates().unwrap()[0].clone();
    assert_eq!(presented.as_ref(), certified.cert.der().as_ref());
    // Until SIP over TLS is served, trunkd closes the connection after the handshake.
    let mut rest = Vec::new();
    let _ = tls.read_to_end(&mut rest);
    assert!(rest.is_empty());

    child.kill().unwrap();
    child.wait().unwrap();
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
        stderr.contains("trunkd.toml:7:15: private_key: "),
        "{stderr}"
    );
    assert!(stderr.contains("key.pem: "), "{stderr}");
    let body_line = damaged.lines().nth(1).unwrap();
    assert!(
        !stderr.contains(&body_line[4..20]),
        "key material printed: {stderr}"
    );
}
