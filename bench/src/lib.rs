//! quickdraw-bench: end-to-end measurement runs in the lab (the lab itself is `quickdraw-lab`).
//!
//! `measure` matches fires to the wire timestamps taken on the lab's peer and sums them up;
//! `run` drives the backends side by side. The `bench` binary is a thin clap layer on top
//! (`src/cli/`).

#![warn(missing_docs)]

pub mod measure;
pub mod run;
