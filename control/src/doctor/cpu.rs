//! The datapath core: isolated from other tasks, the tick and RCU callbacks; running at
//! full frequency; not dropping into deep idle states.

use super::{Check, Host};
use quickdraw_config::cpus::CpuList;

/// The value of boot parameter `name=` on the kernel command line.
fn boot_param<'a>(cmdline: &'a str, name: &str) -> Option<&'a str> {
    cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
}

pub fn isolation(host: &Host, core: usize) -> Check {
    const NAME: &str = "isolation";
    let listed = |path: &str| {
        host.read(path)
            .and_then(|t| CpuList::parse(&t))
            .is_some_and(|l| l.contains(core))
    };
    let cmdline = host.read("/proc/cmdline").unwrap_or_default();
    let rcu = boot_param(&cmdline, "rcu_nocbs")
        .and_then(CpuList::parse)
        .is_some_and(|l| l.contains(core));
    let have = [
        ("isolcpus", listed("/sys/devices/system/cpu/isolated")),
        ("nohz_full", listed("/sys/devices/system/cpu/nohz_full")),
        ("rcu_nocbs", rcu),
    ];
    let missing: Vec<&str> = have.iter().filter(|(_, on)| !on).map(|(n, _)| *n).collect();
    if missing.is_empty() {
        return Check::pass(
            NAME,
            format!("core {core} in isolcpus, nohz_full and rcu_nocbs"),
        );
    }
    Check::warn(
        NAME,
        format!("core {core} not in {}", missing.join(", ")),
        format!(
            "boot with {}",
            missing
                .iter()
                .map(|m| format!("{m}={core}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    )
}

pub fn governor(host: &Host, core: usize) -> Check {
    const NAME: &str = "cpu_governor";
    match host.read(&format!(
        "/sys/devices/system/cpu/cpu{core}/cpufreq/scaling_governor"
    )) {
        None => Check::pass(
            NAME,
            format!("core {core}: no cpufreq control (fixed frequency, or a VM)"),
        ),
        Some(g) if g == "performance" => Check::pass(NAME, format!("core {core}: performance")),
        Some(g) => Check::warn(
            NAME,
            format!("core {core}: governor {g}: the clock ramps down between fires"),
            format!("cpupower -c {core} frequency-set -g performance"),
        ),
    }
}

/// Idle states deeper than this (exit latency, µs) cost a fire that finds the core idle.
const SHALLOW_US: u64 = 2;

pub fn idle_states(host: &Host, core: usize) -> Check {
    const NAME: &str = "idle_states";
    let dir = format!("/sys/devices/system/cpu/cpu{core}/cpuidle");
    let deep: Vec<String> = host
        .entries(&dir)
        .iter()
        .filter(|s| s.starts_with("state"))
        .filter_map(|s| {
            let at = |f: &str| host.read(&format!("{dir}/{s}/{f}"));
            let latency: u64 = at("latency")?.parse().ok()?;
            let disabled = at("disable").is_some_and(|d| d == "1");
            (latency > SHALLOW_US && !disabled)
                .then(|| format!("{} ({latency} µs)", at("name").unwrap_or_else(|| s.clone())))
        })
        .collect();
    if deep.is_empty() {
        Check::pass(NAME, format!("core {core}: no deep idle state enabled"))
    } else {
        Check::warn(
            NAME,
            format!("core {core}: deep idle states enabled: {}", deep.join(", ")),
            format!("cpupower -c {core} idle-set -D {SHALLOW_US} (a busy-polling core rarely idles, a core waiting for an arm does)"),
        )
    }
}

/// A SCHED_FIFO thread that never sleeps is throttled by RT bandwidth control: idle for
/// `period - runtime` of every period (50 ms a second by default) on kernels without the
/// fair deadline server (before 6.12), or when other tasks share its core. A fire due then
/// waits for the throttle to end.
pub fn realtime_throttle(host: &Host, realtime_priority: Option<u8>) -> Check {
    const NAME: &str = "rt_throttle";
    let Some(priority) = realtime_priority else {
        return Check::pass(NAME, "realtime_priority unset: normal scheduling");
    };
    let runtime = host.read("/proc/sys/kernel/sched_rt_runtime_us");
    let period = host.read("/proc/sys/kernel/sched_rt_period_us");
    match (runtime.as_deref(), period) {
        (Some("-1"), _) => Check::pass(NAME, format!("SCHED_FIFO {priority}, RT throttling off")),
        (Some(runtime), Some(period)) => Check::warn(
            NAME,
            format!(
                "SCHED_FIFO {priority} with RT throttling at {runtime} of every {period} µs: a busy-polling thread can be parked for the rest"
            ),
            "sysctl kernel.sched_rt_runtime_us=-1 (with the core isolated), or leave realtime_priority unset",
        ),
        _ => Check::warn(NAME, "RT throttling settings unreadable", "check /proc/sys/kernel/sched_rt_runtime_us"),
    }
}

/// The datapath moves its code onto 2 MiB pages at start (a fire after a long wait is
/// faster). Under the shipped unit's W^X rule (`MemoryDenyWriteExecute=yes`) that takes
/// hugetlbfs pages reserved on the host (or shmem huge pages); without the rule,
/// transparent huge pages.
pub fn code_pages(host: &Host, keep_in_place: bool) -> Check {
    const NAME: &str = "code_pages";
    // Today's 6 MiB of code (`control`, linked 2 MiB apart) and one page of room.
    const PAGES: usize = 4;
    if keep_in_place {
        return Check::pass(
            NAME,
            "keep_code_in_place = true: the code stays in the binary's mapping",
        );
    }
    let reserved: usize = host
        .read("/proc/sys/vm/nr_hugepages")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mode = |path: &str| {
        let text = host.read(path)?;
        let start = text.find('[')? + 1;
        Some(text[start..start + text[start..].find(']')?].to_owned())
    };
    let shmem = mode("/sys/kernel/mm/transparent_hugepage/shmem_enabled")
        .is_some_and(|m| matches!(m.as_str(), "always" | "within_size" | "advise" | "force"));
    let thp = mode("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_some_and(|m| matches!(m.as_str(), "always" | "madvise"));
    if reserved >= PAGES || shmem {
        let how = if reserved >= PAGES {
            format!("{reserved} hugetlbfs pages reserved")
        } else {
            "shmem huge pages allowed".to_owned()
        };
        return Check::pass(
            NAME,
            format!("2 MiB pages for the code, under the unit's W^X rule too ({how})"),
        );
    }
    let remedy = "echo 'vm.nr_hugepages = 4' > /etc/sysctl.d/90-quickdraw.conf && sysctl --system (add 4 to pages reserved for other uses)";
    match thp {
        true => Check::warn(
            NAME,
            format!("no hugetlbfs pages reserved (vm.nr_hugepages = {reserved}): under the shipped unit's MemoryDenyWriteExecute=yes the code stays on 4 KiB pages (slower fires after a long wait)"),
            remedy,
        ),
        false => Check::warn(
            NAME,
            "no transparent huge pages and no hugetlbfs pages reserved: the code stays on 4 KiB pages (slower fires after a long wait)",
            remedy,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::canned::Tree;
    use super::super::Status;
    use super::*;

    #[test]
    fn isolation_pass_warn() {
        let t = Tree::new();
        t.file("/sys/devices/system/cpu/isolated", "1-3\n")
            .file("/sys/devices/system/cpu/nohz_full", "1-3\n")
            .file(
                "/proc/cmdline",
                "quiet isolcpus=1-3 nohz_full=1-3 rcu_nocbs=1-3\n",
            );
        assert_eq!(isolation(&t.host(), 2).status, Status::Pass);
        let w = isolation(&t.host(), 0);
        assert_eq!(w.status, Status::Warn);
        assert_eq!(w.remedy, "boot with isolcpus=0 nohz_full=0 rcu_nocbs=0");
        let bare = Tree::new();
        bare.file("/proc/cmdline", "quiet");
        assert_eq!(isolation(&bare.host(), 1).status, Status::Warn);
    }

    #[test]
    fn rt_throttle_pass_warn() {
        let t = Tree::new();
        t.file("/proc/sys/kernel/sched_rt_runtime_us", "950000\n")
            .file("/proc/sys/kernel/sched_rt_period_us", "1000000\n");
        assert_eq!(realtime_throttle(&t.host(), None).status, Status::Pass);
        assert_eq!(realtime_throttle(&t.host(), Some(50)).status, Status::Warn);
        t.file("/proc/sys/kernel/sched_rt_runtime_us", "-1\n");
        assert_eq!(realtime_throttle(&t.host(), Some(50)).status, Status::Pass);
        assert_eq!(
            realtime_throttle(&Tree::new().host(), Some(50)).status,
            Status::Warn
        );
    }

    #[test]
    fn code_pages_pass_warn() {
        let t = Tree::new();
        t.file("/proc/sys/vm/nr_hugepages", "0\n")
            .file(
                "/sys/kernel/mm/transparent_hugepage/enabled",
                "always [madvise] never\n",
            )
            .file(
                "/sys/kernel/mm/transparent_hugepage/shmem_enabled",
                "always within_size advise [never] deny force\n",
            );
        let w = code_pages(&t.host(), false);
        assert_eq!(w.status, Status::Warn);
        assert!(w.detail.contains("MemoryDenyWriteExecute"), "{w:?}");
        assert_eq!(code_pages(&t.host(), true).status, Status::Pass);
        t.file("/proc/sys/vm/nr_hugepages", "3\n");
        assert_eq!(code_pages(&t.host(), false).status, Status::Warn, "no room");
        t.file("/proc/sys/vm/nr_hugepages", "4\n");
        assert_eq!(code_pages(&t.host(), false).status, Status::Pass);
        t.file("/proc/sys/vm/nr_hugepages", "0\n").file(
            "/sys/kernel/mm/transparent_hugepage/shmem_enabled",
            "always within_size [advise] never deny force\n",
        );
        assert_eq!(code_pages(&t.host(), false).status, Status::Pass);
        let bare = Tree::new();
        let w = code_pages(&bare.host(), false);
        assert_eq!(w.status, Status::Warn);
        assert!(w.detail.contains("no transparent huge pages"), "{w:?}");
    }

    #[test]
    fn governor_pass_warn() {
        let t = Tree::new();
        t.file(
            "/sys/devices/system/cpu/cpu1/cpufreq/scaling_governor",
            "performance\n",
        )
        .file(
            "/sys/devices/system/cpu/cpu2/cpufreq/scaling_governor",
            "powersave\n",
        );
        assert_eq!(governor(&t.host(), 1).status, Status::Pass);
        assert_eq!(governor(&t.host(), 2).status, Status::Warn);
        assert_eq!(governor(&t.host(), 3).status, Status::Pass, "no cpufreq");
    }

    #[test]
    fn idle_pass_warn() {
        let t = Tree::new();
        let s = "/sys/devices/system/cpu/cpu1/cpuidle";
        t.file(&format!("{s}/state0/name"), "POLL")
            .file(&format!("{s}/state0/latency"), "0")
            .file(&format!("{s}/state0/disable"), "0")
            .file(&format!("{s}/state1/name"), "C6")
            .file(&format!("{s}/state1/latency"), "133")
            .file(&format!("{s}/state1/disable"), "0");
        let w = idle_states(&t.host(), 1);
        assert_eq!(w.status, Status::Warn);
        assert!(w.detail.contains("C6 (133 µs)"), "{w:?}");
        t.file(&format!("{s}/state1/disable"), "1");
        assert_eq!(idle_states(&t.host(), 1).status, Status::Pass);
        assert_eq!(idle_states(&t.host(), 5).status, Status::Pass, "no cpuidle");
    }
}
