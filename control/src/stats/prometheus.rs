//! The Prometheus text exposition (format 0.0.4), named by Prometheus's naming guide:
//! base units (seconds), `_total` counters, what varies (target, outcome, trigger) in
//! labels rather than in names, constant facts in `quickdraw_build_info`.
//!
//! Latency is exported as histograms with fixed buckets from 1 µs to 5 s, not summaries:
//! buckets can be summed across targets and daemons and rated over any window, where
//! precomputed quantiles cannot; the daemon keeps full hdrhistograms for `control stats`,
//! and the buckets are read from them (exact sums are kept beside).

use super::{Stats, TargetStats, METRICS};
use std::fmt::Write;

/// Bucket upper bounds, µs: 1-2-5 steps from 1 µs to 5 s.
pub const BUCKETS_US: [u64; 19] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000,
    500_000, 1_000_000, 5_000_000,
];

/// What the daemon's state says about one target, beside its stats.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetGauges {
    /// Connections warm (TLS up) and wanted.
    pub warm: usize,
    pub wanted: usize,
    /// Arms not yet closed (pending, armed, or fired with outcomes to come).
    pub open_arms: usize,
    /// The last sync: server clock minus ours, and its ± uncertainty (ns).
    pub clock: Option<(i64, i64)>,
}

/// What the exposition shows besides the stats.
#[derive(Debug, Clone, PartialEq)]
pub struct Gauges {
    pub version: &'static str,
    /// One per target, in the stats' order.
    pub targets: Vec<TargetGauges>,
    /// The datapath thread runs.
    pub running: bool,
    /// The last journal write succeeded.
    pub journal_healthy: bool,
}

/// The body served at `/metrics`.
pub fn render(stats: &Stats, gauges: &Gauges) -> String {
    let mut out = Exposition::default();
    out.family(
        "quickdraw_build_info",
        "gauge",
        "The running quickdraw: version and backend.",
    );
    out.sample(
        "quickdraw_build_info",
        &[("version", gauges.version), ("backend", stats.backend())],
        1.0,
    );
    out.family("quickdraw_up", "gauge", "1 while the datapath thread runs.");
    out.sample("quickdraw_up", &[], f64::from(u8::from(gauges.running)));
    out.family(
        "quickdraw_journal_healthy",
        "gauge",
        "1 when the last journal write reached the disk.",
    );
    out.sample(
        "quickdraw_journal_healthy",
        &[],
        f64::from(u8::from(gauges.journal_healthy)),
    );
    targets(&mut out, stats, gauges);
    xdp(&mut out, stats);
    for (i, metric) in METRICS.iter().enumerate() {
        let name = format!("quickdraw_{metric}_seconds");
        out.family(&name, "histogram", &latency_help(metric));
        for t in stats.targets() {
            out.histogram(&name, t, i);
        }
    }
    out.text
}

/// A family of per-target values: name, help, (target, value) pairs.
type PerTarget<'a> = (&'a str, &'a str, Vec<(String, u64)>);
/// A family of per-target gauges: name, help, and how to read one (`None`: no sample).
type GaugeFamily<'a> = (&'a str, &'a str, &'a dyn Fn(&TargetGauges) -> Option<f64>);

fn targets(out: &mut Exposition, stats: &Stats, gauges: &Gauges) {
    let per = |f: &dyn Fn(&TargetStats) -> u64| -> Vec<(String, u64)> {
        stats
            .targets()
            .iter()
            .map(|t| (t.name.clone(), f(t)))
            .collect()
    };
    let counters: [PerTarget; 5] = [
        (
            "quickdraw_arms_total",
            "Arms accepted.",
            per(&|t| t.counters.arms),
        ),
        (
            "quickdraw_requests_total",
            "Order requests that left.",
            per(&|t| t.counters.requests),
        ),
        (
            "quickdraw_missed_arms_total",
            "Scheduled arms whose time passed while no daemon ran.",
            per(&|t| t.counters.missed),
        ),
        (
            "quickdraw_reconnects_total",
            "Connections that left a warm pool (each is reopened).",
            per(&|t| t.counters.reconnects),
        ),
        (
            "quickdraw_connection_errors_total",
            "Connection failures the operator must see (certificate, handshake).",
            per(&|t| t.counters.conn_errors),
        ),
    ];
    for (name, help, values) in counters {
        out.family(name, "counter", help);
        for (target, v) in values {
            out.sample(name, &[("target", &target)], v as f64);
        }
    }
    out.family(
        "quickdraw_fires_total",
        "counter",
        "Arms fired (a burst is one fire), by what triggered them.",
    );
    for t in stats.targets() {
        let c = &t.counters;
        for (trigger, v) in [
            ("manual", c.fires - c.scheduled_fires - c.event_fires),
            ("scheduled", c.scheduled_fires),
            ("event", c.event_fires),
        ] {
            let labels = [("target", t.name.as_str()), ("trigger", trigger)];
            out.sample("quickdraw_fires_total", &labels, v as f64);
        }
    }
    out.family(
        "quickdraw_outcomes_total",
        "counter",
        "How each connection's share of a fire ended: ok (2xx), non_2xx, unknown (sent, \
         answer lost), not_sent.",
    );
    for t in stats.targets() {
        let c = &t.counters;
        for (outcome, v) in [
            ("ok", c.ok),
            ("non_2xx", c.non_2xx),
            ("unknown", c.unknown),
            ("not_sent", c.not_sent),
        ] {
            let labels = [("target", t.name.as_str()), ("outcome", outcome)];
            out.sample("quickdraw_outcomes_total", &labels, v as f64);
        }
    }
    let named = || stats.targets().iter().zip(&gauges.targets);
    let gauge_families: [GaugeFamily; 5] = [
        (
            "quickdraw_warm_connections",
            "Connections with TLS up, ready to carry an order.",
            &|g| Some(g.warm as f64),
        ),
        (
            "quickdraw_wanted_connections",
            "Connections the pool keeps open.",
            &|g| Some(g.wanted as f64),
        ),
        (
            "quickdraw_open_arms",
            "Arms not yet closed: pending, armed, or fired with outcomes to come.",
            &|g| Some(g.open_arms as f64),
        ),
        (
            "quickdraw_clock_offset_seconds",
            "The target's clock minus ours, from the last control sync.",
            &|g| g.clock.map(|(offset, _)| offset as f64 / 1e9),
        ),
        (
            "quickdraw_clock_offset_uncertainty_seconds",
            "The last sync's offset is within plus or minus this.",
            &|g| g.clock.map(|(_, pm)| pm as f64 / 1e9),
        ),
    ];
    for (name, help, value) in gauge_families {
        out.family(name, "gauge", help);
        for (t, g) in named() {
            if let Some(v) = value(g) {
                out.sample(name, &[("target", &t.name)], v);
            }
        }
    }
}

fn xdp(out: &mut Exposition, stats: &Stats) {
    let Some(x) = stats.xdp() else {
        return;
    };
    out.family(
        "quickdraw_xdp_frames_total",
        "counter",
        "Frames the XDP steering program saw, by what it did with them.",
    );
    for (action, v) in [
        ("steered", x.steered),
        ("passed", x.passed),
        ("malformed_passed", x.malformed),
    ] {
        out.sample(
            "quickdraw_xdp_frames_total",
            &[("action", action)],
            v as f64,
        );
    }
    let counters = [
        (
            "quickdraw_rx_malformed_frames_total",
            "Malformed frames the appliance dropped.",
            x.rx_malformed,
        ),
        (
            "quickdraw_xsk_rx_ring_full_total",
            "Frames the kernel dropped for a full AF_XDP Rx ring.",
            x.rx_ring_full,
        ),
        (
            "quickdraw_xsk_fill_ring_empty_total",
            "Receives that found the AF_XDP Fill ring empty.",
            x.fill_ring_empty,
        ),
        (
            "quickdraw_xsk_tx_ring_empty_total",
            "Sends that found the AF_XDP Tx ring empty.",
            x.tx_ring_empty,
        ),
        (
            "quickdraw_tx_dropped_frames_total",
            "Frames the appliance emitted with no free Tx frame.",
            x.tx_dropped,
        ),
        ("quickdraw_xsk_kicks_total", "Tx kicks made.", x.kicks),
        (
            "quickdraw_warm_frames_total",
            "Self-addressed warm frames sent while an order was armed (they reach no one).",
            x.warm_frames,
        ),
        (
            "quickdraw_warm_frames_beside_total",
            "Of those, sent from the spare half of an armed order's own UMEM frame.",
            x.warm_frames_beside,
        ),
        (
            "quickdraw_prebuilt_frames_total",
            "Requests sent as the frame built before their trigger.",
            x.tx_prebuilt,
        ),
        (
            "quickdraw_early_retransmits_total",
            "Requests resent identical after max(2 SRTT, 200 us) without an ACK.",
            x.retransmits,
        ),
        (
            "quickdraw_tail_probes_total",
            "Keep-alive probes for an answer still owed after its request was acknowledged.",
            x.tail_probes,
        ),
        (
            "quickdraw_link_reconnects_total",
            "Connections reopened (each a TCP and TLS handshake at the server).",
            x.reconnects,
        ),
    ];
    for (name, help, v) in counters {
        out.family(name, "counter", help);
        out.sample(name, &[], v as f64);
    }
    out.family(
        "quickdraw_arp_frames_total",
        "counter",
        "ARP seen by the pinned-neighbour filter, by what it did with it.",
    );
    for (what, v) in [
        ("pin_conflict_dropped", x.arp_pin_conflicts),
        ("stranger_kept_from_cache", x.arp_strangers),
        ("answered", x.arp_answered),
        ("pinned_from_first_reply", x.arp_learned),
    ] {
        out.sample("quickdraw_arp_frames_total", &[("what", what)], v as f64);
    }
}

fn latency_help(metric: &str) -> String {
    match metric {
        "trigger_to_tx" => "From the trigger to the request's Tx descriptor kicked (or written).",
        "trigger_to_first_byte" => "From the trigger to the first byte of the response.",
        "trigger_to_complete" => "From the trigger to the complete response.",
        "schedule_error" => "Scheduled fires: the trigger minus its deadline.",
        "event_to_tx" => "Event-triggered fires: the event's receive stamp to the Tx kick.",
        _ => "Latency.",
    }
    .to_owned()
}

/// The text being written, a family at a time.
#[derive(Debug, Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text += name;
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// One target's series of one latency histogram: cumulative buckets, sum, count.
    fn histogram(&mut self, name: &str, t: &TargetStats, metric: usize) {
        let l = &t.latency[metric];
        let h = &l.histogram;
        let bucket = format!("{name}_bucket");
        for us in BUCKETS_US {
            let le = format!("{}", us as f64 / 1e6);
            let below = h.count_between(0, us * 1_000);
            self.sample(&bucket, &[("target", &t.name), ("le", &le)], below as f64);
        }
        let count = h.len() as f64;
        self.sample(&bucket, &[("target", &t.name), ("le", "+Inf")], count);
        let sum = l.sum_ns as f64 / 1e9;
        self.sample(&format!("{name}_sum"), &[("target", &t.name)], sum);
        self.sample(&format!("{name}_count"), &[("target", &t.name)], count);
    }
}

/// A label value as the text format wants it: backslash, quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{FireOutcome, StampsView};

    fn gauges() -> Gauges {
        Gauges {
            version: "0.1.0",
            targets: vec![TargetGauges {
                warm: 7,
                wanted: 8,
                open_arms: 2,
                clock: Some((-12_000, 25_000)),
            }],
            running: true,
            journal_healthy: true,
        }
    }

    #[test]
    fn exposition_shape() {
        let mut stats = Stats::new("af_xdp", &["lab \"1\"".into()]);
        stats.count(0, |c| {
            c.requests = 3;
            c.fires = 3;
            c.scheduled_fires = 1;
            c.event_fires = 1;
        });
        stats.outcome(
            0,
            &FireOutcome {
                conn: Some(0),
                result: "status".into(),
                status: Some(201),
                unknown: None,
                stamps: StampsView {
                    trigger_ns: 1_000,
                    tx_ns: 4_000,
                    first_byte_ns: 60_000,
                    complete_ns: 70_000,
                    scheduled_ns: 0,
                },
            },
        );
        let text = render(&stats, &gauges());
        for want in [
            "quickdraw_build_info{version=\"0.1.0\",backend=\"af_xdp\"} 1\n",
            "# TYPE quickdraw_requests_total counter\n",
            "quickdraw_requests_total{target=\"lab \\\"1\\\"\"} 3\n",
            "quickdraw_outcomes_total{target=\"lab \\\"1\\\"\",outcome=\"ok\"} 1\n",
            "quickdraw_warm_connections{target=\"lab \\\"1\\\"\"} 7\n",
            "quickdraw_clock_offset_seconds{target=\"lab \\\"1\\\"\"} -0.000012\n",
            "# TYPE quickdraw_trigger_to_tx_seconds histogram\n",
            "quickdraw_trigger_to_tx_seconds_bucket{target=\"lab \\\"1\\\"\",le=\"0.000002\"} 0\n",
            "quickdraw_trigger_to_tx_seconds_bucket{target=\"lab \\\"1\\\"\",le=\"0.000005\"} 1\n",
            "quickdraw_trigger_to_tx_seconds_sum{target=\"lab \\\"1\\\"\"} 0.000003\n",
            "quickdraw_fires_total{target=\"lab \\\"1\\\"\",trigger=\"manual\"} 1\n",
            "quickdraw_fires_total{target=\"lab \\\"1\\\"\",trigger=\"event\"} 1\n",
            "# TYPE quickdraw_event_to_tx_seconds histogram\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert!(!text.contains("quantile"), "no summaries, no max quantile");
    }
}
