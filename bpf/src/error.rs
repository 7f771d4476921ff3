//! [`Error`]: everything that can fail in this crate.

use std::io;

use crate::AttachMode;

/// Why a [`Steer`](crate::Steer) or [`Stamper`](crate::Stamper) operation
/// failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Opening or loading the BPF object failed: missing privileges
    /// (`CAP_BPF`, `CAP_NET_ADMIN`), a kernel without XDP, tc BPF or ring
    /// buffers, or a verifier rejection (libbpf logs the verifier output to
    /// stderr).
    #[error("loading the BPF object failed")]
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
    /// encodes: `steer.h` or `stamp.h` changed without the Rust side.
    #[error("BPF map `{map}` does not have the layout this crate encodes")]
    Layout {
        /// Map name, as in the program's header.
        map: &'static str,
    },
    /// A BPF map operation failed (for `xsks`: the fd is not an AF_XDP
    /// socket; for `flows`: the map is full).
    #[error("{op} on BPF map `{map}` failed")]
    Map {
        /// Map name, as in the program's header.
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
    /// A tc (netlink) operation on the clsact qdisc or on our filters
    /// failed: `EPERM` without `CAP_NET_ADMIN`, `ENODEV` for an interface
    /// that does not exist in the namespace of the attach.
    #[error("tc {op} on ifindex {ifindex} failed")]
    Tc {
        /// `"qdisc add"`, `"filter add"`, `"filter del"`, `"qdisc del"`.
        op: &'static str,
        /// Interface index, in the namespace of the attach.
        ifindex: u32,
        /// What libbpf reported.
        #[source]
        source: libbpf_rs::Error,
    },
    /// A named network namespace could not be opened (`/run/netns/<name>`)
    /// or entered (`setns`).
    #[error("network namespace `{name}`")]
    Netns {
        /// The name, as `ip netns` knows it.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A [`StampFilter`](crate::StampFilter) prefix longer than 32 bits.
    #[error("an IPv4 prefix is at most 32 bits long, not {0}")]
    InvalidPrefix(u8),
    /// A ring buffer size that is not a power of two of at least one page
    /// (4096 bytes).
    #[error("ring buffer size {0} is not a power of two of at least 4096 bytes")]
    RingSize(u32),
    /// Setting up or polling the ring buffer failed.
    #[error("stamps ring buffer")]
    Ring(#[source] libbpf_rs::Error),
    /// Attaching or detaching an XDP program through netlink (the loss
    /// program, which outlives its process) failed.
    #[error("XDP {op} on ifindex {ifindex} failed")]
    Xdp {
        /// `"attach"` or `"detach"`.
        op: &'static str,
        /// Interface index.
        ifindex: u32,
        /// What libbpf reported.
        #[source]
        source: libbpf_rs::Error,
    },
    /// A loss share above 100 percent.
    #[error("a loss is 0 to 100 percent, not {0}")]
    LossPct(u8),
    /// The interface has an XDP program that is not the loss program: the
    /// loss program will not replace it.
    #[error("ifindex {ifindex} has another XDP program ({name:?}); not replacing it")]
    ForeignXdp {
        /// Interface index.
        ifindex: u32,
        /// The other program's name.
        name: String,
    },
    /// `BPF_PROG_TEST_RUN` failed (a frame shorter than 14 bytes, or an rx
    /// queue the ingress device does not have, is `EINVAL`).
    #[error("BPF test run failed")]
    TestRun(#[source] libbpf_rs::Error),
}
