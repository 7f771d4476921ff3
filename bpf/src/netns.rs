//! [`Netns`]: a named network namespace (`/run/netns/<name>`, as made by
//! `ip netns add`), and running a closure inside it on a short-lived thread,
//! so the caller's own thread never leaves its namespace.
//!
//! Network namespaces matter to interface names and indices and to netlink
//! (tc) operations, not to BPF file descriptors, which work from anywhere.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;
use std::thread;

use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

use crate::Error;

/// Where iproute2 keeps named namespaces (ip-netns(8)).
const NETNS_RUN_DIR: &str = "/run/netns";

/// An open named network namespace. Holding it keeps the namespace alive,
/// even after `ip netns del` removes its name.
#[derive(Debug)]
pub(crate) struct Netns {
    name: String,
    file: File,
}

impl Netns {
    /// Opens `/run/netns/<name>`.
    pub(crate) fn open(name: &str) -> Result<Netns, Error> {
        let error = |source| Error::Netns {
            name: name.to_owned(),
            source,
        };
        // A name, not a path: no way out of the directory.
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
            return Err(error(std::io::ErrorKind::InvalidInput.into()));
        }
        let file = File::open(Path::new(NETNS_RUN_DIR).join(name)).map_err(error)?;
        Ok(Netns {
            name: name.to_owned(),
            file,
        })
    }

    /// Runs `f` on a new thread that has entered this namespace, and returns
    /// its result; the calling thread stays where it is.
    pub(crate) fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, Error> {
        thread::scope(|s| {
            s.spawn(|| {
                move_into_link_name_space(self.file.as_fd(), Some(LinkNameSpaceType::Network))
                    .map_err(|e| Error::Netns {
                        name: self.name.clone(),
                        source: e.into(),
                    })?;
                Ok(f())
            })
            .join()
            // The thread runs only `f` after setns: a panic there is the
            // caller's, passed on as is.
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

/// Runs `f` inside `netns` (on a thread of its own), or on the calling
/// thread when `netns` is `None`.
pub(crate) fn within<T: Send>(
    netns: Option<&Netns>,
    f: impl FnOnce() -> T + Send,
) -> Result<T, Error> {
    match netns {
        Some(netns) => netns.run(f),
        None => Ok(f()),
    }
}
