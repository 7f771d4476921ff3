//! Privileged (root: a tmpfs): the daemon on a full journal. An arm whose journal line
//! cannot be written is refused, `status` says the journal is unhealthy and why, and
//! once space is back the next arm goes through and the journal is healthy again.

use super::*;
use crate::journal::disk_full::{fill, is_root, Tmpfs};
use crate::protocol::JournalStatus;

#[test]
fn a_full_journal_refuses_arms_and_status_says_why() {
    if !is_root() {
        eprintln!("skipped: mounting a tmpfs needs root (CI runs as root)");
        return;
    }
    let fs = Tmpfs::mount("64k");
    let rig = Rig::in_dir(fs.path("daemon"), Timing::default());
    rig.daemon.shared.update(|s| {
        s.journal = Some(JournalStatus {
            path: "journal.jsonl".into(),
            rearmed: vec![],
            missed: vec![],
            unknown: vec![],
            torn: None,
            corrupt_lines: 0,
            unhealthy: None,
        })
    });
    let first: ArmReply = rig.ask(&arm_request("1001", 1)).unwrap();
    fill(&fs.path("filler"));

    let mut refused = None;
    for i in 0..100 {
        match rig.ask::<ArmReply>(&arm_request(&format!("2{i:03}"), 1)) {
            // Disarmed at once, so the rate cap never stands in the way.
            Ok(a) => {
                let _ = rig.ask::<Done>(&Request::Disarm { arm: a.arm });
            }
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let refused = refused.expect("the journal never filled up");
    assert!(
        refused.contains("cannot write the journal") && refused.contains("unhealthy"),
        "{refused}"
    );
    let status: StatusReply = rig.ask(&Request::Status {}).unwrap();
    let why = status
        .journal
        .unwrap()
        .unhealthy
        .expect("unhealthy in status");
    assert!(why.contains("space"), "{why}");

    std::fs::remove_file(fs.path("filler")).unwrap();
    let after: ArmReply = rig.ask(&arm_request("3001", 1)).unwrap();
    assert!(after.arm > first.arm);
    let status: StatusReply = rig.ask(&Request::Status {}).unwrap();
    assert_eq!(status.journal.unwrap().unhealthy, None);
    // Every arm acknowledged is in the journal, whole.
    let journaled: Vec<u64> = rig
        .journaled()
        .iter()
        .filter_map(|r| match r {
            Record::Arm(e) => Some(e.arm),
            _ => None,
        })
        .collect();
    assert!(journaled.contains(&first.arm) && journaled.contains(&after.arm));
    rig.finish();
}
