//! RFC 3263 next-hop selection with a real DNS server: dnsmasq on loopback serves SRV
//! records for the trunk's domain, `[daemon] dns_servers` points trunkd at it, and
//! Kamailio is the registrar behind the second SRV target.

// A real process in real time: the virtual-clock rule is for the core.
#![allow(clippy::disallowed_methods)]

mod common;

use common::{Dnsmasq, GOOD_PASSWORD, Kamailio, Trunkd, free_port};

#[test]
fn srv_targets_in_priority_order_with_failover_to_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let dead = free_port();
    let kamailio = Kamailio::start(dir.path());
    // Priority 10 points at a port where nothing answers, priority 20 at Kamailio.
    let dnsmasq = Dnsmasq::start(&[
        format!("--srv-host=_sip._udp.carrier.test,sip1.carrier.test,{dead},10,10"),
        format!(
            "--srv-host=_sip._udp.carrier.test,sip2.carrier.test,{},20,10",
            kamailio.port
        ),
        "--host-record=sip1.carrier.test,127.0.0.1".into(),
        "--host-record=sip2.carrier.test,127.0.0.1".into(),
    ]);
    let config = dir.path().join("trunkd.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[daemon]
listen = ["udp:127.0.0.1:0"]
status_interval = "1h"
dns_servers = ["127.0.0.1:{dns}"]
# Timer F = 64·T1 = 3.2 s, so the dead target is given up quickly.
timer_t1 = "50ms"
timer_t2 = "200ms"

# No port: the SRV records choose (RFC 3263 §4.2).
[trunks.srv]
domain = "carrier.test"
transport = "udp"
direction = "outbound"
username = "trunk1"
password = "{GOOD_PASSWORD}"
register = true
"#,
            dns = dnsmasq.port
        ),
    )
    .unwrap();
    let mut trunkd = Trunkd::start(&config);

    let first = trunkd.wait_for(&["trunk=srv state=registering"]);
    assert!(
        first.contains(&format!("next_hop=udp:127.0.0.1:{dead}")),
        "priority 10 first: {first}"
    );
    let failover = trunkd.wait_for(&["trunk srv: next hop failed; trying the next DNS target"]);
    assert!(
        failover.contains(&format!("127.0.0.1:{}", kamailio.port)),
        "{failover}"
    );
    let registered = trunkd.wait_for(&["trunk=srv state=registered"]);
    assert!(
        registered.contains(&format!("next_hop=udp:127.0.0.1:{}", kamailio.port)),
        "{registered}"
    );
    kamailio.wait_for_log(&["REGISTRAR REGISTERED user=trunk1"]);
    trunkd.stop();
}
