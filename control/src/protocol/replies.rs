//! The daemon's replies. Fields added since the first revision are optional with
//! defaults, so replies from an older daemon still decode.

use serde::{Deserialize, Serialize};

/// The reply to `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReply {
    /// "af_xdp" or "kernel".
    pub backend: String,
    /// "copy"/"zerocopy" (AF_XDP) or "kernel".
    pub bind_mode: String,
    pub pinned: bool,
    /// The datapath thread is alive.
    pub running: bool,
    /// Running, and every target has every wanted connection warm.
    pub ready: bool,
    pub targets: Vec<TargetStatus>,
    /// Arms not yet finished (armed, or fired with outcomes pending).
    pub arms: Vec<ArmStatus>,
    /// The journal and what the last start recovered from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<JournalStatus>,
    /// Where the Prometheus endpoint listens, if it is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
    /// Frames received per NIC queue (AF_XDP), as last reported (about once a second
    /// while nothing is armed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<super::QueueStatus>,
    /// Where the datapath thread runs, as it took effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<super::PlacementStatus>,
}

/// One target's pool as the datapath last reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetStatus {
    pub name: String,
    pub warm: usize,
    pub wanted: usize,
    /// The last connection error the datapath reported for this target.
    pub last_error: Option<String>,
    pub errors: u64,
    /// The last `control sync` of this target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncReply>,
}

/// The journal, as this daemon found and keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalStatus {
    pub path: String,
    /// Arms re-armed at start (still in the future, or manual and never fired).
    pub rearmed: Vec<u64>,
    /// Scheduled arms whose time passed while no daemon ran.
    pub missed: Vec<u64>,
    /// Arms fired (or asked to fire) before a crash, without an outcome on record.
    pub unknown: Vec<u64>,
    /// A torn last line (a crash mid-write), dropped: its length and text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torn: Option<String>,
    /// Other lines that could not be read, skipped.
    #[serde(default)]
    pub corrupt_lines: usize,
    /// Why the journal is unhealthy: its last append failed (cut back to the last good
    /// line). New arms are refused until an append succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy: Option<String>,
}

/// Where an arm stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArmState {
    /// Sent to the datapath, not yet acknowledged.
    Pending,
    Armed,
    /// Fired; outcomes still arriving.
    Fired,
    /// Every outcome is in.
    Done,
    Rejected,
    Disarmed,
    /// Scheduled, and its time passed while no daemon ran.
    Missed,
}

impl ArmState {
    /// Still holds the datapath's attention.
    pub fn is_open(self) -> bool {
        matches!(self, ArmState::Pending | ArmState::Armed | ArmState::Fired)
    }

    pub fn name(self) -> &'static str {
        match self {
            ArmState::Pending => "pending",
            ArmState::Armed => "armed",
            ArmState::Fired => "fired",
            ArmState::Done => "done",
            ArmState::Rejected => "rejected",
            ArmState::Disarmed => "disarmed",
            ArmState::Missed => "missed",
        }
    }
}

/// When a scheduled arm fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleView {
    /// The instant asked for (RFC 3339 UTC, µs).
    pub at: String,
    /// The instant the trigger is set for on our clock (`at` − correction).
    pub fire_at: String,
    /// `fire_at` on CLOCK_MONOTONIC (ns): what the datapath compares its clock with.
    pub deadline_ns: u64,
    /// Server clock offset + one-way latency taken off (`--arrive`), ns.
    pub correction_ns: i64,
}

/// One arm, as `status` and `arms` list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmStatus {
    pub arm: u64,
    pub sku: String,
    pub qty: u32,
    pub key: String,
    pub target: String,
    pub conns: usize,
    pub state: ArmState,
    pub outcomes: usize,
    /// Scheduled arms only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled: Option<ScheduleView>,
    /// Scheduled fires: trigger − scheduled deadline, ns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_ns: Option<i64>,
    /// What a restart did with this arm: "rearmed", "missed" or "unknown".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<String>,
}

/// The reply to `arms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmsReply {
    pub arms: Vec<ArmStatus>,
}

/// The reply to `arm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmReply {
    pub arm: u64,
    /// The Idempotency-Key the request carries.
    pub key: String,
    pub target: String,
    pub conns: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled: Option<ScheduleView>,
}

/// The reply to `fire` and `wait`: one outcome per connection asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FireReply {
    pub arm: u64,
    pub key: String,
    /// Outcomes expected (the arm's conns).
    pub expected: usize,
    /// All expected outcomes arrived before the daemon stopped waiting.
    pub complete: bool,
    pub outcomes: Vec<FireOutcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ArmState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled: Option<ScheduleView>,
    /// Scheduled fires: trigger − scheduled deadline, ns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_ns: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<String>,
}

/// How one connection's share of a fire ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FireOutcome {
    /// Connection index in the target's pool; `None` when nothing was sent.
    pub conn: Option<usize>,
    /// "status", "unknown" or "not_sent".
    pub result: String,
    /// The HTTP status, when `result` is "status".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why the outcome is unknown ("connection_lost", "timeout", "bad_response", or
    /// "daemon_restart": the daemon stopped between the send and the answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
    pub stamps: StampsView,
}

/// CLOCK_MONOTONIC nanoseconds; 0 = did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StampsView {
    pub trigger_ns: u64,
    pub tx_ns: u64,
    pub first_byte_ns: u64,
    pub complete_ns: u64,
    pub scheduled_ns: u64,
}

impl StampsView {
    /// trigger − scheduled, for a scheduled fire.
    pub fn error_ns(&self) -> Option<i64> {
        (self.scheduled_ns > 0 && self.trigger_ns > 0)
            .then(|| self.trigger_ns as i64 - self.scheduled_ns as i64)
    }
}

/// The reply to `disarm` and `down`: which arm (if any) it was about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Done {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm: Option<u64>,
}

/// The reply to `disarm_all`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DisarmedAll {
    pub disarmed: Vec<u64>,
    /// Arms that fired (or were fired) before their disarm reached the datapath.
    pub failed: Vec<u64>,
}

/// The reply to `sync`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReply {
    pub target: String,
    /// Server clock minus ours.
    pub offset_ns: i64,
    /// ± this.
    pub uncertainty_ns: i64,
    /// Best round trip (send → first byte of the answer).
    pub rtt_ns: i64,
    /// One-way latency estimate (half the best round trip).
    pub one_way_ns: i64,
    /// Width of the final bracket on the server's second tick.
    pub resolution_ns: i64,
    pub probes: u32,
    pub failed: u32,
    pub elapsed_ns: i64,
    /// When it was measured (RFC 3339 UTC).
    pub at: String,
}

/// The reply to `stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsReply {
    pub backend: String,
    pub counters: OrderCounters,
    /// One entry per metric (trigger_to_tx, trigger_to_first_byte, trigger_to_complete,
    /// schedule_error), for this daemon's backend.
    pub latency: Vec<LatencyView>,
    /// The steering program's and the AF_XDP rings' counters (AF_XDP backend), as last
    /// reported by the datapath; `None` before the first report.
    #[serde(default)]
    pub xdp: Option<XdpCounters>,
}

/// What happened since the daemon started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OrderCounters {
    /// Arms accepted.
    pub arms: u64,
    /// Arms fired (manually or on schedule); a burst is one fire.
    pub fires: u64,
    /// Scheduled fires among them.
    pub scheduled_fires: u64,
    /// Event-triggered fires among them (`--on`).
    #[serde(default)]
    pub event_fires: u64,
    /// Requests that left (a burst of K counts K).
    pub requests: u64,
    /// Outcomes with a 2xx status.
    pub ok: u64,
    /// Outcomes with any other status.
    pub non_2xx: u64,
    /// Outcomes unknown (connection lost, timeout, bad response, daemon restart).
    pub unknown: u64,
    /// Shares of a fire that found no ready connection.
    pub not_sent: u64,
    /// Scheduled arms missed while no daemon ran.
    pub missed: u64,
    /// Connections that dropped out of a warm pool (each is reconnected).
    pub reconnects: u64,
    /// Connection errors the datapath reported (certificate, handshake).
    pub conn_errors: u64,
}

/// Steering and ring counters (see [`StatsReply::xdp`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct XdpCounters {
    /// Frames the XDP program steered to our socket, passed to the kernel, and found
    /// malformed (those are passed too).
    pub steered: u64,
    pub passed: u64,
    pub malformed: u64,
    /// Frames our socket received and dropped as malformed (bad checksum, truncated).
    pub rx_malformed: u64,
    /// The kernel's socket counters: frames dropped for a full Rx ring, receives that
    /// found the Fill ring empty, sends that found the Tx ring empty.
    pub rx_ring_full: u64,
    pub fill_ring_empty: u64,
    pub tx_ring_empty: u64,
    /// Frames our stack emitted with no free Tx frame (TCP retransmits them).
    pub tx_dropped: u64,
    /// Tx kicks (sendto) made.
    pub kicks: u64,
    /// ARP that would have changed a pinned neighbour's MAC (poisoning): dropped.
    #[serde(default)]
    pub arp_pin_conflicts: u64,
    /// ARP from addresses not pinned, kept from the neighbour cache.
    #[serde(default)]
    pub arp_strangers: u64,
    /// ARP requests for our address answered.
    #[serde(default)]
    pub arp_answered: u64,
    /// Neighbours pinned from their first ARP reply.
    #[serde(default)]
    pub arp_learned: u64,
    /// Self-addressed warm frames sent while armed (they reach no one).
    #[serde(default)]
    pub warm_frames: u64,
    /// Of those, sent from the spare half of an armed order's own UMEM frame.
    #[serde(default)]
    pub warm_frames_beside: u64,
    /// Orders (and floor frames) sent as their frame built before the trigger.
    #[serde(default)]
    pub tx_prebuilt: u64,
    /// Early retransmissions of requests, and reconnections (TCP + TLS handshakes).
    #[serde(default)]
    pub retransmits: u64,
    #[serde(default)]
    pub reconnects: u64,
    /// Keep-alive probes for answers still owed after the request was acknowledged.
    #[serde(default)]
    pub tail_probes: u64,
}

/// Percentiles of one metric, in ns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyView {
    pub metric: String,
    pub backend: String,
    pub count: u64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
    pub mean_ns: f64,
}
