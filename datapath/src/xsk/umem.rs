//! The UMEM: one mapping of equal frames shared with the kernel, split once at start-up
//! into a receive area (frames that cycle through Fill → Rx) and a transmit area (frames
//! that cycle through Tx → Completion), so each side owns its frames outright. The split
//! is in the types too: a receive area hands out [`RxFrame`]s, the transmit area
//! [`TxFrame`]s, and each ring takes only its own side's.
#![allow(unsafe_code)]

use super::ring::{CompletionAddr, RxDesc};
use super::sys::Mmap;
use std::fmt;
use std::io;
use std::marker::PhantomData;
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
    pub fn split(self) -> (RxFrames, TxFrames) {
        let (mut rx, tx) = self.split_queues(1);
        (rx.remove(0), tx)
    }

    /// Splits the receive area into `queues` equal parts, one per receive queue (frames
    /// left over by the division stay unused), and returns them with the transmit area.
    /// `queues` must be at least 1 and at most `rx_frames`.
    pub fn split_queues(self, queues: u32) -> (Vec<RxFrames>, TxFrames) {
        let c = self.config;
        let fs = u64::from(c.frame_size);
        let per_queue = u64::from(c.rx_frames / queues.max(1)) * fs;
        let boundary = u64::from(c.rx_frames) * fs;
        let end = u64::from(c.frame_count) * fs;
        let rx = (0..u64::from(queues.max(1)))
            .map(|q| self.area(q * per_queue, (q + 1) * per_queue))
            .collect();
        (rx, self.area(boundary, end))
    }

    fn area<A>(&self, start: u64, end: u64) -> Frames<A> {
        Frames {
            base: self.map.as_ptr(),
            start,
            end,
            frame_size: self.config.frame_size,
            _map: self.map.clone(),
            _area: PhantomData,
        }
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

/// Marks the receive area: its frames cycle Fill → Rx → Fill.
#[derive(Debug)]
pub enum RxArea {}

/// Marks the transmit area: its frames cycle pool → Tx → Completion → pool.
#[derive(Debug)]
pub enum TxArea {}

/// A receive frame (the address of its first byte). Only the receive area makes one, and
/// only the Fill ring takes one: it cannot be sent ([`TxDesc`](super::TxDesc) takes a
/// [`TxFrame`]), nor made from a bare address:
///
#[cfg_attr(
    feature = "xsk-doctests",
    doc = r#"
```compile_fail,E0423
use quickdraw_datapath::xsk::RxFrame;
let _ = RxFrame(4096);
```
"#
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct RxFrame(u64);

impl RxFrame {
    pub fn addr(self) -> u64 {
        self.0
    }
}

/// A transmit frame (the address of its first byte). Only the transmit area makes one,
/// and it goes to Tx (in a [`TxDesc`](super::TxDesc)) and back to the pool, never to the
/// Fill ring (see [`Fill`](super::Fill)), nor is it made from a bare address:
///
#[cfg_attr(
    feature = "xsk-doctests",
    doc = r#"
```compile_fail,E0277
use quickdraw_datapath::xsk::TxFrame;
let _ = TxFrame::from(8192u64);
```
"#
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct TxFrame(u64);

impl TxFrame {
    pub fn addr(self) -> u64 {
        self.0
    }
}

/// The frames one side owns: a contiguous range of the UMEM, typed by its side
/// ([`RxArea`] or [`TxArea`]) so its frames cannot reach the other side's rings. Every
/// access is bounds checked, in release builds too: a descriptor comes from a ring the
/// kernel (or a bug) writes, and a wrong one must be dropped, not followed.
#[derive(Debug)]
pub struct Frames<A> {
    base: NonNull<u8>,
    start: u64,
    end: u64,
    frame_size: u32,
    _map: Arc<Mmap>,
    _area: PhantomData<fn() -> A>,
}

/// The receive frames of one queue.
pub type RxFrames = Frames<RxArea>;
/// The transmit frames.
pub type TxFrames = Frames<TxArea>;

// SAFETY: `Frames` owns its address range exclusively (the areas never overlap) and the
// mapping lives as long as `_map`.
unsafe impl<A> Send for Frames<A> {}

impl<A> Frames<A> {
    /// Addresses of the first byte of each frame in this area, in order.
    fn frame_addrs(&self) -> impl DoubleEndedIterator<Item = u64> {
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
    fn frame_of(&self, addr: u64) -> u64 {
        addr & !(u64::from(self.frame_size) - 1)
    }

    /// The start of the frame of this area that `addr` falls in, if any.
    fn frame_in_area(&self, addr: u64) -> Option<u64> {
        let frame = self.frame_of(addr);
        (frame >= self.start && frame < self.end).then_some(frame)
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
    fn slice(&self, addr: u64, len: u32) -> Result<&[u8], BadDesc> {
        let offset = self.check(addr, len)?;
        // SAFETY: inside this area (checked), which no other `Frames` covers; the kernel
        // writes a receive frame only while it is in Fill, and never a transmit frame.
        Ok(unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(offset), len as usize) })
    }
}

/// A received frame, checked: `len` bytes at `addr`, inside `frame` of the receive area
/// that checked it. The frame goes back to the Fill ring when its data has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    frame: RxFrame,
    addr: u64,
    len: u32,
}

impl Received {
    pub fn frame(&self) -> RxFrame {
        self.frame
    }
}

impl Frames<RxArea> {
    /// Every frame of this area, in order (each handed to the Fill ring at start-up).
    pub fn frames(&self) -> impl DoubleEndedIterator<Item = RxFrame> {
        self.frame_addrs().map(RxFrame)
    }

    /// Checks a descriptor from this area's Rx ring: its data must lie inside one of this
    /// area's frames. Returns the descriptor, typed, with its data.
    pub fn received(&self, desc: RxDesc) -> Result<(Received, &[u8]), BadDesc> {
        let data = self.slice(desc.addr(), desc.len())?;
        let received = Received {
            frame: RxFrame(self.frame_of(desc.addr())),
            addr: desc.addr(),
            len: desc.len(),
        };
        Ok((received, data))
    }

    /// The frame of this area a descriptor that failed [`Frames::received`] points into
    /// (a bad length only), so it can still go back to Fill; `None` when it is not ours.
    pub fn frame_of_bad(&self, desc: RxDesc) -> Option<RxFrame> {
        self.frame_in_area(desc.addr()).map(RxFrame)
    }

    /// The data of a frame this area checked (checked again: a `Received` of another
    /// queue's area is refused, not followed).
    pub fn data(&self, received: &Received) -> Result<&[u8], BadDesc> {
        self.slice(received.addr, received.len)
    }
}

impl Frames<TxArea> {
    /// Every frame of this area, in order (the free pool at start-up).
    pub fn frames(&self) -> impl DoubleEndedIterator<Item = TxFrame> {
        self.frame_addrs().map(TxFrame)
    }

    /// The transmit frame an address from the Completion ring falls in, if it is one of
    /// this area's. Whether the kernel held that frame is the caller's to check.
    pub fn completed(&self, addr: CompletionAddr) -> Option<TxFrame> {
        self.frame_in_area(addr.addr()).map(TxFrame)
    }

    /// `len` bytes of `frame` from byte `offset`, to read what was written.
    pub fn get(&self, frame: TxFrame, offset: u32, len: u32) -> Result<&[u8], BadDesc> {
        let at = self.range(frame, offset, len)?;
        // SAFETY: the range is inside one frame of this area (checked), which no other
        // `Frames` covers; the kernel never writes a transmit frame.
        Ok(unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(at), len as usize) })
    }

    /// `len` bytes of `frame` from byte `offset`, to write a frame into.
    pub fn get_mut(&mut self, frame: TxFrame, offset: u32, len: u32) -> Result<&mut [u8], BadDesc> {
        let at = self.range(frame, offset, len)?;
        // SAFETY: as in `get`; `&mut self` makes this the only live view of the area, and
        // a transmit frame is only written while it is in our free pool or reserved, not
        // in Tx.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr().add(at), len as usize) })
    }

    /// The offset in the UMEM of `offset..offset + len` of `frame`, when that range starts
    /// inside the frame and ends by its end, and `frame` is one of this area's (a frame of
    /// another UMEM is refused). Without overflow: `frame` < `end`, a mapping's length.
    fn range(&self, frame: TxFrame, offset: u32, len: u32) -> Result<usize, BadDesc> {
        let (offset, size) = (u64::from(offset), u64::from(self.frame_size));
        let fits = offset < size && offset + u64::from(len) <= size;
        let ours = frame.0 >= self.start && frame.0 < self.end && frame.0 == self.frame_of(frame.0);
        if fits && ours {
            Ok((frame.0 + offset) as usize)
        } else {
            Err(BadDesc {
                addr: frame.0.saturating_add(offset),
                len,
            })
        }
    }
}

/// Free transmit frames: a stack with its capacity fixed at start-up, so taking and
/// returning frames never allocates.
#[derive(Debug)]
pub struct FramePool {
    free: Vec<TxFrame>,
}

impl FramePool {
    pub fn new(frames: &TxFrames) -> FramePool {
        let mut free = Vec::with_capacity(frames.frame_count() as usize);
        free.extend(frames.frames().rev());
        FramePool { free }
    }

    pub fn take(&mut self) -> Option<TxFrame> {
        self.free.pop()
    }

    /// Returns a frame. A frame beyond the pool's capacity means the kernel completed a
    /// frame twice or one we never sent: refused (and the caller counts it) rather than
    /// growing the pool on the hot path.
    pub fn give(&mut self, frame: TxFrame) -> Result<(), TxFrame> {
        if self.free.len() == self.free.capacity() {
            return Err(frame);
        }
        self.free.push(frame);
        Ok(())
    }

    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// The frame the next [`FramePool::take`] returns, left in the pool.
    pub fn peek(&self) -> Option<TxFrame> {
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

    fn addrs<A>(frames: &Frames<A>) -> Vec<u64> {
        frames.frame_addrs().collect()
    }

    #[test]
    fn areas_do_not_overlap_and_bounds_hold() {
        let (rx, mut tx) = Umem::new(small()).unwrap().split();
        assert_eq!(addrs(&rx), vec![0, 2048, 4096, 6144]);
        let first = tx.frames().next().unwrap();
        assert_eq!(first.addr(), 8192);
        assert!(rx.received(RxDesc::new(0, 2048)).is_ok());
        assert!(
            rx.received(RxDesc::new(8192, 1)).is_err(),
            "tx frame from the rx side"
        );
        assert!(
            rx.received(RxDesc::new(100, 2000)).is_err(),
            "crosses into the next frame"
        );
        assert!(
            rx.received(RxDesc::new(u64::MAX - 1, 10)).is_err(),
            "overflowing address"
        );
        let last = tx.frames().last().unwrap();
        assert!(tx.get_mut(last, 2048, 0).is_err(), "one past the end");
        assert!(tx.get_mut(last, 2047, 1).is_ok());
        assert!(
            tx.get_mut(first, 2040, 10).is_err(),
            "crosses into the next frame"
        );
        assert!(
            tx.get_mut(first, u32::MAX, 1).is_err(),
            "overflowing offset"
        );
        tx.get_mut(first, 10, 4).unwrap().copy_from_slice(b"abcd");
        assert_eq!(tx.get(first, 10, 4).unwrap(), b"abcd");
    }

    #[test]
    fn a_frame_of_one_umem_is_refused_by_the_area_of_another() {
        let config = UmemConfig {
            frame_count: 16,
            ..small()
        };
        let (_, big_tx) = Umem::new(config).unwrap().split();
        let (_, mut tx) = Umem::new(small()).unwrap().split();
        let beyond = big_tx.frames().last().unwrap();
        assert!(tx.get_mut(beyond, 0, 1).is_err());
        assert!(tx.get(beyond, 0, 1).is_err());

        // Inside the range of an area of larger frames, but not at one of its frame starts.
        let (_, mut wide) = Umem::new(UmemConfig {
            frame_size: 4096,
            ..small()
        })
        .unwrap()
        .split();
        let between = big_tx.frames().find(|f| f.addr() == 9 * 2048).unwrap();
        assert!(between.addr() > 4 * 4096, "inside the wide transmit area");
        assert!(wide.get_mut(between, 0, 1).is_err());
    }

    #[test]
    fn received_descriptors_are_checked_and_typed() {
        let (rx, _tx) = Umem::new(small()).unwrap().split();
        let (got, data) = rx.received(RxDesc::new(2048 + 300, 60)).unwrap();
        assert_eq!(got.frame().addr(), 2048, "the frame the data lies in");
        assert_eq!(data.len(), 60);
        assert_eq!(rx.data(&got).unwrap().len(), 60);

        // A bad length in one of our frames: the frame can still go back to Fill.
        let long = RxDesc::new(2048 + 300, 2000);
        assert!(rx.received(long).is_err());
        assert_eq!(rx.frame_of_bad(long).map(RxFrame::addr), Some(2048));
        // Not ours at all: nothing to give back.
        assert_eq!(rx.frame_of_bad(RxDesc::new(8192, 1)), None);
        assert_eq!(rx.frame_of_bad(RxDesc::new(u64::MAX, 1)), None);
    }

    #[test]
    fn a_received_frame_is_refused_by_another_queues_area() {
        let config = UmemConfig {
            frame_count: 12,
            rx_frames: 8,
            ..small()
        };
        let (rx, _tx) = Umem::new(config).unwrap().split_queues(2);
        let (got, _) = rx[1].received(RxDesc::new(4 * 2048, 60)).unwrap();
        assert!(rx[0].data(&got).is_err());
        assert!(rx[1].data(&got).is_ok());
    }

    #[test]
    fn completions_become_transmit_frames_only_inside_the_transmit_area() {
        let (_rx, tx) = Umem::new(small()).unwrap().split();
        let at = |a| tx.completed(CompletionAddr::new(a)).map(TxFrame::addr);
        assert_eq!(at(8192), Some(8192));
        assert_eq!(at(8192 + 60), Some(8192), "an offset into the frame");
        assert_eq!(at(14336), Some(14336), "the last frame");
        assert_eq!(at(16384), None, "past the area");
        assert_eq!(at(0), None, "a receive frame");
        assert_eq!(at(6144 + 100), None, "inside a receive frame");
        assert_eq!(at(u64::MAX), None, "overflowing");
    }

    #[test]
    fn receive_area_splits_per_queue() {
        let config = UmemConfig {
            frame_count: 12,
            rx_frames: 7,
            ..small()
        };
        let (rx, tx) = Umem::new(config).unwrap().split_queues(3);
        let per_queue: Vec<Vec<u64>> = rx.iter().map(addrs).collect();
        assert_eq!(
            per_queue,
            vec![vec![0, 2048], vec![4096, 6144], vec![8192, 10240]],
            "two frames each; the seventh stays unused"
        );
        assert!(
            rx[0].received(RxDesc::new(4096, 1)).is_err(),
            "queue 1's frame from queue 0"
        );
        assert_eq!(addrs(&tx).first(), Some(&(7 * 2048)));
        assert_eq!(tx.frame_count(), 5);
    }

    #[test]
    fn pool_never_grows() {
        let (_rx, tx) = Umem::new(small()).unwrap().split();
        let mut pool = FramePool::new(&tx);
        assert_eq!(pool.available(), 4);
        let a = pool.take().unwrap();
        assert_eq!(a.addr(), 8192, "lowest frame first");
        assert_eq!(pool.give(a), Ok(()));
        assert_eq!(
            pool.give(a),
            Err(a),
            "a fifth frame in a pool of four is refused"
        );
    }
}
