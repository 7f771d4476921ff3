//! What the lab tests share: a `control up` child and the client commands run against
//! it, and nginx's access log read back.

#![allow(dead_code)] // each test binary uses its own part of this

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const LAB_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/lab.toml");
/// Time for every connection of the pool to come up (TCP + TLS, a few ms each here).
pub const READY_WITHIN: Duration = Duration::from_secs(10);

/// A `control up` child, killed if the test fails before `control down`.
pub struct Daemon {
    pub child: Child,
    pub socket: PathBuf,
    pub dir: PathBuf,
}

impl Daemon {
    pub fn up(tag: &str, config: &Path, backend: &str) -> Daemon {
        let dir = std::env::temp_dir().join(format!("qd-lab-control-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Daemon::up_in(&dir, &dir.join("run/control.sock"), config, backend)
    }

    /// A daemon on the socket `socket`, with its journal under `dir` (left as it is: a
    /// restart finds the previous daemon's journal there) and metrics on a free port.
    pub fn up_in(dir: &Path, socket: &Path, config: &Path, backend: &str) -> Daemon {
        Daemon::spawn(dir, socket, config, &["--backend", backend, "--no-pin"])
    }

    /// A daemon whose datapath is pinned to the configuration's core, as in production
    /// (timing tests: an unpinned busy-poll thread shares its core with nginx).
    pub fn up_pinned(tag: &str, config: &Path, backend: &str) -> Daemon {
        let dir = std::env::temp_dir().join(format!("qd-lab-control-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Daemon::spawn(
            &dir,
            &dir.join("run/control.sock"),
            config,
            &["--backend", backend],
        )
    }

    fn spawn(dir: &Path, socket: &Path, config: &Path, args: &[&str]) -> Daemon {
        let child = Command::new(env!("CARGO_BIN_EXE_control"))
            .arg("up")
            .arg("--config")
            .arg(config)
            .args(args)
            .args(["--metrics", "127.0.0.1:0", "--socket"])
            .arg(socket)
            .arg("--journal")
            .arg(dir.join("state/journal.jsonl"))
            .stdin(Stdio::null())
            .spawn()
            .expect("control up starts");
        Daemon {
            child,
            socket: socket.to_owned(),
            dir: dir.to_owned(),
        }
    }

    /// Runs a client subcommand against this daemon; (exit code, stdout, stderr).
    pub fn control(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_control"))
            .args(args)
            .arg("--socket")
            .arg(&self.socket)
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    }

    /// Runs a `--json` subcommand that must succeed; its reply.
    pub fn json(&self, args: &[&str]) -> Value {
        let (code, stdout, stderr) = self.control(args);
        assert_eq!(code, Some(0), "control {args:?}: {stdout}{stderr}");
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("control {args:?}: {e}: {stdout}"))
    }

    /// Polls `status --json` until `done` holds or `limit` passes; the last status seen.
    pub fn status_until(
        &mut self,
        limit: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> (bool, Value) {
        let deadline = Instant::now() + limit;
        let mut last = Value::Null;
        loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                panic!("the daemon exited early ({exit}); last status {last}");
            }
            // 0: ready; 3: up but not ready (the exit-code contract).
            let (code, stdout, _) = self.control(&["status", "--json"]);
            if matches!(code, Some(0 | 3)) {
                last = serde_json::from_str(&stdout).unwrap();
                if done(&last) {
                    return (true, last);
                }
            }
            if Instant::now() > deadline {
                return (false, last);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL, as a crash: no cleanup of any kind; the journal and the socket file stay.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        // Leave the directory (journal, stale socket) to the next daemon.
        self.dir = PathBuf::new();
    }

    /// Client commands as another user: the `control` binary run through `setpriv`.
    pub fn control_as(&self, uid: u32, bin: &Path, args: &[&str]) -> (Option<i32>, String) {
        let out = Command::new("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .arg("--clear-groups")
            .arg(bin)
            .args(args)
            .arg("--socket")
            .arg(&self.socket)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    }

    /// `control down`, then the daemon must exit 0 and leave no socket behind.
    pub fn down(mut self) {
        let (code, stdout, stderr) = self.control(&["down"]);
        assert_eq!(code, Some(0), "control down: {stdout}{stderr}");
        let deadline = Instant::now() + Duration::from_secs(10);
        let exit = loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                break exit;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not exit after down"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(exit.success(), "daemon exit: {exit}");
        assert!(!self.socket.exists(), "the socket is removed");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// nginx's order lines carrying `key` (its log format has the request line and the
/// Idempotency-Key header). nginx logs after responding: wait until `want` are there.
pub fn orders_logged(access_log: &Path, key: &str, want: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let text = std::fs::read_to_string(access_log).unwrap_or_default();
        let lines: Vec<String> = text
            .lines()
            .filter(|l| l.contains("\"POST /api/order ") && l.contains(&format!("\"{key}\"")))
            .map(str::to_owned)
            .collect();
        if lines.len() >= want || Instant::now() > deadline {
            // A little longer, so a duplicate would show up too.
            std::thread::sleep(Duration::from_millis(200));
            let text = std::fs::read_to_string(access_log).unwrap_or_default();
            return text
                .lines()
                .filter(|l| l.contains("\"POST /api/order ") && l.contains(&format!("\"{key}\"")))
                .map(str::to_owned)
                .collect();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
