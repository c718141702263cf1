//! `[cluster]`: several trunkd hosts sharing channel limits and registrations through
//! Redis (issue 17). Absent: one host, no Redis code on any path.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::LoadOptions;
use super::error::{ConfigError, SourceFile};
use super::reader::TableReader;
use super::values::Secret;

/// `lease` when not set: a dead host's channels are free and its registrations taken over
/// about this long after it stops renewing.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// `expected_nodes` when not set.
pub const DEFAULT_EXPECTED_NODES: u32 = 2;

/// `[cluster]`, validated.
#[derive(Clone, PartialEq)]
pub struct Cluster {
    /// `redis = "redis://host:port/db"` or `rediss://` (TLS); never with a password in it
    /// (that goes in `password_file`), so the URL can be printed.
    pub redis: String,
    /// `password` or the text of `password_file`; `None`: no AUTH (or the URL's user only).
    pub password: Option<Secret>,
    /// `ca_file`: the CAs a `rediss://` server's certificate must chain to, instead of
    /// the system's (a private CA, or a self-signed Redis).
    pub ca_file: Option<std::path::PathBuf>,
    /// This host's unique id in the cluster: `node`, default the host name.
    pub node: String,
    /// How long a host's claims (channels, registrations) outlive its last renewal.
    pub lease: Duration,
    /// How many hosts are expected: the default `degraded_share` is `1 / expected_nodes`.
    pub expected_nodes: u32,
    /// The fraction of each trunk's `max_channels` a host may hold on its own while
    /// Redis cannot be asked (at least 1 channel where the trunk has a limit).
    pub degraded_share: f64,
}

impl Cluster {
    /// Channels a host may hold on a trunk of `max_channels` while degraded (0 stays
    /// unlimited).
    pub fn degraded_limit(&self, max_channels: u32) -> u32 {
        if max_channels == 0 {
            return 0;
        }
        let share = (f64::from(max_channels) * self.degraded_share).floor() as u32;
        share.clamp(1, max_channels)
    }
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("redis", &self.redis)
            .field("password", &self.password)
            .field("ca_file", &self.ca_file)
            .field("node", &self.node)
            .field("lease", &self.lease)
            .field("expected_nodes", &self.expected_nodes)
            .field("degraded_share", &self.degraded_share)
            .finish()
    }
}

/// Reads `[cluster]`; `password`/`password_file` as a trunk's (a relative file is a
/// systemd credential under systemd, else relative to the main file).
pub(super) fn read_cluster(
    source: &SourceFile,
    table: &DeTable<'_>,
    span: &Range<usize>,
    options: &LoadOptions,
    errors: &mut Vec<ConfigError>,
) -> Option<Cluster> {
    let before = errors.len();
    let mut reader = TableReader::new(source, "[cluster]".into(), None, table, errors);
    let redis = reader.parsed("redis", parse_redis_url);
    if table.get("redis").is_none() {
        reader.error(
            span,
            "[cluster] needs redis (\"redis://host:port/db\")".into(),
        );
    }
    let password = super::load::read_password(&mut reader, options);
    let ca_file = reader.string("ca_file").and_then(|site| {
        let base = source.path.parent().unwrap_or(std::path::Path::new(""));
        let path = base.join(site.get_ref());
        let tls_url = table.get("redis").is_some_and(
            |url| matches!(url.get_ref(), DeValue::String(text) if text.starts_with("rediss://")),
        );
        if !tls_url {
            reader.error(
                &site.span(),
                "ca_file: needs a rediss:// URL in redis".into(),
            );
            return None;
        }
        match super::tls::certificates(&path) {
            Ok(_) => Some(path),
            Err(reason) => {
                reader.error(
                    &site.span(),
                    format!("ca_file: {}: {reason}", path.display()),
                );
                None
            }
        }
    });
    let node = match reader.parsed("node", parse_node) {
        Some(node) => Some(node.into_inner()),
        None if table.get("node").is_some() => None,
        None => match host_name() {
            Some(name) => Some(name),
            None => {
                reader.error(
                    span,
                    "[cluster]: the host name is not a usable node id; set node".into(),
                );
                None
            }
        },
    };
    let lease = reader.duration("lease");
    if let Some(lease) = &lease
        && !(Duration::from_secs(1)..=Duration::from_secs(300)).contains(lease.get_ref())
    {
        reader.error(&lease.span(), "lease: must be between 1s and 5m".into());
    }
    let expected_nodes = reader
        .integer("expected_nodes", 1..65)
        .map_or(DEFAULT_EXPECTED_NODES, |n| n.into_inner() as u32);
    let share = match reader.any("degraded_share") {
        None => Some(1.0 / f64::from(expected_nodes)),
        Some(value) => {
            let number = match value.get_ref() {
                DeValue::Float(float) => float.as_str().replace('_', "").parse::<f64>().ok(),
                DeValue::Integer(integer) => integer.as_str().parse::<f64>().ok(),
                _ => None,
            };
            match number {
                Some(share) if share > 0.0 && share <= 1.0 => Some(share),
                _ => {
                    reader.error(
                        &value.span(),
                        "degraded_share: expected a fraction of max_channels above 0 and at \
                         most 1, e.g. 0.5"
                            .into(),
                    );
                    None
                }
            }
        }
    };
    reader.finish();
    if errors.len() > before {
        return None;
    }
    Some(Cluster {
        redis: redis?.into_inner(),
        password,
        ca_file,
        node: node?,
        lease: lease.map_or(DEFAULT_LEASE, |lease| lease.into_inner()),
        expected_nodes,
        degraded_share: share?,
    })
}

/// `redis://host[:port][/db]` or `rediss://…`; a user name is allowed, a password is not
/// (it would be printed with the URL).
fn parse_redis_url(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("redis://")
        .or_else(|| text.strip_prefix("rediss://"))
        .ok_or_else(|| format!("\"{text}\" is not a redis:// or rediss:// URL"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.rsplit_once('@') {
        Some((user, _)) if user.contains(':') => {
            return Err(
                "the URL holds a password: put it in password_file, so it is never printed".into(),
            );
        }
        Some((_, host)) => host,
        None => authority,
    };
    if host.is_empty() {
        return Err(format!("\"{text}\" names no host"));
    }
    if let Some(db) = rest.split_once('/').map(|(_, db)| db)
        && !db.is_empty()
        && db.parse::<u32>().is_err()
    {
        return Err(format!("\"{db}\" is not a database number"));
    }
    Ok(text.to_string())
}

fn parse_node(text: &str) -> Result<String, String> {
    let usable = !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    match usable {
        true => Ok(text.to_string()),
        false => Err(format!(
            "\"{text}\": use 1 to 64 letters, digits, '.', '-' or '_'"
        )),
    }
}

/// The kernel's host name, when it is a usable node id.
fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    parse_node(name.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_urls() {
        assert!(parse_redis_url("redis://127.0.0.1:6379/0").is_ok());
        assert!(parse_redis_url("rediss://cache.example.net").is_ok());
        assert!(parse_redis_url("redis://trunkd@127.0.0.1:6379").is_ok());
        let secret = parse_redis_url("redis://u:hunter2@127.0.0.1").unwrap_err();
        assert!(!secret.contains("hunter2"), "{secret}");
        assert!(parse_redis_url("http://127.0.0.1").is_err());
        assert!(parse_redis_url("redis:///0").is_err());
        assert!(parse_redis_url("redis://h/zero").is_err());
    }

    #[test]
    fn degraded_limit_is_a_share_of_at_least_one() {
        let cluster = Cluster {
            redis: "redis://127.0.0.1".into(),
            password: None,
            ca_file: None,
            node: "a".into(),
            lease: DEFAULT_LEASE,
            expected_nodes: 2,
            degraded_share: 0.5,
        };
        assert_eq!(cluster.degraded_limit(100), 50);
        assert_eq!(cluster.degraded_limit(3), 1);
        assert_eq!(cluster.degraded_limit(1), 1);
        assert_eq!(cluster.degraded_limit(0), 0);
    }
}
