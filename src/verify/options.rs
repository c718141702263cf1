//! Step 4: one OPTIONS ping (RFC 3261 §11), sent by the daemon's own keepalive machine.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::config::Trunk;
use crate::io::clock;
use crate::sip::Transmit;
use crate::sip::scan::{Method, Scan, StartLine};
use crate::sip::transaction::TimerValues;
use crate::trunk::keepalive::{self, Keepalive};

use super::dns::Resolution;
use super::drive::{Observed, Probe, drive, probe_limit};
use super::report::{Status, Step, millis};
use super::transport::Link;
use super::{seed, user_agent};

struct OptionsProbe {
    keepalive: Keepalive,
    outcome: Option<(keepalive::State, Option<u16>, String)>,
}

impl Probe for OptionsProbe {
    fn method(&self) -> &'static str {
        "OPTIONS"
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.keepalive.poll_transmit()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.keepalive.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.keepalive.handle_timeout(now);
    }

    fn handle_transport_error(&mut self, now: Instant, why: &str) {
        self.keepalive.handle_transport_error(now, why);
    }

    fn owns(&self, call_id: &str) -> bool {
        self.keepalive.call_id() == Some(call_id)
    }

    fn handle_response(&mut self, now: Instant, source: SocketAddr, message: &Scan<'_, '_>) {
        let (Some(code), Ok(cseq), Ok(via)) =
            (message.status_code(), message.cseq(), message.top_via())
        else {
            return;
        };
        if cseq.method != Method::Options {
            return;
        }
        let reason = match message.start_line() {
            StartLine::Response { reason, .. } => String::from_utf8_lossy(reason).into_owned(),
            StartLine::Request { .. } => String::new(),
        };
        let branch = via
            .branch
            .and_then(|branch| std::str::from_utf8(branch).ok())
            .unwrap_or_default();
        self.keepalive.handle_response(
            now,
            &crate::sip::transaction::ResponseView {
                source,
                code,
                reason: &reason,
                branch,
                cseq: cseq.sequence,
            },
        );
    }

    fn finished(&mut self) -> bool {
        while let Some(event) = self.keepalive.poll_event() {
            if let keepalive::Event::StateChanged {
                state,
                code,
                reason,
            } = event
            {
                self.outcome.get_or_insert((state, code, reason));
            }
        }
        self.outcome.is_some()
    }
}

pub(super) async fn options_step(
    trunk: &Trunk,
    resolution: &Resolution,
    link: &mut Link,
    timers: TimerValues,
    observed: &mut Observed,
) -> Step {
    let local = crate::trunk::next_hop::sent_by(link.advertised);
    let target = crate::trunk::next_hop::domain_uri(trunk);
    let from_uri = match &trunk.options_from {
        Some(uri) => uri.to_string(),
        None => keepalive::default_from_uri(&local),
    };
    let params = keepalive::Params {
        request_uri: target.clone(),
        from_uri,
        to_uri: target.clone(),
        via_sent_by: local,
        transport: trunk.transport,
        next_hop: resolution.chosen,
        server_name: resolution.server_name.clone(),
        user_agent: user_agent(),
        interval: keepalive::MIN_INTERVAL,
        // The first ping decides: up on an answer, down on a failure.
        down_after: 1,
        up_after: 1,
        failure_codes: trunk.options_failure_codes.clone(),
        // A diagnosis waits the transaction out (Timer F), whatever options_timeout says,
        // and reports how long that was.
        timeout: Duration::ZERO,
    };
    // The first ping is due at a random point of one interval after the instant given:
    // an instant one interval back makes it due now.
    let now = clock::now();
    let base = now.checked_sub(keepalive::MIN_INTERVAL).unwrap_or(now);
    let mut probe = OptionsProbe {
        keepalive: Keepalive::new(params, timers, seed() ^ 0x0b7, base),
        outcome: None,
    };
    let foreign_before = observed.foreign.len();
    let sent = drive(link, &mut probe, observed, probe_limit(timers)).await;
    let mut step = match (&probe.outcome, sent) {
        (Some((keepalive::State::Up, Some(code), reason)), _) => {
            let rtt = probe.keepalive.rtt_last().map(millis).unwrap_or_default();
            let mut step = Step::new(
                Status::Ok,
                "options",
                format!("{reason} in {rtt} from {}", resolution.chosen),
            );
            if probe.keepalive.rtt_last_retransmitted() {
                step.details.push(
                    "the request was retransmitted: the time runs from the first copy and \
                     may overstate the round trip"
                        .into(),
                );
            }
            if !(200..300).contains(code) {
                step.details.push(format!(
                    "not a 2xx, but any final response other than options_failure_codes {:?} \
                     shows the carrier's SIP stack is alive",
                    trunk.options_failure_codes
                ));
            }
            step
        }
        (Some((_, Some(code), reason)), _) => Step::new(
            Status::Fail,
            "options",
            format!(
                "{reason} from {}: {code} is one of options_failure_codes {:?}",
                resolution.chosen, trunk.options_failure_codes
            ),
        ),
        (Some((_, None, reason)), Ok(sent)) if reason == "timeout" => Step::new(
            Status::Fail,
            "options",
            format!(
                "timeout: no response from {} {}:{} within 64·T1 = {} ms ({})",
                trunk.transport,
                resolution.chosen.ip(),
                resolution.chosen.port(),
                (64 * timers.t1).as_millis(),
                crate::io::count_of(sent as usize, "transmission")
            ),
        ),
        (Some((_, None, reason)), _) => Step::new(
            Status::Fail,
            "options",
            format!("{reason} (to {})", resolution.chosen),
        ),
        (None, Err(why)) => Step::new(Status::Fail, "options", why),
        (None, Ok(_)) => Step::new(Status::Fail, "options", "no outcome"),
    };
    for (source, code) in &observed.foreign[foreign_before..] {
        step.details.push(format!(
            "a {code} came from {source}, not from {}: the daemon ignores such responses",
            resolution.chosen
        ));
    }
    if trunk.options_interval.is_zero() {
        step.details
            .push("keepalives are off for this trunk (options_interval = 0)".into());
    }
    step
}
