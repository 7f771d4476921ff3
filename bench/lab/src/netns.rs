//! The lab's network plumbing: namespace `qdlab`, the veth pair `qd0`/`qd1`, addresses and
//! offloads, made and unmade with `ip`, `ethtool` and `sysctl`.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::Value;

use super::command::{run, run_json};
use crate::layout::{HOST_IF, KERNEL_IP, NETNS, PEER_IF, PREFIX_LEN, TARGET_IP};
use crate::Error;

/// Where iproute2 keeps named namespaces (see ip-netns(8)).
const NETNS_RUN_DIR: &str = "/run/netns";

/// Whether the namespace `qdlab` exists (by name).
pub(crate) fn netns_exists() -> Result<bool, Error> {
    let list = run_json("ip", &["-j", "netns", "list"])?;
    let found = objects(&list).any(|ns| ns["name"] == NETNS);
    Ok(found)
}

/// Whether interface `ifname` exists in the root namespace (`netns` = None) or in `netns`.
pub(crate) fn link_exists(netns: Option<&str>, ifname: &str) -> Result<bool, Error> {
    let mut args = Vec::new();
    if let Some(ns) = netns {
        args.extend(["-n", ns]);
    }
    args.extend(["-j", "link", "show"]);
    let links = run_json("ip", &args)?;
    let found = objects(&links).any(|link| link["ifname"] == ifname);
    Ok(found)
}

/// The MAC address of interface `ifname` in the root namespace (`netns` = None) or in
/// `netns`.
pub fn mac_address(netns: Option<&str>, ifname: &str) -> Result<[u8; 6], Error> {
    let mut args = Vec::new();
    if let Some(ns) = netns {
        args.extend(["-n", ns]);
    }
    args.extend(["-j", "link", "show", "dev", ifname]);
    let links = run_json("ip", &args)?;
    let bad = |detail: String| Error::Output {
        command: format!("ip {}", args.join(" ")),
        detail,
    };
    let text = links[0]["address"]
        .as_str()
        .ok_or_else(|| bad("no address".into()))?;
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for b in &mut mac {
        let part = parts
            .next()
            .ok_or_else(|| bad(format!("short MAC {text:?}")))?;
        *b = u8::from_str_radix(part, 16).map_err(|_| bad(format!("bad MAC {text:?}")))?;
    }
    Ok(mac)
}

/// The inode of the lab namespace, to recognise processes living in it.
pub(crate) fn netns_inode() -> Option<u64> {
    fs::metadata(Path::new(NETNS_RUN_DIR).join(NETNS))
        .ok()
        .map(|m| m.ino())
}

/// Builds the namespace side of the lab with `queues` RX and TX queues on each end.
/// Expects nothing of it to exist yet.
pub(crate) fn create(queues: u32) -> Result<(), Error> {
    run("ip", &["netns", "add", NETNS])?;
    // One RX and one TX queue on each end by default. With several, the appliance needs a
    // socket on every queue (ARP replies and flows land on any of them): see `queues.rs`.
    let n = queues.max(1).to_string();
    #[rustfmt::skip]
    run("ip", &[
        "link", "add", HOST_IF, "numtxqueues", &n, "numrxqueues", &n, "type", "veth",
        "peer", "name", PEER_IF, "numtxqueues", &n, "numrxqueues", &n, "netns", NETNS,
    ])?;
    // IPv6 off on both ends before they come up: otherwise each sends router solicitations
    // and DAD probes, stray frames that the AF_XDP datapath and the peer-side timestamps
    // would have to skip. The lab is IPv4 only.
    disable_ipv6()?;
    let kernel = format!("{KERNEL_IP}/{PREFIX_LEN}");
    let target = format!("{TARGET_IP}/{PREFIX_LEN}");
    run("ip", &["addr", "add", &kernel, "dev", HOST_IF])?;
    run("ip", &["-n", NETNS, "addr", "add", &target, "dev", PEER_IF])?;
    // Without this, frames from nginx carry a partial checksum (CHECKSUM_PARTIAL) that
    // smoltcp drops as corrupt; with it they look as if they came off a wire.
    run(
        "ip",
        &[
            "netns", "exec", NETNS, "ethtool", "-K", PEER_IF, "tx", "off",
        ],
    )?;
    run("ip", &["link", "set", HOST_IF, "up"])?;
    run("ip", &["-n", NETNS, "link", "set", PEER_IF, "up"])?;
    // nginx and any tool run inside the namespace expect a working loopback.
    run("ip", &["-n", NETNS, "link", "set", "lo", "up"])?;
    Ok(())
}

fn disable_ipv6() -> Result<(), Error> {
    // A kernel booted with ipv6.disable=1 has no such knobs, and nothing to silence.
    if !Path::new("/proc/sys/net/ipv6").exists() {
        return Ok(());
    }
    let host = format!("net.ipv6.conf.{HOST_IF}.disable_ipv6=1");
    let peer = format!("net.ipv6.conf.{PEER_IF}.disable_ipv6=1");
    run("sysctl", &["-q", "-w", &host])?;
    // /proc/sys/net is per namespace: the peer's knob is only visible from inside.
    run("ip", &["netns", "exec", NETNS, "sysctl", "-q", "-w", &peer])?;
    Ok(())
}

/// Removes the veth pair and the namespace, whatever subset of them exists.
pub(crate) fn destroy() -> Result<(), Error> {
    // Deleting either end of a veth deletes the pair, wherever the other end lives. `qd1`
    // can be in the root namespace when a lab was half-made by hand.
    for ifname in [HOST_IF, PEER_IF] {
        if link_exists(None, ifname)? {
            delete_link(ifname)?;
        }
    }
    if netns_exists()? {
        // Removes the name; the namespace itself (and `qd1` in it) goes with its last
        // process, which is why nginx is stopped first.
        run("ip", &["netns", "del", NETNS])?;
    }
    Ok(())
}

fn delete_link(ifname: &str) -> Result<(), Error> {
    match run("ip", &["link", "del", ifname]) {
        Ok(_) => Ok(()),
        // When nginx held the last reference to a namespace whose name was already gone,
        // stopping it makes the kernel dismantle that namespace, and the veth with it, in
        // the background: a link that vanishes under us is what we wanted.
        Err(_) if !link_exists(None, ifname)? => Ok(()),
        Err(e) => Err(e),
    }
}

/// The objects of a JSON array (`ip -j` prints an array, or nothing at all).
fn objects(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_of_ip_json() {
        let v: Value = serde_json::from_str(r#"[{"name":"qdlab","id":0},{"name":"x"}]"#).unwrap();
        assert!(objects(&v).any(|ns| ns["name"] == NETNS));
        assert_eq!(objects(&Value::Null).count(), 0);
    }
}
