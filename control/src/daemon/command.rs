//! Sending one command to the datapath and waiting for its answer, and what every handler
//! does before one: check the datapath runs, make the journal line durable. A command gets
//! a fresh request id, registered in the state before the command goes (so the pump
//! applies the answer even when its sender has stopped waiting), then a bounded wait for
//! the `Ack` with that id.

use super::context::Daemon;
use super::error::DaemonError;
use super::state::Ask;
use crate::journal::record::Record;
use quickdraw_datapath::order::{Accepted, Command, Reject, RequestId};
use std::time::{Duration, Instant};

/// How long the datapath may take to acknowledge a command: it reads commands every loop
/// turn, so anything near this means it is wedged.
pub(super) const ACK_WAIT: Duration = Duration::from_secs(2);
/// How long a full command queue is retried.
const PUSH_WAIT: Duration = Duration::from_millis(200);

impl Daemon {
    /// Sends the command `build` makes for a fresh request id and waits until `deadline`
    /// for its answer: `None` if none came in time.
    pub(super) fn command(
        &self,
        ask: Ask,
        deadline: Instant,
        build: impl FnOnce(RequestId) -> Command,
    ) -> Result<Option<Result<Accepted, Reject>>, DaemonError> {
        let req = self.send(ask, build)?;
        let answer = self.shared.wait_for(deadline, |s| s.answer(req));
        self.shared.update(|s| s.settle(req));
        Ok(answer)
    }

    /// Sends the command `build` makes for a fresh request id without waiting for its
    /// answer: it is kept in the state until [`State::settle`](super::state::State::settle).
    pub(super) fn send(
        &self,
        ask: Ask,
        build: impl FnOnce(RequestId) -> Command,
    ) -> Result<RequestId, DaemonError> {
        let req = self.shared.update(|s| s.ask(ask));
        if let Err(e) = self.push(build(req)) {
            self.shared.update(|s| s.settle(req));
            return Err(e);
        }
        Ok(req)
    }

    /// Appends to the journal and waits until it is on disk; a failure refuses whatever
    /// was about to happen.
    pub(super) fn journal(&self, record: Record) -> Result<(), DaemonError> {
        let mut j = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        let written = j.append(record);
        let ok = written.is_ok();
        self.shared.update(|s| s.journal_healthy = ok);
        written.map_err(|source| DaemonError::Journal {
            path: j.path().to_owned(),
            source,
        })
    }

    pub(super) fn check_running(&self) -> Result<(), DaemonError> {
        let s = self.shared.lock();
        if s.stopped || !s.running {
            return Err(DaemonError::NotRunning);
        }
        Ok(())
    }

    /// Pushes a command, retrying briefly if the queue is full.
    fn push(&self, mut command: Command) -> Result<(), DaemonError> {
        let deadline = Instant::now() + PUSH_WAIT;
        loop {
            match self.commands.push(command) {
                Ok(()) => return Ok(()),
                Err(_) if Instant::now() >= deadline => return Err(DaemonError::QueueFull),
                Err(back) => {
                    command = back;
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
    }
}
