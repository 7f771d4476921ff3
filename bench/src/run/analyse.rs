//! From samples and wire stamps to the report: every fire (warm-up included, so each
//! fire's window ends at the next fire on its connection) is matched once, then counted
//! per gap and backend; problems that make the numbers untrustworthy are listed.

use super::driver::Sample;
use super::gaps::{ColdHot, GapReport};
use super::plan::Backend;
use super::report::{BackendReport, BackendSeries, Host, Retransmissions, RunReport, Steps};
use super::RunOptions;
use crate::measure::{match_fires, Conn, Fire, FireMatch, MatchReport, Series, WireFrame};
use quickdraw_bpf::WireStamp;
use std::collections::BTreeMap;
use std::time::Duration;

/// Most unmatched fires a run may have and still be reported as measured: 1 %.
pub const MAX_UNMATCHED_PCT: f64 = 1.0;

/// One fire with what the wire said about it.
#[derive(Debug, Clone, Copy)]
pub struct FireView<'a> {
    pub sample: &'a Sample,
    /// `None`: not matched (or not sent).
    pub wire: Option<&'a FireMatch>,
    /// Data frames of its connection that arrived at the peer in its window.
    pub frames: &'a [WireFrame],
}

impl FireView<'_> {
    /// Response's first frame leaving the peer → first response byte seen by the
    /// appliance: its own receive share (and, under loss, the recovery of a lost
    /// response frame).
    pub fn response_wire_to_first_byte_ns(&self) -> Option<u64> {
        let response_ns = self.wire?.response_ns?;
        (self.sample.first_byte_ns > 0)
            .then(|| self.sample.first_byte_ns.saturating_sub(response_ns))
    }
}

/// What came out of the stamper, besides the stamps.
#[derive(Debug, Clone, Copy, Default)]
pub struct StampHealth {
    /// Frames that found the ring full.
    pub lost: u64,
    /// Records that could not be decoded.
    pub undecodable: u64,
}

/// Matches every fire once.
pub fn match_all(samples: &[Sample], stamps: &[WireStamp]) -> (MatchReport, Vec<Option<usize>>) {
    let mut fires = Vec::with_capacity(samples.len());
    let index = samples
        .iter()
        .map(|s| {
            s.local.map(|local| {
                fires.push(Fire {
                    conn: Conn {
                        local,
                        remote: s.remote,
                    },
                    trigger_ns: s.trigger_ns,
                    request_len: None,
                });
                fires.len() - 1
            })
        })
        .collect();
    (match_fires(&fires, stamps), index)
}

/// Each sample with its match.
pub fn views<'a>(
    samples: &'a [Sample],
    matches: &'a MatchReport,
    index: &[Option<usize>],
) -> Vec<FireView<'a>> {
    samples
        .iter()
        .zip(index)
        .map(|(sample, i)| FireView {
            sample,
            wire: i.and_then(|i| matches.outcomes[i].as_ref()),
            frames: i.map_or(&[][..], |i| &matches.request_frames[i]),
        })
        .collect()
}

/// The report and, per backend (all gaps in order), the series for logs and plots.
pub fn report(
    opts: &RunOptions,
    views: &[FireView<'_>],
    health: StampHealth,
    loss_pct: u8,
    host: Host,
) -> (RunReport, BTreeMap<Backend, BackendSeries>) {
    let mut all_series: BTreeMap<Backend, BackendSeries> = BTreeMap::new();
    let mut gaps = Vec::new();
    for (g, &(gap, fires)) in opts.gap_plan().iter().enumerate() {
        let mut backends = BTreeMap::new();
        let mut kinds: Vec<Backend> = views
            .iter()
            .filter(|v| v.sample.gap_index == g)
            .map(|v| v.sample.backend)
            .collect();
        kinds.sort();
        kinds.dedup();
        for backend in kinds {
            let counted: Vec<&FireView> = views
                .iter()
                .filter(|v| v.sample.gap_index == g && v.sample.backend == backend)
                .filter(|v| !v.sample.warm_up)
                .collect();
            let series = all_series.entry(backend).or_default();
            backends.insert(backend.name(), backend_report(backend, &counted, series));
        }
        gaps.push(GapReport::new(gap, fires, backends));
    }
    let cold_hot = ColdHot::of(&mut gaps);
    let first = gaps.first();
    let mut report = RunReport {
        fires_per_backend: first.map_or(opts.fires, |g| g.fires_per_backend),
        burst: opts.burst,
        gap_ns: opts.gap.as_nanos() as u64,
        scheduled: opts.scheduled,
        backends: first.map(|g| g.backends.clone()).unwrap_or_default(),
        cold_hot,
        gaps,
        loss_pct,
        host,
        stamps_lost: health.lost,
        stamps_undecodable: health.undecodable,
        problems: Vec::new(),
    };
    report.problems = problems(&report);
    (report, all_series)
}

/// A scheduled fire late by over 1 µs whose previous turn had done its work before the
/// deadline: from then until the trigger's clock read only the loop's own few
/// instructions were due, so the core was away across the deadline.
fn late_with_the_core_away(s: &Sample) -> bool {
    s.scheduled_ns > 0
        && s.trigger_ns > s.scheduled_ns + 1_000
        && s.turn_before_end_ns > 0
        && s.turn_before_end_ns < s.scheduled_ns
}

fn backend_report(
    backend: Backend,
    counted: &[&FireView<'_>],
    series: &mut BackendSeries,
) -> BackendReport {
    let collect = |f: &dyn Fn(&FireView) -> Option<u64>| -> Series {
        counted.iter().filter_map(|v| f(v)).collect()
    };
    let mut wire_minus_scheduled = Series::new();
    let mut trigger_to_wire = Series::new();
    for v in counted {
        if let Some(m) = v.wire {
            trigger_to_wire.record(m.trigger_to_wire_ns());
            series.trigger_to_wire.record(m.trigger_to_wire_ns());
            series
                .trigger_to_wire_in_order
                .push((v.sample.trigger_ns, m.trigger_to_wire_ns()));
            if v.sample.scheduled_ns > 0 {
                wire_minus_scheduled.record(m.request_ns.saturating_sub(v.sample.scheduled_ns));
            }
        }
    }
    let ok = counted
        .iter()
        .filter(|v| match backend {
            Backend::Floor => v.sample.status.is_some(),
            _ => v.sample.status.is_some_and(|c| (200..300).contains(&c)),
        })
        .count();
    let s = |v: &FireView| *v.sample;
    let response =
        collect(&|v| (s(v).first_byte_ns > 0).then(|| s(v).first_byte_ns - s(v).trigger_ns));
    let tx = collect(&|v| (s(v).tx_ns > 0).then(|| s(v).tx_ns - s(v).trigger_ns));
    let sched = collect(&|v| {
        (s(v).scheduled_ns > 0).then(|| s(v).trigger_ns.saturating_sub(s(v).scheduled_ns))
    });
    let response_wire = collect(&|v| v.wire.and_then(FireMatch::trigger_to_response_ns));
    let receive_share = collect(&|v| v.response_wire_to_first_byte_ns());
    let profiled = |f: &dyn Fn(&Sample) -> u64| {
        collect(&|v| (s(v).queued_ns > 0 && s(v).pushed_ns > 0).then(|| f(v.sample))).percentiles()
    };
    let steps = match (
        profiled(&|s| s.queued_ns - s.trigger_ns),
        profiled(&|s| s.pushed_ns - s.queued_ns),
        profiled(&|s| s.tx_ns - s.pushed_ns),
    ) {
        (Some(queue), Some(stack), Some(kick)) => Some(Steps { queue, stack, kick }),
        _ => None,
    };
    let mut outcomes = BTreeMap::new();
    for v in counted {
        *outcomes.entry(v.sample.outcome.name()).or_insert(0) += 1;
    }
    let matched = counted.iter().filter(|v| v.wire.is_some()).count();
    let wire = || counted.iter().filter_map(|v| v.wire);
    BackendReport {
        fires: counted.len(),
        ok,
        matched,
        unmatched: counted.len() - matched,
        seq_gaps: wire().filter(|m| m.seq_gap()).count(),
        outcomes,
        retransmissions: Retransmissions {
            request: wire().map(|m| u64::from(m.request_retransmissions)).sum(),
            response: wire().map(|m| u64::from(m.response_retransmissions)).sum(),
            fires: wire().filter(|m| m.retransmissions() > 0).count(),
        },
        trigger_to_wire_ns: trigger_to_wire.percentiles(),
        trigger_to_response_ns: response.percentiles(),
        trigger_to_response_wire_ns: response_wire.percentiles(),
        response_wire_to_first_byte_ns: receive_share.percentiles(),
        trigger_to_tx_ns: tx.percentiles(),
        scheduled_late_over_1us: (!sched.is_empty()).then(|| sched.count_above(1_000)),
        scheduled_late_core_away: (!sched.is_empty()).then(|| {
            counted
                .iter()
                .filter(|v| late_with_the_core_away(v.sample))
                .count()
        }),
        scheduled_error_ns: sched.percentiles(),
        wire_minus_scheduled_ns: wire_minus_scheduled.percentiles(),
        steps_ns: steps,
    }
}

/// Why the numbers of `report` cannot be trusted; empty when they can.
///
/// - more than [`MAX_UNMATCHED_PCT`] of a backend's fires unmatched, at any gap (a blind
///   stamper, a foreign qdisc on the peer, fires that never left);
/// - as many fires whose request skipped sequence space (a data frame between was not
///   stamped), unless the lab drops frames on purpose (`loss_pct` > 0), where a frame
///   lost before the peer and retransmitted later gives one legitimately;
/// - any stamp lost (ring full) or undecodable.
pub fn problems(report: &RunReport) -> Vec<String> {
    let mut problems = Vec::new();
    for gap in &report.gaps {
        let at = humantime::format_duration(Duration::from_nanos(gap.gap_ns));
        for (name, b) in &gap.backends {
            if too_many(b.unmatched, b.fires) {
                problems.push(format!(
                    "{name} at gap {at}: {} of {} fires not matched to a wire stamp at the peer \
                     (more than {MAX_UNMATCHED_PCT}%); is the stamper on {} blind (a foreign \
                     qdisc?) or did fires not leave?",
                    b.unmatched,
                    b.fires,
                    quickdraw_lab::PEER_IF
                ));
            }
            if report.loss_pct == 0 && too_many(b.seq_gaps, b.fires) {
                problems.push(format!(
                    "{name} at gap {at}: {} of {} requests did not start at the expected \
                     sequence number (frames missing from the peer's stamps)",
                    b.seq_gaps, b.fires
                ));
            }
        }
    }
    if report.stamps_lost > 0 {
        problems.push(stamps_lost(report.stamps_lost));
    }
    if report.stamps_undecodable > 0 {
        problems.push(format!(
            "{} wire stamps undecodable (stamp.h and the Rust side out of step)",
            report.stamps_undecodable
        ));
    }
    problems
}

/// Whether `n` of `of` fires is more than [`MAX_UNMATCHED_PCT`]: the rule of every run,
/// manual or event-triggered.
pub(super) fn too_many(n: usize, of: usize) -> bool {
    n as f64 * 100.0 > MAX_UNMATCHED_PCT * of as f64
}

/// The problem of a run whose stamper's ring overflowed.
pub(super) fn stamps_lost(lost: u64) -> String {
    format!("{lost} wire stamps lost (the stamper's ring was full)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_fire_is_the_core_away_only_when_the_turn_before_was_done_before_the_deadline() {
        let fire = |trigger_ns, turn_before_end_ns| Sample {
            backend: Backend::AfXdp,
            warm_up: false,
            gap_index: 0,
            gap: Duration::from_millis(20),
            arm: 1,
            outcome: super::super::driver::FireOutcome::Status(200),
            local: None,
            remote: "198.18.0.2:443".parse().unwrap(),
            trigger_ns,
            tx_ns: trigger_ns + 500,
            first_byte_ns: 0,
            scheduled_ns: 1_000_000,
            turn_before_end_ns,
            queued_ns: 0,
            pushed_ns: 0,
            retransmits: 0,
            status: Some(200),
        };
        // On time (within 1 µs): not late at all.
        assert!(!late_with_the_core_away(&fire(1_000_900, 999_950)));
        // 30 µs late after a turn done 50 ns or 30 µs before the deadline: the loop did
        // not run across it.
        assert!(late_with_the_core_away(&fire(1_030_000, 999_950)));
        assert!(late_with_the_core_away(&fire(1_030_000, 970_000)));
        // A turn still at work at the deadline: ours.
        assert!(!late_with_the_core_away(&fire(1_030_000, 1_000_000)));
        assert!(!late_with_the_core_away(&fire(1_030_000, 1_029_000)));
        // Its end unknown: not claimed.
        assert!(!late_with_the_core_away(&fire(1_030_000, 0)));
        // A manual fire has no deadline.
        assert!(!late_with_the_core_away(&Sample {
            scheduled_ns: 0,
            ..fire(1_030_000, 999_950)
        }));
    }

    fn report_with(unmatched: usize, seq_gaps: usize, loss_pct: u8) -> RunReport {
        let b = BackendReport {
            fires: 100,
            matched: 100 - unmatched,
            unmatched,
            seq_gaps,
            ..BackendReport::default()
        };
        let gap = GapReport::new(
            Duration::from_millis(20),
            100,
            BTreeMap::from([("af_xdp", b)]),
        );
        RunReport {
            fires_per_backend: 100,
            burst: 1,
            gap_ns: gap.gap_ns,
            scheduled: false,
            backends: gap.backends.clone(),
            gaps: vec![gap],
            cold_hot: None,
            loss_pct,
            host: Host {
                kernel: String::new(),
                cpus: 2,
                bind_mode: "copy".into(),
                code_on_huge_pages: 0,
                noise: None,
            },
            stamps_lost: 0,
            stamps_undecodable: 0,
            problems: Vec::new(),
        }
    }

    #[test]
    fn more_than_one_percent_unmatched_is_a_problem() {
        assert!(problems(&report_with(1, 0, 0)).is_empty());
        let p = problems(&report_with(2, 0, 0));
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("2 of 100 fires not matched"), "{p:?}");
        let mut r = report_with(2, 0, 0);
        r.problems = problems(&r);
        let e = r.check().unwrap_err().to_string();
        assert!(
            e.contains("cannot be trusted") && e.contains("af_xdp"),
            "{e}"
        );
    }

    #[test]
    fn sequence_gaps_count_unless_the_lab_drops_frames() {
        assert_eq!(problems(&report_with(0, 5, 0)).len(), 1);
        assert!(problems(&report_with(0, 5, 5)).is_empty());
    }

    #[test]
    fn lost_or_undecodable_stamps_are_problems() {
        let mut r = report_with(0, 0, 0);
        r.stamps_lost = 1;
        r.stamps_undecodable = 2;
        let p = problems(&r);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("lost") && p[1].contains("undecodable"));
    }
}
