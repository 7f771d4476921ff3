//! TCP over AF_XDP to the lab's nginx, kernel bypassed (root; each test brings its own
//! lab up and down, serialized by the lab lock).

mod common;

use common::{client_hello, drive_until, starts_with_server_hello, xdp_attached};
use quickdraw_datapath::clock::monotonic_ns;
use quickdraw_datapath::warming::Pass;
use quickdraw_datapath::{ConnId, Engine};
use quickdraw_lab::LabSession;
use quickdraw_lab::{HOST_IF, TARGET_IP, TARGET_PORT};
use smoltcp::socket::tcp::State;
use std::net::SocketAddrV4;
use std::time::Duration;

const CONNS: usize = 3;

#[test]
fn handshake_exchange_and_clean_close_over_af_xdp() {
    let lab = LabSession::start().expect("lab up");
    let ca = lab.status().unwrap().ca_cert.clone();
    let hello = client_hello(&ca);
    let target = SocketAddrV4::new(TARGET_IP, TARGET_PORT);

    let mut engine = Engine::start(&common::lab_engine(), monotonic_ns()).expect("datapath starts");
    let before = engine.steer_counters().unwrap();
    let ids: Vec<_> = (0..CONNS)
        .map(|_| engine.connect(target).expect("connect"))
        .collect();

    let established = drive_until(&mut engine, Duration::from_secs(5), |e| {
        ids.iter()
            .all(|&id| e.tcp(id).state() == State::Established)
    });
    assert!(
        established,
        "TCP handshakes did not complete: {:?}",
        engine.device_stats()
    );

    for &id in &ids {
        assert_eq!(engine.tcp(id).send_slice(&hello).unwrap(), hello.len());
    }
    let mut replies = vec![Vec::new(); CONNS];
    let answered = drive_until(&mut engine, Duration::from_secs(5), |e| {
        for (i, &id) in ids.iter().enumerate() {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = e.tcp(id).recv_slice(&mut buf) {
                replies[i].extend_from_slice(&buf[..n]);
            }
        }
        replies.iter().all(|r| starts_with_server_hello(r))
    });
    assert!(
        answered,
        "no ServerHello on every connection: {:?}",
        replies.iter().map(|r| r.len()).collect::<Vec<_>>()
    );

    for &id in &ids {
        engine.close(id);
    }
    let closed = drive_until(&mut engine, Duration::from_secs(5), |e| {
        ids.iter().all(|&id| e.is_released(id))
    });
    assert!(closed, "connections did not close cleanly");

    let after = engine.steer_counters().unwrap();
    let stats = engine.device_stats();
    let steered = after.steered - before.steered;
    // Per connection at least: SYN-ACK, the ACK/data of the ServerHello flight, FIN.
    assert!(steered >= 3 * CONNS as u64, "steered only {steered} frames");
    assert_eq!(stats.rx_malformed, 0, "{stats:?}");
    assert!(
        stats.rx_delivered >= steered,
        "every steered frame reached smoltcp: {stats:?} vs {steered}"
    );
    assert!(stats.tx_frames >= 4 * CONNS as u64, "{stats:?}");
    eprintln!(
        "bind mode {:?}; steer {after:?}; device {stats:?}",
        engine.bind_mode()
    );
}

#[test]
fn kernel_path_keeps_working_and_nothing_is_left_attached() {
    let lab = LabSession::start().expect("lab up");
    let probe = lab.probe();
    {
        let mut engine =
            Engine::start(&common::lab_engine(), monotonic_ns()).expect("datapath starts");
        assert!(
            xdp_attached(HOST_IF),
            "the XDP program is attached while the datapath runs"
        );
        let before = engine.steer_counters().unwrap();
        // The kernel's own TLS client runs on another thread while the datapath turns.
        let kernel =
            std::thread::spawn(move || (0..5).map(|_| probe.healthz()).collect::<Vec<_>>());
        drive_until(&mut engine, Duration::from_secs(10), |_| {
            kernel.is_finished()
        });
        for report in kernel.join().unwrap() {
            assert_eq!(
                report
                    .expect("kernel-path TLS works while the appliance runs")
                    .status,
                204
            );
        }
        let after = engine.steer_counters().unwrap();
        assert!(
            after.passed - before.passed >= 5 * 5,
            "the kernel path's frames were seen and passed: {after:?}"
        );
        assert_eq!(after.steered, before.steered, "none of them was steered");
    }
    assert!(
        !xdp_attached(HOST_IF),
        "dropping the datapath detached the XDP program"
    );
    assert_eq!(
        lab.probe()
            .healthz()
            .expect("kernel path after exit")
            .status,
        204
    );
}

/// A frame built ahead fires on the check made when it was last refreshed while its
/// socket has not changed since (smoltcp is not asked again at the fire), and on a new
/// check once it has; either way the octets are the socket's and the server takes them.
/// Rehearsals of each fire (send warming's) say it would send, and send nothing.
#[test]
fn a_built_frame_fires_on_its_last_check_while_its_socket_is_unchanged() {
    let lab = LabSession::start().expect("lab up");
    let ca = lab.status().unwrap().ca_cert.clone();
    let hello = client_hello(&ca);
    let target = SocketAddrV4::new(TARGET_IP, TARGET_PORT);
    let mut engine = Engine::start(&common::lab_engine(), monotonic_ns()).expect("datapath starts");
    let id = engine.connect(target).expect("connect");
    let established = drive_until(&mut engine, Duration::from_secs(5), |e| {
        e.tcp_ref(id).state() == State::Established
    });
    assert!(established, "no handshake: {:?}", engine.device_stats());

    // The ClientHello as the built frame; then idle turns, past an egress pass that only
    // time called for (every 100 µs), which makes the frame's check current.
    assert!(engine.prepare(id, 1, &hello, monotonic_ns()), "frame built");
    drive_until(&mut engine, Duration::from_millis(1), |_| false);
    let before = engine.device_stats();
    let now = monotonic_ns();
    rehearse(&mut engine, id, 1, &hello);
    assert!(
        engine.send_prepared(id, 1, &hello, now, Pass::Live),
        "the built frame fired"
    );
    engine.transmit(now, false);
    assert_eq!(engine.fires_unchanged, 1, "the fire asked smoltcp again");
    assert_eq!(engine.device_stats().tx_prebuilt - before.tx_prebuilt, 1);
    let mut reply = Vec::new();
    let answered = drive_until(&mut engine, Duration::from_secs(5), |e| {
        let mut buf = [0u8; 4096];
        let n = e.recv(id, &mut buf);
        reply.extend_from_slice(&buf[..n]);
        starts_with_server_hello(&reply)
    });
    assert!(answered, "no ServerHello for the built ClientHello");
    assert_eq!(
        engine.settle_refused, 0,
        "smoltcp refused the octets it was told of"
    );
    assert_eq!(
        engine.unacked(id),
        0,
        "smoltcp took the octets as sent, and they were acknowledged"
    );

    // A change to the socket after the last check: the fire checks again.
    let more = [0x17u8; 64];
    assert!(
        engine.prepare(id, 2, &more, monotonic_ns()),
        "second frame built"
    );
    drive_until(&mut engine, Duration::from_millis(1), |_| false);
    let _ = engine.tcp(id).state(); // handed out to change: its version moves
    rehearse(&mut engine, id, 2, &more);
    let now = monotonic_ns();
    assert!(
        engine.send_prepared(id, 2, &more, now, Pass::Live),
        "the built frame fired"
    );
    engine.transmit(now, false);
    assert_eq!(engine.fires_unchanged, 1, "a changed socket was not asked");
    assert_eq!(engine.settle_refused, 0);
}

/// Rehearses the fire of built frame `tag` many times: each says it would send it, and
/// nothing leaves (no frame pushed, nothing owed to smoltcp, no fire counted).
fn rehearse(engine: &mut Engine, id: ConnId, tag: u64, record: &[u8]) {
    let before = engine.device_stats();
    // `tcp_ref`: looking must not move the socket's version (the fire's check).
    let queued = |e: &Engine| e.tcp_ref(id).send_queue();
    let (unchanged, unacked) = (engine.fires_unchanged, queued(engine));
    for _ in 0..100 {
        assert!(
            engine.send_prepared(id, tag, record, monotonic_ns(), Pass::Rehearsal),
            "the rehearsal says the built frame would not fire"
        );
    }
    let after = engine.device_stats();
    assert_eq!(
        (after.tx_frames, after.tx_prebuilt),
        (before.tx_frames, before.tx_prebuilt),
        "a rehearsal sent"
    );
    assert_eq!(
        (engine.fires_unchanged, queued(engine)),
        (unchanged, unacked),
        "a rehearsal left a fire behind"
    );
}
