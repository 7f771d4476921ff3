//! RFC 5961 on our TCP, from outside (root; own lab): a blind RST or SYN from the LAN,
//! sent from the peer's namespace with a sequence number inside the window but not the
//! exact next one, gets a challenge ACK and the connection lives; an order then goes out
//! on every connection. The exact RST a genuine peer would send still closes one.

mod common;

use common::{inject, turn_for};

use common::fire::{order, orders_logged, target, POOL};
use crossbeam_queue::ArrayQueue;
use quickdraw_datapath::appliance::Appliance;
use quickdraw_datapath::clock::monotonic_ns;
use quickdraw_datapath::device::frame;
use quickdraw_datapath::link::xdp::XdpLink;
use quickdraw_datapath::order::{ArmSpec, Command, Event, Outcome, Trigger};
use quickdraw_datapath::poll::Turn;
use quickdraw_datapath::{ConnId, Engine};
use quickdraw_lab::{self as lab, LabSession, NETNS, PEER_IF};
use smoltcp::socket::tcp::{DelegatedSend, State};
use smoltcp::wire::{IpAddress, TcpControl, TcpRepr, TcpSeqNumber};
use std::sync::Arc;
use std::time::Duration;

type App = Appliance<XdpLink>;

/// An established connection of ours and its TCP fields right now.
fn established(a: &mut App) -> (ConnId, DelegatedSend) {
    let engine = a.link_mut().engine_mut();
    let ids: Vec<ConnId> = engine.open_conns().collect();
    ids.into_iter()
        .find_map(|id| {
            let s = engine.tcp(id);
            (s.state() == State::Established)
                .then(|| s.delegated_send_prepare())
                .flatten()
                .map(|d| (id, d))
        })
        .expect("an established, idle connection")
}

/// Whether connection `id` is still the one `d` was read from, established (a closed
/// slot is reused by the pool's reconnect at once, on another port).
fn alive(a: &mut App, id: ConnId, d: &DelegatedSend) -> bool {
    let s = a.link_mut().engine_mut().tcp(id);
    s.state() == State::Established && s.local_endpoint() == Some(d.local)
}

/// A segment from the target to us (`d` seen from our side), as the peer would send it.
fn segment(d: &DelegatedSend, control: TcpControl, seq: TcpSeqNumber, our_mac: [u8; 6]) -> Vec<u8> {
    let peer_mac = lab::mac_address(Some(NETNS), PEER_IF).expect("peer MAC");
    let (IpAddress::Ipv4(ours), IpAddress::Ipv4(theirs)) = (d.local.addr, d.remote.addr);
    let tcp = TcpRepr {
        src_port: d.remote.port,
        dst_port: d.local.port,
        control,
        seq_number: seq,
        ack_number: (control == TcpControl::Syn).then_some(d.seq_number),
        window_len: 1000,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    };
    let mut buf = vec![0; frame::frame_len(&tcp)];
    frame::emit_tcp(&mut buf, (peer_mac, our_mac), (theirs, ours), 64, &tcp);
    buf
}

#[test]
fn blind_rst_and_syn_get_challenged_and_orders_still_go_out() {
    let lab = LabSession::start().expect("lab up");
    let status = lab.status().unwrap().clone();
    let engine = Engine::start(&common::lab_engine(), monotonic_ns()).expect("datapath starts");
    let our_mac = engine.mac();
    let commands = Arc::new(ArrayQueue::new(64));
    let events = Arc::new(ArrayQueue::new(1024));
    let mut a = Appliance::new(
        XdpLink::new(engine),
        vec![target(&status.ca_cert, Duration::from_secs(30))],
        8,
        commands.clone(),
        events.clone(),
    );
    common::turn_until_warm(&mut a, &events, POOL);

    // In the window, not RCV.NXT: a blind RST, then a blind SYN.
    let (id, d) = established(&mut a);
    inject(&[segment(&d, TcpControl::Rst, d.ack_number + 100, our_mac)]);
    turn_for(&mut a, 20_000_000);
    assert!(
        alive(&mut a, id, &d),
        "a blind in-window RST closed the connection"
    );
    inject(&[segment(&d, TcpControl::Syn, d.ack_number + 7, our_mac)]);
    turn_for(&mut a, 20_000_000);
    assert!(alive(&mut a, id, &d), "a blind SYN closed the connection");
    let mut dropped_warm = false;
    while let Some(e) = events.pop() {
        dropped_warm |= matches!(e, Event::Pool { warm, .. } if warm < POOL);
    }
    assert!(
        !dropped_warm,
        "the pool lost a connection to blind segments"
    );

    // An order over every connection: all answered, each logged once.
    let key = format!("qd-blind-{}", std::process::id());
    let spec = ArmSpec {
        arm: 1,
        target: 0,
        request: order("1001", &key),
        conns: POOL,
        trigger: Trigger::Manual,
    };
    commands
        .push(Command::Arm {
            req: 1,
            spec: Box::new(spec),
        })
        .unwrap();
    turn_for(&mut a, 20_000_000);
    commands.push(Command::Fire { req: 2, arm: 1 }).unwrap();
    let mut ok = 0;
    let deadline = monotonic_ns() + 5_000_000_000;
    while ok < POOL && monotonic_ns() < deadline {
        a.turn(monotonic_ns());
        while let Some(e) = events.pop() {
            if let Event::Done(r) = e {
                assert_eq!(r.outcome, Outcome::Status(200), "{r:?}");
                ok += 1;
            }
        }
    }
    assert_eq!(ok, POOL);
    assert_eq!(orders_logged(&status.access_log, &key, POOL).len(), POOL);

    // The exact RST (what the server's stack would send) is still obeyed.
    turn_for(&mut a, 20_000_000);
    let (id, d) = established(&mut a);
    inject(&[segment(&d, TcpControl::Rst, d.ack_number, our_mac)]);
    turn_for(&mut a, 20_000_000);
    assert!(!alive(&mut a, id, &d), "the exact RST was ignored");
}
