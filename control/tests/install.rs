//! `make install` into a staging root (DESTDIR, PREFIX): the tree it writes, the unit's
//! substituted paths and hardening, the installed binary reading the installed example
//! configuration, an operator's configuration left alone on reinstall, and (where
//! systemd-analyze exists) the unit verified by systemd itself.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// A build directory holding the binaries `make install` copies. `bench` is not built by
/// this crate's tests: a copy of `control` stands in for it (the tree is what is tested).
fn build_dir(dir: &Path) -> PathBuf {
    let src = dir.join("build");
    std::fs::create_dir_all(&src).unwrap();
    for name in ["control", "bench"] {
        std::fs::copy(env!("CARGO_BIN_EXE_control"), src.join(name)).unwrap();
    }
    src
}

fn make_install(vars: &[String]) {
    let out = Command::new("make")
        .args(["-s", "-C", REPO, "install"])
        .args(vars)
        .output()
        .expect("make runs");
    assert!(
        out.status.success(),
        "make install: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every file and directory under `root`, as "mode path" relative to it, sorted.
fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            out.push(format!("{:o} {rel}", meta.permissions().mode() & 0o7777));
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort_by(|a, b| {
        a.split_once(' ')
            .unwrap()
            .1
            .cmp(b.split_once(' ').unwrap().1)
    });
    out
}

#[test]
fn make_install_writes_the_tree_with_destdir_and_prefix() {
    let dir = std::env::temp_dir().join(format!("qd-install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let src = build_dir(&dir);
    let root = dir.join("root");
    let vars = [
        format!("DESTDIR={}", root.display()),
        "PREFIX=/usr".to_owned(),
        format!("BUILD_DIR={}", src.display()),
    ];
    make_install(&vars);
    assert_eq!(
        tree(&root),
        [
            "755 etc",
            "755 etc/quickdraw",
            "644 etc/quickdraw/quickdraw.toml",
            "644 etc/quickdraw/quickdraw.toml.example",
            "755 usr",
            "755 usr/bin",
            "755 usr/bin/bench",
            "755 usr/bin/control",
            "755 usr/lib",
            "755 usr/lib/systemd",
            "755 usr/lib/systemd/system",
            "644 usr/lib/systemd/system/quickdraw.service",
            "755 usr/share",
            "755 usr/share/doc",
            "755 usr/share/doc/quickdraw",
            "644 usr/share/doc/quickdraw/README.md",
        ]
    );

    let unit =
        std::fs::read_to_string(root.join("usr/lib/systemd/system/quickdraw.service")).unwrap();
    for line in [
        "Type=notify",
        "ExecStart=/usr/bin/control up --config /etc/quickdraw/quickdraw.toml",
        "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_BPF CAP_PERFMON CAP_IPC_LOCK CAP_SYS_NICE",
        "LimitMEMLOCK=infinity",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_NETLINK AF_XDP",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line:?} not in the unit:\n{unit}");
    }
    assert!(!unit.contains('@'), "a placeholder left: {unit}");

    // The installed binary accepts the installed example.
    let config = root.join("etc/quickdraw/quickdraw.toml");
    let out = Command::new(root.join("usr/bin/control"))
        .args(["check", "--offline", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A reinstall keeps the operator's configuration.
    std::fs::write(&config, "# mine\n").unwrap();
    make_install(&vars);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "# mine\n");

    // systemd's own reading of the unit, where the paths it names exist (no DESTDIR).
    let has_analyze = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok();
    if has_analyze {
        let prefix = dir.join("prefix");
        make_install(&[
            format!("PREFIX={}", prefix.display()),
            format!("SYSCONFDIR={}", dir.join("etc").display()),
            format!("BUILD_DIR={}", src.display()),
        ]);
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(prefix.join("lib/systemd/system/quickdraw.service"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "systemd-analyze verify: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
