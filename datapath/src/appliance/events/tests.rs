//! Event triggers end to end on virtual time: an SSE stream from the simulated server
//! (real rustls, `GET /events` answered with a `text/event-stream` head; the test writes
//! the events as encrypted records), arms with predicates, fires on the order pool.

use super::super::{Appliance, TargetSpec};
use crate::event::predicate::Matcher;
use crate::event::source::SourceSpec;
use crate::event::sse_source::SseSpec;
use crate::http::{warm_request, Placeholders, RequestTemplate};
use crate::link::memory::{self, MemoryLink, Server};
use crate::order::{ArmId, ArmSpec, Command, Event, Reject, Stamps, Trigger};
use crate::poll::Turn;
use crate::tls::peer::{self, Pki, NAME};
use crossbeam_queue::ArrayQueue;
use rustls::pki_types::ServerName;
use std::sync::Arc;

const MS: u64 = 1_000_000;
const STEP: u64 = 100_000;

fn target(pki: &Pki) -> TargetSpec {
    TargetSpec {
        name: "venue".into(),
        address: "192.0.2.10:443".parse().unwrap(),
        server_name: ServerName::try_from(NAME).unwrap(),
        tls: pki.client_config(),
        connections: 3,
        warm_request: warm_request(NAME, 443, "/healthz").unwrap().into(),
        warm_interval_ns: 1_000 * MS,
        response_timeout_ns: 50 * MS,
        connect_timeout_ns: 100 * MS,
    }
}

fn sse(pki: &Pki) -> SseSpec {
    SseSpec {
        name: "feed".into(),
        address: "192.0.2.10:443".parse().unwrap(),
        server_name: ServerName::try_from(NAME).unwrap(),
        tls: pki.client_config(),
        host: NAME.into(),
        port: 443,
        path: "/events".into(),
        connect_timeout_ns: 100 * MS,
        idle_timeout_ns: 0,
        max_event: 4096,
    }
}

fn request(key: &str) -> Box<[u8]> {
    let template = RequestTemplate {
        method: "POST".into(),
        path: "/api/order".into(),
        headers: vec![],
        body: r#"{{"sku":"{sku}"}}"#.into(),
    };
    let p = Placeholders {
        sku: "1001",
        qty: 1,
        idempotency_key: key,
    };
    template.render(NAME, 443, &p).unwrap().into()
}

struct Rig {
    app: Appliance<MemoryLink>,
    server: Server,
    commands: Arc<ArrayQueue<Command>>,
    events: Arc<ArrayQueue<Event>>,
    now: u64,
    seen: Vec<Event>,
}

impl Rig {
    fn new() -> Rig {
        let pki = peer::pki();
        let (link, server) = memory::pair(pki.server_config(None));
        let commands = Arc::new(ArrayQueue::new(16));
        let events = Arc::new(ArrayQueue::new(256));
        let mut app = Appliance::new(
            link,
            vec![target(&pki)],
            8,
            commands.clone(),
            events.clone(),
        );
        assert_eq!(app.add_source(SourceSpec::Sse(sse(&pki)), 0), 0);
        let mut rig = Rig {
            app,
            server,
            commands,
            events,
            now: 0,
            seen: Vec::new(),
        };
        assert!(rig.run_until(100 * MS, |r| r.app.source_live(0) && r.warm() == 3));
        rig.run_for(2 * MS);
        rig
    }

    fn turn(&mut self) {
        self.now += STEP;
        self.app.turn(self.now);
        while let Some(e) = self.events.pop() {
            self.seen.push(e);
        }
    }

    fn run_for(&mut self, ns: u64) {
        let end = self.now + ns;
        while self.now < end {
            self.turn();
        }
    }

    fn run_until(&mut self, limit: u64, done: impl Fn(&Rig) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            self.turn();
            if done(self) {
                return true;
            }
        }
        false
    }

    fn warm(&self) -> usize {
        self.seen
            .iter()
            .rev()
            .find_map(|e| match e {
                Event::Pool { warm, .. } => Some(*warm),
                _ => None,
            })
            .unwrap_or(0)
    }

    fn arm(&mut self, arm: ArmId, predicate: &str) {
        let spec = ArmSpec {
            arm,
            target: 0,
            request: request(&format!("ev-{arm}")),
            conns: 1,
            trigger: Trigger::Event {
                source: 0,
                matcher: Arc::new(Matcher::compile(predicate).unwrap()),
            },
        };
        self.commands
            .push(Command::Arm {
                req: arm,
                spec: Box::new(spec),
            })
            .unwrap();
        self.turn();
        assert!(
            self.seen
                .iter()
                .any(|e| matches!(e, Event::Ack { req, result: Ok(_) } if *req == arm)),
            "arm {arm} refused: {:?}",
            self.seen
        );
    }

    /// The server-side serial of the (latest) event stream.
    fn stream(&self) -> usize {
        self.server
            .requests()
            .iter()
            .rev()
            .find(|r| r.path == "/events")
            .expect("subscribed")
            .serial
    }

    /// Writes `bytes` as one chunk of the stream, in one TLS record.
    fn emit(&self, bytes: &[u8]) {
        let mut chunk = format!("{:x}\r\n", bytes.len()).into_bytes();
        chunk.extend_from_slice(bytes);
        chunk.extend_from_slice(b"\r\n");
        self.server.inject_plaintext(self.stream(), &chunk);
    }

    fn sents(&self, arm: ArmId) -> Vec<Stamps> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                Event::Sent { arm: a, stamps, .. } if *a == arm => Some(*stamps),
                _ => None,
            })
            .collect()
    }

    fn orders(&self) -> Vec<String> {
        self.server
            .orders()
            .into_iter()
            .filter_map(|r| r.key)
            .collect()
    }
}

#[test]
fn the_source_subscribes_with_a_get_and_goes_live() {
    let rig = Rig::new();
    let subs: Vec<_> = rig
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/events")
        .collect();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].method, "GET");
    assert!(rig.seen.iter().any(|e| matches!(
        e,
        Event::Source {
            source: 0,
            live: true,
            ..
        }
    )));
}

#[test]
fn one_event_fires_every_arm_it_matches_once_in_its_turn() {
    let mut rig = Rig::new();
    rig.arm(1, r#"sku == "1001""#);
    rig.arm(2, r#"sku == "1001" && stock > 0"#);
    rig.arm(3, r#"sku == "1002""#);
    rig.arm(4, r#"bytes:"restock""#);
    rig.emit(b"event: stock\ndata: {\"sku\":\"1001\",\"stock\":3}\n\n");
    rig.turn();
    let fired_at = rig.now;
    let (s1, s2) = (rig.sents(1), rig.sents(2));
    assert_eq!((s1.len(), s2.len()), (1, 1), "{:?}", rig.seen);
    assert_eq!(
        s1[0].trigger_ns, fired_at,
        "the event's receive turn is the trigger"
    );
    assert_eq!(s2[0].trigger_ns, fired_at);
    assert!(rig.sents(3).is_empty() && rig.sents(4).is_empty());
    // The same event again fires nothing more: an arm fires at most once.
    rig.emit(b"data: {\"sku\":\"1001\",\"stock\":3}\n\n");
    rig.run_for(5 * MS);
    assert_eq!((rig.sents(1).len(), rig.sents(2).len()), (1, 1));
    let mut orders = rig.orders();
    orders.sort();
    assert_eq!(orders, vec!["ev-1", "ev-2"]);
    // Arm 4 still waits; a byte match fires it.
    rig.emit(b"data: restock soon\n\n");
    rig.run_for(MS);
    assert_eq!(rig.sents(4).len(), 1);
}

#[test]
fn warming_the_matchers_on_the_last_event_never_fires_a_later_arm() {
    let mut rig = Rig::new();
    rig.arm(1, r#"sku == "1001""#);
    rig.emit(b"data: {\"sku\":\"1001\"}\n\n");
    rig.run_for(2 * MS);
    assert_eq!(rig.sents(1).len(), 1);
    // Arm 2 would match the event just seen, which send warming now runs every
    // matcher on between events: an old event must never fire it.
    rig.arm(2, r#"sku == "1001""#);
    let warmings = rig.app.warmings;
    rig.run_for(10 * MS);
    assert!(rig.app.warmings > warmings, "the warming tick ran");
    assert!(rig.sents(2).is_empty(), "{:?}", rig.seen);
    assert_eq!(rig.orders(), vec!["ev-1"]);
    rig.emit(b"data: {\"sku\":\"1001\"}\n\n");
    rig.turn();
    assert_eq!(rig.sents(2).len(), 1);
}

#[test]
fn non_matching_events_never_fire() {
    let mut rig = Rig::new();
    rig.arm(1, r#"sku == "1001" && stock > 0"#);
    for body in [
        &b"data: {\"sku\":\"1001\",\"stock\":0}\n\n"[..],
        b"data: {\"sku\":\"1002\",\"stock\":5}\n\n",
        b"data: {\"sku\":1001,\"stock\":5}\n\n",
        b"data: {\"sku\":\"1001\",\"stock\":5\n\n", // not JSON
        b"data: {\"sku\":\"1001\",\n: comment, the event goes on\n",
        b"data: \"stock\":5}\n", // still no blank line
    ] {
        rig.emit(body);
        rig.run_for(MS);
    }
    assert!(rig.sents(1).is_empty(), "{:?}", rig.seen);
    assert!(rig.orders().is_empty());
    rig.emit(b"\n"); // the blank line completes {"sku":"1001",\n"stock":5}
    rig.turn();
    assert_eq!(rig.sents(1).len(), 1);
}

#[test]
fn an_event_split_anywhere_fires_in_the_turn_of_its_last_byte() {
    let mut rig = Rig::new();
    let event = b"data: {\"sku\":\"1001\",\"stock\":2}\r\n\r\n";
    for at in 1..event.len() {
        let arm = at as ArmId;
        rig.arm(arm, r#"sku == "1001" && stock >= 2"#);
        // Two TLS records, in two chunks, in two turns. The event ends at the CR of
        // its blank line (a CR alone ends a line): a split after it fires on the first.
        rig.emit(&event[..at]);
        rig.turn();
        if at == event.len() - 1 {
            assert_eq!(rig.sents(arm).len(), 1, "the CR completes it");
            assert_eq!(rig.sents(arm)[0].trigger_ns, rig.now);
            rig.emit(&event[at..]);
            rig.run_for(2 * MS);
            assert_eq!(rig.sents(arm).len(), 1, "the LF is not a second event");
            continue;
        }
        assert!(rig.sents(arm).is_empty(), "fired early, split at {at}");
        rig.emit(&event[at..]);
        rig.turn();
        let sent = rig.sents(arm);
        assert_eq!(sent.len(), 1, "split at {at}: {:?}", rig.seen);
        assert_eq!(sent[0].trigger_ns, rig.now);
        rig.run_for(2 * MS); // the order's answer frees its connection
    }
    assert_eq!(rig.orders().len(), event.len() - 1);
}

#[test]
fn a_split_chunk_inside_one_record_and_a_record_split_across_reads_fire_too() {
    let mut rig = Rig::new();
    rig.arm(1, r#"sku == "1001""#);
    // A chunk header in one record, its data across two more.
    let data = b"data: {\"sku\":\"1001\"}\n\n";
    let stream = rig.stream();
    rig.server
        .inject_plaintext(stream, format!("{:x}\r\n", data.len()).as_bytes());
    rig.server.inject_plaintext(stream, &data[..9]);
    rig.turn();
    rig.server.inject_plaintext(stream, &data[9..]);
    rig.server.inject_plaintext(stream, b"\r\n");
    rig.turn();
    assert_eq!(rig.sents(1).len(), 1);
}

#[test]
fn the_stream_is_re_established_after_the_server_closes_it() {
    let mut rig = Rig::new();
    let first = rig.stream();
    rig.emit(b"id: 41\ndata: {}\n\n");
    rig.turn();
    rig.server.close(first, true);
    assert!(rig.run_until(10 * MS, |r| r
        .seen
        .iter()
        .any(|e| matches!(e, Event::Source { live: false, .. }))));
    assert!(rig.run_until(100 * MS, |r| r.stream() != first && r.app.source_live(0)));
    rig.arm(7, r#"sku == "1001""#);
    rig.emit(b"data: {\"sku\":\"1001\"}\n\n");
    rig.turn();
    assert_eq!(rig.sents(7).len(), 1);
}

#[test]
fn a_stream_that_is_not_an_event_stream_is_reported_and_retried_slowly() {
    let pki = peer::pki();
    let (link, server) = memory::pair(pki.server_config(None));
    server.behave(|b| b.events_status = 404);
    let commands = Arc::new(ArrayQueue::new(16));
    let events = Arc::new(ArrayQueue::new(256));
    let mut app = Appliance::new(link, vec![target(&pki)], 8, commands, events.clone());
    app.add_source(SourceSpec::Sse(sse(&pki)), 0);
    let mut now = 0;
    let mut message = None;
    while now < 500 * MS && message.is_none() {
        now += STEP;
        app.turn(now);
        while let Some(e) = events.pop() {
            if let Event::Source {
                live: false,
                message: Some(m),
                ..
            } = e
            {
                message = Some(m);
            }
        }
    }
    assert_eq!(message.as_deref(), Some("event source feed: status 404"));
    let subscribed = |s: &Server| s.requests().iter().filter(|r| r.path == "/events").count();
    let before = subscribed(&server);
    for _ in 0..5_000 {
        now += STEP;
        app.turn(now);
    }
    assert_eq!(subscribed(&server), before, "backed off fully (1 s)");
}

#[test]
fn an_unchunked_stream_works_too() {
    let pki = peer::pki();
    let (link, server) = memory::pair(pki.server_config(None));
    server.behave(|b| b.events_chunked = false);
    let commands = Arc::new(ArrayQueue::new(16));
    let events = Arc::new(ArrayQueue::new(256));
    let app = Appliance::new(
        link,
        vec![target(&pki)],
        8,
        commands.clone(),
        events.clone(),
    );
    let mut rig = Rig {
        app,
        server,
        commands,
        events,
        now: 0,
        seen: Vec::new(),
    };
    rig.app.add_source(SourceSpec::Sse(sse(&pki)), 0);
    assert!(rig.run_until(100 * MS, |r| r.app.source_live(0) && r.warm() == 3));
    rig.arm(1, "n == 1");
    let stream = rig.stream();
    rig.server.inject_plaintext(stream, b"data: {\"n\":1}\n\n");
    rig.turn();
    assert_eq!(rig.sents(1).len(), 1);
}

#[test]
fn an_arm_on_a_source_that_does_not_exist_is_refused() {
    let mut rig = Rig::new();
    let spec = ArmSpec {
        arm: 9,
        target: 0,
        request: request("x"),
        conns: 1,
        trigger: Trigger::Event {
            source: 1,
            matcher: Arc::new(Matcher::compile("a == 1").unwrap()),
        },
    };
    rig.commands
        .push(Command::Arm {
            req: 9,
            spec: Box::new(spec),
        })
        .unwrap();
    rig.turn();
    assert!(rig.seen.iter().any(|e| matches!(
        e,
        Event::Ack {
            req: 9,
            result: Err(Reject::UnknownSource)
        }
    )));
}

// ---- UDP: datagrams from a real kernel socket on loopback (the test link's default). ----

/// A rig with a UDP feed as source 1 on a free loopback port, and a socket to send from.
fn udp_rig() -> (Rig, std::net::UdpSocket, std::net::SocketAddr) {
    use crate::event::udp_source::UdpSpec;
    let mut rig = Rig::new();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spec = UdpSpec {
        name: "feed-udp".into(),
        addr: std::net::Ipv4Addr::LOCALHOST,
        port,
        max_event: 256,
    };
    assert_eq!(rig.app.add_source(SourceSpec::Udp(spec), 0), 1);
    assert!(rig.run_until(10 * MS, |r| r.app.source_live(1)));
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    (rig, sender, ([127, 0, 0, 1], port).into())
}

impl Rig {
    fn arm_on(&mut self, arm: ArmId, source: usize, predicate: &str) {
        let spec = ArmSpec {
            arm,
            target: 0,
            request: request(&format!("ev-{arm}")),
            conns: 1,
            trigger: Trigger::Event {
                source,
                matcher: Arc::new(Matcher::compile(predicate).unwrap()),
            },
        };
        self.commands
            .push(Command::Arm {
                req: arm,
                spec: Box::new(spec),
            })
            .unwrap();
        self.turn();
    }

    /// Turns until the kernel has delivered what was sent and the loop read it (the
    /// loopback delivers within the send call; a few turns are plenty).
    fn settle(&mut self) {
        for _ in 0..20 {
            self.turn();
        }
    }
}

#[test]
fn a_datagram_fires_the_udp_arms_it_matches_once() {
    let (mut rig, sender, to) = udp_rig();
    rig.arm_on(1, 1, r#"sku == "1001" && stock > 0"#);
    rig.arm_on(2, 1, r#"sku == "1002""#);
    rig.arm_on(3, 0, r#"sku == "1001""#); // the SSE source: not this one
    for _ in 0..3 {
        sender.send_to(br#"{"sku":"1001","stock":0}"#, to).unwrap();
        sender.send_to(b"not json", to).unwrap();
    }
    rig.settle();
    assert!(rig.sents(1).is_empty() && rig.sents(2).is_empty());
    sender.send_to(br#"{"sku":"1001","stock":4}"#, to).unwrap();
    sender.send_to(br#"{"sku":"1001","stock":5}"#, to).unwrap();
    rig.settle();
    assert_eq!(rig.sents(1).len(), 1, "{:?}", rig.seen);
    assert!(rig.sents(2).is_empty() && rig.sents(3).is_empty());
    rig.run_for(2 * MS);
    assert_eq!(rig.orders(), vec!["ev-1"]);
}

#[test]
fn an_oversized_datagram_is_dropped_not_cut() {
    let (mut rig, sender, to) = udp_rig();
    rig.arm_on(1, 1, r#"bytes:"sku""#);
    let mut big = b"sku".to_vec();
    big.resize(300, b' ');
    sender.send_to(&big, to).unwrap();
    rig.settle();
    assert!(rig.sents(1).is_empty());
    sender.send_to(b"sku", to).unwrap();
    rig.settle();
    assert_eq!(rig.sents(1).len(), 1);
}
