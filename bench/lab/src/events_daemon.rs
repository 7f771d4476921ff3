//! The lab's event server as a standing process, for operators and `control`: `bench lab
//! up` starts `bench lab events-serve` (an [`EventServer`] plus a command socket,
//! `/run/quickdraw-lab/events.sock`), `bench lab emit` sends it one command, `bench lab
//! down` stops it. A command is one JSON line ([`Emit`]); the answer is one JSON line.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddrV4;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::events::{udp_feed, EventServer};
use super::{process, LabPaths, APPLIANCE_IP};
use crate::Error;

/// What to emit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Emit {
    /// An SSE event with this data (each line its own `data:` line), to every stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<String>,
    /// The SSE event's type (`event:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Cut the SSE event's bytes here: each piece in its own TLS record and segment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub split: Vec<usize>,
    /// A datagram with this payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp: Option<String>,
    /// Where the datagram goes (default: the appliance's feed, 198.18.0.10:9000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<SocketAddrV4>,
}

impl Emit {
    /// The SSE event's wire text.
    pub fn sse_text(&self) -> Option<String> {
        let data = self.sse.as_ref()?;
        let mut text = String::new();
        if let Some(kind) = &self.event {
            text += &format!("event: {kind}\n");
        }
        for line in data.lines() {
            text += &format!("data: {line}\n");
        }
        if data.is_empty() {
            text += "data:\n";
        }
        text.push('\n');
        Some(text)
    }
}

/// The answer to an [`Emit`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Emitted {
    /// Streams the SSE event was written to.
    pub streams: usize,
    /// Datagrams sent.
    pub datagrams: usize,
    /// Why nothing was done, if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn socket_path(paths: &LabPaths) -> PathBuf {
    paths.state_dir.join("events.sock")
}

fn pid_path(paths: &LabPaths) -> PathBuf {
    paths.state_dir.join("events.pid")
}

fn io_error(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::EventServer { what, source }
}

/// Serves until killed: the event server and its command socket.
pub fn serve(paths: &LabPaths) -> Result<(), Error> {
    let server = EventServer::start(paths)?;
    let path = socket_path(paths);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(io_error("bind the command socket"))?;
    std::fs::write(pid_path(paths), format!("{}\n", std::process::id()))
        .map_err(io_error("write the pid file"))?;
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let _ = answer(&server, conn);
    }
    Ok(())
}

fn answer(server: &EventServer, conn: UnixStream) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new(&conn).read_line(&mut line)?;
    let reply = match serde_json::from_str::<Emit>(&line) {
        Ok(emit) => {
            let mut r = Emitted::default();
            if let Some(text) = emit.sse_text() {
                r.streams = server.send_sse(text.as_bytes(), &emit.split, Duration::from_millis(1));
            }
            if let Some(payload) = &emit.udp {
                let to = emit.to.unwrap_or(udp_feed(APPLIANCE_IP));
                match server.send_udp(to, payload.as_bytes()) {
                    Ok(()) => r.datagrams = 1,
                    Err(e) => r.error = Some(e.to_string()),
                }
            }
            r
        }
        Err(e) => Emitted {
            error: Some(format!("bad command: {e}")),
            ..Emitted::default()
        },
    };
    let mut conn = conn;
    writeln!(
        conn,
        "{}",
        serde_json::to_string(&reply).unwrap_or_default()
    )
}

/// The running server's pid, if any.
fn running(paths: &LabPaths) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_path(paths))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let ours = process::cmdline(pid).is_some_and(|c| c.contains("lab events-serve"));
    (ours && process::alive(pid)).then_some(pid)
}

/// Starts `bench lab events-serve` (this binary) in its own process group, unless one
/// runs; waits until its command socket answers.
pub fn spawn(paths: &LabPaths, bench: &Path) -> Result<(), Error> {
    if running(paths).is_some() {
        return Ok(());
    }
    Command::new(bench)
        .args(["lab", "events-serve"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(io_error("start bench lab events-serve"))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if running(paths).is_some() && UnixStream::connect(socket_path(paths)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(Error::EventServer {
        what: "bench lab events-serve did not come up",
        source: std::io::ErrorKind::TimedOut.into(),
    })
}

/// Stops the server if one runs (before the namespace goes: its sockets live there).
pub fn stop(paths: &LabPaths) -> Result<(), Error> {
    if let Some(pid) = running(paths) {
        let pids = BTreeSet::from([pid]);
        process::signal(&pids, "TERM")?;
        if !process::wait_gone(&pids, Duration::from_secs(2)).is_empty() {
            process::signal(&pids, "KILL")?;
            process::wait_gone(&pids, Duration::from_secs(1));
        }
    }
    let _ = std::fs::remove_file(pid_path(paths));
    let _ = std::fs::remove_file(socket_path(paths));
    Ok(())
}

/// Sends one command to the running server.
pub fn emit(paths: &LabPaths, command: &Emit) -> Result<Emitted, Error> {
    let mut conn =
        UnixStream::connect(socket_path(paths)).map_err(io_error("connect to the event server"))?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(io_error("socket timeout"))?;
    let line = serde_json::to_string(command).unwrap_or_default();
    writeln!(conn, "{line}").map_err(io_error("send the command"))?;
    let mut reply = String::new();
    BufReader::new(&conn)
        .read_line(&mut reply)
        .map_err(io_error("read the answer"))?;
    serde_json::from_str(&reply).map_err(|e| io_error("parse the answer")(std::io::Error::other(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_text_frames_each_line_and_ends_with_a_blank_line() {
        let e = Emit {
            sse: Some("{\"a\":1,\n\"b\":2}".into()),
            event: Some("stock".into()),
            ..Emit::default()
        };
        assert_eq!(
            e.sse_text().unwrap(),
            "event: stock\ndata: {\"a\":1,\ndata: \"b\":2}\n\n"
        );
        assert_eq!(Emit::default().sse_text(), None);
        let parsed: Emit = serde_json::from_str(r#"{"udp":"x","to":"198.18.0.1:9000"}"#).unwrap();
        assert_eq!(parsed.to, Some("198.18.0.1:9000".parse().unwrap()));
        assert!(serde_json::from_str::<Emit>(r#"{"sse":"x","bogus":1}"#).is_err());
    }
}
