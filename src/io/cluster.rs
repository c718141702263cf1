//! The Redis side of `[cluster]` (issue 17): one thread, one connection, the control
//! path's [`Request`]s run in the order they were made (batched into one pipeline when
//! several wait), and the answers handed to the control path on that thread, under its
//! lock, as a UDP listener thread hands it a message. A failed or slow connection is
//! reported once ([`Reply::Disconnected`]) and retried with a back-off; while it is down,
//! requests are dropped (the control path decides alone and rebuilds after
//! [`Reply::Connected`]). No listener thread and no tokio task ever waits for Redis.
//!
//! Client: the `redis` crate (redis-rs), the maintained Rust client, in its blocking
//! form on a thread of its own: an answer wakes that thread once, where the async
//! multiplexed connection woke a task, its driver task and the control loop (measured
//! with `TRUNKD_CALL_CLUSTER=1` in `benches/call_load.rs`). The scripts in
//! `cluster/*.lua` do each decision atomically.

use std::sync::mpsc;
use std::time::Duration;

use redis::{Connection, IntoConnectionInfo, Value};
use tracing::{info, warn};

use crate::cluster::{Reply, Request, Verdict};
use crate::config::cluster::Cluster as Settings;
use crate::io::clock;
use crate::io::hot_path::Direct;

/// A request not answered within this is a failed connection.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// At most this many requests go in one pipeline.
const BATCH: usize = 64;

const COMMON: &str = include_str!("cluster/common.lua");

/// The scripts' SHA1s, each script prefixed with the shared head, loaded on every
/// (re)connection.
struct Scripts {
    claim: String,
    report: String,
    heartbeat: String,
    acquire: String,
    resign: String,
    leave: String,
}

impl Scripts {
    fn sources() -> [&'static str; 6] {
        [
            include_str!("cluster/claim.lua"),
            include_str!("cluster/report.lua"),
            include_str!("cluster/heartbeat.lua"),
            include_str!("cluster/acquire.lua"),
            include_str!("cluster/resign.lua"),
            include_str!("cluster/leave.lua"),
        ]
    }

    fn load(connection: &mut Connection) -> redis::RedisResult<Scripts> {
        let mut shas = Vec::new();
        for body in Self::sources() {
            let sha: String = redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(format!("{COMMON}\n{body}"))
                .query(connection)?;
            shas.push(sha);
        }
        let mut shas = shas.into_iter();
        let mut next = || shas.next().unwrap_or_default();
        Ok(Scripts {
            claim: next(),
            report: next(),
            heartbeat: next(),
            acquire: next(),
            resign: next(),
            leave: next(),
        })
    }
}

/// Where the control path's requests go, in order (send under the control path's lock).
#[derive(Debug, Clone)]
pub(crate) struct Link {
    requests: mpsc::Sender<Request>,
}

impl Link {
    pub(crate) fn send(&self, request: Request) {
        let _ = self.requests.send(request);
    }
}

/// Starts the Redis thread. It hands each answer to the control path through `direct`
/// (whose `cluster` is set here to the thread's own link, for the requests an answer
/// leads to).
pub(crate) fn start(settings: &Settings, mut direct: Direct) -> std::io::Result<Link> {
    let (requests, received) = mpsc::channel();
    let link = Link { requests };
    direct.cluster = Some(link.clone());
    let replies = Replies(direct);
    let settings = settings.clone();
    std::thread::Builder::new()
        .name("trunkd-redis".into())
        .spawn(move || run(&settings, &received, &replies))?;
    Ok(link)
}

/// Where answers go: straight to the control path, under its lock.
struct Replies(Direct);

impl Replies {
    fn deliver(&self, replies: Vec<Reply>) {
        self.0.run(|control| {
            for reply in replies {
                control.handle_cluster(clock::now(), reply);
            }
        });
    }
}

fn connect(settings: &Settings) -> redis::RedisResult<(Connection, Scripts)> {
    let mut info = settings.redis.as_str().into_connection_info()?;
    if let Some(password) = &settings.password {
        let redis = info
            .redis_settings()
            .clone()
            .set_password(password.expose());
        info = info.set_redis_settings(redis);
    }
    let client = match &settings.ca_file {
        Some(path) => {
            let root = std::fs::read(path).map_err(|error| {
                redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "ca_file unreadable",
                    format!("{}: {error}", path.display()),
                ))
            })?;
            let certificates = redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root),
            };
            redis::Client::build_with_tls(info, certificates)?
        }
        None => redis::Client::open(info)?,
    };
    let mut connection = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
    connection.set_read_timeout(Some(RESPONSE_TIMEOUT))?;
    connection.set_write_timeout(Some(RESPONSE_TIMEOUT))?;
    let scripts = Scripts::load(&mut connection)?;
    Ok((connection, scripts))
}

fn run(settings: &Settings, requests: &mpsc::Receiver<Request>, replies: &Replies) {
    let boot = format!("{}-{:x}", settings.node, std::process::id() ^ nanos());
    let mut retry = RETRY_MIN;
    let mut reported_down = false;
    loop {
        let (mut connection, scripts) = match connect(settings) {
            Ok(connected) => connected,
            Err(error) => {
                if !std::mem::replace(&mut reported_down, true) {
                    warn!(
                        "cluster: Redis {} unreachable ({error}); deciding alone (degraded) \
                         until it answers",
                        settings.redis
                    );
                    let why = error.to_string();
                    replies.deliver(vec![Reply::Disconnected { why }]);
                }
                // Requests made meanwhile are void: the control path knows the link is
                // down (a Leave is answered, so a shutdown need not wait).
                let until = clock::now() + retry;
                loop {
                    let left = until.saturating_duration_since(clock::now());
                    match requests.recv_timeout(left) {
                        Ok(Request::Leave { .. }) => replies.deliver(vec![Reply::Left]),
                        Ok(_) => {}
                        Err(mpsc::RecvTimeoutError::Timeout) => break,
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
                retry = (retry * 2).min(RETRY_MAX);
                continue;
            }
        };
        // (`reported_down` stays: a failure below is reported there, once.)
        retry = RETRY_MIN;
        info!(
            "cluster: connected to Redis {} as node {}",
            settings.redis, settings.node
        );
        replies.deliver(vec![Reply::Connected]);
        loop {
            let Ok(first) = requests.recv() else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match requests.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            match execute(&mut connection, &scripts, settings, &boot, &batch) {
                Ok(answers) => replies.deliver(answers),
                Err(error) => {
                    warn!(
                        "cluster: Redis {} failed ({error}); deciding alone (degraded)",
                        settings.redis
                    );
                    reported_down = true;
                    let mut answers = vec![Reply::Disconnected {
                        why: error.to_string(),
                    }];
                    if batch.iter().any(|r| matches!(r, Request::Leave { .. })) {
                        answers.push(Reply::Left);
                    }
                    replies.deliver(answers);
                    break;
                }
            }
        }
    }
}

fn nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos())
}

/// Runs a batch as one pipeline; the answers in the same order.
fn execute(
    connection: &mut Connection,
    scripts: &Scripts,
    settings: &Settings,
    boot: &str,
    batch: &[Request],
) -> redis::RedisResult<Vec<Reply>> {
    let node = settings.node.as_str();
    let mut pipe = redis::pipe();
    for request in batch {
        let call = pipe.cmd("EVALSHA");
        match request {
            Request::Claim {
                trunk,
                count,
                max,
                rate,
                ..
            } => call
                .arg(&scripts.claim)
                .arg(0)
                .arg(node)
                .arg(trunk)
                .arg(count)
                .arg(max)
                .arg(rate),
            Request::Report { trunk, count } => call
                .arg(&scripts.report)
                .arg(0)
                .arg(node)
                .arg(trunk)
                .arg(count),
            Request::Heartbeat => call
                .arg(&scripts.heartbeat)
                .arg(0)
                .arg(node)
                .arg(settings.lease.as_millis() as u64)
                .arg(boot),
            Request::Acquire { trunk, epoch } => call
                .arg(&scripts.acquire)
                .arg(0)
                .arg(node)
                .arg(epoch)
                .arg(trunk),
            Request::Resign { trunk } => call.arg(&scripts.resign).arg(0).arg(node).arg(trunk),
            Request::Leave { held } => call.arg(&scripts.leave).arg(0).arg(node).arg(held),
        };
    }
    let values: Vec<Value> = pipe.query(connection)?;
    let mut answers = Vec::new();
    for (request, value) in batch.iter().zip(values) {
        if let Some(answer) = answer(request, value)? {
            answers.push(answer);
        }
    }
    Ok(answers)
}

fn unexpected(what: &str) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::UnexpectedReturnType,
        "unexpected script answer",
        what.to_string(),
    ))
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
        _ => None,
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(text) => Some(text.clone()),
        Value::Int(n) => Some(n.to_string()),
        Value::Nil => Some(String::new()),
        _ => None,
    }
}

fn texts(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::Array(items) => items.iter().map(text).collect(),
        _ => None,
    }
}

/// What a script's answer means; `None` for requests nobody waits on.
fn answer(request: &Request, value: Value) -> redis::RedisResult<Option<Reply>> {
    if let Value::ServerError(error) = &value {
        return Err(unexpected(&format!("{error:?}")));
    }
    Ok(match request {
        Request::Claim { ticket, .. } => {
            let verdict = match &value {
                Value::Array(items) => items.first().and_then(integer),
                _ => None,
            };
            let verdict = match verdict.ok_or_else(|| unexpected("claim"))? {
                1 => Verdict::Granted,
                2 => Verdict::RateLimited,
                3 => Verdict::NotMember,
                _ => Verdict::Busy,
            };
            Some(Reply::Claimed {
                ticket: *ticket,
                verdict,
            })
        }
        Request::Heartbeat => {
            let Value::Array(items) = &value else {
                return Err(unexpected("heartbeat"));
            };
            let [epoch, rejoined, boot, alive, totals, vacant] = &items[..] else {
                return Err(unexpected("heartbeat"));
            };
            let totals = texts(totals).ok_or_else(|| unexpected("heartbeat totals"))?;
            Some(Reply::Heartbeat {
                epoch: integer(epoch).ok_or_else(|| unexpected("epoch"))? as u64,
                rejoined: integer(rejoined) == Some(1),
                boot: text(boot).unwrap_or_default(),
                alive: texts(alive).ok_or_else(|| unexpected("alive"))?,
                totals: totals
                    .chunks(2)
                    .filter_map(|pair| Some((pair[0].clone(), pair.get(1)?.parse().ok()?)))
                    .collect(),
                vacant: texts(vacant).ok_or_else(|| unexpected("vacant"))?,
            })
        }
        Request::Acquire { trunk, .. } => Some(Reply::Acquired {
            trunk: trunk.clone(),
            holder: text(&value).ok_or_else(|| unexpected("acquire"))?,
        }),
        Request::Leave { .. } => Some(Reply::Left),
        Request::Report { .. } | Request::Resign { .. } => None,
    })
}
