//! Stage 3 of the hot path: an armed order's whole Ethernet/IPv4/TCP frame, built with
//! its pre-sealed TLS record into a reserved transmit frame before the trigger. At the
//! fire only the ACK and window can have moved: they are patched with an incremental
//! checksum and the descriptor is pushed; right after the kick smoltcp takes the octets
//! as sent ([`settle`]: a delegated send, so it retransmits them if they are lost). The
//! frame is rebuilt whenever the socket's sequence number moves (anything else sent
//! first makes the record stale anyway).
//!
//! What smoltcp said when the frame was last built or refreshed is kept with the socket's
//! [`Version`] of the time: a fire that finds the version unchanged uses it rather than
//! asking smoltcp again (`delegated_send_prepare`, the socket's lines: the largest step
//! of the fire after the commit). smoltcp still checks the octets when it takes them.
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
use crate::stack::Version;
use crate::warming::Pass;
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
    /// The socket's version when the frame last matched it, and what smoltcp said then.
    checked: Option<(Version, DelegatedSend)>,
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

/// How a fire knew its frame still matched the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Checked {
    /// At the last refresh: the socket has not changed since.
    Before,
    /// Now, by asking smoltcp.
    Now,
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
/// window or one frame, or no frame is free. Off the hot path. `version` is the
/// socket's now: while it holds, a fire trusts what this check found.
#[allow(clippy::too_many_arguments)] // one call site, each argument a different thing
pub(super) fn prepare(
    slot: &mut Option<Prebuilt>,
    device: &mut XdpDevice,
    iface: &Interface,
    socket: &tcp::Socket<'static>,
    version: Version,
    tag: u64,
    record: &[u8],
    now: Instant,
) -> bool {
    let built = build(slot, device, iface, socket, tag, record, now);
    if let Some(p) = slot.as_mut() {
        p.checked = built.map(|d| (version, d));
    }
    built.is_some()
}

/// [`prepare`]'s work: what smoltcp said, if the frame now matches it.
fn build(
    slot: &mut Option<Prebuilt>,
    device: &mut XdpDevice,
    iface: &Interface,
    socket: &tcp::Socket<'static>,
    tag: u64,
    record: &[u8],
    now: Instant,
) -> Option<DelegatedSend> {
    let d = socket.delegated_send_prepare()?;
    if record.len() > d.max_payload || HEADERS + record.len() > device.mtu() || tag == 0 {
        return None;
    }
    if let Some(p) = slot.as_mut() {
        if p.tag == tag && p.seq == d.seq_number.0 as u32 && p.payload_len == record.len() {
            // Still the same segment: bring ACK and window up to date, nothing else.
            return patch(p, device, &d).then_some(d);
        }
    }
    let Some(HardwareAddress::Ethernet(next_hop)) =
        iface.neighbor_hardware_addr(&d.remote.addr, now)
    else {
        return None;
    };
    let frame = match slot.as_ref() {
        Some(p) => p.frame,
        None => device.reserve()?,
    };
    let src_mac = EthernetAddress(device.mac());
    let Some(buf) = device.reserved_mut(frame, HEADERS + record.len()) else {
        // Reserved but in flight (its last send not completed yet): try again later.
        if slot.is_none() {
            device.release(frame);
        }
        return None;
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
        checked: None,
    });
    Some(d)
}

/// Brings a built frame's ACK and window up to what smoltcp said (`d`, of the same
/// segment). False while the frame is in flight.
fn patch(p: &mut Prebuilt, device: &mut XdpDevice, d: &DelegatedSend) -> bool {
    let Some(frame) = device.reserved_mut(p.frame, p.len()) else {
        return false;
    };
    let ack = d.ack_number.0 as u32;
    if ack != p.ack {
        set32(frame, ACK_AT, CHECKSUM_AT, ack);
        p.ack = ack;
    }
    if d.window_len != p.window {
        set16(frame, WINDOW_AT, CHECKSUM_AT, d.window_len);
        p.window = d.window_len;
    }
    true
}

/// Checks a built frame against its socket again, where the socket's `version` moved
/// since the last check, and patches ACK and window: what [`prepare`] does for a frame
/// already built, without its record. The engine runs it after an egress pass that
/// nothing but time called for (every 100 µs while idle), so a fire after a quiet wait
/// finds the check current. A frame that no longer matches is left unchecked (its fire
/// asks smoltcp, misses, and goes through smoltcp).
pub(super) fn refresh(
    slot: &mut Option<Prebuilt>,
    device: &mut XdpDevice,
    socket: &tcp::Socket<'static>,
    version: Version,
) {
    let Some(p) = slot.as_mut() else {
        return;
    };
    if p.tag == 0 || p.owed.is_some() || p.checked.is_some_and(|(at, _)| at == version) {
        return;
    }
    p.checked = None;
    let Some(d) = socket.delegated_send_prepare() else {
        return;
    };
    if d.seq_number.0 as u32 == p.seq && p.payload_len <= d.max_payload && patch(p, device, &d) {
        p.checked = Some((version, d));
    }
}

/// The fire: patches ACK and window if they moved and pushes the frame (no kick);
/// [`settle`] must follow before anything else touches the socket. On a miss nothing
/// changed and nothing was sent. `socket` is looked at only when its `version` moved
/// since the frame was last checked against it. A rehearsal stops after the patch
/// (which a refresh could as well have made): the frame stays built and unsent.
#[allow(clippy::too_many_arguments)] // the fire's own state, passed apart to borrow apart
pub(super) fn fire<'s>(
    slot: &mut Option<Prebuilt>,
    device: &mut XdpDevice,
    socket: impl FnOnce() -> &'s tcp::Socket<'static>,
    version: Version,
    tag: u64,
    record: &[u8],
    now: Instant,
    pass: Pass,
) -> Result<Checked, Miss> {
    let Some(p) = slot.as_mut() else {
        return Err(Miss::Stale);
    };
    if p.tag != tag || tag == 0 || p.payload_len != record.len() || p.owed.is_some() {
        return Err(Miss::Stale);
    }
    let (d, checked) = match p.checked {
        // Checked against this very state (sequence number, room for the record, ACK
        // and window patched in): nothing smoltcp could say now would differ.
        Some((at, d)) if at == version => (d, Checked::Before),
        _ => {
            let Some(d) = socket().delegated_send_prepare() else {
                return Err(Miss::Stale);
            };
            if d.seq_number.0 as u32 != p.seq || record.len() > d.max_payload {
                return Err(Miss::Stale);
            }
            (d, Checked::Now)
        }
    };
    if !device.tx_free() {
        return Err(Miss::Busy);
    }
    if !patch(p, device, &d) {
        return Err(Miss::Busy);
    }
    if pass == Pass::Rehearsal {
        return Ok(checked);
    }
    let len = p.len();
    p.tag = 0;
    p.owed = Some((d, now));
    p.checked = None;
    let pushed = device.push_reserved(p.frame, len);
    debug_assert!(pushed, "Tx slot and frame were checked free");
    Ok(checked)
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
