//! The `bench` command line: one file per subcommand.

pub use quickdraw_cli::{exit, generate};

mod demo;

mod lab;
mod run;

use clap::{Parser, Subcommand};

/// quickdraw's lab and benchmarks.
#[derive(Debug, Parser)]
#[command(name = "bench", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The lab: nginx behind TLS 1.3 in network namespace qdlab, reached over veth qd0/qd1.
    Lab(lab::LabArgs),
    /// A measured end-to-end run: af_xdp vs kernel vs the raw-frame floor, side by side.
    Run(Box<run::RunArgs>),
    /// The Quick start's main job: the whole path shown end to end in the lab.
    Demo {
        /// The appliance configuration the orders use.
        #[arg(
            long,
            short,
            value_name = "FILE",
            env = "QUICKDRAW_CONFIG",
            default_value = "config/lab.toml"
        )]
        config: std::path::PathBuf,
    },
    /// Write shell completions and man pages (`make completions`).
    #[command(hide = true)]
    Generate(generate::GenerateArgs),
}

pub(crate) fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Lab(args) => lab::run(args),
        Command::Run(args) => run::run(*args),
        Command::Demo { config } => demo::run(&config),
        Command::Generate(args) => generate::run::<Cli>(&args, "bench").map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn lab_subcommands_parse() {
        for args in [
            &["bench", "lab", "up"][..],
            &["bench", "lab", "up", "--keepalive-timeout", "5"],
            &["bench", "lab", "down"],
            &["bench", "lab", "status"],
            &["bench", "lab", "status", "--json"],
            &["bench", "lab", "probe", "--json"],
            &["bench", "lab", "loss", "5"],
            &["bench", "lab", "loss", "0"],
            &["bench", "lab", "loss", "100"],
        ] {
            Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
        assert!(Cli::try_parse_from(["bench", "lab", "sideways"]).is_err());
        assert!(Cli::try_parse_from(["bench", "lab", "loss", "101"]).is_err());
    }

    #[test]
    fn run_takes_several_gaps_and_fire_counts() {
        let args = [
            "bench",
            "run",
            "--gaps",
            "2ms,20ms,1s",
            "--fires",
            "300,300,40",
            "--per-fire",
            "f.jsonl",
        ];
        Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn an_unknown_backend_is_a_usage_error_not_a_panic() {
        let err = Cli::try_parse_from(["bench", "run", "--backends", "foo"]).unwrap_err();
        assert_eq!(err.exit_code(), i32::from(exit::USAGE));
        assert!(err.to_string().contains("af_xdp"), "{err}");
        let ok = Cli::try_parse_from(["bench", "run", "--backends", "kernel,floor", "-c", "x"]);
        assert!(ok.is_ok());
    }
}
