//! What changed between two config generations, trunk by trunk.

use std::fmt;

use super::{Config, TrunkField};

/// Trunk ids by fate. A trunk is `changed` when any field differs; the field names say
/// which, so the log can tell an operator what a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<(String, Vec<TrunkField>)>,
    pub unchanged: Vec<String>,
    /// Daemon-level settings that differ (`listen`, `tls`, `backend`, ...).
    pub daemon_changed: Vec<&'static str>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.daemon_changed.is_empty()
    }
}

pub fn diff(old: &Config, new: &Config) -> Diff {
    let mut diff = Diff::default();
    for (id, trunk) in &new.trunks {
        match old.trunks.get(id) {
            None => diff.added.push(id.clone()),
            Some(previous) => {
                let fields = previous.changed_fields(trunk);
                if fields.is_empty() {
                    diff.unchanged.push(id.clone());
                } else {
                    diff.changed.push((id.clone(), fields));
                }
            }
        }
    }
    diff.removed = old
        .trunks
        .keys()
        .filter(|id| !new.trunks.contains_key(*id))
        .cloned()
        .collect();
    let daemon = [
        ("listen", old.daemon.listen != new.daemon.listen),
        (
            "public_address",
            old.daemon.public_address != new.daemon.public_address,
        ),
        (
            "status_interval",
            old.daemon.status_interval != new.daemon.status_interval,
        ),
        ("status_log", old.daemon.status_log != new.daemon.status_log),
        ("include", old.daemon.include != new.daemon.include),
        ("timers", old.daemon.timers != new.daemon.timers),
        (
            "dns_servers",
            old.daemon.dns_servers != new.daemon.dns_servers,
        ),
        (
            "register_retry",
            (old.daemon.register_retry_min, old.daemon.register_retry_max)
                != (new.daemon.register_retry_min, new.daemon.register_retry_max),
        ),
        (
            "on_unknown_source",
            old.daemon.on_unknown_source != new.daemon.on_unknown_source,
        ),
        (
            "trunk_header",
            old.daemon.trunk_header != new.daemon.trunk_header,
        ),
        (
            "max_call_duration",
            old.daemon.max_call_duration != new.daemon.max_call_duration,
        ),
        (
            "shutdown_drain",
            old.daemon.shutdown_drain != new.daemon.shutdown_drain,
        ),
        (
            "status_file",
            old.daemon.status_file != new.daemon.status_file,
        ),
        (
            "outbound_failover_codes",
            old.daemon.outbound_failover_codes != new.daemon.outbound_failover_codes,
        ),
        ("tls", old.tls != new.tls),
        ("backend", old.backend != new.backend),
        ("metrics", old.metrics != new.metrics),
        ("cluster", old.cluster != new.cluster),
    ];
    diff.daemon_changed = daemon
        .into_iter()
        .filter_map(|(name, differs)| differs.then_some(name))
        .collect();
    diff
}

impl fmt::Display for Diff {
    /// One line: counts first, then the ids, e.g.
    /// `added=1 removed=0 changed=1 unchanged=3 added_trunks=b changed_trunks=a(port,numbers)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "added={} removed={} changed={} unchanged={}",
            self.added.len(),
            self.removed.len(),
            self.changed.len(),
            self.unchanged.len()
        )?;
        if !self.added.is_empty() {
            write!(f, " added_trunks={}", self.added.join(","))?;
        }
        if !self.removed.is_empty() {
            write!(f, " removed_trunks={}", self.removed.join(","))?;
        }
        if !self.changed.is_empty() {
            let changed: Vec<String> = self
                .changed
                .iter()
                .map(|(id, fields)| format!("{id}({})", TrunkField::join(fields)))
                .collect();
            write!(f, " changed_trunks={}", changed.join(","))?;
        }
        if !self.daemon_changed.is_empty() {
            write!(f, " daemon_changed={}", self.daemon_changed.join(","))?;
        }
        Ok(())
    }
}
