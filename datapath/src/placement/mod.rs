//! Where and how the datapath thread runs: pinned to its core with `sched_setaffinity`
//! (the core checked against the CPUs the kernel has online, not the inherited mask, which
//! `taskset` or `isolcpus` shrink), optionally under SCHED_FIFO, with the process's memory
//! optionally locked; and what of it took effect, for `status`.

mod sched;
mod text;

#[cfg(test)]
pub(crate) use text::huge_at;
pub(crate) use text::{code_range, thp_mode};
pub use text::{huge_text, HugeText};

use quickdraw_config::cpus::CpuList;
use std::io;
use std::path::Path;

/// The kernel's lists of isolated (`isolcpus=`) and tickless (`nohz_full=`) CPUs.
const ISOLATED: &str = "/sys/devices/system/cpu/isolated";
const NOHZ_FULL: &str = "/sys/devices/system/cpu/nohz_full";

/// Scheduling asked for beyond the core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scheduling {
    /// SCHED_FIFO at this priority (1..=99): needs CAP_SYS_NICE.
    pub realtime_priority: Option<u8>,
    /// `mlockall(MCL_CURRENT | MCL_FUTURE)`: needs CAP_IPC_LOCK or a large enough
    /// RLIMIT_MEMLOCK.
    pub lock_memory: bool,
    /// Do not move the code onto 2 MiB pages ([`huge_text`]): where a profiler must
    /// resolve its symbols from the binary.
    pub keep_code_in_place: bool,
}

/// What took effect on the datapath thread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// The core the thread is pinned to, if pinning succeeded.
    pub core: Option<usize>,
    /// That core is in the kernel's `isolated` list (`isolcpus=`).
    pub isolated: bool,
    /// That core is in `nohz_full`.
    pub nohz_full: bool,
    /// SCHED_FIFO priority in effect.
    pub realtime_priority: Option<u8>,
    /// The process's memory is locked.
    pub memory_locked: bool,
    /// Bytes of the program's code on 2 MiB pages ([`huge_text`]).
    pub code_on_huge_pages: usize,
    /// Why something asked for did not take effect, or is not as good as it should be.
    pub warnings: Vec<String>,
}

/// Why the calling thread could not be pinned.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("core {core} is not online (online: {online:?})")]
    Offline { core: usize, online: Vec<usize> },
    #[error("core {core}: sched_setaffinity: {source}")]
    Affinity { core: usize, source: io::Error },
}

/// Pins the calling thread to `core`, checked against `/sys/devices/system/cpu/online`.
pub fn pin(core: usize) -> Result<(), PinError> {
    if let Some(online) = CpuList::online().filter(|c| !c.is_empty()) {
        if !online.contains(core) {
            return Err(PinError::Offline {
                core,
                online: online.cpus().to_vec(),
            });
        }
    }
    let mut set = rustix::thread::CpuSet::new();
    set.set(core);
    rustix::thread::sched_setaffinity(None, &set).map_err(|e| PinError::Affinity {
        core,
        source: e.into(),
    })
}

/// The core the calling thread is pinned to, if its mask holds exactly one.
pub fn pinned_core() -> Option<usize> {
    let set = rustix::thread::sched_getaffinity(None).ok()?;
    let cores: Vec<usize> = (0..rustix::thread::CpuSet::MAX_CPU)
        .filter(|&c| set.is_set(c))
        .collect();
    (cores.len() == 1).then(|| cores[0])
}

/// Whether `core` is isolated and tickless, from the kernel's lists under `root`
/// (`/` on a live system; a canned tree in tests).
pub fn isolation(root: &Path, core: usize) -> (bool, bool) {
    let listed = |file: &str| {
        CpuList::read(&root.join(file.trim_start_matches('/'))).is_some_and(|l| l.contains(core))
    };
    (listed(ISOLATED), listed(NOHZ_FULL))
}

/// Applies `core` and `scheduling` to the calling thread (and, for memory, the process),
/// and moves the program's code onto huge pages.
/// Nothing here is fatal: what fails is left out of the result and said in `warnings`.
pub fn apply(core: Option<usize>, scheduling: Scheduling) -> Placement {
    let mut placement = Placement::default();
    if let Some(core) = core {
        match pin(core) {
            Ok(()) => {
                placement.core = Some(core);
                let (isolated, nohz_full) = isolation(Path::new("/"), core);
                placement.isolated = isolated;
                placement.nohz_full = nohz_full;
                if !isolated || !nohz_full {
                    placement.warnings.push(format!(
                        "core {core} is not isolated{}: other tasks and the tick can run \
                         there (boot with isolcpus={core} nohz_full={core} rcu_nocbs={core})",
                        if isolated {
                            " from the tick (nohz_full)"
                        } else {
                            ""
                        }
                    ));
                }
            }
            Err(e) => placement.warnings.push(format!("not pinned: {e}")),
        }
    }
    if let Some(priority) = scheduling.realtime_priority {
        match sched::set_fifo(priority) {
            Ok(()) => placement.realtime_priority = Some(priority),
            Err(e) => placement.warnings.push(format!(
                "SCHED_FIFO {priority} refused ({e}): needs CAP_SYS_NICE"
            )),
        }
    }
    // Asked for where a profiler must resolve symbols from the binary: no warning.
    if !scheduling.keep_code_in_place {
        match huge_text() {
            Ok(t) => {
                placement.code_on_huge_pages = t.huge;
                if t.huge == 0 && t.via_file {
                    placement.warnings.push(format!(
                        "the code stays on 4 KiB pages: memory cannot be made executable here \
                         (systemd's MemoryDenyWriteExecute, or PR_SET_MDWE), and a copy in a \
                         memory file found no 2 MiB pages (reserve {} with vm.nr_hugepages): a \
                         fire after a long wait runs slower",
                        t.text.div_ceil(2 << 20) + 1,
                    ));
                } else if t.huge == 0 {
                    placement.warnings.push(format!(
                        "the code stays on 4 KiB pages ({} of {} KiB moved, transparent huge \
                         pages {}): a fire after a long wait runs slower",
                        t.moved >> 10,
                        t.text >> 10,
                        thp_mode().unwrap_or_else(|| "unknown".into()),
                    ));
                }
            }
            Err(e) => placement
                .warnings
                .push(format!("the code could not be moved to huge pages: {e}")),
        }
    }
    if scheduling.lock_memory {
        let flags = rustix::mm::MlockAllFlags::CURRENT | rustix::mm::MlockAllFlags::FUTURE;
        match rustix::mm::mlockall(flags) {
            Ok(()) => placement.memory_locked = true,
            Err(e) => placement.warnings.push(format!(
                "mlockall refused ({e}): needs CAP_IPC_LOCK or a higher LimitMEMLOCK"
            )),
        }
    }
    for w in &placement.warnings {
        tracing::warn!("datapath placement: {w}");
    }
    placement
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolation_reads_the_kernel_lists() {
        let dir = std::env::temp_dir().join(format!("qd-placement-{}", std::process::id()));
        let cpu = dir.join("sys/devices/system/cpu");
        std::fs::create_dir_all(&cpu).unwrap();
        std::fs::write(cpu.join("isolated"), "1-3\n").unwrap();
        std::fs::write(cpu.join("nohz_full"), "(null)\n").unwrap();
        assert_eq!(isolation(&dir, 2), (true, false));
        assert_eq!(isolation(&dir, 0), (false, false));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pins_inside_the_online_set_only() {
        let online = CpuList::online().unwrap();
        let last = *online.cpus().last().unwrap();
        assert!(matches!(
            pin(100_000),
            Err(PinError::Offline { core: 100_000, .. })
        ));
        let got = std::thread::spawn(move || pin(last).map(|()| pinned_core()))
            .join()
            .unwrap()
            .unwrap();
        assert_eq!(got, Some(last));
    }
}
