//! Semantic checks over a parsed configuration. Each returns problems instead of
//! stopping, so a user fixes a file in one pass. The appliance and targets are checked
//! here; the daemon's own sections in `validate_sections.rs`.

use crate::schema::{Config, Target, TrustAnchors};
use crate::Problem;
use std::collections::HashSet;

/// Hard ceilings on the per-target caps: quickdraw is fast, not a load generator.
const CONNECTIONS_CEILING: u32 = 64;
const FIRES_PER_ARM_CEILING: u32 = 64;
const FIRES_PER_MINUTE_CEILING: u32 = 600;
/// Slots in the XDP program's socket map (`STEER_MAX_QUEUES`).
const MAX_QUEUES: u32 = 64;

pub(crate) fn check(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut report = |path: String, message: String| problems.push(Problem { path, message });
    crate::validate_sections::check(config, &mut report);

    let a = &config.appliance;
    if a.interface.is_empty() || a.interface.len() > 15 || a.interface.contains('/') {
        report(
            "appliance.interface".into(),
            format!(
                "{:?} is not a valid interface name (1 to 15 characters, no '/')",
                a.interface
            ),
        );
    }
    if a.ip.is_unspecified() || a.ip.is_multicast() || a.ip.is_broadcast() || a.ip.is_loopback() {
        report(
            "appliance.ip".into(),
            format!("{} cannot be the appliance's own unicast address", a.ip),
        );
    }
    if a.prefix_len == 0 || a.prefix_len > 32 {
        report(
            "appliance.prefix_len".into(),
            format!("{} is not a prefix length in 1..=32", a.prefix_len),
        );
    }
    if let Some(gw) = a.gateway {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(a.prefix_len.clamp(1, 32)))
            .unwrap_or(0);
        if gw == a.ip || (u32::from(gw) & mask) != (u32::from(a.ip) & mask) {
            report(
                "appliance.gateway".into(),
                format!(
                    "{gw} is not another address in the appliance's subnet {}/{}",
                    a.ip, a.prefix_len
                ),
            );
        }
    }
    check_placement(a, &mut report);

    let w = &a.warming;
    if w.ramp_interval_us > w.frame_interval_us && w.frame_interval_us != 0 {
        report(
            "appliance.warming.ramp_interval_us".into(),
            format!(
                "the ramp ({} µs) must not be slower than the base rate (frame_interval_us = {})",
                w.ramp_interval_us, w.frame_interval_us
            ),
        );
    }
    if w.quiet_us > w.ramp_us {
        report(
            "appliance.warming.quiet_us".into(),
            format!(
                "the quiet window ({} µs) must fit inside the ramp (ramp_us = {})",
                w.quiet_us, w.ramp_us
            ),
        );
    }
    for (key, value) in [
        ("send_interval_us", w.send_interval_us),
        ("frame_interval_us", w.frame_interval_us),
        ("ramp_interval_us", w.ramp_interval_us),
    ] {
        if value != 0 && value < 5 {
            report(
                format!("appliance.warming.{key}"),
                format!("{value} µs would spend the core on warming: 0 (off) or at least 5"),
            );
        }
    }

    if config.targets.is_empty() {
        report(
            "targets".into(),
            "at least one [[targets]] table is required".into(),
        );
    }
    let mut names = HashSet::new();
    for (i, t) in config.targets.iter().enumerate() {
        if !names.insert(t.name.as_str()) {
            report(
                format!("targets[{i}].name"),
                format!("{:?} is used by an earlier target", t.name),
            );
        }
        check_target(i, t, &mut report);
    }
    check_shared_addresses(config, &mut report);
    problems
}

/// Caps are per server address: targets naming the same address share its connections,
/// held to the smallest `max_connections` among them (the daemon does the same for the
/// fire rate).
fn check_shared_addresses(config: &Config, report: &mut impl FnMut(String, String)) {
    for (i, t) in config.targets.iter().enumerate() {
        let same: Vec<&Target> = config
            .targets
            .iter()
            .filter(|o| o.address == t.address)
            .collect();
        let first = config.targets.iter().position(|o| o.address == t.address);
        if same.len() < 2 || first != Some(i) {
            continue;
        }
        let connections: u32 = same.iter().map(|o| o.connections).sum();
        let cap = same.iter().map(|o| o.max_connections).min().unwrap_or(0);
        if connections > cap {
            let names: Vec<&str> = same.iter().map(|o| o.name.as_str()).collect();
            report(
                format!("targets[{i}].address"),
                format!(
                    "{} is named by targets {}: their connections ({connections}) together \
                     pass the smallest max_connections among them ({cap}); caps are per address",
                    t.address,
                    names.join(", ")
                ),
            );
        }
    }
}

/// Core, queues and scheduling. The core is checked against the CPUs the kernel has
/// online, not this process's inherited mask (`taskset`, `isolcpus` shrink that).
fn check_placement(a: &crate::Appliance, report: &mut impl FnMut(String, String)) {
    let online = crate::cpus::CpuList::online().filter(|c| !c.is_empty());
    match online {
        Some(online) if !online.contains(a.core) => report(
            "appliance.core".into(),
            format!(
                "core {} is not online (online: {:?})",
                a.core,
                online.cpus()
            ),
        ),
        Some(_) => {}
        None => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            if a.core >= cores {
                report(
                    "appliance.core".into(),
                    format!(
                        "core {} does not exist on this machine (it has {cores})",
                        a.core
                    ),
                );
            }
        }
    }
    if let crate::Queues::List(list) = &a.queues {
        let mut seen = HashSet::new();
        if list.is_empty() {
            report(
                "appliance.queues".into(),
                "an empty list binds nothing: use \"all\" or name the queues".into(),
            );
        }
        for q in list {
            if *q >= MAX_QUEUES || !seen.insert(*q) {
                report(
                    "appliance.queues".into(),
                    format!("queue {q} is repeated or not below {MAX_QUEUES}"),
                );
            }
        }
    }
    if a.queue >= MAX_QUEUES {
        report(
            "appliance.queue".into(),
            format!("queue {} is not below {MAX_QUEUES}", a.queue),
        );
    }
    if let Some(p) = a.realtime_priority {
        if !(1..=99).contains(&p) {
            report(
                "appliance.realtime_priority".into(),
                format!("{p} is not a SCHED_FIFO priority in 1..=99"),
            );
        }
    }
}

fn check_target(i: usize, t: &Target, report: &mut impl FnMut(String, String)) {
    let at = |key: &str| format!("targets[{i}].{key}");
    if t.name.is_empty() {
        report(at("name"), "must not be empty".into());
    }
    if t.address.port() == 0 {
        report(at("address"), "port 0 is not a server port".into());
    }
    if t.address.ip().is_unspecified()
        || t.address.ip().is_broadcast()
        || t.address.ip().is_multicast()
    {
        report(
            at("address"),
            format!("{} is not a unicast server address", t.address.ip()),
        );
    }
    if rustls_pki_types::ServerName::try_from(t.server_name.as_str()).is_err() {
        report(
            at("server_name"),
            format!("{:?} is not a DNS name or IP address", t.server_name),
        );
    }
    if let TrustAnchors::CaFile(path) = &t.trust {
        if path.as_os_str().is_empty() {
            report(
                at("trust"),
                "must be \"system\" or the path of a PEM CA file".into(),
            );
        }
        // The file's existence is checked at start-up, not here: a lab CA is created by
        // `bench lab up` and a config may be validated before the lab exists.
    }
    if t.max_connections == 0 || t.max_connections > CONNECTIONS_CEILING {
        report(
            at("max_connections"),
            format!("{} is outside 1..={CONNECTIONS_CEILING}", t.max_connections),
        );
    }
    if t.connections == 0 || t.connections > t.max_connections {
        report(
            at("connections"),
            format!(
                "{} is outside 1..=max_connections ({})",
                t.connections, t.max_connections
            ),
        );
    }
    if !t.warm_path.starts_with('/')
        || t.warm_path
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ')
    {
        report(
            at("warm_path"),
            format!("{:?} is not an absolute request path", t.warm_path),
        );
    }
    if !(100..=3_600_000).contains(&t.warm_interval_ms) {
        report(
            at("warm_interval_ms"),
            format!("{} is outside 100..=3600000", t.warm_interval_ms),
        );
    }
    if !(10..=600_000).contains(&t.response_timeout_ms) {
        report(
            at("response_timeout_ms"),
            format!("{} is outside 10..=600000", t.response_timeout_ms),
        );
    }
    if !t.request.path.starts_with('/') {
        report(
            at("request.path"),
            format!("{:?} must start with '/'", t.request.path),
        );
    }
    let m = &t.request.method;
    if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
        report(
            at("request.method"),
            format!("{m:?} is not an HTTP method (upper-case letters, e.g. \"POST\")"),
        );
    }
    for (h, (name, value)) in t.request.headers.iter().enumerate() {
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            report(
                at(&format!("request.headers[{h}]")),
                format!("{name:?} is not an HTTP header name"),
            );
        } else if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            report(
                at(&format!("request.headers[{h}]")),
                format!("the value of {name} contains a control character"),
            );
        }
    }
    if t.max_fires_per_minute == 0 || t.max_fires_per_minute > FIRES_PER_MINUTE_CEILING {
        report(
            at("max_fires_per_minute"),
            format!(
                "{} is outside 1..={FIRES_PER_MINUTE_CEILING}",
                t.max_fires_per_minute
            ),
        );
    } else if t.max_fires_per_minute < t.max_fires_per_arm
        && t.max_fires_per_arm <= FIRES_PER_ARM_CEILING
    {
        report(
            at("max_fires_per_minute"),
            format!(
                "{} is below max_fires_per_arm ({}): a full burst could never fire",
                t.max_fires_per_minute, t.max_fires_per_arm
            ),
        );
    }
    if t.max_fires_per_arm == 0 || t.max_fires_per_arm > FIRES_PER_ARM_CEILING {
        report(
            at("max_fires_per_arm"),
            format!(
                "{} is outside 1..={FIRES_PER_ARM_CEILING}",
                t.max_fires_per_arm
            ),
        );
    }
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
