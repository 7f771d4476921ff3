//! Event triggers in the lab (root; own lab), on both backends and both sources: the lab's
//! SSE server (rustls, lab CA, 198.18.0.2:8443/events) and its UDP sender. A matching
//! event fires each matching arm once, a non-matching one never fires, an event split
//! across TLS records and TCP segments fires, and nothing allocates from the event's
//! arrival to the kick. One binary for it: the counting allocator is global.

mod common;

use common::alloc::{measure, Counting};
use common::events::Run;
use common::fire::{orders_logged, POOL};
use quickdraw_datapath::clock::monotonic_ns;
use quickdraw_datapath::event::source::SourceSpec;
use quickdraw_datapath::event::sse_source::SseSpec;
use quickdraw_datapath::event::udp_source::UdpSpec;
use quickdraw_datapath::link::kernel::KernelLink;
use quickdraw_datapath::link::xdp::XdpLink;
use quickdraw_datapath::link::Link;
use quickdraw_datapath::order::Outcome;
use quickdraw_datapath::{tls, Engine};
use quickdraw_lab::events::{udp_feed, EventServer, EVENTS_PATH, EVENTS_PORT, UDP_PORT};
use quickdraw_lab::{LabPaths, LabSession};
use quickdraw_lab::{APPLIANCE_IP, HOST_IF, KERNEL_IP, SERVER_NAME, TARGET_IP};
use rustls_pki_types::ServerName;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

#[global_allocator]
static GLOBAL: Counting = Counting;

const SSE: usize = 0;
const UDP: usize = 1;

fn sse_spec(ca: &Path) -> SseSpec {
    let roots = tls::roots_from_pem_file(ca).expect("lab CA");
    SseSpec {
        name: "lab-sse".into(),
        address: SocketAddrV4::new(TARGET_IP, EVENTS_PORT),
        server_name: ServerName::try_from(SERVER_NAME).unwrap().to_owned(),
        tls: tls::client_config(roots, &[b"http/1.1"]).unwrap(),
        host: SERVER_NAME.into(),
        port: EVENTS_PORT,
        path: EVENTS_PATH.into(),
        connect_timeout_ns: 3_000_000_000,
        idle_timeout_ns: 0,
        max_event: 4096,
    }
}

fn run<L: Link>(link: L, ca: &Path, kernel_addr: Ipv4Addr) -> Run<L> {
    let udp = UdpSpec {
        name: "lab-udp".into(),
        addr: kernel_addr,
        port: UDP_PORT,
        max_event: 1024,
    };
    Run::start(
        link,
        ca,
        vec![SourceSpec::Sse(sse_spec(ca)), SourceSpec::Udp(udp)],
    )
}

const MATCH: &str = r#"sku == "1001" && stock > 0"#;
const YES: &[u8] = br#"{"sku":"1001","stock":3}"#;
const NOT: [&[u8]; 3] = [
    br#"{"sku":"1001","stock":0}"#,
    br#"{"sku":"1002","stock":9}"#,
    b"restock soon",
];

fn sse(data: &[u8]) -> Vec<u8> {
    let mut e = b"event: stock\ndata: ".to_vec();
    e.extend_from_slice(data);
    e.extend_from_slice(b"\n\n");
    e
}

/// Both sources on one backend; returns allocations measured per event fire.
fn events_fire<L: Link>(link: L, paths: &LabPaths, kernel_addr: Ipv4Addr, udp_to: SocketAddrV4) {
    let backend = link.backend();
    let server = EventServer::start(paths).expect("event server");
    let mut run = run(link, &paths.ca_cert, kernel_addr);
    assert!(server.wait_subscribers(1, Duration::from_secs(2)));
    let key = |what: &str| format!("qd-ev-{backend}-{what}");
    let mut allocations = Vec::new();

    for (round, source) in [(0u64, SSE), (1, UDP), (2, SSE), (3, UDP)] {
        let base = 10 * (round + 1);
        run.arm(base, source, MATCH, &key(&format!("{round}-a")));
        run.arm(
            base + 1,
            source,
            r#"sku == "1002" && stock > 100"#,
            &key(&format!("{round}-b")),
        );
        // Non-matching events, interleaved on both sources: nothing fires.
        for data in NOT {
            server.send_sse(&sse(data), &[], Duration::ZERO);
            server.send_udp(udp_to, data).unwrap();
        }
        run.settle(Duration::from_millis(20));
        assert_eq!(
            run.sent(base) + run.sent(base + 1),
            0,
            "{backend}: a false fire"
        );
        // The matching event, on the arm's source only.
        if source == SSE {
            server.send_sse(&sse(YES), &[], Duration::ZERO);
        } else {
            server.send_udp(udp_to, YES).unwrap();
        }
        allocations.push(run.fire_allocations(base));
        assert_eq!(run.outcome(base), Outcome::Status(200));
        run.check_receive_stamp(base, backend);
        // Again: an arm fires at most once; the other never.
        server.send_sse(&sse(YES), &[], Duration::ZERO);
        server.send_udp(udp_to, YES).unwrap();
        run.settle(Duration::from_millis(20));
        assert_eq!(
            (run.sent(base), run.sent(base + 1)),
            (1, 0),
            "{backend} round {round}"
        );
        run.disarm(base + 1);
    }
    assert_eq!(
        allocations,
        vec![0; 4],
        "{backend}: allocations, event frame to kick"
    );

    // An event split across TLS records and TCP segments (2 ms apart) fires when its last
    // piece arrives, and only then.
    let event = sse(YES);
    for (i, splits) in [
        vec![1],
        vec![10, 20],
        vec![event.len() - 2],
        (1..event.len()).step_by(7).collect(),
    ]
    .into_iter()
    .enumerate()
    {
        let arm = 100 + i as u64;
        run.arm(arm, SSE, MATCH, &key(&format!("split-{i}")));
        let pieces = {
            let mut p = splits.clone();
            p.push(event.len());
            p
        };
        let mut at = 0;
        for (n, &cut) in pieces.iter().enumerate() {
            server.send_sse(&event[at..cut], &[], Duration::ZERO);
            at = cut;
            run.settle(Duration::from_millis(2));
            let last = n + 1 == pieces.len();
            assert_eq!(
                run.sent(arm),
                usize::from(last),
                "{backend}: split {splits:?}, piece {n}"
            );
        }
        assert_eq!(run.outcome(arm), Outcome::Status(200));
    }
    // The same through send_sse's own record splitting.
    run.arm(200, SSE, MATCH, &key("split-records"));
    server.send_sse(&event, &[3, 17, 30], Duration::from_millis(1));
    run.settle(Duration::from_millis(20));
    assert_eq!(run.sent(200), 1);
    assert_eq!(run.outcome(200), Outcome::Status(200));

    // Exactly one order per fired arm in the access log, none for the others.
    for (key_part, want) in [
        ("0-a", 1),
        ("1-a", 1),
        ("0-b", 0),
        ("1-b", 0),
        ("split-3", 1),
    ] {
        let k = key(key_part);
        assert_eq!(
            orders_logged(&paths.access_log, &k, want).len(),
            want,
            "{k}"
        );
    }
}

#[test]
fn events_fire_on_both_backends_and_both_sources() {
    let ((), n) = measure(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(8))));
    assert_eq!(n, 1, "the counting allocator counts");
    let lab = LabSession::start().expect("lab up");
    let paths = LabPaths::standard();
    assert!(lab.status().is_some());
    events_fire(
        KernelLink::new(Some(HOST_IF.into()), 2 * POOL),
        &paths,
        KERNEL_IP,
        udp_feed(KERNEL_IP),
    );
    let engine = Engine::start(&common::lab_engine(), monotonic_ns()).expect("datapath starts");
    events_fire(
        XdpLink::new(engine),
        &paths,
        APPLIANCE_IP,
        udp_feed(APPLIANCE_IP),
    );
}
