//! Walks a plan against a running datapath: arm, wait out the gap with the order armed,
//! fire, collect the outcome. One datapath thread carries every backend (links side by
//! side), so they share a core and its caches the same way.

use super::plan::{Backend, Step};
use anyhow::{bail, Context};
use quickdraw_datapath::http::{Placeholders, RequestTemplate};
use quickdraw_datapath::order::{
    Accepted, ArmSpec, Command, Event, Outcome, Stamps, Trigger, Unknown,
};
use quickdraw_datapath::runner::Handle;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

/// How a fire ended, as the datapath saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FireOutcome {
    /// A complete HTTP response with this status.
    Status(u16),
    /// The request left; no complete response within the response timeout.
    Timeout,
    /// The request left; the connection closed or reset before the response completed.
    ConnectionLost,
    /// The request left; the response could not be parsed, or TLS failed.
    BadResponse,
    /// Nothing was sent.
    NotSent,
    /// The floor's frame was pushed.
    Sent,
}

impl FireOutcome {
    /// The outcome's name in reports: `status_201`, `timeout`, `connection_lost`,
    /// `bad_response`, `not_sent`, `sent`.
    pub fn name(self) -> String {
        match self {
            FireOutcome::Status(code) => format!("status_{code}"),
            FireOutcome::Timeout => "timeout".into(),
            FireOutcome::ConnectionLost => "connection_lost".into(),
            FireOutcome::BadResponse => "bad_response".into(),
            FireOutcome::NotSent => "not_sent".into(),
            FireOutcome::Sent => "sent".into(),
        }
    }
}

impl From<Outcome> for FireOutcome {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Status(code) => FireOutcome::Status(code),
            Outcome::Unknown(Unknown::Timeout) => FireOutcome::Timeout,
            Outcome::Unknown(Unknown::ConnectionLost) => FireOutcome::ConnectionLost,
            Outcome::Unknown(Unknown::BadResponse) => FireOutcome::BadResponse,
            Outcome::NotSent => FireOutcome::NotSent,
        }
    }
}

/// One fire over one connection, as the datapath saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub backend: Backend,
    pub warm_up: bool,
    /// Which of the run's gaps (`--gaps`) the fire belongs to, and the gap it actually
    /// waited (jittered).
    pub gap_index: usize,
    pub gap: Duration,
    /// The arm (orders; its Idempotency-Key is `bench-<run id>-<arm>`) or raw frame id.
    pub arm: u64,
    pub outcome: FireOutcome,
    /// Our end and the server's end of the connection (the floor: of its frame).
    pub local: Option<SocketAddrV4>,
    pub remote: SocketAddrV4,
    pub trigger_ns: u64,
    pub tx_ns: u64,
    /// 0 for the floor (no response) and for fires without one.
    pub first_byte_ns: u64,
    pub scheduled_ns: u64,
    /// Scheduled fires: when the datapath's turn before the trigger's was done (0 unknown).
    pub turn_before_end_ns: u64,
    /// Step profiling (0 unless on): request handed to the stack; Tx descriptor pushed.
    pub queued_ns: u64,
    pub pushed_ns: u64,
    /// Early retransmissions the appliance made of this request.
    pub retransmits: u32,
    /// HTTP status; `None` = unknown or not sent (the floor: `Some(0)` when it went out).
    pub status: Option<u16>,
}

/// How a fire is triggered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A `Fire` command after the gap.
    Manual,
    /// A deadline one gap ahead, armed in advance (the scheduled-fire accuracy run).
    Scheduled,
}

/// What the driver needs to know about the run's setup.
#[derive(Debug)]
pub struct Setup {
    /// Datapath target index of each request backend.
    pub af_xdp_target: usize,
    pub kernel_target: usize,
    pub template: RequestTemplate,
    pub host: String,
    pub remote: SocketAddrV4,
    pub burst: usize,
    /// The floor's frames: MACs, ends and payload size (a request record's).
    pub floor_macs: ([u8; 6], [u8; 6]),
    pub floor_local: SocketAddrV4,
    pub floor_remote: SocketAddrV4,
    pub floor_payload: usize,
}

/// Drives fires and collects samples.
#[derive(Debug)]
pub struct Driver<'a> {
    handle: &'a Handle,
    setup: Setup,
    run_id: u64,
    next_id: u64,
    /// The floor's next TCP sequence number: its frames form a stream, as a request's
    /// would, so the matcher never takes one for a retransmission of the last.
    floor_seq: u32,
}

const EVENT_WAIT: Duration = Duration::from_secs(10);

impl<'a> Driver<'a> {
    pub fn new(handle: &'a Handle, setup: Setup, run_id: u64) -> Driver<'a> {
        Driver {
            handle,
            setup,
            run_id,
            next_id: 1,
            floor_seq: 1,
        }
    }

    /// The Idempotency-Key of order `arm` in this run.
    pub fn idempotency_key(run_id: u64, arm: u64) -> String {
        format!("bench-{run_id:x}-{arm}")
    }

    /// This run's id (in every Idempotency-Key).
    pub fn run_id(&self) -> u64 {
        self.run_id
    }

    /// Waits until every target's pool is fully warm.
    pub fn wait_warm(&self, targets: usize, limit: Duration) -> anyhow::Result<()> {
        let mut warm = vec![false; targets];
        let deadline = Instant::now() + limit;
        while !warm.iter().all(|&w| w) {
            if Instant::now() > deadline {
                bail!("pools not warm within {limit:?} (warm: {warm:?})");
            }
            match self.handle.events.pop() {
                Some(Event::Pool {
                    target,
                    warm: w,
                    wanted,
                }) if target < targets => warm[target] = w == wanted,
                Some(Event::ConnError { message, .. }) => {
                    bail!("connection error while warming: {message}")
                }
                Some(_) => {}
                None => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        Ok(())
    }

    /// Makes one planned fire; returns a sample per connection it went over.
    pub fn step(&mut self, step: &Step, mode: Mode) -> anyhow::Result<Vec<Sample>> {
        match step.backend {
            Backend::Floor => self.floor(step),
            Backend::AfXdp => self.order(step, self.setup.af_xdp_target, mode),
            Backend::Kernel => self.order(step, self.setup.kernel_target, mode),
        }
    }

    fn order(&mut self, step: &Step, target: usize, mode: Mode) -> anyhow::Result<Vec<Sample>> {
        let arm = self.next_id;
        self.next_id += 1;
        let key = Self::idempotency_key(self.run_id, arm);
        let p = Placeholders {
            sku: "1001",
            qty: 1,
            idempotency_key: &key,
        };
        let request = self
            .setup
            .template
            .render(&self.setup.host, self.setup.remote.port(), &p)?;
        let trigger = match mode {
            Mode::Manual => Trigger::Manual,
            Mode::Scheduled => {
                Trigger::At(quickdraw_datapath::clock::monotonic_ns() + step.gap.as_nanos() as u64)
            }
        };
        let spec = ArmSpec {
            arm,
            target,
            request: request.into_boxed_slice(),
            conns: self.setup.burst,
            trigger,
        };
        self.push(Command::Arm {
            req: arm,
            spec: Box::new(spec),
        })?;
        self.wait(|e| match e {
            Event::Ack { req, result } if *req == arm => Some(
                result
                    .map(|_| ())
                    .map_err(|reason| anyhow::anyhow!("arm refused: {reason}")),
            ),
            _ => None,
        })??;
        if mode == Mode::Manual {
            let req = self.next_id;
            self.next_id += 1;
            std::thread::sleep(step.gap);
            self.push(Command::Fire { req, arm })?;
        }
        let mut samples = Vec::with_capacity(self.setup.burst);
        while samples.len() < self.setup.burst {
            let record = self.wait(|e| match e {
                Event::Done(r) if r.arm == arm => Some(*r),
                _ => None,
            })?;
            samples.push(Sample {
                backend: step.backend,
                warm_up: step.warm_up,
                gap_index: 0,
                gap: step.gap,
                arm,
                outcome: record.outcome.into(),
                local: record.local,
                remote: self.setup.remote,
                trigger_ns: record.stamps.trigger_ns,
                tx_ns: record.stamps.tx_ns,
                first_byte_ns: record.stamps.first_byte_ns,
                scheduled_ns: record.stamps.scheduled_ns,
                turn_before_end_ns: record.stamps.turn_before_end_ns,
                queued_ns: record.stamps.queued_ns,
                pushed_ns: record.stamps.pushed_ns,
                retransmits: record.stamps.retransmits,
                status: match record.outcome {
                    Outcome::Status(s) => Some(s),
                    _ => None,
                },
            });
        }
        Ok(samples)
    }

    fn floor(&mut self, step: &Step) -> anyhow::Result<Vec<Sample>> {
        let id = self.next_id;
        self.next_id += 1;
        let s = &self.setup;
        let (src, dst) = s.floor_macs;
        let frame = super::floor::frame(
            src,
            dst,
            s.floor_local,
            s.floor_remote,
            self.floor_seq,
            s.floor_payload,
        );
        self.floor_seq = self.floor_seq.wrapping_add(s.floor_payload as u32);
        // Prepared like an order: built into its transmit frame before the gap (and kept
        // warm through it); the fire only pushes it.
        let prepare = self.next_id;
        self.next_id += 1;
        self.push(Command::PrepareRaw {
            req: prepare,
            frame: frame.into_boxed_slice(),
        })?;
        self.wait(|e| match e {
            Event::Ack { req, result } if *req == prepare => Some(result.is_ok()),
            _ => None,
        })?;
        std::thread::sleep(step.gap);
        self.push(Command::Raw { req: id })?;
        let (sent, stamps) = self.wait(|e| match e {
            Event::Ack { req, result } if *req == id => Some(match result {
                Ok(Accepted::RawSent { stamps }) => (true, *stamps),
                _ => (false, Stamps::default()),
            }),
            _ => None,
        })?;
        Ok(vec![Sample {
            backend: Backend::Floor,
            warm_up: step.warm_up,
            gap_index: 0,
            gap: step.gap,
            arm: id,
            outcome: if sent {
                FireOutcome::Sent
            } else {
                FireOutcome::NotSent
            },
            local: Some(self.setup.floor_local),
            remote: self.setup.floor_remote,
            trigger_ns: stamps.trigger_ns,
            tx_ns: stamps.tx_ns,
            first_byte_ns: 0,
            scheduled_ns: 0,
            turn_before_end_ns: 0,
            queued_ns: 0,
            pushed_ns: 0,
            retransmits: 0,
            status: sent.then_some(0),
        }])
    }

    fn push(&self, command: Command) -> anyhow::Result<()> {
        self.handle
            .commands
            .push(command)
            .map_err(|_| anyhow::anyhow!("datapath command queue full"))
    }

    /// Pops events until `want` picks one (others are skipped), bounded.
    fn wait<T>(&self, mut want: impl FnMut(&Event) -> Option<T>) -> anyhow::Result<T> {
        let deadline = Instant::now() + EVENT_WAIT;
        loop {
            match self.handle.events.pop() {
                Some(e) => {
                    if let Some(t) = want(&e) {
                        return Ok(t);
                    }
                }
                None if Instant::now() > deadline => {
                    return Err(anyhow::anyhow!(
                        "no answer from the datapath within {EVENT_WAIT:?}"
                    ))
                    .context("is the datapath thread still running?");
                }
                // Rest: the datapath's stamps do not depend on how fast we look, and a
                // spinning bench would take core 0 from nginx and the kernel.
                None => std::thread::sleep(Duration::from_micros(100)),
            }
        }
    }
}
