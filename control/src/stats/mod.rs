//! What the daemon measures: one hdrhistogram per metric for its backend, and counters.
//! Fed by the event pump from the datapath's events (nothing here runs on the datapath
//! thread); read by `control stats` and the Prometheus endpoint.

pub mod prometheus;

use crate::protocol::{Counters, FireOutcome, LatencyView, StampsView, StatsReply, XdpCounters};
use hdrhistogram::Histogram;

/// The metrics, in the order they are reported.
pub const METRICS: [&str; 5] = [
    "trigger_to_tx",
    "trigger_to_first_byte",
    "trigger_to_complete",
    "schedule_error",
    // Event-triggered fires only: the event's receive stamp (the turn its last byte
    // was decrypted or its datagram read) to the kick.
    "event_to_tx",
];

/// Largest value recorded (ns): a response timeout is at most 10 min; larger values are
/// clamped, never dropped.
const HIGHEST_NS: u64 = 3_600_000_000_000;

/// Histograms and counters of one daemon (one backend).
#[derive(Debug)]
pub struct Stats {
    backend: String,
    histograms: [Histogram<u64>; 5],
    pub counters: Counters,
    /// The datapath's last report of its steering and ring counters (AF_XDP only).
    xdp: Option<XdpCounters>,
}

impl Stats {
    pub fn new(backend: &str) -> Stats {
        let h = || Histogram::new_with_bounds(1, HIGHEST_NS, 3).expect("valid histogram bounds");
        Stats {
            backend: backend.to_owned(),
            histograms: [h(), h(), h(), h(), h()],
            counters: Counters::default(),
            xdp: None,
        }
    }

    /// Takes a link's counters as the datapath reported them. The datapath reads them
    /// only while nothing is armed (system calls must never delay a trigger), so they
    /// can be a little behind during an armed wait.
    pub fn link_counters(&mut self, c: &quickdraw_datapath::order::LinkCounters) {
        let (Some(steer), Some(device)) = (c.steer, c.device) else {
            return;
        };
        self.xdp = Some(XdpCounters {
            steered: steer.steered,
            passed: steer.passed,
            malformed: steer.malformed,
            rx_malformed: device.rx_malformed,
            rx_ring_full: c.rx_ring_full,
            fill_ring_empty: c.fill_ring_empty,
            tx_ring_empty: c.tx_ring_empty,
            tx_dropped: device.tx_dropped,
            kicks: device.kicks,
        });
    }

    fn record(&mut self, metric: usize, from: u64, to: u64) {
        if from > 0 && to >= from {
            self.histograms[metric].saturating_record((to - from).max(1));
        }
    }

    /// An arm fired: its trigger, and for a scheduled fire its error. A late trigger is
    /// recorded as it is; an early one cannot happen (the datapath fires once its clock
    /// reaches the deadline) and would be recorded as 0.
    pub fn fired(&mut self, stamps: &StampsView) {
        self.counters.fires += 1;
        if stamps.scheduled_ns > 0 {
            self.counters.scheduled_fires += 1;
            self.histograms[3]
                .saturating_record(stamps.trigger_ns.saturating_sub(stamps.scheduled_ns).max(1));
        }
    }

    /// An event-triggered arm's request left (one per connection).
    pub fn event_sent(&mut self, trigger_ns: u64, tx_ns: u64) {
        self.record(4, trigger_ns, tx_ns);
    }

    /// One connection's share of a fire ended.
    pub fn outcome(&mut self, o: &FireOutcome) {
        match (o.result.as_str(), o.status) {
            ("status", Some(code)) if (200..300).contains(&code) => self.counters.ok += 1,
            ("status", _) => self.counters.non_2xx += 1,
            ("not_sent", _) => self.counters.not_sent += 1,
            _ => self.counters.unknown += 1,
        }
        let s = &o.stamps;
        self.record(0, s.trigger_ns, s.tx_ns);
        self.record(1, s.trigger_ns, s.first_byte_ns);
        if o.result == "status" {
            self.record(2, s.trigger_ns, s.complete_ns);
        }
    }

    pub fn view(&self) -> StatsReply {
        let latency = METRICS
            .iter()
            .zip(&self.histograms)
            .map(|(name, h)| LatencyView {
                metric: (*name).to_owned(),
                backend: self.backend.clone(),
                count: h.len(),
                p50_ns: h.value_at_quantile(0.5),
                p90_ns: h.value_at_quantile(0.9),
                p99_ns: h.value_at_quantile(0.99),
                p999_ns: h.value_at_quantile(0.999),
                max_ns: h.max(),
                mean_ns: if h.is_empty() { 0.0 } else { h.mean() },
            })
            .collect();
        StatsReply {
            backend: self.backend.clone(),
            counters: self.counters,
            latency,
            xdp: self.xdp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: Option<u16>, result: &str, trigger: u64) -> FireOutcome {
        FireOutcome {
            conn: Some(0),
            result: result.into(),
            status,
            unknown: None,
            stamps: StampsView {
                trigger_ns: trigger,
                tx_ns: trigger + 5_000,
                first_byte_ns: trigger + 300_000,
                complete_ns: trigger + 310_000,
                scheduled_ns: 0,
            },
        }
    }

    #[test]
    fn counts_and_percentiles() {
        let mut s = Stats::new("kernel");
        for i in 0..100 {
            s.outcome(&outcome(Some(200), "status", 1_000 + i));
        }
        s.outcome(&outcome(Some(503), "status", 1));
        s.outcome(&outcome(None, "unknown", 1));
        s.outcome(&outcome(None, "not_sent", 0));
        s.fired(&StampsView {
            trigger_ns: 2_000_250,
            scheduled_ns: 2_000_000,
            ..StampsView::default()
        });
        s.fired(&StampsView::default());
        let v = s.view();
        let c = v.counters;
        assert_eq!(
            (
                c.ok,
                c.non_2xx,
                c.unknown,
                c.not_sent,
                c.fires,
                c.scheduled_fires
            ),
            (100, 1, 1, 1, 2, 1)
        );
        let by = |m: &str| v.latency.iter().find(|l| l.metric == m).unwrap().clone();
        let tx = by("trigger_to_tx");
        assert_eq!(tx.count, 102, "not_sent has no tx stamp");
        assert!((4_990..=5_010).contains(&tx.p50_ns), "{tx:?}");
        assert_eq!(by("trigger_to_complete").count, 101);
        let err = by("schedule_error");
        assert_eq!(err.count, 1);
        assert!((249..=251).contains(&err.max_ns), "{err:?}");
        assert_eq!(by("event_to_tx").count, 0);
        s.event_sent(1_000, 4_000);
        let ev = s
            .view()
            .latency
            .into_iter()
            .find(|l| l.metric == "event_to_tx");
        assert!(ev.is_some_and(|l| l.count == 1 && (2_990..=3_010).contains(&l.p50_ns)));
        assert_eq!(v.backend, "kernel");
        assert!(v.xdp.is_none());
    }
}
