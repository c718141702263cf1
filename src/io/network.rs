//! Sending what the control path queues, and resolving the next hops it asks for.
//!
//! UDP leaves from the listener socket of the destination's family, so responses come back
//! to it. TCP and TLS use one client connection per next hop (and, for TLS, server name),
//! reused by every trunk behind it; TLS verifies the server's certificate against the
//! system roots plus `[tls] ca_file`, for the name the trunk was configured with. Reads
//! are framed (RFC 3261 §18.3) and handed to the control path like datagrams, and a failed
//! connect, handshake or a dropped connection is reported back so the transaction fails at
//! once instead of waiting for Timer F.
//!
//! A peer with a connection to us, accepted by a listener or one of ours it sent a call
//! on, gets what is sent to its address on that connection ([`Accepted`]), not as a
//! datagram.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;
use tracing::{debug, warn};

use crate::call::Connection;
use crate::config::{Listen, Transport};
use crate::inbound::{Inbound, Worker};
use crate::io::dns::Dns;
use crate::io::hot_path::{Origin, Passed, Received, pass_on};
use crate::io::listeners::{Accepted, facing};
use crate::sip::Transmit;
use crate::sip::scan::MAX_MESSAGE_LEN;
use crate::sip::scan::frame::{self, Frame};
use crate::trunk::next_hop::{ResolveError, ResolveRequest, Resolved};
use crate::trunk::random::Random;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests waiting to be written to one connection.
const STREAM_QUEUE: usize = 256;

/// A connection that failed or closed: its peer, transport, and why.
pub(crate) type TransportFailure = (SocketAddr, Transport, String);

/// The listeners' sockets and addresses, the outgoing connections, and where received
/// messages and failures go.
#[derive(Clone)]
pub struct Network {
    udp: Vec<(SocketAddr, Arc<std::net::UdpSocket>)>,
    /// Bound tcp: and tls: listeners: the addresses Contacts name for those transports.
    stream_listeners: Vec<Listen>,
    public_ip: Option<IpAddr>,
    /// Client side of TLS; `None` when it could not be built (logged at start).
    tls: Option<TlsConnector>,
    streams: Arc<Mutex<HashMap<StreamKey, mpsc::Sender<Vec<u8>>>>>,
    control: mpsc::Sender<Received>,
    failures: mpsc::UnboundedSender<TransportFailure>,
    dns: Dns,
    /// The hot path, for requests that arrive over our own connections.
    inbound: Arc<Inbound>,
    /// Connections carriers opened to our listeners: what is sent to their address goes
    /// on them.
    accepted: Accepted,
    /// Where connections are spawned: a send may come from a UDP listener thread, which
    /// is no runtime thread.
    runtime: tokio::runtime::Handle,
}

/// Which connection: TLS connections to one address for different names are kept apart,
/// since each is verified for its own name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct StreamKey {
    peer: SocketAddr,
    transport: Transport,
    server_name: String,
}

impl Network {
    #[expect(
        clippy::too_many_arguments,
        reason = "one per shared part of the shell the connections need"
    )]
    pub fn new(
        udp: Vec<(SocketAddr, Arc<std::net::UdpSocket>)>,
        stream_listeners: Vec<Listen>,
        public_ip: Option<IpAddr>,
        tls: Option<Arc<ClientConfig>>,
        dns: Dns,
        control: mpsc::Sender<Received>,
        failures: mpsc::UnboundedSender<TransportFailure>,
        inbound: Arc<Inbound>,
        accepted: Accepted,
    ) -> Self {
        Network {
            udp,
            stream_listeners,
            public_ip,
            tls: tls.map(TlsConnector::from),
            streams: Arc::default(),
            inbound,
            accepted,
            control,
            failures,
            dns,
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// The UDP listener socket for a destination's address family.
    fn udp_for(&self, destination: SocketAddr) -> Option<&(SocketAddr, Arc<std::net::UdpSocket>)> {
        self.udp
            .iter()
            .find(|(local, _)| local.is_ipv4() == destination.is_ipv4())
    }

    /// Where an outgoing connection of `transport` to `peer` leaves from: the address of
    /// our listener of that transport and family when it is a specific one (a multi-homed
    /// host must not send from its default source, which nothing of ours listens on);
    /// `None` (the kernel's choice) for a wildcard listener or none.
    fn bind_address(&self, transport: Transport, peer: SocketAddr) -> Option<IpAddr> {
        self.listener_for(transport, peer)
            .map(|listener| listener.ip())
            .filter(|ip| !ip.is_unspecified())
    }

    /// The address our Contact names for a transport and family: the listener's.
    fn listener_for(&self, transport: Transport, destination: SocketAddr) -> Option<SocketAddr> {
        match transport {
            Transport::Udp => self.udp_for(destination).map(|(local, _)| *local),
            Transport::Tcp | Transport::Tls => self
                .stream_listeners
                .iter()
                .find(|listen| {
                    listen.transport == transport
                        && listen.address.is_ipv4() == destination.is_ipv4()
                })
                .map(|listen| listen.address),
        }
    }

    /// Never blocks but on a full UDP send buffer: callable from the control loop and
    /// from a UDP listener thread alike.
    pub fn send(&self, transmit: Transmit) {
        // A peer that connected to us (a carrier calling over TCP/TLS) is answered on its
        // connection: its address is an ephemeral port no datagram should go to. Once
        // that connection is gone, a stream transmit opens one to its destination. Only
        // a call's messages take this way: a REGISTER or OPTIONS over TLS must go on a
        // connection verified for its own trunk's name, never on one another trunk (or
        // the carrier) opened to the same address.
        let peer = match (transmit.connection, transmit.transport) {
            (Some(connection), _) => Some(connection),
            (None, Transport::Udp) => Some(transmit.destination),
            (None, _) => None,
        };
        let connection = peer.and_then(|peer| {
            self.accepted
                .get(&peer)
                .map(|entry| (peer, entry.value().clone()))
        });
        if let Some((peer, connection)) = connection {
            if connection.try_send(transmit.bytes).is_err() {
                debug!(destination = %peer, "connection closed or its queue full: message dropped");
            }
            return;
        }
        match transmit.transport {
            Transport::Udp => self.send_udp(transmit),
            Transport::Tcp | Transport::Tls => self.send_stream(transmit),
        }
    }

    fn send_udp(&self, transmit: Transmit) {
        let Some((_, socket)) = self.udp_for(transmit.destination) else {
            warn!(destination = %transmit.destination, "no udp listener of that address family to send from");
            return;
        };
        // The socket is in blocking mode (its hot-path thread reads it; see
        // listeners::spawn_hot_path): a send waits only while the kernel's send buffer is
        // full, which for UDP is rare and short.
        if let Err(error) = socket.send_to(&transmit.bytes, transmit.destination) {
            debug!(destination = %transmit.destination, "send failed: {error}");
        }
    }

    /// Queues bytes on the connection to the destination, opening it if needed.
    fn send_stream(&self, transmit: Transmit) {
        let key = StreamKey {
            peer: transmit.destination,
            transport: transmit.transport,
            server_name: match transmit.transport {
                Transport::Tls => transmit.server_name,
                _ => String::new(),
            },
        };
        let mut streams = self
            .streams
            .lock()
            .expect("no panics while holding the lock");
        let sender = match streams.get(&key) {
            Some(sender) if !sender.is_closed() => sender.clone(),
            _ => {
                let (sender, receiver) = mpsc::channel(STREAM_QUEUE);
                streams.insert(key.clone(), sender.clone());
                self.runtime
                    .spawn(run_connection(key.clone(), receiver, self.clone()));
                sender
            }
        };
        drop(streams);
        if sender.try_send(transmit.bytes).is_err() {
            let why = "connection queue full".to_owned();
            let _ = self.failures.send((key.peer, key.transport, why));
        }
    }

    fn forget(&self, key: &StreamKey, why: String) {
        self.streams
            .lock()
            .expect("no panics while holding the lock")
            .remove(key);
        let _ = self.failures.send((key.peer, key.transport, why));
    }

    /// Finds the next hop by RFC 3263 (see [`Dns`]), keeps the targets of an address
    /// family we have a listener for, and works out our address as they will see it: the
    /// public address if configured, else the listener's own, else the kernel's source
    /// address toward the first target (a wildcard listener has no single address). The
    /// port is that of our listener for the trunk's transport, which the Contact names.
    pub async fn resolve(&self, request: &ResolveRequest) -> Result<Resolved, ResolveError> {
        let mut random = Random::new(seed());
        let found = self
            .dns
            .targets(&request.host, request.port, request.transport, &mut random)
            .await?;
        let candidates = found.addresses;
        let usable: Vec<(SocketAddr, SocketAddr)> = candidates
            .iter()
            .filter_map(|address| {
                self.listener_for(request.transport, *address)
                    .map(|listener| (*address, listener))
            })
            .collect();
        let Some(&(next_hop, listener)) = usable.first() else {
            return Err(ResolveError::NoListener {
                host: request.host.clone(),
                addresses: candidates,
                transport: request.transport,
            });
        };
        let ip =
            match (self.public_ip, listener.ip()) {
                (Some(public), _) => public,
                (None, ip) if !ip.is_unspecified() => ip,
                (None, _) => source_address_toward(next_hop).await.map_err(|error| {
                    ResolveError::NoRoute {
                        destination: next_hop,
                        reason: error.to_string(),
                    }
                })?,
            };
        Ok(Resolved {
            next_hop,
            alternatives: usable
                .iter()
                .skip(1)
                .filter(|(_, local)| *local == listener)
                .map(|(address, _)| *address)
                .collect(),
            local: SocketAddr::new(ip, listener.port()),
            public: self.public_ip.is_some(),
            ttl: found.ttl,
        })
    }
}

/// A seed for SRV weight draws (std's per-process random hasher keys).
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    hasher.finish()
}

/// A TCP connection to `peer` leaving from `source` (port 0: any), when given: the
/// address the peer sees is the one our Via and Contact name.
pub(crate) async fn connect_from(
    source: Option<IpAddr>,
    peer: SocketAddr,
) -> std::io::Result<TcpStream> {
    let Some(ip) = source else {
        return TcpStream::connect(peer).await;
    };
    let socket = match ip {
        IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(ip, 0))?;
    socket.connect(peer).await
}

/// One TCP or TLS connection: connect (and handshake), then serve it.
async fn run_connection(key: StreamKey, outgoing: mpsc::Receiver<Vec<u8>>, network: Network) {
    let source = network.bind_address(key.transport, key.peer);
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, connect_from(source, key.peer)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return network.forget(&key, format!("connect failed: {error}")),
        Err(_) => return network.forget(&key, "connect timed out".into()),
    };
    let _ = tcp.set_nodelay(true);
    let local = tcp.local_addr().unwrap_or(key.peer);
    if key.transport != Transport::Tls {
        return serve(key, local, tcp, outgoing, network).await;
    }
    let Some(connector) = network.tls.clone() else {
        let why = "no TLS client configuration (see the start-up log)".to_owned();
        return network.forget(&key, why);
    };
    let name = match ServerName::try_from(key.server_name.clone()) {
        Ok(name) => name,
        Err(error) => return network.forget(&key, format!("bad TLS server name: {error}")),
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp)).await {
        Ok(Ok(tls)) => serve(key, local, tls, outgoing, network).await,
        Ok(Err(error)) => network.forget(&key, format!("TLS handshake failed: {error}")),
        Err(_) => network.forget(&key, "TLS handshake timed out".into()),
    }
}

/// Writes what is queued and frames what is read, until either side fails.
async fn serve<S>(
    key: StreamKey,
    local: SocketAddr,
    stream: S,
    mut outgoing: mpsc::Receiver<Vec<u8>>,
    network: Network,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    let peer = key.peer;
    // Our listener of the connection's transport, at the connection's own address when
    // it listens on every address: what a call's Record-Route toward the peer names.
    let listener = network.listener_for(key.transport, peer).map(|listen| {
        match listen.ip().is_unspecified() {
            true => SocketAddr::new(local.ip(), listen.port()),
            false => listen,
        }
    });
    let connection = Connection {
        transport: key.transport,
        listener,
    };
    let (mut reader, mut writer) = tokio::io::split(stream);
    // Answers written from here: RFC 5626 §3.5.1 pongs to the peer's CRLF CRLF pings,
    // and the hot path's answers to requests the peer sends over this connection.
    let (answers, mut answers_due) = mpsc::channel::<Vec<u8>>(STREAM_QUEUE);
    // Set once a call came in on this connection: the control path's messages to the peer then
    // go on it (see `Accepted`), until it closes.
    let mut carries_calls = false;
    let write = async {
        loop {
            let bytes = tokio::select! {
                queued = outgoing.recv() => match queued {
                    Some(bytes) => bytes,
                    None => return Ok::<(), std::io::Error>(()),
                },
                Some(answer) = answers_due.recv() => answer,
            };
            writer.write_all(&bytes).await?;
            writer.flush().await?;
        }
    };
    let read = async {
        let mut worker = Worker::new();
        let mut buffer = Vec::with_capacity(8192);
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            let read = reader.read(&mut chunk).await?;
            if read == 0 {
                return Ok::<String, std::io::Error>("closed by peer".into());
            }
            buffer.extend_from_slice(&chunk[..read]);
            loop {
                match frame::frame(&buffer, MAX_MESSAGE_LEN) {
                    Ok(Frame::Incomplete) => break,
                    Ok(keepalive @ Frame::KeepAlive { len }) => {
                        if keepalive.is_ping() {
                            // A full queue means pongs are already on their way.
                            let _ = answers.try_send(b"\r\n".to_vec());
                        }
                        buffer.drain(..len);
                    }
                    Ok(Frame::Message { len }) => {
                        // A request from the carrier over our connection (an OPTIONS
                        // ping, a call) goes through the hot path; its answer goes back
                        // here. An admitted call continues to the backend over UDP from
                        // our UDP listener of the family, as on an accepted connection.
                        let origin = Origin {
                            source: peer,
                            connection: Some(connection),
                            local,
                            calls_from: network
                                .udp_for(peer)
                                .map(|(calls_from, _)| facing(*calls_from, Some(local))),
                        };
                        let passed = pass_on(
                            &network.inbound,
                            &mut worker,
                            &network.control,
                            None,
                            origin,
                            &buffer[..len],
                            || {
                                // The call's responses and requests are written here.
                                network.accepted.insert(peer, answers.clone());
                                carries_calls = true;
                            },
                        );
                        buffer.drain(..len);
                        if passed == Passed::Answer {
                            let _ = answers.try_send(worker.out.clone());
                        }
                    }
                    Err(error) => return Ok(format!("unframeable stream: {error}")),
                }
            }
        }
    };
    let why = tokio::select! {
        result = write => match result {
            Ok(()) => None, // every sender dropped: nobody needs this connection
            Err(error) => Some(format!("write failed: {error}")),
        },
        result = read => match result {
            Ok(why) => Some(why),
            Err(error) => Some(format!("read failed: {error}")),
        },
    };
    if carries_calls {
        network
            .accepted
            .remove_if(&peer, |_, sender| sender.same_channel(&answers));
    }
    if let Some(why) = why {
        network.forget(&key, why);
    }
}

/// The source address the kernel picks for `destination` (a connected UDP socket sends
/// nothing until written to).
pub(crate) async fn source_address_toward(destination: SocketAddr) -> std::io::Result<IpAddr> {
    let any: SocketAddr = if destination.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let probe = UdpSocket::bind(any).await?;
    probe.connect(destination).await?;
    probe.local_addr().map(|address| address.ip())
}
