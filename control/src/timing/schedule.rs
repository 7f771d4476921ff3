//! A scheduled arm's instant → the datapath's CLOCK_MONOTONIC deadline, decided once at
//! arm time (the datapath only compares its per-turn `now` with it). With `arrive`, the
//! trigger moves earlier by the server's clock offset and the one-way latency, so the
//! request reaches the server at the requested instant *on the server's clock*. Pure:
//! the clocks are passed in.

use super::clock::{ClockPair, UnixNs};
use super::text::format_utc;
use std::time::Duration;

/// When a scheduled arm fires, in every form the daemon reports and journals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// The instant asked for (UTC ns).
    pub at_ns: UnixNs,
    /// The instant the trigger is set for on our realtime clock: `at_ns` minus the
    /// correction.
    pub fire_ns: UnixNs,
    /// `fire_ns` on CLOCK_MONOTONIC: what the datapath fires on.
    pub deadline_ns: u64,
    /// Server clock offset + one-way latency taken off (0 without `arrive`).
    pub correction_ns: i64,
}

/// The server clock as `control sync` measured it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Correction {
    /// Server clock minus ours.
    pub offset_ns: i64,
    /// Time for a request to reach the server (half the best round trip).
    pub one_way_ns: i64,
}

/// Why an instant cannot be scheduled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("{when} is in the past (now is {now})")]
    Past { when: String, now: String },
    #[error("{when} is too soon: an arm needs at least {lead:?} to be ready (timing.min_lead_ms)")]
    TooSoon { when: String, lead: Duration },
    #[error("{when} is more than {ahead:?} ahead (timing.max_ahead_s)")]
    TooFar { when: String, ahead: Duration },
}

/// Bounds on how soon and how far ahead an arm may fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub min_lead: Duration,
    pub max_ahead: Duration,
}

/// Plans a fire at `at_ns` (UTC), seen from `now`, with an optional arrival correction.
pub fn plan(
    at_ns: UnixNs,
    now: ClockPair,
    correction: Option<Correction>,
    window: Window,
) -> Result<Schedule, ScheduleError> {
    let correction_ns = correction.map_or(0, |c| c.offset_ns + c.one_way_ns);
    let fire_ns = at_ns - correction_ns;
    let when = || {
        if correction_ns == 0 {
            format_utc(at_ns)
        } else {
            format!(
                "{} (firing at {} for the server's clock)",
                format_utc(at_ns),
                format_utc(fire_ns)
            )
        }
    };
    let ahead = fire_ns - now.real_ns;
    if ahead < 0 {
        return Err(ScheduleError::Past {
            when: when(),
            now: format_utc(now.real_ns),
        });
    }
    if (ahead as u128) < window.min_lead.as_nanos() {
        return Err(ScheduleError::TooSoon {
            when: when(),
            lead: window.min_lead,
        });
    }
    if ahead as u128 > window.max_ahead.as_nanos() {
        return Err(ScheduleError::TooFar {
            when: when(),
            ahead: window.max_ahead,
        });
    }
    Ok(Schedule {
        at_ns,
        fire_ns,
        deadline_ns: now.mono_of(fire_ns),
        correction_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: ClockPair = ClockPair {
        real_ns: 1_795_766_400_000_000_000,
        mono_ns: 5_000_000_000,
    };
    const WINDOW: Window = Window {
        min_lead: Duration::from_millis(20),
        max_ahead: Duration::from_secs(3600),
    };

    #[test]
    fn an_instant_becomes_a_monotonic_deadline() {
        let s = plan(NOW.real_ns + 2_000_000_000, NOW, None, WINDOW).unwrap();
        assert_eq!(s.deadline_ns, 7_000_000_000);
        assert_eq!((s.fire_ns, s.correction_ns), (s.at_ns, 0));
    }

    #[test]
    fn arrival_moves_the_trigger_by_offset_and_one_way() {
        // The server runs 300 ms ahead of us and a request takes 150 µs to reach it: to
        // arrive at its T, leave at our T − 300 ms − 150 µs.
        let c = Correction {
            offset_ns: 300_000_000,
            one_way_ns: 150_000,
        };
        let at = NOW.real_ns + 2_000_000_000;
        let s = plan(at, NOW, Some(c), WINDOW).unwrap();
        assert_eq!(s.correction_ns, 300_150_000);
        assert_eq!(s.fire_ns, at - 300_150_000);
        assert_eq!(s.deadline_ns, 7_000_000_000 - 300_150_000);
        // A server behind us: fire later.
        let behind = Correction {
            offset_ns: -1_000_000_000,
            one_way_ns: 0,
        };
        let s = plan(at, NOW, Some(behind), WINDOW).unwrap();
        assert_eq!(s.deadline_ns, 8_000_000_000);
    }

    #[test]
    fn refusals() {
        let err = plan(NOW.real_ns - 1, NOW, None, WINDOW)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is in the past (now is 2026-11-27T08:00:00.000000Z)"),
            "{err}"
        );
        let err = plan(NOW.real_ns + 5_000_000, NOW, None, WINDOW)
            .unwrap_err()
            .to_string();
        assert!(err.contains("too soon") && err.contains("20ms"), "{err}");
        let err = plan(NOW.real_ns + 3_601_000_000_000, NOW, None, WINDOW)
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than 3600s ahead"), "{err}");
        // Correction can push a near instant into the past.
        let c = Correction {
            offset_ns: 50_000_000,
            one_way_ns: 0,
        };
        let err = plan(NOW.real_ns + 30_000_000, NOW, Some(c), WINDOW)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("firing at") && err.contains("in the past"),
            "{err}"
        );
    }
}
