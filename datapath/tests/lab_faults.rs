//! Faults of the path and of the server while the pool is warm (root; own lab each): each
//! time the pool comes back and an order is then answered and logged exactly once.
//!
//! A path that goes dark and comes back, ten times: while the lab peer
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

/// Puts `qd0` back up whatever happens to the test.
struct LinkUp;

impl Drop for LinkUp {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "set", quickdraw_lab::HOST_IF, "up"])
            .status();
    }
}

/// Runs `ip` with `args`; panics if it fails.
fn ip(args: &[&str]) {
    let status = std::process::Command::new("ip")
        .args(args)
        .status()
        .expect("ip");
    assert!(status.success(), "ip {args:?}");
}

/// An AF_XDP datapath on the lab target with short timers (keep-warms every 200 ms,
/// answered within 500 ms or the connection is retired), warm.
struct Warm {
    handle: runner::Handle,
    seen: Vec<Event>,
}

impl Warm {
    fn start(ca: &std::path::Path) -> Warm {
        let mut t = target(ca, Duration::from_millis(200));
        t.response_timeout_ns = 500_000_000;
        t.connect_timeout_ns = 1_000_000_000;
        let handle = runner::spawn(config(backend("af_xdp"), t)).expect("datapath starts");
        let mut warm = Warm {
            handle,
            seen: Vec::new(),
        };
        assert!(
            warm.pool(|w| w == POOL, 10),
            "pool never warm: {:?}",
            warm.seen
        );
        warm
    }

    /// Waits until a pool report satisfies `want`, at most `limit_s` seconds.
    fn pool(&mut self, want: impl Fn(usize) -> bool, limit_s: u64) -> bool {
        let limit = Duration::from_secs(limit_s);
        wait_for(&self.handle.events, &mut self.seen, limit, |e| match e {
            Event::Pool { warm, .. } if want(*warm) => Some(()),
            _ => None,
        })
        .is_some()
    }

    fn recent(&self) -> &[Event] {
        &self.seen[self.seen.len().saturating_sub(20)..]
    }

    /// One order over one connection: answered 200 and logged once.
    fn order_answered(mut self, access_log: &std::path::Path, tag: &str) {
        let key = format!("qd-test-{tag}-{}", std::process::id());
        let spec = ArmSpec {
            arm: 1,
            target: 0,
            request: order("1001", &key),
            conns: 1,
            trigger: Trigger::Manual,
        };
        let commands = &self.handle.commands;
        commands
            .push(Command::Arm {
                req: 1,
                spec: Box::new(spec),
            })
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        commands.push(Command::Fire { req: 2, arm: 1 }).unwrap();
        let done = outcomes(&self.handle.events, &mut self.seen, 1, 1);
        assert_eq!(done[0].outcome, Outcome::Status(200), "{done:?}");
        assert_eq!(orders_logged(access_log, &key, 1).len(), 1);
        self.handle.stop();
    }
}

#[test]
fn af_xdp_pool_comes_back_after_ten_blackholes() {
    let lab = LabSession::start().expect("lab up");
    let status = lab.status().unwrap().clone();
    let _restore = Restore;
    let mut warm = Warm::start(&status.ca_cert);
    for round in 1..=10 {
        loss::set(100).expect("blackhole");
        assert!(
            warm.pool(|w| w == 0, 10),
            "round {round}: connections kept counting as warm through a blackhole"
        );
        loss::set(0).expect("restore");
        assert!(
            warm.pool(|w| w == POOL, 20),
            "round {round}: the pool did not come back: {:?}",
            warm.recent()
        );
    }
    warm.order_answered(&status.access_log, "blackhole");
}

#[test]
fn af_xdp_pool_comes_back_after_a_link_flap() {
    let lab = LabSession::start().expect("lab up");
    let status = lab.status().unwrap().clone();
    let mut warm = Warm::start(&status.ca_cert);
    {
        let _up = LinkUp;
        ip(&["link", "set", quickdraw_lab::HOST_IF, "down"]);
        assert!(
            warm.pool(|w| w < POOL, 10),
            "connections kept counting as warm with the link down"
        );
        ip(&["link", "set", quickdraw_lab::HOST_IF, "up"]);
    }
    assert!(
        warm.pool(|w| w == POOL, 20),
        "the pool did not come back after the link flap: {:?}",
        warm.recent()
    );
    warm.order_answered(&status.access_log, "flap");
}

#[test]
fn af_xdp_pool_comes_back_after_the_server_restarts() {
    let lab = LabSession::start().expect("lab up");
    let status = lab.status().unwrap().clone();
    let mut warm = Warm::start(&status.ca_cert);
    lab.restart_nginx().expect("nginx restarts");
    assert!(
        warm.pool(|w| w < POOL, 10),
        "connections kept counting as warm across a server restart"
    );
    assert!(
        warm.pool(|w| w == POOL, 20),
        "the pool did not come back after the server restarted: {:?}",
        warm.recent()
    );
    warm.order_answered(&status.access_log, "nginx-restart");
}
