//! The steps that only compare, from the config and what the other steps observed:
//! config (step 1), NAT (step 6) and the inbound allowlist (step 7). No IO.

use std::net::{IpAddr, SocketAddr};

use crate::config::{Config, Transport, Trunk};
use crate::trunk::registrations::Registrations;

use super::drive::SeenVia;
use super::report::{Status, Step};

// ---------------------------------------------------------------------------------------
// Step 1: config
// ---------------------------------------------------------------------------------------

pub(super) fn config_step(config: &Config, trunk: &Trunk) -> Step {
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
    // What `check-config` prints as warnings, as far as they concern this trunk.
    for warning in &config.warnings {
        if warning.0.trunk.as_ref().is_none_or(|id| *id == trunk.id) {
            step.status = Status::Warn;
            step.details.push(format!("warning: {warning}"));
        }
    }
    step
}

// ---------------------------------------------------------------------------------------
// Step 6: NAT
// ---------------------------------------------------------------------------------------

/// Compares where the carrier saw our requests come from (Via `received`/`rport`, RFC
/// 3581) with the address we advertised.
pub(super) fn nat_step(
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
pub(super) fn allowlist_step(
    trunk: &Trunk,
    targets: &[SocketAddr],
    answered_from: &[SocketAddr],
) -> Step {
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
    use std::path::Path;

    use crate::config::{self, LoadOptions};

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
    fn config_step_shows_the_config_warnings_of_this_trunk() {
        let text = "[backend]\nuri = \"sip:127.0.0.1:5080\"\n\n\
                    [trunks.open]\ndomain = \"192.0.2.1\"\n\n\
                    [trunks.listed]\ndomain = \"192.0.2.2\"\nallowed_inbound_ips = [\"192.0.2.2\"]\n";
        let config = config::load_str(Path::new("t.toml"), text, &LoadOptions::default()).unwrap();
        let step = config_step(&config, &config.trunks["open"]);
        assert_eq!(step.status, Status::Warn, "{}", step.render());
        assert_eq!(
            step.details[1..],
            [
                "warning: t.toml:4:9: trunk open: inbound_auth = \"ip\" without allowed_inbound_ips: \
              only the next hop 192.0.2.1 may send inbound calls (allow_next_hop); list the \
              carrier's other signalling addresses, if any"
            ],
            "{}",
            step.render()
        );
        // Another trunk's warning is not this trunk's.
        let step = config_step(&config, &config.trunks["listed"]);
        assert_eq!(step.status, Status::Ok, "{}", step.render());
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
}
