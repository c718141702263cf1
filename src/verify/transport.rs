//! Step 3: verify's own UDP socket or TCP/TLS connection toward the chosen target (the
//! TLS certificate checked and described), and the link the SIP steps send and receive on.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::config::{self, Config, Transport, Trunk};
use crate::io::clock;
use crate::sip::Transmit;
use crate::sip::scan::MAX_MESSAGE_LEN;
use crate::sip::scan::frame::{self, Frame};

use super::dns::Resolution;
use super::report::{Status, Step, millis};

/// TCP connect and TLS handshake limit, as the daemon's.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

pub(super) enum Incoming {
    Message { source: SocketAddr, bytes: Vec<u8> },
    Closed(String),
}

enum Channel {
    Udp(UdpSocket),
    Stream {
        /// `None` once a write failed.
        writer: Option<WriteHalf<Box<dyn Stream>>>,
        /// `None` once the reader reported the end.
        incoming: Option<mpsc::UnboundedReceiver<Incoming>>,
    },
}

/// verify's own socket or connection toward the chosen target.
pub(super) struct Link {
    pub(super) peer: SocketAddr,
    /// What our Via and Contact name: the public address if configured, else our own.
    pub(super) advertised: SocketAddr,
    channel: Channel,
}

impl Link {
    pub(super) async fn send(&mut self, transmit: &Transmit) -> Result<(), String> {
        match &mut self.channel {
            Channel::Udp(socket) => socket
                .send_to(&transmit.bytes, transmit.destination)
                .await
                .map(|_| ())
                .map_err(|error| format!("send failed: {error}")),
            Channel::Stream { writer, .. } => {
                let Some(stream) = writer.as_mut() else {
                    return Err("the connection is closed".into());
                };
                let written = async {
                    stream.write_all(&transmit.bytes).await?;
                    stream.flush().await
                };
                match written.await {
                    Ok(()) => Ok(()),
                    Err(error) => {
                        *writer = None;
                        Err(format!("write failed: {error}"))
                    }
                }
            }
        }
    }

    /// The next message or the end of the connection; never returns once that was told.
    pub(super) async fn recv(&mut self) -> Incoming {
        match &mut self.channel {
            Channel::Udp(socket) => {
                let mut buffer = vec![0u8; MAX_MESSAGE_LEN];
                loop {
                    match socket.recv_from(&mut buffer).await {
                        Ok((length, source)) => {
                            buffer.truncate(length);
                            return Incoming::Message {
                                source,
                                bytes: buffer,
                            };
                        }
                        // Nothing to act on (an unconnected socket hears no ICMP); do not
                        // spin if the error repeats.
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
            }
            Channel::Stream { incoming, .. } => {
                let message = match incoming.as_mut() {
                    Some(receiver) => receiver.recv().await,
                    None => None,
                };
                match message {
                    Some(Incoming::Closed(why)) => {
                        *incoming = None;
                        Incoming::Closed(why)
                    }
                    Some(message) => message,
                    None => {
                        *incoming = None;
                        std::future::pending().await
                    }
                }
            }
        }
    }
}

/// Opens verify's socket (UDP) or connection (TCP, TLS) toward the chosen target.
pub(super) async fn connect(
    config: &Config,
    trunk: &Trunk,
    resolution: &Resolution,
    public_ip: Option<IpAddr>,
) -> Result<(Link, Step), Step> {
    let peer = resolution.chosen;
    let transport = trunk.transport;
    // From the daemon's listener address of the transport when it names one (so the
    // source address is the daemon's), on an ephemeral port: the listen ports stay the
    // daemon's.
    let listener_ip = config
        .daemon
        .listen
        .iter()
        .find(|listen| listen.transport == transport && listen.address.is_ipv4() == peer.is_ipv4())
        .map(|listen| listen.address.ip())
        .filter(|ip| !ip.is_unspecified());
    if transport == Transport::Udp {
        let bind_ip = listener_ip.unwrap_or(if peer.is_ipv4() {
            IpAddr::from([0u8; 4])
        } else {
            IpAddr::from([0u16; 8])
        });
        let socket = UdpSocket::bind(SocketAddr::new(bind_ip, 0))
            .await
            .map_err(|error| {
                Step::new(
                    Status::Fail,
                    "transport",
                    format!("cannot bind a UDP socket on {bind_ip}: {error}"),
                )
            })?;
        let local = socket.local_addr().map_err(|error| {
            Step::new(Status::Fail, "transport", format!("local address: {error}"))
        })?;
        let ip = match (public_ip, listener_ip) {
            (Some(public), _) => public,
            (None, Some(ip)) => ip,
            (None, None) => crate::io::network::source_address_toward(peer)
                .await
                .map_err(|error| {
                    Step::new(
                        Status::Fail,
                        "transport",
                        format!("no route to {peer}: {error}"),
                    )
                })?,
        };
        let link = Link {
            peer,
            advertised: SocketAddr::new(ip, local.port()),
            channel: Channel::Udp(socket),
        };
        let step = Step::new(
            Status::Skip,
            "transport",
            format!(
                "udp is connectionless; sending from {} (own ephemeral port)",
                SocketAddr::new(ip, local.port())
            ),
        );
        return Ok((link, step));
    }

    let started = clock::now();
    let connecting = crate::io::network::connect_from(listener_ip, peer);
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            return Err(Step::new(
                Status::Fail,
                "transport",
                format!("tcp connect to {peer} failed: {error}"),
            ));
        }
        Err(_) => {
            return Err(Step::new(
                Status::Fail,
                "transport",
                format!(
                    "tcp connect to {peer} timed out after {} s",
                    CONNECT_TIMEOUT.as_secs()
                ),
            ));
        }
    };
    let connected_in = clock::now().saturating_duration_since(started);
    let _ = tcp.set_nodelay(true);
    let local = tcp
        .local_addr()
        .map_err(|error| Step::new(Status::Fail, "transport", format!("local address: {error}")))?;
    let advertised = SocketAddr::new(public_ip.unwrap_or(local.ip()), local.port());
    let connected = format!(
        "tcp connected to {peer} from {local} in {}",
        millis(connected_in)
    );
    if transport == Transport::Tcp {
        let step = Step::new(Status::Ok, "transport", connected);
        return Ok((stream_link(peer, advertised, Box::new(tcp)), step));
    }

    let ca_file = config.tls.as_ref().and_then(|tls| tls.ca_file.as_deref());
    let trusted = match ca_file {
        Some(path) => format!("the system's roots plus ca_file {}", path.display()),
        None => "the system's roots (no [tls] ca_file)".to_owned(),
    };
    let client = config::tls::client_config(ca_file).map_err(|error| {
        Step::new(
            Status::Fail,
            "transport",
            format!("no TLS client configuration: {error}"),
        )
        .detail(connected.clone())
    })?;
    let name = ServerName::try_from(resolution.server_name.clone()).map_err(|error| {
        Step::new(
            Status::Fail,
            "transport",
            format!(
                "\"{}\" is not a TLS server name: {error}",
                resolution.server_name
            ),
        )
    })?;
    let started = clock::now();
    let handshake = TlsConnector::from(client).connect(name, tcp);
    let tls = match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            return Err(Step::new(
                Status::Fail,
                "transport",
                format!("TLS handshake with {peer} failed: {error}"),
            )
            .detail(connected)
            .detail(format!(
                "the certificate must be valid for \"{}\" and chain to {trusted}",
                resolution.server_name
            )));
        }
        Err(_) => {
            return Err(Step::new(
                Status::Fail,
                "transport",
                format!(
                    "TLS handshake with {peer} timed out after {} s",
                    CONNECT_TIMEOUT.as_secs()
                ),
            )
            .detail(connected));
        }
    };
    let handshake_in = clock::now().saturating_duration_since(started);
    let (_, session) = tls.get_ref();
    let version = session
        .protocol_version()
        .map_or_else(|| "?".to_owned(), |version| format!("{version:?}"));
    let suite = session
        .negotiated_cipher_suite()
        .map_or_else(|| "?".to_owned(), |suite| format!("{:?}", suite.suite()));
    let chain = session.peer_certificates().unwrap_or_default();
    let step = Step::new(
        Status::Ok,
        "transport",
        format!(
            "tls to {peer}: certificate verified for \"{}\" ({version}, {suite}, handshake {})",
            resolution.server_name,
            millis(handshake_in)
        ),
    )
    .detail(connected)
    .detail(format!(
        "chain of {} sent by the server (leaf {} bytes), trusted via {trusted}",
        crate::io::count_of(chain.len(), "certificate"),
        chain.first().map_or(0, |leaf| leaf.len())
    ));
    let step = match chain.first().map(|leaf| describe_certificate(leaf)) {
        Some(Ok(leaf)) => {
            let mut step = step
                .detail(format!("subject: {}", leaf.subject))
                .detail(format!("names (SAN): {}", leaf.names.join(", ")))
                .detail(format!(
                    "valid until {} ({} days from now)",
                    leaf.not_after, leaf.days_left
                ));
            if leaf.days_left < EXPIRY_WARNING_DAYS {
                step.status = Status::Warn;
                step.summary = format!(
                    "{}; the certificate expires in {} days",
                    step.summary, leaf.days_left
                );
            }
            step
        }
        Some(Err(error)) => step.detail(format!("the leaf certificate could not be read: {error}")),
        None => step,
    };
    Ok((stream_link(peer, advertised, Box::new(tls)), step))
}

/// A carrier certificate expiring sooner than this is a warning.
const EXPIRY_WARNING_DAYS: i64 = 30;

/// What an operator checks on a carrier's certificate.
struct Leaf {
    subject: String,
    names: Vec<String>,
    not_after: String,
    days_left: i64,
}

fn describe_certificate(der: &[u8]) -> Result<Leaf, String> {
    use x509_parser::extensions::GeneralName;
    let (_, certificate) =
        x509_parser::parse_x509_certificate(der).map_err(|error| error.to_string())?;
    let names = match certificate.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .map(|name| match name {
                GeneralName::DNSName(dns) => (*dns).to_owned(),
                GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => <[u8; 4]>::try_from(*bytes)
                        .map_or("?".into(), |b| IpAddr::from(b).to_string()),
                    16 => <[u8; 16]>::try_from(*bytes)
                        .map_or("?".into(), |b| IpAddr::from(b).to_string()),
                    _ => "?".into(),
                },
                other => format!("{other:?}"),
            })
            .collect(),
        Ok(None) => vec!["none".to_owned()],
        Err(error) => vec![format!("unreadable ({error})")],
    };
    let not_after = certificate.validity().not_after;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    Ok(Leaf {
        subject: certificate.subject().to_string(),
        names,
        not_after: not_after.to_string(),
        days_left: (not_after.timestamp() - now) / 86_400,
    })
}

fn stream_link(peer: SocketAddr, advertised: SocketAddr, stream: Box<dyn Stream>) -> Link {
    let (reader, writer) = tokio::io::split(stream);
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(read_frames(peer, reader, sender));
    Link {
        peer,
        advertised,
        channel: Channel::Stream {
            writer: Some(writer),
            incoming: Some(receiver),
        },
    }
}

/// Cuts the stream into messages (RFC 3261 §18.3) until it ends or cannot be framed.
async fn read_frames(
    peer: SocketAddr,
    mut reader: ReadHalf<Box<dyn Stream>>,
    messages: mpsc::UnboundedSender<Incoming>,
) {
    let mut buffer = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 16 * 1024];
    let why = 'read: loop {
        let read = match reader.read(&mut chunk).await {
            Ok(0) => break "closed by peer".to_owned(),
            Ok(read) => read,
            Err(error) => break format!("read failed: {error}"),
        };
        buffer.extend_from_slice(&chunk[..read]);
        loop {
            match frame::frame(&buffer, MAX_MESSAGE_LEN) {
                Ok(Frame::Incomplete) => break,
                Ok(Frame::KeepAlive { len }) => {
                    buffer.drain(..len);
                }
                Ok(Frame::Message { len }) => {
                    let bytes = buffer.drain(..len).collect();
                    let _ = messages.send(Incoming::Message {
                        source: peer,
                        bytes,
                    });
                }
                Err(error) => break 'read format!("unframeable stream: {error}"),
            }
        }
    };
    let _ = messages.send(Incoming::Closed(why));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_show_subject_names_and_expiry() {
        let mut params =
            rcgen::CertificateParams::new(vec!["sip.carrier.test".to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress("192.0.2.7".parse().unwrap()));
        params.not_after = rcgen::date_time_ymd(2001, 2, 3);
        let key = rcgen::KeyPair::generate().unwrap();
        let certificate = params.self_signed(&key).unwrap();
        let leaf = describe_certificate(certificate.der()).unwrap();
        assert_eq!(leaf.names, ["sip.carrier.test", "192.0.2.7"]);
        assert!(
            leaf.not_after.starts_with("Feb  3 00:00:00 2001") || leaf.not_after.contains("2001"),
            "{}",
            leaf.not_after
        );
        assert!(
            leaf.days_left < EXPIRY_WARNING_DAYS,
            "an expired one is well inside the warning"
        );
        assert!(describe_certificate(b"not DER").is_err());
    }
}
