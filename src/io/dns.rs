//! RFC 3263 §4 server location for a trunk's next hop, with hickory-resolver.
//!
//! The transport is always known (the trunk's `transport`), so the NAPTR step, which
//! exists to choose a transport, is skipped as §4.1 allows. Then:
//! - an IP address is used as it is, with the given port or the transport's default;
//! - a name with an explicit port is looked up as A/AAAA (§4.2);
//! - a name without a port is looked up as SRV `_sip._udp`, `_sip._tcp` or `_sips._tcp`
//!   (§4.2), targets ordered by priority and, within one priority, by a weighted random
//!   draw (RFC 2782), each target's A/AAAA records in turn; with no SRV record, the
//!   name's A/AAAA records on the default port.
//!
//! The result is an ordered list of addresses; the registrations fails over along it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

use crate::config::Transport;
use crate::trunk::next_hop::ResolveError;
use crate::trunk::random::Random;

/// Upper bound on addresses kept per next hop; more says nothing useful for failover.
const MAX_TARGETS: usize = 16;

/// Ordered targets and how long the DNS answers behind them stay valid.
pub struct Targets {
    pub addresses: Vec<SocketAddr>,
    /// The shortest TTL among the records used; `None` for an IP literal.
    pub ttl: Option<Duration>,
}

#[derive(Clone)]
pub struct Dns {
    resolver: Arc<TokioResolver>,
}

impl Dns {
    /// The system's resolver configuration, or the given servers (`[daemon] dns_servers`).
    pub fn new(servers: &[SocketAddr]) -> Result<Self, String> {
        Ok(Dns {
            resolver: Arc::new(resolver(servers)?),
        })
    }

    /// The addresses to try, in order, for `host` with an optional explicit `port`.
    pub async fn targets(
        &self,
        host: &str,
        port: Option<u16>,
        transport: Transport,
        random: &mut Random,
    ) -> Result<Targets, ResolveError> {
        let default_port = transport.default_port();
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Targets {
                addresses: vec![SocketAddr::new(ip, port.unwrap_or(default_port))],
                ttl: None,
            });
        }
        if let Some(port) = port {
            return self.addresses(host, port).await;
        }
        let service = match transport {
            Transport::Udp => "_sip._udp",
            Transport::Tcp => "_sip._tcp",
            Transport::Tls => "_sips._tcp",
        };
        let query = format!("{service}.{}.", host.trim_end_matches('.'));
        let (records, mut ttl) = match self.resolver.srv_lookup(query.as_str()).await {
            Ok(lookup) => {
                let records: Vec<(u16, u16, u16, String)> = lookup
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        RData::SRV(srv) => {
                            Some((srv.priority, srv.weight, srv.port, srv.target.to_utf8()))
                        }
                        _ => None,
                    })
                    .collect();
                (records, Some(remaining(lookup.valid_until())))
            }
            Err(_) => (Vec::new(), None),
        };
        if records.is_empty() {
            return self.addresses(host, default_port).await;
        }
        let mut addresses = Vec::new();
        let mut last_error = None;
        for (_, _, port, target) in order_srv(records, random) {
            // RFC 2782: a target of "." means the service is decidedly not available.
            if target == "." {
                continue;
            }
            match self.addresses(&target, port).await {
                Ok(found) => {
                    addresses.extend(found.addresses);
                    ttl = shorter(ttl, found.ttl);
                }
                Err(error) => last_error = Some(error),
            }
            if addresses.len() >= MAX_TARGETS {
                break;
            }
        }
        addresses.truncate(MAX_TARGETS);
        if addresses.is_empty() {
            return Err(last_error.unwrap_or_else(|| {
                ResolveError::Lookup(format!("{query}: no usable SRV target"))
            }));
        }
        Ok(Targets { addresses, ttl })
    }

    async fn addresses(&self, host: &str, port: u16) -> Result<Targets, ResolveError> {
        let name = format!("{}.", host.trim_end_matches('.'));
        let lookup = self
            .resolver
            .lookup_ip(name.as_str())
            .await
            .map_err(|error| ResolveError::Lookup(format!("{host}: {error}")))?;
        Ok(Targets {
            addresses: lookup.iter().map(|ip| SocketAddr::new(ip, port)).collect(),
            ttl: Some(remaining(lookup.valid_until())),
        })
    }
}

/// hickory reports validity as an `Instant`; the TTL is what remains of it now.
fn remaining(valid_until: std::time::Instant) -> Duration {
    valid_until.saturating_duration_since(crate::io::clock::now())
}

fn shorter(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// RFC 2782 ordering: ascending priority; within a priority, repeatedly draw a record with
/// probability proportional to its weight (zero-weight records get a small chance).
fn order_srv(
    mut records: Vec<(u16, u16, u16, String)>,
    random: &mut Random,
) -> Vec<(u16, u16, u16, String)> {
    records.sort_by_key(|record| record.0);
    let mut ordered = Vec::with_capacity(records.len());
    while !records.is_empty() {
        let priority = records[0].0;
        let group_len = records.iter().take_while(|r| r.0 == priority).count();
        let mut group: Vec<_> = records.drain(..group_len).collect();
        while !group.is_empty() {
            let total: u64 = group.iter().map(|r| u64::from(r.1) + 1).sum();
            let mut pick = random.below(total);
            let index = group
                .iter()
                .position(|r| {
                    let weight = u64::from(r.1) + 1;
                    if pick < weight {
                        true
                    } else {
                        pick -= weight;
                        false
                    }
                })
                .unwrap_or(0);
            ordered.push(group.remove(index));
        }
    }
    ordered
}

/// A resolver for `servers` (`host:port`), or the system's (`/etc/resolv.conf`) when empty.
pub(crate) fn resolver(servers: &[SocketAddr]) -> Result<TokioResolver, String> {
    let builder = if servers.is_empty() {
        TokioResolver::builder_tokio().map_err(|error| error.to_string())?
    } else {
        let name_servers = servers
            .iter()
            .map(|server| {
                let mut config = NameServerConfig::udp_and_tcp(server.ip());
                for connection in &mut config.connections {
                    connection.port = server.port();
                }
                config
            })
            .collect();
        TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(name_servers),
            TokioRuntimeProvider::default(),
        )
    };
    builder.build().map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(priority: u16, weight: u16, name: &str) -> (u16, u16, u16, String) {
        (priority, weight, 5060, name.to_owned())
    }

    #[test]
    fn lower_priority_always_first_and_weights_bias_the_draw() {
        let mut random = Random::new(9);
        let mut heavy_first = 0;
        for _ in 0..1000 {
            let ordered = order_srv(
                vec![
                    record(20, 0, "backup"),
                    record(10, 90, "heavy"),
                    record(10, 10, "light"),
                ],
                &mut random,
            );
            assert_eq!(ordered.len(), 3);
            assert_eq!(ordered[2].3, "backup", "priority 20 comes last");
            if ordered[0].3 == "heavy" {
                heavy_first += 1;
            }
        }
        // Expected share 91/102 ≈ 0.89.
        assert!((800..980).contains(&heavy_first), "{heavy_first}");
    }
}
