//! What the daemon does for each request: read the state, send a command to the datapath
//! with a fresh request id, and wait (bounded) for the datapath's answer to that id. Every
//! failure becomes a refusal line; nothing a client sends can stop the daemon but `down`.
//! Arming is in `arming.rs`, clock sync in `sync.rs`, the commands themselves in
//! `command.rs`.

use super::command::ACK_WAIT;
use super::context::Daemon;
use super::error::{self, Asked, DaemonError};
use super::state::Ask;
use crate::journal::record::Record;
use crate::protocol::{self, ArmState, ArmsReply, DisarmedAll, Done, FireReply, Request};
use quickdraw_datapath::order::{ArmId, Command};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
/// Beyond the target's response timeout, how long a fire waits for its outcomes: the
/// datapath reports a timed-out response itself, at the response timeout.
const FIRE_SLACK: Duration = Duration::from_secs(2);
/// How long `down` waits for the datapath to stop.
const DOWN_WAIT: Duration = Duration::from_secs(10);

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
            Request::Status {} => Ok(protocol::encode_ok(&self.status())),
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
            Err(e) => {
                let message = error::refusal(&e);
                tracing::info!("refused: {message}");
                (protocol::encode_error(&message), false)
            }
        }
    }

    fn fire(&self, arm: Option<ArmId>) -> Result<FireReply, DaemonError> {
        self.check_running()?;
        let (id, timeout) = {
            let s = self.shared.lock();
            let id = match arm {
                Some(id) => id,
                None => only_armed(s.armed_manual().map(|a| a.id).collect())?,
            };
            let a = s.arm(id).ok_or(DaemonError::NoArm(id))?;
            if a.state() != ArmState::Armed {
                return Err(DaemonError::NotArmed {
                    arm: id,
                    state: a.state(),
                });
            }
            (id, self.targets[a.target].response_timeout + FIRE_SLACK)
        };
        // Durable before the command goes: after a crash, this fire is `unknown`, never
        // re-armed (the order may have left).
        self.journal(Record::Fire { arm: id })?;
        let deadline = Instant::now() + timeout;
        let answer = self.command(Ask::Fire(id), deadline, |req| Command::Fire {
            req,
            arm: id,
        })?;
        if let Some(Err(reason)) = answer {
            return Err(DaemonError::Refused {
                asked: Asked::Fire,
                arm: id,
                reason,
            });
        }
        tracing::info!(arm = id, "fire");
        self.shared.wait_for(deadline, |s| {
            let a = s.arm(id)?;
            (!a.state().is_open()).then_some(())
        });
        self.fire_reply(id)
    }

    /// The `fire`/`wait` reply for an arm, as it stands.
    fn fire_reply(&self, id: ArmId) -> Result<FireReply, DaemonError> {
        let s = self.shared.lock();
        let a = s.arm(id).ok_or(DaemonError::Forgotten(id))?;
        Ok(FireReply {
            arm: id,
            key: a.key.clone(),
            expected: a.conns,
            complete: a.outcomes.len() >= a.conns,
            outcomes: a.outcomes.clone(),
            state: Some(a.state()),
            scheduled: a.schedule_view(),
            error_ns: a.error_ns,
            recovered: a.recovered.clone(),
        })
    }

    /// Waits until the arm has all its outcomes or is closed without them, within
    /// `timeout_ms`, or by default the arm's deadline plus its target's response timeout.
    fn wait(&self, id: ArmId, timeout_ms: Option<u64>) -> Result<FireReply, DaemonError> {
        let limit = {
            let s = self.shared.lock();
            let a = s.arm(id).ok_or(DaemonError::NoArm(id))?;
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
            (!a.state().is_open()).then_some(())
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
    fn disarm_all(&self) -> Result<DisarmedAll, DaemonError> {
        self.check_running()?;
        let ids: Vec<ArmId> = {
            let s = self.shared.lock();
            s.arms()
                .filter(|a| a.state() == ArmState::Armed)
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

    fn disarm(&self, id: ArmId) -> Result<Done, DaemonError> {
        self.check_running()?;
        {
            let s = self.shared.lock();
            let a = s.arm(id).ok_or(DaemonError::NoArm(id))?;
            if a.state() != ArmState::Armed {
                return Err(DaemonError::NotArmed {
                    arm: id,
                    state: a.state(),
                });
            }
        }
        // Durable first: after a crash the arm stays disarmed unless it had fired.
        self.journal(Record::Disarm { arm: id })?;
        let deadline = Instant::now() + ACK_WAIT;
        let answer = self.command(Ask::Disarm(id), deadline, |req| Command::Disarm {
            req,
            arm: id,
        })?;
        let refused = match answer {
            Some(Ok(_)) => {
                tracing::info!(arm = id, "disarmed");
                return Ok(Done { arm: Some(id) });
            }
            Some(Err(quickdraw_datapath::order::Reject::AlreadyFired)) => {
                DaemonError::FiredMeanwhile(id)
            }
            Some(Err(reason)) => DaemonError::Refused {
                asked: Asked::Disarm,
                arm: id,
                reason,
            },
            None => {
                let state = self
                    .shared
                    .lock()
                    .arm(id)
                    .map_or(ArmState::Armed, |a| a.state());
                return Err(DaemonError::NoAnswer {
                    arm: id,
                    waited: ACK_WAIT,
                    state,
                });
            }
        };
        let _ = self.journal(Record::DisarmFailed { arm: id });
        Err(refused)
    }

    /// Asks the main thread to stop the datapath and remove the socket, and waits until
    /// it has: the reply means the datapath is down.
    fn down(&self) -> Result<Done, DaemonError> {
        tracing::info!("down requested");
        self.down.store(true, Ordering::Relaxed);
        match self
            .shared
            .wait_for(Instant::now() + DOWN_WAIT, |s| s.stopped.then_some(()))
        {
            Some(()) => Ok(Done::default()),
            None => Err(DaemonError::DownTimeout(DOWN_WAIT)),
        }
    }

    /// The status, with the journal's health as of now (and why, when it is not).
    fn status(&self) -> crate::protocol::StatusReply {
        let failure = {
            let j = self.journal.lock().unwrap_or_else(|p| p.into_inner());
            j.failure().map(str::to_owned)
        };
        let mut status = self.shared.lock().status();
        if let Some(j) = status.journal.as_mut() {
            j.unhealthy = failure;
        }
        status
    }
}

/// The one arm waiting for a manual fire.
fn only_armed(ids: Vec<ArmId>) -> Result<ArmId, DaemonError> {
    match ids.as_slice() {
        [] => Err(DaemonError::NothingArmed),
        [id] => Ok(*id),
        _ => Err(DaemonError::WhichArm(ids)),
    }
}
