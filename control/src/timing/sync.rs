//! Estimating a server's clock offset from its HTTP `Date` header (one-second resolution)
//! to within a round trip, by searching for the instant the server's second ticks over.
//! Pure: probes go through [`Prober`], so the tests run it on a simulated server clock and
//! the daemon on the datapath's warm connections.
//!
//! Each answer (sent at `s`, first byte at `f`, `Date` = D) says the server stamped it at
//! some instant of ours in [s, f] while its clock read [D, D+1) s, so
//!   offset = server − ours ∈ [D − f, D + 1 − s)            (strict: always true)
//! and, if the two directions take equally long (stamp at m = (s + f) / 2),
//!   offset ∈ [D − m, D + 1 − m)                             (working: places probes)
//! The reported interval is the strict one: its edges are set by the two probes that
//! bracket the tick (one stamped before it, one after), so its width is the later one's
//! arrival minus the earlier one's send — about one round trip once the search has
//! closed in. That is the honest uncertainty, whatever the path's asymmetry.
//!
//! The search: the tick of second K falls, on our clock, at E = K − offset. A round takes
//! the next tick and sends probes timed so that each *lands* (is stamped, by the working
//! model) on a point of the window where E can still be, the points evenly spread and in
//! time order; it stops sending at the first answer that shows the tick passed. A round of
//! n points divides the window by n + 1: with 16 points, 1 s → 59 ms → 3.5 ms → 206 µs,
//! then rounds of as many points as there are connections to carry them at once (a window
//! that narrow leaves no time to wait for one answer before the next send). One tick per
//! second means one round per second: about 4–5 s in all.

use super::clock::UnixNs;

const SEC: i64 = 1_000_000_000;
/// Points of a round whose points are far enough apart to go out one after another.
const POINTS: i64 = 20;
/// Below this spacing a round's probes are all in flight at once: as many points as
/// probes may be in flight.
const PIPELINED_STEP_NS: i64 = 50_000;
/// Slack between planning a probe and its send time.
const LEAD_NS: i64 = 2_000_000;
/// Below this working window another round buys nothing measurable; nor below half the
/// best round trip (the strict interval is a round trip wide anyway).
const FINEST_NS: i64 = 2_000;
/// How long after its send a probe's answer is waited for.
const ANSWER_WAIT_NS: i64 = 1_000_000_000;
/// Room left after a round's last answer is due, for it to reach the estimator.
const ROUND_SLACK_NS: i64 = 5_000_000;
/// An answer whose round trip is at most this much longer than the best one is clean.
const CLEAN_SLACK_NS: i64 = 50_000;
/// Probes sent back to back first, to learn the round trip.
const FIRST_PROBES: u32 = 3;

/// One probe's answer, on our realtime clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateSample {
    /// When the request left.
    pub sent_ns: UnixNs,
    /// When the first byte of the answer came.
    pub first_byte_ns: UnixNs,
    /// The server's `Date`, in whole seconds since the epoch.
    pub date_s: i64,
}

/// Identifies a probe sent, to match its answer.
pub type Ticket = u64;

/// Sends probes and collects their answers; several may be in flight at once.
pub trait Prober {
    /// Our realtime clock.
    fn now(&mut self) -> UnixNs;
    /// Sends a probe no earlier than `at` (as close to it as it can); `None` if it could
    /// not be sent.
    fn send(&mut self, at: UnixNs) -> Option<Ticket>;
    /// Answers that came in, waiting until `until` for at least one if none has yet. An
    /// answer is `None` when the probe was lost (no answer, no `Date`, an error).
    fn collect(&mut self, until: UnixNs) -> Vec<(Ticket, Option<DateSample>)>;
}

/// Bounds on one estimation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncLimits {
    pub max_probes: u32,
    pub max_ns: i64,
    /// Probes in flight at once (one per idle connection).
    pub max_in_flight: u32,
}

/// The result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// Server clock minus ours: the middle of the interval.
    pub offset_ns: i64,
    /// The offset is within ± this: half the strict interval, set by the bracketing
    /// probes' send and arrival times. Assumes only that the server stamps `Date` while
    /// handling the request, with the clock it keeps.
    pub uncertainty_ns: i64,
    /// Best round trip seen (send → first byte).
    pub rtt_ns: i64,
    /// One-way latency estimate: half the best round trip.
    pub one_way_ns: i64,
    /// Width of the final working window on the tick (the symmetric-delay model's).
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

/// An interval [lo, hi) of offsets.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    lo: i64,
    hi: i64,
}

impl Bounds {
    const ALL: Bounds = Bounds {
        lo: i64::MIN / 4,
        hi: i64::MAX / 4,
    };

    fn cut(&mut self, lo: i64, hi: i64) {
        self.lo = self.lo.max(lo);
        self.hi = self.hi.min(hi);
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
    working: Bounds,
    /// The symmetric-delay bounds contradicted each other (jitter): place by strict.
    working_broken: bool,
    rtt_min: i64,
    probes: u32,
    failed: u32,
    in_flight: u32,
}

impl Search {
    fn add(&mut self, s: DateSample) {
        let rtt = s.first_byte_ns - s.sent_ns;
        let d = s.date_s.saturating_mul(SEC);
        self.strict.cut(d - s.first_byte_ns, d + SEC - s.sent_ns);
        self.rtt_min = self.rtt_min.min(rtt);
        // Only a clean answer places probes: one that took much longer than the best
        // round trip waited somewhere (a busy server, a descheduled thread), and where in
        // that wait its stamp fell is anyone's guess. It still bounds the strict interval.
        if rtt <= self.rtt_min + CLEAN_SLACK_NS {
            let m = s.sent_ns + rtt / 2;
            self.working.cut(d - m, d + SEC - m);
            if self.working.is_empty() {
                self.working_broken = true;
            }
        }
    }

    /// Where the tick is still looked for: the working bounds, within the strict ones.
    fn window(&self) -> Bounds {
        if self.working_broken {
            return self.strict;
        }
        let mut w = self.working;
        w.cut(self.strict.lo, self.strict.hi);
        if w.is_empty() {
            self.strict
        } else {
            w
        }
    }

    /// Sends one probe (counted), unless the probe budget is spent.
    fn send(
        &mut self,
        prober: &mut impl Prober,
        at: UnixNs,
        limits: &SyncLimits,
    ) -> Option<Ticket> {
        if self.probes >= limits.max_probes {
            return None;
        }
        self.probes += 1;
        match prober.send(at) {
            Some(t) => {
                self.in_flight += 1;
                Some(t)
            }
            None => {
                self.failed += 1;
                None
            }
        }
    }

    /// Takes in the answers that came (waiting until `until` for one if none has);
    /// returns the usable ones.
    fn collect(&mut self, prober: &mut impl Prober, until: UnixNs) -> Vec<DateSample> {
        let mut got = Vec::new();
        for (_, answer) in prober.collect(until) {
            self.in_flight = self.in_flight.saturating_sub(1);
            tracing::trace!(?answer, "sync answer");
            match answer {
                Some(s) if s.first_byte_ns >= s.sent_ns => {
                    self.add(s);
                    got.push(s);
                }
                _ => self.failed += 1,
            }
        }
        got
    }

    /// Waits out every probe still in flight (or gives them up as lost).
    fn drain(&mut self, prober: &mut impl Prober) -> Vec<DateSample> {
        let until = prober.now() + ANSWER_WAIT_NS;
        let mut got = Vec::new();
        while self.in_flight > 0 && prober.now() < until {
            got.extend(self.collect(prober, until));
        }
        self.failed += self.in_flight;
        self.in_flight = 0;
        got
    }

    fn result(&self, elapsed_ns: i64) -> Estimate {
        let s = self.strict;
        Estimate {
            offset_ns: s.lo + s.width() / 2,
            uncertainty_ns: (s.width() + 1) / 2,
            rtt_ns: self.rtt_min,
            one_way_ns: self.rtt_min / 2,
            resolution_ns: self.window().width(),
            probes: self.probes,
            failed: self.failed,
            elapsed_ns,
        }
    }
}

/// One round's plan: the points (our clock) where probes should land, and how a later
/// answer shows the tick passed.
#[derive(Debug)]
struct Round {
    points: Vec<UnixNs>,
    /// An answer with a `Date` of this second or later shows the tick passed.
    tick: i64,
}

/// Plans the next round from `now`, or `None` when there is nothing left to gain.
fn plan(search: &Search, now: UnixNs, limits: &SyncLimits) -> Option<Round> {
    let b = search.window();
    let one_way = search.rtt_min / 2;
    if b.width() <= FINEST_NS.max(search.rtt_min / 2) {
        return None;
    }
    let earliest = now + LEAD_NS + one_way;
    // The next tick K whose window (K − hi, K − lo] is still at least half ahead; the
    // part already behind is not probed (if the tick was there, the first answer says so).
    let mut k = (earliest + b.lo).div_euclid(SEC) + 1;
    if k * SEC - b.lo - earliest.max(k * SEC - b.hi) < b.width().min(SEC) / 2 {
        k += 1;
    }
    let first = earliest.max(k * SEC - b.hi);
    let span = k * SEC - b.lo - first;
    let tick = k;
    let step_sequential = span / (POINTS + 1);
    let n = if step_sequential >= PIPELINED_STEP_NS {
        POINTS
    } else {
        POINTS.min(i64::from(limits.max_in_flight.max(1)))
    };
    let step = (span / (n + 1)).max(1);
    let points = (1..=n).map(|j| first + j * step).collect();
    Some(Round { points, tick })
}

/// Runs the search within `limits`.
pub fn estimate(prober: &mut impl Prober, limits: SyncLimits) -> Result<Estimate, SyncError> {
    let start = prober.now();
    let end = start + limits.max_ns;
    let mut search = Search {
        strict: Bounds::ALL,
        working: Bounds::ALL,
        working_broken: false,
        rtt_min: i64::MAX,
        probes: 0,
        failed: 0,
        in_flight: 0,
    };

    // First answers: the offset to within a second, and the round trip.
    let mut answered = 0;
    while answered < FIRST_PROBES {
        if search.probes >= limits.max_probes || prober.now() >= end {
            break;
        }
        let now = prober.now();
        if search.send(prober, now, &limits).is_some() {
            answered += search.drain(prober).len() as u32;
        }
    }
    if search.rtt_min == i64::MAX {
        return Err(SyncError::NoAnswer {
            probes: search.probes,
        });
    }

    while let Some(round) = plan(&search, prober.now(), &limits) {
        if search.strict.is_empty() {
            return Err(SyncError::Inconsistent);
        }
        let one_way = search.rtt_min / 2;
        // A round starts only if its answers can be in within the budget.
        let last = *round.points.last().expect("a round has points");
        if last + search.rtt_min + ROUND_SLACK_NS > end || search.probes >= limits.max_probes {
            break;
        }
        tracing::debug!(
            window_ns = search.window().width(),
            strict_ns = search.strict.width(),
            points = round.points.len(),
            step_ns = round.points.get(1).map_or(0, |p| p - round.points[0]),
            starts_in_ns = round.points[0] - one_way - prober.now(),
            probes = search.probes,
            "sync round"
        );
        let passed = |got: Vec<DateSample>| got.iter().any(|s| s.date_s >= round.tick);
        let step = round.points.get(1).map_or(0, |p| p - round.points[0]);
        for &point in &round.points {
            // Answers that came meanwhile may show the tick passed: then the rest of the
            // round's points are behind it and teach nothing.
            let mut done = passed(search.collect(prober, i64::MIN));
            while !done && search.in_flight >= limits.max_in_flight.max(1) {
                let until = prober.now() + ANSWER_WAIT_NS;
                let before = search.in_flight;
                done = passed(search.collect(prober, until));
                if search.in_flight == before && prober.now() >= until {
                    // Nothing came back in time: those probes are lost.
                    search.failed += search.in_flight;
                    search.in_flight = 0;
                }
            }
            if done || search.probes >= limits.max_probes {
                break;
            }
            // A point we are already late for by half a step would land on the next one:
            // skipped, not sent in a burst with it (a loaded machine wakes us late).
            if prober.now() > point - one_way + step / 2 {
                continue;
            }
            // A probe that could not be sent is a point lost, not the round.
            search.send(prober, point - one_way, &limits);
        }
        tracing::debug!(
            probes = search.probes,
            in_flight = search.in_flight,
            "sync round sent"
        );
        search.drain(prober);
    }
    if search.strict.is_empty() {
        return Err(SyncError::Inconsistent);
    }
    Ok(search.result(prober.now() - start))
}
