//! `bench demo`: the main job of the Quick start, in the built-in lab. Each step is
//! checked and prints what it saw: the target answering over verified TLS on the kernel
//! path, the XDP program passing that foreign traffic, then `control up` on each backend
//! firing real orders with their per-fire timings.

mod orders;

use anyhow::{ensure, Context};
use quickdraw_bench::run::Backend;
use quickdraw_bpf::{if_nametoindex, AttachMode, Steer};
use quickdraw_lab::LabSession;
use quickdraw_lab::{HOST_IF, TARGET_IP, TARGET_PORT};
use std::process::Command;

/// Kernel-path requests made while the XDP program watches.
const PROBES: usize = 5;

pub(crate) fn run(config: &std::path::Path) -> anyhow::Result<()> {
    println!("== lab up");
    let lab = LabSession::start().context("bringing the lab up")?;
    let status = lab.status().expect("up").clone();
    print!("{status}");

    println!("\n== the target over verified TLS, kernel path (198.18.0.1 -> 198.18.0.2)");
    let report = lab.probe().healthz().context("rustls probe")?;
    println!("rustls: GET /healthz {report}");
    curl(&status.ca_cert.display().to_string())?;

    println!("\n== XDP steering program on {HOST_IF}: foreign traffic passes");
    let mut steer = Steer::load()?;
    steer.set_appliance_ip(status.appliance_ip)?;
    steer.attach(if_nametoindex(HOST_IF)?, AttachMode::Native)?;
    let before = steer.counters()?;
    for _ in 0..PROBES {
        let r = lab.probe().healthz().context("probe with XDP attached")?;
        ensure!(r.status == 204, "GET /healthz answered {}", r.status);
    }
    let after = steer.counters()?;
    println!(
        "{PROBES} TLS requests with the program attached (native mode): seen {}, passed {}, steered {}, malformed {}",
        after.seen - before.seen,
        after.passed - before.passed,
        after.steered - before.steered,
        after.malformed - before.malformed
    );
    ensure!(
        after.passed > before.passed && after.steered == before.steered,
        "foreign traffic was not passed untouched"
    );
    drop(steer);
    ensure!(!xdp_attached()?, "the XDP program outlived its link");
    println!("detached: no XDP program left on {HOST_IF}");

    for backend in ["kernel", "af_xdp"] {
        println!("\n== orders through control up, {backend} backend");
        orders::run(config, backend)?;
    }
    ensure!(!xdp_attached()?, "the datapath left an XDP program behind");

    println!("\n== measured run: af_xdp vs kernel vs the raw-frame floor, interleaved");
    measured_run(config)?;

    println!("\n== lab down");
    drop(lab);
    println!("done");
    Ok(())
}

/// Fires per backend in the demo's measured run: about a minute at a 20 ms gap.
const DEMO_FIRES: usize = 1000;

/// The measured run, written under `out/`.
fn measured_run(config: &std::path::Path) -> anyhow::Result<()> {
    let out = std::path::PathBuf::from("out");
    std::fs::create_dir_all(&out)?;
    let opts = quickdraw_bench::run::RunOptions {
        config: config.to_owned(),
        fires: DEMO_FIRES,
        warm_up: 50,
        backends: vec![Backend::AfXdp, Backend::Kernel, Backend::Floor],
        burst: 1,
        gap: std::time::Duration::from_millis(20),
        more_gaps: Vec::new(),
        per_fire: None,
        scheduled: false,
        json: Some(out.join("bench.json")),
        plot: Some(out.join("bench.svg")),
        hdr_dir: Some(out.join("hdr")),
        no_pin: false,
        profile_steps: false,
        warming: quickdraw_datapath::warming::Warming::default(),
        seed: 1,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let report = quickdraw_bench::run::run(&opts)?;
    println!(
        "{DEMO_FIRES} fires per backend, gap 20 ms ±20%, AF_XDP {} mode, kernel {}",
        report.host.bind_mode, report.host.kernel
    );
    print!("{}", report.table());
    report.check()?;
    for (name, b) in &report.backends {
        ensure!(
            b.unmatched == 0 || b.matched > 0,
            "{name}: no fire matched a wire stamp"
        );
    }
    println!("json: out/bench.json  plot: out/bench.svg  hdr logs: out/hdr/");
    Ok(())
}

/// A second, independent TLS client: curl trusting only the lab CA.
fn curl(ca: &str) -> anyhow::Result<()> {
    let resolve = format!("target.lab:{TARGET_PORT}:{TARGET_IP}");
    let out = Command::new("curl")
        .args([
            "-sS",
            "--tlsv1.3",
            "--cacert",
            ca,
            "--resolve",
            &resolve,
            "--interface",
            HOST_IF,
        ])
        .args(["-o", "/dev/null", "-w", "%{http_code} %{ssl_verify_result}"])
        .arg(format!("https://target.lab:{TARGET_PORT}/healthz"))
        .output()
        .context("running curl")?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut parts = text.split_whitespace();
    let (code, verify) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    ensure!(
        code == "204" && verify == "0",
        "curl: HTTP {code}, verify result {verify}"
    );
    println!("curl:   GET /healthz -> HTTP {code}, certificate verified against the lab CA");
    Ok(())
}

fn xdp_attached() -> anyhow::Result<bool> {
    let out = Command::new("ip")
        .args(["-j", "-d", "link", "show", "dev", HOST_IF])
        .output()?;
    ensure!(
        out.status.success(),
        "ip link show {HOST_IF}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let links: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(links[0].get("xdp").is_some())
}
