//! The appliance's place on the wire: its address is nobody else's (not the host's, and
//! no one answers an RFC 5227 probe for it), and its next hop answers ARP. The probes
//! themselves are in `live.rs` / `arp.rs`; the verdicts here.

use super::Check;
use quickdraw_config::{Appliance, Config};
use std::net::Ipv4Addr;

/// `addresses`: the host's own IPv4 addresses, with their interface.
pub fn own_address(a: &Appliance, addresses: &[(String, Ipv4Addr)]) -> Check {
    const NAME: &str = "own_address";
    match addresses.iter().find(|(_, ip)| *ip == a.ip) {
        Some((iface, _)) => Check::fail(
            NAME,
            format!("{} is the host's own address (on {iface}): the kernel would reset the appliance's flows", a.ip),
            "give the appliance an address of its own, on no interface",
        ),
        None => Check::pass(NAME, format!("{} is not one of the host's addresses", a.ip)),
    }
}

/// The verdict of an RFC 5227 probe for the appliance's address: `Ok(Some(mac))` when
/// someone answered, `Ok(None)` when nobody did.
pub fn duplicate(a: &Appliance, probe: ArpAnswer) -> Check {
    const NAME: &str = "address_conflict";
    match probe {
        Ok(None) => Check::pass(
            NAME,
            format!("nobody answers ARP for {} on {}", a.ip, a.interface),
        ),
        Ok(Some(mac)) => Check::fail(
            NAME,
            format!(
                "{} is answered by {} (another host, or a quickdraw already running)",
                a.ip,
                mac_text(mac)
            ),
            "pick an unused address for appliance.ip (or stop the running appliance first)",
        ),
        Err(e) => Check::warn(
            NAME,
            format!("ARP probe not sent: {e}"),
            "run doctor with CAP_NET_RAW",
        ),
    }
}

/// Where the appliance's frames to `config`'s targets go first: the target itself when
/// on the subnet, else the gateway. `Err` names a target with no way there.
pub fn next_hops(config: &Config) -> Result<Vec<Ipv4Addr>, String> {
    let a = &config.appliance;
    let mask = u32::MAX
        .checked_shl(32 - u32::from(a.prefix_len.clamp(1, 32)))
        .unwrap_or(0);
    let on_subnet = |ip: Ipv4Addr| u32::from(ip) & mask == u32::from(a.ip) & mask;
    let mut hops = Vec::new();
    for t in &config.targets {
        let ip = *t.address.ip();
        let hop = if on_subnet(ip) {
            ip
        } else {
            a.gateway.ok_or_else(|| {
                format!(
                    "target {} ({ip}) is off {}/{} and no gateway is set",
                    t.name, a.ip, a.prefix_len
                )
            })?
        };
        if !hops.contains(&hop) {
            hops.push(hop);
        }
    }
    Ok(hops)
}

/// The verdict of ARP requests to each next hop: `(hop, answer)`.
/// What an ARP request to one address found: the answering MAC, nobody, or an error.
pub type ArpAnswer = Result<Option<[u8; 6]>, std::io::Error>;

pub fn next_hop(answers: &[(Ipv4Addr, ArpAnswer)]) -> Check {
    const NAME: &str = "next_hop";
    let mut found = Vec::new();
    for (hop, answer) in answers {
        match answer {
            Ok(Some(mac)) => found.push(format!("{hop} at {}", mac_text(*mac))),
            Ok(None) => {
                return Check::fail(
                    NAME,
                    format!("{hop} does not answer ARP"),
                    "check the target or gateway address and the cabling/VLAN",
                )
            }
            Err(e) => {
                return Check::warn(
                    NAME,
                    format!("ARP to {hop} not sent: {e}"),
                    "run doctor with CAP_NET_RAW",
                )
            }
        }
    }
    Check::pass(NAME, found.join(", "))
}

pub fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    fn config(gateway: &str, target: &str) -> Config {
        let lab =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/lab.toml"))
                .unwrap();
        let text = lab.replace("198.18.0.2:443", target).replace(
            "xdp_mode = \"native\"",
            &format!("xdp_mode = \"native\"\n{gateway}"),
        );
        Config::from_toml(&text).unwrap()
    }

    #[test]
    fn own_address_pass_fail() {
        let c = config("", "198.18.0.2:443");
        let a = &c.appliance;
        assert_eq!(
            own_address(a, &[("qd0".into(), Ipv4Addr::new(198, 18, 0, 1))]).status,
            Status::Pass
        );
        assert_eq!(own_address(a, &[("qd0".into(), a.ip)]).status, Status::Fail);
    }

    #[test]
    fn duplicate_pass_warn_fail() {
        let c = config("", "198.18.0.2:443");
        let a = &c.appliance;
        assert_eq!(duplicate(a, Ok(None)).status, Status::Pass);
        let f = duplicate(a, Ok(Some([2, 0, 0, 0, 0, 1])));
        assert_eq!(f.status, Status::Fail);
        assert!(f.detail.contains("02:00:00:00:00:01"));
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(duplicate(a, Err(denied)).status, Status::Warn);
    }

    #[test]
    fn next_hop_on_subnet_or_through_the_gateway() {
        assert_eq!(
            next_hops(&config("", "198.18.0.2:443")),
            Ok(vec![Ipv4Addr::new(198, 18, 0, 2)])
        );
        assert_eq!(
            next_hops(&config("gateway = \"198.18.0.254\"", "203.0.113.7:443")),
            Ok(vec![Ipv4Addr::new(198, 18, 0, 254)])
        );
        assert!(next_hops(&config("", "203.0.113.7:443")).is_err());
        let hop = Ipv4Addr::new(198, 18, 0, 2);
        assert_eq!(next_hop(&[(hop, Ok(Some([1; 6])))]).status, Status::Pass);
        assert_eq!(next_hop(&[(hop, Ok(None))]).status, Status::Fail);
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(next_hop(&[(hop, Err(denied))]).status, Status::Warn);
    }
}
