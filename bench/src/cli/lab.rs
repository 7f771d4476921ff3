//! `bench lab up | down | status [--json] | probe [--json] | loss PCT`.

use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use quickdraw_lab::Probe;
use quickdraw_lab::{self as lab, LabOptions};

#[derive(Debug, Args)]
pub(crate) struct LabArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Build the lab (netns, veth, CA, nginx); nothing happens if it is up already.
    Up {
        /// nginx keepalive_timeout, seconds (applies when the lab is built).
        #[arg(long, default_value_t = 75, value_name = "SECONDS")]
        keepalive_timeout: u64,
        /// RX/TX queues on each end of the veth; with more than one, the peer spreads its
        /// flows over them by hash, as RSS does on a NIC.
        #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
        queues: u32,
    },
    /// Tear the lab down completely, even a half-made one.
    Down,
    /// Drop PCT % of TCP frames each way on the peer (qd1): 0 removes it, 100 is a
    /// blackhole. ARP and non-TCP always pass. Stays set after this command exits.
    Loss {
        /// Percent of IPv4/TCP frames dropped in each direction, 0..=100.
        #[arg(value_parser = clap::value_parser!(u8).range(0..=100))]
        pct: u8,
    },
    /// Show the lab's addresses, files and whether it is up.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One verified TLS 1.3 GET /healthz from 198.18.0.1 to target.lab, timed.
    Probe {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(args: LabArgs) -> anyhow::Result<()> {
    match args.action {
        Action::Up {
            keepalive_timeout,
            queues,
        } => {
            let options = LabOptions {
                keepalive_timeout: Duration::from_secs(keepalive_timeout),
                queues,
                ..LabOptions::default()
            };
            let status = lab::up(&options).context("bench lab up")?;
            print!("{status}");
        }
        Action::Down => {
            lab::down().context("bench lab down")?;
            println!("lab: down");
        }
        Action::Loss { pct } => {
            if !lab::status().context("bench lab loss")?.up {
                bail!("the lab is not up; run `bench lab up`");
            }
            lab::loss::set(pct).context("bench lab loss")?;
            let now = lab::loss::current().context("bench lab loss")?;
            println!(
                "lab loss: {now}% of TCP frames each way on {}",
                lab::PEER_IF
            );
        }
        Action::Status { json } => {
            let status = lab::status().context("bench lab status")?;
            if json {
                println!("{}", serde_json::to_string(&status)?);
            } else {
                print!("{status}");
            }
        }
        Action::Probe { json } => {
            let status = lab::status().context("bench lab probe")?;
            if !status.up {
                bail!("the lab is not up; run `bench lab up`");
            }
            let report = Probe::lab().healthz().context("bench lab probe")?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("GET /healthz {report}");
            }
        }
    }
    Ok(())
}
