//! CPU lists as the kernel writes them (`/sys/devices/system/cpu/online`, `isolated`,
//! `nohz_full`, the `isolcpus=` boot parameter): `0-3,8,10-11`.

use std::path::Path;

/// The kernel's own list of online CPUs, not the process's inherited mask (a process
/// started under `taskset`, or a host booted with `isolcpus`, sees fewer).
pub const ONLINE: &str = "/sys/devices/system/cpu/online";

/// A set of CPU numbers, parsed from a kernel CPU list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuList(Vec<usize>);

impl CpuList {
    /// Parses `0-3,8,10-11`; whitespace around it and an empty list are fine. Flags
    /// the kernel accepts in boot parameters (`domain,`, `managed_irq,`) are skipped.
    pub fn parse(text: &str) -> Option<CpuList> {
        let mut cpus = Vec::new();
        for part in text.trim().split(',').map(str::trim) {
            if part.is_empty() || part.chars().all(|c| c.is_ascii_alphabetic() || c == '_') {
                continue;
            }
            let (lo, hi): (usize, usize) = match part.split_once('-') {
                Some((lo, hi)) => (lo.parse().ok()?, hi.parse().ok()?),
                None => {
                    let n = part.parse().ok()?;
                    (n, n)
                }
            };
            if hi < lo || hi - lo > 65_536 {
                return None;
            }
            cpus.extend(lo..=hi);
        }
        cpus.sort_unstable();
        cpus.dedup();
        Some(CpuList(cpus))
    }

    /// Reads and parses a CPU list file; `None` if it is missing or unreadable.
    pub fn read(path: &Path) -> Option<CpuList> {
        CpuList::parse(&std::fs::read_to_string(path).ok()?)
    }

    /// The CPUs online now (see [`ONLINE`]).
    pub fn online() -> Option<CpuList> {
        CpuList::read(Path::new(ONLINE))
    }

    pub fn contains(&self, cpu: usize) -> bool {
        self.0.binary_search(&cpu).is_ok()
    }

    pub fn cpus(&self) -> &[usize] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_lists() {
        assert_eq!(
            CpuList::parse("0-3,8,10-11\n").unwrap().cpus(),
            &[0, 1, 2, 3, 8, 10, 11]
        );
        assert_eq!(CpuList::parse("1").unwrap().cpus(), &[1]);
        assert!(CpuList::parse("\n").unwrap().is_empty());
        assert_eq!(
            CpuList::parse("domain,managed_irq,2-3").unwrap().cpus(),
            &[2, 3]
        );
        assert!(CpuList::parse("3-1").is_none());
        assert!(CpuList::parse("flags_only").unwrap().is_empty());
        assert!(CpuList::parse("1-a").is_none());
        assert!(CpuList::parse("0-1").unwrap().contains(1));
    }
}
