//! `bench`: the quickdraw lab and end-to-end measurement runs, from the command line.

mod cli;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    cli::run(cli::Cli::parse())
}
