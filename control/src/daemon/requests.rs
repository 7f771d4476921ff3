//! What the daemon does for each request: read the state, push a command to the
//! datapath, and wait (bounded) for the events that answer it. Every failure becomes a
//! refusal line; nothing a client sends can stop the daemon but `down`. Arming is in
//! `arming.rs`, clock sync in `sync.rs`.

use super::arming::ACK_WAIT;
use super::Daemon;
use crate::journal::record::Record;
use crate::protocol::{self, ArmState, ArmsReply, DisarmedAll, Done, FireReply, Request};
use quickdraw_datapath::order::{ArmId, Command, Reject};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
/// Beyond the target's response timeout, how long a fire waits for its outcomes: the
/// datapath reports a timed-out response itself, at the response timeout.
const FIRE_SLACK: Duration = Duration::from_secs(2);
/// How long `down` waits for the datapath to stop.
const DOWN_WAIT: Duration = Duration::from_secs(10);
/// How long a full command queue is retried.
const PUSH_WAIT: Duration = Duration::from_millis(200);

impl Daemon {
    /// Answers one request line; true when it was an accepted `down`.
    pub fn answer(&self, line: &[u8]) -> (String, bool) {
        let request = match protocol::decode_request(line) {
            Ok(r) => r,
            Err(e) => return (protocol::encode_error(&e.to_string()), false),
        };
        tracing::debug!(?request, "request");
        let is_down = request == Request::Down {};
        let reply = match request {
            Request::Status {} => Ok(protocol::encode_ok(&self.shared.lock().status())),
            Request::Arm(req) => self.arm(&req).map(|r| protocol::encode_ok(&r)),
            Request::Fire { arm } => self.fire(arm).map(|r| protocol::encode_ok(&r)),
            Request::Disarm { arm } => self.disarm(arm).map(|r| protocol::encode_ok(&r)),
            Request::DisarmAll {} => self.disarm_all().map(|r| protocol::encode_ok(&r)),
            Request::Arms {} => Ok(protocol::encode_ok(&self.arms())),
            Request::Wait { arm, timeout_ms } => {
                self.wait(arm, timeout_ms).map(|r| protocol::encode_ok(&r))
            }
            Request::Stats {} => Ok(protocol::encode_ok(&self.shared.lock().stats.view())),
            Request::Sync { target } => self
                .sync(target.as_deref())
                .map(|r| protocol::encode_ok(&r)),
            Request::Down {} => self.down().map(|r| protocol::encode_ok(&r)),
        };
        match reply {
            Ok(line) => (line, is_down),
            Err(message) => {
                tracing::info!("refused: {message}");
                (protocol::encode_error(&message), false)
            }
        }
    }

    fn fire(&self, arm: Option<ArmId>) -> Result<FireReply, String> {
        self.check_running()?;
        let (id, refusals, timeout) = {
            let s = self.shared.lock();
            let id = match arm {
                Some(id) => id,
                None => only_armed(s.armed_manual().map(|a| a.id).collect())?,
            };
            let a = s.arm(id).ok_or_else(|| format!("no arm {id}"))?;
            if a.state != ArmState::Armed {
                return Err(format!("arm {id} is {}, not armed", a.state.name()));
            }
            (
                id,
                a.refusals,
                self.targets[a.target].response_timeout + FIRE_SLACK,
            )
        };
        // Durable before the command goes: after a crash, this fire is `unknown`, never
        // re-armed (the order may have left).
        self.journal(Record::Fire { arm: id })?;
        self.push(Command::Fire(id))?;
        tracing::info!(arm = id, "fire");
        let refused = self.shared.wait_for(Instant::now() + timeout, |s| {
            let a = s.arm(id)?;
            if a.outcomes.len() >= a.conns {
                Some(None)
            } else if a.refusals > refusals && a.outcomes.is_empty() && a.state == ArmState::Armed {
                Some(Some(a.refusal))
            } else {
                None
            }
        });
        if let Some(Some(reason)) = refused {
            return Err(format!(
                "the datapath refused to fire arm {id}: {}",
                describe(reason)
            ));
        }
        self.fire_reply(id)
    }

    /// The `fire`/`wait` reply for an arm, as it stands.
    fn fire_reply(&self, id: ArmId) -> Result<FireReply, String> {
        let s = self.shared.lock();
        let a = s
            .arm(id)
            .ok_or_else(|| format!("arm {id} was forgotten while waiting"))?;
        Ok(FireReply {
            arm: id,
            key: a.key.clone(),
            expected: a.conns,
            complete: a.outcomes.len() >= a.conns,
            outcomes: a.outcomes.clone(),
            state: Some(a.state),
            scheduled: a.schedule_view(),
            error_ns: a.error_ns,
            recovered: a.recovered.clone(),
        })
    }

    /// Waits until the arm has all its outcomes or is closed without them, within
    /// `timeout_ms`, or by default the arm's deadline plus its target's response timeout.
    fn wait(&self, id: ArmId, timeout_ms: Option<u64>) -> Result<FireReply, String> {
        let limit = {
            let s = self.shared.lock();
            let a = s.arm(id).ok_or_else(|| format!("no arm {id}"))?;
            let response = self
                .targets
                .get(a.target)
                .map_or(Duration::ZERO, |t| t.response_timeout);
            let until_deadline = a.schedule.map_or(Duration::ZERO, |sch| {
                Duration::from_nanos(
                    sch.deadline_ns
                        .saturating_sub(crate::timing::clock::monotonic_ns()),
                )
            });
            timeout_ms.map_or(
                until_deadline + response + FIRE_SLACK,
                Duration::from_millis,
            )
        };
        self.shared.wait_for(Instant::now() + limit, |s| {
            let a = s.arm(id)?;
            let finished = a.outcomes.len() >= a.conns
                || matches!(
                    a.state,
                    ArmState::Done | ArmState::Rejected | ArmState::Disarmed | ArmState::Missed
                );
            finished.then_some(())
        });
        self.fire_reply(id)
    }

    fn arms(&self) -> ArmsReply {
        let s = self.shared.lock();
        ArmsReply {
            arms: s.arms().map(|a| a.status()).collect(),
        }
    }

    /// Disarms every armed order, one after another.
    fn disarm_all(&self) -> Result<DisarmedAll, String> {
        self.check_running()?;
        let ids: Vec<ArmId> = {
            let s = self.shared.lock();
            s.arms()
                .filter(|a| a.state == ArmState::Armed)
                .map(|a| a.id)
                .collect()
        };
        let mut reply = DisarmedAll::default();
        for id in ids {
            match self.disarm(id) {
                Ok(_) => reply.disarmed.push(id),
                Err(e) => {
                    tracing::info!(arm = id, "not disarmed: {e}");
                    reply.failed.push(id);
                }
            }
        }
        Ok(reply)
    }

    fn disarm(&self, id: ArmId) -> Result<Done, String> {
        self.check_running()?;
        let refusals = {
            let s = self.shared.lock();
            let a = s.arm(id).ok_or_else(|| format!("no arm {id}"))?;
            if a.state != ArmState::Armed {
                return Err(format!("arm {id} is {}, not armed", a.state.name()));
            }
            a.refusals
        };
        // Durable first: after a crash the arm stays disarmed unless it had fired.
        self.journal(Record::Disarm { arm: id })?;
        self.push(Command::Disarm(id))?;
        let settled = self.shared.wait_for(Instant::now() + ACK_WAIT, |s| {
            let a = s.arm(id)?;
            match a.state {
                ArmState::Disarmed => Some(Ok(())),
                ArmState::Armed if a.refusals > refusals => Some(Err(a.refusal)),
                // Fired by another client in the meantime.
                ArmState::Fired | ArmState::Done => Some(Err(None)),
                _ => None,
            }
        });
        match settled {
            Some(Ok(())) => {
                tracing::info!(arm = id, "disarmed");
                Ok(Done { arm: Some(id) })
            }
            Some(Err(reason)) => {
                let _ = self.journal(Record::DisarmFailed { arm: id });
                Err(format!(
                    "arm {id} could not be disarmed: {}",
                    describe(reason)
                ))
            }
            None => Err(format!("no answer from the datapath within {ACK_WAIT:?}")),
        }
    }

    /// Asks the main thread to stop the datapath and remove the socket, and waits until
    /// it has: the reply means the datapath is down.
    fn down(&self) -> Result<Done, String> {
        tracing::info!("down requested");
        self.down.store(true, Ordering::Relaxed);
        match self
            .shared
            .wait_for(Instant::now() + DOWN_WAIT, |s| s.stopped.then_some(()))
        {
            Some(()) => Ok(Done::default()),
            None => Err(format!("the datapath did not stop within {DOWN_WAIT:?}")),
        }
    }

    /// Appends to the journal and waits until it is on disk; a failure refuses whatever
    /// was about to happen.
    pub(super) fn journal(&self, record: Record) -> Result<(), String> {
        let mut j = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        j.append(record)
            .map_err(|e| format!("cannot write the journal {}: {e}", j.path().display()))
    }

    pub(super) fn check_running(&self) -> Result<(), String> {
        let s = self.shared.lock();
        if s.stopped || !s.running {
            return Err("the datapath is not running".into());
        }
        Ok(())
    }

    /// Pushes a command, retrying briefly if the queue is full.
    pub(super) fn push(&self, mut command: Command) -> Result<(), String> {
        let deadline = Instant::now() + PUSH_WAIT;
        loop {
            match self.commands.push(command) {
                Ok(()) => return Ok(()),
                Err(_) if Instant::now() >= deadline => {
                    return Err("the datapath's command queue is full".into())
                }
                Err(back) => {
                    command = back;
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
    }
}

/// The one arm waiting for a manual fire.
fn only_armed(ids: Vec<ArmId>) -> Result<ArmId, String> {
    match ids.as_slice() {
        [] => Err("no armed order to fire".into()),
        [id] => Ok(*id),
        many => {
            let list = many
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            Err(format!(
                "{} arms are armed ({list}): say which to fire",
                many.len()
            ))
        }
    }
}

pub(super) fn describe(reason: Option<Reject>) -> String {
    match reason {
        None => "it was fired meanwhile".into(),
        Some(Reject::UnknownTarget) => "unknown target".into(),
        Some(Reject::DuplicateArm) => "duplicate arm id".into(),
        Some(Reject::TooManyConns { asked, pool }) => {
            format!("{asked} connections asked for, the pool has {pool}")
        }
        Some(Reject::RequestTooLarge) => "the request does not fit one TLS record".into(),
        Some(Reject::TooManyArms) => "it holds as many arms as it can; fire or disarm some".into(),
        Some(Reject::UnknownArm) => "it does not hold that arm (already fired or disarmed)".into(),
        Some(Reject::UnknownSource) => "it runs no such event source".into(),
    }
}
