//! `control`: the operator's command line for quickdraw, and its daemon (`control up`).
//!
//! One file per subcommand under `cli/`; the daemon under `daemon/`; the wire protocol
//! between them in `protocol/`; config → datapath in `setup.rs`; time (schedules, clock
//! sync) in `timing/`; the journal in `journal/`; histograms and counters in `stats/`.

mod cli;
mod client;
mod daemon;
mod doctor;
mod journal;
mod protocol;
mod setup;
mod stats;
mod timing;

use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(name = "control", version, about = "quickdraw control plane")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a configuration file without starting anything.
    Check(cli::check::CheckArgs),
    /// Preflight the host for a configuration: each check pass/warn/fail with its fix.
    Doctor(cli::doctor::DoctorArgs),
    /// Run the appliance and its control daemon in the foreground.
    Up(cli::up::UpArgs),
    /// Show the backend, the warm pools and the open arms.
    Status(cli::status::StatusArgs),
    /// Hold an order ready to fire: manually, at a UTC instant, or after a delay.
    Arm(cli::arm::ArmArgs),
    /// List the arms: open ones and the recently closed (journal included).
    Arms(cli::arms::ArmsArgs),
    /// Fire an armed order and show its outcomes.
    Fire(cli::fire::FireArgs),
    /// Wait for an arm's outcomes (a scheduled fire) and show them like `fire`.
    Wait(cli::wait::WaitArgs),
    /// Drop an armed order, or all of them.
    Disarm(cli::disarm::DisarmArgs),
    /// Estimate a target's clock offset and round trip from its Date header.
    Sync(cli::sync::SyncArgs),
    /// Latency percentiles and counters since the daemon started.
    Stats(cli::stats::StatsArgs),
    /// Stop the daemon.
    Down(cli::down::DownArgs),
    /// Write shell completions and man pages (`make completions`).
    #[command(hide = true)]
    Generate(cli::generate::GenerateArgs),
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Logs go to stderr, so `--json` output on stdout stays machine-readable.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match &args.command {
        Command::Check(a) => cli::check::run(a),
        Command::Doctor(a) => cli::doctor::run(a),
        Command::Up(a) => cli::up::run(a),
        Command::Status(a) => cli::status::run(a),
        Command::Arm(a) => cli::arm::run(a),
        Command::Arms(a) => cli::arms::run(a),
        Command::Fire(a) => cli::fire::run(a),
        Command::Wait(a) => cli::wait::run(a),
        Command::Disarm(a) => cli::disarm::run(a),
        Command::Sync(a) => cli::sync::run(a),
        Command::Stats(a) => cli::stats::run(a),
        Command::Down(a) => cli::down::run(a),
        Command::Generate(a) => cli::generate::run::<Args>(a, "control"),
    };
    result.unwrap_or_else(|err| cli::exit::report("control", &err))
}
