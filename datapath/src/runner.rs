//! Starting and stopping a datapath thread: it is pinned to its core, builds its backend
//! on that thread (the AF_XDP socket, UMEM and BPF objects never cross threads), then
//! busy-polls the [`Appliance`] until stopped. The control plane keeps a [`Handle`]: the
//! two queues and the stop flag.

use crate::appliance::Appliance;
use crate::clock::monotonic_ns;
use crate::link::kernel::KernelLink;
use crate::link::xdp::XdpLink;
use crate::link::{AnyLink, Link};
use crate::order::{Command, Event};
use crate::placement::{Placement, Scheduling};
use crate::poll::{self, Idle, LoopStats, Stop};
use crate::target::TargetSpec;
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
    /// SCHED_FIFO and memory locking (see [`crate::placement`]).
    pub scheduling: Scheduling,
    pub targets: Vec<TargetSpec>,
    /// Most arms held at once.
    pub max_arms: usize,
    /// Capacity of each queue.
    pub queue_len: usize,
    /// Spin when idle (the production mode: the core stays hot) or rest briefly.
    pub idle: Idle,
    /// Step profiling of fires (two extra clock reads per fire): for the bench only.
    pub profile_steps: bool,
    /// How the send path is kept warm while an order is armed.
    pub warming: crate::warming::Warming,
    /// Event sources, each with the link that carries it (0 = `backend`); arms name
    /// them by their position here.
    pub sources: Vec<(crate::event::source::SourceSpec, usize)>,
}

/// What the running thread reports about itself at start.
#[derive(Debug, Clone)]
pub struct Started {
    pub backend: &'static str,
    pub bind_mode: &'static str,
    pub pinned: bool,
    /// Core, isolation, scheduling and memory locking as they took effect.
    pub placement: Placement,
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
    let target_link = vec![0; config.targets.len()];
    spawn_links(config, Vec::new(), target_link)
}

/// Starts one datapath thread running several backends side by side: `config.backend`
/// is link 0, `more[i]` is link `i + 1`, and target `t` goes over link `target_link[t]`.
/// The bench uses it to compare backends fire by fire on the same core.
pub fn spawn_links(
    config: DatapathConfig,
    more: Vec<BackendConfig>,
    target_link: Vec<usize>,
) -> Result<Handle, Error> {
    let commands = Arc::new(ArrayQueue::new(config.queue_len));
    let events = Arc::new(ArrayQueue::new(config.queue_len));
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel::<Result<Started, Error>>();
    let (c, e, s) = (commands.clone(), events.clone(), stop.clone());
    let thread = std::thread::Builder::new()
        .name("quickdraw-datapath".into())
        .spawn(move || {
            let placement = crate::placement::apply(config.core, config.scheduling);
            let pinned = placement.core.is_some();
            let backends: Vec<BackendConfig> = std::iter::once(config.backend.clone())
                .chain(more)
                .collect();
            let mut links = Vec::with_capacity(backends.len());
            for backend in &backends {
                match start_link(backend, &config, &target_link, links.len()) {
                    Ok(link) => links.push(link),
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                        return LoopStats::default();
                    }
                }
            }
            let started = Started {
                backend: links[0].backend(),
                bind_mode: links[0].bind_mode(),
                pinned,
                placement,
            };
            let mut appliance = Appliance::with_links(
                links,
                target_link,
                config.targets.clone(),
                config.max_arms,
                c,
                e,
            );
            appliance.profile = config.profile_steps;
            appliance.warming = config.warming;
            for (source, link) in &config.sources {
                appliance.add_source(source.clone(), *link);
            }
            let _ = ready_tx.send(Ok(started));
            poll::run(
                &mut appliance,
                monotonic_ns,
                config.idle,
                Stop {
                    flag: &s,
                    deadline_ns: None,
                },
            )
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

/// Brings up link number `index` on the datapath thread.
fn start_link(
    backend: &BackendConfig,
    config: &DatapathConfig,
    target_link: &[usize],
    index: usize,
) -> Result<AnyLink, Error> {
    Ok(match backend {
        BackendConfig::AfXdp(engine_config) => {
            AnyLink::Xdp(XdpLink::new(Engine::start(engine_config, monotonic_ns())?))
        }
        BackendConfig::Kernel { interface } => {
            // Room for every connection of its targets, twice over: a closing socket
            // keeps its slot until the kernel is done with it.
            let slots = config
                .targets
                .iter()
                .zip(target_link)
                .filter(|(_, &l)| l == index)
                .map(|(t, _)| t.connections * 2)
                .sum();
            AnyLink::Kernel(KernelLink::new(interface.clone(), slots))
        }
    })
}
