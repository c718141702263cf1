//! The operator's interface: the TOML config, validated into immutable types.
//!
//! Two layers. [`load`] reads the main file and its includes as spanned TOML and turns
//! every table into validated values ([`Config`], [`Trunk`]), collecting *all* errors with
//! file, line, column and trunk id. Nothing here touches sockets or the daemon's state; a
//! [`Config`] that exists is valid (it may carry [`ConfigWarning`]s: valid, but probably not
//! what was meant), and [`diff`] compares two generations trunk by trunk.

pub mod cluster;
mod country;
mod diff;
mod error;
mod load;
mod outbound;
mod reader;
#[cfg(test)]
mod tests;
pub mod tls;
mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

pub use country::{Country, lookup as lookup_country};
pub use diff::{Diff, diff};
pub use error::{ConfigError, ConfigErrors, ConfigWarning};
pub use load::{LoadOptions, load, load_str};
pub use values::{
    Direction, E164, InboundAuth, Listen, NumberFormat, Secret, StatusLog, Transport,
    UnknownSource, format_duration,
};

use crate::sip::transaction::TimerValues;
use crate::sip::{Host, SipUri};

/// Where `trunkd run` and `check-config` look when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/trunkd/trunkd.toml";

/// One valid config generation.
#[derive(Debug, Clone)]
pub struct Config {
    /// The main file, as given on the command line.
    pub main_file: PathBuf,
    /// Every file this generation was read from, main file first.
    pub files: Vec<PathBuf>,
    /// Include globs, already made absolute-or-relative to the main file's directory.
    pub include_patterns: Vec<PathBuf>,
    pub daemon: Daemon,
    pub tls: Option<TlsFiles>,
    pub backend: Option<Backend>,
    /// `[metrics]`: where `GET /metrics` is served; `None` (the default): not served.
    pub metrics: Option<Metrics>,
    /// `[cluster]`: Redis shared by several hosts; `None` (the default): this host alone.
    pub cluster: Option<cluster::Cluster>,
    /// Trunks by id. `Arc` so a reload can hand unchanged trunks over without copying.
    pub trunks: BTreeMap<String, Arc<Trunk>>,
    /// What `check-config` prints as `warning:` lines and the daemon logs at WARN on start
    /// and after each applied reload, in file and position order. Not part of a diff.
    pub warnings: Vec<ConfigWarning>,
}

/// `[metrics]`: the Prometheus endpoint (issue 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metrics {
    /// `listen = "IP:PORT"`, plain HTTP; bound at start, a change needs a restart.
    pub listen: std::net::SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Daemon {
    pub listen: Vec<Listen>,
    /// Advertised in Via/Contact instead of the socket address (NAT, load balancer).
    pub public_address: Option<Host>,
    pub status_interval: Duration,
    /// Which trunk lines the periodic and start-up reports log (every trunk's, or only
    /// those in trouble or changed); state changes are logged either way.
    pub status_log: StatusLog,
    pub include: Vec<String>,
    /// RFC 3261 §17 timer base values T1, T2, T4 (defaults 500 ms, 4 s, 5 s).
    pub timers: TimerValues,
    /// REGISTER retry after a failure: `retry_min` doubling up to `retry_max`, with jitter;
    /// `retry_max` is also the retry of a rejected (403/404) registration.
    pub register_retry_min: Duration,
    pub register_retry_max: Duration,
    /// DNS servers for next-hop lookups; empty means the system's (`/etc/resolv.conf`).
    pub dns_servers: Vec<std::net::SocketAddr>,
    /// Requests from a source no trunk allows: answered 403, or dropped without a word.
    pub on_unknown_source: UnknownSource,
    /// Header naming the trunk on calls forwarded to the backend (default `X-Trunk`).
    pub trunk_header: String,
    /// A call whose BYE never arrives is ended (its channel released) after this.
    pub max_call_duration: Duration,
    /// On SIGTERM/SIGINT, how long to wait for calls in progress to end (0: not at all).
    pub shutdown_drain: Duration,
    /// Where the full status is written as JSON; `None`: not written.
    pub status_file: Option<PathBuf>,
    /// Final responses to an outbound INVITE after which the next trunk is tried: each
    /// 300..=699, never 401 or 407 (digest challenges, which trunkd answers). The default
    /// list is shared, not copied. Read once outbound calling exists.
    pub outbound_failover_codes: std::borrow::Cow<'static, [u16]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Our certificate chain and key, which `tls:` listeners need; `None` when TLS is only
    /// used toward carriers.
    pub identity: Option<TlsIdentity>,
    /// CAs trusted for carriers' certificates in addition to the system's.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsIdentity {
    pub certificate: PathBuf,
    pub private_key: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// Where admitted inbound calls go unless a trunk sets `route_to` (`uri`, or the
    /// pool of `uris`): never empty.
    pub uris: Vec<BackendUri>,
    /// A backend that sent nothing at all (not even 100 Trying) this long after an
    /// INVITE has failed: the call moves to the next backend of the pool.
    pub invite_timeout: Duration,
    /// OPTIONS health checks of every backend: period (0: off), how long a ping may go
    /// unanswered, and the hysteresis, as for trunks.
    pub options_interval: Duration,
    pub options_timeout: Duration,
    pub options_down_after: u32,
    pub options_up_after: u32,
    /// Further sources (PBX clusters) that may send outbound calls, besides the addresses
    /// of `uri` and of each trunk's `route_to`. Read once outbound calling exists.
    pub allowed_ips: Vec<IpNet>,
}

/// One backend of the pool: its URI (its `transport` parameter, or `sips:`, says how
/// calls reach it), and its place in the order calls try them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendUri {
    pub uri: SipUri,
    /// Lower first (default 100).
    pub priority: u32,
    /// Among equal priorities, a random draw weighted by it (default 1).
    pub weight: u32,
}

impl BackendUri {
    /// How calls reach it: `sips:` or `;transport=tls` is TLS, `;transport=tcp` TCP,
    /// else UDP.
    pub fn transport(&self) -> Transport {
        uri_transport(&self.uri)
    }
}

/// A URI's port, or its transport's default (5061 for TLS, else 5060).
pub fn uri_port(uri: &SipUri) -> u16 {
    uri.port.unwrap_or(uri_transport(uri).default_port())
}

/// The transport a URI names: `sips:` or `;transport=tls` TLS, `;transport=tcp` TCP, else
/// UDP.
pub fn uri_transport(uri: &SipUri) -> Transport {
    match uri.param("transport") {
        _ if uri.scheme == crate::sip::uri::Scheme::Sips => Transport::Tls,
        Some(value) if value.eq_ignore_ascii_case("tls") => Transport::Tls,
        Some(value) if value.eq_ignore_ascii_case("tcp") => Transport::Tcp,
        _ => Transport::Udp,
    }
}

/// One SIP trunk, validated.
///
/// The optional URIs are boxed: absent in most trunks, 80 bytes each inline, and a
/// daemon may hold 10,000 trunks.
#[derive(Debug, Clone)]
pub struct Trunk {
    /// The table key (`[trunks.<id>]`): the name in logs, status and diffs.
    pub id: String,
    /// The operator's `name`; `None` shows the id ([`Trunk::name`]) without a copy of it.
    pub name: Option<String>,
    pub provider: Option<String>,
    pub enabled: bool,
    pub domain: Host,
    /// Explicit `port`, or the transport's default.
    pub port: u16,
    /// Whether `port` was written; RFC 3263 SRV lookups only happen without one.
    pub port_explicit: bool,
    pub transport: Transport,
    pub outbound_proxy: Option<Box<SipUri>>,
    pub direction: Direction,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub auth_realm: Option<String>,
    pub register: bool,
    pub register_expires: u32,
    /// Zero: keepalives off.
    pub options_interval: Duration,
    /// From of our OPTIONS; `None`: `sip:trunkd@<our address>`.
    pub options_from: Option<Box<SipUri>>,
    /// Consecutive failed OPTIONS before the trunk is down; successes before it is up.
    pub options_down_after: u32,
    pub options_up_after: u32,
    /// Final responses to OPTIONS that count as failures (timeouts always do).
    /// The default list is shared, not copied into every trunk.
    pub options_failure_codes: std::borrow::Cow<'static, [u16]>,
    /// A ping without a final response after this long has failed (at most Timer F).
    pub options_timeout: Duration,
    pub inbound_auth: InboundAuth,
    pub allowed_inbound_ips: Vec<IpNet>,
    pub numbers: Vec<E164>,
    pub country: Option<&'static Country>,
    pub number_format: NumberFormat,
    /// Zero: unlimited.
    pub max_channels: u32,
    /// New inbound calls per second (token bucket); zero: unlimited.
    pub max_cps: u32,
    /// The resolved addresses of the trunk's own next hop may send requests without
    /// being listed in `allowed_inbound_ips`.
    pub allow_next_hop: bool,
    /// Where admitted inbound calls go (the "origination URI" of trunk APIs); `None`
    /// means `[backend] uri`.
    pub route_to: Vec<BackendUri>,
    /// Where outbound calls on this trunk are sent (the "termination URI" of trunk APIs);
    /// `None` means the trunk's domain and port. Used once outbound calling exists.
    pub termination_uri: Option<Box<SipUri>>,
    /// E.164 prefixes (digits, without `+`) of the numbers this trunk calls; empty: every
    /// number. The longest matching prefix picks the trunks a call may take.
    pub outbound_prefixes: Vec<String>,
    /// Among trunks of the same longest prefix, lower is tried first.
    pub priority: u32,
    /// Among trunks of equal priority, the share of a weighted random draw (1..=10000).
    pub weight: u32,
    /// New outbound calls per second; zero: unlimited. Like the keys around it, read once
    /// outbound calling exists.
    pub max_cps_outbound: u32,
    /// Written in front of the dialled number in the Request-URI (`[0-9#*]`, 1 to 16).
    pub tech_prefix: Option<String>,
    /// The number outbound calls present as the caller (From, and P-Asserted-Identity with
    /// `send_pai`); always one of `numbers`.
    pub caller_id: Option<E164>,
    /// User part of the From of outbound calls: 1 to 64 RFC 3261 `user` characters.
    pub from_user: Option<String>,
    /// Host part of the From of outbound calls.
    pub from_domain: Option<Host>,
    /// Whether outbound INVITEs carry a P-Asserted-Identity (RFC 3325).
    pub send_pai: bool,
    /// Where the trunk's table starts, for messages. Not part of the trunk's identity.
    pub origin: Origin,
}

/// A place in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: Arc<Path>,
    pub line: u32,
    pub column: u32,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

impl Trunk {
    /// The display name: `name`, else the id.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }

    /// `transport:host:port` of the first hop as configured (outbound proxy or domain).
    /// DNS resolution (RFC 3263) refines this at run time.
    pub fn next_hop(&self) -> String {
        match &self.outbound_proxy {
            Some(proxy) => {
                let port = proxy.port.unwrap_or(self.transport.default_port());
                format!("{}:{}:{port}", self.transport, proxy.host)
            }
            None => format!("{}:{}:{}", self.transport, self.domain, self.port),
        }
    }
}

impl Config {
    pub fn enabled_trunks(&self) -> usize {
        self.trunks.values().filter(|trunk| trunk.enabled).count()
    }
}

/// Declares [`TrunkField`], one variant per field of [`Trunk`] but `origin`, and
/// [`Trunk::changed_fields`] over all of them.
macro_rules! trunk_fields {
    ($($field:ident => $variant:ident),+ $(,)?) => {
        /// A field of [`Trunk`]: what a reload's [`Diff`] names per changed trunk, and what
        /// the registrations and keepalives check to know whether a change concerns them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum TrunkField {
            $($variant,)+
        }

        impl TrunkField {
            /// The config key, as the status log's `fields=` writes it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(TrunkField::$variant => stringify!($field),)+
                }
            }
        }

        impl Trunk {
            /// The fields that differ from `other`, in declaration order; empty when the
            /// two describe the same trunk. `origin` is ignored: moving a trunk to another
            /// file is not a change. A changed password is reported by name only.
            pub fn changed_fields(&self, other: &Trunk) -> Vec<TrunkField> {
                // Destructuring makes adding a field without listing it here a compile error.
                let Trunk { $($field: _,)+ origin: _ } = self;
                let mut changed = Vec::new();
                $(if self.$field != other.$field { changed.push(TrunkField::$variant); })+
                changed
            }
        }
    };
}

trunk_fields!(
    id => Id,
    name => Name,
    provider => Provider,
    enabled => Enabled,
    domain => Domain,
    port => Port,
    port_explicit => PortExplicit,
    transport => Transport,
    outbound_proxy => OutboundProxy,
    direction => Direction,
    username => Username,
    password => Password,
    auth_realm => AuthRealm,
    register => Register,
    register_expires => RegisterExpires,
    options_interval => OptionsInterval,
    options_from => OptionsFrom,
    options_down_after => OptionsDownAfter,
    options_up_after => OptionsUpAfter,
    options_failure_codes => OptionsFailureCodes,
    options_timeout => OptionsTimeout,
    inbound_auth => InboundAuth,
    allowed_inbound_ips => AllowedInboundIps,
    numbers => Numbers,
    country => Country,
    number_format => NumberFormat,
    max_channels => MaxChannels,
    max_cps => MaxCps,
    allow_next_hop => AllowNextHop,
    route_to => RouteTo,
    termination_uri => TerminationUri,
    outbound_prefixes => OutboundPrefixes,
    priority => Priority,
    weight => Weight,
    max_cps_outbound => MaxCpsOutbound,
    tech_prefix => TechPrefix,
    caller_id => CallerId,
    from_user => FromUser,
    from_domain => FromDomain,
    send_pai => SendPai,
);

impl std::fmt::Display for TrunkField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TrunkField {
    /// `domain,password`: how the log lists changed fields.
    pub fn join(fields: &[TrunkField]) -> String {
        let names: Vec<&str> = fields.iter().map(|field| field.as_str()).collect();
        names.join(",")
    }
}
