//! `LabSession`: the lab held for one test or one bench run — locked, up, and torn down on
//! drop, even when the holder panics.

use crate::layout::LabOptions;
use crate::lock::LabLock;
use crate::pki::{LabPki, Signer};
use crate::probe::Probe;
use crate::setup::{down_locked, up_locked};
use crate::status::LabStatus;
use crate::Error;

/// The lab, locked for this session's lifetime.
///
/// `start` takes the lab lock (waiting for any other session or CLI run), brings the lab up,
/// and `Drop` brings it down and releases the lock: two test processes, or two test threads,
/// never use the lab at once, and a failing test leaves no lab behind. A lab already up
/// when the session starts (brought up by hand, or left by a run that was killed, perhaps
/// with loss or a foreign qdisc on the peer) is rebuilt, not reused, and torn down when
/// the session ends.
#[derive(Debug)]
pub struct LabSession {
    lock: LabLock,
    options: LabOptions,
    status: Option<LabStatus>,
}

impl LabSession {
    /// Locks the lab and brings it up with the default options.
    pub fn start() -> Result<Self, Error> {
        Self::start_with(LabOptions::default())
    }

    /// Locks the lab and brings it up with `options`.
    pub fn start_with(options: LabOptions) -> Result<Self, Error> {
        let mut session = Self::locked(options)?;
        session.up()?;
        Ok(session)
    }

    /// Locks the lab without bringing it up (for tests of `up` and `down` themselves).
    /// Dropping the session still brings it down.
    pub fn locked(options: LabOptions) -> Result<Self, Error> {
        Ok(LabSession {
            lock: LabLock::acquire()?,
            options,
            status: None,
        })
    }

    /// Brings the lab up under the held lock (harmless when this session has it up
    /// already). A lab this session did not bring up is taken down first: a session
    /// starts from a fresh lab, whatever an earlier run left on it (loss, a qdisc or a
    /// filter on the peer, a stale nginx).
    pub fn up(&mut self) -> Result<&LabStatus, Error> {
        if self.status.is_none() {
            down_locked(&self.lock)?;
        }
        let status = up_locked(&self.lock, &self.options)?;
        Ok(self.status.insert(status))
    }

    /// Stops the lab's nginx and starts it again with the same configuration, as a server
    /// restart would: every open connection to it is closed, the namespace, the veth pair
    /// and the certificates stay. Returns once the new nginx accepts TCP.
    pub fn restart_nginx(&self) -> Result<(), Error> {
        let paths = crate::layout::LabPaths::standard();
        crate::nginx::stop(&paths)?;
        crate::nginx::start(&paths, &self.options)?;
        crate::nginx::wait_ready(&paths)
    }

    /// Reloads the lab's nginx (SIGHUP, as `nginx -s reload`): it takes its certificate
    /// and ticket key from the state directory again; its old workers close their idle
    /// connections (the pool's warm ones) and exit. Returns once the new workers run.
    pub fn reload_nginx(&self) -> Result<(), Error> {
        crate::nginx::reload(&crate::layout::LabPaths::standard())
    }

    /// Replaces the session ticket key (fresh random bytes) and restarts nginx: tickets
    /// issued before are refused from then on, so clients that resume from them get a
    /// full handshake instead. A restart, not a reload: during a reload the old workers,
    /// which still hold the old key, can accept a client's reconnect for a moment and
    /// resume it (seen: 2 of 8 reconnects).
    pub fn rotate_ticket_key(&self) -> Result<(), Error> {
        crate::pki::write_ticket_key(&crate::layout::LabPaths::standard())?;
        self.restart_nginx()
    }

    /// Replaces nginx's certificate with a fresh one for the same name, signed by `signer`
    /// (the lab CA clients trust, or a stranger's), and reloads nginx. The CA clients
    /// trust (`ca.pem`) does not change.
    pub fn rotate_server_cert(&self, signer: Signer) -> Result<(), Error> {
        let paths = crate::layout::LabPaths::standard();
        LabPki::reissue(&paths, crate::layout::SERVER_NAME, signer)?;
        self.reload_nginx()
    }

    /// Brings the lab down under the held lock (harmless when it is down already).
    pub fn down(&mut self) -> Result<(), Error> {
        self.status = None;
        down_locked(&self.lock)
    }

    /// The lab as of the last `up`; `None` when this session has not brought it up, or has
    /// brought it down since.
    pub fn status(&self) -> Option<&LabStatus> {
        self.status.as_ref()
    }

    /// A probe of the lab's target over the kernel path, trusting the lab CA.
    pub fn probe(&self) -> Probe {
        Probe::lab()
    }

    /// The held lock, for calling `lab::up_locked` / `lab::down_locked` directly.
    pub fn lock(&self) -> &LabLock {
        &self.lock
    }
}

impl Drop for LabSession {
    fn drop(&mut self) {
        // Drop cannot return the error; say it where a test run or a user will see it.
        if let Err(e) = down_locked(&self.lock) {
            eprintln!("quickdraw lab: teardown failed: {e}; run `bench lab down`");
        }
    }
}
