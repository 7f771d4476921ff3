//! The datapath's one error type.

use std::io;

/// Why the datapath could not start or do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An AF_XDP socket or UMEM operation failed; `what` says which.
    #[error("{what}: {source}")]
    Xsk {
        what: String,
        #[source]
        source: io::Error,
    },
    /// Loading, attaching or updating the XDP program failed.
    #[error(transparent)]
    Bpf(#[from] quickdraw_bpf::Error),
    /// No TCP connection could be opened.
    #[error(transparent)]
    Connect(#[from] crate::stack::ConnectError),
    /// The datapath thread could not be started.
    #[error("starting the datapath thread: {0}")]
    Thread(String),
    /// An event feed's UDP socket could not be bound.
    #[error("UDP feed on {local}: {why}")]
    Udp {
        local: std::net::SocketAddrV4,
        why: String,
    },
    /// The interface is unusable (missing, no MAC).
    #[error("interface {name}: {reason}")]
    Interface { name: String, reason: String },
}

impl Error {
    /// The kernel's errno behind this error, if it came from a system call (EBUSY for a
    /// NIC queue another socket holds, EPERM without privileges...).
    pub fn os_error(&self) -> Option<i32> {
        match self {
            Error::Xsk { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    pub(crate) fn xsk(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
        let what = what.into();
        move |source| Error::Xsk { what, source }
    }
}
