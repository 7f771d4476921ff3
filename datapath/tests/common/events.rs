//! An appliance with event sources driven on the test thread, for the event lab tests:
//! arm on a source, count fires, measure allocations from an event to its kick.

use super::alloc::measure;
use super::fire::{order, target, POOL};
use crossbeam_queue::ArrayQueue;
use quickdraw_datapath::appliance::Appliance;
use quickdraw_datapath::clock::monotonic_ns;
use quickdraw_datapath::event::predicate::Matcher;
use quickdraw_datapath::event::source::SourceSpec;
use quickdraw_datapath::link::Link;
use quickdraw_datapath::order::{ArmSpec, Command, Event, Outcome, Stamps, Trigger};
use quickdraw_datapath::poll::Turn;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// An appliance driven turn by turn on the test thread, and every event it reported.
pub struct Run<L: Link> {
    pub app: Appliance<L>,
    pub commands: Arc<ArrayQueue<Command>>,
    pub events: Arc<ArrayQueue<Event>>,
    pub seen: Vec<Event>,
}

impl<L: Link> Run<L> {
    /// An appliance on `link` with the lab target and `sources` (numbered in order),
    /// turned until its pool is warm and every source is live.
    pub fn start(link: L, ca: &Path, sources: Vec<SourceSpec>) -> Run<L> {
        let commands = Arc::new(ArrayQueue::new(64));
        let events = Arc::new(ArrayQueue::new(1024));
        let targets = vec![target(ca, Duration::from_secs(30))];
        let mut app = Appliance::new(link, targets, 16, commands.clone(), events.clone());
        let n = sources.len();
        for (i, spec) in sources.into_iter().enumerate() {
            assert_eq!(app.add_source(spec, 0), i);
        }
        let mut run = Run {
            app,
            commands,
            events,
            seen: Vec::new(),
        };
        run.turn_until("warm and live", Duration::from_secs(10), |r| {
            (0..n).all(|s| r.app.source_live(s))
                && r.seen
                    .iter()
                    .any(|e| matches!(e, Event::Pool { warm, .. } if *warm == POOL))
        });
        run.settle(Duration::from_millis(50));
        run
    }

    pub fn turn(&mut self) {
        self.app.turn(monotonic_ns());
        while let Some(e) = self.events.pop() {
            self.seen.push(e);
        }
    }

    pub fn turn_until(&mut self, what: &str, limit: Duration, done: impl Fn(&Self) -> bool) {
        let deadline = monotonic_ns() + limit.as_nanos() as u64;
        while monotonic_ns() < deadline {
            self.turn();
            if done(self) {
                return;
            }
        }
        panic!("timed out waiting for {what}: {:?}", self.seen);
    }

    pub fn settle(&mut self, d: Duration) {
        let end = monotonic_ns() + d.as_nanos() as u64;
        while monotonic_ns() < end {
            self.turn();
        }
    }

    pub fn arm(&mut self, arm: u64, source: usize, predicate: &str, key: &str) {
        let spec = ArmSpec {
            arm,
            target: 0,
            request: order("1001", key),
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
        self.turn_until("armed", Duration::from_secs(2), |r| {
            r.seen
                .iter()
                .any(|e| matches!(e, Event::Ack { req, result: Ok(_) } if *req == arm))
        });
    }

    pub fn stamps(&self, arm: u64) -> Stamps {
        self.seen
            .iter()
            .find_map(|e| match e {
                Event::Sent { arm: a, stamps, .. } if *a == arm => Some(*stamps),
                _ => None,
            })
            .expect("sent")
    }

    /// The receive stamp of `arm`'s fire: on AF_XDP when the event's frames were seen in
    /// the Rx ring, before the match (the trigger) and the kick; the kernel backend has
    /// none.
    pub fn check_receive_stamp(&self, arm: u64, backend: &str) {
        let st = self.stamps(arm);
        if backend == "af_xdp" {
            assert!(
                st.rx_ns > 0 && st.rx_ns <= st.trigger_ns && st.trigger_ns <= st.tx_ns,
                "{backend} arm {arm}: {st:?}"
            );
        } else {
            assert_eq!(st.rx_ns, 0, "{backend} arm {arm}");
        }
    }

    /// Disarms `arm` (under a request id apart from the arms', each arm being
    /// acknowledged under its own id) and turns 5 ms.
    pub fn disarm(&mut self, arm: u64) {
        self.commands
            .push(Command::Disarm {
                req: 1_000_000 + arm,
                arm,
            })
            .unwrap();
        self.settle(Duration::from_millis(5));
    }

    pub fn sent(&self, arm: u64) -> usize {
        self.seen
            .iter()
            .filter(|e| matches!(e, Event::Sent { arm: a, .. } if *a == arm))
            .count()
    }

    /// Turns, counting allocations, until `arm` has been sent; returns the allocations
    /// made from the first turn after the event left the server to the fire's kick.
    pub fn fire_allocations(&mut self, arm: u64) -> u64 {
        let mut total = 0;
        let deadline = monotonic_ns() + 2_000_000_000;
        while monotonic_ns() < deadline {
            let now = monotonic_ns();
            let (_, n) = measure(|| self.app.turn(now));
            total += n;
            while let Some(e) = self.events.pop() {
                self.seen.push(e);
            }
            if self.sent(arm) > 0 {
                return total;
            }
        }
        panic!("arm {arm} never fired: {:?}", self.seen);
    }

    pub fn outcome(&mut self, arm: u64) -> Outcome {
        self.turn_until("the outcome", Duration::from_secs(5), |r| {
            r.seen
                .iter()
                .any(|e| matches!(e, Event::Done(d) if d.arm == arm))
        });
        self.seen
            .iter()
            .find_map(|e| match e {
                Event::Done(d) if d.arm == arm => Some(d.outcome),
                _ => None,
            })
            .unwrap()
    }
}
