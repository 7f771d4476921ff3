//! Start-up from the journal: the arms it tells of are loaded into the state (so `arms`
//! shows them), and what a crash left open is settled — missed, disarmed, or unknown
//! outcomes recorded — before any client is served. Arms to re-arm are returned: that
//! needs the datapath running (see `Daemon::rearm`).

use super::lifecycle::ArmStep;
use super::state::{ArmRecord, State};
use crate::journal::record::{ArmEntry, Line, Record};
use crate::journal::replay::{self, Action};
use crate::journal::{Journal, Replayed};
use crate::protocol::JournalStatus;
use crate::setup::TargetPlan;
use crate::timing::clock::ClockPair;
use crate::timing::schedule::Schedule;

/// Loads the journal's arms into `state`, settles the open ones that need no datapath,
/// and returns those to re-arm, with the journal's status so far.
pub fn load(
    state: &mut State,
    journal: &mut Journal,
    replayed: &Replayed,
    targets: &[TargetPlan],
    min_lead_ns: i64,
) -> std::io::Result<(Vec<ArmEntry>, JournalStatus)> {
    let arms = replay::fold(&replayed.lines);
    let now = ClockPair::now();
    for a in arms.values() {
        let e = &a.entry;
        let index = targets
            .iter()
            .position(|t| t.name == e.target)
            .unwrap_or(usize::MAX);
        let mut r = ArmRecord::new(e.arm, (&e.sku, e.qty, &e.key), (index, &e.target), e.conns);
        r.restore(a.state, a.outcomes.clone());
        r.recovered = a.recovered.clone();
        r.fire_counted = true;
        r.event = e.on.is_some();
        r.error_ns = a.outcomes.iter().find_map(|o| o.stamps.error_ns());
        r.schedule = e.at.map(|at| Schedule {
            at_ns: at.at_ns,
            fire_ns: at.fire_ns,
            deadline_ns: now.mono_of(at.fire_ns),
            correction_ns: at.correction_ns,
        });
        state.reserve_ids_through(e.arm);
        state.insert_arm(r);
    }
    journal.append(Record::Up {
        pid: std::process::id(),
        backend: state.backend.to_owned(),
    })?;
    let mut status = JournalStatus {
        path: journal.path().display().to_string(),
        rearmed: Vec::new(),
        missed: Vec::new(),
        unknown: Vec::new(),
        torn: None,
        corrupt_lines: replayed.corrupt,
        unhealthy: None,
    };
    restore_sends(state, &replayed.lines, targets, &now);
    if let Some((bytes, text)) = &replayed.torn {
        journal.append(Record::Torn {
            bytes: *bytes,
            text: text.clone(),
        })?;
        status.torn = Some(format!("{bytes} bytes: {text}"));
    }
    let mut rearm = Vec::new();
    for action in replay::recover(&arms, now.real_ns, min_lead_ns) {
        match action {
            Action::Rearm(id) => {
                // Not counted against the caps until `Daemon::rearm` checks them.
                if let Some(a) = state.arm_mut(id) {
                    a.recovered = Some(REARMING.into());
                }
                rearm.push(arms[&id].entry.clone());
            }
            Action::Missed(id) => {
                mark_missed(state, journal, id)?;
                status.missed.push(id);
            }
            Action::Disarmed(id) => {
                journal.append(Record::Disarmed { arm: id })?;
                state.step(id, ArmStep::Disarmed);
            }
            Action::Unknown(id, outcomes) => {
                journal.append(Record::Recovered {
                    arm: id,
                    how: "unknown".into(),
                })?;
                for o in outcomes {
                    journal.append(Record::Outcome {
                        arm: id,
                        outcome: o.clone(),
                    })?;
                    state.add_outcome(id, o);
                }
                if let Some(a) = state.arm_mut(id) {
                    a.recovered = Some("unknown".into());
                }
                status.unknown.push(id);
                tracing::warn!(
                    arm = id,
                    "fired before the restart with no outcome on record: unknown"
                );
            }
        }
    }
    Ok((rearm, status))
}

/// Marks an arm journaled open and waiting for `Daemon::rearm`.
pub const REARMING: &str = "rearming";

/// The per-minute send history from before the restart, so the rate cap still counts it.
fn restore_sends(state: &mut State, lines: &[Line], targets: &[TargetPlan], now: &ClockPair) {
    for (t, name) in replay::recent_sends(lines, now.real_ns) {
        let Some(target) = targets.iter().position(|p| p.name == name) else {
            continue;
        };
        let ago = now.real_ns.saturating_sub(t).max(0) as u64;
        state.restore_send(now.mono_ns.saturating_sub(ago), target);
    }
}

/// Records a scheduled arm whose time passed while no daemon ran.
pub fn mark_missed(state: &mut State, journal: &mut Journal, id: u64) -> std::io::Result<()> {
    journal.append(Record::Recovered {
        arm: id,
        how: "missed".into(),
    })?;
    state.step(id, ArmStep::Missed);
    if let Some(a) = state.arm_mut(id) {
        a.recovered = Some("missed".into());
    }
    if let Some(t) = state.arm(id).map(|a| a.target) {
        state.stats.count(t, |c| c.missed += 1);
    }
    tracing::warn!(arm = id, "its time passed while no daemon ran: missed");
    Ok(())
}
