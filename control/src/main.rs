//! `control`: the operator's command line for quickdraw.
//!
//! One file per subcommand under `cli/`. The daemon (`control up`), arming and firing
//! arrive with the datapath; today `control check` validates a configuration.

mod cli;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

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
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Check(a) => cli::check::run(&a),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("control: {err:#}");
            ExitCode::FAILURE
        }
    }
}
