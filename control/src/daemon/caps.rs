//! The caps an arm must fit, checked the same way for a new arm and for one re-armed
//! from the journal after a restart: open arms, and requests per minute per server
//! *address* (targets that name the same server share its cap, the strictest of theirs).
//! Arms journaled open and still waiting to be re-armed are not counted: each is checked
//! as it comes back.

use super::error::DaemonError;
use super::recovery::REARMING;
use super::state::State;
use crate::setup::TargetPlan;

/// Why an arm does not fit.
pub(super) fn check(
    s: &mut State,
    targets: &[TargetPlan],
    target: usize,
    conns: usize,
    max_open_arms: usize,
    now_ns: u64,
) -> Result<(), DaemonError> {
    let waiting = |a: &super::state::ArmRecord| {
        a.state().is_open() && a.recovered.as_deref() == Some(REARMING)
    };
    let open = s.open_arms() - s.arms().filter(|a| waiting(a)).count();
    if open >= max_open_arms {
        return Err(DaemonError::TooManyOpen { open });
    }
    let address = targets[target].address;
    let group: Vec<usize> = (0..targets.len())
        .filter(|&i| targets[i].address == address)
        .collect();
    let cap = group
        .iter()
        .map(|&i| targets[i].max_fires_per_minute)
        .min()
        .unwrap_or(0);
    let mut committed = 0;
    for &i in &group {
        let held_by_waiting: usize = s
            .arms()
            .filter(|a| a.target == i && waiting(a))
            .map(|a| a.conns)
            .sum();
        committed += s.committed(i, now_ns).saturating_sub(held_by_waiting);
    }
    if committed + conns > cap {
        let names: Vec<&str> = group.iter().map(|&i| targets[i].name.as_str()).collect();
        return Err(DaemonError::RateCap {
            target: format!("{} (server {address})", names.join(", ")),
            committed,
            more: conns,
            cap,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::record::{ArmEntry, Line, Record};
    use crate::journal::Journal;
    use crate::protocol::{ArmState, StampsView};
    use crate::timing::clock::ClockPair;
    use std::net::{Ipv4Addr, SocketAddrV4};

    fn target(name: &str, last: u8, per_minute: usize) -> TargetPlan {
        TargetPlan {
            name: name.into(),
            host: "target.lab".into(),
            port: 443,
            address: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, last), 443),
            template: quickdraw_datapath::http::RequestTemplate {
                method: "POST".into(),
                path: "/api/order".into(),
                headers: vec![],
                body: String::new(),
            },
            connections: 8,
            max_fires_per_arm: 8,
            max_fires_per_minute: per_minute,
            response_timeout: std::time::Duration::from_secs(1),
        }
    }

    fn state(targets: &[TargetPlan]) -> State {
        let names: Vec<String> = targets.iter().map(|t| t.name.clone()).collect();
        State::new("kernel", "kernel", false, &names)
    }

    fn armed(s: &mut State, id: u64, target: (usize, &str), conns: usize) {
        let mut r = super::super::state::ArmRecord::new(id, ("1001", 1, "k"), target, conns);
        r.step(super::super::lifecycle::ArmStep::Acked).unwrap();
        assert_eq!(r.state(), ArmState::Armed);
        s.insert_arm(r);
    }

    #[test]
    fn two_names_for_one_address_share_its_cap() {
        let targets = [
            target("lab", 2, 4),
            target("alias", 2, 6),
            target("other", 3, 4),
        ];
        let mut s = state(&targets);
        armed(&mut s, 1, (0, "lab"), 3);
        // The alias is held to the stricter cap (4) and sees lab's 3.
        let e = check(&mut s, &targets, 1, 2, 64, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lab, alias") && e.contains("(4)"), "{e}");
        check(&mut s, &targets, 1, 1, 64, 1).unwrap();
        // Another address has its own.
        check(&mut s, &targets, 2, 4, 64, 1).unwrap();
    }

    #[test]
    fn open_arms_are_capped() {
        let targets = [target("lab", 2, 100)];
        let mut s = state(&targets);
        armed(&mut s, 1, (0, "lab"), 1);
        armed(&mut s, 2, (0, "lab"), 1);
        assert!(check(&mut s, &targets, 0, 1, 2, 1)
            .unwrap_err()
            .to_string()
            .contains("max_open_arms"));
        check(&mut s, &targets, 0, 1, 3, 1).unwrap();
    }

    /// The send history and the open arms come back from the journal, and an arm waiting
    /// to be re-armed is checked against them like a new one.
    #[test]
    fn a_restart_keeps_the_send_history_and_re_arming_obeys_the_caps() {
        let dir = std::env::temp_dir().join(format!("qd-caps-restart-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("journal.jsonl");
        let now = ClockPair::now();
        let entry = |arm: u64| ArmEntry {
            arm,
            key: format!("k{arm}"),
            sku: "1001".into(),
            qty: 1,
            target: "lab".into(),
            conns: 1,
            at: None,
            on: None,
        };
        let sent = |arm: u64, ago_s: i64| Line {
            t: now.real_ns - ago_s * 1_000_000_000,
            record: Record::Sent {
                arm,
                conn: 0,
                stamps: StampsView::default(),
            },
        };
        let mut lines = Vec::new();
        // Three sends within the minute, one long before it.
        for (arm, ago) in [(1, 300), (2, 30), (3, 20), (4, 10)] {
            lines.push(Line {
                t: now.real_ns - (ago + 1) * 1_000_000_000,
                record: Record::Arm(entry(arm)),
            });
            lines.push(sent(arm, ago));
        }
        // Two manual arms left open by the crash.
        for arm in [5, 6] {
            lines.push(Line {
                t: now.real_ns - 5_000_000_000,
                record: Record::Arm(entry(arm)),
            });
        }
        let text: String = lines
            .iter()
            .map(|l| serde_json::to_string(l).unwrap() + "\n")
            .collect();
        std::fs::write(&path, text).unwrap();

        let targets = [target("lab", 2, 4)];
        let mut s = state(&targets);
        let (mut journal, replayed) = Journal::open(&path, 0).unwrap();
        let (rearm, _) =
            super::super::recovery::load(&mut s, &mut journal, &replayed, &targets, 0).unwrap();
        assert_eq!(rearm.iter().map(|e| e.arm).collect::<Vec<_>>(), [5, 6]);
        // 3 sent in the last minute: the first re-arm fits (4), the second does not.
        check(&mut s, &targets, 0, 1, 64, now.mono_ns).unwrap();
        s.arm_mut(5).unwrap().recovered = Some("rearmed".into());
        let e = check(&mut s, &targets, 0, 1, 64, now.mono_ns)
            .unwrap_err()
            .to_string();
        assert!(e.contains("4 request(s)"), "{e}");
        // A minute on, the history has aged out.
        check(&mut s, &targets, 0, 1, 64, now.mono_ns + 61_000_000_000).unwrap();
        drop(journal);
        // Compaction kept the recent senders' stories although no closed arm was to be
        // kept: a second restart still finds the history.
        let (_, again) = Journal::open(&path, 0).unwrap();
        let recent = crate::journal::replay::recent_sends(&again.lines, now.real_ns);
        assert_eq!(recent.len(), 3, "{recent:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
