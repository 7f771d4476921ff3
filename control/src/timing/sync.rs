//! Estimating a server's clock offset from its HTTP `Date` header, which has one-second
//! resolution: find, by probing at chosen send times, the instant the server's second
//! ticks over. Pure: probes go through [`Prober`], so the tests run it on a simulated
//! server clock and the daemon on the datapath's warm connections.
//!
//! Each answer (sent at `s`, first byte at `f`, `Date` = D) says the server stamped it at
//! some instant of ours in [s, f] while its clock read [D, D+1) s, so
//!   offset = server − ours ∈ [D − f, D + 1 − s)            (strict, always true)
//!   offset ∈ [D − m, D + 1 − m),  m = (s + f) / 2        (if the delays are symmetric)
//! Intersecting these over the answers narrows the offset. The probes are placed in
//! rounds: a round sweeps, in time order, arrival times evenly spread over where the
//! tick can still be, and stops at the first answer whose `Date` shows it passed. One
//! tick per second means one round per second: 12 points a round take the window from
//! 1 s to ~83 ms, ~7 ms, ~0.6 ms in three seconds (bisection would need a second per
//! halving). The result is ± (half the bracketing round trips + half the bracket).
//! Rounds start only within the time budget; the last may overrun it by its bracket.

use super::clock::UnixNs;

const SEC: i64 = 1_000_000_000;
/// Points a round sweeps: its bracket ends 1/12 as wide.
const POINTS: i64 = 12;
/// Slack between planning a probe and its send time.
const LEAD_NS: i64 = 2_000_000;
/// Below this bracket width another round buys nothing measurable.
const FINEST_NS: i64 = 10_000;

/// One probe's answer, on our realtime clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When the request left.
    pub sent_ns: UnixNs,
    /// When the first byte of the answer came.
    pub first_byte_ns: UnixNs,
    /// The server's `Date`, in whole seconds since the epoch.
    pub date_s: i64,
}

/// Sends probes. `probe` sends no earlier than `at` (it may be later) and returns the
/// answer, or `None` when none came (no idle connection, no `Date`, an error).
pub trait Prober {
    /// Our realtime clock.
    fn now(&mut self) -> UnixNs;
    fn probe(&mut self, at: UnixNs) -> Option<Sample>;
}

/// Bounds on one estimation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncLimits {
    pub max_probes: u32,
    pub max_ns: i64,
}

/// The result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// Server clock minus ours.
    pub offset_ns: i64,
    /// The offset is within ± this (half the bracketing round trips plus half the
    /// bracket), assuming the server stamps `Date` at the same instant its clock reads.
    pub uncertainty_ns: i64,
    /// Best round trip seen (send → first byte).
    pub rtt_ns: i64,
    /// One-way latency estimate: half the best round trip.
    pub one_way_ns: i64,
    /// Width of the final bracket on the tick.
    pub resolution_ns: i64,
    pub probes: u32,
    /// Probes that got no usable answer.
    pub failed: u32,
    pub elapsed_ns: i64,
}

/// Why no estimate could be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("no probe was answered with a Date header ({probes} sent)")]
    NoAnswer { probes: u32 },
    #[error("the server's Date answers contradict each other (its clock stepped?)")]
    Inconsistent,
}

/// An interval [lo, hi) of offsets, with the round trips of the answers that set each
/// edge.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    lo: i64,
    hi: i64,
    lo_rtt: i64,
    hi_rtt: i64,
}

impl Bounds {
    const ALL: Bounds = Bounds {
        lo: i64::MIN / 4,
        hi: i64::MAX / 4,
        lo_rtt: 0,
        hi_rtt: 0,
    };

    fn cut(&mut self, lo: i64, hi: i64, rtt: i64) {
        if lo > self.lo {
            (self.lo, self.lo_rtt) = (lo, rtt);
        }
        if hi < self.hi {
            (self.hi, self.hi_rtt) = (hi, rtt);
        }
    }

    fn width(&self) -> i64 {
        self.hi - self.lo
    }

    fn is_empty(&self) -> bool {
        self.hi <= self.lo
    }
}

#[derive(Debug)]
struct Search {
    strict: Bounds,
    mid: Bounds,
    /// The symmetric-delay bounds contradicted each other (jitter); fall back to strict.
    mid_broken: bool,
    rtt_min: i64,
    probes: u32,
    failed: u32,
}

impl Search {
    fn add(&mut self, s: Sample) {
        let rtt = (s.first_byte_ns - s.sent_ns).max(0);
        let d = s.date_s.saturating_mul(SEC);
        self.strict
            .cut(d - s.first_byte_ns, d + SEC - s.sent_ns, rtt);
        let m = s.sent_ns + rtt / 2;
        self.mid.cut(d - m, d + SEC - m, rtt);
        if self.mid.is_empty() {
            self.mid_broken = true;
        }
        self.rtt_min = self.rtt_min.min(rtt);
    }

    /// Where the tick is still looked for.
    fn working(&self) -> Bounds {
        if self.mid_broken {
            self.strict
        } else {
            self.mid
        }
    }

    fn result(&self, elapsed_ns: i64) -> Estimate {
        let s = self.strict;
        let (offset_ns, uncertainty_ns, resolution_ns) = if self.mid_broken {
            (s.lo + s.width() / 2, s.width() / 2, s.width())
        } else {
            let m = self.mid;
            let centre = (m.lo + m.width() / 2).clamp(s.lo, s.hi - 1);
            let symmetric = m.width() / 2 + m.lo_rtt.max(m.hi_rtt) / 2;
            let strict = (centre - s.lo).max(s.hi - centre);
            (centre, symmetric.min(strict), m.width())
        };
        Estimate {
            offset_ns,
            uncertainty_ns,
            rtt_ns: self.rtt_min,
            one_way_ns: self.rtt_min / 2,
            resolution_ns,
            probes: self.probes,
            failed: self.failed,
            elapsed_ns,
        }
    }
}

/// Runs the search within `limits`.
pub fn estimate(prober: &mut impl Prober, limits: SyncLimits) -> Result<Estimate, SyncError> {
    let start = prober.now();
    let end = start + limits.max_ns;
    let mut search = Search {
        strict: Bounds::ALL,
        mid: Bounds::ALL,
        mid_broken: false,
        rtt_min: i64::MAX,
        probes: 0,
        failed: 0,
    };
    let take = |search: &mut Search, prober: &mut dyn Prober, at: UnixNs| {
        search.probes += 1;
        let answer = prober.probe(at);
        match answer {
            Some(s) if s.first_byte_ns >= s.sent_ns => search.add(s),
            _ => search.failed += 1,
        }
        answer
    };

    // A first answer: the offset to within a second.
    while search.rtt_min == i64::MAX {
        if search.probes >= limits.max_probes || prober.now() >= end {
            return Err(SyncError::NoAnswer {
                probes: search.probes,
            });
        }
        let now = prober.now();
        take(&mut search, prober, now);
    }

    'rounds: loop {
        if search.strict.is_empty() {
            return Err(SyncError::Inconsistent);
        }
        let b = search.working();
        let r = search.rtt_min;
        let left = i64::from(limits.max_probes.saturating_sub(search.probes));
        if b.width() <= r.max(FINEST_NS) || left == 0 {
            break;
        }
        let now = prober.now();
        let earliest = now + LEAD_NS + r / 2;
        let n = POINTS.min(left);
        // Arrival times to test, and the server second that a tick past them shows.
        let (first, span, tick) = if b.width() >= SEC {
            // The tick could be anywhere in a second: sweep the next second from now.
            (earliest, SEC, None)
        } else {
            // The next second K whose whole bracket (K − hi, K − lo] is still ahead.
            let k = (earliest + b.hi + SEC - 1).div_euclid(SEC);
            (k * SEC - b.hi, b.width(), Some(k))
        };
        // A round may start up to the end of the budget and finish its bracket after
        // it (a later round's bracket is at most 1/12 s wide); the first, a full
        // second, must fit.
        if first > end || (tick.is_none() && first + span > end) {
            break;
        }
        let step = (span / n).max(r).max(1);
        let mut first_date = None;
        let mut t = first + if tick.is_some() { step } else { 0 };
        while t <= first + span {
            if search.probes >= limits.max_probes || t - r / 2 > end + span {
                break 'rounds;
            }
            if let Some(s) = take(&mut search, prober, t - r / 2) {
                let first_date = *first_date.get_or_insert(s.date_s);
                let passed = match tick {
                    Some(k) => s.date_s >= k,
                    None => s.date_s > first_date,
                };
                if passed {
                    break;
                }
            }
            t += step;
        }
    }
    if search.strict.is_empty() {
        return Err(SyncError::Inconsistent);
    }
    Ok(search.result(prober.now() - start))
}
