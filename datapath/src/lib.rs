//! quickdraw's datapath: AF_XDP sockets and UMEM, the pinned busy-poll loop, smoltcp TCP
//! and TLS 1.3 (rustls handshakes, records sealed by us) over UMEM frames or the kernel's
//! sockets, warm connection pools, pre-sealed requests and the fire path.
//!
//! `unsafe` is confined to `xsk/` (the kernel's shared rings and packet memory),
//! `placement/sched.rs` (one scheduler call), `placement/text.rs` (the code moved onto
//! huge pages) and `warming/code.rs` (reads of our own memory and code, to warm caches).

pub mod appliance;
pub mod clock;
mod conn;
pub mod device;
mod engine;
mod error;
pub mod event;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
pub mod http;
pub mod link;
mod ntuple;
pub mod order;
pub mod placement;
pub mod poll;
pub mod preflight;
pub mod runner;
pub mod setup;
mod stack;
mod target;
pub mod tls;
pub mod warming;
// Private to the datapath: only the device touches rings and frames. Public only with
// the test feature `xsk-doctests`, for the compile_fail doctests that prove a transmit
// frame cannot go to Fill nor a receive frame to Tx (`make test` runs them).
#[cfg(feature = "xsk-doctests")]
pub mod xsk;
#[cfg(not(feature = "xsk-doctests"))]
mod xsk;

pub use engine::{ConnId, Engine, EngineConfig};
pub use error::Error;
pub use target::TargetSpec;
pub use xsk::{BindMode, UmemConfig, XskConfig, ZeroCopy};
