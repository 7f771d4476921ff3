//! A smoltcp `phy::Device` over an AF_XDP socket. Received frames are lent to smoltcp in
//! place and go back to the Fill ring when their token is consumed or dropped; transmit
//! tokens write straight into a free UMEM frame and push one Tx descriptor. The hot path
//! neither allocates nor copies beyond what smoltcp writes.
//!
//! With receive sockets on more queues (`Xsk::shared`), `receive` takes from the queues
//! in turn, starting after the one that delivered last; everything is sent through the
//! first socket.

mod check;
pub mod fixup;
pub mod frame;
mod in_flight;
pub mod neighbours;
mod queues;
mod reserved;

pub use check::{classify, FrameKind};
use in_flight::{Done, InFlight};
pub use neighbours::{Admit, NeighbourStats, Neighbours, Pin};
pub use queues::{QueueCounts, QueueRx};
pub use reserved::FrameHandle;
use reserved::{Completed, Reserved};

use crate::xsk::{Fill, FramePool, Received, Rx, RxFrames, Tx, TxDesc, TxFrames, Xsk};
use smoltcp::phy::{self, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{IpAddress, TcpPacket};
use std::io;

/// Largest Ethernet frame we send or accept: a 1500-byte IP MTU plus the 14-byte header.
const ETHERNET_FRAME_MAX: usize = 1514;
/// What the kernel reserves before received data in a UMEM frame (XDP_PACKET_HEADROOM).
const XDP_PACKET_HEADROOM: usize = 256;
/// Transmit frames that may be set aside for frames built ahead (one per connection that
/// holds an order, the floor's, the warm frame's), out of the thousands in the pool.
const RESERVED_FRAMES: usize = 64;
/// IEEE 802 local experimental EtherType 1: no stack, switch or host takes it for its own.
pub const WARM_ETHERTYPE: u16 = 0x88B5;
/// A minimum Ethernet frame (without FCS).
const WARM_FRAME_LEN: usize = 60;

/// Writes a warm frame into `buf` (its whole length): to and from `mac`, EtherType
/// [`WARM_ETHERTYPE`], a tag, then zeros. A transmit frame may hold an earlier frame's
/// octets, which must never leave again, hence the zeros.
fn write_warm_frame(buf: &mut [u8], mac: [u8; 6]) {
    buf.fill(0);
    buf[0..6].copy_from_slice(&mac);
    buf[6..12].copy_from_slice(&mac);
    buf[12..14].copy_from_slice(&WARM_ETHERTYPE.to_be_bytes());
    buf[14..22].copy_from_slice(b"qdwarm\0\0");
}

/// What the device has seen; plain counters, read by the loop and reported upward.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeviceStats {
    /// Descriptors taken from the Rx ring.
    pub rx_frames: u64,
    /// Frames handed to smoltcp.
    pub rx_delivered: u64,
    /// Frames dropped before smoltcp: truncated, bad checksum, garbage.
    pub rx_malformed: u64,
    /// Well-formed frames that are not IPv4/TCP or ARP (the XDP program should not steer them).
    pub rx_foreign: u64,
    /// Rx descriptors pointing outside our receive frames (dropped; the frame is lost).
    pub rx_bad_desc: u64,
    /// Frames pushed to the Tx ring.
    pub tx_frames: u64,
    /// Frames smoltcp emitted while no transmit frame or Tx slot was free (dropped; TCP
    /// retransmits).
    pub tx_dropped: u64,
    /// Transmit frames the kernel gave back through the Completion ring.
    pub tx_completed: u64,
    /// Completions for frames we never sent (refused, not returned to the pool).
    pub tx_bad_completion: u64,
    /// `sendto` kicks made, and those that failed.
    pub kicks: u64,
    pub kick_errors: u64,
    /// Wake-ups of the receive side asked for by the Fill ring.
    pub rx_wakeups: u64,
    /// Self-addressed warm frames pushed (see [`XdpDevice::send_warm_frame`]).
    pub warm_frames: u64,
    /// Of those, the ones sent from beside a built frame
    /// ([`XdpDevice::send_warm_frame_beside`]).
    pub warm_frames_beside: u64,
    /// Frames built ahead (orders, the floor) pushed as they stood.
    pub tx_prebuilt: u64,
    /// The pinned-neighbour filter's counters (ARP kept from smoltcp, answered, pinned).
    pub neighbours: NeighbourStats,
}

/// The device. One per AF_XDP socket, owned by the datapath thread.
#[derive(Debug)]
pub struct XdpDevice {
    xsk: Xsk,
    pool: FramePool,
    /// Where a frame smoltcp insists on emitting goes when no transmit frame is free:
    /// sized at start-up, so dropping never allocates either.
    scratch: Box<[u8]>,
    stats: DeviceStats,
    mtu: usize,
    /// Tx descriptors published since the last kick.
    unkicked: bool,
    /// Per receive queue (the first socket's, then `Xsk::shared` in order): Rx
    /// descriptors taken, and whether Fill entries were pushed since the last flush.
    queue_rx: Vec<QueueRx>,
    /// The queue `receive` looks at first (round robin over the queues).
    next_queue: usize,
    /// Transmit frames built ahead of their send, outside the pool.
    reserved: Reserved,
    /// Transmit frames the kernel holds: the only ones a completion may return.
    in_flight: InFlight,
    /// Our MAC, for the self-addressed warm frame.
    mac: [u8; 6],
    warm_frame: Option<FrameHandle>,
    /// What of ARP smoltcp may learn from (see `neighbours`).
    neighbours: Neighbours,
    /// An ARP reply the filter owes, sent at the end of the turn.
    arp_reply: Option<[u8; neighbours::ARP_FRAME_LEN]>,
}

impl XdpDevice {
    pub fn new(xsk: Xsk, mac: [u8; 6]) -> XdpDevice {
        let pool = FramePool::new(&xsk.tx_frames);
        let in_flight = InFlight::new(&xsk.tx_frames);
        let frame = xsk.tx_frames.frame_size() as usize;
        // Receive data starts after the kernel's headroom and ours; send from offset 0.
        let rx_room = frame - XDP_PACKET_HEADROOM - xsk.umem_config().headroom as usize;
        let mtu = ETHERNET_FRAME_MAX.min(rx_room);
        let queue_rx = std::iter::once(xsk.queue())
            .chain(xsk.shared.iter().map(|s| s.queue()))
            .map(|queue| QueueRx {
                queue,
                ..QueueRx::default()
            })
            .collect();
        XdpDevice {
            xsk,
            pool,
            scratch: vec![0; frame].into_boxed_slice(),
            stats: DeviceStats::default(),
            mtu,
            unkicked: false,
            queue_rx,
            next_queue: 0,
            reserved: Reserved::with_capacity(RESERVED_FRAMES),
            in_flight,
            mac,
            warm_frame: None,
            neighbours: Neighbours::new(std::net::Ipv4Addr::UNSPECIFIED, 0, [0; 6], &[]),
            arp_reply: None,
        }
    }

    /// Puts the pinned-neighbour filter in front of smoltcp (none pins nothing: all ARP
    /// passes).
    pub fn set_neighbours(&mut self, neighbours: Neighbours) {
        self.neighbours = neighbours;
    }

    /// Start of a loop turn: transmit frames the kernel has sent go back to the pool.
    pub fn reap_completions(&mut self) {
        let xsk = &mut self.xsk;
        while let Some(addr) = xsk.completion.pop() {
            let frame = match self.in_flight.complete(&xsk.tx_frames, addr) {
                Some(Done::Frame(frame)) => frame,
                // A warm frame from beside a built frame: nothing to give back.
                Some(Done::Beside(_)) => {
                    self.stats.tx_completed += 1;
                    continue;
                }
                // A duplicate, or no frame we sent: believing it could hand one frame to
                // two descriptors. Counted, ignored.
                None => {
                    self.stats.tx_bad_completion += 1;
                    continue;
                }
            };
            let given = match self.reserved.complete(frame) {
                Completed::Kept => Ok(()),
                Completed::Released | Completed::NotReserved => self.pool.give(frame),
            };
            match given {
                Ok(()) => self.stats.tx_completed += 1,
                Err(_) => self.stats.tx_bad_completion += 1,
            }
        }
        xsk.completion.release();
    }

    /// End of a loop turn: hand consumed Rx slots and refilled frames to the kernel, and
    /// kick Tx if descriptors were published and the ring asks for a wake-up.
    pub fn flush(&mut self) -> io::Result<()> {
        if let Some(reply) = self.arp_reply.take() {
            // Lost when no frame is free: the asker asks again.
            self.send_frame(&reply);
        }
        self.xsk.rx.release();
        if self.queue_rx[0].refilled {
            self.queue_rx[0].refilled = false;
            self.xsk.fill.publish();
            if self.xsk.fill.needs_wakeup() {
                self.stats.rx_wakeups += 1;
                self.xsk.wake_rx()?;
            }
        }
        for (shared, q) in self.xsk.shared.iter_mut().zip(&mut self.queue_rx[1..]) {
            shared.rx.release();
            if q.refilled {
                q.refilled = false;
                shared.fill.publish();
                if shared.fill.needs_wakeup() {
                    self.stats.rx_wakeups += 1;
                    shared.wake_rx()?;
                }
            }
        }
        self.kick_if_needed()
    }

    /// Kicks the kernel if Tx descriptors are waiting and the ring asks for it: the one
    /// system call between a trigger and the wire.
    pub fn kick_if_needed(&mut self) -> io::Result<()> {
        if !self.unkicked {
            return Ok(());
        }
        self.unkicked = false;
        if !self.xsk.tx.needs_wakeup() {
            return Ok(());
        }
        self.stats.kicks += 1;
        self.xsk.kick().inspect_err(|_| self.stats.kick_errors += 1)
    }

    /// Copies a complete Ethernet frame into a free transmit frame and publishes its
    /// descriptor (no kick: see [`XdpDevice::kick_if_needed`]). False when no frame or
    /// Tx slot is free, or the frame is larger than a UMEM frame.
    pub fn send_frame(&mut self, frame: &[u8]) -> bool {
        let xsk = &mut self.xsk;
        if xsk.tx.free(1) == 0 {
            return false;
        }
        let Some(tx_frame) = self.pool.take() else {
            return false;
        };
        match xsk.tx_frames.get_mut(tx_frame, 0, frame.len() as u32) {
            Ok(buf) => buf.copy_from_slice(frame),
            Err(_) => {
                let _ = self.pool.give(tx_frame);
                return false;
            }
        }
        self.in_flight.push(tx_frame);
        let pushed = xsk.tx.push(TxDesc::new(tx_frame, frame.len() as u32));
        debug_assert!(pushed.is_ok(), "Tx slot was checked free");
        xsk.tx.publish();
        self.stats.tx_frames += 1;
        self.unkicked = true;
        true
    }

    /// Send warming: writes `record` into the transmit frame the next send will use,
    /// behind a TCP header, and checksums that segment with smoltcp's own code — touching
    /// the frame (and its TLB entry), the record's cache lines and the checksum code the
    /// fire will run — without a descriptor: nothing goes on the wire. Returns the
    /// checksum so the work is not optimised away.
    pub fn warm_tx(&mut self, record: &[u8]) -> u16 {
        // Ethernet + IPv4 in front of the TCP header, as smoltcp lays a frame out.
        const TCP_AT: u32 = 14 + 20;
        let Some(frame) = self.pool.peek() else {
            return 0;
        };
        let len = 20 + record.len() as u32;
        let Ok(segment) = self.xsk.tx_frames.get_mut(frame, TCP_AT, len) else {
            return 0;
        };
        segment[20..].copy_from_slice(record);
        let mut tcp = TcpPacket::new_unchecked(segment);
        tcp.set_header_len(20);
        let ip = IpAddress::Ipv4(std::net::Ipv4Addr::UNSPECIFIED);
        tcp.fill_checksum(&ip, &ip);
        // The Tx ring's indices are read by the next send too.
        let _ = self.xsk.tx.free(1);
        tcp.checksum()
    }

    /// Sets a transmit frame aside for a frame built ahead of its send. `None` when no
    /// frame or reserved slot is free.
    pub fn reserve(&mut self) -> Option<FrameHandle> {
        let frame = self.pool.take()?;
        match self.reserved.insert(frame) {
            Some(h) => Some(h),
            None => {
                let _ = self.pool.give(frame);
                None
            }
        }
    }

    /// Gives a reserved frame back (to the pool now, or on its completion if in flight).
    pub fn release(&mut self, h: FrameHandle) {
        if let Some(frame) = self.reserved.release(h) {
            let _ = self.pool.give(frame);
        }
    }

    /// The first `len` bytes of a reserved frame, to build or patch it; `None` while the
    /// kernel holds it (pushed and not completed) or when `len` exceeds a frame.
    pub fn reserved_mut(&mut self, h: FrameHandle, len: usize) -> Option<&mut [u8]> {
        let frame = self.reserved.ready(h)?;
        self.xsk
            .tx_frames
            .get_mut(frame, 0, u32::try_from(len).ok()?)
            .ok()
    }

    /// A reserved frame's first `len` bytes as built, even while the kernel holds it
    /// (reading is safe then: the kernel and a NIC only read transmit frames).
    pub fn reserved_bytes(&self, h: FrameHandle, len: usize) -> Option<&[u8]> {
        let frame = self.reserved.held(h)?;
        self.xsk
            .tx_frames
            .get(frame, 0, u32::try_from(len).ok()?)
            .ok()
    }

    /// Pushes a reserved frame's first `len` bytes to the Tx ring as they stand (no kick:
    /// see [`XdpDevice::kick_if_needed`]). False while it is in flight or Tx is full.
    pub fn push_reserved(&mut self, h: FrameHandle, len: usize) -> bool {
        let pushed = self.push_reserved_frame(h, len);
        self.stats.tx_prebuilt += u64::from(pushed);
        pushed
    }

    /// Pushes a reserved frame, counted only as a transmitted frame.
    fn push_reserved_frame(&mut self, h: FrameHandle, len: usize) -> bool {
        let Some(frame) = self.reserved.ready(h) else {
            return false;
        };
        let Ok(len) = u32::try_from(len) else {
            return false;
        };
        if self.xsk.tx.free(1) == 0 || self.xsk.tx_frames.get(frame, 0, len).is_err() {
            return false;
        }
        let pushed = self.xsk.tx.push(TxDesc::new(frame, len));
        debug_assert!(pushed.is_ok(), "Tx slot was checked free");
        self.xsk.tx.publish();
        self.in_flight.push(frame);
        self.reserved.pushed(h);
        self.stats.tx_frames += 1;
        self.unkicked = true;
        true
    }

    /// Warms the whole transmit path, kernel included, without sending anything to
    /// anyone: a frame addressed to our own MAC with the local experimental EtherType,
    /// through the same Tx ring and kick as an order. It runs the system call, the AF_XDP
    /// transmit path and the driver (on veth, the peer's receive path, which drops it:
    /// not for its MAC, no protocol); a switch drops it on the port it came from. It never
    /// carries IP: after its 22-byte header it is zeros.
    ///
    /// `len` (from 60 up to the MTU) is the size of the frame to keep warm: the kernel
    /// sizes and copies each frame by its length, and a minimum frame left the path for a
    /// 400-byte order cold (lab, 1 s gap: the floor 2.2 → 1.1 µs with warm frames of the
    /// order's size). Kicks at once; false if it could not go out.
    pub fn send_warm_frame(&mut self, len: usize) -> bool {
        let len = len.clamp(WARM_FRAME_LEN, self.mtu);
        let h = match self.warm_frame {
            Some(h) => h,
            None => {
                let Some(h) = self.reserve() else {
                    return false;
                };
                let (mac, mtu) = (self.mac, self.mtu);
                // Zeros up to the largest length it may go out with: a reserved frame
                // may hold an earlier order's octets, which must never leave again.
                let Some(frame) = self.reserved_mut(h, mtu) else {
                    return false;
                };
                write_warm_frame(frame, mac);
                self.warm_frame = Some(h);
                h
            }
        };
        if !self.push_reserved_frame(h, len) {
            return false;
        }
        self.stats.warm_frames += 1;
        self.kick_if_needed().is_ok()
    }

    /// A warm frame (as [`XdpDevice::send_warm_frame`]) sent from the second half of the
    /// reserved frame `h`, whose first half holds a frame built ahead (an order's, the
    /// floor's). The kernel copies a transmit frame through its own mapping of the UMEM,
    /// page by page: a warm frame from elsewhere leaves that page's translation and the
    /// kernel's walk to it cold, and the fire pays for them (lab, 20 ms gap: af_xdp
    /// trigger→wire p50 0.96–1.03 → 0.84–0.86 µs). The half has its own place in flight,
    /// so the built frame can still go out at once. False (nothing sent) when frames are
    /// too small to share (under 2 × MTU), that half is still in flight, or Tx is full;
    /// the caller then sends an ordinary warm frame.
    pub fn send_warm_frame_beside(&mut self, h: FrameHandle, len: usize) -> bool {
        let half = self.in_flight.half();
        let Ok(offset) = u32::try_from(half) else {
            return false;
        };
        let len = len.clamp(WARM_FRAME_LEN, self.mtu);
        if half < self.mtu as u64 || self.xsk.tx.free(1) == 0 {
            return false;
        }
        // Held, in flight or not: the first half is the built frame's, never touched here.
        let Some(frame) = self.reserved.held(h) else {
            return false;
        };
        let Ok(buf) = self.xsk.tx_frames.get_mut(frame, offset, len as u32) else {
            return false;
        };
        if !self.in_flight.push_beside(frame) {
            return false;
        }
        write_warm_frame(buf, self.mac);
        let pushed = self.xsk.tx.push(TxDesc::at(frame, offset, len as u32));
        debug_assert!(pushed.is_ok(), "Tx slot was checked free");
        self.xsk.tx.publish();
        self.stats.tx_frames += 1;
        self.stats.warm_frames += 1;
        self.stats.warm_frames_beside += 1;
        self.unkicked = true;
        self.kick_if_needed().is_ok()
    }

    /// Code warming of the device's part of the fire path: the built frame's patch and
    /// push, and the kick (see `warming/code.rs`).
    pub fn warm_code(&self) {
        use crate::warming::touch_code;
        touch_code(XdpDevice::reserved_mut as *const (), 256);
        touch_code(XdpDevice::push_reserved as *const (), 128);
        touch_code(XdpDevice::push_reserved_frame as *const (), 640);
        touch_code(XdpDevice::kick_if_needed as *const (), 256);
        touch_code(fixup::set16 as *const (), 256);
        touch_code(fixup::set32 as *const (), 384);
    }

    /// Pulls a built frame's first `len` bytes into the cache, and its page into the TLB,
    /// without writing it: the fire patches its header in place, and a frame whose ACK and
    /// window have not moved is otherwise left untouched between fires.
    pub fn warm_reserved(&self, h: FrameHandle, len: usize) {
        let Some(frame) = self.reserved.ready(h) else {
            return;
        };
        if let Ok(bytes) = self
            .xsk
            .tx_frames
            .get(frame, 0, u32::try_from(len).unwrap_or(0))
        {
            crate::warming::touch(bytes);
        }
    }

    /// Whether the Tx ring has a free slot.
    pub fn tx_free(&mut self) -> bool {
        self.xsk.tx.free(1) > 0
    }

    /// The largest frame this device sends.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Whether a Rx ring holds descriptors we have not taken yet: one load of the
    /// kernel's producer index per queue, and only when our cached view is empty.
    pub fn rx_waiting(&mut self) -> bool {
        self.xsk.rx.ready() > 0 || self.xsk.shared.iter_mut().any(|s| s.rx.ready() > 0)
    }

    pub fn stats(&self) -> DeviceStats {
        DeviceStats {
            neighbours: self.neighbours.stats(),
            ..self.stats
        }
    }

    pub fn xsk(&self) -> &Xsk {
        &self.xsk
    }

    /// Receive counts per queue, the first socket's queue first.
    pub fn queues(&self) -> &[QueueRx] {
        &self.queue_rx
    }
}

/// Takes descriptors from one queue's Rx ring until one carries a frame for smoltcp
/// (returned); frames that are malformed, foreign or out of bounds go straight back to
/// the Fill ring and are counted.
fn next_deliverable(
    (frames, rx, fill): (&RxFrames, &mut Rx, &mut Fill),
    stats: &mut DeviceStats,
    queue: &mut QueueRx,
    neighbours: &mut Neighbours,
    arp_reply: &mut Option<[u8; neighbours::ARP_FRAME_LEN]>,
) -> Option<Received> {
    let refilled = &mut queue.refilled;
    loop {
        let desc = rx.pop()?;
        stats.rx_frames += 1;
        queue.rx_frames += 1;
        let (received, frame) = match frames.received(desc) {
            Ok(checked) => checked,
            Err(_) => {
                stats.rx_bad_desc += 1;
                // A frame inside our area (just a bad length) can still go back.
                if let Some(frame) = frames.frame_of_bad(desc) {
                    let _ = fill.push(frame);
                    *refilled = true;
                }
                continue;
            }
        };
        // Well-formed frames still pass the pinned-neighbour filter: smoltcp learns MACs
        // only from ARP it lets through, and answers for our address come from it.
        match classify(frame) {
            FrameKind::Deliver => match neighbours.admit(frame) {
                Admit::Deliver => {
                    stats.rx_delivered += 1;
                    return Some(received);
                }
                Admit::Answer(reply) => *arp_reply = Some(reply),
                Admit::Drop => {}
            },
            FrameKind::Malformed => stats.rx_malformed += 1,
            _ => stats.rx_foreign += 1,
        }
        let _ = fill.push(received.frame());
        *refilled = true;
    }
}

/// A received frame lent to smoltcp. Dropping it, consumed or not, returns the frame to
/// the Fill ring.
#[derive(Debug)]
pub struct XdpRxToken<'a> {
    frames: &'a RxFrames,
    fill: &'a mut Fill,
    refilled: &'a mut bool,
    received: Received,
}

impl phy::RxToken for XdpRxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        // Checked when the token was made; `get` cannot fail here.
        match self.frames.data(&self.received) {
            Ok(frame) => f(frame),
            Err(_) => f(&[]),
        }
    }
}

impl Drop for XdpRxToken<'_> {
    fn drop(&mut self) {
        // The Fill ring holds every receive frame, so this push cannot find it full.
        let _ = self.fill.push(self.received.frame());
        *self.refilled = true;
    }
}

/// A transmit slot: one free UMEM frame and one Tx descriptor, both checked available
/// before the token was made (or the scratch buffer, counted as a drop, when not).
#[derive(Debug)]
pub struct XdpTxToken<'a> {
    frames: &'a mut TxFrames,
    pool: &'a mut FramePool,
    in_flight: &'a mut InFlight,
    tx: &'a mut Tx,
    scratch: &'a mut [u8],
    stats: &'a mut DeviceStats,
    unkicked: &'a mut bool,
}

impl<'a> XdpTxToken<'a> {
    /// The device's transmit side, borrowed field by field so the receive side can be
    /// borrowed beside it.
    fn new(
        frames: &'a mut TxFrames,
        tx: &'a mut Tx,
        (pool, in_flight): (&'a mut FramePool, &'a mut InFlight),
        scratch: &'a mut [u8],
        stats: &'a mut DeviceStats,
        unkicked: &'a mut bool,
    ) -> Self {
        XdpTxToken {
            frames,
            pool,
            in_flight,
            tx,
            scratch,
            stats,
            unkicked,
        }
    }
}

impl phy::TxToken for XdpTxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let slot = if self.tx.free(1) > 0 {
            self.pool.take()
        } else {
            None
        };
        let Some(frame) = slot else {
            self.stats.tx_dropped += 1;
            let n = len.min(self.scratch.len());
            return f(&mut self.scratch[..n]);
        };
        // smoltcp never asks for more than our MTU, which is at most a frame.
        let buf = match self.frames.get_mut(frame, 0, len as u32) {
            Ok(buf) => buf,
            Err(_) => {
                let _ = self.pool.give(frame);
                self.stats.tx_dropped += 1;
                let n = len.min(self.scratch.len());
                return f(&mut self.scratch[..n]);
            }
        };
        let result = f(buf);
        // The frame is complete before its descriptor exists: the kernel can never see a
        // half-written frame, whatever happens to this thread.
        self.in_flight.push(frame);
        let pushed = self.tx.push(TxDesc::new(frame, len as u32));
        debug_assert!(pushed.is_ok(), "Tx slot was checked free");
        self.tx.publish();
        self.stats.tx_frames += 1;
        *self.unkicked = true;
        result
    }
}

impl phy::Device for XdpDevice {
    type RxToken<'a> = XdpRxToken<'a>;
    type TxToken<'a> = XdpTxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(XdpRxToken<'_>, XdpTxToken<'_>)> {
        let xsk = &mut self.xsk;
        let queues = self.queue_rx.len();
        // Find a frame first, then lend it: the tokens borrow the queue it came from.
        let (q, received) = (0..queues).find_map(|i| {
            let q = (self.next_queue + i) % queues;
            let (frames, rx, fill) = match q {
                0 => (&xsk.rx_frames, &mut xsk.rx, &mut xsk.fill),
                _ => {
                    let s = &mut xsk.shared[q - 1];
                    (&s.frames, &mut s.rx, &mut s.fill)
                }
            };
            next_deliverable(
                (frames, rx, fill),
                &mut self.stats,
                &mut self.queue_rx[q],
                &mut self.neighbours,
                &mut self.arp_reply,
            )
            .map(|received| (q, received))
        })?;
        self.next_queue = (q + 1) % queues;
        let (frames, fill) = match q {
            0 => (&xsk.rx_frames, &mut xsk.fill),
            _ => {
                let s = &mut xsk.shared[q - 1];
                (&s.frames, &mut s.fill)
            }
        };
        let rx = XdpRxToken {
            frames,
            fill,
            refilled: &mut self.queue_rx[q].refilled,
            received,
        };
        let tx = XdpTxToken::new(
            &mut xsk.tx_frames,
            &mut xsk.tx,
            (&mut self.pool, &mut self.in_flight),
            &mut self.scratch,
            &mut self.stats,
            &mut self.unkicked,
        );
        Some((rx, tx))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<XdpTxToken<'_>> {
        let xsk = &mut self.xsk;
        if self.pool.available() == 0 || xsk.tx.free(1) == 0 {
            return None;
        }
        Some(XdpTxToken::new(
            &mut xsk.tx_frames,
            &mut xsk.tx,
            (&mut self.pool, &mut self.in_flight),
            &mut self.scratch,
            &mut self.stats,
            &mut self.unkicked,
        ))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu;
        // Leave max_burst_size unset: Some(1) shrinks smoltcp's window to one segment.
        caps.max_burst_size = None;
        // Verify and compute every checksum: frames arrive as off a wire (the lab turns
        // the peer's TX offload off), so nothing here may be skipped.
        caps.checksum = ChecksumCapabilities::default();
        caps
    }
}
