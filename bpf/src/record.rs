//! [`WireStamp`]: one record of the stamps ring (`struct wire_stamp` in
//! `stamp.h`), decoded.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Size of `struct wire_stamp`.
pub(crate) const RECORD_LEN: usize = 40;

/// Which way a stamped frame crossed the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Arriving at the interface (tc ingress): on the lab peer `qd1`,
    /// requests to the server.
    Ingress,
    /// Leaving through the interface (tc egress): on `qd1`, the server's
    /// responses.
    Egress,
}

/// The TCP flags byte (header byte 13).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;

    /// Whether every flag of `mask` is set.
    pub fn contains(self, mask: u8) -> bool {
        self.0 & mask == mask
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        let set: Vec<&str> = (0..8)
            .filter(|bit| self.0 & (1 << bit) != 0)
            .map(|bit| NAMES[bit])
            .collect();
        write!(f, "TcpFlags({})", set.join("|"))
    }
}

/// One IPv4/TCP frame as it crossed the interface, stamped by the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WireStamp {
    /// `bpf_ktime_get_ns()` as the program started on the frame:
    /// `CLOCK_MONOTONIC` nanoseconds, comparable with
    /// `clock_gettime(CLOCK_MONOTONIC)` in any process on the machine.
    pub ns: u64,
    /// Ingress or egress.
    pub direction: Direction,
    /// Source address and port.
    pub src: SocketAddrV4,
    /// Destination address and port.
    pub dst: SocketAddrV4,
    /// TCP sequence number.
    pub seq: u32,
    /// TCP acknowledgement number (meaningful when ACK is set).
    pub ack: u32,
    /// TCP flags.
    pub flags: TcpFlags,
    /// TCP payload bytes (for a GSO super-packet, of all its segments).
    pub payload_len: u16,
    /// The interface the frame crossed.
    pub ifindex: u32,
    /// The frame's length from its Ethernet header on.
    pub frame_len: u32,
}

impl WireStamp {
    /// Whether the frame carries TCP payload.
    pub fn has_data(&self) -> bool {
        self.payload_len > 0
    }

    /// Decodes a ring record; `None` if it is not [`RECORD_LEN`] bytes or
    /// its direction is unknown.
    pub(crate) fn decode(record: &[u8]) -> Option<WireStamp> {
        let record: &[u8; RECORD_LEN] = record.try_into().ok()?;
        let direction = match record[field::DIRECTION] {
            0 => Direction::Ingress,
            1 => Direction::Egress,
            _ => return None,
        };
        let ip = |at| Ipv4Addr::from(take::<4>(record, at));
        let port = |at| u16::from_be_bytes(take(record, at));
        Some(WireStamp {
            ns: u64::from_ne_bytes(take(record, field::NS)),
            direction,
            src: SocketAddrV4::new(ip(field::SADDR), port(field::SPORT)),
            dst: SocketAddrV4::new(ip(field::DADDR), port(field::DPORT)),
            seq: u32::from_be_bytes(take(record, field::SEQ)),
            ack: u32::from_be_bytes(take(record, field::ACK_SEQ)),
            flags: TcpFlags(record[field::TCP_FLAGS]),
            payload_len: u16::from_ne_bytes(take(record, field::PAYLOAD_LEN)),
            ifindex: u32::from_ne_bytes(take(record, field::IFINDEX)),
            frame_len: u32::from_ne_bytes(take(record, field::FRAME_LEN)),
        })
    }
}

/// Offsets of `struct wire_stamp`'s fields (their start; the width is the
/// type's).
mod field {
    pub const NS: usize = 0;
    pub const SADDR: usize = 8;
    pub const DADDR: usize = 12;
    pub const SPORT: usize = 16;
    pub const DPORT: usize = 18;
    pub const SEQ: usize = 20;
    pub const ACK_SEQ: usize = 24;
    pub const PAYLOAD_LEN: usize = 28;
    pub const TCP_FLAGS: usize = 30;
    pub const DIRECTION: usize = 31;
    pub const IFINDEX: usize = 32;
    pub const FRAME_LEN: usize = 36;
}

fn take<const N: usize>(record: &[u8; RECORD_LEN], at: usize) -> [u8; N] {
    let mut bytes = [0; N];
    bytes.copy_from_slice(&record[at..at + N]);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as the program writes it on little-endian x86-64.
    const RECORD: [u8; RECORD_LEN] = [
        0x15, 0xcd, 0x5b, 0x07, 0, 0, 0, 0, // ns 123456789
        198, 18, 0, 1, // saddr
        198, 18, 0, 2, // daddr
        0x9c, 0x40, // sport 40000
        0x01, 0xbb, // dport 443
        0x12, 0x34, 0x56, 0x78, // seq
        0x9a, 0xbc, 0xde, 0xf0, // ack_seq
        0xe8, 0x03, // payload_len 1000
        0x18, // ACK|PSH
        1,    // egress
        7, 0, 0, 0, // ifindex
        0x2a, 0x04, 0, 0, // frame_len 1066
    ];

    #[test]
    fn decodes_every_field_at_its_offset() {
        let stamp = WireStamp::decode(&RECORD).unwrap();
        assert_eq!(
            stamp,
            WireStamp {
                ns: 123_456_789,
                direction: Direction::Egress,
                src: "198.18.0.1:40000".parse().unwrap(),
                dst: "198.18.0.2:443".parse().unwrap(),
                seq: 0x1234_5678,
                ack: 0x9abc_def0,
                flags: TcpFlags(TcpFlags::ACK | TcpFlags::PSH),
                payload_len: 1000,
                ifindex: 7,
                frame_len: 1066,
            }
        );
        assert!(stamp.has_data());
        assert!(stamp.flags.contains(TcpFlags::ACK | TcpFlags::PSH));
        assert!(!stamp.flags.contains(TcpFlags::SYN));
        assert_eq!(format!("{:?}", stamp.flags), "TcpFlags(PSH|ACK)");
    }

    #[test]
    fn refuses_other_sizes_and_directions() {
        assert!(WireStamp::decode(&RECORD[..39]).is_none());
        assert!(WireStamp::decode(&[RECORD.as_slice(), &[0]].concat()).is_none());
        let mut bad = RECORD;
        bad[field::DIRECTION] = 2;
        assert!(WireStamp::decode(&bad).is_none());
    }
}
