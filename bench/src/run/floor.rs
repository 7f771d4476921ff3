//! The floor's frame: a complete Ethernet/IPv4/TCP frame the size of a request's, built
//! before its fire (valid checksums) and sent as it is.

use std::net::SocketAddrV4;

/// Ports of the floor's frames: from a port we own no connection on to the discard port,
/// so the server's kernel answers with a reset and nothing else happens.
pub const FLOOR_SRC_PORT: u16 = 9;
pub const FLOOR_DST_PORT: u16 = 9;

/// Builds the frame: `payload_len` bytes of TCP payload from `from` to `to`, filled with
/// 0x17 so it looks like a TLS application-data record.
pub fn frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    from: SocketAddrV4,
    to: SocketAddrV4,
    seq: u32,
    payload_len: usize,
) -> Vec<u8> {
    let payload = vec![0x17; payload_len];
    quickdraw_datapath::device::frame::tcp_frame(src_mac, dst_mac, from, to, seq, &payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{EthernetFrame, IpAddress, Ipv4Packet, TcpPacket};
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
