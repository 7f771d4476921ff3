//! Where the lab's pieces are: its names and addresses, its files, and how nginx is run.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The lab's network namespace.
pub const NETNS: &str = "qdlab";
/// The root-namespace end of the veth.
pub const HOST_IF: &str = "qd0";
/// The namespace end of the veth.
pub const PEER_IF: &str = "qd1";
/// The kernel path's address, on `qd0`.
pub const KERNEL_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// nginx's address, on `qd1`.
pub const TARGET_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// Reserved for the AF_XDP appliance. Deliberately on no interface: a userspace stack owns
/// it and answers ARP for it, and a kernel owning it too would RST the appliance's flows.
pub const APPLIANCE_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
/// Prefix length of the lab subnet.
pub const PREFIX_LEN: u8 = 24;
/// nginx's TLS port.
pub const TARGET_PORT: u16 = 443;
/// The server certificate's name (SNI and Host).
pub const SERVER_NAME: &str = "target.lab";
/// Where the lab keeps its CA, certificates, nginx config, pid file and logs.
pub const STATE_DIR: &str = "/run/quickdraw-lab";
/// The lab lock (outside the state directory, which `down` removes).
pub const LOCK_PATH: &str = "/run/quickdraw-lab.lock";

/// The files of a lab, all in one state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabPaths {
    /// The state directory.
    pub state_dir: PathBuf,
    /// The lab CA certificate, PEM.
    pub ca_cert: PathBuf,
    /// The lab CA's key, PEM, mode 0600 (for issuing nginx a replacement certificate).
    pub ca_key: PathBuf,
    /// nginx's certificate chain (server then CA), PEM.
    pub server_cert: PathBuf,
    /// nginx's private key, PEM, mode 0600.
    pub server_key: PathBuf,
    /// nginx's session ticket key (`ssl_session_ticket_key`, 80 random bytes, mode 0600):
    /// tickets stay valid across reloads and restarts until it is replaced.
    pub ticket_key: PathBuf,
    /// nginx's config file.
    pub nginx_conf: PathBuf,
    /// nginx's pid file.
    pub nginx_pid: PathBuf,
    /// nginx's access log.
    pub access_log: PathBuf,
    /// nginx's error log.
    pub error_log: PathBuf,
    /// nginx's temp paths (client bodies, proxy buffers...).
    pub temp_dir: PathBuf,
}

impl LabPaths {
    /// The lab's files under `/run/quickdraw-lab`.
    pub fn standard() -> Self {
        Self::under(Path::new(STATE_DIR))
    }

    /// The lab's files under `dir`.
    pub fn under(dir: &Path) -> Self {
        LabPaths {
            state_dir: dir.to_owned(),
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            ticket_key: dir.join("ticket.key"),
            nginx_conf: dir.join("nginx.conf"),
            nginx_pid: dir.join("nginx.pid"),
            access_log: dir.join("access.log"),
            error_log: dir.join("error.log"),
            temp_dir: dir.join("tmp"),
        }
    }
}

/// How to bring the lab up. `up` on a lab that is already up keeps the running one, whatever
/// these say: run `down` first to change them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabOptions {
    /// nginx's `keepalive_timeout` (default 75 s, nginx's own default).
    pub keepalive_timeout: Duration,
    /// nginx's `keepalive_requests` (default 100 000: never the reason a connection closes).
    pub keepalive_requests: u32,
    /// The nginx binary (default Debian's `/usr/sbin/nginx`).
    pub nginx: PathBuf,
    /// RX and TX queues on each end of the veth (default 1). With more, the peer spreads
    /// its flows over them as RSS spreads a NIC's (see `queues.rs`).
    pub queues: u32,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            keepalive_timeout: Duration::from_secs(75),
            keepalive_requests: 100_000,
            nginx: PathBuf::from("/usr/sbin/nginx"),
            queues: 1,
        }
    }
}
