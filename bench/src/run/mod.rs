//! `bench run`: microsecond end-to-end measurement in the lab. One datapath thread runs
//! the AF_XDP backend and the kernel backend side by side (same core, same target, same
//! request bytes) plus the floor (a pre-built frame through the same AF_XDP socket); fires
//! are interleaved backend by backend with jittered gaps; every fire is timed from its
//! trigger to its first frame at the lab peer, stamped there by a tc program on the same
//! CLOCK_MONOTONIC.

mod analyse;
mod driver;
pub mod event;
mod floor;
mod gaps;
pub mod host_noise;
mod per_fire;
mod plan;
mod report;

pub use analyse::MAX_UNMATCHED_PCT;
pub use driver::FireOutcome;
pub use gaps::{ColdHot, GapRatios, GapReport};
pub use per_fire::FireLine;
pub use plan::Backend;
pub use report::{BackendReport, Retransmissions, RunReport};

use anyhow::{bail, Context};
use driver::{Driver, Mode, Sample};
use quickdraw_bpf::{StampFilter, Stamper, WireStamp};
use quickdraw_config::Config;
use quickdraw_datapath::poll::Idle;
use quickdraw_datapath::runner::{self, BackendConfig, DatapathConfig};
use quickdraw_datapath::setup;
use quickdraw_lab::{self as lab, LabSession, APPLIANCE_IP, HOST_IF, NETNS, PEER_IF, TARGET_IP};
use report::Host;
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
    /// Counted fires per backend (at `gap`).
    pub fires: usize,
    /// Fires per backend made first and not counted.
    pub warm_up: usize,
    /// What to compare, interleaved fire by fire.
    pub backends: Vec<Backend>,
    /// Connections each order goes over at once.
    pub burst: usize,
    /// Idle time before each fire, jittered ±20%.
    pub gap: Duration,
    /// Further gaps, each run after the one before with its own count of counted fires per
    /// backend (`--gaps 2ms,20ms,1s`): backends interleaved within each gap.
    pub more_gaps: Vec<(Duration, usize)>,
    /// Where to write one JSON line per fire.
    pub per_fire: Option<PathBuf>,
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
    /// How the datapath keeps the send path warm while an order is armed.
    pub warming: quickdraw_datapath::warming::Warming,
    /// Seed of the plan's shuffles and gap jitter.
    pub seed: u64,
    /// Show a progress bar.
    pub progress: bool,
}

impl RunOptions {
    /// Every gap of the run with its counted fires per backend, in the order run.
    pub fn gap_plan(&self) -> Vec<(Duration, usize)> {
        let mut gaps = vec![(self.gap, self.fires)];
        gaps.extend(self.more_gaps.iter().copied());
        gaps
    }
}

/// Runs the measurement and writes what was asked for; returns the report. A report
/// whose `problems` are not empty cannot be trusted: see [`RunReport::check`].
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

    let loss_pct = lab::loss::current().context("reading the lab's loss")?;
    let result = measure(opts, &config);
    stop.store(true, Ordering::Relaxed);
    let (stamps, health) = collector
        .join()
        .map_err(|_| anyhow::anyhow!("stamp collector panicked"))??;
    let (samples, host, run_id) = result?;
    let (matches, index) = analyse::match_all(&samples, &stamps);
    let views = analyse::views(&samples, &matches, &index);
    let (report, series) = analyse::report(opts, &views, health, loss_pct, host);

    if let Some(path) = &opts.per_fire {
        let gap_ns: Vec<u64> = report.gaps.iter().map(|g| g.gap_ns).collect();
        per_fire::write(path, &views, run_id, &gap_ns)?;
    }
    if let Some(path) = &opts.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(dir) = &opts.hdr_dir {
        report::write_hdr_logs(dir, &series, 100)?;
    }
    if let Some(path) = &opts.plot {
        let gaps: Vec<String> = opts
            .gap_plan()
            .iter()
            .map(|(g, n)| format!("{n} at {}", humantime::format_duration(*g)))
            .collect();
        let title = format!("trigger → wire, fires per backend: {}", gaps.join(", "));
        report::write_plot(path, &series, &title)?;
    }
    Ok(report)
}

/// Drains the stamper's ring until told to stop (then once more).
fn spawn_collector(
    mut stamper: Stamper,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<anyhow::Result<(Vec<WireStamp>, analyse::StampHealth)>> {
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
                let counters = stamper.counters()?;
                let health = analyse::StampHealth {
                    lost: counters.lost,
                    undecodable: counters.undecodable,
                };
                return Ok((stamps, health));
            }
        }
    })
}

/// Starts the datapath (both links on one thread), walks the plan gap by gap, stops it.
/// Returns the samples, the AF_XDP bind mode and the run id.
fn measure(opts: &RunOptions, config: &Config) -> anyhow::Result<(Vec<Sample>, Host, u64)> {
    let t = &config.targets[0];
    let mut spec = setup::target_spec(t)?;
    spec.connections = opts.burst;
    // Keep-warm requests well apart from the fires' gaps, so they rarely share a turn.
    let datapath = DatapathConfig {
        backend: BackendConfig::AfXdp(setup::engine_config(config, 2 * opts.burst)),
        core: (!opts.no_pin).then_some(config.appliance.core),
        scheduling: Default::default(),
        targets: vec![spec.clone(), spec],
        max_arms: 8,
        queue_len: 4096,
        idle: Idle::Spin,
        profile_steps: opts.profile_steps,
        warming: opts.warming,
        sources: Vec::new(),
    };
    let kernel = BackendConfig::Kernel {
        interface: Some(config.appliance.interface.clone()),
    };
    // Before the datapath takes the core: what the host leaves of it.
    let noise = host_noise::measure(datapath.core, Duration::from_millis(500));
    let handle = runner::spawn_links(datapath, vec![kernel], vec![0, 1])?;
    let host = Host {
        noise: Some(noise),
        ..Host::here(
            handle.started.bind_mode,
            handle.started.placement.code_on_huge_pages,
        )
    };

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
    let mut steps = Vec::new();
    for (g, (gap, fires)) in opts.gap_plan().into_iter().enumerate() {
        let seed = opts.seed.wrapping_add(g as u64);
        let planned = plan::plan(&backends, fires, opts.warm_up, gap, 0.2, seed);
        steps.extend(planned.into_iter().map(|step| (g, step)));
    }
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
    for (g, step) in &steps {
        let fired = driver.step(step, mode)?;
        samples.extend(fired.into_iter().map(|s| Sample { gap_index: *g, ..s }));
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    }
    if let Some(bar) = bar {
        bar.finish_with_message("done");
    }
    let run_id = driver.run_id();
    drop(driver);
    handle.stop();
    Ok((samples, host, run_id))
}

fn placeholders(key: &str) -> quickdraw_datapath::http::Placeholders<'_> {
    quickdraw_datapath::http::Placeholders {
        sku: "1001",
        qty: 1,
        idempotency_key: key,
    }
}
