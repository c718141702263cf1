//! The text routing a call writes for every call alike: our `host:port` at a listener
//! address, a backend URI as the Request-URI, a host as a TLS certificate names it.
//! Formatted once per config and copied from here: formatting them again for each call
//! was a twentieth of an admitted call's CPU. Everything here follows from the config
//! (`public_address`, the URIs and hosts it names) and our listener addresses, so it is
//! forgotten when a config is applied and stays bounded by what the config names.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::call::outbound::Credentials;
use crate::config::Trunk;
use crate::sip::{Host, SipUri};
use crate::trunk::next_hop;

#[derive(Debug, Default)]
pub(super) struct Names {
    /// By address, and whether `public_address` stands in for it.
    sent_by: HashMap<(SocketAddr, bool), String>,
    uris: HashMap<SipUri, UriText>,
    hosts: HashMap<Host, String>,
    /// By trunk id.
    trunks: HashMap<String, Arc<TrunkText>>,
}

/// What every outbound INVITE through a trunk repeats.
#[derive(Debug)]
pub(super) struct TrunkText {
    /// Where its calls go, as the Request-URI and To name it: the termination URI's host,
    /// else the domain; with the port when one is written.
    pub host: String,
    pub host_port: String,
    /// From's host: `from_domain`, else the domain.
    pub from_domain: String,
    /// The name a TLS next hop's certificate must carry.
    pub server_name: String,
    /// What a challenge is answered with, shared by the trunk's calls (`Debug` shows no
    /// password).
    pub credentials: Option<Arc<Credentials>>,
}

/// A URI as written, and where a user goes into it when it names none.
#[derive(Debug)]
struct UriText {
    whole: String,
    /// Just after the scheme's colon.
    user_at: usize,
}

impl Names {
    /// Forgets everything: a new config may name other hosts or a `public_address`.
    pub(super) fn clear(&mut self) {
        *self = Names::default();
    }

    /// Our `host:port` in Via and Record-Route for `address`: `public_address` if set,
    /// else the address itself.
    pub(super) fn sent_by(&mut self, public: Option<&Host>, address: SocketAddr) -> String {
        self.sent_by
            .entry((address, public.is_some()))
            .or_insert_with(|| sent_by_of(public, address))
            .clone()
    }

    /// `uri` as a Request-URI, with `user` (the dialled user) put in when it names none.
    pub(super) fn request_uri(&mut self, uri: &SipUri, user: Option<&[u8]>) -> String {
        let text = uri_text(&mut self.uris, uri);
        match user {
            Some(user) if uri.user.is_none() => {
                let user = String::from_utf8_lossy(user);
                let mut out = String::with_capacity(text.whole.len() + user.len() + 1);
                out.push_str(&text.whole[..text.user_at]);
                out.push_str(&user);
                out.push('@');
                out.push_str(&text.whole[text.user_at..]);
                out
            }
            _ => text.whole.clone(),
        }
    }

    /// What outbound INVITEs through `trunk` repeat.
    pub(super) fn trunk(&mut self, trunk: &Trunk) -> Arc<TrunkText> {
        if let Some(text) = self.trunks.get(&trunk.id) {
            return Arc::clone(text);
        }
        let (host, port) = match &trunk.termination_uri {
            Some(uri) => (uri.host.to_string(), uri.port),
            None => (
                trunk.domain.to_string(),
                trunk.port_explicit.then_some(trunk.port),
            ),
        };
        let host_port = match port {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        let credentials = match (&trunk.username, &trunk.password) {
            (Some(username), Some(password)) => Some(Arc::new(Credentials {
                username: username.clone(),
                password: password.clone(),
                realm: trunk.auth_realm.clone(),
            })),
            _ => None,
        };
        let text = Arc::new(TrunkText {
            host,
            host_port,
            from_domain: trunk
                .from_domain
                .as_ref()
                .map_or_else(|| trunk.domain.to_string(), ToString::to_string),
            server_name: self.bare(next_hop::server_host(trunk)),
            credentials,
        });
        self.trunks.insert(trunk.id.clone(), Arc::clone(&text));
        text
    }

    /// `host` as DNS and TLS certificates name it (an IPv6 literal without brackets).
    pub(super) fn bare(&mut self, host: &Host) -> String {
        if let Some(bare) = self.hosts.get(host) {
            return bare.clone();
        }
        let bare = host.bare();
        self.hosts.insert(host.clone(), bare.clone());
        bare
    }
}

/// The text of `uri`, written the first time it is asked for (the URI cloned as the key
/// only then).
fn uri_text<'a>(uris: &'a mut HashMap<SipUri, UriText>, uri: &SipUri) -> &'a UriText {
    if !uris.contains_key(uri) {
        let whole = uri.to_string();
        let user_at = whole.find(':').map_or(0, |colon| colon + 1);
        uris.insert(uri.clone(), UriText { whole, user_at });
    }
    &uris[uri]
}

/// Our `host:port` for `address`, as [`Names::sent_by`] keeps it.
fn sent_by_of(public: Option<&Host>, address: SocketAddr) -> String {
    match public {
        Some(public) => format!("{public}:{}", address.port()),
        None => crate::trunk::next_hop::sent_by(address),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> SipUri {
        SipUri::parse(text).expect("a valid URI")
    }

    #[test]
    fn a_request_uri_gets_the_dialled_user_only_when_it_names_none() {
        let mut names = Names::default();
        let pbx = uri("sip:pbx.example.com:5080;transport=tcp");
        assert_eq!(
            names.request_uri(&pbx, Some(b"+4930123")),
            "sip:+4930123@pbx.example.com:5080;transport=tcp"
        );
        // From the cache, with another user, and without one.
        assert_eq!(
            names.request_uri(&pbx, Some(b"100")),
            "sip:100@pbx.example.com:5080;transport=tcp"
        );
        assert_eq!(
            names.request_uri(&pbx, None),
            "sip:pbx.example.com:5080;transport=tcp"
        );
        let ivr = uri("sips:ivr@[2001:db8::1]");
        assert_eq!(
            names.request_uri(&ivr, Some(b"100")),
            "sips:ivr@[2001:db8::1]"
        );
        assert_eq!(names.uris.len(), 2);
    }

    #[test]
    fn sent_by_names_the_public_address_or_the_listener_until_a_clear() {
        let mut names = Names::default();
        let v6: SocketAddr = "[2001:db8::5]:5060".parse().unwrap();
        let v4: SocketAddr = "192.0.2.5:5062".parse().unwrap();
        assert_eq!(names.sent_by(None, v6), "[2001:db8::5]:5060");
        assert_eq!(names.sent_by(None, v4), "192.0.2.5:5062");
        let public = Host::parse("sbc.example.com").unwrap();
        assert_eq!(names.sent_by(Some(&public), v4), "sbc.example.com:5062");
        assert_eq!(names.sent_by(None, v4), "192.0.2.5:5062");
        // Cached until a new config clears it (which may name another public address).
        let other = Host::parse("edge.example.com").unwrap();
        assert_eq!(names.sent_by(Some(&other), v4), "sbc.example.com:5062");
        names.clear();
        assert_eq!(names.sent_by(Some(&other), v4), "edge.example.com:5062");
        assert_eq!(
            names.bare(&Host::parse("[2001:db8::1]").unwrap()),
            "2001:db8::1"
        );
        assert_eq!(
            names.bare(&Host::parse("Carrier.Example").unwrap()),
            "carrier.example"
        );
    }

    #[test]
    fn a_trunks_text_is_written_once_and_shares_its_credentials() {
        let text = r#"
[daemon]
listen = ["udp:127.0.0.1:5060"]

[trunks.carrier]
domain = "carrier.example"
direction = "outbound"
username = "user"
password = "s3cret-pw"
termination_uri = "sip:term.example:5070"
from_domain = "caller.example"

[trunks.plain]
domain = "plain.example"
direction = "outbound"
"#;
        let config = crate::config::load_str(
            std::path::Path::new("t.toml"),
            text,
            &crate::config::LoadOptions::default(),
        )
        .unwrap_or_else(|errors| panic!("{errors}"));
        let mut names = Names::default();
        let carrier = names.trunk(&config.trunks["carrier"]);
        assert_eq!(
            (carrier.host.as_str(), carrier.host_port.as_str()),
            ("term.example", "term.example:5070")
        );
        assert_eq!(carrier.from_domain, "caller.example");
        assert_eq!(carrier.server_name, "carrier.example");
        let again = names.trunk(&config.trunks["carrier"]);
        assert!(Arc::ptr_eq(&carrier, &again));
        let credentials = carrier.credentials.as_ref().expect("credentials");
        assert_eq!(credentials.username, "user");
        assert!(!format!("{carrier:?}").contains("s3cret-pw"));
        let plain = names.trunk(&config.trunks["plain"]);
        assert_eq!(
            (plain.host.as_str(), plain.host_port.as_str()),
            ("plain.example", "plain.example")
        );
        assert_eq!(plain.from_domain, "plain.example");
        assert!(plain.credentials.is_none());
        names.clear();
        assert!(!Arc::ptr_eq(
            &carrier,
            &names.trunk(&config.trunks["carrier"])
        ));
    }
}
