//! `control arm --sku SKU (--manual | --at UTC | --in DURATION | --on SOURCE:PREDICATE)`: have the daemon render
//! an order and hold it ready on warm connections. `--at` takes an RFC 3339 UTC instant
//! with µs (`2026-11-27T08:00:00.000000Z`), `--in` a delay (`2s`, `150ms`); the daemon
//! turns either into a monotonic deadline when it receives the arm, and refuses an
//! instant in the past, too soon to get ready, or too far ahead. A scheduled arm can still
//! be fired early by hand (`control fire ARM_ID`) or disarmed.

use super::exit;
use super::SocketArgs;
use crate::client;
use crate::protocol::{ArmReply, ArmRequest, Request, TriggerSpec};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct ArmArgs {
    /// The SKU to order (substituted for `{sku}` in the target's request).
    #[arg(long)]
    sku: String,
    /// Quantity (substituted for `{qty}`).
    #[arg(long, default_value_t = 1)]
    qty: u32,
    /// Fire on `control fire`.
    #[arg(long, conflicts_with_all = ["at", "after", "on"])]
    manual: bool,
    /// Fire when an event matches: SOURCE:PREDICATE, e.g.
    /// `lab-sse:sku == "1001" && stock > 0` or `lab-udp:bytes:"restock"`.
    #[arg(long, value_name = "SOURCE:PREDICATE", conflicts_with_all = ["at", "after"])]
    on: Option<String>,
    /// Fire at this UTC instant (RFC 3339, e.g. 2026-11-27T08:00:00.000000Z).
    #[arg(long, value_name = "UTC", conflicts_with = "after")]
    at: Option<String>,
    /// Fire after this delay from now (e.g. 2s, 150ms, 1min 30s).
    #[arg(long = "in", value_name = "DURATION", value_parser = humantime::parse_duration)]
    after: Option<Duration>,
    /// Fire so the request *arrives* at the instant on the server's clock (corrected by
    /// the offset and one-way latency of the last `control sync`).
    #[arg(long, conflicts_with = "no_arrive")]
    arrive: bool,
    /// Fire at the instant on our clock even if `timing.arrive` is set.
    #[arg(long)]
    no_arrive: bool,
    /// Send the order over this many warm connections at once (a burst; one key).
    #[arg(long, default_value_t = 1)]
    conns: usize,
    /// Target name; may be left out when only one is configured.
    #[arg(long)]
    target: Option<String>,
    /// Print the daemon's reply (arm id, idempotency key, schedule) as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    socket: SocketArgs,
}

pub fn run(args: &ArmArgs) -> anyhow::Result<ExitCode> {
    let trigger = match (&args.at, &args.after, args.manual, &args.on) {
        (Some(at), None, false, None) => TriggerSpec::At(at.clone()),
        (None, Some(after), false, None) => TriggerSpec::InNs(
            u64::try_from(after.as_nanos()).map_err(|_| exit::usage("--in is too long"))?,
        ),
        (None, None, true, None) => TriggerSpec::Manual,
        (None, None, false, Some(on)) => TriggerSpec::On(on.clone()),
        _ => {
            return Err(exit::usage(
                "say when to fire: --manual (then `control fire`), --at UTC, --in DURATION \
                 or --on SOURCE:PREDICATE",
            ))
        }
    };
    let arrive = match (args.arrive, args.no_arrive) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let request = Request::Arm(ArmRequest {
        sku: args.sku.clone(),
        qty: args.qty,
        conns: args.conns,
        target: args.target.clone(),
        trigger,
        arrive,
    });
    let reply: ArmReply = client::call(&args.socket.path()?, &request)?;
    if args.json {
        super::print_json(&reply)?;
        return Ok(ExitCode::SUCCESS);
    }
    let what = format!(
        "armed {}: sku {} x{} on {} over {} connection(s)",
        reply.arm, args.sku, args.qty, reply.target, reply.conns
    );
    match &reply.scheduled {
        None if args.on.is_some() => println!(
            "{what}; fires when an event matches; `control wait {}` shows it",
            reply.arm
        ),
        None => println!("{what}; fire with `control fire {}`", reply.arm),
        Some(s) if s.correction_ns != 0 => println!(
            "{what}; fires at {} to arrive at {} (server clock); `control wait {}` shows it",
            s.fire_at, s.at, reply.arm
        ),
        Some(s) => println!(
            "{what}; fires at {}; `control wait {}` shows it",
            s.at, reply.arm
        ),
    }
    Ok(ExitCode::SUCCESS)
}
