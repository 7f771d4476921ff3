//! Building a complete Ethernet/IPv4/TCP frame with smoltcp's emitters (valid checksums):
//! an armed order's frame built ahead, the bench's raw-frame floor, and test fixtures.

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol,
    Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
};
use std::net::{Ipv4Addr, SocketAddrV4};

/// A PSH|ACK segment carrying `payload` from `from` to `to` at sequence number `seq`.
pub fn tcp_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    from: SocketAddrV4,
    to: SocketAddrV4,
    seq: u32,
    payload: &[u8],
) -> Vec<u8> {
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
        payload,
    };
    let mut buf = vec![0; frame_len(&tcp)];
    emit_tcp(
        &mut buf,
        (src_mac, dst_mac),
        (*from.ip(), *to.ip()),
        64,
        &tcp,
    );
    buf
}

/// The length of the Ethernet/IPv4 (no options) frame carrying `tcp`.
pub fn frame_len(tcp: &TcpRepr) -> usize {
    14 + 20 + tcp.buffer_len()
}

/// Writes the whole frame carrying `tcp` into `buf` (at least [`frame_len`] long), every
/// checksum filled: Ethernet from `macs.0` to `macs.1`, IPv4 from `ips.0` to `ips.1` with
/// DF set, TTL `hop_limit`.
pub fn emit_tcp(
    buf: &mut [u8],
    (src_mac, dst_mac): ([u8; 6], [u8; 6]),
    (src_ip, dst_ip): (Ipv4Addr, Ipv4Addr),
    hop_limit: u8,
    tcp: &TcpRepr,
) {
    let ip = Ipv4Repr {
        src_addr: src_ip,
        dst_addr: dst_ip,
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress(src_mac),
        dst_addr: EthernetAddress(dst_mac),
        ethertype: EthernetProtocol::Ipv4,
    };
    let caps = ChecksumCapabilities::default();
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut f);
    let mut p = Ipv4Packet::new_unchecked(f.payload_mut());
    ip.emit(&mut p, &caps);
    let mut t = TcpPacket::new_unchecked(p.payload_mut());
    let (src, dst) = (IpAddress::Ipv4(src_ip), IpAddress::Ipv4(dst_ip));
    tcp.emit(&mut t, &src, &dst, &caps);
}
