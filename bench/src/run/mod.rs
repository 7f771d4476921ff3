//! `bench run`: microsecond end-to-end measurement in the lab. One datapath thread runs
//! the AF_XDP backend and the kernel backend side by side (same core, same target, same
//! request bytes) plus the floor (a pre-built frame through the same AF_XDP socket); fires
//! are interleaved backend by backend with jittered gaps; every fire is timed from its
//! trigger to its first frame at the lab peer, stamped there by a tc program on the same
//! CLOCK_MONOTONIC.

mod driver;
pub mod event;
mod floor;
mod plan;
mod report;

pub use plan::Backend;
pub use report::{BackendReport, RunReport};

use crate::lab::{self, LabSession, APPLIANCE_IP, HOST_IF, NETNS, PEER_IF, TARGET_IP};
use crate::measure::{match_fires, Conn, Fire, Series};
use anyhow::{bail, Context};
use driver::{Driver, Mode, Sample};
use quickdraw_bpf::{StampFilter, Stamper, WireStamp};
use quickdraw_config::Config;
use quickdraw_datapath::poll::Idle;
use quickdraw_datapath::runner::{self, BackendConfig, DatapathConfig};
use quickdraw_datapath::setup;
use report::{BackendSeries, Host};
use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The appliance configuration (its first target is measured).
    pub config: PathBuf,
    /// Counted fires per backend.
    pub fires: usize,
    /// Fires per backend made first and not counted.
    pub warm_up: usize,
    /// What to compare, interleaved fire by fire.
    pub backends: Vec<Backend>,
    /// Connections each order goes over at once.
    pub burst: usize,
    /// Idle time before each fire, jittered ±20%.
    pub gap: Duration,
    /// Arm at a deadline one gap ahead instead of firing by command.
    pub scheduled: bool,
    /// Where to write the JSON report.
    pub json: Option<PathBuf>,
    /// Where to write the SVG plot of the percentile curves.
    pub plot: Option<PathBuf>,
    /// Where to write HdrHistogram interval logs, one per backend.
    pub hdr_dir: Option<PathBuf>,
    /// Leave the datapath unpinned (CI smoke runs on a busy machine).
    pub no_pin: bool,
    /// Profile the fire path's steps (two extra clock reads per fire).
    pub profile_steps: bool,
    /// Seed of the plan's shuffles and gap jitter.
    pub seed: u64,
    /// Show a progress bar.
    pub progress: bool,
}

/// Runs the measurement and writes what was asked for; returns the report.
pub fn run(opts: &RunOptions) -> anyhow::Result<RunReport> {
    let config =
        Config::load(&opts.config).with_context(|| format!("loading {}", opts.config.display()))?;
    let Some(target) = config.targets.first() else {
        bail!("{}: no target", opts.config.display())
    };
    if opts.burst == 0 || opts.burst > target.max_fires_per_arm as usize {
        bail!(
            "--burst {} is outside 1..={} (the target's max_fires_per_arm)",
            opts.burst,
            target.max_fires_per_arm
        );
    }
    if opts.scheduled && opts.backends.contains(&Backend::Floor) && opts.backends.len() == 1 {
        bail!("--scheduled measures orders: add af_xdp and/or kernel to --backends");
    }

    // The lab: use it if it is up, else bring it up for this run and down after.
    let _lab = if lab::status().map(|s| s.up).unwrap_or(false) {
        None
    } else {
        Some(LabSession::start()?)
    };

    let mut stamper = Stamper::load()?;
    stamper.set_filter(StampFilter {
        data_only: true,
        ..StampFilter::network(TARGET_IP, 24)
    })?;
    stamper
        .attach_in_netns(NETNS, PEER_IF)
        .context("attaching the wire stamper to the lab peer")?;
    let stop = Arc::new(AtomicBool::new(false));
    let collector = spawn_collector(stamper, stop.clone());

    let result = measure(opts, &config);
    stop.store(true, Ordering::Relaxed);
    let (stamps, lost) = collector
        .join()
        .map_err(|_| anyhow::anyhow!("stamp collector panicked"))??;
    let (samples, bind_mode) = result?;
    let (report, series) = analyse(opts, &samples, &stamps, lost, bind_mode);

    if let Some(path) = &opts.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(dir) = &opts.hdr_dir {
        report::write_hdr_logs(dir, &series, 100)?;
    }
    if let Some(path) = &opts.plot {
        let title = format!(
            "trigger → wire, {} fires per backend, gap {:?}",
            opts.fires, opts.gap
        );
        report::write_plot(path, &series, &title)?;
    }
    Ok(report)
}

/// Drains the stamper's ring until told to stop (then once more).
fn spawn_collector(
    mut stamper: Stamper,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<anyhow::Result<(Vec<WireStamp>, u64)>> {
    std::thread::spawn(move || {
        let mut stamps = Vec::with_capacity(1 << 16);
        loop {
            let stopping = stop.load(Ordering::Relaxed);
            if stopping {
                // The last frames of the last fire may still be in flight.
                std::thread::sleep(Duration::from_millis(50));
            }
            stamper.poll(Duration::from_millis(20), |s| stamps.push(*s))?;
            if stopping {
                let lost = stamper.lost()?;
                return Ok((stamps, lost));
            }
        }
    })
}

/// Starts the datapath (both links on one thread), walks the plan, stops it.
fn measure(opts: &RunOptions, config: &Config) -> anyhow::Result<(Vec<Sample>, String)> {
    let t = &config.targets[0];
    let mut spec = setup::target_spec(t)?;
    spec.connections = opts.burst;
    // Keep-warm requests well apart from the fires' gaps, so they rarely share a turn.
    let datapath = DatapathConfig {
        backend: BackendConfig::AfXdp(setup::engine_config(config, 2 * opts.burst)),
        core: (!opts.no_pin).then_some(config.appliance.core),
        targets: vec![spec.clone(), spec],
        max_arms: 8,
        queue_len: 4096,
        idle: Idle::Spin,
        profile_steps: opts.profile_steps,
        sources: Vec::new(),
    };
    let kernel = BackendConfig::Kernel {
        interface: Some(config.appliance.interface.clone()),
    };
    let handle = runner::spawn_links(datapath, vec![kernel], vec![0, 1])?;
    let bind_mode = handle.started.bind_mode.to_owned();

    let template = setup::template(t);
    let probe_key = "bench-0000000000000000-0";
    let request_len = template
        .render(&t.server_name, t.address.port(), &placeholders(probe_key))?
        .len();
    // TLS 1.3 record: 5-byte header, the request, 1 content-type byte, 16-byte tag.
    let record_len = request_len + 22;
    let floor_local = SocketAddrV4::new(APPLIANCE_IP, floor::FLOOR_SRC_PORT);
    let floor_remote = SocketAddrV4::new(TARGET_IP, floor::FLOOR_DST_PORT);
    let setup = driver::Setup {
        af_xdp_target: 0,
        kernel_target: 1,
        template,
        host: t.server_name.clone(),
        remote: t.address,
        burst: opts.burst,
        floor_macs: (
            lab::mac_address(None, HOST_IF)?,
            lab::mac_address(Some(NETNS), PEER_IF)?,
        ),
        floor_local,
        floor_remote,
        floor_payload: record_len,
    };
    let mut driver = Driver::new(&handle, setup, fastrand::u64(..));
    driver.wait_warm(2, Duration::from_secs(15))?;

    let mut backends = opts.backends.clone();
    if opts.scheduled {
        backends.retain(|b| *b != Backend::Floor);
    }
    let steps = plan::plan(
        &backends,
        opts.fires,
        opts.warm_up,
        opts.gap,
        0.2,
        opts.seed,
    );
    let bar = opts.progress.then(|| {
        let bar = indicatif::ProgressBar::new(steps.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} fires {msg}",
            )
            .expect("valid template"),
        );
        bar
    });
    let mode = if opts.scheduled {
        Mode::Scheduled
    } else {
        Mode::Manual
    };
    let mut samples = Vec::with_capacity(steps.len() * opts.burst);
    for step in &steps {
        samples.extend(driver.step(step, mode)?);
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    }
    if let Some(bar) = bar {
        bar.finish_with_message("done");
    }
    drop(driver);
    handle.stop();
    Ok((samples, bind_mode))
}

fn placeholders(key: &str) -> quickdraw_datapath::http::Placeholders<'_> {
    quickdraw_datapath::http::Placeholders {
        sku: "1001",
        qty: 1,
        idempotency_key: key,
    }
}

/// Matches counted fires to wire stamps and builds the report and its series.
fn analyse(
    opts: &RunOptions,
    samples: &[Sample],
    stamps: &[WireStamp],
    lost: u64,
    bind_mode: String,
) -> (RunReport, BTreeMap<Backend, BackendSeries>) {
    let mut backends = BTreeMap::new();
    let mut all_series = BTreeMap::new();
    let mut kinds: Vec<Backend> = samples.iter().map(|s| s.backend).collect();
    kinds.sort();
    kinds.dedup();
    for backend in kinds {
        let counted: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.backend == backend && !s.warm_up)
            .collect();
        let fires: Vec<Fire> = counted
            .iter()
            .filter_map(|s| {
                s.local.map(|local| Fire {
                    conn: Conn {
                        local,
                        remote: s.remote,
                    },
                    trigger_ns: s.trigger_ns,
                    request_len: None,
                })
            })
            .collect();
        let sent: Vec<&&Sample> = counted.iter().filter(|s| s.local.is_some()).collect();
        let matches = match_fires(&fires, stamps);
        let mut series = BackendSeries::default();
        let mut wire_minus_scheduled = Series::new();
        for (m, s) in matches.outcomes.iter().zip(&sent) {
            if let Some(m) = m {
                series.trigger_to_wire.record(m.trigger_to_wire_ns());
                series.trigger_to_wire_in_order.push(m.trigger_to_wire_ns());
                if s.scheduled_ns > 0 {
                    wire_minus_scheduled.record(m.request_ns.saturating_sub(s.scheduled_ns));
                }
            }
        }
        let collect = |f: &dyn Fn(&Sample) -> Option<u64>| -> Series {
            counted.iter().filter_map(|s| f(s)).collect()
        };
        let ok = counted
            .iter()
            .filter(|s| match backend {
                Backend::Floor => s.status.is_some(),
                _ => s.status.is_some_and(|c| (200..300).contains(&c)),
            })
            .count();
        let response = collect(&|s| (s.first_byte_ns > 0).then(|| s.first_byte_ns - s.trigger_ns));
        let tx = collect(&|s| (s.tx_ns > 0).then(|| s.tx_ns - s.trigger_ns));
        let sched =
            collect(&|s| (s.scheduled_ns > 0).then(|| s.trigger_ns.saturating_sub(s.scheduled_ns)));
        let profiled = |f: &dyn Fn(&Sample) -> u64| {
            collect(&|s| (s.queued_ns > 0 && s.pushed_ns > 0).then(|| f(s))).percentiles()
        };
        let steps = match (
            profiled(&|s| s.queued_ns - s.trigger_ns),
            profiled(&|s| s.pushed_ns - s.queued_ns),
            profiled(&|s| s.tx_ns - s.pushed_ns),
        ) {
            (Some(queue), Some(stack), Some(kick)) => Some(report::Steps { queue, stack, kick }),
            _ => None,
        };
        backends.insert(
            backend.name(),
            BackendReport {
                fires: counted.len(),
                ok,
                matched: matches.summary.matched,
                unmatched: counted.len() - matches.summary.matched,
                trigger_to_wire_ns: series.trigger_to_wire.percentiles(),
                trigger_to_response_ns: response.percentiles(),
                trigger_to_response_wire_ns: matches.trigger_to_response().percentiles(),
                trigger_to_tx_ns: tx.percentiles(),
                scheduled_error_ns: sched.percentiles(),
                wire_minus_scheduled_ns: wire_minus_scheduled.percentiles(),
                steps_ns: steps,
            },
        );
        all_series.insert(backend, series);
    }
    let report = RunReport {
        fires_per_backend: opts.fires,
        burst: opts.burst,
        gap_ns: opts.gap.as_nanos() as u64,
        scheduled: opts.scheduled,
        backends,
        host: Host {
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            bind_mode,
        },
        stamps_lost: lost,
    };
    (report, all_series)
}
