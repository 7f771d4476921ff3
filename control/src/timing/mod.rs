//! Time on the control side: reading our two clocks together, the text forms of instants,
//! turning a requested instant into the datapath's monotonic deadline, and
//! estimating a server's clock offset from its `Date` header.

pub mod clock;
pub mod schedule;
pub mod sync;
pub mod text;

#[cfg(test)]
mod sync_tests;
