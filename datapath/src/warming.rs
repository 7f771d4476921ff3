//! When to warm the send path while an order is armed: the policy. The mechanisms are the
//! links' [`warm`](crate::link::Link::warm) (our half: the order's frame, record, socket)
//! and [`warm_wire`](crate::link::Link::warm_wire) (the kernel's half: a self-addressed
//! frame through the same Tx ring and kick). Pure functions of the clock, tested on
//! virtual time.
//!
//! What each bought, measured in the lab, is in the README ("Warming").

mod code;
pub use code::{find_code, touch, touch_code};

/// Whether a pass through the fire path sends (`Live`) or only runs it (`Rehearsal`).
///
/// Touching the fire's code and data (above) keeps them in the second-level cache, but
/// only running code fills the instruction cache and trains the branch predictors, and
/// after a long wait those were what was left of a cold fire's cost (af_xdp trigger→wire
/// p50 at a 1 s gap 2.25–2.37 → 1.66–1.79 µs in the lab: README, "Warming"). So each
/// send warming runs an armed order's fire through the very same functions as a
/// `Rehearsal`: every check the fire makes, and nothing it changes. The functions take
/// the pass as an argument rather than reading a flag, so a live fire says so at its
/// call site, and each one stops a rehearsal right before its first change of state:
/// the TLS sequence number (`Session::check_commit`), the built frame's descriptor
/// (`engine/prebuilt.rs`), the pending order and the arm (`conn.rs`, `appliance.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Live,
    Rehearsal,
}

/// Warming settings of one datapath thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Warming {
    /// Our half: one armed connection's send path every this often; 0 = off.
    pub send_ns: u64,
    /// The kernel's half: a warm frame every this often while an order is armed; 0 = off.
    pub wire_ns: u64,
    /// Warm frames for an order waiting only on a deadline start this long before it
    /// (an order that can fire at any moment, by hand or on an event, is warmed all the
    /// time it is armed).
    pub wire_window_ns: u64,
    /// In the last `ramp_ns` before a deadline, warm frames every `ramp_interval_ns`.
    pub ramp_ns: u64,
    pub ramp_interval_ns: u64,
    /// Nothing at all in the last `quiet_ns` before a deadline: a warming running when
    /// the deadline passes would delay the fire by its own length (a warm frame's kick
    /// runs the kernel's whole transmit path, microseconds). Short, because the
    /// kernel's half goes cold fast: scheduled trigger→wire p50 1.7 and 1.9 µs with a
    /// 300 µs window, 0.7 and 0.7 with 50; in a noisier hour 1.6, 1.7, 1.9 µs with 50
    /// and 0.9, 1.0, 0.9 with 15 (lab, alternated runs; error p99 no worse either
    /// time). Longer than the final approach (`APPROACH_NS`, 10 µs), and than a warm
    /// frame's kick on veth (a few µs).
    pub quiet_ns: u64,
}

impl Default for Warming {
    fn default() -> Warming {
        Warming {
            send_ns: 50_000,
            wire_ns: 50_000,
            wire_window_ns: 50_000_000,
            ramp_ns: 1_000_000,
            ramp_interval_ns: 20_000,
            quiet_ns: 15_000,
        }
    }
}

impl Warming {
    /// Nothing warmed, ever (the bench's "no warming" baseline).
    pub fn off() -> Warming {
        Warming {
            send_ns: 0,
            wire_ns: 0,
            ..Warming::default()
        }
    }

    /// Whether our half is due at `now`, last warmed at `last`, with the nearest
    /// deadline of an armed order at `deadline`.
    pub fn send_due(&self, now: u64, last: u64, deadline: Option<u64>) -> bool {
        self.send_ns != 0 && !self.quiet(now, deadline) && now.saturating_sub(last) >= self.send_ns
    }

    /// Whether a warm frame is due at `now`, last sent at `last`. `untimed` says an armed
    /// order can fire at any moment (manual or event); `deadline` is the nearest
    /// deadline of a scheduled one.
    pub fn wire_due(&self, now: u64, last: u64, untimed: bool, deadline: Option<u64>) -> bool {
        if self.wire_ns == 0 || self.quiet(now, deadline) {
            return false;
        }
        let left = deadline.map(|d| d.saturating_sub(now));
        let interval = match left {
            Some(left) if left < self.ramp_ns => self.ramp_interval_ns.min(self.wire_ns),
            Some(left) if left < self.wire_window_ns || untimed => self.wire_ns,
            None if untimed => self.wire_ns,
            _ => return false,
        };
        now.saturating_sub(last) >= interval
    }

    fn quiet(&self, now: u64, deadline: Option<u64>) -> bool {
        deadline.is_some_and(|d| d >= now && d - now < self.quiet_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: u64 = 1_000;
    const MS: u64 = 1_000_000;

    #[test]
    fn an_untimed_arm_is_warmed_all_the_time_at_the_base_rate() {
        let w = Warming::default();
        assert!(w.wire_due(10 * MS, 10 * MS - 50 * US, true, None));
        assert!(!w.wire_due(10 * MS, 10 * MS - 49 * US, true, None));
        assert!(!w.wire_due(10 * MS, 0, false, None), "nothing armed");
        assert!(w.send_due(10 * MS, 10 * MS - 50 * US, None));
    }

    #[test]
    fn a_scheduled_arm_is_warmed_in_its_window_then_ramped_then_quiet() {
        let w = Warming::default();
        let deadline = 1_000 * MS;
        // Long before the deadline: no warm frames (the window is 50 ms).
        assert!(!w.wire_due(deadline - 60 * MS, 0, false, Some(deadline)));
        // In the window: the base rate.
        assert!(w.wire_due(
            deadline - 40 * MS,
            deadline - 40 * MS - 50 * US,
            false,
            Some(deadline)
        ));
        assert!(!w.wire_due(
            deadline - 40 * MS,
            deadline - 40 * MS - 20 * US,
            false,
            Some(deadline)
        ));
        // In the ramp: faster.
        let now = deadline - 600 * US;
        assert!(w.wire_due(now, now - 20 * US, false, Some(deadline)));
        // In the quiet window: nothing, of either kind.
        let now = deadline - 14 * US;
        assert!(!w.wire_due(now, 0, false, Some(deadline)));
        assert!(!w.send_due(now, 0, Some(deadline)));
        // A manual arm beside a scheduled one far away: warmed at the base rate.
        assert!(w.wire_due(
            deadline - 60 * MS,
            deadline - 60 * MS - 50 * US,
            true,
            Some(deadline)
        ));
    }

    #[test]
    fn off_is_off() {
        let w = Warming::off();
        assert!(!w.wire_due(10 * MS, 0, true, None));
        assert!(!w.send_due(10 * MS, 0, None));
    }
}
