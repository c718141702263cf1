//! Sending what the core queues, and resolving the next hops it asks for.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::UdpSocket;
use tracing::{debug, warn};

use crate::trunk::registration::Transmit;
use crate::trunk::registry::{ResolveRequest, Resolved};

/// The UDP sockets of the listeners, and the address to advertise instead of theirs.
#[derive(Clone)]
pub struct Network {
    udp: Vec<(SocketAddr, Arc<UdpSocket>)>,
    public_ip: Option<IpAddr>,
}

impl Network {
    pub fn new(udp: Vec<(SocketAddr, Arc<UdpSocket>)>, public_ip: Option<IpAddr>) -> Self {
        Network { udp, public_ip }
    }

    /// The listener socket for a destination's address family.
    fn socket_for(&self, destination: SocketAddr) -> Option<&(SocketAddr, Arc<UdpSocket>)> {
        self.udp
            .iter()
            .find(|(local, _)| local.is_ipv4() == destination.is_ipv4())
    }

    pub async fn send(&self, transmit: Transmit) {
        let Some((_, socket)) = self.socket_for(transmit.destination) else {
            warn!(destination = %transmit.destination, "no udp listener of that address family to send from");
            return;
        };
        if let Err(error) = socket.send_to(&transmit.bytes, transmit.destination).await {
            debug!(destination = %transmit.destination, "send failed: {error}");
        }
    }

    /// Looks the next hop up (the system resolver for now; RFC 3263 NAPTR/SRV is issue 3's
    /// DNS work) and finds our address as the next hop will see it: the public address if
    /// configured, else the listener's own address, else the kernel's source address
    /// toward the next hop (a wildcard listener has no single address of its own).
    pub async fn resolve(&self, request: &ResolveRequest) -> Result<Resolved, String> {
        let addresses = tokio::net::lookup_host((request.host.as_str(), request.port))
            .await
            .map_err(|error| format!("{}: {error}", request.host))?;
        let candidates: Vec<SocketAddr> = addresses.collect();
        let (next_hop, (listener, _)) = candidates
            .iter()
            .find_map(|address| self.socket_for(*address).map(|socket| (*address, socket)))
            .ok_or_else(|| {
                format!(
                    "{} resolves to {candidates:?}, and no udp listener has that address family",
                    request.host
                )
            })?;
        let ip = match (self.public_ip, listener.ip()) {
            (Some(public), _) => public,
            (None, ip) if !ip.is_unspecified() => ip,
            (None, _) => source_address_toward(next_hop).await?,
        };
        Ok(Resolved {
            next_hop,
            local: SocketAddr::new(ip, listener.port()),
            public: self.public_ip.is_some(),
        })
    }
}

/// The source address the kernel picks for `destination` (a connected UDP socket sends
/// nothing until written to).
async fn source_address_toward(destination: SocketAddr) -> Result<IpAddr, String> {
    let any: SocketAddr = if destination.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let probe = UdpSocket::bind(any)
        .await
        .map_err(|error| error.to_string())?;
    probe
        .connect(destination)
        .await
        .map_err(|error| format!("no route to {destination}: {error}"))?;
    probe
        .local_addr()
        .map(|address| address.ip())
        .map_err(|error| error.to_string())
}
