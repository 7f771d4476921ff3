//! The lab lock: an exclusive flock on /run/quickdraw-lab.lock, so two runs (two CLIs, two
//! test processes, two test threads) never build, use or tear down the lab at once.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::layout::LOCK_PATH;
use crate::Error;

/// Holding one of these means holding the lab lock; dropping it releases the lock.
///
/// flock locks belong to an open file description, so two `LabLock`s conflict even inside
/// one process: parallel test threads wait for each other too. The kernel drops the lock
/// when the process dies, so a crashed run never leaves the lab locked. The lock file
/// itself is never removed: unlinking it would let a waiter lock an orphaned inode.
#[derive(Debug)]
pub struct LabLock {
    _file: File,
    path: PathBuf,
}

impl LabLock {
    /// Waits for and takes the lab lock.
    pub fn acquire() -> Result<Self, Error> {
        Self::acquire_at(Path::new(LOCK_PATH))
    }

    /// Waits for and takes an exclusive lock on `path` (created if missing).
    pub fn acquire_at(path: &Path) -> Result<Self, Error> {
        let file = open(path)?;
        file.lock().map_err(|e| Error::file("flock", path, e))?;
        Ok(LabLock {
            _file: file,
            path: path.to_owned(),
        })
    }

    /// Takes the lock on `path` if nobody holds it; `None` if somebody does.
    pub fn try_acquire_at(path: &Path) -> Result<Option<Self>, Error> {
        let file = open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(LabLock {
                _file: file,
                path: path.to_owned(),
            })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(Error::file("flock", path, e)),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn open(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::file("open lock file", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_waits_for_the_first_even_in_one_process() {
        let path = std::env::temp_dir().join(format!("qd-bench-lock-{}", std::process::id()));
        let first = LabLock::try_acquire_at(&path).unwrap().expect("free");
        assert!(LabLock::try_acquire_at(&path).unwrap().is_none());
        drop(first);
        let again = LabLock::try_acquire_at(&path).unwrap();
        assert!(again.is_some());
        drop(again);
        std::fs::remove_file(&path).unwrap();
    }
}
