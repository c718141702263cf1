//! The tokio shell: sockets, signals, file watch, systemd, and the loop that feeds the
//! control path (`Control`). It moves bytes, events and time; it decides nothing the
//! control path could decide.
//!
//! [`run`] is the command line's entry: it loads the config, binds the listeners, installs
//! the signal handlers and hands them to [`serve`] as a [`Daemon`]; a test builds the
//! `Daemon` itself (port-0 listeners, signals down a channel) and runs it on tokio's paused
//! clock, which is the clock `clock::now` reads. `serve` is one loop: inputs in, then
//! the control path's events logged, its transmits sent and its lookups started. SIGTERM
//! or SIGINT starts the control path's shutdown (`Control::shutdown`: un-REGISTER,
//! drain, settle) and the loop runs on until `Control::is_stopped`; a second one stops
//! at once. While stopping, reloads and the periodic status refresh are off.

pub(crate) mod clock;
pub(crate) mod cluster;
pub(crate) mod dns;
pub(crate) mod hot_path;
pub(crate) mod listeners;
pub mod memory;
pub(crate) mod metrics;
pub(crate) mod network;
pub(crate) mod signals;
pub(crate) mod systemd;
pub(crate) mod watch;

use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant as TokioInstant, sleep_until};
use tracing::{debug, error, info, warn};

use crate::config::{self, ConfigErrors, LoadOptions};
use crate::control::metrics::LastReload;
use crate::control::shutdown::Notice;
use crate::control::{ChangeReason, Context, Control, Event};
use crate::trunk::next_hop::{ResolveError, ResolveKey, Resolved};
use hot_path::lock;
use network::Network;
use signals::{Signal, Signals};
use systemd::Notifier;

/// Messages from the hot path the control loop takes in one turn before it sends what
/// they caused and looks at its other inputs (timers, signals, reloads).
const DELIVER_BATCH: usize = 32;

/// The status file is rewritten at most this often (and on every status report).
const STATUS_FILE_PERIOD: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("config is invalid (errors above); nothing started")]
    Config(ConfigErrors),
    #[error(transparent)]
    Listen(#[from] listeners::ListenError),
    #[error(transparent)]
    Metrics(#[from] metrics::BindError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Runs the daemon until SIGTERM or SIGINT: the command line's entry, which loads the
/// config, binds the listeners and installs the signal handlers for [`serve`].
pub async fn run(config_path: PathBuf, options: LoadOptions) -> Result<(), RunError> {
    let notifier = Notifier::from_env();
    let config = match load(&config_path, &options).await {
        Ok(config) => config,
        Err(errors) => {
            for error in &errors.0 {
                error!("{error}");
            }
            return Err(RunError::Config(errors));
        }
    };
    let listeners = listeners::bind(&config)?;
    let signals = signals::Unix::install()?;
    serve(Daemon {
        config,
        options,
        listeners,
        signals,
        notifier,
        seed: random_seed(),
    })
    .await
}

/// What the daemon runs with, made by [`run`] from the command line and the process's
/// environment, or by a test (as mini-redis's `server::run(listener, shutdown)`): the
/// loaded config, its listeners already bound, where signals come from. Time is tokio's
/// (`clock`), so a test on a paused runtime drives the daemon's timers too.
pub struct Daemon<S> {
    pub config: config::Config,
    /// How reloads read the files again.
    pub options: LoadOptions,
    pub listeners: listeners::Bound,
    pub signals: S,
    pub notifier: Notifier,
    /// Seeds the control path's Call-IDs, tags and jitter (`Context::seed`).
    pub seed: u64,
}

/// Runs a daemon until the control path has stopped after SIGTERM or SIGINT, or a second
/// one of those.
pub async fn serve<S: Signals>(daemon: Daemon<S>) -> Result<(), RunError> {
    let Daemon {
        config,
        options,
        listeners,
        mut signals,
        notifier,
        seed,
    } = daemon;
    let (received_tx, mut received_rx) = mpsc::channel(hot_path::CONTROL_QUEUE);
    let context = Context {
        seed,
        ..Context::default()
    };
    log_warnings(&config);
    // Bound before READY, like the SIP listeners: a taken port fails the start.
    let metrics_listener = match config.metrics {
        Some(wanted) => Some(metrics::bind(wanted.listen)?),
        None => None,
    };
    let last_reload = Arc::new(Mutex::new(LastReload {
        success: true,
        timestamp_seconds: metrics::unix_seconds(),
    }));
    let mut control = Control::with_context(config, clock::now(), context);
    memory::release_free_memory();
    let config = Arc::clone(control.config());
    let direct = hot_path::DirectSlot::default();
    let listeners = listeners.start(received_tx.clone(), Arc::clone(&direct), control.inbound())?;
    for listen in &listeners.bound {
        info!("listening on {listen}");
    }
    let public_ip = config
        .daemon
        .public_address
        .as_ref()
        .and_then(|host| host.ip());
    let stream_listeners = listeners
        .bound
        .iter()
        .filter(|listen| listen.transport != config::Transport::Udp)
        .copied()
        .collect();
    let ca_file = config.tls.as_ref().and_then(|tls| tls.ca_file.as_deref());
    let tls_client = match config::tls::client_config(ca_file) {
        Ok(client) => Some(client),
        Err(error) => {
            warn!("TLS toward carriers unavailable: {error}");
            None
        }
    };
    let dns = dns::Dns::new(&config.daemon.dns_servers).map_err(std::io::Error::other)?;
    let (failures_tx, mut failures_rx) = mpsc::unbounded_channel();
    let network = Network::new(
        listeners.udp.clone(),
        stream_listeners,
        public_ip,
        tls_client,
        dns,
        received_tx,
        failures_tx,
        control.inbound(),
        Arc::clone(&listeners.accepted),
    );
    let (resolved_tx, mut resolved_rx) = mpsc::unbounded_channel();
    let (probed_tx, mut probed_rx) = mpsc::unbounded_channel();
    let mut lookups = Lookups {
        resolved: resolved_tx,
        probed: probed_tx,
        // Started below, once the control path is shared with the task.
        cluster: None,
    };
    let (reload_tx, mut reload_rx) = mpsc::channel(1);
    let changes = watch::debounced(reload_tx);
    let mut watch = start_watch(&config, &changes);

    let mut last_reload_failed = None;
    info!(
        "trunkd {} started with {}",
        env!("CARGO_PKG_VERSION"),
        config.main_file.display()
    );
    drain_events(&mut control, &notifier, &mut last_reload_failed);
    pump(&mut control, &network, &lookups);
    let mut last_status = systemd_status(&control, last_reload_failed);
    notifier.ready(&last_status);

    let mut status_file = StatusFile::new(control.config().daemon.status_file.clone());
    status_file.write(&control);
    let mut trim_tick = tokio::time::interval(memory::TRIM_PERIOD);
    trim_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut status_tick = tokio::time::interval(STATUS_FILE_PERIOD);
    status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let watchdog_period = notifier.watchdog_interval();
    let mut watchdog =
        tokio::time::interval(watchdog_period.unwrap_or(std::time::Duration::MAX / 4));

    // From here on the UDP listener threads handle what they pass on themselves, under
    // the same lock as this loop (see `hot_path::Direct`).
    let nudge = Arc::new(hot_path::Nudge::new(control.poll_timeout()));
    let shared = Arc::new(Mutex::new(control));
    // The Redis thread hands its answers to the control path itself, as a listener thread
    // does a message (no hop through this loop).
    lookups.cluster = match &config.cluster {
        Some(settings) => Some(cluster::start(
            settings,
            hot_path::Direct {
                control: Arc::clone(&shared),
                nudge: Arc::clone(&nudge),
                network: network.clone(),
                cluster: None,
            },
        )?),
        None => None,
    };
    let _ = direct.set(hot_path::Direct {
        control: Arc::clone(&shared),
        nudge: Arc::clone(&nudge),
        network: network.clone(),
        cluster: lookups.cluster.clone(),
    });
    let metrics_task = match metrics_listener {
        Some(listener) => {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            info!(
                "serving metrics on http://{}/metrics",
                listener.local_addr()?
            );
            let serve = metrics::serve(listener, Arc::clone(&shared), Arc::clone(&last_reload));
            Some(tokio::spawn(serve))
        }
        None => None,
    };

    // One timer for the control path's deadline, moved only when the deadline does: a
    // new `sleep_until` per turn of the loop would register and cancel a timer-wheel
    // entry (and often wake the timer driver) for every message.
    let mut armed = TokioInstant::from_std(lock(&shared).poll_timeout());
    let timer = sleep_until(armed);
    tokio::pin!(timer);
    loop {
        let (deadline, stopping) = {
            let control = lock(&shared);
            let deadline = wake_at(&control, clock::now());
            nudge.arm(deadline);
            // While stopping, the config stays as it is and systemd's STATUS says so.
            (deadline, control.is_draining())
        };
        let deadline = TokioInstant::from_std(deadline);
        if deadline != armed {
            armed = deadline;
            timer.as_mut().reset(deadline);
        }
        // The config files are read without the lock, after the select.
        let mut reload_now = false;
        tokio::select! {
            () = &mut timer => lock(&shared).handle_timeout(clock::now()),
            // A listener thread handled a message that left this loop work.
            () = nudge.notified() => {}
            Some(message) = received_rx.recv() => {
                let mut control = lock(&shared);
                hot_path::deliver(&mut control, message);
                // What else is queued is taken in the same turn, up to a bound, so a busy
                // control path pays the loop and the sends' bookkeeping once per batch.
                for _ in 1..DELIVER_BATCH {
                    match received_rx.try_recv() {
                        Ok(message) => hot_path::deliver(&mut control, message),
                        Err(_) => break,
                    }
                }
            }
            Some((peer, transport, why)) = failures_rx.recv() => {
                lock(&shared).handle_transport_error(clock::now(), peer, transport, &why);
            }
            Some((key, resolved)) = resolved_rx.recv() => {
                lock(&shared).handle_resolved(clock::now(), &key, resolved);
            }
            Some((backend, local)) = probed_rx.recv() => lock(&shared).handle_probe(backend, local),
            Some(()) = reload_rx.recv(), if !stopping => {
                info!("config files changed; reloading");
                reload_now = true;
            }
            _ = watchdog.tick(), if watchdog_period.is_some() => notifier.watchdog(),
            _ = trim_tick.tick() => memory::release_free_memory(),
            _ = status_tick.tick(), if !stopping => {
                let control = lock(&shared);
                status_file.set_path(control.config().daemon.status_file.clone());
                status_file.write_if_dirty(&control);
                // `systemctl status` follows registrations and calls, not only reloads.
                let status = systemd_status(&control, last_reload_failed);
                if status != last_status {
                    notifier.status(&status);
                    last_status = status;
                }
            }
            signal = signals.next() => match signal {
                Signal::Hangup if stopping => {}
                Signal::Hangup => {
                    info!("SIGHUP; reloading");
                    reload_now = true;
                }
                Signal::Terminate | Signal::Interrupt => {
                    let mut control = lock(&shared);
                    if stop(&mut control, &notifier, signal) {
                        break;
                    }
                    // `trunkd status` shows the drain from its start (the periodic writes
                    // stop with the rest of the reporting while stopping).
                    status_file.write(&control);
                }
            },
        }
        if reload_now {
            last_status = reload(
                &shared,
                &options,
                &notifier,
                &mut last_reload_failed,
                &mut watch,
                &changes,
                &last_reload,
            )
            .await;
        }
        let mut control = lock(&shared);
        if drain_events(&mut control, &notifier, &mut last_reload_failed) {
            status_file.dirty = true;
        }
        pump(&mut control, &network, &lookups);
        if control.is_stopped() {
            break;
        }
    }
    leave_cluster(&shared, &network, &lookups).await;
    status_file.write(&lock(&shared));
    if let Some(task) = metrics_task {
        task.abort();
    }
    drop(listeners);
    info!("stopped");
    Ok(())
}

/// While the call path holds calls the loop wakes at least this often. Shorter than T1, the
/// nearest timer a new call or transaction arms, so that the threads handling messages
/// need not wake the loop for each new call's timer, and the timers a call cancels a
/// millisecond after arming them (Timer A, Timer E) do not each wake it once more: at
/// 1,500 calls/s that was about two wake-ups of two threads per call. Every deadline
/// is still kept to the dot; the loop only looks sooner.
const CALLS_TICK: Duration = Duration::from_millis(200);

/// When the control loop's timer should next fire: the control path's next deadline,
/// and no later than [`CALLS_TICK`] from `now` while the call path holds calls (ended
/// ones it still remembers too: with short calls, the gaps between them have none
/// in progress).
fn wake_at(control: &Control, now: std::time::Instant) -> std::time::Instant {
    let deadline = control.poll_timeout();
    if control.calls_remembered() > 0 {
        deadline.min(now + CALLS_TICK)
    } else {
        deadline
    }
}

/// SIGTERM or SIGINT: the first starts the shutdown, which the loop then runs until the
/// control path has stopped; another stops at once. Returns whether to stop now.
fn stop(control: &mut Control, notifier: &Notifier, signal: Signal) -> bool {
    if control.is_draining() {
        info!("{signal} again; stopping now");
        return true;
    }
    info!("{signal}; shutting down");
    notifier.stopping();
    control.shutdown(clock::now());
    false
}

/// Where the answers to the control path's lookups go.
struct Lookups {
    /// DNS (RFC 3263) for a trunk or a backend name.
    resolved: mpsc::UnboundedSender<(ResolveKey, Result<Resolved, ResolveError>)>,
    /// Our address facing a backend.
    probed: mpsc::UnboundedSender<(IpAddr, Option<IpAddr>)>,
    /// The Redis thread, with `[cluster]`.
    cluster: Option<cluster::Link>,
}

/// The end of a shutdown with `[cluster]`: this host's channels and lease are released
/// in Redis (waited for at most [`LEAVE_WAIT`]), so the others need not wait for the lease.
async fn leave_cluster(shared: &Arc<Mutex<Control>>, network: &Network, lookups: &Lookups) {
    if lookups.cluster.is_none() {
        return;
    }
    {
        let mut control = lock(shared);
        control.leave_cluster();
        pump(&mut control, network, lookups);
    }
    // The Redis thread marks the leave taken (or impossible) on the control path itself.
    let deadline = TokioInstant::from_std(clock::now()) + LEAVE_WAIT;
    while !lock(shared).has_left_cluster() && TokioInstant::from_std(clock::now()) < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How long a stopping host waits for Redis to take its leave.
const LEAVE_WAIT: Duration = Duration::from_secs(1);

/// Sends what the control path queued and starts the lookups it asked for.
fn pump(control: &mut Control, network: &Network, lookups: &Lookups) {
    if let Some(link) = &lookups.cluster {
        while let Some(request) = control.poll_cluster() {
            link.send(request);
        }
    }
    while let Some(transmit) = control.poll_transmit() {
        network.send(transmit);
    }
    while let Some(backend) = control.poll_probe() {
        let probed = lookups.probed.clone();
        tokio::spawn(async move {
            let toward = SocketAddr::new(backend, 5060);
            let local = network::source_address_toward(toward).await;
            if let Err(error) = &local {
                debug!(%backend, "no route to the backend: {error}");
            }
            let _ = probed.send((backend, local.ok()));
        });
    }
    while let Some(request) = control.poll_resolve() {
        let network = network.clone();
        let resolved = lookups.resolved.clone();
        tokio::spawn(async move {
            let result = network.resolve(&request).await;
            let _ = resolved.send((request.key, result));
        });
    }
}

/// Writes `[daemon] status_file` when something changed; a failure is logged once
/// until a write succeeds again.
struct StatusFile {
    path: Option<PathBuf>,
    dirty: bool,
    failing: bool,
}

impl StatusFile {
    fn new(path: Option<PathBuf>) -> Self {
        StatusFile {
            path,
            dirty: true,
            failing: false,
        }
    }

    fn set_path(&mut self, path: Option<PathBuf>) {
        if path != self.path {
            self.path = path;
            self.dirty = true;
            self.failing = false;
        }
    }

    fn write_if_dirty(&mut self, control: &Control) {
        if self.dirty {
            self.write(control);
        }
    }

    fn write(&mut self, control: &Control) {
        self.dirty = false;
        let Some(path) = &self.path else {
            return;
        };
        let (summary, trunks) = control.statuses(clock::now());
        let written_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let document = crate::status_file::StatusDocument::new(
            &summary,
            &trunks,
            control.is_draining(),
            written_at,
            std::process::id(),
        )
        .with_backends(&control.backend_statuses());
        match document.write(path) {
            Ok(()) if self.failing => {
                self.failing = false;
                info!("status file {} written again", path.display());
            }
            Ok(()) => {}
            Err(error) if !self.failing => {
                self.failing = true;
                warn!(
                    "cannot write the status file {}: {error} (`trunkd status` will not see this daemon; set [daemon] status_file)",
                    path.display()
                );
            }
            Err(_) => {}
        }
    }
}

/// A per-process seed from the OS-seeded keys of std's hasher (no extra dependency).
fn random_seed() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}

async fn load(path: &Path, options: &LoadOptions) -> Result<config::Config, ConfigErrors> {
    let path = path.to_path_buf();
    let options = options.clone();
    tokio::task::spawn_blocking(move || config::load(&path, &options))
        .await
        .expect("config loading does not panic")
}

fn start_watch(config: &config::Config, changes: &watch::Changes) -> Option<watch::ConfigWatch> {
    match watch::watch(config, changes) {
        Ok(watch) => Some(watch),
        Err(error) => {
            warn!("cannot watch config files ({error}); reload with SIGHUP");
            None
        }
    }
}

async fn reload(
    shared: &Mutex<Control>,
    options: &LoadOptions,
    notifier: &Notifier,
    last_reload_failed: &mut Option<usize>,
    watch: &mut Option<watch::ConfigWatch>,
    changes: &watch::Changes,
    last_reload: &Mutex<LastReload>,
) -> String {
    notifier.reloading();
    let main_file = lock(shared).config().main_file.clone();
    let loaded = load(&main_file, options).await;
    let mut control = lock(shared);
    let control = &mut *control;
    let old = Arc::clone(control.config());
    // The control path is sans IO: the shell stamps the reload's wall time, under the
    // control lock so a scrape sees it with the generation it produced.
    *last_reload.lock().unwrap_or_else(PoisonError::into_inner) = LastReload {
        success: loaded.is_ok(),
        timestamp_seconds: metrics::unix_seconds(),
    };
    control.handle_reload(clock::now(), loaded);
    if !Arc::ptr_eq(&old, control.config()) {
        // Re-arm: the include set, or a directory that did not exist before, may be new.
        *watch = start_watch(control.config(), changes);
    }
    drain_events(control, notifier, last_reload_failed);
    // The loaded document and, after a change, the old generation were just dropped.
    memory::release_free_memory();
    let status = systemd_status(control, *last_reload_failed);
    notifier.ready(&status);
    status
}

/// Writes the control path's events to the log. Status lines go to the `trunkd::status` target so
/// they can be filtered (`RUST_LOG=trunkd::status=info`). Returns whether any event
/// changed what the status file shows.
fn drain_events(
    control: &mut Control,
    notifier: &Notifier,
    last_reload_failed: &mut Option<usize>,
) -> bool {
    let mut changed = false;
    while let Some(event) = control.poll_event() {
        changed = true;
        match event {
            Event::Report { trunks, summary } => {
                for status in trunks {
                    info!(target: "trunkd::status", "{status}");
                }
                info!(target: "trunkd::status", "{summary}");
            }
            Event::TrunkUpdated { status, reason } => match reason {
                ChangeReason::Added => info!(target: "trunkd::status", "{status} event=added"),
                ChangeReason::Changed(fields) => info!(
                    target: "trunkd::status",
                    "{status} event=changed fields={}",
                    crate::config::TrunkField::join(&fields)
                ),
                ChangeReason::Registration(reason) => {
                    info!(target: "trunkd::status", "{status} event=registration reason=\"{reason}\"")
                }
                ChangeReason::Options(reason) => {
                    warn_or_info_options(&status.to_string(), &reason);
                }
            },
            Event::TrunkRemoved { id } => {
                info!(target: "trunkd::status", "trunk={id} state=removed event=removed");
            }
            Event::Reloaded {
                generation,
                diff,
                summary,
            } => {
                *last_reload_failed = None;
                info!("reload applied: generation={generation} {diff}");
                log_warnings(control.config());
                for setting in &diff.daemon_changed {
                    if matches!(*setting, "listen" | "tls" | "dns_servers") {
                        warn!("[daemon] {setting} changed: restart trunkd to apply it");
                    }
                    if matches!(*setting, "metrics" | "cluster") {
                        warn!("[{setting}] changed: restart trunkd to apply it");
                    }
                }
                info!(target: "trunkd::status", "{summary}");
            }
            Event::Warning { trunk, message } => warn!("trunk {trunk}: {message}"),
            Event::Info { trunk, message } => info!("trunk {trunk}: {message}"),
            Event::BackendUpdated { status, reason } => {
                warn_or_info_options(&status.to_string(), &reason);
            }
            Event::Shutdown(notice) => log_shutdown(notifier, &notice),
            Event::ReloadRejected { errors, generation } => {
                *last_reload_failed = Some(errors.0.len());
                for error in &errors.0 {
                    error!("{error}");
                }
                error!(
                    "reload rejected: {}; generation {generation} stays in force",
                    count_of(errors.0.len(), "error")
                );
            }
        }
    }
    changed
}

/// A generation's config warnings, at start and after each applied reload: it runs, but
/// probably not as meant.
fn log_warnings(config: &config::Config) {
    for warning in &config.warnings {
        warn!("{warning}");
    }
}

/// Draining is news (and systemd is asked for the time it takes); giving up on
/// something at shutdown is a warning.
fn log_shutdown(notifier: &Notifier, notice: &Notice) {
    match notice {
        Notice::Draining {
            calls, stop_within, ..
        } => {
            info!("{notice}");
            notifier.draining(*stop_within, *calls);
        }
        Notice::UnregistrationsUnanswered | Notice::DrainOver { .. } => warn!("{notice}"),
    }
}

/// A trunk going down is a warning, coming up is news.
fn warn_or_info_options(status: &str, reason: &str) {
    if reason.starts_with("down") {
        warn!(target: "trunkd::status", "{status} event=options reason=\"{reason}\"");
    } else {
        info!(target: "trunkd::status", "{status} event=options reason=\"{reason}\"");
    }
}

fn systemd_status(control: &Control, last_reload_failed: Option<usize>) -> String {
    let status = control.summary().systemd_status();
    match last_reload_failed {
        Some(count) => format!(
            "{status}; last reload rejected ({})",
            count_of(count, "error")
        ),
        None => status,
    }
}

/// "1 error", "2 errors".
pub fn count_of(count: usize, noun: &str) -> String {
    let plural = if count == 1 { "" } else { "s" };
    format!("{count} {noun}{plural}")
}

#[cfg(test)]
mod tests;
