//! The demo's event step: the lab's event server runs in this process; `control up`
//! subscribes to it (config `[[event_sources]]`), an order is armed with
//! `--on lab-sse:PREDICATE`, a non-matching event leaves it armed, and the matching one
//! fires it; `control wait` prints the fire's timings.

use super::orders::{control_bin, Daemon};
use anyhow::{ensure, Context};
use quickdraw_lab::events::EventServer;
use quickdraw_lab::LabPaths;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) fn run(config: &Path, backend: &str) -> anyhow::Result<()> {
    let server = EventServer::start(&LabPaths::standard()).context("the lab event server")?;
    let bin = control_bin()?;
    let dir = PathBuf::from(format!("/run/quickdraw-demo-ev-{}", std::process::id()));
    let socket = dir.join(format!("{backend}.sock"));
    let mut daemon = Daemon::start(&bin, config, backend, &socket)?;
    daemon.wait_ready(Duration::from_secs(15))?;
    ensure!(
        server.wait_subscribers(1, Duration::from_secs(5)),
        "control up did not subscribe to the event stream"
    );
    let on = r#"lab-sse:sku == "3001" && stock > 0"#;
    println!("control arm --sku 3001 --on '{on}'");
    let armed: serde_json::Value =
        serde_json::from_str(&daemon.control(&["arm", "--sku", "3001", "--on", on, "--json"])?)?;
    let id = armed["arm"].as_u64().context("the arm's id")?;
    println!(
        "armed {id}: key {}; waits for a matching event on lab-sse",
        armed["key"].as_str().unwrap_or("?")
    );
    let miss = "event: stock\ndata: {\"sku\":\"3001\",\"stock\":0}\n\n";
    let hit = "event: stock\ndata: {\"sku\":\"3001\",\"stock\":5}\n\n";
    println!(
        "event (no match): {}",
        miss.lines().nth(1).unwrap_or_default()
    );
    server.send_sse(miss.as_bytes(), &[], Duration::ZERO);
    std::thread::sleep(Duration::from_millis(100));
    println!(
        "event (match):    {}",
        hit.lines().nth(1).unwrap_or_default()
    );
    server.send_sse(hit.as_bytes(), &[], Duration::ZERO);
    print!("{}", daemon.control(&["wait", &id.to_string()])?);
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
