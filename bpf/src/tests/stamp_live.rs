//! The stamping programs on a live veth pair between two network namespaces
//! this test makes (`qs<pid>c` with `qs<pid>a`, `qs<pid>s` with `qs<pid>b`),
//! attached from the root namespace with [`Stamper::attach_in_netns`], with
//! real kernel TCP across. A guard deletes both namespaces, and the veth with
//! them, however the test ends.
//!
//! One test function: the steps share the namespaces, and each step leaves
//! the interface as the next expects.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use rustix::time::{clock_gettime, ClockId};

use crate::netns::Netns;
use crate::{Direction, Error, StampFilter, Stamper, TcpFlags, WireStamp};

const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);

fn monotonic_ns() -> u64 {
    let t = clock_gettime(ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip(8) (iproute2)");
    assert!(out.status.success(), "ip {args:?}: {out:?}");
}

/// `tc -n <netns> <args>`'s standard output.
fn tc(netns: &str, args: &[&str]) -> String {
    let out = Command::new("tc")
        .args(["-n", netns])
        .args(args)
        .output()
        .expect("run tc(8) (iproute2)");
    assert!(out.status.success(), "tc {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The namespaces and the veth; dropping it deletes them.
struct Pair {
    client_ns: String,
    server_ns: String,
    /// The server's end, in `server_ns`.
    server_if: String,
}

impl Pair {
    fn new() -> Pair {
        let id = std::process::id();
        let pair = Pair {
            client_ns: format!("qs{id}c"),
            server_ns: format!("qs{id}s"),
            server_if: format!("qs{id}b"),
        };
        let client_if = format!("qs{id}a");
        let (c, s, b) = (&pair.client_ns, &pair.server_ns, &pair.server_if);
        ip(&["netns", "add", c]);
        ip(&["netns", "add", s]);
        #[rustfmt::skip]
        ip(&["-n", c, "link", "add", &client_if, "type", "veth", "peer", "name", b, "netns", s]);
        ip(&["-n", c, "addr", "add", "198.19.0.1/30", "dev", &client_if]);
        ip(&["-n", s, "addr", "add", "198.19.0.2/30", "dev", b]);
        ip(&["-n", c, "link", "set", &client_if, "up"]);
        ip(&["-n", s, "link", "set", b, "up"]);
        pair
    }

    /// The filters on the server end's ingress and egress hooks, as tc
    /// lists them (empty: none), and its qdiscs.
    fn tc_state(&self) -> (String, String, String) {
        let dev = ["dev", self.server_if.as_str()];
        let filters = |hook| {
            tc(
                &self.server_ns,
                &[&["filter", "show"], &dev[..], &[hook]].concat(),
            )
        };
        (
            filters("ingress"),
            filters("egress"),
            tc(&self.server_ns, &[&["qdisc", "show"], &dev[..]].concat()),
        )
    }

    /// One TCP exchange across the pair: the client sends `hello`, the
    /// server answers `world!`, both close. Returns the client's address.
    fn exchange(&self) -> SocketAddrV4 {
        let server = Netns::open(&self.server_ns).unwrap();
        let client = Netns::open(&self.client_ns).unwrap();
        // Sockets stay in the namespace they were made in, whatever thread
        // uses them later.
        let listener = server
            .run(|| TcpListener::bind((SERVER_IP, 0)))
            .unwrap()
            .unwrap();
        let target = listener.local_addr().unwrap();
        let serve = thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut hello = [0; 5];
            conn.read_exact(&mut hello).unwrap();
            assert_eq!(&hello, b"hello");
            conn.write_all(b"world!").unwrap();
            let mut rest = Vec::new();
            conn.read_to_end(&mut rest).unwrap();
        });
        let mut conn = client
            .run(|| TcpStream::connect_timeout(&target, Duration::from_secs(5)))
            .unwrap()
            .unwrap();
        conn.set_nodelay(true).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        conn.write_all(b"hello").unwrap();
        let mut world = [0; 6];
        conn.read_exact(&mut world).unwrap();
        assert_eq!(&world, b"world!");
        let local = match conn.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            other => panic!("{other}"),
        };
        assert_eq!(*local.ip(), CLIENT_IP);
        drop(conn);
        serve.join().unwrap();
        local
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.client_ns, &self.server_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Polls until `n` records of the connection from `client` have come, or
/// two seconds have passed.
fn stamps_of(stamper: &mut Stamper, client: SocketAddrV4, n: usize) -> Vec<WireStamp> {
    let mut stamps = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while stamps.len() < n && Instant::now() < deadline {
        stamper
            .poll(Duration::from_millis(20), |s| {
                if s.src == client || s.dst == client {
                    stamps.push(*s)
                }
            })
            .unwrap();
    }
    stamps.sort_by_key(|s| s.ns);
    stamps
}

fn netns_of_this_thread() -> std::path::PathBuf {
    fs::read_link("/proc/thread-self/ns/net").unwrap()
}

#[test]
fn stamps_live_tcp_in_another_namespace_and_detaches_cleanly() {
    let pair = Pair::new();
    let home = netns_of_this_thread();
    let nothing = (String::new(), String::new(), pair.tc_state().2);
    assert!(!nothing.2.contains("clsact"), "{nothing:?}");

    // Errors first: no such namespace, no such interface; neither attaches.
    let mut stamper = Stamper::load().unwrap();
    let err = stamper
        .attach_in_netns("qs-no-such-netns", &pair.server_if)
        .unwrap_err();
    assert!(matches!(err, Error::Netns { .. }), "{err:?}");
    assert!(matches!(
        stamper.attach_in_netns("../x", "lo"),
        Err(Error::Netns { .. })
    ));
    let err = stamper
        .attach_in_netns(&pair.server_ns, "qs-no-such0")
        .unwrap_err();
    assert!(matches!(err, Error::NoSuchInterface { .. }), "{err:?}");
    assert_eq!(stamper.attached(), None);
    assert_eq!(pair.tc_state(), nothing);

    // Attached: ours on both hooks, under a clsact qdisc we added.
    stamper
        .set_filter(StampFilter::network(Ipv4Addr::new(198, 19, 0, 0), 30))
        .unwrap();
    stamper
        .attach_in_netns(&pair.server_ns, &pair.server_if)
        .unwrap();
    assert_eq!(netns_of_this_thread(), home, "the caller stays home");
    assert!(stamper.attached().is_some());
    let err = stamper
        .attach_in_netns(&pair.server_ns, &pair.server_if)
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyAttached(_)), "{err:?}");
    let (ingress, egress, qdiscs) = pair.tc_state();
    assert!(ingress.contains("stamp_ingress"), "{ingress}");
    assert!(egress.contains("stamp_egress"), "{egress}");
    assert!(qdiscs.contains("clsact"), "{qdiscs}");

    let before = monotonic_ns();
    let client = pair.exchange();
    let after = monotonic_ns();
    let server = SocketAddrV4::new(SERVER_IP, 0);
    // SYN, SYN-ACK, ACK, hello, ACK, world!, then FINs and ACKs.
    let stamps = stamps_of(&mut stamper, client, 8);
    let ingress: Vec<&WireStamp> = stamps
        .iter()
        .filter(|s| s.direction == Direction::Ingress)
        .collect();
    let egress: Vec<&WireStamp> = stamps
        .iter()
        .filter(|s| s.direction == Direction::Egress)
        .collect();
    assert!(ingress.iter().all(|s| s.src == client), "{stamps:#?}");
    assert!(
        egress
            .iter()
            .all(|s| s.dst == client && s.src.ip() == server.ip()),
        "{stamps:#?}"
    );
    let syn = ingress[0];
    assert_eq!(syn.flags.0, TcpFlags::SYN, "{stamps:#?}");
    assert!(egress[0].flags.contains(TcpFlags::SYN | TcpFlags::ACK));
    assert_eq!(egress[0].ack, syn.seq.wrapping_add(1));
    let hello = ingress.iter().find(|s| s.has_data()).expect("hello");
    assert_eq!(hello.payload_len, 5);
    assert_eq!(hello.seq, syn.seq.wrapping_add(1));
    let world = egress.iter().find(|s| s.has_data()).expect("world!");
    assert_eq!(world.payload_len, 6);
    assert_eq!(world.ack, hello.seq.wrapping_add(5), "acks the hello");
    assert!(hello.ns < world.ns);
    assert!(ingress.iter().any(|s| s.flags.contains(TcpFlags::FIN)));
    assert!(egress.iter().any(|s| s.flags.contains(TcpFlags::FIN)));
    // The kernel's clock is ours: every frame of the exchange was stamped
    // between our two reads (the last ACK may follow the server's close).
    for s in stamps
        .iter()
        .filter(|s| s.has_data() || s.flags.contains(TcpFlags::SYN))
    {
        assert!((before..=after).contains(&s.ns), "{before} {s:?} {after}");
    }
    assert!(stamps.iter().all(|s| s.ns >= before));
    let c = stamper.counters().unwrap();
    assert_eq!(c.lost, 0);
    assert_eq!(c.seen, c.stamped + c.lost + c.skipped + c.malformed);

    // Dropped: our filters and the qdisc we added are gone, and a second
    // stamper attaches as the first did.
    drop(stamper);
    assert_eq!(pair.tc_state(), nothing);
    let mut second = Stamper::load().unwrap();
    second
        .attach_in_netns(&pair.server_ns, &pair.server_if)
        .unwrap();
    let client = pair.exchange();
    let stamps = stamps_of(&mut second, client, 8);
    assert!(stamps.iter().any(|s| s.payload_len == 5), "{stamps:#?}");
    assert!(stamps.iter().any(|s| s.payload_len == 6), "{stamps:#?}");
    second.detach().unwrap();
    assert_eq!(second.attached(), None);
    assert_eq!(pair.tc_state(), nothing);
    second.detach().unwrap(); // not attached: nothing happens

    // A clsact qdisc that was there before is left there; only our filters go.
    let dev = pair.server_if.as_str();
    tc(&pair.server_ns, &["qdisc", "add", "dev", dev, "clsact"]);
    let mut third = Stamper::load().unwrap();
    third.attach_in_netns(&pair.server_ns, dev).unwrap();
    assert!(pair.tc_state().0.contains("stamp_ingress"));
    drop(third);
    let (ingress, egress, qdiscs) = pair.tc_state();
    assert_eq!((ingress.as_str(), egress.as_str()), ("", ""));
    assert!(qdiscs.contains("clsact"), "{qdiscs}");

    // A stamper that died attached left its filters: the next one replaces
    // them instead of failing, and removes them when it goes.
    let mut dead = Stamper::load().unwrap();
    dead.attach_in_netns(&pair.server_ns, dev).unwrap();
    std::mem::forget(dead);
    let mut next = Stamper::load().unwrap();
    next.attach_in_netns(&pair.server_ns, dev).unwrap();
    let (ingress, _, _) = pair.tc_state();
    assert_eq!(ingress.matches("handle 0x7164").count(), 1, "{ingress}");
    drop(next);
    assert_eq!(pair.tc_state().0, "");
}

#[test]
fn attach_by_index_works_in_the_callers_namespace() {
    // A thread of its own in a new, empty namespace: its `lo` is ours alone,
    // and `tc` started from this thread runs in it too.
    thread::scope(|s| {
        s.spawn(|| {
            crate::sys::unshare_netns().expect("unshare(CLONE_NEWNET) (needs root)");
            let show = |hook| {
                let out = Command::new("tc")
                    .args(["filter", "show", "dev", "lo", hook])
                    .output()
                    .unwrap();
                String::from_utf8(out.stdout).unwrap()
            };
            let lo = crate::if_nametoindex("lo").unwrap();
            let mut stamper = Stamper::load().unwrap();
            stamper.attach(lo).unwrap();
            assert_eq!(stamper.attached(), Some(lo));
            assert!(show("ingress").contains("stamp_ingress"));
            assert!(show("egress").contains("stamp_egress"));
            drop(stamper);
            assert_eq!(
                (show("ingress"), show("egress")),
                (String::new(), String::new())
            );

            // No such interface: nothing attached, nothing left behind.
            let mut stamper = Stamper::load().unwrap();
            let err = stamper.attach(9999).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Tc {
                        op: "qdisc add",
                        ifindex: 9999,
                        ..
                    }
                ),
                "{err:?}"
            );
            assert_eq!(stamper.attached(), None);
            stamper.attach(lo).unwrap();
        })
        .join()
        .unwrap()
    });
}
