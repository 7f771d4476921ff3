//! `control doctor`: a preflight of the host against a configuration, check by check,
//! each `pass`, `warn` or `fail` with a one-line remedy.
//!
//! Checks that read the kernel's files take a [`Host`], whose root is `/` on a live
//! system and a canned `/sys` + `/proc` tree in the tests, so each path through each
//! check is tested without the hardware it describes. Checks that must act (an AF_XDP
//! bind, an ARP probe, a program run) are in `live.rs` and run only against `/`; their
//! verdicts are pure functions tested on canned answers.

mod arp;
pub mod clock;
pub mod cpu;
pub mod kernel;
pub mod live;
pub mod neighbours;
pub mod nic;
pub mod plan;
pub mod privilege;

use serde::Serialize;
use std::path::{Path, PathBuf};

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One check's result: what was looked at, what was found, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Short name (`kernel`, `driver`, `irq_affinity`...).
    pub check: &'static str,
    pub status: Status,
    /// What was found, in one line.
    pub detail: String,
    /// The one-line fix (empty on a pass).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub remedy: String,
}

impl Check {
    pub fn pass(check: &'static str, detail: impl Into<String>) -> Check {
        Check {
            check,
            status: Status::Pass,
            detail: detail.into(),
            remedy: String::new(),
        }
    }

    pub fn warn(
        check: &'static str,
        detail: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Check {
        Check {
            check,
            status: Status::Warn,
            detail: detail.into(),
            remedy: remedy.into(),
        }
    }

    pub fn fail(
        check: &'static str,
        detail: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Check {
        Check {
            check,
            status: Status::Fail,
            detail: detail.into(),
            remedy: remedy.into(),
        }
    }
}

/// The kernel's view of a host: `/sys` and `/proc` under `root`.
#[derive(Debug, Clone)]
pub struct Host {
    root: PathBuf,
}

impl Host {
    /// The running system.
    pub fn live() -> Host {
        Host { root: "/".into() }
    }

    /// A canned tree (tests).
    #[cfg(test)]
    pub fn at(root: &Path) -> Host {
        Host {
            root: root.to_owned(),
        }
    }

    pub fn is_live(&self) -> bool {
        self.root == Path::new("/")
    }

    /// `path` (absolute, as on a live system) under this host's root.
    pub fn path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// The trimmed text of a file, if it can be read.
    pub fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.path(path))
            .ok()
            .map(|s| s.trim().to_owned())
    }

    pub fn exists(&self, path: &str) -> bool {
        self.path(path).exists()
    }

    /// Names of the entries of a directory (empty if it cannot be read), sorted.
    pub fn entries(&self, path: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path(path))
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// The last component of a symlink's target (a driver's name from `device/driver`).
    pub fn link_name(&self, path: &str) -> Option<String> {
        let target = std::fs::read_link(self.path(path)).ok()?;
        Some(target.file_name()?.to_string_lossy().into_owned())
    }
}

/// Every check for `config` on `host`, in the order the README explains them. Live
/// checks run only on the live host.
pub fn run(host: &Host, config: &quickdraw_config::Config) -> Vec<Check> {
    let a = &config.appliance;
    let mut checks = vec![kernel::version_and_btf(host)];
    checks.push(nic::driver(
        host,
        &a.interface,
        a.xdp_mode,
        live::ethtool_driver(host, &a.interface),
    ));
    if host.is_live() {
        checks.push(live::zero_copy_bind(&a.interface, a.queue));
    }
    checks.push(nic::queues(host, a));
    checks.push(nic::irq_affinity(host, &a.interface, a.core));
    checks.push(cpu::isolation(host, a.core));
    checks.push(cpu::governor(host, a.core));
    checks.push(cpu::idle_states(host, a.core));
    checks.push(cpu::realtime_throttle(host, a.realtime_priority));
    checks.push(cpu::code_pages(host, a.keep_code_in_place));
    checks.push(nic::numa(host, &a.interface, a.core));
    checks.push(privilege::capabilities(host, a));
    checks.push(privilege::memlock(host, a));
    if host.is_live() {
        checks.push(neighbours::own_address(a, &live::local_addresses()));
        checks.push(live::duplicate_address(a));
        checks.push(live::next_hop(config));
    }
    checks.push(clock::sync_daemon(host, live::chrony_tracking(host)));
    checks.extend(plan::checks(host, config));
    checks
}

/// The text report: one line per check, its remedy under it when there is one.
pub fn render(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        out += &format!("{} {:width$}  {}\n", c.status.label(), c.check, c.detail);
        if !c.remedy.is_empty() {
            out += &format!("     {:width$}  → {}\n", "", c.remedy);
        }
    }
    let count = |s| checks.iter().filter(|c| c.status == s).count();
    out += &format!(
        "{} pass, {} warn, {} fail\n",
        count(Status::Pass),
        count(Status::Warn),
        count(Status::Fail)
    );
    out
}

#[cfg(test)]
pub(crate) mod canned;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_aligns_and_counts() {
        let checks = vec![
            Check::pass("kernel", "6.18"),
            Check::warn(
                "governor",
                "powersave",
                "cpupower frequency-set -g performance",
            ),
            Check::fail("caps", "CAP_BPF missing", "run as root"),
        ];
        assert_eq!(
            render(&checks),
            "PASS kernel    6.18\n\
             WARN governor  powersave\n     \
             \u{20}         → cpupower frequency-set -g performance\n\
             FAIL caps      CAP_BPF missing\n     \
             \u{20}         → run as root\n\
             1 pass, 1 warn, 1 fail\n"
        );
    }
}
