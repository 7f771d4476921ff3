//! [`Series`]: one latency series (say, trigger→wire of the kernel backend)
//! in an HdrHistogram, and its [`Percentiles`] as reported:
//! `{"min":..,"p50":..,"p90":..,"p99":..,"p999":..,"max":..}` in ns.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Significant decimal digits kept by the histograms: values within 0.1%.
const SIGNIFICANT_DIGITS: u8 = 3;

/// One series of latencies in nanoseconds.
///
/// Percentiles come from the histogram (within 0.1% of the recorded
/// values; exact below 2,048 ns); `min` and `max` are kept exactly.
#[derive(Debug, Clone)]
pub struct Series {
    histogram: Histogram<u64>,
    min: u64,
    max: u64,
}

impl Default for Series {
    fn default() -> Self {
        Series::new()
    }
}

impl Series {
    /// An empty series; its histogram grows as needed.
    pub fn new() -> Series {
        Series {
            histogram: Histogram::new(SIGNIFICANT_DIGITS)
                .expect("3 significant digits is a valid precision"),
            min: u64::MAX,
            max: 0,
        }
    }

    /// Adds one latency.
    pub fn record(&mut self, ns: u64) {
        // Auto-resizing: the only failure left is a value beyond what the
        // histogram can ever hold (around 2^63); clamp rather than lose it.
        if self.histogram.record(ns).is_err() {
            let _ = self.histogram.record(self.histogram.high());
        }
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
    }

    /// How many latencies were recorded.
    pub fn len(&self) -> u64 {
        self.histogram.len()
    }

    /// How many were above `ns` (exact for `ns` under 2,048).
    pub fn count_above(&self, ns: u64) -> usize {
        (self.len() - self.histogram.count_between(0, ns)) as usize
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.histogram.is_empty()
    }

    /// The summary; `None` for an empty series.
    pub fn percentiles(&self) -> Option<Percentiles> {
        if self.is_empty() {
            return None;
        }
        let at = |q| {
            self.histogram
                .value_at_quantile(q)
                .clamp(self.min, self.max)
        };
        Some(Percentiles {
            min: self.min,
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: self.max,
        })
    }

    /// The histogram, for interval logs and plots.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.histogram
    }
}

impl Extend<u64> for Series {
    fn extend<I: IntoIterator<Item = u64>>(&mut self, values: I) {
        values.into_iter().for_each(|ns| self.record(ns));
    }
}

impl FromIterator<u64> for Series {
    fn from_iter<I: IntoIterator<Item = u64>>(values: I) -> Self {
        let mut series = Series::new();
        series.extend(values);
        series
    }
}

/// A series summed up, in ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Smallest value.
    pub min: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest value.
    pub max: u64,
}

impl Percentiles {
    /// Each of these over the same one of `base`: "the kernel backend is
    /// 1.50× AF_XDP at p50" is `kernel.ratio_to(&af_xdp).p50`.
    pub fn ratio_to(&self, base: &Percentiles) -> Ratios {
        Ratios {
            min: ratio(self.min, base.min),
            p50: ratio(self.p50, base.p50),
            p90: ratio(self.p90, base.p90),
            p99: ratio(self.p99, base.p99),
            p999: ratio(self.p999, base.p999),
            max: ratio(self.max, base.max),
        }
    }
}

/// [`Percentiles`] over other [`Percentiles`], field by field; `None` (JSON
/// `null`) where the base is 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ratios {
    /// Of the minimums.
    pub min: Option<f64>,
    /// Of the medians.
    pub p50: Option<f64>,
    /// Of the 90th percentiles.
    pub p90: Option<f64>,
    /// Of the 99th percentiles.
    pub p99: Option<f64>,
    /// Of the 99.9th percentiles.
    pub p999: Option<f64>,
    /// Of the maximums.
    pub max: Option<f64>,
}

/// `value / base`; `None` when `base` is 0.
pub fn ratio(value: u64, base: u64) -> Option<f64> {
    (base != 0).then(|| value as f64 / base as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_one_to_a_thousand_are_exact() {
        let series: Series = (1..=1000).collect();
        assert_eq!(series.len(), 1000);
        assert_eq!(
            series.percentiles().unwrap(),
            Percentiles {
                min: 1,
                p50: 500,
                p90: 900,
                p99: 990,
                p999: 999,
                max: 1000,
            }
        );
    }

    #[test]
    fn large_values_are_within_a_tenth_of_a_percent_and_extremes_exact() {
        // 4.3 µs .. 31.8 ms, shuffled: order does not matter.
        let values: Vec<u64> = (0..10_000u64)
            .map(|i| (i * 7919) % 10_000)
            .map(|i| 4_300 + i * 3_179)
            .collect();
        let series: Series = values.iter().copied().collect();
        let mut sorted = values.clone();
        sorted.sort_unstable();
        let exact = |q: f64| sorted[((q * sorted.len() as f64).ceil() as usize).max(1) - 1];
        let p = series.percentiles().unwrap();
        assert_eq!((p.min, p.max), (sorted[0], sorted[9_999]));
        for (got, q) in [(p.p50, 0.5), (p.p90, 0.9), (p.p99, 0.99), (p.p999, 0.999)] {
            let want = exact(q);
            let error = got.abs_diff(want) as f64 / want as f64;
            assert!(error <= 0.001, "q {q}: {got} vs {want}");
        }
    }

    #[test]
    fn one_value_is_every_percentile() {
        let mut series = Series::new();
        series.record(31_807);
        let p = series.percentiles().unwrap();
        assert_eq!(
            [p.min, p.p50, p.p90, p.p99, p.p999, p.max],
            [31_807; 6],
            "clamped to the exact extremes"
        );
    }

    #[test]
    fn counts_above_a_bound_exactly_below_2048_ns() {
        let s: Series = [0, 999, 1_000, 1_001, 1_500, 2_047, 90_000]
            .into_iter()
            .collect();
        assert_eq!(s.count_above(1_000), 4);
        assert_eq!(s.count_above(0), 6);
        assert_eq!(Series::new().count_above(1_000), 0);
    }

    #[test]
    fn an_empty_series_has_no_percentiles() {
        let series = Series::default();
        assert!(series.is_empty());
        assert_eq!(series.percentiles(), None);
    }

    #[test]
    fn percentiles_serialize_with_the_report_names() {
        let p = Percentiles {
            min: 1,
            p50: 2,
            p90: 3,
            p99: 4,
            p999: 5,
            max: 6,
        };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"min":1,"p50":2,"p90":3,"p99":4,"p999":5,"max":6}"#
        );
        assert_eq!(serde_json::from_str::<Percentiles>(&json).unwrap(), p);
    }

    #[test]
    fn ratios_divide_field_by_field() {
        let floor = Percentiles {
            min: 2_000,
            p50: 4_300,
            p90: 8_000,
            p99: 31_800,
            p999: 40_000,
            max: 0,
        };
        let kernel = Percentiles {
            min: 3_000,
            p50: 6_450,
            p90: 8_000,
            p99: 47_700,
            p999: 20_000,
            max: 90_000,
        };
        let r = kernel.ratio_to(&floor);
        assert_eq!(r.min, Some(1.5));
        assert_eq!(r.p50, Some(1.5));
        assert_eq!(r.p90, Some(1.0));
        assert_eq!(r.p99, Some(1.5));
        assert_eq!(r.p999, Some(0.5));
        assert_eq!(r.max, None, "base 0");
        let json = serde_json::to_value(r).unwrap();
        assert_eq!(json["p50"], 1.5);
        assert!(json["max"].is_null());
        assert_eq!(ratio(1, 3), Some(1.0 / 3.0));
    }
}
