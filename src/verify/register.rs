//! Step 5: REGISTER with verify's own Contact, through the registrar's challenge, then
//! the same binding removed again (Expires: 0), by the daemon's own registration machine.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::config::{self, Config, Trunk};
use crate::io::clock;
use crate::sip::Transmit;
use crate::sip::digest;
use crate::sip::scan::Scan;
use crate::sip::transaction::TimerValues;
use crate::trunk::registration::{self, Registration};

use super::dns::Resolution;
use super::drive::{Observed, Probe, drive, probe_limit};
use super::report::{Status, Step};
use super::transport::Link;
use super::{seed, user_agent};

/// Expiry asked for verify's own short-lived binding; a registrar's 423 Min-Expires raises
/// it. It is removed at once anyway; this only bounds a leftover if the removal fails.
const VERIFY_EXPIRES: u32 = 60;

/// A challenge the registrar sent, as the operator needs to see it (no nonce).
#[derive(Debug, Clone, PartialEq, Eq)]
enum SeenChallenge {
    Digest {
        code: u16,
        realm: String,
        algorithm: &'static str,
        qop: String,
        stale: bool,
    },
    /// No Digest challenge trunkd can answer; why.
    Unusable { code: u16, why: String },
}

impl std::fmt::Display for SeenChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SeenChallenge::Digest {
                code,
                realm,
                algorithm,
                qop,
                stale,
            } => {
                write!(
                    f,
                    "{code} realm \"{realm}\", algorithm {algorithm}, qop {qop}"
                )?;
                if *stale {
                    f.write_str(", stale")?;
                }
                Ok(())
            }
            SeenChallenge::Unusable { code, why } => write!(f, "{code}: {why}"),
        }
    }
}

struct RegisterProbe {
    registration: Registration,
    unregistering: bool,
    challenges: Vec<SeenChallenge>,
    /// (branch, CSeq) of challenges already noted: a retransmitted 401 is one challenge.
    challenged: Vec<(String, u32)>,
    outcome: Option<(registration::State, Option<u16>, String)>,
}

impl Probe for RegisterProbe {
    fn method(&self) -> &'static str {
        "REGISTER"
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.registration.poll_transmit()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.unregistering {
            self.registration.transaction_deadline()
        } else {
            self.registration.poll_timeout()
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.registration.handle_timeout(now);
    }

    fn handle_transport_error(&mut self, now: Instant, why: &str) {
        self.registration.handle_transport_error(now, why);
    }

    fn owns(&self, call_id: &str) -> bool {
        self.registration.call_id() == call_id
    }

    fn handle_response(&mut self, now: Instant, source: SocketAddr, message: &Scan<'_, '_>) {
        let Some(view) = crate::trunk::registrations::response_view(message, source) else {
            return;
        };
        if matches!(view.response.code, 401 | 407) {
            let key = (view.response.branch.to_owned(), view.response.cseq);
            if !self.challenged.contains(&key) {
                self.challenged.push(key);
                self.challenges.push(seen_challenge(&view));
            }
        }
        self.registration.handle_response(now, &view);
    }

    fn finished(&mut self) -> bool {
        while let Some(event) = self.registration.poll_event() {
            if let registration::Event::StateChanged {
                state,
                code,
                reason,
            } = event
            {
                let decided = if self.unregistering {
                    state == registration::State::Unregistered
                } else {
                    state != registration::State::Registering
                };
                if decided && self.outcome.is_none() {
                    self.outcome = Some((state, code, reason));
                }
            }
        }
        if self.unregistering {
            self.registration.is_finished()
        } else {
            self.outcome.is_some()
        }
    }
}

fn seen_challenge(view: &registration::RegisterResponse<'_>) -> SeenChallenge {
    let values = if view.response.code == 407 {
        &view.proxy_authenticate
    } else {
        &view.www_authenticate
    };
    let mut first_error = None;
    let parsed: Vec<_> = values
        .iter()
        .filter_map(|value| match digest::parse_challenge(value) {
            Ok(challenge) => Some(challenge),
            Err(error) => {
                first_error.get_or_insert(error.to_string());
                None
            }
        })
        .collect();
    let offered = parsed.first().cloned();
    match digest::preferred(parsed) {
        Some(challenge) => SeenChallenge::Digest {
            code: view.response.code,
            realm: challenge.realm.to_string(),
            algorithm: challenge.algorithm.as_str(),
            qop: match challenge.qop {
                None => "none (RFC 2069)".to_owned(),
                Some(options) => {
                    let mut list = Vec::new();
                    if options.auth {
                        list.push("auth");
                    }
                    if options.auth_int {
                        list.push("auth-int");
                    }
                    list.join(",")
                }
            },
            stale: challenge.stale,
        },
        None => SeenChallenge::Unusable {
            code: view.response.code,
            why: match (offered, first_error) {
                (Some(challenge), _) => challenge
                    .answerable()
                    .err()
                    .map_or_else(|| "no usable Digest challenge".into(), |e| e.to_string()),
                (None, Some(error)) => error,
                (None, None) => "no WWW-Authenticate/Proxy-Authenticate header".into(),
            },
        },
    }
}

pub(super) async fn register_steps(
    config: &Config,
    trunk: &Trunk,
    resolution: &Resolution,
    link: &mut Link,
    observed: &mut Observed,
) -> Vec<Step> {
    let timers = config.daemon.timers;
    let username = trunk.username.clone().unwrap_or_default();
    let local = crate::trunk::next_hop::sent_by(link.advertised);
    let registrar = crate::trunk::next_hop::domain_uri(trunk);
    let aor = format!("sip:{username}@{}", trunk.domain);
    let contact = format!("sip:{username}@{local};transport={}", trunk.transport);
    let params = registration::Params {
        registrar: registrar.clone(),
        aor: aor.clone(),
        contact: contact.clone(),
        via_sent_by: local,
        transport: trunk.transport,
        next_hop: resolution.chosen,
        server_name: resolution.server_name.clone(),
        username: username.clone(),
        password: trunk
            .password
            .clone()
            .unwrap_or_else(|| config::Secret::new("")),
        auth_realm: trunk.auth_realm.clone(),
        expires: VERIFY_EXPIRES,
        user_agent: user_agent().into(),
        // verify reports NAT (step nat); it does not re-register a corrected Contact.
        learn_public_address: false,
        retry_min: config.daemon.register_retry_min,
        retry_max: config.daemon.register_retry_max,
    };
    let mut probe = RegisterProbe {
        registration: Registration::new(
            params,
            timers,
            seed() ^ 0x5e6,
            clock::now(),
            Duration::ZERO,
        ),
        unregistering: false,
        challenges: Vec::new(),
        challenged: Vec::new(),
        outcome: None,
    };
    let limit = probe_limit(timers);
    let foreign_before = observed.foreign.len();
    let driven = drive(link, &mut probe, observed, limit).await;
    let mut steps = Vec::new();
    let mut step = register_outcome(trunk, &probe, driven.as_ref().err(), timers);
    let hints = std::mem::take(&mut step.details);
    step.details.push(format!(
        "REGISTER {registrar} for {aor}, Contact <{contact}> (verify's own), Expires {VERIFY_EXPIRES}"
    ));
    for challenge in &probe.challenges {
        step.details.push(format!("challenge: {challenge}"));
    }
    if let Some(realm) = first_realm(&probe.challenges) {
        step.details.push(match &trunk.auth_realm {
            Some(pinned) if pinned == realm => "auth_realm matches the challenge".to_owned(),
            Some(pinned) => format!("auth_realm is \"{pinned}\""),
            None => "no auth_realm set: trunkd answers a challenge for any realm (set \
                     auth_realm to pin it)"
                .to_owned(),
        });
    }
    for (source, code) in &observed.foreign[foreign_before..] {
        step.details.push(format!(
            "a {code} came from {source}, not from {}: the daemon ignores such responses",
            resolution.chosen
        ));
    }
    if !trunk.register {
        step.details.push(
            "register = false: the daemon does not register this trunk; verify checked the \
             credentials anyway"
                .into(),
        );
    }
    step.details.extend(hints);
    let registered = probe.registration.has_binding();
    steps.push(step);
    if !registered {
        return steps;
    }

    // Remove exactly our Contact (Expires: 0): the daemon's binding, if any, stays.
    probe.unregistering = true;
    probe.outcome = None;
    probe.challenges.clear();
    probe.registration.unregister(clock::now());
    let driven = drive(link, &mut probe, observed, limit).await;
    let left = format!("verify's binding lapses by itself within {VERIFY_EXPIRES} s");
    steps.push(match (&probe.outcome, driven) {
        (Some((_, Some(code), reason)), _) if (200..300).contains(code) => Step::new(
            Status::Ok,
            "unregister",
            format!("binding removed ({reason}); nothing left behind"),
        ),
        (Some((_, _, reason)), _) => Step::new(
            Status::Warn,
            "unregister",
            format!("un-REGISTER failed: {reason}; {left}"),
        ),
        (None, result) => Step::new(
            Status::Warn,
            "unregister",
            format!(
                "un-REGISTER got no outcome{}; {left}",
                result
                    .err()
                    .map(|why| format!(" ({why})"))
                    .unwrap_or_default()
            ),
        ),
    });
    steps
}

fn first_realm(challenges: &[SeenChallenge]) -> Option<&str> {
    challenges.iter().find_map(|challenge| match challenge {
        SeenChallenge::Digest { realm, .. } => Some(realm.as_str()),
        SeenChallenge::Unusable { .. } => None,
    })
}

/// What the first REGISTER exchange came to, in the operator's terms.
fn register_outcome(
    trunk: &Trunk,
    probe: &RegisterProbe,
    limit_hit: Option<&String>,
    timers: TimerValues,
) -> Step {
    use registration::State;
    let username = trunk.username.as_deref().unwrap_or_default();
    let Some((state, code, reason)) = &probe.outcome else {
        let why = limit_hit.map_or("no outcome", String::as_str);
        return Step::new(Status::Fail, "register", why.to_owned());
    };
    let state_name = state.as_str();
    match state {
        State::Registered => {
            let granted = probe
                .registration
                .expires_in(clock::now())
                .map(|left| left.as_secs_f64().round() as u64)
                .unwrap_or_default();
            Step::new(
                Status::Ok,
                "register",
                format!("registered {username}: {reason}, granted {granted} s"),
            )
        }
        State::AuthFailed => {
            let realm = first_realm(&probe.challenges);
            let (summary, hint) = match (&trunk.auth_realm, realm) {
                (Some(pinned), Some(realm)) if pinned != realm => (
                    format!(
                        "wrong realm: the registrar challenges for realm \"{realm}\", but \
                         auth_realm is \"{pinned}\", so trunkd does not answer → state \
                         {state_name}"
                    ),
                    format!("set auth_realm = \"{realm}\" if that realm is right"),
                ),
                _ if probe
                    .challenges
                    .iter()
                    .all(|c| matches!(c, SeenChallenge::Unusable { .. })) =>
                {
                    (
                        format!(
                            "the registrar's challenge cannot be answered ({reason}) → state \
                             {state_name}"
                        ),
                        "trunkd answers Digest with MD5, SHA-256 or SHA-512-256 and qop=auth"
                            .to_owned(),
                    )
                }
                _ if probe.challenges.len() >= 2 => (
                    format!(
                        "wrong password (or username): the registrar refused our answer to \
                         its challenge ({reason}) → state {state_name}"
                    ),
                    format!(
                        "check username \"{username}\" and password/password_file (the \
                         password is never shown)"
                    ),
                ),
                _ => (
                    format!("authentication failed: {reason} → state {state_name}"),
                    String::new(),
                ),
            };
            let step = Step::new(Status::Fail, "register", summary);
            if hint.is_empty() {
                step
            } else {
                step.detail(hint)
            }
        }
        State::Rejected => {
            let after_answer = !probe.challenges.is_empty();
            let hint = match (code, after_answer) {
                (Some(403), true) => {
                    "403 to our answer: the carrier refuses these credentials (often a wrong \
                     password) or this account"
                }
                (Some(404), _) => {
                    "404: the carrier does not know this user at this domain (check username \
                     and domain)"
                }
                _ => "the carrier refuses this account",
            };
            Step::new(
                Status::Fail,
                "register",
                format!("rejected: {reason} → state {state_name}"),
            )
            .detail(hint)
        }
        State::Backoff if code.is_none() && reason.contains("timeout") => Step::new(
            Status::Fail,
            "register",
            format!(
                "timeout: no response to REGISTER within 64·T1 = {} ms → state {state_name}",
                (64 * timers.t1).as_millis()
            ),
        ),
        State::Backoff | State::Unregistered | State::Registering => Step::new(
            Status::Fail,
            "register",
            format!("REGISTER failed: {reason} → state {state_name}"),
        ),
    }
}
