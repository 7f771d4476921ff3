//! `bench run`: the measured end-to-end run (see `quickdraw_bench::run`).

use anyhow::bail;
use clap::Args;
use quickdraw_bench::run::{self, Backend, RunOptions};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The appliance configuration; its first target is measured.
    #[arg(long, default_value = "config/lab.toml")]
    config: PathBuf,
    /// Counted fires per backend.
    #[arg(long, default_value_t = 1000)]
    fires: usize,
    /// Backends to compare, interleaved fire by fire.
    #[arg(long, value_delimiter = ',', default_value = "af_xdp,kernel,floor")]
    backends: Vec<String>,
    /// Connections each order goes over at once.
    #[arg(long, default_value_t = 1)]
    burst: usize,
    /// Idle time before each fire (jittered ±20%), e.g. 20ms, 2ms, 1s.
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    gap: Duration,
    /// Fires per backend made first and not counted (default: a tenth of --fires, 5..=100).
    #[arg(long)]
    warm_up: Option<usize>,
    /// Arm each order at a deadline one gap ahead (scheduled-fire accuracy).
    #[arg(long)]
    scheduled: bool,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write an SVG of the trigger→wire percentile curves here.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Write HdrHistogram interval logs (one per backend) into this directory.
    #[arg(long)]
    hdr_dir: Option<PathBuf>,
    /// Stamp the fire path's steps (two extra clock reads per fire) and report them.
    #[arg(long)]
    profile_steps: bool,
    /// Leave the datapath unpinned (smoke runs on a busy machine).
    #[arg(long)]
    no_pin: bool,
    /// Seed of the interleaving and gap jitter.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// What triggers each fire: a command (`manual`, the default) or an inbound `event`
    /// (tick-to-trade, measured wire to wire; see run/event.rs).
    #[arg(long, default_value = "manual", value_parser = ["manual", "event"])]
    trigger: String,
    /// The event source with `--trigger event`.
    #[arg(long, default_value = "sse", value_parser = ["sse", "udp"])]
    source: String,
}

pub(crate) fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut backends = Vec::new();
    for name in &args.backends {
        match Backend::parse(name) {
            Some(b) if !backends.contains(&b) => backends.push(b),
            Some(_) => {}
            None => bail!("unknown backend {name:?} (af_xdp, kernel, floor)"),
        }
    }
    if args.fires == 0 {
        bail!("--fires must be at least 1");
    }
    if args.trigger == "event" {
        return run_event(&args);
    }
    let opts = RunOptions {
        config: args.config,
        fires: args.fires,
        warm_up: args.warm_up.unwrap_or((args.fires / 10).clamp(5, 100)),
        backends,
        burst: args.burst,
        gap: args.gap,
        scheduled: args.scheduled,
        json: args.json.clone(),
        plot: args.plot.clone(),
        hdr_dir: args.hdr_dir.clone(),
        no_pin: args.no_pin,
        profile_steps: args.profile_steps,
        seed: args.seed,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let report = run::run(&opts)?;
    println!(
        "{} fires per backend, burst {}, gap {:?}{}; lab on kernel {} ({} CPUs), AF_XDP {} mode",
        report.fires_per_backend,
        report.burst,
        args.gap,
        if report.scheduled { ", scheduled" } else { "" },
        report.host.kernel,
        report.host.cpus,
        report.host.bind_mode
    );
    print!("{}", report.table());
    if report.stamps_lost > 0 {
        println!(
            "warning: {} wire stamps lost (ring buffer full)",
            report.stamps_lost
        );
    }
    for (what, path) in [
        ("json", &args.json),
        ("plot", &args.plot),
        ("hdr logs", &args.hdr_dir),
    ] {
        if let Some(p) = path {
            println!("{what}: {}", p.display());
        }
    }
    Ok(())
}

/// `--trigger event`: af_xdp and kernel, interleaved, each on its own event source.
fn run_event(args: &RunArgs) -> anyhow::Result<()> {
    use quickdraw_bench::run::event::{self, EventRunOptions, EventSource};
    let opts = EventRunOptions {
        config: args.config.clone(),
        source: if args.source == "udp" {
            EventSource::Udp
        } else {
            EventSource::Sse
        },
        fires: args.fires,
        warm_up: args.warm_up.unwrap_or((args.fires / 10).clamp(5, 100)),
        gap: args.gap,
        json: args.json.clone(),
        no_pin: args.no_pin,
        seed: args.seed,
    };
    let report = event::run(&opts)?;
    println!(
        "{} event fires per backend ({}), gap {:?}; wire to wire = event frame leaving qd1 \
         -> order frame arriving at qd1",
        report.fires_per_backend, args.source, args.gap
    );
    print!("{}", report.table());
    if report.stamps_lost > 0 {
        println!("warning: {} wire stamps lost", report.stamps_lost);
    }
    if let Some(p) = &args.json {
        println!("json: {}", p.display());
    }
    Ok(())
}
