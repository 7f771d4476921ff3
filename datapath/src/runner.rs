//! Starting and stopping a datapath thread: it is pinned to its core, builds its backend
//! on that thread (the AF_XDP socket, UMEM and BPF objects never cross threads), then
//! busy-polls the [`Appliance`] until stopped. The control plane keeps a [`Handle`]: the
//! two queues and the stop flag.

use crate::appliance::{Appliance, TargetSpec};
use crate::clock::monotonic_ns;
use crate::link::kernel::KernelLink;
use crate::link::xdp::XdpLink;
use crate::link::Link;
use crate::order::{Command, Event};
use crate::poll::{self, Idle, LoopStats, Stop};
use crate::{Engine, EngineConfig, Error};
use crossbeam_queue::ArrayQueue;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

/// Which stack carries the connections.
#[derive(Debug, Clone)]
pub enum BackendConfig {
    /// Our own TCP over AF_XDP.
    AfXdp(EngineConfig),
    /// The kernel's TCP, sockets bound to this interface (if any).
    Kernel { interface: Option<String> },
}

/// Everything a datapath thread needs.
#[derive(Debug, Clone)]
pub struct DatapathConfig {
    pub backend: BackendConfig,
    /// Core to pin to; `None` runs unpinned (tests on a busy machine).
    pub core: Option<usize>,
    pub targets: Vec<TargetSpec>,
    /// Most arms held at once.
    pub max_arms: usize,
    /// Capacity of each queue.
    pub queue_len: usize,
    /// Spin when idle (the production mode: the core stays hot) or rest briefly.
    pub idle: Idle,
}

/// What the running thread reports about itself at start.
#[derive(Debug, Clone)]
pub struct Started {
    pub backend: &'static str,
    pub bind_mode: &'static str,
    pub pinned: bool,
}

/// The control plane's side of a running datapath thread.
#[derive(Debug)]
pub struct Handle {
    pub commands: Arc<ArrayQueue<Command>>,
    pub events: Arc<ArrayQueue<Event>>,
    pub started: Started,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<LoopStats>>,
}

impl Handle {
    /// Asks the thread to stop at the end of its turn and waits for it.
    pub fn stop(mut self) -> LoopStats {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> LoopStats {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Whether the thread is still running.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Starts a datapath thread and waits until its backend is up (or failed to come up).
pub fn spawn(config: DatapathConfig) -> Result<Handle, Error> {
    let commands = Arc::new(ArrayQueue::new(config.queue_len));
    let events = Arc::new(ArrayQueue::new(config.queue_len));
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel::<Result<Started, Error>>();
    let (c, e, s) = (commands.clone(), events.clone(), stop.clone());
    let thread = std::thread::Builder::new()
        .name("quickdraw-datapath".into())
        .spawn(move || {
            let pinned = config.core.is_some_and(poll::pin_to_core);
            if let Some(core) = config.core.filter(|_| !pinned) {
                tracing::warn!(core, "could not pin the datapath thread; running unpinned");
            }
            match config.backend.clone() {
                BackendConfig::AfXdp(engine_config) => {
                    match Engine::start(&engine_config, monotonic_ns()) {
                        Ok(engine) => {
                            run(XdpLink::new(engine), &config, pinned, c, e, &s, ready_tx)
                        }
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                            LoopStats::default()
                        }
                    }
                }
                BackendConfig::Kernel { interface } => {
                    let slots = config.targets.iter().map(|t| t.connections * 2).sum();
                    run(
                        KernelLink::new(interface, slots),
                        &config,
                        pinned,
                        c,
                        e,
                        &s,
                        ready_tx,
                    )
                }
            }
        })
        .map_err(|e| Error::Thread(e.to_string()))?;
    match ready_rx.recv() {
        Ok(Ok(started)) => Ok(Handle {
            commands,
            events,
            started,
            stop,
            thread: Some(thread),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(Error::Thread("it exited during start-up".into()))
        }
    }
}

fn run<L: Link>(
    link: L,
    config: &DatapathConfig,
    pinned: bool,
    commands: Arc<ArrayQueue<Command>>,
    events: Arc<ArrayQueue<Event>>,
    stop: &AtomicBool,
    ready: mpsc::Sender<Result<Started, Error>>,
) -> LoopStats {
    let started = Started {
        backend: link.backend(),
        bind_mode: link.bind_mode(),
        pinned,
    };
    let mut appliance = Appliance::new(
        link,
        config.targets.clone(),
        config.max_arms,
        commands,
        events,
    );
    let _ = ready.send(Ok(started));
    poll::run(
        &mut appliance,
        monotonic_ns,
        config.idle,
        Stop {
            flag: stop,
            deadline_ns: None,
        },
    )
}
