//! The RX/TX path allocates nothing after warm-up, and malformed frames arriving on the
//! socket are counted and dropped without a panic (root; own lab). One test per binary:
//! the counting allocator is global.

mod common;

use common::inject;

use common::alloc::{measure, Counting};
use common::{client_hello, drive_until, starts_with_server_hello};
use quickdraw_datapath::clock::monotonic_ns;
use quickdraw_datapath::{ConnId, Engine};
use quickdraw_lab::LabSession;
use quickdraw_lab::{HOST_IF, NETNS, PEER_IF, TARGET_IP, TARGET_PORT};
use smoltcp::socket::tcp::State;
use std::net::SocketAddrV4;
use std::time::Duration;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Opens a connection, sends a ClientHello, and reads until a ServerHello arrives. Only
/// the engine's turns are measured: connect and close update the BPF map, off the path.
fn hello_round(engine: &mut Engine, hello: &[u8], measure: bool) -> (ConnId, u64) {
    let target = SocketAddrV4::new(TARGET_IP, TARGET_PORT);
    let id = engine.connect(target).expect("connect");
    let mut reply = [0u8; 8192];
    let mut got = 0;
    let mut sent = false;
    let mut allocations = 0;
    let ok = drive_until_measured(engine, measure, &mut allocations, |e| {
        let sock = e.tcp(id);
        if !sent && sock.state() == State::Established {
            sent = sock.send_slice(hello) == Ok(hello.len());
        }
        if let Ok(n) = sock.recv_slice(&mut reply[got..]) {
            got += n;
        }
        starts_with_server_hello(&reply[..got])
    });
    assert!(ok, "no ServerHello (got {got} bytes)");
    (id, allocations)
}

fn drive_until_measured(
    engine: &mut Engine,
    measured: bool,
    allocations: &mut u64,
    mut done: impl FnMut(&mut Engine) -> bool,
) -> bool {
    let deadline = monotonic_ns() + 5_000_000_000;
    loop {
        let now = monotonic_ns();
        let (finished, n) = measure(|| {
            engine.poll(now);
            done(engine)
        });
        if measured {
            *allocations += n;
        }
        if finished {
            return true;
        }
        if now > deadline {
            return false;
        }
    }
}

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum = 0u32;
    for chunk in bytes.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet/IPv4/TCP frame from the target to our flow, broken in a given way. The
/// headers stay parseable, so the XDP program steers it to the socket.
fn broken_frame(dst: [u8; 6], src: [u8; 6], local_port: u16, how: &str) -> Vec<u8> {
    let payload = b"not a valid segment";
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    let tot = (20 + 20 + payload.len()) as u16;
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0];
    ip[2..4].copy_from_slice(&tot.to_be_bytes());
    ip.extend_from_slice(&TARGET_IP.octets());
    ip.extend_from_slice(&[198, 18, 0, 10]);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    if how == "ip-checksum" {
        ip[10] ^= 0xff;
    }
    f.extend_from_slice(&ip);
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&TARGET_PORT.to_be_bytes());
    tcp[2..4].copy_from_slice(&local_port.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x18; // PSH|ACK
    tcp[14..16].copy_from_slice(&1024u16.to_be_bytes());
    tcp[16..18].copy_from_slice(&0xbeefu16.to_be_bytes()); // wrong checksum
    f.extend_from_slice(&tcp);
    f.extend_from_slice(payload);
    if how == "truncated" {
        f.truncate(14 + 20 + 20 + 4); // IPv4 total length promises more than arrives
    }
    f
}

#[test]
fn rx_tx_path_allocates_nothing_after_warm_up_and_survives_malformed_frames() {
    let lab = LabSession::start().expect("lab up");
    let hello = client_hello(&lab.status().unwrap().ca_cert);
    let mut engine = Engine::start(&common::lab_engine(), monotonic_ns()).expect("datapath starts");

    // Warm-up: one whole connection, so ARP is resolved and every lazy path has run.
    let (warm, _) = hello_round(&mut engine, &hello, false);
    engine.close(warm);
    assert!(drive_until(&mut engine, Duration::from_secs(5), |e| e.is_released(warm)));

    // Measured: the handshake, the ClientHello out and the server's flight in.
    let (id, allocations) = hello_round(&mut engine, &hello, true);
    assert_eq!(
        allocations, 0,
        "the RX/TX path allocated {allocations} times after warm-up"
    );

    // Malformed frames on our flow: counted, dropped, and the connection carries on.
    let port = engine.tcp(id).local_endpoint().unwrap().port;
    let ours = quickdraw_lab::mac_address(None, HOST_IF).unwrap();
    let peer = quickdraw_lab::mac_address(Some(NETNS), PEER_IF).unwrap();
    let before = engine.device_stats();
    let frames: Vec<_> = ["tcp-checksum", "ip-checksum", "truncated"]
        .iter()
        .map(|how| broken_frame(ours, peer, port, how))
        .collect();
    inject(&frames);
    let counted = drive_until(&mut engine, Duration::from_secs(3), |e| {
        e.device_stats().rx_malformed - before.rx_malformed >= 2
    });
    let after = engine.device_stats();
    assert!(
        counted,
        "malformed frames not counted: before {before:?} after {after:?}"
    );
    assert_eq!(
        engine.tcp(id).state(),
        State::Established,
        "the connection survived"
    );
    engine.close(id);
    assert!(drive_until(&mut engine, Duration::from_secs(5), |e| e.is_released(id)));
    eprintln!("device after malformed frames: {after:?}");
}
