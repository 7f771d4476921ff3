//! The clock-offset estimator against a simulated server: a clock running `offset` ahead
//! of ours, requests reaching it after a one-way delay with jitter, answers coming back
//! after another. Virtual time throughout: no sleeping, no real clock.

use super::sync::{estimate, Prober, Sample, SyncError, SyncLimits};

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
    worst_rtt: i64,
}

impl SimServer {
    fn new(offset: i64, up: i64, down: i64, jitter: i64) -> SimServer {
        SimServer {
            offset,
            up,
            down,
            jitter,
            service: 20_000,
            now: 1_795_766_400_123_456_789,
            seed: 0x9e37_79b9_7f4a_7c15 ^ offset as u64,
            drop_every: 0,
            sent: 0,
            worst_rtt: 0,
        }
    }

    fn jitter(&mut self) -> i64 {
        // xorshift64: deterministic, no dependency.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        if self.jitter == 0 {
            0
        } else {
            (self.seed % self.jitter as u64) as i64
        }
    }
}

impl Prober for SimServer {
    fn now(&mut self) -> i64 {
        self.now
    }

    fn probe(&mut self, at: i64) -> Option<Sample> {
        // The daemon's own delay before the datapath sends (tens of µs).
        let sent = self.now.max(at) + 30_000;
        self.sent += 1;
        let arrive = sent + self.up + self.jitter();
        let server_time = arrive + self.offset;
        let first_byte = arrive + self.service + self.down + self.jitter();
        self.now = first_byte + 5_000;
        if self.drop_every > 0 && self.sent.is_multiple_of(self.drop_every) {
            return None;
        }
        self.worst_rtt = self.worst_rtt.max(first_byte - sent);
        Some(Sample {
            sent_ns: sent,
            first_byte_ns: first_byte,
            date_s: server_time.div_euclid(1_000_000_000),
        })
    }
}

const LIMITS: SyncLimits = SyncLimits {
    max_probes: 40,
    max_ns: 3_000_000_000,
};

fn check(mut server: SimServer, limits: SyncLimits) -> i64 {
    let start = server.now;
    let e = estimate(&mut server, limits).unwrap();
    let error = e.offset_ns - server.offset;
    let elapsed = server.now - start;
    let ctx = format!("offset {} → {e:?}, error {error} ns", server.offset);
    // The claim: within half the round trip (the server may stamp anywhere in it), plus
    // half the final bracket.
    assert!(
        error.abs() <= server.worst_rtt / 2 + e.resolution_ns / 2 + 1,
        "{ctx}"
    );
    assert!(
        error.abs() <= e.uncertainty_ns,
        "the reported ± covers it: {ctx}"
    );
    assert!(e.probes <= limits.max_probes, "{ctx}");
    assert!(
        // A round started in time may finish its bracket (≤ 1/12 s) after the budget.
        elapsed <= limits.max_ns + 90_000_000,
        "took {elapsed} ns: {ctx}"
    );
    assert!(e.rtt_ns >= server.up + server.down, "{ctx}");
    error
}

#[test]
fn recovers_known_offsets_on_a_lab_like_path() {
    // ~100 µs each way, 50 µs of jitter: the lab's veth and nginx.
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
        let server = SimServer::new(offset, 100_000, 100_000, 50_000);
        let rtt = server.up + server.down + 2 * server.jitter + server.service;
        let error = check(server, LIMITS);
        // And in absolute terms: well under a millisecond here.
        assert!(error.abs() < rtt, "offset {offset}: error {error}");
    }
}

#[test]
fn recovers_offsets_over_a_wan_with_asymmetric_delays() {
    for (offset, up, down, jitter) in [
        (250_000_000, 5_000_000, 5_000_000, 1_000_000),
        (-80_000_000, 12_000_000, 3_000_000, 500_000),
        (7_777_777_777, 20_000_000, 20_000_000, 5_000_000),
        (-500_000_001, 40_000_000, 60_000_000, 0),
    ] {
        check(SimServer::new(offset, up, down, jitter), LIMITS);
    }
}

#[test]
fn every_phase_of_the_tick_is_found() {
    // The tick at every tenth of a second relative to when the sync starts.
    for tenth in 0..10 {
        let offset = tenth * 100_000_000 + 31_337;
        check(SimServer::new(offset, 150_000, 150_000, 20_000), LIMITS);
    }
}

#[test]
fn tighter_budgets_still_bound_the_error_and_are_kept() {
    for limits in [
        SyncLimits {
            max_probes: 8,
            max_ns: 3_000_000_000,
        },
        SyncLimits {
            max_probes: 40,
            max_ns: 1_000_000_000,
        },
    ] {
        check(
            SimServer::new(310_000_000, 100_000, 100_000, 10_000),
            limits,
        );
    }
}

#[test]
fn lost_probes_are_counted_and_skipped() {
    let mut server = SimServer::new(-42_000_000, 100_000, 100_000, 10_000);
    server.drop_every = 3;
    let start = server.now;
    let e = estimate(&mut server, LIMITS).unwrap();
    assert!(e.failed > 0 && e.failed < e.probes, "{e:?}");
    assert!(
        (e.offset_ns + 42_000_000).abs() <= e.uncertainty_ns,
        "{e:?}"
    );
    assert!(server.now - start <= LIMITS.max_ns + 90_000_000);
}

#[test]
fn a_silent_server_is_an_error_not_a_hang() {
    struct Silent(i64);
    impl Prober for Silent {
        fn now(&mut self) -> i64 {
            self.0
        }
        fn probe(&mut self, at: i64) -> Option<Sample> {
            self.0 = self.0.max(at) + 1_000_000;
            None
        }
    }
    assert_eq!(
        estimate(&mut Silent(0), LIMITS),
        Err(SyncError::NoAnswer { probes: 40 })
    );
}

#[test]
fn a_server_clock_that_steps_is_reported() {
    // Answers alternate between two clocks a minute apart.
    struct Stepping(SimServer, bool);
    impl Prober for Stepping {
        fn now(&mut self) -> i64 {
            self.0.now
        }
        fn probe(&mut self, at: i64) -> Option<Sample> {
            self.1 = !self.1;
            let mut s = self.0.probe(at)?;
            if self.1 {
                s.date_s += 60;
            }
            Some(s)
        }
    }
    let mut p = Stepping(SimServer::new(0, 100_000, 100_000, 0), false);
    assert_eq!(estimate(&mut p, LIMITS), Err(SyncError::Inconsistent));
}
