//! The UMEM: one mapping of equal frames shared with the kernel, split once at start-up
//! into a receive area (frames that cycle through Fill → Rx) and a transmit area (frames
//! that cycle through Tx → Completion), so each side owns its frames outright.
#![allow(unsafe_code)]

use super::sys::Mmap;
use std::fmt;
use std::io;
use std::ptr::NonNull;
use std::sync::Arc;

/// Size and layout of a UMEM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UmemConfig {
    /// Bytes per frame: a power of two from 2048 to the page size (aligned chunk mode).
    pub frame_size: u32,
    /// Frames in all.
    pub frame_count: u32,
    /// Of those, frames given to the receive side (the rest transmit).
    pub rx_frames: u32,
    /// Bytes the kernel leaves free before each received frame's data.
    pub headroom: u32,
}

impl Default for UmemConfig {
    fn default() -> Self {
        UmemConfig {
            frame_size: 4096,
            frame_count: 4096,
            rx_frames: 2048,
            headroom: 0,
        }
    }
}

impl UmemConfig {
    /// Checks the layout the kernel will insist on, with a message that says why.
    pub fn validate(&self) -> io::Result<()> {
        let page = 4096;
        let bad = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        if !self.frame_size.is_power_of_two() || !(2048..=page).contains(&self.frame_size) {
            return bad(format!(
                "frame_size {} must be a power of two in 2048..=4096",
                self.frame_size
            ));
        }
        if self.rx_frames == 0 || self.rx_frames >= self.frame_count {
            return bad(format!(
                "rx_frames {} must leave frames for both sides of {}",
                self.rx_frames, self.frame_count
            ));
        }
        // The kernel puts XDP_PACKET_HEADROOM (256) plus ours before the data in copy mode.
        if self.headroom + 256 + 1514 > self.frame_size {
            return bad(format!(
                "headroom {} leaves no room for a 1514-byte frame",
                self.headroom
            ));
        }
        Ok(())
    }

    fn len(&self) -> usize {
        self.frame_size as usize * self.frame_count as usize
    }
}

/// The whole UMEM mapping, before it is split.
#[derive(Debug)]
pub struct Umem {
    map: Arc<Mmap>,
    config: UmemConfig,
}

impl Umem {
    /// Maps and pre-faults the UMEM. This is the only allocation of packet memory.
    pub fn new(config: UmemConfig) -> io::Result<Umem> {
        config.validate()?;
        Ok(Umem {
            map: Arc::new(Mmap::anonymous(config.len())?),
            config,
        })
    }

    /// The registration the kernel needs (`XDP_UMEM_REG`).
    pub fn registration(&self) -> libc::xdp_umem_reg {
        libc::xdp_umem_reg {
            addr: self.map.as_ptr().as_ptr() as u64,
            len: self.map.len() as u64,
            chunk_size: self.config.frame_size,
            headroom: self.config.headroom,
            flags: 0,
            tx_metadata_len: 0,
        }
    }

    /// Splits into the receive area (the first `rx_frames` frames) and the transmit area.
    #[cfg(test)]
    pub fn split(self) -> (Frames, Frames) {
        let (mut rx, tx) = self.split_queues(1);
        (rx.remove(0), tx)
    }

    /// Splits the receive area into `queues` equal parts, one per receive queue (frames
    /// left over by the division stay unused), and returns them with the transmit area.
    /// `queues` must be at least 1 and at most `rx_frames`.
    pub fn split_queues(self, queues: u32) -> (Vec<Frames>, Frames) {
        let c = self.config;
        let fs = u64::from(c.frame_size);
        let per_queue = u64::from(c.rx_frames / queues.max(1)) * fs;
        let boundary = u64::from(c.rx_frames) * fs;
        let end = u64::from(c.frame_count) * fs;
        let base = self.map.as_ptr();
        let area = |start, end| Frames {
            base,
            start,
            end,
            frame_size: c.frame_size,
            _map: self.map.clone(),
        };
        let rx = (0..u64::from(queues.max(1)))
            .map(|q| area(q * per_queue, (q + 1) * per_queue))
            .collect();
        (rx, area(boundary, end))
    }
}

/// A descriptor pointed outside the frames its side owns. Counted and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadDesc {
    pub addr: u64,
    pub len: u32,
}

impl fmt::Display for BadDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "descriptor {:#x}+{} is outside this side's UMEM frames",
            self.addr, self.len
        )
    }
}

/// The frames one side owns: a contiguous range of the UMEM. Every access is bounds
/// checked, in release builds too: a descriptor comes from a ring the kernel (or a bug)
/// writes, and a wrong one must be dropped, not followed.
#[derive(Debug)]
pub struct Frames {
    base: NonNull<u8>,
    start: u64,
    end: u64,
    frame_size: u32,
    _map: Arc<Mmap>,
}

// SAFETY: `Frames` owns its address range exclusively (the two areas never overlap) and
// the mapping lives as long as `_map`.
unsafe impl Send for Frames {}

impl Frames {
    /// Addresses of the first byte of each frame in this area, in order.
    pub fn frame_addrs(&self) -> impl DoubleEndedIterator<Item = u64> {
        let (start, size) = (self.start, u64::from(self.frame_size));
        (0..self.frame_count()).map(move |i| start + u64::from(i) * size)
    }

    pub fn frame_count(&self) -> u32 {
        ((self.end - self.start) / u64::from(self.frame_size)) as u32
    }

    pub fn frame_size(&self) -> u32 {
        self.frame_size
    }

    /// The frame (chunk) start an address inside it belongs to.
    pub fn frame_of(&self, addr: u64) -> u64 {
        addr & !(u64::from(self.frame_size) - 1)
    }

    /// Checks that `addr..addr+len` lies in this area and inside one frame.
    fn check(&self, addr: u64, len: u32) -> Result<usize, BadDesc> {
        let end = addr.checked_add(u64::from(len));
        let in_area = addr >= self.start && addr < self.end && end.is_some_and(|e| e <= self.end);
        let in_frame = end.is_some_and(|e| e <= self.frame_of(addr) + u64::from(self.frame_size));
        if in_area && in_frame {
            Ok(addr as usize)
        } else {
            Err(BadDesc { addr, len })
        }
    }

    /// The `len` bytes at `addr`.
    pub fn get(&self, addr: u64, len: u32) -> Result<&[u8], BadDesc> {
        let offset = self.check(addr, len)?;
        // SAFETY: the range is inside this area (checked), which no other `Frames` covers;
        // the kernel writes a receive frame only while it sits in the Fill ring, and a
        // frame we read from Rx is ours until we push it back to Fill.
        Ok(unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(offset), len as usize) })
    }

    /// The `len` bytes at `addr`, to write a frame into.
    pub fn get_mut(&mut self, addr: u64, len: u32) -> Result<&mut [u8], BadDesc> {
        let offset = self.check(addr, len)?;
        // SAFETY: as in `get`; `&mut self` makes this the only live view of the area, and
        // a transmit frame is only written while it is in our free pool, not in Tx.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr().add(offset), len as usize) })
    }
}

/// Free transmit frames: a stack with its capacity fixed at start-up, so taking and
/// returning frames never allocates.
#[derive(Debug)]
pub struct FramePool {
    free: Vec<u64>,
}

impl FramePool {
    pub fn new(frames: &Frames) -> FramePool {
        let mut free = Vec::with_capacity(frames.frame_count() as usize);
        free.extend(frames.frame_addrs().rev());
        FramePool { free }
    }

    pub fn take(&mut self) -> Option<u64> {
        self.free.pop()
    }

    /// Returns a frame. A frame beyond the pool's capacity means the kernel completed a
    /// frame twice or one we never sent: refused (and the caller counts it) rather than
    /// growing the pool on the hot path.
    pub fn give(&mut self, addr: u64) -> Result<(), u64> {
        if self.free.len() == self.free.capacity() {
            return Err(addr);
        }
        self.free.push(addr);
        Ok(())
    }

    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// The frame the next [`FramePool::take`] returns, left in the pool.
    pub fn peek(&self) -> Option<u64> {
        self.free.last().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> UmemConfig {
        UmemConfig {
            frame_size: 2048,
            frame_count: 8,
            rx_frames: 4,
            headroom: 0,
        }
    }

    #[test]
    fn config_is_checked() {
        assert!(small().validate().is_ok());
        assert!(UmemConfig {
            frame_size: 3000,
            ..small()
        }
        .validate()
        .is_err());
        assert!(UmemConfig {
            frame_size: 8192,
            ..small()
        }
        .validate()
        .is_err());
        assert!(UmemConfig {
            rx_frames: 8,
            ..small()
        }
        .validate()
        .is_err());
        assert!(UmemConfig {
            headroom: 512,
            ..small()
        }
        .validate()
        .is_err());
    }

    #[test]
    fn areas_do_not_overlap_and_bounds_hold() {
        let (rx, mut tx) = Umem::new(small()).unwrap().split();
        assert_eq!(
            rx.frame_addrs().collect::<Vec<_>>(),
            vec![0, 2048, 4096, 6144]
        );
        assert_eq!(tx.frame_addrs().next(), Some(8192));
        assert!(rx.get(0, 2048).is_ok());
        assert!(rx.get(8192, 1).is_err(), "tx frame from the rx side");
        assert!(tx.get_mut(0, 1).is_err(), "rx frame from the tx side");
        assert!(rx.get(100, 2000).is_err(), "crosses into the next frame");
        assert!(rx.get(u64::MAX - 1, 10).is_err(), "overflowing address");
        assert!(tx.get_mut(16384, 0).is_err(), "one past the end");
        tx.get_mut(8192 + 10, 4).unwrap().copy_from_slice(b"abcd");
        assert_eq!(tx.get(8192 + 10, 4).unwrap(), b"abcd");
        assert_eq!(rx.frame_of(2048 + 300), 2048);
    }

    #[test]
    fn receive_area_splits_per_queue() {
        let config = UmemConfig {
            frame_count: 12,
            rx_frames: 7,
            ..small()
        };
        let (rx, tx) = Umem::new(config).unwrap().split_queues(3);
        let addrs: Vec<Vec<u64>> = rx.iter().map(|f| f.frame_addrs().collect()).collect();
        assert_eq!(
            addrs,
            vec![vec![0, 2048], vec![4096, 6144], vec![8192, 10240]],
            "two frames each; the seventh stays unused"
        );
        assert!(rx[0].get(4096, 1).is_err(), "queue 1's frame from queue 0");
        assert_eq!(tx.frame_addrs().next(), Some(7 * 2048));
        assert_eq!(tx.frame_count(), 5);
    }

    #[test]
    fn pool_never_grows() {
        let (_rx, tx) = Umem::new(small()).unwrap().split();
        let mut pool = FramePool::new(&tx);
        assert_eq!(pool.available(), 4);
        let a = pool.take().unwrap();
        assert_eq!(a, 8192, "lowest frame first");
        assert_eq!(pool.give(a), Ok(()));
        assert_eq!(
            pool.give(1),
            Err(1),
            "a fifth frame in a pool of four is refused"
        );
    }
}
