//! quickdraw's datapath: AF_XDP sockets and UMEM, the pinned busy-poll loop, smoltcp TCP
//! (and, next, rustls TLS) over UMEM frames, and the fire path.
//!
//! `unsafe` is confined to `xsk/` (the kernel's shared rings and packet memory).

pub mod clock;
pub mod device;
pub mod engine;
mod error;
pub mod poll;
pub mod stack;
pub mod xsk;

pub use engine::{ConnId, Engine, EngineConfig};
pub use error::Error;
