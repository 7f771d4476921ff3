//! [`Counters`] and [`StampCounters`]: the programs' per-CPU counters,
//! summed.

/// Indices of the `counters` map: `enum steer_counter` in `steer.h`.
pub(crate) mod index {
    pub const SEEN: u32 = 0;
    pub const STEERED: u32 = 1;
    pub const PASSED: u32 = 2;
    pub const MALFORMED: u32 = 3;
    /// `STEER_NR_COUNTERS`.
    pub const COUNT: u32 = 4;
}

/// Indices of the `stamp_counters` map: `enum stamp_counter` in `stamp.h`.
pub(crate) mod stamp_index {
    pub const SEEN: u32 = 0;
    pub const STAMPED: u32 = 1;
    pub const LOST: u32 = 2;
    pub const SKIPPED: u32 = 3;
    pub const MALFORMED: u32 = 4;
    /// `STAMP_NR_COUNTERS`.
    pub const COUNT: u32 = 5;
}

/// Frames the steering program has handled since load, summed over CPUs.
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

/// Frames the two stamping programs (ingress and egress together) have
/// handled since load.
///
/// `seen == stamped + lost + skipped + malformed`. Read one after the other
/// while frames may arrive, so a snapshot taken under traffic can be off by
/// the frames in flight.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StampCounters {
    /// Every frame either program ran on.
    pub seen: u64,
    /// Records put in the ring.
    pub stamped: u64,
    /// Frames that should have been stamped but found the ring full.
    pub lost: u64,
    /// Not IPv4/TCP, an IPv4 fragment, or outside the filter.
    pub skipped: u64,
    /// Truncated or inconsistent Ethernet, IPv4 or TCP headers.
    pub malformed: u64,
    /// Records the ring delivered that this crate could not decode (a
    /// layout mismatch between `stamp.h` and the Rust side; always 0 unless
    /// they are out of step).
    pub undecodable: u64,
}
