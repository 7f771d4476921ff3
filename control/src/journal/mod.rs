//! The journal: JSON lines appended to one file, each made durable (`sync_data`) before
//! the daemon acts on what it records or reports it. One daemon per journal (an
//! exclusive lock on `<path>.lock`). At start the file is read back: a torn last line
//! (a crash mid-write) and unreadable lines are reported and dropped, never fatal; the
//! file is then rewritten (temp file, fsync, rename) with the open arms and the most
//! recent closed ones, so it stays small and never continues after a torn line.
//!
//! An append that fails (a full disk, an I/O error), whole or in part, is cut back to the
//! end of the last good line before anything else is written, so a failure never glues
//! the next line to a partial one (which replay would skip, losing an acknowledged
//! record). Until an append succeeds again the journal reports itself unhealthy, with the
//! reason, and the daemon refuses new arms.

#[cfg(any(test, fuzzing))]
pub mod fuzz;
pub mod record;
pub mod replay;

use record::{Line, Record};
use std::collections::BTreeSet;
use std::fs::{DirBuilder, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Daemon start records kept when the journal is rewritten.
const UP_RECORDS_KEPT: usize = 16;
/// Longest piece of a torn line quoted in reports.
const TORN_QUOTE: usize = 200;

/// Why the journal cannot be used (the daemon does not start without it).
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("journal {0} is in use by another daemon")]
    Locked(PathBuf),
}

/// An open journal, appended to by the daemon.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    /// Holds the exclusive lock for the daemon's life.
    _lock: File,
    /// Length of the file up to the end of its last good line.
    good: u64,
    /// Why the last append failed, until one succeeds.
    failure: Option<String>,
}

/// What the journal held when it was opened.
#[derive(Debug, Default)]
pub struct Replayed {
    /// The readable lines, in order (after compaction).
    pub lines: Vec<Line>,
    /// A torn last line: its length and (the start of) its text.
    pub torn: Option<(usize, String)>,
    /// Complete lines that could not be read.
    pub corrupt: usize,
}

impl Journal {
    /// Locks, reads and compacts the journal at `path` (created, with an owner-only
    /// directory, if missing), keeping every open arm and the `keep_closed` most recent
    /// closed ones.
    pub fn open(path: &Path, keep_closed: usize) -> Result<(Journal, Replayed), JournalError> {
        let io = |what| {
            let path = path.to_owned();
            move |source| JournalError::Io { path, what, source }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(io("creating its directory"))?;
            }
        }
        let lock = owner_only()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(lock_path(path))
            .map_err(io("opening its lock file"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(JournalError::Locked(path.to_owned())),
            Err(TryLockError::Error(e)) => return Err(io("locking")(e)),
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io("reading")(e)),
        };
        let mut replayed = parse(&bytes);
        replayed.lines = compact(std::mem::take(&mut replayed.lines), keep_closed);
        rewrite(path, &replayed.lines).map_err(io("rewriting"))?;
        let file = owner_only()
            .append(true)
            .create(true)
            .open(path)
            .map_err(io("opening for append"))?;
        let good = file.metadata().map_err(io("reading its length"))?.len();
        Ok((
            Journal {
                path: path.to_owned(),
                file,
                _lock: lock,
                good,
                failure: None,
            },
            replayed,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why the journal is unhealthy (the last append failed), if it is.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Appends one record and waits until it is on disk. On failure nothing of it stays
    /// in the file (it is cut back to the last good line) and the journal is unhealthy
    /// until an append succeeds.
    pub fn append(&mut self, record: Record) -> io::Result<()> {
        let line = Line {
            t: crate::timing::clock::realtime_ns(),
            record,
        };
        let mut text = serde_json::to_string(&line).map_err(io::Error::other)?;
        text.push('\n');
        match self.write_line(text.as_bytes()) {
            Ok(()) => {
                self.good += text.len() as u64;
                self.failure = None;
                Ok(())
            }
            Err(e) => {
                self.failure = Some(e.to_string());
                // If this fails too, the next append tries again before writing.
                let _ = self.cut_back();
                Err(e)
            }
        }
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        if self.failure.is_some() {
            // The last append may have left part of its line: never write after it.
            self.cut_back()?;
        }
        // One write per line: a crash leaves at most this line torn.
        self.file.write_all(line)?;
        self.file.sync_data()
    }

    /// Truncates the file to the end of its last good line, durably.
    fn cut_back(&mut self) -> io::Result<()> {
        self.file.set_len(self.good)?;
        self.file.sync_data()
    }
}

fn owner_only() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(0o600);
    o
}

fn lock_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// Splits the file into lines; the last one, without its newline, is torn.
pub fn parse(bytes: &[u8]) -> Replayed {
    let mut out = Replayed::default();
    let mut rest = bytes;
    let mut number = 0;
    while !rest.is_empty() {
        number += 1;
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            let text = String::from_utf8_lossy(&rest[..rest.len().min(TORN_QUOTE)]).into_owned();
            tracing::warn!(
                bytes = rest.len(),
                line = number,
                "journal: torn last line (a crash mid-write) dropped: {text}"
            );
            out.torn = Some((rest.len(), text));
            break;
        };
        let line = &rest[..end];
        rest = &rest[end + 1..];
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Line>(line) {
            Ok(l) => out.lines.push(l),
            Err(e) => {
                tracing::warn!(line = number, error = %e, "journal: unreadable line skipped");
                out.corrupt += 1;
            }
        }
    }
    out
}

/// Keeps the lines of open arms, of the `keep_closed` most recent closed ones and of any
/// arm that sent within the rate cap's window (of the newest line: the history a restart
/// rebuilds), and the last few start records.
fn compact(lines: Vec<Line>, keep_closed: usize) -> Vec<Line> {
    let arms = replay::fold(&lines);
    let newest = lines.iter().map(|l| l.t).max().unwrap_or(0);
    let recent: BTreeSet<u64> = lines
        .iter()
        .filter(|l| l.t >= newest.saturating_sub(replay::SEND_HISTORY_NS))
        .filter_map(|l| match l.record {
            Record::Sent { arm, .. } => Some(arm),
            _ => None,
        })
        .collect();
    let closed: Vec<u64> = arms
        .values()
        .filter(|a| !a.is_open() && !recent.contains(&a.entry.arm))
        .map(|a| a.entry.arm)
        .collect();
    let dropped: BTreeSet<u64> = closed
        .iter()
        .take(closed.len().saturating_sub(keep_closed))
        .copied()
        .collect();
    let ups = lines
        .iter()
        .filter(|l| matches!(l.record, Record::Up { .. } | Record::Torn { .. }))
        .count();
    let mut skip_ups = ups.saturating_sub(UP_RECORDS_KEPT);
    lines
        .into_iter()
        .filter(|l| match l.record.arm() {
            Some(id) => !dropped.contains(&id),
            None if skip_ups > 0 => {
                skip_ups -= 1;
                false
            }
            None => true,
        })
        .collect()
}

/// Replaces the file with `lines`: written to a temp file, synced, renamed over, and the
/// directory synced, so a crash leaves the old file or the new one, whole.
fn rewrite(path: &Path, lines: &[Line]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut text = String::new();
    for l in lines {
        text += &serde_json::to_string(l).map_err(io::Error::other)?;
        text.push('\n');
    }
    {
        let mut f = owner_only()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl Record {
    /// The arm a record is about.
    pub fn arm(&self) -> Option<u64> {
        match self {
            Record::Arm(e) => Some(e.arm),
            Record::Rejected { arm, .. }
            | Record::Fire { arm }
            | Record::Disarm { arm }
            | Record::Disarmed { arm }
            | Record::DisarmFailed { arm }
            | Record::Sent { arm, .. }
            | Record::Outcome { arm, .. }
            | Record::Recovered { arm, .. } => Some(*arm),
            Record::Up { .. } | Record::Torn { .. } => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod disk_full;
#[cfg(test)]
mod tests;
