//! The Prometheus text exposition (format 0.0.4) of a stats snapshot: counters as
//! `quickdraw_*_total`, each latency metric as a summary in seconds with its quantiles.

use crate::protocol::StatsReply;
use std::fmt::Write;

/// The body served at `/metrics`.
pub fn render(s: &StatsReply) -> String {
    let mut out = String::new();
    let b = &s.backend;
    let c = &s.counters;
    let counters: [(&str, &str, u64); 11] = [
        ("arms", "Arms accepted", c.arms),
        ("fires", "Arms fired (a burst is one fire)", c.fires),
        ("scheduled_fires", "Scheduled fires", c.scheduled_fires),
        ("requests", "Requests that left", c.requests),
        ("responses_ok", "Outcomes with a 2xx status", c.ok),
        (
            "responses_non_2xx",
            "Outcomes with another status",
            c.non_2xx,
        ),
        ("outcomes_unknown", "Outcomes not known", c.unknown),
        (
            "not_sent",
            "Shares of a fire with no ready connection",
            c.not_sent,
        ),
        (
            "missed",
            "Scheduled arms missed while no daemon ran",
            c.missed,
        ),
        (
            "reconnects",
            "Connections that left a warm pool",
            c.reconnects,
        ),
        ("conn_errors", "Connection errors", c.conn_errors),
    ];
    let xdp: Vec<(&str, &str, u64)> = s.xdp.map_or_else(Vec::new, |x| {
        vec![
            (
                "xdp_steered",
                "Frames the XDP program steered to the appliance",
                x.steered,
            ),
            (
                "xdp_passed",
                "Frames the XDP program passed to the kernel",
                x.passed,
            ),
            (
                "xdp_malformed",
                "Malformed frames the XDP program passed",
                x.malformed,
            ),
            (
                "socket_rx_malformed",
                "Malformed frames dropped by the appliance",
                x.rx_malformed,
            ),
            (
                "xsk_rx_ring_full",
                "Frames dropped for a full Rx ring",
                x.rx_ring_full,
            ),
            (
                "xsk_fill_ring_empty",
                "Receives that found the Fill ring empty",
                x.fill_ring_empty,
            ),
            (
                "xsk_tx_ring_empty",
                "Sends that found the Tx ring empty",
                x.tx_ring_empty,
            ),
            (
                "socket_tx_dropped",
                "Frames emitted with no free Tx frame",
                x.tx_dropped,
            ),
            ("xsk_kicks", "Tx kicks made", x.kicks),
        ]
    });
    for (name, help, value) in counters.into_iter().chain(xdp) {
        let _ = writeln!(out, "# HELP quickdraw_{name}_total {help}.");
        let _ = writeln!(out, "# TYPE quickdraw_{name}_total counter");
        let _ = writeln!(out, "quickdraw_{name}_total{{backend=\"{b}\"}} {value}");
    }
    for l in &s.latency {
        let name = format!("quickdraw_{}_seconds", l.metric);
        let _ = writeln!(
            out,
            "# HELP {name} {} (ns precision).",
            l.metric.replace('_', " ")
        );
        let _ = writeln!(out, "# TYPE {name} summary");
        for (q, v) in [
            ("0.5", l.p50_ns),
            ("0.9", l.p90_ns),
            ("0.99", l.p99_ns),
            ("0.999", l.p999_ns),
            ("1", l.max_ns),
        ] {
            let _ = writeln!(
                out,
                "{name}{{backend=\"{b}\",quantile=\"{q}\"}} {}",
                seconds(v as f64)
            );
        }
        let _ = writeln!(
            out,
            "{name}_sum{{backend=\"{b}\"}} {}",
            seconds(l.mean_ns * l.count as f64)
        );
        let _ = writeln!(out, "{name}_count{{backend=\"{b}\"}} {}", l.count);
    }
    out
}

fn seconds(ns: f64) -> String {
    format!("{:e}", ns / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Stats;

    #[test]
    fn exposition_shape() {
        let mut stats = Stats::new("af_xdp");
        stats.counters.requests = 3;
        let text = render(&stats.view());
        assert!(
            text.contains("# TYPE quickdraw_requests_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("quickdraw_requests_total{backend=\"af_xdp\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE quickdraw_schedule_error_seconds summary\n"));
        assert!(text.contains(
            "quickdraw_trigger_to_tx_seconds{backend=\"af_xdp\",quantile=\"0.99\"} 0e0\n"
        ));
        assert!(
            text.contains("quickdraw_trigger_to_complete_seconds_count{backend=\"af_xdp\"} 0\n")
        );
        assert!(text.contains("# TYPE quickdraw_event_to_tx_seconds summary\n"));
        // Every sample line is `name{labels} value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').unwrap();
            assert!(
                series.starts_with("quickdraw_") && series.ends_with('}'),
                "{line}"
            );
            value.parse::<f64>().unwrap();
        }
    }
}
