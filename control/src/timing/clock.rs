//! Our two clocks read together: CLOCK_REALTIME (what `--at` instants and the server's
//! `Date` are on) and CLOCK_MONOTONIC (what the datapath fires on and stamps with).

use rustix::time::{clock_gettime, ClockId};

/// Nanoseconds since the Unix epoch, UTC. Signed: differences are taken all the time.
pub type UnixNs = i64;

/// One instant on both clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockPair {
    pub real_ns: UnixNs,
    pub mono_ns: u64,
}

impl ClockPair {
    /// Reads monotonic, realtime, monotonic, and pairs the realtime reading with the
    /// middle of the two monotonic ones: the pair is off by at most half the time the
    /// three reads took (tens of ns), instead of by one whole read.
    pub fn now() -> ClockPair {
        let m1 = monotonic_ns();
        let real_ns = realtime_ns();
        let m2 = monotonic_ns();
        ClockPair {
            real_ns,
            mono_ns: m1 + (m2 - m1) / 2,
        }
    }

    /// The realtime instant of a monotonic stamp, assuming no clock step in between.
    pub fn real_of(&self, mono_ns: u64) -> UnixNs {
        self.real_ns + (mono_ns as i64 - self.mono_ns as i64)
    }

    /// The monotonic instant of a realtime instant (saturating at 0 and at the far end:
    /// a journaled instant may be anything).
    pub fn mono_of(&self, real_ns: UnixNs) -> u64 {
        (self.mono_ns as i64)
            .saturating_add(real_ns.saturating_sub(self.real_ns))
            .max(0) as u64
    }
}

/// CLOCK_MONOTONIC in ns: the datapath's clock (see `quickdraw_datapath::clock`).
pub fn monotonic_ns() -> u64 {
    quickdraw_datapath::clock::monotonic_ns()
}

/// CLOCK_REALTIME in ns since the epoch.
pub fn realtime_ns() -> UnixNs {
    let t = clock_gettime(ClockId::Realtime);
    t.tv_sec * 1_000_000_000 + t.tv_nsec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pair_maps_both_ways() {
        let p = ClockPair::now();
        assert_eq!(p.mono_of(p.real_of(p.mono_ns + 5_000)), p.mono_ns + 5_000);
        assert_eq!(p.real_of(p.mono_ns) - p.real_ns, 0);
        // Two pairs taken apart agree on the realtime-monotonic difference to well
        // within a millisecond (no absolute time asserted).
        let q = ClockPair::now();
        let drift = (q.real_ns - q.mono_ns as i64) - (p.real_ns - p.mono_ns as i64);
        assert!(drift.abs() < 1_000_000, "{drift}");
    }

    #[test]
    fn journaled_instants_at_the_ends_of_time_saturate() {
        let p = ClockPair {
            real_ns: 1_790_000_000_000_000_000,
            mono_ns: 5_000_000_000,
        };
        assert_eq!(p.mono_of(i64::MIN), 0);
        assert_eq!(
            p.mono_of(i64::MAX),
            (i64::MAX - p.real_ns + p.mono_ns as i64) as u64
        );
        // A monotonic stamp past i64::MAX cannot overflow the sum either.
        let late = ClockPair {
            real_ns: -1_000,
            mono_ns: i64::MAX as u64,
        };
        assert_eq!(late.mono_of(i64::MAX), i64::MAX as u64);
    }
}
