//! Step 2: the next hop, resolved as the daemon resolves it (RFC 3263), with the lookups
//! behind its choice shown to the operator.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::RData;

use crate::config::{Config, Transport, Trunk};
use crate::io::dns::Dns;
use crate::trunk::next_hop::{MAX_RESOLVE_INTERVAL, MIN_RESOLVE_INTERVAL, lookup_request};
use crate::trunk::random::Random;

use super::report::{Report, Status, Step};
use super::seed;

/// Where verify sends: every target in the daemon's order, and the one it uses.
pub(super) struct Resolution {
    pub(super) targets: Vec<SocketAddr>,
    pub(super) chosen: SocketAddr,
    /// The name a TLS certificate must carry: the outbound proxy's host or the domain.
    pub(super) server_name: String,
}

pub(super) async fn resolve(
    config: &Config,
    trunk: &Trunk,
    report: &mut Report,
) -> Option<Resolution> {
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
