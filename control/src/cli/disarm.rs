//! `control disarm ARM_ID | --all`: drop armed orders (manual or scheduled) before they
//! fire.

use super::SocketArgs;
use crate::client;
use crate::protocol::{DisarmedAll, Done, Request};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct DisarmArgs {
    /// The arm to drop.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    arm: Option<u64>,
    /// Drop every armed order.
    #[arg(long)]
    all: bool,
    /// Print the daemon's reply as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    socket: SocketArgs,
}

/// With `--all`, exits 1 when some arm fired before its disarm reached the datapath.
pub fn run(args: &DisarmArgs) -> anyhow::Result<ExitCode> {
    let socket = args.socket.path()?;
    match args.arm {
        Some(arm) => {
            let reply: Done = client::call(&socket, &Request::Disarm { arm })?;
            match args.json {
                true => super::print_json(&reply)?,
                false => println!("disarmed {arm}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        None if args.all => {
            let reply: DisarmedAll = client::call(&socket, &Request::DisarmAll {})?;
            let list = |ids: &[u64]| {
                ids.iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            if args.json {
                super::print_json(&reply)?;
            } else if reply.disarmed.is_empty() {
                println!("no armed orders");
            } else {
                println!("disarmed {}", list(&reply.disarmed));
            }
            if !reply.failed.is_empty() {
                eprintln!(
                    "control: not disarmed (fired meanwhile?): {}",
                    list(&reply.failed)
                );
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        None => Err(super::exit::usage("say which arm, or --all")),
    }
}
