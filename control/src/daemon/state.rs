//! What the daemon knows about the datapath, kept up to date from its events: each
//! target's pool, last error and last clock sync; every arm and its outcomes; the stats;
//! probe answers for a running sync. Request handlers read it and wait on it; the event
//! pump, the arm handlers and start-up recovery write it.
//!
//! A `Mutex` is fine here: this is the control side. The datapath never sees it.

pub use super::arm_record::{outcome_view, stamps_view, ArmRecord, ProbeAnswer};
use super::lifecycle::ArmStep;
use crate::protocol::{
    ArmState, FireOutcome, JournalStatus, PlacementStatus, QueueStatus, StatusReply, SyncReply,
    TargetStatus,
};
use crate::stats::prometheus::{Gauges, TargetGauges};
use crate::stats::Stats;
use quickdraw_datapath::order::{Accepted, ArmId, Event, Reject, RequestId, Stamps};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// Finished arms kept for `fire`/`arms`/`status` after they close; older ones are
/// forgotten so a long-running daemon does not grow without bound.
pub const CLOSED_ARMS_KEPT: usize = 256;
/// The window of the per-target fire-rate cap.
const RATE_WINDOW_NS: u64 = 60_000_000_000;
/// Probe answers kept for a sync to pick up; a sync takes each as it comes.
const PROBES_KEPT: usize = 64;

/// One target's pool, as last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    pub warm: usize,
    pub wanted: usize,
    pub last_error: Option<String>,
    pub errors: u64,
    /// The last sync, and when it was taken (CLOCK_MONOTONIC ns).
    pub sync: Option<(SyncReply, u64)>,
}

/// What a command sent to the datapath was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    Arm(ArmId),
    Fire(ArmId),
    Disarm(ArmId),
    Probe,
}

/// A command in flight and, once it came, the datapath's answer.
#[derive(Debug)]
struct InFlight {
    ask: Ask,
    answer: Option<Result<Accepted, Reject>>,
    /// Its sender stopped waiting: the answer, when it comes, is applied and dropped.
    abandoned: bool,
}

/// The daemon's view of the datapath.
#[derive(Debug)]
pub struct State {
    pub backend: &'static str,
    pub bind_mode: &'static str,
    pub pinned: bool,
    /// The datapath thread is alive.
    pub running: bool,
    /// Set once the daemon has stopped the datapath and removed its socket.
    pub stopped: bool,
    /// Set once the `down` reply is written, so the daemon may exit.
    pub down_replied: bool,
    pub pools: Vec<Pool>,
    pub stats: Stats,
    pub journal: Option<JournalStatus>,
    /// Where the metrics endpoint listens.
    pub metrics: Option<String>,
    /// Receive frames per NIC queue, from the datapath's last counters.
    pub queues: Vec<QueueStatus>,
    /// Where the datapath thread runs.
    pub placement: Option<PlacementStatus>,
    /// The last journal write reached the disk.
    pub journal_healthy: bool,
    pub probes: BTreeMap<u64, ProbeAnswer>,
    /// Requests sent per target in the last minute: (trigger ns, target, count).
    sends: VecDeque<(u64, usize)>,
    arms: BTreeMap<ArmId, ArmRecord>,
    next_arm: ArmId,
    requests: BTreeMap<RequestId, InFlight>,
    next_req: RequestId,
}

impl State {
    pub fn new(
        backend: &'static str,
        bind_mode: &'static str,
        pinned: bool,
        targets: &[String],
    ) -> State {
        let pools = targets
            .iter()
            .map(|name| Pool {
                name: name.clone(),
                warm: 0,
                wanted: 0,
                last_error: None,
                errors: 0,
                sync: None,
            })
            .collect();
        State {
            backend,
            bind_mode,
            pinned,
            running: true,
            stopped: false,
            down_replied: false,
            pools,
            stats: Stats::new(backend, targets),
            journal: None,
            metrics: None,
            queues: Vec::new(),
            placement: None,
            journal_healthy: true,
            probes: BTreeMap::new(),
            sends: VecDeque::new(),
            arms: BTreeMap::new(),
            next_arm: 1,
            requests: BTreeMap::new(),
            next_req: 1,
        }
    }

    /// Every target has all the connections it wants, TLS up.
    pub fn ready(&self) -> bool {
        self.running
            && self
                .pools
                .iter()
                .all(|p| p.wanted > 0 && p.warm >= p.wanted)
    }

    /// A fresh arm id: a counter, never reused (the journal's ids included).
    pub fn next_arm_id(&mut self) -> ArmId {
        let id = self.next_arm;
        self.next_arm += 1;
        id
    }

    /// Ids from here on are above `id` (journaled arms keep theirs).
    pub fn reserve_ids_through(&mut self, id: ArmId) {
        self.next_arm = self.next_arm.max(id + 1);
    }

    /// A fresh request id for a command about to be sent; its answer is kept for
    /// [`State::answer`] until [`State::settle`].
    pub fn ask(&mut self, ask: Ask) -> RequestId {
        let req = self.next_req;
        self.next_req += 1;
        self.requests.insert(
            req,
            InFlight {
                ask,
                answer: None,
                abandoned: false,
            },
        );
        req
    }

    /// What command `req` was about.
    pub fn asked(&self, req: RequestId) -> Option<Ask> {
        self.requests.get(&req).map(|r| r.ask)
    }

    /// The datapath's answer to `req`, once it came.
    pub fn answer(&self, req: RequestId) -> Option<Result<Accepted, Reject>> {
        self.requests.get(&req).and_then(|r| r.answer)
    }

    /// Its sender is done with `req`: forgotten if answered, else dropped when it is.
    pub fn settle(&mut self, req: RequestId) {
        match self.requests.get_mut(&req) {
            Some(r) if r.answer.is_none() => r.abandoned = true,
            _ => {
                self.requests.remove(&req);
            }
        }
    }

    /// Moves an arm on; a step its state does not allow is logged and changes nothing.
    pub fn step(&mut self, id: ArmId, step: ArmStep) {
        match self.arms.get_mut(&id).map(|a| a.step(step)) {
            Some(Ok(_)) => {}
            Some(Err(illegal)) => tracing::warn!(arm = id, "ignored: {illegal}"),
            None => tracing::debug!(arm = id, ?step, "step of an arm this daemon does not know"),
        }
    }

    fn acked(&mut self, req: RequestId, result: Result<Accepted, Reject>) {
        let Some(r) = self.requests.get_mut(&req) else {
            return tracing::debug!(req, "answer to a request this daemon did not send");
        };
        let ask = r.ask;
        if r.abandoned {
            self.requests.remove(&req);
        } else {
            r.answer = Some(result);
        }
        match (ask, result) {
            (Ask::Arm(arm), Ok(_)) => self.step(arm, ArmStep::Acked),
            (Ask::Arm(arm), Err(reason)) => {
                self.step(arm, ArmStep::Refused);
                self.update(arm, |a| a.refusal = Some(reason));
            }
            (Ask::Disarm(arm), Ok(_)) => self.step(arm, ArmStep::Disarmed),
            (Ask::Fire(arm) | Ask::Disarm(arm), Err(reason)) => {
                self.update(arm, |a| a.refusal = Some(reason))
            }
            (Ask::Fire(_) | Ask::Probe, _) => {}
        }
    }

    pub fn insert_arm(&mut self, record: ArmRecord) {
        self.arms.insert(record.id, record);
        self.forget_old_arms();
    }

    pub fn arm(&self, id: ArmId) -> Option<&ArmRecord> {
        self.arms.get(&id)
    }

    pub fn arm_mut(&mut self, id: ArmId) -> Option<&mut ArmRecord> {
        self.arms.get_mut(&id)
    }

    pub fn arms(&self) -> impl Iterator<Item = &ArmRecord> {
        self.arms.values()
    }

    /// Manual arms waiting for a fire.
    pub fn armed_manual(&self) -> impl Iterator<Item = &ArmRecord> {
        self.arms
            .values()
            .filter(|a| a.state() == ArmState::Armed && a.schedule.is_none())
    }

    pub fn open_arms(&self) -> usize {
        self.arms.values().filter(|a| a.state().is_open()).count()
    }

    /// A request sent before a restart (from the journal, oldest first, monotonic ns):
    /// the rate cap counts it until it is a minute old.
    pub fn restore_send(&mut self, trigger_ns: u64, target: usize) {
        self.sends.push_back((trigger_ns, target));
    }

    /// Requests committed on `target` for the rate cap: sent in the last minute, plus
    /// held by arms not yet fired.
    pub fn committed(&mut self, target: usize, now_ns: u64) -> usize {
        while self
            .sends
            .front()
            .is_some_and(|&(t, _)| t + RATE_WINDOW_NS < now_ns)
        {
            self.sends.pop_front();
        }
        let sent = self.sends.iter().filter(|&&(_, t)| t == target).count();
        let held: usize = self
            .arms
            .values()
            .filter(|a| a.target == target)
            .filter(|a| matches!(a.state(), ArmState::Pending | ArmState::Armed))
            .map(|a| a.conns)
            .sum();
        sent + held
    }

    /// Records one outcome (from the datapath, or recovered from the journal).
    pub fn add_outcome(&mut self, id: ArmId, outcome: FireOutcome) {
        let Some(a) = self.arms.get_mut(&id) else {
            return;
        };
        if let Err(illegal) = a.step(ArmStep::Outcome) {
            return tracing::warn!(arm = id, "outcome ignored: {illegal}");
        }
        let target = a.target;
        a.outcomes.push(outcome.clone());
        self.stats.outcome(target, &outcome);
    }

    /// The first sign of a fire: count it, and a scheduled fire's error.
    fn fire_seen(&mut self, id: ArmId, stamps: &Stamps) {
        let Some(a) = self.arms.get_mut(&id) else {
            return;
        };
        if a.fire_counted {
            return;
        }
        a.fire_counted = true;
        let view = stamps_view(stamps);
        a.error_ns = view.error_ns();
        let (target, event) = (a.target, a.event);
        self.stats.fired(target, &view);
        if event {
            self.stats.count(target, |c| c.event_fires += 1);
        }
    }

    /// Takes one datapath event into account.
    pub fn apply(&mut self, event: Event) {
        match event {
            Event::Ack { req, result } => self.acked(req, result),
            Event::Sent { arm, stamps, .. } => {
                self.fire_seen(arm, &stamps);
                if let Some(a) = self.arms.get(&arm) {
                    self.sends.push_back((stamps.trigger_ns, a.target));
                    let target = a.target;
                    let event = a.event;
                    self.stats.count(target, |c| c.requests += 1);
                    if event {
                        self.stats
                            .event_sent(target, stamps.trigger_ns, stamps.tx_ns);
                    }
                }
                self.step(arm, ArmStep::Sent);
            }
            Event::Done(record) => {
                self.fire_seen(record.arm, &record.stamps);
                self.add_outcome(record.arm, outcome_view(&record));
            }
            Event::Pool {
                target,
                warm,
                wanted,
            } => {
                if let Some(p) = self.pools.get_mut(target) {
                    // Each connection leaving the pool is reconnected by the datapath.
                    let left = p.warm.saturating_sub(warm) as u64;
                    self.stats.count(target, |c| c.reconnects += left);
                    (p.warm, p.wanted) = (warm, wanted);
                }
            }
            Event::ConnError {
                target,
                conn,
                message,
            } => {
                if let Some(p) = self.pools.get_mut(target) {
                    // A pool retries every connection with backoff: say a failure once,
                    // not once per attempt.
                    if p.last_error.as_deref() != Some(&*message) {
                        tracing::warn!(target = %p.name, conn, "{message}");
                    } else {
                        tracing::debug!(target = %p.name, conn, "{message}");
                    }
                    p.last_error = Some(message.to_string());
                    p.errors += 1;
                    self.stats.count(target, |c| c.conn_errors += 1);
                }
            }
            Event::Counters { counters, .. } => self.stats.link_counters(&counters),
            Event::Queues { counts, .. } => {
                self.queues = counts
                    .iter()
                    .map(|(queue, rx_frames)| QueueStatus { queue, rx_frames })
                    .collect();
            }
            Event::Probed {
                req,
                sent_ns,
                first_byte_ns,
                status,
                date,
            } => {
                if self.probes.len() >= PROBES_KEPT {
                    self.probes.pop_first();
                }
                self.probes.insert(
                    req,
                    ProbeAnswer {
                        sent_ns,
                        first_byte_ns,
                        status,
                        date,
                    },
                );
            }
            // Raw frames are the benchmark's floor measurement; the daemon sends none.
            other => tracing::debug!(event = ?other, "event the daemon does not track"),
        }
    }

    fn update(&mut self, id: ArmId, f: impl FnOnce(&mut ArmRecord)) {
        match self.arms.get_mut(&id) {
            Some(a) => f(a),
            None => tracing::debug!(arm = id, "event for an arm this daemon does not know"),
        }
    }

    fn forget_old_arms(&mut self) {
        let closed: Vec<ArmId> = self
            .arms
            .values()
            .filter(|a| !a.state().is_open())
            .map(|a| a.id)
            .collect();
        for id in closed
            .iter()
            .take(closed.len().saturating_sub(CLOSED_ARMS_KEPT))
        {
            self.arms.remove(id);
        }
    }

    /// What the metrics show beside the stats.
    pub fn gauges(&self) -> Gauges {
        let targets = self
            .pools
            .iter()
            .enumerate()
            .map(|(t, p)| TargetGauges {
                warm: p.warm,
                wanted: p.wanted,
                open_arms: self
                    .arms
                    .values()
                    .filter(|a| a.target == t && a.state().is_open())
                    .count(),
                clock: p
                    .sync
                    .as_ref()
                    .map(|(y, _)| (y.offset_ns, y.uncertainty_ns)),
            })
            .collect();
        Gauges {
            version: env!("CARGO_PKG_VERSION"),
            targets,
            running: self.running && !self.stopped,
            journal_healthy: self.journal_healthy,
        }
    }

    /// The `status` reply.
    pub fn status(&self) -> StatusReply {
        StatusReply {
            backend: self.backend.to_owned(),
            bind_mode: self.bind_mode.to_owned(),
            pinned: self.pinned,
            running: self.running,
            ready: self.ready(),
            targets: self
                .pools
                .iter()
                .map(|p| TargetStatus {
                    name: p.name.clone(),
                    warm: p.warm,
                    wanted: p.wanted,
                    last_error: p.last_error.clone(),
                    errors: p.errors,
                    sync: p.sync.as_ref().map(|(s, _)| s.clone()),
                })
                .collect(),
            arms: self
                .arms
                .values()
                .filter(|a| a.state().is_open())
                .map(ArmRecord::status)
                .collect(),
            journal: self.journal.clone(),
            metrics: self.metrics.clone(),
            queues: self.queues.clone(),
            placement: self.placement.clone(),
        }
    }
}

/// The state and a signal that it changed, shared by the pump, the handlers and the
/// daemon's main thread.
#[derive(Debug)]
pub struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    pub fn new(state: State) -> Shared {
        Shared {
            state: Mutex::new(state),
            changed: Condvar::new(),
        }
    }

    /// The state, even if a handler panicked while holding it: every update is a few
    /// field writes, so what it left is still worth reporting.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Changes the state and wakes every waiter.
    pub fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let r = f(&mut self.lock());
        self.changed.notify_all();
        r
    }

    /// Waits until `check` returns something, or `deadline` passes (then `None`).
    pub fn wait_for<R>(
        &self,
        deadline: Instant,
        mut check: impl FnMut(&State) -> Option<R>,
    ) -> Option<R> {
        let mut state = self.lock();
        loop {
            if let Some(r) = check(&state) {
                return Some(r);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            state = match self.changed.wait_timeout(state, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickdraw_datapath::order::{FireRecord, Outcome};
    use std::sync::Arc;

    fn record(id: ArmId, conns: usize) -> ArmRecord {
        ArmRecord::new(id, ("1001", 1, &format!("key{id}")), (0, "lab"), conns)
    }

    fn done(arm: ArmId, conn: usize) -> Event {
        Event::Done(FireRecord {
            arm,
            conn,
            local: None,
            stamps: Stamps::default(),
            outcome: Outcome::Status(200),
        })
    }

    #[test]
    fn events_move_an_arm_through_its_life() {
        let mut s = State::new("kernel", "kernel", false, &["lab".into()]);
        assert!(!s.ready());
        s.apply(Event::Pool {
            target: 0,
            warm: 2,
            wanted: 2,
        });
        assert!(s.ready());
        let id = s.next_arm_id();
        assert_eq!((id, s.next_arm_id()), (1, 2));
        s.insert_arm(record(id, 2));
        let req = s.ask(Ask::Arm(id));
        s.apply(Event::Ack {
            req,
            result: Ok(Accepted::Armed { conns: 2 }),
        });
        assert_eq!(s.answer(req), Some(Ok(Accepted::Armed { conns: 2 })));
        s.settle(req);
        assert_eq!(s.answer(req), None, "settled requests are forgotten");
        assert_eq!(s.armed_manual().count(), 1);
        s.apply(Event::Sent {
            arm: id,
            conn: 0,
            local: None,
            stamps: Stamps::default(),
        });
        assert_eq!(s.arm(id).unwrap().state(), ArmState::Fired);
        s.apply(done(id, 0));
        assert_eq!(s.arm(id).unwrap().state(), ArmState::Fired);
        assert_eq!(s.status().arms.len(), 1);
        s.apply(done(id, 1));
        assert_eq!(s.arm(id).unwrap().state(), ArmState::Done);
        assert!(s.status().arms.is_empty(), "done arms are not open");
        s.apply(done(99, 0)); // unknown arm: ignored
    }

    #[test]
    fn rejections_and_errors_are_recorded() {
        let mut s = State::new("af_xdp", "copy", true, &["lab".into()]);
        s.insert_arm(record(1, 1));
        let req = s.ask(Ask::Arm(1));
        // Its sender gave up waiting: the answer still moves the arm, then is dropped.
        s.settle(req);
        s.apply(Event::Ack {
            req,
            result: Err(Reject::TooManyArms),
        });
        let a = s.arm(1).unwrap();
        assert_eq!(
            (a.state(), a.refusal),
            (ArmState::Rejected, Some(Reject::TooManyArms))
        );
        assert_eq!(s.asked(req), None);
        s.apply(Event::Ack {
            req: 999,
            result: Ok(Accepted::Disarmed),
        }); // an answer nobody asked for: ignored
        s.apply(Event::ConnError {
            target: 0,
            conn: 3,
            message: Arc::from("lab: certificate not trusted"),
        });
        s.apply(Event::ConnError {
            target: 7,
            conn: 0,
            message: Arc::from("ignored"),
        });
        let st = s.status();
        assert_eq!(
            st.targets[0].last_error.as_deref(),
            Some("lab: certificate not trusted")
        );
        assert_eq!(st.targets[0].errors, 1);
        assert!(!st.ready);
    }

    #[test]
    fn closed_arms_are_forgotten_beyond_the_cap() {
        let mut s = State::new("kernel", "kernel", false, &["lab".into()]);
        for _ in 0..CLOSED_ARMS_KEPT + 10 {
            let id = s.next_arm_id();
            s.insert_arm(record(id, 1));
            let req = s.ask(Ask::Disarm(id));
            s.apply(Event::Ack {
                req,
                result: Ok(Accepted::Disarmed),
            });
        }
        let open = s.next_arm_id();
        s.insert_arm(record(open, 1));
        assert_eq!(s.arms.len(), CLOSED_ARMS_KEPT + 1);
        assert!(s.arm(open).is_some() && s.arm(1).is_none());
    }

    #[test]
    fn waiters_wake_on_updates_and_time_out() {
        let shared = Arc::new(Shared::new(State::new(
            "kernel",
            "kernel",
            false,
            &["lab".into()],
        )));
        let soon = Instant::now() + std::time::Duration::from_millis(20);
        assert_eq!(shared.wait_for(soon, |s| s.ready().then_some(())), None);
        let s2 = shared.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            s2.update(|s| {
                s.apply(Event::Pool {
                    target: 0,
                    warm: 1,
                    wanted: 1,
                })
            });
        });
        let later = Instant::now() + std::time::Duration::from_secs(5);
        assert_eq!(shared.wait_for(later, |s| s.ready().then_some(7)), Some(7));
        t.join().unwrap();
    }
}
