//! The `control` subcommands, one module each.

pub mod check;
