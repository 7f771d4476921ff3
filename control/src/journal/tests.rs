//! The journal file: durable appends, torn and corrupt lines, compaction, the lock.

use super::record::{ArmEntry, Record};
use super::*;
use std::os::unix::fs::PermissionsExt;

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("qd-journal-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn arm(id: u64) -> Record {
    Record::Arm(ArmEntry {
        arm: id,
        key: format!("k{id}"),
        sku: "1".into(),
        qty: 1,
        target: "lab".into(),
        conns: 1,
        at: None,
        on: None,
    })
}

#[test]
fn appends_survive_reopening_and_files_are_owner_only() {
    let dir = scratch("append");
    let path = dir.join("state/journal.jsonl");
    {
        let (mut j, replayed) = Journal::open(&path, 10).unwrap();
        assert!(replayed.lines.is_empty() && replayed.torn.is_none());
        j.append(arm(1)).unwrap();
        j.append(Record::Fire { arm: 1 }).unwrap();
    }
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.join("state")), 0o700);
    assert_eq!(mode(&path), 0o600);
    let (_j, replayed) = Journal::open(&path, 10).unwrap();
    let records: Vec<Record> = replayed.lines.into_iter().map(|l| l.record).collect();
    assert_eq!(records, vec![arm(1), Record::Fire { arm: 1 }]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_torn_last_line_is_reported_dropped_and_not_continued() {
    let dir = scratch("torn");
    let path = dir.join("journal.jsonl");
    {
        let (mut j, _) = Journal::open(&path, 10).unwrap();
        j.append(arm(1)).unwrap();
    }
    // A crash in the middle of the next line, and a garbage line before it.
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(b"{not json}\n{\"t\":1,\"rec\":\"fire\",\"ar")
        .unwrap();
    drop(f);
    let (mut j, replayed) = Journal::open(&path, 10).unwrap();
    assert_eq!(replayed.lines.len(), 1);
    assert_eq!(replayed.corrupt, 1);
    let (bytes, text) = replayed.torn.unwrap();
    assert_eq!(
        (bytes, text.as_str()),
        (23, "{\"t\":1,\"rec\":\"fire\",\"ar")
    );
    // Appending after the rewrite starts on a fresh line.
    j.append(Record::Fire { arm: 1 }).unwrap();
    drop(j);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    let (_j, replayed) = Journal::open(&path, 10).unwrap();
    assert!(replayed.torn.is_none() && replayed.corrupt == 0);
    assert_eq!(replayed.lines.len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn compaction_keeps_open_arms_and_recent_closed_ones() {
    let dir = scratch("compact");
    let path = dir.join("journal.jsonl");
    {
        let (mut j, _) = Journal::open(&path, 100).unwrap();
        for id in 1..=10 {
            j.append(arm(id)).unwrap();
            if id != 2 {
                j.append(Record::Disarmed { arm: id }).unwrap();
            }
        }
        for _ in 0..20 {
            j.append(Record::Up {
                pid: 1,
                backend: "kernel".into(),
            })
            .unwrap();
        }
    }
    let (_j, replayed) = Journal::open(&path, 3).unwrap();
    let arms = replay::fold(&replayed.lines);
    assert_eq!(arms.keys().copied().collect::<Vec<_>>(), vec![2, 8, 9, 10]);
    let ups = replayed
        .lines
        .iter()
        .filter(|l| l.record.arm().is_none())
        .count();
    assert_eq!(ups, UP_RECORDS_KEPT);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn one_daemon_per_journal() {
    let dir = scratch("lock");
    let path = dir.join("journal.jsonl");
    let (_first, _) = Journal::open(&path, 10).unwrap();
    let err = Journal::open(&path, 10).unwrap_err().to_string();
    assert!(err.contains("in use by another daemon"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
