//! Tests that load the programs into the kernel (root needed, as in CI).
//!
//! Each test loads its own [`Steer`](crate::Steer) or
//! [`Stamper`](crate::Stamper), so its maps, rings and counters are its own
//! and the tests can run in parallel.

mod api;
mod frame;
mod loss;
mod loss_live;
mod program;
mod random;
mod stamp;
mod stamp_live;
