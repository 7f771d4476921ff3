//! `control disarm ARM_ID`: drop an armed order before it fires.

use super::SocketArgs;
use crate::client;
use crate::protocol::{Done, Request};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct DisarmArgs {
    /// The arm to drop.
    arm: u64,
    #[command(flatten)]
    socket: SocketArgs,
}

pub fn run(args: &DisarmArgs) -> anyhow::Result<ExitCode> {
    let _: Done = client::call(&args.socket.path()?, &Request::Disarm { arm: args.arm })?;
    println!("disarmed {}", args.arm);
    Ok(ExitCode::SUCCESS)
}
