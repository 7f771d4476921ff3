//! `bench demo`: the main job of the Quick start, in the built-in lab. Today it shows the
//! pieces that exist, each checked, and prints what it saw: the target answering over
//! verified TLS on the kernel path, the XDP program attached and passing that foreign
//! traffic, and the AF_XDP datapath's own TCP connection from the appliance address.

use anyhow::{bail, ensure, Context};
use quickdraw_bench::lab::{HOST_IF, TARGET_IP, TARGET_PORT};
use quickdraw_bench::probe::{client_hello, starts_with_server_hello};
use quickdraw_bench::LabSession;
use quickdraw_bpf::{if_nametoindex, AttachMode, Steer};
use quickdraw_datapath::clock::monotonic_ns;
use quickdraw_datapath::poll::Turn;
use quickdraw_datapath::{Engine, EngineConfig};
use smoltcp::socket::tcp::State;
use std::net::SocketAddrV4;
use std::process::Command;

/// Kernel-path requests made while the XDP program watches.
const PROBES: usize = 5;

pub(crate) fn run() -> anyhow::Result<()> {
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

    println!("\n== AF_XDP datapath: TCP from 198.18.0.10, kernel bypassed");
    datapath(&status.ca_cert)?;
    ensure!(!xdp_attached()?, "the datapath left an XDP program behind");

    println!("\n== lab down");
    drop(lab);
    println!("done");
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

/// Opens a TCP connection from the appliance address over AF_XDP, sends a real
/// ClientHello and waits for the ServerHello, then closes cleanly.
fn datapath(ca: &std::path::Path) -> anyhow::Result<()> {
    let hello = client_hello(ca)?;
    let t0 = monotonic_ns();
    let mut engine = Engine::start(&EngineConfig::lab(), t0).context("starting the datapath")?;
    let t_started = monotonic_ns();
    let id = engine.connect(SocketAddrV4::new(TARGET_IP, TARGET_PORT))?;
    let (mut t_established, mut t_answer) = (0, 0);
    let mut reply = Vec::new();
    let deadline = t_started + 5_000_000_000;
    while t_answer == 0 {
        let now = monotonic_ns();
        if now > deadline {
            bail!("no ServerHello within 5 s: {:?}", engine.device_stats());
        }
        engine.turn(now);
        let sock = engine.tcp(id);
        if t_established == 0 && sock.state() == State::Established {
            t_established = now;
            sock.send_slice(&hello)?;
        }
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = sock.recv_slice(&mut buf) {
            reply.extend_from_slice(&buf[..n]);
        }
        if starts_with_server_hello(&reply) {
            t_answer = now;
        }
    }
    engine.close(id);
    let closed_by = monotonic_ns() + 5_000_000_000;
    while !engine.is_released(id) && monotonic_ns() < closed_by {
        engine.turn(monotonic_ns());
    }
    let counters = engine.steer_counters()?;
    let stats = engine.device_stats();
    println!(
        "bind mode {}; datapath up in {} µs; TCP handshake (incl. ARP) {} µs; ClientHello -> ServerHello {} µs; closed cleanly: {}",
        engine.bind_mode().as_str(),
        (t_started - t0) / 1_000,
        (t_established - t_started) / 1_000,
        (t_answer - t_established) / 1_000,
        engine.is_released(id)
    );
    println!(
        "XDP: steered {} frames to the socket; device: {} rx, {} tx, {} kicks, {} malformed",
        counters.steered, stats.rx_delivered, stats.tx_frames, stats.kicks, stats.rx_malformed
    );
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
