//! Tests that load the program into the kernel (root needed, as in CI).
//!
//! Each test loads its own [`Steer`](crate::Steer), so its maps and counters
//! are its own and the tests can run in parallel.

mod api;
mod frame;
mod program;
