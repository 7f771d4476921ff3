//! `control generate` / `bench generate --out DIR` (hidden; `make completions`): shell
//! completions for bash,
//! zsh and fish, and a man page per command, from the clap definition itself.

use clap::CommandFactory;
use clap_complete::Shell;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Where to write `completions/` and `man/`.
    #[arg(long, value_name = "DIR", default_value = "out")]
    out: PathBuf,
}

/// Writes the completions and man pages of the command line `C`, named `name`.
pub fn run<C: CommandFactory>(args: &GenerateArgs, name: &str) -> anyhow::Result<ExitCode> {
    write::<C>(&args.out, name)?;
    println!(
        "{}/completions/ and {}/man/ written for {name}",
        args.out.display(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn write<C: CommandFactory>(out: &Path, name: &str) -> std::io::Result<()> {
    let completions = out.join("completions");
    let man = out.join("man");
    std::fs::create_dir_all(&completions)?;
    std::fs::create_dir_all(&man)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut C::command(), name, &completions)?;
    }
    clap_mangen::generate_to(C::command(), &man)
}
