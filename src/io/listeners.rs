//! SIP listeners: [`bind`] every `listen` address before READY=1, so a port conflict
//! fails the start instead of surfacing later; [`Bound::start`] then reads them.
//!
//! UDP datagrams go through the hot path ([`crate::inbound`]) on the socket's own thread.
//! TCP/TLS connections are accepted and their frames go through the same hot path, the
//! answers written back on the connection. Admitted calls continue to the backend over
//! UDP; what the control path sends to such a peer is written on its connection
//! ([`Accepted`]).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::call::Connection;
use crate::config::tls::{self, TlsProblem};
use crate::config::{Config, Listen, TlsIdentity, Transport};
use crate::inbound::{Inbound, Worker};
use crate::io::hot_path::{DirectSlot, Origin, Passed, Received, pass_on};
use crate::sip::scan::frame::{self, Frame};

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
    /// UDP sockets by bound address, for the control path's sends: requests go out of the
    /// socket whose responses we expect back (RFC 3261 §18.1.1: responses go to the Via
    /// sent-by). A duplicate of the socket its hot-path thread reads, registered with no
    /// reactor, so arriving datagrams wake only that thread.
    pub udp: Vec<(SocketAddr, Arc<std::net::UdpSocket>)>,
    /// Connections carriers opened to our tcp: and tls: listeners, by peer address.
    pub accepted: Accepted,
    _tasks: JoinSet<()>,
}

/// The connections carriers opened to us, by their address: what the control path sends
/// to such an address (responses, requests inside a call that came in on it) is written on
/// the connection (RFC 3261 §18.2.2), not sent as a datagram to its ephemeral port.
pub(crate) type Accepted = Arc<dashmap::DashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>;

/// Messages waiting to be written on one accepted connection.
const ACCEPTED_QUEUE: usize = 256;

/// The `listen` entries' sockets, bound and not yet read: binding comes first so a port
/// conflict fails the start before anything runs (and before READY=1), and so a test can
/// bind port 0 and learn the port before the daemon runs.
pub struct Bound {
    /// In the order of `listen`, with the addresses actually bound (port 0 resolved).
    sockets: Vec<(Listen, BoundSocket)>,
    /// For the tls: listeners.
    acceptor: Option<TlsAcceptor>,
}

impl Bound {
    /// The configured entries with the addresses actually bound.
    pub fn listens(&self) -> Vec<Listen> {
        self.sockets.iter().map(|(listen, _)| *listen).collect()
    }

    /// Starts reading: a thread per UDP socket, an accept task per TCP/TLS listener.
    /// What they pass on goes to `control`, or for UDP, once `direct` is set, is handled
    /// on the listener thread ([`crate::io::hot_path::Direct`]).
    pub fn start(
        self,
        control: mpsc::Sender<Received>,
        direct: DirectSlot,
        inbound: Arc<Inbound>,
    ) -> Result<Listeners, ListenError> {
        let mut tasks = JoinSet::new();
        let mut udp = Vec::new();
        let mut streams = Vec::new();
        let accepted = Accepted::default();
        let bound = self.listens();
        for (listen, socket) in self.sockets {
            let start_error = |source| ListenError::Bind { listen, source };
            match socket {
                BoundSocket::Udp(socket) => {
                    let address = listen.address;
                    udp.push((address, Arc::new(socket.try_clone().map_err(start_error)?)));
                    spawn_hot_path(
                        socket,
                        address,
                        control.clone(),
                        Arc::clone(&direct),
                        Arc::clone(&inbound),
                    )
                    .map_err(start_error)?;
                }
                BoundSocket::Stream(listener) => {
                    let acceptor = match listen.transport {
                        Transport::Tls => self.acceptor.clone(),
                        _ => None,
                    };
                    let listener = TcpListener::from_std(listener).map_err(start_error)?;
                    streams.push((listener, acceptor, listen.address));
                }
            }
        }
        // Calls that arrive over a connection go on to the backend over UDP: from the UDP
        // listener of the same address (else of the same family), which the forwarded
        // INVITE's Via and Record-Route then name.
        for (listener, acceptor, address) in streams {
            let calls_from = udp
                .iter()
                .map(|(local, _)| *local)
                .filter(|local: &SocketAddr| local.is_ipv4() == address.is_ipv4())
                .max_by_key(|local| (local.ip() == address.ip(), local.port() == address.port()));
            tasks.spawn(accept_and_serve(
                listener,
                acceptor,
                Served {
                    calls_from,
                    control: control.clone(),
                    inbound: Arc::clone(&inbound),
                    accepted: Arc::clone(&accepted),
                },
            ));
        }
        Ok(Listeners {
            bound,
            udp,
            accepted,
            _tasks: tasks,
        })
    }
}

/// A bound socket of a `listen` entry.
enum BoundSocket {
    Udp(std::net::UdpSocket),
    Stream(std::net::TcpListener),
}

/// Binds every `listen` address of `config` (and reads the `[tls]` files for tls: ones).
pub(crate) fn bind(config: &Config) -> Result<Bound, ListenError> {
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
    let mut sockets = Vec::new();
    for listen in &config.daemon.listen {
        let bind_error = |source| ListenError::Bind {
            listen: *listen,
            source,
        };
        let (socket, address) = match listen.transport {
            Transport::Udp => {
                let socket = bind_udp(listen.address).map_err(bind_error)?;
                let address = socket.local_addr().map_err(bind_error)?;
                (BoundSocket::Udp(socket), address)
            }
            Transport::Tcp | Transport::Tls => {
                let listener = bind_tcp(listen.address).map_err(bind_error)?;
                let address = listener.local_addr().map_err(bind_error)?;
                (BoundSocket::Stream(listener), address)
            }
        };
        let listen = Listen {
            transport: listen.transport,
            address,
        };
        sockets.push((listen, socket));
    }
    Ok(Bound { sockets, acceptor })
}

/// The acceptor for the `[tls]` files (validated at load; read again here, as they are
/// the files in force when the listener binds).
pub(crate) fn tls_acceptor(files: &TlsIdentity) -> Result<TlsAcceptor, ListenError> {
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

/// Receive buffer asked for on UDP listeners. The kernel's default (about 208 KiB, i.e.
/// about 90 datagrams at loopback's per-packet accounting) overflows under a burst of
/// REGISTER answers at start-up or a flood, and every dropped answer costs a
/// retransmission 500 ms later. The kernel caps the request at `net.core.rmem_max`;
/// what was granted is logged when it is less.
pub(crate) const UDP_RECEIVE_BUFFER: usize = 4 << 20;

fn bind_udp(address: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let socket = new_socket(address, Type::DGRAM, Protocol::UDP)?;
    if let Err(error) = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER) {
        warn!("udp:{address}: cannot set the receive buffer: {error}");
    }
    // Linux reports twice what it granted (the doubling covers its bookkeeping).
    let granted = socket.recv_buffer_size().unwrap_or(0) / 2;
    if granted < UDP_RECEIVE_BUFFER {
        info!(
            "udp:{address}: receive buffer {} KiB (asked {} KiB; raise net.core.rmem_max for more)",
            granted >> 10,
            UDP_RECEIVE_BUFFER >> 10
        );
    }
    socket.bind(&address.into())?;
    Ok(socket.into())
}

fn bind_tcp(address: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = new_socket(address, Type::STREAM, Protocol::TCP)?;
    // A restart must not fail on connections of the previous process in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(TCP_BACKLOG)?;
    Ok(socket.into())
}

/// Runs a UDP socket's hot path on a thread of its own, with blocking reads: reading,
/// deciding and answering stay on one core, with no reactor and no wake-ups across the
/// main runtime's workers. The control path sends through a duplicate of the socket that
/// no reactor watches (a watched one would wake the main runtime for every datagram). The
/// thread ends when the control path is gone.
fn spawn_hot_path(
    socket: std::net::UdpSocket,
    local: SocketAddr,
    control: mpsc::Sender<Received>,
    direct: DirectSlot,
    inbound: Arc<Inbound>,
) -> io::Result<()> {
    // Blocking reads: one recvfrom per datagram, the thread asleep in it when idle. The
    // flag is the socket's (shared with the control path's duplicate), whose sends then
    // block only while the kernel's send buffer is full.
    socket.set_nonblocking(false)?;
    // Inside the runtime's context: the control path, handled on this thread, spawns
    // connections and reads the runtime's clock (a test's paused one too).
    let runtime = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name(format!("udp {local}"))
        .spawn(move || {
            let _runtime = runtime.enter();
            receive_udp(&socket, local, &control, &direct, &inbound);
        })?;
    Ok(())
}

/// The hot path of one UDP socket: every datagram goes through [`Inbound::handle`];
/// rejections and OPTIONS are answered from here, responses, in-call requests and
/// admitted calls go to the control path. Returns when the control path is gone.
fn receive_udp(
    socket: &std::net::UdpSocket,
    local: SocketAddr,
    control: &mpsc::Sender<Received>,
    direct: &DirectSlot,
    inbound: &Inbound,
) {
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    let mut worker = Worker::new();
    loop {
        let (length, source) = match socket.recv_from(&mut buffer) {
            Ok(received) => received,
            Err(error) => {
                debug!("udp receive error: {error}");
                continue;
            }
        };
        let origin = Origin {
            source,
            connection: None,
            local,
            calls_from: Some(local),
        };
        match pass_on(
            inbound,
            &mut worker,
            control,
            direct.get(),
            origin,
            &buffer[..length],
            || {},
        ) {
            Passed::Answer => {
                let _ = socket.send_to(&worker.out, source);
            }
            Passed::Done => {}
            Passed::ControlGone => return, // shutting down
        }
    }
}

/// Accepts TCP (and TLS) connections and serves each on a task of its own, at most
/// [`MAX_STREAM_CONNECTIONS`] at a time.
/// What an accepted connection is served with.
#[derive(Clone)]
struct Served {
    /// Our UDP listener that admitted calls continue from; `None` (no UDP listener of the
    /// family): admitted INVITEs get 503.
    calls_from: Option<SocketAddr>,
    control: mpsc::Sender<Received>,
    inbound: Arc<Inbound>,
    accepted: Accepted,
}

async fn accept_and_serve(listener: TcpListener, acceptor: Option<TlsAcceptor>, served: Served) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_STREAM_CONNECTIONS));
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            // EMFILE and friends: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            debug!(%peer, "too many connections: closed");
            continue;
        };
        let local = stream.local_addr().unwrap_or(peer);
        let connection = Connection {
            transport: if acceptor.is_some() {
                Transport::Tls
            } else {
                Transport::Tcp
            },
            listener: Some(local),
        };
        let _ = stream.set_nodelay(true);
        let (acceptor, served) = (acceptor.clone(), served.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let why = match acceptor {
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls)) => serve_stream(tls, peer, connection, &served).await,
                        Ok(Err(error)) => format!("handshake failed: {error}"),
                        Err(_) => "handshake timed out".to_owned(),
                    }
                }
                None => serve_stream(stream, peer, connection, &served).await,
            };
            debug!(%peer, "connection closed: {why}");
        });
    }
}

/// Connections a stream listener serves at once; more are closed at accept.
const MAX_STREAM_CONNECTIONS: usize = 4096;
/// A connection with nothing to read for this long is closed (carriers ping more often).
const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// One accepted connection: frames (RFC 3261 §18.3, Content-Length, size cap) run
/// through the hot path, answers and RFC 5626 pongs are written back on it, and so is
/// whatever the control path sends to this peer (see [`Accepted`]). Admitted INVITEs,
/// responses and in-call requests go to the control path; calls continue to the backend
/// from our UDP listener.
async fn serve_stream<S>(
    stream: S,
    peer: SocketAddr,
    connection: Connection,
    served: &Served,
) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (outgoing, mut queued) = mpsc::channel::<Vec<u8>>(ACCEPTED_QUEUE);
    served.accepted.insert(peer, outgoing);
    /// Forgets the connection however serving ends.
    struct Registered<'a>(&'a Accepted, SocketAddr);
    impl Drop for Registered<'_> {
        fn drop(&mut self) {
            self.0.remove(&self.1);
        }
    }
    let _registered = Registered(&served.accepted, peer);
    let mut stream = stream;
    let mut worker = Worker::new();
    let mut buffer = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = tokio::time::timeout(STREAM_IDLE_TIMEOUT, stream.read(&mut chunk)) => read,
            Some(bytes) = queued.recv() => {
                if let Err(error) = stream.write_all(&bytes).await {
                    return format!("write failed: {error}");
                }
                continue;
            }
        };
        let read = match read {
            Ok(Ok(0)) => return "closed by peer".into(),
            Ok(Ok(read)) => read,
            Ok(Err(error)) => return format!("read failed: {error}"),
            Err(_) => return "idle".into(),
        };
        buffer.extend_from_slice(&chunk[..read]);
        loop {
            let answer: Option<&[u8]> = match frame::frame(&buffer, MAX_DATAGRAM) {
                Ok(Frame::Incomplete) => break,
                Ok(keepalive @ Frame::KeepAlive { len }) => {
                    buffer.drain(..len);
                    keepalive.is_ping().then_some(b"\r\n")
                }
                Ok(Frame::Message { len }) => {
                    let origin = Origin {
                        source: peer,
                        connection: Some(connection),
                        local: connection.listener.unwrap_or(peer),
                        calls_from: served
                            .calls_from
                            .map(|calls_from| facing(calls_from, connection.listener)),
                    };
                    let inbound = &served.inbound;
                    let passed = pass_on(
                        inbound,
                        &mut worker,
                        &served.control,
                        None,
                        origin,
                        &buffer[..len],
                        || {},
                    );
                    buffer.drain(..len);
                    (passed == Passed::Answer).then_some(&worker.out[..])
                }
                Err(error) => return format!("unframeable stream: {error}"),
            };
            if let Some(answer) = answer
                && let Err(error) = stream.write_all(answer).await
            {
                return format!("write failed: {error}");
            }
        }
    }
}

/// Our UDP listener `udp` named by the address a connection reached when it is bound to
/// every address (`0.0.0.0`, `::`): the address that faces the connection's peer.
pub(crate) fn facing(udp: SocketAddr, reached: Option<SocketAddr>) -> SocketAddr {
    match reached {
        Some(reached) if udp.ip().is_unspecified() => SocketAddr::new(reached.ip(), udp.port()),
        _ => udp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The UDP listener asks for [`UDP_RECEIVE_BUFFER`] and gets what `rmem_max` allows:
    /// without it, 10,000 trunks' REGISTER answers overflowed the default buffer.
    #[test]
    fn udp_listeners_get_a_large_receive_buffer() {
        let rmem_max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .expect("Linux")
            .trim()
            .parse()
            .unwrap();
        let socket = bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
        let granted = Socket::from(socket).recv_buffer_size().unwrap() / 2;
        assert_eq!(granted, UDP_RECEIVE_BUFFER.min(rmem_max));
    }
}
