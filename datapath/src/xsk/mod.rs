//! AF_XDP, one module per kernel concept: system calls and mappings (`sys`), the shared
//! rings (`ring`), packet memory (`umem`), the bound socket (`socket`) and the
//! receive sockets of other queues on its UMEM (`shared`). The only
//! modules of the datapath allowed `unsafe`.
//!
//! Written over `libc` rather than xdpilone so the rings and UMEM can be built over
//! anonymous memory and tested without a kernel, and every descriptor is bounds-checked
//! in release builds.
//!
//! Frame ownership is in the types: the Fill ring takes only an [`RxFrame`] and Tx only a
//! [`TxDesc`] of a [`TxFrame`], each made only by its own area of the UMEM; what the
//! kernel writes (an [`RxDesc`], a [`CompletionAddr`]) is checked before it becomes one.

pub mod ring;
pub mod shared;
pub mod socket;
mod sys;
pub mod umem;

// The whole vocabulary, for the doctests (feature `xsk-doctests`); the device names only
// part of it directly.
#[cfg_attr(not(feature = "xsk-doctests"), allow(unused_imports))]
pub use ring::{Completion, CompletionAddr, Fill, Rx, RxDesc, Tx, TxDesc};
pub use socket::{BindMode, Xsk, XskConfig, XskStats, ZeroCopy};
pub use sys::if_index;
#[cfg_attr(not(feature = "xsk-doctests"), allow(unused_imports))]
pub use umem::{
    BadDesc, FramePool, Frames, Received, RxArea, RxFrame, RxFrames, TxArea, TxFrame, TxFrames,
    UmemConfig,
};
