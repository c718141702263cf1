//! Where a trunk sends: the lookup of its next hop (RFC 3263) that the shell carries out
//! for the registrations, the keepalives and `verify`, what the shell answers, and the
//! addresses and URIs a request to the next hop names.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::config::{Transport, Trunk};

/// Whose next hop a lookup finds: the answer goes back to it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResolveKey {
    /// A trunk's, by id (its registration's and keepalive's).
    Trunk(String),
    /// A backend given by name, by its `host:port`.
    Backend(String),
}

impl ResolveKey {
    /// The trunk id, for a trunk's lookup.
    pub fn trunk(&self) -> Option<&str> {
        match self {
            ResolveKey::Trunk(id) => Some(id),
            ResolveKey::Backend(_) => None,
        }
    }
}

impl std::fmt::Display for ResolveKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResolveKey::Trunk(id) => write!(f, "trunk {id}"),
            ResolveKey::Backend(name) => write!(f, "backend {name}"),
        }
    }
}

/// A next hop to resolve: the host (name or literal) and port the trunk sends to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveRequest {
    pub key: ResolveKey,
    pub host: String,
    /// An explicit port; without one, RFC 3263 SRV records choose.
    pub port: Option<u16>,
    /// Which listener's address our Contact should name.
    pub transport: Transport,
}

/// What the shell found: the address to send to, and our address as seen from it (the
/// kernel's choice of source address toward it, or the configured public address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub next_hop: SocketAddr,
    /// Further targets in RFC 3263 order, tried when `next_hop` fails.
    pub alternatives: Vec<SocketAddr>,
    pub local: SocketAddr,
    /// `local` is the configured `public_address`: never "corrected" from the Via.
    pub public: bool,
    /// How long the DNS answers stay valid; `None` for an IP address.
    pub ttl: Option<Duration>,
}

/// Why a next hop could not be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The resolver failed or found nothing (its own words, with the name asked).
    #[error("{0}")]
    Lookup(String),
    /// The name has addresses, none of a family trunkd listens on for the transport.
    #[error(
        "{host} resolves to {addresses:?}, and no {transport} listener has that address family"
    )]
    NoListener {
        host: String,
        addresses: Vec<SocketAddr>,
        transport: Transport,
    },
    /// The kernel has no route toward the next hop (so no source address for it).
    #[error("no route to {destination}: {reason}")]
    NoRoute {
        destination: SocketAddr,
        reason: String,
    },
}

impl ResolveError {
    /// Why a trunk that waited for this lookup does not start, for its notice: the same
    /// words whether its registration or its keepalive waited.
    pub fn why_not_started(&self) -> String {
        format!("cannot resolve next hop: {self}")
    }
}

/// Re-resolution happens when the DNS answers expire, but not more often than this (a
/// zero TTL would otherwise mean a lookup per loop) nor less often than the maximum.
pub(crate) const MIN_RESOLVE_INTERVAL: Duration = Duration::from_secs(30);
pub(crate) const MAX_RESOLVE_INTERVAL: Duration = Duration::from_secs(3600);

pub(crate) fn resolve_interval(ttl: Duration) -> Duration {
    ttl.clamp(MIN_RESOLVE_INTERVAL, MAX_RESOLVE_INTERVAL)
}

/// The lookup that finds a trunk's next hop: the outbound proxy, else the domain; the port
/// only when written (without one, SRV records choose).
pub(crate) fn lookup_request(trunk: &Trunk) -> ResolveRequest {
    let (host, port) = match &trunk.outbound_proxy {
        Some(proxy) => (proxy.host.to_string(), proxy.port),
        None => (
            trunk.domain.to_string(),
            trunk.port_explicit.then_some(trunk.port),
        ),
    };
    ResolveRequest {
        key: ResolveKey::Trunk(trunk.id.clone()),
        // A bracketed IPv6 literal resolves as the bare address.
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port,
        transport: trunk.transport,
    }
}

/// `host:port` for Via and Contact, an IPv6 address in brackets.
pub(crate) fn sent_by(address: SocketAddr) -> String {
    match address.ip() {
        IpAddr::V6(v6) => format!("[{v6}]:{}", address.port()),
        IpAddr::V4(v4) => format!("{v4}:{}", address.port()),
    }
}

/// The trunk's domain as a Request-URI (REGISTER, OPTIONS): with the port only when it
/// was written and no outbound proxy decides the next hop.
pub(crate) fn domain_uri(trunk: &Trunk) -> String {
    if trunk.port_explicit && trunk.outbound_proxy.is_none() {
        format!("sip:{}:{}", trunk.domain, trunk.port)
    } else {
        format!("sip:{}", trunk.domain)
    }
}

/// The name a TLS next hop's certificate must carry (RFC 5922 §7): the outbound proxy's
/// host, else the domain, without IPv6 brackets.
pub(crate) fn server_name(trunk: &Trunk) -> String {
    server_host(trunk).bare()
}

/// The host [`server_name`] names.
pub(crate) fn server_host(trunk: &Trunk) -> &crate::sip::Host {
    match &trunk.outbound_proxy {
        Some(proxy) => &proxy.host,
        None => &trunk.domain,
    }
}
