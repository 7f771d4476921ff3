//! `control check` as a user runs it: exit codes and messages.

use std::process::Command;

fn control() -> Command {
    Command::new(env!("CARGO_BIN_EXE_control"))
}

#[test]
fn lab_config_checks_ok_offline() {
    let lab = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/lab.toml");
    let out = control()
        .args(["check", "--offline", "--config", lab])
        .output()
        .unwrap();
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

/// The full plan against this host: a CA that exists, an interface that exists (`lo`,
/// one queue), a target on the subnet. Then each of those broken in turn: exit 2, named.
#[test]
fn full_plan_reads_the_ca_and_finds_the_interface_and_queue() {
    let dir = std::env::temp_dir().join(format!("qd-check-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, params.self_signed(&key).unwrap().pem()).unwrap();
    let lab = include_str!("../../config/lab.toml")
        .replace("/run/quickdraw-lab/ca.pem", ca.to_str().unwrap())
        .replace("interface = \"qd0\"", "interface = \"lo\"");
    let run = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let out = control()
            .arg("check")
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let (code, text) = run("ok.toml", &lab);
    assert_eq!(code, Some(0), "{text}");

    let (code, text) = run(
        "no-ca.toml",
        &lab.replace(ca.to_str().unwrap(), "/nonexistent/qd-ca.pem"),
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("trust: target lab") && text.contains("/nonexistent/qd-ca.pem"),
        "{text}"
    );

    let (code, text) = run(
        "no-if.toml",
        &lab.replace("interface = \"lo\"", "interface = \"qdnone0\""),
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("no interface qdnone0"), "{text}");

    let (code, text) = run("no-queue.toml", &lab.replace("queue = 0", "queue = 5"));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("there is no queue 5"), "{text}");

    let (code, text) = run(
        "off-subnet.toml",
        &lab.replace("198.18.0.2:443", "203.0.113.7:443"),
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("no gateway is set"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
