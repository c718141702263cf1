//! Whole files through [`load_str`]: the outbound keys' defaults, every valid form, and
//! every error with the file, line, column and trunk its message carries; in `checks`, the
//! checks across keys and trunks, and warnings.

use std::borrow::Cow;
use std::path::Path;

use super::*;

mod checks;

/// An outbound-only trunk needs neither an allowlist nor a backend.
const OUTBOUND_TRUNK: &str = "[trunks.carrier]\ndomain = \"192.0.2.1\"\ndirection = \"outbound\"\n";

fn load_text(text: &str) -> Result<Config, Vec<String>> {
    load_str(Path::new("t.toml"), text, &LoadOptions::default())
        .map_err(|errors| errors.0.iter().map(ToString::to_string).collect())
}

fn loaded(text: &str) -> Config {
    load_text(text).unwrap_or_else(|errors| panic!("{}", errors.join("\n")))
}

fn errors_of(text: &str) -> Vec<String> {
    load_text(text).map(|_| ()).expect_err("must be invalid")
}

#[test]
fn outbound_keys_default_when_absent() {
    let text = format!("[backend]\nuri = \"sip:127.0.0.1:5080\"\n\n{OUTBOUND_TRUNK}");
    let config = loaded(&text);
    let codes = &config.daemon.outbound_failover_codes;
    assert_eq!(codes[..], [408, 500, 502, 503, 504]);
    assert!(matches!(codes, Cow::Borrowed(_)), "shared, not copied");
    assert!(config.backend.as_ref().unwrap().allowed_ips.is_empty());
    let trunk = &config.trunks["carrier"];
    assert!(trunk.outbound_prefixes.is_empty(), "every number");
    assert_eq!(
        (trunk.priority, trunk.weight, trunk.max_cps_outbound),
        (100, 1, 0)
    );
    assert_eq!(trunk.tech_prefix, None);
    assert_eq!(trunk.caller_id, None);
    assert_eq!(trunk.from_user, None);
    assert_eq!(trunk.from_domain, None);
    assert!(!trunk.send_pai);

    // A [daemon] table without the key has the same default.
    let config = loaded(&format!(
        "[daemon]\nstatus_interval = \"5s\"\n\n{OUTBOUND_TRUNK}"
    ));
    assert_eq!(
        config.daemon.outbound_failover_codes[..],
        [408, 500, 502, 503, 504]
    );
}

#[test]
fn outbound_keys_in_every_valid_form() {
    let text = format!(
        r##"[daemon]
outbound_failover_codes = [503, 300, 699, 486]

[backend]
uri = "sip:127.0.0.1:5080"
allowed_ips = ["10.0.0.0/24", "192.0.2.7", "2001:db8::/48"]

{OUTBOUND_TRUNK}numbers = ["+15550100001", "+44 20 7123 4567"]
outbound_prefixes = ["+44 20", "1", "+1-555.0", "123456789012345"]
priority = 0
weight = 10000
max_cps_outbound = 100000
tech_prefix = "#31#*0123456789"
caller_id = "+44 (20) 7123-4567"
from_user = "aZ09-_.!~*'()&=+$,;?/"
from_domain = "Carrier.Example"
send_pai = true
"##
    );
    let config = loaded(&text);
    assert_eq!(
        config.daemon.outbound_failover_codes[..],
        [503, 300, 699, 486]
    );
    let allowed: Vec<String> = config
        .backend
        .as_ref()
        .unwrap()
        .allowed_ips
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(allowed, ["10.0.0.0/24", "192.0.2.7/32", "2001:db8::/48"]);
    let trunk = &config.trunks["carrier"];
    assert_eq!(
        trunk.outbound_prefixes,
        ["4420", "1", "15550", "123456789012345"],
        "digits only, without the +"
    );
    assert_eq!(
        (trunk.priority, trunk.weight, trunk.max_cps_outbound),
        (0, 10000, 100000)
    );
    assert_eq!(trunk.tech_prefix.as_deref(), Some("#31#*0123456789"));
    assert_eq!(
        trunk.caller_id.as_ref().map(ToString::to_string).as_deref(),
        Some("+442071234567"),
        "normalised, and found among numbers written differently"
    );
    assert_eq!(trunk.from_user.as_deref(), Some("aZ09-_.!~*'()&=+$,;?/"));
    assert_eq!(
        trunk.from_domain,
        Some(crate::sip::Host::Domain("carrier.example".into()))
    );
    assert!(trunk.send_pai);

    // The other ends of the ranges, an empty failover list, an address as from_domain.
    let text = format!(
        "[daemon]\noutbound_failover_codes = []\n\n{OUTBOUND_TRUNK}\
         priority = 4294967295\nweight = 1\nmax_cps_outbound = 0\ntech_prefix = \"9\"\n\
         from_user = \"u\"\nfrom_domain = \"[2001:db8::1]\"\nsend_pai = false\n"
    );
    let config = loaded(&text);
    assert!(
        config.daemon.outbound_failover_codes.is_empty(),
        "never fail over"
    );
    let trunk = &config.trunks["carrier"];
    assert_eq!((trunk.priority, trunk.weight), (u32::MAX, 1));
    assert_eq!(trunk.tech_prefix.as_deref(), Some("9"));
    assert_eq!(trunk.from_user.as_deref(), Some("u"));
    assert_eq!(
        trunk.from_domain.as_ref().unwrap().to_string(),
        "[2001:db8::1]"
    );
    assert!(!trunk.send_pai);
}

#[test]
fn outbound_values_out_of_bounds_are_errors_at_the_value() {
    let text = format!(
        r#"[daemon]
outbound_failover_codes = [299, 401, 503, 503, 407, 700, "x"]

[backend]
uri = "sip:127.0.0.1:5080"
allowed_ips = ["10.0.0.1/24", "pbx.example"]

{OUTBOUND_TRUNK}numbers = ["+15550100001"]
outbound_prefixes = ["+44", "44", "4a", "+1234567890123456", ""]
priority = -1
weight = 0
max_cps_outbound = 100001
tech_prefix = "9a"
caller_id = "+15550100002"
from_user = "a b"
from_domain = "bad domain"
send_pai = "yes"
"#
    );
    assert_eq!(
        errors_of(&text),
        [
            "t.toml:2:28: outbound_failover_codes[0]: out of range 300..=699",
            "t.toml:2:33: outbound_failover_codes: 401 is a digest challenge, which trunkd answers; it cannot trigger failover",
            "t.toml:2:43: outbound_failover_codes: 503 is listed twice",
            "t.toml:2:48: outbound_failover_codes: 407 is a digest challenge, which trunkd answers; it cannot trigger failover",
            "t.toml:2:53: outbound_failover_codes[5]: out of range 300..=699",
            "t.toml:2:58: outbound_failover_codes[6]: expected an integer, found string",
            "t.toml:6:16: allowed_ips: \"10.0.0.1/24\" has host bits set; did you mean \"10.0.0.0/24\"?",
            "t.toml:6:31: allowed_ips: \"pbx.example\" is not an IP address or CIDR network",
            "t.toml:12:29: trunk carrier: outbound_prefixes: +44 is listed twice",
            "t.toml:12:35: trunk carrier: outbound_prefixes: \"4a\" is not an E.164 prefix: expected an optional + then 1 to 15 digits",
            "t.toml:12:41: trunk carrier: outbound_prefixes: \"+1234567890123456\" is not an E.164 prefix: expected an optional + then 1 to 15 digits",
            "t.toml:12:62: trunk carrier: outbound_prefixes: \"\" is not an E.164 prefix: expected an optional + then 1 to 15 digits",
            "t.toml:13:12: trunk carrier: priority: -1 is out of range 0..=4294967295",
            "t.toml:14:10: trunk carrier: weight: 0 is out of range 1..=10000",
            "t.toml:15:20: trunk carrier: max_cps_outbound: 100001 is out of range 0..=100000",
            "t.toml:16:15: trunk carrier: tech_prefix: \"9a\" must be 1 to 16 characters from 0-9, # and *",
            "t.toml:17:13: trunk carrier: caller_id: +15550100002 is not one of this trunk's numbers",
            "t.toml:18:13: trunk carrier: from_user: \"a b\" has ' ', which a SIP URI user part cannot hold as is; use letters, digits and -_.!~*'()&=+$,;?/",
            "t.toml:19:15: trunk carrier: from_domain: \"bad domain\" is not a host name or IP address",
            "t.toml:20:12: trunk carrier: send_pai: expected true or false, found string",
        ]
    );
}

#[test]
fn outbound_keys_of_the_wrong_type_and_unknown_spellings() {
    let text = format!(
        "{OUTBOUND_TRUNK}outbound_prefixes = \"44\"\npriority = \"1\"\nweight = 1.5\n\
         tech_prefix = 9\ncaller_id = [\"+15550100001\"]\nsend_pia = true\n\n\
         [daemon]\noutbound_failover_codes = 503\n\n\
         [backend]\nuri = \"sip:127.0.0.1:5080\"\nallowed_ips = \"10.0.0.0/8\"\n"
    );
    assert_eq!(
        errors_of(&text),
        [
            "t.toml:4:21: trunk carrier: outbound_prefixes: expected an array of strings, found string",
            "t.toml:5:12: trunk carrier: priority: expected an integer, found string",
            "t.toml:6:10: trunk carrier: weight: expected an integer, found float",
            "t.toml:7:15: trunk carrier: tech_prefix: expected a string, found integer",
            "t.toml:8:13: trunk carrier: caller_id: expected a string, found array",
            "t.toml:9:1: trunk carrier: unknown key \"send_pia\" in [trunks.carrier]; did you mean \"send_pai\"?",
            "t.toml:12:27: outbound_failover_codes: expected an array of integers, found integer",
            "t.toml:16:15: allowed_ips: expected an array of strings, found string",
        ]
    );
}

#[test]
fn from_user_length_and_tech_prefix_length() {
    let long_user = "u".repeat(65);
    let text = format!(
        "{OUTBOUND_TRUNK}from_user = \"{long_user}\"\ntech_prefix = \"12345678901234567\"\n"
    );
    assert_eq!(
        errors_of(&text),
        [
            format!("t.toml:4:13: trunk carrier: from_user: \"{long_user}\" must be 1 to 64 characters"),
            "t.toml:5:15: trunk carrier: tech_prefix: \"12345678901234567\" must be 1 to 16 characters from 0-9, # and *".to_owned(),
        ]
    );
}

#[test]
fn caller_id_must_be_one_of_the_trunks_numbers() {
    // Without numbers, no caller_id can be one of them.
    let text = format!("{OUTBOUND_TRUNK}caller_id = \"+15550100001\"\n");
    assert_eq!(
        errors_of(&text),
        [
            "t.toml:4:13: trunk carrier: caller_id: +15550100001 is not one of this trunk's numbers (it has none)"
        ]
    );
    // Not E.164 at all.
    let text = format!("{OUTBOUND_TRUNK}caller_id = \"5550100001\"\n");
    assert_eq!(
        errors_of(&text),
        [
            "t.toml:4:13: trunk carrier: caller_id: \"5550100001\" is not E.164: it must start with + and the country code"
        ]
    );
    // A number that did not parse has its own error, and no second one from caller_id.
    let text =
        format!("{OUTBOUND_TRUNK}numbers = [\"+1555010000x\"]\ncaller_id = \"+15550100001\"\n");
    assert_eq!(
        errors_of(&text),
        [
            "t.toml:4:12: trunk carrier: numbers: \"+1555010000x\" is not E.164: expected + then 7 to 15 digits, not starting with 0"
        ]
    );
    // Another trunk's number is not this trunk's.
    let text = format!(
        "{OUTBOUND_TRUNK}numbers = [\"+15550100001\"]\n\n\
         [trunks.other]\ndomain = \"192.0.2.2\"\ndirection = \"outbound\"\n\
         numbers = [\"+15550100002\"]\ncaller_id = \"+15550100001\"\n"
    );
    assert_eq!(
        errors_of(&text),
        ["t.toml:10:13: trunk other: caller_id: +15550100001 is not one of this trunk's numbers"]
    );
}

#[test]
fn the_outbound_trunk_fields_are_named_by_their_keys() {
    let fields = [
        (TrunkField::OutboundPrefixes, "outbound_prefixes"),
        (TrunkField::Priority, "priority"),
        (TrunkField::Weight, "weight"),
        (TrunkField::MaxCpsOutbound, "max_cps_outbound"),
        (TrunkField::TechPrefix, "tech_prefix"),
        (TrunkField::CallerId, "caller_id"),
        (TrunkField::FromUser, "from_user"),
        (TrunkField::FromDomain, "from_domain"),
        (TrunkField::SendPai, "send_pai"),
    ];
    for (field, key) in fields {
        assert_eq!(field.as_str(), key);
    }
}

#[test]
fn a_reload_names_changed_outbound_keys() {
    let base = format!(
        "[backend]\nuri = \"sip:127.0.0.1:5080\"\n\n{OUTBOUND_TRUNK}numbers = [\"+15550100001\"]\n"
    );
    let old = loaded(&base);
    let new = loaded(&format!(
        "[daemon]\noutbound_failover_codes = [503]\n\n{}\
         outbound_prefixes = [\"1\"]\npriority = 5\nweight = 2\nmax_cps_outbound = 10\n\
         tech_prefix = \"99\"\ncaller_id = \"+15550100001\"\nfrom_user = \"pbx\"\n\
         from_domain = \"example.com\"\nsend_pai = true\n",
        base.replace(
            "uri = \"sip:127.0.0.1:5080\"",
            "uri = \"sip:127.0.0.1:5080\"\nallowed_ips = [\"10.0.0.0/8\"]"
        )
    ));
    let changes = diff(&old, &new);
    assert_eq!(
        changes.changed,
        [(
            "carrier".to_owned(),
            vec![
                TrunkField::OutboundPrefixes,
                TrunkField::Priority,
                TrunkField::Weight,
                TrunkField::MaxCpsOutbound,
                TrunkField::TechPrefix,
                TrunkField::CallerId,
                TrunkField::FromUser,
                TrunkField::FromDomain,
                TrunkField::SendPai,
            ]
        )]
    );
    assert_eq!(
        changes.daemon_changed,
        ["outbound_failover_codes", "backend"]
    );
}

#[test]
fn options_timeout_defaults_to_3s_and_is_bounded() {
    let config = loaded(OUTBOUND_TRUNK);
    assert_eq!(
        config.trunks["carrier"].options_timeout,
        std::time::Duration::from_secs(3)
    );
    let config = loaded(&format!("{OUTBOUND_TRUNK}options_timeout = \"750ms\"\n"));
    assert_eq!(
        config.trunks["carrier"].options_timeout,
        std::time::Duration::from_millis(750)
    );
    for bad in ["\"50ms\"", "\"6m\""] {
        let errors = errors_of(&format!("{OUTBOUND_TRUNK}options_timeout = {bad}\n"));
        assert_eq!(
            errors,
            ["t.toml:4:19: trunk carrier: options_timeout: must be between 100ms and 5m"],
            "{bad}"
        );
    }
}

#[test]
fn backend_uris_in_every_form_and_their_errors() {
    let text = format!(
        r#"[backend]
uris = ["sip:10.0.0.9:5080", {{ uri = "sips:pbx.example", priority = 10, weight = 3 }}, "sip:10.0.0.10;transport=tcp"]
invite_timeout = "1500ms"

{OUTBOUND_TRUNK}"#
    );
    let backend = loaded(&text).backend.unwrap();
    let pool: Vec<_> = backend
        .uris
        .iter()
        .map(|entry| {
            (
                entry.uri.to_string(),
                entry.priority,
                entry.weight,
                entry.transport(),
            )
        })
        .collect();
    assert_eq!(
        pool,
        [
            ("sip:10.0.0.9:5080".to_owned(), 100, 1, Transport::Udp),
            ("sips:pbx.example".to_owned(), 10, 3, Transport::Tls),
            (
                "sip:10.0.0.10;transport=tcp".to_owned(),
                100,
                1,
                Transport::Tcp
            ),
        ]
    );
    assert_eq!(
        backend.invite_timeout,
        std::time::Duration::from_millis(1500)
    );
    assert_eq!(uri_port(&backend.uris[1].uri), 5061);
    // `uri` is the one-element form, with the default invite_timeout.
    let one = loaded(&format!(
        "[backend]\nuri = \"sip:10.0.0.9\"\n\n{OUTBOUND_TRUNK}"
    ));
    let one = one.backend.unwrap();
    assert_eq!(
        (one.uris.len(), one.invite_timeout),
        (1, std::time::Duration::from_secs(2))
    );

    let errors = errors_of(&format!(
        "[backend]\nuri = \"sip:a.example\"\nuris = [\"sip:10.0.0.9;transport=sctp\", 5, {{ priority = 1 }}]\ninvite_timeout = \"1m\"\n\n{OUTBOUND_TRUNK}"
    ));
    let text = errors.join("\n");
    for expected in [
        "set uri or uris, not both",
        "uris[0]: \"sip:10.0.0.9;transport=sctp\": transport must be udp, tcp or tls",
        "uris[1]: expected a SIP URI string or an inline table, found integer",
        "uris[2]: needs uri",
        "invite_timeout: must be between 100ms and 32s",
    ] {
        assert!(text.contains(expected), "{expected} in:\n{text}");
    }
    assert!(
        errors.iter().all(|error| error.starts_with("t.toml:")),
        "{text}"
    );
}

#[test]
fn route_to_is_one_backend_or_a_pool() {
    let text = "[trunks.pbx]\ndomain = \"192.0.2.1\"\nallowed_inbound_ips = [\"192.0.2.1\"]\n\
                route_to = [\"sip:10.0.0.9:5080;transport=tcp\", { uri = \"sip:10.0.0.10\", priority = 5 }]\n";
    let config = loaded(text);
    let pool = &config.trunks["pbx"].route_to;
    assert_eq!(pool.len(), 2);
    assert_eq!((pool[0].transport(), pool[1].priority), (Transport::Tcp, 5));
    let one = loaded(&text.replace(
        "route_to = [\"sip:10.0.0.9:5080;transport=tcp\", { uri = \"sip:10.0.0.10\", priority = 5 }]",
        "route_to = \"sip:10.0.0.9\"",
    ));
    assert_eq!(one.trunks["pbx"].route_to.len(), 1);
    let errors = errors_of(&text.replace("{ uri = \"sip:10.0.0.10\", priority = 5 }", "7"));
    assert_eq!(
        errors,
        [
            "t.toml:4:48: trunk pbx: route_to[1]: expected a SIP URI string or an inline table, found integer"
        ]
    );
}

#[test]
fn status_log_is_a_keyword_defaulting_to_changes() {
    let with = |line: &str| format!("[daemon]\n{line}\n\n{OUTBOUND_TRUNK}");
    assert_eq!(loaded(OUTBOUND_TRUNK).daemon.status_log, StatusLog::Changes);
    assert_eq!(
        loaded(&with("status_interval = \"5s\"")).daemon.status_log,
        StatusLog::Changes,
        "a [daemon] table without the key"
    );
    assert_eq!(
        loaded(&with("status_log = \"all\"")).daemon.status_log,
        StatusLog::All
    );
    assert_eq!(
        loaded(&with("status_log = \"changes\"")).daemon.status_log,
        StatusLog::Changes
    );
    assert_eq!(
        errors_of(&with("status_log = \"none\"")),
        ["t.toml:2:14: status_log: \"none\" is not one of \"all\", \"changes\""]
    );
    assert_eq!(
        errors_of(&with("status_log = true")),
        ["t.toml:2:14: status_log: expected a string, found boolean"]
    );
}

#[test]
fn metrics_are_off_by_default_and_served_where_listen_says() {
    assert_eq!(loaded(OUTBOUND_TRUNK).metrics, None);
    let config = loaded(&format!(
        "[metrics]\nlisten = \"127.0.0.1:9464\"\n\n{OUTBOUND_TRUNK}"
    ));
    let listen = config.metrics.expect("[metrics] given").listen;
    assert_eq!(listen, "127.0.0.1:9464".parse().unwrap());
    let config = loaded(&format!(
        "[metrics]\nlisten = \"[::1]:0\"\n\n{OUTBOUND_TRUNK}"
    ));
    assert_eq!(config.metrics.unwrap().listen, "[::1]:0".parse().unwrap());
}

#[test]
fn metrics_table_needs_listen() {
    assert_eq!(
        errors_of(&format!("[metrics]\n\n{OUTBOUND_TRUNK}")),
        ["t.toml:1:1: [metrics] needs listen (\"IP:PORT\")"]
    );
}

#[test]
fn cluster_keys_defaults_and_every_error_with_its_position() {
    let config = loaded(&format!(
        "[cluster]\nredis = \"redis://127.0.0.1:6379/2\"\nnode = \"edge-1\"\n\n{OUTBOUND_TRUNK}"
    ));
    let cluster = config.cluster.expect("[cluster] read");
    assert_eq!(cluster.node, "edge-1");
    assert_eq!(cluster.lease, cluster::DEFAULT_LEASE);
    assert_eq!(cluster.expected_nodes, 2);
    assert_eq!(cluster.degraded_limit(10), 5);
    assert!(cluster.password.is_none());
    let config = loaded(&format!(
        "[cluster]\nredis = \"rediss://r.example\"\nnode = \"n\"\nexpected_nodes = 3\n\
         password = \"hunter2\"\n\n{OUTBOUND_TRUNK}"
    ));
    let cluster = config.cluster.unwrap();
    assert_eq!(cluster.degraded_limit(9), 3, "1/expected_nodes by default");
    assert!(!format!("{cluster:?}").contains("hunter2"));
    assert!(loaded(OUTBOUND_TRUNK).cluster.is_none());

    let errors = errors_of(&format!(
        "[cluster]\nredis = \"redis://u:hunter2@127.0.0.1\"\nnode = \"a b\"\nlease = \"0s\"\n\
         degraded_share = 1.5\nleese = \"3s\"\n\n{OUTBOUND_TRUNK}"
    ));
    let joined = errors.join("\n");
    assert!(!joined.contains("hunter2"), "{joined}");
    for (line, text) in [
        (2, "redis: the URL holds a password"),
        (3, "node: \"a b\""),
        (4, "lease: must be between 1s and 5m"),
        (5, "degraded_share: expected a fraction"),
        (
            6,
            "unknown key \"leese\" in [cluster]; did you mean \"lease\"?",
        ),
    ] {
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(&format!("t.toml:{line}:")) && e.contains(text)),
            "{line}: {text}\n{joined}"
        );
    }
    let errors = errors_of(&format!("[cluster]\nnode = \"a\"\n\n{OUTBOUND_TRUNK}"));
    assert!(errors[0].contains("[cluster] needs redis"), "{errors:?}");
    let errors = errors_of(&format!(
        "[cluster]\nredis = \"redis://r\"\nnode = \"a\"\nca_file = \"ca.pem\"\n\n{OUTBOUND_TRUNK}"
    ));
    assert!(
        errors[0].starts_with("t.toml:4:") && errors[0].contains("ca_file: needs a rediss:// URL"),
        "{errors:?}"
    );
    let errors = errors_of(&format!(
        "[cluster]\nredis = \"rediss://r\"\nnode = \"a\"\nca_file = \"no-such.pem\"\n\n{OUTBOUND_TRUNK}"
    ));
    assert!(
        errors[0].starts_with("t.toml:4:") && errors[0].contains("ca_file: no-such.pem"),
        "{errors:?}"
    );
}
