//! `control sync` on the daemon side: the clock-offset estimator
//! ([`crate::timing::sync`]) driven through the datapath's `Probe` command, which sends
//! a target's keep-warm request on an idle warm connection and reports when it left,
//! when the answer began, and the server's `Date`. One sync at a time.

use super::context::Daemon;
use super::error::DaemonError;
use super::state::{Ask, State};
use crate::protocol::SyncReply;
use crate::timing::clock::{monotonic_ns, ClockPair, UnixNs};
use crate::timing::sync::{self, DateSample, Prober, SyncLimits, Ticket};
use crate::timing::text::{format_utc, parse_http_date};
use quickdraw_datapath::order::{Command, RequestId};
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
    /// Probes sent and not yet answered: request id, and when to give up on it.
    in_flight: Vec<(RequestId, Instant)>,
}

impl DatapathProber<'_> {
    /// The answer to probe `req`, if it is in: `Some(None)` when it is lost.
    fn answered(&self, s: &State, req: RequestId, give_up: Instant) -> Option<Option<DateSample>> {
        if let Some(a) = s.probes.get(&req) {
            let usable = a.status != 0 && a.first_byte_ns >= a.sent_ns;
            return Some(usable.then_some(()).and_then(|()| {
                Some(DateSample {
                    sent_ns: self.pair.real_of(a.sent_ns),
                    first_byte_ns: self.pair.real_of(a.first_byte_ns),
                    date_s: parse_http_date(&a.date?)?,
                })
            }));
        }
        match s.answer(req) {
            Some(Err(_)) => Some(None),
            _ if Instant::now() >= give_up => Some(None),
            _ => None,
        }
    }
}

impl Prober for DatapathProber<'_> {
    fn now(&mut self) -> UnixNs {
        self.pair.real_of(monotonic_ns())
    }

    fn send(&mut self, at: UnixNs) -> Option<Ticket> {
        let send_at = self.pair.mono_of(at);
        let wait = send_at.saturating_sub(monotonic_ns());
        if wait > SPIN_NS {
            std::thread::sleep(Duration::from_nanos(wait - SPIN_NS));
        }
        while monotonic_ns() < send_at {
            std::hint::spin_loop();
        }
        let target = self.target;
        let req = self
            .daemon
            .send(Ask::Probe, |req| Command::Probe { req, target })
            .ok()?;
        self.in_flight.push((req, Instant::now() + PROBE_WAIT));
        Some(req)
    }

    fn collect(&mut self, until: UnixNs) -> Vec<(Ticket, Option<DateSample>)> {
        let wait = Duration::from_nanos(until.saturating_sub(self.now()).max(0) as u64);
        let got = self.daemon.shared.wait_for(Instant::now() + wait, |s| {
            let got: Vec<(Ticket, Option<DateSample>)> = self
                .in_flight
                .iter()
                .filter_map(|&(req, give_up)| Some((req, self.answered(s, req, give_up)?)))
                .collect();
            (!got.is_empty()).then_some(got)
        });
        let got = got.unwrap_or_default();
        self.daemon.shared.update(|s| {
            for (req, _) in &got {
                s.probes.remove(req);
                s.settle(*req);
            }
        });
        self.in_flight
            .retain(|(req, _)| got.iter().all(|(r, _)| r != req));
        got
    }
}

impl Drop for DatapathProber<'_> {
    fn drop(&mut self) {
        // Probes still out when the search ends: their answers are dropped as they come.
        self.daemon.shared.update(|s| {
            for (req, _) in self.in_flight.drain(..) {
                s.probes.remove(&req);
                s.settle(req);
            }
        });
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
        let warm = self.shared.lock().pools[index].warm;
        if warm == 0 {
            return Err(DaemonError::NothingWarm(name));
        }
        let limits = SyncLimits {
            max_probes: self.timing.sync_max_probes,
            max_ns: Duration::from_millis(self.timing.sync_max_ms).as_nanos() as i64,
            // One connection left for keep-warm requests.
            max_in_flight: (warm.saturating_sub(1)).max(1) as u32,
        };
        let mut prober = DatapathProber {
            daemon: self,
            target: index,
            pair: ClockPair::now(),
            in_flight: Vec::new(),
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
