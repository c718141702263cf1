//! Validated value types of the config: each is parsed from the operator's text once and
//! is correct by construction afterwards.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

/// A password. It has no `Display`, its `Debug` is redacted, and the only way to the text
/// is [`Secret::expose`], which digest code calls and nothing that prints does. Shared:
/// the registration of a trunk holds the same text as its config, not a copy.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(std::sync::Arc<str>);

impl Secret {
    pub fn new(text: &str) -> Self {
        Secret(text.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// An E.164 number, stored as `+` and 7 to 15 digits (ITU-T E.164 §6: at most 15 digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164(String);

impl E164 {
    /// Accepts `+` and digits; spaces, dashes, dots and parentheses are taken as visual
    /// separators and dropped, so "+1 (555) 123-4567" is "+15551234567".
    pub fn parse(text: &str) -> Result<Self, String> {
        let compact: String = text
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let digits = compact.strip_prefix('+').ok_or_else(|| {
            format!("\"{text}\" is not E.164: it must start with + and the country code")
        })?;
        let shape_ok = (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if shape_ok {
            Ok(E164(compact))
        } else {
            Err(format!(
                "\"{text}\" is not E.164: expected + then 7 to 15 digits, not starting with 0"
            ))
        }
    }

    /// The digits without the leading `+`.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An allowlist entry: a CIDR network, or a single address taken as /32 or /128.
pub(super) fn parse_network(text: &str) -> Result<IpNet, String> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    let net: IpNet = text
        .parse()
        .map_err(|_| format!("\"{text}\" is not an IP address or CIDR network"))?;
    if net.trunc() != net {
        return Err(format!(
            "\"{text}\" has host bits set; did you mean \"{}\"?",
            net.trunc()
        ));
    }
    Ok(net)
}

/// Durations are written with a unit: "500ms", "30s", "5m", "1h", or combined ("1m30s").
/// A bare 0 (integer or string) means zero, which some keys read as "off".
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!(
            "\"{text}\" is not a duration; write a number with a unit, e.g. \"30s\", \"500ms\", \"5m\", \"1h\""
        )
    };
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(invalid());
    }
    let mut rest = text;
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        let part = u32::try_from(number)
            .ok()
            .and_then(|n| unit.checked_mul(n))
            .ok_or_else(invalid)?;
        total = total.checked_add(part).ok_or_else(invalid)?;
    }
    Ok(total)
}

/// Formats a duration the way the config accepts it back.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    match millis {
        0 => "0".to_owned(),
        m if m % 3_600_000 == 0 => format!("{}h", m / 3_600_000),
        m if m % 60_000 == 0 => format!("{}m", m / 60_000),
        m if m % 1000 == 0 => format!("{}s", m / 1000),
        m => format!("{m}ms"),
    }
}

/// Generates a closed set of lower-case keywords with `parse`, `as_str` and `Display`.
macro_rules! keyword_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [&'static str] = &[$($text),+];

            pub fn parse(text: &str) -> Result<Self, String> {
                match text {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(format!(
                        "\"{text}\" is not one of {}",
                        Self::ALL.iter().map(|k| format!("\"{k}\"")).collect::<Vec<_>>().join(", ")
                    )),
                }
            }

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

keyword_enum!(
    /// SIP transport of a trunk or listener.
    Transport { Udp = "udp", Tcp = "tcp", Tls = "tls" }
);

impl Transport {
    /// RFC 3261 §19.1.2: 5060 for UDP and TCP, 5061 for TLS.
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Udp | Transport::Tcp => 5060,
            Transport::Tls => 5061,
        }
    }
}

keyword_enum!(
    /// Which way calls may flow on a trunk.
    Direction { Inbound = "inbound", Outbound = "outbound", Both = "both" }
);

impl Direction {
    pub fn accepts_inbound(self) -> bool {
        matches!(self, Direction::Inbound | Direction::Both)
    }
}

keyword_enum!(
    /// How an inbound request is tied to this trunk.
    InboundAuth { Ip = "ip", Credential = "credential" }
);

keyword_enum!(
    /// What happens to a request from a source no trunk allows.
    UnknownSource { Reject = "reject", Drop = "drop" }
);

keyword_enum!(
    /// Which trunk lines the periodic status report logs: every trunk's, or only those of
    /// trunks in trouble or whose line changed (the summary line always).
    StatusLog { All = "all", Changes = "changes" }
);

keyword_enum!(
    /// How numbers are written towards the carrier.
    NumberFormat { PlusE164 = "+e164", E164 = "e164", National = "national" }
);

/// One `listen` entry: `"udp:0.0.0.0:5060"`, `"tls:[::]:5061"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Listen {
    pub transport: Transport,
    pub address: SocketAddr,
}

impl Listen {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (transport, address) = text.split_once(':').ok_or_else(|| {
            format!("\"{text}\" is not transport:address:port, e.g. \"udp:0.0.0.0:5060\"")
        })?;
        let transport = Transport::parse(transport)?;
        let address = address.parse().map_err(|_| {
            format!("\"{address}\" is not address:port (IPv6 in brackets: \"[::]:5060\")")
        })?;
        Ok(Listen { transport, address })
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport, self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_is_redacted() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn e164_normalises_separators_and_rejects_bad_shapes() {
        assert_eq!(
            E164::parse("+1 (555) 123-4567").unwrap().to_string(),
            "+15551234567"
        );
        assert_eq!(
            E164::parse("+442071234567").unwrap().digits(),
            "442071234567"
        );
        for bad in [
            "15551234567",
            "+0123456789",
            "+1555",
            "+1234567890123456",
            "+1555abc4567",
        ] {
            assert!(E164::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn networks_are_checked_for_host_bits() {
        assert_eq!(
            parse_network("198.51.100.7").unwrap().to_string(),
            "198.51.100.7/32"
        );
        assert_eq!(
            parse_network("2001:db8::/32").unwrap().to_string(),
            "2001:db8::/32"
        );
        let error = parse_network("10.0.0.1/24").unwrap_err();
        assert!(error.contains("did you mean \"10.0.0.0/24\""), "{error}");
        assert!(parse_network("10.0.0.0/33").is_err());
        assert!(parse_network("example.com").is_err());
    }

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["30", "s", "", "1d", "-5s", "1.5s", "99999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
    }

    #[test]
    fn listen_entries() {
        let listen = Listen::parse("tls:[::1]:5061").unwrap();
        assert_eq!(listen.transport, Transport::Tls);
        assert_eq!(listen.to_string(), "tls:[::1]:5061");
        assert!(Listen::parse("sctp:0.0.0.0:5060").is_err());
        assert!(Listen::parse("udp:0.0.0.0").is_err());
    }
}
