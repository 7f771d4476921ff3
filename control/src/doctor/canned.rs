//! Canned `/sys` and `/proc` trees for the doctor's tests: a directory per test, files
//! written by path, removed on drop.

use super::Host;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A throwaway root with the files a test writes into it.
pub struct Tree {
    root: PathBuf,
}

impl Tree {
    pub fn new() -> Tree {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!("qd-doctor-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        Tree { root }
    }

    /// Writes `text` at `path` (absolute, as on a live system).
    pub fn file(&self, path: &str, text: &str) -> &Tree {
        let p = self.root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }

    /// Makes the directory `path`.
    pub fn dir(&self, path: &str) -> &Tree {
        std::fs::create_dir_all(self.root.join(path.trim_start_matches('/'))).unwrap();
        self
    }

    /// A symlink at `path` pointing to `target`.
    pub fn link(&self, path: &str, target: &str) -> &Tree {
        let p = self.root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, p).unwrap();
        self
    }

    pub fn host(&self) -> Host {
        Host::at(&self.root)
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
