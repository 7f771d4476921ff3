//! The BPF programs of quickdraw and their typed loaders.
//!
//! - `src/bpf/steer.bpf.c` (XDP) redirects the appliance's own frames (its
//!   TCP flows and ARP for its address) to the AF_XDP socket of the
//!   receiving queue and passes everything else to the kernel; [`Steer`]
//!   loads it, fills its maps and attaches it through a BPF link, so a
//!   crashed process leaves the interface clean.
//! - `src/bpf/stamp.bpf.c` (tc, clsact ingress and egress) timestamps the
//!   IPv4/TCP frames crossing an interface into a ring buffer, with the
//!   kernel's `CLOCK_MONOTONIC`; [`Stamper`] loads it, attaches it (in
//!   another network namespace if need be) and hands out [`WireStamp`]s.
//!
//! - `src/bpf/loss.bpf.c` (XDP and tc clsact egress) drops a share of the
//!   IPv4/TCP frames crossing the lab peer's interface, for fault
//!   injection; [`Loss`] loads and installs it, and it stays installed
//!   after the process exits until removed.
//!
//! Each program's maps and layouts are defined once in its `src/bpf/*.h`.
//! All `unsafe` code lives in `sys.rs`.

mod counters;
mod error;
mod filter;
mod flow;
mod loss;
mod maps;
mod netns;
mod record;
mod stamp;
mod steer;
mod sys;
mod tc;
mod verdict;

#[cfg(test)]
mod tests;

pub use counters::{Counters, StampCounters};
pub use error::Error;
pub use filter::StampFilter;
pub use flow::Flow;
pub use loss::{Loss, LossCounters, TC_ACT_SHOT};
pub use record::{Direction, TcpFlags, WireStamp};
pub use stamp::{Stamper, DEFAULT_RING_BYTES, TC_ACT_OK, TC_ACT_UNSPEC};
pub use steer::{if_nametoindex, AttachMode, Steer};
pub use verdict::Verdict;
