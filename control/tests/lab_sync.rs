//! `control sync` against the lab's nginx, twenty times in a row. nginx runs on this
//! machine's clock, so the true offset is 0: every reported interval must hold it (the
//! estimator's honesty, 19 runs of 20). Issue 13's other targets (at most ± 50 µs, at
//! most 5 s) are printed, and asserted with QD_SYNC_TARGETS=1. Privileged (root: netns,
//! veth, XDP).
//!
//! `cargo test --release -p quickdraw-control --test lab_sync -- --nocapture` prints the
//! twenty results.

use quickdraw_lab::LabSession;
use std::path::Path;

mod common;

use common::{Daemon, LAB_CONFIG, READY_WITHIN};

/// Runs, unless `QD_SYNC_RUNS` says otherwise (a quick look while tuning).
fn runs() -> usize {
    std::env::var("QD_SYNC_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20)
}

#[test]
fn twenty_syncs_hold_the_true_offset_to_within_the_round_trip() {
    let _lab = LabSession::start().expect("lab up");
    let mut daemon = Daemon::up_pinned("sync", Path::new(LAB_CONFIG), "af_xdp");
    let (ready, status) = daemon.status_until(READY_WITHIN, |s| s["ready"] == true);
    assert!(ready, "never ready: {status}");
    let mut holds_zero = 0;
    let mut narrow = 0;
    let mut quick = 0;
    let runs = runs();
    for run in 1..=runs {
        let s = daemon.json(&["sync", "--json"]);
        let field = |k: &str| s[k].as_i64().unwrap_or_else(|| panic!("{k} in {s}"));
        let (offset, pm) = (field("offset_ns"), field("uncertainty_ns"));
        let elapsed = field("elapsed_ns");
        let zero_inside = offset.abs() <= pm;
        holds_zero += usize::from(zero_inside);
        narrow += usize::from(pm <= 50_000);
        quick += usize::from(elapsed <= 5_000_000_000);
        eprintln!(
            "sync {run:2}: offset {:+8.1} µs ± {:5.1} µs  [{:+8.1}, {:+8.1}]  0 inside: {}  \
             rtt {:5.1} µs  {} probes ({} lost)  {:.2} s",
            offset as f64 / 1e3,
            pm as f64 / 1e3,
            (offset - pm) as f64 / 1e3,
            (offset + pm) as f64 / 1e3,
            if zero_inside { "yes" } else { "NO" },
            field("rtt_ns") as f64 / 1e3,
            field("probes"),
            field("failed"),
            elapsed as f64 / 1e9,
        );
    }
    eprintln!(
        "{holds_zero}/{runs} hold 0, {narrow}/{runs} within ± 50 µs, {quick}/{runs} in ≤ 5 s"
    );
    daemon.down();
    assert!(
        holds_zero >= runs - 1,
        "{holds_zero}/{runs} held the true offset"
    );
    // The width and time targets are printed above; they are asserted only on
    // request (QD_SYNC_TARGETS=1, an optimized build on a quiet machine): on a shared
    // 2-core machine, stalls of tens of ms in nginx or our threads widen the interval
    // (honestly) and stretch a run past its budget.
    if std::env::var_os("QD_SYNC_TARGETS").is_some() {
        assert!(quick >= runs - 1, "{quick}/{runs} took at most 5 s");
        assert!(narrow >= runs - 1, "{narrow}/{runs} within ± 50 µs");
    }
}
