//! `control fire [ARM_ID]`: fire an armed order and print how each connection's share
//! ended, with trigger→tx, →first byte and →complete in microseconds. Without an id it
//! fires the only armed manual order; a scheduled arm fires early (by hand, its schedule
//! dropped) only when named.

use super::SocketArgs;
use crate::client;
use crate::protocol::{FireOutcome, FireReply, Request};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct FireArgs {
    /// The arm to fire; left out, the only armed manual one. Naming a scheduled arm
    /// fires it now, before its time.
    arm: Option<u64>,
    /// Print the daemon's reply, raw nanosecond stamps included, as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    socket: SocketArgs,
}

/// Exits 0 when every outcome arrived (whatever the HTTP statuses), 1 when the daemon
/// stopped waiting before all did.
pub fn run(args: &FireArgs) -> anyhow::Result<ExitCode> {
    let reply: FireReply = client::call(&args.socket.path()?, &Request::Fire { arm: args.arm })?;
    if args.json {
        super::print_json(&reply)?;
    } else {
        print!("{}", render(&reply));
    }
    if !reply.complete {
        eprintln!(
            "control: {} of {} outcomes arrived before the daemon stopped waiting",
            reply.outcomes.len(),
            reply.expected
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The outcomes, one line per connection, after a line saying which arm and, for a
/// scheduled fire, when and how late its trigger was.
pub fn render(r: &FireReply) -> String {
    let mut out = format!(
        "arm {} (key {}): {} of {} outcome(s)\n",
        r.arm,
        r.key,
        r.outcomes.len(),
        r.expected
    );
    if let Some(s) = &r.scheduled {
        out += &format!("  scheduled at {}", s.at);
        if s.correction_ns != 0 {
            out += &format!(" (fired for arrival, at {})", s.fire_at);
        }
        match r.error_ns {
            Some(e) => out += &format!(": trigger error {} µs\n", super::micros(e)),
            None if r.outcomes.is_empty() => out += ": not fired yet\n",
            None => out += ": fired by hand\n",
        }
    }
    if let Some(how) = &r.recovered {
        out += &format!("  {how} at the daemon's restart\n");
    }
    for o in &r.outcomes {
        out += &line(o);
    }
    out
}

fn line(o: &FireOutcome) -> String {
    let conn = o.conn.map_or_else(|| "-".to_owned(), |c| c.to_string());
    let result = match (o.result.as_str(), o.status, &o.unknown) {
        ("status", Some(code), _) => code.to_string(),
        ("unknown", _, Some(why)) => format!("unknown ({why})"),
        ("not_sent", _, _) => "not sent".to_owned(),
        (other, _, _) => other.to_owned(),
    };
    let s = o.stamps;
    format!(
        "  conn {conn:>2}  {result:<10}  trigger→tx {} µs  →first byte {} µs  →complete {} µs\n",
        since(s.trigger_ns, s.tx_ns),
        since(s.trigger_ns, s.first_byte_ns),
        since(s.trigger_ns, s.complete_ns),
    )
}

/// Microseconds from `from` to `to` with one decimal; "-" when a stamp is missing (0).
fn since(from: u64, to: u64) -> String {
    if from == 0 || to == 0 || to < from {
        return "-".to_owned();
    }
    let tenths = (to - from + 50) / 100;
    format!("{}.{}", tenths / 10, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::StampsView;

    #[test]
    fn microseconds_with_one_decimal() {
        assert_eq!(since(1_000, 13_300), "12.3");
        assert_eq!(since(1_000, 1_049), "0.0");
        assert_eq!(since(1_000, 1_050), "0.1");
        assert_eq!(since(0, 5), "-");
        assert_eq!(since(5, 0), "-");
        assert_eq!(since(1_000_000, 2_001_000_000), "2000000.0");
    }

    #[test]
    fn renders_each_connection() {
        let stamps = StampsView {
            trigger_ns: 1_000,
            tx_ns: 13_300,
            first_byte_ns: 400_000,
            complete_ns: 410_050,
            scheduled_ns: 0,
        };
        let mut reply = FireReply {
            state: None,
            scheduled: None,
            error_ns: None,
            recovered: None,
            arm: 2,
            key: "ab".into(),
            expected: 3,
            complete: true,
            outcomes: vec![
                FireOutcome {
                    conn: Some(0),
                    result: "status".into(),
                    status: Some(200),
                    unknown: None,
                    stamps,
                },
                FireOutcome {
                    conn: Some(5),
                    result: "unknown".into(),
                    status: None,
                    unknown: Some("timeout".into()),
                    stamps,
                },
                FireOutcome {
                    conn: None,
                    result: "not_sent".into(),
                    status: None,
                    unknown: None,
                    stamps: StampsView {
                        trigger_ns: 1_000,
                        ..Default::default()
                    },
                },
            ],
        };
        assert_eq!(
            render(&reply),
            "arm 2 (key ab): 3 of 3 outcome(s)\n\
             \x20 conn  0  200         trigger→tx 12.3 µs  →first byte 399.0 µs  →complete 409.1 µs\n\
             \x20 conn  5  unknown (timeout)  trigger→tx 12.3 µs  →first byte 399.0 µs  →complete 409.1 µs\n\
             \x20 conn  -  not sent    trigger→tx - µs  →first byte - µs  →complete - µs\n"
        );
        reply.scheduled = Some(crate::protocol::ScheduleView {
            at: "2026-11-27T08:00:00.000000Z".into(),
            fire_at: "2026-11-27T08:00:00.000000Z".into(),
            deadline_ns: 1,
            correction_ns: 0,
        });
        reply.error_ns = Some(23_456);
        reply.outcomes.truncate(1);
        assert_eq!(
            render(&reply),
            "arm 2 (key ab): 1 of 3 outcome(s)\n  scheduled at 2026-11-27T08:00:00.000000Z: \
             trigger error +23.5 µs\n\
             \x20 conn  0  200         trigger→tx 12.3 µs  →first byte 399.0 µs  →complete 409.1 µs\n"
        );
    }
}
