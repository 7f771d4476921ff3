//! `control arm --sku SKU --manual`: have the daemon render an order and hold it ready
//! on warm connections; prints the arm id to fire.

use super::SocketArgs;
use crate::client;
use crate::protocol::{ArmReply, ArmRequest, Request, TriggerSpec};
use anyhow::bail;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ArmArgs {
    /// The SKU to order (substituted for `{sku}` in the target's request).
    #[arg(long)]
    sku: String,
    /// Quantity (substituted for `{qty}`).
    #[arg(long, default_value_t = 1)]
    qty: u32,
    /// Fire on `control fire` (the only trigger for now).
    #[arg(long)]
    manual: bool,
    /// Fire at a UTC instant: not supported yet.
    #[arg(long, value_name = "UTC", conflicts_with = "manual")]
    at: Option<String>,
    /// Fire after a delay: not supported yet.
    #[arg(long = "in", value_name = "DURATION", conflicts_with = "manual")]
    after: Option<String>,
    /// Send the order over this many warm connections at once (a burst; one key).
    #[arg(long, default_value_t = 1)]
    conns: usize,
    /// Target name; may be left out when only one is configured.
    #[arg(long)]
    target: Option<String>,
    /// Print the daemon's reply (arm id, idempotency key) as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    socket: SocketArgs,
}

pub fn run(args: &ArmArgs) -> anyhow::Result<ExitCode> {
    if args.at.is_some() || args.after.is_some() {
        bail!("scheduled triggers (--at, --in) are not supported yet; use --manual and `control fire`");
    }
    if !args.manual {
        bail!("say when to fire: --manual (then `control fire`); scheduled triggers are not supported yet");
    }
    let request = Request::Arm(ArmRequest {
        sku: args.sku.clone(),
        qty: args.qty,
        conns: args.conns,
        target: args.target.clone(),
        trigger: TriggerSpec::Manual,
    });
    let reply: ArmReply = client::call(&args.socket.path()?, &request)?;
    if args.json {
        super::print_json(&reply)?;
    } else {
        println!(
            "armed {}: sku {} x{} on {} over {} connection(s); fire with `control fire {}`",
            reply.arm, args.sku, args.qty, reply.target, reply.conns, reply.arm
        );
    }
    Ok(ExitCode::SUCCESS)
}
