//! The receive-side gate: what the device hands to smoltcp. smoltcp would drop a corrupt
//! frame silently; checking here first lets us count what was dropped and why. Parsing
//! uses smoltcp's own checked wire types, so no accessor can panic on hostile bytes.

use smoltcp::wire::{
    ArpPacket, EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Packet, TcpPacket,
};

/// What to do with a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Well-formed IPv4/TCP with valid checksums, or a well-formed ARP packet.
    Deliver,
    /// Truncated, inconsistent lengths, or a bad checksum.
    Malformed,
    /// Well-formed but not a protocol the appliance speaks here.
    Foreign,
}

/// Classifies one Ethernet frame.
pub fn classify(frame: &[u8]) -> Verdict {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return Verdict::Malformed;
    };
    match eth.ethertype() {
        EthernetProtocol::Arp => match ArpPacket::new_checked(eth.payload()) {
            Ok(_) => Verdict::Deliver,
            Err(_) => Verdict::Malformed,
        },
        EthernetProtocol::Ipv4 => ipv4(eth.payload()),
        _ => Verdict::Foreign,
    }
}

fn ipv4(bytes: &[u8]) -> Verdict {
    let Ok(ip) = Ipv4Packet::new_checked(bytes) else {
        return Verdict::Malformed;
    };
    if !ip.verify_checksum() {
        return Verdict::Malformed;
    }
    if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
        return Verdict::Foreign;
    }
    let Ok(tcp) = TcpPacket::new_checked(ip.payload()) else {
        return Verdict::Malformed;
    };
    let (src, dst) = (
        IpAddress::Ipv4(ip.src_addr()),
        IpAddress::Ipv4(ip.dst_addr()),
    );
    if !tcp.verify_checksum(&src, &dst) {
        return Verdict::Malformed;
    }
    Verdict::Deliver
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        EthernetAddress, EthernetRepr, Ipv4Address, Ipv4Repr, TcpControl, TcpRepr, TcpSeqNumber,
    };

    /// A valid Ethernet/IPv4/TCP frame with `payload`, built with smoltcp's emitters.
    pub(crate) fn tcp_frame(payload: &[u8]) -> Vec<u8> {
        let src = Ipv4Address::new(198, 18, 0, 2);
        let dst = Ipv4Address::new(198, 18, 0, 10);
        let tcp = TcpRepr {
            src_port: 443,
            dst_port: 40000,
            control: TcpControl::Psh,
            seq_number: TcpSeqNumber(1),
            ack_number: Some(TcpSeqNumber(1)),
            window_len: 1024,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload,
        };
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 10]),
            ethertype: EthernetProtocol::Ipv4,
        };
        let mut buf = vec![0; eth.buffer_len() + ip.buffer_len() + tcp.buffer_len()];
        let caps = ChecksumCapabilities::default();
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        eth.emit(&mut f);
        let mut p = Ipv4Packet::new_unchecked(f.payload_mut());
        ip.emit(&mut p, &caps);
        let mut t = TcpPacket::new_unchecked(p.payload_mut());
        tcp.emit(&mut t, &IpAddress::Ipv4(src), &IpAddress::Ipv4(dst), &caps);
        buf
    }

    #[test]
    fn valid_tcp_is_delivered() {
        assert_eq!(classify(&tcp_frame(b"hello")), Verdict::Deliver);
    }

    #[test]
    fn truncated_at_every_length_is_malformed_never_a_panic() {
        let frame = tcp_frame(b"hello");
        for len in 0..frame.len() {
            assert_eq!(classify(&frame[..len]), Verdict::Malformed, "len {len}");
        }
    }

    #[test]
    fn bad_checksums_are_malformed() {
        let mut ip_bad = tcp_frame(b"x");
        ip_bad[14 + 10] ^= 0xff; // IPv4 header checksum
        assert_eq!(classify(&ip_bad), Verdict::Malformed);
        let mut tcp_bad = tcp_frame(b"hello");
        let last = tcp_bad.len() - 1;
        tcp_bad[last] ^= 0x01; // payload byte under the TCP checksum
        assert_eq!(classify(&tcp_bad), Verdict::Malformed);
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
    fn ipv6_and_udp_are_foreign() {
        let mut v6 = tcp_frame(b"");
        v6[12] = 0x86;
        v6[13] = 0xdd;
        assert_eq!(classify(&v6), Verdict::Foreign);
    }
}
