//! The crate's one error type: every failure of the lab and of the probe.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything that can go wrong while setting up, tearing down or probing the lab.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An external tool (`ip`, `ethtool`, `sysctl`, `nginx`, `kill`) could not be started.
    #[error("could not run `{command}`: {source}")]
    Spawn {
        /// The command line, as a user would type it.
        command: String,
        /// Why it could not be started (usually: not installed).
        source: io::Error,
    },
    /// An external tool ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line, as a user would type it.
        command: String,
        /// Its exit status.
        status: String,
        /// Its standard error, trimmed.
        stderr: String,
    },
    /// An external tool printed something we could not parse (e.g. `ip -j`'s JSON).
    #[error("unexpected output from `{command}`: {detail}")]
    Output {
        /// The command line.
        command: String,
        /// What did not match.
        detail: String,
    },
    /// A file or directory operation failed.
    #[error("{path}: {what}: {source}")]
    File {
        /// What we were doing.
        what: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// rcgen could not build the lab CA or the server certificate.
    #[error("lab certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),
    /// nginx started but did not accept TCP connections in time.
    #[error("nginx did not accept TCP on {addr} within {waited_ms} ms; nginx error log tail:\n{log_tail}")]
    NginxNotReady {
        /// The address we tried.
        addr: SocketAddr,
        /// How long we waited.
        waited_ms: u64,
        /// The last lines of nginx's error log.
        log_tail: String,
    },
    /// nginx did not take a reload: no master to signal, or its old workers still ran
    /// (a reload nginx refuses, a bad certificate say, keeps the old workers).
    #[error("nginx did not reload within {waited_ms} ms; nginx error log tail:\n{log_tail}")]
    NginxReload {
        /// How long we waited.
        waited_ms: u64,
        /// The last lines of nginx's error log.
        log_tail: String,
    },
    /// `down` could not get rid of every nginx process of the lab.
    #[error("nginx processes {pids:?} survived SIGKILL")]
    NginxSurvived {
        /// The processes still alive.
        pids: Vec<u32>,
    },
    /// `up` failed, and so did the teardown of what it had built.
    #[error("{source}; tearing the half-made lab down also failed: {rollback}")]
    Rollback {
        /// Why `up` failed.
        source: Box<Error>,
        /// Why the teardown failed (run `bench lab down`).
        rollback: Box<Error>,
    },
    /// The lab is not (completely) up when something needs it.
    #[error("the lab is not up (missing: {missing}); run `bench lab up`")]
    LabDown {
        /// The parts that are missing.
        missing: String,
    },
    /// The lab's event server could not start or send.
    #[error("lab event server: {what}: {source}")]
    EventServer {
        /// What it was doing.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// A CA certificate file could not be read or parsed as PEM.
    #[error("CA certificates {path}: {source}")]
    CaPem {
        /// The PEM file.
        path: PathBuf,
        /// The PEM error.
        source: rustls_pki_types::pem::Error,
    },
    /// A socket operation of the probe failed.
    #[error("{what} {addr}: {source}")]
    Net {
        /// What we were doing (bind, connect, write, read).
        what: &'static str,
        /// The address involved.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// TLS failed: configuration, handshake, or certificate verification
    /// (`rustls::Error::InvalidCertificate`).
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// Loading, installing or reading the lab's BPF loss programs failed.
    #[error("lab loss: {0}")]
    Loss(#[from] quickdraw_bpf::Error),
    /// A request the probe refuses to send (a control character in its head), or a response
    /// it cannot parse.
    #[error("HTTP: {0}")]
    Http(String),
}

impl Error {
    /// Wraps an `io::Error` from a TLS stream: rustls reports its own errors through
    /// `io::Error`, and callers must be able to tell a rejected certificate from a reset.
    pub(crate) fn from_tls_io(what: &'static str, addr: SocketAddr, source: io::Error) -> Self {
        match source
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls) => Error::Tls(tls.clone()),
            None => Error::Net { what, addr, source },
        }
    }

    pub(crate) fn file(what: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::File {
            what,
            path: path.into(),
            source,
        }
    }
}
