//! The daemon's one error type: why a request was refused, or why the daemon could not
//! start. A refusal goes back to the client as its message; causes are kept as sources
//! (errnos included), never flattened into strings on the way up.

use super::lifecycle::IllegalStep;
use super::render::ArmError;
use crate::protocol::ArmState;
use crate::timing::schedule::ScheduleError;
use crate::timing::sync::SyncError;
use crate::timing::text::TimeTextError;
use quickdraw_datapath::order::{ArmId, Reject};
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// What the datapath was asked to do with an arm, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    Arm,
    Fire,
    Disarm,
}

impl Asked {
    fn verb(self) -> &'static str {
        match self {
            Asked::Arm => "arm",
            Asked::Fire => "to fire arm",
            Asked::Disarm => "to disarm arm",
        }
    }
}

/// Why the daemon refused a request or could not do it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    #[error("the datapath is not running")]
    NotRunning,
    #[error("no arm {0}")]
    NoArm(ArmId),
    #[error("arm {arm} is {}, not armed", .state.name())]
    NotArmed { arm: ArmId, state: ArmState },
    #[error("no armed order to fire")]
    NothingArmed,
    #[error("{} arms are armed ({}): say which to fire", .0.len(), list(.0))]
    WhichArm(Vec<ArmId>),
    #[error("arm {0} was forgotten while waiting")]
    Forgotten(ArmId),
    /// The datapath answered with a refusal.
    #[error("the datapath refused {} {arm}: {reason}", .asked.verb())]
    Refused {
        asked: Asked,
        arm: ArmId,
        reason: Reject,
    },
    /// A disarm found the arm fired by another client meanwhile.
    #[error("arm {0} could not be disarmed: it was fired meanwhile")]
    FiredMeanwhile(ArmId),
    #[error("no answer from the datapath within {waited:?} (arm {arm} is left {})", .state.name())]
    NoAnswer {
        arm: ArmId,
        waited: Duration,
        state: ArmState,
    },
    #[error("the datapath's command queue is full")]
    QueueFull,
    #[error(
        "cannot write the journal {path} (it is unhealthy: arms are refused until a write \
         succeeds)"
    )]
    Journal {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Order(#[from] ArmError),
    #[error("{open} arms are open (limits.max_open_arms); fire, wait for or disarm some")]
    TooManyOpen { open: usize },
    #[error(
        "target {target}: {committed} request(s) sent in the last minute or armed, and {more} \
         more would pass its max_fires_per_minute ({cap})"
    )]
    RateCap {
        target: String,
        committed: usize,
        more: usize,
        cap: usize,
    },
    #[error("--arrive applies to scheduled arms (--at or --in)")]
    ArriveUnscheduled,
    #[error("--in is too long")]
    InTooLong,
    #[error(transparent)]
    Time(#[from] TimeTextError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error("arriving on time needs the server's clock: run `control sync --target {0}` first")]
    NeverSynced(String),
    #[error(
        "the last sync of target {target} is {age_s}s old (timing.sync_valid_s = {valid_s}): \
         sync again"
    )]
    SyncStale {
        target: String,
        age_s: u64,
        valid_s: u64,
    },
    #[error("unknown target {0:?}")]
    UnknownTarget(String),
    #[error("several targets are configured: say which with --target")]
    WhichTarget,
    #[error("a sync is already running")]
    SyncRunning,
    #[error("target {0} has no warm connection to probe over")]
    NothingWarm(String),
    #[error("sync of target {target}")]
    Sync {
        target: String,
        #[source]
        source: SyncError,
    },
    #[error("target {0:?} is no longer configured")]
    TargetGone(String),
    #[error("the datapath did not stop within {0:?}")]
    DownTimeout(Duration),
    #[error(transparent)]
    Lifecycle(#[from] IllegalStep),
}

fn list(ids: &[ArmId]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The message a client is sent: the error and each cause it does not already say.
pub fn refusal(e: &DaemonError) -> String {
    let mut text = e.to_string();
    let mut next = std::error::Error::source(e);
    while let Some(cause) = next {
        let c = cause.to_string();
        if !text.contains(&c) {
            text = format!("{text}: {c}");
        }
        next = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_says_each_cause_once() {
        let e = DaemonError::Journal {
            path: "/x/journal.jsonl".into(),
            source: io::Error::from_raw_os_error(28),
        };
        let text = refusal(&e);
        assert!(
            text.starts_with("cannot write the journal /x/journal.jsonl (it is unhealthy"),
            "{text}"
        );
        assert_eq!(text.matches("os error 28").count(), 1, "{text}");
        let e = DaemonError::Refused {
            asked: Asked::Fire,
            arm: 3,
            reason: Reject::AlreadyFired,
        };
        assert_eq!(
            refusal(&e),
            "the datapath refused to fire arm 3: the arm has fired already"
        );
    }
}
