//! The loss programs on hand-built frames, through the kernel's test-run
//! facility: what they may drop (IPv4/TCP only, never ARP), at what rate,
//! and what they count.

use std::net::Ipv4Addr;

use super::frame::*;
use crate::{Error, Loss, LossCounters, Verdict, TC_ACT_SHOT, TC_ACT_UNSPEC};

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fn tcp_frame() -> Vec<u8> {
    Ipv4::new(CLIENT, SERVER, IPPROTO_TCP).frame(&tcp_segment((40000, 443), 1, 1, 0x18, 5, b"x"))
}

/// Frames that are never dropped, whatever the share.
fn never_dropped() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "arp request",
            ethernet(ETH_P_ARP, &arp(ARP_REQUEST, CLIENT, SERVER)),
        ),
        (
            "arp reply",
            ethernet(ETH_P_ARP, &arp(ARP_REPLY, SERVER, CLIENT)),
        ),
        (
            "udp",
            Ipv4::new(CLIENT, SERVER, IPPROTO_UDP).frame(&udp(5353, 53, b"q")),
        ),
        (
            "icmp",
            Ipv4::new(CLIENT, SERVER, 1).frame(&[8, 0, 0, 0, 0, 1, 0, 1]),
        ),
        (
            "ipv6 tcp",
            ethernet(ETH_P_IPV6, &ipv6(IPPROTO_TCP, &tcp(40000, 443, 5))),
        ),
        (
            "vlan tcp",
            vlan(
                ETH_P_8021Q,
                7,
                ETH_P_IP,
                &Ipv4::new(CLIENT, SERVER, IPPROTO_TCP).packet(&tcp(1, 2, 5)),
            ),
        ),
        ("runt", ethernet(ETH_P_IP, &[0x45, 0, 0])),
    ]
}

#[test]
fn blackhole_drops_every_tcp_frame_both_ways() {
    let loss = Loss::load(100).expect("load (needs root)");
    assert_eq!(
        loss.test_run_arriving(&tcp_frame(), 1).unwrap(),
        Verdict::Drop
    );
    assert_eq!(loss.test_run_leaving(&tcp_frame(), 1).unwrap(), TC_ACT_SHOT);
    assert_eq!(
        loss.counters().unwrap(),
        LossCounters {
            arriving: 1,
            arriving_dropped: 1,
            leaving: 1,
            leaving_dropped: 1
        }
    );
}

#[test]
fn arp_and_everything_not_ipv4_tcp_always_passes() {
    let loss = Loss::load(100).expect("load (needs root)");
    for (what, frame) in never_dropped() {
        assert_eq!(
            loss.test_run_arriving(&frame, 1).unwrap(),
            Verdict::Pass,
            "{what}"
        );
        // The kernel's tc test run refuses an IPv4 ethertype without a whole
        // IPv4 header (EINVAL); on a real hook the stack never gets that far.
        if what != "runt" {
            assert_eq!(
                loss.test_run_leaving(&frame, 1).unwrap(),
                TC_ACT_UNSPEC,
                "{what}"
            );
        }
    }
    assert_eq!(
        loss.counters().unwrap(),
        LossCounters::default(),
        "not even counted"
    );
}

#[test]
fn zero_drops_nothing_and_counts_tcp() {
    let loss = Loss::load(0).expect("load (needs root)");
    assert_eq!(
        loss.test_run_arriving(&tcp_frame(), 100).unwrap(),
        Verdict::Pass
    );
    assert_eq!(
        loss.test_run_leaving(&tcp_frame(), 100).unwrap(),
        TC_ACT_UNSPEC
    );
    let c = loss.counters().unwrap();
    assert_eq!((c.arriving, c.arriving_dropped), (100, 0));
    assert_eq!((c.leaving, c.leaving_dropped), (100, 0));
}

#[test]
fn share_is_dropped_at_about_the_rate_set() {
    let loss = Loss::load(5).expect("load (needs root)");
    let n = 20_000u64;
    loss.test_run_arriving(&tcp_frame(), n as u32).unwrap();
    loss.test_run_leaving(&tcp_frame(), n as u32).unwrap();
    let c = loss.counters().unwrap();
    assert_eq!((c.arriving, c.leaving), (n, n));
    // 5% of 20,000 = 1,000, standard deviation about 31: ±200 is > 6 sigma.
    for dropped in [c.arriving_dropped, c.leaving_dropped] {
        assert!((800..=1200).contains(&dropped), "dropped {dropped} of {n}");
    }
    loss.set_pct(50).unwrap();
    loss.test_run_arriving(&tcp_frame(), n as u32).unwrap();
    let more = loss.counters().unwrap().arriving_dropped - c.arriving_dropped;
    assert!(
        (9_000..=11_000).contains(&more),
        "dropped {more} of {n} at 50%"
    );
}

#[test]
fn a_share_above_100_is_refused() {
    assert!(matches!(Loss::load(101), Err(Error::LossPct(101))));
    let loss = Loss::load(0).expect("load (needs root)");
    assert!(matches!(loss.set_pct(200), Err(Error::LossPct(200))));
}
