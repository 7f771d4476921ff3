//! [`Counters`]: the program's per-CPU counters, summed.

/// Indices of the `counters` map: `enum steer_counter` in `steer.h`.
pub(crate) mod index {
    pub const SEEN: u32 = 0;
    pub const STEERED: u32 = 1;
    pub const PASSED: u32 = 2;
    pub const MALFORMED: u32 = 3;
    /// `STEER_NR_COUNTERS`.
    pub const COUNT: u32 = 4;
}

/// Frames the program has handled since load, summed over CPUs.
///
/// `seen == steered + passed`; `malformed` frames are also counted in
/// `passed`. An owned frame whose queue has no socket is passed, not steered.
/// The counters are read one after the other while frames may arrive, so a
/// snapshot taken under traffic can be off by the frames in flight.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Every frame the program ran on.
    pub seen: u64,
    /// Frames redirected to an AF_XDP socket.
    pub steered: u64,
    /// Frames handed to the kernel stack (`XDP_PASS`).
    pub passed: u64,
    /// Passed frames with truncated or inconsistent headers.
    pub malformed: u64,
}
