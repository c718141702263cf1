//! The daemon's state, sans IO: trunks, the config generation, the status schedule.
//!
//! The shell feeds it `now` and inputs (`handle_reload`, `handle_timeout`) and drains
//! `poll_event` / `poll_timeout`. It never reads the clock, touches a socket or a file, so
//! tests drive it on a virtual clock. Registration and keepalive machines (later issues)
//! hang off [`TrunkRuntime`], which survives any reload that leaves its trunk unchanged.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use crate::config::{Config, ConfigErrors, Diff, Trunk, diff};
use crate::status::{Summary, TrunkState, TrunkStatus};

/// Runtime state of one trunk; replaced only when its config changes.
#[derive(Debug)]
pub struct TrunkRuntime {
    /// When this trunk's current config took effect.
    pub since: Instant,
}

#[derive(Debug, Clone)]
pub struct TrunkSlot {
    pub config: Arc<Trunk>,
    pub runtime: Arc<TrunkRuntime>,
}

impl TrunkSlot {
    fn new(config: Arc<Trunk>, now: Instant) -> Self {
        TrunkSlot {
            config,
            runtime: Arc::new(TrunkRuntime { since: now }),
        }
    }

    pub fn state(&self) -> TrunkState {
        if self.config.enabled {
            TrunkState::Idle
        } else {
            TrunkState::Disabled
        }
    }

    pub fn status(&self) -> TrunkStatus {
        TrunkStatus::new(&self.config, self.state())
    }
}

/// Why a trunk's line is logged outside the periodic report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeReason {
    Added,
    /// The fields whose change caused it.
    Changed(Vec<&'static str>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The periodic report: one status per trunk, then the summary.
    Report {
        trunks: Vec<TrunkStatus>,
        summary: Summary,
    },
    /// A trunk came into being or changed; its new status.
    TrunkUpdated {
        status: TrunkStatus,
        reason: ChangeReason,
    },
    TrunkRemoved {
        id: String,
    },
    /// A new generation is in force.
    Reloaded {
        generation: u64,
        diff: Diff,
        summary: Summary,
    },
    /// The new files were invalid; the running generation stays.
    ReloadRejected {
        errors: ConfigErrors,
        generation: u64,
    },
}

pub struct Core {
    config: Arc<Config>,
    generation: u64,
    trunks: BTreeMap<String, TrunkSlot>,
    next_report: Instant,
    events: VecDeque<Event>,
}

impl Core {
    /// Starts generation 1 and queues the start-up report.
    pub fn new(config: Config, now: Instant) -> Self {
        let trunks = config
            .trunks
            .iter()
            .map(|(id, trunk)| (id.clone(), TrunkSlot::new(trunk.clone(), now)))
            .collect();
        let mut core = Core {
            next_report: now + config.daemon.status_interval,
            config: Arc::new(config),
            generation: 1,
            trunks,
            events: VecDeque::new(),
        };
        core.queue_report();
        core
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn trunk(&self, id: &str) -> Option<&TrunkSlot> {
        self.trunks.get(id)
    }

    pub fn summary(&self) -> Summary {
        Summary {
            trunks: self.trunks.len(),
            enabled: self.trunks.values().filter(|s| s.config.enabled).count(),
            generation: self.generation,
        }
    }

    /// Applies a freshly loaded generation, or records why it was refused. Only trunks
    /// the diff names are touched; the others keep their slot as it was.
    pub fn handle_reload(&mut self, now: Instant, loaded: Result<Config, ConfigErrors>) {
        let config = match loaded {
            Ok(config) => config,
            Err(errors) => {
                self.events.push_back(Event::ReloadRejected {
                    errors,
                    generation: self.generation,
                });
                return;
            }
        };
        let diff = diff(&self.config, &config);
        for id in &diff.removed {
            self.trunks.remove(id);
            self.events
                .push_back(Event::TrunkRemoved { id: id.clone() });
        }
        for id in &diff.added {
            let slot = TrunkSlot::new(config.trunks[id].clone(), now);
            self.events.push_back(Event::TrunkUpdated {
                status: slot.status(),
                reason: ChangeReason::Added,
            });
            self.trunks.insert(id.clone(), slot);
        }
        for (id, fields) in &diff.changed {
            let slot = TrunkSlot::new(config.trunks[id].clone(), now);
            self.events.push_back(Event::TrunkUpdated {
                status: slot.status(),
                reason: ChangeReason::Changed(fields.clone()),
            });
            self.trunks.insert(id.clone(), slot);
        }
        if config.daemon.status_interval != self.config.daemon.status_interval {
            self.next_report = now + config.daemon.status_interval;
        }
        self.config = Arc::new(config);
        self.generation += 1;
        self.events.push_back(Event::Reloaded {
            generation: self.generation,
            diff,
            summary: self.summary(),
        });
    }

    /// Runs what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_report {
            self.queue_report();
            let interval = self.config.daemon.status_interval;
            // After a stall (suspend, overload) report once, not once per missed interval.
            self.next_report = (self.next_report + interval).max(now + interval / 2);
        }
    }

    /// When `handle_timeout` next has something to do.
    pub fn poll_timeout(&self) -> Instant {
        self.next_report
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn queue_report(&mut self) {
        let trunks = self.trunks.values().map(TrunkSlot::status).collect();
        self.events.push_back(Event::Report {
            trunks,
            summary: self.summary(),
        });
    }
}
