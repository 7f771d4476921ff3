//! Arming: an arm request (or a journaled arm at restart) → checks (caps, open arms,
//! the fire-rate cap, the schedule) → a journal line, made durable → the datapath's
//! `Arm` command → its acknowledgement. The reply goes out only after all of that.

use super::caps;
use super::order::{self, ArmError, Order};
use super::state::ArmRecord;
use super::Daemon;
use crate::journal::record::{ArmEntry, Record, ScheduledEntry};
use crate::protocol::{ArmReply, ArmRequest, ArmState, TriggerSpec};
use crate::timing::clock::{monotonic_ns, ClockPair};
use crate::timing::schedule::{self, Correction, Schedule, Window};
use crate::timing::text::parse_utc;
use quickdraw_datapath::order::{ArmId, ArmSpec, Command, Trigger};
use std::time::{Duration, Instant};

/// How long the datapath may take to acknowledge an arm: it reads commands every loop
/// turn, so anything near this means it is wedged.
pub(super) const ACK_WAIT: Duration = Duration::from_secs(2);

impl Daemon {
    pub(super) fn arm(&self, req: &ArmRequest) -> Result<ArmReply, String> {
        self.check_running()?;
        let key = order::new_key(&self.rng).map_err(|e| e.to_string())?;
        let order =
            order::prepare(&self.targets, req, &key).map_err(|e: ArmError| e.to_string())?;
        let schedule = self.schedule(&req.trigger, req.arrive, order.target)?;
        let target = &self.targets[order.target];
        let id = self.shared.update(|s| {
            caps::check(
                s,
                &self.targets,
                order.target,
                order.conns,
                self.limits.max_open_arms as usize,
                monotonic_ns(),
            )?;
            let id = s.next_arm_id();
            let mut record =
                ArmRecord::new(id, &req.sku, req.qty, &key, (order.target, &target.name));
            record.conns = order.conns;
            record.schedule = schedule;
            s.insert_arm(record);
            Ok::<_, String>(id)
        })?;
        let entry = ArmEntry {
            arm: id,
            key: key.clone(),
            sku: req.sku.clone(),
            qty: req.qty,
            target: target.name.clone(),
            conns: order.conns,
            at: schedule.map(|s| ScheduledEntry {
                at_ns: s.at_ns,
                fire_ns: s.fire_ns,
                correction_ns: s.correction_ns,
            }),
        };
        // Durable before the datapath can fire it: a crash from here on finds it.
        if let Err(e) = self.journal(Record::Arm(entry)) {
            self.shared.update(|s| s.set_state(id, ArmState::Rejected));
            return Err(e);
        }
        self.hand_over(id, order, schedule)?;
        self.shared.update(|s| s.stats.counters.arms += 1);
        tracing::info!(arm = id, sku = %req.sku, qty = req.qty, conns = req.conns,
            target = %target.name, scheduled = schedule.is_some(), "armed");
        let s = self.shared.lock();
        let a = s.arm(id).ok_or("the arm was forgotten")?;
        Ok(ArmReply {
            arm: id,
            key,
            target: target.name.clone(),
            conns: a.conns,
            scheduled: a.schedule_view(),
        })
    }

    /// Re-arms a journaled arm after a restart: same id, same key, same instant. Returns
    /// the state it ends in (armed, or missed when its time came too close meanwhile).
    pub(super) fn rearm(&self, entry: &ArmEntry) -> Result<ArmState, String> {
        let index = self
            .targets
            .iter()
            .position(|t| t.name == entry.target)
            .ok_or_else(|| format!("target {:?} is no longer configured", entry.target))?;
        let req = ArmRequest {
            sku: entry.sku.clone(),
            qty: entry.qty,
            conns: entry.conns,
            target: Some(entry.target.clone()),
            trigger: TriggerSpec::Manual,
            arrive: None,
        };
        let order = order::prepare(&self.targets, &req, &entry.key).map_err(|e| e.to_string())?;
        let schedule = match entry.at {
            None => None,
            Some(at) => {
                let now = ClockPair::now();
                let lead = Duration::from_millis(self.timing.min_lead_ms).as_nanos() as i64;
                if at.fire_ns.saturating_sub(now.real_ns) < lead {
                    return Ok(ArmState::Missed);
                }
                Some(Schedule {
                    at_ns: at.at_ns,
                    fire_ns: at.fire_ns,
                    deadline_ns: now.mono_of(at.fire_ns),
                    correction_ns: at.correction_ns,
                })
            }
        };
        self.shared.update(|s| {
            // A restart does not reset the caps: the send history came back from the
            // journal, and this arm is counted like a new one.
            let fits = caps::check(
                s,
                &self.targets,
                index,
                order.conns,
                self.limits.max_open_arms as usize,
                monotonic_ns(),
            );
            if let Err(e) = fits {
                s.set_state(entry.arm, ArmState::Rejected);
                if let Some(a) = s.arm_mut(entry.arm) {
                    a.recovered = Some("refused".into());
                }
                return Err(e);
            }
            let mut record = ArmRecord::new(
                entry.arm,
                &entry.sku,
                entry.qty,
                &entry.key,
                (index, &entry.target),
            );
            record.conns = order.conns;
            record.schedule = schedule;
            record.recovered = Some("rearmed".into());
            s.reserve_ids_through(entry.arm);
            s.insert_arm(record);
            Ok(())
        })?;
        self.journal(Record::Recovered {
            arm: entry.arm,
            how: "rearmed".into(),
        })?;
        self.hand_over(entry.arm, order, schedule)?;
        Ok(ArmState::Armed)
    }

    /// Gives the order to the datapath and waits for its answer.
    fn hand_over(&self, id: ArmId, order: Order, schedule: Option<Schedule>) -> Result<(), String> {
        let spec = ArmSpec {
            arm: id,
            target: order.target,
            request: order.request.into_boxed_slice(),
            conns: order.conns,
            trigger: schedule.map_or(Trigger::Manual, |s| Trigger::At(s.deadline_ns)),
        };
        if let Err(e) = self.push(Command::Arm(Box::new(spec))) {
            self.shared.update(|s| s.set_state(id, ArmState::Rejected));
            let _ = self.journal(Record::Rejected {
                arm: id,
                reason: e.clone(),
            });
            return Err(e);
        }
        let settled = self.shared.wait_for(Instant::now() + ACK_WAIT, |s| {
            let a = s.arm(id)?;
            (a.state != ArmState::Pending).then_some((a.state, a.refusal))
        });
        match settled {
            Some((ArmState::Rejected, reason)) => Err(format!(
                "the datapath refused arm {id}: {}",
                super::requests::describe(reason)
            )),
            Some(_) => Ok(()),
            None => Err(format!(
                "no answer from the datapath within {ACK_WAIT:?} (arm {id} is left pending)"
            )),
        }
    }

    /// The schedule of a trigger, decided now; `None` for a manual arm.
    fn schedule(
        &self,
        trigger: &TriggerSpec,
        arrive: Option<bool>,
        target: usize,
    ) -> Result<Option<Schedule>, String> {
        let now = ClockPair::now();
        let arrive_asked = arrive == Some(true);
        let arrive = arrive.unwrap_or(self.timing.arrive);
        let correction = |s: &Self| {
            if arrive {
                s.correction(target).map(Some)
            } else {
                Ok(None)
            }
        };
        let at_ns = match trigger {
            TriggerSpec::Manual if arrive_asked => {
                return Err("--arrive applies to scheduled arms (--at or --in)".into())
            }
            TriggerSpec::Manual => return Ok(None),
            TriggerSpec::At(text) => parse_utc(text).map_err(|e| e.to_string())?,
            TriggerSpec::InNs(ns) => {
                let ns = i64::try_from(*ns).map_err(|_| "--in is too long".to_owned())?;
                // "Arrive in 2 s": 2 s from now on the server's clock, whatever its offset.
                let offset = correction(self)?.map_or(0, |c: Correction| c.offset_ns);
                now.real_ns.saturating_add(ns).saturating_add(offset)
            }
        };
        let window = Window {
            min_lead: Duration::from_millis(self.timing.min_lead_ms),
            max_ahead: Duration::from_secs(self.timing.max_ahead_s),
        };
        schedule::plan(at_ns, now, correction(self)?, window)
            .map(Some)
            .map_err(|e| e.to_string())
    }

    /// The arrival correction for `target`, from its last sync.
    fn correction(&self, target: usize) -> Result<Correction, String> {
        let s = self.shared.lock();
        let pool = &s.pools[target];
        let Some((sync, taken_ns)) = &pool.sync else {
            return Err(format!(
                "arriving on time needs the server's clock: run `control sync --target {}` first",
                pool.name
            ));
        };
        let age = Duration::from_nanos(monotonic_ns().saturating_sub(*taken_ns));
        if age > Duration::from_secs(self.timing.sync_valid_s) {
            return Err(format!(
                "the last sync of target {} is {}s old (timing.sync_valid_s = {}): sync again",
                pool.name,
                age.as_secs(),
                self.timing.sync_valid_s
            ));
        }
        Ok(Correction {
            offset_ns: sync.offset_ns,
            one_way_ns: sync.one_way_ns,
        })
    }
}
