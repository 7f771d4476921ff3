//! The clock-offset estimator against a simulated server: a clock running `offset` ahead
//! of ours, requests reaching it after a one-way delay with jitter, answers coming back
//! after another and reaching the estimator later still (the event pump). Several probes
//! may be in flight. Virtual time throughout: no sleeping, no real clock.

use super::sync::{estimate, DateSample, Estimate, Prober, SyncError, SyncLimits, Ticket};

/// A server whose `Date` is its clock at the instant the request arrives.
struct SimServer {
    /// Server clock minus ours.
    offset: i64,
    up: i64,
    down: i64,
    /// Up to this much extra delay each way, uniformly.
    jitter: i64,
    /// Time the server takes to answer.
    service: i64,
    /// Our clock (virtual).
    now: i64,
    seed: u64,
    /// Probes that go unanswered (every n-th), 0 = none.
    drop_every: u32,
    sent: u32,
    /// Answers not yet collected: (visible at, ticket, answer).
    pending: Vec<(i64, Ticket, Option<DateSample>)>,
    /// Every answer's round trip, and the probes in flight at most.
    worst_rtt: i64,
    most_in_flight: usize,
}

impl SimServer {
    fn new(offset: i64, up: i64, down: i64, jitter: i64) -> SimServer {
        SimServer {
            offset,
            up,
            down,
            jitter,
            service: 15_000,
            now: 1_795_766_400_123_456_789,
            seed: 0x9e37_79b9_7f4a_7c15 ^ offset as u64,
            drop_every: 0,
            sent: 0,
            pending: Vec::new(),
            worst_rtt: 0,
            most_in_flight: 0,
        }
    }

    /// The lab: ~15 µs each way on veth, nginx answering in ~15 µs, a few µs of jitter.
    fn lab(offset: i64) -> SimServer {
        SimServer::new(offset, 15_000, 15_000, 8_000)
    }

    fn random(&mut self, below: i64) -> i64 {
        // xorshift64: deterministic, no dependency.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        if below <= 0 {
            0
        } else {
            (self.seed % below as u64) as i64
        }
    }
}

impl Prober for SimServer {
    fn now(&mut self) -> i64 {
        self.now
    }

    fn send(&mut self, at: i64) -> Option<Ticket> {
        // The datapath sends a few µs after it is asked.
        let sent = self.now.max(at) + 3_000 + self.random(4_000);
        self.sent += 1;
        let ticket = u64::from(self.sent);
        let arrive = sent + self.up + self.random(self.jitter);
        let server_time = arrive + self.offset;
        let first_byte = arrive + self.service + self.down + self.random(self.jitter);
        // The answer reaches the estimator through the event pump: 20–150 µs later, and
        // one in eight 500 µs later (the pump was resting).
        let pump = match self.random(8) {
            0 => 500_000,
            _ => 20_000 + self.random(130_000),
        };
        let visible = first_byte + pump;
        self.now = sent + 2_000;
        let answer = if self.drop_every > 0 && self.sent.is_multiple_of(self.drop_every) {
            (sent + 1_000_000_000, ticket, None)
        } else {
            self.worst_rtt = self.worst_rtt.max(first_byte - sent);
            let sample = DateSample {
                sent_ns: sent,
                first_byte_ns: first_byte,
                date_s: server_time.div_euclid(1_000_000_000),
            };
            (visible, ticket, Some(sample))
        };
        self.pending.push(answer);
        self.most_in_flight = self.most_in_flight.max(self.pending.len());
        Some(ticket)
    }

    fn collect(&mut self, until: i64) -> Vec<(Ticket, Option<DateSample>)> {
        if !self.pending.iter().any(|p| p.0 <= self.now) && until > self.now {
            let next = self.pending.iter().map(|p| p.0).min().unwrap_or(until);
            self.now = next.min(until);
        }
        let now = self.now;
        let (ready, waiting) = self.pending.drain(..).partition(|p| p.0 <= now);
        self.pending = waiting;
        ready
            .into_iter()
            .map(|(_, t, a): (i64, Ticket, Option<DateSample>)| (t, a))
            .collect()
    }
}

/// The defaults: 80 probes, 5 s; 7 probes in flight (the lab's 8 connections, one spare).
const LIMITS: SyncLimits = SyncLimits {
    max_probes: 80,
    max_ns: 5_000_000_000,
    max_in_flight: 7,
};

fn check(mut server: SimServer, limits: SyncLimits) -> Estimate {
    let start = server.now;
    let e = estimate(&mut server, limits).unwrap();
    let error = e.offset_ns - server.offset;
    let elapsed = server.now - start;
    let ctx = format!("offset {} → {e:?}, error {error} ns", server.offset);
    assert!(
        error.abs() <= e.uncertainty_ns,
        "the reported interval holds the truth: {ctx}"
    );
    assert!(e.probes <= limits.max_probes, "{ctx}");
    assert!(
        server.most_in_flight <= limits.max_in_flight as usize,
        "{} in flight: {ctx}",
        server.most_in_flight
    );
    // The last answer may come a little after the budget.
    assert!(
        elapsed <= limits.max_ns + 2_000_000,
        "took {elapsed} ns: {ctx}"
    );
    assert!(e.rtt_ns >= server.up + server.down, "{ctx}");
    e
}

#[test]
fn within_the_round_trip_on_a_lab_like_path() {
    for offset in [
        0,
        1,
        123_456_789,
        -123_456_789,
        999_999_999,
        -1_700_000_000,
        42_000_000_000,
        -3_600_000_000_007,
    ] {
        let server = SimServer::lab(offset);
        let worst = server.up + server.down + 2 * server.jitter + server.service + 10_000;
        let e = check(server, LIMITS);
        // The target: ± 50 µs in ≤ 5 s; here, about half a round trip.
        assert!(e.uncertainty_ns <= 50_000, "offset {offset}: {e:?}");
        assert!(e.uncertainty_ns <= worst, "offset {offset}: {e:?}");
        assert!(e.elapsed_ns <= 5_000_000_000, "{e:?}");
    }
}

#[test]
fn every_phase_of_the_tick_is_found() {
    // The tick at every twentieth of a second relative to when the sync starts.
    for twentieth in 0..20 {
        let offset = twentieth * 50_000_000 + 31_337;
        let e = check(SimServer::lab(offset), LIMITS);
        assert!(e.uncertainty_ns <= 50_000, "offset {offset}: {e:?}");
    }
}

#[test]
fn asymmetric_delays_widen_nothing_but_stay_honest() {
    // All of the delay on the way back: a symmetric model would be off by 45 µs; the
    // strict interval still holds the truth.
    for (offset, up, down, jitter) in [
        (17_000_000, 1_000, 90_000, 2_000),
        (-260_000_001, 90_000, 1_000, 2_000),
    ] {
        check(SimServer::new(offset, up, down, jitter), LIMITS);
    }
}

#[test]
fn jitter_and_wan_delays_are_covered() {
    for (offset, up, down, jitter) in [
        (250_000_000, 5_000_000, 5_000_000, 1_000_000),
        (-80_000_000, 12_000_000, 3_000_000, 500_000),
        (7_777_777_777, 20_000_000, 20_000_000, 5_000_000),
        (-500_000_001, 40_000_000, 60_000_000, 0),
        (3, 100_000, 100_000, 200_000),
    ] {
        check(SimServer::new(offset, up, down, jitter), LIMITS);
    }
}

#[test]
fn tighter_budgets_are_kept() {
    for limits in [
        SyncLimits {
            max_probes: 8,
            ..LIMITS
        },
        SyncLimits {
            max_ns: 1_000_000_000,
            ..LIMITS
        },
        SyncLimits {
            max_in_flight: 1,
            ..LIMITS
        },
    ] {
        check(SimServer::lab(310_000_000), limits);
    }
}

#[test]
fn lost_probes_are_counted_and_skipped() {
    let mut server = SimServer::lab(-42_000_000);
    server.drop_every = 3;
    let start = server.now;
    let e = estimate(&mut server, LIMITS).unwrap();
    assert!(e.failed > 0 && e.failed < e.probes, "{e:?}");
    assert!(
        (e.offset_ns + 42_000_000).abs() <= e.uncertainty_ns,
        "{e:?}"
    );
    assert!(server.now - start <= LIMITS.max_ns + 1_100_000_000);
}

#[test]
fn a_silent_server_is_an_error_not_a_hang() {
    struct Silent(i64, Vec<Ticket>);
    impl Prober for Silent {
        fn now(&mut self) -> i64 {
            self.0
        }
        fn send(&mut self, at: i64) -> Option<Ticket> {
            self.0 = self.0.max(at) + 1_000;
            self.1.push(self.1.len() as u64);
            Some(self.1.len() as u64)
        }
        fn collect(&mut self, until: i64) -> Vec<(Ticket, Option<DateSample>)> {
            // Each probe is given up after 1 s.
            self.0 = self.0.max(until.min(self.0 + 1_000_000_000));
            self.1.drain(..).map(|t| (t, None)).collect()
        }
    }
    let e = estimate(&mut Silent(0, Vec::new()), LIMITS);
    assert!(matches!(e, Err(SyncError::NoAnswer { .. })), "{e:?}");
}

#[test]
fn a_server_clock_that_steps_is_reported() {
    // Answers alternate between two clocks a minute apart.
    struct Stepping(SimServer, bool);
    impl Prober for Stepping {
        fn now(&mut self) -> i64 {
            self.0.now
        }
        fn send(&mut self, at: i64) -> Option<Ticket> {
            self.0.send(at)
        }
        fn collect(&mut self, until: i64) -> Vec<(Ticket, Option<DateSample>)> {
            let mut got = self.0.collect(until);
            for (_, a) in &mut got {
                self.1 = !self.1;
                if let (Some(s), true) = (a.as_mut(), self.1) {
                    s.date_s += 60;
                }
            }
            got
        }
    }
    let mut p = Stepping(SimServer::lab(0), false);
    assert_eq!(estimate(&mut p, LIMITS), Err(SyncError::Inconsistent));
}
