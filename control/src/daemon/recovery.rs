//! Start-up from the journal: the arms it tells of are loaded into the state (so `arms`
//! shows them), and what a crash left open is settled — missed, disarmed, or unknown
//! outcomes recorded — before any client is served. Arms to re-arm are returned: that
//! needs the datapath running (see `Daemon::rearm`).

use super::lifecycle::ArmStep;
use super::state::{ArmRecord, State};
use crate::journal::record::{ArmEntry, Line, Record};
use crate::journal::replay::{self, Action};
use crate::journal::{Journal, Replayed};
use crate::protocol::{ArmState, JournalStatus};
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
                // The fire may have left, so the arm is fired whatever the journal got to:
                // a crash between the fire line and the first sent line leaves it armed
                // (restored pending), and an outcome for a pending arm would be refused,
                // leaving it open with no datapath holding it.
                if let Some(a) = state.arm_mut(id) {
                    let so_far = std::mem::take(&mut a.outcomes);
                    a.restore(ArmState::Fired, so_far);
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::record::{ArmEntry, Line, Record};
    use std::net::{Ipv4Addr, SocketAddrV4};

    fn target() -> TargetPlan {
        TargetPlan {
            name: "lab".into(),
            host: "target.lab".into(),
            port: 443,
            address: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 443),
            template: quickdraw_datapath::http::RequestTemplate {
                method: "POST".into(),
                path: "/api/order".into(),
                headers: vec![],
                body: String::new(),
            },
            connections: 8,
            max_fires_per_arm: 8,
            max_fires_per_minute: 100,
            response_timeout: std::time::Duration::from_secs(1),
        }
    }

    /// kill -9 after a manual fire was journaled and before the datapath reported it sent
    /// (found by `control/tests/lab_burst.rs`): the arm comes back done, its outcome
    /// unknown, not pending forever with the unknown outcome refused.
    #[test]
    fn a_fire_journaled_but_never_reported_sent_is_unknown_and_closed() {
        let dir = std::env::temp_dir().join(format!("qd-recovery-fire-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("journal.jsonl");
        let now = ClockPair::now();
        let line = |record| Line {
            t: now.real_ns - 1_000_000_000,
            record,
        };
        let entry = |arm| ArmEntry {
            arm,
            key: format!("k{arm}"),
            sku: "1001".into(),
            qty: 1,
            target: "lab".into(),
            conns: 1,
            at: None,
            on: None,
        };
        // Arm 1: fire asked, nothing after. Arm 2: never fired (the control).
        let lines = [
            line(Record::Arm(entry(1))),
            line(Record::Arm(entry(2))),
            line(Record::Fire { arm: 1 }),
        ];
        let text: String = lines
            .iter()
            .map(|l| serde_json::to_string(l).unwrap() + "\n")
            .collect();
        std::fs::write(&path, text).unwrap();

        let targets = [target()];
        let mut s = State::new("kernel", "kernel", false, &["lab".to_owned()]);
        let (mut journal, replayed) = Journal::open(&path, 16).unwrap();
        let (rearm, status) = load(&mut s, &mut journal, &replayed, &targets, 0).unwrap();
        let _ = std::fs::remove_dir_all(&dir);

        assert_eq!(rearm.iter().map(|e| e.arm).collect::<Vec<_>>(), [2]);
        assert_eq!(status.unknown, [1]);
        let a = s.arm(1).unwrap();
        assert_eq!(a.state(), ArmState::Done);
        assert_eq!(a.outcomes.len(), 1);
        assert_eq!(a.outcomes[0].unknown.as_deref(), Some(replay::RESTART));
        assert_eq!(a.recovered.as_deref(), Some("unknown"));
    }
}
