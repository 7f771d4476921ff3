//! A smoke run of `bench run` in the lab (root): every backend's fires are answered and
//! matched to wire stamps, and the JSON has its documented shape. No timing asserts.

use quickdraw_bench::run::{self, Backend, RunOptions};
use quickdraw_lab::LabSession;
use std::path::PathBuf;
use std::time::Duration;

#[test]
fn smoke_run_matches_every_fire_and_writes_its_outputs() {
    let _lab = LabSession::start().expect("lab up");
    let dir = std::env::temp_dir().join(format!("qd-bench-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fires = 20;
    let opts = RunOptions {
        config: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/lab.toml")),
        fires,
        warm_up: 3,
        backends: vec![Backend::AfXdp, Backend::Kernel, Backend::Floor],
        burst: 1,
        gap: Duration::from_millis(2),
        more_gaps: vec![(Duration::from_millis(5), 10)],
        per_fire: Some(dir.join("fires.jsonl")),
        scheduled: false,
        json: Some(dir.join("out.json")),
        plot: Some(dir.join("out.svg")),
        hdr_dir: Some(dir.join("hdr")),
        no_pin: true,
        profile_steps: true,
        warming: quickdraw_datapath::warming::Warming::default(),
        seed: 3,
        progress: false,
    };
    let report = run::run(&opts).expect("bench run");
    report.check().expect("a trustworthy run");
    assert_eq!(report.gaps.len(), 2);
    assert_eq!(report.gaps[1].fires_per_backend, 10);
    assert!(report.cold_hot.is_some(), "two gaps: a cold/hot summary");
    assert!(report.table().contains("cold/hot"));
    let lines = std::fs::read_to_string(dir.join("fires.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        (fires + 3 + 10 + 3) * 3,
        "every fire, warm-up included"
    );
    for l in &lines {
        assert!(l["trigger_ns"].as_u64().unwrap() > 0);
        assert!(l["matched"].as_bool().unwrap(), "{l}");
        let orders = l["backend"] != "floor";
        assert_eq!(l["idempotency_key"].is_string(), orders, "{l}");
        assert!(l["wire"]["request_seq"].is_u64(), "{l}");
    }
    for name in ["af_xdp", "kernel", "floor"] {
        let b = &report.backends[name];
        assert_eq!(b.fires, fires, "{name}");
        assert_eq!(b.ok, fires, "{name}: every fire answered (floor: sent)");
        assert_eq!(
            b.matched,
            fires,
            "{name}: every fire matched to a wire stamp: {}",
            report.table()
        );
        assert!(b.trigger_to_wire_ns.is_some(), "{name}");
    }
    assert!(report.backends["af_xdp"].trigger_to_response_ns.is_some());
    for name in ["af_xdp", "kernel"] {
        assert!(
            report.backends[name].steps_ns.is_some(),
            "{name}: steps profiled"
        );
    }

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out.json")).unwrap()).unwrap();
    assert_eq!(json["fires_per_backend"], fires);
    assert_eq!(json["gaps"][1]["gap_ns"], 5_000_000);
    assert!(json["gaps"][0]["ratios"]["af_xdp_over_floor_p50"].is_f64());
    assert_eq!(json["problems"].as_array().unwrap().len(), 0);
    assert_eq!(json["loss_pct"], 0);
    for key in ["min", "p50", "p90", "p99", "p999", "max"] {
        assert!(
            json["backends"]["af_xdp"]["trigger_to_wire_ns"][key].is_u64(),
            "{key}"
        );
        assert!(
            json["backends"]["floor"]["trigger_to_wire_ns"][key].is_u64(),
            "{key}"
        );
    }
    assert!(json["host"]["bind_mode"].is_string());
    let svg = std::fs::read_to_string(dir.join("out.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("af_xdp"));
    for b in ["af_xdp", "kernel", "floor"] {
        let log = std::fs::read_to_string(dir.join("hdr").join(format!("{b}.hlog"))).unwrap();
        assert!(
            log.lines().any(|l| l.contains(&format!("Tag={b}"))),
            "{b}.hlog has an interval"
        );
        // Real timestamps: a StartTime in this century, not the epoch.
        let start: f64 = log
            .lines()
            .find_map(|l| l.strip_prefix("#[StartTime: "))
            .and_then(|l| l.split_whitespace().next())
            .expect("a StartTime")
            .parse()
            .unwrap();
        assert!(start > 1.6e9, "{b}.hlog StartTime {start}");
    }

    // Scheduled: orders armed at a deadline fire at or after it.
    let sched = RunOptions {
        scheduled: true,
        backends: vec![Backend::AfXdp, Backend::Kernel],
        json: None,
        plot: None,
        hdr_dir: None,
        ..opts
    };
    let sched = RunOptions {
        more_gaps: Vec::new(),
        per_fire: None,
        ..sched
    };
    let report = run::run(&sched).expect("scheduled run");
    report.check().expect("a trustworthy scheduled run");
    for name in ["af_xdp", "kernel"] {
        let b = &report.backends[name];
        assert_eq!(b.ok, fires, "{name}");
        assert!(b.scheduled_error_ns.is_some(), "{name}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
