//! `control stats`: per metric of the daemon's backend, p50/p90/p99/p99.9/max in µs and
//! the count; then the counters. The same numbers are on the Prometheus endpoint.

use super::SocketArgs;
use crate::client;
use crate::protocol::{Request, StatsReply};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Print the daemon's reply (ns) as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    socket: SocketArgs,
}

pub fn run(args: &StatsArgs) -> anyhow::Result<ExitCode> {
    let reply: StatsReply = client::call(&args.socket.path()?, &Request::Stats {})?;
    if args.json {
        super::print_json(&reply)?;
    } else {
        print!("{}", render(&reply));
    }
    Ok(ExitCode::SUCCESS)
}

fn render(s: &StatsReply) -> String {
    let us = |ns: u64| super::micros(ns as i64).trim_start_matches('+').to_owned();
    let mut out = format!(
        "backend {}            count      p50      p90      p99    p99.9      max  (µs)\n",
        s.backend
    );
    for l in &s.latency {
        out += &format!(
            "  {:<22} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
            l.metric,
            l.count,
            us(l.p50_ns),
            us(l.p90_ns),
            us(l.p99_ns),
            us(l.p999_ns),
            us(l.max_ns)
        );
    }
    let c = &s.counters;
    out += &format!(
        "arms {}  fires {} ({} scheduled, {} on events)  requests {}  ok {}  non-2xx {}  unknown {}  \
         not sent {}  missed {}  reconnects {}  connection errors {}\n",
        c.arms,
        c.fires,
        c.scheduled_fires,
        c.event_fires,
        c.requests,
        c.ok,
        c.non_2xx,
        c.unknown,
        c.not_sent,
        c.missed,
        c.reconnects,
        c.conn_errors
    );
    out += &match &s.xdp {
        Some(x) => format!(
            "xdp: steered {}  passed {}  malformed {}  socket malformed {}  rx ring full {}  \
             fill ring empty {}  tx ring empty {}  tx dropped {}  kicks {}\n\
             arp: pin conflicts {}  strangers {}  answered {}  learned {}\n\
             fire path: built frames sent {}  warm frames {} ({} beside an order's frame)  \
             early retransmits {}  tail probes {}  reconnects {}\n",
            x.steered,
            x.passed,
            x.malformed,
            x.rx_malformed,
            x.rx_ring_full,
            x.fill_ring_empty,
            x.tx_ring_empty,
            x.tx_dropped,
            x.kicks,
            x.arp_pin_conflicts,
            x.arp_strangers,
            x.arp_answered,
            x.arp_learned,
            x.tx_prebuilt,
            x.warm_frames,
            x.warm_frames_beside,
            x.retransmits,
            x.tail_probes,
            x.reconnects
        ),
        None => "xdp: no counters (kernel backend, or none reported yet)\n".into(),
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Stats;

    #[test]
    fn renders_a_table_and_the_counters() {
        let mut stats = Stats::new("af_xdp", &["lab".into()]);
        stats.count(0, |c| c.fires = 2);
        let text = render(&stats.view());
        assert!(text.starts_with("backend af_xdp "), "{text}");
        assert!(
            text.contains("\n  schedule_error               0      0.0"),
            "{text}"
        );
        assert!(
            text.contains("fires 2 (0 scheduled, 0 on events)"),
            "{text}"
        );
        assert!(text.contains("xdp: no counters"), "{text}");
    }
}
