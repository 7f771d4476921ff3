//! `steer = "ntuple"`: one NIC flow rule sending every TCP frame for the appliance's
//! address to its queue, installed at start with `ethtool -N` (the RX classification
//! interface, ETHTOOL_SRXCLSRLINS) and deleted when the engine stops; and one more per
//! UDP event feed (its destination address and port), installed when the feed is bound.
//!
//! Unlike the XDP program's BPF link, the rule outlives a crash (`kill -9`); it steers
//! only the appliance's own address, so a stale one is harmless, and `ethtool -n` lists
//! it for removal by hand.

use crate::Error;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Command;

/// An installed rule, deleted on drop.
#[derive(Debug)]
pub struct NtupleRule {
    interface: String,
    id: u32,
}

impl NtupleRule {
    /// Sends TCP to `ip` arriving on `interface` to `queue`.
    pub fn install(interface: &str, ip: Ipv4Addr, queue: u32) -> Result<NtupleRule, Error> {
        Self::install_args(interface, &rule_args(interface, "tcp4", ip, None, queue))
    }

    /// Sends UDP datagrams to `dst` (an event feed) arriving on `interface` to `queue`.
    pub fn install_udp(
        interface: &str,
        dst: SocketAddrV4,
        queue: u32,
    ) -> Result<NtupleRule, Error> {
        let args = rule_args(interface, "udp4", *dst.ip(), Some(dst.port()), queue);
        Self::install_args(interface, &args)
    }

    fn install_args(interface: &str, args: &[String]) -> Result<NtupleRule, Error> {
        let bad = |reason: String| Error::Interface {
            name: interface.to_owned(),
            reason: format!("steer = \"ntuple\": ethtool {}: {reason}", args.join(" ")),
        };
        let out = Command::new("ethtool")
            .args(args)
            .output()
            .map_err(|e| bad(e.to_string()))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return Err(bad(text.trim().to_owned()));
        }
        let id = rule_id(&text).ok_or_else(|| bad(format!("no rule id in {text:?}")))?;
        tracing::info!(interface, rule = %args.join(" "), id, "ntuple rule installed");
        Ok(NtupleRule {
            interface: interface.to_owned(),
            id,
        })
    }
}

impl Drop for NtupleRule {
    fn drop(&mut self) {
        let id = self.id.to_string();
        let deleted = Command::new("ethtool")
            .args(["-N", &self.interface, "delete", &id])
            .status()
            .is_ok_and(|s| s.success());
        if !deleted {
            tracing::warn!(interface = %self.interface, id = self.id,
                "could not delete the ntuple rule: ethtool -N {} delete {}", self.interface, self.id);
        }
    }
}

/// `ethtool -N`'s arguments for a rule sending `flow_type` frames to `ip` (and `port`) to
/// `queue`.
fn rule_args(
    interface: &str,
    flow_type: &str,
    ip: Ipv4Addr,
    port: Option<u16>,
    queue: u32,
) -> Vec<String> {
    let mut args = vec![
        "-N".to_owned(),
        interface.to_owned(),
        "flow-type".into(),
        flow_type.into(),
        "dst-ip".into(),
        ip.to_string(),
    ];
    if let Some(port) = port {
        args.extend(["dst-port".into(), port.to_string()]);
    }
    args.extend(["action".into(), queue.to_string()]);
    args
}

/// The id in ethtool's "Added rule with ID 1023".
fn rule_id(text: &str) -> Option<u32> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Added rule with ID "))
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_for_our_tcp_and_for_a_udp_feed() {
        let ip = Ipv4Addr::new(10, 0, 0, 10);
        assert_eq!(
            rule_args("eth0", "tcp4", ip, None, 3).join(" "),
            "-N eth0 flow-type tcp4 dst-ip 10.0.0.10 action 3"
        );
        assert_eq!(
            rule_args("eth0", "udp4", ip, Some(9000), 3).join(" "),
            "-N eth0 flow-type udp4 dst-ip 10.0.0.10 dst-port 9000 action 3"
        );
    }

    #[test]
    fn rule_id_from_ethtool() {
        assert_eq!(rule_id("Added rule with ID 1023\n"), Some(1023));
        assert_eq!(rule_id("rmgr: Cannot find appropriate slot\n"), None);
    }
}
