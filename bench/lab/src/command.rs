//! Running the external tools the lab is made of (`ip`, `ethtool`, `sysctl`, `nginx`, `kill`),
//! with errors that carry the command line and its stderr.

use std::process::{Command, Output, Stdio};

use crate::Error;

/// Runs `program args..` to completion; a non-zero exit is an error carrying stderr.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<Output, Error> {
    let output = Command::new(program)
        .args(args)
        // The lab's tools never read input; a stray prompt must not hang `up`.
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            command: line(program, args),
            source,
        })?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(Error::Command {
            command: line(program, args),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// Runs a command whose standard output is JSON (`ip -j ...`) and parses it. Empty output is
/// `null`: `ip -j netns list` prints nothing at all when there is no namespace.
pub(crate) fn run_json(program: &str, args: &[&str]) -> Result<serde_json::Value, Error> {
    let output = run(program, args)?;
    if output.stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(&output.stdout).map_err(|e| Error::Output {
        command: line(program, args),
        detail: e.to_string(),
    })
}

/// The command as a user would type it, for error messages.
pub(crate) fn line(program: &str, args: &[&str]) -> String {
    std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_carries_command_and_stderr() {
        let err = run("sh", &["-c", "echo oops >&2; exit 3"]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("sh -c"), "{text}");
        assert!(text.contains("oops"), "{text}");
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let err = run("/nonexistent/quickdraw-tool", &[]).unwrap_err();
        assert!(matches!(err, Error::Spawn { .. }), "{err}");
    }

    #[test]
    fn empty_json_output_is_null() {
        assert_eq!(run_json("true", &[]).unwrap(), serde_json::Value::Null);
        let v = run_json("echo", &[r#"[{"name":"qdlab"}]"#]).unwrap();
        assert_eq!(v[0]["name"], "qdlab");
    }
}
