//! The stamping programs on hand-built frames, through the kernel's test-run
//! facility: which frames give a record, what the record says, and that
//! every frame goes on unchanged.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use libbpf_rs::ProgramInput;
use rustix::time::{clock_gettime, ClockId};

use super::frame::*;
use crate::{
    Direction, Error, StampCounters, StampFilter, Stamper, TcpFlags, WireStamp, TC_ACT_UNSPEC,
};

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const CLIENT_PORT: u16 = 40000;
const SERVER_PORT: u16 = 443;
const PORTS: (u16, u16) = (CLIENT_PORT, SERVER_PORT);

const ACK_PSH: u8 = TcpFlags::ACK | TcpFlags::PSH;

fn monotonic_ns() -> u64 {
    let t = clock_gettime(ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// A client-to-server data segment with `payload`.
fn request(payload: &[u8]) -> Vec<u8> {
    Ipv4::new(CLIENT, SERVER, IPPROTO_TCP)
        .frame(&tcp_segment(PORTS, 1000, 5000, ACK_PSH, 5, payload))
}

/// Runs `frame` through the `direction` program, expecting `TC_ACT_UNSPEC`.
fn run(stamper: &Stamper, direction: Direction, frame: &[u8]) {
    let action = stamper.test_run(direction, frame).expect("test run");
    assert_eq!(action, TC_ACT_UNSPEC, "frame {frame:02x?}");
}

/// Every record in the ring now.
fn drain(stamper: &mut Stamper) -> Vec<WireStamp> {
    let mut stamps = Vec::new();
    stamper
        .poll(Duration::ZERO, |s| stamps.push(*s))
        .expect("poll");
    stamps
}

fn counters(seen: u64, stamped: u64, lost: u64, skipped: u64, malformed: u64) -> StampCounters {
    StampCounters {
        seen,
        stamped,
        lost,
        skipped,
        malformed,
        undecodable: 0,
    }
}

#[test]
fn a_tcp_frame_gives_one_record_with_its_fields() {
    let mut stamper = Stamper::load().expect("load (needs root)");
    // IPv4 options (IHL 7) and TCP options (data offset 8): the payload
    // length must subtract both.
    let mut ip = Ipv4::new(CLIENT, SERVER, IPPROTO_TCP);
    ip.options = vec![1; 8];
    let payload = [0x17u8; 100];
    let segment = tcp_segment(PORTS, 0xdead_beef, 0x0102_0304, ACK_PSH, 8, &payload);
    let frame = ip.frame(&segment);
    assert_eq!(frame.len(), 14 + 28 + 32 + 100);

    let before = monotonic_ns();
    run(&stamper, Direction::Ingress, &frame);
    let after = monotonic_ns();
    let stamps = drain(&mut stamper);
    assert_eq!(stamps.len(), 1, "{stamps:?}");
    let stamp = stamps[0];
    assert!(
        (before..=after).contains(&stamp.ns),
        "{before} <= {} <= {after}: bpf_ktime_get_ns is CLOCK_MONOTONIC",
        stamp.ns
    );
    let expected = WireStamp {
        ns: stamp.ns,
        direction: Direction::Ingress,
        src: SocketAddrV4::new(CLIENT, CLIENT_PORT),
        dst: SocketAddrV4::new(SERVER, SERVER_PORT),
        seq: 0xdead_beef,
        ack: 0x0102_0304,
        flags: TcpFlags(ACK_PSH),
        payload_len: 100,
        // A test run comes in on the namespace's loopback device.
        ifindex: stamp.ifindex,
        frame_len: frame.len() as u32,
    };
    assert_eq!(stamp, expected);
    assert_eq!(stamper.counters().unwrap(), counters(1, 1, 0, 0, 0));
    assert_eq!(stamper.lost().unwrap(), 0);
    // Nothing more: one frame, one record.
    assert!(drain(&mut stamper).is_empty());
}

#[test]
fn the_egress_program_says_egress() {
    let mut stamper = Stamper::load().unwrap();
    let response = Ipv4::new(SERVER, CLIENT, IPPROTO_TCP).frame(&tcp_segment(
        (SERVER_PORT, CLIENT_PORT),
        5000,
        1010,
        ACK_PSH,
        5,
        b"HTTP/1.1 204 No Content\r\n\r\n",
    ));
    run(&stamper, Direction::Egress, &response);
    run(&stamper, Direction::Ingress, &request(b"GET /"));
    let stamps = drain(&mut stamper);
    let summary: Vec<_> = stamps
        .iter()
        .map(|s| (s.direction, s.src.port(), s.payload_len))
        .collect();
    assert_eq!(
        summary,
        [
            (Direction::Egress, SERVER_PORT, 27),
            (Direction::Ingress, CLIENT_PORT, 5)
        ]
    );
    assert!(stamps[0].ns <= stamps[1].ns);
}

#[test]
fn syn_fin_rst_and_bare_acks_are_stamped_with_their_flags() {
    let mut stamper = Stamper::load().unwrap();
    let ip = Ipv4::new(CLIENT, SERVER, IPPROTO_TCP);
    let flags = [
        TcpFlags::SYN,
        TcpFlags::ACK,
        TcpFlags::FIN | TcpFlags::ACK,
        TcpFlags::RST,
    ];
    for f in flags {
        // SYN with MSS/SACK/timestamp-sized options.
        let doff = if f == TcpFlags::SYN { 10 } else { 5 };
        run(
            &stamper,
            Direction::Ingress,
            &ip.frame(&tcp_segment(PORTS, 7, 0, f, doff, &[])),
        );
    }
    let stamps = drain(&mut stamper);
    let seen: Vec<(u8, u16)> = stamps.iter().map(|s| (s.flags.0, s.payload_len)).collect();
    assert_eq!(seen, flags.map(|f| (f, 0)));
}

#[test]
fn ethernet_padding_is_not_payload() {
    let mut stamper = Stamper::load().unwrap();
    let mut frame = Ipv4::new(CLIENT, SERVER, IPPROTO_TCP).frame(&tcp_segment(
        PORTS,
        1,
        1,
        TcpFlags::ACK,
        5,
        &[],
    ));
    frame.resize(60, 0); // minimum Ethernet frame without FCS
    run(&stamper, Direction::Ingress, &frame);
    // A 6-byte payload in a padded frame: 14 + 20 + 20 + 6 = 60.
    let mut small = request(b"abcdef");
    assert_eq!(small.len(), 60);
    small.resize(64, 0);
    run(&stamper, Direction::Ingress, &small);
    let lens: Vec<(u16, u32)> = drain(&mut stamper)
        .iter()
        .map(|s| (s.payload_len, s.frame_len))
        .collect();
    assert_eq!(lens, [(0, 60), (6, 64)]);
}

#[test]
fn non_tcp_ipv6_fragments_and_vlan_give_no_record() {
    let mut stamper = Stamper::load().unwrap();
    let segment = tcp_segment(PORTS, 1, 1, ACK_PSH, 5, b"data");
    let mut fragment = Ipv4::new(CLIENT, SERVER, IPPROTO_TCP);
    fragment.frag_off = 0x2000; // MF: a first fragment
    let mut later_fragment = fragment.clone();
    later_fragment.frag_off = 0x0010;
    let frames = [
        Ipv4::new(CLIENT, SERVER, IPPROTO_UDP).frame(&udp(CLIENT_PORT, SERVER_PORT, b"data")),
        ethernet(ETH_P_ARP, &arp(ARP_REQUEST, CLIENT, SERVER)),
        ethernet(ETH_P_ARP, &[]),
        ethernet(ETH_P_IPV6, &ipv6(IPPROTO_TCP, &segment)),
        vlan(
            ETH_P_8021Q,
            10,
            ETH_P_IP,
            &Ipv4::new(CLIENT, SERVER, IPPROTO_TCP).packet(&segment),
        ),
        fragment.frame(&segment),
        later_fragment.frame(&segment),
    ];
    for frame in &frames {
        run(&stamper, Direction::Ingress, frame);
        run(&stamper, Direction::Egress, frame);
    }
    assert!(drain(&mut stamper).is_empty());
    let n = 2 * frames.len() as u64;
    assert_eq!(stamper.counters().unwrap(), counters(n, 0, 0, n, 0));
}

#[test]
fn truncated_and_inconsistent_frames_give_no_record() {
    let mut stamper = Stamper::load().unwrap();
    let segment = tcp_segment(PORTS, 1, 1, ACK_PSH, 5, b"data");
    let full = Ipv4::new(CLIENT, SERVER, IPPROTO_TCP).frame(&segment);
    let mut with_options = Ipv4::new(CLIENT, SERVER, IPPROTO_TCP);
    with_options.options = vec![1; 12];
    let options_frame = with_options.frame(&segment);
    let with = |edit: fn(&mut Ipv4)| {
        let mut ip = Ipv4::new(CLIENT, SERVER, IPPROTO_TCP);
        edit(&mut ip);
        ip.frame(&segment)
    };
    // Shorter than Ethernet + IPv4 header: the kernel's test run refuses
    // them (EINVAL on 6.18) before the program runs; on a real interface the
    // program would count them as malformed.
    for len in [14, 14 + 10, 14 + 19] {
        let err = stamper
            .test_run(Direction::Ingress, &full[..len])
            .unwrap_err();
        assert!(matches!(err, Error::TestRun(_)), "{err:?}");
    }
    assert_eq!(stamper.counters().unwrap(), StampCounters::default());
    let frames = [
        full[..14 + 20].to_vec(),          // IPv4 header, no TCP
        options_frame[..14 + 24].to_vec(), // mid IPv4 options
        full[..14 + 20 + 19].to_vec(),     // one byte short of TCP
        full[..full.len() - 1].to_vec(),   // one byte of payload short
        with(|ip| ip.version = 6),
        with(|ip| ip.ihl = Some(4)),
        with(|ip| ip.tot_len = Some(19)), // shorter than its header
        with(|ip| ip.tot_len = Some(39)), // no room for a TCP header
        with(|ip| ip.ihl = Some(15)),     // header longer than the packet
        // TCP data offset below 5, and beyond the IP payload.
        Ipv4::new(CLIENT, SERVER, IPPROTO_TCP).frame(&tcp_segment(PORTS, 1, 1, 0, 4, &[])),
        {
            let mut frame = full.clone();
            frame[14 + 20 + 12] = 15 << 4;
            frame
        },
    ];
    for frame in &frames {
        run(&stamper, Direction::Ingress, frame);
    }
    assert!(drain(&mut stamper).is_empty());
    let n = frames.len() as u64;
    assert_eq!(stamper.counters().unwrap(), counters(n, 0, 0, 0, n));
}

#[test]
fn frames_come_out_unchanged() {
    let stamper = Stamper::load().unwrap();
    let frames = [
        request(b"GET /healthz HTTP/1.1\r\n\r\n"),
        request(b"")[..40].to_vec(),
        ethernet(ETH_P_IPV6, &ipv6(IPPROTO_UDP, &udp(1, 2, b"x"))),
    ];
    for direction in [Direction::Ingress, Direction::Egress] {
        for frame in &frames {
            let mut out = vec![0u8; frame.len() + 64];
            let program = stamper.program(direction).unwrap();
            let output = program
                .test_run(ProgramInput {
                    data_in: Some(frame),
                    data_out: Some(&mut out),
                    ..Default::default()
                })
                .unwrap();
            assert_eq!(output.return_value, TC_ACT_UNSPEC as u32);
            assert_eq!(output.data.as_deref(), Some(frame.as_slice()));
        }
    }
}

#[test]
fn the_filter_selects_network_port_and_data() {
    let mut stamper = Stamper::load().unwrap();
    let other = Ipv4Addr::new(192, 0, 2, 7);
    let frame = |src, dst, ports, payload: &[u8]| {
        Ipv4::new(src, dst, IPPROTO_TCP).frame(&tcp_segment(ports, 1, 1, ACK_PSH, 5, payload))
    };
    let frames = [
        frame(CLIENT, SERVER, PORTS, b"a"),           // 0: both in the lab
        frame(other, SERVER, PORTS, b"b"),            // 1: destination in
        frame(SERVER, other, (SERVER_PORT, 9), b"c"), // 2: source in
        frame(other, other, PORTS, b"d"),             // 3: neither
        frame(CLIENT, SERVER, (CLIENT_PORT, 80), b"e"), // 4: other port
        frame(CLIENT, SERVER, PORTS, b""),            // 5: no payload
    ];
    let mut run_with = |filter: StampFilter| -> Vec<Ipv4Addr> {
        stamper.set_filter(filter).unwrap();
        for f in &frames {
            run(&stamper, Direction::Ingress, f);
        }
        drain(&mut stamper).iter().map(|s| *s.src.ip()).collect()
    };
    // Default: everything TCP.
    assert_eq!(run_with(StampFilter::ANY).len(), 6);
    let lab = StampFilter::network(Ipv4Addr::new(198, 18, 0, 99), 24);
    assert_eq!(
        run_with(lab),
        [CLIENT, other, SERVER, CLIENT, CLIENT],
        "frame 3 is outside 198.18.0.0/24"
    );
    let https = StampFilter {
        port: Some(SERVER_PORT),
        ..lab
    };
    assert_eq!(run_with(https), [CLIENT, other, SERVER, CLIENT]);
    let data = StampFilter {
        data_only: true,
        ..https
    };
    assert_eq!(run_with(data), [CLIENT, other, SERVER]);
    let one_host = StampFilter::network(other, 32);
    assert_eq!(run_with(one_host), [other, SERVER, other]);

    let err = stamper
        .set_filter(StampFilter::network(SERVER, 33))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidPrefix(33)), "{err:?}");
    let c = stamper.counters().unwrap();
    assert_eq!(c.seen, 30);
    assert_eq!((c.stamped, c.skipped), (6 + 5 + 4 + 3 + 3, 30 - 21));
}

#[test]
fn a_full_ring_counts_lost_records_and_recovers_once_drained() {
    // One page: 4096 / (8-byte header + 40-byte record) = 85 records.
    let mut stamper = Stamper::load_with_ring(4096).unwrap();
    let frame = request(b"x");
    stamper
        .test_run_repeat(Direction::Ingress, &frame, 200)
        .unwrap();
    let c = stamper.counters().unwrap();
    assert_eq!((c.seen, c.stamped, c.lost), (200, 85, 115), "{c:?}");
    assert_eq!(stamper.lost().unwrap(), 115);
    assert_eq!(drain(&mut stamper).len(), 85);
    run(&stamper, Direction::Ingress, &frame);
    assert_eq!(drain(&mut stamper).len(), 1);
    assert_eq!(stamper.lost().unwrap(), 115);
}

#[test]
fn ring_sizes_must_be_powers_of_two_of_a_page_or_more() {
    for bytes in [0, 2048, 4095, 3 * 4096] {
        let err = Stamper::load_with_ring(bytes).unwrap_err();
        assert!(matches!(err, Error::RingSize(b) if b == bytes), "{err:?}");
    }
    Stamper::load_with_ring(8192).unwrap();
}

#[test]
fn poll_waits_for_at_most_its_timeout() {
    let mut stamper = Stamper::load().unwrap();
    let start = std::time::Instant::now();
    let n = stamper
        .poll(Duration::from_millis(50), |_| unreachable!())
        .unwrap();
    let waited = start.elapsed();
    assert_eq!(n, 0);
    assert!(
        waited >= Duration::from_millis(45) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    // A record already in the ring comes out without waiting.
    run(&stamper, Direction::Ingress, &request(b"y"));
    let start = std::time::Instant::now();
    assert_eq!(stamper.poll(Duration::from_secs(5), |_| {}).unwrap(), 1);
    assert!(start.elapsed() < Duration::from_secs(1));
}
