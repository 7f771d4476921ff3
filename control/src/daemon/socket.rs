//! The control socket's file: its directory made owner-only, a stale socket from a
//! crashed daemon replaced, a live daemon's socket never touched, the socket itself 0600.
//! Whoever can connect can fire orders, so only the owner (root) may.

use crate::protocol::{self, Request, StatusReply};
use anyhow::{bail, Context};
use std::fs::{DirBuilder, Permissions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a daemon already on the path gets to answer before we call it wedged.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// A bound control socket. Dropping it removes the file.
#[derive(Debug)]
pub struct ControlSocket {
    pub listener: UnixListener,
    path: PathBuf,
}

impl ControlSocket {
    /// Prepares the directory, clears a stale socket, binds, and restricts the mode.
    pub fn bind(path: &Path) -> anyhow::Result<ControlSocket> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            } else {
                check_directory(dir)?;
            }
        }
        clear_stale(path)?;
        let listener =
            UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
        let socket = ControlSocket {
            listener,
            path: path.to_owned(),
        };
        std::fs::set_permissions(path, Permissions::from_mode(0o600))
            .with_context(|| format!("chmod 600 {}", path.display()))?;
        Ok(socket)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %self.path.display(), error = %e, "removing the control socket");
            }
        }
    }
}

/// An existing directory is used as it is, unless others could replace the socket in
/// it (writable by group or others, without the sticky bit). Wider than owner-only is
/// said in the log: the socket's 0600 mode and the peer-credential check still hold.
fn check_directory(dir: &Path) -> anyhow::Result<()> {
    let mode = std::fs::metadata(dir)
        .with_context(|| format!("inspecting {}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        bail!(
            "{} is writable by others (mode {:o}): someone could replace the control socket; use an owner-only directory",
            dir.display(),
            mode & 0o7777
        );
    }
    if mode & 0o077 != 0 {
        tracing::warn!(dir = %dir.display(), mode = format!("{:o}", mode & 0o7777),
            "the control socket's directory is not owner-only (0700)");
    }
    Ok(())
}

/// Removes a socket nobody listens on; refuses when a daemon answers, or when the path is
/// something other than a socket.
fn clear_stale(path: &Path) -> anyhow::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("inspecting {}", path.display())),
    };
    if !meta.file_type().is_socket() {
        bail!(
            "{} exists and is not a socket; refusing to replace it",
            path.display()
        );
    }
    match UnixStream::connect(path) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing a stale control socket");
            std::fs::remove_file(path).with_context(|| format!("removing stale {}", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("probing {}", path.display())),
        Ok(stream) => match probe(stream) {
            Ok(status) => bail!(
                "another daemon ({} backend) is serving on {}; stop it with `control down` first",
                status.backend,
                path.display()
            ),
            Err(e) => bail!(
                "something is listening on {} but does not answer as a daemon ({e}); refusing to replace it",
                path.display()
            ),
        },
    }
}

fn probe(mut stream: UnixStream) -> anyhow::Result<StatusReply> {
    stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
    stream.set_write_timeout(Some(PROBE_TIMEOUT))?;
    stream.write_all(protocol::encode_request(&Request::Status {}).as_bytes())?;
    let mut line = Vec::new();
    BufReader::new(stream).read_until(b'\n', &mut line)?;
    Ok(protocol::decode_reply(&line)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("qd-sock-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn makes_an_owner_only_directory_and_socket_and_removes_it_on_drop() {
        let dir = scratch("modes");
        let path = dir.join("run/control.sock");
        let socket = ControlSocket::bind(&path).unwrap();
        assert_eq!(
            std::fs::metadata(dir.join("run")).unwrap().mode() & 0o777,
            0o700
        );
        assert_eq!(
            std::fs::symlink_metadata(&path).unwrap().mode() & 0o777,
            0o600
        );
        drop(socket);
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_stale_socket_is_replaced_a_live_one_or_a_file_is_not() {
        let dir = scratch("stale");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("control.sock");
        // A socket file whose listener is gone: what a crashed daemon leaves.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let live = ControlSocket::bind(&path).unwrap();

        // A live listener that answers like a daemon.
        let listener = live.listener.try_clone().unwrap();
        let answering = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut line = Vec::new();
            BufReader::new(stream.try_clone().unwrap())
                .read_until(b'\n', &mut line)
                .unwrap();
            let status = StatusReply {
                backend: "kernel".into(),
                bind_mode: "kernel".into(),
                pinned: false,
                running: true,
                ready: true,
                targets: vec![],
                arms: vec![],
                journal: None,
                metrics: None,
                queues: vec![],
                placement: None,
            };
            (&stream)
                .write_all(protocol::encode_ok(&status).as_bytes())
                .unwrap();
        });
        let err = ControlSocket::bind(&path).unwrap_err().to_string();
        assert!(
            err.contains("another daemon (kernel backend) is serving"),
            "{err}"
        );
        answering.join().unwrap();
        assert!(path.exists(), "a live daemon's socket is left alone");
        drop(live);

        std::fs::write(&path, b"not a socket").unwrap();
        let err = ControlSocket::bind(&path).unwrap_err().to_string();
        assert!(err.contains("is not a socket"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_others_can_write_is_refused() {
        let dir = scratch("open-dir");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, Permissions::from_mode(0o777)).unwrap();
        let err = ControlSocket::bind(&dir.join("control.sock"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("writable by others (mode 777)"), "{err}");
        // Traversable by others is allowed (the socket itself is 0600).
        std::fs::set_permissions(&dir, Permissions::from_mode(0o711)).unwrap();
        let socket = ControlSocket::bind(&dir.join("control.sock")).unwrap();
        drop(socket);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
