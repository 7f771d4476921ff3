//! `control up --config FILE`: run the appliance and its control daemon in the foreground.

use super::exit;
use crate::daemon::{self, UpOptions};
use crate::setup::Overrides;
use quickdraw_config::{Backend, Config};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// The TOML configuration to run.
    #[arg(long, short, value_name = "FILE", env = "QUICKDRAW_CONFIG")]
    config: PathBuf,
    /// Run this backend instead of `appliance.backend`.
    #[arg(long, value_enum)]
    backend: Option<BackendArg>,
    /// Serve the control socket here instead of `control.socket`.
    #[arg(long, value_name = "PATH", env = "QUICKDRAW_SOCKET")]
    socket: Option<PathBuf>,
    /// Leave the datapath thread unpinned (tests on a shared machine).
    #[arg(long)]
    no_pin: bool,
    /// Keep the journal here instead of `journal.path`.
    #[arg(long, value_name = "PATH")]
    journal: Option<PathBuf>,
    /// Serve metrics on this loopback address instead of `metrics.listen` ("off" for
    /// none; port 0 picks a free one, shown by `control status`).
    #[arg(long, value_name = "ADDR|off")]
    metrics: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum BackendArg {
    #[value(name = "af_xdp")]
    AfXdp,
    Kernel,
}

/// Exits 0 after `control down` or SIGINT/SIGTERM, 1 if the datapath stops by itself or
/// cannot start, 2 for a bad configuration (as `control check` does).
pub fn run(args: &UpArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let socket = args
        .socket
        .clone()
        .unwrap_or_else(|| config.control.socket.clone());
    let backend = args.backend.map(|b| match b {
        BackendArg::AfXdp => Backend::AfXdp,
        BackendArg::Kernel => Backend::Kernel,
    });
    let overrides = Overrides {
        backend,
        no_pin: args.no_pin,
    };
    let metrics = match args.metrics.as_deref() {
        Some("off") => None,
        Some(addr) => {
            let addr: std::net::SocketAddr = addr
                .parse()
                .map_err(|_| exit::usage(format!("--metrics {addr}: not an address:port")))?;
            if !addr.ip().is_loopback() {
                return Err(exit::usage(format!(
                    "--metrics {addr}: loopback addresses only"
                )));
            }
            Some(addr)
        }
        None => config.metrics.enabled.then_some(config.metrics.listen),
    };
    let journal = args
        .journal
        .clone()
        .unwrap_or_else(|| config.journal.path.clone());
    daemon::run(UpOptions {
        config,
        socket,
        journal,
        metrics,
        overrides,
    })
}
