//! Privileged test (root: it mounts a tmpfs): the journal on a tiny file system filled
//! up. A failed append leaves nothing behind, the journal says it is unhealthy, the next
//! append after space comes back succeeds, and every acknowledged record replays.

use super::record::{ArmEntry, Record};
use super::{parse, Journal};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted at a unique path; unmounted and removed on drop, whatever happened.
pub(crate) struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    pub(crate) fn mount(size: &str) -> Tmpfs {
        let dir = std::env::temp_dir().join(format!(
            "qd-journal-full-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let guard = Tmpfs { dir };
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&guard.dir)
            .status()
            .expect("running mount");
        assert!(status.success(), "mount tmpfs at {}", guard.dir.display());
        guard
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily if busy (a failed test's threads may still hold a file open): the
        // mount leaves the tree at once and goes when its last file closes.
        let unmounted = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
        // Only an empty directory is left once unmounted.
        let _ = std::fs::remove_dir(&self.dir);
    }
}

pub(crate) fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn arm(id: u64) -> Record {
    Record::Arm(ArmEntry {
        arm: id,
        key: format!("qd-{id:032x}"),
        sku: "1001".into(),
        qty: 1,
        target: "lab".into(),
        conns: 1,
        at: None,
    })
}

/// Fills the file system with one file, as far as it goes.
pub(crate) fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let block = [0u8; 512];
    while f.write(&block).is_ok_and(|n| n > 0) {}
    let _ = f.sync_all();
}

#[test]
fn a_full_disk_never_loses_or_tears_an_acknowledged_record() {
    if !is_root() {
        eprintln!("skipped: mounting a tmpfs needs root (CI runs as root)");
        return;
    }
    let fs = Tmpfs::mount("64k");
    let path = fs.path("journal.jsonl");
    let (mut journal, _) = Journal::open(&path, 16).unwrap();
    let mut acked = Vec::new();
    let mut id = 0;
    for _ in 0..8 {
        id += 1;
        journal.append(arm(id)).unwrap();
        acked.push(id);
    }
    fill(&fs.path("filler"));

    // Appends now fail, some of them part-way through a line; each one is cut back.
    let mut failures = 0;
    for _ in 0..200 {
        id += 1;
        match journal.append(arm(id)) {
            Ok(()) => acked.push(id),
            Err(e) => {
                failures += 1;
                let why = journal.failure().expect("unhealthy after a failed append");
                assert!(why.contains(&e.to_string()), "{why}");
                let bytes = std::fs::read(&path).unwrap();
                let replayed = parse(&bytes);
                assert!(
                    replayed.torn.is_none(),
                    "a failed append left a partial line"
                );
                assert_eq!(replayed.corrupt, 0);
                assert_eq!(replayed.lines.len(), acked.len());
            }
        }
    }
    assert!(failures > 0, "the file system never filled up");

    // Space comes back: the next append succeeds and the journal is healthy again.
    std::fs::remove_file(fs.path("filler")).unwrap();
    id += 1;
    journal.append(arm(id)).unwrap();
    acked.push(id);
    assert!(journal.failure().is_none());
    drop(journal);

    let (_, replayed) = Journal::open(&path, 16).unwrap();
    assert!(replayed.torn.is_none());
    assert_eq!(replayed.corrupt, 0);
    let ids: Vec<u64> = replayed
        .lines
        .iter()
        .filter_map(|l| match &l.record {
            Record::Arm(e) => Some(e.arm),
            _ => None,
        })
        .collect();
    assert_eq!(ids, acked, "every acknowledged arm replays, in order");
}
