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
pub fn reply_timeout(request: &Request) -> Duration {
    match request {
        Request::Fire { .. } => Duration::from_secs(11 * 60),
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
    stream
        .write_all(protocol::encode_request(request).as_bytes())
        .context("sending the request")?;
    let mut line = Vec::new();
    BufReader::new(stream)
        .read_until(b'\n', &mut line)
        .context("reading the reply")?;
    if line.is_empty() {
        return Err(anyhow!("the daemon closed the connection without a reply"));
    }
    protocol::decode_reply(&line).map_err(|e| match e {
        ProtocolError::Refused(message) => anyhow!("{message}"),
        e => anyhow!("unreadable reply from the daemon: {e}"),
    })
}
