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

/// Send warming touches the send path of an armed connection many times over while the
/// order waits, and puts nothing on the wire.
#[test]
fn send_warming_sends_nothing() {
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
    let warmings = a.warmings;
    let wait = monotonic_ns() + 20_000_000; // 20 ms armed: ~400 warmings
    while monotonic_ns() < wait {
        a.turn(monotonic_ns());
    }
    let after = a.link().engine().device_stats();
    assert!(
        a.warmings - warmings > 100,
        "warming ran {} times",
        a.warmings - warmings
    );
    assert_eq!(
        after.tx_frames, before.tx_frames,
        "warming put frames on the wire: {before:?} → {after:?}"
    );
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
}
