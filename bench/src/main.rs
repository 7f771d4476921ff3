//! `bench`: the quickdraw lab and end-to-end measurement runs, from the command line.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run(cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => cli::exit::report("bench", &err),
    }
}
