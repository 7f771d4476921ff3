//! Wire timestamps on the lab's peer interface, for real: a [`Stamper`] attached to `qd1`
//! inside `qdlab` from this (root-namespace) process, kernel-path TLS requests from
//! 198.18.0.1, and the kernel's timestamps checked against our own `CLOCK_MONOTONIC` reads
//! and run through the matcher. Needs root (CI is root). Holds a `LabSession`, so it runs
//! alone against the lab and leaves none behind.

use std::io::{Read, Write};
use std::net::{SocketAddr, SocketAddrV4};
use std::process::Command;
use std::time::{Duration, Instant};

use quickdraw_bench::measure::{match_fires, Conn, Fire};
use quickdraw_bpf::{Direction, StampFilter, Stamper, TcpFlags, WireStamp};
use quickdraw_datapath::clock::monotonic_ns;
use quickdraw_lab::probe::{client_config, connect};
use quickdraw_lab::{
    LabPaths, HOST_IF, KERNEL_IP, NETNS, PEER_IF, PREFIX_LEN, SERVER_NAME, TARGET_IP,
};
use quickdraw_lab::{LabSession, Probe};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

/// `tc -n qdlab <args> dev qd1 [hook]`'s standard output.
fn tc(what: &str, hook: Option<&str>) -> String {
    let mut cmd = Command::new("tc");
    cmd.args(["-n", NETNS, what, "show", "dev", PEER_IF]);
    cmd.args(hook);
    let out = cmd.output().expect("run tc(8) (iproute2)");
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// A stamper on `qd1`, for the lab's addresses only.
fn attach() -> Stamper {
    let mut stamper = Stamper::load().expect("load the stamping programs (needs root)");
    stamper
        .set_filter(StampFilter::network(TARGET_IP, PREFIX_LEN))
        .unwrap();
    stamper.attach_in_netns(NETNS, PEER_IF).unwrap();
    stamper
}

/// The stamps of the connection from `client`, sorted by time: polls until both sides'
/// FINs are in, or two seconds have passed.
fn stamps_of(stamper: &mut Stamper, client: SocketAddrV4) -> Vec<WireStamp> {
    let mut stamps: Vec<WireStamp> = Vec::new();
    let fin = |stamps: &[WireStamp], d| {
        stamps
            .iter()
            .any(|s| s.direction == d && s.flags.contains(TcpFlags::FIN))
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while !(fin(&stamps, Direction::Ingress) && fin(&stamps, Direction::Egress))
        && Instant::now() < deadline
    {
        stamper
            .poll(Duration::from_millis(20), |s| {
                if s.src == client || s.dst == client {
                    stamps.push(*s);
                }
            })
            .unwrap();
    }
    stamps.sort_by_key(|s| s.ns);
    stamps
}

fn v4(addr: SocketAddr) -> SocketAddrV4 {
    match addr {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(a) => panic!("not IPv4: {a}"),
    }
}

/// One TLS 1.3 request over the kernel path, timed by us: returns the connection, the
/// trigger (taken after the handshake, just before the request is written), the request's
/// length on the wire, and a clock read after the response's first bytes came back.
fn timed_request() -> (Conn, u64, u32, u64) {
    let probe = Probe::lab();
    let config = client_config(&LabPaths::standard().ca_cert).unwrap();
    let tcp = connect(KERNEL_IP, Some(HOST_IF), probe.target, probe.timeout).unwrap();
    let conn = Conn {
        local: v4(tcp.local_addr().unwrap()),
        remote: probe.target,
    };
    let name = ServerName::try_from(SERVER_NAME).unwrap();
    let mut tls = StreamOwned::new(ClientConnection::new(config, name).unwrap(), tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: {SERVER_NAME}\r\nUser-Agent: quickdraw-lab-stamp-test\r\n\
         Connection: close\r\n\r\n"
    );
    // One TLS 1.3 record: 5-byte header, the text, its content type byte, a 16-byte tag.
    let wire_len = request.len() as u32 + 5 + 1 + 16;
    let trigger = monotonic_ns();
    tls.write_all(request.as_bytes()).unwrap();
    let mut head = [0u8; 12];
    tls.read_exact(&mut head).unwrap();
    let answered = monotonic_ns();
    assert_eq!(&head, b"HTTP/1.1 204");
    let mut rest = Vec::new();
    let _ = tls.read_to_end(&mut rest);
    (conn, trigger, wire_len, answered)
}

#[test]
fn stamps_kernel_path_tls_on_qd1_and_detaches_cleanly() {
    let _session = LabSession::start().expect("bench lab up");
    let clean_qdiscs = tc("qdisc", None);
    assert!(!clean_qdiscs.contains("clsact"), "{clean_qdiscs}");

    let mut stamper = attach();
    let ifindex = stamper.attached().expect("attached");
    assert!(tc("filter", Some("ingress")).contains("stamp_ingress"));
    assert!(tc("filter", Some("egress")).contains("stamp_egress"));

    // The probe's whole connection: handshake, request, response, close.
    let before = monotonic_ns();
    let report = Probe::lab().healthz().unwrap();
    let after = monotonic_ns();
    assert_eq!(report.status, 204);
    let client = v4(report.local);
    let stamps = stamps_of(&mut stamper, client);
    let ingress: Vec<&WireStamp> = stamps
        .iter()
        .filter(|s| s.direction == Direction::Ingress)
        .collect();
    let egress: Vec<&WireStamp> = stamps
        .iter()
        .filter(|s| s.direction == Direction::Egress)
        .collect();
    assert!(ingress.iter().all(|s| s.src == client), "{stamps:#?}");
    assert!(egress.iter().all(|s| s.dst == client), "{stamps:#?}");
    assert!(stamps.iter().all(|s| s.ifindex == ifindex));
    assert_eq!(ingress[0].flags.0, TcpFlags::SYN, "{stamps:#?}");
    assert!(egress[0].flags.contains(TcpFlags::SYN | TcpFlags::ACK));
    let client_data = ingress.iter().filter(|s| s.has_data()).count();
    let server_data = egress.iter().filter(|s| s.has_data()).count();
    // ClientHello, Finished, the request (and close_notify); ServerHello..Finished, tickets,
    // the response.
    assert!(client_data >= 3, "{stamps:#?}");
    assert!(server_data >= 2, "{stamps:#?}");
    // Everything the client sent, and the server's answers up to the response, crossed
    // qd1 between our two clock reads: the kernel stamps on our clock.
    for s in stamps
        .iter()
        .filter(|s| s.has_data() || s.flags.contains(TcpFlags::SYN))
    {
        if s.direction == Direction::Ingress || s.ns <= after {
            assert!((before..=after).contains(&s.ns), "{before} {s:?} {after}");
        }
    }
    assert!(stamps.iter().all(|s| s.ns >= before));

    // A request we time ourselves, through the matcher.
    let (conn, trigger, wire_len, answered) = timed_request();
    let stamps = stamps_of(&mut stamper, conn.local);
    let fire = Fire {
        conn,
        trigger_ns: trigger,
        request_len: Some(wire_len),
    };
    let report = match_fires(&[fire], &stamps);
    assert_eq!(report.summary.matched, 1, "{report:?}\n{stamps:#?}");
    let m = report.outcomes[0].unwrap();
    assert_eq!(
        u32::from(m.request_payload),
        wire_len,
        "one frame, one TLS record"
    );
    assert_eq!(m.request_end_ns, Some(m.request_ns));
    let response = m.response_ns.expect("the response left qd1");
    assert!(trigger <= m.request_ns && m.request_ns <= response && response <= answered);
    eprintln!(
        "kernel path: trigger->wire {} ns, trigger->response {} ns",
        m.trigger_to_wire_ns(),
        m.trigger_to_response_ns().unwrap()
    );

    let counters = stamper.counters().unwrap();
    assert_eq!(
        (counters.lost, counters.undecodable),
        (0, 0),
        "{counters:?}"
    );

    // Dropped: no filter of ours and no clsact qdisc left on qd1.
    drop(stamper);
    assert_eq!(tc("filter", Some("ingress")), "");
    assert_eq!(tc("filter", Some("egress")), "");
    assert_eq!(tc("qdisc", None), clean_qdiscs);

    // A second stamper attaches and stamps as the first did.
    let mut again = attach();
    let report = Probe::lab().healthz().unwrap();
    let stamps = stamps_of(&mut again, v4(report.local));
    assert!(stamps
        .iter()
        .any(|s| s.direction == Direction::Ingress && s.has_data()));
    assert!(stamps
        .iter()
        .any(|s| s.direction == Direction::Egress && s.has_data()));
    again.detach().unwrap();
    assert_eq!(tc("filter", Some("ingress")), "");
    assert_eq!(tc("qdisc", None), clean_qdiscs);
}
