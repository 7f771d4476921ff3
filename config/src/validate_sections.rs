//! Semantic checks of the daemon's own sections: `[timing]`, `[limits]`, `[control]`,
//! `[journal]`, `[metrics]`.

use crate::schema::Config;
use std::path::Path;

/// Arms the datapath can hold at once (the daemon sizes it so).
pub const OPEN_ARMS_CEILING: u32 = 64;
/// A Unix socket path must fit `sun_path` (108 bytes, NUL included).
const SUN_PATH: usize = 107;

fn range(
    report: &mut impl FnMut(String, String),
    key: &str,
    value: u64,
    ok: std::ops::RangeInclusive<u64>,
) {
    if !ok.contains(&value) {
        report(
            key.into(),
            format!("{value} is outside {}..={}", ok.start(), ok.end()),
        );
    }
}

fn absolute_file(report: &mut impl FnMut(String, String), key: &str, path: &Path) {
    let text = path.to_string_lossy();
    if !path.is_absolute() || text.ends_with('/') || path.file_name().is_none() {
        report(
            key.into(),
            format!("{text:?} must be an absolute path to a file"),
        );
    }
}

pub(crate) fn check(config: &Config, report: &mut impl FnMut(String, String)) {
    let t = &config.timing;
    range(report, "timing.min_lead_ms", t.min_lead_ms, 1..=60_000);
    range(
        report,
        "timing.max_ahead_s",
        t.max_ahead_s,
        1..=366 * 24 * 3600,
    );
    range(
        report,
        "timing.sync_max_probes",
        t.sync_max_probes.into(),
        4..=200,
    );
    range(report, "timing.sync_max_ms", t.sync_max_ms, 1_000..=30_000);
    range(
        report,
        "timing.sync_valid_s",
        t.sync_valid_s,
        1..=7 * 24 * 3600,
    );

    let l = &config.limits;
    range(
        report,
        "limits.max_open_arms",
        l.max_open_arms.into(),
        1..=OPEN_ARMS_CEILING.into(),
    );
    range(report, "limits.max_clients", l.max_clients.into(), 1..=256);

    let c = &config.control;
    absolute_file(report, "control.socket", &c.socket);
    if c.socket.as_os_str().len() > SUN_PATH {
        report(
            "control.socket".into(),
            format!("longer than a Unix socket path may be ({SUN_PATH} bytes)"),
        );
    }

    let j = &config.journal;
    absolute_file(report, "journal.path", &j.path);
    if j.path == c.socket {
        report(
            "journal.path".into(),
            "must not be the control socket's path".into(),
        );
    }

    let m = &config.metrics;
    // Loopback only: the endpoint has no authentication, and what it shows (fire
    // counts, latencies) is nobody else's business.
    if !m.listen.ip().is_loopback() {
        report(
            "metrics.listen".into(),
            format!(
                "{} is not a loopback address (127.0.0.0/8 or ::1); the endpoint is local only",
                m.listen.ip()
            ),
        );
    }
}
