//! The exit-code contract, the same for `control` and `bench` (README, "Exit codes"):
//! 0 ok, 1 runtime failure, 2 usage or configuration error, 3 up but not ready. Errors
//! are printed once each cause, and never with a backtrace.

use std::process::ExitCode;

/// The command ran and failed (the daemon refused, the datapath is gone, I/O failed).
pub const RUNTIME: u8 = 1;
/// The command was asked for wrongly: arguments or configuration (clap exits 2 too).
pub const USAGE: u8 = 2;
/// The daemon is up but not ready (a pool not warm, the datapath stopped).
pub const NOT_READY: u8 = 3;

/// A mistake in how the command was asked for: exit [`USAGE`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// Wraps a usage mistake for `?`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Usage(message.into()).into()
}

/// The exit code `err` calls for: a usage mistake or a bad configuration is [`USAGE`],
/// anything else [`RUNTIME`].
pub fn code(err: &anyhow::Error) -> u8 {
    let misuse = err.chain().any(|e| {
        e.is::<Usage>()
            || e.is::<quickdraw_config::ConfigError>()
            || e.is::<humantime::DurationError>()
    });
    if misuse {
        USAGE
    } else {
        RUNTIME
    }
}

/// The error and each cause it does not already say, joined by ": ".
pub fn message(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let c = cause.to_string();
        if text.is_empty() {
            text = c;
        } else if !text.contains(&c) {
            text = format!("{text}: {c}");
        }
    }
    text
}

/// Prints `err` for `program` on stderr and returns its exit code.
pub fn report(program: &str, err: &anyhow::Error) -> ExitCode {
    eprintln!("{program}: {}", message(err));
    ExitCode::from(code(err))
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn each_cause_is_said_once() {
        let missing = std::io::Error::from_raw_os_error(2);
        let err = Err::<(), _>(quickdraw_config::ConfigError::Read {
            path: "/nope.toml".into(),
            source: missing,
        })
        .context("loading the configuration")
        .unwrap_err();
        let text = message(&err);
        assert_eq!(text.matches("os error 2").count(), 1, "{text}");
        assert!(text.starts_with("loading the configuration: cannot read /nope.toml"));
        assert_eq!(
            code(&err),
            USAGE,
            "a configuration that cannot be read is misuse"
        );
    }

    #[test]
    fn usage_and_runtime_are_told_apart() {
        assert_eq!(code(&usage("--at or --in, not both")), USAGE);
        let late = anyhow::anyhow!("the daemon refused").context("arm");
        assert_eq!(code(&late), RUNTIME);
    }
}
