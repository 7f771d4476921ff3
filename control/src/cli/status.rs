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

/// Exits 0 when ready, 3 when the daemon is up but not ready (a pool not warm, or the
/// datapath stopped), 1 when there is no daemon to ask.
pub fn run(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let status: StatusReply = client::call(&args.socket.path()?, &Request::Status {})?;
    if args.json {
        super::print_json(&status)?;
    } else {
        print!("{}", render(&status));
    }
    Ok(match status.running && status.ready {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(super::exit::NOT_READY),
    })
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
        if let Some(y) = &t.sync {
            out += &format!(
                "  clock: server {} µs ± {} µs from ours, one way ≈ {} µs (synced {})\n",
                super::micros(y.offset_ns),
                super::micros(y.uncertainty_ns).trim_start_matches('+'),
                super::micros(y.one_way_ns).trim_start_matches('+'),
                y.at
            );
        }
    }
    if let Some(j) = &s.journal {
        let ids = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
        out += &format!("journal {}", j.path);
        for (what, v) in [
            ("re-armed", &j.rearmed),
            ("missed", &j.missed),
            ("unknown", &j.unknown),
        ] {
            if !v.is_empty() {
                out += &format!("; {what} at start: {}", ids(v));
            }
        }
        out += "\n";
        if let Some(why) = &j.unhealthy {
            out += &format!(
                "  JOURNAL UNHEALTHY: the last write failed ({why}); arms are refused until a \
                 write succeeds\n"
            );
        }
        if let Some(t) = &j.torn {
            out += &format!("  a torn last line was dropped at start ({t})\n");
        }
        if j.corrupt_lines > 0 {
            out += &format!(
                "  {} unreadable line(s) skipped at start\n",
                j.corrupt_lines
            );
        }
    }
    if let Some(p) = &s.placement {
        out += &p.line();
        out += "\n";
        for w in &p.warnings {
            out += &format!("  warning: {w}\n");
        }
    }
    if !s.queues.is_empty() {
        out += &crate::protocol::queues_line(&s.queues);
        out += "\n";
    }
    if let Some(m) = &s.metrics {
        out += &format!("metrics on http://{m}/metrics\n");
    }
    if s.arms.is_empty() {
        out += "no open arms\n";
    }
    for a in &s.arms {
        out += &super::arms::line(a);
        out += "\n";
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
                sync: None,
            }],
            journal: None,
            metrics: None,
            queues: vec![],
            placement: None,
            arms: vec![ArmStatus {
                arm: 4,
                sku: "1001".into(),
                qty: 1,
                key: "ab12".into(),
                target: "lab".into(),
                conns: 1,
                state: ArmState::Armed,
                outcomes: 0,
                scheduled: None,
                error_ns: None,
                recovered: None,
            }],
        };
        assert_eq!(
            render(&s),
            "backend af_xdp (bind copy, pinned): not ready\n\
             target lab: 0/8 warm\n  last error (3 so far): certificate not trusted: UnknownIssuer\n\
             arm 4: sku 1001 x1 on lab over 1 conn(s), manual: armed (0 outcome(s)), key ab12\n"
        );
    }

    #[test]
    fn an_unhealthy_journal_says_so_and_why() {
        let s = StatusReply {
            backend: "kernel".into(),
            bind_mode: "kernel".into(),
            pinned: false,
            running: true,
            ready: true,
            targets: vec![],
            journal: Some(crate::protocol::JournalStatus {
                path: "/var/lib/quickdraw/journal.jsonl".into(),
                rearmed: vec![],
                missed: vec![],
                unknown: vec![],
                torn: None,
                corrupt_lines: 0,
                unhealthy: Some("No space left on device (os error 28)".into()),
            }),
            metrics: None,
            arms: vec![],
            queues: vec![],
            placement: None,
        };
        let text = render(&s);
        assert!(
            text.contains(
                "JOURNAL UNHEALTHY: the last write failed (No space left on device (os error 28)); \
                 arms are refused until a write succeeds"
            ),
            "{text}"
        );
    }
}
