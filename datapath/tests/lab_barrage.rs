//! A hostile LAN while an order is armed (root; own lab): from the lab peer's namespace,
//! bounded in count, garbage frames, broken IPv4 headers (IHL, total length, checksum,
//! fragments), broken TCP headers and options (data offset, zero-length, overrunning and
//! malformed options, checksum, odd flag sets), blind RSTs and SYNs, ARP poisoning and
//! strangers, then a SYN flood of 3,000 SYNs to our address from random ports. The pool
//! must lose no connection, the flood must take no socket slot and no steering entry (it
//! is not our flows: the XDP program passes it to the kernel, which does not own the
//! address), and the armed order then fires, answered 200 and logged once. The counters
//! are printed for the record.

mod common;

use common::fire::{order, orders_logged, target, POOL};
use common::{inject, turn_for};
use crossbeam_queue::ArrayQueue;
use quickdraw_datapath::appliance::Appliance;
use quickdraw_datapath::clock::monotonic_ns;
use quickdraw_datapath::device::neighbours::arp_frame;
use quickdraw_datapath::device::Pin;
use quickdraw_datapath::link::xdp::XdpLink;
use quickdraw_datapath::order::{ArmSpec, Command, Event, Outcome, Trigger};
use quickdraw_datapath::poll::Turn;
use quickdraw_datapath::Engine;
use quickdraw_lab::{self as lab, LabSession, APPLIANCE_IP, NETNS, PEER_IF, TARGET_IP};
use smoltcp::socket::tcp::State;
use smoltcp::wire::{ArpOperation, IpAddress};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

type App = Appliance<XdpLink>;

/// SYNs in the flood.
const FLOOD: usize = 3_000;
const EVIL: [u8; 6] = [0x02, 0x66, 0x66, 0x66, 0x66, 0x66];

/// A deterministic generator (xorshift64*): the barrage is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn checksum(words: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for bytes in words {
        for chunk in bytes.chunks(2) {
            sum += u32::from(u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Our end and the peer's of one established connection, seen from the peer.
#[derive(Debug, Clone, Copy)]
struct Flow {
    ours: [u8; 6],
    peer: [u8; 6],
    local_port: u16,
    /// The next sequence number we expect from the server (our RCV.NXT).
    their_seq: u32,
    /// The next sequence number we send (what the server acknowledges).
    our_seq: u32,
}

/// A TCP segment from `src` to `dst` with a correct checksum, `doff` words of header
/// (options padded into it), as the given bytes; then wrapped in IPv4 and Ethernet.
struct Segment<'a> {
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    seq: u32,
    ack: u32,
    flags: u8,
    options: &'a [u8],
    doff: Option<u8>,
    payload: &'a [u8],
}

impl Segment<'_> {
    fn tcp(&self) -> Vec<u8> {
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&self.src.1.to_be_bytes());
        t[2..4].copy_from_slice(&self.dst.1.to_be_bytes());
        t[4..8].copy_from_slice(&self.seq.to_be_bytes());
        t[8..12].copy_from_slice(&self.ack.to_be_bytes());
        let words = self
            .doff
            .unwrap_or((5 + self.options.len().div_ceil(4)) as u8);
        t[12] = words << 4;
        t[13] = self.flags;
        t[14..16].copy_from_slice(&1024u16.to_be_bytes());
        t.extend_from_slice(self.options);
        while !(t.len() - 20).is_multiple_of(4) {
            t.push(0);
        }
        t.extend_from_slice(self.payload);
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&self.src.0.octets());
        pseudo.extend_from_slice(&self.dst.0.octets());
        pseudo.extend_from_slice(&[0, 6]);
        pseudo.extend_from_slice(&(t.len() as u16).to_be_bytes());
        let c = checksum(&[&pseudo, &t]);
        t[16..18].copy_from_slice(&c.to_be_bytes());
        t
    }
}

/// An IPv4 packet (20-byte header, correct checksum) around `payload`, in an Ethernet frame.
fn ipv4_frame(eth: ([u8; 6], [u8; 6]), src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let mut ip = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0];
    ip[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(&eth.0);
    f.extend_from_slice(&eth.1);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(payload);
    f
}

/// Sets the IPv4 header checksum again after a header byte was changed.
fn refresh_ip_checksum(f: &mut [u8]) {
    let ihl = usize::from(f[14] & 0x0f) * 4;
    let end = (14 + ihl.max(20)).min(f.len());
    f[24..26].copy_from_slice(&[0, 0]);
    let c = checksum(&[&f[14..end]]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
}

/// A segment from the server to us on `flow`.
fn on_flow(
    flow: &Flow,
    seq: u32,
    flags: u8,
    options: &[u8],
    doff: Option<u8>,
    payload: &[u8],
) -> Vec<u8> {
    let s = Segment {
        src: (TARGET_IP, quickdraw_lab::TARGET_PORT),
        dst: (APPLIANCE_IP, flow.local_port),
        seq,
        ack: flow.our_seq,
        flags,
        options,
        doff,
        payload,
    };
    ipv4_frame((flow.ours, flow.peer), TARGET_IP, APPLIANCE_IP, &s.tcp())
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const URG: u8 = 0x20;

/// Broken IPv4 headers on a live flow: every other byte of the frame is right.
fn bad_ipv4(flow: &Flow) -> Vec<Vec<u8>> {
    let good = on_flow(flow, flow.their_seq, ACK, &[], None, &[]);
    let mut frames = Vec::new();
    let mut variant = |change: &dyn Fn(&mut Vec<u8>), fix_checksum: bool| {
        let mut f = good.clone();
        change(&mut f);
        if fix_checksum {
            refresh_ip_checksum(&mut f);
        }
        frames.push(f);
    };
    variant(&|f| f[14] = 0x44, true); // IHL 4: shorter than a header
    variant(&|f| f[14] = 0x4f, true); // IHL 15: longer than the packet
    variant(&|f| f[14] = 0x65, true); // version 6 in an IPv4 EtherType
    variant(&|f| f[16..18].copy_from_slice(&1500u16.to_be_bytes()), true); // total > frame
    variant(&|f| f[16..18].copy_from_slice(&10u16.to_be_bytes()), true); // total < header
    variant(&|f| f[24] ^= 0xff, false); // header checksum
    variant(&|f| f[20] = 0x20, true); // more fragments
    variant(
        &|f| f[20..22].copy_from_slice(&0x0064u16.to_be_bytes()),
        true,
    ); // offset 800
    variant(&|f| f[23] = 17, true); // says UDP, carries TCP
    variant(&|f| f.truncate(14 + 10), false); // cut inside the header
    frames
}

/// Broken TCP headers and options on a live flow (correct checksums unless said).
fn bad_tcp(flow: &Flow) -> Vec<Vec<u8>> {
    let seq = flow.their_seq;
    let junk = b"not a TLS record, never to reach the session";
    let mut frames = vec![
        on_flow(flow, seq, ACK, &[], Some(4), &[]), // data offset below 5
        on_flow(flow, seq, ACK, &[], Some(15), &[]), // data offset past the segment
        on_flow(flow, seq, ACK, &[2, 0, 0, 0], None, &[]), // zero-length option
        on_flow(flow, seq, ACK, &[8, 1, 0, 0], None, &[]), // length 1
        on_flow(flow, seq, ACK, &[5, 40, 0, 0], None, &[]), // runs past the header
        on_flow(flow, seq, ACK, &[2, 3, 5, 0], None, &[]), // MSS of the wrong length
        on_flow(flow, seq, ACK, &[3, 3, 200, 0], None, &[]), // window scale 200
        on_flow(flow, seq, ACK, &[254, 2, 1, 0], None, &[]), // unknown kind
        on_flow(flow, seq, ACK, &[1; 40], None, &[]), // 40 NOPs: the most options can be
        on_flow(
            flow,
            seq,
            ACK,
            &[5, 10, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1],
            None,
            &[],
        ),
        on_flow(flow, seq, 0, &[], None, &[]), // no flag at all
        on_flow(flow, seq.wrapping_add(100), SYN | FIN, &[], None, &[]),
        on_flow(flow, seq.wrapping_add(100), 0x3f, &[], None, &[]), // every flag
        on_flow(flow, seq.wrapping_add(100), FIN | ACK, &[], None, &[]), // FIN ahead of data
        on_flow(flow, seq, URG | ACK, &[], None, &[]),              // urgent, nothing urgent
    ];
    // In-window data with a wrong checksum: taken, it would corrupt the TLS stream.
    let mut f = on_flow(flow, seq, PSH | ACK, &[], None, junk);
    f[14 + 20 + 16] ^= 0x5a;
    frames.push(f);
    frames
}

/// Blind RSTs and SYNs on a live flow: in the window but not exact (challenged, RFC 5961),
/// and at random sequence numbers.
fn blind(flow: &Flow, rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut frames = vec![
        on_flow(flow, flow.their_seq.wrapping_add(100), RST, &[], None, &[]),
        on_flow(flow, flow.their_seq.wrapping_add(7), SYN, &[], None, &[]),
        on_flow(
            flow,
            flow.their_seq.wrapping_add(9),
            RST | ACK,
            &[],
            None,
            &[],
        ),
    ];
    for _ in 0..20 {
        let seq = rng.next() as u32;
        let flags = if rng.below(2) == 0 { RST } else { SYN };
        frames.push(on_flow(flow, seq, flags, &[], None, &[]));
    }
    frames
}

/// Random bytes behind our MAC: IPv4, ARP, IPv6 and unknown EtherTypes.
fn garbage(ours: [u8; 6], peer: [u8; 6], rng: &mut Rng) -> Vec<Vec<u8>> {
    (0..60)
        .map(|i| {
            let mut f = Vec::new();
            f.extend_from_slice(&ours);
            f.extend_from_slice(&peer);
            let ethertype: [u8; 2] =
                [[0x08, 0x00], [0x08, 0x06], [0x86, 0xdd], [0x12, 0x34]][i % 4];
            f.extend_from_slice(&ethertype);
            let len = rng.below(300) as usize;
            f.extend((0..len).map(|_| rng.next() as u8));
            f
        })
        .collect()
}

/// The target's address claimed with another MAC, to us, and strangers asking for us.
fn arp(ours: [u8; 6]) -> Vec<Vec<u8>> {
    let mut frames = vec![
        arp_frame(
            ArpOperation::Reply,
            ours,
            EVIL,
            TARGET_IP,
            ours,
            APPLIANCE_IP,
        )
        .to_vec(),
        arp_frame(
            ArpOperation::Request,
            ours,
            EVIL,
            TARGET_IP,
            [0; 6],
            APPLIANCE_IP,
        )
        .to_vec(),
    ];
    for i in 0..20u8 {
        let mac = [0x02, 0x77, 0, 0, 0, i];
        let ip = Ipv4Addr::new(198, 18, 0, 100 + i);
        frames.push(arp_frame(ArpOperation::Request, ours, mac, ip, [0; 6], APPLIANCE_IP).to_vec());
    }
    frames
}

/// SYNs to our address from random ports (never the server's 443, so never one of our
/// flows) and from random lab addresses, to our ports and others.
fn syn_flood(ours: [u8; 6], peer: [u8; 6], rng: &mut Rng) -> Vec<Vec<u8>> {
    (0..FLOOD)
        .map(|_| {
            let src = Ipv4Addr::new(198, 18, 0, 2 + rng.below(200) as u8);
            let s = Segment {
                src: (src, 1024 + rng.below(60_000) as u16),
                dst: (
                    APPLIANCE_IP,
                    [443, 80, 1 + rng.below(65_000) as u16][rng.below(3) as usize],
                ),
                seq: rng.next() as u32,
                ack: 0,
                flags: SYN,
                options: &[2, 4, 0x05, 0xb4],
                doff: None,
                payload: &[],
            };
            ipv4_frame((ours, peer), src, APPLIANCE_IP, &s.tcp())
        })
        .collect()
}

/// Every established connection of ours, by local port.
fn flows(a: &mut App, ours: [u8; 6], peer: [u8; 6]) -> Vec<Flow> {
    let engine = a.link_mut().engine_mut();
    let ids: Vec<_> = engine.open_conns().collect();
    ids.into_iter()
        .filter_map(|id| {
            let s = engine.tcp(id);
            if s.state() != State::Established {
                return None;
            }
            let d = s.delegated_send_prepare()?;
            let IpAddress::Ipv4(_) = d.local.addr;
            Some(Flow {
                ours,
                peer,
                local_port: d.local.port,
                their_seq: d.ack_number.0 as u32,
                our_seq: d.seq_number.0 as u32,
            })
        })
        .collect()
}

fn established_ports(a: &mut App) -> BTreeSet<u16> {
    let engine = a.link_mut().engine_mut();
    let ids: Vec<_> = engine.open_conns().collect();
    ids.into_iter()
        .filter_map(|id| {
            let s = engine.tcp(id);
            (s.state() == State::Established)
                .then(|| s.local_endpoint().map(|e| e.port))
                .flatten()
        })
        .collect()
}

#[test]
fn a_hostile_barrage_while_armed_costs_no_connection_and_the_order_goes_out_once() {
    let lab = LabSession::start().expect("lab up");
    let status = lab.status().unwrap().clone();
    // The target pinned, as the daemon pins every target in the appliance's subnet.
    let mut config = common::lab_engine();
    config.neighbours = vec![Pin {
        ip: TARGET_IP,
        mac: None,
    }];
    let engine = Engine::start(&config, monotonic_ns()).expect("datapath starts");
    let ours = engine.mac();
    let peer = lab::mac_address(Some(NETNS), PEER_IF).expect("peer MAC");
    let commands = Arc::new(ArrayQueue::new(64));
    let events = Arc::new(ArrayQueue::new(65_536));
    let mut a = Appliance::new(
        XdpLink::new(engine),
        vec![target(&status.ca_cert, Duration::from_secs(30))],
        8,
        commands.clone(),
        events.clone(),
    );
    common::turn_until_warm(&mut a, &events, POOL);

    // Armed, over one connection, before the barrage.
    let key = format!("qd-barrage-{}", std::process::id());
    let spec = ArmSpec {
        arm: 1,
        target: 0,
        request: order("1001", &key),
        conns: 1,
        trigger: Trigger::Manual,
    };
    commands
        .push(Command::Arm {
            req: 1,
            spec: Box::new(spec),
        })
        .unwrap();
    turn_for(&mut a, 20_000_000);

    let live = flows(&mut a, ours, peer);
    assert_eq!(live.len(), POOL, "every connection established and idle");
    let ports_before = established_ports(&mut a);
    let engine = a.link_mut().engine_mut();
    let (slots_before, steered_before) = (engine.open_conns().count(), engine.steered_flows());
    let (dev_before, steer_before) = (engine.device_stats(), engine.steer_counters().unwrap());

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut barrage = garbage(ours, peer, &mut rng);
    for flow in &live {
        barrage.extend(bad_ipv4(flow));
        barrage.extend(bad_tcp(flow));
        barrage.extend(blind(flow, &mut rng));
    }
    barrage.extend(arp(ours));
    let flood = syn_flood(ours, peer, &mut rng);
    eprintln!(
        "barrage: {} frames on our flows and around them, then a flood of {} SYNs",
        barrage.len(),
        flood.len()
    );

    // Sent from another thread while this one keeps turning the appliance.
    let sender = std::thread::spawn(move || {
        inject(&barrage);
        for chunk in flood.chunks(500) {
            inject(chunk);
        }
    });
    let deadline = monotonic_ns() + 60_000_000_000;
    while !sender.is_finished() && monotonic_ns() < deadline {
        a.turn(monotonic_ns());
    }
    assert!(sender.is_finished(), "the barrage did not finish in 60 s");
    sender.join().expect("frames injected");
    turn_for(&mut a, 300_000_000);

    let mut lost = Vec::new();
    while let Some(e) = events.pop() {
        if matches!(e, Event::Pool { warm, .. } if warm < POOL) || matches!(e, Event::Done(_)) {
            lost.push(e);
        }
    }
    assert!(
        lost.is_empty(),
        "the barrage cost a connection or an order: {lost:?}"
    );
    assert_eq!(
        established_ports(&mut a),
        ports_before,
        "the same connections live"
    );
    let engine = a.link_mut().engine_mut();
    let (slots_after, steered_after) = (engine.open_conns().count(), engine.steered_flows());
    let (dev, steer) = (engine.device_stats(), engine.steer_counters().unwrap());
    let xsk = engine.xsk_stats().unwrap();
    eprintln!("socket slots {slots_before} -> {slots_after}; steered flows {steered_before} -> {steered_after}");
    eprintln!("steering before {steer_before:?}");
    eprintln!("steering after  {steer:?}");
    eprintln!("device before {dev_before:?}");
    eprintln!("device after  {dev:?}");
    eprintln!("xsk {xsk:?}");
    assert_eq!((slots_after, steered_after), (slots_before, steered_before));
    assert_eq!(steered_after, POOL, "one steering entry per connection");
    assert!(
        steer.passed - steer_before.passed >= FLOOD as u64,
        "the flood went to the kernel: {steer_before:?} {steer:?}"
    );
    assert!(dev.rx_malformed > dev_before.rx_malformed, "{dev:?}");
    assert!(
        dev.neighbours.pin_conflicts > dev_before.neighbours.pin_conflicts,
        "{dev:?}"
    );
    assert!(
        dev.neighbours.strangers > dev_before.neighbours.strangers,
        "{dev:?}"
    );

    // The armed order fires on the warm pool: answered, logged once.
    commands.push(Command::Fire { req: 2, arm: 1 }).unwrap();
    let deadline = monotonic_ns() + 5_000_000_000;
    let mut done = None;
    while done.is_none() && monotonic_ns() < deadline {
        a.turn(monotonic_ns());
        while let Some(e) = events.pop() {
            if let Event::Done(r) = e {
                done = Some(r);
            }
        }
    }
    let done = done.expect("the fire's outcome");
    assert_eq!(done.outcome, Outcome::Status(200), "{done:?}");
    let logged = orders_logged(&status.access_log, &key, 1);
    std::thread::sleep(Duration::from_millis(200));
    let logged_later = orders_logged(&status.access_log, &key, 1);
    assert_eq!(
        (logged.len(), logged_later.len()),
        (1, 1),
        "{logged_later:#?}"
    );
}
