//! One arm as the daemon tracks it, and the datapath's records as the protocol (and the
//! journal) show them.

use super::lifecycle::{ArmLifecycle, ArmStep, IllegalStep};
use crate::protocol::{ArmState, ArmStatus, FireOutcome, ScheduleView, StampsView};
use crate::timing::schedule::Schedule;
use crate::timing::text::format_utc;
use quickdraw_datapath::order::{ArmId, FireRecord, Outcome, Reject, Stamps, Unknown};

/// One arm, from the arm request to its last outcome.
#[derive(Debug, Clone)]
pub struct ArmRecord {
    pub id: ArmId,
    pub sku: String,
    pub qty: u32,
    pub key: String,
    /// Index of the target; `usize::MAX` for a journaled arm whose target is no longer
    /// configured.
    pub target: usize,
    pub target_name: String,
    pub conns: usize,
    life: ArmLifecycle,
    /// Why the datapath last refused something about this arm (the arm itself, or a
    /// fire or disarm of it).
    pub refusal: Option<Reject>,
    pub outcomes: Vec<FireOutcome>,
    /// Scheduled arms: when.
    pub schedule: Option<Schedule>,
    /// What a restart did with it.
    pub recovered: Option<String>,
    /// Scheduled fires: trigger − deadline.
    pub error_ns: Option<i64>,
    /// The fire was counted (first Sent or Done seen).
    pub fire_counted: bool,
    /// Fires on an event (`--on`): its trigger stamp is the event's receive stamp.
    pub event: bool,
}

impl ArmRecord {
    /// A new arm over `conns` connections, pending until the datapath acknowledges it.
    pub fn new(
        id: ArmId,
        (sku, qty, key): (&str, u32, &str),
        target: (usize, &str),
        conns: usize,
    ) -> ArmRecord {
        ArmRecord {
            id,
            sku: sku.to_owned(),
            qty,
            key: key.to_owned(),
            target: target.0,
            target_name: target.1.to_owned(),
            conns,
            life: ArmLifecycle::new(conns),
            refusal: None,
            outcomes: Vec::new(),
            schedule: None,
            recovered: None,
            error_ns: None,
            fire_counted: false,
            event: false,
        }
    }

    /// An arm as the journal left it (see [`ArmLifecycle::restored`]).
    pub fn restore(&mut self, state: ArmState, outcomes: Vec<FireOutcome>) {
        self.life = ArmLifecycle::restored(state, self.conns, outcomes.len());
        self.outcomes = outcomes;
    }

    pub fn state(&self) -> ArmState {
        self.life.state()
    }

    /// Moves the arm on (see [`ArmLifecycle::step`]).
    pub fn step(&mut self, step: ArmStep) -> Result<ArmState, IllegalStep> {
        self.life.step(step)
    }

    pub fn schedule_view(&self) -> Option<ScheduleView> {
        self.schedule.map(|s| ScheduleView {
            at: format_utc(s.at_ns),
            fire_at: format_utc(s.fire_ns),
            deadline_ns: s.deadline_ns,
            correction_ns: s.correction_ns,
        })
    }

    pub fn status(&self) -> ArmStatus {
        ArmStatus {
            arm: self.id,
            sku: self.sku.clone(),
            qty: self.qty,
            key: self.key.clone(),
            target: self.target_name.clone(),
            conns: self.conns,
            state: self.state(),
            outcomes: self.outcomes.len(),
            scheduled: self.schedule_view(),
            error_ns: self.error_ns,
            recovered: self.recovered.clone(),
        }
    }
}

/// A probe's answer (see `Event::Probed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeAnswer {
    pub sent_ns: u64,
    pub first_byte_ns: u64,
    pub status: u16,
    pub date: Option<[u8; 29]>,
}

/// The datapath's stamps as the protocol shows them.
pub fn stamps_view(s: &Stamps) -> StampsView {
    StampsView {
        trigger_ns: s.trigger_ns,
        tx_ns: s.tx_ns,
        first_byte_ns: s.first_byte_ns,
        complete_ns: s.complete_ns,
        scheduled_ns: s.scheduled_ns,
    }
}

/// A datapath outcome as the protocol (and the journal) shows it.
pub fn outcome_view(r: &FireRecord) -> FireOutcome {
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
    FireOutcome {
        conn: (r.outcome != Outcome::NotSent).then_some(r.conn),
        result: result.to_owned(),
        status,
        unknown,
        stamps: stamps_view(&r.stamps),
    }
}
