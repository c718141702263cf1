//! What the status log says about each trunk and about the daemon.
//!
//! Lines are `key=value` pairs, the trunk's line beginning with `trunk=<id>`, so they are
//! read by eye and by `grep`/`awk` alike. Nothing here ever holds a secret: a status is
//! built from the fields listed below, never from a whole `Trunk`.

use std::fmt;
use std::time::Duration;

use std::sync::atomic::Ordering;

use crate::config::{Direction, Transport, Trunk, format_duration};
use crate::inbound::TrunkCounters;
use crate::trunk::keepalives::KeepaliveStatus;
use crate::trunk::registration;
use crate::trunk::registrations::RegistrationStatus;

/// Where a trunk stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrunkState {
    /// `enabled = false`: configured, validated, and left alone.
    Disabled,
    /// Enabled and not registering (`register = false`, or waiting to start).
    Idle,
    /// Enabled and registering: where its registration stands.
    Registration(registration::State),
}

impl TrunkState {
    pub fn as_str(self) -> &'static str {
        match self {
            TrunkState::Disabled => "disabled",
            TrunkState::Idle => "idle",
            TrunkState::Registration(state) => state.as_str(),
        }
    }
}

/// One trunk's line in the status log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkStatus {
    pub id: String,
    pub state: TrunkState,
    pub direction: Direction,
    pub transport: Transport,
    pub next_hop: String,
    pub register: bool,
    pub options_interval: Duration,
    pub numbers: usize,
    pub max_channels: u32,
    pub name: String,
    /// Registration details when the trunk registers.
    pub registration: Option<RegistrationStatus>,
    /// Inbound call counters (channels in use, admitted, rejected).
    pub calls: Option<CallCounts>,
    /// The OPTIONS keepalive, when the trunk pings.
    pub options: Option<KeepaliveStatus>,
    /// Proven reachable once: OPTIONS answered or REGISTER succeeded.
    pub verified: bool,
    /// With `[cluster]`: the link to Redis and what the hosts share.
    pub cluster: Option<ClusterStatus>,
}

/// A trunk's share of the cluster, as this host knows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClusterStatus {
    /// Redis answers and is trusted (`cluster=ok`), or this host decides alone
    /// (`cluster=degraded`).
    pub ok: bool,
    /// For a trunk that registers: the host that does (`None`: not known yet).
    pub registrant: Option<Option<String>>,
    /// This host is the trunk's registrant.
    pub mine: bool,
    /// Channels in use on every live host, as of the last heartbeat.
    pub channels: Option<u32>,
}

/// A trunk's inbound counters as read at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CallCounts {
    pub channels: u32,
    pub calls: u64,
    pub rejected_source: u64,
    pub rejected_busy: u64,
    pub rejected_number: u64,
    pub rejected_other: u64,
    /// Outbound calls sent to the trunk, calls that could have gone to it and did not
    /// (skipped), and calls that left it for the next trunk.
    pub calls_out: u64,
    pub rejected_out: u64,
    pub failovers: u64,
}

impl CallCounts {
    pub fn of(counters: &TrunkCounters) -> Self {
        let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
        CallCounts {
            channels: counters.channels(),
            calls: load(&counters.calls),
            rejected_source: load(&counters.rejected_source),
            rejected_busy: load(&counters.rejected_busy),
            rejected_number: load(&counters.rejected_number),
            rejected_other: load(&counters.rejected_other),
            calls_out: load(&counters.calls_out),
            rejected_out: load(&counters.rejected_out),
            failovers: load(&counters.failovers),
        }
    }
}

impl TrunkStatus {
    pub fn new(trunk: &Trunk, state: TrunkState) -> Self {
        TrunkStatus {
            id: trunk.id.clone(),
            state,
            direction: trunk.direction,
            transport: trunk.transport,
            next_hop: trunk.next_hop(),
            register: trunk.register,
            options_interval: trunk.options_interval,
            numbers: trunk.numbers.len(),
            max_channels: trunk.max_channels,
            name: trunk.name().to_owned(),
            registration: None,
            calls: None,
            options: None,
            verified: false,
            cluster: None,
        }
    }

    /// The trunk needs attention: its registration is failing (`backoff`, `auth_failed`,
    /// `rejected`) or its keepalive says `down` (what the summary counts as
    /// `register_failing` and `options_down`). Disabled, idle, registering, registered
    /// and `options=unknown` trunks are not: at start every trunk is one of those.
    pub fn in_trouble(&self) -> bool {
        let failing = matches!(self.state, TrunkState::Registration(state) if state.is_failing());
        let down = self
            .options
            .is_some_and(|options| options.state == crate::trunk::keepalive::State::Down);
        failing || down
    }

    /// What the line says, but for the values that move with time alone (`expires_in`,
    /// `retry_in`) or with every ping (`rtt_ms`, `srtt_ms`): two statuses with the same key
    /// would read the same to an operator. A hash, so a daemon keeps 8 bytes per trunk.
    pub fn line_key(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (
            &self.id,
            self.state.as_str(),
            self.direction,
            self.transport,
            &self.next_hop,
            self.register,
            self.options_interval,
            self.numbers,
            self.max_channels,
            &self.name,
        )
            .hash(&mut hasher);
        self.calls.hash(&mut hasher);
        self.options
            .map(|options| options.state.as_str())
            .hash(&mut hasher);
        self.verified.hash(&mut hasher);
        self.cluster
            .as_ref()
            .map(|cluster| (cluster.ok, &cluster.registrant))
            .hash(&mut hasher);
        self.registration
            .as_ref()
            .map(|registration| registration.last_code)
            .hash(&mut hasher);
        hasher.finish()
    }

    /// Adds what the registration knows: its state, and the next hop actually used.
    pub fn with_registration(mut self, registration: Option<RegistrationStatus>) -> Self {
        if let Some(status) = registration {
            self.state = TrunkState::Registration(status.state);
            self.next_hop = format!("{}:{}", self.transport, status.next_hop);
        }
        self.registration = registration;
        self
    }
}

impl fmt::Display for TrunkStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = match self.max_channels {
            0 => "unlimited".to_owned(),
            max => max.to_string(),
        };
        write!(
            f,
            "trunk={} state={} direction={} next_hop={} register={} options_interval={} numbers={} max_channels={max} name=",
            self.id,
            self.state.as_str(),
            self.direction,
            self.next_hop,
            if self.register { "yes" } else { "no" },
            format_duration(self.options_interval),
            self.numbers,
        )?;
        write_quoted(f, &self.name)?;
        if let Some(calls) = &self.calls {
            write!(
                f,
                " channels={}/{max} calls={} rejected_source={} rejected_busy={} rejected_number={} rejected_other={} calls_out={} rejected_out={} failovers={}",
                calls.channels,
                calls.calls,
                calls.rejected_source,
                calls.rejected_busy,
                calls.rejected_number,
                calls.rejected_other,
                calls.calls_out,
                calls.rejected_out,
                calls.failovers,
            )?;
        }
        match &self.options {
            Some(options) => {
                write!(f, " options={}", options.state.as_str())?;
                if let Some(rtt) = options.rtt_last {
                    write!(f, " rtt_ms={}", rtt.as_millis())?;
                }
                if let Some(srtt) = options.rtt_smoothed {
                    write!(f, " srtt_ms={}", srtt.as_millis())?;
                }
            }
            None if self.options_interval.is_zero() || self.state == TrunkState::Disabled => {
                f.write_str(" options=off")?;
            }
            None => f.write_str(" options=unknown")?,
        }
        write!(f, " verified={}", if self.verified { "yes" } else { "no" })?;
        if let Some(registration) = &self.registration {
            if let Some(expires_in) = registration.expires_in {
                write!(f, " expires_in={}", expires_in.as_secs())?;
            }
            if let Some(code) = registration.last_code {
                write!(f, " last_code={code}")?;
            }
            if let Some(retry_in) = registration.retry_in {
                write!(f, " retry_in={}", retry_in.as_secs())?;
            }
        }
        if let Some(cluster) = &self.cluster {
            let link = if cluster.ok { "ok" } else { "degraded" };
            write!(f, " cluster={link}")?;
            if let Some(registrant) = &cluster.registrant {
                write!(f, " registrant={}", registrant.as_deref().unwrap_or("-"))?;
            }
            if let Some(channels) = cluster.channels {
                write!(f, " cluster_channels={channels}")?;
            }
        }
        Ok(())
    }
}

/// The daemon-wide line that closes each status report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub trunks: usize,
    pub enabled: usize,
    pub generation: u64,
    /// Calls in progress, all trunks, and of them the outbound ones.
    pub active_calls: usize,
    pub active_outbound: usize,
    /// Requests from sources no trunk allows, since start.
    pub unknown_source: u64,
    /// Datagrams that did not scan as SIP, since start.
    pub malformed: u64,
    /// Trunks that keep a registration, and how many of them are registered now or
    /// failing (auth_failed, rejected or backing off).
    pub registering: usize,
    pub registered: usize,
    pub register_failing: usize,
    /// Trunks whose OPTIONS keepalive says the carrier is down.
    pub options_down: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "summary trunks={} enabled={} disabled={} config_generation={} active_calls={} active_outbound={} unknown_source={} malformed={} registered={}/{} register_failing={} options_down={}",
            self.trunks,
            self.enabled,
            self.trunks - self.enabled,
            self.generation,
            self.active_calls,
            self.active_outbound,
            self.unknown_source,
            self.malformed,
            self.registered,
            self.registering,
            self.register_failing,
            self.options_down,
        )
    }
}

impl Summary {
    /// The one-line `STATUS=` text for systemd (`systemctl status` shows it): what an
    /// operator needs at a glance, the trouble first when there is any.
    pub fn systemd_status(&self) -> String {
        let mut status = format!(
            "{} trunks ({} enabled, {} disabled)",
            self.trunks,
            self.enabled,
            self.trunks - self.enabled,
        );
        if self.registering > 0 {
            status.push_str(&format!(
                ", {}/{} registered",
                self.registered, self.registering
            ));
            if self.register_failing > 0 {
                status.push_str(&format!(" ({} failing)", self.register_failing));
            }
        }
        if self.options_down > 0 {
            status.push_str(&format!(", {} down by OPTIONS", self.options_down));
        }
        status.push_str(&format!(
            ", {} calls, config generation {}",
            self.active_calls, self.generation
        ));
        status
    }
}

/// Writes a value in double quotes, escaping `"`, `\` and control characters, so a free
/// text field can never break the `key=value` shape of a line.
fn write_quoted(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in text.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_status_names_registrations_and_trouble_first() {
        let quiet = Summary {
            trunks: 3,
            enabled: 2,
            generation: 4,
            active_calls: 5,
            active_outbound: 2,
            unknown_source: 0,
            malformed: 0,
            registering: 0,
            registered: 0,
            register_failing: 0,
            options_down: 0,
        };
        assert_eq!(
            quiet.systemd_status(),
            "3 trunks (2 enabled, 1 disabled), 5 calls, config generation 4"
        );
        let troubled = Summary {
            registering: 2,
            registered: 1,
            register_failing: 1,
            options_down: 1,
            ..quiet
        };
        assert_eq!(
            troubled.systemd_status(),
            "3 trunks (2 enabled, 1 disabled), 1/2 registered (1 failing), \
             1 down by OPTIONS, 5 calls, config generation 4"
        );
        assert!(
            troubled
                .to_string()
                .ends_with("malformed=0 registered=1/2 register_failing=1 options_down=1")
        );
    }

    #[test]
    fn trunk_line_starts_with_trunk_id_and_quotes_the_name() {
        let status = TrunkStatus {
            id: "carrier-x".into(),
            state: TrunkState::Idle,
            direction: Direction::Both,
            transport: Transport::Udp,
            next_hop: "udp:sip.example.net:5060".into(),
            register: true,
            options_interval: Duration::from_secs(30),
            numbers: 2,
            max_channels: 0,
            name: "Carrier \"X\"\nUS".into(),
            registration: None,
            calls: None,
            options: None,
            verified: false,
            cluster: None,
        };
        assert_eq!(
            status.to_string(),
            "trunk=carrier-x state=idle direction=both next_hop=udp:sip.example.net:5060 \
             register=yes options_interval=30s numbers=2 max_channels=unlimited \
             name=\"Carrier \\\"X\\\"\\u{a}US\" options=unknown verified=no"
        );
        let with_options = TrunkStatus {
            options: Some(KeepaliveStatus {
                state: crate::trunk::keepalive::State::Up,
                rtt_last: Some(Duration::from_millis(12)),
                rtt_smoothed: Some(Duration::from_micros(10_500)),
                answered: true,
            }),
            verified: true,
            calls: Some(CallCounts {
                channels: 3,
                calls: 40,
                rejected_source: 1,
                rejected_busy: 2,
                rejected_number: 3,
                rejected_other: 4,
                calls_out: 5,
                rejected_out: 6,
                failovers: 7,
            }),
            ..status
        };
        let line = with_options.to_string();
        assert!(
            line.ends_with(
                " channels=3/unlimited calls=40 rejected_source=1 rejected_busy=2 \
                 rejected_number=3 rejected_other=4 calls_out=5 rejected_out=6 failovers=7 options=up rtt_ms=12 srtt_ms=10 verified=yes"
            ),
            "{line}"
        );
        let in_cluster = TrunkStatus {
            cluster: Some(ClusterStatus {
                ok: false,
                registrant: Some(Some("edge-2".into())),
                mine: false,
                channels: Some(9),
            }),
            ..with_options
        };
        let line = in_cluster.to_string();
        assert!(
            line.ends_with(" verified=yes cluster=degraded registrant=edge-2 cluster_channels=9"),
            "{line}"
        );
    }

    #[test]
    fn line_key_ignores_what_moves_by_itself_and_trouble_is_failing_or_down() {
        use crate::trunk::keepalive::State as Options;
        let registered = TrunkStatus {
            id: "carrier-x".into(),
            state: TrunkState::Registration(registration::State::Registered),
            direction: Direction::Both,
            transport: Transport::Udp,
            next_hop: "udp:192.0.2.1:5060".into(),
            register: true,
            options_interval: Duration::from_secs(30),
            numbers: 0,
            max_channels: 0,
            name: "carrier-x".into(),
            registration: Some(RegistrationStatus {
                state: registration::State::Registered,
                expires_in: Some(Duration::from_secs(600)),
                last_code: Some(200),
                retry_in: None,
                next_hop: "192.0.2.1:5060".parse().unwrap(),
            }),
            calls: Some(CallCounts::default()),
            options: Some(KeepaliveStatus {
                state: Options::Up,
                rtt_last: Some(Duration::from_millis(12)),
                rtt_smoothed: Some(Duration::from_millis(12)),
                answered: true,
            }),
            verified: true,
            cluster: None,
        };
        let key = registered.line_key();
        let mut later = registered.clone();
        later.registration.as_mut().unwrap().expires_in = Some(Duration::from_secs(590));
        later.options.as_mut().unwrap().rtt_last = Some(Duration::from_millis(30));
        later.options.as_mut().unwrap().rtt_smoothed = Some(Duration::from_millis(14));
        assert_eq!(
            later.line_key(),
            key,
            "time and round trips move by themselves"
        );
        later.calls.as_mut().unwrap().calls = 1;
        assert_ne!(later.line_key(), key, "a call is a change");
        assert!(!registered.in_trouble());

        let mut down = registered.clone();
        down.options.as_mut().unwrap().state = Options::Down;
        assert!(down.in_trouble());
        let mut backoff = registered;
        backoff.state = TrunkState::Registration(registration::State::Backoff);
        assert!(backoff.in_trouble());
        backoff.state = TrunkState::Registration(registration::State::Registering);
        assert!(!backoff.in_trouble(), "registering is how it begins");
    }
}
