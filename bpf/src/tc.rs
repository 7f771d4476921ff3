//! [`Hooks`]: the two stamping programs as tc filters on one interface's
//! clsact qdisc, ingress and egress.

use std::os::fd::{AsFd, OwnedFd};

use libbpf_rs::{TcAttachPoint, TcHook, TC_EGRESS, TC_INGRESS};

use crate::{sys, Error};

/// Our filters' handle ("qd"), on both hooks.
pub(crate) const HANDLE: u32 = 0x7164;
/// Our filters' priority: first, so the stamp is taken before any other
/// classifier runs (or drops the frame).
pub(crate) const PRIORITY: u32 = 1;

/// The two filters, attached. They are kernel objects that outlive the
/// process: [`Hooks::detach`] removes them (and the qdisc, if attaching
/// created it).
///
/// Holds its own duplicates of the program fds: a libbpf `TcHook` is not
/// `Send` (it has a C string pointer), so hooks are rebuilt from these on
/// whichever thread (in whichever namespace) does the work.
#[derive(Debug)]
pub(crate) struct Hooks {
    pub(crate) ifindex: u32,
    ingress: OwnedFd,
    egress: OwnedFd,
    created_qdisc: bool,
}

impl Hooks {
    /// Adds a clsact qdisc to `ifindex` unless it has one, then the filters
    /// (replacing filters of ours left by a process that died attached). In
    /// the calling thread's network namespace. On failure, leaves the
    /// interface as it was.
    pub(crate) fn attach(ifindex: u32, ingress: OwnedFd, egress: OwnedFd) -> Result<Hooks, Error> {
        let created_qdisc = sys::clsact_create(ifindex).map_err(|e| Error::Tc {
            op: "qdisc add",
            ifindex,
            source: e.into(),
        })?;
        let mut hooks = Hooks {
            ifindex,
            ingress,
            egress,
            created_qdisc,
        };
        let attached = hooks
            .hook(TC_INGRESS)
            .attach()
            .and_then(|_| hooks.hook(TC_EGRESS).attach())
            .map_err(|source| Error::Tc {
                op: "filter add",
                ifindex,
                source,
            });
        if let Err(e) = attached {
            // Undo what succeeded; the first error is the one to report.
            let _ = hooks.detach();
            return Err(e);
        }
        Ok(hooks)
    }

    /// Removes both filters, then the clsact qdisc if [`Hooks::attach`]
    /// created it (with any filter someone else added to it since). In the
    /// calling thread's network namespace, which must be the one of the
    /// attach. Tries every step; reports the first failure. A filter or
    /// qdisc already gone is not a failure; an interface gone (`ENODEV`)
    /// is reported, though it took our filters with it.
    pub(crate) fn detach(&mut self) -> Result<(), Error> {
        let ifindex = self.ifindex;
        let gone = |r: libbpf_rs::Result<()>| match r {
            Err(e) if is_gone(&e) => Ok(()),
            other => other,
        };
        let mut result = gone(self.hook(TC_INGRESS).detach())
            .and(gone(self.hook(TC_EGRESS).detach()))
            .map_err(|source| Error::Tc {
                op: "filter del",
                ifindex,
                source,
            });
        if self.created_qdisc {
            let destroyed =
                gone(self.hook(TC_INGRESS | TC_EGRESS).destroy()).map_err(|source| Error::Tc {
                    op: "qdisc del",
                    ifindex,
                    source,
                });
            result = result.and(destroyed);
        }
        result
    }

    /// Our filter on `point` (or, for ingress|egress, the clsact qdisc).
    fn hook(&self, point: TcAttachPoint) -> TcHook {
        let fd = if point == TC_EGRESS {
            self.egress.as_fd()
        } else {
            self.ingress.as_fd()
        };
        let mut hook = TcHook::new(fd);
        // `attach` checked that it fits (`clsact_create` refuses otherwise).
        hook.ifindex(self.ifindex as i32)
            .attach_point(point)
            .handle(HANDLE)
            .priority(PRIORITY)
            .replace(true);
        hook
    }
}

/// Our filter (or the qdisc) is not there any more (`ENOENT`).
fn is_gone(e: &libbpf_rs::Error) -> bool {
    e.kind() == libbpf_rs::ErrorKind::NotFound
}
