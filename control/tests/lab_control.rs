//! `control up` / `status` / `arm` / `fire` / `down` as an operator runs them, against the
//! lab's nginx, on both backends; and a wrong CA that must never become ready.
//! Privileged (root: netns, veth, XDP); each test holds its own lab, so they run one at a
//! time. The daemon runs unpinned (`--no-pin`), on a socket, journal and metrics port of
//! its own. Scheduled arms, clock sync, the journal across `kill -9`, and the socket's
//! safety are in `lab_schedule.rs`.

use quickdraw_lab::LabSession;
use serde_json::Value;
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod common;

use common::{orders_logged, Daemon, LAB_CONFIG, READY_WITHIN};

fn statuses(fire: &Value) -> Vec<Value> {
    fire["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].clone())
        .collect()
}

fn arm_fire_down(backend: &str) {
    let lab = LabSession::start().expect("lab up");
    let access_log = lab.status().unwrap().access_log.clone();
    let mut daemon = Daemon::up(backend, Path::new(LAB_CONFIG), backend);

    let (ready, status) = daemon.status_until(READY_WITHIN, |s| s["ready"] == true);
    assert!(ready, "never ready: {status}");
    assert_eq!(status["backend"], backend);
    assert_eq!(status["targets"][0]["name"], "lab");
    assert_eq!(status["targets"][0]["warm"], 8);

    // One order over one connection.
    let armed = daemon.json(&["arm", "--sku", "1001", "--manual", "--json"]);
    let key = armed["key"].as_str().unwrap().to_owned();
    assert_eq!(key.len(), 32, "{armed}");
    let (_, status) = daemon.status_until(Duration::ZERO, |_| true);
    assert_eq!(status["arms"][0]["arm"], armed["arm"], "{status}");
    assert_eq!(status["arms"][0]["state"], "armed", "{status}");

    let fired = daemon.json(&["fire", "--json"]);
    assert_eq!(fired["arm"], armed["arm"]);
    assert_eq!(fired["complete"], true, "{fired}");
    assert_eq!(statuses(&fired), vec![Value::from(200)], "{fired}");
    let s = &fired["outcomes"][0]["stamps"];
    let stamp = |k: &str| s[k].as_u64().unwrap();
    assert!(
        stamp("trigger_ns") > 0 && stamp("tx_ns") >= stamp("trigger_ns"),
        "{s}"
    );
    assert!(
        stamp("complete_ns") >= stamp("first_byte_ns") && stamp("first_byte_ns") >= stamp("tx_ns"),
        "{s}"
    );
    let logged = orders_logged(&access_log, &key, 1);
    assert_eq!(
        logged.len(),
        1,
        "exactly one order reached nginx: {logged:#?}"
    );

    // The human rendering of the same kind of fire.
    daemon.status_until(READY_WITHIN, |s| s["ready"] == true);
    let (code, out, err) = daemon.control(&["arm", "--sku", "1003", "--manual"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = daemon.control(&["fire"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("1 of 1 outcome(s)") && out.contains(" 200 ") && out.contains("trigger→tx "),
        "{out}"
    );

    // A burst over every connection: eight orders, one key.
    let (ready, status) = daemon.status_until(READY_WITHIN, |s| s["ready"] == true);
    assert!(ready, "not warm again after the fires: {status}");
    let armed = daemon.json(&["arm", "--sku", "1002", "--conns", "8", "--manual", "--json"]);
    let key = armed["key"].as_str().unwrap().to_owned();
    let fired = daemon.json(&["fire", &armed["arm"].to_string(), "--json"]);
    assert_eq!(statuses(&fired), vec![Value::from(200); 8], "{fired}");
    let conns: HashSet<String> = fired["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["conn"].to_string())
        .collect();
    assert_eq!(conns.len(), 8, "one order per connection: {fired}");
    let logged = orders_logged(&access_log, &key, 8);
    assert_eq!(logged.len(), 8, "{logged:#?}");
    // `$remote_addr:$remote_port` is the second field: eight different connections.
    let peers: HashSet<&str> = logged.iter().filter_map(|l| l.split(' ').nth(1)).collect();
    assert_eq!(peers.len(), 8, "{logged:#?}");

    // Nothing open now; a second fire of a done arm is refused.
    let (_, status) = daemon.status_until(Duration::ZERO, |_| true);
    assert_eq!(status["arms"], Value::Array(vec![]), "{status}");
    let (code, _, err) = daemon.control(&["fire", &armed["arm"].to_string()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("is done, not armed"), "{err}");

    daemon.down();
    drop(lab);
}

#[test]
fn kernel_backend_arm_fire_down() {
    arm_fire_down("kernel");
}

#[test]
fn af_xdp_backend_arm_fire_down() {
    arm_fire_down("af_xdp");
}

#[test]
fn wrong_ca_never_ready_and_status_names_the_certificate_error() {
    let lab = LabSession::start().expect("lab up");
    let dir = std::env::temp_dir().join(format!("qd-lab-control-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A CA that did not issue nginx's certificate.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = dir.join("other-ca.pem");
    std::fs::write(&ca, params.self_signed(&key).unwrap().pem()).unwrap();
    let lab_ca = lab.status().unwrap().ca_cert.to_str().unwrap().to_owned();
    let text = std::fs::read_to_string(LAB_CONFIG)
        .unwrap()
        .replace(&lab_ca, ca.to_str().unwrap());
    assert!(
        text.contains(ca.to_str().unwrap()),
        "lab.toml trusts the lab CA at {lab_ca}"
    );
    let config = dir.join("wrong-ca.toml");
    std::fs::write(&config, text).unwrap();

    let mut daemon = Daemon::up("wrong-ca", &config, "kernel");
    let has_error = |s: &Value| s["targets"][0]["last_error"].is_string();
    let (seen, status) = daemon.status_until(READY_WITHIN, has_error);
    assert!(seen, "no connection error reported: {status}");
    let (ready, status) = daemon.status_until(Duration::from_secs(2), |s| s["ready"] == true);
    assert!(!ready, "became ready with the wrong CA: {status}");
    assert_eq!(status["targets"][0]["name"], "lab");
    assert_eq!(status["targets"][0]["warm"], 0, "{status}");
    let error = status["targets"][0]["last_error"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(error.contains("certificate"), "{status}");

    let (code, out, _) = daemon.control(&["status"]);
    assert_eq!(code, Some(3), "up but not ready");
    assert!(
        out.contains("target lab: 0/8 warm") && out.contains("last error"),
        "{out}"
    );

    // Arming still works (the order waits for a warm connection); firing it now finds
    // none and says so per connection.
    let armed = daemon.json(&["arm", "--sku", "1001", "--manual", "--json"]);
    let fired = daemon.json(&["fire", "--json"]);
    assert_eq!(fired["arm"], armed["arm"]);
    assert_eq!(fired["outcomes"][0]["result"], "not_sent", "{fired}");

    daemon.down();
    std::fs::remove_dir_all(&dir).unwrap();
    drop(lab);
}

#[test]
fn a_second_daemon_on_the_same_socket_is_refused() {
    let _lab = LabSession::start().expect("lab up");
    let mut first = Daemon::up("first", Path::new(LAB_CONFIG), "kernel");
    let (up, status) = first.status_until(READY_WITHIN, |s| s["running"] == true);
    assert!(up, "{status}");
    let out = Command::new(env!("CARGO_BIN_EXE_control"))
        .args([
            "up",
            "--config",
            LAB_CONFIG,
            "--backend",
            "kernel",
            "--no-pin",
            "--socket",
        ])
        .arg(&first.socket)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("another daemon (kernel backend) is serving on"),
        "{stderr}"
    );
    first.down();
}
