//! The checks that look past one key: across trunks (a number on two trunks, a trunk with
//! no destination). One run reports every error.

use super::*;

const BACKEND: &str = "[backend]\nuri = \"sip:127.0.0.1:5080\"\n";

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
