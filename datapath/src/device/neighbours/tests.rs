use super::*;

const OURS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
const OUR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 10];
const TARGET: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const TARGET_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const EVIL_MAC: [u8; 6] = [2, 0, 0, 0, 0, 66];
const BROADCAST: [u8; 6] = [0xff; 6];

fn filter(mac: Option<[u8; 6]>) -> Neighbours {
    Neighbours::new(OURS, 24, OUR_MAC, &[Pin { ip: TARGET, mac }])
}

fn reply_from(sha: [u8; 6], spa: Ipv4Addr) -> [u8; ARP_FRAME_LEN] {
    arp_frame(ArpOperation::Reply, OUR_MAC, sha, spa, OUR_MAC, OURS)
}

fn request_from(sha: [u8; 6], spa: Ipv4Addr) -> [u8; ARP_FRAME_LEN] {
    arp_frame(ArpOperation::Request, BROADCAST, sha, spa, [0; 6], OURS)
}

#[test]
fn the_first_reply_pins_and_a_different_mac_is_dropped_and_counted() {
    let mut n = filter(None);
    assert_eq!(n.admit(&reply_from(TARGET_MAC, TARGET)), Admit::Deliver);
    assert_eq!(n.stats().learned, 1);
    assert_eq!(n.pins()[0].mac, Some(TARGET_MAC));
    assert_eq!(n.admit(&reply_from(TARGET_MAC, TARGET)), Admit::Deliver);
    assert_eq!(n.admit(&reply_from(EVIL_MAC, TARGET)), Admit::Drop);
    assert_eq!(n.admit(&request_from(EVIL_MAC, TARGET)), Admit::Drop);
    // A gratuitous ARP for the target, aimed at everyone: a conflict too.
    let gratuitous = arp_frame(
        ArpOperation::Reply,
        BROADCAST,
        EVIL_MAC,
        TARGET,
        BROADCAST,
        TARGET,
    );
    assert_eq!(n.admit(&gratuitous), Admit::Drop);
    assert_eq!(n.stats().pin_conflicts, 3);
    assert_eq!(n.pins()[0].mac, Some(TARGET_MAC));
}

#[test]
fn a_configured_mac_is_never_learned_over() {
    let mut n = filter(Some(TARGET_MAC));
    assert_eq!(n.admit(&reply_from(EVIL_MAC, TARGET)), Admit::Drop);
    assert_eq!(n.stats().pin_conflicts, 1);
    assert_eq!(n.stats().learned, 0);
    assert_eq!(n.admit(&reply_from(TARGET_MAC, TARGET)), Admit::Deliver);
}

#[test]
fn requests_for_our_address_are_answered_here_and_never_reach_smoltcp() {
    let mut n = filter(Some(TARGET_MAC));
    let stranger = Ipv4Addr::new(198, 18, 0, 77);
    let Admit::Answer(reply) = n.admit(&request_from(EVIL_MAC, stranger)) else {
        panic!("a request for our address is answered");
    };
    assert_eq!(
        reply,
        arp_frame(
            ArpOperation::Reply,
            EVIL_MAC,
            OUR_MAC,
            OURS,
            EVIL_MAC,
            stranger
        )
    );
    assert!(matches!(
        n.admit(&request_from(TARGET_MAC, TARGET)),
        Admit::Answer(_)
    ));
    assert_eq!(n.stats().answered, 2);
    assert_eq!(n.stats().strangers, 1);
}

#[test]
fn strangers_cannot_fill_the_cache() {
    let mut n = filter(None);
    for last in 100..140 {
        let ip = Ipv4Addr::new(198, 18, 0, last);
        assert_eq!(n.admit(&reply_from([2, 0, 0, 0, 1, last], ip)), Admit::Drop);
    }
    assert_eq!(n.stats().strangers, 40);
    // Not for us, or from outside our subnet, or from a broadcast address: dropped too.
    let not_ours = arp_frame(
        ArpOperation::Reply,
        OUR_MAC,
        TARGET_MAC,
        TARGET,
        OUR_MAC,
        Ipv4Addr::new(198, 18, 0, 11),
    );
    assert_eq!(n.admit(&not_ours), Admit::Drop);
    let outside = reply_from(EVIL_MAC, Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(n.admit(&outside), Admit::Drop);
    let broadcast_ip = request_from(EVIL_MAC, Ipv4Addr::new(198, 18, 0, 255));
    assert_eq!(n.admit(&broadcast_ip), Admit::Drop);
    assert_eq!(n.pins()[0].mac, None, "nothing pinned the target");
}

#[test]
fn without_pins_everything_passes_and_other_frames_always_do() {
    let mut open = Neighbours::new(OURS, 24, OUR_MAC, &[]);
    assert_eq!(open.admit(&reply_from(EVIL_MAC, TARGET)), Admit::Deliver);
    let mut n = filter(Some(TARGET_MAC));
    let tcp = crate::device::frame::tcp_frame(
        TARGET_MAC,
        OUR_MAC,
        std::net::SocketAddrV4::new(TARGET, 443),
        std::net::SocketAddrV4::new(OURS, 50000),
        1,
        b"x",
    );
    assert_eq!(n.admit(&tcp), Admit::Deliver);
    assert_eq!(
        n.admit(&[]),
        Admit::Deliver,
        "the gate's own check drops garbage"
    );
}

#[test]
fn pins_merge_by_address_and_skip_our_own() {
    let n = Neighbours::new(
        OURS,
        24,
        OUR_MAC,
        &[
            Pin {
                ip: TARGET,
                mac: None,
            },
            Pin {
                ip: TARGET,
                mac: Some(TARGET_MAC),
            },
            Pin {
                ip: OURS,
                mac: None,
            },
        ],
    );
    assert_eq!(
        n.pins(),
        &[Pin {
            ip: TARGET,
            mac: Some(TARGET_MAC)
        }]
    );
}
