//! `control down`: stop the daemon; it stops the datapath, removes its socket and exits.

use super::SocketArgs;
use crate::client;
use crate::protocol::{Done, Request};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct DownArgs {
    /// Print the daemon's reply as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    socket: SocketArgs,
}

/// Returns once the daemon says its datapath has stopped.
pub fn run(args: &DownArgs) -> anyhow::Result<ExitCode> {
    let reply: Done = client::call(&args.socket.path()?, &Request::Down {})?;
    if args.json {
        super::print_json(&reply)?;
    } else {
        println!("daemon stopped");
    }
    Ok(ExitCode::SUCCESS)
}
