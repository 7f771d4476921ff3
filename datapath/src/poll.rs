//! The busy-poll loop: mechanism only. It pins itself to a core, reads the clock once per
//! turn and passes `now` down, and stops on a flag or a deadline. What a turn does lives
//! in the engine ([`Turn`]); whether to spin or rest when idle is a [`Idle`] policy, so
//! the loop can be driven on virtual time in tests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Whether a turn found work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    Busy,
    Idle,
}

/// One turn of whatever the loop drives.
pub trait Turn {
    fn turn(&mut self, now_ns: u64) -> Work;
}

/// What to do after a turn that found nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Spin: the core stays hot. The mode while anything is armed.
    Spin,
    /// Sleep this long: for tests and for a datapath with nothing armed.
    Sleep(Duration),
}

/// When the loop stops.
#[derive(Debug)]
pub struct Stop<'a> {
    /// Set by another thread to stop the loop at the end of its turn.
    pub flag: &'a AtomicBool,
    /// A clock value at which the loop stops by itself (every loop is bounded).
    pub deadline_ns: Option<u64>,
}

/// Counts kept by the loop itself.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LoopStats {
    pub turns: u64,
    pub busy_turns: u64,
}

/// Runs `engine` until stopped. `clock` is read exactly once per turn.
pub fn run<T: Turn + ?Sized>(
    engine: &mut T,
    mut clock: impl FnMut() -> u64,
    idle: Idle,
    stop: Stop<'_>,
) -> LoopStats {
    let mut stats = LoopStats::default();
    loop {
        let now = clock();
        if stop.flag.load(Ordering::Relaxed) || stop.deadline_ns.is_some_and(|d| now >= d) {
            return stats;
        }
        stats.turns += 1;
        match engine.turn(now) {
            Work::Busy => stats.busy_turns += 1,
            Work::Idle => match idle {
                Idle::Spin => std::hint::spin_loop(),
                Idle::Sleep(d) => std::thread::sleep(d),
            },
        }
    }
}

/// Pins the calling thread to `core`. False if the core does not exist or the kernel
/// refused (the caller decides whether running unpinned is acceptable).
pub fn pin_to_core(core: usize) -> bool {
    crate::placement::pin(core).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An engine that records the `now` of each turn and is busy on even turns.
    struct Recorder(Vec<u64>);
    impl Turn for Recorder {
        fn turn(&mut self, now_ns: u64) -> Work {
            self.0.push(now_ns);
            if self.0.len().is_multiple_of(2) {
                Work::Busy
            } else {
                Work::Idle
            }
        }
    }

    #[test]
    fn virtual_time_one_clock_read_per_turn_until_deadline() {
        let mut virtual_now = 0;
        let clock = || {
            virtual_now += 100;
            virtual_now
        };
        let flag = AtomicBool::new(false);
        let mut engine = Recorder(Vec::new());
        let stats = run(
            &mut engine,
            clock,
            Idle::Spin,
            Stop {
                flag: &flag,
                deadline_ns: Some(1_000),
            },
        );
        assert_eq!(engine.0, vec![100, 200, 300, 400, 500, 600, 700, 800, 900]);
        assert_eq!(
            stats,
            LoopStats {
                turns: 9,
                busy_turns: 4
            }
        );
    }

    #[test]
    fn stop_flag_ends_the_loop() {
        struct StopAfter<'a>(u64, &'a AtomicBool);
        impl Turn for StopAfter<'_> {
            fn turn(&mut self, _now: u64) -> Work {
                self.0 -= 1;
                if self.0 == 0 {
                    self.1.store(true, Ordering::Relaxed);
                }
                Work::Idle
            }
        }
        let flag = AtomicBool::new(false);
        let mut e = StopAfter(3, &flag);
        let stats = run(
            &mut e,
            || 0,
            Idle::Sleep(Duration::from_micros(1)),
            Stop {
                flag: &flag,
                deadline_ns: None,
            },
        );
        assert_eq!(stats.turns, 3);
    }

    #[test]
    fn pinning_to_a_missing_core_is_refused() {
        assert!(!pin_to_core(100_000));
        let here = std::thread::spawn(|| pin_to_core(0)).join().unwrap();
        assert!(here, "core 0 always exists");
    }
}
