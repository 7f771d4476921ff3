//! Receive sockets on the interface's other queues, sharing the first socket's UMEM
//! (`XDP_SHARED_UMEM`): each has its own Fill and Rx rings and its own slice of the
//! receive frames, and no Tx ring (everything is sent through the first socket).
//!
//! RSS spreads a NIC's flows over its queues; the XDP program can only redirect a frame
//! to a socket on the queue it arrived on. One of these on every queue the appliance's
//! flows can land on means no flow is ever passed to a kernel that does not own it.

use super::ring::{ConsRing, Fill, ProdRing, Rx};
use super::sys;
use super::umem::RxFrames;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Entries in a shared socket's Completion ring: the kernel insists on one for a socket
/// on another queue, but nothing is ever sent through it.
const IDLE_COMPLETION_RING: u32 = 64;

/// A receive-only AF_XDP socket on one more queue of the same interface and UMEM.
#[derive(Debug)]
pub struct SharedRx {
    fd: OwnedFd,
    pub fill: Fill,
    pub rx: Rx,
    /// The receive frames this queue's Fill ring cycles (its own slice of the UMEM).
    pub frames: RxFrames,
    queue: u32,
}

impl SharedRx {
    /// Opens a socket, gives it Fill, Completion and Rx rings, hands every frame of
    /// `frames` to its Fill ring and binds it to `(ifindex, queue)` on the UMEM of the
    /// bound socket `umem_of` (whose bind mode and need-wakeup it inherits).
    pub fn bind(
        umem_of: BorrowedFd<'_>,
        ifindex: u32,
        queue: u32,
        frames: RxFrames,
        ring_size: u32,
    ) -> io::Result<SharedRx> {
        let ctx = |what: &'static str| {
            move |e: io::Error| io::Error::new(e.kind(), format!("queue {queue}: {what}: {e}"))
        };
        let fill_size = frames.frame_count().next_power_of_two();
        let fd = sys::xdp_socket()?;
        let s = fd.as_fd();
        sys::set_option(s, libc::XDP_UMEM_FILL_RING, &fill_size)
            .map_err(ctx("sizing the Fill ring"))?;
        sys::set_option(s, libc::XDP_UMEM_COMPLETION_RING, &IDLE_COMPLETION_RING)
            .map_err(ctx("sizing the Completion ring"))?;
        sys::set_option(s, libc::XDP_RX_RING, &ring_size).map_err(ctx("sizing the Rx ring"))?;
        let off: libc::xdp_mmap_offsets = sys::get_option(s, libc::XDP_MMAP_OFFSETS)?;
        let desc = std::mem::size_of::<libc::xdp_desc>();
        let mut fill: Fill = ProdRing::new(
            super::socket::map_ring(s, off.fr, fill_size, 8, libc::XDP_UMEM_PGOFF_FILL_RING)?,
            super::socket::offsets(off.fr),
            fill_size,
        );
        let rx: Rx = ConsRing::new(
            super::socket::map_ring(s, off.rx, ring_size, desc, libc::XDP_PGOFF_RX_RING as u64)?,
            super::socket::offsets(off.rx),
            ring_size,
        );
        for frame in frames.frames() {
            fill.push(frame)
                .map_err(|_| io::Error::other("Fill ring smaller than the receive frames"))?;
        }
        fill.publish();
        sys::bind_shared(s, ifindex, queue, umem_of).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("AF_XDP shared-UMEM bind to ifindex {ifindex} queue {queue}: {e}"),
            )
        })?;
        Ok(SharedRx {
            fd,
            fill,
            rx,
            frames,
            queue,
        })
    }

    /// Asks the driver to look at this queue's Fill ring again.
    pub fn wake_rx(&self) -> io::Result<()> {
        sys::wake_rx(self.fd.as_fd())
    }

    /// The kernel's drop and ring counters for this socket.
    pub fn stats(&self) -> io::Result<super::XskStats> {
        sys::get_option(self.fd.as_fd(), libc::XDP_STATISTICS)
    }

    pub fn queue(&self) -> u32 {
        self.queue
    }
}

impl AsFd for SharedRx {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
