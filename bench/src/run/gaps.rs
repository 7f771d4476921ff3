//! Runs at several gaps (`bench run --gaps 2ms,20ms,1s`): one section per gap in the
//! report, and the cold/hot table: how much slower a fire is after a long wait than after
//! a short one, and how the backends compare at each gap.

use super::report::BackendReport;
use crate::measure::ratio;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// One gap's results.
#[derive(Debug, Clone, Serialize)]
pub struct GapReport {
    /// Nominal gap before each fire (jittered ±20%).
    pub gap_ns: u64,
    /// Counted fires per backend at this gap.
    pub fires_per_backend: usize,
    /// Results per backend, by name.
    pub backends: BTreeMap<&'static str, BackendReport>,
    /// Trigger→wire ratios between backends at this gap.
    pub ratios: GapRatios,
}

/// Trigger→wire ratios at one gap (`null` when a backend is missing).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct GapRatios {
    /// kernel ÷ af_xdp, p50 (above 1: af_xdp is faster).
    pub kernel_over_af_xdp_p50: Option<f64>,
    /// kernel ÷ af_xdp, p99.9.
    pub kernel_over_af_xdp_p999: Option<f64>,
    /// af_xdp ÷ floor, p50 (1: af_xdp is as fast as a raw frame).
    pub af_xdp_over_floor_p50: Option<f64>,
    /// af_xdp at this gap ÷ af_xdp at the shortest gap of the run, p50 (cold ÷ hot).
    pub af_xdp_over_hot_p50: Option<f64>,
}

impl GapReport {
    /// A gap's section; `ratios.af_xdp_over_hot_p50` is filled in by [`ColdHot::of`].
    pub fn new(
        gap: Duration,
        fires_per_backend: usize,
        backends: BTreeMap<&'static str, BackendReport>,
    ) -> GapReport {
        let p = |name: &str, f: fn(&crate::measure::Percentiles) -> u64| {
            backends
                .get(name)
                .and_then(|b| b.trigger_to_wire_ns.as_ref())
                .map(f)
        };
        let r = |a: Option<u64>, b: Option<u64>| ratio(a?, b?);
        let ratios = GapRatios {
            kernel_over_af_xdp_p50: r(p("kernel", |p| p.p50), p("af_xdp", |p| p.p50)),
            kernel_over_af_xdp_p999: r(p("kernel", |p| p.p999), p("af_xdp", |p| p.p999)),
            af_xdp_over_floor_p50: r(p("af_xdp", |p| p.p50), p("floor", |p| p.p50)),
            af_xdp_over_hot_p50: None,
        };
        GapReport {
            gap_ns: gap.as_nanos() as u64,
            fires_per_backend,
            backends,
            ratios,
        }
    }

    fn wire_p50(&self, name: &str) -> Option<u64> {
        self.backends.get(name)?.trigger_to_wire_ns.map(|p| p.p50)
    }

    fn wire_p999(&self, name: &str) -> Option<u64> {
        self.backends.get(name)?.trigger_to_wire_ns.map(|p| p.p999)
    }
}

/// The cold/hot summary of a run over several gaps.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ColdHot {
    /// The shortest gap (hot), ns.
    pub hot_gap_ns: u64,
    /// The longest gap (cold), ns.
    pub cold_gap_ns: u64,
    /// af_xdp trigger→wire p50 at the longest gap ÷ at the shortest.
    pub af_xdp_cold_over_hot_p50: Option<f64>,
    /// The same for the kernel backend.
    pub kernel_cold_over_hot_p50: Option<f64>,
    /// The same for the floor.
    pub floor_cold_over_hot_p50: Option<f64>,
}

impl ColdHot {
    /// The summary of `gaps` (fills each gap's `af_xdp_over_hot_p50`); `None` for fewer
    /// than two gaps.
    pub fn of(gaps: &mut [GapReport]) -> Option<ColdHot> {
        let hot = gaps.iter().min_by_key(|g| g.gap_ns)?;
        let cold = gaps.iter().max_by_key(|g| g.gap_ns)?;
        let over = |name: &str| ratio(cold.wire_p50(name)?, hot.wire_p50(name)?);
        let summary = ColdHot {
            hot_gap_ns: hot.gap_ns,
            cold_gap_ns: cold.gap_ns,
            af_xdp_cold_over_hot_p50: over("af_xdp"),
            kernel_cold_over_hot_p50: over("kernel"),
            floor_cold_over_hot_p50: over("floor"),
        };
        let hot_p50 = hot.wire_p50("af_xdp");
        for g in gaps.iter_mut() {
            g.ratios.af_xdp_over_hot_p50 = g
                .wire_p50("af_xdp")
                .zip(hot_p50)
                .and_then(|(a, h)| ratio(a, h));
        }
        (gaps.len() > 1).then_some(summary)
    }
}

/// The cold/hot table: per gap, trigger→wire p50 (and p99.9) of each backend in µs, and
/// the ratios.
pub fn table(gaps: &[GapReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<8} {:>9} {:>9} {:>9} {:>11} {:>11} {:>9} {:>9} {:>9} {:>9}",
        "gap",
        "floor",
        "af_xdp",
        "kernel",
        "af_xdp",
        "kernel",
        "af_xdp/",
        "kernel/",
        "kernel/",
        "af_xdp/"
    );
    let _ = writeln!(
        out,
        "{:<8} {:>9} {:>9} {:>9} {:>11} {:>11} {:>9} {:>9} {:>9} {:>9}",
        "",
        "p50 µs",
        "p50 µs",
        "p50 µs",
        "p99.9 µs",
        "p99.9 µs",
        "hot p50",
        "af_xdp",
        "af_xdp",
        "floor"
    );
    let _ = writeln!(
        out,
        "{:<8} {:>9} {:>9} {:>9} {:>11} {:>11} {:>9} {:>9} {:>9} {:>9}",
        "", "", "", "", "", "", "", "p50", "p99.9", "p50"
    );
    let us = |v: Option<u64>| v.map_or("-".to_owned(), |ns| format!("{:.1}", ns as f64 / 1000.0));
    let x = |r: Option<f64>| r.map_or("-".to_owned(), |r| format!("{r:.2}×"));
    for g in gaps {
        let gap = humantime::format_duration(Duration::from_nanos(g.gap_ns)).to_string();
        let _ = writeln!(
            out,
            "{gap:<8} {:>9} {:>9} {:>9} {:>11} {:>11} {:>9} {:>9} {:>9} {:>9}",
            us(g.wire_p50("floor")),
            us(g.wire_p50("af_xdp")),
            us(g.wire_p50("kernel")),
            us(g.wire_p999("af_xdp")),
            us(g.wire_p999("kernel")),
            x(g.ratios.af_xdp_over_hot_p50),
            x(g.ratios.kernel_over_af_xdp_p50),
            x(g.ratios.kernel_over_af_xdp_p999),
            x(g.ratios.af_xdp_over_floor_p50),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::Percentiles;

    fn backend(p50: u64) -> BackendReport {
        BackendReport {
            trigger_to_wire_ns: Some(Percentiles {
                min: p50 / 2,
                p50,
                p90: p50,
                p99: p50 * 2,
                p999: p50 * 3,
                max: p50 * 4,
            }),
            ..BackendReport::default()
        }
    }

    fn gap(ms: u64, floor: u64, af_xdp: u64, kernel: u64) -> GapReport {
        let backends = BTreeMap::from([
            ("floor", backend(floor)),
            ("af_xdp", backend(af_xdp)),
            ("kernel", backend(kernel)),
        ]);
        GapReport::new(Duration::from_millis(ms), 10, backends)
    }

    #[test]
    fn ratios_per_gap_and_cold_over_hot() {
        let mut gaps = vec![
            gap(2, 2_000, 2_500, 3_000),
            gap(1000, 25_000, 30_000, 60_000),
        ];
        let summary = ColdHot::of(&mut gaps).unwrap();
        assert_eq!(summary.af_xdp_cold_over_hot_p50, Some(12.0));
        assert_eq!(summary.floor_cold_over_hot_p50, Some(12.5));
        assert_eq!(gaps[0].ratios.af_xdp_over_hot_p50, Some(1.0));
        assert_eq!(gaps[1].ratios.af_xdp_over_hot_p50, Some(12.0));
        assert_eq!(gaps[1].ratios.kernel_over_af_xdp_p50, Some(2.0));
        assert_eq!(gaps[0].ratios.af_xdp_over_floor_p50, Some(1.25));
        let t = table(&gaps);
        assert!(t.contains("12.00×") && t.contains("1s"), "{t}");
        let json = serde_json::to_value(&gaps[1]).unwrap();
        assert_eq!(json["gap_ns"], 1_000_000_000u64);
        assert_eq!(json["ratios"]["kernel_over_af_xdp_p50"], 2.0);
    }

    #[test]
    fn one_gap_has_no_cold_hot_summary() {
        let mut gaps = vec![gap(20, 1, 2, 3)];
        assert!(ColdHot::of(&mut gaps).is_none());
        assert_eq!(gaps[0].ratios.af_xdp_over_hot_p50, Some(1.0));
    }
}
