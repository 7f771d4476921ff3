//! The configuration schema: plain typed structs, deserialized by serde from TOML.
//! Unknown keys are errors, so a typo never silently falls back to a default. The
//! daemon's own sections (timing, limits, control, journal, metrics) are in `sections.rs`.

pub use crate::neighbour::{MacAddr, Neighbour};
pub use crate::queues::{Queues, Steering};
pub use crate::sections::{Control, Journal, Limits, Metrics, Timing, Warming};
use serde::Deserialize;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

/// A whole quickdraw configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The appliance itself: where it sits on the network and which backend it runs.
    pub appliance: Appliance,
    /// The HTTPS servers orders are sent to. At least one.
    #[serde(default)]
    pub targets: Vec<Target>,
    /// Scheduled fires and clock synchronisation.
    #[serde(default)]
    pub timing: Timing,
    /// What the daemon holds and serves at most.
    #[serde(default)]
    pub limits: Limits,
    /// The control daemon's socket and who may use it.
    #[serde(default)]
    pub control: Control,
    /// The durable record of every arm and fire.
    #[serde(default)]
    pub journal: Journal,
    /// The Prometheus text endpoint.
    #[serde(default)]
    pub metrics: Metrics,
    /// Where event-triggered arms get their events (see `events.rs`).
    #[serde(default)]
    pub event_sources: Vec<crate::events::EventSource>,
}

/// Which path puts requests on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// quickdraw's own TCP/TLS over an AF_XDP socket, the kernel bypassed.
    AfXdp,
    /// std sockets and rustls through the kernel's TCP stack: the baseline and fallback.
    Kernel,
}

/// How the XDP program is attached to the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum XdpMode {
    /// In the driver (fast; veth and most modern NIC drivers support it).
    #[default]
    Native,
    /// Generic XDP on the skb path: works everywhere, slower.
    Skb,
}

/// The appliance's place on the network.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Appliance {
    pub backend: Backend,
    /// Interface the XDP program attaches to and the AF_XDP socket binds on.
    pub interface: String,
    /// The queue of the socket that sends, and the one an ntuple rule steers to.
    #[serde(default)]
    pub queue: u32,
    /// The queues that get a receive socket: `"all"` (default) or a list.
    #[serde(default)]
    pub queues: Queues,
    /// `"rss"` (default: flows land where the NIC hashes them) or `"ntuple"`.
    #[serde(default)]
    pub steer: Steering,
    /// CPU core the busy-polling datapath thread is pinned to.
    pub core: usize,
    /// SCHED_FIFO priority (1..=99) for the datapath thread; unset: normal scheduling.
    pub realtime_priority: Option<u8>,
    /// Lock all of the daemon's memory (mlockall) so the hot path never faults.
    #[serde(default)]
    pub lock_memory: bool,
    /// Leave the program's code where the loader mapped it instead of moving it onto
    /// 2 MiB pages: profilers (perf) resolve symbols only in code mapped from the binary.
    #[serde(default)]
    pub keep_code_in_place: bool,
    /// The appliance's own IPv4 address (distinct from the host's: the kernel would
    /// reset connections it does not know about on a shared address).
    pub ip: Ipv4Addr,
    /// Prefix length of the appliance's subnet.
    #[serde(default = "default_prefix")]
    pub prefix_len: u8,
    /// Next hop for targets outside the subnet, if any.
    pub gateway: Option<Ipv4Addr>,
    #[serde(default)]
    pub xdp_mode: XdpMode,
    /// Keeping the send path warm while armed.
    #[serde(default)]
    pub warming: Warming,
    /// Next hops whose MAC is known in advance (AF_XDP backend). Every target in the
    /// subnet and the gateway are pinned either way: those not listed, from their first
    /// ARP reply. ARP that would change a pinned MAC is dropped and counted.
    #[serde(default)]
    pub neighbours: Vec<Neighbour>,
}

fn default_prefix() -> u8 {
    24
}

/// Where a target's certificates are anchored. Verification is always on: the only
/// choice is which roots to trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustAnchors {
    /// The operating system's root store.
    System,
    /// Only the CA certificates in this PEM file (a lab or private CA).
    CaFile(PathBuf),
}

impl<'de> Deserialize<'de> for TrustAnchors {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let text = String::deserialize(de)?;
        Ok(match text.as_str() {
            "system" => TrustAnchors::System,
            _ => TrustAnchors::CaFile(PathBuf::from(text)),
        })
    }
}

/// An HTTPS server that orders go to, with its responsible-use caps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Name used on the command line (`--target NAME`).
    pub name: String,
    /// IPv4 address and port of the server.
    pub address: SocketAddrV4,
    /// TLS server name (SNI) and the name its certificate must carry; also the Host header.
    pub server_name: String,
    /// `"system"` or the path of a PEM file of CA certificates.
    pub trust: TrustAnchors,
    /// Most connections kept open to this target at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Most requests one arm may fire (a burst over K connections counts K).
    #[serde(default = "default_max_fires_per_arm")]
    pub max_fires_per_arm: u32,
    /// Connections kept open and warm (at most `max_connections`).
    #[serde(default = "default_connections")]
    pub connections: u32,
    /// Path of the tiny GET that keeps an idle connection warm (the server's keep-alive
    /// timer restarts with each request).
    #[serde(default = "default_warm_path")]
    pub warm_path: String,
    /// An idle connection gets a warm request after this long; keep it well inside the
    /// server's keep-alive timeout.
    #[serde(default = "default_warm_interval_ms")]
    pub warm_interval_ms: u64,
    /// A fired request with no complete response after this long is reported `unknown`.
    #[serde(default = "default_response_timeout_ms")]
    pub response_timeout_ms: u64,
    /// Most requests sent to this target in any minute, fires and armed orders counted
    /// together (an arm counts when it is armed, so a burst of arms cannot exceed it).
    #[serde(default = "default_max_fires_per_minute")]
    pub max_fires_per_minute: u32,
    /// The order request, rendered at arm time.
    pub request: RequestSpec,
}

/// The HTTP request an arm sends. `{sku}`, `{qty}` and `{idempotency_key}` are
/// substituted at arm time; Host, User-Agent, Content-Length and Idempotency-Key are
/// added by quickdraw.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    #[serde(default = "default_method")]
    pub method: String,
    pub path: String,
    /// `[name, value]` pairs, sent in this order.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default)]
    pub body: String,
}

fn default_method() -> String {
    "POST".to_owned()
}

fn default_connections() -> u32 {
    2
}

fn default_warm_path() -> String {
    "/healthz".to_owned()
}

fn default_warm_interval_ms() -> u64 {
    10_000
}

fn default_response_timeout_ms() -> u64 {
    5_000
}

fn default_max_connections() -> u32 {
    8
}

fn default_max_fires_per_arm() -> u32 {
    8
}

fn default_max_fires_per_minute() -> u32 {
    60
}
