//! `[metrics] listen` on the real binary: a plain HTTP GET scrapes `/metrics`, the body
//! goes through a Prometheus text-format parser (`prometheus-parse`), and a reload that
//! removes a trunk removes its series.

// These tests watch a real process in real time; the virtual-clock rule is for the core.
#![allow(clippy::disallowed_methods)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Trunkd, free_port};
use prometheus_parse::{Sample, Scrape, Value};

const BETA: &str = r#"
[trunks.beta]
domain = "127.0.0.1"
direction = "outbound"
options_interval = "0"
"#;

fn config(port: u16, beta: &str) -> String {
    format!(
        r#"
[daemon]
listen = ["udp:127.0.0.1:0"]
status_interval = "1h"
status_file = ""

[metrics]
listen = "127.0.0.1:{port}"

[backend]
uri = "sip:127.0.0.1:5080"

[trunks.alpha]
domain = "127.0.0.1"
allowed_inbound_ips = ["127.0.0.2"]
max_channels = 10
options_interval = "0"
{beta}"#
    )
}

/// One HTTP/1.1 GET; the status line, the head and the body.
fn get(port: u16, path: &str) -> (String, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.lines().next().unwrap().to_owned();
    (status, head.to_owned(), body.to_owned())
}

/// Scrapes and parses; every sample line must have been understood.
fn scrape(port: u16) -> Vec<Sample> {
    let (status, head, body) = get(port, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK", "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let lines = body.lines().map(|line| Ok(line.to_owned()));
    let parsed = Scrape::parse(lines).expect("the text format parses");
    let sample_lines = body
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .count();
    // A histogram series' `_bucket` lines are one sample of the parser's (its `_sum` and
    // `_count` are samples of their own).
    let understood: usize = parsed
        .samples
        .iter()
        .map(|sample| match &sample.value {
            Value::Histogram(buckets) => buckets.len(),
            _ => 1,
        })
        .sum();
    assert_eq!(understood, sample_lines, "unparsed lines in\n{body}");
    assert!(parsed.docs.contains_key("trunkd_trunk_max_channels"));
    parsed.samples
}

/// The value of the one sample of `metric` whose labels include `labels`.
fn value(samples: &[Sample], metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            ref other => panic!("{metric}: {other:?}"),
        })
        .collect();
    assert!(matching.len() <= 1, "{metric} {labels:?}: {matching:?}");
    matching.first().copied()
}

#[test]
fn metrics_are_scraped_parsed_and_follow_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("trunkd.toml");
    let port = free_port();
    std::fs::write(&main, config(port, BETA)).unwrap();
    let mut daemon = Trunkd::start(&main);
    daemon.wait_for(&["serving metrics on http://127.0.0.1:", "/metrics"]);

    let samples = scrape(port);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        value(&samples, "trunkd_build_info", &[("version", version)]),
        Some(1.0)
    );
    assert_eq!(value(&samples, "trunkd_config_generation", &[]), Some(1.0));
    assert_eq!(
        value(&samples, "trunkd_config_last_reload_success", &[]),
        Some(1.0)
    );
    let alpha = [("trunk", "alpha")];
    let beta = [("trunk", "beta")];
    assert_eq!(
        value(&samples, "trunkd_trunk_max_channels", &alpha),
        Some(10.0)
    );
    assert_eq!(
        value(&samples, "trunkd_trunk_max_channels", &beta),
        Some(0.0)
    );
    assert_eq!(value(&samples, "trunkd_trunk_channels", &alpha), Some(0.0));
    let inbound = [("trunk", "alpha"), ("direction", "inbound")];
    assert_eq!(
        value(&samples, "trunkd_trunk_calls_total", &inbound),
        Some(0.0)
    );
    let skipped = [("trunk", "beta"), ("reason", "outbound_skipped")];
    assert_eq!(
        value(&samples, "trunkd_trunk_rejected_total", &skipped),
        Some(0.0)
    );

    let (status, _, _) = get(port, "/");
    assert_eq!(status, "HTTP/1.1 404 Not Found");

    // A reload that removes beta: its series are gone, alpha's stay.
    std::fs::write(&main, config(port, "")).unwrap();
    daemon.wait_for(&["reload applied: generation=2"]);
    let samples = scrape(port);
    assert_eq!(value(&samples, "trunkd_config_generation", &[]), Some(2.0));
    assert!(
        samples
            .iter()
            .all(|s| s.labels.get("trunk") != Some("beta")),
        "{samples:?}"
    );
    assert_eq!(
        value(&samples, "trunkd_trunk_max_channels", &alpha),
        Some(10.0)
    );

    // A rejected reload: generation 2 stays, the last reload failed.
    std::fs::write(&main, "[daemon]\nlisten = 5\n").unwrap();
    daemon.wait_for(&["reload rejected"]);
    let samples = scrape(port);
    assert_eq!(value(&samples, "trunkd_config_generation", &[]), Some(2.0));
    assert_eq!(
        value(&samples, "trunkd_config_last_reload_success", &[]),
        Some(0.0)
    );
    daemon.stop();
}

#[test]
fn a_taken_metrics_port_fails_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("trunkd.toml");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    std::fs::write(&main, config(port, BETA)).unwrap();
    let daemon = Trunkd::start(&main);
    let (success, log) = daemon.wait_exit();
    assert!(!success, "{log:?}");
    let expected = format!("cannot bind [metrics] listen 127.0.0.1:{port}");
    assert!(log.iter().any(|line| line.contains(&expected)), "{log:?}");
}
