//! The crate's one error type: what went wrong reading a configuration, and where.

use std::fmt;
use std::path::PathBuf;

/// One semantic problem in a configuration, at its TOML key path (`targets[0].address`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted TOML key path, with array indices: `appliance.ip`, `targets[1].max_connections`.
    pub path: String,
    /// What is wrong, and when it helps, what would be right.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML or does not match the schema's types.
    #[error("{0}")]
    Parse(String),
    /// The file parsed, but these values are not usable. Every problem is listed.
    #[error("{} problem(s) in configuration:\n{}", .0.len(), list(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    pub(crate) fn parse(err: toml::de::Error) -> Self {
        // toml's message already names the key and quotes the offending line.
        ConfigError::Parse(err.to_string().trim_end().to_owned())
    }

    /// The semantic problems, if this is an [`ConfigError::Invalid`] error.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid(problems) => problems,
            _ => &[],
        }
    }
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}
