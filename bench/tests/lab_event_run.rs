//! `bench run --trigger event` in the lab (root; own lab): for both sources, every event
//! fire on both backends is answered and found on the wire (event frame and order
//! frame), and no non-matching event fires anything. No timing asserts. The full
//! measurement is the ignored test (`--ignored --nocapture`; QD_EVENT_FIRES, default
//! 1000 per backend) which prints the tables.

use quickdraw_bench::run::event::{self, EventRunOptions, EventSource};
use quickdraw_lab::LabSession;
use std::path::PathBuf;
use std::time::Duration;

fn options(source: EventSource, fires: usize, gap: Duration) -> EventRunOptions {
    EventRunOptions {
        config: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/lab.toml")),
        source,
        fires,
        warm_up: (fires / 10).clamp(3, 100),
        gap,
        json: None,
        no_pin: true,
        seed: 5,
    }
}

#[test]
fn event_runs_fire_once_per_matching_event_on_both_backends() {
    let _lab = LabSession::start().expect("lab up");
    for source in [EventSource::Sse, EventSource::Udp] {
        let fires = 15;
        let report = event::run(&options(source, fires, Duration::from_millis(4))).unwrap();
        eprintln!("{source:?}\n{}", report.table());
        for name in ["af_xdp", "kernel"] {
            let b = &report.backends[name];
            assert_eq!(b.fires, fires, "{name}");
            assert_eq!(b.ok, fires, "{name}: every fire answered");
            assert_eq!(b.false_fires, 0, "{name}: a non-matching event fired");
            assert_eq!(
                b.matched,
                fires,
                "{name}: found on the wire\n{}",
                report.table()
            );
        }
    }
}

#[test]
#[ignore = "the full measurement: minutes"]
fn full_event_measurement() {
    let fires = std::env::var("QD_EVENT_FIRES")
        .ok()
        .and_then(|f| f.parse().ok())
        .unwrap_or(1000);
    let pin = std::env::var("QD_EVENT_PIN").is_ok();
    let _lab = LabSession::start().expect("lab up");
    for source in [EventSource::Sse, EventSource::Udp] {
        let mut opts = options(source, fires, Duration::from_millis(20));
        opts.no_pin = !pin;
        let name = format!("/tmp/qd-event-{source:?}.json").to_lowercase();
        opts.json = Some(PathBuf::from(&name));
        let report = event::run(&opts).unwrap();
        println!("{source:?} ({name})\n{}", report.table());
    }
}
