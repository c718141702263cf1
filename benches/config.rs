//! What an operator with many trunks pays on every reload: loading and validating the main
//! file (`load_str`, no file system access: the generated config has no `include`), and
//! comparing two generations (`diff`).
//!
//! Run: `cargo bench --bench config`. Trunk counts are reported as elements, so criterion
//! prints trunks per second next to the time per load.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use trunkd::config::{Config, LoadOptions, diff, load_str};

/// Not read: `load_str` takes the text, and without `include` nothing else is opened.
const MAIN_PATH: &str = "/etc/trunkd/trunkd.toml";

/// A main file with `trunks` realistic trunks: UDP, registering with credentials, an
/// inbound allow-list of two entries and two US numbers that no other trunk has.
/// Trunks whose index is a multiple of `changed_every` (when given) get one field changed
/// (`max_channels`), as an operator's edit of one trunk out of many would.
fn generate(trunks: usize, changed_every: Option<usize>) -> String {
    let mut text = String::with_capacity(600 * trunks + 512);
    text.push_str(
        "[daemon]\n\
         listen = [\"udp:0.0.0.0:5060\", \"tcp:0.0.0.0:5060\"]\n\
         status_interval = \"60s\"\n\
         \n\
         [backend]\n\
         uri = \"sip:10.0.0.10:5080\"\n",
    );
    for index in 0..trunks {
        let changed = changed_every.is_some_and(|every| index % every == 0);
        let max_channels = if changed { 50 } else { 30 };
        // +1 555 followed by 7 digits: room for 5,000,000 trunks of two numbers each.
        let first = 2 * index;
        let second = first + 1;
        writeln!(
            text,
            "\n[trunks.carrier-{index:05}]\n\
             name = \"Carrier trunk {index}\"\n\
             provider = \"carrier-{provider}\"\n\
             domain = \"sip{index}.carrier-{provider}.example\"\n\
             transport = \"udp\"\n\
             direction = \"both\"\n\
             username = \"trunk_{index}\"\n\
             password = \"s3cret-{index:05}-pw\"\n\
             register = true\n\
             register_expires = 3600\n\
             options_interval = \"30s\"\n\
             inbound_auth = \"ip\"\n\
             allowed_inbound_ips = [\"203.0.113.{host}\", \"198.51.100.0/24\"]\n\
             numbers = [\"+1555{first:07}\", \"+1555{second:07}\"]\n\
             country = \"US\"\n\
             number_format = \"+e164\"\n\
             max_channels = {max_channels}",
            provider = index % 40,
            host = index % 250 + 1,
        )
        .expect("writing to a String");
    }
    text
}

/// Loads `text`, panicking with the errors if it does not load: a bench that silently
/// measures the error path would report nonsense.
fn load_valid(text: &str, trunks: usize) -> Config {
    let config = load_str(Path::new(MAIN_PATH), text, &LoadOptions::default())
        .unwrap_or_else(|errors| panic!("generated config does not load:\n{errors}"));
    assert_eq!(config.trunks.len(), trunks, "generated trunk count");
    assert_eq!(config.files.len(), 1, "no include: one file read");
    config
}

fn bench_load(c: &mut Criterion) {
    let mut group = c.benchmark_group("config/load_str");
    for trunks in [10, 1_000, 10_000] {
        let text = generate(trunks, None);
        load_valid(&text, trunks);
        if trunks >= 1_000 {
            // 10 linear samples are 55 loads: ~8 s at 10,000 trunks (~0.14 s a load here).
            group.sample_size(10);
            group.warm_up_time(Duration::from_secs(2));
            group.measurement_time(Duration::from_secs(if trunks >= 10_000 { 10 } else { 5 }));
        } else {
            group.sample_size(50);
            group.measurement_time(Duration::from_secs(3));
        }
        group.throughput(Throughput::Elements(trunks as u64));
        // The loaded Config is dropped inside the timed loop: a reload drops the previous
        // generation, which is the same size.
        group.bench_with_input(BenchmarkId::from_parameter(trunks), &text, |b, text| {
            b.iter(|| {
                load_str(
                    black_box(Path::new(MAIN_PATH)),
                    black_box(text),
                    &LoadOptions::default(),
                )
            })
        });
    }
    group.finish();
}

fn bench_diff(c: &mut Criterion) {
    const TRUNKS: usize = 10_000;
    // One trunk in a hundred changes `max_channels`.
    const CHANGED_EVERY: usize = 100;
    let old = load_valid(&generate(TRUNKS, None), TRUNKS);
    let new = load_valid(&generate(TRUNKS, Some(CHANGED_EVERY)), TRUNKS);
    let expected = diff(&old, &new);
    assert_eq!(expected.changed.len(), TRUNKS / CHANGED_EVERY);
    assert!(
        expected
            .changed
            .iter()
            .all(|(_, fields)| *fields == [trunkd::config::TrunkField::MaxChannels])
    );
    assert_eq!(
        expected.unchanged.len(),
        TRUNKS - TRUNKS / CHANGED_EVERY,
        "unchanged trunks"
    );
    assert!(expected.added.is_empty() && expected.removed.is_empty());

    let mut group = c.benchmark_group("config/diff");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(TRUNKS as u64));
    group.bench_function("10000_trunks_1pct_changed", |b| {
        b.iter(|| diff(black_box(&old), black_box(&new)))
    });
    group.finish();
}

criterion_group!(benches, bench_load, bench_diff);
criterion_main!(benches);
