//! `control check --config FILE`: validate a configuration and say what it describes,
//! including each target's order request template and keep-warm path; then run the full
//! plan against this host (CA files read, interface and queues exist, a way to every
//! target, the start-up plan built) unless `--offline`.

use crate::doctor::{self, Host, Status};
use crate::setup;
use quickdraw_config::{Config, TrustAnchors};
use quickdraw_datapath::http;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The TOML configuration to validate.
    #[arg(long, short, value_name = "FILE", env = "QUICKDRAW_CONFIG")]
    config: PathBuf,
    /// Only the file itself: skip what needs this host (CA files, interface, queues).
    #[arg(long)]
    offline: bool,
    /// Print the verdict as JSON: `{"config", "ok", "problems"}`.
    #[arg(long)]
    json: bool,
}

/// Exit code 0 when valid, 2 when not (every problem printed on stderr, one per line, or
/// in the JSON).
pub fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let (config, problems) = match Config::load(&args.config) {
        Ok(c) => {
            let mut problems = request_problems(&c);
            // The host part of the plan only for a file that is right in itself.
            if problems.is_empty() && !args.offline {
                problems.extend(host_problems(&c));
            }
            (Some(c), problems)
        }
        Err(err) => (None, vec![super::exit::message(&err.into())]),
    };
    if args.json {
        super::print_json(&serde_json::json!({
            "config": args.config.display().to_string(),
            "ok": problems.is_empty(),
            "problems": problems,
        }))?;
    } else {
        for p in &problems {
            eprintln!("{}: {p}", args.config.display());
        }
    }
    let Some(config) = config.filter(|_| problems.is_empty()) else {
        return Ok(ExitCode::from(super::exit::USAGE));
    };
    if args.json {
        return Ok(ExitCode::SUCCESS);
    }
    let a = &config.appliance;
    println!(
        "{}: ok: backend {:?}, appliance {}/{} on {} queue {} (core {}, xdp {:?})",
        args.config.display(),
        a.backend,
        a.ip,
        a.prefix_len,
        a.interface,
        a.queue,
        a.core,
        a.xdp_mode
    );
    for t in &config.targets {
        let trust = match &t.trust {
            TrustAnchors::System => "system roots".to_owned(),
            TrustAnchors::CaFile(p) => format!("CA {}", p.display()),
        };
        println!(
            "  target {}: {} as {} ({trust}); caps: {} connections, {} fires per arm",
            t.name, t.address, t.server_name, t.max_connections, t.max_fires_per_arm
        );
        println!("    order: {} {}", t.request.method, t.request.path);
    }
    let tm = &config.timing;
    println!(
        "  timing: arrive {}, min lead {} ms, sync ≤ {} probes / {} ms",
        tm.arrive, tm.min_lead_ms, tm.sync_max_probes, tm.sync_max_ms
    );
    println!(
        "  control socket {} (uid {}), journal {}, metrics {}",
        config.control.socket.display(),
        config
            .control
            .uid
            .map_or_else(|| "of the daemon".to_owned(), |u| u.to_string()),
        config.journal.path.display(),
        if config.metrics.enabled {
            format!("on {}", config.metrics.listen)
        } else {
            "off".to_owned()
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// The full plan against this host (see `doctor::plan`): each failed check as
/// `check: what (remedy)`.
fn host_problems(config: &Config) -> Vec<String> {
    doctor::plan::checks(&Host::live(), config)
        .into_iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| format!("{}: {} ({})", c.check, c.detail, c.remedy))
        .collect()
}

/// What the config crate cannot check without the datapath's HTTP rules: each target's
/// request template and the keep-warm request, at their key paths.
fn request_problems(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, t) in config.targets.iter().enumerate() {
        if let Err(e) = setup::template(t).validate() {
            problems.push(format!("targets[{i}].request: {e}"));
        }
        if let Err(e) = http::warm_request(&t.server_name, t.address.port(), &t.warm_path) {
            problems.push(format!("targets[{i}].warm_path: {e}"));
        }
    }
    problems
}
