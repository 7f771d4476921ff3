//! The program's verdicts and counters on hand-built frames, through the
//! kernel's test-run facility.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, OwnedFd};

use super::frame::*;
use crate::{sys, Counters, Flow, Steer, Verdict};

const APPLIANCE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const LOCAL_PORT: u16 = 40000;
const REMOTE_PORT: u16 = 443;

const FLOW: Flow = Flow {
    local: SocketAddrV4::new(APPLIANCE, LOCAL_PORT),
    remote: SocketAddrV4::new(PEER, REMOTE_PORT),
};

/// A fresh program owning [`FLOW`], with an AF_XDP socket in slot 0.
fn owning() -> (Steer, OwnedFd) {
    let steer = Steer::load().expect("load (needs root)");
    steer.add_flow(FLOW).unwrap();
    let xsk = sys::xsk_socket().expect("AF_XDP socket");
    steer.set_xsk(0, xsk.as_fd()).unwrap();
    (steer, xsk)
}

/// An IPv4 header from the peer to the appliance.
fn inbound(protocol: u8) -> Ipv4 {
    Ipv4::new(PEER, APPLIANCE, protocol)
}

/// A frame of [`FLOW`] as it arrives.
fn owned_frame() -> Vec<u8> {
    inbound(IPPROTO_TCP).frame(&tcp(REMOTE_PORT, LOCAL_PORT, 5))
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

/// Runs each frame, expecting `verdict` for all of them.
fn expect_all(steer: &Steer, frames: &[Vec<u8>], verdict: Verdict) {
    for (i, frame) in frames.iter().enumerate() {
        assert_eq!(run(steer, frame), verdict, "frame {i}: {frame:02x?}");
    }
}

#[test]
fn owned_flow_is_steered() {
    let (steer, _xsk) = owning();
    assert_eq!(run(&steer, &owned_frame()), Verdict::Redirect);
    assert_eq!(steer.counters().unwrap(), counters(1, 1, 0, 0));
}

#[test]
fn owned_flow_with_empty_slot_falls_back_to_pass() {
    let steer = Steer::load().unwrap();
    steer.add_flow(FLOW).unwrap();
    assert_eq!(run(&steer, &owned_frame()), Verdict::Pass);
    assert_eq!(steer.counters().unwrap(), counters(1, 0, 1, 0));
}

#[test]
fn owned_flow_uses_the_slot_of_its_rx_queue() {
    let steer = Steer::load().unwrap();
    steer.add_flow(FLOW).unwrap();
    let xsk = sys::xsk_socket().unwrap();
    steer.set_xsk(1, xsk.as_fd()).unwrap();
    // Received on queue 0, whose slot is empty: not queue 1's socket.
    assert_eq!(run(&steer, &owned_frame()), Verdict::Pass);
    steer.set_xsk(0, xsk.as_fd()).unwrap();
    assert_eq!(run(&steer, &owned_frame()), Verdict::Redirect);
    steer.clear_xsk(0).unwrap();
    assert_eq!(run(&steer, &owned_frame()), Verdict::Pass);
    assert_eq!(steer.counters().unwrap(), counters(3, 1, 2, 0));
}

#[test]
fn other_addresses_are_passed() {
    let (steer, _xsk) = owning();
    let other = Ipv4Addr::new(198, 18, 0, 99);
    let payload = tcp(REMOTE_PORT, LOCAL_PORT, 5);
    let frames = [
        Ipv4::new(other, APPLIANCE, IPPROTO_TCP).frame(&payload),
        Ipv4::new(PEER, other, IPPROTO_TCP).frame(&payload),
        // The flow's outgoing direction.
        Ipv4::new(APPLIANCE, PEER, IPPROTO_TCP).frame(&tcp(LOCAL_PORT, REMOTE_PORT, 5)),
    ];
    expect_all(&steer, &frames, Verdict::Pass);
    assert_eq!(steer.counters().unwrap(), counters(3, 0, 3, 0));
}

#[test]
fn other_ports_are_passed() {
    let (steer, _xsk) = owning();
    let frames = [
        inbound(IPPROTO_TCP).frame(&tcp(REMOTE_PORT + 1, LOCAL_PORT, 5)),
        inbound(IPPROTO_TCP).frame(&tcp(REMOTE_PORT, LOCAL_PORT + 1, 5)),
        inbound(IPPROTO_TCP).frame(&tcp(LOCAL_PORT, REMOTE_PORT, 5)),
    ];
    expect_all(&steer, &frames, Verdict::Pass);
    assert_eq!(steer.counters().unwrap(), counters(3, 0, 3, 0));
}

#[test]
fn udp_with_the_flows_tuple_is_passed() {
    let (steer, _xsk) = owning();
    let frame = inbound(IPPROTO_UDP).frame(&udp(REMOTE_PORT, LOCAL_PORT, b"hello"));
    assert_eq!(run(&steer, &frame), Verdict::Pass);
    assert_eq!(steer.counters().unwrap(), counters(1, 0, 1, 0));
}

#[test]
fn owned_flow_with_ipv4_options_is_steered() {
    let (steer, _xsk) = owning();
    // IHL 6 (router alert), 8, and the maximum 15; TCP with options too.
    let frames: Vec<Vec<u8>> = [vec![0x94, 0x04, 0, 0], vec![1; 12], vec![1; 40]]
        .into_iter()
        .map(|options| {
            let mut ip = inbound(IPPROTO_TCP);
            ip.options = options;
            ip.frame(&tcp(REMOTE_PORT, LOCAL_PORT, 8))
        })
        .collect();
    assert_eq!(frames[2][14] & 0x0f, 15);
    expect_all(&steer, &frames, Verdict::Redirect);
    assert_eq!(steer.counters().unwrap(), counters(3, 3, 0, 0));
}

#[test]
fn fragments_are_passed_not_malformed() {
    let (steer, _xsk) = owning();
    let payload = tcp(REMOTE_PORT, LOCAL_PORT, 5);
    // MF on the first fragment, an offset alone (last fragment), both.
    let frames: Vec<Vec<u8>> = [0x2000, 0x0001, 0x2000 | 0x00b9]
        .into_iter()
        .map(|frag_off| {
            let mut ip = inbound(IPPROTO_TCP);
            ip.frag_off = frag_off;
            ip.frame(&payload)
        })
        .collect();
    expect_all(&steer, &frames, Verdict::Pass);
    assert_eq!(steer.counters().unwrap(), counters(3, 0, 3, 0));
}

#[test]
fn inconsistent_headers_are_malformed_and_passed() {
    let (steer, _xsk) = owning();
    let payload = tcp(REMOTE_PORT, LOCAL_PORT, 5);
    let with = |edit: fn(&mut Ipv4)| {
        let mut ip = inbound(IPPROTO_TCP);
        edit(&mut ip);
        ip.frame(&payload)
    };
    // IHL 4 puts "TCP" at byte 16; make that parse (doff 5 at byte 28), so
    // only the IHL check can catch it.
    let mut ihl4 = with(|ip| ip.ihl = Some(4));
    ihl4[14 + 28] = 5 << 4;
    let frames = [
        ihl4,
        with(|ip| ip.ihl = Some(0)),
        with(|ip| ip.version = 6),
        // Total length shorter than the header, longer than the frame.
        with(|ip| ip.tot_len = Some(19)),
        with(|ip| ip.tot_len = Some(41)),
        // IHL 15 claims 60 header bytes, more than the total length.
        with(|ip| ip.ihl = Some(15)),
        // TCP data offset below 5, and beyond the IP payload.
        inbound(IPPROTO_TCP).frame(&tcp(REMOTE_PORT, LOCAL_PORT, 4)),
        {
            let mut frame = inbound(IPPROTO_TCP).frame(&tcp(REMOTE_PORT, LOCAL_PORT, 5));
            frame[14 + 20 + 12] = 6 << 4;
            frame
        },
    ];
    expect_all(&steer, &frames, Verdict::Pass);
    let n = frames.len() as u64;
    assert_eq!(steer.counters().unwrap(), counters(n, 0, n, n));
}

#[test]
fn ethernet_padding_after_the_ip_packet_is_fine() {
    let (steer, _xsk) = owning();
    let mut frame = owned_frame();
    frame.resize(60, 0); // minimum Ethernet frame without FCS
    assert_eq!(run(&steer, &frame), Verdict::Redirect);
    assert_eq!(steer.counters().unwrap(), counters(1, 1, 0, 0));
}

#[test]
fn truncated_at_every_header_boundary_is_malformed_and_passed() {
    let (steer, _xsk) = owning();
    steer.set_appliance_ip(APPLIANCE).unwrap();
    let tcp_frame = owned_frame();
    let mut with_options = inbound(IPPROTO_TCP);
    with_options.options = vec![1; 12];
    let options_frame = with_options.frame(&tcp(REMOTE_PORT, LOCAL_PORT, 5));
    let arp_frame = ethernet(ETH_P_ARP, &arp(ARP_REQUEST, PEER, APPLIANCE));
    let cut = |frame: &Vec<u8>, len: usize| frame[..len].to_vec();
    let frames = [
        cut(&tcp_frame, 14),           // Ethernet only, IPv4 ethertype
        cut(&arp_frame, 14),           // Ethernet only, ARP ethertype
        cut(&tcp_frame, 14 + 10),      // mid IPv4 header
        cut(&tcp_frame, 14 + 20),      // IPv4 header, no TCP
        cut(&options_frame, 14 + 24),  // mid IPv4 options
        cut(&options_frame, 14 + 32),  // options, no TCP
        cut(&tcp_frame, 14 + 20 + 10), // mid TCP header
        cut(&tcp_frame, 14 + 20 + 19), // one byte short of TCP
        cut(&arp_frame, 14 + 4),       // mid ARP fixed part
        cut(&arp_frame, 14 + 8),       // ARP fixed part, no addresses
        cut(&arp_frame, 14 + 27),      // one byte short of ARP
    ];
    // The cut IPv4 frames still claim their whole length; one more whose
    // lengths agree but whose TCP header is short.
    let mut frames = frames.to_vec();
    frames.push(inbound(IPPROTO_TCP).frame(&tcp(REMOTE_PORT, LOCAL_PORT, 5)[..10]));
    expect_all(&steer, &frames, Verdict::Pass);
    let n = frames.len() as u64;
    assert_eq!(steer.counters().unwrap(), counters(n, 0, n, n));
}

#[test]
fn frames_shorter_than_ethernet_are_refused_by_the_kernel() {
    let steer = Steer::load().unwrap();
    assert!(steer.test_run(&owned_frame()[..13], 0).is_err());
    assert_eq!(steer.counters().unwrap(), counters(0, 0, 0, 0));
}

#[test]
fn arp_for_the_appliance_is_steered() {
    let (steer, _xsk) = owning();
    let request = ethernet(ETH_P_ARP, &arp(ARP_REQUEST, PEER, APPLIANCE));
    let reply = ethernet(ETH_P_ARP, &arp(ARP_REPLY, PEER, APPLIANCE));
    // Unset after load: no ARP is ours, not even ARP for 0.0.0.0.
    assert_eq!(run(&steer, &request), Verdict::Pass);
    let unspecified = ethernet(ETH_P_ARP, &arp(ARP_REQUEST, PEER, Ipv4Addr::UNSPECIFIED));
    assert_eq!(run(&steer, &unspecified), Verdict::Pass);
    steer.set_appliance_ip(APPLIANCE).unwrap();
    expect_all(&steer, &[request.clone(), reply], Verdict::Redirect);
    steer.set_appliance_ip(Ipv4Addr::UNSPECIFIED).unwrap();
    assert_eq!(run(&steer, &request), Verdict::Pass);
    assert_eq!(steer.counters().unwrap(), counters(5, 2, 3, 0));
}

#[test]
fn other_arp_is_passed() {
    let (steer, _xsk) = owning();
    steer.set_appliance_ip(APPLIANCE).unwrap();
    let other = Ipv4Addr::new(198, 18, 0, 3);
    // Our target address, but one field of the fixed part changed:
    // (offset, value) of htype, ptype, hlen, plen, oper (3 = RARP request).
    let edits = [(1, 6), (2, 0x86), (4, 8), (5, 16), (7, 3)];
    let mut frames: Vec<Vec<u8>> = edits
        .into_iter()
        .map(|(offset, value)| {
            let mut packet = arp(ARP_REQUEST, PEER, APPLIANCE);
            packet[offset] = value;
            ethernet(ETH_P_ARP, &packet)
        })
        .collect();
    frames.extend([
        ethernet(ETH_P_ARP, &arp(ARP_REQUEST, PEER, other)),
        ethernet(ETH_P_ARP, &arp(ARP_REPLY, PEER, other)),
        // Our address as the sender, not the target.
        ethernet(ETH_P_ARP, &arp(ARP_REQUEST, APPLIANCE, PEER)),
    ]);
    expect_all(&steer, &frames, Verdict::Pass);
    assert_eq!(steer.counters().unwrap(), counters(8, 0, 8, 0));
}

#[test]
fn ipv6_is_passed() {
    let (steer, _xsk) = owning();
    let frame = ethernet(
        ETH_P_IPV6,
        &ipv6(IPPROTO_TCP, &tcp(REMOTE_PORT, LOCAL_PORT, 5)),
    );
    assert_eq!(run(&steer, &frame), Verdict::Pass);
    assert_eq!(steer.counters().unwrap(), counters(1, 0, 1, 0));
}

#[test]
fn vlan_tagged_owned_flow_is_passed() {
    let (steer, _xsk) = owning();
    steer.set_appliance_ip(APPLIANCE).unwrap();
    let ip = inbound(IPPROTO_TCP).packet(&tcp(REMOTE_PORT, LOCAL_PORT, 5));
    let arp = arp(ARP_REQUEST, PEER, APPLIANCE);
    let frames = [
        vlan(ETH_P_8021Q, 10, ETH_P_IP, &ip),
        vlan(ETH_P_8021AD, 10, ETH_P_IP, &ip),
        vlan(ETH_P_8021Q, 10, ETH_P_ARP, &arp),
    ];
    expect_all(&steer, &frames, Verdict::Pass);
    assert_eq!(steer.counters().unwrap(), counters(3, 0, 3, 0));
}

#[test]
fn removed_flow_is_passed_again() {
    let (steer, _xsk) = owning();
    assert_eq!(run(&steer, &owned_frame()), Verdict::Redirect);
    steer.remove_flow(FLOW).unwrap();
    assert_eq!(run(&steer, &owned_frame()), Verdict::Pass);
    steer.remove_flow(FLOW).unwrap(); // not there: fine
    steer.add_flow(FLOW).unwrap();
    steer.add_flow(FLOW).unwrap(); // already there: fine
    assert_eq!(run(&steer, &owned_frame()), Verdict::Redirect);
    assert_eq!(steer.counters().unwrap(), counters(3, 2, 1, 0));
}

#[test]
fn seen_is_steered_plus_passed_over_a_mix() {
    let (steer, _xsk) = owning();
    steer.set_appliance_ip(APPLIANCE).unwrap();
    let frames = [
        owned_frame(),
        ethernet(ETH_P_ARP, &arp(ARP_REQUEST, PEER, APPLIANCE)),
        inbound(IPPROTO_UDP).frame(&udp(1, 2, &[])),
        owned_frame()[..20].to_vec(),
        ethernet(ETH_P_IPV6, &ipv6(IPPROTO_UDP, &udp(1, 2, &[]))),
    ];
    let verdicts: Vec<Verdict> = frames.iter().map(|f| run(&steer, f)).collect();
    use Verdict::*;
    assert_eq!(verdicts, [Redirect, Redirect, Pass, Pass, Pass]);
    let c = steer.counters().unwrap();
    assert_eq!(c, counters(5, 2, 3, 1));
    assert_eq!(c.seen, c.steered + c.passed);
}
