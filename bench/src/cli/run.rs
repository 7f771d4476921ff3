//! `bench run`: the measured end-to-end run (see `quickdraw_bench::run`).

use clap::Args;
use quickdraw_bench::run::{self, Backend, RunOptions};
use quickdraw_datapath::warming::Warming;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The appliance configuration; its first target is measured.
    #[arg(
        long,
        short,
        value_name = "FILE",
        env = "QUICKDRAW_CONFIG",
        default_value = "config/lab.toml"
    )]
    config: PathBuf,
    /// Counted fires per backend; with --gaps, one count per gap (the last one repeats).
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    fires: Vec<usize>,
    /// Backends to compare, interleaved fire by fire.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "af_xdp,kernel,floor"
    )]
    backends: Vec<BackendArg>,
    /// Connections each order goes over at once.
    #[arg(long, default_value_t = 1)]
    burst: usize,
    /// Idle time before each fire (jittered ±20%), e.g. 20ms, 2ms, 1s.
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    gap: Duration,
    /// Several gaps in one run, one after the other (backends interleaved within each),
    /// then a cold/hot table, e.g. 2ms,20ms,1s. Replaces --gap.
    #[arg(long, value_delimiter = ',', value_parser = humantime::parse_duration)]
    gaps: Vec<Duration>,
    /// Write one JSON line per fire here (warm-up fires included, flagged).
    #[arg(long, value_name = "FILE")]
    per_fire: Option<PathBuf>,
    /// Fires per backend made first and not counted (default: a tenth of --fires, 5..=100).
    #[arg(long)]
    warm_up: Option<usize>,
    /// Arm each order at a deadline one gap ahead (scheduled-fire accuracy).
    #[arg(long)]
    scheduled: bool,
    /// Print the JSON report on stdout (the table goes to stderr).
    #[arg(long)]
    json: bool,
    /// Write the JSON report to this file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
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
    /// Send-path warming while armed: all (the default), none, send (our half only:
    /// the order's frame, record and socket, and the fire path's code) or wire (the
    /// kernel's half only: warm frames).
    #[arg(long, default_value = "all")]
    warming: String,
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

/// A backend as the command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BackendArg {
    #[value(name = "af_xdp")]
    AfXdp,
    Kernel,
    Floor,
}

impl From<BackendArg> for Backend {
    fn from(b: BackendArg) -> Backend {
        match b {
            BackendArg::AfXdp => Backend::AfXdp,
            BackendArg::Kernel => Backend::Kernel,
            BackendArg::Floor => Backend::Floor,
        }
    }
}

pub(crate) fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut backends = Vec::new();
    for b in args.backends.iter().copied().map(Backend::from) {
        if !backends.contains(&b) {
            backends.push(b);
        }
    }
    let full = Warming::default();
    let warming = match args.warming.as_str() {
        "all" => full,
        "none" => Warming::off(),
        "send" => Warming { wire_ns: 0, ..full },
        "wire" => Warming { send_ns: 0, ..full },
        other => {
            return Err(super::exit::usage(format!(
                "unknown --warming {other:?} (all, none, send, wire)"
            )))
        }
    };
    if args.fires.is_empty() || args.fires.contains(&0) {
        return Err(super::exit::usage("--fires must be at least 1"));
    }
    let gaps = if args.gaps.is_empty() {
        vec![args.gap]
    } else {
        args.gaps.clone()
    };
    if args.fires.len() > gaps.len() {
        return Err(super::exit::usage(format!(
            "--fires has {} counts for {} gap(s)",
            args.fires.len(),
            gaps.len()
        )));
    }
    let fires_at = |i: usize| args.fires[i.min(args.fires.len() - 1)];
    if args.trigger == "event" {
        return run_event(&args, fires_at(0), gaps[0]);
    }
    let opts = RunOptions {
        config: args.config,
        fires: fires_at(0),
        warm_up: args.warm_up.unwrap_or((fires_at(0) / 10).clamp(5, 100)),
        backends,
        burst: args.burst,
        gap: gaps[0],
        more_gaps: (1..gaps.len()).map(|i| (gaps[i], fires_at(i))).collect(),
        per_fire: args.per_fire.clone(),
        scheduled: args.scheduled,
        json: args.out.clone(),
        plot: args.plot.clone(),
        hdr_dir: args.hdr_dir.clone(),
        no_pin: args.no_pin,
        profile_steps: args.profile_steps,
        warming,
        seed: args.seed,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let report = run::run(&opts)?;
    // With --json, stdout carries the report alone; what a person reads goes to stderr.
    let mut human: Box<dyn std::io::Write> = match args.json {
        true => Box::new(std::io::stderr()),
        false => Box::new(std::io::stdout()),
    };
    let plan: Vec<String> = opts
        .gap_plan()
        .iter()
        .map(|(gap, n)| format!("{n} at gap {}", humantime::format_duration(*gap)))
        .collect();
    writeln!(
        human,
        "fires per backend: {}; burst {}{}{}; lab on kernel {} ({} CPUs), AF_XDP {} mode, \
         code on {}",
        plan.join(", "),
        report.burst,
        if report.scheduled { ", scheduled" } else { "" },
        if report.loss_pct > 0 {
            format!(", lab loss {}% each way", report.loss_pct)
        } else {
            String::new()
        },
        report.host.kernel,
        report.host.cpus,
        report.host.bind_mode,
        match report.host.code_on_huge_pages {
            0 => "4 KiB pages".to_owned(),
            n => format!("2 MiB pages ({} MiB)", n >> 20),
        }
    )?;
    if let Some(n) = &report.host.noise {
        writeln!(
            human,
            "host: the datapath's core{} was away {:.1} % of the time in gaps over 1 µs \
             ({:.0}/s; over 10 µs {:.0}/s, over 100 µs {:.0}/s, longest {:.1} µs): a fire due \
             at any instant is that likely to be late by more than 1 µs, whatever the datapath",
            if n.pinned { "" } else { " (unpinned)" },
            100.0 * n.share_over_1us,
            n.over_1us_per_s,
            n.over_10us_per_s,
            n.over_100us_per_s,
            n.max_gap_ns as f64 / 1e3
        )?;
    }
    write!(human, "{}", report.table())?;
    if report.stamps_lost > 0 {
        writeln!(
            human,
            "warning: {} wire stamps lost (ring buffer full)",
            report.stamps_lost
        )?;
    }
    for (what, path) in [
        ("json", &args.out),
        ("plot", &args.plot),
        ("hdr logs", &args.hdr_dir),
        ("per fire", &args.per_fire),
    ] {
        if let Some(p) = path {
            writeln!(human, "{what}: {}", p.display())?;
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    // A run that cannot be trusted (fires unmatched, stamps lost) fails after its report.
    report.check()
}

/// `--trigger event`: af_xdp and kernel, interleaved, each on its own event source.
fn run_event(args: &RunArgs, fires: usize, gap: Duration) -> anyhow::Result<()> {
    use quickdraw_bench::run::event::{self, EventRunOptions, EventSource};
    let opts = EventRunOptions {
        config: args.config.clone(),
        source: if args.source == "udp" {
            EventSource::Udp
        } else {
            EventSource::Sse
        },
        fires,
        warm_up: args.warm_up.unwrap_or((fires / 10).clamp(5, 100)),
        gap,
        json: args.out.clone(),
        no_pin: args.no_pin,
        seed: args.seed,
    };
    let report = event::run(&opts)?;
    println!(
        "{} event fires per backend ({}), gap {:?}; wire to wire = event frame leaving qd1 \
         -> order frame arriving at qd1",
        report.fires_per_backend, args.source, gap
    );
    print!("{}", report.table());
    if let Some(p) = &args.out {
        println!("json: {}", p.display());
    }
    report.check()
}
