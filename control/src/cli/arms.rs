//! `control arms`: every arm the daemon knows, open or recently closed (what the journal
//! held at start included), with its trigger, state and, for scheduled fires, the error.

use super::SocketArgs;
use crate::client;
use crate::protocol::{ArmStatus, ArmsReply, Request};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ArmsArgs {
    /// Print the daemon's reply as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    socket: SocketArgs,
}

pub fn run(args: &ArmsArgs) -> anyhow::Result<ExitCode> {
    let reply: ArmsReply = client::call(&args.socket.path()?, &Request::Arms {})?;
    if args.json {
        super::print_json(&reply)?;
    } else if reply.arms.is_empty() {
        println!("no arms");
    } else {
        for a in &reply.arms {
            println!("{}", line(a));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One arm on one line.
pub fn line(a: &ArmStatus) -> String {
    let when = match &a.scheduled {
        None => "manual".to_owned(),
        Some(s) if s.correction_ns != 0 => format!("at {} (fires {})", s.at, s.fire_at),
        Some(s) => format!("at {}", s.at),
    };
    let mut out = format!(
        "arm {}: sku {} x{} on {} over {} conn(s), {when}: {} ({} outcome(s)), key {}",
        a.arm,
        a.sku,
        a.qty,
        a.target,
        a.conns,
        a.state.name(),
        a.outcomes,
        a.key
    );
    if let Some(e) = a.error_ns {
        out += &format!(", error {} µs", super::micros(e));
    }
    if let Some(r) = &a.recovered {
        out += &format!(" [{r} at restart]");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ArmState, ScheduleView};

    #[test]
    fn one_line_per_arm() {
        let mut a = ArmStatus {
            arm: 3,
            sku: "1001".into(),
            qty: 1,
            key: "ab".into(),
            target: "lab".into(),
            conns: 1,
            state: ArmState::Done,
            outcomes: 1,
            scheduled: Some(ScheduleView {
                at: "2026-11-27T08:00:00.000000Z".into(),
                fire_at: "2026-11-27T08:00:00.000000Z".into(),
                deadline_ns: 5,
                correction_ns: 0,
            }),
            error_ns: Some(12_340),
            recovered: Some("rearmed".into()),
        };
        assert_eq!(
            line(&a),
            "arm 3: sku 1001 x1 on lab over 1 conn(s), at 2026-11-27T08:00:00.000000Z: done \
             (1 outcome(s)), key ab, error +12.3 µs [rearmed at restart]"
        );
        a.scheduled = None;
        a.error_ns = None;
        a.recovered = None;
        a.state = ArmState::Missed;
        assert!(line(&a).contains("manual: missed"), "{}", line(&a));
    }
}
