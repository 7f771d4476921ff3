//! The lab's frame loss (`bench lab loss`) and a bench run that cannot mislead, for real
//! (root, as CI). Every test holds a `LabSession`, so they run one at a time. No timing
//! asserts: only counts, outcomes and exit codes.

use quickdraw_bench::run::{self, Backend, RunOptions};
use quickdraw_lab::{LabSession, Probe};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

/// Runs the `bench` binary (it never takes the lab lock for these subcommands).
fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("run bench")
}

fn ok(args: &[&str]) -> String {
    let out = bench(args);
    assert!(out.status.success(), "bench {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn loss_pct() -> u64 {
    let status: Value = serde_json::from_str(&ok(&["lab", "status", "--json"])).unwrap();
    status["loss_pct"].as_u64().expect("loss_pct in lab status")
}

fn sh(line: &str) -> bool {
    Command::new("sh")
        .args(["-c", line])
        .status()
        .unwrap()
        .success()
}

/// Whether the kernel path resolves the target's MAC (ARP request out, reply back) within
/// two seconds of a UDP datagram to it.
fn arp_resolves() -> bool {
    let udp = std::net::UdpSocket::bind("198.18.0.1:0").unwrap();
    udp.send_to(b"arp?", "198.18.0.2:9").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        let out = Command::new("ip")
            .args(["neigh", "show", "198.18.0.2", "dev", "qd0"])
            .output()
            .unwrap();
        let state = String::from_utf8_lossy(&out.stdout);
        if ["REACHABLE", "STALE", "DELAY", "PROBE"]
            .iter()
            .any(|s| state.contains(s))
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn lab_config() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/lab.toml"))
}

#[test]
fn loss_outlives_the_command_spares_arp_and_goes_with_loss_0() {
    let _lab = LabSession::start().expect("lab up");
    assert_eq!(loss_pct(), 0);
    let probe = Probe {
        timeout: Duration::from_millis(500),
        ..Probe::lab()
    };
    probe.healthz().expect("the target answers before");

    // A blackhole for TCP, set by a command that has exited since.
    ok(&["lab", "loss", "100"]);
    assert_eq!(loss_pct(), 100);
    assert!(probe.healthz().is_err(), "TCP passed a 100% loss");
    // ARP still passes: forget the neighbour, send a UDP datagram (which needs ARP), and
    // see the neighbour resolved.
    assert!(sh("ip neigh flush dev qd0"));
    assert!(arp_resolves(), "ARP was dropped");

    ok(&["lab", "loss", "0"]);
    assert_eq!(loss_pct(), 0);
    assert!(
        sh("ip netns exec qdlab ip -j link show qd1 | grep -qv '\"xdp\"'"),
        "the XDP program is gone from qd1"
    );
    probe.healthz().expect("the target answers after loss 0");

    // Changing it replaces it; the lab going down takes it with the namespace.
    ok(&["lab", "loss", "5"]);
    ok(&["lab", "loss", "7"]);
    assert_eq!(loss_pct(), 7);
    let out = bench(&["lab", "loss", "101"]);
    assert!(!out.status.success(), "101% refused");
    assert_eq!(loss_pct(), 7);
}

#[test]
fn a_run_fails_when_the_stamper_is_blind_and_passes_when_it_sees() {
    let _lab = LabSession::start().expect("lab up");
    let run = |label: &str| {
        let out = bench(&[
            "run",
            "--fires",
            "20",
            "--warm-up",
            "3",
            "--gap",
            "2ms",
            "--no-pin",
            "--backends",
            "af_xdp,floor",
        ]);
        println!(
            "{label}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    // A foreign `ingress` qdisc on qd1 blinds the tc stamper.
    assert!(sh("ip netns exec qdlab tc qdisc add dev qd1 ingress"));
    let blind = run("blind");
    assert!(!blind.status.success(), "a blind run must fail");
    let stderr = String::from_utf8_lossy(&blind.stderr);
    assert!(
        stderr.contains("stamp") || stderr.contains("not matched"),
        "the failure says why: {stderr}"
    );
    assert!(sh("ip netns exec qdlab tc qdisc del dev qd1 ingress"));
    // A clsact qdisc already there (as `bench lab loss` leaves it) is used as found, and
    // the kernel's answer to creating it again is not printed as a warning.
    assert!(sh("ip netns exec qdlab tc qdisc add dev qd1 clsact"));
    let seeing = run("seeing");
    assert!(
        seeing.status.success(),
        "the same run passes once the stamper sees"
    );
    let stderr = String::from_utf8_lossy(&seeing.stderr);
    assert!(
        !stderr.contains("Exclusivity flag on"),
        "an existing clsact is expected, not warned about: {stderr}"
    );
}

/// Orders fired over a lossy lab: each reaches nginx exactly once (by Idempotency-Key in
/// its access log) and each has a known outcome. The per-fire file carries the sequence
/// numbers seen at the peer, for the retransmission assertions.
#[test]
fn orders_under_loss_are_logged_exactly_once_with_known_outcomes() {
    let lab = LabSession::start().expect("lab up");
    let access_log = lab.status().unwrap().access_log.clone();
    ok(&["lab", "loss", "5"]);
    let dir = std::env::temp_dir().join(format!("qd-bench-loss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let per_fire = dir.join("fires.jsonl");
    let fires = 40;
    let opts = RunOptions {
        config: lab_config(),
        fires,
        warm_up: 2,
        backends: vec![Backend::AfXdp],
        burst: 1,
        gap: Duration::from_millis(2),
        more_gaps: Vec::new(),
        per_fire: Some(per_fire.clone()),
        scheduled: false,
        json: None,
        plot: None,
        hdr_dir: None,
        no_pin: true,
        profile_steps: false,
        warming: quickdraw_datapath::warming::Warming::default(),
        seed: 9,
        progress: false,
    };
    let report = run::run(&opts).expect("bench run under loss");
    println!("{}", report.table());
    assert_eq!(report.loss_pct, 5);
    let b = &report.backends["af_xdp"];
    assert_eq!(b.fires, fires);
    assert_eq!(
        b.outcomes.values().sum::<usize>(),
        fires,
        "every fire has an outcome"
    );

    let lines: Vec<Value> = std::fs::read_to_string(&per_fire)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        fires + 2,
        "one line per fire, warm-up included"
    );
    let log = std::fs::read_to_string(&access_log).unwrap();
    let mut logged: HashMap<&str, usize> = HashMap::new();
    for line in log.lines() {
        // `... "<idempotency key>" <request id>`: the key is the last quoted field.
        if let Some(key) = line.rsplit('"').nth(1) {
            *logged.entry(key).or_default() += 1;
        }
    }
    let (mut resent_orders, mut retransmits_reported) = (0, 0);
    for line in &lines {
        let key = line["idempotency_key"]
            .as_str()
            .expect("an order has a key");
        let outcome = line["outcome"].as_str().unwrap();
        assert!(
            outcome.starts_with("status_") || outcome == "timeout" || outcome == "connection_lost",
            "{key}: outcome {outcome} is known"
        );
        let n = logged.get(key).copied().unwrap_or(0);
        if outcome.starts_with("status_") {
            assert_eq!(n, 1, "{key} answered, so logged exactly once");
        } else {
            assert!(n <= 1, "{key} logged {n} times");
        }
        // What the peer saw of the order's connection: every frame has its seq, and a
        // resent order is the same segment (same sequence number as its first copy).
        // How soon it was resent is a measurement (the machine is shared), not asserted.
        let frames = line["request_frames"].as_array().unwrap();
        for frame in frames {
            assert!(frame["seq"].is_u64() && frame["retransmission"].is_boolean());
        }
        // A fire the appliance says it resent: every copy of the order the peer saw (the
        // first one it saw may itself be the resend) is the same segment, same seq.
        let resent = line["retransmits"].as_u64().unwrap_or(0);
        if let (true, Some(first)) = (resent > 0, frames.first()) {
            let copies: Vec<_> = frames.iter().filter(|f| f["len"] == first["len"]).collect();
            for copy in &copies {
                assert_eq!(
                    copy["seq"], first["seq"],
                    "{key}: a resend is the same segment"
                );
            }
            resent_orders += copies.len().saturating_sub(1);
        }
        retransmits_reported += resent;
    }
    eprintln!(
        "the appliance resent {retransmits_reported} orders; the peer saw {resent_orders} second copies"
    );
    ok(&["lab", "loss", "0"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
