//! Bringing the lab up and down, and reading what of it exists.

use std::fs::{self, Permissions};
use std::os::unix::fs::PermissionsExt;

use crate::layout::{LabOptions, LabPaths, HOST_IF, NETNS, PEER_IF, SERVER_NAME};
use crate::lock::LabLock;
use crate::pki::{self, LabPki};
use crate::status::{LabParts, LabStatus};
use crate::{netns, nginx, Error};

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
/// When the lab is up already (with the queues asked for), returns its status and changes
/// nothing. Otherwise the remains of any earlier lab are torn down first. When any step fails, whatever was made is torn down
/// before the error is returned.
pub fn up_locked(_lock: &LabLock, options: &LabOptions) -> Result<LabStatus, Error> {
    let paths = LabPaths::standard();
    let before = status_at(&paths)?;
    if before.up && super::queues::host_rx_queues() == options.queues.max(1) {
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
    pki::write_ticket_key(paths)?;
    pki::write_file(&paths.nginx_conf, nginx::config(paths, options), 0o644)?;
    netns::create(options.queues)?;
    if options.queues > 1 {
        super::queues::spread_flows()?;
    }
    nginx::start(paths, options)?;
    nginx::wait_ready(paths)
}

fn down_at(paths: &LabPaths) -> Result<(), Error> {
    // The event server first, if `bench lab up` started one: its sockets live in the
    // namespace and would keep it alive.
    crate::events_daemon::stop(paths)?;
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
    let mut status = LabStatus::new(paths, parts, nginx_pid);
    if parts.peer_if {
        status.loss_pct = crate::loss::current()?;
    }
    Ok(status)
}
