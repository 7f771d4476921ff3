//! quickdraw-bench: the lab (netns + veth + nginx behind TLS 1.3) and the probes that use it.
//!
//! `lab` builds, reports and tears down the lab; `probe` talks to it over the kernel path;
//! `measure` matches fires to the wire timestamps taken on the lab's peer and sums them up.
//! The types most callers need are re-exported here. The `bench` binary is a thin clap layer
//! on top (`src/cli/`).

#![warn(missing_docs)]

mod error;
pub mod lab;
pub mod measure;
pub mod probe;
pub mod run;

pub use error::Error;
pub use lab::{LabLock, LabOptions, LabPaths, LabSession, LabStatus};
pub use probe::{Probe, ProbeReport, Request};
