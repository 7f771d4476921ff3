//! Patching fields of a frame built ahead of time, with the Internet checksum updated
//! incrementally (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')) instead of summed again over
//! the whole segment: the fire path changes a few header words of a frame whose payload
//! it never reads again.

/// One's-complement sum of 16-bit words, folded to 16 bits.
fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The checksum after one 16-bit word it covers changed from `old` to `new`.
pub fn update16(checksum: u16, old: u16, new: u16) -> u16 {
    !fold(u32::from(!checksum) + u32::from(!old) + u32::from(new))
}

/// The checksum after one 32-bit field it covers (two words) changed from `old` to `new`.
pub fn update32(checksum: u16, old: u32, new: u32) -> u16 {
    let c = update16(checksum, (old >> 16) as u16, (new >> 16) as u16);
    update16(c, old as u16, new as u16)
}

/// Big-endian u16 at `at` in `frame`.
fn get16(frame: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([frame[at], frame[at + 1]])
}

fn put16(frame: &mut [u8], at: usize, value: u16) {
    frame[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

/// Sets the 16-bit field at `at` and fixes the checksum at `checksum_at` that covers it.
/// Both offsets are checked by the caller (the frame was built with their layout).
pub fn set16(frame: &mut [u8], at: usize, checksum_at: usize, new: u16) {
    let old = get16(frame, at);
    if old == new {
        return;
    }
    put16(frame, at, new);
    let c = update16(get16(frame, checksum_at), old, new);
    put16(frame, checksum_at, c);
}

/// Sets the 32-bit field at `at` and fixes the checksum at `checksum_at` that covers it.
pub fn set32(frame: &mut [u8], at: usize, checksum_at: usize, new: u32) {
    let old = u32::from_be_bytes([frame[at], frame[at + 1], frame[at + 2], frame[at + 3]]);
    if old == new {
        return;
    }
    frame[at..at + 4].copy_from_slice(&new.to_be_bytes());
    let c = update32(get16(frame, checksum_at), old, new);
    put16(frame, checksum_at, c);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::frame::tcp_frame;
    use smoltcp::wire::{EthernetFrame, IpAddress, Ipv4Packet, TcpPacket};
    use std::net::{Ipv4Addr, SocketAddrV4};

    /// Offsets in an Ethernet + IPv4 (no options) + TCP frame.
    const TCP: usize = 14 + 20;
    const SEQ: usize = TCP + 4;
    const ACK: usize = TCP + 8;
    const WIN: usize = TCP + 14;
    const CSUM: usize = TCP + 16;

    fn tcp_checksum_ok(frame: &[u8]) -> bool {
        let eth = EthernetFrame::new_checked(frame).unwrap();
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        let (src, dst) = (
            IpAddress::Ipv4(ip.src_addr()),
            IpAddress::Ipv4(ip.dst_addr()),
        );
        TcpPacket::new_checked(ip.payload())
            .unwrap()
            .verify_checksum(&src, &dst)
    }

    #[test]
    fn incremental_checksum_equals_a_full_recompute_over_random_frames() {
        let mut rng = fastrand::Rng::with_seed(0x9f1);
        for round in 0..2000 {
            let len = rng.usize(0..1400);
            let payload: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            let from = SocketAddrV4::new(Ipv4Addr::from(rng.u32(..)), rng.u16(..));
            let to = SocketAddrV4::new(Ipv4Addr::from(rng.u32(..)), rng.u16(..));
            let mut frame = tcp_frame([2; 6], [4; 6], from, to, rng.u32(..), &payload);
            assert!(tcp_checksum_ok(&frame));
            // Patch seq, ack and window as the fire path does, any subset of them.
            let (seq, ack, win) = (rng.u32(..), rng.u32(..), rng.u16(..));
            if rng.bool() || round % 7 == 0 {
                set32(&mut frame, SEQ, CSUM, seq);
            }
            if rng.bool() {
                set32(&mut frame, ACK, CSUM, ack);
            }
            if rng.bool() {
                set16(&mut frame, WIN, CSUM, win);
            }
            assert!(tcp_checksum_ok(&frame), "round {round}");
            // And equal, bit for bit, to the checksum of a frame built with those values.
            let mut fresh = frame.clone();
            let ip = Ipv4Packet::new_unchecked(&fresh[14..]);
            let (src, dst) = (
                IpAddress::Ipv4(ip.src_addr()),
                IpAddress::Ipv4(ip.dst_addr()),
            );
            TcpPacket::new_unchecked(&mut fresh[TCP..]).fill_checksum(&src, &dst);
            // Equation 3 of RFC 1624 never yields the 0xffff a naive update can.
            assert_eq!(
                frame[CSUM..CSUM + 2],
                fresh[CSUM..CSUM + 2],
                "round {round}"
            );
        }
    }

    #[test]
    fn rfc1624_example() {
        // RFC 1624 section 4: a word changes from 0x5555 to 0x3285 under HC = 0xDD2F.
        assert_eq!(update16(0xDD2F, 0x5555, 0x3285), 0x0000);
        assert_eq!(update16(0x0000, 0x3285, 0x5555), 0xDD2F);
    }
}
