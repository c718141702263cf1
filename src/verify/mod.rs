//! `trunkd verify <trunk>`: a one-shot check of one trunk against its carrier, for the
//! operator who just added it. It prints one line per step and exits non-zero on failure:
//!
//! ```text
//!  config ─► dns ─► transport ─► options ─► register (+ un-REGISTER) ─► nat ─► allowlist
//! ```
//!
//! It runs beside a running daemon without disturbing it: it never binds the configured
//! listen ports (its UDP socket is ephemeral, its TCP/TLS connections are its own), its
//! REGISTER has its own Call-ID and a Contact naming that ephemeral socket, and it removes
//! exactly that Contact again (Expires: 0), so the daemon's binding stays. The SIP work is
//! done by the daemon's own sans-IO machines ([`Keepalive`], [`Registration`]) driven in
//! real time here, so what verify sees is what the daemon would see.
//!
//! The report never contains a secret: no password, no Authorization header, no nonce.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::RData;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::{Instant as TokioInstant, sleep_until};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::config::{self, Config, LoadOptions, Transport, Trunk};
use crate::io::clock;
use crate::io::dns::Dns;
use crate::sip::Transmit;
use crate::sip::digest;
use crate::sip::scan::frame::{self, Frame};
use crate::sip::scan::{
    self, EMPTY_HEADER, MAX_HEADERS, MAX_MESSAGE_LEN, Method, Rport, Scan, StartLine,
};
use crate::sip::transaction::TimerValues;
use crate::trunk::keepalive::{self, Keepalive};
use crate::trunk::next_hop::{MAX_RESOLVE_INTERVAL, MIN_RESOLVE_INTERVAL, lookup_request};
use crate::trunk::random::Random;
use crate::trunk::registration::{self, Registration};
use crate::trunk::registrations::Registrations;

/// Exit status: every step passed (warnings allowed).
pub const EXIT_OK: u8 = 0;
/// Exit status: at least one step failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit status: no trunk with that id in the config.
pub const EXIT_UNKNOWN_TRUNK: u8 = 2;

/// TCP connect and TLS handshake limit, as the daemon's.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Expiry asked for verify's own short-lived binding; a registrar's 423 Min-Expires raises
/// it. It is removed at once anyway; this only bounds a leftover if the removal fails.
const VERIFY_EXPIRES: u32 = 60;
/// Detail lines are indented under the step's tag.
const INDENT: &str = "       ";

/// Loads the config, checks trunk `trunk_id` step by step and prints the report to stdout.
/// Returns the exit status: [`EXIT_OK`], [`EXIT_FAILED`] or [`EXIT_UNKNOWN_TRUNK`].
pub fn run(config_path: &Path, trunk_id: &str, options: &LoadOptions) -> u8 {
    let mut report = Report::default();
    let config = match config::load(config_path, options) {
        Ok(config) => config,
        Err(errors) => {
            let mut step = Step::new(
                Status::Fail,
                "config",
                format!(
                    "{}: invalid: {}",
                    config_path.display(),
                    crate::io::count_of(errors.0.len(), "error")
                ),
            );
            step.details = errors.0.iter().map(ToString::to_string).collect();
            report.add(step);
            return report.finish();
        }
    };
    let Some(trunk) = config.trunks.get(trunk_id).cloned() else {
        let ids: Vec<&str> = config.trunks.keys().map(String::as_str).collect();
        let known = if ids.is_empty() {
            "it defines no trunks".to_owned()
        } else {
            format!("trunks: {}", ids.join(", "))
        };
        report.add(Step::new(
            Status::Fail,
            "config",
            format!(
                "no trunk \"{trunk_id}\" in {}; {known}",
                config_path.display()
            ),
        ));
        report.finish();
        return EXIT_UNKNOWN_TRUNK;
    };
    report.add(config_step(&config, &trunk));

    // One crypto provider for the process, as `run` does; client_config also passes it
    // explicitly, so an already installed one is fine.
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            report.add(Step::new(
                Status::Fail,
                "runtime",
                format!("cannot start the runtime: {error}"),
            ));
            return report.finish();
        }
    };
    runtime.block_on(verify(&config, &trunk, &mut report));
    report.finish()
}

/// Steps 2 to 7, each printed as it finishes.
async fn verify(config: &Config, trunk: &Trunk, report: &mut Report) {
    let timers = config.daemon.timers;
    let public_ip = config
        .daemon
        .public_address
        .as_ref()
        .and_then(|host| host.ip());
    let has_credentials = trunk.username.is_some() && trunk.password.is_some();

    let register_skipped = |why: &str| {
        if has_credentials {
            Step::new(Status::Skip, "register", why)
        } else {
            no_credentials_step(trunk)
        }
    };
    let Some(resolution) = resolve(config, trunk, report).await else {
        let why = "no next hop (dns failed)";
        report.add(Step::new(Status::Skip, "transport", why));
        report.add(Step::new(Status::Skip, "options", why));
        report.add(register_skipped(why));
        report.add(Step::new(Status::Skip, "nat", why));
        report.add(Step::new(Status::Skip, "allowlist", why));
        return;
    };

    let mut observed = Observed::default();
    let mut link = match connect(config, trunk, &resolution, public_ip).await {
        Ok((link, step)) => {
            report.add(step);
            link
        }
        Err(step) => {
            report.add(step);
            report.add(Step::new(Status::Skip, "options", "no connection"));
            report.add(register_skipped("no connection"));
            report.add(Step::new(Status::Skip, "nat", "no response to compare"));
            report.add(allowlist_step(trunk, &resolution.targets, &[]));
            return;
        }
    };

    report.add(options_step(trunk, &resolution, &mut link, timers, &mut observed).await);
    if has_credentials {
        for step in register_steps(config, trunk, &resolution, &mut link, &mut observed).await {
            report.add(step);
        }
    } else {
        report.add(no_credentials_step(trunk));
    }
    report.add(nat_step(
        trunk.transport,
        link.advertised,
        public_ip.is_some(),
        config.daemon.public_address.as_ref(),
        &observed.vias,
    ));
    let sources: Vec<SocketAddr> = observed.vias.iter().map(|via| via.source).collect();
    report.add(allowlist_step(trunk, &resolution.targets, &sources));
}

fn no_credentials_step(trunk: &Trunk) -> Step {
    let mut step = Step::new(
        Status::Skip,
        "register",
        "the trunk has no username and password",
    );
    if trunk.register {
        step.status = Status::Warn;
        step.summary = "register = true but the trunk has no username and password".into();
    }
    step
}

// ---------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Fail,
    Warn,
    Skip,
}

impl Status {
    fn tag(self) -> &'static str {
        match self {
            Status::Ok => "[ok]",
            Status::Fail => "[FAIL]",
            Status::Warn => "[warn]",
            Status::Skip => "[skip]",
        }
    }
}

/// One report line and the detail lines under it.
#[derive(Debug, Clone)]
struct Step {
    status: Status,
    name: &'static str,
    summary: String,
    details: Vec<String>,
}

impl Step {
    fn new(status: Status, name: &'static str, summary: impl Into<String>) -> Self {
        Step {
            status,
            name,
            summary: summary.into(),
            details: Vec::new(),
        }
    }

    fn detail(mut self, text: impl Into<String>) -> Self {
        self.details.push(text.into());
        self
    }

    fn render(&self) -> String {
        let mut text = format!("{} {}: {}", self.status.tag(), self.name, self.summary);
        for detail in &self.details {
            let _ = write!(text, "\n{INDENT}{detail}");
        }
        text
    }
}

#[derive(Default)]
struct Report {
    failures: usize,
    warnings: usize,
}

impl Report {
    /// Prints the step at once, so a slow step shows the ones before it.
    fn add(&mut self, step: Step) {
        match step.status {
            Status::Fail => self.failures += 1,
            Status::Warn => self.warnings += 1,
            Status::Ok | Status::Skip => {}
        }
        println!("{}", step.render());
    }

    fn finish(&self) -> u8 {
        let warnings = crate::io::count_of(self.warnings, "warning");
        if self.failures == 0 {
            println!("result: ok ({warnings})");
            EXIT_OK
        } else {
            let failures = crate::io::count_of(self.failures, "failed step");
            println!("result: FAIL ({failures}, {warnings})");
            EXIT_FAILED
        }
    }
}

// ---------------------------------------------------------------------------------------
// Step 1: config
// ---------------------------------------------------------------------------------------

fn config_step(config: &Config, trunk: &Trunk) -> Step {
    let name = if trunk.name() == trunk.id {
        String::new()
    } else {
        format!(" ({})", trunk.name())
    };
    let summary = format!(
        "trunk \"{}\"{name} at {}: next hop {}, direction {}, register {}",
        trunk.id,
        trunk.origin,
        trunk.next_hop(),
        trunk.direction,
        if trunk.register { "yes" } else { "no" },
    );
    let mut step = Step::new(Status::Ok, "config", summary).detail(format!(
        "{} loaded: {} ({} enabled)",
        config.main_file.display(),
        crate::io::count_of(config.trunks.len(), "trunk"),
        config.enabled_trunks()
    ));
    if !trunk.enabled {
        step.status = Status::Warn;
        step.details.push(
            "the trunk is disabled (enabled = false): the daemon neither registers nor pings \
             it; verifying it anyway"
                .into(),
        );
    }
    step
}

// ---------------------------------------------------------------------------------------
// Step 2: DNS (RFC 3263)
// ---------------------------------------------------------------------------------------

/// Where verify sends: every target in the daemon's order, and the one it uses.
struct Resolution {
    targets: Vec<SocketAddr>,
    chosen: SocketAddr,
    /// The name a TLS certificate must carry: the outbound proxy's host or the domain.
    server_name: String,
}

async fn resolve(config: &Config, trunk: &Trunk, report: &mut Report) -> Option<Resolution> {
    let request = lookup_request(trunk);
    let transport = trunk.transport;
    let server_name = crate::trunk::next_hop::server_name(trunk);
    let via = if trunk.outbound_proxy.is_some() {
        " (outbound_proxy)"
    } else {
        ""
    };

    let mut details = Vec::new();
    let (targets, ttl, summary) = if let Ok(ip) = request.host.parse::<IpAddr>() {
        let port = request.port.unwrap_or(transport.default_port());
        let target = SocketAddr::new(ip, port);
        let summary = format!("{}{via} is an IP address: no DNS lookup", request.host);
        (vec![target], None, summary)
    } else {
        let servers = if config.daemon.dns_servers.is_empty() {
            "the system's resolver (/etc/resolv.conf)".to_owned()
        } else {
            let list: Vec<String> = config
                .daemon
                .dns_servers
                .iter()
                .map(ToString::to_string)
                .collect();
            format!("dns_servers {}", list.join(", "))
        };
        details.push(format!("asking {servers}"));
        let resolver = match crate::io::dns::resolver(&config.daemon.dns_servers) {
            Ok(resolver) => resolver,
            Err(error) => {
                report.add(Step::new(
                    Status::Fail,
                    "dns",
                    format!("cannot set up the resolver: {error}"),
                ));
                return None;
            }
        };
        describe_lookup(
            &resolver,
            &request.host,
            request.port,
            transport,
            &mut details,
        )
        .await;
        let dns = match Dns::new(&config.daemon.dns_servers) {
            Ok(dns) => dns,
            Err(error) => {
                report.add(Step::new(
                    Status::Fail,
                    "dns",
                    format!("cannot set up the resolver: {error}"),
                ));
                return None;
            }
        };
        let mut random = Random::new(seed());
        match dns
            .targets(&request.host, request.port, transport, &mut random)
            .await
        {
            Ok(found) => {
                let how = match request.port {
                    Some(port) => format!("A/AAAA, port {port} set so no SRV"),
                    None => "RFC 3263: SRV, else A/AAAA".to_owned(),
                };
                let summary = format!("{}{via} resolved ({how})", request.host);
                (found.addresses, found.ttl, summary)
            }
            Err(error) => {
                let mut step = Step::new(
                    Status::Fail,
                    "dns",
                    format!("cannot resolve {}{via}: {error}", request.host),
                );
                step.details = details;
                report.add(step);
                return None;
            }
        }
    };
    let Some(&first) = targets.first() else {
        report.add(Step::new(
            Status::Fail,
            "dns",
            format!("{} resolves to no address", request.host),
        ));
        return None;
    };
    // The daemon sends only to targets of an address family it has a listener for (the
    // Contact names that listener), and takes the first such one.
    let has_listener = |address: &SocketAddr| {
        config.daemon.listen.iter().any(|listen| {
            listen.transport == transport && listen.address.is_ipv4() == address.is_ipv4()
        })
    };
    let usable: Vec<SocketAddr> = targets
        .iter()
        .copied()
        .filter(|address| has_listener(address))
        .collect();
    let chosen = usable.first().copied().unwrap_or(first);
    let list = |addresses: &[SocketAddr]| {
        let text: Vec<String> = addresses.iter().map(ToString::to_string).collect();
        text.join(", ")
    };
    if targets.len() > 1 {
        details.push(format!("order: {}", list(&targets)));
    }
    if !usable.is_empty() && usable.len() < targets.len() {
        details.push(format!(
            "with a {transport} listener of their address family: {}",
            list(&usable)
        ));
    }
    if usable.len() > 1 {
        details.push("the daemon fails over along them; verify tests the first".into());
    }
    if let Some(ttl) = ttl {
        let again = ttl.clamp(MIN_RESOLVE_INTERVAL, MAX_RESOLVE_INTERVAL);
        details.push(format!(
            "DNS TTL {} s: the daemon looks the next hop up again after {} s (TTL kept \
             within 30 s to 1 h)",
            ttl.as_secs(),
            again.as_secs()
        ));
    }
    let mut step = Step::new(
        Status::Ok,
        "dns",
        format!("{summary}; chosen target {transport}:{chosen}"),
    );
    step.details = details;
    if usable.is_empty() {
        step.status = Status::Fail;
        step.details.push(format!(
            "no {transport} listener in [daemon] listen has the address family of {}: the \
             daemon cannot use this trunk (add e.g. \"{transport}:{}:5060\")",
            first,
            if first.is_ipv4() { "0.0.0.0" } else { "[::]" }
        ));
    }
    report.add(step);
    Some(Resolution {
        targets,
        chosen,
        server_name,
    })
}

/// The lookups behind the daemon's choice, for the operator: SRV records with priority,
/// weight, port and TTL, then each name's addresses.
async fn describe_lookup(
    resolver: &TokioResolver,
    host: &str,
    port: Option<u16>,
    transport: Transport,
    details: &mut Vec<String>,
) {
    let host = host.trim_end_matches('.');
    if let Some(port) = port {
        describe_addresses(resolver, host, port, details).await;
        return;
    }
    let service = match transport {
        Transport::Udp => "_sip._udp",
        Transport::Tcp => "_sip._tcp",
        Transport::Tls => "_sips._tcp",
    };
    let query = format!("{service}.{host}.");
    let records: Vec<(u16, u16, u16, String, u32)> = match resolver.srv_lookup(query.as_str()).await
    {
        Ok(lookup) => lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::SRV(srv) => Some((
                    srv.priority,
                    srv.weight,
                    srv.port,
                    srv.target.to_utf8(),
                    record.ttl,
                )),
                _ => None,
            })
            .collect(),
        Err(error) => {
            details.push(format!("SRV {query}: none ({error})"));
            Vec::new()
        }
    };
    if records.is_empty() {
        let default = transport.default_port();
        details.push(format!(
            "no SRV record: A/AAAA of {host} on the default port {default}"
        ));
        describe_addresses(resolver, host, default, details).await;
        return;
    }
    let mut sorted = records;
    sorted.sort_by_key(|record| (record.0, std::cmp::Reverse(record.1)));
    for (priority, weight, port, target, ttl) in &sorted {
        details.push(format!(
            "SRV {query} priority {priority} weight {weight} port {port} target {target} (TTL {ttl} s)"
        ));
    }
    for (_, _, port, target, _) in &sorted {
        if target == "." {
            details.push(format!(
                "{query}: target \".\": the service is not offered there"
            ));
            continue;
        }
        describe_addresses(resolver, target.trim_end_matches('.'), *port, details).await;
    }
}

async fn describe_addresses(
    resolver: &TokioResolver,
    host: &str,
    port: u16,
    details: &mut Vec<String>,
) {
    let name = format!("{host}.");
    match resolver.lookup_ip(name.as_str()).await {
        Ok(lookup) => {
            let ttl = lookup
                .as_lookup()
                .answers()
                .iter()
                .filter(|record| matches!(record.data, RData::A(_) | RData::AAAA(_)))
                .map(|record| record.ttl)
                .min();
            let addresses: Vec<String> = lookup
                .iter()
                .map(|ip| SocketAddr::new(ip, port).to_string())
                .collect();
            let ttl = ttl.map(|ttl| format!(" (TTL {ttl} s)")).unwrap_or_default();
            details.push(format!("A/AAAA {host} → {}{ttl}", addresses.join(", ")));
        }
        Err(error) => details.push(format!("A/AAAA {host}: {error}")),
    }
}

/// A per-process seed from the OS-seeded keys of std's hasher (as the daemon's).
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}

// ---------------------------------------------------------------------------------------
// Step 3: transport, and the link the SIP steps use
// ---------------------------------------------------------------------------------------

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

enum Incoming {
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
struct Link {
    peer: SocketAddr,
    /// What our Via and Contact name: the public address if configured, else our own.
    advertised: SocketAddr,
    channel: Channel,
}

impl Link {
    async fn send(&mut self, transmit: &Transmit) -> Result<(), String> {
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
    async fn recv(&mut self) -> Incoming {
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
async fn connect(
    config: &Config,
    trunk: &Trunk,
    resolution: &Resolution,
    public_ip: Option<IpAddr>,
) -> Result<(Link, Step), Step> {
    let peer = resolution.chosen;
    let transport = trunk.transport;
    if transport == Transport::Udp {
        // From the daemon's listener address when it names one (so the source address is
        // the daemon's), on an ephemeral port: the listen ports stay the daemon's.
        let listener_ip = config
            .daemon
            .listen
            .iter()
            .find(|listen| {
                listen.transport == Transport::Udp && listen.address.is_ipv4() == peer.is_ipv4()
            })
            .map(|listen| listen.address.ip())
            .filter(|ip| !ip.is_unspecified());
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
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(peer)).await {
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

fn millis(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

// ---------------------------------------------------------------------------------------
// Driving a sans-IO machine in real time
// ---------------------------------------------------------------------------------------

/// What the responses told about us and the carrier.
#[derive(Debug, Default)]
struct Observed {
    vias: Vec<SeenVia>,
    /// Responses to our requests from another address than the target: the daemon
    /// ignores them.
    foreign: Vec<(SocketAddr, u16)>,
}

/// The top Via of a response to one of our requests (RFC 3581 `received`/`rport`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct SeenVia {
    method: &'static str,
    source: SocketAddr,
    received: Option<String>,
    rport: Option<u16>,
}

/// A machine verify drives: the keepalive for OPTIONS, the registration for REGISTER.
trait Probe {
    fn method(&self) -> &'static str;
    fn poll_transmit(&mut self) -> Option<Transmit>;
    fn poll_timeout(&self) -> Option<Instant>;
    fn handle_timeout(&mut self, now: Instant);
    fn handle_transport_error(&mut self, now: Instant, why: &str);
    /// Whether the response (by Call-ID) belongs to this machine.
    fn owns(&self, call_id: &str) -> bool;
    fn handle_response(&mut self, now: Instant, source: SocketAddr, message: &Scan<'_, '_>);
    /// Whether the outcome is known; drains the machine's events.
    fn finished(&mut self) -> bool;
}

/// Runs `probe` until it finishes or `limit` passes. Returns how many requests were
/// sent (first copies and retransmissions), or an error when the limit was hit.
async fn drive(
    link: &mut Link,
    probe: &mut dyn Probe,
    observed: &mut Observed,
    limit: Duration,
) -> Result<u32, String> {
    let give_up = clock::now() + limit;
    let mut sent = 0;
    loop {
        // Before sending: a keepalive that timed out has already queued its next ping.
        if probe.finished() {
            return Ok(sent);
        }
        while let Some(transmit) = probe.poll_transmit() {
            sent += 1;
            if let Err(why) = link.send(&transmit).await {
                probe.handle_transport_error(clock::now(), &why);
            }
        }
        if probe.finished() {
            return Ok(sent);
        }
        if clock::now() >= give_up {
            return Err(format!("no outcome within {} s", limit.as_secs()));
        }
        let wake = probe.poll_timeout().unwrap_or(give_up).min(give_up);
        tokio::select! {
            () = sleep_until(TokioInstant::from_std(wake)) => probe.handle_timeout(clock::now()),
            incoming = link.recv() => match incoming {
                Incoming::Message { source, bytes } => {
                    deliver(link.peer, probe, observed, source, &bytes);
                }
                Incoming::Closed(why) => {
                    probe.handle_transport_error(clock::now(), &format!("connection {why}"));
                }
            },
        }
    }
}

/// Hands a response to the probe it belongs to, noting its Via; requests (a carrier
/// pinging our Contact) and strays are dropped.
fn deliver(
    peer: SocketAddr,
    probe: &mut dyn Probe,
    observed: &mut Observed,
    source: SocketAddr,
    bytes: &[u8],
) {
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    let Ok(message) = scan::scan(bytes, &mut headers) else {
        return;
    };
    let Some(code) = message.status_code() else {
        return;
    };
    let Some(call_id) = message
        .call_id()
        .ok()
        .and_then(|id| std::str::from_utf8(id).ok())
    else {
        return;
    };
    if !probe.owns(call_id) {
        return;
    }
    if source != peer {
        observed.foreign.push((source, code));
    } else if let Ok(via) = message.top_via() {
        observed.vias.push(SeenVia {
            method: probe.method(),
            source,
            received: via
                .received
                .and_then(|value| std::str::from_utf8(value).ok())
                .map(str::to_owned),
            rport: match via.rport {
                Rport::Value(port) => Some(port),
                Rport::Absent | Rport::Empty => None,
            },
        });
    }
    probe.handle_response(clock::now(), source, &message);
}

/// The longest a probe may take: Timer F for each request of a challenged exchange, and
/// some slack.
fn probe_limit(timers: TimerValues) -> Duration {
    64 * timers.t1 * 5 + Duration::from_secs(10)
}

// ---------------------------------------------------------------------------------------
// Step 4: OPTIONS
// ---------------------------------------------------------------------------------------

struct OptionsProbe {
    keepalive: Keepalive,
    outcome: Option<(keepalive::State, Option<u16>, String)>,
}

impl Probe for OptionsProbe {
    fn method(&self) -> &'static str {
        "OPTIONS"
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.keepalive.poll_transmit()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.keepalive.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.keepalive.handle_timeout(now);
    }

    fn handle_transport_error(&mut self, now: Instant, why: &str) {
        self.keepalive.handle_transport_error(now, why);
    }

    fn owns(&self, call_id: &str) -> bool {
        self.keepalive.call_id() == Some(call_id)
    }

    fn handle_response(&mut self, now: Instant, source: SocketAddr, message: &Scan<'_, '_>) {
        let (Some(code), Ok(cseq), Ok(via)) =
            (message.status_code(), message.cseq(), message.top_via())
        else {
            return;
        };
        if cseq.method != Method::Options {
            return;
        }
        let reason = match message.start_line() {
            StartLine::Response { reason, .. } => String::from_utf8_lossy(reason).into_owned(),
            StartLine::Request { .. } => String::new(),
        };
        let branch = via
            .branch
            .and_then(|branch| std::str::from_utf8(branch).ok())
            .unwrap_or_default();
        self.keepalive.handle_response(
            now,
            &crate::sip::transaction::ResponseView {
                source,
                code,
                reason: &reason,
                branch,
                cseq: cseq.sequence,
            },
        );
    }

    fn finished(&mut self) -> bool {
        while let Some(event) = self.keepalive.poll_event() {
            if let keepalive::Event::StateChanged {
                state,
                code,
                reason,
            } = event
            {
                self.outcome.get_or_insert((state, code, reason));
            }
        }
        self.outcome.is_some()
    }
}

async fn options_step(
    trunk: &Trunk,
    resolution: &Resolution,
    link: &mut Link,
    timers: TimerValues,
    observed: &mut Observed,
) -> Step {
    let local = crate::trunk::next_hop::sent_by(link.advertised);
    let target = crate::trunk::next_hop::domain_uri(trunk);
    let from_uri = match &trunk.options_from {
        Some(uri) => uri.to_string(),
        None => keepalive::default_from_uri(&local),
    };
    let params = keepalive::Params {
        request_uri: target.clone(),
        from_uri,
        to_uri: target.clone(),
        via_sent_by: local,
        transport: trunk.transport,
        next_hop: resolution.chosen,
        server_name: resolution.server_name.clone(),
        user_agent: user_agent(),
        interval: keepalive::MIN_INTERVAL,
        // The first ping decides: up on an answer, down on a failure.
        down_after: 1,
        up_after: 1,
        failure_codes: trunk.options_failure_codes.clone(),
    };
    // The first ping is due at a random point of one interval after the instant given:
    // an instant one interval back makes it due now.
    let now = clock::now();
    let base = now.checked_sub(keepalive::MIN_INTERVAL).unwrap_or(now);
    let mut probe = OptionsProbe {
        keepalive: Keepalive::new(params, timers, seed() ^ 0x0b7, base),
        outcome: None,
    };
    let foreign_before = observed.foreign.len();
    let sent = drive(link, &mut probe, observed, probe_limit(timers)).await;
    let mut step = match (&probe.outcome, sent) {
        (Some((keepalive::State::Up, Some(code), reason)), _) => {
            let rtt = probe.keepalive.rtt_last().map(millis).unwrap_or_default();
            let mut step = Step::new(
                Status::Ok,
                "options",
                format!("{reason} in {rtt} from {}", resolution.chosen),
            );
            if probe.keepalive.rtt_last_retransmitted() {
                step.details.push(
                    "the request was retransmitted: the time runs from the first copy and \
                     may overstate the round trip"
                        .into(),
                );
            }
            if !(200..300).contains(code) {
                step.details.push(format!(
                    "not a 2xx, but any final response other than options_failure_codes {:?} \
                     shows the carrier's SIP stack is alive",
                    trunk.options_failure_codes
                ));
            }
            step
        }
        (Some((_, Some(code), reason)), _) => Step::new(
            Status::Fail,
            "options",
            format!(
                "{reason} from {}: {code} is one of options_failure_codes {:?}",
                resolution.chosen, trunk.options_failure_codes
            ),
        ),
        (Some((_, None, reason)), Ok(sent)) if reason == "timeout" => Step::new(
            Status::Fail,
            "options",
            format!(
                "timeout: no response from {} {}:{} within 64·T1 = {} ms ({})",
                trunk.transport,
                resolution.chosen.ip(),
                resolution.chosen.port(),
                (64 * timers.t1).as_millis(),
                crate::io::count_of(sent as usize, "transmission")
            ),
        ),
        (Some((_, None, reason)), _) => Step::new(
            Status::Fail,
            "options",
            format!("{reason} (to {})", resolution.chosen),
        ),
        (None, Err(why)) => Step::new(Status::Fail, "options", why),
        (None, Ok(_)) => Step::new(Status::Fail, "options", "no outcome"),
    };
    for (source, code) in &observed.foreign[foreign_before..] {
        step.details.push(format!(
            "a {code} came from {source}, not from {}: the daemon ignores such responses",
            resolution.chosen
        ));
    }
    if trunk.options_interval.is_zero() {
        step.details
            .push("keepalives are off for this trunk (options_interval = 0)".into());
    }
    step
}

fn user_agent() -> String {
    format!("trunkd/{} (verify)", env!("CARGO_PKG_VERSION"))
}

// ---------------------------------------------------------------------------------------
// Step 5: REGISTER and un-REGISTER
// ---------------------------------------------------------------------------------------

/// A challenge the registrar sent, as the operator needs to see it (no nonce).
#[derive(Debug, Clone, PartialEq, Eq)]
enum SeenChallenge {
    Digest {
        code: u16,
        realm: String,
        algorithm: &'static str,
        qop: String,
        stale: bool,
    },
    /// No Digest challenge trunkd can answer; why.
    Unusable { code: u16, why: String },
}

impl std::fmt::Display for SeenChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SeenChallenge::Digest {
                code,
                realm,
                algorithm,
                qop,
                stale,
            } => {
                write!(
                    f,
                    "{code} realm \"{realm}\", algorithm {algorithm}, qop {qop}"
                )?;
                if *stale {
                    f.write_str(", stale")?;
                }
                Ok(())
            }
            SeenChallenge::Unusable { code, why } => write!(f, "{code}: {why}"),
        }
    }
}

struct RegisterProbe {
    registration: Registration,
    unregistering: bool,
    challenges: Vec<SeenChallenge>,
    /// (branch, CSeq) of challenges already noted: a retransmitted 401 is one challenge.
    challenged: Vec<(String, u32)>,
    outcome: Option<(registration::State, Option<u16>, String)>,
}

impl Probe for RegisterProbe {
    fn method(&self) -> &'static str {
        "REGISTER"
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.registration.poll_transmit()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.unregistering {
            self.registration.transaction_deadline()
        } else {
            self.registration.poll_timeout()
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.registration.handle_timeout(now);
    }

    fn handle_transport_error(&mut self, now: Instant, why: &str) {
        self.registration.handle_transport_error(now, why);
    }

    fn owns(&self, call_id: &str) -> bool {
        self.registration.call_id() == call_id
    }

    fn handle_response(&mut self, now: Instant, source: SocketAddr, message: &Scan<'_, '_>) {
        let Some(view) = crate::trunk::registrations::response_view(message, source) else {
            return;
        };
        if matches!(view.response.code, 401 | 407) {
            let key = (view.response.branch.to_owned(), view.response.cseq);
            if !self.challenged.contains(&key) {
                self.challenged.push(key);
                self.challenges.push(seen_challenge(&view));
            }
        }
        self.registration.handle_response(now, &view);
    }

    fn finished(&mut self) -> bool {
        while let Some(event) = self.registration.poll_event() {
            if let registration::Event::StateChanged {
                state,
                code,
                reason,
            } = event
            {
                let decided = if self.unregistering {
                    state == registration::State::Unregistered
                } else {
                    state != registration::State::Registering
                };
                if decided && self.outcome.is_none() {
                    self.outcome = Some((state, code, reason));
                }
            }
        }
        if self.unregistering {
            self.registration.is_finished()
        } else {
            self.outcome.is_some()
        }
    }
}

fn seen_challenge(view: &registration::RegisterResponse<'_>) -> SeenChallenge {
    let values = if view.response.code == 407 {
        &view.proxy_authenticate
    } else {
        &view.www_authenticate
    };
    let mut first_error = None;
    let parsed: Vec<_> = values
        .iter()
        .filter_map(|value| match digest::parse_challenge(value) {
            Ok(challenge) => Some(challenge),
            Err(error) => {
                first_error.get_or_insert(error.to_string());
                None
            }
        })
        .collect();
    let offered = parsed.first().cloned();
    match digest::preferred(parsed) {
        Some(challenge) => SeenChallenge::Digest {
            code: view.response.code,
            realm: challenge.realm.to_string(),
            algorithm: challenge.algorithm.as_str(),
            qop: match challenge.qop {
                None => "none (RFC 2069)".to_owned(),
                Some(options) => {
                    let mut list = Vec::new();
                    if options.auth {
                        list.push("auth");
                    }
                    if options.auth_int {
                        list.push("auth-int");
                    }
                    list.join(",")
                }
            },
            stale: challenge.stale,
        },
        None => SeenChallenge::Unusable {
            code: view.response.code,
            why: match (offered, first_error) {
                (Some(challenge), _) => challenge
                    .answerable()
                    .err()
                    .map_or_else(|| "no usable Digest challenge".into(), |e| e.to_string()),
                (None, Some(error)) => error,
                (None, None) => "no WWW-Authenticate/Proxy-Authenticate header".into(),
            },
        },
    }
}

async fn register_steps(
    config: &Config,
    trunk: &Trunk,
    resolution: &Resolution,
    link: &mut Link,
    observed: &mut Observed,
) -> Vec<Step> {
    let timers = config.daemon.timers;
    let username = trunk.username.clone().unwrap_or_default();
    let local = crate::trunk::next_hop::sent_by(link.advertised);
    let registrar = crate::trunk::next_hop::domain_uri(trunk);
    let aor = format!("sip:{username}@{}", trunk.domain);
    let contact = format!("sip:{username}@{local};transport={}", trunk.transport);
    let params = registration::Params {
        registrar: registrar.clone(),
        aor: aor.clone(),
        contact: contact.clone(),
        via_sent_by: local,
        transport: trunk.transport,
        next_hop: resolution.chosen,
        server_name: resolution.server_name.clone(),
        username: username.clone(),
        password: trunk
            .password
            .clone()
            .unwrap_or_else(|| config::Secret::new("")),
        auth_realm: trunk.auth_realm.clone(),
        expires: VERIFY_EXPIRES,
        user_agent: user_agent().into(),
        // verify reports NAT (step nat); it does not re-register a corrected Contact.
        learn_public_address: false,
        retry_min: config.daemon.register_retry_min,
        retry_max: config.daemon.register_retry_max,
    };
    let mut probe = RegisterProbe {
        registration: Registration::new(
            params,
            timers,
            seed() ^ 0x5e6,
            clock::now(),
            Duration::ZERO,
        ),
        unregistering: false,
        challenges: Vec::new(),
        challenged: Vec::new(),
        outcome: None,
    };
    let limit = probe_limit(timers);
    let foreign_before = observed.foreign.len();
    let driven = drive(link, &mut probe, observed, limit).await;
    let mut steps = Vec::new();
    let mut step = register_outcome(trunk, &probe, driven.as_ref().err(), timers);
    let hints = std::mem::take(&mut step.details);
    step.details.push(format!(
        "REGISTER {registrar} for {aor}, Contact <{contact}> (verify's own), Expires {VERIFY_EXPIRES}"
    ));
    for challenge in &probe.challenges {
        step.details.push(format!("challenge: {challenge}"));
    }
    if let Some(realm) = first_realm(&probe.challenges) {
        step.details.push(match &trunk.auth_realm {
            Some(pinned) if pinned == realm => "auth_realm matches the challenge".to_owned(),
            Some(pinned) => format!("auth_realm is \"{pinned}\""),
            None => "no auth_realm set: trunkd answers a challenge for any realm (set \
                     auth_realm to pin it)"
                .to_owned(),
        });
    }
    for (source, code) in &observed.foreign[foreign_before..] {
        step.details.push(format!(
            "a {code} came from {source}, not from {}: the daemon ignores such responses",
            resolution.chosen
        ));
    }
    if !trunk.register {
        step.details.push(
            "register = false: the daemon does not register this trunk; verify checked the \
             credentials anyway"
                .into(),
        );
    }
    step.details.extend(hints);
    let registered = probe.registration.has_binding();
    steps.push(step);
    if !registered {
        return steps;
    }

    // Remove exactly our Contact (Expires: 0): the daemon's binding, if any, stays.
    probe.unregistering = true;
    probe.outcome = None;
    probe.challenges.clear();
    probe.registration.unregister(clock::now());
    let driven = drive(link, &mut probe, observed, limit).await;
    let left = format!("verify's binding lapses by itself within {VERIFY_EXPIRES} s");
    steps.push(match (&probe.outcome, driven) {
        (Some((_, Some(code), reason)), _) if (200..300).contains(code) => Step::new(
            Status::Ok,
            "unregister",
            format!("binding removed ({reason}); nothing left behind"),
        ),
        (Some((_, _, reason)), _) => Step::new(
            Status::Warn,
            "unregister",
            format!("un-REGISTER failed: {reason}; {left}"),
        ),
        (None, result) => Step::new(
            Status::Warn,
            "unregister",
            format!(
                "un-REGISTER got no outcome{}; {left}",
                result
                    .err()
                    .map(|why| format!(" ({why})"))
                    .unwrap_or_default()
            ),
        ),
    });
    steps
}

fn first_realm(challenges: &[SeenChallenge]) -> Option<&str> {
    challenges.iter().find_map(|challenge| match challenge {
        SeenChallenge::Digest { realm, .. } => Some(realm.as_str()),
        SeenChallenge::Unusable { .. } => None,
    })
}

/// What the first REGISTER exchange came to, in the operator's terms.
fn register_outcome(
    trunk: &Trunk,
    probe: &RegisterProbe,
    limit_hit: Option<&String>,
    timers: TimerValues,
) -> Step {
    use registration::State;
    let username = trunk.username.as_deref().unwrap_or_default();
    let Some((state, code, reason)) = &probe.outcome else {
        let why = limit_hit.map_or("no outcome", String::as_str);
        return Step::new(Status::Fail, "register", why.to_owned());
    };
    let state_name = state.as_str();
    match state {
        State::Registered => {
            let granted = probe
                .registration
                .expires_in(clock::now())
                .map(|left| left.as_secs_f64().round() as u64)
                .unwrap_or_default();
            Step::new(
                Status::Ok,
                "register",
                format!("registered {username}: {reason}, granted {granted} s"),
            )
        }
        State::AuthFailed => {
            let realm = first_realm(&probe.challenges);
            let (summary, hint) = match (&trunk.auth_realm, realm) {
                (Some(pinned), Some(realm)) if pinned != realm => (
                    format!(
                        "wrong realm: the registrar challenges for realm \"{realm}\", but \
                         auth_realm is \"{pinned}\", so trunkd does not answer → state \
                         {state_name}"
                    ),
                    format!("set auth_realm = \"{realm}\" if that realm is right"),
                ),
                _ if probe
                    .challenges
                    .iter()
                    .all(|c| matches!(c, SeenChallenge::Unusable { .. })) =>
                {
                    (
                        format!(
                            "the registrar's challenge cannot be answered ({reason}) → state \
                             {state_name}"
                        ),
                        "trunkd answers Digest with MD5, SHA-256 or SHA-512-256 and qop=auth"
                            .to_owned(),
                    )
                }
                _ if probe.challenges.len() >= 2 => (
                    format!(
                        "wrong password (or username): the registrar refused our answer to \
                         its challenge ({reason}) → state {state_name}"
                    ),
                    format!(
                        "check username \"{username}\" and password/password_file (the \
                         password is never shown)"
                    ),
                ),
                _ => (
                    format!("authentication failed: {reason} → state {state_name}"),
                    String::new(),
                ),
            };
            let step = Step::new(Status::Fail, "register", summary);
            if hint.is_empty() {
                step
            } else {
                step.detail(hint)
            }
        }
        State::Rejected => {
            let after_answer = !probe.challenges.is_empty();
            let hint = match (code, after_answer) {
                (Some(403), true) => {
                    "403 to our answer: the carrier refuses these credentials (often a wrong \
                     password) or this account"
                }
                (Some(404), _) => {
                    "404: the carrier does not know this user at this domain (check username \
                     and domain)"
                }
                _ => "the carrier refuses this account",
            };
            Step::new(
                Status::Fail,
                "register",
                format!("rejected: {reason} → state {state_name}"),
            )
            .detail(hint)
        }
        State::Backoff if code.is_none() && reason.contains("timeout") => Step::new(
            Status::Fail,
            "register",
            format!(
                "timeout: no response to REGISTER within 64·T1 = {} ms → state {state_name}",
                (64 * timers.t1).as_millis()
            ),
        ),
        State::Backoff | State::Unregistered | State::Registering => Step::new(
            Status::Fail,
            "register",
            format!("REGISTER failed: {reason} → state {state_name}"),
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Step 6: NAT
// ---------------------------------------------------------------------------------------

/// Compares where the carrier saw our requests come from (Via `received`/`rport`, RFC
/// 3581) with the address we advertised.
fn nat_step(
    transport: Transport,
    advertised: SocketAddr,
    public: bool,
    public_address: Option<&crate::sip::Host>,
    vias: &[SeenVia],
) -> Step {
    let Some(first) = vias.first() else {
        return Step::new(Status::Skip, "nat", "no response to compare");
    };
    let seen_ip = |via: &SeenVia| -> Option<IpAddr> {
        match &via.received {
            Some(received) => received
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .ok(),
            None => Some(advertised.ip()),
        }
    };
    // Over TCP/TLS the rport is the connection's ephemeral port: only the IP says anything.
    let seen_port = |via: &SeenVia| match transport {
        Transport::Udp => via.rport,
        Transport::Tcp | Transport::Tls => None,
    };
    let Some(ip) = seen_ip(first) else {
        return Step::new(
            Status::Warn,
            "nat",
            format!(
                "the carrier's Via received={} is not an IP address",
                first.received.as_deref().unwrap_or_default()
            ),
        );
    };
    let port = seen_port(first);
    let seen = match port {
        Some(port) => SocketAddr::new(ip, port).to_string(),
        None => ip.to_string(),
    };
    let mut step = if public {
        if ip == advertised.ip() {
            Step::new(
                Status::Ok,
                "nat",
                format!("the carrier sees you as {seen}: public_address matches"),
            )
        } else {
            Step::new(
                Status::Warn,
                "nat",
                format!(
                    "the carrier sees you as {seen}, but public_address is {}: calls may be \
                     sent to the wrong address",
                    advertised.ip()
                ),
            )
        }
    } else if ip == advertised.ip() && port.is_none_or(|port| port == advertised.port()) {
        Step::new(
            Status::Ok,
            "nat",
            format!("no NAT: the carrier sees you as {seen}, as advertised"),
        )
    } else {
        Step::new(
            Status::Warn,
            "nat",
            format!(
                "behind NAT: the carrier sees you as {seen}; set public_address or rely on rport"
            ),
        )
        .detail(format!("advertised: {advertised}"))
        .detail(
            "the daemon corrects its REGISTER Contact from received/rport (RFC 3581) \
             unless public_address is set",
        )
    };
    if let Some(host) = public_address
        && host.ip().is_none()
    {
        step.details.push(format!(
            "public_address \"{host}\" is a host name: trunkd does not advertise it yet"
        ));
    }
    if transport == Transport::Udp && vias.iter().all(|via| via.rport.is_none()) {
        step.details.push(
            "the carrier did not fill in rport (RFC 3581): it may answer to the Via port \
             instead of the source port"
                .into(),
        );
    }
    let mut others: Vec<String> = vias
        .iter()
        .filter(|via| seen_ip(via) != Some(ip) || seen_port(via) != port)
        .map(|via| {
            format!(
                "a {} response's Via says received={} rport={}",
                via.method,
                via.received.as_deref().unwrap_or("-"),
                via.rport.map_or_else(|| "-".to_owned(), |p| p.to_string())
            )
        })
        .collect();
    others.dedup();
    step.details.extend(others);
    step
}

// ---------------------------------------------------------------------------------------
// Step 7: inbound allowlist
// ---------------------------------------------------------------------------------------

/// Whether the carrier's addresses (DNS targets, and where responses came from) may send
/// requests on this trunk, as the daemon's admission decides.
fn allowlist_step(trunk: &Trunk, targets: &[SocketAddr], answered_from: &[SocketAddr]) -> Step {
    if !trunk.direction.accepts_inbound() {
        return Step::new(
            Status::Skip,
            "allowlist",
            format!(
                "direction = {}: the trunk takes no inbound calls",
                trunk.direction
            ),
        );
    }
    let mut addresses: Vec<IpAddr> = Vec::new();
    for ip in targets
        .iter()
        .chain(answered_from)
        .map(|address| address.ip())
    {
        if !addresses.contains(&ip) {
            addresses.push(ip);
        }
    }
    if addresses.is_empty() {
        return Step::new(Status::Skip, "allowlist", "no carrier address known");
    }
    // The daemon adds a trunk's next hops to its allowlist (allow_next_hop): an IP literal
    // always, resolved DNS targets while the trunk registers.
    let literal = crate::inbound::snapshot::literal_next_hop(trunk);
    let implicit = |ip: IpAddr| {
        trunk.allow_next_hop
            && (literal == Some(ip)
                || (Registrations::wants_registration(trunk)
                    && targets.iter().any(|target| target.ip() == ip)))
    };
    let mut details = Vec::new();
    if !trunk.enabled {
        details.push("the trunk is disabled: the daemon refuses its inbound calls anyway".into());
    }
    let mut refused = Vec::new();
    for ip in &addresses {
        if let Some(network) = trunk
            .allowed_inbound_ips
            .iter()
            .find(|network| network.contains(ip))
        {
            details.push(format!("{ip}: allowed by allowed_inbound_ips ({network})"));
        } else if implicit(*ip) {
            details.push(format!(
                "{ip}: allowed as the trunk's next hop (allow_next_hop)"
            ));
        } else {
            details.push(format!("{ip}: refused"));
            refused.push(ip.to_string());
        }
    }
    if refused.is_empty() {
        let mut step = Step::new(
            Status::Ok,
            "allowlist",
            "the carrier's signalling addresses may send inbound calls",
        );
        step.details = details;
        step.details.push(
            "carriers often send calls from other addresses too: compare with their list".into(),
        );
        return step;
    }
    let mut step = Step::new(
        Status::Warn,
        "allowlist",
        format!(
            "inbound requests from {} would be refused: not in allowed_inbound_ips",
            refused.join(", ")
        ),
    );
    step.details = details;
    if trunk.allow_next_hop && literal.is_none() && !Registrations::wants_registration(trunk) {
        step.details.push(
            "allow_next_hop covers resolved DNS targets only while the trunk registers \
             (enabled, register = true)"
                .into(),
        );
    } else if !trunk.allow_next_hop {
        step.details
            .push("allow_next_hop = false: next-hop addresses are not allowed implicitly".into());
    }
    step.details.push(format!(
        "add the carrier's addresses to allowed_inbound_ips, e.g. [\"{}\"]",
        refused[0]
    ));
    step
}

#[cfg(test)]
mod tests {
    use super::*;

    fn via(received: Option<&str>, rport: Option<u16>) -> SeenVia {
        SeenVia {
            method: "OPTIONS",
            source: "192.0.2.10:5060".parse().unwrap(),
            received: received.map(str::to_owned),
            rport,
        }
    }

    const OURS: &str = "10.0.0.5:40000";

    #[test]
    fn nat_same_address_is_ok_and_a_different_one_warns() {
        let ours: SocketAddr = OURS.parse().unwrap();
        let step = nat_step(Transport::Udp, ours, false, None, &[via(None, Some(40000))]);
        assert_eq!(step.status, Status::Ok, "{}", step.render());

        let step = nat_step(
            Transport::Udp,
            ours,
            false,
            None,
            &[via(Some("203.0.113.7"), Some(61000))],
        );
        assert_eq!(step.status, Status::Warn);
        assert!(
            step.summary.contains("behind NAT")
                && step.summary.contains("203.0.113.7:61000")
                && step.summary.contains("set public_address or rely on rport"),
            "{}",
            step.render()
        );

        // A port-only rewrite is NAT too over UDP; over TCP the port means nothing.
        let remapped = [via(None, Some(1234))];
        let step = nat_step(Transport::Udp, ours, false, None, &remapped);
        assert_eq!(step.status, Status::Warn);
        let step = nat_step(Transport::Tcp, ours, false, None, &remapped);
        assert_eq!(step.status, Status::Ok);

        let step = nat_step(Transport::Udp, ours, false, None, &[]);
        assert_eq!(step.status, Status::Skip);
    }

    #[test]
    fn nat_with_public_address_compares_the_ip_only() {
        let public: SocketAddr = "203.0.113.7:40000".parse().unwrap();
        let seen = [via(Some("203.0.113.7"), Some(61000))];
        let step = nat_step(Transport::Udp, public, true, None, &seen);
        assert_eq!(step.status, Status::Ok, "{}", step.render());
        let elsewhere = [via(Some("198.51.100.1"), Some(61000))];
        let step = nat_step(Transport::Udp, public, true, None, &elsewhere);
        assert_eq!(step.status, Status::Warn);
    }

    fn trunk(extra: &str) -> Trunk {
        let text = format!(
            "[daemon]\nlisten = [\"udp:127.0.0.1:0\"]\n\n[backend]\nuri = \"sip:127.0.0.1:5080\"\n\n[trunks.t]\n\
             domain = \"carrier.example.net\"\ntransport = \"udp\"\n{extra}\n"
        );
        let config = config::load_str(Path::new("t.toml"), &text, &LoadOptions::default()).unwrap();
        config.trunks["t"].as_ref().clone()
    }

    #[test]
    fn allowlist_by_network_by_next_hop_and_refused() {
        let target: SocketAddr = "192.0.2.10:5060".parse().unwrap();
        let listed = trunk("allowed_inbound_ips = [\"192.0.2.0/24\"]");
        let step = allowlist_step(&listed, &[target], &[]);
        assert_eq!(step.status, Status::Ok, "{}", step.render());

        let unlisted = trunk("allowed_inbound_ips = [\"198.51.100.0/24\"]");
        let step = allowlist_step(&unlisted, &[target], &[]);
        assert_eq!(step.status, Status::Warn, "{}", step.render());
        assert!(step.summary.contains("192.0.2.10"), "{}", step.render());

        let outbound = trunk("direction = \"outbound\"");
        assert_eq!(
            allowlist_step(&outbound, &[target], &[]).status,
            Status::Skip
        );
    }

    #[test]
    fn report_lines_have_the_tag_the_step_and_indented_details() {
        let step = Step::new(Status::Fail, "options", "timeout").detail("more");
        assert_eq!(
            step.render(),
            format!("[FAIL] options: timeout\n{INDENT}more")
        );
    }

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
