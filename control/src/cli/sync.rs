//! `control sync [--target NAME]`: estimate the target's clock offset from ours and the
//! round trip, from the `Date` header of keep-warm requests sent at chosen instants over
//! warm connections. The result is kept by the daemon for `arm --arrive`.

use super::SocketArgs;
use crate::client;
use crate::protocol::{Request, SyncReply};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Target name; may be left out when only one is configured.
    #[arg(long)]
    target: Option<String>,
    /// Print the daemon's reply as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    socket: SocketArgs,
}

pub fn run(args: &SyncArgs) -> anyhow::Result<ExitCode> {
    let request = Request::Sync {
        target: args.target.clone(),
    };
    let reply: SyncReply = client::call(&args.socket.path()?, &request)?;
    if args.json {
        super::print_json(&reply)?;
    } else {
        print!("{}", render(&reply));
    }
    Ok(ExitCode::SUCCESS)
}

fn render(r: &SyncReply) -> String {
    format!(
        "target {}: server clock {} µs ± {} µs from ours (round trip {} µs, one way ≈ {} µs)\n  \
         {} probes ({} unanswered) in {} ms, bracket {} µs, at {}\n",
        r.target,
        super::micros(r.offset_ns),
        super::micros(r.uncertainty_ns).trim_start_matches('+'),
        super::micros(r.rtt_ns).trim_start_matches('+'),
        super::micros(r.one_way_ns).trim_start_matches('+'),
        r.probes,
        r.failed,
        r.elapsed_ns / 1_000_000,
        super::micros(r.resolution_ns).trim_start_matches('+'),
        r.at
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_offset_and_bounds() {
        let r = super::SyncReply {
            target: "lab".into(),
            offset_ns: -12_345,
            uncertainty_ns: 150_000,
            rtt_ns: 240_000,
            one_way_ns: 120_000,
            resolution_ns: 580_000,
            probes: 31,
            failed: 0,
            elapsed_ns: 2_870_000_000,
            at: "2026-11-27T08:00:00.000000Z".into(),
        };
        assert_eq!(
            super::render(&r),
            "target lab: server clock -12.3 µs ± 150.0 µs from ours (round trip 240.0 µs, one \
             way ≈ 120.0 µs)\n  31 probes (0 unanswered) in 2870 ms, bracket 580.0 µs, at \
             2026-11-27T08:00:00.000000Z\n"
        );
    }
}
