//! SIP listeners: bind every `listen` address before READY=1, so a port conflict fails
//! the start instead of surfacing later.
//!
//! Serving SIP on them is the job of the transport and admission work that follows; until
//! then UDP datagrams are read and dropped (counted at debug level), and TCP/TLS
//! connections are accepted and closed (TLS after a handshake, which proves the
//! certificate loads and works).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

use crate::config::tls::{self, TlsProblem};
use crate::config::{Config, Listen, TlsIdentity, Transport};

/// RFC 3261 §18.1.1: a UDP SIP message fits in 65,535 bytes.
const MAX_DATAGRAM: usize = 65_535;
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot bind {listen}: {source}")]
    Bind { listen: Listen, source: io::Error },
    #[error("[tls] {path}: {reason}")]
    Tls { path: String, reason: String },
}

/// The bound sockets' tasks; dropping this stops them.
pub struct Listeners {
    /// The configured entries with the addresses actually bound (port 0 resolved).
    pub bound: Vec<Listen>,
    /// UDP sockets by bound address: requests go out of the socket whose responses we
    /// expect back (RFC 3261 §18.1.1: responses go to the Via sent-by).
    pub udp: Vec<(SocketAddr, Arc<UdpSocket>)>,
    _tasks: JoinSet<()>,
}

/// A received datagram handed to the control path.
pub type Datagram = (SocketAddr, Vec<u8>);

/// Datagrams waiting for the control path; beyond this, responses are dropped (and the
/// transaction retransmits) rather than queued without bound.
pub const CONTROL_QUEUE: usize = 1024;

pub async fn bind(
    config: &Config,
    control: mpsc::Sender<Datagram>,
) -> Result<Listeners, ListenError> {
    // Validation guarantees an identity whenever a tls listener is configured.
    let identity = config.tls.as_ref().and_then(|tls| tls.identity.as_ref());
    let acceptor = match identity {
        Some(identity)
            if config
                .daemon
                .listen
                .iter()
                .any(|l| l.transport == Transport::Tls) =>
        {
            Some(tls_acceptor(identity)?)
        }
        _ => None,
    };
    let mut tasks = JoinSet::new();
    let mut bound = Vec::new();
    let mut udp = Vec::new();
    for listen in &config.daemon.listen {
        let bind_error = |source| ListenError::Bind {
            listen: *listen,
            source,
        };
        let address = match listen.transport {
            Transport::Udp => {
                let socket = bind_udp(listen.address).map_err(bind_error)?;
                let address = socket.local_addr().map_err(bind_error)?;
                let socket = Arc::new(socket);
                udp.push((address, Arc::clone(&socket)));
                tasks.spawn(receive_udp(socket, control.clone()));
                address
            }
            Transport::Tcp | Transport::Tls => {
                let listener = bind_tcp(listen.address).map_err(bind_error)?;
                let address = listener.local_addr().map_err(bind_error)?;
                let acceptor = match listen.transport {
                    Transport::Tls => acceptor.clone(),
                    _ => None,
                };
                tasks.spawn(accept_and_close(listener, acceptor));
                address
            }
        };
        bound.push(Listen {
            transport: listen.transport,
            address,
        });
    }
    Ok(Listeners {
        bound,
        udp,
        _tasks: tasks,
    })
}

/// The acceptor for the `[tls]` files (validated at load; read again here, as they are
/// the files in force when the listener binds).
pub fn tls_acceptor(files: &TlsIdentity) -> Result<TlsAcceptor, ListenError> {
    let config =
        tls::server_config(&files.certificate, &files.private_key).map_err(|problems| {
            let (path, reason) = match problems.into_iter().next() {
                Some(TlsProblem::Certificate(reason)) => (&files.certificate, reason),
                Some(TlsProblem::PrivateKey(reason)) => (&files.private_key, reason),
                None => (&files.certificate, "unknown problem".to_owned()),
            };
            ListenError::Tls {
                path: path.display().to_string(),
                reason,
            }
        })?;
    Ok(TlsAcceptor::from(config))
}

/// Listen backlog for TCP/TLS: carriers open few connections, but a burst after a
/// carrier-side failover should not be refused.
const TCP_BACKLOG: i32 = 1024;

/// An IPv6 socket is made IPv6-only (like nginx), so "udp:0.0.0.0:5060" and
/// "udp:[::]:5060" can both be listed instead of the second failing with EADDRINUSE on
/// Linux's default dual-stack sockets.
fn new_socket(address: SocketAddr, kind: Type, protocol: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(address), kind, Some(protocol))?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

fn bind_udp(address: SocketAddr) -> io::Result<UdpSocket> {
    let socket = new_socket(address, Type::DGRAM, Protocol::UDP)?;
    socket.bind(&address.into())?;
    UdpSocket::from_std(socket.into())
}

fn bind_tcp(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = new_socket(address, Type::STREAM, Protocol::TCP)?;
    // A restart must not fail on connections of the previous process in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(TCP_BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// Reads datagrams: SIP responses go to the control path (they answer our REGISTERs);
/// requests are dropped until the inbound path exists (issues 4 and 5).
async fn receive_udp(socket: Arc<UdpSocket>, control: mpsc::Sender<Datagram>) {
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    loop {
        match socket.recv_from(&mut buffer).await {
            Ok((length, source)) => {
                let datagram = &buffer[..length];
                // A response's status line starts with the version (RFC 3261 §7.2).
                if datagram.len() > 8 && datagram[..8].eq_ignore_ascii_case(b"SIP/2.0 ") {
                    if control.try_send((source, datagram.to_vec())).is_err() {
                        debug!(%source, "control path busy: response dropped");
                    }
                } else {
                    debug!(%source, length, "request dropped: SIP requests not served yet");
                }
            }
            Err(error) => debug!("udp receive error: {error}"),
        }
    }
}

async fn accept_and_close(listener: TcpListener, acceptor: Option<TlsAcceptor>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            // EMFILE and friends: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if let Some(acceptor) = acceptor.clone() {
            tokio::spawn(async move {
                let handshake =
                    tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                let outcome = match handshake.await {
                    Ok(Ok(_)) => "handshake ok".to_owned(),
                    Ok(Err(error)) => format!("handshake failed: {error}"),
                    Err(_) => "handshake timed out".to_owned(),
                };
                debug!(peer = %peer, "tls connection closed ({outcome}): SIP handling not enabled yet");
            });
        } else {
            debug!(peer = %peer, "tcp connection closed: SIP handling not enabled yet");
        }
    }
}

/// For messages: `udp:127.0.0.1:5060`.
pub fn describe(bound: &[Listen]) -> String {
    bound
        .iter()
        .map(Listen::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}
