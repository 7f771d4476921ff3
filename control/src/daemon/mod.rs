//! The control daemon (`control up`): starts the datapath, pumps its events into shared
//! state, serves the control socket, and stops everything on `down` or a signal.
//!
//! Threads: the datapath (pinned, busy-polling; touched only through its two queues), the
//! event pump, the accept loop with one thread per client, the metrics endpoint, and
//! this one, which watches for the end.
//!
//! Start order: the socket first (a second daemon on it is refused before it touches
//! anything), then the journal (locked: one daemon per journal), the datapath, recovery
//! of what a crash left open, and only then clients.

mod arm_record;
mod arming;
mod caps;
mod command;
mod context;
mod error;
mod event_arm;
mod lifecycle;
mod metrics;
mod notify;
mod pump;
mod recovery;
mod render;
mod requests;
mod server;
mod socket;
mod state;
mod sync;

use crate::journal::record::Record;
use crate::journal::Journal;
use crate::protocol::ArmState;
use crate::setup::{self, Overrides};
use anyhow::Context;
use context::Daemon;
use lifecycle::ArmStep;
use quickdraw_config::Config;
use quickdraw_datapath::runner;
use ring::rand::SystemRandom;
use socket::ControlSocket;
use state::{Shared, State};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the main thread looks for a stop request or a dead datapath.
const WATCH: Duration = Duration::from_millis(50);
/// How long the main thread waits for the `down` reply to go out before exiting.
const REPLY_WAIT: Duration = Duration::from_secs(2);

/// How `control up` was asked to run.
#[derive(Debug)]
pub struct UpOptions {
    pub config: Config,
    pub socket: PathBuf,
    pub journal: PathBuf,
    /// The metrics endpoint's address; `None`: off.
    pub metrics: Option<SocketAddr>,
    pub overrides: Overrides,
}

/// Runs the daemon in the foreground until `down`, SIGINT or SIGTERM (exit 0), or until
/// the datapath thread dies (exit 1).
pub fn run(options: UpOptions) -> anyhow::Result<ExitCode> {
    let config = &options.config;
    let plan = setup::plan(config, options.overrides)?;
    // Before the datapath: a second daemon must not take the interface from the first.
    let socket = ControlSocket::bind(&options.socket)?;
    let (journal, replayed) = Journal::open(&options.journal, state::CLOSED_ARMS_KEPT)?;
    let mut journal = journal;
    let names: Vec<String> = plan.targets.iter().map(|t| t.name.clone()).collect();
    let handle = spawn_datapath(&plan.datapath)?;
    let started = &handle.started;
    tracing::info!(
        backend = started.backend, bind_mode = started.bind_mode, pinned = started.pinned,
        socket = %socket.path().display(), journal = %options.journal.display(), "control daemon up"
    );

    let mut state = State::new(started.backend, started.bind_mode, started.pinned, &names);
    state.placement = Some(placement_status(&started.placement));
    let min_lead_ns = Duration::from_millis(config.timing.min_lead_ms).as_nanos() as i64;
    let (rearm, mut journal_status) = recovery::load(
        &mut state,
        &mut journal,
        &replayed,
        &plan.targets,
        min_lead_ns,
    )
    .context("recording the recovery in the journal")?;
    let shared = Arc::new(Shared::new(state));
    let journal = Arc::new(Mutex::new(journal));
    let stop_pump = Arc::new(AtomicBool::new(false));
    let pump = pump::spawn(
        handle.events.clone(),
        shared.clone(),
        journal.clone(),
        stop_pump.clone(),
    )
    .context("starting the event pump")?;
    let daemon = Arc::new(Daemon {
        shared: shared.clone(),
        commands: handle.commands.clone(),
        targets: plan.targets,
        sources: plan.sources,
        rng: SystemRandom::new(),
        down: AtomicBool::new(false),
        journal: journal.clone(),
        timing: config.timing.clone(),
        limits: config.limits.clone(),
        allowed_uid: config
            .control
            .uid
            .unwrap_or_else(|| rustix::process::geteuid().as_raw()),
        sync_running: Mutex::new(()),
    });
    for entry in &rearm {
        match daemon.rearm(entry) {
            Ok(ArmState::Missed) => {
                let mut j = journal.lock().unwrap_or_else(|p| p.into_inner());
                shared.update(|s| recovery::mark_missed(s, &mut j, entry.arm))?;
                journal_status.missed.push(entry.arm);
            }
            Ok(_) => {
                tracing::info!(arm = entry.arm, key = %entry.key, "re-armed from the journal");
                journal_status.rearmed.push(entry.arm);
            }
            Err(e) => {
                tracing::error!(arm = entry.arm, "could not re-arm from the journal: {e}");
                let _ = daemon.journal(Record::Rejected {
                    arm: entry.arm,
                    reason: error::refusal(&e),
                });
                shared.update(|s| s.step(entry.arm, ArmStep::Refused));
            }
        }
    }
    shared.update(|s| s.journal = Some(journal_status));
    if let Some(addr) = options.metrics {
        let bound = metrics::spawn(addr, shared.clone())
            .with_context(|| format!("serving metrics on {addr}"))?;
        tracing::info!(%bound, "metrics endpoint");
        shared.update(|s| s.metrics = Some(bound.to_string()));
    }
    server::spawn(
        socket.listener.try_clone()?,
        daemon.clone(),
        config.limits.max_clients as usize,
    )
    .context("starting the control server")?;

    let signalled = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, signalled.clone())
            .context("installing signal handlers")?;
    }
    let mut notified = false;
    let datapath_died = loop {
        std::thread::sleep(WATCH);
        if !notified && shared.lock().ready() {
            notified = true;
            match notify::notify("READY=1") {
                Ok(true) => tracing::info!("pools warm: READY=1 sent to systemd"),
                Ok(false) => {}
                Err(e) => tracing::warn!("sd_notify READY=1: {e}"),
            }
        }
        if signalled.load(Ordering::Relaxed) || daemon.down.load(Ordering::Relaxed) {
            break false;
        }
        if !handle.is_running() {
            break true;
        }
    };

    let stats = handle.stop();
    stop_pump.store(true, Ordering::Relaxed);
    let _ = pump.join();
    drop(socket);
    shared.update(|s| {
        s.running = false;
        s.stopped = true;
    });
    tracing::info!(
        turns = stats.turns,
        busy_turns = stats.busy_turns,
        "datapath stopped"
    );
    if daemon.down.load(Ordering::Relaxed) {
        shared.wait_for(Instant::now() + REPLY_WAIT, |s| {
            s.down_replied.then_some(())
        });
    }
    if datapath_died {
        tracing::error!("the datapath thread stopped by itself");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// How long a start waits for the NIC queue of a crashed predecessor: the kernel
/// releases a dead process's AF_XDP socket shortly after it dies, not at once (a
/// restart right after `kill -9` finds the queue busy for a few ms).
const QUEUE_RELEASE_WAIT: Duration = Duration::from_secs(5);

const EBUSY: i32 = rustix::io::Errno::BUSY.raw_os_error();

/// Starts the datapath, retrying while its AF_XDP bind finds the queue busy (EBUSY, kept
/// from the kernel up to here).
fn spawn_datapath(config: &runner::DatapathConfig) -> anyhow::Result<runner::Handle> {
    let give_up = Instant::now() + QUEUE_RELEASE_WAIT;
    loop {
        match runner::spawn(config.clone()) {
            Ok(handle) => return Ok(handle),
            Err(e) if e.os_error() == Some(EBUSY) && Instant::now() < give_up => {
                tracing::info!(
                    "the NIC queue is still busy (a previous daemon's socket?); retrying"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(anyhow::Error::new(e).context("starting the datapath")),
        }
    }
}

#[cfg(test)]
mod tests;

/// The placement as `status` reports it (the protocol's types stay plain data, free of
/// the datapath, so its parsers can be fuzzed on their own).
fn placement_status(
    p: &quickdraw_datapath::placement::Placement,
) -> crate::protocol::PlacementStatus {
    crate::protocol::PlacementStatus {
        core: p.core,
        isolated: p.isolated,
        nohz_full: p.nohz_full,
        realtime_priority: p.realtime_priority,
        memory_locked: p.memory_locked,
        code_on_huge_pages: p.code_on_huge_pages,
        warnings: p.warnings.clone(),
    }
}
