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
    let report = run::run(&sched).expect("scheduled run");
    for name in ["af_xdp", "kernel"] {
        let b = &report.backends[name];
        assert_eq!(b.ok, fires, "{name}");
        assert!(b.scheduled_error_ns.is_some(), "{name}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
