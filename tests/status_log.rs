//! `[daemon] status_log = "changes"` (the default) through the real binary: with many
//! healthy trunks the log holds the summaries, not a line per trunk, at start and in
//! every report, while the status file keeps the full table. The same at 100,000 trunks
//! over 35 s, next to `"all"`, is `cargo bench --bench status_log`.

// These tests watch a real process in real time; the virtual-clock rule is for the core.
#![allow(clippy::disallowed_methods)]

mod common;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use common::{Trunkd, WAIT};

const TRUNKS: usize = 5_000;

/// `trunks` outbound-only trunks on 127.0.0.x that neither register nor ping: nothing
/// is sent, every trunk stays healthy (`idle`).
fn config(trunks: usize, status_file: &std::path::Path) -> String {
    let mut text = format!(
        "[daemon]\nlisten = [\"udp:127.0.0.1:0\"]\nstatus_interval = \"1s\"\n\
         status_file = {:?}\n",
        status_file.display().to_string()
    );
    for index in 0..trunks {
        write!(
            text,
            "\n[trunks.t{index:05}]\ndomain = \"127.0.0.{}\"\ndirection = \"outbound\"\n\
             register = false\noptions_interval = 0\n",
            index % 250 + 1
        )
        .unwrap();
    }
    text
}

#[test]
fn many_healthy_trunks_log_the_summary_alone_and_the_status_file_has_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let status_file = dir.path().join("status.json");
    let main = dir.path().join("trunkd.toml");
    std::fs::write(&main, config(TRUNKS, &status_file)).unwrap();
    let mut trunkd = Trunkd::start(&main);
    trunkd.wait_for(&["started with"]);
    let summary = trunkd.wait_for(&["trunkd::status"]);
    assert!(
        summary.contains(&format!("summary trunks={TRUNKS} enabled={TRUNKS} ")),
        "the start-up report is the summary alone: {summary}"
    );
    // Three more reports, one a second.
    let lines = trunkd.lines_until(Instant::now() + Duration::from_millis(3_500));
    let texts: Vec<&str> = lines.iter().map(|(_, line)| line.as_str()).collect();
    assert!(
        texts.iter().all(|line| line.contains(" summary trunks=")),
        "nothing but summaries: {texts:#?}"
    );
    assert!((3..=4).contains(&texts.len()), "{texts:#?}");

    // `trunkd status` still has every trunk.
    let deadline = Instant::now() + WAIT;
    loop {
        let document: Option<serde_json::Value> = std::fs::read(&status_file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let trunks = document
            .as_ref()
            .and_then(|document| document["trunks"].as_array())
            .map_or(0, Vec::len);
        if trunks == TRUNKS {
            break;
        }
        assert!(Instant::now() < deadline, "status file has {trunks} trunks");
        std::thread::sleep(Duration::from_millis(100));
    }
    trunkd.stop();
}
