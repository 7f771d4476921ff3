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
    /// A syntax error (no key path: toml's own message, which quotes the line), or a type
    /// error at its full key path.
    pub(crate) fn typed(err: serde_path_to_error::Error<toml::de::Error>, text: &str) -> Self {
        let mut path = err.path().to_string();
        let inner = err.into_inner();
        let message = inner.message().to_owned();
        // serde names a missing or unknown key in its message, with the table's path as
        // the error's: put the key on the path, where a reader looks for it.
        let named = ["unknown field `", "missing field `"]
            .iter()
            .find_map(|p| message.strip_prefix(p))
            .and_then(|rest| rest.split('`').next());
        if let Some(key) = named {
            // serde_path_to_error already ends an unknown key's path with the key.
            if path == "." {
                path = key.to_owned();
            } else if !path.ends_with(&format!(".{key}")) && path != key {
                path = format!("{path}.{key}");
            }
        } else if path == "." {
            return ConfigError::Parse(inner.to_string().trim_end().to_owned());
        }
        let line = inner
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let message = match line {
            Some(line) => format!("{message} (line {line})"),
            None => message,
        };
        ConfigError::Invalid(vec![Problem { path, message }])
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
