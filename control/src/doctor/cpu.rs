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
