//! The NIC: its driver and what XDP it runs, the queues the appliance's flows can land on,
//! where its interrupts go, and its NUMA node against the datapath core's.

use super::{Check, Host};
use quickdraw_config::cpus::CpuList;
use quickdraw_config::{Appliance, Queues, Steering, XdpMode};

/// Drivers with native XDP and zero-copy AF_XDP (DESIGN.md, "Deploying on real NICs").
const ZERO_COPY: &[&str] = &["ice", "i40e", "ixgbe", "igc", "mlx5_core"];
/// Drivers with native XDP whose AF_XDP runs in copy mode.
const NATIVE_ONLY: &[&str] = &[
    "veth",
    "virtio_net",
    "igb",
    "ixgbevf",
    "bnxt_en",
    "ena",
    "mlx4_en",
    "nfp",
    "qede",
    "tun",
    "stmmac",
];

/// The interface's driver, from sysfs (`device/driver`) or, for a virtual device, what
/// `ethtool -i` said (`fallback`).
pub fn driver_name(host: &Host, iface: &str, fallback: Option<String>) -> Option<String> {
    host.link_name(&format!("/sys/class/net/{iface}/device/driver"))
        .or(fallback)
}

pub fn driver(host: &Host, iface: &str, mode: XdpMode, ethtool: Option<String>) -> Check {
    const NAME: &str = "driver";
    if !host.exists(&format!("/sys/class/net/{iface}")) {
        return Check::fail(
            NAME,
            format!("no interface {iface}"),
            "set appliance.interface to one of `ip link`",
        );
    }
    let Some(driver) = driver_name(host, iface, ethtool) else {
        return Check::warn(
            NAME,
            format!("{iface}: driver unknown"),
            "check `ethtool -i` names a driver with native XDP, or set xdp_mode = \"skb\"",
        );
    };
    if mode == XdpMode::Skb {
        return Check::warn(
            NAME,
            format!("{iface}: {driver}, generic XDP configured (xdp_mode = \"skb\")"),
            "xdp_mode = \"native\" where the driver supports it (much faster)",
        );
    }
    if ZERO_COPY.contains(&driver.as_str()) {
        Check::pass(
            NAME,
            format!("{iface}: {driver}: native XDP, zero-copy AF_XDP"),
        )
    } else if NATIVE_ONLY.contains(&driver.as_str()) {
        Check::warn(
            NAME,
            format!("{iface}: {driver}: native XDP, AF_XDP in copy mode only"),
            "for the lowest latency use a NIC with zero-copy AF_XDP (ice, i40e, ixgbe, igc, mlx5)",
        )
    } else {
        Check::warn(
            NAME,
            format!("{iface}: {driver}: native XDP support unknown"),
            "if `control up` fails to attach, set xdp_mode = \"skb\"",
        )
    }
}

/// RX queues of `iface` (its `queues/rx-*`).
pub fn rx_queues(host: &Host, iface: &str) -> u32 {
    host.entries(&format!("/sys/class/net/{iface}/queues"))
        .iter()
        .filter(|e| e.starts_with("rx-"))
        .count() as u32
}

/// The channel count against the queues that get a socket: with RSS every queue needs
/// one; with an ntuple rule, the rule's queue.
pub fn queues(host: &Host, a: &Appliance) -> Check {
    const NAME: &str = "queues";
    let n = rx_queues(host, &a.interface);
    if n == 0 {
        return Check::fail(
            NAME,
            format!("{}: no RX queues found", a.interface),
            "check appliance.interface",
        );
    }
    let bound = a.queues.resolve(n);
    if let Some(q) = bound.iter().chain([&a.queue]).find(|&&q| q >= n) {
        return Check::fail(
            NAME,
            format!(
                "queue {q} does not exist: {} has {n} RX queue(s)",
                a.interface
            ),
            format!(
                "use queues below {n}, or raise the channel count (ethtool -L {} combined N)",
                a.interface
            ),
        );
    }
    let missing: Vec<u32> = (0..n).filter(|q| !bound.contains(q)).collect();
    match a.steer {
        Steering::Rss if missing.is_empty() => Check::pass(
            NAME,
            format!("{n} RX queue(s), a socket on each (steer = rss: flows land where RSS hashes them)"),
        ),
        Steering::Rss => Check::fail(
            NAME,
            format!("steer = rss, but queues {missing:?} of {n} have no socket: flows hashed there are lost"),
            "set appliance.queues = \"all\", or steer = \"ntuple\"",
        ),
        Steering::Ntuple => {
            let detail = format!(
                "steer = ntuple: an ntuple rule sends the appliance's TCP to queue {}; sockets on {}",
                a.queue,
                match &a.queues {
                    Queues::All => format!("all {n} queues"),
                    Queues::List(l) => format!("{l:?}"),
                }
            );
            if missing.is_empty() {
                Check::pass(NAME, detail)
            } else {
                Check::warn(
                    NAME,
                    detail + &format!("; ARP replies RSS puts on {missing:?} are lost"),
                    "queues = \"all\" also catches ARP on every queue",
                )
            }
        }
    }
}

/// The NIC's interrupts (`device/msi_irqs`) and the CPUs each may run on.
fn irq_cpus(host: &Host, iface: &str) -> Vec<(String, Option<CpuList>)> {
    host.entries(&format!("/sys/class/net/{iface}/device/msi_irqs"))
        .into_iter()
        .map(|irq| {
            let cpus = host
                .read(&format!("/proc/irq/{irq}/smp_affinity_list"))
                .and_then(|t| CpuList::parse(&t));
            (irq, cpus)
        })
        .collect()
}

/// The NIC's interrupts must not land on the busy-polling core (each would stall it) and
/// should stay on its NUMA node.
pub fn irq_affinity(host: &Host, iface: &str, core: usize) -> Check {
    const NAME: &str = "irq_affinity";
    let irqs = irq_cpus(host, iface);
    if irqs.is_empty() {
        return Check::warn(
            NAME,
            format!("{iface}: no MSI interrupts (a virtual device): nothing to place"),
            "on a NIC, keep its queues' IRQs off the datapath core, on its NUMA node",
        );
    }
    let on_core: Vec<&str> = irqs
        .iter()
        .filter(|(_, cpus)| cpus.as_ref().is_some_and(|c| c.contains(core)))
        .map(|(irq, _)| irq.as_str())
        .collect();
    if !on_core.is_empty() {
        return Check::warn(
            NAME,
            format!("IRQ(s) {} of {iface} may run on the datapath core {core}", on_core.join(",")),
            format!(
                "stop irqbalance and write a CPU list without {core} to /proc/irq/N/smp_affinity_list"
            ),
        );
    }
    let node = cpu_node(host, core);
    let far: Vec<&str> = irqs
        .iter()
        .filter(|(_, cpus)| {
            cpus.as_ref().is_some_and(|c| {
                c.cpus()
                    .iter()
                    .all(|&cpu| node.is_some() && cpu_node(host, cpu) != node)
            })
        })
        .map(|(irq, _)| irq.as_str())
        .collect();
    if far.is_empty() {
        Check::pass(
            NAME,
            format!("{} IRQ(s) of {iface}, none on core {core}", irqs.len()),
        )
    } else {
        Check::warn(
            NAME,
            format!(
                "IRQ(s) {} of {iface} run only on another NUMA node than core {core}",
                far.join(",")
            ),
            "move them to CPUs of the NIC's node (smp_affinity_list)",
        )
    }
}

/// The NUMA node of CPU `cpu` (its `nodeN` entry), if the kernel says.
pub fn cpu_node(host: &Host, cpu: usize) -> Option<u32> {
    host.entries(&format!("/sys/devices/system/cpu/cpu{cpu}"))
        .iter()
        .find_map(|e| e.strip_prefix("node")?.parse().ok())
}

pub fn numa(host: &Host, iface: &str, core: usize) -> Check {
    const NAME: &str = "numa";
    let nic = host
        .read(&format!("/sys/class/net/{iface}/device/numa_node"))
        .and_then(|t| t.parse::<i32>().ok())
        .filter(|&n| n >= 0);
    let cpu = cpu_node(host, core);
    match (nic, cpu) {
        (Some(nic), Some(cpu)) if nic as u32 != cpu => Check::warn(
            NAME,
            format!("{iface} is on NUMA node {nic}, core {core} on node {cpu}: every frame crosses the interconnect"),
            format!("pick a core of node {nic} (lscpu) for appliance.core"),
        ),
        (Some(nic), Some(_)) => Check::pass(NAME, format!("{iface} and core {core} on NUMA node {nic}")),
        _ => Check::pass(NAME, format!("{iface}: no NUMA node reported (one node, or a virtual device)")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::canned::Tree;
    use super::super::Status;
    use super::*;

    fn appliance(queues: &str, steer: &str) -> Appliance {
        let text = format!(
            "backend = \"af_xdp\"\ninterface = \"eth0\"\nqueue = 1\ncore = 1\nip = \"192.0.2.50\"\n\
             queues = {queues}\nsteer = \"{steer}\"\n"
        );
        toml::from_str(&text).unwrap()
    }

    fn nic(queues: u32) -> Tree {
        let t = Tree::new();
        for q in 0..queues {
            t.dir(&format!("/sys/class/net/eth0/queues/rx-{q}"));
        }
        t
    }

    #[test]
    fn driver_pass_warn_fail() {
        let t = nic(1);
        t.link(
            "/sys/class/net/eth0/device/driver",
            "../../../bus/pci/drivers/ice",
        );
        assert_eq!(
            driver(&t.host(), "eth0", XdpMode::Native, None).status,
            Status::Pass
        );
        assert_eq!(
            driver(&t.host(), "eth0", XdpMode::Skb, None).status,
            Status::Warn
        );
        let v = nic(1);
        let veth = driver(&v.host(), "eth0", XdpMode::Native, Some("veth".into()));
        assert_eq!(veth.status, Status::Warn, "{veth:?}");
        assert!(veth.detail.contains("copy mode"));
        assert_eq!(
            driver(&v.host(), "eth0", XdpMode::Native, None).status,
            Status::Warn
        );
        assert_eq!(
            driver(&v.host(), "eth9", XdpMode::Native, None).status,
            Status::Fail
        );
    }

    #[test]
    fn queues_pass_warn_fail() {
        let t = nic(4);
        let h = t.host();
        assert_eq!(
            queues(&h, &appliance("\"all\"", "rss")).status,
            Status::Pass
        );
        let lost = queues(&h, &appliance("[1]", "rss"));
        assert_eq!(lost.status, Status::Fail);
        assert!(lost.detail.contains("[0, 2, 3]"), "{lost:?}");
        assert_eq!(queues(&h, &appliance("[1]", "ntuple")).status, Status::Warn);
        assert_eq!(
            queues(&h, &appliance("\"all\"", "ntuple")).status,
            Status::Pass
        );
        assert_eq!(
            queues(&h, &appliance("[1, 7]", "rss")).status,
            Status::Fail,
            "no queue 7"
        );
        assert_eq!(
            queues(&nic(0).host(), &appliance("\"all\"", "rss")).status,
            Status::Fail
        );
    }

    #[test]
    fn irq_pass_warn() {
        let t = nic(2);
        for (irq, cpus) in [("40", "0"), ("41", "2-3")] {
            t.file(
                &format!("/sys/class/net/eth0/device/msi_irqs/{irq}"),
                "msix",
            );
            t.file(&format!("/proc/irq/{irq}/smp_affinity_list"), cpus);
        }
        t.dir("/sys/devices/system/cpu/cpu1/node0");
        t.dir("/sys/devices/system/cpu/cpu0/node0");
        t.dir("/sys/devices/system/cpu/cpu2/node0");
        assert_eq!(irq_affinity(&t.host(), "eth0", 1).status, Status::Pass);
        let on_core = irq_affinity(&t.host(), "eth0", 2);
        assert_eq!(on_core.status, Status::Warn);
        assert!(on_core.detail.contains("41"), "{on_core:?}");
        assert_eq!(
            irq_affinity(&nic(1).host(), "eth0", 1).status,
            Status::Warn,
            "veth"
        );
        // Every IRQ on node 1, the core on node 0.
        let far = nic(1);
        far.file("/sys/class/net/eth0/device/msi_irqs/50", "msix")
            .file("/proc/irq/50/smp_affinity_list", "8")
            .dir("/sys/devices/system/cpu/cpu1/node0")
            .dir("/sys/devices/system/cpu/cpu8/node1");
        assert_eq!(irq_affinity(&far.host(), "eth0", 1).status, Status::Warn);
    }

    #[test]
    fn numa_pass_warn() {
        let t = nic(1);
        t.file("/sys/class/net/eth0/device/numa_node", "1\n")
            .dir("/sys/devices/system/cpu/cpu1/node0")
            .dir("/sys/devices/system/cpu/cpu9/node1");
        assert_eq!(numa(&t.host(), "eth0", 1).status, Status::Warn);
        assert_eq!(numa(&t.host(), "eth0", 9).status, Status::Pass);
        assert_eq!(
            numa(&nic(1).host(), "eth0", 1).status,
            Status::Pass,
            "not reported"
        );
    }
}
