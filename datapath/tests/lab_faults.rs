//! Faults of the path and of the server while the pool is warm (root; own lab each): each
//! time the pool comes back and an order is then answered and logged exactly once.
//!
//! A path that goes dark and comes back, ten times: while the lab peer
//! drops every TCP frame both ways (`bench lab loss 100`), the pool's connections die
//! (unanswered keep-warms retire them, their FINs go nowhere); once the path is back the
//! pool warms again every time, and an order then goes out and is answered. Closing
//! connections toward a vanished peer are bounded (a few seconds), so ten rounds of eight
//! dead connections never use up the sixteen sockets.
//!
//! The server's TLS changing under a warm pool, each time through an nginx reload (its
//! old workers close the pool's idle connections): session tickets refused (a new ticket
//! key), the certificate rotated (a new one from the same CA), and a certificate from a CA
//! we do not trust — which must fail verification, be reported, and send nothing. Whether
//! a connection resumed is read from nginx's access log (`$ssl_session_reused`).

mod common;

use common::fire::{backend, config, order, orders_logged, outcomes, target, wait_for, POOL};
use quickdraw_datapath::order::{ArmSpec, Command, Event, Outcome, Trigger};
use quickdraw_datapath::runner;
use quickdraw_lab::{loss, LabSession, Signer};
use std::path::Path;
use std::time::{Duration, Instant};

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

    /// Arms order `arm` (by hand, over one connection) with an idempotency key made of
    /// `tag`; returns the key. Gives the arm 50 ms to be pre-sealed.
    fn arm(&self, arm: u64, tag: &str) -> String {
        let key = format!("qd-test-{tag}-{}", std::process::id());
        let spec = ArmSpec {
            arm,
            target: 0,
            request: order("1001", &key),
            conns: 1,
            trigger: Trigger::Manual,
        };
        self.handle
            .commands
            .push(Command::Arm {
                req: arm,
                spec: Box::new(spec),
            })
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        key
    }

    /// Fires armed order `arm`; its one outcome.
    fn fire(&mut self, arm: u64) -> Outcome {
        let fire = Command::Fire {
            req: 1_000 + arm,
            arm,
        };
        self.handle.commands.push(fire).unwrap();
        outcomes(&self.handle.events, &mut self.seen, arm, 1)[0].outcome
    }

    /// One order over one connection: answered 200 and logged once; its log line.
    fn order_answered(mut self, access_log: &std::path::Path, tag: &str) -> String {
        let key = self.arm(1, tag);
        let outcome = self.fire(1);
        assert_eq!(outcome, Outcome::Status(200));
        let logged = orders_logged(access_log, &key, 1);
        assert_eq!(logged.len(), 1, "{logged:#?}");
        self.handle.stop();
        logged[0].clone()
    }

    /// The connection errors reported so far (certificate not trusted, handshake failed).
    fn conn_errors(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                Event::ConnError { message, .. } => Some(message.to_string()),
                _ => None,
            })
            .collect()
    }
}

/// The access log's length now: lines after it are the ones written from now on.
fn log_mark(access_log: &Path) -> usize {
    std::fs::read_to_string(access_log).map_or(0, |t| t.len())
}

/// The first request of each new connection logged after `mark` (`$connection_requests`
/// is 1), once there are `want` of them or 5 s have passed. The pool's keep-warm request
/// is the first thing each new connection sends.
fn first_requests(access_log: &Path, mark: usize, want: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines = first_requests_now(access_log, mark);
        if lines.len() >= want || Instant::now() >= deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn first_requests_now(access_log: &Path, mark: usize) -> Vec<String> {
    let text = std::fs::read_to_string(access_log).unwrap_or_default();
    text.get(mark..)
        .unwrap_or("")
        .lines()
        .filter(|l| {
            // ... $connection:$connection_requests $request_time $ssl_session_reused
            let fields: Vec<&str> = l.split_whitespace().rev().take(3).collect();
            fields.len() == 3 && fields[2].ends_with(":1")
        })
        .map(str::to_owned)
        .collect()
}

/// A mark taken once no new connection has logged its first request for 1 s (at most
/// 10 s): a straggler of the last generation (one that reconnected late, say) must not
/// log into the next window and be counted as one of its connections.
fn quiet_mark(access_log: &Path) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mark = log_mark(access_log);
        std::thread::sleep(Duration::from_secs(1));
        if first_requests_now(access_log, mark).is_empty() || Instant::now() >= deadline {
            return mark;
        }
    }
}

/// When nginx logged the line (`$msec`, its first field), in seconds.
fn logged_at(line: &str) -> Option<f64> {
    line.split_whitespace().next()?.parse().ok()
}

/// Whether nginx logged the line on a TLS session resumed from a ticket ("r", else ".").
fn resumed(line: &str) -> bool {
    line.ends_with(" r")
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

/// The matrix's long outage: an order fired into a 10 s blackhole gets a known outcome
/// (it left; what became of it is unknown: never "answered", never silently dropped, never
/// resent on a new connection), the pool comes back once the path does, and the next order
/// is answered and logged once. The blackholed order reaches nginx at most once.
#[test]
fn af_xdp_an_order_fired_into_a_ten_second_blackhole_has_a_known_outcome() {
    let lab = LabSession::start().expect("lab up");
    let status = lab.status().unwrap().clone();
    let _restore = Restore;
    let mut warm = Warm::start(&status.ca_cert);
    let key = warm.arm(7, "dark");
    let dark = Instant::now();
    loss::set(100).expect("blackhole");
    let outcome = warm.fire(7);
    assert!(
        matches!(outcome, Outcome::Unknown(_)),
        "a fire into a blackhole: {outcome:?}"
    );
    assert!(
        warm.pool(|w| w == 0, 10),
        "connections kept counting as warm through the blackhole"
    );
    std::thread::sleep(Duration::from_secs(10).saturating_sub(dark.elapsed()));
    loss::set(0).expect("restore");
    assert!(
        warm.pool(|w| w == POOL, 20),
        "the pool did not come back after 10 s dark: {:?}",
        warm.recent()
    );
    let logged = orders_logged(&status.access_log, &key, 0);
    assert!(logged.len() <= 1, "the blackholed order twice: {logged:#?}");
    warm.order_answered(&status.access_log, "after-dark");
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

#[test]
fn af_xdp_orders_go_out_once_when_session_tickets_are_rejected() {
    let lab = LabSession::start().expect("lab up");
    let status = lab.status().unwrap().clone();
    let log = status.access_log.clone();
    let mut warm = Warm::start(&status.ca_cert);
    // Each generation of connections logs its first keep-warm (200 ms after it connects)
    // before the next mark is taken (`quiet_mark`), so a window holds only the
    // connections made in it.

    // The control: nginx reloaded with the same ticket key closes the pool's connections,
    // and they come back resuming from the tickets of their first handshakes.
    let mark = quiet_mark(&log);
    lab.reload_nginx().expect("nginx reloads");
    assert!(warm.pool(|w| w < POOL, 10), "a reload closed no connection");
    assert!(
        warm.pool(|w| w == POOL, 20),
        "the pool did not come back after a reload: {:?}",
        warm.recent()
    );
    let first = first_requests(&log, mark, POOL);
    let reused = first.iter().filter(|l| resumed(l)).count();
    eprintln!(
        "same ticket key: {reused} of {} new connections resumed",
        first.len()
    );
    assert!(
        reused > 0,
        "no connection resumed from a ticket: {first:#?}"
    );

    // A new ticket key (nginx restarted, so no worker with the old key is left): every
    // ticket the pool holds is refused, and every connection comes back through a full
    // handshake.
    let mark = quiet_mark(&log);
    lab.rotate_ticket_key().expect("new ticket key");
    assert!(warm.pool(|w| w < POOL, 10), "a reload closed no connection");
    assert!(
        warm.pool(|w| w == POOL, 20),
        "the pool did not come back with its tickets refused: {:?}",
        warm.recent()
    );
    let first = first_requests(&log, mark, POOL);
    eprintln!(
        "new ticket key: {} new connections, {} resumed",
        first.len(),
        first.iter().filter(|l| resumed(l)).count()
    );
    assert!(first.len() >= POOL, "{first:#?}");
    // The reconnects right after the restart hold only old-key tickets: all full
    // handshakes. A connection that reconnects later (one closed mid-handshake by the
    // restart retries after its backoff) may resume from a ticket the new key issued to
    // the first of them, which is right; the pool shares its tickets.
    let full_at = first
        .iter()
        .filter(|l| !resumed(l))
        .filter_map(|l| logged_at(l))
        .reduce(f64::min)
        .unwrap_or_else(|| panic!("no full handshake after the key rotation: {first:#?}"));
    assert!(
        first
            .iter()
            .filter(|l| resumed(l))
            .all(|l| logged_at(l).is_some_and(|t| t >= full_at + 0.1)),
        "a session resumed from a ticket sealed with the old key: {first:#?}"
    );
    // A refused ticket is a full handshake, never an error. (Reconnects made while nginx
    // was stopping may have been closed mid-handshake: that is the restart, not the key.)
    let errors = warm.conn_errors();
    assert!(
        errors
            .iter()
            .all(|e| e.contains("closed the connection") && !e.contains("certificate")),
        "{errors:?}"
    );
    let line = warm.order_answered(&log, "tickets-refused");
    assert!(!resumed(&line), "{line}");
}

#[test]
fn af_xdp_pool_reconnects_verified_after_the_certificate_is_rotated() {
    let lab = LabSession::start().expect("lab up");
    let status = lab.status().unwrap().clone();
    let mut warm = Warm::start(&status.ca_cert);
    let before = std::fs::read(quickdraw_lab::LabPaths::standard().server_cert).unwrap();
    lab.rotate_server_cert(Signer::LabCa)
        .expect("a new certificate from the lab CA");
    assert_ne!(
        std::fs::read(quickdraw_lab::LabPaths::standard().server_cert).unwrap(),
        before
    );
    assert!(warm.pool(|w| w < POOL, 10), "a reload closed no connection");
    assert!(
        warm.pool(|w| w == POOL, 20),
        "the pool did not come back on the rotated certificate: {:?}",
        warm.recent()
    );
    assert!(warm.conn_errors().is_empty(), "{:?}", warm.conn_errors());
    warm.order_answered(&status.access_log, "cert-rotated");
}

#[test]
fn af_xdp_an_untrusted_certificate_fails_verification_and_nothing_is_sent() {
    let lab = LabSession::start().expect("lab up");
    let status = lab.status().unwrap().clone();
    let mut warm = Warm::start(&status.ca_cert);
    lab.rotate_server_cert(Signer::Stranger)
        .expect("a certificate from a CA nobody trusts");
    assert!(
        warm.pool(|w| w == 0, 10),
        "connections stayed warm on a certificate we do not trust: {:?}",
        warm.recent()
    );
    // Each reconnect fails verification, and says so.
    let limit = Duration::from_secs(10);
    let message = wait_for(&warm.handle.events, &mut warm.seen, limit, |e| match e {
        Event::ConnError { message, .. } => Some(message.to_string()),
        _ => None,
    })
    .expect("a connection error reported");
    eprintln!("reported: {message}");
    assert!(message.contains("certificate"), "{message}");

    // An order now: refused a connection, it is reported not sent, at once.
    let key = format!("qd-test-untrusted-{}", std::process::id());
    let spec = ArmSpec {
        arm: 1,
        target: 0,
        request: order("1001", &key),
        conns: 1,
        trigger: Trigger::Manual,
    };
    let commands = &warm.handle.commands;
    commands
        .push(Command::Arm {
            req: 1,
            spec: Box::new(spec),
        })
        .unwrap();
    commands.push(Command::Fire { req: 2, arm: 1 }).unwrap();
    let done = outcomes(&warm.handle.events, &mut warm.seen, 1, 1);
    assert_eq!(done[0].outcome, Outcome::NotSent, "{done:?}");
    let logged = orders_logged(&status.access_log, &key, 1);
    assert!(
        logged.is_empty(),
        "an order reached the server: {logged:#?}"
    );
    let errors = warm.conn_errors();
    eprintln!("{} connection errors counted", errors.len());
    assert!(
        errors.iter().all(|m| m.contains("certificate")),
        "{errors:?}"
    );

    // The lab CA's certificate back: the pool recovers and an order goes out once.
    lab.rotate_server_cert(Signer::LabCa)
        .expect("a certificate from the lab CA");
    assert!(
        warm.pool(|w| w == POOL, 20),
        "the pool did not come back on a trusted certificate: {:?}",
        warm.recent()
    );
    warm.order_answered(&status.access_log, "untrusted-then-trusted");
}
