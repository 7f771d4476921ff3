//! The appliance and its connections on virtual time, against a simulated server (a real
//! rustls server and a tiny HTTP/1.1 responder behind [`MemoryLink`]) with faults.

use super::{Appliance, APPROACH_NS};
use crate::conn::MAX_REQUEST;
use crate::http::{warm_request, Placeholders, RequestTemplate};
use crate::link::memory::{self, MemoryLink, Server};
use crate::order::{
    Accepted, ArmId, ArmSpec, Command, Event, FireRecord, Outcome, Reject, Trigger, Unknown,
};
use crate::poll::{Turn, Work};
use crate::target::TargetSpec;
use crate::tls::peer::{self, Pki, NAME};
use crossbeam_queue::ArrayQueue;
use rustls::pki_types::ServerName;
use std::sync::Arc;

const MS: u64 = 1_000_000;
/// Virtual time per turn.
const STEP: u64 = 100_000;
const WARM_INTERVAL: u64 = 1_000 * MS;
const RESPONSE_TIMEOUT: u64 = 50 * MS;
const CONNECT_TIMEOUT: u64 = 100 * MS;
const TARGET: &str = "venue-a";

fn target(pki: &Pki, connections: usize) -> TargetSpec {
    TargetSpec {
        name: TARGET.into(),
        address: "192.0.2.10:443".parse().unwrap(),
        server_name: ServerName::try_from(NAME).unwrap(),
        tls: pki.client_config(),
        connections,
        warm_request: warm_request(NAME, 443, "/healthz").unwrap().into(),
        warm_interval_ns: WARM_INTERVAL,
        response_timeout_ns: RESPONSE_TIMEOUT,
        connect_timeout_ns: CONNECT_TIMEOUT,
    }
}

fn order_request(key: &str) -> Box<[u8]> {
    let template = RequestTemplate {
        method: "POST".into(),
        path: "/api/order".into(),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: r#"{{"sku":"{sku}","qty":{qty}}}"#.into(),
    };
    let p = Placeholders {
        sku: "WIDGET-1",
        qty: 3,
        idempotency_key: key,
    };
    template.render(NAME, 443, &p).unwrap().into()
}

fn key(arm: ArmId) -> String {
    format!("order-{arm}")
}

fn spec(arm: ArmId, conns: usize, trigger: Trigger) -> Box<ArmSpec> {
    Box::new(ArmSpec {
        arm,
        target: 0,
        request: order_request(&key(arm)),
        conns,
        trigger,
    })
}

/// An appliance with one target, the server behind its link, and virtual time.
struct Rig {
    app: Appliance<MemoryLink>,
    server: Server,
    commands: Arc<ArrayQueue<Command>>,
    events: Arc<ArrayQueue<Event>>,
    now: u64,
    /// Events taken off the queue so far (when `drain`).
    seen: Vec<Event>,
    drain: bool,
}

impl Rig {
    fn new(pool: usize) -> Rig {
        let pki = peer::pki();
        Rig::build(target(&pki, pool), &pki, 256)
    }

    /// `server_pki` issues the server's certificate; `pki` in the target is what we trust.
    fn build(target: TargetSpec, server_pki: &Pki, queue: usize) -> Rig {
        let (link, server) = memory::pair(server_pki.server_config(None));
        let commands = Arc::new(ArrayQueue::new(16));
        let events = Arc::new(ArrayQueue::new(queue));
        let app = Appliance::new(link, vec![target], 4, commands.clone(), events.clone());
        Rig {
            app,
            server,
            commands,
            events,
            now: 0,
            seen: Vec::new(),
            drain: true,
        }
    }

    fn turn(&mut self) {
        self.now += STEP;
        self.app.turn(self.now);
        if self.drain {
            self.take_events();
        }
    }

    fn take_events(&mut self) {
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

    /// Turns until `done` holds; false if it did not within `limit_ns`.
    fn run_until(&mut self, limit_ns: u64, done: impl Fn(&Rig) -> bool) -> bool {
        let end = self.now + limit_ns;
        while self.now < end {
            self.turn();
            if done(self) {
                return true;
            }
        }
        false
    }

    fn warm(&self) -> Option<(usize, usize)> {
        self.seen.iter().rev().find_map(|e| match e {
            Event::Pool { warm, wanted, .. } => Some((*warm, *wanted)),
            _ => None,
        })
    }

    fn is_warm(&self) -> bool {
        self.warm().is_some_and(|(w, wanted)| w == wanted)
    }

    fn warm_up(&mut self) {
        assert!(
            self.run_until(50 * MS, Rig::is_warm),
            "pool never warm: {:?}",
            self.seen
        );
        // Let the first warm requests complete.
        self.run_for(2 * MS);
    }

    fn command(&mut self, c: Command) {
        self.commands.push(c).unwrap();
    }

    fn arm(&mut self, arm: ArmId, conns: usize, trigger: Trigger) {
        self.command(Command::Arm {
            req: arm,
            spec: spec(arm, conns, trigger),
        });
        self.turn();
    }

    fn fire(&mut self, arm: ArmId) {
        self.command(Command::Fire { req: arm, arm });
        self.turn();
    }

    /// Arms `arm` on one connection, sets `fault` on the server, fires, and returns the
    /// order's record.
    fn fire_through(
        &mut self,
        arm: ArmId,
        fault: impl FnOnce(&mut crate::link::memory::Behavior),
    ) -> FireRecord {
        self.arm(arm, 1, Trigger::Manual);
        self.server.behave(fault);
        self.fire(arm);
        self.await_done(arm, 1)[0]
    }

    fn dones(&self, arm: ArmId) -> Vec<FireRecord> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                Event::Done(r) if r.arm == arm => Some(*r),
                _ => None,
            })
            .collect()
    }

    fn sents(&self, arm: ArmId) -> Vec<(usize, crate::order::Stamps)> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                Event::Sent {
                    arm: a,
                    conn,
                    stamps,
                    ..
                } if *a == arm => Some((*conn, *stamps)),
                _ => None,
            })
            .collect()
    }

    fn rejected(&self, arm: ArmId) -> Vec<Reject> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                Event::Ack {
                    req,
                    result: Err(reason),
                } if *req == arm => Some(*reason),
                _ => None,
            })
            .collect()
    }

    fn armed(&self, arm: ArmId) -> Option<usize> {
        self.seen.iter().find_map(|e| match e {
            Event::Ack {
                req,
                result: Ok(Accepted::Armed { conns }),
            } if *req == arm => Some(*conns),
            _ => None,
        })
    }

    fn conn_errors(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                Event::ConnError { message, .. } => Some(message.to_string()),
                _ => None,
            })
            .collect()
    }

    /// Runs until `arm` has `n` outcomes.
    fn await_done(&mut self, arm: ArmId, n: usize) -> Vec<FireRecord> {
        let got = self.run_until(RESPONSE_TIMEOUT * 4, |r| r.dones(arm).len() >= n);
        assert!(got, "arm {arm}: {:?}", self.seen);
        self.dones(arm)
    }

    /// Server-side serials of the connections open now.
    fn open(&self) -> Vec<usize> {
        self.server.open()
    }
}

#[test]
fn pool_warms_and_each_new_connection_sends_one_warm_request_first() {
    let mut rig = Rig::new(3);
    assert!(
        matches!(
            rig.events.pop(),
            Some(Event::Pool {
                warm: 0,
                wanted: 3,
                ..
            })
        ),
        "the first report is an empty pool"
    );
    rig.warm_up();
    assert_eq!(rig.warm(), Some((3, 3)));
    let warms: Vec<usize> = rig
        .seen
        .iter()
        .filter_map(|e| match e {
            Event::Pool { warm, .. } => Some(*warm),
            _ => None,
        })
        .collect();
    assert!(warms.windows(2).all(|w| w[0] < w[1]), "{warms:?}");
    assert_eq!(rig.server.connects().len(), 3);

    // Well within the keep-warm interval: one request per connection, the warm one.
    rig.run_for(100 * MS);
    let requests = rig.server.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    let mut serials: Vec<usize> = requests.iter().map(|r| r.serial).collect();
    serials.sort_unstable();
    assert_eq!(serials, [0, 1, 2]);
    assert!(requests.iter().all(|r| r.is_warm() && r.key.is_none()));
    for serial in 0..3 {
        assert_eq!(rig.server.log(serial).error, None);
    }

    // After the interval each connection is kept warm again, and stays in the pool.
    rig.run_for(WARM_INTERVAL);
    let requests = rig.server.requests();
    assert_eq!(requests.len(), 6, "{requests:?}");
    assert!(requests.iter().all(|r| r.is_warm()));
    assert_eq!(rig.server.connects().len(), 3);
    assert_eq!(rig.open().len(), 3);
}

#[test]
fn manual_fire_sends_the_order_once_with_ordered_stamps() {
    let mut rig = Rig::new(2);
    rig.warm_up();
    rig.server.behave(|b| b.order_delay_ns = 3 * MS);
    rig.arm(1, 1, Trigger::Manual);
    assert_eq!(rig.armed(1), Some(1));
    rig.run_for(10 * MS);
    assert!(
        rig.server.orders().is_empty(),
        "nothing goes out before the fire"
    );

    rig.fire(1);
    let sent = rig.sents(1);
    assert_eq!(sent.len(), 1, "Sent is reported in the turn of the fire");
    assert!(rig.dones(1).is_empty());
    let done = rig.await_done(1, 1);
    assert_eq!(done.len(), 1);
    let done = done[0];
    assert_eq!(done.outcome, Outcome::Status(200));
    assert_eq!(done.conn, sent[0].0);
    assert!(done.local.is_some());
    let s = done.stamps;
    assert_eq!(s.trigger_ns, sent[0].1.trigger_ns);
    assert_eq!(s.tx_ns, sent[0].1.tx_ns);
    assert!(s.trigger_ns > 0 && s.scheduled_ns == 0);
    assert!(s.trigger_ns <= s.tx_ns, "{s:?}");
    assert!(s.tx_ns < s.first_byte_ns, "{s:?}");
    assert!(s.first_byte_ns <= s.complete_ns, "{s:?}");
    assert!(s.complete_ns - s.tx_ns >= 3 * MS, "{s:?}");
    let sent_at = rig
        .seen
        .iter()
        .position(|e| matches!(e, Event::Sent { .. }));
    let done_at = rig.seen.iter().position(|e| matches!(e, Event::Done(_)));
    assert!(sent_at < done_at);

    let orders = rig.server.orders();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].key.as_deref(), Some("order-1"));
    assert_eq!(orders[0].body, br#"{"sku":"WIDGET-1","qty":3}"#);

    // The arm is finished: it cannot fire twice.
    rig.fire(1);
    assert_eq!(rig.rejected(1), [Reject::UnknownArm]);
    rig.run_for(100 * MS);
    assert_eq!(rig.server.orders().len(), 1);
}

#[test]
fn burst_goes_out_over_k_distinct_connections() {
    const K: usize = 4;
    let mut rig = Rig::new(K);
    rig.warm_up();
    rig.arm(7, K, Trigger::Manual);
    assert_eq!(rig.armed(7), Some(K));
    rig.fire(7);
    let mut conns: Vec<usize> = rig.sents(7).iter().map(|s| s.0).collect();
    conns.sort_unstable();
    conns.dedup();
    assert_eq!(conns.len(), K);
    let done = rig.await_done(7, K);
    assert_eq!(done.len(), K);
    assert!(done.iter().all(|d| d.outcome == Outcome::Status(200)));
    let orders = rig.server.orders();
    assert_eq!(orders.len(), K);
    let mut serials: Vec<usize> = orders.iter().map(|o| o.serial).collect();
    serials.sort_unstable();
    serials.dedup();
    assert_eq!(serials.len(), K, "one order per server connection");
    assert!(orders.iter().all(|o| o.key.as_deref() == Some("order-7")));
}

#[test]
fn arms_are_rejected_for_the_right_reasons() {
    let mut rig = Rig::new(2);
    rig.warm_up();
    let mut bad_target = spec(10, 1, Trigger::Manual);
    bad_target.target = 1;
    rig.command(Command::Arm {
        req: 10,
        spec: bad_target,
    });
    rig.command(Command::Arm {
        req: 11,
        spec: spec(11, 3, Trigger::Manual),
    });
    rig.command(Command::Arm {
        req: 12,
        spec: spec(12, 0, Trigger::Manual),
    });
    let mut big = spec(13, 1, Trigger::Manual);
    big.request = vec![b'x'; MAX_REQUEST + 1].into();
    rig.command(Command::Arm { req: 13, spec: big });
    rig.command(Command::Arm {
        req: 14,
        spec: spec(14, 1, Trigger::Manual),
    });
    rig.command(Command::Arm {
        req: 14,
        spec: spec(14, 1, Trigger::Manual),
    });
    rig.turn();
    assert_eq!(rig.rejected(10), [Reject::UnknownTarget]);
    assert_eq!(
        rig.rejected(11),
        [Reject::TooManyConns { asked: 3, pool: 2 }]
    );
    assert_eq!(
        rig.rejected(12),
        [Reject::TooManyConns { asked: 0, pool: 2 }]
    );
    assert_eq!(rig.rejected(13), [Reject::RequestTooLarge]);
    assert_eq!(rig.armed(14), Some(1));
    assert_eq!(rig.rejected(14), [Reject::DuplicateArm]);
    for arm in 10..14 {
        assert_eq!(rig.armed(arm), None);
    }

    // Four arm slots: 14 and three more; the fifth is refused.
    for arm in 15..18 {
        rig.command(Command::Arm {
            req: arm,
            spec: spec(arm, 1, Trigger::Manual),
        });
    }
    rig.command(Command::Arm {
        req: 18,
        spec: spec(18, 1, Trigger::Manual),
    });
    rig.turn();
    assert_eq!(rig.rejected(18), [Reject::TooManyArms]);

    // The duplicate did not replace the first: 14 still fires, once.
    rig.fire(14);
    rig.await_done(14, 1);
    let orders = rig.server.orders();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].key.as_deref(), Some("order-14"));
}

#[test]
fn disarm_before_fire_sends_nothing() {
    let mut rig = Rig::new(2);
    rig.warm_up();
    rig.arm(3, 2, Trigger::Manual);
    assert!(rig.app.conns.iter().all(|c| c.holds(3)));
    rig.command(Command::Disarm { req: 3, arm: 3 });
    rig.turn();
    assert!(rig.seen.iter().any(|e| matches!(
        e,
        Event::Ack {
            req: 3,
            result: Ok(Accepted::Disarmed)
        }
    )));
    assert!(rig.app.conns.iter().all(|c| !c.is_holding()));
    rig.fire(3);
    rig.command(Command::Disarm { req: 3, arm: 3 });
    rig.turn();
    assert_eq!(rig.rejected(3), [Reject::UnknownArm, Reject::UnknownArm]);
    rig.run_for(200 * MS);
    assert!(rig.server.orders().is_empty());
    assert!(rig.dones(3).is_empty() && rig.sents(3).is_empty());
}

#[test]
fn fire_of_an_unknown_arm_is_rejected() {
    let mut rig = Rig::new(1);
    rig.warm_up();
    rig.fire(99);
    assert_eq!(rig.rejected(99), [Reject::UnknownArm]);
    rig.run_for(10 * MS);
    assert!(rig.server.orders().is_empty());
}

#[test]
fn scheduled_trigger_fires_on_the_turn_that_reaches_its_deadline_exactly() {
    let mut rig = Rig::new(1);
    rig.warm_up();
    let deadline = rig.now + 10 * STEP;
    rig.arm(6, 1, Trigger::At(deadline));
    rig.run_for(deadline - rig.now);
    assert_eq!(rig.now, deadline);
    let sent = rig.sents(6);
    assert_eq!(sent.len(), 1, "fired on the turn whose now is the deadline");
    assert_eq!(sent[0].1.trigger_ns, deadline);
    assert_eq!(sent[0].1.scheduled_ns, deadline);
}

#[test]
fn scheduled_trigger_fires_on_the_first_turn_at_or_after_its_deadline() {
    let mut rig = Rig::new(1);
    rig.warm_up();
    // Between two turns, so the fire comes on the turn after it.
    let deadline = rig.now + 20 * STEP + STEP / 3;
    rig.arm(5, 1, Trigger::At(deadline));
    while rig.now + STEP < deadline {
        rig.turn();
        assert!(rig.sents(5).is_empty(), "fired early at {}", rig.now);
    }
    rig.turn();
    assert!(rig.now >= deadline && rig.now < deadline + STEP);
    let sent = rig.sents(5);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.trigger_ns, rig.now);
    assert_eq!(sent[0].1.scheduled_ns, deadline);
    let done = rig.await_done(5, 1);
    assert_eq!(done[0].outcome, Outcome::Status(200));
    assert_eq!(done[0].stamps.scheduled_ns, deadline);
    assert_eq!(rig.server.orders().len(), 1);
}

/// Send warming rehearses the fire (`warming::Pass`): the fire path runs to the kick
/// and leaves nothing behind. After many rehearsals nothing was sent, answered or
/// reported, the TLS position is where it was, and the order goes out once, on its
/// pre-sealed record, its response matched to it (a stray pending entry would take it).
#[test]
fn a_rehearsed_fire_leaves_no_trace() {
    let mut rig = Rig::new(3);
    rig.warm_up();
    rig.arm(3, 2, Trigger::Manual);
    let events_before = rig.seen.len();
    let holding = |rig: &Rig| rig.app.conns.iter().filter(|c| c.holds(3)).count();
    assert_eq!(holding(&rig), 2);
    // Two connections hold the order; the third sends keep-warm requests meanwhile.
    let positions = |rig: &Rig| -> Vec<_> {
        rig.app
            .conns
            .iter()
            .filter(|c| c.holds(3))
            .map(|c| c.next_position())
            .collect()
    };
    let before = (rig.app.rehearsals, positions(&rig));
    rig.run_for(5 * MS);
    assert!(
        rig.app.rehearsals >= before.0 + 40,
        "rehearsed {} times",
        rig.app.rehearsals - before.0
    );
    assert_eq!(positions(&rig), before.1, "a rehearsal took a TLS position");
    assert!(rig.server.orders().is_empty(), "a rehearsal sent the order");
    assert_eq!(holding(&rig), 2, "a rehearsal took a pre-sealed record");
    assert!(rig.app.arms.iter().flatten().all(|a| !a.fired));
    let reported: Vec<&Event> = rig.seen[events_before..]
        .iter()
        .filter(|e| !matches!(e, Event::Pool { .. } | Event::Probed { .. }))
        .collect();
    assert!(reported.is_empty(), "a rehearsal reported {reported:?}");

    rig.fire(3);
    assert_eq!(rig.sents(3).len(), 2);
    let done = rig.await_done(3, 2);
    assert!(
        done.iter().all(|d| d.outcome == Outcome::Status(200)),
        "{done:?}"
    );
    assert_eq!(rig.server.orders().len(), 2);
    assert!(rig.app.fired.len() <= 2);
}

/// A scheduled fire's stamps carry when the turn before it was done, so a deadline missed
/// because the loop did not run (here virtual time jumps past it, as when the host takes
/// the core) shows as a turn done before the deadline and then the late trigger.
#[test]
fn a_scheduled_fire_tells_the_turn_before_it() {
    let mut rig = Rig::new(1);
    rig.warm_up();
    let deadline = rig.now + 10 * STEP;
    rig.arm(5, 1, Trigger::At(deadline));
    rig.run_for(deadline - 2 * STEP - rig.now);
    // A turn outside the approach reads the clock once more when done, while a
    // deadline waits (the memory link's clock stands at the turn's `now`).
    assert_eq!(rig.app.turned_ns, rig.now);
    let before = deadline - APPROACH_NS / 2;
    rig.now = before;
    assert_eq!(rig.app.turn(before), Work::Busy, "in the final approach");
    let late = deadline + 30_000;
    rig.now = late;
    rig.app.turn(late);
    rig.take_events();
    let sent = rig.sents(5);
    assert_eq!(sent.len(), 1);
    let s = sent[0].1;
    assert_eq!(
        (s.scheduled_ns, s.turn_before_end_ns, s.trigger_ns),
        (deadline, before, late)
    );
    assert_eq!(rig.await_done(5, 1)[0].outcome, Outcome::Status(200));
}

#[test]
fn in_the_final_approach_to_a_deadline_a_turn_only_looks_for_it() {
    let mut rig = Rig::new(2);
    rig.warm_up();
    let deadline = rig.now + 10 * STEP;
    rig.arm(7, 1, Trigger::At(deadline));
    rig.arm(8, 1, Trigger::Manual);
    rig.run_for(deadline - 2 * STEP - rig.now);
    assert!(rig.now + APPROACH_NS < deadline);
    // Inside the window: a command waits, whatever it is, and so would frames.
    rig.now = deadline - APPROACH_NS + 1;
    rig.command(Command::Fire { req: 80, arm: 8 });
    assert_eq!(rig.app.turn(rig.now), Work::Busy);
    rig.now = deadline - 1;
    assert_eq!(rig.app.turn(rig.now), Work::Busy);
    rig.take_events();
    assert!(
        rig.sents(7).is_empty() && rig.sents(8).is_empty(),
        "{:?}",
        rig.seen
    );
    assert_eq!(rig.commands.len(), 1, "the command waited");
    // The deadline: the scheduled order first, then the waiting command, in one turn.
    rig.now = deadline;
    rig.app.turn(rig.now);
    rig.take_events();
    assert_eq!(rig.sents(7)[0].1.trigger_ns, deadline);
    assert_eq!(rig.sents(8).len(), 1);
    assert_eq!(rig.await_done(7, 1)[0].outcome, Outcome::Status(200));
    assert_eq!(rig.await_done(8, 1)[0].outcome, Outcome::Status(200));
}

/// Rewrites the idempotency key in the request `arm` holds, after its pre-seal: a fire
/// that seals now sends the new key, one that sends the pre-sealed record the old one.
/// (Sealing the same request at the same position gives the same bytes, so comparing
/// bytes alone cannot tell the two apart.)
fn rewrite_request_after_preseal(rig: &mut Rig, arm: ArmId) {
    let slot = rig.app.arm_slot(arm).unwrap();
    let spec = &mut rig.app.arms[slot].as_mut().unwrap().spec;
    spec.request = order_request(&format!("later-{arm}"));
}

/// The last record the client sent on server connection `serial`.
fn last_send(rig: &Rig, serial: usize) -> Vec<u8> {
    rig.server.log(serial).sends.last().cloned().unwrap()
}

#[test]
fn the_presealed_record_is_what_goes_out() {
    let mut rig = Rig::new(1);
    rig.warm_up();
    rig.arm(1, 1, Trigger::Manual);
    let presealed = rig.app.conns[0].presealed_bytes().unwrap().1.to_vec();
    rewrite_request_after_preseal(&mut rig, 1);
    rig.fire(1);
    assert_eq!(last_send(&rig, 0), presealed);
    let done = rig.await_done(1, 1);
    assert_eq!(done[0].outcome, Outcome::Status(200));
    assert_eq!(rig.server.orders()[0].key.as_deref(), Some("order-1"));
    assert_eq!(rig.server.log(0).error, None);
}

#[test]
fn a_keep_warm_between_arm_and_fire_reseals_and_the_order_arrives_intact() {
    let mut rig = Rig::new(1);
    rig.warm_up();
    rig.arm(1, 1, Trigger::Manual);
    let first = rig.app.conns[0].presealed_bytes().unwrap().1.to_vec();
    // A keep-warm request takes the pre-sealed record's sequence number.
    rig.run_until(WARM_INTERVAL + 10 * MS, |r| {
        r.server.requests().iter().filter(|q| q.is_warm()).count() == 2
    });
    rig.run_for(MS);
    assert!(rig.app.conns[0].holds(1), "re-sealed after the keep-warm");
    let resealed = rig.app.conns[0].presealed_bytes().unwrap().1.to_vec();
    assert_ne!(first, resealed);
    rewrite_request_after_preseal(&mut rig, 1);
    rig.fire(1);
    assert_eq!(last_send(&rig, 0), resealed);
    let done = rig.await_done(1, 1);
    assert_eq!(done[0].outcome, Outcome::Status(200));
    let orders = rig.server.orders();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].key.as_deref(), Some("order-1"));
    assert_eq!(orders[0].body, br#"{"sku":"WIDGET-1","qty":3}"#);
    assert_eq!(rig.server.log(0).error, None, "the server decrypted it");
}

#[test]
fn connection_closed_after_the_request_left_is_unknown_and_never_retried() {
    let mut rig = Rig::new(2);
    rig.warm_up();
    rig.server.behave(|b| b.close_on_order = true);
    rig.arm(1, 1, Trigger::Manual);
    rig.fire(1);
    assert_eq!(rig.sents(1).len(), 1);
    let done = rig.await_done(1, 1);
    assert_eq!(done[0].outcome, Outcome::Unknown(Unknown::ConnectionLost));
    assert!(done[0].stamps.complete_ns >= done[0].stamps.tx_ns);
    // The pool heals; the order is not sent again.
    rig.server.behave(|b| b.close_on_order = false);
    rig.run_for(2 * WARM_INTERVAL);
    assert_eq!(rig.server.orders().len(), 1);
    assert_eq!(rig.dones(1).len(), 1);
    assert!(rig.is_warm());
    assert_eq!(rig.open().len(), 2);
}

#[test]
fn connection_reset_while_the_response_is_due_is_unknown() {
    let mut rig = Rig::new(1);
    rig.warm_up();
    rig.server.behave(|b| b.order_delay_ns = 10 * MS);
    rig.arm(1, 1, Trigger::Manual);
    rig.fire(1);
    rig.run_for(MS);
    assert_eq!(rig.server.orders().len(), 1);
    rig.server.reset(rig.server.orders()[0].serial);
    let done = rig.await_done(1, 1);
    assert_eq!(done[0].outcome, Outcome::Unknown(Unknown::ConnectionLost));
    rig.run_for(WARM_INTERVAL);
    assert_eq!(rig.server.orders().len(), 1);
}

#[test]
fn close_notify_before_the_response_is_unknown() {
    let mut rig = Rig::new(1);
    rig.warm_up();
    rig.server.behave(|b| b.order_delay_ns = 10 * MS);
    rig.arm(1, 1, Trigger::Manual);
    rig.fire(1);
    rig.run_for(MS);
    rig.server.close(rig.server.orders()[0].serial, true);
    let done = rig.await_done(1, 1);
    assert_eq!(done[0].outcome, Outcome::Unknown(Unknown::ConnectionLost));
}

#[test]
fn unanswered_order_times_out() {
    let mut rig = Rig::new(1);
    rig.warm_up();
    rig.server.behave(|b| b.drop_orders = true);
    rig.arm(1, 1, Trigger::Manual);
    rig.fire(1);
    let done = rig.await_done(1, 1);
    assert_eq!(done[0].outcome, Outcome::Unknown(Unknown::Timeout));
    let waited = done[0].stamps.complete_ns - done[0].stamps.trigger_ns;
    assert!(
        waited > RESPONSE_TIMEOUT && waited <= RESPONSE_TIMEOUT + 2 * STEP,
        "{waited}"
    );
    assert_eq!(rig.server.orders().len(), 1);
}

#[test]
fn order_behind_an_unanswered_keep_warm_times_out() {
    let mut rig = Rig::new(1);
    rig.warm_up();
    // The server stalls: the next keep-warm is never answered, nor the order behind it.
    rig.server.behave(|b| b.drop_all = true);
    rig.run_until(2 * WARM_INTERVAL, |r| r.server.requests().len() == 2);
    rig.arm(1, 1, Trigger::Manual);
    rig.fire(1);
    assert_eq!(rig.sents(1).len(), 1);
    let done = rig.await_done(1, 1);
    assert_eq!(done[0].outcome, Outcome::Unknown(Unknown::Timeout));
    assert_eq!(rig.server.orders().len(), 1);
}

#[test]
fn a_503_is_reported_as_such() {
    let mut rig = Rig::new(1);
    rig.warm_up();
    rig.server.behave(|b| b.order_status = 503);
    rig.arm(1, 1, Trigger::Manual);
    rig.fire(1);
    let done = rig.await_done(1, 1);
    assert_eq!(done[0].outcome, Outcome::Status(503));
    assert_eq!(rig.server.orders().len(), 1);
}

#[test]
fn no_ready_connection_at_fire_time_is_not_sent() {
    // Nothing connected yet: the whole burst is not sent.
    let mut rig = Rig::new(2);
    rig.arm(1, 2, Trigger::Manual);
    rig.fire(1);
    let done = rig.dones(1);
    assert_eq!(done.len(), 2);
    assert!(done
        .iter()
        .all(|d| d.outcome == Outcome::NotSent && d.conn == usize::MAX && d.local.is_none()));
    assert!(rig.sents(1).is_empty());

    // One of two connections down: one sent, one short.
    rig.warm_up();
    rig.server.behave(|b| b.refuse = true);
    rig.server.reset(rig.open()[0]);
    rig.run_until(10 * MS, |r| r.warm() == Some((1, 2)));
    rig.arm(2, 2, Trigger::Manual);
    rig.fire(2);
    assert_eq!(rig.sents(2).len(), 1);
    let done = rig.await_done(2, 2);
    let mut outcomes: Vec<Outcome> = done.iter().map(|d| d.outcome).collect();
    outcomes.sort_by_key(|o| matches!(o, Outcome::NotSent));
    assert_eq!(outcomes, [Outcome::Status(200), Outcome::NotSent]);
    assert_eq!(rig.server.orders().len(), 1);
}

/// Gaps between successive connection attempts from `from` on.
fn gaps(times: &[u64]) -> Vec<u64> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn server_closing_connections_is_followed_by_reconnects_with_growing_capped_backoff() {
    let mut rig = Rig::new(1);
    rig.warm_up();
    // The server goes away: closes its idle connection and refuses new ones for a while.
    rig.server.behave(|b| b.refuse = true);
    rig.server.close(rig.open()[0], true);
    let before = rig.server.connects().len();
    rig.run_for(6_000 * MS);
    let attempts = rig.server.connects()[before..].to_vec();
    let gaps = gaps(&attempts);
    assert!(gaps.len() >= 8, "{gaps:?}");
    for w in gaps.windows(2) {
        assert!(w[1] >= w[0], "backoff shrank: {gaps:?}");
    }
    assert!(gaps[0] < 5 * MS, "first retry is quick: {gaps:?}");
    // Capped at one second (plus the turn that sees the refusal).
    assert!(gaps.iter().all(|&g| g <= 1_000 * MS + 2 * STEP), "{gaps:?}");
    assert!(
        gaps[gaps.len() - 2..].iter().all(|&g| g >= 1_000 * MS),
        "{gaps:?}"
    );
    assert!(!rig.is_warm());

    rig.server.behave(|b| b.refuse = false);
    assert!(rig.run_until(1_100 * MS, Rig::is_warm));
    rig.run_for(2 * MS);
    rig.arm(1, 1, Trigger::Manual);
    rig.fire(1);
    assert_eq!(rig.await_done(1, 1)[0].outcome, Outcome::Status(200));
}

#[test]
fn idle_connections_closed_by_the_server_are_replaced() {
    let mut rig = Rig::new(2);
    // The server's keep-alive timer is shorter than our keep-warm interval.
    rig.server
        .behave(|b| b.idle_timeout_ns = Some(WARM_INTERVAL / 2));
    rig.warm_up();
    rig.run_for(WARM_INTERVAL * 2);
    assert!(rig.server.connects().len() >= 4, "closed and reconnected");
    assert!(rig.run_until(10 * MS, Rig::is_warm));
    rig.run_for(2 * MS);
    rig.arm(1, 2, Trigger::Manual);
    rig.fire(1);
    let done = rig.await_done(1, 2);
    assert!(done.iter().all(|d| d.outcome == Outcome::Status(200)));
}

#[test]
fn a_server_that_closes_right_after_tls_is_not_hammered() {
    let mut rig = Rig::new(1);
    rig.server.behave(|b| b.close_after_handshake = true);
    rig.run_for(5_000 * MS);
    let attempts = rig.server.connects();
    // Backing off from 1 ms to 1 s takes ~11 attempts, then one a second.
    assert!(attempts.len() <= 20, "{} attempts in 5 s", attempts.len());
    let gaps = gaps(&attempts);
    assert!(gaps.last().unwrap() >= &(500 * MS), "{gaps:?}");

    rig.server.behave(|b| b.close_after_handshake = false);
    assert!(rig.run_until(1_100 * MS, Rig::is_warm));
    rig.run_for(2 * MS);
    rig.arm(1, 1, Trigger::Manual);
    rig.fire(1);
    assert_eq!(rig.await_done(1, 1)[0].outcome, Outcome::Status(200));
}

#[test]
fn certificate_from_another_ca_is_reported_and_the_pool_never_warms() {
    let trusted = peer::pki();
    let other = peer::pki_named("some other CA");
    let mut rig = Rig::build(target(&trusted, 1), &other, 256);
    rig.run_for(3_500 * MS);
    let errors = rig.conn_errors();
    assert!(!errors.is_empty());
    for e in &errors {
        assert!(e.contains(TARGET), "{e}");
        assert!(e.contains("certificate not trusted"), "{e}");
        assert!(e.contains("UnknownIssuer"), "{e}");
    }
    // A certificate problem is not transient: one attempt a second, not a storm.
    let attempts = rig.server.connects();
    assert!((3..=5).contains(&attempts.len()), "{:?}", gaps(&attempts));
    assert!(gaps(&attempts).iter().all(|&g| g >= 1_000 * MS));
    assert!(rig
        .seen
        .iter()
        .all(|e| !matches!(e, Event::Pool { warm, .. } if *warm > 0)));
    assert!(
        rig.server.log(0).error.is_some(),
        "the server saw our alert"
    );
}

#[test]
fn failed_connects_are_reported_naming_the_target() {
    let mut rig = Rig::new(1);
    rig.server.behave(|b| b.connect_error = true);
    rig.run_for(1_500 * MS);
    let errors = rig.conn_errors();
    assert_eq!(errors.len(), 2, "one attempt a second: {errors:?}");
    for e in &errors {
        assert!(
            e.contains(TARGET) && e.contains("network unreachable"),
            "{e}"
        );
    }
    assert!(!rig.is_warm());
    rig.server.behave(|b| b.connect_error = false);
    assert!(rig.run_until(1_100 * MS, Rig::is_warm));
}

#[test]
fn garbage_after_tls_fails_the_pending_order_as_a_bad_response() {
    let mut rig = Rig::new(1);
    rig.warm_up();
    rig.server.behave(|b| b.order_delay_ns = 10 * MS);
    rig.arm(1, 1, Trigger::Manual);
    rig.fire(1);
    rig.run_for(MS);
    let serial = rig.server.orders()[0].serial;
    rig.server.inject_raw(
        serial,
        b"\x17\x03\x03\x00\x20not a record, not even close!!!!",
    );
    let done = rig.await_done(1, 1);
    assert_eq!(done[0].outcome, Outcome::Unknown(Unknown::BadResponse));

    // Garbage HTTP inside good TLS: the same.
    assert!(rig.run_until(WARM_INTERVAL, Rig::is_warm));
    rig.run_for(2 * MS);
    rig.arm(2, 1, Trigger::Manual);
    rig.fire(2);
    rig.run_for(MS);
    let serial = rig.server.orders()[1].serial;
    rig.server.inject_plaintext(serial, b"HTTP/9 what\r\n\r\n");
    let done = rig.await_done(2, 1);
    assert_eq!(done[0].outcome, Outcome::Unknown(Unknown::BadResponse));

    // A response nobody asked for on an idle connection: it is dropped and replaced.
    assert!(rig.run_until(WARM_INTERVAL, Rig::is_warm));
    let serial = rig.open()[0];
    let connects = rig.server.connects().len();
    rig.server
        .inject_plaintext(serial, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert!(rig.run_until(50 * MS, |r| r.server.connects().len() > connects));
    assert_eq!(rig.server.orders().len(), 2);
}

#[test]
fn two_arms_on_one_pool_both_go_out() {
    let mut rig = Rig::new(2);
    rig.warm_up();
    rig.arm(1, 2, Trigger::Manual);
    rig.arm(2, 2, Trigger::Manual);
    assert_eq!(rig.armed(2), Some(2));
    // Both connections hold arm 1's record; arm 2 is sealed at the fire.
    rig.fire(2);
    assert_eq!(rig.sents(2).len(), 2, "{:?}", rig.dones(2));
    let done = rig.await_done(2, 2);
    assert!(done.iter().all(|d| d.outcome == Outcome::Status(200)));
    // Arm 1 got its records back and still fires.
    assert!(rig.app.conns.iter().all(|c| c.holds(1)));
    rig.fire(1);
    let done = rig.await_done(1, 2);
    assert!(done.iter().all(|d| d.outcome == Outcome::Status(200)));
    assert_eq!(rig.server.orders().len(), 4);
}

#[test]
fn a_burst_never_puts_two_copies_on_one_connection() {
    let mut rig = Rig::new(2);
    rig.warm_up();
    rig.server.behave(|b| b.refuse = true);
    rig.server.reset(rig.open()[0]);
    rig.run_until(10 * MS, |r| r.warm() == Some((1, 2)));
    rig.arm(1, 2, Trigger::Manual);
    // As if the pre-seal had failed (pending TLS output, say): the arm holds nothing and
    // the fire seals on whatever is ready, in the same turn.
    let slot = rig.app.arm_slot(1).unwrap();
    rig.app.arms[slot].as_mut().unwrap().conns.clear();
    rig.app.conns.iter_mut().for_each(|c| c.drop_preseal(1));
    rig.fire(1);
    assert_eq!(rig.sents(1).len(), 1);
    let done = rig.await_done(1, 2);
    let mut outcomes: Vec<Outcome> = done.iter().map(|d| d.outcome).collect();
    outcomes.sort_by_key(|o| matches!(o, Outcome::NotSent));
    assert_eq!(outcomes, [Outcome::Status(200), Outcome::NotSent]);
    assert_eq!(rig.server.orders().len(), 1);
}

#[test]
fn connections_freed_by_a_disarm_are_presealed_for_a_waiting_arm() {
    let mut rig = Rig::new(2);
    rig.warm_up();
    rig.arm(1, 2, Trigger::Manual);
    rig.arm(2, 1, Trigger::Manual);
    assert!(rig.app.conns.iter().all(|c| !c.holds(2)));
    rig.command(Command::Disarm { req: 1, arm: 1 });
    rig.turn();
    assert_eq!(
        rig.app.conns.iter().filter(|c| c.holds(2)).count(),
        1,
        "arm 2 pre-sealed on a freed connection"
    );
    rig.fire(2);
    assert_eq!(rig.await_done(2, 1)[0].outcome, Outcome::Status(200));
}

#[test]
fn a_record_the_link_takes_in_parts_still_arrives_whole() {
    let mut rig = Rig::new(1);
    rig.warm_up();
    rig.arm(1, 1, Trigger::Manual);
    rig.server.behave(|b| b.send_limit = Some(64));
    rig.fire(1);
    assert_eq!(rig.sents(1).len(), 1);
    let done = rig.await_done(1, 1);
    assert_eq!(done[0].outcome, Outcome::Status(200));
    assert_eq!(rig.server.orders()[0].key.as_deref(), Some("order-1"));
    assert_eq!(rig.server.log(0).error, None);
}

#[test]
fn outcomes_wait_in_the_backlog_while_nobody_drains_the_queue() {
    let pki = peer::pki();
    // Room for four events in the queue, eight in the backlog: enough for a burst of two
    // (Armed, two Sent, two Done), not for every report of a flapping pool as well.
    let mut rig = Rig::build(target(&pki, 2), &pki, 4);
    rig.drain = false;
    rig.run_until(50 * MS, |r| r.app.conns.iter().all(|c| c.is_ready()));
    // The pool flaps a few times while nobody reads the events.
    for _ in 0..5 {
        for serial in rig.open() {
            rig.server.close(serial, true);
        }
        rig.run_for(20 * MS);
    }
    rig.run_for(2 * MS);
    rig.arm(1, 2, Trigger::Manual);
    rig.fire(1);
    rig.run_for(10 * MS);
    assert_eq!(rig.server.orders().len(), 2);
    assert!(rig.events.is_full());

    // Now drain, one turn at a time, as a slow control plane would.
    rig.drain = true;
    rig.run_for(10 * MS);
    assert_eq!(rig.app.events_dropped, 0);
    assert_eq!(rig.armed(1), Some(2));
    assert_eq!(rig.sents(1).len(), 2);
    let done = rig.dones(1);
    assert_eq!(done.len(), 2, "{:?}", rig.seen);
    assert!(done.iter().all(|d| d.outcome == Outcome::Status(200)));
    let armed_at = rig.seen.iter().position(|e| {
        matches!(
            e,
            Event::Ack {
                result: Ok(Accepted::Armed { .. }),
                ..
            }
        )
    });
    let sent_at = rig
        .seen
        .iter()
        .position(|e| matches!(e, Event::Sent { .. }));
    let done_at = rig.seen.iter().position(|e| matches!(e, Event::Done(_)));
    assert!(armed_at < sent_at && sent_at < done_at, "order kept");
    assert_eq!(rig.warm(), Some((2, 2)), "the last pool report is current");
}

#[test]
fn send_warming_runs_while_armed_and_pauses_before_a_deadline() {
    let mut rig = Rig::new(1);
    rig.warm_up();
    let deadline = rig.now + 2_000_000; // 2 ms ahead
    rig.arm(9, 1, Trigger::At(deadline));
    let quiet_from = deadline - rig.app.warming.quiet_ns;
    // Fine turns (10 µs) from 500 µs before the deadline to the fire.
    let start = rig.app.warmings;
    let mut warmed_in_quiet = 0;
    while rig.sents(9).is_empty() {
        let step = if rig.now + 500_000 < deadline {
            STEP
        } else {
            10_000
        };
        let before = rig.app.warmings;
        rig.now += step;
        rig.app.turn(rig.now);
        rig.take_events();
        if rig.now > quiet_from && rig.sents(9).is_empty() {
            warmed_in_quiet += rig.app.warmings - before;
        }
    }
    assert!(
        rig.app.warmings > start + 10,
        "warmed {} times while armed",
        rig.app.warmings - start
    );
    assert_eq!(
        warmed_in_quiet, 0,
        "no warming in the last 100 µs before the deadline"
    );
    assert_eq!(rig.await_done(9, 1)[0].outcome, Outcome::Status(200));
}

/// Turns `fault` on for `run` ns of a warm single-connection pool, checks the
/// connection was replaced, turns it off and checks the pool warms again and serves.
fn replaced_then_serves(
    fault: impl Fn(&mut crate::link::memory::Behavior, bool),
    run: u64,
    why: &str,
) {
    let mut rig = Rig::new(1);
    rig.warm_up();
    let connects = rig.server.connects().len();
    rig.server.behave(|b| fault(b, true));
    rig.run_for(run);
    assert!(rig.server.connects().len() > connects, "{why}");
    rig.server.behave(|b| fault(b, false));
    assert!(rig.run_until(2_000 * MS, Rig::is_warm));
    rig.arm(1, 1, Trigger::Manual);
    rig.fire(1);
    assert_eq!(rig.await_done(1, 1)[0].outcome, Outcome::Status(200));
}

#[test]
fn a_keep_warm_the_server_never_answers_retires_the_connection() {
    // The server stalls; the next keep-warm goes unanswered.
    replaced_then_serves(
        |b, on| b.drop_all = on,
        WARM_INTERVAL + 2 * RESPONSE_TIMEOUT,
        "a dead connection must be replaced, not counted warm",
    );
}

#[test]
fn connection_close_in_a_response_reconnects_at_once() {
    // The next keep-warm's answer says `Connection: close`: the connection is replaced
    // right away, without waiting for the server's FIN.
    replaced_then_serves(
        |b, on| b.warm_close_header = on,
        WARM_INTERVAL + 10 * MS,
        "reconnected after Connection: close",
    );
}

#[test]
fn a_lost_order_is_resent_identical_within_a_few_round_trips() {
    let mut rig = Rig::new(1);
    rig.warm_up();
    let done = rig.fire_through(21, |b| b.lose_sends = 1);
    assert_eq!(done.outcome, Outcome::Status(200));
    assert_eq!(done.stamps.retransmits, 1, "{done:?}");
    // A round trip here is one turn (100 µs): the resend went after max(2·SRTT, 200 µs),
    // not after a stack's RTO.
    assert!(
        done.stamps.complete_ns - done.stamps.trigger_ns <= MS,
        "answered {} ns after the trigger",
        done.stamps.complete_ns - done.stamps.trigger_ns
    );
    // The server took it once, and what was resent is exactly what was sent.
    let orders = rig.server.orders();
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(orders[0].key.as_deref(), Some(key(21).as_str()));
    let serial = orders[0].serial;
    let sent = rig.server.log(serial).sends.last().cloned().unwrap();
    let slot = rig.app.conns[0].link_id().unwrap().0;
    assert_eq!(rig.server.retransmits(slot), vec![sent]);
}

#[test]
fn an_answer_late_by_its_own_loss_does_not_slow_the_next_resend() {
    let mut rig = Rig::new(1);
    rig.warm_up();
    let lost_order = |rig: &mut Rig, arm| {
        let done = rig.fire_through(arm, |b| b.lose_sends = 1);
        assert_eq!(done.outcome, Outcome::Status(200));
        assert_eq!(done.stamps.retransmits, 1, "{done:?}");
        done.stamps.complete_ns - done.stamps.trigger_ns
    };
    let clean = lost_order(&mut rig, 39);
    // Answers lost on the way back: the order is resent (its acknowledgement rode on
    // the lost answer), and the server acknowledges the copy at once and resends its
    // answer, so that answer's time is the resend's wait, not how fast it answers.
    for arm in 40..46 {
        let done = rig.fire_through(arm, |b| b.lose_answers = 1);
        assert_eq!(done.outcome, Outcome::Status(200));
        assert_eq!(done.stamps.retransmits, 1, "{done:?}");
    }
    assert_eq!(rig.server.orders().len(), 7);
    // An order lost on the way out is then resent as soon as before them.
    let after = lost_order(&mut rig, 47);
    assert!(
        after <= clean + STEP,
        "a lost order answered {after} ns after its trigger, {clean} ns before the lost answers"
    );
}

#[test]
fn an_answer_lost_after_its_order_was_acknowledged_is_probed_for() {
    let mut rig = Rig::new(1);
    rig.warm_up();
    // A slow server: the order is resent before it answers, acknowledged at once, and
    // then its answer is lost; its own timer would resend it after 200 ms.
    let done = rig.fire_through(48, |b| {
        b.order_delay_ns = 2 * MS;
        b.lose_answers = 1;
        b.answer_recovery_ns = 200 * MS;
    });
    assert_eq!(done.outcome, Outcome::Status(200));
    let took = done.stamps.complete_ns - done.stamps.trigger_ns;
    assert!(took < 10 * MS, "answered {took} ns after the trigger");
    let slot = rig.app.conns[0].link_id().unwrap().0;
    assert!(rig.server.probes(slot) >= 1);
    assert_eq!(
        rig.app.conns[0].tail_probes as usize,
        rig.server.probes(slot)
    );
    assert_eq!(rig.server.orders().len(), 1);
    // Bounded: a server that stays silent gets a few probes, not one per turn.
    let before = rig.app.conns[0].tail_probes;
    let done = rig.fire_through(49, |b| b.drop_orders = true);
    assert_eq!(done.outcome, Outcome::Unknown(Unknown::Timeout));
    let probes = rig.app.conns[0].tail_probes - before;
    assert_eq!(probes, u64::from(super::super::conn::RTX_EARLY_MAX));
}

#[test]
fn early_retransmission_is_bounded_and_never_duplicates_an_order() {
    let mut rig = Rig::new(1);
    rig.warm_up();
    // A blackhole toward the server: the order and every resend are lost.
    let done = rig.fire_through(22, |b| {
        b.lose_sends = 1;
        b.lose_retransmits = true;
    });
    assert_eq!(done.outcome, Outcome::Unknown(Unknown::Timeout));
    assert_eq!(
        done.stamps.retransmits,
        super::super::conn::RTX_EARLY_MAX,
        "bounded, then left to the stack's own timer"
    );
    assert!(rig.server.orders().is_empty());
}

#[test]
fn a_server_closing_after_every_response_gets_backoff_not_a_reconnect_storm() {
    let mut rig = Rig::new(1);
    rig.warm_up();
    let before = rig.server.connects().len();
    rig.server.behave(|b| b.warm_close_header = true);
    // Each new connection sends a keep-warm at once and is told to close: without a
    // backoff that grows, 2 s would be ~2,000 handshakes (one per millisecond).
    rig.run_for(2_000 * MS);
    let connects = rig.server.connects().len() - before;
    assert!(
        (5..=15).contains(&connects),
        "{connects} connects in 2 s against a Connection: close server"
    );
    assert_eq!(rig.app.conns[0].reconnects as usize, connects);
    // Once it serves normally again, the pool is warm and orders go through.
    rig.server.behave(|b| b.warm_close_header = false);
    assert!(rig.run_until(2_000 * MS, Rig::is_warm));
    rig.arm(31, 1, Trigger::Manual);
    rig.fire(31);
    assert_eq!(rig.await_done(31, 1)[0].outcome, Outcome::Status(200));
}

/// Fire and disarm of one arm in the same turn, in either order: whichever the datapath
/// takes first wins, the other is refused, and the server sees the order at most once.
#[test]
fn fire_racing_disarm_has_one_winner_and_no_duplicate() {
    for fire_first in [true, false] {
        let mut rig = Rig::new(2);
        rig.warm_up();
        rig.arm(5, 2, Trigger::Manual);
        let (fire, disarm) = (
            Command::Fire { req: 51, arm: 5 },
            Command::Disarm { req: 52, arm: 5 },
        );
        if fire_first {
            rig.command(fire);
            rig.command(disarm);
        } else {
            rig.command(disarm);
            rig.command(fire);
        }
        rig.turn();
        rig.run_for(200 * MS);
        let answered = |req: u64| {
            rig.seen.iter().find_map(|e| match e {
                Event::Ack { req: r, result } if *r == req => Some(*result),
                _ => None,
            })
        };
        let (fired, disarmed) = (answered(51).unwrap(), answered(52).unwrap());
        if fire_first {
            assert!(
                matches!(fired, Ok(Accepted::Fired { sent: 2 })),
                "{fired:?}"
            );
            assert_eq!(disarmed, Err(Reject::AlreadyFired));
            assert_eq!(
                rig.server.orders().len(),
                2,
                "one per connection of the burst"
            );
            assert_eq!(rig.dones(5).len(), 2);
        } else {
            assert_eq!(disarmed, Ok(Accepted::Disarmed));
            assert_eq!(fired, Err(Reject::UnknownArm));
            assert!(rig.server.orders().is_empty());
            assert!(rig.dones(5).is_empty());
        }
        let keys: std::collections::HashSet<_> =
            rig.server.orders().iter().map(|o| o.serial).collect();
        assert_eq!(
            keys.len(),
            rig.server.orders().len(),
            "no connection got it twice"
        );
    }
}
