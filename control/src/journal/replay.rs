//! Reading a journal back: each arm's story folded from its lines, and what a restart
//! must do about the arms a crash left open. Pure (time is passed in), so every case is
//! unit-tested.
//!
//! - an arm that never fired: re-armed with the same id and Idempotency-Key, if manual
//!   or still in the future (by at least the minimum lead); `missed` if its time passed;
//! - a disarm asked for, nothing sent: disarmed (what the operator wanted);
//! - sent, or asked to fire, without every outcome: the missing outcomes are `unknown`
//!   ("daemon_restart"): the order may have reached the server, so it is never re-sent.
//!
//! A scheduled arm that crashed in the microseconds between its trigger and the "sent"
//! line is reported `missed` although it may have left: the Idempotency-Key is what
//! makes that safe at the server.

use super::record::{ArmEntry, Line, Record};
use crate::protocol::{ArmState, FireOutcome, StampsView};
use std::collections::BTreeMap;

/// Why an outcome recovered from a crash is unknown.
pub const RESTART: &str = "daemon_restart";

/// How far back the per-minute send history reaches (the rate cap's window).
pub const SEND_HISTORY_NS: i64 = 60_000_000_000;

/// One arm's story as the journal tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalArm {
    pub entry: ArmEntry,
    pub state: ArmState,
    pub fire_requested: bool,
    pub disarm_requested: bool,
    pub sent: Vec<(usize, StampsView)>,
    pub outcomes: Vec<FireOutcome>,
    pub recovered: Option<String>,
}

impl JournalArm {
    pub fn is_open(&self) -> bool {
        self.state.is_open()
    }
}

/// Folds journal lines into arms, by id. Lines about unknown arms are ignored.
pub fn fold(lines: &[Line]) -> BTreeMap<u64, JournalArm> {
    let mut arms: BTreeMap<u64, JournalArm> = BTreeMap::new();
    for line in lines {
        if let Record::Arm(entry) = &line.record {
            arms.insert(
                entry.arm,
                JournalArm {
                    entry: entry.clone(),
                    state: ArmState::Armed,
                    fire_requested: false,
                    disarm_requested: false,
                    sent: Vec::new(),
                    outcomes: Vec::new(),
                    recovered: None,
                },
            );
            continue;
        }
        let Some(a) = line.record.arm().and_then(|id| arms.get_mut(&id)) else {
            continue;
        };
        match &line.record {
            Record::Rejected { .. } => a.state = ArmState::Rejected,
            Record::Fire { .. } => a.fire_requested = true,
            Record::Disarm { .. } => a.disarm_requested = true,
            Record::DisarmFailed { .. } => a.disarm_requested = false,
            Record::Disarmed { .. } => a.state = ArmState::Disarmed,
            Record::Sent { conn, stamps, .. } => {
                a.sent.push((*conn, *stamps));
                if a.state.is_open() {
                    a.state = ArmState::Fired;
                }
            }
            Record::Outcome { outcome, .. } => {
                a.outcomes.push(outcome.clone());
                a.state = if a.outcomes.len() >= a.entry.conns {
                    ArmState::Done
                } else {
                    ArmState::Fired
                };
            }
            Record::Recovered { how, .. } => {
                a.recovered = Some(how.clone());
                if how == "missed" {
                    a.state = ArmState::Missed;
                }
            }
            Record::Arm(_) | Record::Up { .. } | Record::Torn { .. } => {}
        }
    }
    arms
}

/// What a restart does about one open arm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Rearm(u64),
    Missed(u64),
    Disarmed(u64),
    /// The arm's missing outcomes, now recorded as unknown.
    Unknown(u64, Vec<FireOutcome>),
}

/// Requests sent in the [`SEND_HISTORY_NS`] before `now_ns` (UTC), oldest first, as (when
/// the send was journaled, UTC ns; target name): the rate cap's history, which a restart
/// must not forget.
pub fn recent_sends(lines: &[Line], now_ns: i64) -> Vec<(i64, String)> {
    let since = now_ns.saturating_sub(SEND_HISTORY_NS);
    let mut targets: BTreeMap<u64, &str> = BTreeMap::new();
    let mut sends = Vec::new();
    for line in lines {
        match &line.record {
            Record::Arm(e) => {
                targets.insert(e.arm, &e.target);
            }
            // A line from after `now` (the clock stepped back) counts as just sent.
            Record::Sent { arm, .. } if line.t >= since => {
                if let Some(target) = targets.get(arm) {
                    sends.push((line.t, (*target).to_owned()));
                }
            }
            _ => {}
        }
    }
    sends.sort_by_key(|&(t, _)| t);
    sends
}

/// Decides, for every open arm, what a restart at `now_ns` (UTC) does.
pub fn recover(arms: &BTreeMap<u64, JournalArm>, now_ns: i64, min_lead_ns: i64) -> Vec<Action> {
    let mut actions = Vec::new();
    for (&id, a) in arms.iter().filter(|(_, a)| a.is_open()) {
        let touched = a.fire_requested || !a.sent.is_empty() || !a.outcomes.is_empty();
        if a.disarm_requested && a.sent.is_empty() && a.outcomes.is_empty() {
            actions.push(Action::Disarmed(id));
        } else if touched || a.state == ArmState::Fired {
            actions.push(Action::Unknown(id, missing_outcomes(a)));
        } else {
            match a.entry.at {
                Some(at) if at.fire_ns.saturating_sub(now_ns) < min_lead_ns => {
                    actions.push(Action::Missed(id))
                }
                _ => actions.push(Action::Rearm(id)),
            }
        }
    }
    actions
}

/// Unknown outcomes for every share of the fire without one: the connections that sent
/// (with their stamps) first, then any share never reported sent.
fn missing_outcomes(a: &JournalArm) -> Vec<FireOutcome> {
    let unknown = |conn, stamps| FireOutcome {
        conn,
        result: "unknown".into(),
        status: None,
        unknown: Some(RESTART.into()),
        stamps,
    };
    let mut missing: Vec<FireOutcome> = a
        .sent
        .iter()
        .filter(|(c, _)| !a.outcomes.iter().any(|o| o.conn == Some(*c)))
        .map(|&(c, stamps)| unknown(Some(c), stamps))
        .collect();
    let still = a
        .entry
        .conns
        .saturating_sub(a.outcomes.len() + missing.len());
    missing.extend((0..still).map(|_| unknown(None, StampsView::default())));
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::record::ScheduledEntry;

    const NOW: i64 = 1_795_766_400_000_000_000;
    const LEAD: i64 = 20_000_000;

    fn line(record: Record) -> Line {
        Line { t: NOW, record }
    }

    fn arm(id: u64, conns: usize, at: Option<i64>) -> Line {
        line(Record::Arm(ArmEntry {
            arm: id,
            key: format!("key{id}"),
            sku: "1001".into(),
            qty: 1,
            target: "lab".into(),
            conns,
            at: at.map(|at_ns| ScheduledEntry {
                at_ns,
                fire_ns: at_ns,
                correction_ns: 0,
            }),
        }))
    }

    fn stamps(trigger_ns: u64) -> StampsView {
        StampsView {
            trigger_ns,
            tx_ns: trigger_ns + 10,
            ..StampsView::default()
        }
    }

    fn outcome(arm: u64, conn: usize, status: u16) -> Line {
        line(Record::Outcome {
            arm,
            outcome: FireOutcome {
                conn: Some(conn),
                result: "status".into(),
                status: Some(status),
                unknown: None,
                stamps: stamps(5),
            },
        })
    }

    #[test]
    fn each_kind_of_open_arm_gets_its_action() {
        let lines = vec![
            // 1: manual, never fired → re-armed.
            arm(1, 1, None),
            // 2: scheduled 2 s ahead → re-armed.
            arm(2, 1, Some(NOW + 2_000_000_000)),
            // 3: scheduled, time passed → missed.
            arm(3, 1, Some(NOW - 1)),
            // 4: scheduled too close to now to be ready → missed.
            arm(4, 1, Some(NOW + LEAD / 2)),
            // 5: sent, no outcome → unknown with its stamps.
            arm(5, 1, Some(NOW - 1_000_000)),
            line(Record::Sent {
                arm: 5,
                conn: 3,
                stamps: stamps(77),
            }),
            // 6: manual fire asked, nothing more → unknown, conn not known.
            arm(6, 1, None),
            line(Record::Fire { arm: 6 }),
            // 7: a burst of 3, one answered, one sent, one never reported.
            arm(7, 3, None),
            line(Record::Fire { arm: 7 }),
            line(Record::Sent {
                arm: 7,
                conn: 0,
                stamps: stamps(9),
            }),
            line(Record::Sent {
                arm: 7,
                conn: 1,
                stamps: stamps(9),
            }),
            outcome(7, 0, 200),
            // 8: disarm asked, nothing sent → disarmed.
            arm(8, 1, None),
            line(Record::Disarm { arm: 8 }),
            // 9: disarm asked but the arm had fired (sent) → unknown, not disarmed.
            arm(9, 1, Some(NOW - 5)),
            line(Record::Disarm { arm: 9 }),
            line(Record::Sent {
                arm: 9,
                conn: 2,
                stamps: stamps(1),
            }),
        ];
        let arms = fold(&lines);
        let actions = recover(&arms, NOW, LEAD);
        let unknown = |conn: Option<usize>, trigger| {
            let s = if trigger == 0 {
                StampsView::default()
            } else {
                stamps(trigger)
            };
            FireOutcome {
                conn,
                result: "unknown".into(),
                status: None,
                unknown: Some(RESTART.into()),
                stamps: s,
            }
        };
        assert_eq!(
            actions,
            vec![
                Action::Rearm(1),
                Action::Rearm(2),
                Action::Missed(3),
                Action::Missed(4),
                Action::Unknown(5, vec![unknown(Some(3), 77)]),
                Action::Unknown(6, vec![unknown(None, 0)]),
                Action::Unknown(7, vec![unknown(Some(1), 9), unknown(None, 0)]),
                Action::Disarmed(8),
                Action::Unknown(9, vec![unknown(Some(2), 1)]),
            ]
        );
    }

    #[test]
    fn closed_arms_need_nothing_and_recovery_is_idempotent() {
        let mut lines = vec![
            arm(1, 1, None),
            outcome(1, 0, 200),
            arm(2, 1, None),
            line(Record::Rejected {
                arm: 2,
                reason: "full".into(),
            }),
            arm(3, 1, None),
            line(Record::Disarm { arm: 3 }),
            line(Record::Disarmed { arm: 3 }),
            arm(4, 1, Some(NOW - 1)),
            arm(5, 1, None),
            line(Record::Fire { arm: 5 }),
        ];
        let arms = fold(&lines);
        assert_eq!(arms[&1].state, ArmState::Done);
        assert_eq!(arms[&2].state, ArmState::Rejected);
        assert_eq!(arms[&3].state, ArmState::Disarmed);
        let actions = recover(&arms, NOW, LEAD);
        assert_eq!(actions.len(), 2, "{actions:?}");
        // What the daemon journals for them closes them: a second restart does nothing.
        lines.push(line(Record::Recovered {
            arm: 4,
            how: "missed".into(),
        }));
        let Action::Unknown(5, outcomes) = &actions[1] else {
            panic!("{actions:?}")
        };
        lines.push(line(Record::Recovered {
            arm: 5,
            how: "unknown".into(),
        }));
        for o in outcomes {
            lines.push(line(Record::Outcome {
                arm: 5,
                outcome: o.clone(),
            }));
        }
        let arms = fold(&lines);
        assert_eq!(arms[&4].state, ArmState::Missed);
        assert_eq!(arms[&5].state, ArmState::Done);
        assert_eq!(arms[&5].recovered.as_deref(), Some("unknown"));
        assert!(recover(&arms, NOW, LEAD).is_empty());
    }

    #[test]
    fn a_rearmed_arm_is_rearmed_again_after_a_second_crash() {
        let lines = vec![
            arm(1, 1, Some(NOW + 10_000_000_000)),
            line(Record::Recovered {
                arm: 1,
                how: "rearmed".into(),
            }),
        ];
        let arms = fold(&lines);
        assert_eq!(recover(&arms, NOW, LEAD), vec![Action::Rearm(1)]);
        assert_eq!(
            recover(&arms, NOW + 10_000_000_000, LEAD),
            vec![Action::Missed(1)]
        );
    }
}
