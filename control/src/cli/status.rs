//! `control status`: the backend, whether every target is warm, and the open arms.

use super::SocketArgs;
use crate::client;
use crate::protocol::{Request, StatusReply};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print the daemon's reply as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    socket: SocketArgs,
}

pub fn run(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let status: StatusReply = client::call(&args.socket.path()?, &Request::Status {})?;
    if args.json {
        super::print_json(&status)?;
    } else {
        print!("{}", render(&status));
    }
    Ok(ExitCode::SUCCESS)
}

fn render(s: &StatusReply) -> String {
    let readiness = match (s.running, s.ready) {
        (false, _) => "datapath NOT RUNNING",
        (true, true) => "ready",
        (true, false) => "not ready",
    };
    let pinned = if s.pinned { "pinned" } else { "unpinned" };
    let mut out = format!(
        "backend {} (bind {}, {pinned}): {readiness}\n",
        s.backend, s.bind_mode
    );
    for t in &s.targets {
        out += &format!("target {}: {}/{} warm\n", t.name, t.warm, t.wanted);
        if let Some(e) = &t.last_error {
            out += &format!("  last error ({} so far): {e}\n", t.errors);
        }
    }
    if s.arms.is_empty() {
        out += "no open arms\n";
    }
    for a in &s.arms {
        let state = serde_json::to_value(a.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        out += &format!(
            "arm {}: sku {} x{} on {} over {} conn(s): {state} ({} outcome(s)), key {}\n",
            a.arm, a.sku, a.qty, a.target, a.conns, a.outcomes, a.key
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ArmState, ArmStatus, TargetStatus};

    #[test]
    fn renders_pools_errors_and_arms() {
        let s = StatusReply {
            backend: "af_xdp".into(),
            bind_mode: "copy".into(),
            pinned: true,
            running: true,
            ready: false,
            targets: vec![TargetStatus {
                name: "lab".into(),
                warm: 0,
                wanted: 8,
                last_error: Some("certificate not trusted: UnknownIssuer".into()),
                errors: 3,
            }],
            arms: vec![ArmStatus {
                arm: 4,
                sku: "1001".into(),
                qty: 1,
                key: "ab12".into(),
                target: "lab".into(),
                conns: 1,
                state: ArmState::Armed,
                outcomes: 0,
            }],
        };
        assert_eq!(
            render(&s),
            "backend af_xdp (bind copy, pinned): not ready\n\
             target lab: 0/8 warm\n  last error (3 so far): certificate not trusted: UnknownIssuer\n\
             arm 4: sku 1001 x1 on lab over 1 conn(s): armed (0 outcome(s)), key ab12\n"
        );
    }
}
