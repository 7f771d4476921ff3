//! quickdraw's datapath: AF_XDP sockets and UMEM, the pinned busy-poll loop, smoltcp TCP
//! and TLS 1.3 (rustls handshakes, records sealed by us) over UMEM frames or the kernel's
//! sockets, warm connection pools, pre-sealed requests and the fire path.
//!
//! `unsafe` is confined to `xsk/` (the kernel's shared rings and packet memory).

pub mod appliance;
pub mod clock;
pub mod conn;
pub mod device;
pub mod engine;
mod error;
pub mod event;
pub mod http;
pub mod link;
pub mod order;
pub mod poll;
pub mod runner;
pub mod setup;
pub mod stack;
pub mod tls;
pub mod xsk;

pub use engine::{ConnId, Engine, EngineConfig};
pub use error::Error;
