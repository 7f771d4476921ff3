//! Measurement: matching the appliance's fires to the wire timestamps taken
//! outside it (on the lab peer, by [`quickdraw_bpf::Stamper`]), and the
//! latency series that come out of it, summed up as percentiles.
//!
//! `matcher` decides which frame belongs to which fire; `stats` holds the
//! histograms. Both are pure logic over plain values, on `CLOCK_MONOTONIC`
//! nanoseconds taken by someone else: no clock, no kernel.

mod matcher;
mod stats;

pub use matcher::{match_fires, Conn, Fire, FireMatch, MatchReport, MatchSummary, WireFrame};
pub use stats::{ratio, Percentiles, Ratios, Series};

impl MatchReport {
    /// Trigger → first frame of the request at the peer, over the matched
    /// fires.
    pub fn trigger_to_wire(&self) -> Series {
        self.matched().map(FireMatch::trigger_to_wire_ns).collect()
    }

    /// Trigger → first frame of the response leaving the peer, over the
    /// fires whose response was found.
    pub fn trigger_to_response(&self) -> Series {
        self.matched()
            .filter_map(FireMatch::trigger_to_response_ns)
            .collect()
    }
}
