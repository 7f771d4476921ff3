//! What every request handler works with: the shared state, the datapath's command queue,
//! the journal, the targets and the limits. The handlers themselves are in `requests.rs`,
//! `arming.rs` and `sync.rs`; they call each other only through `command.rs`.

use super::state::Shared;
use crate::journal::Journal;
use crate::setup::TargetPlan;
use crossbeam_queue::ArrayQueue;
use quickdraw_config::{Limits, Timing};
use quickdraw_datapath::order::Command;
use ring::rand::SystemRandom;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

/// What the request handlers share.
#[derive(Debug)]
pub struct Daemon {
    pub(super) shared: Arc<Shared>,
    pub(super) commands: Arc<ArrayQueue<Command>>,
    pub(super) targets: Vec<TargetPlan>,
    /// Event sources' names, by datapath source index.
    pub(super) sources: Vec<String>,
    pub(super) rng: SystemRandom,
    /// A client asked for `down`.
    pub(super) down: AtomicBool,
    pub(super) journal: Arc<Mutex<Journal>>,
    pub(super) timing: Timing,
    pub(super) limits: Limits,
    /// Besides root, the one uid the socket serves.
    pub(super) allowed_uid: u32,
    pub(super) sync_running: Mutex<()>,
}
