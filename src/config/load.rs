//! Reading a config generation: the main file, its includes, every table, every key.
//! Errors are collected, never thrown early, except when a file can't be read or isn't
//! TOML at all (then its structure is unknown and further messages would be noise).
//! Warnings are collected beside them, and come with the [`Config`] when there are no
//! errors.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::country;
use super::error::{ConfigError, ConfigErrors, ConfigWarning, SourceFile};
use super::outbound::{self, DEFAULT_OUTBOUND_FAILOVER_CODES};
use super::reader::TableReader;
use super::tls::{self, TlsProblem};
use super::values::{
    Direction, E164, InboundAuth, Listen, NumberFormat, Secret, StatusLog, Transport,
    UnknownSource, format_duration, parse_network,
};
use super::{Backend, BackendUri, Config, Daemon, Metrics, Origin, TlsFiles, TlsIdentity, Trunk};
use crate::sip::transaction::TimerValues;
use crate::sip::{Host, Scheme, SipUri};

/// What a load needs from the environment, passed in so tests control it.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`): relative `password_file`
    /// paths are looked up there when it is set.
    pub credentials_dir: Option<PathBuf>,
}

impl LoadOptions {
    pub fn from_env() -> Self {
        LoadOptions {
            credentials_dir: std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from),
        }
    }
}

const DEFAULT_LISTEN: [&str; 2] = ["udp:0.0.0.0:5060", "tcp:0.0.0.0:5060"];
const DEFAULT_STATUS_INTERVAL: Duration = Duration::from_secs(60);
/// Only trunks in trouble or changed: 100,000 healthy trunks then log a few lines per
/// report, well under journald's default of 10,000 messages per 30 s per service.
const DEFAULT_STATUS_LOG: StatusLog = StatusLog::Changes;
const DEFAULT_OPTIONS_INTERVAL: Duration = Duration::from_secs(30);
/// Asterisk's `qualify_timeout` default: a dead carrier shows within seconds, not at
/// Timer F (32 s) per ping.
const DEFAULT_OPTIONS_TIMEOUT: Duration = Duration::from_secs(3);
/// A backend that sends not even 100 Trying in this long is not there (issue 15).
const DEFAULT_INVITE_TIMEOUT: Duration = Duration::from_secs(2);
/// A backend's or trunk's `priority` when none is written.
const DEFAULT_PRIORITY: u32 = 100;
const DEFAULT_REGISTER_EXPIRES: u32 = 3600;
const DEFAULT_REGISTER_RETRY_MIN: Duration = Duration::from_secs(30);
const DEFAULT_REGISTER_RETRY_MAX: Duration = Duration::from_secs(30 * 60);
const DEFAULT_TRUNK_HEADER: &str = "X-Trunk";
const DEFAULT_MAX_CALL_DURATION: Duration = Duration::from_secs(4 * 3600);
/// `shutdown_drain` is off unless set: a stop does not wait for calls.
const DEFAULT_SHUTDOWN_DRAIN: Duration = Duration::ZERO;
pub(super) const MAX_CPS_RANGE: Range<i64> = 0..100_001;
const DEFAULT_STATUS_FILE: &str = "/run/trunkd/status.json";
/// Consecutive failed pings that take a trunk down (from `unknown` or `up`).
const DEFAULT_OPTIONS_DOWN_AFTER: u32 = 3;
/// Consecutive answered pings that bring a `down` trunk back up.
const DEFAULT_OPTIONS_UP_AFTER: u32 = 2;
/// Final responses that count as a failed ping: 408 (a proxy of the carrier got no answer
/// from behind it) and 503 (overloaded or out of service). Everything else is an answer.
const DEFAULT_OPTIONS_FAILURE_CODES: [u16; 2] = [408, 503];
/// RFC 3261 §10.2.1.1 lets registrars refuse short expiries; below a minute is a typo.
const REGISTER_EXPIRES_RANGE: Range<i64> = 60..604_801;
const MAX_CHANNELS_RANGE: Range<i64> = 0..1_000_001;
const TRUNK_ID_MAX_LEN: usize = 64;

/// Loads and validates the main config file and everything it includes.
pub fn load(main: &Path, options: &LoadOptions) -> Result<Config, ConfigErrors> {
    let main_source = read_source(main).map_err(|error| ConfigErrors(vec![error]))?;
    load_source(main_source, options)
}

/// Like [`load`], with the main file's text given instead of read (fuzzing, benches).
/// Includes are still read from the file system, relative to `main`.
pub fn load_str(main: &Path, text: &str, options: &LoadOptions) -> Result<Config, ConfigErrors> {
    load_source(
        SourceFile::new(main.to_path_buf(), text.to_owned()),
        options,
    )
}

fn load_source(main_source: SourceFile, options: &LoadOptions) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let main = &*main_source.path;
    let (document, syntax_errors) = DeTable::parse_recoverable(&main_source.text);
    if !syntax_errors.is_empty() {
        return Err(ConfigErrors(syntax(&main_source, syntax_errors)));
    }
    let base_dir = main.parent().unwrap_or(Path::new("")).to_path_buf();

    let mut root = TableReader::new(
        &main_source,
        "the top level".into(),
        None,
        document.get_ref(),
        &mut errors,
    );
    let daemon_table = root.table("daemon");
    let tls_table = root.table("tls");
    let backend_table = root.table("backend");
    let metrics_table = root.table("metrics");
    let cluster_table = root.table("cluster");
    let trunks_table = root.table("trunks");
    root.finish();

    let (mut daemon, include_sites) = read_daemon(&main_source, daemon_table, &mut errors);
    // Relative to the main file's directory, like includes.
    daemon.config.status_file = daemon.config.status_file.map(|path| base_dir.join(path));
    let tls = tls_table
        .clone()
        .and_then(|(table, span)| read_tls(&main_source, table, &span, &base_dir, &mut errors));
    let backend = backend_table
        .clone()
        .and_then(|(table, span)| read_backend(&main_source, table, &span, &mut errors));
    let metrics = metrics_table
        .and_then(|(table, span)| read_metrics(&main_source, table, &span, &mut errors));
    let cluster = cluster_table.and_then(|(table, span)| {
        super::cluster::read_cluster(&main_source, table, &span, options, &mut errors)
    });

    let mut trunks = TrunkSet::default();
    if let Some((table, _)) = trunks_table {
        trunks.read_file(&main_source, table, options, &mut errors);
    }

    let mut files = vec![main.to_path_buf()];
    let mut include_patterns = Vec::new();
    for site in &include_sites {
        let pattern = base_dir.join(site.get_ref());
        include_patterns.push(pattern.clone());
        for path in expand_include(&main_source, site, &pattern, &mut errors) {
            if files.contains(&path) {
                continue;
            }
            files.push(path.clone());
            match read_source(&path) {
                Ok(source) => read_included(&source, &mut trunks, options, &mut errors),
                Err(error) => errors.push(error),
            }
        }
    }

    cross_checks(
        &main_source,
        &daemon,
        // Presence, not validity: a broken [tls] has its own errors already.
        tls_table.as_ref().is_some_and(|(table, _)| {
            table.get("certificate").is_some() || table.get("private_key").is_some()
        }),
        backend_table.is_some(),
        &trunks,
        &mut errors,
    );
    // Report in reading order: files as loaded, then line and column.
    let file_rank = |error: &ConfigError| files.iter().position(|f| **f == *error.file);
    if !errors.is_empty() {
        errors.sort_by_key(|error| (file_rank(error), error.position));
        return Err(ConfigErrors(errors));
    }
    let mut warnings: Vec<ConfigError> = trunks
        .trunks
        .values_mut()
        .flat_map(|loaded| std::mem::take(&mut loaded.warnings))
        .collect();
    warnings.sort_by_key(|warning| (file_rank(warning), warning.position));
    let trunks = trunks
        .trunks
        .into_iter()
        .map(|(id, loaded)| {
            // Only a trunk with errors of its own was not read whole, and there are none.
            let trunk = loaded
                .trunk
                .expect("no errors, so every trunk was read whole");
            (id, Arc::new(trunk))
        })
        .collect();
    Ok(Config {
        main_file: main.to_path_buf(),
        files,
        include_patterns,
        daemon: daemon.config,
        tls,
        backend,
        metrics,
        cluster,
        trunks,
        warnings: warnings.into_iter().map(ConfigWarning).collect(),
    })
}

fn read_source(path: &Path) -> Result<SourceFile, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(SourceFile::new(path.to_path_buf(), text)),
        Err(error) => Err(SourceFile::new(path.to_path_buf(), String::new())
            .error(format!("cannot read config file: {error}"))),
    }
}

fn syntax(source: &SourceFile, errors: Vec<toml::de::Error>) -> Vec<ConfigError> {
    errors
        .into_iter()
        .map(|error| {
            let offset = error.span().map_or(0, |span| span.start);
            let message = format!("TOML syntax: {}", error.message().trim_end());
            source.error_at(offset, None, message)
        })
        .collect()
}

/// An included file holds trunks only: `[trunks.<id>]` tables.
fn read_included(
    source: &SourceFile,
    trunks: &mut TrunkSet,
    options: &LoadOptions,
    errors: &mut Vec<ConfigError>,
) {
    let (document, syntax_errors) = DeTable::parse_recoverable(&source.text);
    if !syntax_errors.is_empty() {
        errors.extend(syntax(source, syntax_errors));
        return;
    }
    for (key, _) in document.get_ref().iter() {
        if key.get_ref() != "trunks" {
            let message = format!(
                "\"{}\" is not allowed in an included file; only [trunks.<id>] tables belong here",
                key.get_ref()
            );
            errors.push(source.error_at(key.span().start, None, message));
        }
    }
    let mut root = TableReader::new(
        source,
        "the top level".into(),
        None,
        document.get_ref(),
        errors,
    );
    let trunks_table = root.table("trunks");
    if let Some((table, _)) = trunks_table {
        trunks.read_file(source, table, options, errors);
    }
}

fn expand_include(
    source: &SourceFile,
    site: &Spanned<&str>,
    pattern: &Path,
    errors: &mut Vec<ConfigError>,
) -> Vec<PathBuf> {
    let pattern_text = pattern.to_string_lossy();
    let paths = match glob::glob(&pattern_text) {
        Ok(paths) => paths,
        Err(error) => {
            let message = format!(
                "include: \"{}\" is not a valid glob: {error}",
                site.get_ref()
            );
            errors.push(source.error_at(site.span().start, None, message));
            return Vec::new();
        }
    };
    let mut matched = Vec::new();
    for entry in paths {
        match entry {
            Ok(path) if path.is_file() => matched.push(path),
            Ok(_) => {}
            Err(error) => {
                let message = format!("include: cannot read {}", error.path().display());
                errors.push(source.error_at(site.span().start, None, message));
            }
        }
    }
    matched.sort();
    // A literal path that matches nothing is a typo; a wildcard that matches nothing is an
    // empty trunks.d, which is normal.
    let literal = !site.get_ref().contains(['*', '?', '[']);
    if literal && matched.is_empty() {
        let message = format!("include: {} does not exist", pattern.display());
        errors.push(source.error_at(site.span().start, None, message));
    }
    matched
}

/// A DNS server: an IP address, with a port after it if not 53 (`"127.0.0.1:5353"`,
/// `"[::1]:5353"`).
fn parse_dns_server(text: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        return Ok(std::net::SocketAddr::new(ip, 53));
    }
    text.parse()
        .map_err(|_| format!("\"{text}\" is not an IP address or address:port"))
}

/// A duration key with a default and inclusive bounds; out of bounds is an error at the
/// value (the default is then used so later checks still run).
fn bounded_duration(
    reader: &mut TableReader,
    key: &'static str,
    default: Duration,
    min: Duration,
    max: Duration,
) -> Spanned<Duration> {
    let Some(value) = reader.duration(key) else {
        return Spanned::new(0..0, default);
    };
    if *value.get_ref() < min || *value.get_ref() > max {
        let message = format!(
            "{key}: must be between {} and {}",
            format_duration(min),
            format_duration(max)
        );
        reader.error(&value.span(), message);
        return Spanned::new(value.span(), default);
    }
    value
}

struct DaemonRead {
    config: Daemon,
    /// `listen` entries with their spans, for the cross checks.
    listen_sites: Vec<Spanned<Listen>>,
}

fn read_daemon<'a>(
    source: &'a SourceFile,
    table: Option<(&'a DeTable<'_>, Range<usize>)>,
    errors: &mut Vec<ConfigError>,
) -> (DaemonRead, Vec<Spanned<&'a str>>) {
    let default_listen = || DEFAULT_LISTEN.map(|text| Listen::parse(text).expect("valid default"));
    let Some((table, table_span)) = table else {
        let listen = default_listen().to_vec();
        let config = Daemon {
            listen,
            public_address: None,
            status_interval: DEFAULT_STATUS_INTERVAL,
            status_log: DEFAULT_STATUS_LOG,
            include: Vec::new(),
            timers: TimerValues::default(),
            register_retry_min: DEFAULT_REGISTER_RETRY_MIN,
            register_retry_max: DEFAULT_REGISTER_RETRY_MAX,
            dns_servers: Vec::new(),
            on_unknown_source: UnknownSource::Reject,
            trunk_header: DEFAULT_TRUNK_HEADER.to_owned(),
            max_call_duration: DEFAULT_MAX_CALL_DURATION,
            shutdown_drain: DEFAULT_SHUTDOWN_DRAIN,
            status_file: Some(PathBuf::from(DEFAULT_STATUS_FILE)),
            outbound_failover_codes: std::borrow::Cow::Borrowed(
                &DEFAULT_OUTBOUND_FAILOVER_CODES[..],
            ),
        };
        return (
            DaemonRead {
                config,
                listen_sites: Vec::new(),
            },
            Vec::new(),
        );
    };
    let mut reader = TableReader::new(source, "[daemon]".into(), None, table, errors);
    let listen_sites = reader.parsed_list("listen", Listen::parse);
    let public_address = reader.parsed("public_address", Host::parse);
    let status_interval = reader.duration("status_interval");
    let status_log = reader
        .parsed("status_log", StatusLog::parse)
        .map_or(DEFAULT_STATUS_LOG, Spanned::into_inner);
    let include = reader.strings("include").unwrap_or_default();
    let dns_servers = reader.parsed_list("dns_servers", parse_dns_server);
    let defaults = TimerValues::default();
    let ms = Duration::from_millis;
    let s = Duration::from_secs;
    let t1 = bounded_duration(&mut reader, "timer_t1", defaults.t1, ms(10), s(10));
    let t2 = bounded_duration(&mut reader, "timer_t2", defaults.t2, ms(10), s(60));
    let t4 = bounded_duration(&mut reader, "timer_t4", defaults.t4, ms(10), s(60));
    let retry_min = bounded_duration(
        &mut reader,
        "register_retry_min",
        DEFAULT_REGISTER_RETRY_MIN,
        s(1),
        s(3600),
    );
    let retry_max = bounded_duration(
        &mut reader,
        "register_retry_max",
        DEFAULT_REGISTER_RETRY_MAX,
        s(1),
        s(86_400),
    );
    let on_unknown_source = reader
        .parsed("on_unknown_source", UnknownSource::parse)
        .map_or(UnknownSource::Reject, Spanned::into_inner);
    let trunk_header = reader
        .parsed("trunk_header", parse_header_name)
        .map_or(DEFAULT_TRUNK_HEADER.to_owned(), Spanned::into_inner);
    let max_call_duration = bounded_duration(
        &mut reader,
        "max_call_duration",
        DEFAULT_MAX_CALL_DURATION,
        s(60),
        s(7 * 86_400),
    );
    let shutdown_drain = bounded_duration(
        &mut reader,
        "shutdown_drain",
        DEFAULT_SHUTDOWN_DRAIN,
        Duration::ZERO,
        s(3600),
    );
    let status_file = match reader.string("status_file") {
        None => Some(PathBuf::from(DEFAULT_STATUS_FILE)),
        Some(text) if text.get_ref().is_empty() => None,
        Some(text) => Some(PathBuf::from(text.get_ref())),
    };
    let outbound_failover_codes = outbound::read_failover_codes(&mut reader);
    if t2.get_ref() < t1.get_ref() {
        reader.error(
            &t2.span(),
            "timer_t2: must not be shorter than timer_t1".into(),
        );
    }
    if retry_max.get_ref() < retry_min.get_ref() {
        let message = "register_retry_max: must not be shorter than register_retry_min";
        reader.error(&retry_max.span(), message.into());
    }
    if let Some(interval) = &status_interval
        && *interval.get_ref() < Duration::from_secs(1)
    {
        reader.error(
            &interval.span(),
            "status_interval: must be at least 1s".into(),
        );
    }
    let listen_sites = listen_sites.unwrap_or_else(|| {
        default_listen()
            .into_iter()
            .map(|listen| Spanned::new(0..0, listen))
            .collect()
    });
    if listen_sites.is_empty() {
        reader.error(&table_span, "listen: name at least one address".into());
    }
    for (index, site) in listen_sites.iter().enumerate() {
        if listen_sites[..index]
            .iter()
            .any(|earlier| earlier.get_ref() == site.get_ref())
        {
            reader.error(
                &site.span(),
                format!("listen: \"{}\" is listed twice", site.get_ref()),
            );
        }
    }
    reader.finish();
    let config = Daemon {
        listen: listen_sites.iter().map(|site| *site.get_ref()).collect(),
        public_address: public_address.map(Spanned::into_inner),
        status_interval: status_interval.map_or(DEFAULT_STATUS_INTERVAL, Spanned::into_inner),
        status_log,
        include: include
            .iter()
            .map(|site| site.get_ref().to_string())
            .collect(),
        timers: TimerValues {
            t1: t1.into_inner(),
            t2: t2.into_inner(),
            t4: t4.into_inner(),
        },
        register_retry_min: retry_min.into_inner(),
        register_retry_max: retry_max.into_inner(),
        dns_servers: dns_servers
            .unwrap_or_default()
            .into_iter()
            .map(Spanned::into_inner)
            .collect(),
        on_unknown_source,
        trunk_header,
        max_call_duration: max_call_duration.into_inner(),
        shutdown_drain: shutdown_drain.into_inner(),
        status_file,
        outbound_failover_codes,
    };
    (
        DaemonRead {
            config,
            listen_sites,
        },
        include,
    )
}

fn read_tls(
    source: &SourceFile,
    table: &DeTable<'_>,
    span: &Range<usize>,
    base_dir: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<TlsFiles> {
    let before = errors.len();
    let mut reader = TableReader::new(source, "[tls]".into(), None, table, errors);
    let mut path = |key: &'static str| {
        let site = reader.string(key)?;
        Some((base_dir.join(site.get_ref()), site.span()))
    };
    let certificate = path("certificate");
    let private_key = path("private_key");
    let ca_file = path("ca_file");
    if let Some((ca_path, ca_span)) = &ca_file
        && let Err(reason) = tls::certificates(ca_path)
    {
        reader.error(ca_span, format!("ca_file: {}: {reason}", ca_path.display()));
    }
    match (&certificate, &private_key) {
        (Some((cert_path, cert_span)), Some((key_path, key_span))) => {
            for problem in tls::server_config(cert_path, key_path)
                .err()
                .unwrap_or_default()
            {
                match problem {
                    TlsProblem::Certificate(reason) => reader.error(
                        cert_span,
                        format!("certificate: {}: {reason}", cert_path.display()),
                    ),
                    TlsProblem::PrivateKey(reason) => reader.error(
                        key_span,
                        format!("private_key: {}: {reason}", key_path.display()),
                    ),
                }
            }
        }
        (Some((cert_path, cert_span)), None) => {
            if let Err(reason) = tls::certificates(cert_path) {
                reader.error(
                    cert_span,
                    format!("certificate: {}: {reason}", cert_path.display()),
                );
            }
            if table.get("private_key").is_none() {
                reader.error(span, "[tls] certificate needs private_key too".into());
            }
        }
        (None, Some(_)) if table.get("certificate").is_none() => {
            reader.error(span, "[tls] private_key needs certificate too".into());
        }
        _ => {}
    }
    reader.finish();
    if errors.len() != before {
        return None;
    }
    let identity = match (certificate, private_key) {
        (Some((certificate, _)), Some((private_key, _))) => Some(TlsIdentity {
            certificate,
            private_key,
        }),
        _ => None,
    };
    Some(TlsFiles {
        identity,
        ca_file: ca_file.map(|(path, _)| path),
    })
}

/// `[metrics]`: present means served, so `listen` is required.
fn read_metrics(
    source: &SourceFile,
    table: &DeTable<'_>,
    span: &Range<usize>,
    errors: &mut Vec<ConfigError>,
) -> Option<Metrics> {
    let mut reader = TableReader::new(source, "[metrics]".into(), None, table, errors);
    let listen = reader.parsed("listen", parse_metrics_listen);
    if table.get("listen").is_none() {
        reader.error(span, "[metrics] needs listen (\"IP:PORT\")".into());
    }
    reader.finish();
    listen.map(|listen| Metrics {
        listen: listen.into_inner(),
    })
}

fn parse_metrics_listen(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("\"{text}\" is not IP:PORT, e.g. \"127.0.0.1:9464\""))
}

fn read_backend(
    source: &SourceFile,
    table: &DeTable<'_>,
    span: &Range<usize>,
    errors: &mut Vec<ConfigError>,
) -> Option<Backend> {
    let mut reader = TableReader::new(source, "[backend]".into(), None, table, errors);
    let uri = reader.parsed("uri", backend_uri);
    let listed = reader.array("uris");
    let mut uris: Vec<BackendUri> = uri
        .map(|uri| BackendUri {
            uri: uri.into_inner(),
            priority: DEFAULT_PRIORITY,
            weight: 1,
        })
        .into_iter()
        .collect();
    let mut pool_errors = Vec::new();
    if let Some(items) = listed {
        if table.get("uri").is_some() {
            reader.error(span, "[backend]: set uri or uris, not both".into());
        }
        if items.is_empty() {
            reader.error(span, "[backend] uris: list at least one backend".into());
        }
        for (index, item) in items.iter().enumerate() {
            let at = (source, None);
            if let Some(entry) = read_backend_uri(at, ("uris", index), item, &mut pool_errors) {
                uris.push(entry);
            }
        }
    }
    if table.get("uri").is_none() && table.get("uris").is_none() {
        reader.error(span, "[backend] needs uri (or uris)".into());
    }
    let invite_timeout = reader.duration("invite_timeout");
    if let Some(timeout) = &invite_timeout
        && !(Duration::from_millis(100)..=Duration::from_secs(32)).contains(timeout.get_ref())
    {
        reader.error(
            &timeout.span(),
            "invite_timeout: must be between 100ms and 32s".into(),
        );
    }
    let allowed_ips = reader
        .parsed_list("allowed_ips", parse_network)
        .unwrap_or_default();
    let Keepalive {
        interval: options_interval,
        timeout: options_timeout,
        down_after: options_down_after,
        up_after: options_up_after,
    } = read_keepalive(&mut reader);
    reader.finish();
    let failed = !pool_errors.is_empty();
    errors.extend(pool_errors);
    (!uris.is_empty() && !failed).then(|| Backend {
        uris,
        invite_timeout: invite_timeout.map_or(DEFAULT_INVITE_TIMEOUT, Spanned::into_inner),
        options_interval: options_interval.unwrap_or(Duration::ZERO),
        options_timeout,
        options_down_after,
        options_up_after,
        allowed_ips: allowed_ips.into_iter().map(Spanned::into_inner).collect(),
    })
}

/// A trunk's `route_to`: one backend URI, or a pool of them as `[backend] uris` lists
/// them (strings or inline tables); empty when absent.
fn read_route_to(r: &mut TableReader<'_, '_, '_>, source: &SourceFile) -> Vec<BackendUri> {
    let Some(value) = r.any("route_to") else {
        return Vec::new();
    };
    let trunk = r.trunk();
    let mut errors = Vec::new();
    let mut pool = Vec::new();
    match value.get_ref() {
        DeValue::Array(items) => {
            if items.is_empty() {
                r.error(&value.span(), "route_to: list at least one backend".into());
            }
            for (index, item) in items.iter().enumerate() {
                let at = (source, trunk);
                pool.extend(read_backend_uri(at, ("route_to", index), item, &mut errors));
            }
        }
        DeValue::String(text) => match backend_uri(text) {
            Ok(uri) => pool.push(BackendUri {
                uri,
                priority: DEFAULT_PRIORITY,
                weight: 1,
            }),
            Err(reason) => r.error(&value.span(), format!("route_to: {reason}")),
        },
        other => {
            let found = other.type_str();
            let message =
                format!("route_to: expected a SIP URI or an array of them, found {found}");
            r.error(&value.span(), message);
        }
    }
    for error in errors {
        r.push_error(error);
    }
    pool
}

/// The OPTIONS keepalive keys a trunk and `[backend]` share, checked alike; the interval
/// `None` when not written (the two default differently).
struct Keepalive {
    interval: Option<Duration>,
    timeout: Duration,
    down_after: u32,
    up_after: u32,
}

fn read_keepalive(r: &mut TableReader<'_, '_, '_>) -> Keepalive {
    let interval = r.duration("options_interval");
    if let Some(interval) = &interval
        && !interval.get_ref().is_zero()
        && *interval.get_ref() < Duration::from_secs(1)
    {
        r.error(
            &interval.span(),
            "options_interval: use 0 (off) or at least 1s".into(),
        );
    }
    let timeout = r.duration("options_timeout");
    if let Some(timeout) = &timeout
        && !(Duration::from_millis(100)..=Duration::from_secs(300)).contains(timeout.get_ref())
    {
        r.error(
            &timeout.span(),
            "options_timeout: must be between 100ms and 5m".into(),
        );
    }
    Keepalive {
        interval: interval.map(Spanned::into_inner),
        timeout: timeout.map_or(DEFAULT_OPTIONS_TIMEOUT, Spanned::into_inner),
        down_after: r
            .integer("options_down_after", 1..101)
            .map_or(DEFAULT_OPTIONS_DOWN_AFTER, |n| n.into_inner() as u32),
        up_after: r
            .integer("options_up_after", 1..101)
            .map_or(DEFAULT_OPTIONS_UP_AFTER, |n| n.into_inner() as u32),
    }
}

/// A backend URI: a SIP URI whose `transport` parameter, if any, is udp, tcp or tls.
fn backend_uri(text: &str) -> Result<SipUri, String> {
    let uri = SipUri::parse(text)?;
    match uri.param("transport") {
        Some(value)
            if !["udp", "tcp", "tls"]
                .iter()
                .any(|t| value.eq_ignore_ascii_case(t)) =>
        {
            Err(format!("\"{text}\": transport must be udp, tcp or tls"))
        }
        _ => Ok(uri),
    }
}

/// One entry of `[backend] uris`: a URI string, or an inline table
/// `{ uri = "...", priority = 10, weight = 2 }`.
fn read_backend_uri(
    (source, trunk): (&SourceFile, Option<&str>),
    (key, index): (&str, usize),
    item: &Spanned<DeValue<'_>>,
    errors: &mut Vec<ConfigError>,
) -> Option<BackendUri> {
    match item.get_ref() {
        DeValue::String(text) => match backend_uri(text) {
            Ok(uri) => Some(BackendUri {
                uri,
                priority: DEFAULT_PRIORITY,
                weight: 1,
            }),
            Err(reason) => {
                errors.push(source.error_at(
                    item.span().start,
                    trunk,
                    format!("{key}[{index}]: {reason}"),
                ));
                None
            }
        },
        DeValue::Table(table) => {
            let name = format!("{key}[{index}]");
            let mut reader = TableReader::new(source, name, trunk, table, errors);
            let uri = reader.parsed("uri", backend_uri);
            if table.get("uri").is_none() {
                reader.error(&item.span(), format!("{key}[{index}]: needs uri"));
            }
            let priority = reader
                .integer("priority", 0..(i64::from(u32::MAX) + 1))
                .map_or(DEFAULT_PRIORITY, |p| p.into_inner() as u32);
            let weight = reader
                .integer("weight", 1..10_001)
                .map_or(1, |w| w.into_inner() as u32);
            reader.finish();
            uri.map(|uri| BackendUri {
                uri: uri.into_inner(),
                priority,
                weight,
            })
        }
        other => {
            let found = other.type_str();
            let message = format!(
                "{key}[{index}]: expected a SIP URI string or an inline table, found {found}"
            );
            errors.push(source.error_at(item.span().start, trunk, message));
            None
        }
    }
}

/// A trunk as read, and what the checks across trunks need of it. Those checks run on
/// every trunk read, with whatever of it parsed, so that one run reports every error: a
/// number on two trunks shows up together with a bad address on one of them, not only
/// once that is fixed.
struct LoadedTrunk {
    /// `None` when the trunk's table had errors of its own.
    trunk: Option<Trunk>,
    id: String,
    /// "file:line:column" of the `[trunks.<id>]` key.
    defined_at: String,
    /// The numbers that parsed, each once (a repeat within the trunk has its own error).
    numbers: Vec<(E164, ConfigError)>,
    /// It takes inbound calls and has no `route_to`, so `[backend] uri` is its
    /// destination. False when `direction` or `route_to` did not parse: no follow-on error.
    needs_backend: bool,
    header: ConfigError,
    warnings: Vec<ConfigError>,
}

#[derive(Default)]
struct TrunkSet {
    trunks: BTreeMap<String, LoadedTrunk>,
    /// Ids seen, with where, including trunks that failed validation, so a duplicate id is
    /// reported even when the first definition has errors of its own.
    defined: HashMap<String, String>,
}

impl TrunkSet {
    fn read_file(
        &mut self,
        source: &SourceFile,
        table: &DeTable<'_>,
        options: &LoadOptions,
        errors: &mut Vec<ConfigError>,
    ) {
        for (key, value) in table.iter() {
            let id: &str = key.get_ref();
            let header = source.error_at(key.span().start, Some(id), String::new());
            if let Some(first) = self.defined.get(id) {
                errors.push(ConfigError {
                    message: format!("trunk id \"{id}\" is already defined at {first}"),
                    ..header
                });
                continue;
            }
            self.defined
                .insert(id.to_owned(), source.describe(key.span().start));
            if let Err(reason) = check_trunk_id(id) {
                errors.push(ConfigError {
                    message: reason,
                    ..header
                });
                continue;
            }
            let Some(trunk_table) = value.get_ref().as_table() else {
                errors.push(ConfigError {
                    message: format!(
                        "expected a table ([trunks.{id}]), found {}",
                        value.get_ref().type_str()
                    ),
                    ..header
                });
                continue;
            };
            let loaded = read_trunk(source, id, key.span(), trunk_table, options, errors);
            self.trunks.insert(id.to_owned(), loaded);
        }
    }
}

/// Trunk ids appear bare in `key=value` status lines, so they are kept to a safe alphabet.
fn check_trunk_id(id: &str) -> Result<(), String> {
    let valid = !id.is_empty()
        && id.len() <= TRUNK_ID_MAX_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "trunk id \"{id}\" must be 1 to {TRUNK_ID_MAX_LEN} letters, digits, '-', '_' or '.'"
        ))
    }
}

/// The text of a non-empty string key, or an error if present but blank.
fn non_empty(reader: &mut TableReader, key: &'static str) -> Option<String> {
    let site = reader.string(key)?;
    if site.get_ref().trim().is_empty() {
        reader.error(&site.span(), format!("{key}: must not be empty"));
        return None;
    }
    Some(site.get_ref().to_string())
}

fn read_trunk(
    source: &SourceFile,
    id: &str,
    header: Range<usize>,
    table: &DeTable<'_>,
    options: &LoadOptions,
    errors: &mut Vec<ConfigError>,
) -> LoadedTrunk {
    let before = errors.len();
    let mut r = TableReader::new(source, format!("[trunks.{id}]"), Some(id), table, errors);

    let name = non_empty(&mut r, "name");
    let provider = non_empty(&mut r, "provider");
    let enabled = r.boolean("enabled").unwrap_or(true);
    let domain = r.parsed("domain", Host::parse);
    if domain.is_none() && table.get("domain").is_none() {
        r.error(
            &header,
            "domain: required (the carrier's SIP domain or address)".into(),
        );
    }
    let transport = r
        .parsed("transport", Transport::parse)
        .map(Spanned::into_inner);
    let transport = transport.unwrap_or(Transport::Tls);
    let port = r
        .integer("port", 1..65_536)
        .map(|port| port.into_inner() as u16);
    let outbound_proxy = r.parsed("outbound_proxy", SipUri::parse);
    let direction = r
        .parsed("direction", Direction::parse)
        .map(Spanned::into_inner);
    let direction_read = read_or_default(direction, table, "direction", Direction::Both);
    let direction = direction.unwrap_or(Direction::Both);
    let username = non_empty(&mut r, "username");
    let password = read_password(&mut r, options);
    let auth_realm = non_empty(&mut r, "auth_realm");
    let register = r.boolean("register");
    let register_read = read_or_default(register, table, "register", false);
    let register = register.unwrap_or(false);
    let register_expires = r
        .integer("register_expires", REGISTER_EXPIRES_RANGE)
        .map_or(DEFAULT_REGISTER_EXPIRES, |expires| {
            expires.into_inner() as u32
        });
    let Keepalive {
        interval: options_interval,
        timeout: options_timeout,
        down_after: options_down_after,
        up_after: options_up_after,
    } = read_keepalive(&mut r);
    let options_from = r
        .parsed("options_from", SipUri::parse)
        .map(Spanned::into_inner);
    let options_failure_codes = r.integers("options_failure_codes", 200..700).map_or(
        std::borrow::Cow::Borrowed(&DEFAULT_OPTIONS_FAILURE_CODES[..]),
        |codes| codes.into_iter().map(|c| c.into_inner() as u16).collect(),
    );
    let inbound_auth = r
        .parsed("inbound_auth", InboundAuth::parse)
        .map(Spanned::into_inner);
    let inbound_auth_read = read_or_default(inbound_auth, table, "inbound_auth", InboundAuth::Ip);
    let inbound_auth = inbound_auth.unwrap_or(InboundAuth::Ip);
    let allowed_inbound_ips = r.parsed_list("allowed_inbound_ips", parse_network);
    let numbers = r.parsed_list("numbers", E164::parse).unwrap_or_default();
    let country = r.parsed("country", parse_country).map(Spanned::into_inner);
    let number_format = r
        .parsed("number_format", NumberFormat::parse)
        .map(Spanned::into_inner);
    let number_format = number_format.unwrap_or(NumberFormat::PlusE164);
    let max_channels = r
        .integer("max_channels", MAX_CHANNELS_RANGE)
        .map_or(0, |max| max.into_inner() as u32);
    let max_cps = r
        .integer("max_cps", MAX_CPS_RANGE)
        .map_or(0, |max| max.into_inner() as u32);
    let allow_next_hop = r.boolean("allow_next_hop");
    let allow_next_hop_read = read_or_default(allow_next_hop, table, "allow_next_hop", true);
    let allow_next_hop = allow_next_hop.unwrap_or(true);
    let route_to = read_route_to(&mut r, source);
    let termination_uri = r.parsed("termination_uri", SipUri::parse);
    let outbound = outbound::read_trunk_outbound(&mut r, table, &numbers);

    // Rules between keys of one trunk.
    let has_credentials = username.is_some() && password.is_some();
    if register && !has_credentials {
        r.error(
            &header,
            "register = true needs username and password (or password_file)".into(),
        );
    }
    let allowlist_had_entries = table
        .get("allowed_inbound_ips")
        .and_then(|value| value.get_ref().as_array())
        .is_some_and(|entries| !entries.is_empty());
    // Written as [] or not at all. A list whose entries were all invalid, or that is not a
    // list, has its own errors already.
    let allowlist_empty = match &allowed_inbound_ips {
        Some(entries) => entries.is_empty() && !allowlist_had_entries,
        None => table.get("allowed_inbound_ips").is_none(),
    };
    let allowed_inbound_ips: Vec<_> = allowed_inbound_ips
        .unwrap_or_default()
        .into_iter()
        .map(Spanned::into_inner)
        .collect();
    let mut warnings = Vec::new();
    if direction_read.is_some_and(Direction::accepts_inbound)
        && inbound_auth_read == Some(InboundAuth::Ip)
        && allowlist_empty
    {
        // The first hop, as `Trunk::next_hop`: the proxy's host, else the domain.
        let next_hop = match (&outbound_proxy, table.get("outbound_proxy")) {
            (Some(proxy), _) => Some(&proxy.get_ref().host),
            (None, None) => domain.as_ref().map(Spanned::get_ref),
            (None, Some(_)) => None,
        };
        let keepalives = options_interval
            .as_ref()
            .map(|interval| !interval.is_zero());
        let keepalives = read_or_default(keepalives, table, "options_interval", true);
        match next_hop_only(allow_next_hop_read, next_hop, register_read, keepalives) {
            Some(Ok(warning)) => warnings.push(source.error_at(header.start, Some(id), warning)),
            Some(Err(error)) => r.error(&header, error),
            None => {}
        }
    }
    if direction.accepts_inbound() && inbound_auth == InboundAuth::Credential && !has_credentials {
        r.error(
            &header,
            "inbound_auth = \"credential\" needs username and password (or password_file)".into(),
        );
    }
    if let Some(proxy) = &outbound_proxy
        && proxy.get_ref().scheme == Scheme::Sips
        && transport != Transport::Tls
    {
        let message =
            format!("outbound_proxy: a sips: URI needs transport = \"tls\", not \"{transport}\"");
        r.error(&proxy.span(), message);
    }
    if number_format == NumberFormat::National && country.is_none() {
        r.error(&header, "number_format = \"national\" needs country".into());
    }
    let mut number_sites = Vec::with_capacity(numbers.len());
    for (index, number) in numbers.iter().enumerate() {
        if numbers[..index]
            .iter()
            .any(|earlier| earlier.get_ref() == number.get_ref())
        {
            r.error(
                &number.span(),
                format!("numbers: {} is listed twice", number.get_ref()),
            );
            continue;
        }
        let site = source.error_at(number.span().start, Some(id), String::new());
        number_sites.push((number.get_ref().clone(), site));
        if let Some(country) = country
            && !country.owns_number(number.get_ref().digits())
        {
            let code = country
                .calling_code
                .map_or("no calling code".to_owned(), |code| format!("+{code}"));
            r.error(
                &number.span(),
                format!(
                    "numbers: {} is not a number of country {} ({code})",
                    number.get_ref(),
                    country.alpha2
                ),
            );
        }
    }
    r.finish();
    let mut loaded = LoadedTrunk {
        trunk: None,
        id: id.to_owned(),
        defined_at: source.describe(header.start),
        numbers: number_sites,
        // A route_to that did not parse has its own error.
        needs_backend: direction_read.is_some_and(Direction::accepts_inbound)
            && table.get("route_to").is_none(),
        header: source.error_at(header.start, Some(id), String::new()),
        warnings,
    };
    if errors.len() != before {
        return loaded;
    }

    let domain = domain.expect("checked").into_inner();
    let (line, column) = source.position(header.start);
    loaded.trunk = Some(Trunk {
        id: id.to_owned(),
        name,
        provider,
        enabled,
        domain,
        port: port.unwrap_or(transport.default_port()),
        port_explicit: port.is_some(),
        transport,
        outbound_proxy: outbound_proxy.map(|uri| Box::new(uri.into_inner())),
        direction,
        username,
        password,
        auth_realm,
        register,
        register_expires,
        options_interval: options_interval.unwrap_or(DEFAULT_OPTIONS_INTERVAL),
        options_from: options_from.map(Box::new),
        options_down_after,
        options_up_after,
        options_failure_codes,
        options_timeout,
        inbound_auth,
        allowed_inbound_ips,
        numbers: numbers.into_iter().map(Spanned::into_inner).collect(),
        country,
        number_format,
        max_channels,
        max_cps,
        allow_next_hop,
        route_to,
        termination_uri: termination_uri.map(|uri| Box::new(uri.into_inner())),
        outbound_prefixes: outbound.prefixes,
        priority: outbound.priority,
        weight: outbound.weight,
        max_cps_outbound: outbound.max_cps,
        tech_prefix: outbound.tech_prefix,
        caller_id: outbound.caller_id,
        from_user: outbound.from_user,
        from_domain: outbound.from_domain,
        send_pai: outbound.send_pai,
        origin: Origin {
            file: source.path.clone(),
            line,
            column,
        },
    });
    loaded
}

/// A key's value; its default when the key is not written; `None` when it is written but
/// did not read (its error is recorded), so that checks depending on it are skipped rather
/// than run on a guess.
fn read_or_default<T>(value: Option<T>, table: &DeTable<'_>, key: &str, default: T) -> Option<T> {
    match value {
        Some(value) => Some(value),
        None if table.get(key).is_none() => Some(default),
        None => None,
    }
}

/// An `inbound_auth = "ip"` trunk without `allowed_inbound_ips` takes requests from its
/// own next hop only (`allow_next_hop`), as the inbound snapshot collects a trunk's
/// sources: an IP address at once, a host name from the DNS answers its REGISTER or
/// OPTIONS keepalives use (nothing else looks it up for admission). `Ok`: the warning that
/// the next hop is all it admits; `Err`: the error that it admits nobody. `None` when an
/// input did not read (its own error is recorded).
fn next_hop_only(
    allow_next_hop: Option<bool>,
    next_hop: Option<&Host>,
    register: Option<bool>,
    keepalives: Option<bool>,
) -> Option<Result<String, String>> {
    const NEEDS: &str =
        "inbound_auth = \"ip\" needs allowed_inbound_ips (the carrier's signalling addresses)";
    const ONLY: &str = "inbound_auth = \"ip\" without allowed_inbound_ips: only";
    const HINT: &str = "(allow_next_hop); list the carrier's other signalling addresses, if any";
    if !allow_next_hop? {
        return Some(Err(format!(
            "{NEEDS}: with allow_next_hop = false no address may send inbound calls"
        )));
    }
    let next_hop = next_hop?;
    if let Some(ip) = next_hop.ip() {
        return Some(Ok(format!(
            "{ONLY} the next hop {ip} may send inbound calls {HINT}"
        )));
    }
    let looked_up_for = match (register?, keepalives?) {
        (true, true) => "REGISTER and OPTIONS keepalives",
        (true, false) => "REGISTER",
        (false, true) => "OPTIONS keepalives",
        (false, false) => {
            return Some(Err(format!(
                "{NEEDS}: the next hop {next_hop} is a host name, looked up only for REGISTER \
                 or OPTIONS keepalives, and this trunk has neither"
            )));
        }
    };
    Some(Ok(format!(
        "{ONLY} the addresses {next_hop} resolves to for its {looked_up_for} may send \
         inbound calls {HINT}"
    )))
}

/// A SIP header name (RFC 3261 §25.1 token), e.g. `X-Trunk`; the names trunkd writes
/// itself are refused so the backend cannot be confused.
fn parse_header_name(text: &str) -> Result<String, String> {
    let token = |c: char| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c);
    if text.is_empty() || !text.chars().all(token) {
        return Err(format!(
            "\"{text}\" is not a header name (letters, digits, -)"
        ));
    }
    let reserved = [
        "via",
        "v",
        "record-route",
        "route",
        "max-forwards",
        "call-id",
        "i",
        "cseq",
        "from",
        "f",
        "to",
        "t",
        "content-length",
        "l",
        "contact",
        "m",
    ];
    if reserved.iter().any(|name| name.eq_ignore_ascii_case(text)) {
        return Err(format!(
            "\"{text}\" is a SIP header trunkd must not overwrite"
        ));
    }
    Ok(text.to_owned())
}

fn parse_country(text: &str) -> Result<&'static country::Country, String> {
    country::lookup(text).ok_or_else(|| {
        let upper = text.to_ascii_uppercase();
        match country::lookup(&upper) {
            Some(_) => format!("\"{text}\" must be upper case: \"{upper}\""),
            None => format!("\"{text}\" is not an ISO 3166-1 alpha-2 country code"),
        }
    })
}

/// `password` inline, or `password_file` (a systemd credential or any readable file).
/// Messages name the key and the path, never the content.
pub(super) fn read_password(reader: &mut TableReader, options: &LoadOptions) -> Option<Secret> {
    let inline = reader.string("password");
    let file = reader.string("password_file");
    match (inline, file) {
        (Some(_), Some(file)) => {
            reader.error(
                &file.span(),
                "password_file: set either password or password_file, not both".into(),
            );
            None
        }
        (Some(inline), None) => {
            if inline.get_ref().trim().is_empty() {
                reader.error(&inline.span(), "password: must not be blank".into());
                return None;
            }
            Some(Secret::new(inline.get_ref()))
        }
        (None, Some(file)) => {
            let path = resolve_password_file(reader.source(), file.get_ref(), options);
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    // Files written by `echo` or editors end in a newline that is not part
                    // of the password.
                    let password = text.trim_end_matches(['\r', '\n']);
                    if password.is_empty() {
                        let message = format!("password_file: {} is empty", path.display());
                        reader.error(&file.span(), message);
                        return None;
                    }
                    Some(Secret::new(password))
                }
                Err(error) => {
                    let message = format!("password_file: cannot read {}: {error}", path.display());
                    reader.error(&file.span(), message);
                    None
                }
            }
        }
        (None, None) => None,
    }
}

fn resolve_password_file(source: &SourceFile, text: &str, options: &LoadOptions) -> PathBuf {
    let path = Path::new(text);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    match &options.credentials_dir {
        Some(credentials) => credentials.join(path),
        None => source.path.parent().unwrap_or(Path::new("")).join(path),
    }
}

/// Rules that span tables or files.
fn cross_checks(
    main: &SourceFile,
    daemon: &DaemonRead,
    has_tls: bool,
    has_backend: bool,
    trunks: &TrunkSet,
    errors: &mut Vec<ConfigError>,
) {
    if !has_tls {
        for site in &daemon.listen_sites {
            if site.get_ref().transport == Transport::Tls {
                let message = format!(
                    "listen: \"{}\" needs a [tls] table with certificate and private_key",
                    site.get_ref()
                );
                errors.push(main.error_at(site.span().start, None, message));
            }
        }
    }
    let mut owners: HashMap<&E164, &LoadedTrunk> = HashMap::new();
    for loaded in trunks.trunks.values() {
        if loaded.needs_backend && !has_backend {
            errors.push(ConfigError {
                message: "inbound calls need a destination: set route_to, or uri in [backend]"
                    .into(),
                ..loaded.header.clone()
            });
        }
        for (number, site) in &loaded.numbers {
            match owners.get(number) {
                Some(owner) => errors.push(ConfigError {
                    message: format!(
                        "numbers: {number} is also on trunk {} ({}); a number belongs to one trunk",
                        owner.id, owner.defined_at
                    ),
                    ..site.clone()
                }),
                None => {
                    owners.insert(number, loaded);
                }
            }
        }
    }
}
