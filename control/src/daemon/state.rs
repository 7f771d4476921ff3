//! What the daemon knows about the datapath, kept up to date from its events: each
//! target's pool and last error, every arm and its outcomes. Request handlers read it and
//! wait on it; only the event pump and the arm handler write it.
//!
//! A `Mutex` is fine here: this is the control side. The datapath never sees it.

use crate::protocol::{ArmState, ArmStatus, StatusReply, TargetStatus};
use quickdraw_datapath::order::{ArmId, Event, FireRecord, Reject};
use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// Finished arms kept for `fire`/`status` after they close; older ones are forgotten so
/// a long-running daemon does not grow without bound.
const CLOSED_ARMS_KEPT: usize = 256;

/// One target's pool, as last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    pub warm: usize,
    pub wanted: usize,
    pub last_error: Option<String>,
    pub errors: u64,
}

/// One arm, from the arm request to its last outcome.
#[derive(Debug, Clone)]
pub struct ArmRecord {
    pub id: ArmId,
    pub sku: String,
    pub qty: u32,
    pub key: String,
    pub target: usize,
    pub conns: usize,
    pub state: ArmState,
    /// Why the datapath last refused something about this arm (the arm itself, or a
    /// fire or disarm of it).
    pub refusal: Option<Reject>,
    /// Counts refusals, so a waiter can tell a new one from an old one.
    pub refusals: u32,
    pub outcomes: Vec<FireRecord>,
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
    arms: BTreeMap<ArmId, ArmRecord>,
    next_arm: ArmId,
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
            arms: BTreeMap::new(),
            next_arm: 1,
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

    /// A fresh arm id: a counter, never reused while the daemon runs.
    pub fn next_arm_id(&mut self) -> ArmId {
        let id = self.next_arm;
        self.next_arm += 1;
        id
    }

    pub fn insert_arm(&mut self, record: ArmRecord) {
        self.arms.insert(record.id, record);
        self.forget_old_arms();
    }

    pub fn arm(&self, id: ArmId) -> Option<&ArmRecord> {
        self.arms.get(&id)
    }

    /// Arms waiting for a manual fire.
    pub fn armed(&self) -> impl Iterator<Item = &ArmRecord> {
        self.arms.values().filter(|a| a.state == ArmState::Armed)
    }

    /// Sets an arm's state outside the datapath's events (an arm that never reached it).
    pub fn set_state(&mut self, id: ArmId, state: ArmState) {
        self.update(id, |a| a.state = state);
    }

    /// Takes one datapath event into account.
    pub fn apply(&mut self, event: Event) {
        match event {
            Event::Armed { arm, .. } => self.update(arm, |a| {
                if a.state == ArmState::Pending {
                    a.state = ArmState::Armed;
                }
            }),
            Event::Rejected { arm, reason } => self.update(arm, |a| {
                if a.state == ArmState::Pending {
                    a.state = ArmState::Rejected;
                }
                a.refusal = Some(reason);
                a.refusals += 1;
            }),
            Event::Disarmed { arm } => self.update(arm, |a| a.state = ArmState::Disarmed),
            Event::Sent { arm, .. } => self.update(arm, |a| {
                if a.state.is_open() {
                    a.state = ArmState::Fired;
                }
            }),
            Event::Done(record) => self.update(record.arm, |a| {
                a.outcomes.push(record);
                a.state = if a.outcomes.len() >= a.conns {
                    ArmState::Done
                } else {
                    ArmState::Fired
                };
            }),
            Event::Pool {
                target,
                warm,
                wanted,
            } => {
                if let Some(p) = self.pools.get_mut(target) {
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
                }
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
            .filter(|a| !a.state.is_open())
            .map(|a| a.id)
            .collect();
        for id in closed
            .iter()
            .take(closed.len().saturating_sub(CLOSED_ARMS_KEPT))
        {
            self.arms.remove(id);
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
                })
                .collect(),
            arms: self
                .arms
                .values()
                .filter(|a| a.state.is_open())
                .map(|a| ArmStatus {
                    arm: a.id,
                    sku: a.sku.clone(),
                    qty: a.qty,
                    key: a.key.clone(),
                    target: self
                        .pools
                        .get(a.target)
                        .map_or_else(String::new, |p| p.name.clone()),
                    conns: a.conns,
                    state: a.state,
                    outcomes: a.outcomes.len(),
                })
                .collect(),
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
    use quickdraw_datapath::order::{Outcome, Stamps};
    use std::sync::Arc;

    fn record(id: ArmId, conns: usize) -> ArmRecord {
        ArmRecord {
            id,
            sku: "1001".into(),
            qty: 1,
            key: format!("key{id}"),
            target: 0,
            conns,
            state: ArmState::Pending,
            refusal: None,
            refusals: 0,
            outcomes: Vec::new(),
        }
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
        s.apply(Event::Armed { arm: id, conns: 2 });
        assert_eq!(s.armed().count(), 1);
        s.apply(Event::Sent {
            arm: id,
            conn: 0,
            local: None,
            stamps: Stamps::default(),
        });
        assert_eq!(s.arm(id).unwrap().state, ArmState::Fired);
        s.apply(done(id, 0));
        assert_eq!(s.arm(id).unwrap().state, ArmState::Fired);
        assert_eq!(s.status().arms.len(), 1);
        s.apply(done(id, 1));
        assert_eq!(s.arm(id).unwrap().state, ArmState::Done);
        assert!(s.status().arms.is_empty(), "done arms are not open");
        s.apply(done(99, 0)); // unknown arm: ignored
    }

    #[test]
    fn rejections_and_errors_are_recorded() {
        let mut s = State::new("af_xdp", "copy", true, &["lab".into()]);
        s.insert_arm(record(1, 1));
        s.apply(Event::Rejected {
            arm: 1,
            reason: Reject::TooManyArms,
        });
        let a = s.arm(1).unwrap();
        assert_eq!(
            (a.state, a.refusal, a.refusals),
            (ArmState::Rejected, Some(Reject::TooManyArms), 1)
        );
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
            s.apply(Event::Disarmed { arm: id });
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
