//! What the `control` and `bench` command lines share, so both binaries keep one contract:
//! the exit codes and how errors are printed (`exit`), and the shell completions and man
//! pages generated from their clap definitions (`generate`).

pub mod exit;
pub mod generate;
