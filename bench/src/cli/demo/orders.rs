//! The demo's order step: `control up` on each backend, a few manual orders and a burst
//! fired through the `control` CLI as a user would, and their per-fire timings.

use anyhow::{bail, ensure, Context};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Single orders fired per backend, then one burst over this many connections.
const SINGLES: usize = 3;
const BURST: usize = 8;

/// The `control` binary built beside this one.
pub(super) fn control_bin() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let bin = me.with_file_name("control");
    ensure!(
        bin.exists(),
        "{} not found: build the workspace first (make build)",
        bin.display()
    );
    Ok(bin)
}

/// A `control up` daemon, stopped (and killed if need be) when dropped.
pub(super) struct Daemon {
    child: Child,
    socket: PathBuf,
    bin: PathBuf,
}

impl Daemon {
    pub(super) fn start(
        bin: &Path,
        config: &Path,
        backend: &str,
        socket: &Path,
    ) -> anyhow::Result<Daemon> {
        let child = Command::new(bin)
            .args(["up", "--config"])
            .arg(config)
            .args(["--backend", backend, "--socket"])
            .arg(socket)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting control up")?;
        Ok(Daemon {
            child,
            socket: socket.to_owned(),
            bin: bin.to_owned(),
        })
    }

    pub(super) fn control(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.bin)
            .args(args)
            .arg("--socket")
            .arg(&self.socket)
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        ensure!(
            out.status.success(),
            "control {}: {}{}",
            args.join(" "),
            text,
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(text)
    }

    pub(super) fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<serde_json::Value> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("control up exited early ({status})");
            }
            if let Ok(text) = self.control(&["status", "--json"]) {
                let status: serde_json::Value = serde_json::from_str(&text)?;
                if status["ready"] == true {
                    return Ok(status);
                }
            }
            ensure!(
                Instant::now() < deadline,
                "the pool did not become warm within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.control(&["down"]).is_err() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Runs the order step on `backend`.
pub(crate) fn run(config: &Path, backend: &str) -> anyhow::Result<()> {
    let bin = control_bin()?;
    let dir = PathBuf::from(format!("/run/quickdraw-demo-{}", std::process::id()));
    let socket = dir.join(format!("{backend}.sock"));
    let mut daemon = Daemon::start(&bin, config, backend, &socket)?;
    let status = daemon.wait_ready(Duration::from_secs(15))?;
    let target = &status["targets"][0];
    println!(
        "control up --backend {backend}: ready, bind mode {}, {}/{} connections warm to {}",
        status["bind_mode"].as_str().unwrap_or("?"),
        target["warm"],
        target["wanted"],
        target["name"].as_str().unwrap_or("?")
    );
    for i in 0..SINGLES {
        let sku = format!("{}", 1001 + i);
        daemon.control(&["arm", "--sku", &sku, "--manual"])?;
        print!("{}", daemon.control(&["fire"])?);
    }
    daemon.control(&[
        "arm",
        "--sku",
        "2001",
        "--manual",
        "--conns",
        &BURST.to_string(),
    ])?;
    print!("{}", daemon.control(&["fire"])?);
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
