//! Feed sockets on an in-memory wire: a joined group's datagrams reach the socket bound
//! to it and nothing else does, and joining sends nothing.

use super::super::{Stack, StackConfig};
use crate::fuzz::Wire;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpProtocol, Ipv4Packet,
    Ipv4Repr, UdpPacket, UdpRepr,
};
use std::net::{Ipv4Addr, SocketAddrV4};

const OURS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
const OUR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 10];
const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const GROUP: Ipv4Addr = Ipv4Addr::new(239, 18, 0, 1);
const OTHER_GROUP: Ipv4Addr = Ipv4Addr::new(239, 18, 0, 2);
const PORT: u16 = 9000;

fn stack(wire: &mut Wire) -> Stack {
    let config = StackConfig {
        mac: OUR_MAC,
        ip: OURS,
        prefix_len: 24,
        gateway: None,
        sockets: 1,
        rx_buffer: 1024,
        tx_buffer: 1024,
    };
    Stack::new(&config, wire, Instant::ZERO)
}

/// An Ethernet/IPv4/UDP frame from the peer to `dst:port`, to the group's MAC (RFC 1112
/// section 6.4) when `dst` is multicast.
fn datagram(dst: Ipv4Addr, port: u16, payload: &[u8]) -> Vec<u8> {
    let dst_mac = if dst.is_multicast() {
        let o = dst.octets();
        [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
    } else {
        OUR_MAC
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress(PEER_MAC),
        dst_addr: EthernetAddress(dst_mac),
        ethertype: EthernetProtocol::Ipv4,
    };
    let udp = UdpRepr {
        src_port: 9001,
        dst_port: port,
    };
    let ip = Ipv4Repr {
        src_addr: PEER,
        dst_addr: dst,
        next_header: IpProtocol::Udp,
        payload_len: udp.header_len() + payload.len(),
        hop_limit: 1,
    };
    let mut buf = vec![0; eth.buffer_len() + ip.buffer_len() + ip.payload_len];
    let checksums = ChecksumCapabilities::default();
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
    ip.emit(&mut packet, &checksums);
    udp.emit(
        &mut UdpPacket::new_unchecked(packet.payload_mut()),
        &PEER.into(),
        &dst.into(),
        payload.len(),
        |b| b.copy_from_slice(payload),
        &checksums,
    );
    buf
}

/// Feeds `frames` through one poll and returns what socket `handle` received.
fn deliver(
    stack: &mut Stack,
    wire: &mut Wire,
    handle: smoltcp::iface::SocketHandle,
    frames: &[Vec<u8>],
) -> Vec<Vec<u8>> {
    wire.rx.extend(frames.iter().cloned());
    for _ in 0..frames.len() + 1 {
        stack.poll_ingress(Instant::from_millis(1), wire);
        stack.poll_egress_all(Instant::from_millis(1), wire);
    }
    let mut got = Vec::new();
    let mut buf = [0; 64];
    while let Some(n) = stack.recv_udp(handle, &mut buf) {
        got.push(buf[..n].to_vec());
    }
    got
}

#[test]
fn a_joined_group_reaches_its_socket_and_joining_sends_nothing() {
    let mut wire = Wire::default();
    let mut stack = stack(&mut wire);
    stack.join_group(GROUP, Instant::ZERO).unwrap();
    stack.join_group(GROUP, Instant::ZERO).unwrap(); // twice: not an error
    let feed = stack.bind_udp(SocketAddrV4::new(GROUP, PORT), 32).unwrap();
    stack.poll_ingress(Instant::from_millis(1), &mut wire);
    stack.poll_egress_all(Instant::from_millis(1), &mut wire);
    assert!(wire.tx.is_empty(), "joining sent {:02x?}", wire.tx);

    let got = deliver(
        &mut stack,
        &mut wire,
        feed,
        &[
            datagram(GROUP, PORT, b"one"),
            // Another port of the group, a group not joined, our own address: not the feed.
            datagram(GROUP, PORT + 1, b"port"),
            datagram(OTHER_GROUP, PORT, b"other group"),
            datagram(OURS, PORT, b"unicast"),
            datagram(GROUP, PORT, b"two"),
        ],
    );
    assert_eq!(got, [b"one".to_vec(), b"two".to_vec()]);
    // No IGMP, and nothing answers a datagram to a group (ICMP errors are for unicast
    // only): whatever was sent is about the unicast datagram to a closed port (its ARP
    // and port unreachable).
    assert!(!wire.tx.is_empty());
    for f in &wire.tx {
        let eth = EthernetFrame::new_checked(&f[..]).unwrap();
        if eth.ethertype() == EthernetProtocol::Ipv4 {
            let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
            assert_eq!((ip.next_header(), ip.dst_addr()), (IpProtocol::Icmp, PEER));
        } else {
            assert_eq!(eth.ethertype(), EthernetProtocol::Arp, "{f:02x?}");
        }
    }
}

#[test]
fn without_a_join_the_group_is_not_received() {
    let mut wire = Wire::default();
    let mut stack = stack(&mut wire);
    let feed = stack.bind_udp(SocketAddrV4::new(GROUP, PORT), 32).unwrap();
    let got = deliver(&mut stack, &mut wire, feed, &[datagram(GROUP, PORT, b"x")]);
    assert!(got.is_empty());
}

#[test]
fn only_multicast_addresses_are_joined() {
    let mut wire = Wire::default();
    let mut stack = stack(&mut wire);
    assert!(stack.join_group(OURS, Instant::ZERO).is_err());
    assert!(wire.tx.is_empty());
}
