//! The configuration against this host: what `control up` would read and bind — every
//! CA file or the system store, the interface and its queues, a way to every target —
//! and the whole start-up plan built without starting anything. Shared by `control
//! check` and `control doctor`.

use super::{neighbours, nic, Check, Host};
use crate::setup::{self, Overrides};
use quickdraw_config::{Backend, Config, TrustAnchors};
use quickdraw_datapath::tls;

/// Each target's trust anchors, loaded as the datapath will load them.
pub fn trust(config: &Config) -> Vec<Check> {
    const NAME: &str = "trust";
    config
        .targets
        .iter()
        .map(|t| {
            let loaded = match &t.trust {
                TrustAnchors::System => {
                    tls::system_roots().map(|r| (r.len(), "system store".to_owned()))
                }
                TrustAnchors::CaFile(p) => {
                    tls::roots_from_pem_file(p).map(|r| (r.len(), p.display().to_string()))
                }
            };
            match loaded {
                Ok((n, from)) => {
                    Check::pass(NAME, format!("target {}: {n} root(s) from {from}", t.name))
                }
                Err(e) => Check::fail(
                    NAME,
                    format!("target {}: {e}", t.name),
                    match &t.trust {
                        TrustAnchors::System => "install ca-certificates, or set SSL_CERT_FILE",
                        TrustAnchors::CaFile(_) => {
                            "point trust at a readable PEM file of CA certificates"
                        }
                    },
                ),
            }
        })
        .collect()
}

/// The interface exists and has the configured queues (AF_XDP only).
pub fn interface(host: &Host, config: &Config) -> Check {
    const NAME: &str = "interface";
    let a = &config.appliance;
    if !host.exists(&format!("/sys/class/net/{}", a.interface)) {
        return Check::fail(
            NAME,
            format!("no interface {}", a.interface),
            "set appliance.interface to one of `ip link`",
        );
    }
    if a.backend == Backend::Kernel {
        return Check::pass(
            NAME,
            format!("{} (kernel backend: no queues bound)", a.interface),
        );
    }
    let n = nic::rx_queues(host, &a.interface);
    let bound = a.queues.resolve(n);
    let missing = bound.iter().chain([&a.queue]).find(|&&q| q >= n).copied();
    match missing {
        Some(q) => Check::fail(
            NAME,
            format!("{} has {n} RX queue(s): there is no queue {q}", a.interface),
            "use existing queues (ethtool -l shows the channel count)",
        ),
        None => Check::pass(
            NAME,
            format!("{}: sockets on queue(s) {bound:?} of {n}", a.interface),
        ),
    }
}

/// Every target is on the appliance's subnet, or a gateway is set.
pub fn route(config: &Config) -> Check {
    const NAME: &str = "route";
    match neighbours::next_hops(config) {
        Ok(hops) => Check::pass(
            NAME,
            format!(
                "next hop(s) {}",
                hops.iter()
                    .map(|h| h.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Err(e) => Check::fail(
            NAME,
            e,
            "set appliance.gateway, or put the target on the appliance's subnet",
        ),
    }
}

/// The start-up plan `control up` builds (targets' TLS clients, requests, engine shape).
pub fn startup(config: &Config) -> Check {
    const NAME: &str = "plan";
    match setup::plan(config, Overrides::default()) {
        Ok(plan) => Check::pass(
            NAME,
            format!(
                "{} target(s), {} connection(s), core {}",
                plan.targets.len(),
                plan.targets.iter().map(|t| t.connections).sum::<usize>(),
                config.appliance.core
            ),
        ),
        // The chain repeats itself (each context quotes its cause): its longest link says it all.
        Err(e) => Check::fail(
            NAME,
            e.chain()
                .map(|c| c.to_string())
                .max_by_key(String::len)
                .unwrap_or_default(),
            "fix what the checks above name",
        ),
    }
}

/// All of the above.
pub fn checks(host: &Host, config: &Config) -> Vec<Check> {
    let mut checks = trust(config);
    checks.push(interface(host, config));
    checks.push(route(config));
    checks.push(startup(config));
    checks
}

#[cfg(test)]
mod tests {
    use super::super::canned::Tree;
    use super::super::Status;
    use super::*;

    fn lab(replace: &[(&str, &str)]) -> Config {
        let mut text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/lab.toml"))
                .unwrap();
        for (from, to) in replace {
            text = text.replace(from, to);
        }
        Config::from_toml(&text).unwrap()
    }

    #[test]
    fn interface_pass_fail() {
        let t = Tree::new();
        t.dir("/sys/class/net/qd0/queues/rx-0")
            .dir("/sys/class/net/qd0/queues/rx-1");
        assert_eq!(interface(&t.host(), &lab(&[])).status, Status::Pass);
        assert_eq!(
            interface(&t.host(), &lab(&[("queue = 0", "queue = 2")])).status,
            Status::Fail
        );
        assert_eq!(
            interface(&t.host(), &lab(&[("\"qd0\"", "\"qd9\"")])).status,
            Status::Fail
        );
    }

    #[test]
    fn trust_fail_names_the_file() {
        let c = lab(&[("/run/quickdraw-lab/ca.pem", "/nonexistent/qd-ca.pem")]);
        let t = trust(&c);
        assert_eq!(t[0].status, Status::Fail);
        assert!(t[0].detail.contains("/nonexistent/qd-ca.pem"), "{t:?}");
        assert_eq!(startup(&c).status, Status::Fail);
    }

    #[test]
    fn route_pass_fail() {
        assert_eq!(route(&lab(&[])).status, Status::Pass);
        assert_eq!(
            route(&lab(&[("198.18.0.2:443", "203.0.113.7:443")])).status,
            Status::Fail
        );
    }
}
