//! The loader's map and attach operations against the kernel.

use std::net::UdpSocket;
use std::os::fd::AsFd;
use std::process::Command;
use std::thread;

use libbpf_rs::{Program, Xdp, XdpFlags};

use crate::{if_nametoindex, sys, AttachMode, Error, Steer, Verdict};

/// An Ethernet frame the program passes (IPv6 ethertype, no payload).
const FRAME: [u8; 14] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];

/// The XDP program ids on `ifindex`: (generic, native).
fn xdp_prog_ids(steer: &Steer, ifindex: u32) -> (u32, u32) {
    let program = steer.program().unwrap();
    let opts = Xdp::new(program.as_fd())
        .query(ifindex as i32, XdpFlags::NONE)
        .unwrap();
    (opts.skb_prog_id, opts.drv_prog_id)
}

fn prog_id(steer: &Steer) -> u32 {
    Program::id_from_fd(steer.program().unwrap().as_fd()).unwrap()
}

/// Runs `f` on a thread of its own in a new, empty network namespace, whose
/// `lo` nobody else uses.
fn in_new_netns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    thread::scope(|s| {
        s.spawn(|| {
            sys::unshare_netns().expect("unshare(CLONE_NEWNET) (needs root)");
            f()
        })
        .join()
        .unwrap()
    })
}

#[test]
fn xsk_slot_takes_only_af_xdp_sockets() {
    let steer = Steer::load().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let err = steer.set_xsk(0, udp.as_fd()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Map {
                map: "xsks",
                op: "update",
                ..
            }
        ),
        "{err:?}"
    );
    let xsk = sys::xsk_socket().unwrap();
    steer.set_xsk(0, xsk.as_fd()).unwrap();
}

#[test]
fn xsk_queue_must_have_a_slot() {
    let steer = Steer::load().unwrap();
    let xsk = sys::xsk_socket().unwrap();
    steer.set_xsk(63, xsk.as_fd()).unwrap();
    let err = steer.set_xsk(64, xsk.as_fd()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::QueueOutOfRange {
                queue: 64,
                slots: 64
            }
        ),
        "{err:?}"
    );
    assert!(matches!(
        steer.clear_xsk(64),
        Err(Error::QueueOutOfRange { .. })
    ));
    steer.clear_xsk(63).unwrap();
    steer.clear_xsk(63).unwrap(); // already empty: fine
}

#[test]
fn closing_the_socket_empties_its_slot() {
    let steer = Steer::load().unwrap();
    let flow = crate::Flow {
        local: "198.18.0.2:40000".parse().unwrap(),
        remote: "198.18.0.1:443".parse().unwrap(),
    };
    steer.add_flow(flow).unwrap();
    let frame = super::frame::Ipv4::new(*flow.remote.ip(), *flow.local.ip(), 6)
        .frame(&super::frame::tcp(443, 40000, 5));
    let xsk = sys::xsk_socket().unwrap();
    steer.set_xsk(0, xsk.as_fd()).unwrap();
    assert_eq!(steer.test_run(&frame, 0).unwrap(), Verdict::Redirect);
    drop(xsk);
    assert_eq!(steer.test_run(&frame, 0).unwrap(), Verdict::Pass);
}

#[test]
fn interface_names_resolve() {
    in_new_netns(|| {
        assert_eq!(if_nametoindex("lo").unwrap(), 1);
        let err = if_nametoindex("qd-no-such0").unwrap_err();
        assert!(matches!(err, Error::NoSuchInterface { .. }), "{err:?}");
        assert!(if_nametoindex("l\0o").is_err());
    });
}

#[test]
fn attach_skb_through_a_link_and_detach() {
    in_new_netns(|| {
        let lo = if_nametoindex("lo").unwrap();
        let mut steer = Steer::load().unwrap();
        assert_eq!(xdp_prog_ids(&steer, lo), (0, 0));
        steer.attach(lo, AttachMode::Skb).unwrap();
        assert_eq!(steer.attached(), Some(lo));
        assert_eq!(xdp_prog_ids(&steer, lo), (prog_id(&steer), 0));
        let err = steer.attach(lo, AttachMode::Skb).unwrap_err();
        assert!(
            matches!(err, Error::AlreadyAttached(i) if i == lo),
            "{err:?}"
        );
        // Attached, a test run comes in on lo; lo has one rx queue.
        assert_eq!(steer.test_run(&FRAME, 0).unwrap(), Verdict::Pass);
        assert!(matches!(steer.test_run(&FRAME, 1), Err(Error::TestRun(_))));
        steer.detach();
        assert_eq!(steer.attached(), None);
        assert_eq!(xdp_prog_ids(&steer, lo), (0, 0));
        steer.detach(); // not attached: nothing happens
    });
}

#[test]
fn dropping_steer_detaches() {
    in_new_netns(|| {
        let lo = if_nametoindex("lo").unwrap();
        let mut steer = Steer::load().unwrap();
        steer.attach(lo, AttachMode::Skb).unwrap();
        let observer = Steer::load().unwrap();
        assert_eq!(xdp_prog_ids(&observer, lo).0, prog_id(&steer));
        drop(steer);
        assert_eq!(xdp_prog_ids(&observer, lo), (0, 0));
    });
}

#[test]
fn native_attach_fails_cleanly_without_driver_support() {
    in_new_netns(|| {
        let lo = if_nametoindex("lo").unwrap();
        let mut steer = Steer::load().unwrap();
        let err = steer.attach(lo, AttachMode::Native).unwrap_err();
        // lo has no driver-mode XDP: EOPNOTSUPP.
        assert!(
            matches!(&err, Error::Attach { mode: AttachMode::Native, source, .. }
                if source.raw_os_error() == Some(libc::EOPNOTSUPP)),
            "{err:?}"
        );
        assert_eq!(steer.attached(), None);
        // The failed attach left nothing behind; generic mode still works.
        steer.attach(lo, AttachMode::Skb).unwrap();
    });
}

/// Creates a veth pair with `queues` rx and tx queues in the calling
/// thread's network namespace (which must be a private one: the pair goes
/// away with it) and returns the first one's index.
fn veth(name: &str, queues: u32) -> u32 {
    let queues = queues.to_string();
    let status = Command::new("ip")
        .args([
            "link",
            "add",
            name,
            "numrxqueues",
            &queues,
            "numtxqueues",
            &queues,
        ])
        .args(["type", "veth", "peer", "name", &format!("{name}p")])
        .status()
        .expect("run ip(8) (iproute2)");
    assert!(status.success(), "ip link add {name}: {status}");
    if_nametoindex(name).unwrap()
}

#[test]
fn owned_frames_go_to_the_slot_of_their_rx_queue() {
    in_new_netns(|| {
        let ifindex = veth("qdq0", 4);
        let mut steer = Steer::load().unwrap();
        // veth has native XDP; attached, test runs come in on it.
        steer.attach(ifindex, AttachMode::Native).unwrap();
        assert_eq!(xdp_prog_ids(&steer, ifindex), (0, prog_id(&steer)));
        let flow = crate::Flow {
            local: "198.18.0.2:40000".parse().unwrap(),
            remote: "198.18.0.1:443".parse().unwrap(),
        };
        steer.add_flow(flow).unwrap();
        let frame = super::frame::Ipv4::new(*flow.remote.ip(), *flow.local.ip(), 6)
            .frame(&super::frame::tcp(443, 40000, 5));
        let xsk = sys::xsk_socket().unwrap();
        steer.set_xsk(2, xsk.as_fd()).unwrap();
        let verdicts: Vec<Verdict> = (0..4).map(|q| steer.test_run(&frame, q).unwrap()).collect();
        use Verdict::*;
        assert_eq!(verdicts, [Pass, Pass, Redirect, Pass]);
        let c = steer.counters().unwrap();
        assert_eq!((c.seen, c.steered, c.passed, c.malformed), (4, 1, 3, 0));
    });
}

#[test]
fn attach_to_a_missing_interface_fails() {
    let mut steer = Steer::load().unwrap();
    let err = steer.attach(u32::MAX >> 1, AttachMode::Skb).unwrap_err();
    assert!(matches!(err, Error::Attach { .. }), "{err:?}");
}
