//! [`Error`]: everything that can fail in this crate.

use std::io;

use crate::AttachMode;

/// Why a [`Steer`](crate::Steer) operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Opening or loading the BPF object failed: missing privileges
    /// (`CAP_BPF`, `CAP_NET_ADMIN`), a kernel without XDP, or a verifier
    /// rejection (libbpf logs the verifier output to stderr).
    #[error("loading the XDP steering program failed")]
    Load(#[source] libbpf_rs::Error),
    /// The loaded object lacks a map or program this crate expects: the
    /// C program and the Rust loader are out of step.
    #[error("the BPF object has no {kind} named `{name}`")]
    Missing {
        /// `"map"` or `"program"`.
        kind: &'static str,
        /// The name looked up.
        name: &'static str,
    },
    /// A map's key size, value size or entry count is not what this crate
    /// encodes: `steer.h` changed without the Rust side.
    #[error("BPF map `{map}` does not have the layout this crate encodes")]
    Layout {
        /// Map name, as in `steer.h`.
        map: &'static str,
    },
    /// A BPF map operation failed (for `xsks`: the fd is not an AF_XDP
    /// socket; for `flows`: the map is full).
    #[error("{op} on BPF map `{map}` failed")]
    Map {
        /// Map name, as in `steer.h`.
        map: &'static str,
        /// `"update"`, `"delete"` or `"lookup"`.
        op: &'static str,
        /// What libbpf reported.
        #[source]
        source: libbpf_rs::Error,
    },
    /// The rx queue has no slot in the `xsks` map.
    #[error("rx queue {queue} is beyond the {slots} slots of the XSKMAP")]
    QueueOutOfRange {
        /// The queue asked for.
        queue: u32,
        /// Slots in the map (`STEER_MAX_QUEUES`).
        slots: u32,
    },
    /// No network interface has this name (in the caller's network namespace).
    #[error("no network interface named `{name}`")]
    NoSuchInterface {
        /// The name looked up.
        name: String,
        /// What `if_nametoindex(3)` reported.
        #[source]
        source: io::Error,
    },
    /// The program is already attached; detach it first.
    #[error("already attached to ifindex {0}")]
    AlreadyAttached(u32),
    /// The kernel refused the XDP link (e.g. `EOPNOTSUPP`: no native XDP in
    /// the driver; `EBUSY`: another program holds the interface).
    #[error("attaching XDP to ifindex {ifindex} in {mode:?} mode failed")]
    Attach {
        /// Interface index.
        ifindex: u32,
        /// Mode asked for.
        mode: AttachMode,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// `BPF_PROG_TEST_RUN` failed (a frame shorter than 14 bytes, or an rx
    /// queue the ingress device does not have, is `EINVAL`).
    #[error("BPF test run failed")]
    TestRun(#[source] libbpf_rs::Error),
}
