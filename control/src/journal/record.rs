//! One journal line: a JSON object with `"rec"` naming what happened and `"t"` when it
//! was written (UTC ns). Written before the fact it records can be lost: an arm before
//! the datapath holds it, a manual fire or a disarm before the command goes, a send as
//! soon as the datapath reports it, an outcome as soon as it is known.

use crate::protocol::{FireOutcome, StampsView};
use serde::{Deserialize, Serialize};

/// A journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// When it was written: UTC ns.
    pub t: i64,
    #[serde(flatten)]
    pub record: Record,
}

/// What a line records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rec", rename_all = "snake_case")]
pub enum Record {
    /// A daemon started on this journal.
    Up { pid: u32, backend: String },
    /// An order was accepted for arming (journaled before the datapath gets it).
    Arm(ArmEntry),
    /// The datapath refused the arm: it never held it.
    Rejected { arm: u64, reason: String },
    /// A manual fire was asked for (journaled before the command goes).
    Fire { arm: u64 },
    /// A disarm was asked for (journaled before the command goes).
    Disarm { arm: u64 },
    /// The datapath dropped the arm.
    Disarmed { arm: u64 },
    /// The disarm came too late: the arm had fired.
    DisarmFailed { arm: u64 },
    /// A request left over one connection; its outcome follows.
    Sent {
        arm: u64,
        conn: usize,
        stamps: StampsView,
    },
    /// One connection's share of a fire ended.
    Outcome {
        arm: u64,
        #[serde(flatten)]
        outcome: FireOutcome,
    },
    /// What a restart made of an arm: "rearmed", "missed" or "unknown".
    Recovered { arm: u64, how: String },
    /// A torn last line found at start (a crash mid-write), dropped.
    Torn { bytes: usize, text: String },
}

/// An arm as journaled: enough to render the same request again (same key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmEntry {
    pub arm: u64,
    pub key: String,
    pub sku: String,
    pub qty: u32,
    pub target: String,
    pub conns: usize,
    /// Scheduled arms: when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<ScheduledEntry>,
    /// Event arms: `SOURCE:PREDICATE`, as given (a restart compiles it again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<String>,
}

/// A scheduled arm's instants, on the realtime clock (a restart may be after a reboot,
/// where monotonic deadlines mean nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledEntry {
    /// The instant asked for, UTC ns.
    pub at_ns: i64,
    /// The instant the trigger is set for on our clock, UTC ns (`at_ns` − correction).
    pub fire_ns: i64,
    pub correction_ns: i64,
}
