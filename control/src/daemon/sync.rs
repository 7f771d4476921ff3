//! `control sync` on the daemon side: the clock-offset estimator
//! ([`crate::timing::sync`]) driven through the datapath's `Probe` command, which sends
//! a target's keep-warm request on an idle warm connection and reports when it left,
//! when the answer began, and the server's `Date`. One sync at a time.

use super::context::Daemon;
use super::error::DaemonError;
use crate::protocol::SyncReply;
use crate::timing::clock::{monotonic_ns, ClockPair, UnixNs};
use crate::timing::sync::{self, Prober, Sample, SyncLimits};
use crate::timing::text::{format_utc, parse_http_date};
use quickdraw_datapath::order::Command;
use std::time::{Duration, Instant};

/// A probe unanswered after this long counts as lost.
const PROBE_WAIT: Duration = Duration::from_secs(1);
/// A sleep wakes up to ~100 µs late here: the last stretch before a probe's send time is
/// spun instead, so probes leave when the search asked.
const SPIN_NS: u64 = 300_000;

/// Probes over the datapath, on our realtime clock as it read when the sync began: one
/// realtime/monotonic pair for the whole sync, so a clock step during it cannot tear
/// the samples apart.
struct DatapathProber<'a> {
    daemon: &'a Daemon,
    target: usize,
    pair: ClockPair,
}

impl Prober for DatapathProber<'_> {
    fn now(&mut self) -> UnixNs {
        self.pair.real_of(monotonic_ns())
    }

    fn probe(&mut self, at: UnixNs) -> Option<Sample> {
        let send_at = self.pair.mono_of(at);
        let wait = send_at.saturating_sub(monotonic_ns());
        if wait > SPIN_NS {
            std::thread::sleep(Duration::from_nanos(wait - SPIN_NS));
        }
        while monotonic_ns() < send_at {
            std::hint::spin_loop();
        }
        let target = self.target;
        let deadline = Instant::now() + PROBE_WAIT;
        let (req, ack) = self
            .daemon
            .probe(deadline, |req| Command::Probe { req, target })
            .ok()?;
        let answer = match ack {
            Some(Ok(_)) => self
                .daemon
                .shared
                .wait_for(deadline, |s| s.probes.get(&req).copied()),
            _ => None,
        };
        self.daemon.shared.update(|s| s.probes.remove(&req));
        let a = answer?;
        if a.status == 0 || a.first_byte_ns < a.sent_ns {
            return None;
        }
        Some(Sample {
            sent_ns: self.pair.real_of(a.sent_ns),
            first_byte_ns: self.pair.real_of(a.first_byte_ns),
            date_s: parse_http_date(&a.date?)?,
        })
    }
}

impl Daemon {
    pub(super) fn sync(&self, target: Option<&str>) -> Result<SyncReply, DaemonError> {
        self.check_running()?;
        let index = match target {
            Some(name) => self
                .targets
                .iter()
                .position(|t| t.name == name)
                .ok_or_else(|| DaemonError::UnknownTarget(name.to_owned()))?,
            None if self.targets.len() == 1 => 0,
            None => return Err(DaemonError::WhichTarget),
        };
        let name = self.targets[index].name.clone();
        let Ok(_one_at_a_time) = self.sync_running.try_lock() else {
            return Err(DaemonError::SyncRunning);
        };
        if self.shared.lock().pools[index].warm == 0 {
            return Err(DaemonError::NothingWarm(name));
        }
        let limits = SyncLimits {
            max_probes: self.timing.sync_max_probes,
            max_ns: Duration::from_millis(self.timing.sync_max_ms).as_nanos() as i64,
        };
        let mut prober = DatapathProber {
            daemon: self,
            target: index,
            pair: ClockPair::now(),
        };
        let e = sync::estimate(&mut prober, limits).map_err(|source| DaemonError::Sync {
            target: name.clone(),
            source,
        })?;
        let reply = SyncReply {
            target: name.clone(),
            offset_ns: e.offset_ns,
            uncertainty_ns: e.uncertainty_ns,
            rtt_ns: e.rtt_ns,
            one_way_ns: e.one_way_ns,
            resolution_ns: e.resolution_ns,
            probes: e.probes,
            failed: e.failed,
            elapsed_ns: e.elapsed_ns,
            at: format_utc(prober.now()),
        };
        tracing::info!(target = %name, offset_ns = e.offset_ns, uncertainty_ns = e.uncertainty_ns,
            rtt_ns = e.rtt_ns, probes = e.probes, "clock sync");
        self.shared
            .update(|s| s.pools[index].sync = Some((reply.clone(), monotonic_ns())));
        Ok(reply)
    }
}
