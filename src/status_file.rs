//! The status file: the full per-trunk status as JSON (`[daemon] status_file`), written
//! atomically by the daemon and read by `trunkd status`.
//!
//! Built only from [`TrunkStatus`] and [`Summary`], which hold no secret: the password
//! cannot reach this file because nothing here ever sees a [`crate::config::Trunk`].

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::status::{Summary, TrunkStatus};

/// Bumped when a field changes meaning; `trunkd status` refuses other versions.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusDocument {
    pub version: u32,
    /// Seconds since the Unix epoch when written.
    pub written_at: u64,
    pub pid: u32,
    pub config_generation: u64,
    pub trunks_total: usize,
    pub trunks_enabled: usize,
    pub active_calls: usize,
    /// Of `active_calls`, the outbound ones. Absent in files written before them.
    #[serde(default)]
    pub active_outbound: usize,
    pub unknown_source: u64,
    pub malformed: u64,
    /// Trunks keeping a registration; of them registered now, and failing (auth_failed,
    /// rejected, backoff). Added within version 1: absent in older files, read as 0.
    #[serde(default)]
    pub trunks_registering: usize,
    #[serde(default)]
    pub trunks_registered: usize,
    #[serde(default)]
    pub trunks_register_failing: usize,
    /// Trunks down by OPTIONS.
    #[serde(default)]
    pub trunks_options_down: usize,
    /// Shutting down: new calls are refused.
    pub draining: bool,
    pub trunks: Vec<TrunkEntry>,
    /// The backends' health checks (`[backend] options_interval`); empty when off.
    #[serde(default)]
    pub backends: Vec<BackendEntry>,
}

/// One backend's health check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendEntry {
    pub uri: String,
    pub address: String,
    /// `up`, `down` or `unknown`.
    pub state: String,
    pub rtt_ms: Option<u64>,
}

impl BackendEntry {
    pub fn of(status: &crate::control::backends::BackendStatus) -> Self {
        BackendEntry {
            uri: status.uri.clone(),
            address: status.address.to_string(),
            state: status.state.as_str().to_owned(),
            rtt_ms: status.rtt_last.map(|rtt| rtt.as_millis() as u64),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrunkEntry {
    pub id: String,
    pub name: String,
    pub state: String,
    pub direction: String,
    pub next_hop: String,
    pub register: bool,
    pub expires_in: Option<u64>,
    pub last_code: Option<u16>,
    pub retry_in: Option<u64>,
    /// `up`, `down`, `unknown` or `off`.
    pub options: String,
    pub rtt_ms: Option<u64>,
    pub srtt_ms: Option<u64>,
    pub verified: bool,
    pub channels: u32,
    /// 0: unlimited.
    pub max_channels: u32,
    pub calls: u64,
    pub rejected_source: u64,
    pub rejected_busy: u64,
    pub rejected_number: u64,
    pub rejected_other: u64,
    /// Outbound calls sent to the trunk; skipped for it; failed over from it. Absent in
    /// files written before outbound calls.
    #[serde(default)]
    pub calls_out: u64,
    #[serde(default)]
    pub rejected_out: u64,
    #[serde(default)]
    pub failovers: u64,
    /// With `[cluster]`: `ok` or `degraded`; the host that registers the trunk; the
    /// channels in use on every host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registrant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_channels: Option<u32>,
}

impl TrunkEntry {
    pub fn of(status: &TrunkStatus) -> Self {
        let registration = status.registration.as_ref();
        let calls = status.calls.unwrap_or_default();
        let options = match &status.options {
            Some(options) => options.state.as_str(),
            None if status.options_interval.is_zero()
                || status.state == crate::status::TrunkState::Disabled =>
            {
                "off"
            }
            None => "unknown",
        };
        TrunkEntry {
            id: status.id.clone(),
            name: status.name.clone(),
            state: status.state.as_str().to_owned(),
            direction: status.direction.to_string(),
            next_hop: status.next_hop.clone(),
            register: status.register,
            expires_in: registration.and_then(|r| r.expires_in).map(|d| d.as_secs()),
            last_code: registration.and_then(|r| r.last_code),
            retry_in: registration.and_then(|r| r.retry_in).map(|d| d.as_secs()),
            options: options.to_owned(),
            rtt_ms: status
                .options
                .and_then(|o| o.rtt_last)
                .map(|d| d.as_millis() as u64),
            srtt_ms: status
                .options
                .and_then(|o| o.rtt_smoothed)
                .map(|d| d.as_millis() as u64),
            verified: status.verified,
            channels: calls.channels,
            max_channels: status.max_channels,
            calls: calls.calls,
            rejected_source: calls.rejected_source,
            rejected_busy: calls.rejected_busy,
            rejected_number: calls.rejected_number,
            rejected_other: calls.rejected_other,
            calls_out: calls.calls_out,
            rejected_out: calls.rejected_out,
            failovers: calls.failovers,
            cluster: status
                .cluster
                .as_ref()
                .map(|c| if c.ok { "ok" } else { "degraded" }.to_owned()),
            registrant: status
                .cluster
                .as_ref()
                .and_then(|c| c.registrant.clone())
                .map(|holder| holder.unwrap_or_else(|| "-".into())),
            cluster_channels: status.cluster.as_ref().and_then(|c| c.channels),
        }
    }
}

impl StatusDocument {
    pub fn new(
        summary: &Summary,
        trunks: &[TrunkStatus],
        draining: bool,
        written_at: u64,
        pid: u32,
    ) -> Self {
        StatusDocument {
            version: FORMAT_VERSION,
            written_at,
            pid,
            config_generation: summary.generation,
            trunks_total: summary.trunks,
            trunks_enabled: summary.enabled,
            active_calls: summary.active_calls,
            active_outbound: summary.active_outbound,
            unknown_source: summary.unknown_source,
            malformed: summary.malformed,
            trunks_registering: summary.registering,
            trunks_registered: summary.registered,
            trunks_register_failing: summary.register_failing,
            trunks_options_down: summary.options_down,
            draining,
            trunks: trunks.iter().map(TrunkEntry::of).collect(),
            backends: Vec::new(),
        }
    }

    /// With the backends' health checks.
    pub fn with_backends(mut self, backends: &[crate::control::backends::BackendStatus]) -> Self {
        self.backends = backends.iter().map(BackendEntry::of).collect();
        self
    }

    /// Writes `path` atomically: a temporary file in the same directory, then rename,
    /// so a reader never sees half a document.
    pub fn write(&self, path: &Path) -> io::Result<()> {
        use std::io::Write as _;
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(format!(".tmp.{}", std::process::id()));
        let temporary = std::path::PathBuf::from(temporary);
        // Streamed to the file: with 10,000 trunks the document is megabytes, and a
        // String of it would be a peak the allocator keeps.
        let written = std::fs::File::create(&temporary).and_then(|file| {
            let mut writer = io::BufWriter::new(file);
            serde_json::to_writer_pretty(&mut writer, self).map_err(io::Error::other)?;
            writer.write_all(b"\n")?;
            writer.flush()
        });
        written
            .and_then(|()| std::fs::rename(&temporary, path))
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&temporary);
            })
    }

    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        let document: StatusDocument = serde_json::from_str(&text)
            .map_err(|error| format!("{}: not a trunkd status file: {error}", path.display()))?;
        if document.version != FORMAT_VERSION {
            return Err(format!(
                "{}: status file version {} (this trunkd reads {FORMAT_VERSION})",
                path.display(),
                document.version
            ));
        }
        Ok(document)
    }

    /// The `trunkd status` table (like `sofia status gateway`): one row per trunk.
    pub fn table(&self) -> String {
        let headers = [
            "TRUNK",
            "STATE",
            "OPTIONS",
            "RTT",
            "VERIFIED",
            "CHANNELS",
            "CALLS",
            "REJECTED",
            "OUT",
            "FAILOVERS",
            "NEXT HOP",
        ];
        let rows: Vec<[String; 11]> = self
            .trunks
            .iter()
            .map(|t| {
                let max = match t.max_channels {
                    0 => "-".to_owned(),
                    max => max.to_string(),
                };
                let state = match &t.registrant {
                    Some(registrant) => format!("{} registrant={registrant}", t.state),
                    None => t.state.clone(),
                };
                let channels = match t.cluster_channels {
                    Some(total) => format!("{}/{max} cluster={total}", t.channels),
                    None => format!("{}/{max}", t.channels),
                };
                [
                    t.id.clone(),
                    state,
                    t.options.clone(),
                    t.rtt_ms.map_or("-".into(), |ms| format!("{ms}ms")),
                    if t.verified { "yes" } else { "no" }.into(),
                    channels,
                    t.calls.to_string(),
                    (t.rejected_source + t.rejected_busy + t.rejected_number + t.rejected_other)
                        .to_string(),
                    t.calls_out.to_string(),
                    t.failovers.to_string(),
                    t.next_hop.clone(),
                ]
            })
            .collect();
        let mut widths = headers.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: &[&str]| {
            let mut text = String::new();
            for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
                if i + 1 == cells.len() {
                    text.push_str(cell);
                } else {
                    let _ = write!(text, "{cell:<width$}  ");
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&mut out, &headers);
        for row in &rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            line(&mut out, &cells);
        }
        let mut health = String::new();
        if self.trunks_registering > 0 {
            let _ = write!(
                health,
                ", {}/{} registered",
                self.trunks_registered, self.trunks_registering
            );
            if self.trunks_register_failing > 0 {
                let _ = write!(health, " ({} failing)", self.trunks_register_failing);
            }
        }
        if self.trunks_options_down > 0 {
            let _ = write!(health, ", {} down by OPTIONS", self.trunks_options_down);
        }
        for backend in &self.backends {
            let rtt = backend
                .rtt_ms
                .map(|ms| format!(" rtt {ms}ms"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "backend {} ({}): {}{rtt}",
                backend.uri, backend.address, backend.state
            );
        }
        let _ = writeln!(
            out,
            "{} trunks ({} enabled){health}, {} active calls, unknown_source={}, config generation {}{}",
            self.trunks_total,
            self.trunks_enabled,
            self.active_calls,
            self.unknown_source,
            self.config_generation,
            if self.draining { ", draining" } else { "" }
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> StatusDocument {
        let entry = TrunkEntry {
            id: "carrier-x".into(),
            name: "Carrier X".into(),
            state: "registered".into(),
            direction: "both".into(),
            next_hop: "udp:192.0.2.1:5060".into(),
            register: true,
            expires_in: Some(540),
            last_code: Some(200),
            retry_in: None,
            options: "up".into(),
            rtt_ms: Some(12),
            srtt_ms: Some(11),
            verified: true,
            channels: 3,
            max_channels: 30,
            calls: 120,
            rejected_source: 1,
            rejected_busy: 2,
            rejected_number: 3,
            rejected_other: 0,
            calls_out: 4,
            rejected_out: 1,
            failovers: 2,
            cluster: None,
            registrant: None,
            cluster_channels: None,
        };
        StatusDocument {
            version: FORMAT_VERSION,
            written_at: 1,
            pid: 42,
            config_generation: 3,
            trunks_total: 2,
            trunks_enabled: 2,
            active_calls: 3,
            active_outbound: 1,
            unknown_source: 9,
            malformed: 0,
            trunks_registering: 1,
            trunks_registered: 1,
            trunks_register_failing: 0,
            trunks_options_down: 0,
            draining: false,
            trunks: vec![
                entry.clone(),
                TrunkEntry {
                    id: "b".into(),
                    state: "idle".into(),
                    options: "off".into(),
                    rtt_ms: None,
                    verified: false,
                    max_channels: 0,
                    channels: 0,
                    ..entry
                },
            ],
            backends: vec![BackendEntry {
                uri: "sip:10.0.0.9:5080".into(),
                address: "10.0.0.9:5080".into(),
                state: "up".into(),
                rtt_ms: Some(3),
            }],
        }
    }

    #[test]
    fn round_trips_atomically_and_prints_a_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status.json");
        let doc = document();
        doc.write(&path).unwrap();
        assert_eq!(StatusDocument::read(&path).unwrap(), doc);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left");
        assert_eq!(
            doc.table(),
            "TRUNK      STATE       OPTIONS  RTT   VERIFIED  CHANNELS  CALLS  REJECTED  OUT  FAILOVERS  NEXT HOP\n\
             carrier-x  registered  up       12ms  yes       3/30      120    6         4    2          udp:192.0.2.1:5060\n\
             b          idle        off      -     no        0/-       120    6         4    2          udp:192.0.2.1:5060\n\
             backend sip:10.0.0.9:5080 (10.0.0.9:5080): up rtt 3ms\n\
             2 trunks (2 enabled), 1/1 registered, 3 active calls, unknown_source=9, config generation 3\n"
        );
    }

    #[test]
    fn the_table_puts_trouble_in_its_last_line_and_reads_older_files() {
        let mut doc = document();
        doc.trunks_registering = 2;
        doc.trunks_registered = 1;
        doc.trunks_register_failing = 1;
        doc.trunks_options_down = 1;
        assert!(doc.table().ends_with(
            "2 trunks (2 enabled), 1/2 registered (1 failing), 1 down by OPTIONS, \
             3 active calls, unknown_source=9, config generation 3\n"
        ));
        // A file written before these counts existed still reads.
        let mut json = serde_json::to_value(&doc).unwrap();
        for key in [
            "trunks_registering",
            "trunks_registered",
            "trunks_register_failing",
            "trunks_options_down",
        ] {
            json.as_object_mut().unwrap().remove(key);
        }
        let old: StatusDocument = serde_json::from_value(json).unwrap();
        assert_eq!((old.trunks_registering, old.trunks_options_down), (0, 0));
        assert!(!old.table().contains("registered,"));
    }

    /// With `[cluster]`: each trunk's registrant and the cluster's channels show in the
    /// table, and survive the round trip through the file.
    #[test]
    fn the_table_shows_the_registrant_and_the_cluster_channels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status.json");
        let mut doc = document();
        doc.trunks[0].cluster = Some("ok".into());
        doc.trunks[0].registrant = Some("edge-2".into());
        doc.trunks[0].cluster_channels = Some(17);
        doc.write(&path).unwrap();
        let read = StatusDocument::read(&path).unwrap();
        assert_eq!(read, doc);
        let table = read.table();
        let line = table.lines().nth(1).unwrap();
        assert!(
            line.contains(" registered registrant=edge-2 ") && line.contains(" 3/30 cluster=17 "),
            "{table}"
        );
    }

    #[test]
    fn other_versions_and_garbage_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status.json");
        std::fs::write(&path, "not json").unwrap();
        assert!(
            StatusDocument::read(&path)
                .unwrap_err()
                .contains("not a trunkd status file")
        );
        let mut doc = document();
        doc.version = 99;
        doc.write(&path).unwrap();
        assert!(
            StatusDocument::read(&path)
                .unwrap_err()
                .contains("version 99")
        );
    }
}
