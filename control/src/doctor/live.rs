//! The checks that act on the running system: an AF_XDP bind that asks for zero-copy, ARP
//! probes, and what `ethtool`, `ip` and `chronyc` say. Each returns what it found to a
//! pure verdict (here, in `neighbours.rs` or `clock.rs`), which the tests drive.

use super::{arp, neighbours, Check, Host};
use quickdraw_config::{Appliance, Config};
use quickdraw_datapath::{preflight, BindMode};
use std::io;
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

/// How long an ARP probe waits for an answer (RFC 5227 waits 1–2 s between probes; one
/// probe and a short wait is enough on a LAN).
const ARP_WAIT: Duration = Duration::from_millis(500);

/// What a program printed, if it ran and succeeded.
fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The driver `ethtool -i` names (virtual devices have no `device/driver` in sysfs).
pub fn ethtool_driver(host: &Host, iface: &str) -> Option<String> {
    if !host.is_live() {
        return None;
    }
    let text = output("ethtool", &["-i", iface])?;
    text.lines()
        .find_map(|l| l.strip_prefix("driver:"))
        .map(|d| d.trim().to_owned())
}

/// The verdict of a zero-copy bind attempt.
pub fn zero_copy_verdict(iface: &str, queue: u32, bind: io::Result<BindMode>) -> Check {
    const NAME: &str = "zero_copy";
    match bind {
        Ok(BindMode::ZeroCopy) => Check::pass(NAME, format!("{iface} queue {queue}: zero-copy bind works")),
        Ok(BindMode::Copy) => Check::warn(NAME, format!("{iface} queue {queue}: copy mode"), "a driver with zero-copy AF_XDP"),
        Err(e) => match e.raw_os_error() {
            Some(libc::EOPNOTSUPP) => Check::warn(
                NAME,
                format!("{iface} queue {queue}: zero-copy refused (EOPNOTSUPP): AF_XDP runs in copy mode"),
                "a NIC whose driver does zero-copy AF_XDP (ice, i40e, ixgbe, igc, mlx5)",
            ),
            Some(libc::EBUSY) => Check::warn(
                NAME,
                format!("{iface} queue {queue}: busy (the appliance, or another AF_XDP program, is bound)"),
                "run doctor before `control up`",
            ),
            Some(libc::EPERM) => Check::fail(NAME, format!("AF_XDP socket refused: {e}"), "run doctor (and the daemon) with CAP_NET_RAW"),
            _ => Check::fail(NAME, format!("{iface} queue {queue}: {e}"), "check the interface and queue"),
        },
    }
}

/// Binds a small AF_XDP socket to `(iface, queue)` asking for zero-copy, and closes it.
pub fn zero_copy_bind(iface: &str, queue: u32) -> Check {
    zero_copy_verdict(iface, queue, preflight::zero_copy_bind(iface, queue))
}

/// The host's IPv4 addresses with their interfaces, from `ip -j -4 addr`.
pub fn local_addresses() -> Vec<(String, Ipv4Addr)> {
    output("ip", &["-j", "-4", "addr", "show"])
        .map(|json| parse_addresses(&json))
        .unwrap_or_default()
}

/// `ip -j -4 addr` → (interface, address) pairs.
pub fn parse_addresses(json: &str) -> Vec<(String, Ipv4Addr)> {
    let Ok(serde_json::Value::Array(links)) = serde_json::from_str(json) else {
        return Vec::new();
    };
    links
        .iter()
        .flat_map(|l| {
            let name = l["ifname"].as_str().unwrap_or("").to_owned();
            l["addr_info"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |a| Some((name.clone(), a["local"].as_str()?.parse().ok()?)))
        })
        .collect()
}

/// The index of interface `name` (from sysfs).
fn if_index(name: &str) -> io::Result<u32> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))?;
    text.trim()
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("ifindex {text:?}")))
}

/// Our MAC and interface index, for ARP.
fn link(iface: &str) -> io::Result<(u32, [u8; 6])> {
    let ifindex = if_index(iface)?;
    let text = std::fs::read_to_string(format!("/sys/class/net/{iface}/address"))?;
    let mut mac = [0u8; 6];
    let parts: Vec<u8> = text
        .trim()
        .split(':')
        .filter_map(|p| u8::from_str_radix(p, 16).ok())
        .collect();
    if parts.len() != 6 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("MAC {text:?}"),
        ));
    }
    mac.copy_from_slice(&parts);
    Ok((ifindex, mac))
}

/// RFC 5227 probe for the appliance's address.
pub fn duplicate_address(a: &Appliance) -> Check {
    let probe = link(&a.interface)
        .and_then(|(ifindex, mac)| arp::ask(ifindex, mac, Ipv4Addr::UNSPECIFIED, a.ip, ARP_WAIT));
    neighbours::duplicate(a, probe)
}

/// A probe to each next hop (the target on the subnet, or the gateway).
pub fn next_hop(config: &Config) -> Check {
    let hops = match neighbours::next_hops(config) {
        Ok(hops) => hops,
        Err(e) => return Check::fail("next_hop", e, "set appliance.gateway"),
    };
    let a = &config.appliance;
    let answers: Vec<_> = hops
        .into_iter()
        .map(|hop| {
            let answer = link(&a.interface).and_then(|(ifindex, mac)| {
                arp::ask(ifindex, mac, Ipv4Addr::UNSPECIFIED, hop, ARP_WAIT)
            });
            (hop, answer)
        })
        .collect();
    neighbours::next_hop(&answers)
}

/// `chronyc -c tracking`, when chronyd runs here.
pub fn chrony_tracking(host: &Host) -> Option<String> {
    if !host.is_live() || !super::clock::daemons(host).iter().any(|d| d == "chronyd") {
        return None;
    }
    output("chronyc", &["-c", "tracking"])
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    #[test]
    fn zero_copy_pass_warn_fail() {
        let v = |r| zero_copy_verdict("eth0", 3, r).status;
        assert_eq!(v(Ok(BindMode::ZeroCopy)), Status::Pass);
        assert_eq!(
            v(Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP))),
            Status::Warn
        );
        assert_eq!(
            v(Err(io::Error::from_raw_os_error(libc::EBUSY))),
            Status::Warn
        );
        assert_eq!(
            v(Err(io::Error::from_raw_os_error(libc::EPERM))),
            Status::Fail
        );
        assert_eq!(
            v(Err(io::Error::from_raw_os_error(libc::EINVAL))),
            Status::Fail
        );
    }

    #[test]
    fn addresses_from_ip_json() {
        let json = r#"[{"ifindex":1,"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},
                      {"ifindex":9,"ifname":"qd0","addr_info":[{"local":"198.18.0.1"},{"local":"198.18.0.5"}]}]"#;
        assert_eq!(
            parse_addresses(json),
            vec![
                ("lo".into(), Ipv4Addr::LOCALHOST),
                ("qd0".into(), Ipv4Addr::new(198, 18, 0, 1)),
                ("qd0".into(), Ipv4Addr::new(198, 18, 0, 5)),
            ]
        );
        assert!(parse_addresses("garbage").is_empty());
    }
}
