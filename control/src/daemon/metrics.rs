//! The Prometheus endpoint: `GET /metrics` on a loopback address, in the text format.
//!
//! A dozen lines over std's `TcpListener` rather than a web framework: one read-only
//! endpoint on loopback, answered one request per connection, needs no router, no TLS
//! and no async runtime, and a framework would bring all three into a daemon whose other
//! threads must stay predictable.

use super::state::Shared;
use crate::stats::prometheus;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// A scraper has this long to send its request and read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest request head read.
const MAX_HEAD: u64 = 8 * 1024;

/// Binds `addr` (loopback only) and serves it from a thread until the process exits.
/// Returns the bound address (the port may have been 0).
pub fn spawn(addr: SocketAddr, shared: Arc<Shared>) -> io::Result<SocketAddr> {
    if !addr.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{addr} is not a loopback address"),
        ));
    }
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("control-metrics".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(s) => {
                        if let Err(e) = answer(s, &shared) {
                            tracing::debug!(error = %e, "metrics client");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a metrics client");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })?;
    Ok(bound)
}

fn answer(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut reader = BufReader::new((&stream).take(MAX_HEAD));
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // The rest of the head is read and ignored.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, kind, body) = match (method, path) {
        ("GET", "/metrics") => {
            let s = shared.lock();
            (
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                prometheus::render(&s.stats, &s.gauges()),
            )
        }
        ("GET", _) => ("404 Not Found", "text/plain", "try /metrics\n".to_owned()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n".to_owned(),
        ),
    };
    let mut out = &stream;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::state::State;
    use std::io::Read;

    fn get(addr: SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn serves_metrics_on_loopback_only() {
        let shared = Arc::new(Shared::new(State::new(
            "kernel",
            "kernel",
            false,
            &["lab".into()],
        )));
        shared.update(|s| s.stats.count(0, |c| c.fires = 4));
        let addr = spawn("127.0.0.1:0".parse().unwrap(), shared.clone()).unwrap();
        let text = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(
            text.contains("quickdraw_fires_total{target=\"lab\",trigger=\"manual\"} 4\n"),
            "{text}"
        );
        assert!(get(addr, "GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(get(addr, "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        // Garbage is answered, and the endpoint keeps serving.
        let _ = get(addr, "\u{1}\u{2}\r\n\r\n");
        assert!(get(addr, "GET /metrics HTTP/1.0\r\n\r\n").contains("200 OK"));
        let err = spawn("0.0.0.0:0".parse().unwrap(), shared).unwrap_err();
        assert!(err.to_string().contains("not a loopback"), "{err}");
    }
}
