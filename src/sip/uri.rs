//! SIP URIs and hosts as the config layer needs them (RFC 3261 §19.1, §25.1).
//!
//! This is not the hot-path scanner: it parses operator-written URIs once per load into
//! owned values. It is strict where leniency would hide a typo, and it refuses a password
//! in the userinfo (RFC 3261 §19.1.1 deprecates it, and it would leak into every log line).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A host as written in a URI or the `domain` key: a name, IPv4 or IPv6 address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// Lower-cased DNS name.
    Domain(String),
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
}

impl Host {
    /// The host as a DNS lookup or a TLS certificate names it: an IPv6 literal without
    /// its brackets.
    pub fn bare(&self) -> String {
        match self {
            Host::Ipv6(v6) => v6.to_string(),
            other => other.to_string(),
        }
    }

    /// Parses a host; IPv6 addresses may be bracketed (`[::1]`) or bare (`::1`).
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            return inner
                .parse()
                .map(Host::Ipv6)
                .map_err(|_| format!("\"{text}\" is not a valid IPv6 reference"));
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(match ip {
                IpAddr::V4(v4) => Host::Ipv4(v4),
                IpAddr::V6(v6) => Host::Ipv6(v6),
            });
        }
        if is_domain_name(text) {
            Ok(Host::Domain(text.to_ascii_lowercase()))
        } else {
            Err(format!("\"{text}\" is not a host name or IP address"))
        }
    }

    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Domain(_) => None,
            Host::Ipv4(v4) => Some(IpAddr::V4(*v4)),
            Host::Ipv6(v6) => Some(IpAddr::V6(*v6)),
        }
    }
}

impl fmt::Display for Host {
    /// URI form: IPv6 in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(name) => f.write_str(name),
            Host::Ipv4(v4) => write!(f, "{v4}"),
            Host::Ipv6(v6) => write!(f, "[{v6}]"),
        }
    }
}

/// RFC 3261 §25.1 `hostname`: dot-separated labels of letters, digits and inner hyphens,
/// the last label starting with a letter; an optional trailing dot.
fn is_domain_name(text: &str) -> bool {
    let name = text.strip_suffix('.').unwrap_or(text);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let top_ok = labels
        .last()
        .is_some_and(|top| top.bytes().next().is_some_and(|b| b.is_ascii_alphabetic()));
    labels.iter().all(label_ok) && top_ok
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Sip,
    Sips,
}

/// A SIP or SIPS URI without a password and without `?headers`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SipUri {
    pub scheme: Scheme,
    pub user: Option<String>,
    pub host: Host,
    pub port: Option<u16>,
    /// URI parameters as written, without the leading ';' (e.g. `transport=tcp;lr`).
    pub params: String,
}

impl SipUri {
    /// The value of URI parameter `name` (case-insensitive name), if written with one.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.split(';').find_map(|param| {
            let (key, value) = param.split_once('=')?;
            key.eq_ignore_ascii_case(name).then_some(value)
        })
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let invalid = |why: &str| format!("\"{text}\" is not a valid SIP URI: {why}");
        let (scheme, rest) = match text.split_once(':') {
            Some((s, rest)) if s.eq_ignore_ascii_case("sip") => (Scheme::Sip, rest),
            Some((s, rest)) if s.eq_ignore_ascii_case("sips") => (Scheme::Sips, rest),
            _ => return Err(invalid("it must start with sip: or sips:")),
        };
        if rest.contains('?') {
            return Err(invalid("URI headers (?...) are not allowed here"));
        }
        let (user, rest) = match rest.rsplit_once('@') {
            Some((userinfo, rest)) => {
                if userinfo.contains(':') {
                    // Never quote this value: the part after ':' is a password.
                    return Err(
                        "a SIP URI must not carry a password (user:password@); use the password key"
                            .to_owned(),
                    );
                }
                if userinfo.is_empty() || !userinfo.bytes().all(is_user_byte) {
                    return Err(invalid("bad user part"));
                }
                (Some(userinfo.to_owned()), rest)
            }
            None => (None, rest),
        };
        let (hostport, params) = rest.split_once(';').unwrap_or((rest, ""));
        let (host_text, port_text) = split_host_port(hostport);
        let host = Host::parse(host_text).map_err(|why| invalid(&why))?;
        let port = match port_text {
            None => None,
            Some(port) => Some(parse_port(port).map_err(|why| invalid(&why))?),
        };
        if params.split(';').any(|p| p.is_empty()) && !params.is_empty() {
            return Err(invalid("empty URI parameter"));
        }
        Ok(SipUri {
            scheme,
            user,
            host,
            port,
            params: params.to_owned(),
        })
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.scheme {
            Scheme::Sip => "sip:",
            Scheme::Sips => "sips:",
        })?;
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        if !self.params.is_empty() {
            write!(f, ";{}", self.params)?;
        }
        Ok(())
    }
}

/// Splits `host[:port]`, where host may be a bracketed IPv6 reference.
pub(crate) fn split_host_port(text: &str) -> (&str, Option<&str>) {
    if text.starts_with('[') {
        return match text.find(']') {
            Some(end) => match text[end + 1..].strip_prefix(':') {
                Some(port) => (&text[..=end], Some(port)),
                None => (text, None),
            },
            None => (text, None),
        };
    }
    match text.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port.
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (text, None),
    }
}

pub(crate) fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(port),
        _ => Err(format!("port \"{text}\" is not in 1..=65535")),
    }
}

/// RFC 3261 §25.1 `user`: unreserved / escaped / user-unreserved.
fn is_user_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-_.!~*'()%&=+$,;?/".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_trunk_uris() {
        let uri = SipUri::parse("sip:agent@127.0.0.1:5080").unwrap();
        assert_eq!(uri.user.as_deref(), Some("agent"));
        assert_eq!(uri.host, Host::Ipv4(Ipv4Addr::LOCALHOST));
        assert_eq!(uri.port, Some(5080));

        let uri = SipUri::parse("sips:Edge.Carrier-X.com:5061;transport=tls;lr").unwrap();
        assert_eq!(uri.scheme, Scheme::Sips);
        assert_eq!(uri.host, Host::Domain("edge.carrier-x.com".into()));
        assert_eq!(uri.params, "transport=tls;lr");
        assert_eq!(
            uri.to_string(),
            "sips:edge.carrier-x.com:5061;transport=tls;lr"
        );

        let uri = SipUri::parse("sip:[2001:db8::1]:5060").unwrap();
        assert_eq!(uri.host, Host::Ipv6("2001:db8::1".parse().unwrap()));
        assert_eq!(uri.to_string(), "sip:[2001:db8::1]:5060");
    }

    #[test]
    fn rejects_what_an_operator_might_mistype() {
        for bad in [
            "http://example.com",
            "sip:",
            "sip:user:secret@example.com",
            "sip:example.com:0",
            "sip:example.com:70000",
            "sip:exa mple.com",
            "sip:example.com?subject=x",
            "sip:[::1",
            "sip:-bad.example.com",
        ] {
            assert!(SipUri::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn password_in_uri_is_not_echoed_back() {
        let error = SipUri::parse("sip:user:hunter2@example.com").unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
        assert!(error.contains("use the password key"));
    }
}
