//! What the daemon may do: its capabilities and how much memory it may lock. Read from
//! this process (`/proc/self`): run doctor as the daemon's user, with its capabilities
//! (`setpriv`, or `systemd-run -p AmbientCapabilities=...`), to check the service's set.

use super::{Check, Host};
use quickdraw_config::Appliance;

/// A capability the daemon uses: its name, number (linux/capability.h) and why.
#[derive(Debug, Clone, Copy)]
pub struct Capability {
    pub name: &'static str,
    pub bit: u32,
    pub why: &'static str,
}

pub const NET_ADMIN: Capability = Capability {
    name: "CAP_NET_ADMIN",
    bit: 12,
    why: "attach XDP, create the XSKMAP",
};
pub const NET_RAW: Capability = Capability {
    name: "CAP_NET_RAW",
    bit: 13,
    why: "open AF_XDP sockets",
};
pub const IPC_LOCK: Capability = Capability {
    name: "CAP_IPC_LOCK",
    bit: 14,
    why: "lock the UMEM and, with lock_memory, all memory",
};
pub const SYS_ADMIN: Capability = Capability {
    name: "CAP_SYS_ADMIN",
    bit: 21,
    why: "",
};
pub const SYS_NICE: Capability = Capability {
    name: "CAP_SYS_NICE",
    bit: 23,
    why: "SCHED_FIFO (realtime_priority)",
};
pub const PERFMON: Capability = Capability {
    name: "CAP_PERFMON",
    bit: 38,
    why: "load the steering program (without it the verifier refuses it: EACCES on 6.18)",
};
pub const BPF: Capability = Capability {
    name: "CAP_BPF",
    bit: 39,
    why: "load the steering program and its maps",
};

/// The effective capability mask of this process.
fn effective(host: &Host) -> Option<u64> {
    let status = host.read("/proc/self/status")?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

/// The capabilities the daemon needs for `a` (CAP_SYS_ADMIN stands in for CAP_BPF).
pub fn required(a: &Appliance) -> Vec<Capability> {
    let mut caps = vec![NET_ADMIN, NET_RAW, BPF, PERFMON, IPC_LOCK];
    if a.realtime_priority.is_some() {
        caps.push(SYS_NICE);
    }
    caps
}

pub fn capabilities(host: &Host, a: &Appliance) -> Check {
    const NAME: &str = "capabilities";
    let Some(eff) = effective(host) else {
        return Check::warn(
            NAME,
            "cannot read /proc/self/status",
            "check the daemon's capabilities by hand",
        );
    };
    let has = |c: Capability| eff & (1 << c.bit) != 0;
    let missing: Vec<Capability> = required(a)
        .into_iter()
        .filter(|&c| !(has(c) || c.bit == BPF.bit && has(SYS_ADMIN)))
        .collect();
    let names = |v: &[Capability]| v.iter().map(|c| c.name).collect::<Vec<_>>().join(", ");
    // Without CAP_IPC_LOCK a large enough memlock limit does it (see `memlock`).
    let (hard, soft): (Vec<Capability>, Vec<Capability>) =
        missing.into_iter().partition(|c| c.bit != IPC_LOCK.bit);
    let all = names(&required(a));
    if !hard.is_empty() {
        Check::fail(
            NAME,
            format!(
                "missing {} ({})",
                names(&hard),
                hard.iter().map(|c| c.why).collect::<Vec<_>>().join("; ")
            ),
            format!("grant {all} (AmbientCapabilities in deploy/quickdraw.service)"),
        )
    } else if !soft.is_empty() {
        Check::warn(
            NAME,
            format!("missing {}", names(&soft)),
            format!("grant {} too (deploy/quickdraw.service)", names(&soft)),
        )
    } else {
        Check::pass(NAME, format!("has {all}"))
    }
}

/// The UMEM the datapath maps (and the kernel charges to the memlock limit).
fn umem_bytes() -> u64 {
    quickdraw_datapath::preflight::umem_bytes()
}

/// `Max locked memory` soft limit from `/proc/self/limits`; `None` = unlimited.
fn memlock_limit(host: &Host) -> Option<Option<u64>> {
    let limits = host.read("/proc/self/limits")?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max locked memory"))?;
    let soft = line.split_whitespace().nth(3)?;
    Some(match soft {
        "unlimited" => None,
        n => Some(n.parse().ok()?),
    })
}

pub fn memlock(host: &Host, a: &Appliance) -> Check {
    const NAME: &str = "memlock";
    let ipc_lock = effective(host).is_some_and(|e| e & (1 << IPC_LOCK.bit) != 0);
    let need = umem_bytes();
    let remedy = "LimitMEMLOCK=infinity in the unit, or CAP_IPC_LOCK";
    match memlock_limit(host) {
        None => Check::warn(NAME, "cannot read /proc/self/limits", remedy),
        Some(None) => Check::pass(NAME, "unlimited"),
        Some(Some(_)) if ipc_lock => Check::pass(NAME, "CAP_IPC_LOCK: the limit does not apply"),
        Some(Some(limit)) if a.lock_memory => Check::fail(
            NAME,
            format!(
                "{} KiB, and lock_memory = true locks all memory",
                limit / 1024
            ),
            remedy,
        ),
        Some(Some(limit)) if limit < need => Check::fail(
            NAME,
            format!("{} KiB < the UMEM's {} KiB", limit / 1024, need / 1024),
            remedy,
        ),
        Some(Some(limit)) => Check::pass(
            NAME,
            format!("{} KiB ≥ the UMEM's {} KiB", limit / 1024, need / 1024),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::canned::Tree;
    use super::super::Status;
    use super::*;

    fn appliance(extra: &str) -> Appliance {
        toml::from_str(&format!(
            "backend = \"af_xdp\"\ninterface = \"eth0\"\ncore = 1\nip = \"192.0.2.50\"\n{extra}"
        ))
        .unwrap()
    }

    fn caps(mask: u64, memlock: &str) -> Tree {
        let t = Tree::new();
        t.file("/proc/self/status", &format!("Name:\tcontrol\nCapEff:\t{mask:016x}\n"))
            .file(
                "/proc/self/limits",
                &format!("Limit                     Soft Limit           Hard Limit           Units\nMax locked memory         {memlock}             {memlock}             bytes\n"),
            );
        t
    }

    #[test]
    fn capabilities_pass_warn_fail() {
        let all = [NET_ADMIN, NET_RAW, BPF, PERFMON, IPC_LOCK, SYS_NICE]
            .iter()
            .map(|c| 1u64 << c.bit)
            .sum::<u64>();
        let a = appliance("realtime_priority = 10");
        assert_eq!(
            capabilities(&caps(all, "8388608").host(), &a).status,
            Status::Pass
        );
        assert_eq!(
            capabilities(&caps(0x1ff_ffff_ffff, "8388608").host(), &a).status,
            Status::Pass,
            "root"
        );
        let no_perfmon = all & !(1 << PERFMON.bit);
        assert_eq!(
            capabilities(&caps(no_perfmon, "8388608").host(), &a).status,
            Status::Fail
        );
        let no_ipc_lock = all & !(1 << IPC_LOCK.bit);
        assert_eq!(
            capabilities(&caps(no_ipc_lock, "8388608").host(), &a).status,
            Status::Warn
        );
        let no_raw = all & !(1 << NET_RAW.bit);
        let f = capabilities(&caps(no_raw, "8388608").host(), &a);
        assert_eq!(f.status, Status::Fail);
        assert!(f.detail.contains("CAP_NET_RAW"), "{f:?}");
        let no_nice = all & !(1 << SYS_NICE.bit);
        assert_eq!(
            capabilities(&caps(no_nice, "8388608").host(), &a).status,
            Status::Fail
        );
        assert_eq!(
            capabilities(&caps(no_nice, "8388608").host(), &appliance("")).status,
            Status::Pass
        );
    }

    #[test]
    fn memlock_pass_fail() {
        let a = appliance("");
        assert_eq!(
            memlock(&caps(0, "unlimited").host(), &a).status,
            Status::Pass
        );
        assert_eq!(
            memlock(&caps(0, "8388608").host(), &a).status,
            Status::Fail,
            "8 MiB < 16 MiB"
        );
        assert_eq!(
            memlock(&caps(0, "67108864").host(), &a).status,
            Status::Pass
        );
        assert_eq!(
            memlock(
                &caps(0, "67108864").host(),
                &appliance("lock_memory = true")
            )
            .status,
            Status::Fail
        );
        assert_eq!(
            memlock(&caps(1 << IPC_LOCK.bit, "65536").host(), &a).status,
            Status::Pass
        );
        assert_eq!(memlock(&Tree::new().host(), &a).status, Status::Warn);
    }
}
