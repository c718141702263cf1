//! `[metrics] listen`: a minimal HTTP/1.x endpoint for Prometheus scrapes. Per connection
//! it reads one request head (bounded in size and time), answers `GET /metrics` with the
//! text the control path renders under its lock (`Control::metrics`), anything else with
//! 404 (or 405/400), and closes. No keep-alive, no TLS: bind it to a management address.
//!
//! Nothing here is on the SIP paths: a scrape costs one lock of the control path for the
//! render, the same as a status file write.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use crate::control::Control;
use crate::control::metrics::{CONTENT_TYPE, LastReload};
use crate::io::clock;
use crate::io::hot_path::lock;

/// A request head longer than this is refused (a scrape's is a few hundred bytes).
const MAX_REQUEST: usize = 8 * 1024;
/// A client that has not sent its whole request head by then is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Writing the answer takes at most this long.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 16;

#[derive(Debug, thiserror::Error)]
#[error("cannot bind [metrics] listen {address}: {source}")]
pub struct BindError {
    pub address: SocketAddr,
    pub source: std::io::Error,
}

/// Binds `[metrics] listen` at start, before READY, so a taken port fails the start.
pub(crate) fn bind(address: SocketAddr) -> Result<std::net::TcpListener, BindError> {
    let error = |source| BindError { address, source };
    // std sets SO_REUSEADDR on Unix, so a restart does not fail on TIME_WAIT.
    let listener = std::net::TcpListener::bind(address).map_err(error)?;
    listener.set_nonblocking(true).map_err(error)?;
    Ok(listener)
}

/// What a scrape reads besides the control path: the shell's record of the last
/// config load (the control path never reads the wall clock).
pub(crate) type SharedLastReload = Arc<Mutex<LastReload>>;

/// The wall clock now, as the metrics' timestamps want it.
pub(crate) fn unix_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

/// Accepts scrapes until the task is aborted.
pub(crate) async fn serve(
    listener: TcpListener,
    control: Arc<Mutex<Control>>,
    last_reload: SharedLastReload,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: do not spin.
                warn!("metrics listener: accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            debug!(%peer, "metrics: too many connections; closed");
            continue;
        };
        let control = Arc::clone(&control);
        let last_reload = Arc::clone(&last_reload);
        tokio::spawn(async move {
            if let Err(error) = answer(stream, &control, &last_reload).await {
                debug!(%peer, "metrics: {error}");
            }
            drop(slot);
        });
    }
}

async fn answer(
    mut stream: TcpStream,
    control: &Mutex<Control>,
    last_reload: &Mutex<LastReload>,
) -> std::io::Result<()> {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(head) => head?,
        Err(_) => return Err(std::io::Error::other("request not read within 5 s")),
    };
    let response = match head.as_deref().map(route) {
        Some(Route::Metrics) => {
            // The control lock first: the shell updates `last_reload` under it.
            let control = lock(control);
            let last_reload = *last_reload.lock().unwrap_or_else(PoisonError::into_inner);
            let body = control.metrics(clock::now(), last_reload);
            drop(control);
            response("200 OK", CONTENT_TYPE, &body)
        }
        Some(Route::NotFound) => response("404 Not Found", "text/plain", "not found\n"),
        Some(Route::NotAllowed) => response(
            "405 Method Not Allowed",
            "text/plain",
            "only GET /metrics\n",
        ),
        Some(Route::Bad) | None => response("400 Bad Request", "text/plain", "bad request\n"),
    };
    tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    })
    .await
    .map_err(|_| std::io::Error::other("answer not written within 10 s"))?
}

/// Reads up to the end of the request head; `None` when it is too long or the client
/// closed first.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(512);
    let mut buffer = [0u8; 1024];
    loop {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Ok(None);
        }
        head.extend_from_slice(&buffer[..read]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(head));
        }
        if head.len() > MAX_REQUEST {
            return Ok(None);
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics,
    NotFound,
    NotAllowed,
    Bad,
}

/// The request line decides: `GET /metrics HTTP/1.x` (a query string is ignored).
fn route(head: &[u8]) -> Route {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let Ok(line) = std::str::from_utf8(line) else {
        return Route::Bad;
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::Bad;
    };
    if !version.starts_with("HTTP/1.") {
        return Route::Bad;
    }
    let path = target.split('?').next().unwrap_or_default();
    match (method, path) {
        ("GET", "/metrics") => Route::Metrics,
        (_, "/metrics") => Route::NotAllowed,
        _ => Route::NotFound,
    }
}

fn response(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_metrics_is_served() {
        assert_eq!(route(b"GET /metrics HTTP/1.1\r\n\r\n"), Route::Metrics);
        assert_eq!(route(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Route::Metrics);
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"GET /metricsx HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"POST /metrics HTTP/1.1\r\n\r\n"), Route::NotAllowed);
        assert_eq!(route(b"GET /metrics\r\n\r\n"), Route::Bad);
        assert_eq!(route(b"INVITE sip:a@b SIP/2.0\r\n\r\n"), Route::Bad);
        assert_eq!(route(b"\xff\xfe\r\n\r\n"), Route::Bad);
    }

    #[test]
    fn a_taken_port_is_a_clear_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = taken.local_addr().unwrap();
        let error = bind(address).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("cannot bind [metrics] listen {address}: ")),
            "{error}"
        );
    }
}
