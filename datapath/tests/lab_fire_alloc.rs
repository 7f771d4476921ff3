//! Zero allocations between trigger and Tx kick, on both backends (root; own lab). The
//! whole turn that fires is measured, which is stricter than trigger→kick alone. One
//! binary for it: the counting allocator is global.

mod common;

use common::alloc::{measure, Counting};
use common::fire::{order, target, POOL};
use crossbeam_queue::ArrayQueue;
use quickdraw_datapath::appliance::Appliance;
use quickdraw_datapath::clock::monotonic_ns;
use quickdraw_datapath::link::kernel::KernelLink;
use quickdraw_datapath::link::xdp::XdpLink;
use quickdraw_datapath::link::Link;
use quickdraw_datapath::order::{Accepted, ArmSpec, Command, Event, Outcome, Trigger};
use quickdraw_datapath::poll::Turn;
use quickdraw_datapath::Engine;
use quickdraw_lab::LabSession;
use quickdraw_lab::HOST_IF;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Turns until `want` sees the event it waits for (bounded).
fn turn_until<L: Link>(
    a: &mut Appliance<L>,
    events: &ArrayQueue<Event>,
    mut want: impl FnMut(&Event) -> bool,
) {
    let deadline = monotonic_ns() + 10_000_000_000;
    while monotonic_ns() < deadline {
        a.turn(monotonic_ns());
        while let Some(e) = events.pop() {
            if want(&e) {
                return;
            }
        }
    }
    panic!("timed out");
}

fn fire_allocates_nothing<L: Link>(link: L, ca: &Path) {
    let commands = Arc::new(ArrayQueue::new(64));
    let events = Arc::new(ArrayQueue::new(1024));
    let mut a = Appliance::new(
        link,
        vec![target(ca, Duration::from_secs(30))],
        8,
        commands.clone(),
        events.clone(),
    );
    turn_until(
        &mut a,
        &events,
        |e| matches!(e, Event::Pool { warm, .. } if *warm == POOL),
    );

    let mut allocations = Vec::new();
    // The first fire warms the path up; the next ones are measured.
    for arm in 1..=4u64 {
        let spec = ArmSpec {
            arm,
            target: 0,
            request: order("1001", &format!("qd-alloc-{arm}")),
            conns: 2,
            trigger: Trigger::Manual,
        };
        commands
            .push(Command::Arm {
                req: spec.arm,
                spec: Box::new(spec),
            })
            .unwrap();
        turn_until(
            &mut a,
            &events,
            |e| matches!(e, Event::Ack { req, result: Ok(Accepted::Armed { .. }) } if *req == arm),
        );
        // Let in-flight warm responses settle so the measured turn is the fire's own.
        let settle = monotonic_ns() + 20_000_000;
        while monotonic_ns() < settle {
            a.turn(monotonic_ns());
        }
        commands
            .push(Command::Fire {
                req: 1000 + arm,
                arm,
            })
            .unwrap();
        let now = monotonic_ns();
        let ((), n) = measure(|| {
            a.turn(now);
        });
        if arm > 1 {
            allocations.push(n);
        }
        let mut done = 0;
        turn_until(&mut a, &events, |e| {
            if let Event::Done(r) = e {
                assert_eq!(r.outcome, Outcome::Status(200), "{r:?}");
                done += 1;
            }
            done == 2
        });
    }
    assert_eq!(
        allocations,
        vec![0, 0, 0],
        "allocations in the turn that fired"
    );
}

#[test]
fn the_fire_turn_allocates_nothing_on_both_backends() {
    let ((), n) = measure(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(8))));
    assert_eq!(n, 1, "the counting allocator counts");
    let lab = LabSession::start().expect("lab up");
    let ca = lab.status().unwrap().ca_cert.clone();
    fire_allocates_nothing(KernelLink::new(Some(HOST_IF.into()), 2 * POOL), &ca);
    let engine = Engine::start(&common::lab_engine(), monotonic_ns()).expect("datapath starts");
    fire_allocates_nothing(XdpLink::new(engine), &ca);
}

/// Send warming touches the send path of an armed connection and rehearses its fire
/// many times over while the order waits, and puts nothing on the wire.
#[test]
fn warming_sends_only_warm_frames_which_reach_no_stack() {
    let lab = LabSession::start().expect("lab up");
    let ca = lab.status().unwrap().ca_cert.clone();
    let engine = Engine::start(&common::lab_engine(), monotonic_ns()).expect("datapath starts");
    let commands = Arc::new(ArrayQueue::new(64));
    let events = Arc::new(ArrayQueue::new(1024));
    let targets = vec![target(&ca, Duration::from_secs(30))];
    let mut a = Appliance::new(
        XdpLink::new(engine),
        targets,
        8,
        commands.clone(),
        events.clone(),
    );
    turn_until(
        &mut a,
        &events,
        |e| matches!(e, Event::Pool { warm, .. } if *warm == POOL),
    );
    let spec = ArmSpec {
        arm: 1,
        target: 0,
        request: order("1001", "qd-warming"),
        conns: 1,
        trigger: Trigger::Manual,
    };
    commands
        .push(Command::Arm {
            req: spec.arm,
            spec: Box::new(spec),
        })
        .unwrap();
    turn_until(&mut a, &events, |e| {
        matches!(
            e,
            Event::Ack {
                req: 1,
                result: Ok(Accepted::Armed { .. })
            }
        )
    });
    // Let the pool's own first keep-warm exchanges finish.
    let settle = monotonic_ns() + 50_000_000;
    while monotonic_ns() < settle {
        a.turn(monotonic_ns());
    }
    let before = a.link().engine().device_stats();
    let peer_before = peer_counters();
    let log_before = access_log_lines(&lab);
    let (warmings, rehearsals) = (a.warmings, a.rehearsals);
    let captured = common::capture(0x88B5, 5);
    let wait = monotonic_ns() + 20_000_000; // 20 ms armed: ~400 warmings
    while monotonic_ns() < wait {
        a.turn(monotonic_ns());
    }
    let after = a.link().engine().device_stats();
    let peer_after = peer_counters();
    assert!(
        a.warmings - warmings > 100,
        "warming ran {} times",
        a.warmings - warmings
    );
    assert!(
        a.rehearsals - rehearsals > 100,
        "the fire was rehearsed {} times",
        a.rehearsals - rehearsals
    );
    // Our half sends nothing; the kernel's half sends warm frames and nothing else.
    let warm_frames = after.warm_frames - before.warm_frames;
    assert!(
        warm_frames > 100,
        "{warm_frames} warm frames in 20 ms armed"
    );
    assert_eq!(
        after.tx_frames - before.tx_frames,
        warm_frames,
        "warming put more than warm frames on the wire: {before:?} → {after:?}"
    );
    // They go out from beside the order's built frame (its page kept warm for the
    // kernel), each completed on its own: the order's frame is never held by them, and
    // no completion is refused.
    let beside = after.warm_frames_beside - before.warm_frames_beside;
    assert!(
        warm_frames - beside <= warm_frames / 10,
        "{beside} of {warm_frames} warm frames from beside the order's frame"
    );
    assert_eq!(
        after.tx_bad_completion, before.tx_bad_completion,
        "a completion was refused: {before:?} → {after:?}"
    );
    // They reach the wire (the peer's interface counts them) and not the peer's stack:
    // its TCP counted no segment, and the target's log holds no new line.
    assert!(
        peer_after.rx_packets - peer_before.rx_packets >= warm_frames,
        "the peer saw {} frames for {warm_frames} warm frames",
        peer_after.rx_packets - peer_before.rx_packets
    );
    assert_eq!(
        peer_after.tcp_in_segs, peer_before.tcp_in_segs,
        "warm frames reached the peer's TCP"
    );
    assert_eq!(
        access_log_lines(&lab),
        log_before,
        "warming reached the target"
    );
    // Each is our own MAC twice and the experimental EtherType, as long as the armed
    // order's frame (the kernel's path for that size is the one kept warm), and zeros
    // after its 22-byte header: no IP, nothing of the order.
    let mac = a.link().engine().mac();
    let frames = captured.frames();
    assert!(!frames.is_empty(), "no warm frame captured at the peer");
    for f in &frames {
        assert!(
            f.len() > 200 && f.len() <= 1514,
            "warm frame of {} bytes",
            f.len()
        );
        assert_eq!(
            (&f[0..6], &f[6..12], &f[12..14]),
            (&mac[..], &mac[..], &[0x88, 0xB5][..])
        );
        assert_eq!(&f[14..22], b"qdwarm\0\0");
        assert!(
            f[22..].iter().all(|&b| b == 0),
            "a warm frame carried data: {f:02x?}"
        );
    }
    // And the armed order still goes out intact.
    commands
        .push(Command::Fire {
            req: 1000 + 1,
            arm: 1,
        })
        .unwrap();
    turn_until(
        &mut a,
        &events,
        |e| matches!(e, Event::Done(r) if r.outcome == Outcome::Status(200)),
    );
    // Stage 3: the order left as the frame built before the trigger, not through smoltcp.
    assert_eq!(
        a.link().engine().device_stats().tx_prebuilt - after.tx_prebuilt,
        1,
        "the order did not go out as its built frame"
    );
    // Nothing armed: no more warm frames.
    let idle_from = a.link().engine().device_stats().warm_frames;
    let idle = monotonic_ns() + 20_000_000;
    while monotonic_ns() < idle {
        a.turn(monotonic_ns());
    }
    assert_eq!(
        a.link().engine().device_stats().warm_frames,
        idle_from,
        "warm frames went on with nothing armed"
    );
}

/// What the lab peer counted: frames received on `qd1`, TCP segments its stack took in.
struct PeerCounters {
    rx_packets: u64,
    tcp_in_segs: u64,
}

fn peer_counters() -> PeerCounters {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", quickdraw_lab::NETNS])
            .args(args)
            .output()
            .expect("ip netns exec");
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let rx_packets = run(&["cat", "/sys/class/net/qd1/statistics/rx_packets"])
        .trim()
        .parse()
        .expect("rx_packets");
    // /proc/net/snmp: a "Tcp:" header line, then a "Tcp:" values line.
    let snmp = run(&["cat", "/proc/net/snmp"]);
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (
        tcp.next().expect("Tcp header"),
        tcp.next().expect("Tcp values"),
    );
    let at = names
        .split_whitespace()
        .position(|n| n == "InSegs")
        .expect("InSegs");
    let tcp_in_segs = values.split_whitespace().nth(at).unwrap().parse().unwrap();
    PeerCounters {
        rx_packets,
        tcp_in_segs,
    }
}

fn access_log_lines(lab: &LabSession) -> usize {
    let log = &lab.status().unwrap().access_log;
    std::fs::read_to_string(log).map_or(0, |s| s.lines().count())
}
