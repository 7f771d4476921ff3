//! Stage 3 of the hot path: an armed order's whole Ethernet/IPv4/TCP frame, built with
//! its pre-sealed TLS record into a reserved transmit frame before the trigger. At the
//! fire only the ACK and window can have moved: they are patched with an incremental
//! checksum and the descriptor is pushed; right after the kick smoltcp takes the octets
//! as sent ([`settle`]: a delegated send, so it retransmits them if they are lost). The
//! frame is rebuilt whenever the socket's sequence number moves (anything else sent
//! first makes the record stale anyway).
//!
//! Why the accounting may follow the kick: smoltcp's documented order is "account, then
//! transmit", so that no ACK for the octets can be processed before the socket knows
//! them. Here only this thread processes what arrives, and it settles before its next
//! receive (and before any egress pass), so the order is kept where it matters; the
//! kick, which is what the fire waits for, no longer waits for the copy of the record
//! into smoltcp's buffer and its timer and congestion bookkeeping.

use crate::device::fixup::{set16, set32};
use crate::device::frame::emit_tcp;
use crate::device::{FrameHandle, XdpDevice};
use smoltcp::iface::Interface;
use smoltcp::socket::tcp::{self, DelegatedSend};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, TcpControl, TcpRepr};

/// Offsets in the frame as built here: Ethernet, IPv4 without options, TCP without options.
const TCP_AT: usize = 14 + 20;
const ACK_AT: usize = TCP_AT + 8;
const WINDOW_AT: usize = TCP_AT + 14;
const CHECKSUM_AT: usize = TCP_AT + 16;
const HEADERS: usize = TCP_AT + 20;

/// One connection's built frame.
#[derive(Debug)]
pub(super) struct Prebuilt {
    frame: FrameHandle,
    /// The caller's name for the record the frame carries; 0 = none (consumed).
    tag: u64,
    payload_len: usize,
    seq: u32,
    ack: u32,
    window: u16,
    /// Pushed and not yet taken by smoltcp as sent: the segment's fields, and when.
    owed: Option<(DelegatedSend, Instant)>,
}

impl Prebuilt {
    pub(super) fn frame(&self) -> FrameHandle {
        self.frame
    }

    /// The frame's length on the wire.
    pub(super) fn len(&self) -> usize {
        HEADERS + self.payload_len
    }
}

/// Why a fire could not use the built frame (the caller then sends through smoltcp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Miss {
    /// No frame built for this record, or the socket moved on since.
    Stale,
    /// The frame is still with the kernel, or Tx is full.
    Busy,
}

/// Builds (or refreshes in place) the frame of `record` for connection `socket`, into
/// `slot`'s reserved frame (reserving one if it has none). False when the socket cannot
/// delegate a segment now, the neighbour's MAC is unknown, the record does not fit the
/// window or one frame, or no frame is free. Off the hot path.
pub(super) fn prepare(
    slot: &mut Option<Prebuilt>,
    device: &mut XdpDevice,
    iface: &Interface,
    socket: &tcp::Socket<'static>,
    tag: u64,
    record: &[u8],
    now: Instant,
) -> bool {
    let Some(d) = socket.delegated_send_prepare() else {
        return false;
    };
    if record.len() > d.max_payload || HEADERS + record.len() > device.mtu() || tag == 0 {
        return false;
    }
    if let Some(p) = slot.as_mut() {
        if p.tag == tag && p.seq == d.seq_number.0 as u32 && p.payload_len == record.len() {
            // Still the same segment: bring ACK and window up to date, nothing else.
            let Some(frame) = device.reserved_mut(p.frame, p.len()) else {
                return false;
            };
            set32(frame, ACK_AT, CHECKSUM_AT, d.ack_number.0 as u32);
            set16(frame, WINDOW_AT, CHECKSUM_AT, d.window_len);
            p.ack = d.ack_number.0 as u32;
            p.window = d.window_len;
            return true;
        }
    }
    let Some(HardwareAddress::Ethernet(next_hop)) =
        iface.neighbor_hardware_addr(&d.remote.addr, now)
    else {
        return false;
    };
    let frame = match slot.as_ref() {
        Some(p) => p.frame,
        None => match device.reserve() {
            Some(h) => h,
            None => return false,
        },
    };
    let src_mac = EthernetAddress(device.mac());
    let Some(buf) = device.reserved_mut(frame, HEADERS + record.len()) else {
        // Reserved but in flight (its last send not completed yet): try again later.
        if slot.is_none() {
            device.release(frame);
        }
        return false;
    };
    emit(buf, src_mac, next_hop, &d, record);
    *slot = Some(Prebuilt {
        frame,
        tag,
        payload_len: record.len(),
        seq: d.seq_number.0 as u32,
        ack: d.ack_number.0 as u32,
        window: d.window_len,
        owed: None,
    });
    true
}

/// The fire: patches ACK and window if they moved and pushes the frame (no kick);
/// [`settle`] must follow before anything else touches the socket. On a miss nothing
/// changed and nothing was sent.
pub(super) fn fire(
    slot: &mut Option<Prebuilt>,
    device: &mut XdpDevice,
    socket: &tcp::Socket<'static>,
    tag: u64,
    record: &[u8],
    now: Instant,
) -> Result<(), Miss> {
    let Some(p) = slot.as_mut() else {
        return Err(Miss::Stale);
    };
    if p.tag != tag || tag == 0 || p.payload_len != record.len() || p.owed.is_some() {
        return Err(Miss::Stale);
    }
    let Some(d) = socket.delegated_send_prepare() else {
        return Err(Miss::Stale);
    };
    if d.seq_number.0 as u32 != p.seq || record.len() > d.max_payload {
        return Err(Miss::Stale);
    }
    if !device.tx_free() {
        return Err(Miss::Busy);
    }
    let len = p.len();
    let Some(frame) = device.reserved_mut(p.frame, len) else {
        return Err(Miss::Busy);
    };
    if d.ack_number.0 as u32 != p.ack {
        set32(frame, ACK_AT, CHECKSUM_AT, d.ack_number.0 as u32);
    }
    if d.window_len != p.window {
        set16(frame, WINDOW_AT, CHECKSUM_AT, d.window_len);
    }
    p.tag = 0;
    p.owed = Some((d, now));
    let pushed = device.push_reserved(p.frame, len);
    debug_assert!(pushed, "Tx slot and frame were checked free");
    Ok(())
}

/// What a settle found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Settled {
    /// Nothing was owed.
    Nothing,
    /// smoltcp took the pushed octets as sent.
    Taken,
    /// smoltcp refused them (the socket moved between the fire and now, which the
    /// engine's order of work rules out): the caller must abort the connection, since
    /// its next segment would reuse those sequence numbers for other octets.
    Refused,
}

/// Has smoltcp take the octets of a pushed frame as sent, from the frame itself (the
/// record sits after the headers, unchanged since the build).
pub(super) fn settle(
    slot: &mut Option<Prebuilt>,
    device: &XdpDevice,
    socket: &mut tcp::Socket<'static>,
) -> Settled {
    let Some(p) = slot.as_mut() else {
        return Settled::Nothing;
    };
    let Some((d, at)) = p.owed.take() else {
        return Settled::Nothing;
    };
    let taken = device
        .reserved_bytes(p.frame, p.len())
        .is_some_and(|frame| {
            socket
                .delegated_send_complete(&d, &frame[HEADERS..], at)
                .is_ok()
        });
    if taken {
        Settled::Taken
    } else {
        Settled::Refused
    }
}

/// Writes the whole frame: a PSH|ACK segment, no TCP options (the socket delegates only
/// without timestamps), DF set, all checksums filled.
fn emit(
    buf: &mut [u8],
    src: EthernetAddress,
    dst: EthernetAddress,
    d: &DelegatedSend,
    payload: &[u8],
) {
    let (IpAddress::Ipv4(src_ip), IpAddress::Ipv4(dst_ip)) = (d.local.addr, d.remote.addr);
    let tcp = TcpRepr {
        src_port: d.local.port,
        dst_port: d.remote.port,
        control: TcpControl::Psh,
        seq_number: d.seq_number,
        ack_number: Some(d.ack_number),
        window_len: d.window_len,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload,
    };
    emit_tcp(buf, (src.0, dst.0), (src_ip, dst_ip), d.hop_limit, &tcp);
}
