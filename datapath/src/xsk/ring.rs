//! The four AF_XDP rings, named as the kernel names them: `Fill` and `Tx` (we produce,
//! the kernel consumes) and `Rx` and `Completion` (the kernel produces, we consume).
//!
//! A ring is a power-of-two array of entries plus two free-running `u32` indices shared
//! with the kernel. All index arithmetic lives in [`Cursor`]; the ring types only add the
//! shared-memory loads and stores. Entries are written before the producer index is
//! published with Release, and read after the producer index is loaded with Acquire, so a
//! half-written descriptor is never visible to the other side.
#![allow(unsafe_code)]

use super::sys::Mmap;
use super::umem::{RxFrame, TxFrame};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// An Rx/Tx descriptor as the kernel lays it out: a UMEM address and a length
/// (`struct xdp_desc`).
type Desc = libc::xdp_desc;

/// A descriptor of a frame to send: one transmit frame, sent from its first byte, and a
/// length. Made only from a [`TxFrame`], so a receive frame can never be handed to Tx:
///
#[cfg_attr(
    feature = "xsk-doctests",
    doc = r#"
```compile_fail,E0308
use quickdraw_datapath::xsk::{RxFrame, Tx, TxDesc};
fn send(tx: &mut Tx, frame: RxFrame) {
    let _ = tx.push(TxDesc::new(frame, 60));
}
```
"#
)]
///
/// nor a received descriptor sent back out as it is:
///
#[cfg_attr(
    feature = "xsk-doctests",
    doc = r#"
```compile_fail,E0308
use quickdraw_datapath::xsk::{RxDesc, Tx};
fn echo(tx: &mut Tx, desc: RxDesc) {
    let _ = tx.push(desc);
}
```
"#
)]
///
/// What compiles is a transmit frame:
///
#[cfg_attr(
    feature = "xsk-doctests",
    doc = r#"
```no_run
use quickdraw_datapath::xsk::{Tx, TxDesc, TxFrame};
fn send(tx: &mut Tx, frame: TxFrame) {
    let _ = tx.push(TxDesc::new(frame, 60));
}
```
"#
)]
///
/// The length is not checked here: whoever writes the frame checks it against the
/// transmit area (and the kernel checks every Tx descriptor again).
#[derive(Debug, Clone, Copy)]
#[repr(transparent)]
pub struct TxDesc(Desc);

impl TxDesc {
    pub fn new(frame: TxFrame, len: u32) -> TxDesc {
        TxDesc::at(frame, 0, len)
    }

    /// `len` bytes from byte `offset` of `frame` (the kernel checks that they stay inside
    /// the frame, and completes the descriptor with this address).
    pub fn at(frame: TxFrame, offset: u32, len: u32) -> TxDesc {
        TxDesc(Desc {
            addr: frame.addr() + u64::from(offset),
            len,
            options: 0,
        })
    }
}

// The entry types are the kernel's layouts under other names (`#[repr(transparent)]`).
const _: () = assert!(std::mem::size_of::<TxDesc>() == std::mem::size_of::<Desc>());
const _: () = assert!(std::mem::size_of::<RxDesc>() == std::mem::size_of::<Desc>());
const _: () = assert!(std::mem::size_of::<RxFrame>() == 8);
const _: () = assert!(std::mem::size_of::<CompletionAddr>() == 8);

/// A descriptor the kernel wrote to the Rx ring: untrusted until
/// [`Frames::received`](super::Frames::received) checks it against the receive area it
/// belongs to, which is the only way to a [`RxFrame`] that can go back to Fill.
#[derive(Debug, Clone, Copy)]
#[repr(transparent)]
pub struct RxDesc(Desc);

// The length of the frame data it points at, not of a collection (the lint fires only
// when the module is public, with the `xsk-doctests` feature).
#[allow(clippy::len_without_is_empty)]
impl RxDesc {
    /// A descriptor as the kernel would write it (tests, fuzzing: nothing trusts it).
    pub fn new(addr: u64, len: u32) -> RxDesc {
        RxDesc(Desc {
            addr,
            len,
            options: 0,
        })
    }

    pub fn addr(&self) -> u64 {
        self.0.addr
    }

    pub fn len(&self) -> u32 {
        self.0.len
    }
}

/// An address the kernel wrote to the Completion ring: untrusted. It becomes a
/// [`TxFrame`] again only through [`Frames::completed`](super::Frames::completed) (one of
/// the transmit area's frames) and then the caller's own record of what it handed to Tx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct CompletionAddr(u64);

impl CompletionAddr {
    /// An address as the kernel would write it (tests: nothing trusts it).
    pub fn new(addr: u64) -> CompletionAddr {
        CompletionAddr(addr)
    }

    pub fn addr(&self) -> u64 {
        self.0
    }
}

/// Our side's view of one ring's indices. Pure arithmetic, no shared memory: what is
/// tested by the model-based test below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    size: u32,
    /// Our producer index (producer rings: entries written so far, published or not;
    /// consumer rings: the last producer index loaded from the kernel).
    prod: u32,
    /// Our consumer index (consumer rings: entries read so far, released or not;
    /// producer rings: the last consumer index loaded from the kernel).
    cons: u32,
}

impl Cursor {
    pub fn new(size: u32) -> Cursor {
        assert!(
            size.is_power_of_two(),
            "ring size {size} is not a power of two"
        );
        Cursor {
            size,
            prod: 0,
            cons: 0,
        }
    }

    /// Entries between consumer and producer: written and not yet consumed.
    pub fn filled(&self) -> u32 {
        self.prod.wrapping_sub(self.cons)
    }

    /// Entries a producer may still write without overtaking the consumer.
    pub fn free(&self) -> u32 {
        self.size - self.filled()
    }

    /// The array slot of free-running index `index`.
    pub fn slot(&self, index: u32) -> usize {
        (index & (self.size - 1)) as usize
    }
}

/// The shared memory of one ring: where its indices, flags and entries are.
#[derive(Debug)]
struct Shared<T> {
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    entries: NonNull<T>,
    /// Keeps the mapping alive as long as any view of it (tests share one between a ring
    /// and its simulated kernel side).
    _map: Arc<Mmap>,
}

// SAFETY: the pointers refer into `_map`, which lives as long as this value; the ring
// protocol (one producer, one consumer) makes moving a side to another thread sound.
unsafe impl<T: Send> Send for Shared<T> {}

/// Byte offsets of a ring's fields inside its mapping (`struct xdp_ring_offset`).
#[derive(Debug, Clone, Copy)]
pub struct Offsets {
    pub producer: u64,
    pub consumer: u64,
    pub flags: u64,
    pub entries: u64,
}

impl<T: Copy> Shared<T> {
    /// # Panics
    /// If an offset is misaligned or the entries do not fit in the mapping: those come
    /// from the kernel or from our own test layout, and either being wrong is a bug.
    fn new(map: Arc<Mmap>, off: Offsets, size: u32) -> Shared<T> {
        let len = map.len() as u64;
        for o in [off.producer, off.consumer, off.flags] {
            assert!(
                o % 4 == 0 && o + 4 <= len,
                "ring index offset {o} outside mapping of {len}"
            );
        }
        let entries_end = off.entries + u64::from(size) * std::mem::size_of::<T>() as u64;
        assert!(off.entries.is_multiple_of(std::mem::align_of::<T>() as u64) && entries_end <= len);
        let base = map.as_ptr().as_ptr();
        // SAFETY: every offset was checked to lie inside the mapping and be aligned.
        unsafe {
            Shared {
                producer: NonNull::new_unchecked(base.add(off.producer as usize).cast()),
                consumer: NonNull::new_unchecked(base.add(off.consumer as usize).cast()),
                flags: NonNull::new_unchecked(base.add(off.flags as usize).cast()),
                entries: NonNull::new_unchecked(base.add(off.entries as usize).cast()),
                _map: map,
            }
        }
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: in bounds and aligned (checked in `new`), alive as long as `_map`; the
        // kernel only ever accesses it atomically too.
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.consumer.as_ref() }
    }

    fn flags(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.flags.as_ref() }
    }

    fn read(&self, slot: usize) -> T {
        // SAFETY: `slot` < size (masked by the cursor), so in bounds of the entries
        // checked in `new`; the entry was published by the producer before we loaded its
        // index with Acquire. A volatile read because the other side is outside Rust.
        unsafe { self.entries.as_ptr().add(slot).read_volatile() }
    }

    fn write(&self, slot: usize, value: T) {
        // SAFETY: `slot` < size; the slot is free (the consumer index loaded with Acquire
        // is past it), so the other side does not read it until we publish.
        unsafe { self.entries.as_ptr().add(slot).write_volatile(value) }
    }
}

/// A ring we produce into and the kernel consumes: [`Fill`] and [`Tx`].
#[derive(Debug)]
pub struct ProdRing<T> {
    shared: Shared<T>,
    cursor: Cursor,
    _entry: PhantomData<T>,
}

/// A ring the kernel produces into and we consume: [`Rx`] and [`Completion`].
#[derive(Debug)]
pub struct ConsRing<T> {
    shared: Shared<T>,
    cursor: Cursor,
    _entry: PhantomData<T>,
}

/// Receive frames we give the kernel to receive into. Only a [`RxFrame`] goes in:
///
#[cfg_attr(
    feature = "xsk-doctests",
    doc = r#"
```compile_fail,E0308
use quickdraw_datapath::xsk::{Fill, TxFrame};
fn refill(fill: &mut Fill, frame: TxFrame) {
    let _ = fill.push(frame);
}
```
"#
)]
///
#[cfg_attr(
    feature = "xsk-doctests",
    doc = r#"
```compile_fail,E0308
use quickdraw_datapath::xsk::Fill;
fn refill(fill: &mut Fill, addr: u64) {
    let _ = fill.push(addr);
}
```
"#
)]
///
#[cfg_attr(
    feature = "xsk-doctests",
    doc = r#"
```no_run
use quickdraw_datapath::xsk::{Fill, RxFrame};
fn refill(fill: &mut Fill, frame: RxFrame) {
    let _ = fill.push(frame);
}
```
"#
)]
pub type Fill = ProdRing<RxFrame>;
/// Descriptors of transmit frames we want sent.
pub type Tx = ProdRing<TxDesc>;
/// Descriptors of frames the kernel received for us (unchecked).
pub type Rx = ConsRing<RxDesc>;
/// Addresses of transmit frames the kernel has finished sending (unchecked).
pub type Completion = ConsRing<CompletionAddr>;

const NEED_WAKEUP: u32 = libc::XDP_RING_NEED_WAKEUP;

impl<T: Copy> ProdRing<T> {
    pub(crate) fn new(map: Arc<Mmap>, off: Offsets, size: u32) -> Self {
        let shared = Shared::new(map, off, size);
        let mut cursor = Cursor::new(size);
        cursor.prod = shared.producer().load(Ordering::Relaxed);
        cursor.cons = shared.consumer().load(Ordering::Acquire);
        ProdRing {
            shared,
            cursor,
            _entry: PhantomData,
        }
    }

    /// Free slots, reloading the kernel's consumer index only when our cached view says
    /// fewer than `want` are free (one shared-memory load in the common case: none).
    pub fn free(&mut self, want: u32) -> u32 {
        let free = self.cursor.free();
        if free >= want {
            return free;
        }
        self.cursor.cons = self.shared.consumer().load(Ordering::Acquire);
        self.cursor.free()
    }

    /// Writes one entry. It stays invisible to the kernel until [`ProdRing::publish`].
    /// Returns the entry back if the ring is full.
    pub fn push(&mut self, value: T) -> Result<(), T> {
        if self.free(1) == 0 {
            return Err(value);
        }
        self.shared.write(self.cursor.slot(self.cursor.prod), value);
        self.cursor.prod = self.cursor.prod.wrapping_add(1);
        Ok(())
    }

    /// Makes every pushed entry visible to the kernel (one Release store).
    pub fn publish(&mut self) {
        self.shared
            .producer()
            .store(self.cursor.prod, Ordering::Release);
    }

    /// Entries pushed but not yet published.
    pub fn unpublished(&self) -> u32 {
        self.cursor
            .prod
            .wrapping_sub(self.shared.producer().load(Ordering::Relaxed))
    }

    /// Whether the kernel asks to be woken (a `sendto` for Tx, a `recvfrom` for Fill)
    /// before it looks at this ring again (`XDP_USE_NEED_WAKEUP`).
    pub fn needs_wakeup(&self) -> bool {
        self.shared.flags().load(Ordering::Relaxed) & NEED_WAKEUP != 0
    }

    pub fn size(&self) -> u32 {
        self.cursor.size
    }
}

impl<T: Copy> ConsRing<T> {
    pub(crate) fn new(map: Arc<Mmap>, off: Offsets, size: u32) -> Self {
        let shared = Shared::new(map, off, size);
        let mut cursor = Cursor::new(size);
        cursor.cons = shared.consumer().load(Ordering::Relaxed);
        cursor.prod = shared.producer().load(Ordering::Acquire);
        ConsRing {
            shared,
            cursor,
            _entry: PhantomData,
        }
    }

    /// Entries ready to read, reloading the kernel's producer index only when our cached
    /// view has none.
    pub fn ready(&mut self) -> u32 {
        if self.cursor.filled() == 0 {
            self.cursor.prod = self.shared.producer().load(Ordering::Acquire);
        }
        self.cursor.filled()
    }

    /// Takes the next entry. Its slot is handed back to the kernel at [`ConsRing::release`].
    pub fn pop(&mut self) -> Option<T> {
        if self.ready() == 0 {
            return None;
        }
        let value = self.shared.read(self.cursor.slot(self.cursor.cons));
        self.cursor.cons = self.cursor.cons.wrapping_add(1);
        Some(value)
    }

    /// Returns the slots of every popped entry to the kernel (one Release store).
    pub fn release(&mut self) {
        self.shared
            .consumer()
            .store(self.cursor.cons, Ordering::Release);
    }

    pub fn size(&self) -> u32 {
        self.cursor.size
    }
}

/// A ring laid out in anonymous memory, for tests that need no kernel: our side and a
/// simulated kernel side over the same memory.
#[cfg(test)]
pub(crate) fn anonymous_pair<T: Copy>(size: u32) -> (ProdRing<T>, ConsRing<T>) {
    let entries = 64u64;
    let len = entries as usize + size as usize * std::mem::size_of::<T>();
    let map = Arc::new(Mmap::anonymous(len).expect("anonymous ring memory"));
    let off = Offsets {
        producer: 0,
        consumer: 4,
        flags: 8,
        entries,
    };
    (
        ProdRing::new(map.clone(), off, size),
        ConsRing::new(map, off, size),
    )
}

#[cfg(test)]
impl<T: Copy> ProdRing<T> {
    /// Sets the ring's flags as the kernel would.
    pub(crate) fn set_flags(&self, flags: u32) {
        self.shared.flags().store(flags, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    #[test]
    fn cursor_arithmetic_wraps() {
        let mut c = Cursor::new(8);
        assert_eq!((c.filled(), c.free()), (0, 8));
        c.prod = u32::MAX - 1;
        c.cons = u32::MAX - 3;
        assert_eq!((c.filled(), c.free()), (2, 6));
        c.prod = c.prod.wrapping_add(4); // wraps past zero
        assert_eq!((c.filled(), c.free()), (6, 2));
        assert_eq!(c.slot(u32::MAX), 7);
        assert_eq!(c.slot(0), 0);
    }

    #[test]
    #[should_panic(expected = "power of two")]
    fn sizes_must_be_powers_of_two() {
        Cursor::new(6);
    }

    #[test]
    fn published_entries_only_are_visible() {
        let (mut ours, mut kernel) = anonymous_pair::<u64>(4);
        for v in 0..4 {
            ours.push(v).unwrap();
        }
        assert_eq!(ours.push(9), Err(9), "a full ring refuses");
        assert_eq!(ours.unpublished(), 4);
        assert_eq!(kernel.pop(), None, "nothing is visible before publish");
        ours.publish();
        assert_eq!(kernel.pop(), Some(0));
        assert_eq!(
            ours.push(9),
            Err(9),
            "a popped but unreleased slot is not free"
        );
        kernel.release();
        assert_eq!(ours.push(4), Ok(()));
    }

    #[test]
    fn need_wakeup_follows_the_flag() {
        let (ours, _kernel) = anonymous_pair::<TxDesc>(2);
        assert!(!ours.needs_wakeup());
        ours.set_flags(NEED_WAKEUP);
        assert!(ours.needs_wakeup());
    }

    /// Model-based: random interleavings of push/publish/pop/release on both sides,
    /// starting near the u32 wrap, checked against a queue of published values.
    #[test]
    fn model_based_interleavings() {
        for seed in 1..200u64 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let size = 1 << rng.u32(0..5);
            let (mut ours, mut kernel) = anonymous_pair::<u64>(size);
            // Start both sides just below the wrap of the free-running indices.
            let start = u32::MAX - rng.u32(0..2 * size);
            ours.shared.producer().store(start, Ordering::Relaxed);
            ours.shared.consumer().store(start, Ordering::Relaxed);
            ours.cursor.prod = start;
            ours.cursor.cons = start;
            kernel.cursor.prod = start;
            kernel.cursor.cons = start;

            let mut pushed: VecDeque<u64> = VecDeque::new(); // written, maybe unpublished
            let mut published = 0usize; // how many of `pushed` the kernel may see
            let mut popped_unreleased = 0u32;
            let mut next = 0u64;
            for _ in 0..2000 {
                match rng.u8(0..4) {
                    0 => {
                        let in_flight = pushed.len() as u32 + popped_unreleased;
                        let r = ours.push(next);
                        assert_eq!(r.is_ok(), in_flight < size, "seed {seed}");
                        if r.is_ok() {
                            pushed.push_back(next);
                            next += 1;
                        }
                    }
                    1 => {
                        ours.publish();
                        published = pushed.len();
                    }
                    2 => match kernel.pop() {
                        Some(v) => {
                            assert!(published > 0, "seed {seed}: saw an unpublished entry");
                            assert_eq!(Some(v), pushed.pop_front(), "seed {seed}");
                            published -= 1;
                            popped_unreleased += 1;
                        }
                        None => assert_eq!(published, 0, "seed {seed}: missed a published entry"),
                    },
                    _ => {
                        kernel.release();
                        popped_unreleased = 0;
                    }
                }
                assert!(ours.free(0) <= size);
            }
        }
    }
}
