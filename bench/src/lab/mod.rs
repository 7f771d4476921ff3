//! The lab: nginx behind TLS 1.3 in network namespace `qdlab`, joined to the root namespace
//! by the veth pair `qd0`/`qd1` on 198.18.0.0/24 (RFC 2544's benchmarking range).
//!
//! ```text
//!  root namespace                          namespace qdlab
//!  qd0 198.18.0.1/24 (kernel path) ─veth─ qd1 198.18.0.2/24 ── nginx :443 (TLS 1.3)
//!      198.18.0.10 (appliance, AF_XDP on qd0; on no interface: it answers ARP itself)
//! ```
//!
//! `up` and `down` are idempotent and take the lab lock; `down` removes whatever exists,
//! including the remains of a half-failed `up`, and a failed `up` tears down what it made.

mod command;
pub mod events;
pub mod events_daemon;
mod lock;
mod netns;
mod nginx;
mod pki;
mod process;
mod session;
mod status;

use std::fs::{self, Permissions};
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use lock::LabLock;
pub use netns::mac_address;
pub use pki::LabPki;
pub use session::LabSession;
pub use status::{LabParts, LabStatus};

use crate::Error;

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
    /// nginx's certificate chain (server then CA), PEM.
    pub server_cert: PathBuf,
    /// nginx's private key, PEM, mode 0600.
    pub server_key: PathBuf,
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
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
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
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            keepalive_timeout: Duration::from_secs(75),
            keepalive_requests: 100_000,
            nginx: PathBuf::from("/usr/sbin/nginx"),
        }
    }
}

/// Brings the lab up with `options` under the lab lock (see [`up_locked`]).
pub fn up(options: &LabOptions) -> Result<LabStatus, Error> {
    up_locked(&LabLock::acquire()?, options)
}

/// Brings the lab down under the lab lock (see [`down_locked`]).
pub fn down() -> Result<(), Error> {
    down_locked(&LabLock::acquire()?)
}

/// What the lab looks like now. Takes no lock: it only reads.
pub fn status() -> Result<LabStatus, Error> {
    status_at(&LabPaths::standard())
}

/// Brings the lab up; the caller holds the lab lock.
///
/// When the lab is up already, returns its status and changes nothing. Otherwise the remains
/// of any earlier lab are torn down first. When any step fails, whatever was made is torn down
/// before the error is returned.
pub fn up_locked(_lock: &LabLock, options: &LabOptions) -> Result<LabStatus, Error> {
    let paths = LabPaths::standard();
    let before = status_at(&paths)?;
    if before.up {
        return Ok(before);
    }
    // Whatever is left of an earlier lab goes first, including what `status` cannot see
    // (an nginx whose pid file is gone); on a clean machine this finds nothing to do.
    down_at(&paths)?;
    let built = build(&paths, options).and_then(|()| {
        let after = status_at(&paths)?;
        match after.up {
            true => Ok(after),
            false => Err(Error::LabDown {
                missing: after.parts.missing().join(", "),
            }),
        }
    });
    built.map_err(|source| match down_at(&paths) {
        Ok(()) => source,
        Err(rollback) => Error::Rollback {
            source: Box::new(source),
            rollback: Box::new(rollback),
        },
    })
}

/// Removes every part of the lab that exists; the caller holds the lab lock.
pub fn down_locked(_lock: &LabLock) -> Result<(), Error> {
    down_at(&LabPaths::standard())
}

fn build(paths: &LabPaths, options: &LabOptions) -> Result<(), Error> {
    fs::create_dir_all(&paths.temp_dir)
        .map_err(|e| Error::file("create directory", &paths.temp_dir, e))?;
    // Readable by all (nginx's workers run unprivileged); only server.key is private.
    fs::set_permissions(&paths.state_dir, Permissions::from_mode(0o755))
        .map_err(|e| Error::file("chmod", &paths.state_dir, e))?;
    LabPki::generate(SERVER_NAME)?.write(paths)?;
    pki::write_file(&paths.nginx_conf, &nginx::config(paths, options), 0o644)?;
    netns::create()?;
    nginx::start(paths, options)?;
    nginx::wait_ready(paths)
}

fn down_at(paths: &LabPaths) -> Result<(), Error> {
    // The event server first, if `bench lab up` started one: its sockets live in the
    // namespace and would keep it alive.
    events_daemon::stop(paths)?;
    // nginx first: while a process lives in the namespace, deleting its name leaves the
    // namespace (and nginx on 198.18.0.2) alive and anonymous.
    nginx::stop(paths)?;
    netns::destroy()?;
    match fs::remove_dir_all(&paths.state_dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::file("remove", &paths.state_dir, e))
        }
        _ => Ok(()),
    }
}

fn status_at(paths: &LabPaths) -> Result<LabStatus, Error> {
    let netns = netns::netns_exists()?;
    let nginx_pid = nginx::master_pid(paths);
    let parts = LabParts {
        netns,
        host_if: netns::link_exists(None, HOST_IF)?,
        peer_if: netns && netns::link_exists(Some(NETNS), PEER_IF)?,
        nginx: nginx_pid.is_some(),
        state_dir: paths.state_dir.is_dir(),
        files: [
            &paths.ca_cert,
            &paths.server_cert,
            &paths.server_key,
            &paths.nginx_conf,
        ]
        .iter()
        .all(|p| p.is_file()),
    };
    Ok(LabStatus::new(paths, parts, nginx_pid))
}
