//! Time sync: scheduled fires are only as good as the host's clock. chrony or ptp4l, and
//! chrony's offset when it runs.

use super::{Check, Host};

/// Offsets beyond this make `--at` fires visibly late or early.
const MAX_OFFSET_S: f64 = 100e-6;

/// Time daemons running on `host` (by `/proc/*/comm`).
pub fn daemons(host: &Host) -> Vec<String> {
    const KNOWN: &[&str] = &["chronyd", "ptp4l", "phc2sys", "systemd-timesyn", "ntpd"];
    let mut found: Vec<String> = host
        .entries("/proc")
        .iter()
        .filter(|e| e.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|pid| host.read(&format!("/proc/{pid}/comm")))
        .filter(|c| KNOWN.contains(&c.as_str()))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// The system clock's offset (seconds) from `chronyc -c tracking` (CSV; field 5 is the
/// "System time" offset).
pub fn chrony_offset(csv: &str) -> Option<f64> {
    csv.lines().next()?.split(',').nth(4)?.trim().parse().ok()
}

/// `tracking`: what `chronyc -c tracking` printed, when chronyd runs.
pub fn sync_daemon(host: &Host, tracking: Option<String>) -> Check {
    const NAME: &str = "time_sync";
    let running = daemons(host);
    if running.iter().any(|d| d == "chronyd") {
        return match tracking.as_deref().and_then(chrony_offset) {
            Some(off) if off.abs() <= MAX_OFFSET_S => {
                Check::pass(NAME, format!("chronyd, offset {:.1} µs", off * 1e6))
            }
            Some(off) => Check::warn(
                NAME,
                format!("chronyd, offset {:.1} µs", off * 1e6),
                "wait for chrony to converge (chronyc tracking), or use PTP (ptp4l + phc2sys)",
            ),
            None => Check::warn(
                NAME,
                "chronyd running, offset unknown",
                "check `chronyc tracking`",
            ),
        };
    }
    if running.iter().any(|d| d == "ptp4l") {
        return Check::pass(
            NAME,
            format!(
                "{} (offset: `pmc -u -b 0 'GET CURRENT_DATA_SET'`)",
                running.join(", ")
            ),
        );
    }
    if !running.is_empty() {
        return Check::warn(
            NAME,
            format!("{}: coarse sync", running.join(", ")),
            "chrony (or ptp4l where the NIC has a PHC) keeps the clock within microseconds",
        );
    }
    Check::warn(
        NAME,
        "no time sync daemon (chronyd, ptp4l) running",
        "apt install chrony (scheduled fires use the system clock)",
    )
}

#[cfg(test)]
mod tests {
    use super::super::canned::Tree;
    use super::super::Status;
    use super::*;

    const TRACKING: &str = "A9FEA97B,169.254.169.123,4,1764582000.0,0.000003120,-0.000001,0.000004,-3.2,0.01,0.02,0.0003,0.0001,16.2,Normal\n";

    #[test]
    fn pass_warn() {
        let t = Tree::new();
        t.file("/proc/812/comm", "chronyd\n")
            .file("/proc/1/comm", "systemd\n")
            .file("/proc/self/comm", "chronyd");
        assert_eq!(
            sync_daemon(&t.host(), Some(TRACKING.into())).status,
            Status::Pass
        );
        let far = TRACKING.replace("0.000003120", "-0.004");
        assert_eq!(sync_daemon(&t.host(), Some(far)).status, Status::Warn);
        assert_eq!(sync_daemon(&t.host(), None).status, Status::Warn);
        let ptp = Tree::new();
        ptp.file("/proc/90/comm", "ptp4l")
            .file("/proc/91/comm", "phc2sys");
        assert_eq!(sync_daemon(&ptp.host(), None).status, Status::Pass);
        let coarse = Tree::new();
        coarse.file("/proc/90/comm", "systemd-timesyn");
        assert_eq!(sync_daemon(&coarse.host(), None).status, Status::Warn);
        assert_eq!(sync_daemon(&Tree::new().host(), None).status, Status::Warn);
        assert_eq!(chrony_offset(TRACKING), Some(0.00000312));
    }
}
