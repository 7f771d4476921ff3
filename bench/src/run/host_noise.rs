//! How much of its time the datapath's core is not ours: measured before a run by a
//! thread pinned there that only reads the clock, and counts the gaps between reads.
//!
//! On a virtual machine the host takes the vCPU away now and then (its interrupts, other
//! tenants); a fire whose trigger falls in such a gap waits for it whatever the datapath
//! does. The project's machines lost 4 % of their time in gaps over 1 µs (~17,000 a
//! second, lab, a noisy hour), which matched the share of scheduled fires late by more
//! than 1 µs (13 of 300): a p99 scheduled error under 1 µs cannot be had there. The run
//! reports this beside its figures, so that a tail is not blamed on the wrong thing.

use serde::Serialize;
use std::time::Duration;

/// Gaps between consecutive clock reads of a spinning thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct HostNoise {
    /// How long the thread spun, ns.
    pub window_ns: u64,
    /// Whether it ran on the datapath's core (false: unpinned, or pinning refused).
    pub pinned: bool,
    /// Gaps longer than 1 µs, per second.
    pub over_1us_per_s: f64,
    /// Gaps longer than 10 µs, per second.
    pub over_10us_per_s: f64,
    /// Gaps longer than 100 µs, per second (a fire's tail of that size is the host's).
    pub over_100us_per_s: f64,
    /// Share of the time spent in gaps longer than 1 µs: the chance that an instant (a
    /// deadline) falls in one, so that a fire due then is late by more than 1 µs.
    pub share_over_1us: f64,
    /// The longest gap, ns.
    pub max_gap_ns: u64,
}

/// Spins for `window` on `core` (or wherever the thread runs), off the datapath's time:
/// call it before the datapath starts on that core.
pub fn measure(core: Option<usize>, window: Duration) -> HostNoise {
    let window_ns = window.as_nanos() as u64;
    std::thread::spawn(move || {
        let pinned = core.is_some_and(quickdraw_datapath::poll::pin_to_core);
        let clock = quickdraw_datapath::clock::monotonic_ns;
        let start = clock();
        let (mut prev, mut over) = (start, [0u64; 3]);
        let (mut lost_ns, mut max_gap_ns) = (0, 0);
        while prev - start < window_ns {
            let now = clock();
            let gap = now - prev;
            if gap > 1_000 {
                over[0] += 1;
                lost_ns += gap;
                over[1] += u64::from(gap > 10_000);
                over[2] += u64::from(gap > 100_000);
                max_gap_ns = max_gap_ns.max(gap);
            }
            prev = now;
        }
        let spun = (prev - start).max(1) as f64;
        let per_s = |n: u64| n as f64 * 1e9 / spun;
        HostNoise {
            window_ns: prev - start,
            pinned,
            over_1us_per_s: per_s(over[0]),
            over_10us_per_s: per_s(over[1]),
            over_100us_per_s: per_s(over[2]),
            share_over_1us: lost_ns as f64 / spun,
            max_gap_ns,
        }
    })
    .join()
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_spin_accounts_for_its_window() {
        let n = measure(None, Duration::from_millis(20));
        assert!(n.window_ns >= 20_000_000, "{n:?}");
        assert!((0.0..=1.0).contains(&n.share_over_1us), "{n:?}");
        assert!(n.over_1us_per_s >= n.over_10us_per_s);
        assert!(n.over_10us_per_s >= n.over_100us_per_s);
        assert!(!n.pinned);
    }
}
