//! The exit-code contract as a user meets it, with no daemon and no privileges: 0 ok,
//! 1 runtime failure, 2 usage or configuration error (3, up but not ready, needs a
//! daemon: see the lab tests). Each cause is said once.

use std::process::{Command, Output};

fn control(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_control"))
        .args(args)
        .env_remove("QUICKDRAW_CONFIG")
        .env_remove("QUICKDRAW_SOCKET")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_missing_config_is_2_from_check_and_up_alike_and_says_its_cause_once() {
    for cmd in ["check", "up"] {
        let out = control(&[cmd, "-c", "/nonexistent/qd.toml"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {err}");
        assert_eq!(
            err.matches("No such file or directory").count(),
            1,
            "{cmd}: {err}"
        );
        assert!(!err.contains("stack backtrace"), "{err}");
    }
}

#[test]
fn bad_arguments_are_2() {
    for args in [
        &["arm", "--sku", "1", "--in", "1 parsec"][..],
        &["up", "-c", "x.toml", "--backend", "carrier-pigeon"],
        &["fire", "--no-such-flag"],
        &["status", "extra"],
    ] {
        let out = control(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn no_daemon_is_a_runtime_failure() {
    let socket = "/nonexistent/quickdraw.sock";
    for cmd in ["status", "stats", "down", "arms"] {
        let out = control(&[cmd, "--socket", socket, "--json"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {err}");
        assert!(
            err.contains("no daemon at /nonexistent/quickdraw.sock"),
            "{err}"
        );
        assert!(out.stdout.is_empty(), "nothing but JSON on stdout");
    }
    // The socket from the environment, as from --socket.
    let out = Command::new(env!("CARGO_BIN_EXE_control"))
        .arg("status")
        .env("QUICKDRAW_SOCKET", socket)
        .output()
        .unwrap();
    assert!(stderr(&out).contains(socket), "{}", stderr(&out));
}

#[test]
fn durations_are_humantime() {
    // `--in 1min` is accepted (it fails later only because no daemon runs).
    let out = control(&[
        "arm",
        "--sku",
        "1",
        "--in",
        "1min",
        "--socket",
        "/nonexistent/s",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no daemon"), "{}", stderr(&out));
}

#[test]
fn check_json_is_one_line_on_stdout() {
    let lab = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/lab.toml");
    // --offline: the lab's CA and qd0 need not exist for the file to be right.
    let out = control(&["check", "-c", lab, "--offline", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    let out = control(&["check", "-c", "/nonexistent/qd.toml", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"].as_array().unwrap().len(), 1);
}
