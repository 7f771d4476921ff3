//! The CLI's side of the control socket: connect, send one request, read one reply.

use crate::protocol::{self, ProtocolError, Request};
use anyhow::{anyhow, Context};
use serde::de::DeserializeOwned;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// How long the CLI waits for a reply. The daemon bounds every wait itself (a fire at
/// most the target's response timeout plus 2 s, and that timeout is at most 10 min);
/// this only keeps a wedged daemon from hanging the CLI forever.
/// A `wait` is bounded by its own timeout, or by the arm's deadline (at most a year
/// ahead).
pub fn reply_timeout(request: &Request) -> Duration {
    match request {
        Request::Fire { .. } => Duration::from_secs(11 * 60),
        Request::Wait {
            timeout_ms: Some(ms),
            ..
        } => Duration::from_millis(*ms) + Duration::from_secs(30),
        Request::Wait { .. } => Duration::from_secs(367 * 24 * 3600),
        // At most `timing.sync_max_ms` (30 s) plus the probes' own waits.
        Request::Sync { .. } => Duration::from_secs(120),
        // A disarm of every arm waits for each acknowledgement in turn.
        Request::DisarmAll {} => Duration::from_secs(200),
        _ => Duration::from_secs(30),
    }
}

/// Sends `request` to the daemon at `socket` and returns its reply, or its refusal as
/// the error.
pub fn call<T: DeserializeOwned>(socket: &Path, request: &Request) -> anyhow::Result<T> {
    let mut stream = UnixStream::connect(socket).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
            anyhow!(
                "no daemon at {} ({e}); start one with `control up`",
                socket.display()
            )
        }
        _ => anyhow!("cannot reach the daemon at {}: {e}", socket.display()),
    })?;
    stream.set_read_timeout(Some(reply_timeout(request)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let sent = stream.write_all(protocol::encode_request(request).as_bytes());
    let mut line = Vec::new();
    let read = BufReader::new(stream).read_until(b'\n', &mut line);
    // A daemon that refuses a client (its uid) answers before reading and closes: the
    // write may then fail, while the refusal is still there to read.
    if line.is_empty() {
        sent.context("sending the request")?;
    }
    read.context("reading the reply")?;
    if line.is_empty() {
        return Err(anyhow!("the daemon closed the connection without a reply"));
    }
    protocol::decode_reply(&line).map_err(|e| match e {
        ProtocolError::Refused(message) => anyhow!("{message}"),
        e => anyhow!("unreadable reply from the daemon: {e}"),
    })
}
