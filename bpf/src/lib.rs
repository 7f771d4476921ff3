//! The XDP steering program and its typed loader.
//!
//! `src/bpf/steer.bpf.c` redirects the appliance's own frames (its TCP flows and
//! ARP for its address) to the AF_XDP socket of the receiving queue and passes
//! everything else to the kernel; `src/bpf/steer.h` defines the maps and
//! layouts. [`Steer`] loads it, fills its maps and attaches it through a BPF
//! link, so a crashed process leaves the interface clean.
//!
//! All `unsafe` code lives in `sys.rs`.

mod counters;
mod error;
mod flow;
mod steer;
mod sys;
mod verdict;

#[cfg(test)]
mod tests;

pub use counters::Counters;
pub use error::Error;
pub use flow::Flow;
pub use steer::{if_nametoindex, AttachMode, Steer};
pub use verdict::Verdict;
