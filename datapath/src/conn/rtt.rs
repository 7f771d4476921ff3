//! The request → response time of one connection, and the early retransmission timeout
//! drawn from it.
//!
//! A server answers some requests much later than most while nothing is lost (lab,
//! orders 20 ms apart: p50 75 µs, p90 250 µs, p99 310 µs): a timeout of 2·SRTT resent
//! 13 % of orders that were only slow (500 fires, no loss set), and RFC 6298's variance
//! term, tried first, forgot a slow answer within a few fast ones (one answer in eight
//! 4× slower, as in the lab). So the timeout also covers the recent peak, which decays by 1/64
//! per sample: 1.25 times it stays above a slow answer for the next 14 samples. A
//! sample counts for at most 4·SRTT: an answer that took 200 ms because the server had
//! to resend it (a lost response) is the server's loss recovery, not the path's time,
//! and left whole it put the timeout at tens of milliseconds, where early
//! retransmission of the next order no longer helps (lab, 5 % loss: orders first seen
//! at the peer 5–8 ms after the trigger). A server that really became slower is still
//! followed, by up to ×1.375 (SRTT) and ×4 (peak) per sample.
//!
//! Where the link can tell (`conn.rs`, `Episode`), an answer late by its own loss on the
//! way back, and the answer to a request whose first copy was lost, give no sample at
//! all: under 5 % loss, learnt even within the cap, they kept the timeout at 1.4–1.9 ms
//! when the server was slow (SRTT ~300 µs).

/// Smoothed and peak request → response time, ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rtt {
    srtt_ns: u64,
    peak_ns: u64,
    measured: bool,
}

impl Rtt {
    /// Before the first sample: `initial_ns` (a fresh connection measures at once: its
    /// first keep-warm goes out right after the handshake).
    pub(super) const fn new(initial_ns: u64) -> Rtt {
        Rtt {
            srtt_ns: initial_ns,
            peak_ns: initial_ns,
            measured: false,
        }
    }

    /// Takes one request → response time (never one of a request that was resent:
    /// Karn's rule is the caller's).
    pub(super) fn sample(&mut self, ns: u64) {
        if !self.measured {
            *self = Rtt {
                srtt_ns: ns,
                peak_ns: ns,
                measured: true,
            };
            return;
        }
        let ns = ns.min(4 * self.srtt_ns);
        self.srtt_ns = (7 * self.srtt_ns + ns) / 8;
        self.peak_ns = ns.max(self.peak_ns - self.peak_ns / 64);
    }

    /// Takes the time to the answer of a request that was resent, measured from its first
    /// send: the RTT is ambiguous (Karn), but the peak may only grow from it.
    pub(super) fn sample_resent(&mut self, ns: u64) {
        self.peak_ns = self.peak_ns.max(ns.min(4 * self.srtt_ns));
    }

    /// How long a request may stay unacknowledged before it is resent:
    /// max(2·SRTT, 1.25·peak, `floor_ns`).
    pub(super) fn timeout(&self, floor_ns: u64) -> u64 {
        (2 * self.srtt_ns)
            .max(self.peak_ns + self.peak_ns / 4)
            .max(floor_ns)
    }

    /// The same while an order is in flight, but past max(2·SRTT, `cap_ns`) never: an
    /// order resent while the server was only slow costs a frame and the server's
    /// duplicate ACK; one resent late costs the order.
    pub(super) fn order_timeout(&self, floor_ns: u64, cap_ns: u64) -> u64 {
        self.timeout(floor_ns).min((2 * self.srtt_ns).max(cap_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: u64 = 1_000;

    #[test]
    fn the_first_sample_replaces_the_guess() {
        let mut r = Rtt::new(1_000 * US);
        assert_eq!(
            r.timeout(200 * US),
            2_000 * US,
            "2 × 1 ms before any sample"
        );
        r.sample(100 * US);
        assert_eq!(r.timeout(0), 200 * US);
        assert_eq!(r.timeout(400 * US), 400 * US, "the floor");
    }

    #[test]
    fn a_steady_server_gets_twice_its_time() {
        let mut r = Rtt::new(1_000 * US);
        for _ in 0..100 {
            r.sample(100 * US);
        }
        assert_eq!(r.timeout(0), 200 * US);
    }

    #[test]
    fn a_server_that_is_sometimes_slow_gets_a_timeout_past_its_slow_answers() {
        // One answer in eight takes 300 µs, the rest 75 µs: the lab's shape.
        let mut r = Rtt::new(1_000 * US);
        let (mut low, mut high) = (u64::MAX, 0);
        for i in 0..400 {
            r.sample(if i % 8 == 7 { 300 * US } else { 75 * US });
            if i > 100 {
                low = low.min(r.timeout(200 * US));
                high = high.max(r.timeout(200 * US));
            }
        }
        assert!(
            low > 300 * US,
            "lowest timeout {low} ns resends a slow answer"
        );
        assert!(
            high < 1_000 * US,
            "{high} ns: loss recovery stays under a millisecond"
        );
    }

    #[test]
    fn answers_to_resent_requests_raise_the_peak_only() {
        let mut r = Rtt::new(1_000 * US);
        for _ in 0..100 {
            r.sample(75 * US);
        }
        assert_eq!(r.timeout(200 * US), 200 * US);
        // Slow answers, each resent at 200 µs: without them the timeout would stay there
        // and resend every one.
        r.sample_resent(300 * US);
        assert_eq!(r.timeout(200 * US), 375 * US);
        let srtt = r.srtt_ns;
        r.sample_resent(50 * US);
        assert_eq!((r.srtt_ns, r.timeout(200 * US)), (srtt, 375 * US));
    }

    #[test]
    fn a_lost_response_does_not_put_the_timeout_out_of_reach() {
        let mut r = Rtt::new(1_000 * US);
        for _ in 0..50 {
            r.sample(100 * US);
        }
        // The server resent its answer after its own 200 ms timer.
        r.sample(200_000 * US);
        assert_eq!(r.timeout(200 * US), 500 * US, "1.25 × 4 × 100 µs");
        for _ in 0..200 {
            r.sample(100 * US);
        }
        assert!(r.timeout(0) < 300 * US, "forgotten: {}", r.timeout(0));
    }

    #[test]
    fn an_order_is_resent_by_the_cap_whatever_the_peak() {
        let mut r = Rtt::new(1_000 * US);
        for i in 0..100 {
            r.sample(if i % 8 == 7 { 2_000 * US } else { 200 * US });
        }
        assert!(r.timeout(200 * US) > 1_000 * US, "{}", r.timeout(200 * US));
        assert_eq!(r.order_timeout(200 * US, 1_000 * US), 1_000 * US);
        // Never sooner than the ordinary timeout, nor than twice the smoothed time.
        let mut fast = Rtt::new(1_000 * US);
        fast.sample(100 * US);
        assert_eq!(fast.order_timeout(200 * US, 1_000 * US), 200 * US);
        let mut slow = Rtt::new(1_000 * US);
        slow.sample(3_000 * US);
        assert_eq!(slow.order_timeout(200 * US, 1_000 * US), 6_000 * US);
    }

    #[test]
    fn a_server_that_became_slower_is_followed() {
        let mut r = Rtt::new(1_000 * US);
        for _ in 0..50 {
            r.sample(100 * US);
        }
        for _ in 0..30 {
            r.sample(5_000 * US);
        }
        assert!(r.timeout(0) >= 5_000 * US, "{}", r.timeout(0));
    }
}
