//! What the daemon does for each request: read the state, push a command to the
//! datapath, and wait (bounded) for the events that answer it. Every failure becomes a
//! refusal line; nothing a client sends can stop the daemon but `down`.

use super::order::{self, ArmError};
use super::state::ArmRecord;
use super::Daemon;
use crate::protocol::{
    self, ArmReply, ArmRequest, ArmState, Done, FireOutcome, FireReply, Request, StampsView,
};
use quickdraw_datapath::order::{
    ArmId, ArmSpec, Command, FireRecord, Outcome, Reject, Trigger, Unknown,
};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long the datapath may take to acknowledge an arm or a disarm: it reads commands
/// every loop turn, so anything near this means it is wedged.
const ACK_WAIT: Duration = Duration::from_secs(2);
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

    fn arm(&self, req: &ArmRequest) -> Result<ArmReply, String> {
        self.check_running()?;
        let key = order::new_key(&self.rng).map_err(|e| e.to_string())?;
        let order =
            order::prepare(&self.targets, req, &key).map_err(|e: ArmError| e.to_string())?;
        let id = self.shared.update(|s| {
            let id = s.next_arm_id();
            s.insert_arm(ArmRecord {
                id,
                sku: req.sku.clone(),
                qty: req.qty,
                key: key.clone(),
                target: order.target,
                conns: order.conns,
                state: ArmState::Pending,
                refusal: None,
                refusals: 0,
                outcomes: Vec::new(),
            });
            id
        });
        let spec = ArmSpec {
            arm: id,
            target: order.target,
            request: order.request.into_boxed_slice(),
            conns: order.conns,
            trigger: Trigger::Manual,
        };
        if let Err(e) = self.push(Command::Arm(Box::new(spec))) {
            self.shared.update(|s| s.set_state(id, ArmState::Rejected));
            return Err(e);
        }
        let settled = self.shared.wait_for(Instant::now() + ACK_WAIT, |s| {
            let a = s.arm(id)?;
            (a.state != ArmState::Pending).then_some((a.state, a.refusal))
        });
        let target = self.targets[order.target].name.clone();
        match settled {
            Some((ArmState::Rejected, reason)) => Err(format!(
                "the datapath refused arm {id}: {}",
                describe(reason)
            )),
            Some(_) => {
                tracing::info!(arm = id, sku = %req.sku, qty = req.qty, conns = order.conns, %target, "armed");
                Ok(ArmReply {
                    arm: id,
                    key,
                    target,
                    conns: order.conns,
                })
            }
            None => Err(format!(
                "no answer from the datapath within {ACK_WAIT:?} (arm {id} is left pending)"
            )),
        }
    }

    fn fire(&self, arm: Option<ArmId>) -> Result<FireReply, String> {
        self.check_running()?;
        let (id, refusals, timeout) = {
            let s = self.shared.lock();
            let id = match arm {
                Some(id) => id,
                None => only_armed(s.armed().map(|a| a.id).collect())?,
            };
            let a = s.arm(id).ok_or_else(|| format!("no arm {id}"))?;
            if a.state != ArmState::Armed {
                return Err(format!("arm {id} is {}, not armed", state_name(a.state)));
            }
            (
                id,
                a.refusals,
                self.targets[a.target].response_timeout + FIRE_SLACK,
            )
        };
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
        let s = self.shared.lock();
        let a = s
            .arm(id)
            .ok_or_else(|| format!("arm {id} was forgotten while firing"))?;
        Ok(FireReply {
            arm: id,
            key: a.key.clone(),
            expected: a.conns,
            complete: a.outcomes.len() >= a.conns,
            outcomes: a.outcomes.iter().map(outcome).collect(),
        })
    }

    fn disarm(&self, id: ArmId) -> Result<Done, String> {
        self.check_running()?;
        let refusals = {
            let s = self.shared.lock();
            let a = s.arm(id).ok_or_else(|| format!("no arm {id}"))?;
            if a.state != ArmState::Armed {
                return Err(format!("arm {id} is {}, not armed", state_name(a.state)));
            }
            a.refusals
        };
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
            Some(Err(reason)) => Err(format!(
                "arm {id} could not be disarmed: {}",
                describe(reason)
            )),
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

    fn check_running(&self) -> Result<(), String> {
        let s = self.shared.lock();
        if s.stopped || !s.running {
            return Err("the datapath is not running".into());
        }
        Ok(())
    }

    /// Pushes a command, retrying briefly if the queue is full.
    fn push(&self, mut command: Command) -> Result<(), String> {
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

fn state_name(state: ArmState) -> &'static str {
    match state {
        ArmState::Pending => "pending",
        ArmState::Armed => "armed",
        ArmState::Fired => "fired",
        ArmState::Done => "done",
        ArmState::Rejected => "rejected",
        ArmState::Disarmed => "disarmed",
    }
}

fn describe(reason: Option<Reject>) -> String {
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
    }
}

fn outcome(r: &FireRecord) -> FireOutcome {
    let (result, status, unknown) = match r.outcome {
        Outcome::Status(code) => ("status", Some(code), None),
        Outcome::Unknown(why) => {
            let why = match why {
                Unknown::ConnectionLost => "connection_lost",
                Unknown::Timeout => "timeout",
                Unknown::BadResponse => "bad_response",
            };
            ("unknown", None, Some(why.to_owned()))
        }
        Outcome::NotSent => ("not_sent", None, None),
    };
    let s = r.stamps;
    FireOutcome {
        conn: (r.outcome != Outcome::NotSent).then_some(r.conn),
        result: result.to_owned(),
        status,
        unknown,
        stamps: StampsView {
            trigger_ns: s.trigger_ns,
            tx_ns: s.tx_ns,
            first_byte_ns: s.first_byte_ns,
            complete_ns: s.complete_ns,
            scheduled_ns: s.scheduled_ns,
        },
    }
}
