//! What `control doctor` asks of the datapath without starting it: whether a queue binds
//! in zero-copy mode, and how much memory the UMEM locks.

use crate::xsk::{self, BindMode, UmemConfig, Xsk, XskConfig, ZeroCopy};
use std::io;

/// Binds a small AF_XDP socket to `(interface, queue)` asking for zero-copy only, and
/// closes it. The error keeps the kernel's errno (EOPNOTSUPP: the driver has no
/// zero-copy; EBUSY: the queue is taken; EPERM: no CAP_NET_RAW).
pub fn zero_copy_bind(interface: &str, queue: u32) -> io::Result<BindMode> {
    let ifindex = xsk::if_index(interface)?;
    let config = XskConfig {
        umem: UmemConfig {
            frame_count: 64,
            rx_frames: 32,
            ..UmemConfig::default()
        },
        ring_size: 64,
        zero_copy: ZeroCopy::Require,
    };
    Xsk::bind(ifindex, queue, &config)
        .map(|x| x.mode())
        .map_err(|e| match errno_in(&e) {
            Some(n) => io::Error::from_raw_os_error(n),
            None => e,
        })
}

/// The kernel's errno in an error the AF_XDP code rewrapped with its context
/// ("... (os error 95)").
fn errno_in(e: &io::Error) -> Option<i32> {
    e.raw_os_error().or_else(|| {
        let text = e.to_string();
        let (_, n) = text.rsplit_once("(os error ")?;
        n.trim_end_matches(')').parse().ok()
    })
}

/// Bytes of UMEM the datapath maps (and the kernel charges to RLIMIT_MEMLOCK without
/// CAP_IPC_LOCK), per engine.
pub fn umem_bytes() -> u64 {
    let u = XskConfig::default().umem;
    u64::from(u.frame_size) * u64::from(u.frame_count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_survives_the_rewrap() {
        let wrapped = io::Error::other(
            "AF_XDP bind to ifindex 3 queue 0: Operation not supported (os error 95)",
        );
        assert_eq!(errno_in(&wrapped), Some(95));
        assert_eq!(errno_in(&io::Error::from_raw_os_error(16)), Some(16));
        assert_eq!(errno_in(&io::Error::other("no number")), None);
        assert_eq!(umem_bytes(), 16 * 1024 * 1024);
    }
}
