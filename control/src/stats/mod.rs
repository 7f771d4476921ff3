//! What the daemon measures: one hdrhistogram per metric for its backend, and counters.
//! Fed by the event pump from the datapath's events (nothing here runs on the datapath
//! thread); read by `control stats` and the Prometheus endpoint.

pub mod prometheus;

use crate::protocol::{
    FireOutcome, LatencyView, OrderCounters, StampsView, StatsReply, XdpCounters,
};
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

/// One latency metric: its histogram and the exact sum of what it recorded.
#[derive(Debug, Clone)]
pub struct Latency {
    pub histogram: Histogram<u64>,
    pub sum_ns: u128,
}

impl Latency {
    fn new() -> Latency {
        Latency {
            histogram: Histogram::new_with_bounds(1, HIGHEST_NS, 3)
                .expect("valid histogram bounds"),
            sum_ns: 0,
        }
    }

    fn record(&mut self, ns: u64) {
        let ns = ns.clamp(1, HIGHEST_NS);
        self.histogram.saturating_record(ns);
        self.sum_ns += u128::from(ns);
    }
}

/// One target's counters and latencies.
#[derive(Debug, Clone)]
pub struct TargetStats {
    pub name: String,
    pub counters: OrderCounters,
    /// In the order of [`METRICS`].
    pub latency: [Latency; 5],
}

/// Histograms and counters of one daemon (one backend), per target.
#[derive(Debug)]
pub struct Stats {
    backend: String,
    targets: Vec<TargetStats>,
    /// The datapath's last report of its steering and ring counters (AF_XDP only).
    xdp: Option<XdpCounters>,
}

impl Stats {
    pub fn new(backend: &str, targets: &[String]) -> Stats {
        Stats {
            backend: backend.to_owned(),
            targets: targets
                .iter()
                .map(|name| TargetStats {
                    name: name.clone(),
                    counters: OrderCounters::default(),
                    latency: std::array::from_fn(|_| Latency::new()),
                })
                .collect(),
            xdp: None,
        }
    }

    pub fn backend(&self) -> &str {
        &self.backend
    }

    pub fn targets(&self) -> &[TargetStats] {
        &self.targets
    }

    pub fn xdp(&self) -> Option<XdpCounters> {
        self.xdp
    }

    /// Counts something of target `t` (ignored for a target no longer configured).
    pub fn count(&mut self, t: usize, f: impl FnOnce(&mut OrderCounters)) {
        if let Some(target) = self.targets.get_mut(t) {
            f(&mut target.counters);
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
            arp_pin_conflicts: device.neighbours.pin_conflicts,
            arp_strangers: device.neighbours.strangers,
            arp_answered: device.neighbours.answered,
            arp_learned: device.neighbours.learned,
            warm_frames: device.warm_frames,
            warm_frames_beside: device.warm_frames_beside,
            tx_prebuilt: device.tx_prebuilt,
            retransmits: c.retransmits,
            reconnects: c.reconnects,
            tail_probes: c.tail_probes,
        });
    }

    /// An arm of target `t` fired: its trigger, and for a scheduled fire its error. A
    /// late trigger is recorded as it is; an early one cannot happen (the datapath fires
    /// once its clock reaches the deadline) and would be recorded as 0.
    pub fn fired(&mut self, t: usize, stamps: &StampsView) {
        let Some(target) = self.targets.get_mut(t) else {
            return;
        };
        target.counters.fires += 1;
        if stamps.scheduled_ns > 0 {
            target.counters.scheduled_fires += 1;
            target.latency[3].record(stamps.trigger_ns.saturating_sub(stamps.scheduled_ns));
        }
    }

    /// An event-triggered arm of target `t` sent its request (one per connection): the
    /// event's receive stamp to the kick.
    pub fn event_sent(&mut self, t: usize, trigger_ns: u64, tx_ns: u64) {
        if let Some(target) = self.targets.get_mut(t) {
            if trigger_ns > 0 && tx_ns >= trigger_ns {
                target.latency[4].record(tx_ns - trigger_ns);
            }
        }
    }

    /// One connection's share of a fire of target `t` ended.
    pub fn outcome(&mut self, t: usize, o: &FireOutcome) {
        let Some(target) = self.targets.get_mut(t) else {
            return;
        };
        let c = &mut target.counters;
        match (o.result.as_str(), o.status) {
            ("status", Some(code)) if (200..300).contains(&code) => c.ok += 1,
            ("status", _) => c.non_2xx += 1,
            ("not_sent", _) => c.not_sent += 1,
            _ => c.unknown += 1,
        }
        let s = &o.stamps;
        let mut record = |metric: usize, from: u64, to: u64| {
            if from > 0 && to >= from {
                target.latency[metric].record(to - from);
            }
        };
        record(0, s.trigger_ns, s.tx_ns);
        record(1, s.trigger_ns, s.first_byte_ns);
        if o.result == "status" {
            record(2, s.trigger_ns, s.complete_ns);
        }
    }

    /// Every target's counters, summed.
    pub fn counters(&self) -> OrderCounters {
        self.targets
            .iter()
            .fold(OrderCounters::default(), |mut sum, t| {
                let c = &t.counters;
                sum.arms += c.arms;
                sum.fires += c.fires;
                sum.scheduled_fires += c.scheduled_fires;
                sum.event_fires += c.event_fires;
                sum.requests += c.requests;
                sum.ok += c.ok;
                sum.non_2xx += c.non_2xx;
                sum.unknown += c.unknown;
                sum.not_sent += c.not_sent;
                sum.missed += c.missed;
                sum.reconnects += c.reconnects;
                sum.conn_errors += c.conn_errors;
                sum
            })
    }

    /// The `control stats` reply: every target together.
    pub fn view(&self) -> StatsReply {
        let latency = METRICS
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut h = Latency::new().histogram;
                let mut sum_ns = 0u128;
                for t in &self.targets {
                    let _ = h.add(&t.latency[i].histogram);
                    sum_ns += t.latency[i].sum_ns;
                }
                LatencyView {
                    metric: (*name).to_owned(),
                    backend: self.backend.clone(),
                    count: h.len(),
                    p50_ns: h.value_at_quantile(0.5),
                    p90_ns: h.value_at_quantile(0.9),
                    p99_ns: h.value_at_quantile(0.99),
                    p999_ns: h.value_at_quantile(0.999),
                    max_ns: h.max(),
                    mean_ns: if h.is_empty() {
                        0.0
                    } else {
                        sum_ns as f64 / h.len() as f64
                    },
                }
            })
            .collect();
        StatsReply {
            backend: self.backend.clone(),
            counters: self.counters(),
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
        let mut s = Stats::new("kernel", &["a".into(), "b".into()]);
        for i in 0..100 {
            s.outcome((i % 2) as usize, &outcome(Some(200), "status", 1_000 + i));
        }
        s.outcome(0, &outcome(Some(503), "status", 1));
        s.outcome(1, &outcome(None, "unknown", 1));
        s.outcome(1, &outcome(None, "not_sent", 0));
        s.outcome(7, &outcome(None, "not_sent", 0)); // no such target: ignored
        s.fired(
            0,
            &StampsView {
                trigger_ns: 2_000_250,
                scheduled_ns: 2_000_000,
                ..StampsView::default()
            },
        );
        s.fired(1, &StampsView::default());
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
        s.event_sent(1, 1_000, 4_000);
        let ev = s
            .view()
            .latency
            .into_iter()
            .find(|l| l.metric == "event_to_tx");
        assert!(ev.is_some_and(|l| l.count == 1 && (2_990..=3_010).contains(&l.p50_ns)));
        assert_eq!(v.backend, "kernel");
        assert!(v.xdp.is_none());
        let per: Vec<u64> = s.targets().iter().map(|t| t.counters.ok).collect();
        assert_eq!(per, [50, 50], "each target counts its own");
        assert_eq!(s.targets()[0].latency[0].histogram.len(), 51);
    }
}
