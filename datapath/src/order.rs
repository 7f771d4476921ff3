//! What crosses between the control plane and a datapath thread: commands in, events
//! out, each through a bounded lock-free queue. Everything here is plain data; the one
//! heap object, an arm's rendered request, is built by the control side and moved in, so
//! the datapath allocates nothing for it.

use std::net::SocketAddrV4;
use std::sync::Arc;

/// Identifies an arm; chosen by the control plane, unique for the daemon's journal.
pub type ArmId = u64;

/// When an arm fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// On a `Fire` command.
    Manual,
    /// When the loop's clock (CLOCK_MONOTONIC, ns) reaches this instant.
    At(u64),
    /// When an event from the datapath's source number `source` matches: in the turn
    /// its last byte arrives; the fire's trigger stamp is the event's receive stamp (the
    /// clock once it was read, decrypted, parsed and matched).
    Event {
        source: usize,
        matcher: Arc<crate::event::predicate::Matcher>,
    },
}

/// An order ready to go: the exact HTTP/1.1 bytes, rendered at arm time.
#[derive(Debug, Clone)]
pub struct ArmSpec {
    pub arm: ArmId,
    /// Index of the target in the datapath's configuration.
    pub target: usize,
    pub request: Box<[u8]>,
    /// Send it over this many connections at once (a burst); 1 for a single order.
    pub conns: usize,
    pub trigger: Trigger,
}

/// Identifies a command; chosen by the control plane, echoed by the command's [`Event::Ack`].
pub type RequestId = u64;

/// Control plane → datapath. Each command carries a request id, and the datapath answers
/// each with exactly one [`Event::Ack`] for that id.
#[derive(Debug)]
#[non_exhaustive]
pub enum Command {
    Arm {
        req: RequestId,
        spec: Box<ArmSpec>,
    },
    Fire {
        req: RequestId,
        arm: ArmId,
    },
    Disarm {
        req: RequestId,
        arm: ArmId,
    },
    /// Send the target's keep-warm request on an idle ready connection and report when it
    /// left, when the answer came, and the server's `Date` (for clock-offset estimation):
    /// acknowledged when it left, answered by [`Event::Probed`] with the same id.
    Probe {
        req: RequestId,
        target: usize,
    },
    /// Measurement only: build this complete Ethernet frame into the link's reserved
    /// transmit frame, as an order's is built at arm time, and keep the path warm for it
    /// until [`Command::Raw`] sends it.
    PrepareRaw {
        req: RequestId,
        frame: Box<[u8]>,
    },
    /// Measurement only: push the prepared raw frame as it is (one Tx descriptor and a
    /// kick) — the floor a request cannot beat on this path.
    Raw {
        req: RequestId,
    },
}

impl Command {
    /// The request id the command's [`Event::Ack`] carries.
    pub fn req(&self) -> RequestId {
        match self {
            Command::Arm { req, .. }
            | Command::Fire { req, .. }
            | Command::Disarm { req, .. }
            | Command::Probe { req, .. }
            | Command::PrepareRaw { req, .. }
            | Command::Raw { req, .. } => *req,
        }
    }
}

/// What an accepted command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// The arm is held, pre-sealed on the connections it could have so far.
    Armed { conns: usize },
    /// The arm fired: `sent` requests left (its outcomes follow as [`Event::Done`]).
    Fired { sent: usize },
    /// The arm is gone, nothing sent.
    Disarmed,
    /// The probe left; its answer follows as [`Event::Probed`].
    Probing,
    /// The raw frame is built into its transmit frame, waiting for `Raw`.
    RawPrepared,
    /// The raw frame went out.
    RawSent { stamps: Stamps },
}

/// Why a fire's outcome is not an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// The connection closed or reset after the request left and before the response
    /// completed: the server may or may not have taken the order. Never retried blindly.
    ConnectionLost,
    /// No complete response within the response timeout.
    Timeout,
    /// The response could not be parsed, or TLS failed after the request left.
    BadResponse,
}

/// How one fire over one connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A complete HTTP response with this status.
    Status(u16),
    /// The request left; what happened to it is not known.
    Unknown(Unknown),
    /// Nothing was sent (no ready connection): safe to treat as not placed.
    NotSent,
}

/// The timestamps of one fire over one connection, all CLOCK_MONOTONIC ns; 0 = did not
/// happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamps {
    /// The loop turn that saw the trigger.
    pub trigger_ns: u64,
    /// After the request's Tx descriptor was pushed and the kick returned (or, on the
    /// kernel backend, after the write returned).
    pub tx_ns: u64,
    /// The turn that saw the first byte of the response.
    pub first_byte_ns: u64,
    /// The turn that saw the response complete (or gave up on it).
    pub complete_ns: u64,
    /// For scheduled fires: the deadline the trigger was meant to hit.
    pub scheduled_ns: u64,
    /// For scheduled fires: when the loop's turn before the one that saw the trigger had
    /// done its work (0 if unknown). Before the deadline, a trigger late by microseconds
    /// was late because nothing ran between that turn's end and the next turn's clock
    /// read but the loop's own few instructions: the core was away (the host took it,
    /// or an interrupt did). After it, a turn of ours was still running at the deadline
    /// (its work, or the core taken away in the middle of it).
    pub turn_before_end_ns: u64,
    /// Step profiling only (`DatapathConfig::profile_steps`), else 0: when the request
    /// had been handed to the stack (pre-sealed record committed and queued), and when
    /// the stack had pushed its Tx descriptor, just before the kick.
    pub queued_ns: u64,
    pub pushed_ns: u64,
    /// Event fires on a link that can tell (AF_XDP), else 0: when the frames that
    /// completed the event were first seen waiting in our Rx ring. Event wire → this is
    /// the receive floor; this → `trigger_ns` is our receive work (stack, TLS, parse,
    /// match).
    pub rx_ns: u64,
    /// Early retransmissions of the request made while it was in flight (the same
    /// segment, resent before the stack's own timer).
    pub retransmits: u32,
}

impl Stamps {
    /// The stamps of a fire triggered at `trigger_ns`, nothing else known yet.
    pub fn triggered(trigger_ns: u64) -> Stamps {
        Stamps {
            trigger_ns,
            ..Stamps::default()
        }
    }
}

/// One fire over one connection, complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FireRecord {
    pub arm: ArmId,
    /// Connection index within its target's pool.
    pub conn: usize,
    /// Our end of that connection (`None` when nothing was sent).
    pub local: Option<SocketAddrV4>,
    pub stamps: Stamps,
    pub outcome: Outcome,
}

/// Why the datapath refused a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reject {
    UnknownTarget,
    DuplicateArm,
    /// More connections asked for than the target's pool has.
    TooManyConns {
        asked: usize,
        pool: usize,
    },
    /// The request does not fit in one TLS record / our sealing buffer.
    RequestTooLarge,
    /// The datapath holds as many arms as it was sized for.
    TooManyArms,
    /// The datapath does not hold that arm (never armed, disarmed, or fired and closed).
    UnknownArm,
    /// The arm has fired already: it cannot fire again or be disarmed.
    AlreadyFired,
    /// A probe found no idle ready connection to the target.
    NoReadyConnection,
    /// No link of this datapath can send raw frames.
    NoRawPath,
    /// An event trigger names a source the datapath does not run.
    UnknownSource,
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reject::UnknownTarget => f.write_str("unknown target"),
            Reject::DuplicateArm => f.write_str("duplicate arm id"),
            Reject::TooManyConns { asked, pool } => {
                write!(f, "{asked} connections asked for, the pool has {pool}")
            }
            Reject::RequestTooLarge => f.write_str("the request does not fit one TLS record"),
            Reject::TooManyArms => {
                f.write_str("it holds as many arms as it can; fire or disarm some")
            }
            Reject::UnknownArm => {
                f.write_str("it does not hold that arm (already fired or disarmed)")
            }
            Reject::AlreadyFired => f.write_str("the arm has fired already"),
            Reject::NoReadyConnection => f.write_str("no idle ready connection to the target"),
            Reject::NoRawPath => f.write_str("no link can send raw frames"),
            Reject::UnknownSource => f.write_str("it runs no such event source"),
        }
    }
}

/// Datapath → control plane.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The answer to the command with id `req`: what it did, or why it was refused.
    Ack {
        req: RequestId,
        result: Result<Accepted, Reject>,
    },
    /// The request left over one connection (sent right after the kick, so the control
    /// plane can journal "fired, outcome pending" before the response).
    Sent {
        arm: ArmId,
        conn: usize,
        local: Option<SocketAddrV4>,
        stamps: Stamps,
    },
    /// The final word on one connection's share of a fire.
    Done(FireRecord),
    /// A probe's answer: the server stamped `date` (IMF-fixdate, whole seconds) at some
    /// instant between `sent_ns` and `first_byte_ns`. `status` 0 = no answer (the
    /// connection was lost).
    Probed {
        req: RequestId,
        sent_ns: u64,
        first_byte_ns: u64,
        status: u16,
        date: Option<[u8; 29]>,
    },
    /// A link's counters (see [`LinkCounters`]), reported about once a second while no
    /// order is armed.
    Counters { link: usize, counters: LinkCounters },
    /// Frames received per NIC queue by an AF_XDP link, reported with its counters (an
    /// event of its own: inside `Counters` it would double the size of every event).
    Queues {
        link: usize,
        counts: crate::device::QueueCounts,
    },
    /// A target's pool changed: connections warm (TLS up, idle or busy) of those wanted.
    Pool {
        target: usize,
        warm: usize,
        wanted: usize,
    },
    /// An event source went live or down (`message` says why when it is not transient).
    Source {
        source: usize,
        live: bool,
        message: Option<Arc<str>>,
    },
    /// A connection failed in a way the operator must see (certificate not trusted,
    /// handshake failure); `message` names the target.
    ConnError {
        target: usize,
        conn: usize,
        message: Arc<str>,
    },
}

/// What a link counts, for the operator's stats. Fields a link does not have are `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkCounters {
    /// The XDP steering program's counters (summed over CPUs).
    pub steer: Option<quickdraw_bpf::Counters>,
    /// The AF_XDP device's own counters.
    pub device: Option<crate::device::DeviceStats>,
    /// The kernel's counters for the AF_XDP socket: drops for a full Rx ring, an empty
    /// Fill ring, an empty Tx ring, and invalid descriptors.
    pub rx_ring_full: u64,
    pub fill_ring_empty: u64,
    pub tx_ring_empty: u64,
    pub rx_dropped: u64,
    pub invalid_descs: u64,
    /// Reconnections of the connections over this link (each a TCP + TLS handshake at
    /// the server), early retransmissions of requests, and tail probes for answers
    /// still owed after everything was acknowledged, since start.
    pub reconnects: u64,
    pub retransmits: u64,
    pub tail_probes: u64,
}
