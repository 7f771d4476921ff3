//! Event-feed datagrams: IPv4/UDP to an owned destination (the appliance's address or a
//! multicast group) is steered; anything else UDP is passed as before.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, OwnedFd};

use super::frame::*;
use crate::{sys, Counters, Steer, Verdict};

const APPLIANCE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
const SENDER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const GROUP: Ipv4Addr = Ipv4Addr::new(239, 18, 0, 1);
const FEED: SocketAddrV4 = SocketAddrV4::new(APPLIANCE, 9000);

fn owning(feeds: &[SocketAddrV4]) -> (Steer, OwnedFd) {
    let steer = Steer::load().expect("load (needs root)");
    for &f in feeds {
        steer.add_udp_port(f).unwrap();
    }
    let xsk = sys::xsk_socket().expect("AF_XDP socket");
    steer.set_xsk(0, xsk.as_fd()).unwrap();
    (steer, xsk)
}

fn datagram(dst: Ipv4Addr, port: u16, payload: &[u8]) -> Vec<u8> {
    Ipv4::new(SENDER, dst, IPPROTO_UDP).frame(&udp(5555, port, payload))
}

fn run(steer: &Steer, frame: &[u8]) -> Verdict {
    steer.test_run(frame, 0).expect("test run")
}

fn counters(seen: u64, steered: u64, passed: u64, malformed: u64) -> Counters {
    Counters {
        seen,
        steered,
        passed,
        malformed,
    }
}

#[test]
fn datagrams_to_an_owned_port_are_steered() {
    let (steer, _xsk) = owning(&[FEED]);
    let event = br#"{"sku":"1001","stock":3}"#;
    assert_eq!(
        run(&steer, &datagram(APPLIANCE, 9000, event)),
        Verdict::Redirect
    );
    assert_eq!(
        run(&steer, &datagram(APPLIANCE, 9000, b"")),
        Verdict::Redirect
    );
    assert_eq!(steer.counters().unwrap(), counters(2, 2, 0, 0));
}

#[test]
fn other_udp_is_passed() {
    let (steer, _xsk) = owning(&[FEED]);
    let frames = [
        datagram(APPLIANCE, 9001, b"x"),
        datagram(SENDER, 9000, b"x"),
        datagram(GROUP, 9000, b"x"),
        // TCP to the feed's port is not the feed.
        Ipv4::new(SENDER, APPLIANCE, IPPROTO_TCP).frame(&tcp(5555, 9000, 5)),
    ];
    for f in &frames {
        assert_eq!(run(&steer, f), Verdict::Pass);
    }
    assert_eq!(steer.counters().unwrap(), counters(4, 0, 4, 0));
}

#[test]
fn a_multicast_group_can_be_owned() {
    let group = SocketAddrV4::new(GROUP, 9000);
    let (steer, _xsk) = owning(&[FEED, group]);
    assert_eq!(run(&steer, &datagram(GROUP, 9000, b"x")), Verdict::Redirect);
    steer.remove_udp_port(group).unwrap();
    steer.remove_udp_port(group).unwrap(); // twice: not an error
    assert_eq!(run(&steer, &datagram(GROUP, 9000, b"x")), Verdict::Pass);
    assert_eq!(
        run(&steer, &datagram(APPLIANCE, 9000, b"x")),
        Verdict::Redirect
    );
}

#[test]
fn fragments_and_broken_udp_headers_are_passed() {
    let (steer, _xsk) = owning(&[FEED]);
    let mut fragment = Ipv4::new(SENDER, APPLIANCE, IPPROTO_UDP);
    fragment.frag_off = 0x2000;
    assert_eq!(
        run(&steer, &fragment.frame(&udp(5555, 9000, b"x"))),
        Verdict::Pass
    );
    assert_eq!(steer.counters().unwrap(), counters(1, 0, 1, 0));

    // A UDP length beyond the IP payload, one shorter than the header, and a header
    // cut short: malformed, passed.
    let mut long = udp(5555, 9000, b"abc");
    long[4..6].copy_from_slice(&100u16.to_be_bytes());
    let mut short = udp(5555, 9000, b"abc");
    short[4..6].copy_from_slice(&7u16.to_be_bytes());
    let cut = &udp(5555, 9000, b"")[..6];
    for payload in [&long[..], &short[..], cut] {
        let frame = Ipv4::new(SENDER, APPLIANCE, IPPROTO_UDP).frame(payload);
        assert_eq!(run(&steer, &frame), Verdict::Pass, "{payload:02x?}");
    }
    assert_eq!(steer.counters().unwrap(), counters(4, 0, 4, 3));
}

#[test]
fn only_the_owned_port_of_a_group_is_steered() {
    let (steer, _xsk) = owning(&[SocketAddrV4::new(GROUP, 9000)]);
    assert_eq!(run(&steer, &datagram(GROUP, 9000, b"x")), Verdict::Redirect);
    // The kernel keeps the rest: the group's other ports, other groups, our own address
    // on the port (no unicast feed here), and the group's IGMP (the kernel holds the
    // membership and answers the queriers).
    let igmp_report = [0x16, 0, 0xfa, 0xeb, 239, 18, 0, 1];
    let frames = [
        datagram(GROUP, 9001, b"x"),
        datagram(Ipv4Addr::new(239, 18, 0, 2), 9000, b"x"),
        datagram(APPLIANCE, 9000, b"x"),
        Ipv4::new(SENDER, GROUP, 2).frame(&igmp_report),
    ];
    for f in &frames {
        assert_eq!(run(&steer, f), Verdict::Pass, "{f:02x?}");
    }
    assert_eq!(steer.counters().unwrap(), counters(5, 1, 4, 0));
}
