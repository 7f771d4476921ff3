//! Event arms as an operator meets them, against the lab's event server (SSE on
//! 198.18.0.2:8443 and UDP) and nginx: `control arm --on`, its errors, a fire on a
//! matching event only, `event_to_tx` in the stats, and an event arm that survives
//! `kill -9` and a restart, then fires on the next event. Privileged; own lab.

use quickdraw_lab::events::{udp_feed, EventServer};
use quickdraw_lab::{LabPaths, LabSession};
use quickdraw_lab::{APPLIANCE_IP, KERNEL_IP};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

mod common;

use common::{orders_logged, Daemon, LAB_CONFIG, READY_WITHIN};

fn sse(data: &str) -> Vec<u8> {
    format!("event: stock\ndata: {data}\n\n").into_bytes()
}

fn fired_ok(fire: &Value) {
    assert_eq!(fire["complete"], true, "{fire}");
    assert_eq!(fire["outcomes"].as_array().unwrap().len(), 1, "{fire}");
    assert_eq!(fire["outcomes"][0]["status"], 200, "{fire}");
}

fn state(daemon: &Daemon, id: u64) -> String {
    let arms = daemon.json(&["arms", "--json"]);
    arms["arms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["arm"] == id)
        .map(|a| a["state"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

fn event_arm_survives_kill9(backend: &str) {
    let lab = LabSession::start().expect("lab up");
    let access_log = lab.status().unwrap().access_log.clone();
    let server = EventServer::start(&LabPaths::standard()).expect("event server");
    let feed = udp_feed(if backend == "af_xdp" {
        APPLIANCE_IP
    } else {
        KERNEL_IP
    });
    let dir = std::env::temp_dir().join(format!("qd-lab-event-{backend}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let socket = dir.join("run/control.sock");
    let config = Path::new(LAB_CONFIG);
    let mut first = Daemon::up_in(&dir, &socket, config, backend);
    let (ready, status) = first.status_until(READY_WITHIN, |s| s["ready"] == true);
    assert!(ready, "never ready: {status}");
    assert!(
        server.wait_subscribers(1, Duration::from_secs(5)),
        "no SSE stream"
    );

    // A predicate error names its column; an unknown source names the known ones.
    let (code, _, err) = first.control(&["arm", "--sku", "1001", "--on", "lab-sse:sku = 1"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("column 13: `=` is not a comparison"), "{err}");
    let (code, _, err) = first.control(&["arm", "--sku", "1001", "--on", "feed:a == 1"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("configured: lab-sse, lab-udp"), "{err}");

    let on = r#"lab-sse:sku == "1001" && stock > 0"#;
    let armed = first.json(&["arm", "--sku", "1001", "--on", on, "--json"]);
    let id = armed["arm"].as_u64().unwrap();
    let key = armed["key"].as_str().unwrap().to_owned();
    // Non-matching events, on both sources: nothing fires.
    server.send_sse(&sse(r#"{"sku":"1001","stock":0}"#), &[], Duration::ZERO);
    server
        .send_udp(feed, br#"{"sku":"1001","stock":5}"#)
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(state(&first, id), "armed");
    first.kill9();

    // Restarted: the journal brings the event arm back, and its source reconnects.
    let mut second = Daemon::up_in(&dir, &socket, config, backend);
    let (up, status) = second.status_until(READY_WITHIN, |s| s["ready"] == true);
    assert!(up, "{status}");
    assert_eq!(
        status["journal"]["rearmed"],
        serde_json::json!([id]),
        "{status}"
    );
    // The dead stream of the first daemon is still listed until a write fails.
    assert!(
        server.wait_subscribers(2, Duration::from_secs(5)),
        "no new SSE stream"
    );
    server.send_sse(&sse(r#"{"sku":"1001","stock":0}"#), &[], Duration::ZERO);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(state(&second, id), "armed", "a non-matching event fired it");
    // Split across records: fires on the last piece.
    server.send_sse(
        &sse(r#"{"sku":"1001","stock":3}"#),
        &[7, 20],
        Duration::from_millis(2),
    );
    let fired = second.json(&["wait", &id.to_string(), "--json"]);
    fired_ok(&fired);
    assert_eq!(fired["key"], key.as_str(), "the same Idempotency-Key");
    assert_eq!(fired["recovered"], "rearmed", "{fired}");
    assert_eq!(orders_logged(&access_log, &key, 1).len(), 1);

    // A UDP arm fires on its datagram.
    let udp = second.json(&[
        "arm",
        "--sku",
        "1002",
        "--on",
        r#"lab-udp:sku == "1002""#,
        "--json",
    ]);
    let udp_id = udp["arm"].as_u64().unwrap();
    server.send_udp(feed, br#"{"sku":"1001"}"#).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(state(&second, udp_id), "armed");
    server.send_udp(feed, br#"{"sku":"1002"}"#).unwrap();
    fired_ok(&second.json(&["wait", &udp_id.to_string(), "--json"]));

    let stats = second.json(&["stats", "--json"]);
    let event_to_tx = stats["latency"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["metric"] == "event_to_tx")
        .cloned()
        .unwrap_or_default();
    assert_eq!(event_to_tx["count"], 2, "{stats}");
    assert_eq!(stats["counters"]["event_fires"], 2, "{stats}");
    eprintln!("{backend}: event_to_tx {event_to_tx}");
    second.down();
    drop(server);
    drop(lab);
}

#[test]
fn kernel_event_arm_fires_once_and_survives_kill9() {
    event_arm_survives_kill9("kernel");
}

#[test]
fn af_xdp_event_arm_fires_once_and_survives_kill9() {
    event_arm_survives_kill9("af_xdp");
}
