//! The control daemon (`control up`): starts the datapath, pumps its events into shared
//! state, serves the control socket, and stops everything on `down` or a signal.
//!
//! Threads: the datapath (pinned, busy-polling; touched only through its two queues), the
//! event pump, the accept loop with one thread per client, and this one, which watches
//! for the end.

mod order;
mod pump;
mod requests;
mod server;
mod socket;
mod state;

use crate::setup::{self, Overrides, TargetPlan};
use anyhow::Context;
use crossbeam_queue::ArrayQueue;
use quickdraw_config::Config;
use quickdraw_datapath::order::Command;
use quickdraw_datapath::runner;
use ring::rand::SystemRandom;
use socket::ControlSocket;
use state::{Shared, State};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the main thread looks for a stop request or a dead datapath.
const WATCH: Duration = Duration::from_millis(50);
/// How long the main thread waits for the `down` reply to go out before exiting.
const REPLY_WAIT: Duration = Duration::from_secs(2);

/// What the request handlers share.
#[derive(Debug)]
pub struct Daemon {
    shared: Arc<Shared>,
    commands: Arc<ArrayQueue<Command>>,
    targets: Vec<TargetPlan>,
    rng: SystemRandom,
    /// A client asked for `down`.
    down: AtomicBool,
}

/// How `control up` was asked to run.
#[derive(Debug)]
pub struct UpOptions {
    pub config: Config,
    pub socket: PathBuf,
    pub overrides: Overrides,
}

/// Runs the daemon in the foreground until `down`, SIGINT or SIGTERM (exit 0), or until
/// the datapath thread dies (exit 1).
pub fn run(options: UpOptions) -> anyhow::Result<ExitCode> {
    let plan = setup::plan(&options.config, options.overrides)?;
    // Before the datapath: a second daemon must not take the interface from the first.
    let socket = ControlSocket::bind(&options.socket)?;
    let names: Vec<String> = plan.targets.iter().map(|t| t.name.clone()).collect();
    let handle = runner::spawn(plan.datapath).context("starting the datapath")?;
    let started = &handle.started;
    tracing::info!(
        backend = started.backend, bind_mode = started.bind_mode, pinned = started.pinned,
        socket = %socket.path().display(), "control daemon up"
    );

    let shared = Arc::new(Shared::new(State::new(
        started.backend,
        started.bind_mode,
        started.pinned,
        &names,
    )));
    let stop_pump = Arc::new(AtomicBool::new(false));
    let pump = pump::spawn(handle.events.clone(), shared.clone(), stop_pump.clone())
        .context("starting the event pump")?;
    let daemon = Arc::new(Daemon {
        shared: shared.clone(),
        commands: handle.commands.clone(),
        targets: plan.targets,
        rng: SystemRandom::new(),
        down: AtomicBool::new(false),
    });
    server::spawn(socket.listener.try_clone()?, daemon.clone())
        .context("starting the control server")?;

    let signalled = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, signalled.clone())
            .context("installing signal handlers")?;
    }
    let datapath_died = loop {
        std::thread::sleep(WATCH);
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

#[cfg(test)]
mod tests;
