//! The control socket's accept loop and line framing: one thread per client, one JSON
//! request per line, answered in order. A line over [`MAX_REQUEST_BYTES`] gets a refusal
//! and the connection is closed (what follows it cannot be framed reliably). Before any
//! request, the peer's credentials (SO_PEERCRED, from the kernel, not from the client)
//! must be root's or the configured user's; anyone else gets one refusal and is closed.

use super::context::Daemon;
use crate::protocol::{self, MAX_REQUEST_BYTES};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A client silent this long is disconnected.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A client that does not read its reply within this long is disconnected.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// One framed line from a client.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A request (in the buffer, without its newline).
    Request,
    /// Longer than the limit; the rest of it is unread.
    TooLong,
    /// The client closed.
    End,
}

/// Reads one line of at most [`MAX_REQUEST_BYTES`] into `buf`, never buffering more.
/// A last line without a newline still counts as a request.
pub fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Line> {
    buf.clear();
    let n = reader
        .take(MAX_REQUEST_BYTES as u64 + 1)
        .read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(Line::End);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(Line::Request);
    }
    Ok(if buf.len() > MAX_REQUEST_BYTES {
        Line::TooLong
    } else {
        Line::Request
    })
}

/// Accepts clients until the process exits, at most `max_clients` at once (more are
/// refused, so a runaway script cannot exhaust threads).
pub fn spawn(listener: UnixListener, daemon: Arc<Daemon>, max_clients: usize) -> io::Result<()> {
    let clients = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("control-accept".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let mut stream = match stream {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a control client");
                        // Out of descriptors, say: do not spin on it.
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                };
                if clients.fetch_add(1, Ordering::Relaxed) >= max_clients {
                    clients.fetch_sub(1, Ordering::Relaxed);
                    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
                    let _ = stream.write_all(
                        protocol::encode_error("too many control clients; try again").as_bytes(),
                    );
                    continue;
                }
                let (daemon, clients) = (daemon.clone(), clients.clone());
                let spawned = std::thread::Builder::new()
                    .name("control-client".into())
                    .spawn(move || {
                        if let Err(e) = serve(stream, &daemon) {
                            tracing::debug!(error = %e, "control client");
                        }
                        clients.fetch_sub(1, Ordering::Relaxed);
                    });
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "no thread for a control client");
                }
            }
        })?;
    Ok(())
}

/// Answers one client's requests until it closes, misbehaves, or asks for `down`.
pub fn serve(stream: UnixStream, daemon: &Daemon) -> io::Result<()> {
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    if let Err(why) = permitted(&stream, daemon.allowed_uid) {
        tracing::warn!("control client refused: {why}");
        let mut writer = &stream;
        writer.write_all(protocol::encode_error(&why.to_string()).as_bytes())?;
        return Ok(());
    }
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut buf = Vec::with_capacity(1024);
    loop {
        match read_line(&mut reader, &mut buf)? {
            Line::End => return Ok(()),
            Line::TooLong => {
                let message = format!("request longer than {MAX_REQUEST_BYTES} bytes");
                writer.write_all(protocol::encode_error(&message).as_bytes())?;
                return Ok(());
            }
            Line::Request => {
                let (reply, down) = daemon.answer(&buf);
                let written = writer
                    .write_all(reply.as_bytes())
                    .and_then(|()| writer.flush());
                if down {
                    // The daemon exits once this reply is out (or could not be sent).
                    daemon.shared.update(|s| s.down_replied = true);
                    return written;
                }
                written?;
            }
        }
    }
}

/// Why a client may not use the socket.
#[derive(Debug, thiserror::Error)]
pub enum NotPermitted {
    #[error("permission denied: cannot read the peer's credentials")]
    NoCredentials(#[source] rustix::io::Errno),
    #[error("permission denied: uid {uid} may not use this socket (only root and uid {allowed})")]
    Uid { uid: u32, allowed: u32 },
}

/// Root, or the one allowed user, by the kernel's record of who connected.
pub fn permitted(stream: &UnixStream, allowed_uid: u32) -> Result<(), NotPermitted> {
    let cred =
        rustix::net::sockopt::socket_peercred(stream).map_err(NotPermitted::NoCredentials)?;
    let uid = cred.uid.as_raw();
    if uid == 0 || uid == allowed_uid {
        Ok(())
    } else {
        Err(NotPermitted::Uid {
            uid,
            allowed: allowed_uid,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn lines_are_framed_and_bounded() {
        let mut buf = Vec::new();
        let mut input = Cursor::new(b"{\"a\":1}\n\nlast".to_vec());
        assert_eq!(read_line(&mut input, &mut buf).unwrap(), Line::Request);
        assert_eq!(buf, b"{\"a\":1}");
        assert_eq!(read_line(&mut input, &mut buf).unwrap(), Line::Request);
        assert_eq!(buf, b"");
        assert_eq!(read_line(&mut input, &mut buf).unwrap(), Line::Request);
        assert_eq!(buf, b"last");
        assert_eq!(read_line(&mut input, &mut buf).unwrap(), Line::End);

        let mut exact = vec![b'x'; MAX_REQUEST_BYTES];
        exact.push(b'\n');
        assert_eq!(
            read_line(&mut Cursor::new(exact), &mut buf).unwrap(),
            Line::Request
        );
        assert_eq!(buf.len(), MAX_REQUEST_BYTES);

        let mut input = Cursor::new(vec![b'x'; 10 * MAX_REQUEST_BYTES]);
        assert_eq!(read_line(&mut input, &mut buf).unwrap(), Line::TooLong);
        assert_eq!(
            buf.len(),
            MAX_REQUEST_BYTES + 1,
            "never buffers past the limit"
        );
    }
}
