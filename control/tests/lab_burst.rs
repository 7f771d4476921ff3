//! kill -9 in the middle of a burst of manual fires, and what the journal makes of it
//! after a restart, checked against nginx's access log (root; own lab each).
//!
//! What the journal guarantees (control/src/journal, daemon/recovery.rs), and so what is
//! asserted here, arm by arm:
//! - an arm is journaled before the datapath holds it, and a manual fire is journaled
//!   (`"rec":"fire"`, synced) before the command goes to the datapath. An arm with no fire
//!   line was therefore never sent: a restart re-arms it with the same Idempotency-Key
//!   (`recovered: "rearmed"`), and nginx has no line for it until it is fired again, once;
//! - an arm with a fire line but not every outcome may have reached the server: a restart
//!   records its missing outcomes as unknown (`daemon_restart`) and never sends it again,
//!   so nginx has at most one line for it — "possibly sent", said, not guessed;
//! - an outcome journaled before the crash is final: a 200 has exactly one line, a
//!   "not sent" (no idle connection for it in the burst) none.
//!
//! Every arm ends in one of those, no key is logged twice, and none is left open.

use quickdraw_lab::LabSession;
use serde_json::Value;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

mod common;

use common::{orders_logged, Daemon, LAB_CONFIG, READY_WITHIN};

/// Orders in the burst.
const BURST: usize = 20;
/// Fires the client has not sent when the daemon dies.
const HELD_BACK: usize = 6;
/// The daemon is killed once this many fires are journaled.
const KILL_AFTER: usize = 7;

fn ready(daemon: &mut Daemon) {
    let (ready, status) = daemon.status_until(READY_WITHIN, |s| s["ready"] == true);
    assert!(ready, "never ready: {status}");
}

/// Journal lines recording a fire asked for.
fn fires_journaled(journal: &Path) -> usize {
    std::fs::read_to_string(journal)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"rec\":\"fire\""))
        .count()
}

/// nginx's order lines for `key`, without waiting for any (a count of 0 is expected).
fn logged_now(access_log: &Path, key: &str) -> usize {
    std::fs::read_to_string(access_log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"POST /api/order ") && l.contains(&format!("\"{key}\"")))
        .count()
}

fn kill9_mid_burst(backend: &str) {
    let lab = LabSession::start().expect("lab up");
    let access_log = lab.status().unwrap().access_log.clone();
    let dir = std::env::temp_dir().join(format!("qd-lab-burst-{backend}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let socket = dir.join("run/control.sock");
    let journal = dir.join("state/journal.jsonl");
    let config = Path::new(LAB_CONFIG);
    let mut first = Daemon::up_in(&dir, &socket, config, backend);
    ready(&mut first);

    let arms: Vec<(u64, String)> = (0..BURST)
        .map(|i| {
            let sku = (3000 + i).to_string();
            let a = first.json(&["arm", "--sku", &sku, "--manual", "--json"]);
            (
                a["arm"].as_u64().unwrap(),
                a["key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();

    // The burst: every fire on its own connection (the daemon serves each on a thread),
    // all at once; kill -9 once KILL_AFTER of them are journaled (each is synced to disk
    // first, so they land one by one). The last HELD_BACK the client had not sent yet.
    let mut clients = Vec::new();
    for (id, _) in &arms[..BURST - HELD_BACK] {
        let mut s = UnixStream::connect(&socket).unwrap();
        s.write_all(format!("{{\"v\":1,\"cmd\":\"fire\",\"arm\":{id}}}\n").as_bytes())
            .unwrap();
        clients.push(s);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while fires_journaled(&journal) < KILL_AFTER && Instant::now() < deadline {
        std::hint::spin_loop();
    }
    first.kill9();
    let at_kill = fires_journaled(&journal);
    eprintln!(
        "{backend}: {} of {BURST} fires asked, {at_kill} journaled at the kill",
        clients.len()
    );
    drop(clients);

    let mut second = Daemon::up_in(&dir, &socket, config, backend);
    let (up, status) = second.status_until(READY_WITHIN, |s| s["running"] == true);
    assert!(up, "{status}");
    let rearmed: Vec<u64> = status["journal"]["rearmed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let unknown: Vec<u64> = status["journal"]["unknown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(
        status["journal"]["missed"],
        serde_json::json!([]),
        "{status}"
    );
    ready(&mut second);

    let (mut sent, mut not_sent, mut possibly, mut refired) = (0, 0, 0, 0);
    let mut possibly_logged = 0;
    let listed = second.json(&["arms", "--json"]);
    for (id, key) in &arms {
        if rearmed.contains(id) {
            // Never sent: nothing at the server until it is fired again, then once.
            let a = listed["arms"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["arm"] == *id)
                .unwrap_or_else(|| panic!("arm {id} not listed: {listed}"));
            assert_eq!(
                (a["state"].as_str(), a["recovered"].as_str()),
                (Some("armed"), Some("rearmed")),
                "{a}"
            );
            assert_eq!(a["key"], key.as_str(), "the same Idempotency-Key");
            assert_eq!(
                logged_now(&access_log, key),
                0,
                "arm {id} re-armed after it was sent"
            );
            let fired = second.json(&["fire", &id.to_string(), "--json"]);
            assert_eq!(fired["outcomes"][0]["status"], 200, "{fired}");
            assert_eq!(orders_logged(&access_log, key, 1).len(), 1, "arm {id}");
            refired += 1;
            continue;
        }
        let reply: Value = second.json(&["wait", &id.to_string(), "--json"]);
        assert_eq!(reply["complete"], true, "arm {id}: {reply}");
        let outcome = &reply["outcomes"][0];
        let lines = orders_logged(&access_log, key, 1).len();
        match outcome["result"].as_str().unwrap() {
            "status" => {
                assert_eq!(outcome["status"], 200, "{reply}");
                assert_eq!(lines, 1, "arm {id} answered 200: {reply}");
                sent += 1;
            }
            "not_sent" => {
                assert_eq!(lines, 0, "arm {id} reported not sent: {reply}");
                not_sent += 1;
            }
            "unknown" => {
                assert!(unknown.contains(id), "arm {id}: {reply} {status}");
                assert_eq!(reply["recovered"], "unknown", "{reply}");
                assert_eq!(outcome["unknown"], "daemon_restart", "{reply}");
                assert!(lines <= 1, "arm {id} logged {lines} times");
                possibly += 1;
                possibly_logged += lines;
            }
            other => panic!("arm {id}: outcome {other}: {reply}"),
        }
    }
    eprintln!(
        "{backend}: {sent} answered before the kill, {not_sent} not sent, {possibly} \
         possibly sent (unknown; {possibly_logged} of them in nginx's log), {refired} \
         re-armed and fired once after the restart"
    );
    assert_eq!(sent + not_sent + possibly + refired, BURST);
    assert_eq!(refired, rearmed.len(), "{status}");
    assert_eq!(possibly, unknown.len(), "{status}");
    assert!(
        refired > 0,
        "the kill came after the whole burst: not mid-burst"
    );

    // Nothing is left open, and no key is in nginx's log twice.
    let listed = second.json(&["arms", "--json"]);
    for a in listed["arms"].as_array().unwrap() {
        assert_eq!(a["state"], "done", "{a}");
    }
    for (id, key) in &arms {
        assert!(logged_now(&access_log, key) <= 1, "arm {id} logged twice");
    }
    second.down(); // and removes the directory
    drop(lab);
}

#[test]
fn kernel_kill9_mid_burst_loses_and_duplicates_nothing() {
    kill9_mid_burst("kernel");
}

#[test]
fn af_xdp_kill9_mid_burst_loses_and_duplicates_nothing() {
    kill9_mid_burst("af_xdp");
}
