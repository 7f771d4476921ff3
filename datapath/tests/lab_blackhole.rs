//! A path that goes dark and comes back (root; own lab each). Ten times: while the lab peer
//! drops every TCP frame both ways (`bench lab loss 100`), the pool's connections die
//! (unanswered keep-warms retire them, their FINs go nowhere); once the path is back the
//! pool warms again every time, and an order then goes out and is answered. Closing
//! connections toward a vanished peer are bounded (a few seconds), so ten rounds of eight
//! dead connections never use up the sixteen sockets.

mod common;

use common::fire::{backend, config, order, orders_logged, outcomes, target, wait_for, POOL};
use quickdraw_datapath::order::{ArmSpec, Command, Event, Outcome, Trigger};
use quickdraw_datapath::runner;
use quickdraw_lab::{loss, LabSession};
use std::time::Duration;

/// Turns loss off again whatever happens to the test.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = loss::set(0);
    }
}

#[test]
fn af_xdp_pool_comes_back_after_ten_blackholes() {
    let lab = LabSession::start().expect("lab up");
    let status = lab.status().unwrap().clone();
    let _restore = Restore;
    // Keep-warms every 200 ms, answered within 500 ms or the connection is retired.
    let mut t = target(&status.ca_cert, Duration::from_millis(200));
    t.response_timeout_ns = 500_000_000;
    t.connect_timeout_ns = 1_000_000_000;
    let handle = runner::spawn(config(backend("af_xdp"), t)).expect("datapath starts");
    let mut seen = Vec::new();
    let pool = |seen: &mut Vec<Event>, want: &dyn Fn(usize) -> bool, limit: Duration| {
        wait_for(&handle.events, seen, limit, |e| match e {
            Event::Pool { warm, .. } if want(*warm) => Some(*warm),
            _ => None,
        })
    };
    assert!(
        pool(&mut seen, &|w| w == POOL, Duration::from_secs(10)).is_some(),
        "pool never warm: {seen:?}"
    );
    for round in 1..=10 {
        loss::set(100).expect("blackhole");
        assert!(
            pool(&mut seen, &|w| w == 0, Duration::from_secs(10)).is_some(),
            "round {round}: connections kept counting as warm through a blackhole"
        );
        loss::set(0).expect("restore");
        assert!(
            pool(&mut seen, &|w| w == POOL, Duration::from_secs(20)).is_some(),
            "round {round}: the pool did not come back: {:?}",
            &seen[seen.len().saturating_sub(20)..]
        );
    }
    let key = format!("qd-test-blackhole-{}", std::process::id());
    let spec = ArmSpec {
        arm: 1,
        target: 0,
        request: order("1001", &key),
        conns: 1,
        trigger: Trigger::Manual,
    };
    handle
        .commands
        .push(Command::Arm {
            req: 1,
            spec: Box::new(spec),
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    handle
        .commands
        .push(Command::Fire { req: 2, arm: 1 })
        .unwrap();
    let done = outcomes(&handle.events, &mut seen, 1, 1);
    assert_eq!(done[0].outcome, Outcome::Status(200), "{done:?}");
    assert_eq!(orders_logged(&status.access_log, &key, 1).len(), 1);
    handle.stop();
}

/// Runs `ip` with `args`; panics if it fails.
fn ip(args: &[&str]) {
    let status = std::process::Command::new("ip")
        .args(args)
        .status()
        .expect("ip");
    assert!(status.success(), "ip {args:?}");
}

/// Puts `qd0` back up whatever happens to the test.
struct LinkUp;

impl Drop for LinkUp {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "set", quickdraw_lab::HOST_IF, "up"])
            .status();
    }
}

#[test]
fn af_xdp_pool_comes_back_after_a_link_flap() {
    let lab = LabSession::start().expect("lab up");
    let status = lab.status().unwrap().clone();
    let mut t = target(&status.ca_cert, Duration::from_millis(200));
    t.response_timeout_ns = 500_000_000;
    t.connect_timeout_ns = 1_000_000_000;
    let handle = runner::spawn(config(backend("af_xdp"), t)).expect("datapath starts");
    let mut seen = Vec::new();
    let pool = |seen: &mut Vec<Event>, want: &dyn Fn(usize) -> bool, limit: Duration| {
        wait_for(&handle.events, seen, limit, |e| match e {
            Event::Pool { warm, .. } if want(*warm) => Some(*warm),
            _ => None,
        })
    };
    assert!(pool(&mut seen, &|w| w == POOL, Duration::from_secs(10)).is_some());
    {
        let _up = LinkUp;
        ip(&["link", "set", quickdraw_lab::HOST_IF, "down"]);
        assert!(
            pool(&mut seen, &|w| w < POOL, Duration::from_secs(10)).is_some(),
            "connections kept counting as warm with the link down"
        );
        ip(&["link", "set", quickdraw_lab::HOST_IF, "up"]);
    }
    assert!(
        pool(&mut seen, &|w| w == POOL, Duration::from_secs(20)).is_some(),
        "the pool did not come back after the link flap: {:?}",
        &seen[seen.len().saturating_sub(20)..]
    );
    let key = format!("qd-test-flap-{}", std::process::id());
    let spec = ArmSpec {
        arm: 1,
        target: 0,
        request: order("1001", &key),
        conns: 1,
        trigger: Trigger::Manual,
    };
    handle
        .commands
        .push(Command::Arm {
            req: 1,
            spec: Box::new(spec),
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    handle
        .commands
        .push(Command::Fire { req: 2, arm: 1 })
        .unwrap();
    let done = outcomes(&handle.events, &mut seen, 1, 1);
    assert_eq!(done[0].outcome, Outcome::Status(200), "{done:?}");
    assert_eq!(orders_logged(&status.access_log, &key, 1).len(), 1);
    handle.stop();
}
