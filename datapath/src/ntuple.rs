//! `steer = "ntuple"`: one NIC flow rule sending every TCP frame for the appliance's
//! address to its queue, installed at start with `ethtool -N` (the RX classification
//! interface, ETHTOOL_SRXCLSRLINS) and deleted when the engine stops.
//!
//! Unlike the XDP program's BPF link, the rule outlives a crash (`kill -9`); it steers
//! only the appliance's own address, so a stale one is harmless, and `ethtool -n` lists
//! it for removal by hand.

use crate::Error;
use std::net::Ipv4Addr;
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
        let args = [
            "-N".to_owned(),
            interface.to_owned(),
            "flow-type".into(),
            "tcp4".into(),
            "dst-ip".into(),
            ip.to_string(),
            "action".into(),
            queue.to_string(),
        ];
        let bad = |reason: String| Error::Interface {
            name: interface.to_owned(),
            reason: format!("steer = \"ntuple\": ethtool {}: {reason}", args.join(" ")),
        };
        let out = Command::new("ethtool")
            .args(&args)
            .output()
            .map_err(|e| bad(e.to_string()))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return Err(bad(text.trim().to_owned()));
        }
        let id = rule_id(&text).ok_or_else(|| bad(format!("no rule id in {text:?}")))?;
        tracing::info!(interface, %ip, queue, id, "ntuple rule installed");
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
    fn rule_id_from_ethtool() {
        assert_eq!(rule_id("Added rule with ID 1023\n"), Some(1023));
        assert_eq!(rule_id("rmgr: Cannot find appropriate slot\n"), None);
    }
}
