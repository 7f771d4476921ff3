//! `control down`: stop the daemon; it stops the datapath, removes its socket and exits.

use super::SocketArgs;
use crate::client;
use crate::protocol::{Done, Request};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct DownArgs {
    #[command(flatten)]
    socket: SocketArgs,
}

/// Returns once the daemon says its datapath has stopped.
pub fn run(args: &DownArgs) -> anyhow::Result<ExitCode> {
    let _: Done = client::call(&args.socket.path()?, &Request::Down {})?;
    println!("daemon stopped");
    Ok(ExitCode::SUCCESS)
}
