//! `control wait ARM_ID`: wait for an arm's outcomes — a scheduled arm's fire, or any
//! fire in flight — and print them like `control fire`, with the scheduled fire's error.

use super::SocketArgs;
use crate::client;
use crate::protocol::{FireReply, Request};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// The arm to wait for.
    arm: u64,
    /// Give up after this long (e.g. 30s); by default the arm's deadline plus its
    /// target's response timeout.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    timeout: Option<std::time::Duration>,
    /// Print the daemon's reply, raw nanosecond stamps included, as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    socket: SocketArgs,
}

/// Exits 0 when every outcome arrived, 1 otherwise (still armed, missed, disarmed).
pub fn run(args: &WaitArgs) -> anyhow::Result<ExitCode> {
    let timeout_ms = args.timeout.map(|t| t.as_millis() as u64);
    let request = Request::Wait {
        arm: args.arm,
        timeout_ms,
    };
    let reply: FireReply = client::call(&args.socket.path()?, &request)?;
    if args.json {
        super::print_json(&reply)?;
    } else {
        print!("{}", super::fire::render(&reply));
    }
    if !reply.complete {
        let state = reply.state.map_or("unknown", |s| s.name());
        eprintln!(
            "control: arm {} is {state}: {} of {} outcomes",
            reply.arm,
            reply.outcomes.len(),
            reply.expected
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
