//! The daemon in process, on loopback and on tokio's paused clock: [`serve`] with its
//! listeners bound here, signals sent down a channel, a registrar played by the test, its
//! log read as it is written. No wall-clock waits: time moves when the daemon has nothing
//! to do, or not at all while the test holds it ([`Frozen`]).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::subscriber::DefaultGuard;

use super::signals::Signal;
use super::*;
use crate::control::shutdown::UNREGISTER_DEADLINE;
use crate::testing::registrar_ok;

/// A bound on every wait, in virtual time: a test that hangs fails instead.
const WAIT: Duration = Duration::from_secs(120);
/// How long the clock may stay frozen, in real time: then waits on the virtual clock
/// (bounded by [`WAIT`]) can fail the test.
const FROZEN_AT_MOST: Duration = Duration::from_secs(30);

/// Holds tokio's paused clock still while it lives, the runtime idle or not (a blocking
/// task inhibits auto-advance; tokio's documentation of `pause` suggests it). Needed
/// while a datagram is on its way to the daemon: its UDP socket is read by a thread of
/// its own, and a runtime that looks idle meanwhile would jump the clock to the next
/// timer, and the next: retransmissions, even a transaction timeout, before the answer
/// arrives.
struct Frozen(
    #[allow(dead_code, reason = "dropping it lets the clock go")] std::sync::mpsc::Sender<()>,
);

fn freeze() -> Frozen {
    let (hold, held) = std::sync::mpsc::channel::<()>();
    tokio::task::spawn_blocking(move || {
        let _ = held.recv_timeout(FROZEN_AT_MOST);
    });
    Frozen(hold)
}

/// The daemon's log lines, as they are written (the thread's default subscriber: the
/// daemon runs on the test's thread).
struct Log {
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
    _guard: DefaultGuard,
}

#[derive(Clone)]
struct Lines(mpsc::UnboundedSender<String>);

impl std::io::Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        for line in String::from_utf8_lossy(bytes).lines() {
            let _ = self.0.send(line.to_owned());
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Lines {
    type Writer = Lines;

    fn make_writer(&'a self) -> Lines {
        self.clone()
    }
}

impl Log {
    fn capture() -> Log {
        let (sender, lines) = mpsc::unbounded_channel();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(Lines(sender))
            .with_ansi(false)
            .without_time()
            .with_max_level(tracing::Level::INFO)
            .finish();
        Log {
            lines,
            seen: Vec::new(),
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    /// The next line containing `needle`.
    async fn wait_for(&mut self, needle: &str) -> String {
        let find = async {
            loop {
                let line = self.lines.recv().await.expect("the log goes on");
                self.seen.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
        };
        within(find).await
    }

    /// Every line so far.
    fn read(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }
}

async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .expect("done within WAIT (virtual time)")
}

/// The test's registrar: a UDP socket on loopback.
struct Registrar(UdpSocket);

impl Registrar {
    async fn bind() -> Registrar {
        Registrar(UdpSocket::bind("127.0.0.1:0").await.unwrap())
    }

    fn port(&self) -> u16 {
        self.0.local_addr().unwrap().port()
    }

    /// The next REGISTER whose Expires is `expires`, and where it came from (earlier
    /// retransmissions skipped).
    async fn receive(&self, expires: &str) -> (String, SocketAddr) {
        let expected = format!("\r\nExpires: {expires}\r\n");
        within(async {
            let mut buffer = vec![0u8; 65_535];
            loop {
                let (length, from) = self.0.recv_from(&mut buffer).await.unwrap();
                let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
                if text.starts_with("REGISTER ") && text.contains(&expected) {
                    return (text, from);
                }
            }
        })
        .await
    }

    async fn answer(&self, request: &str, expires: u32, to: SocketAddr) {
        let ok = registrar_ok(request, expires);
        self.0.send_to(ok.as_bytes(), to).await.unwrap();
    }
}

fn call_id(request: &str) -> &str {
    request
        .lines()
        .find_map(|line| line.strip_prefix("Call-ID: "))
        .unwrap()
}

/// A daemon whose one trunk registers with `registrar`, running on this runtime; the
/// sender of its signals and the address it listens on.
struct Running {
    signals: mpsc::UnboundedSender<Signal>,
    address: SocketAddr,
    served: tokio::task::JoinHandle<Result<(), RunError>>,
    dir: tempfile::TempDir,
}

fn start(registrar: &Registrar) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trunkd.toml");
    let text = format!(
        "[daemon]\nlisten = [\"udp:127.0.0.1:0\"]\nstatus_interval = \"1h\"\nstatus_file = {:?}\n\n\
         [trunks.carrier]\ndomain = \"127.0.0.1\"\nport = {}\ntransport = \"udp\"\n\
         direction = \"outbound\"\nusername = \"u\"\npassword = \"p\"\nregister = true\n\
         options_interval = 0\n",
        dir.path().join("status.json"),
        registrar.port()
    );
    std::fs::write(&path, text).unwrap();
    let options = LoadOptions::default();
    let config = config::load(&path, &options).unwrap_or_else(|errors| panic!("{errors}"));
    let listeners = listeners::bind(&config).unwrap();
    let address = listeners.listens()[0].address;
    let (signals, received) = mpsc::unbounded_channel();
    let served = tokio::spawn(serve(Daemon {
        config,
        options,
        listeners,
        signals: received,
        notifier: Notifier::disabled(),
        seed: 7,
    }));
    Running {
        signals,
        address,
        served,
        dir,
    }
}

/// A daemon whose trunk registered, then got `signal`; its un-REGISTER has reached the
/// registrar, unanswered yet. The clock is frozen since the registrar's first answer.
struct Stopping {
    log: Log,
    registrar: Registrar,
    daemon: Running,
    frozen: Frozen,
    /// When the signal was sent (the clock has not moved since).
    stop: Instant,
    register: String,
    unregister: String,
    from: SocketAddr,
}

async fn registered_then(signal: Signal) -> Stopping {
    let mut log = Log::capture();
    let registrar = Registrar::bind().await;
    let daemon = start(&registrar);
    // The start-up spread passes at once: the daemon has nothing else to do.
    let (register, from) = registrar.receive("3600").await;
    assert_eq!(from, daemon.address);
    let frozen = freeze();
    registrar.answer(&register, 600, from).await;
    log.wait_for("trunk=carrier state=registered").await;
    let stop = clock::now();
    daemon.signals.send(signal).unwrap();
    let (unregister, from) = registrar.receive("0").await;
    Stopping {
        log,
        registrar,
        daemon,
        frozen,
        stop,
        register,
        unregister,
        from,
    }
}

async fn stopped(daemon: Running) {
    let result = within(daemon.served).await.expect("serve does not panic");
    assert!(result.is_ok(), "{result:?}");
}

/// SIGTERM: the un-REGISTER goes out at once (same Call-ID, next CSeq), and `serve`
/// returns the instant its 200 arrives: no time passes.
#[tokio::test(start_paused = true)]
async fn a_stop_unregisters_and_returns_when_the_registrar_answers() {
    let Stopping {
        mut log,
        registrar,
        daemon,
        frozen: _frozen,
        stop,
        register,
        unregister,
        from,
    } = registered_then(Signal::Terminate).await;
    assert_eq!(call_id(&unregister), call_id(&register));
    assert!(
        unregister.contains("\r\nCSeq: 2 REGISTER\r\n"),
        "{unregister}"
    );
    registrar.answer(&unregister, 0, from).await;
    stopped(daemon).await;
    assert_eq!(clock::now(), stop);
    let log = log.read();
    assert!(
        log.iter()
            .any(|line| line.ends_with("SIGTERM; shutting down"))
    );
    assert!(log.last().unwrap().ends_with("stopped"), "{log:#?}");
    assert!(
        !log.iter().any(|line| line.contains("deadline")),
        "{log:#?}"
    );
}

/// The registrar never answers the un-REGISTER: `serve` returns at the deadline, to the
/// timer wheel's millisecond, with a warning.
#[tokio::test(start_paused = true)]
async fn a_stop_gives_up_on_an_unanswered_unregistration_at_the_deadline() {
    let mut stopping = registered_then(Signal::Terminate).await;
    // The status file says so from the start of the shutdown, not only once stopped.
    let status = std::fs::read_to_string(stopping.daemon.dir.path().join("status.json")).unwrap();
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["draining"], true, "{status}");
    // Nothing is on its way to the daemon any more: let the clock run.
    drop(stopping.frozen);
    stopped(stopping.daemon).await;
    let took = clock::now() - stopping.stop;
    assert!(
        took >= UNREGISTER_DEADLINE && took <= UNREGISTER_DEADLINE + Duration::from_millis(1),
        "{took:?}"
    );
    let log = stopping.log.read();
    let warning = log
        .iter()
        .find(|line| line.contains("shutdown deadline reached"));
    assert!(
        warning.is_some_and(|line| line.contains("WARN")),
        "{log:#?}"
    );
}

/// A second SIGTERM or SIGINT stops at once, answers or not.
#[tokio::test(start_paused = true)]
async fn a_second_signal_stops_at_once() {
    let mut stopping = registered_then(Signal::Interrupt).await;
    let signals = &stopping.daemon.signals;
    // A SIGHUP while stopping reloads nothing.
    signals.send(Signal::Hangup).unwrap();
    signals.send(Signal::Terminate).unwrap();
    stopped(stopping.daemon).await;
    assert_eq!(clock::now(), stopping.stop);
    let log = stopping.log.read();
    assert!(
        log.iter()
            .any(|line| line.ends_with("SIGINT; shutting down"))
    );
    assert!(
        log.iter()
            .any(|line| line.ends_with("SIGTERM again; stopping now"))
    );
    assert!(!log.iter().any(|line| line.contains("reload")), "{log:#?}");
}
