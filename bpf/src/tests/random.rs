//! The steering program on random frames through the kernel's test-run facility: it
//! never aborts or drops, and it steers exactly what an independent reading of the
//! rules calls ours (the owned flow inbound, datagrams to an owned feed on the
//! appliance's address or on a multicast group, ARP for the appliance's address),
//! nothing else, whatever the bytes.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsFd;

use super::frame::*;
use crate::{sys, Flow, Steer, Verdict};

const APPLIANCE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const FLOW: Flow = Flow {
    local: SocketAddrV4::new(APPLIANCE, 40000),
    remote: SocketAddrV4::new(PEER, 443),
};
/// Event feeds owned: one on our address, one on a multicast group.
const FEEDS: [SocketAddrV4; 2] = [
    SocketAddrV4::new(APPLIANCE, 9000),
    SocketAddrV4::new(Ipv4Addr::new(239, 18, 0, 1), 9000),
];
/// Frames per run: well under a second of test runs.
const FRAMES: usize = 30_000;

/// xorshift64*: seeded, so a failure names a frame that can be rebuilt.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn ip_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// The rules of steer.bpf.c, read independently: is this frame ours?
fn ours(f: &[u8]) -> bool {
    if f.len() < 14 {
        return false;
    }
    let l3 = &f[14..];
    match be16(f, 12) {
        ETH_P_IP => {
            if l3.len() < 20 || l3[0] >> 4 != 4 || l3[0] & 0xf < 5 {
                return false;
            }
            let ihl = usize::from(l3[0] & 0xf) * 4;
            let total = usize::from(be16(l3, 2));
            if total < ihl || total > l3.len() {
                return false;
            }
            // More fragments, or an offset: not a first, whole datagram.
            if be16(l3, 6) & 0x3fff != 0 {
                return false;
            }
            if l3[9] == IPPROTO_UDP {
                let Some(udp) = l3.get(ihl..ihl + 8) else {
                    return false;
                };
                let len = usize::from(be16(udp, 4));
                let dst = SocketAddrV4::new(ip_at(l3, 16), be16(udp, 2));
                return len >= 8 && len <= total - ihl && FEEDS.contains(&dst);
            }
            if l3[9] != IPPROTO_TCP {
                return false;
            }
            let Some(tcp) = l3.get(ihl..ihl + 20) else {
                return false;
            };
            let doff = usize::from(tcp[12] >> 4) * 4;
            if doff < 20 || doff > total - ihl {
                return false;
            }
            ip_at(l3, 12) == *FLOW.remote.ip()
                && ip_at(l3, 16) == *FLOW.local.ip()
                && be16(tcp, 0) == FLOW.remote.port()
                && be16(tcp, 2) == FLOW.local.port()
        }
        ETH_P_ARP => {
            l3.len() >= 28
                && be16(l3, 0) == 1
                && be16(l3, 2) == ETH_P_IP
                && l3[4] == 6
                && l3[5] == 4
                && matches!(be16(l3, 6), ARP_REQUEST | ARP_REPLY)
                && ip_at(l3, 24) == APPLIANCE
        }
        _ => false,
    }
}

/// A datagram to one of the feeds, or (one time in four) to a neighbour of one: the next
/// port, or the next address (another group, or not ours).
fn datagram(rng: &mut Rng) -> Vec<u8> {
    let feed = FEEDS[rng.below(FEEDS.len())];
    let (mut ip, mut port) = (*feed.ip(), feed.port());
    match rng.below(8) {
        0 => port += 1,
        1 => ip = Ipv4Addr::from(u32::from(ip) + 1),
        _ => {}
    }
    let payload: Vec<u8> = (0..rng.below(40)).map(|_| rng.byte()).collect();
    Ipv4::new(PEER, ip, IPPROTO_UDP).frame(&udp(5555, port, &payload))
}

/// A frame: random bytes, or one of ours damaged (bytes changed, cut short, fields set).
fn frame(rng: &mut Rng) -> Vec<u8> {
    let owned = Ipv4::new(PEER, APPLIANCE, IPPROTO_TCP).frame(&tcp(443, 40000, 5));
    let arp_ours = ethernet(ETH_P_ARP, &arp(ARP_REPLY, PEER, APPLIANCE));
    let mut f = match rng.below(5) {
        0 => (0..14 + rng.below(120)).map(|_| rng.byte()).collect(),
        1 => owned,
        2 => arp_ours,
        3 => datagram(rng),
        _ => {
            let mut f = match rng.below(3) {
                0 => Ipv4::new(PEER, APPLIANCE, IPPROTO_TCP).frame(&tcp(443, 40000, 5)),
                1 => ethernet(ETH_P_ARP, &arp(ARP_REQUEST, PEER, APPLIANCE)),
                _ => datagram(rng),
            };
            let tail = rng.below(64);
            f.extend((0..tail).map(|_| rng.byte()));
            f
        }
    };
    // Damage: a few bytes anywhere, often in the headers.
    for _ in 0..rng.below(4) {
        let span = if rng.below(2) == 0 {
            f.len().min(60)
        } else {
            f.len()
        };
        let at = rng.below(span);
        f[at] = rng.byte();
    }
    if rng.below(4) == 0 {
        let keep = 14 + rng.below(f.len() - 13);
        f.truncate(keep);
    }
    f
}

#[test]
fn random_frames_never_abort_and_only_ours_are_steered() {
    let steer = Steer::load().expect("load (needs root)");
    steer.add_flow(FLOW).unwrap();
    for feed in FEEDS {
        steer.add_udp_port(feed).unwrap();
    }
    steer.set_appliance_ip(APPLIANCE).unwrap();
    let xsk = sys::xsk_socket().expect("AF_XDP socket");
    steer.set_xsk(0, xsk.as_fd()).unwrap();

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut steered, mut passed) = (0u64, 0u64);
    // Datagrams to the group steered, and other IPv4/UDP passed: both rules exercised.
    let (mut group, mut other_udp) = (0u64, 0u64);
    for i in 0..FRAMES {
        let f = frame(&mut rng);
        let verdict = steer.test_run(&f, 0).expect("test run");
        let expected = if ours(&f) {
            Verdict::Redirect
        } else {
            Verdict::Pass
        };
        assert_eq!(verdict, expected, "frame {i}: {f:02x?}");
        let udp = f.len() > 34 && be16(&f, 12) == ETH_P_IP && f[23] == IPPROTO_UDP;
        match verdict {
            Verdict::Redirect => {
                steered += 1;
                group += u64::from(udp && ip_at(&f, 30) == *FEEDS[1].ip());
            }
            _ => {
                passed += 1;
                other_udp += u64::from(udp);
            }
        }
    }
    let c = steer.counters().unwrap();
    assert_eq!(c.seen, FRAMES as u64);
    assert_eq!((c.steered, c.passed), (steered, passed));
    // Both sides were exercised.
    assert!(
        steered > 1_000 && passed > 1_000,
        "{steered} steered, {passed} passed"
    );
    assert!(
        group > 500 && other_udp > 500,
        "{group} to the group steered, {other_udp} other UDP passed"
    );
}
