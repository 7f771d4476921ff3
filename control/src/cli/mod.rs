//! The `control` subcommands, one module each, and what the client ones share: finding
//! the daemon's socket.

pub use quickdraw_cli::{exit, generate};

pub mod arm;
pub mod arms;
pub mod check;
pub mod disarm;
pub mod doctor;
pub mod down;

pub mod fire;

pub mod stats;
pub mod status;
pub mod sync;
pub mod up;
pub mod wait;

use quickdraw_config::Config;
use std::path::PathBuf;

/// Where the daemon listens: `--socket` (or `QUICKDRAW_SOCKET`), else `control.socket`
/// of `--config` (or `QUICKDRAW_CONFIG`), else the configuration's default.
#[derive(Debug, clap::Args)]
pub struct SocketArgs {
    /// The daemon's control socket.
    #[arg(long, value_name = "PATH", env = "QUICKDRAW_SOCKET")]
    socket: Option<PathBuf>,
    /// Take the socket path from this configuration file.
    #[arg(long, short, value_name = "FILE", env = "QUICKDRAW_CONFIG")]
    config: Option<PathBuf>,
}

impl SocketArgs {
    pub fn path(&self) -> anyhow::Result<PathBuf> {
        if let Some(p) = &self.socket {
            return Ok(p.clone());
        }
        match &self.config {
            Some(file) => Ok(Config::load(file)?.control.socket),
            None => Ok(quickdraw_config::Control::default().socket),
        }
    }
}

/// Prints a reply as one line of JSON.
pub fn print_json<T: serde::Serialize>(reply: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(reply)?);
    Ok(())
}

/// Nanoseconds as microseconds with one decimal, signed.
pub fn micros(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "+" };
    let tenths = (ns.unsigned_abs() + 50) / 100;
    format!("{sign}{}.{}", tenths / 10, tenths % 10)
}
