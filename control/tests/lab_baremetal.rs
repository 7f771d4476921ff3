//! The bare-metal deploy, rehearsed in the lab: flows on any of four queues, the datapath
//! pinned to core 1 from a daemon started under `taskset -c 0`, `trust = "system"` read
//! through `SSL_CERT_FILE`, and the daemon run as an unprivileged user holding only its
//! listed capabilities. Privileged (root: netns, veth, XDP, setpriv); each test holds its
//! own lab, so they run one at a time.

use quickdraw_lab::LabOptions;
use quickdraw_lab::LabSession;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::{Daemon, LAB_CONFIG, READY_WITHIN};

/// What the daemon needs and nothing more (README, "Deploying on bare metal"). Without
/// perfmon, loading the steering program fails with EACCES on this kernel (6.18):
/// measured, by running this test with it left out.
const CAPABILITIES: &[&str] = &[
    "net_admin",
    "net_raw",
    "bpf",
    "perfmon",
    "ipc_lock",
    "sys_nice",
];

/// A scratch directory for one test's config, socket and journal.
fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("qd-lab-bm-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("run")).unwrap();
    dir
}

/// `control up` run through `prefix` (taskset, setpriv...), whose last element is the
/// `control` binary; pinned as configured, with `env` added.
fn daemon(prefix: &[&str], dir: &Path, config: &Path, env: &[(&str, &Path)]) -> Daemon {
    let socket = dir.join("run/control.sock");
    let mut cmd = Command::new(prefix[0]);
    cmd.args(&prefix[1..])
        .arg("up")
        .arg("--config")
        .arg(config)
        .args(["--metrics", "127.0.0.1:0", "--socket"])
        .arg(&socket)
        .arg("--journal")
        .arg(dir.join("state/journal.jsonl"))
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Daemon {
        child: cmd.spawn().expect("control up starts"),
        socket,
        dir: dir.to_owned(),
    }
}

/// A burst of eight orders over eight connections, every one answered 200.
fn burst_of_eight(daemon: &mut Daemon) {
    let (ready, status) = daemon.status_until(READY_WITHIN, |s| s["ready"] == true);
    assert!(ready, "never ready: {status}");
    assert_eq!(status["targets"][0]["warm"], 8, "{status}");
    let armed = daemon.json(&["arm", "--sku", "1001", "--conns", "8", "--manual", "--json"]);
    let fired = daemon.json(&["fire", &armed["arm"].to_string(), "--json"]);
    let ok = fired["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["status"] == 200)
        .count();
    assert_eq!(ok, 8, "{fired}");
}

#[test]
fn four_queues_every_connection_warm_and_frames_on_several_queues() {
    let lab = LabSession::start_with(LabOptions {
        queues: 4,
        ..LabOptions::default()
    })
    .expect("lab up with 4 queues");
    let mut daemon = Daemon::up("mq", Path::new(LAB_CONFIG), "af_xdp");
    burst_of_eight(&mut daemon);
    // Counters come about once a second while nothing is armed.
    let (_, status) = daemon.status_until(Duration::from_secs(5), |s| {
        s["queues"].as_array().is_some_and(|q| q.len() == 4)
            && s["queues"][0]["rx_frames"].as_u64() > Some(0)
    });
    let queues = status["queues"].as_array().expect("queues in status");
    eprintln!("per-queue receive counts: {}", status["queues"]);
    let listed: Vec<u64> = queues
        .iter()
        .map(|q| q["queue"].as_u64().unwrap())
        .collect();
    assert_eq!(listed, vec![0, 1, 2, 3], "{status}");
    let busy = queues
        .iter()
        .filter(|q| q["rx_frames"].as_u64() > Some(0))
        .count();
    assert!(busy > 1, "frames on one queue only: {status}");
    daemon.down();
    drop(lab);
}

/// The datapath thread of `pid`: its allowed CPUs and the CPU it last ran on.
fn datapath_thread(pid: u32) -> (String, u32) {
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !comm.starts_with("quickdraw-datap") {
            continue;
        }
        let status = std::fs::read_to_string(dir.join("status")).unwrap();
        let allowed = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim()
            .to_owned();
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap();
        // Field 39 (processor), counted after the parenthesised command name.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let cpu = after.split(' ').nth(36).unwrap().parse().unwrap();
        return (allowed, cpu);
    }
    panic!("no datapath thread in process {pid}");
}

#[test]
fn pinned_to_core_1_under_taskset_0_with_system_roots_from_ssl_cert_file() {
    let lab = LabSession::start().expect("lab up");
    let ca = lab.status().unwrap().ca_cert.clone();
    let dir = scratch("pin");
    let text = std::fs::read_to_string(LAB_CONFIG)
        .unwrap()
        .replace(&format!("\"{}\"", ca.display()), "\"system\"");
    assert!(
        text.contains("trust = \"system\""),
        "lab.toml trusts the lab CA file"
    );
    let config = dir.join("system-roots.toml");
    std::fs::write(&config, text).unwrap();

    // systemd's side of Type=notify: a datagram socket named by NOTIFY_SOCKET.
    let notify_path = dir.join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(READY_WITHIN)).unwrap();
    let mut daemon = daemon(
        &["taskset", "-c", "0", env!("CARGO_BIN_EXE_control")],
        &dir,
        &config,
        &[("SSL_CERT_FILE", &ca), ("NOTIFY_SOCKET", &notify_path)],
    );
    let mut buf = [0u8; 64];
    let n = notify
        .recv(&mut buf)
        .expect("READY=1 within the ready time");
    assert_eq!(&buf[..n], b"READY=1");
    let (_, status) = daemon.status_until(Duration::ZERO, |_| true);
    assert_eq!(
        status["ready"], true,
        "READY=1 only once the pools are warm: {status}"
    );
    burst_of_eight(&mut daemon);
    let (_, status) = daemon.status_until(Duration::ZERO, |_| true);
    assert_eq!(status["placement"]["core"], 1, "{status}");
    assert_eq!(status["pinned"], true, "{status}");
    let (allowed, cpu) = datapath_thread(daemon.child.id());
    assert_eq!(
        (allowed.as_str(), cpu),
        ("1", 1),
        "the datapath thread's CPUs"
    );
    daemon.down();
    drop(lab);
}

/// The capability sets of process `pid` (CapEff), as a mask.
fn effective_caps(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim();
    u64::from_str_radix(hex, 16).unwrap()
}

#[test]
fn runs_as_an_unprivileged_user_with_only_its_capabilities() {
    const NOBODY: u32 = 65534;
    let lab = LabSession::start().expect("lab up");
    let dir = scratch("caps");
    // The daemon's own directories belong to its user, as systemd's RuntimeDirectory and
    // StateDirectory would make them.
    for d in ["", "run", "state"] {
        let p = dir.join(d);
        std::fs::create_dir_all(&p).unwrap();
        std::os::unix::fs::chown(&p, Some(NOBODY), Some(NOBODY)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // A copy of the binary where the unprivileged user can reach it.
    let bin = dir.join("control");
    std::fs::copy(env!("CARGO_BIN_EXE_control"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let text = std::fs::read_to_string(LAB_CONFIG).unwrap().replace(
        "core = 1",
        "core = 1\nlock_memory = true\nrealtime_priority = 10",
    );
    let config = dir.join("lab.toml");
    std::fs::write(&config, text).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let caps: Vec<String> = CAPABILITIES.iter().map(|c| format!("+{c}")).collect();
    let caps = caps.join(",");
    let uid = NOBODY.to_string();
    let prefix = [
        "setpriv",
        &format!("--reuid={uid}"),
        &format!("--regid={uid}"),
        "--clear-groups",
        &format!("--inh-caps=-all,{caps}"),
        &format!("--ambient-caps=-all,{caps}"),
        &format!("--bounding-set=-all,{caps}"),
        bin.to_str().unwrap(),
    ]
    .map(|s| s.to_owned());
    let prefix: Vec<&str> = prefix.iter().map(String::as_str).collect();
    let mut daemon = daemon(&prefix, &dir, &config, &[]);
    burst_of_eight(&mut daemon);
    let pid = daemon.child.id();
    let uid_line = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .to_owned();
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == uid),
        "{uid_line}"
    );
    let eff = effective_caps(pid);
    let wanted: u64 = CAPABILITIES.iter().map(|c| 1u64 << cap_number(c)).sum();
    assert_eq!(
        eff, wanted,
        "CapEff {eff:#x}, expected exactly {CAPABILITIES:?}"
    );
    let (_, status) = daemon.status_until(Duration::ZERO, |_| true);
    assert_eq!(status["placement"]["memory_locked"], true, "{status}");
    assert_eq!(status["placement"]["realtime_priority"], 10, "{status}");
    eprintln!(
        "unprivileged daemon: {uid_line}; CapEff {eff:#018x}; {}",
        status["placement"]
    );
    daemon.down();
    drop(lab);
}

/// The kernel's number of a capability (linux/capability.h).
fn cap_number(name: &str) -> u32 {
    match name {
        "net_admin" => 12,
        "net_raw" => 13,
        "ipc_lock" => 14,
        "sys_nice" => 23,
        "perfmon" => 38,
        "bpf" => 39,
        other => panic!("unknown capability {other}"),
    }
}

#[test]
fn doctor_passes_on_the_lab_with_warnings_where_veth_is_not_a_nic() {
    let lab = LabSession::start().expect("lab up");
    let out = Command::new(env!("CARGO_BIN_EXE_control"))
        .args(["doctor", "--config", LAB_CONFIG])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "control doctor on the lab:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");

    let out = Command::new(env!("CARGO_BIN_EXE_control"))
        .args(["doctor", "--json", "--config", LAB_CONFIG])
        .output()
        .unwrap();
    let checks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let status = |name: &str| {
        checks
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["check"] == name)
            .map(|c| c["status"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    // What a veth is not: a NIC with zero-copy, MSI interrupts.
    assert_eq!(status("driver"), ["warn"], "{checks}");
    assert_eq!(status("zero_copy"), ["warn"], "{checks}");
    assert_eq!(status("irq_affinity"), ["warn"], "{checks}");
    // What the lab must get right.
    for name in [
        "kernel",
        "queues",
        "capabilities",
        "memlock",
        "own_address",
        "address_conflict",
        "next_hop",
        "trust",
        "interface",
        "route",
        "plan",
    ] {
        assert_eq!(status(name), ["pass"], "{name}: {checks}");
    }

    // steer = "ntuple" on a veth: no RX classification, so `control up` refuses to start
    // and says why (a NIC with ntuple filters installs the rule).
    let dir = scratch("ntuple");
    let config = dir.join("ntuple.toml");
    let text = std::fs::read_to_string(LAB_CONFIG)
        .unwrap()
        .replace("queue = 0", "queue = 0\nsteer = \"ntuple\"");
    std::fs::write(&config, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_control"))
        .args(["up", "--no-pin", "--metrics", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--socket")
        .arg(dir.join("run/control.sock"))
        .arg("--journal")
        .arg(dir.join("state/journal.jsonl"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "steer = \"ntuple\": ethtool -N qd0 flow-type tcp4 dst-ip 198.18.0.10 action 0"
        ),
        "{err}"
    );
    eprintln!("ntuple on veth: {}", err.lines().last().unwrap_or(""));
    let _ = std::fs::remove_dir_all(&dir);
    drop(lab);
}
