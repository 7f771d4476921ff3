//! What a run produces: the fixed JSON schema (documented in README), a table a person
//! reads at a glance, HdrHistogram interval logs, and an SVG of the percentile curves.

use super::gaps::{self, ColdHot, GapReport};
use super::plan::Backend;
use crate::measure::{Percentiles, Series};
use anyhow::Context;
use hdrhistogram::serialization::{interval_log, V2Serializer};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// One backend's results.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BackendReport {
    /// Counted fires (warm-up excluded); for a burst, one per connection.
    pub fires: usize,
    /// Fires answered with a 2xx (request backends) or put on the wire (floor).
    pub ok: usize,
    /// Fires matched to a wire stamp at the peer, and those that were not.
    pub matched: usize,
    /// Fires with no wire stamp found (reported, never dropped silently).
    pub unmatched: usize,
    /// Matched fires whose request did not start at the sequence number the connection's
    /// previous data frame said it would (a frame between was not stamped).
    pub seq_gaps: usize,
    /// Every counted fire's outcome, counted by kind: `status_<code>`, `timeout`,
    /// `connection_lost`, `bad_response`, `not_sent`; the floor: `sent`, `not_sent`.
    pub outcomes: BTreeMap<String, usize>,
    /// Retransmissions seen at the peer in the fires' windows.
    pub retransmissions: Retransmissions,
    /// Trigger → first frame of the request at the peer's interface (tc ingress).
    pub trigger_to_wire_ns: Option<Percentiles>,
    /// Trigger → first byte of the response, seen by the datapath.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_to_response_ns: Option<Percentiles>,
    /// Trigger → the response's first frame leaving the peer (tc egress).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_to_response_wire_ns: Option<Percentiles>,
    /// The response's first frame leaving the peer → its first byte seen by the datapath:
    /// the appliance's own receive share (under loss, with any recovery of that frame).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_wire_to_first_byte_ns: Option<Percentiles>,
    /// Trigger → the kick (or write) returned, in the datapath.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_to_tx_ns: Option<Percentiles>,
    /// Scheduled runs: actual trigger − scheduled instant, and wire − scheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_error_ns: Option<Percentiles>,
    /// Scheduled runs: fires whose trigger came more than 1 µs after the deadline (to set
    /// beside the share of the time the host took the core: `host.noise`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_late_over_1us: Option<usize>,
    /// Of those, the ones whose previous turn had done its work before the deadline: the
    /// loop did not run from then until after the deadline, so the core was away (the
    /// host, or an interrupt), not busy with our work. The rest were late behind a turn
    /// of ours still running at the deadline (its work, or the core away during it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_late_core_away: Option<usize>,
    /// Scheduled runs: the request's first frame at the peer − scheduled instant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wire_minus_scheduled_ns: Option<Percentiles>,
    /// With `--profile-steps`: where trigger→tx goes, step by step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps_ns: Option<Steps>,
}

/// Retransmissions seen at the peer's interface during the fires (from each trigger to
/// the next fire on the same connection). A copy lost before the peer is not seen.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Retransmissions {
    /// Copies of a request's bytes that arrived again (the appliance retransmitted).
    pub request: u64,
    /// Server frames that left again (the server retransmitted).
    pub response: u64,
    /// Fires with at least one of either.
    pub fires: usize,
}

/// The fire path's steps (`--profile-steps`), each from the previous stamp.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Steps {
    /// Trigger → the request handed to the stack (pre-sealed record committed and
    /// queued on the socket; the kernel backend: written to the socket).
    pub queue: Percentiles,
    /// → the stack pushed the Tx descriptor (segment built, frame written).
    pub stack: Percentiles,
    /// → the kick returned (on veth: includes the peer's receive path).
    pub kick: Percentiles,
}

/// The machine the run was made on.
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    /// Kernel release.
    pub kernel: String,
    /// CPUs available.
    pub cpus: usize,
    /// AF_XDP bind mode: "copy" or "zerocopy".
    pub bind_mode: String,
    /// Bytes of the datapath's code on 2 MiB pages (0: 4 KiB pages, where cold fires
    /// are slower; see datapath/src/placement/text.rs).
    pub code_on_huge_pages: usize,
    /// What the host left of the datapath's core just before the run (see
    /// `run/host_noise.rs`); none where it was not measured.
    pub noise: Option<super::host_noise::HostNoise>,
}

impl Host {
    /// This machine, with what the datapath reported when it started.
    pub fn here(bind_mode: &str, code_on_huge_pages: usize) -> Host {
        Host {
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            bind_mode: bind_mode.to_owned(),
            code_on_huge_pages,
            noise: None,
        }
    }
}

/// A whole run, as written to `--json`.
#[derive(Debug, Serialize)]
pub struct RunReport {
    /// Counted fires per backend at the first gap (a burst counts once here, K times in
    /// `fires`).
    pub fires_per_backend: usize,
    /// Connections per order.
    pub burst: usize,
    /// Nominal gap before each fire, the first gap's.
    pub gap_ns: u64,
    /// Whether fires were scheduled at deadlines rather than commanded.
    pub scheduled: bool,
    /// Results per backend, by name, at the first gap (the same as `gaps[0].backends`).
    pub backends: BTreeMap<&'static str, BackendReport>,
    /// Every gap of the run (`--gaps`; one entry for a single gap), in the order run.
    pub gaps: Vec<GapReport>,
    /// With two gaps or more: the longest gap's trigger→wire p50 over the shortest's.
    pub cold_hot: Option<ColdHot>,
    /// The frame loss the lab was set to during the run (`bench lab loss`), percent.
    pub loss_pct: u8,
    /// The machine.
    pub host: Host,
    /// Wire stamps the ring buffer had no room for (should be 0).
    pub stamps_lost: u64,
    /// Wire stamps that could not be decoded (should be 0).
    pub stamps_undecodable: u64,
    /// Why the numbers cannot be trusted (too many unmatched fires, lost stamps...);
    /// empty for a good run. `bench run` exits non-zero when it is not.
    pub problems: Vec<String>,
}

/// The series behind a backend's report (all gaps), kept for logs and plots.
#[derive(Debug, Default)]
pub struct BackendSeries {
    pub trigger_to_wire: Series,
    /// (trigger, trigger→wire) in fire order, ns, for interval logs.
    pub trigger_to_wire_in_order: Vec<(u64, u64)>,
}

/// One line of the table: backend, metric, count, then six right-aligned columns.
fn row(out: &mut String, name: &str, metric: &str, n: &str, cells: &[String; 6]) {
    let [a, b, c, d, e, f] = cells;
    let _ = writeln!(
        out,
        "{name:<8} {metric:<20} {n:>7} {a:>9} {b:>9} {c:>9} {d:>9} {e:>9} {f:>9}"
    );
}

fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1000.0)
}

impl RunReport {
    /// Fails, with every problem in the message, when the numbers cannot be trusted.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.problems.is_empty() {
            return Ok(());
        }
        anyhow::bail!(
            "this run cannot be trusted:\n  - {}",
            self.problems.join("\n  - ")
        )
    }

    /// The tables: one per gap (a single gap: just the one), then the cold/hot table.
    pub fn table(&self) -> String {
        if self.gaps.len() <= 1 {
            return table(&self.backends);
        }
        let mut out = String::new();
        for g in &self.gaps {
            let gap = humantime::format_duration(Duration::from_nanos(g.gap_ns));
            let _ = writeln!(
                out,
                "-- gap {gap}, {} fires per backend",
                g.fires_per_backend
            );
            out.push_str(&table(&g.backends));
        }
        let _ = writeln!(out, "-- cold/hot: trigger→wire by gap");
        out.push_str(&gaps::table(&self.gaps));
        out
    }
}

/// One gap's table: per backend and metric, percentiles in µs, outcomes, then the ratios.
fn table(backends: &BTreeMap<&'static str, BackendReport>) -> String {
    let mut out = String::new();
    let header = ["min", "p50", "p90", "p99", "p99.9", "max"].map(str::to_owned);
    row(&mut out, "backend", "µs", "n", &header);
    for (name, b) in backends {
        let steps = b.steps_ns.as_ref();
        let rows = [
            ("trigger→wire", b.trigger_to_wire_ns.as_ref(), b.matched),
            ("trigger→response", b.trigger_to_response_ns.as_ref(), b.ok),
            (
                "trigger→resp wire",
                b.trigger_to_response_wire_ns.as_ref(),
                b.matched,
            ),
            (
                "resp wire→1st byte",
                b.response_wire_to_first_byte_ns.as_ref(),
                b.ok,
            ),
            ("trigger→tx (kick)", b.trigger_to_tx_ns.as_ref(), b.fires),
            ("scheduled error", b.scheduled_error_ns.as_ref(), b.fires),
            (
                "wire−scheduled",
                b.wire_minus_scheduled_ns.as_ref(),
                b.matched,
            ),
            ("step: queue", steps.map(|s| &s.queue), b.fires),
            ("step: stack+desc", steps.map(|s| &s.stack), b.fires),
            ("step: kick", steps.map(|s| &s.kick), b.fires),
        ];
        for (metric, p, n) in rows {
            if let Some(p) = p {
                let cells = [p.min, p.p50, p.p90, p.p99, p.p999, p.max].map(us);
                row(&mut out, name, metric, &n.to_string(), &cells);
            }
        }
        if let Some(late) = b.scheduled_late_over_1us {
            let away = b.scheduled_late_core_away.unwrap_or(0);
            let _ = writeln!(
                out,
                "{name:<8} scheduled fires late by over 1 µs: {late} of {} ({:.1} %); {away} of \
                 them with the core away across the deadline, {} behind a turn still running at it",
                b.fires,
                100.0 * late as f64 / b.fires.max(1) as f64,
                late - away.min(late)
            );
        }
        let outcomes: Vec<String> = b.outcomes.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let r = &b.retransmissions;
        let _ = writeln!(
                out,
                "{name:<8} outcomes: {}; retransmissions at the peer: {} request, {} response ({} fires)",
                outcomes.join(", "),
                r.request,
                r.response,
                r.fires
            );
        if b.unmatched > 0 || b.seq_gaps > 0 {
            let _ = writeln!(
                out,
                "{name:<8} {} fire(s) not matched to a wire stamp, {} with a sequence gap",
                b.unmatched, b.seq_gaps
            );
        }
    }
    let wire = |name: &str| backends.get(name).and_then(|b| b.trigger_to_wire_ns);
    if let (Some(k), Some(x)) = (wire("kernel"), wire("af_xdp")) {
        let r = k.ratio_to(&x);
        let _ = writeln!(
            out,
            "kernel/af_xdp trigger→wire: p50 {} p99.9 {}",
            fmt_ratio(r.p50),
            fmt_ratio(r.p999)
        );
    }
    if let (Some(x), Some(f)) = (wire("af_xdp"), wire("floor")) {
        let r = x.ratio_to(&f);
        let _ = writeln!(
            out,
            "af_xdp/floor  trigger→wire: p50 {} p99 {}",
            fmt_ratio(r.p50),
            fmt_ratio(r.p99)
        );
    }
    out
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("n/a".into(), |r| format!("{r:.2}×"))
}

/// Writes one HdrHistogram interval log per backend (`<dir>/<backend>.hlog`) of
/// trigger→wire, one interval per `per_interval` fires in order. Timestamps are real:
/// the log's StartTime and BaseTime are the wall-clock time of the backend's first fire,
/// and each interval starts at its first fire's trigger and lasts until its last one's
/// (the CLOCK_MONOTONIC triggers mapped to wall-clock time once, when the log is written).
pub fn write_hdr_logs(
    dir: &Path,
    series: &BTreeMap<Backend, BackendSeries>,
    per_interval: usize,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Wall-clock time of monotonic instant 0.
    let epoch_of_monotonic = SystemTime::now()
        .checked_sub(Duration::from_nanos(
            quickdraw_datapath::clock::monotonic_ns(),
        ))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    for (backend, s) in series {
        let path = dir.join(format!("{}.hlog", backend.name()));
        let first_ns = s.trigger_to_wire_in_order.first().map_or(0, |&(t, _)| t);
        let base = epoch_of_monotonic + Duration::from_nanos(first_ns);
        let mut buf = Vec::new();
        let mut serializer = V2Serializer::new();
        {
            let mut log = interval_log::IntervalLogWriterBuilder::new()
                .add_comment(&format!(
                    "quickdraw bench: {} trigger->wire, ns",
                    backend.name()
                ))
                .with_start_time(base)
                .with_base_time(base)
                .begin_log_with(&mut buf, &mut serializer)
                .map_err(|e| anyhow::anyhow!("starting {}: {e:?}", path.display()))?;
            for chunk in s.trigger_to_wire_in_order.chunks(per_interval.max(1)) {
                let mut h = hdrhistogram::Histogram::<u64>::new(3)?;
                for &(_, v) in chunk {
                    h.record(v)?;
                }
                let (start, end) = (chunk[0].0, chunk[chunk.len() - 1].0);
                let tag = interval_log::Tag::new(backend.name());
                log.write_histogram(
                    &h,
                    Duration::from_nanos(start.saturating_sub(first_ns)),
                    Duration::from_nanos(end.saturating_sub(start)),
                    tag,
                )
                .map_err(|e| anyhow::anyhow!("writing {}: {e:?}", path.display()))?;
            }
        }
        std::fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Draws the trigger→wire percentile curves of every backend, log-log: x is the
/// percentile as 1/(1−q) (so p99.9 sits at 1000), y is latency in µs.
pub fn write_plot(
    path: &Path,
    series: &BTreeMap<Backend, BackendSeries>,
    title: &str,
) -> anyhow::Result<()> {
    use plotters::prelude::*;
    let curves: Vec<(Backend, Vec<(f64, f64)>)> = series
        .iter()
        .filter(|(_, s)| !s.trigger_to_wire.is_empty())
        .map(|(b, s)| {
            let h = s.trigger_to_wire.histogram();
            let points = h
                .iter_quantiles(2)
                .filter(|v| v.quantile() < 0.99999)
                .map(|v| {
                    (
                        1.0 / (1.0 - v.quantile()),
                        v.value_iterated_to() as f64 / 1000.0,
                    )
                })
                .collect();
            (*b, points)
        })
        .collect();
    let ymax = curves
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
        .fold(1.0f64, f64::max)
        * 1.5;
    let ymin = curves
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
        .fold(f64::MAX, f64::min)
        .max(0.01)
        / 1.5;
    let xmax = curves
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(x, _)| x))
        .fold(10.0f64, f64::max);
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((1.0..xmax).log_scale(), (ymin..ymax).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("percentile (as 1/(1-q): 2 = p50, 10 = p90, 100 = p99, 1000 = p99.9)")
        .y_desc("trigger → wire (µs)")
        .draw()?;
    let colors = [RED, BLUE, GREEN];
    for (i, (backend, points)) in curves.into_iter().enumerate() {
        let color = colors[i % colors.len()];
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(backend.name())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
