//! The floor's frame: a complete Ethernet/IPv4/TCP frame the size of a request's, built
//! once before the run with smoltcp's emitters (valid checksums), sent as it is.

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol,
    Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
};
use std::net::SocketAddrV4;

/// Ports of the floor's frames: from a port we own no connection on to the discard port,
/// so the server's kernel answers with a reset and nothing else happens.
pub const FLOOR_SRC_PORT: u16 = 9;
pub const FLOOR_DST_PORT: u16 = 9;

/// Builds the frame: `payload_len` bytes of TCP payload from `from` to `to`.
pub fn frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    from: SocketAddrV4,
    to: SocketAddrV4,
    seq: u32,
    payload_len: usize,
) -> Vec<u8> {
    let payload = vec![0x17; payload_len]; // looks like a TLS application-data record
    let tcp = TcpRepr {
        src_port: from.port(),
        dst_port: to.port(),
        control: TcpControl::Psh,
        seq_number: TcpSeqNumber(seq as i32),
        ack_number: Some(TcpSeqNumber(1)),
        window_len: 502,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &payload,
    };
    let ip = Ipv4Repr {
        src_addr: *from.ip(),
        dst_addr: *to.ip(),
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit: 64,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress(src_mac),
        dst_addr: EthernetAddress(dst_mac),
        ethertype: EthernetProtocol::Ipv4,
    };
    let mut buf = vec![0; eth.buffer_len() + ip.buffer_len() + tcp.buffer_len()];
    let caps = ChecksumCapabilities::default();
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut f);
    let mut p = Ipv4Packet::new_unchecked(f.payload_mut());
    ip.emit(&mut p, &caps);
    let mut t = TcpPacket::new_unchecked(p.payload_mut());
    tcp.emit(
        &mut t,
        &IpAddress::Ipv4(*from.ip()),
        &IpAddress::Ipv4(*to.ip()),
        &caps,
    );
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn frame_is_valid_and_sized() {
        let from = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 10), FLOOR_SRC_PORT);
        let to = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), FLOOR_DST_PORT);
        let f = frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], from, to, 1000, 300);
        assert_eq!(f.len(), 14 + 20 + 20 + 300);
        let eth = EthernetFrame::new_checked(&f[..]).unwrap();
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert!(ip.verify_checksum());
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum(
            &IpAddress::Ipv4(from.ip().to_owned()),
            &IpAddress::Ipv4(*to.ip())
        ));
        assert_eq!(
            (tcp.src_port(), tcp.dst_port(), tcp.seq_number().0),
            (9, 9, 1000)
        );
        assert_eq!(tcp.payload().len(), 300);
    }
}
