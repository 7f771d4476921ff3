//! The one clock everything is compared on: CLOCK_MONOTONIC in nanoseconds, the same
//! clock as the kernel's `bpf_ktime_get_ns()`, so our timestamps and a BPF program's can
//! be subtracted honestly.

/// Nanoseconds on CLOCK_MONOTONIC. Read once per loop turn and passed down.
pub fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// smoltcp's time, from our nanoseconds (smoltcp counts microseconds).
pub fn smoltcp_instant(now_ns: u64) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros((now_ns / 1_000) as i64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn monotonic_agrees_with_std_and_never_goes_back() {
        let a = super::monotonic_ns();
        let std_start = std::time::Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = super::monotonic_ns();
        assert!(b > a);
        // std's Instant is CLOCK_MONOTONIC on Linux too: both saw at least the sleep.
        assert!(b - a >= std_start.elapsed().as_nanos() as u64 / 2);
        assert_eq!(
            super::smoltcp_instant(1_234_567_890).total_micros(),
            1_234_567
        );
    }
}
