//! quickdraw-lab: the lab (netns + veth + nginx behind TLS 1.3) and the probe that talks to it
//! over the kernel path. It knows nothing of the datapath: the bench, and the datapath's and
//! control's lab tests, depend on it.
//!
//! The lab: nginx behind TLS 1.3 in network namespace `qdlab`, joined to the root namespace
//! by the veth pair `qd0`/`qd1` on 198.18.0.0/24 (RFC 2544's benchmarking range).
//!
//! ```text
//!  root namespace                          namespace qdlab
//!  qd0 198.18.0.1/24 (kernel path) ─veth─ qd1 198.18.0.2/24 ── nginx :443 (TLS 1.3)
//!      198.18.0.10 (appliance, AF_XDP on qd0; on no interface: it answers ARP itself)
//! ```
//!
//! `events` is the lab's event source (an SSE server on rustls with the lab certificate at
//! 198.18.0.2:8443/events, and a UDP sender, both in `qdlab`); `events_daemon` runs one
//! standing (`bench lab up` starts it, `bench lab emit` drives it, `down` stops it first).
//!
//! `up` and `down` are idempotent and take the lab lock; `down` removes whatever exists,
//! including the remains of a half-failed `up`, and a failed `up` tears down what it made.

#![warn(missing_docs)]

mod command;
mod error;
pub mod events;
pub mod events_daemon;
mod layout;
mod lock;
pub mod loss;
mod netns;
mod nginx;
mod pki;
pub mod probe;
mod process;
mod queues;
mod session;
mod setup;
mod status;

pub use error::Error;
pub use layout::*;
pub use lock::LabLock;
pub use netns::mac_address;
pub use pki::{LabPki, Signer};
pub use probe::{Probe, ProbeReport, Request};
pub use session::LabSession;
pub use setup::{down, down_locked, status, up, up_locked};
pub use status::{LabParts, LabStatus};
