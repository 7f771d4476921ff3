//! Arming: an arm request (or a journaled arm at restart) → checks (caps, open arms,
//! the fire-rate cap, the schedule) → a journal line, made durable → the datapath's
//! `Arm` command → its acknowledgement. The reply goes out only after all of that.

use super::caps;
use super::command::ACK_WAIT;
use super::context::Daemon;
use super::error::{Asked, DaemonError};
use super::lifecycle::ArmStep;
use super::render::{self, Order};
use super::state::{ArmRecord, Ask};
use crate::journal::record::{ArmEntry, Record, ScheduledEntry};
use crate::protocol::{ArmReply, ArmRequest, ArmState, TriggerSpec};
use crate::timing::clock::{monotonic_ns, ClockPair};
use crate::timing::schedule::{self, Correction, Schedule, Window};
use crate::timing::text::parse_utc;
use quickdraw_datapath::order::{ArmId, ArmSpec, Command, Trigger};
use std::time::{Duration, Instant};

impl Daemon {
    pub(super) fn arm(&self, req: &ArmRequest) -> Result<ArmReply, DaemonError> {
        self.check_running()?;
        let key = render::new_key(&self.rng)?;
        let order = render::prepare(&self.targets, req, &key)?;
        let schedule = self.schedule(&req.trigger, req.arrive, order.target)?;
        let event = self.event_trigger(&req.trigger)?;
        let target = &self.targets[order.target];
        let order_target = order.target;
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
            let mut record = ArmRecord::new(
                id,
                (&req.sku, req.qty, &key),
                (order.target, &target.name),
                order.conns,
            );
            record.schedule = schedule;
            record.event = event.is_some();
            s.insert_arm(record);
            Ok::<_, DaemonError>(id)
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
            on: event.as_ref().map(|(text, _)| text.clone()),
        };
        // Durable before the datapath can fire it: a crash from here on finds it.
        if let Err(e) = self.journal(Record::Arm(entry)) {
            self.shared.update(|s| s.step(id, ArmStep::Refused));
            return Err(e);
        }
        self.hand_over(id, order, schedule, event.map(|(_, t)| t))?;
        self.shared
            .update(|s| s.stats.count(order_target, |c| c.arms += 1));
        tracing::info!(arm = id, sku = %req.sku, qty = req.qty, conns = req.conns,
            target = %target.name, scheduled = schedule.is_some(), "armed");
        let s = self.shared.lock();
        let a = s.arm(id).ok_or(DaemonError::Forgotten(id))?;
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
    pub(super) fn rearm(&self, entry: &ArmEntry) -> Result<ArmState, DaemonError> {
        let index = self
            .targets
            .iter()
            .position(|t| t.name == entry.target)
            .ok_or_else(|| DaemonError::TargetGone(entry.target.clone()))?;
        let req = ArmRequest {
            sku: entry.sku.clone(),
            qty: entry.qty,
            conns: entry.conns,
            target: Some(entry.target.clone()),
            trigger: entry
                .on
                .clone()
                .map_or(TriggerSpec::Manual, TriggerSpec::On),
            arrive: None,
        };
        let order = render::prepare(&self.targets, &req, &entry.key)?;
        let event = self.event_trigger(&req.trigger)?;
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
                s.step(entry.arm, ArmStep::Refused);
                if let Some(a) = s.arm_mut(entry.arm) {
                    a.recovered = Some("refused".into());
                }
                return Err(e);
            }
            let mut record = ArmRecord::new(
                entry.arm,
                (&entry.sku, entry.qty, &entry.key),
                (index, &entry.target),
                order.conns,
            );
            record.schedule = schedule;
            record.event = event.is_some();
            record.recovered = Some("rearmed".into());
            s.reserve_ids_through(entry.arm);
            s.insert_arm(record);
            Ok(())
        })?;
        self.journal(Record::Recovered {
            arm: entry.arm,
            how: "rearmed".into(),
        })?;
        self.hand_over(entry.arm, order, schedule, event.map(|(_, t)| t))?;
        Ok(ArmState::Armed)
    }

    /// Gives the order to the datapath and waits for its answer.
    fn hand_over(
        &self,
        id: ArmId,
        order: Order,
        schedule: Option<Schedule>,
        event: Option<Trigger>,
    ) -> Result<(), DaemonError> {
        let trigger = match (schedule, event) {
            (_, Some(event)) => event,
            (Some(s), None) => Trigger::At(s.deadline_ns),
            (None, None) => Trigger::Manual,
        };
        let spec = ArmSpec {
            arm: id,
            target: order.target,
            request: order.request.into_boxed_slice(),
            conns: order.conns,
            trigger,
        };
        let spec = Box::new(spec);
        let deadline = Instant::now() + ACK_WAIT;
        let answer = self.command(Ask::Arm(id), deadline, |req| Command::Arm { req, spec });
        match answer {
            Err(e) => {
                self.shared.update(|s| s.step(id, ArmStep::Refused));
                let _ = self.journal(Record::Rejected {
                    arm: id,
                    reason: e.to_string(),
                });
                Err(e)
            }
            Ok(Some(Ok(_))) => Ok(()),
            Ok(Some(Err(reason))) => Err(DaemonError::Refused {
                asked: Asked::Arm,
                arm: id,
                reason,
            }),
            Ok(None) => Err(DaemonError::NoAnswer {
                arm: id,
                waited: ACK_WAIT,
                state: ArmState::Pending,
            }),
        }
    }

    /// The schedule of a trigger, decided now; `None` for a manual arm.
    fn schedule(
        &self,
        trigger: &TriggerSpec,
        arrive: Option<bool>,
        target: usize,
    ) -> Result<Option<Schedule>, DaemonError> {
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
            TriggerSpec::Manual | TriggerSpec::On(_) if arrive_asked => {
                return Err(DaemonError::ArriveUnscheduled)
            }
            TriggerSpec::Manual | TriggerSpec::On(_) => return Ok(None),
            TriggerSpec::At(text) => parse_utc(text)?,
            TriggerSpec::InNs(ns) => {
                let ns = i64::try_from(*ns).map_err(|_| DaemonError::InTooLong)?;
                // "Arrive in 2 s": 2 s from now on the server's clock, whatever its offset.
                let offset = correction(self)?.map_or(0, |c: Correction| c.offset_ns);
                now.real_ns.saturating_add(ns).saturating_add(offset)
            }
        };
        let window = Window {
            min_lead: Duration::from_millis(self.timing.min_lead_ms),
            max_ahead: Duration::from_secs(self.timing.max_ahead_s),
        };
        Ok(Some(schedule::plan(at_ns, now, correction(self)?, window)?))
    }

    /// The arrival correction for `target`, from its last sync.
    fn correction(&self, target: usize) -> Result<Correction, DaemonError> {
        let s = self.shared.lock();
        let pool = &s.pools[target];
        let Some((sync, taken_ns)) = &pool.sync else {
            return Err(DaemonError::NeverSynced(pool.name.clone()));
        };
        let age = Duration::from_nanos(monotonic_ns().saturating_sub(*taken_ns));
        if age > Duration::from_secs(self.timing.sync_valid_s) {
            return Err(DaemonError::SyncStale {
                target: pool.name.clone(),
                age_s: age.as_secs(),
                valid_s: self.timing.sync_valid_s,
            });
        }
        Ok(Correction {
            offset_ns: sync.offset_ns,
            one_way_ns: sync.one_way_ns,
        })
    }
}
