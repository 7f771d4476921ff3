//! `control doctor [--config FILE] [--json]`: the host preflight (see `doctor/`).
//!
//! Exit codes: 0 when nothing failed (warnings allowed), 1 when a check failed, 2 when
//! the configuration cannot be read.

use crate::doctor::{self, Host, Status};
use quickdraw_config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where `control up` looks by default, and so does doctor.
const DEFAULT_CONFIG: &str = "/etc/quickdraw/quickdraw.toml";

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The configuration to check the host against.
    #[arg(long, short, default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// Print the checks as a JSON array.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &DoctorArgs) -> anyhow::Result<ExitCode> {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(err) => {
            eprintln!("{}: {err}", args.config.display());
            return Ok(ExitCode::from(2));
        }
    };
    let checks = doctor::run(&Host::live(), &config);
    if args.json {
        super::print_json(&checks)?;
    } else {
        print!("{}", doctor::render(&checks));
    }
    let failed = checks.iter().any(|c| c.status == Status::Fail);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
