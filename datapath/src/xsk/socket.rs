//! An AF_XDP socket bound to one queue of one interface: its UMEM, its four rings, the
//! bind mode it got, and the kick; and, for the interface's other queues, the receive-only
//! sockets sharing its UMEM ([`SharedRx`]).

use super::ring::{Completion, ConsRing, Fill, Offsets, ProdRing, Rx, Tx};
use super::shared::SharedRx;
use super::sys::{self, Mmap};
use super::umem::{RxFrames, TxFrames, Umem, UmemConfig};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

/// Whether the kernel copies frames between the driver and the UMEM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    /// The driver DMAs straight into the UMEM.
    ZeroCopy,
    /// The kernel copies (veth, generic XDP, drivers without AF_XDP support).
    Copy,
}

impl BindMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BindMode::ZeroCopy => "zerocopy",
            BindMode::Copy => "copy",
        }
    }
}

/// What to ask of the kernel when binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroCopy {
    /// Try zero-copy, fall back to copy mode with one log line.
    Prefer,
    /// Fail unless zero-copy is available.
    Require,
    /// Copy mode only.
    Never,
}

/// Everything needed to open a socket.
#[derive(Debug, Clone, Copy)]
pub struct XskConfig {
    pub umem: UmemConfig,
    /// Entries in each of Rx and Tx (a power of two).
    pub ring_size: u32,
    pub zero_copy: ZeroCopy,
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig {
            umem: UmemConfig::default(),
            ring_size: 2048,
            zero_copy: ZeroCopy::Prefer,
        }
    }
}

/// A bound AF_XDP socket. Its fields are split so the receive side (Fill, Rx, receive
/// frames) and the transmit side (Tx, Completion, transmit frames) can be borrowed apart.
#[derive(Debug)]
pub struct Xsk {
    fd: OwnedFd,
    pub fill: Fill,
    pub rx: Rx,
    pub rx_frames: RxFrames,
    pub tx: Tx,
    pub completion: Completion,
    pub tx_frames: TxFrames,
    umem: UmemConfig,
    mode: BindMode,
    ifindex: u32,
    queue: u32,
    /// Receive-only sockets on the interface's other queues, on this UMEM.
    pub shared: Vec<SharedRx>,
}

/// The kernel's counters for one socket (`XDP_STATISTICS`).
pub type XskStats = libc::xdp_statistics;

impl Xsk {
    /// Creates the UMEM and socket, maps the rings, binds to `(ifindex, queue)` with
    /// `XDP_USE_NEED_WAKEUP`, and hands every receive frame to the Fill ring.
    pub fn bind(ifindex: u32, queue: u32, config: &XskConfig) -> io::Result<Xsk> {
        Self::bind_queues(ifindex, queue, &[], config)
    }

    /// As [`Xsk::bind`] on `queue`, plus one receive-only socket sharing this UMEM on each
    /// of `others` (`XDP_SHARED_UMEM`). The receive frames are divided equally between
    /// the queues; everything is sent through the socket on `queue`.
    pub fn bind_queues(
        ifindex: u32,
        queue: u32,
        others: &[u32],
        config: &XskConfig,
    ) -> io::Result<Xsk> {
        let ring = config.ring_size;
        let queues = 1 + others.len() as u32;
        if config.umem.rx_frames < queues || others.contains(&queue) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{queues} distinct queues need as many receive frames (have {})",
                    config.umem.rx_frames
                ),
            ));
        }
        if !ring.is_power_of_two() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("ring_size {ring} is not a power of two"),
            ));
        }
        let umem = Umem::new(config.umem)?;
        let registration = umem.registration();
        let (mut rx_areas, tx_frames) = umem.split_queues(queues);
        let rx_frames = rx_areas.remove(0);
        // Fill and Completion each hold every frame of their side, so returning a frame
        // can never find its ring full.
        let fill_size = rx_frames.frame_count().next_power_of_two();
        let comp_size = (config.umem.frame_count - config.umem.rx_frames).next_power_of_two();

        let fd = sys::xdp_socket()?;
        let s = fd.as_fd();
        sys::set_option(s, libc::XDP_UMEM_REG, &registration)
            .map_err(ctx("registering the UMEM"))?;
        sys::set_option(s, libc::XDP_UMEM_FILL_RING, &fill_size)
            .map_err(ctx("sizing the Fill ring"))?;
        sys::set_option(s, libc::XDP_UMEM_COMPLETION_RING, &comp_size)
            .map_err(ctx("sizing the Completion ring"))?;
        sys::set_option(s, libc::XDP_RX_RING, &ring).map_err(ctx("sizing the Rx ring"))?;
        sys::set_option(s, libc::XDP_TX_RING, &ring).map_err(ctx("sizing the Tx ring"))?;
        let off: libc::xdp_mmap_offsets = sys::get_option(s, libc::XDP_MMAP_OFFSETS)?;

        let desc = std::mem::size_of::<libc::xdp_desc>();
        let mut fill: Fill = ProdRing::new(
            map_ring(s, off.fr, fill_size, 8, libc::XDP_UMEM_PGOFF_FILL_RING)?,
            offsets(off.fr),
            fill_size,
        );
        let completion: Completion = ConsRing::new(
            map_ring(
                s,
                off.cr,
                comp_size,
                8,
                libc::XDP_UMEM_PGOFF_COMPLETION_RING,
            )?,
            offsets(off.cr),
            comp_size,
        );
        let rx: Rx = ConsRing::new(
            map_ring(s, off.rx, ring, desc, libc::XDP_PGOFF_RX_RING as u64)?,
            offsets(off.rx),
            ring,
        );
        let tx: Tx = ProdRing::new(
            map_ring(s, off.tx, ring, desc, libc::XDP_PGOFF_TX_RING as u64)?,
            offsets(off.tx),
            ring,
        );

        for frame in rx_frames.frames() {
            fill.push(frame)
                .map_err(|_| io::Error::other("Fill ring smaller than the receive frames"))?;
        }
        fill.publish();

        let mode = bind_with_fallback(s, ifindex, queue, config.zero_copy)?;
        let shared = others
            .iter()
            .zip(rx_areas)
            .map(|(&q, frames)| SharedRx::bind(s, ifindex, q, frames, ring))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Xsk {
            fd,
            fill,
            rx,
            rx_frames,
            tx,
            completion,
            tx_frames,
            umem: config.umem,
            mode,
            ifindex,
            queue,
            shared,
        })
    }

    /// Asks the kernel to send what is in the Tx ring. The hot path's one system call.
    pub fn kick(&self) -> io::Result<()> {
        sys::kick_tx(self.fd.as_fd())
    }

    /// Asks the driver to look at the Fill ring again (when it set NEED_WAKEUP there).
    pub fn wake_rx(&self) -> io::Result<()> {
        sys::wake_rx(self.fd.as_fd())
    }

    /// The kernel's drop and ring counters for this socket.
    pub fn stats(&self) -> io::Result<XskStats> {
        sys::get_option(self.fd.as_fd(), libc::XDP_STATISTICS)
    }

    pub fn umem_config(&self) -> UmemConfig {
        self.umem
    }

    pub fn mode(&self) -> BindMode {
        self.mode
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    pub fn queue(&self) -> u32 {
        self.queue
    }
}

impl AsFd for Xsk {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn bind_with_fallback(
    s: BorrowedFd<'_>,
    ifindex: u32,
    queue: u32,
    zc: ZeroCopy,
) -> io::Result<BindMode> {
    let wake = libc::XDP_USE_NEED_WAKEUP;
    if zc != ZeroCopy::Never {
        match sys::bind(s, ifindex, queue, wake | libc::XDP_ZEROCOPY) {
            Ok(()) => return Ok(BindMode::ZeroCopy),
            // The caller names the socket; the kernel's errno stays as it is (a busy queue
            // is EBUSY, and a restart waits on exactly that).
            Err(e) if zc == ZeroCopy::Require => return Err(e),
            Err(e) => {
                tracing::info!(ifindex, queue, error = %e, "AF_XDP zero-copy unavailable, binding in copy mode")
            }
        }
    }
    sys::bind(s, ifindex, queue, wake | libc::XDP_COPY)?;
    Ok(BindMode::Copy)
}

pub(super) fn map_ring(
    s: BorrowedFd<'_>,
    off: libc::xdp_ring_offset,
    size: u32,
    entry: usize,
    pgoff: u64,
) -> io::Result<Arc<Mmap>> {
    let len = off.desc as usize + size as usize * entry;
    Ok(Arc::new(Mmap::ring(s, len, pgoff)?))
}

pub(super) fn offsets(o: libc::xdp_ring_offset) -> Offsets {
    Offsets {
        producer: o.producer,
        consumer: o.consumer,
        flags: o.flags,
        entries: o.desc,
    }
}

fn ctx(what: &'static str) -> impl Fn(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}
