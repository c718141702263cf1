//! The checks that look past one key: across trunks (a number on two trunks, a trunk with
//! no destination), and who may send inbound calls to an `inbound_auth = "ip"` trunk.
//! One run reports every error; what loads but is probably not meant is a warning.

use super::*;

const BACKEND: &str = "[backend]\nuri = \"sip:127.0.0.1:5080\"\n";

fn warnings_of(text: &str) -> Vec<String> {
    loaded(text)
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_trunk_with_errors_of_its_own_still_takes_part_in_the_checks_across_trunks() {
    // The reported case: a bad CIDR on one trunk hid that its number is on another too.
    let text = r#"[trunks.first]
domain = "sip.carrier.example"
allowed_inbound_ips = ["192.0.2.1/33"]
numbers = ["+15551234567"]

[trunks.second]
domain = "sip.other.example"
allowed_inbound_ips = ["192.0.2.2"]
numbers = ["+1 555 123 4567"]
route_to = "sip:pbx@127.0.0.1:5080"
"#;
    assert_eq!(
        errors_of(text),
        [
            "t.toml:1:9: trunk first: inbound calls need a destination: set route_to, or uri in [backend]",
            "t.toml:3:24: trunk first: allowed_inbound_ips: \"192.0.2.1/33\" is not an IP address or CIDR network",
            "t.toml:9:12: trunk second: numbers: +15551234567 is also on trunk first (t.toml:1:9); a number belongs to one trunk",
        ]
    );

    // The same with the error on the trunk that does not own the number.
    let text = text
        .replace("192.0.2.1/33", "192.0.2.1")
        .replace("\"192.0.2.2\"", "\"192.0.2.2\", 7");
    assert_eq!(
        errors_of(&format!("{BACKEND}\n{text}")),
        [
            "t.toml:11:37: trunk second: allowed_inbound_ips[1]: expected a string, found integer",
            "t.toml:12:12: trunk second: numbers: +15551234567 is also on trunk first (t.toml:4:9); a number belongs to one trunk",
        ]
    );
}

#[test]
fn a_number_twice_on_one_trunk_is_reported_once_there_and_once_on_the_other() {
    let text = format!(
        "{BACKEND}\n[trunks.a]\ndomain = \"192.0.2.1\"\nallowed_inbound_ips = [\"192.0.2.1\"]\n\
         numbers = [\"+15551234567\", \"+15551234567\"]\n\n\
         [trunks.b]\ndomain = \"192.0.2.2\"\nallowed_inbound_ips = [\"192.0.2.2\"]\n\
         numbers = [\"+15551234567\"]\n"
    );
    assert_eq!(
        errors_of(&text),
        [
            "t.toml:7:28: trunk a: numbers: +15551234567 is listed twice",
            "t.toml:12:12: trunk b: numbers: +15551234567 is also on trunk a (t.toml:4:9); a number belongs to one trunk",
        ]
    );
}

#[test]
fn a_key_that_did_not_read_is_not_guessed_at_by_the_checks_that_need_it() {
    // No [backend], no allowlist: each trunk would owe a destination or addresses, but
    // what it needs depends on the key that is wrong, so only that key's error is shown.
    let text = r#"[trunks.direction]
domain = "sip.carrier.example"
direction = "sideways"

[trunks.route]
domain = "sip.carrier.example"
allowed_inbound_ips = ["192.0.2.1"]
route_to = "sip:pbx@"

[trunks.auth]
domain = "sip.carrier.example"
route_to = "sip:pbx@127.0.0.1"
inbound_auth = "token"

[trunks.list]
domain = "sip.carrier.example"
route_to = "sip:pbx@127.0.0.1"
allowed_inbound_ips = "192.0.2.1"

[trunks.hop]
domain = "sip.carrier.example"
route_to = "sip:pbx@127.0.0.1"
allow_next_hop = "yes"

[trunks.proxy]
domain = "sip.carrier.example"
route_to = "sip:pbx@127.0.0.1"
outbound_proxy = "http://proxy"

[trunks.register]
domain = "sip.carrier.example"
route_to = "sip:pbx@127.0.0.1"
options_interval = "0"
register = "no"

[trunks.nodomain]
route_to = "sip:pbx@127.0.0.1"
"#;
    let errors = errors_of(text);
    let expected = [
        "t.toml:3:13: trunk direction: direction:",
        "t.toml:8:12: trunk route: route_to:",
        "t.toml:13:16: trunk auth: inbound_auth:",
        "t.toml:18:23: trunk list: allowed_inbound_ips: expected an array",
        "t.toml:23:18: trunk hop: allow_next_hop: expected true or false",
        "t.toml:28:18: trunk proxy: outbound_proxy:",
        "t.toml:34:12: trunk register: register: expected true or false",
        "t.toml:36:9: trunk nodomain: domain: required",
    ];
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for (error, start) in errors.iter().zip(expected) {
        assert!(
            error.starts_with(start),
            "{error} does not start with {start}"
        );
    }
}

#[test]
fn ip_auth_without_an_allowlist_admits_its_next_hop_with_a_warning() {
    let text = format!(
        r#"{BACKEND}
[trunks.address]
domain = "192.0.2.1"

[trunks.proxy]
domain = "sip.carrier.example"
outbound_proxy = "sip:[2001:db8::1]:5070"
options_interval = "0"
allowed_inbound_ips = []

[trunks.pinged]
domain = "sip.carrier.example"

[trunks.registered]
domain = "sip.carrier.example"
options_interval = "0"
register = true
username = "u"
password = "p"

[trunks.both]
domain = "sip.carrier.example"
direction = "inbound"
register = true
username = "u"
password = "p"

# Neither takes calls on its addresses: no warning.
[trunks.outbound]
domain = "sip.carrier.example"
direction = "outbound"

[trunks.credential]
domain = "sip.carrier.example"
inbound_auth = "credential"
username = "u"
password = "p"
"#
    );
    let config = loaded(&text);
    assert!(config.trunks["address"].allowed_inbound_ips.is_empty());
    assert!(config.trunks["address"].allow_next_hop);
    let hint = "(allow_next_hop); list the carrier's other signalling addresses, if any";
    let only = "inbound_auth = \"ip\" without allowed_inbound_ips: only";
    assert_eq!(
        warnings_of(&text),
        [
            format!(
                "t.toml:4:9: trunk address: {only} the next hop 192.0.2.1 may send inbound calls {hint}"
            ),
            format!(
                "t.toml:7:9: trunk proxy: {only} the next hop 2001:db8::1 may send inbound calls {hint}"
            ),
            format!(
                "t.toml:13:9: trunk pinged: {only} the addresses sip.carrier.example resolves to for its OPTIONS keepalives may send inbound calls {hint}"
            ),
            format!(
                "t.toml:16:9: trunk registered: {only} the addresses sip.carrier.example resolves to for its REGISTER may send inbound calls {hint}"
            ),
            format!(
                "t.toml:23:9: trunk both: {only} the addresses sip.carrier.example resolves to for its REGISTER and OPTIONS keepalives may send inbound calls {hint}"
            ),
        ]
    );

    // An allowlist, even with the next hop in it, leaves nothing to warn about.
    let listed = text.replace(
        "domain = \"192.0.2.1\"\n",
        "domain = \"192.0.2.1\"\nallowed_inbound_ips = [\"192.0.2.1\"]\n",
    );
    assert_eq!(warnings_of(&listed).len(), 4);
}

#[test]
fn ip_auth_without_an_allowlist_that_admits_nobody_is_an_error() {
    let needs =
        "inbound_auth = \"ip\" needs allowed_inbound_ips (the carrier's signalling addresses)";
    let text = format!(
        r#"{BACKEND}
[trunks.closed]
domain = "192.0.2.1"
allow_next_hop = false

[trunks.unresolved]
domain = "sip.carrier.example"
direction = "inbound"
options_interval = "0"
register = false
allowed_inbound_ips = []
"#
    );
    assert_eq!(
        errors_of(&text),
        [
            format!(
                "t.toml:4:9: trunk closed: {needs}: with allow_next_hop = false no address may send inbound calls"
            ),
            format!(
                "t.toml:8:9: trunk unresolved: {needs}: the next hop sip.carrier.example is a host name, looked up only for REGISTER or OPTIONS keepalives, and this trunk has neither"
            ),
        ]
    );
    // Outbound only, nobody needs to call in.
    let outbound = text.replace(
        "allow_next_hop = false\n",
        "allow_next_hop = false\ndirection = \"outbound\"\n",
    );
    assert_eq!(errors_of(&outbound).len(), 1, "{outbound}");
}

#[test]
fn warnings_come_in_file_and_position_order_and_only_with_a_valid_config() {
    let text = format!(
        "{BACKEND}\n[trunks.z]\ndomain = \"192.0.2.9\"\n\n[trunks.a]\ndomain = \"192.0.2.1\"\n"
    );
    let warnings = warnings_of(&text);
    assert_eq!(warnings.len(), 2);
    assert!(
        warnings[0].starts_with("t.toml:4:9: trunk z: "),
        "{warnings:?}"
    );
    assert!(
        warnings[1].starts_with("t.toml:7:9: trunk a: "),
        "{warnings:?}"
    );

    // With an error anywhere, the load fails with the errors only.
    let broken = format!("{text}max_channels = -1\n");
    assert_eq!(
        errors_of(&broken),
        ["t.toml:9:16: trunk a: max_channels: -1 is out of range 0..=1000000"]
    );
}
