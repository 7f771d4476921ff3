//! Pinned neighbours in the lab (root; own lab): with the pool warm, the lab peer poisons
//! the target's ARP entry and a fire still succeeds (without the pins, the same forged
//! reply makes it time out); strangers then try to fill the neighbour cache, the counters
//! move, and the peer's kernel, its entry for us flushed, gets our MAC from our own ARP
//! answer while a second fire succeeds.

mod common;

use common::inject;

use common::fire::{backend, config, order, orders_logged, outcomes, target, wait_for, wait_warm};
use quickdraw_datapath::device::neighbours::arp_frame;
use quickdraw_datapath::device::{NeighbourStats, Pin};
use quickdraw_datapath::order::{ArmSpec, Command, Event, Outcome, Trigger};
use quickdraw_datapath::runner::{self, BackendConfig};
use quickdraw_lab::LabSession;
use quickdraw_lab::{APPLIANCE_IP, HOST_IF, NETNS, PEER_IF, TARGET_IP};
use smoltcp::wire::ArpOperation;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

const EVIL: [u8; 6] = [0x02, 0x66, 0x66, 0x66, 0x66, 0x66];
const BROADCAST: [u8; 6] = [0xff; 6];

fn in_lab(args: &[&str]) -> String {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", NETNS])
        .args(args)
        .output()
        .expect("ip netns exec");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The poisoning: the target's address claimed with another MAC, in a reply and a
/// request to us, and in a gratuitous broadcast (which the XDP program leaves to the
/// kernel: it is not for our address). Without the pins, the first alone sends our
/// next order to nowhere (its outcome: a timeout).
fn poison(ours: [u8; 6]) -> Vec<Vec<u8>> {
    vec![
        arp_frame(
            ArpOperation::Reply,
            ours,
            EVIL,
            TARGET_IP,
            ours,
            APPLIANCE_IP,
        )
        .to_vec(),
        arp_frame(
            ArpOperation::Reply,
            BROADCAST,
            EVIL,
            TARGET_IP,
            BROADCAST,
            TARGET_IP,
        )
        .to_vec(),
        arp_frame(
            ArpOperation::Request,
            BROADCAST,
            EVIL,
            TARGET_IP,
            [0; 6],
            APPLIANCE_IP,
        )
        .to_vec(),
    ]
}

/// Forty strangers asking for our address or answering questions never asked: enough to
/// turn smoltcp's 8-entry cache over five times.
fn strangers(ours: [u8; 6]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    for i in 0..20u8 {
        let mac = [0x02, 0x77, 0, 0, 0, i];
        let ip = Ipv4Addr::new(198, 18, 0, 100 + i);
        frames.push(
            arp_frame(
                ArpOperation::Request,
                BROADCAST,
                mac,
                ip,
                [0; 6],
                APPLIANCE_IP,
            )
            .to_vec(),
        );
        let ip = Ipv4Addr::new(198, 18, 0, 150 + i);
        frames.push(arp_frame(ArpOperation::Reply, ours, mac, ip, ours, APPLIANCE_IP).to_vec());
    }
    frames
}

/// Arms and fires one order; its outcome must be a 200, logged once by nginx.
fn fire_one(handle: &runner::Handle, seen: &mut Vec<Event>, arm: u64, access_log: &Path) {
    let key = format!("qd-test-arp-{arm}-{}", std::process::id());
    let spec = ArmSpec {
        arm,
        target: 0,
        request: order("1001", &key),
        conns: 1,
        trigger: Trigger::Manual,
    };
    handle
        .commands
        .push(Command::Arm {
            req: arm,
            spec: Box::new(spec),
        })
        .unwrap();
    handle
        .commands
        .push(Command::Fire {
            req: 1000 + arm,
            arm,
        })
        .unwrap();
    let done = outcomes(&handle.events, seen, arm, 1);
    assert_eq!(done[0].outcome, Outcome::Status(200), "{done:?}");
    assert_eq!(orders_logged(access_log, &key, 1).len(), 1);
}

#[test]
fn arp_poisoning_while_warm_is_dropped_counted_and_a_fire_succeeds() {
    let lab = LabSession::start().expect("lab up");
    let status = lab.status().unwrap().clone();
    let BackendConfig::AfXdp(mut engine) = backend("af_xdp") else {
        unreachable!()
    };
    engine.neighbours = vec![Pin {
        ip: TARGET_IP,
        mac: None,
    }];
    let cfg = config(
        BackendConfig::AfXdp(engine),
        target(&status.ca_cert, Duration::from_secs(10)),
    );
    let handle = runner::spawn(cfg).expect("datapath starts");
    let mut seen = Vec::new();
    assert!(
        wait_warm(&handle.events, &mut seen, 1, Duration::from_secs(10)),
        "pool never warm: {seen:?}"
    );

    let ours = quickdraw_lab::mac_address(None, HOST_IF).unwrap();
    inject(&poison(ours));
    std::thread::sleep(Duration::from_millis(300));
    fire_one(&handle, &mut seen, 1, &status.access_log);

    inject(&strangers(ours));
    // The peer forgets us and must ask again: our answer is all it can learn from.
    in_lab(&["ip", "neigh", "flush", "dev", PEER_IF]);
    let counted = wait_for(
        &handle.events,
        &mut seen,
        Duration::from_secs(5),
        |e| match e {
            Event::Counters { counters, .. } => counters
                .device
                .map(|d| d.neighbours)
                .filter(|n| n.pin_conflicts >= 2 && n.strangers >= 40 && n.answered >= 20),
            _ => None,
        },
    );
    let counted: NeighbourStats =
        counted.unwrap_or_else(|| panic!("counters never moved: {seen:?}"));
    assert_eq!(counted.learned, 1, "{counted:?}");
    fire_one(&handle, &mut seen, 2, &status.access_log);

    // The peer resolved us again, to our MAC, from our own answer.
    let mac = ours.map(|b| format!("{b:02x}")).join(":");
    let neigh = in_lab(&["ip", "neigh", "show", &APPLIANCE_IP.to_string()]);
    assert!(neigh.contains(&mac), "peer's entry for us: {neigh:?}");
    eprintln!("neighbour counters after the attack: {counted:?}");
}
