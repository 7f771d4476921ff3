//! The daemon's own sections of the configuration: scheduled fires and clock sync
//! (`[timing]`), how much it holds (`[limits]`), its socket (`[control]`), the journal
//! (`[journal]`) and the metrics endpoint (`[metrics]`). Every key has a default, so a
//! configuration may leave any of these tables out.

use serde::Deserialize;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;

/// Scheduled fires and the server clock estimate they may be corrected by.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timing {
    /// Correct every scheduled arm so its request *arrives* at the requested instant
    /// (needs a `control sync` of the target first). `control arm --arrive` does it for
    /// one arm.
    pub arrive: bool,
    /// A scheduled arm must be armed at least this long before it fires: the request is
    /// rendered, handed to the datapath and pre-sealed in that time.
    pub min_lead_ms: u64,
    /// How far ahead an arm may be scheduled.
    pub max_ahead_s: u64,
    /// Most probes one `control sync` sends.
    pub sync_max_probes: u32,
    /// Longest one `control sync` runs.
    pub sync_max_ms: u64,
    /// A sync older than this is not used to correct arms (clocks drift).
    pub sync_valid_s: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            arrive: false,
            min_lead_ms: 20,
            max_ahead_s: 7 * 24 * 3600,
            sync_max_probes: 80,
            sync_max_ms: 5_000,
            sync_valid_s: 3_600,
        }
    }
}

/// Keeping the send path warm while an order is armed (`[appliance.warming]`): what each
/// part bought in the lab is in the README ("Warming"). An interval of 0 turns that part
/// off.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Warming {
    /// Our half: an armed connection's order frame, record and socket touched this often.
    pub send_interval_us: u64,
    /// The kernel's half: a self-addressed warm frame (EtherType 0x88B5, our own MAC as
    /// destination, never IP) through the Tx ring and kick this often while armed.
    pub frame_interval_us: u64,
    /// For orders waiting only on a deadline, warm frames start this long before it.
    pub frame_window_ms: u64,
    /// In the last `ramp_us` before a deadline, warm frames every `ramp_interval_us`.
    pub ramp_us: u64,
    pub ramp_interval_us: u64,
    /// Nothing at all in the last `quiet_us` before a deadline.
    pub quiet_us: u64,
}

impl Default for Warming {
    fn default() -> Self {
        Warming {
            send_interval_us: 50,
            frame_interval_us: 50,
            frame_window_ms: 50,
            ramp_us: 1_000,
            ramp_interval_us: 20,
            quiet_us: 15,
        }
    }
}

/// What the daemon holds and serves at most.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Arms open at once (armed, or fired with outcomes pending), all targets together.
    pub max_open_arms: u32,
    /// Control clients served at once.
    pub max_clients: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_open_arms: 64,
            max_clients: 32,
        }
    }
}

/// The control daemon's socket and who may use it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Control {
    /// Unix socket the `control` CLI talks to (mode 0600, in an owner-only directory).
    pub socket: PathBuf,
    /// Besides root, the one user allowed to talk to the daemon (checked on the peer's
    /// credentials). Left out: the user the daemon runs as.
    pub uid: Option<u32>,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            socket: PathBuf::from("/run/quickdraw/control.sock"),
            uid: None,
        }
    }
}

/// The journal: every arm and every fire outcome, appended and fsync'd.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Journal {
    /// JSON lines file; its directory is created owner-only if missing.
    pub path: PathBuf,
}

impl Default for Journal {
    fn default() -> Self {
        Journal {
            path: PathBuf::from("/var/lib/quickdraw/journal.jsonl"),
        }
    }
}

/// The Prometheus text endpoint (loopback only).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    /// The off switch.
    pub enabled: bool,
    /// Loopback address and port to serve `GET /metrics` on.
    pub listen: SocketAddr,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            enabled: true,
            listen: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9464)),
        }
    }
}
