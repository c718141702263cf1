//! `GET /metrics` (issue 16): the Prometheus text exposition format (version 0.0.4),
//! rendered at scrape time from what the control path already holds — the hot path's
//! atomic counters, registrations, keepalives, backend checks — so metrics add no work to
//! any message. A trunk removed by a reload is simply no longer rendered.
//!
//! Names follow Prometheus conventions: `trunkd_` prefix, base units (`_seconds`),
//! counters end in `_total`, and labels are bounded (trunk id, backend URI, a fixed set
//! of reasons, directions and states), never a Call-ID or a number.
//!
//! The format is written by hand (a few families, two escaping rules) rather than through
//! a client library: nothing is registered or updated, every value is read at render time.

use std::fmt::{self, Write};
use std::time::{Duration, Instant};

use super::Control;
use crate::status::TrunkStatus;
use crate::trunk::{keepalive, registration};

/// The `Content-Type` of [`Control::metrics`]'s text.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The registration states, in the order each trunk's state set lists them.
const REGISTRATION_STATES: [registration::State; 6] = [
    registration::State::Registered,
    registration::State::Registering,
    registration::State::AuthFailed,
    registration::State::Rejected,
    registration::State::Backoff,
    registration::State::Unregistered,
];

/// What only the shell knows, as the wall clock: the last config load (the one at start
/// counts), whether it was applied and when.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LastReload {
    pub success: bool,
    /// Seconds since the Unix epoch.
    pub timestamp_seconds: f64,
}

impl Control {
    /// Every metric, in the text exposition format ([`CONTENT_TYPE`]).
    pub(crate) fn metrics(&self, now: Instant, last_reload: LastReload) -> String {
        let (summary, trunks) = self.statuses(now);
        let mut out = Exposition::default();

        out.family(
            "trunkd_build_info",
            "gauge",
            "Always 1; the version of the running trunkd.",
        );
        out.sample(
            "trunkd_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1,
        );
        out.single(
            "trunkd_config_generation",
            "gauge",
            "The config generation in force (1 at start, +1 per applied reload).",
            summary.generation,
        );
        out.single(
            "trunkd_config_last_reload_success",
            "gauge",
            "1 if the last config load (at start or reload) was applied, 0 if it was rejected.",
            u8::from(last_reload.success),
        );
        out.single(
            "trunkd_config_last_reload_timestamp_seconds",
            "gauge",
            "When the last config load was applied or rejected, in seconds since the Unix epoch.",
            Float(last_reload.timestamp_seconds),
        );
        out.single(
            "trunkd_unknown_source_total",
            "counter",
            "Requests from sources no trunk allows.",
            summary.unknown_source,
        );
        out.single(
            "trunkd_malformed_total",
            "counter",
            "Datagrams that did not scan as SIP.",
            summary.malformed,
        );
        out.family(
            "trunkd_active_calls",
            "gauge",
            "Calls in progress (setting up or answered).",
        );
        let inbound = summary.active_calls.saturating_sub(summary.active_outbound);
        out.sample("trunkd_active_calls", &[("direction", "inbound")], inbound);
        out.sample(
            "trunkd_active_calls",
            &[("direction", "outbound")],
            summary.active_outbound,
        );
        self.backends(&mut out);
        trunk_families(&mut out, &trunks);
        cluster_families(&mut out, &trunks);
        self.options_round_trips(&mut out, &trunks);
        let registering: Vec<_> = trunks
            .iter()
            .filter_map(|t| Some((t.id.as_str(), self.registrations.round_trips(&t.id)?)))
            .collect();
        if !registering.is_empty() {
            out.histogram(
                "trunkd_trunk_register_round_trip_seconds",
                "Round-trip times of the trunk's answered REGISTERs (challenges included).",
                registering
                    .into_iter()
                    .map(|(trunk, histogram)| ([("trunk", trunk)], histogram)),
            );
        }
        let [inbound, outbound] = self.calls.setup_times();
        out.histogram(
            "trunkd_call_setup_seconds",
            "From a call's INVITE to the first answer beyond 100 Trying the caller got (post-dial delay).",
            [("inbound", inbound), ("outbound", outbound)]
                .into_iter()
                .map(|(direction, histogram)| ([("direction", direction)], histogram)),
        );
        if let Some(claims) = self.claim_times() {
            out.histogram(
                "trunkd_cluster_claim_seconds",
                "From an admitted call's channel asked of Redis to the answer: what [cluster] adds to call setup.",
                std::iter::once(([("node", self.cluster_node())], claims)),
            );
        }
        out.text
    }

    /// `trunkd_trunk_options_round_trip_seconds`: every answered ping's round trip, per
    /// pinging trunk (the gauge `trunkd_trunk_options_rtt_seconds` is the last one).
    fn options_round_trips(&self, out: &mut Exposition, trunks: &[TrunkStatus]) {
        const NAME: &str = "trunkd_trunk_options_round_trip_seconds";
        let histograms = || {
            trunks
                .iter()
                .filter_map(|t| Some((t, self.keepalives.rtt_histogram(&t.id)?)))
        };
        if histograms().next().is_none() {
            return;
        }
        out.histogram(
            NAME,
            "Round-trip times of the trunk's answered OPTIONS.",
            histograms().map(|(trunk, histogram)| ([("trunk", trunk.id.as_str())], histogram)),
        );
    }

    fn backends(&self, out: &mut Exposition) {
        let backends = self.backend_statuses();
        if backends.is_empty() {
            return;
        }
        out.family(
            "trunkd_backend_up",
            "gauge",
            "1 if the backend's OPTIONS health checks say up, 0 if down or not decided yet.",
        );
        let mut seen = Vec::new();
        for backend in &backends {
            // One series per configured URI (a URI is checked at its first address).
            if seen.contains(&backend.uri) {
                continue;
            }
            seen.push(backend.uri.clone());
            let up = u8::from(backend.state == keepalive::State::Up);
            out.sample("trunkd_backend_up", &[("backend", &backend.uri)], up);
        }
    }
}

/// With `[cluster]`: whether Redis answers, and per trunk the channels in use on every
/// host and whether this host is the registrant.
fn cluster_families(out: &mut Exposition, trunks: &[TrunkStatus]) {
    let Some(first) = trunks.iter().find_map(|t| t.cluster.as_ref()) else {
        return;
    };
    out.single(
        "trunkd_cluster_up",
        "gauge",
        "1 while Redis answers and is trusted, 0 while this host decides alone (degraded).",
        u8::from(first.ok),
    );
    out.per_trunk(
        trunks,
        "trunkd_trunk_cluster_channels",
        "gauge",
        "Channels in use on every live host of the cluster, as of the last heartbeat.",
        |t| t.cluster.as_ref().and_then(|c| c.channels).unwrap_or(0),
    );
    let registering: Vec<&TrunkStatus> = trunks
        .iter()
        .filter(|t| t.cluster.as_ref().is_some_and(|c| c.registrant.is_some()))
        .collect();
    if !registering.is_empty() {
        out.family(
            "trunkd_trunk_registrant",
            "gauge",
            "1 where this host registers the trunk for the cluster, else 0.",
        );
    }
    for trunk in registering {
        let mine = trunk.cluster.as_ref().is_some_and(|c| c.mine);
        out.sample(
            "trunkd_trunk_registrant",
            &[("trunk", &trunk.id)],
            u8::from(mine),
        );
    }
}

fn trunk_families(out: &mut Exposition, trunks: &[TrunkStatus]) {
    let registering = || trunks.iter().filter(|t| t.register && t.registration_on());
    if registering().next().is_some() {
        out.family(
            "trunkd_trunk_registration_state",
            "gauge",
            "1 for the registration's current state, 0 for the others (trunks that register).",
        );
        for trunk in registering() {
            let current = trunk
                .registration
                .as_ref()
                .map_or(registration::State::Unregistered, |r| r.state);
            for state in REGISTRATION_STATES {
                let labels = [("trunk", trunk.id.as_str()), ("state", state.as_str())];
                let value = u8::from(state == current);
                out.sample("trunkd_trunk_registration_state", &labels, value);
            }
        }
    }
    let pinging = || trunks.iter().filter_map(|t| Some((t, t.options?)));
    if pinging().next().is_some() {
        out.family(
            "trunkd_trunk_options_up",
            "gauge",
            "1 if the trunk's OPTIONS keepalive says up, 0 if down or not decided yet.",
        );
        for (trunk, options) in pinging() {
            let up = u8::from(options.state == keepalive::State::Up);
            out.sample("trunkd_trunk_options_up", &[("trunk", &trunk.id)], up);
        }
    }
    let rtts = || {
        trunks
            .iter()
            .filter_map(|t| Some((t, t.options?.rtt_last?)))
    };
    if rtts().next().is_some() {
        out.family(
            "trunkd_trunk_options_rtt_seconds",
            "gauge",
            "Round-trip time of the trunk's last answered OPTIONS.",
        );
        for (trunk, rtt) in rtts() {
            let labels = [("trunk", trunk.id.as_str())];
            out.sample("trunkd_trunk_options_rtt_seconds", &labels, Seconds(rtt));
        }
    }
    if trunks.is_empty() {
        return;
    }
    let calls = |t: &TrunkStatus| t.calls.unwrap_or_default();
    out.per_trunk(
        trunks,
        "trunkd_trunk_channels",
        "gauge",
        "Channels (calls) in use.",
        |t| calls(t).channels,
    );
    out.per_trunk(
        trunks,
        "trunkd_trunk_max_channels",
        "gauge",
        "The trunk's max_channels; 0 is unlimited.",
        |t| t.max_channels,
    );
    out.family(
        "trunkd_trunk_calls_total",
        "counter",
        "Calls admitted from the trunk (inbound) or sent to it (outbound).",
    );
    for trunk in trunks {
        let counts = calls(trunk);
        for (direction, value) in [("inbound", counts.calls), ("outbound", counts.calls_out)] {
            let labels = [("trunk", trunk.id.as_str()), ("direction", direction)];
            out.sample("trunkd_trunk_calls_total", &labels, value);
        }
    }
    out.family(
        "trunkd_trunk_rejected_total",
        "counter",
        "Inbound requests rejected by reason (source, busy, number, other), and outbound \
         calls that could have gone to the trunk and did not (outbound_skipped).",
    );
    for trunk in trunks {
        let counts = calls(trunk);
        for (reason, value) in [
            ("source", counts.rejected_source),
            ("busy", counts.rejected_busy),
            ("number", counts.rejected_number),
            ("other", counts.rejected_other),
            ("outbound_skipped", counts.rejected_out),
        ] {
            let labels = [("trunk", trunk.id.as_str()), ("reason", reason)];
            out.sample("trunkd_trunk_rejected_total", &labels, value);
        }
    }
    out.per_trunk(
        trunks,
        "trunkd_trunk_failovers_total",
        "counter",
        "Outbound calls that left the trunk for the next one.",
        |t| calls(t).failovers,
    );
}

impl TrunkStatus {
    /// Enabled (a disabled trunk keeps no registration).
    fn registration_on(&self) -> bool {
        self.state != crate::status::TrunkState::Disabled
    }
}

/// The text being written; `fmt::Write` into a `String` cannot fail.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    /// `# HELP` and `# TYPE` of a family, before its samples.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", HelpText(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One histogram family: each series' buckets (cumulative, `le` last among its
    /// labels), `_sum` in seconds and `_count`.
    fn histogram<'a>(
        &mut self,
        name: &str,
        help: &str,
        series: impl Iterator<
            Item = (
                [(&'a str, &'a str); 1],
                &'a crate::trunk::histogram::Histogram,
            ),
        >,
    ) {
        self.family(name, "histogram", help);
        for ([label], histogram) in series {
            for (bound, count) in histogram.cumulative() {
                let le = Float(bound).to_string();
                let labels = [label, ("le", le.as_str())];
                self.sample(&format!("{name}_bucket"), &labels, count);
            }
            self.sample(&format!("{name}_sum"), &[label], Seconds(histogram.sum()));
            self.sample(&format!("{name}_count"), &[label], histogram.count());
        }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl fmt::Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (index, (label, text)) in labels.iter().enumerate() {
                let comma = if index == 0 { "" } else { "," };
                let _ = write!(self.text, "{comma}{label}=\"{}\"", LabelValue(text));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// A family of one sample without labels.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// A family of one sample per trunk, labelled with its id.
    fn per_trunk<T: fmt::Display>(
        &mut self,
        trunks: &[TrunkStatus],
        name: &str,
        kind: &str,
        help: &str,
        value: impl Fn(&TrunkStatus) -> T,
    ) {
        self.family(name, kind, help);
        for trunk in trunks {
            self.sample(name, &[("trunk", &trunk.id)], value(trunk));
        }
    }
}

/// A label value: `\`, `"` and line feed escaped (the text format's rules).
struct LabelValue<'a>(&'a str);

impl fmt::Display for LabelValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// A `# HELP` docstring: `\` and line feed escaped.
struct HelpText<'a>(&'a str);

impl fmt::Display for HelpText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// A float as the format spells it (`+Inf`, `-Inf`, `NaN`; Rust's `Display` never uses
/// an exponent, which the format also accepts).
struct Float(f64);

impl fmt::Display for Float {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            value if value.is_nan() => f.write_str("NaN"),
            value if value == f64::INFINITY => f.write_str("+Inf"),
            value if value == f64::NEG_INFINITY => f.write_str("-Inf"),
            value => write!(f, "{value}"),
        }
    }
}

struct Seconds(Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Float(self.0.as_secs_f64()).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut out = Exposition::default();
        out.family("m", "gauge", "a \\ b\nc \"d\"");
        out.sample("m", &[("trunk", "a\"b\\c\nd"), ("state", "x")], Float(0.5));
        assert_eq!(
            out.text,
            "# HELP m a \\\\ b\\nc \"d\"\n# TYPE m gauge\n\
             m{trunk=\"a\\\"b\\\\c\\nd\",state=\"x\"} 0.5\n"
        );
    }

    #[test]
    fn floats_are_spelled_as_the_format_wants() {
        let spelled: Vec<String> = [f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e-3, 1e20]
            .into_iter()
            .map(|value| Float(value).to_string())
            .collect();
        assert_eq!(
            spelled,
            ["+Inf", "-Inf", "NaN", "0.001", "100000000000000000000"]
        );
        assert_eq!(Seconds(Duration::from_millis(12)).to_string(), "0.012");
    }
}
