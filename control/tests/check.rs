//! `control check` as a user runs it: exit codes and messages.

use std::process::Command;

fn control() -> Command {
    Command::new(env!("CARGO_BIN_EXE_control"))
}

#[test]
fn lab_config_checks_ok() {
    let lab = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/lab.toml");
    let out = control().args(["check", "--config", lab]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("target lab: 198.18.0.2:443 as target.lab"),
        "{stdout}"
    );
}

#[test]
fn bad_config_exits_2_naming_the_key() {
    let dir = std::env::temp_dir().join(format!("qd-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    let lab = include_str!("../../config/lab.toml");
    std::fs::write(
        &path,
        lab.replace("max_connections = 8", "max_connections = 500"),
    )
    .unwrap();
    let out = control()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("targets[0].max_connections"), "{stderr}");

    let out = control()
        .args(["check", "--config", "/nonexistent/qd.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_request_template_exits_2_naming_the_key() {
    let dir = std::env::temp_dir().join(format!("qd-check-template-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad-template.toml");
    let lab = include_str!("../../config/lab.toml");
    let bad = lab.replace("path = \"/api/order\"", "path = \"/api/{order}\"");
    assert_ne!(bad, lab);
    std::fs::write(&path, bad).unwrap();
    let out = control()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("targets[0].request: path: unknown placeholder `{order}`"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
