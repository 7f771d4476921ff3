//! A UDP event feed on a multicast group in the lab (root; own lab), on both backends:
//! the lab's sender in `qdlab` sends to 239.18.0.1:9000 out of `qd1`. While the feed
//! lives the kernel holds the group's membership on `qd0` (on AF_XDP too: the datagrams
//! are then steered past it to our own stack). An arm on the feed fires exactly once per
//! matching event, a non-matching event never fires it, and a matching event sent
//! anywhere but the feed (our address on another port or on the feed's port, the group
//! on another port, another group) never reaches it; nothing allocates from the event's
//! arrival to the kick. One binary for it: the counting allocator is global.

mod common;

use common::alloc::{measure, Counting};
use common::events::Run;
use common::fire::orders_logged;
use quickdraw_datapath::clock::monotonic_ns;
use quickdraw_datapath::event::source::SourceSpec;
use quickdraw_datapath::event::udp_source::UdpSpec;
use quickdraw_datapath::link::kernel::KernelLink;
use quickdraw_datapath::link::xdp::XdpLink;
use quickdraw_datapath::link::Link;
use quickdraw_datapath::order::Outcome;
use quickdraw_datapath::Engine;
use quickdraw_lab::events::{EventServer, UDP_GROUP, UDP_PORT};
use quickdraw_lab::{LabPaths, LabSession};
use quickdraw_lab::{APPLIANCE_IP, HOST_IF, KERNEL_IP};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The feed's source number (the only source).
const FEED: usize = 0;
const MATCH: &str = r#"sku == "1001" && stock > 0"#;
const NEVER: &str = r#"sku == "1002" && stock > 100"#;
const YES: &[u8] = br#"{"sku":"1001","stock":3}"#;
const NOT: [&[u8]; 3] = [
    br#"{"sku":"1001","stock":0}"#,
    br#"{"sku":"1002","stock":9}"#,
    b"restock soon",
];
const OTHER_PORT: u16 = 9002;
const OTHER_GROUP: Ipv4Addr = Ipv4Addr::new(239, 18, 0, 2);
const ROUNDS: u64 = 3;

/// Whether interface `ifname` is a member of `group`, by the kernel's own table
/// (`/proc/net/igmp`: a line per interface, `Idx Device : ...`, then a tab-led line per
/// group, its address as a host-order u32 in hex).
fn joined(ifname: &str, group: Ipv4Addr) -> bool {
    let table = std::fs::read_to_string("/proc/net/igmp").expect("/proc/net/igmp");
    let hex = format!("{:08X}", u32::from_ne_bytes(group.octets()));
    let mut device = None;
    for line in table.lines().skip(1) {
        if line.starts_with('\t') {
            if device == Some(ifname) && line.split_whitespace().next() == Some(&hex) {
                return true;
            }
        } else {
            device = line.split_whitespace().nth(1);
        }
    }
    false
}

/// The feed on `link`, whose own address is `own_ip`: rounds of decoys, then the event.
fn group_fires<L: Link>(link: L, paths: &LabPaths, own_ip: Ipv4Addr) {
    let backend = link.backend();
    let server = EventServer::start(paths).expect("event server");
    let spec = UdpSpec {
        name: "lab-group".into(),
        addr: UDP_GROUP,
        port: UDP_PORT,
        max_event: 1024,
    };
    let mut run = Run::start(link, &paths.ca_cert, vec![SourceSpec::Udp(spec)]);
    assert!(
        joined(HOST_IF, UDP_GROUP),
        "{backend}: the kernel holds the group on {HOST_IF}"
    );
    let feed = SocketAddrV4::new(UDP_GROUP, UDP_PORT);
    // A matching event sent anywhere but the feed.
    let decoys = [
        SocketAddrV4::new(own_ip, OTHER_PORT),
        SocketAddrV4::new(own_ip, UDP_PORT),
        SocketAddrV4::new(UDP_GROUP, OTHER_PORT),
        SocketAddrV4::new(OTHER_GROUP, UDP_PORT),
    ];
    let key = |what: String| format!("qd-group-{backend}-{what}");
    let mut allocations = Vec::new();

    for round in 0..ROUNDS {
        let base = 10 * (round + 1);
        run.arm(base, FEED, MATCH, &key(format!("{round}-a")));
        run.arm(base + 1, FEED, NEVER, &key(format!("{round}-b")));
        for data in NOT {
            server.send_udp(feed, data).unwrap();
        }
        for to in decoys {
            server.send_udp(to, YES).unwrap();
        }
        run.settle(Duration::from_millis(20));
        assert_eq!(
            run.sent(base) + run.sent(base + 1),
            0,
            "{backend} round {round}: a fire from a non-matching event or a decoy"
        );
        server.send_udp(feed, YES).unwrap();
        allocations.push(run.fire_allocations(base));
        assert_eq!(run.outcome(base), Outcome::Status(200));
        run.check_receive_stamp(base, backend);
        // Again: the arm has fired; the other never does.
        server.send_udp(feed, YES).unwrap();
        run.settle(Duration::from_millis(20));
        assert_eq!(
            (run.sent(base), run.sent(base + 1)),
            (1, 0),
            "{backend} round {round}"
        );
        run.disarm(base + 1);
    }
    assert_eq!(
        allocations,
        vec![0; ROUNDS as usize],
        "{backend}: allocations, event frame to kick"
    );
    // Exactly one order per fired arm in nginx's access log, none for the others.
    for round in 0..ROUNDS {
        for (arm, want) in [("a", 1), ("b", 0)] {
            let k = key(format!("{round}-{arm}"));
            assert_eq!(
                orders_logged(&paths.access_log, &k, want).len(),
                want,
                "{k}"
            );
        }
    }
}

#[test]
fn a_group_feed_fires_on_both_backends() {
    let ((), n) = measure(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(8))));
    assert_eq!(n, 1, "the counting allocator counts");
    let lab = LabSession::start().expect("lab up");
    let paths = LabPaths::standard();
    assert!(lab.status().is_some());
    assert!(!joined(HOST_IF, UDP_GROUP), "no membership before the feed");
    group_fires(KernelLink::new(Some(HOST_IF.into()), 16), &paths, KERNEL_IP);
    assert!(!joined(HOST_IF, UDP_GROUP), "kernel: left with the feed");
    let engine = Engine::start(&common::lab_engine(), monotonic_ns()).expect("datapath starts");
    group_fires(XdpLink::new(engine), &paths, APPLIANCE_IP);
    assert!(!joined(HOST_IF, UDP_GROUP), "af_xdp: left with the feed");
}
