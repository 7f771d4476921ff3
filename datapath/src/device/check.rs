//! The receive-side gate: what the device hands to smoltcp. smoltcp would drop a corrupt
//! frame silently; checking here first lets us count what was dropped and why. Parsing
//! uses smoltcp's own checked wire types, so no accessor can panic on hostile bytes.

use smoltcp::wire::{
    ArpPacket, EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Packet, TcpPacket,
    UdpPacket,
};

/// What to do with a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Well-formed IPv4/TCP or IPv4/UDP (event feeds) with valid checksums, or a
    /// well-formed ARP packet.
    Deliver,
    /// Truncated, inconsistent lengths, or a bad checksum.
    Malformed,
    /// Well-formed but not a protocol the appliance speaks here.
    Foreign,
}

/// Classifies one Ethernet frame.
pub fn classify(frame: &[u8]) -> FrameKind {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return FrameKind::Malformed;
    };
    match eth.ethertype() {
        EthernetProtocol::Arp => match ArpPacket::new_checked(eth.payload()) {
            Ok(_) => FrameKind::Deliver,
            Err(_) => FrameKind::Malformed,
        },
        EthernetProtocol::Ipv4 => ipv4(eth.payload()),
        _ => FrameKind::Foreign,
    }
}

fn ipv4(bytes: &[u8]) -> FrameKind {
    let Ok(ip) = Ipv4Packet::new_checked(bytes) else {
        return FrameKind::Malformed;
    };
    if !ip.verify_checksum() {
        return FrameKind::Malformed;
    }
    if ip.more_frags() || ip.frag_offset() != 0 {
        return FrameKind::Foreign;
    }
    if ip.next_header() == IpProtocol::Udp {
        return udp(&ip);
    }
    if ip.next_header() != IpProtocol::Tcp {
        return FrameKind::Foreign;
    }
    let Ok(tcp) = TcpPacket::new_checked(ip.payload()) else {
        return FrameKind::Malformed;
    };
    let (src, dst) = (
        IpAddress::Ipv4(ip.src_addr()),
        IpAddress::Ipv4(ip.dst_addr()),
    );
    if !tcp.verify_checksum(&src, &dst) {
        return FrameKind::Malformed;
    }
    FrameKind::Deliver
}

/// An event feed's datagram (the XDP program steers only owned UDP destinations here).
fn udp(ip: &Ipv4Packet<&[u8]>) -> FrameKind {
    let Ok(udp) = UdpPacket::new_checked(ip.payload()) else {
        return FrameKind::Malformed;
    };
    let (src, dst) = (
        IpAddress::Ipv4(ip.src_addr()),
        IpAddress::Ipv4(ip.dst_addr()),
    );
    // A zero checksum is "none" in IPv4 (RFC 768), which smoltcp's check accepts.
    if !udp.verify_checksum(&src, &dst) {
        return FrameKind::Malformed;
    }
    FrameKind::Deliver
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

    /// A valid Ethernet/IPv4/TCP frame from the lab target to the appliance.
    fn tcp_frame(payload: &[u8]) -> Vec<u8> {
        let from = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 443);
        let to = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 10), 40000);
        super::super::frame::tcp_frame(
            [2, 0, 0, 0, 0, 2],
            [2, 0, 0, 0, 0, 10],
            from,
            to,
            1,
            payload,
        )
    }

    #[test]
    fn valid_tcp_is_delivered() {
        assert_eq!(classify(&tcp_frame(b"hello")), FrameKind::Deliver);
    }

    #[test]
    fn truncated_at_every_length_is_malformed_never_a_panic() {
        let frame = tcp_frame(b"hello");
        for len in 0..frame.len() {
            assert_eq!(classify(&frame[..len]), FrameKind::Malformed, "len {len}");
        }
    }

    #[test]
    fn bad_checksums_are_malformed() {
        let mut ip_bad = tcp_frame(b"x");
        ip_bad[14 + 10] ^= 0xff; // IPv4 header checksum
        assert_eq!(classify(&ip_bad), FrameKind::Malformed);
        let mut tcp_bad = tcp_frame(b"hello");
        let last = tcp_bad.len() - 1;
        tcp_bad[last] ^= 0x01; // payload byte under the TCP checksum
        assert_eq!(classify(&tcp_bad), FrameKind::Malformed);
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20_000 {
            let len = rng.usize(0..200);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            if len > 14 && rng.bool() {
                bytes[12] = 0x08; // make it claim IPv4 or ARP half the time
                bytes[13] = if rng.bool() { 0x00 } else { 0x06 };
            }
            let _ = classify(&bytes);
        }
    }

    #[test]
    fn udp_is_delivered_when_its_checksum_holds() {
        use smoltcp::phy::ChecksumCapabilities;
        use smoltcp::wire::{IpProtocol, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr};
        let (src, dst) = (Ipv4Addr::new(198, 18, 0, 2), Ipv4Addr::new(198, 18, 0, 10));
        let payload = br#"{"sku":"1001"}"#;
        let udp = UdpRepr {
            src_port: 9001,
            dst_port: 9000,
        };
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Udp,
            payload_len: udp.header_len() + payload.len(),
            hop_limit: 64,
        };
        let mut frame = vec![0u8; 14 + ip.buffer_len() + ip.payload_len];
        frame[12] = 0x08;
        let caps = ChecksumCapabilities::default();
        let mut packet = Ipv4Packet::new_unchecked(&mut frame[14..]);
        ip.emit(&mut packet, &caps);
        let mut datagram = UdpPacket::new_unchecked(packet.payload_mut());
        udp.emit(
            &mut datagram,
            &src.into(),
            &dst.into(),
            payload.len(),
            |b| b.copy_from_slice(payload),
            &caps,
        );
        assert_eq!(classify(&frame), FrameKind::Deliver);
        let last = frame.len() - 1;
        frame[last] ^= 1;
        assert_eq!(classify(&frame), FrameKind::Malformed);
        frame[14 + 20 + 6] = 0; // no checksum at all: allowed in IPv4
        frame[14 + 20 + 7] = 0;
        assert_eq!(classify(&frame), FrameKind::Deliver);
    }

    #[test]
    fn ipv6_is_foreign() {
        let mut v6 = tcp_frame(b"");
        v6[12] = 0x86;
        v6[13] = 0xdd;
        assert_eq!(classify(&v6), FrameKind::Foreign);
    }
}
