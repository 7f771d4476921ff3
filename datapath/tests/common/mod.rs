//! Helpers shared by the datapath's lab tests (root; each test holds its own lab).

#![allow(dead_code)]

use quickdraw_datapath::clock::monotonic_ns;
use quickdraw_datapath::{Engine, EngineConfig};
use std::time::Duration;

/// The lab's appliance: 198.18.0.10/24 on `qd0` (production defaults otherwise).
pub fn lab_engine() -> EngineConfig {
    EngineConfig::new(
        quickdraw_lab::HOST_IF,
        quickdraw_lab::APPLIANCE_IP,
        quickdraw_lab::PREFIX_LEN,
    )
}

/// Turns the engine until `done` holds or `limit` passes; false on time-out.
pub mod alloc;
pub mod events;
pub mod fire;

pub fn drive_until(
    engine: &mut Engine,
    limit: Duration,
    mut done: impl FnMut(&mut Engine) -> bool,
) -> bool {
    let deadline = monotonic_ns() + limit.as_nanos() as u64;
    loop {
        let now = monotonic_ns();
        engine.poll(now);
        if done(engine) {
            return true;
        }
        if now > deadline {
            return false;
        }
    }
}

/// Turns an appliance on the real clock for `ns` nanoseconds.
pub fn turn_for<T: quickdraw_datapath::poll::Turn>(a: &mut T, ns: u64) {
    let end = monotonic_ns() + ns;
    while monotonic_ns() < end {
        a.turn(monotonic_ns());
    }
}

/// Turns an appliance until its pool reports `want` connections warm (10 s at most;
/// panics otherwise), draining `events`, then 50 ms more so the first keep-warms settle.
pub fn turn_until_warm<T: quickdraw_datapath::poll::Turn>(
    a: &mut T,
    events: &crossbeam_queue::ArrayQueue<quickdraw_datapath::order::Event>,
    want: usize,
) {
    let deadline = monotonic_ns() + 10_000_000_000;
    let mut warm = 0;
    while warm < want && monotonic_ns() < deadline {
        a.turn(monotonic_ns());
        while let Some(e) = events.pop() {
            if let quickdraw_datapath::order::Event::Pool { warm: w, .. } = e {
                warm = w;
            }
        }
    }
    assert_eq!(warm, want, "pool warm");
    turn_for(a, 50_000_000);
}

/// A real TLS 1.3 ClientHello for target.lab, trusting the lab CA.
pub fn client_hello(ca_pem: &std::path::Path) -> Vec<u8> {
    quickdraw_lab::probe::client_hello(ca_pem).expect("lab CA loads")
}

#[allow(unused_imports)]
pub use quickdraw_lab::probe::starts_with_server_hello;

/// Whether any XDP program is attached to `ifname` (from `ip -j link`).
pub fn xdp_attached(ifname: &str) -> bool {
    let out = std::process::Command::new("ip")
        .args(["-j", "-d", "link", "show", "dev", ifname])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip link show {ifname}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let links: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    links[0].get("xdp").is_some()
}

/// Frames of one EtherType arriving at the lab peer's interface, captured from inside the
/// lab namespace (a raw packet socket) while the test goes on.
pub struct Capture {
    child: std::process::Child,
}

/// Starts capturing up to `max` frames of `ethertype` at the lab peer; returns once the
/// socket is bound. It stops by itself after `max` frames or 2 s without one.
#[allow(dead_code)] // not every test binary captures
pub fn capture(ethertype: u16, max: usize) -> Capture {
    use quickdraw_lab::{NETNS, PEER_IF};
    use std::io::BufRead;
    let script = format!(
        "import socket\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW,socket.htons({ethertype}))\n\
         s.bind(('{PEER_IF}',0))\nprint('ready',flush=True)\ns.settimeout(2.0)\n\
         for _ in range({max}):\n  try: print(s.recv(4096).hex(),flush=True)\n  except socket.timeout: break\n"
    );
    let mut child = std::process::Command::new("ip")
        .args(["netns", "exec", NETNS, "python3", "-c", &script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 in the lab namespace");
    let mut ready = String::new();
    let out = child.stdout.as_mut().expect("piped");
    std::io::BufReader::new(out)
        .read_line(&mut ready)
        .expect("capture starts");
    assert_eq!(ready.trim(), "ready", "capture did not start");
    Capture { child }
}

impl Capture {
    /// The frames captured (waits for the capture to end).
    #[allow(dead_code)]
    pub fn frames(self) -> Vec<Vec<u8>> {
        let out = self.child.wait_with_output().expect("capture ends");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|h| {
                (0..h.len() / 2)
                    .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).expect("hex"))
                    .collect()
            })
            .collect()
    }
}

/// Sends raw Ethernet frames out of the lab peer's interface, from inside the lab
/// namespace, as a host on the LAN would (a raw packet socket).
pub fn inject(frames: &[Vec<u8>]) {
    use quickdraw_lab::{NETNS, PEER_IF};
    let hex: Vec<String> = frames
        .iter()
        .map(|f| f.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    let script = format!(
        "import socket,sys\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\ns.bind(('{PEER_IF}',0))\n\
         for h in sys.argv[1:]: s.send(bytes.fromhex(h))\n"
    );
    let status = std::process::Command::new("ip")
        .args(["netns", "exec", NETNS, "python3", "-c", &script])
        .args(&hex)
        .status()
        .expect("python3 in the lab namespace");
    assert!(status.success(), "injecting frames from the peer");
}
