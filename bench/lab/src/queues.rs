//! A multi-queue lab (`bench lab up --queues N`): a stand-in for a NIC whose RSS spreads
//! flows over its queues.
//!
//! How a veth picks the receive queue (measured here, kernel 6.18; see `veth_xmit`): a
//! frame sent by `qd1` on its TX queue *i* is received by `qd0` on RX queue *i*. `qd1`'s
//! TX queue is chosen by XPS when XPS is configured, otherwise by the flow hash
//! (`skb_tx_hash`, cached per socket). A new veth has no XPS (`xps_cpus` and `xps_rxqs`
//! are 0 on every queue), so nginx's connections are spread by their hash: what RSS does
//! on a NIC. [`spread_flows`] makes sure it stays that way.

use std::path::Path;

use crate::command::run;
use crate::layout::{HOST_IF, NETNS, PEER_IF};
use crate::Error;

/// RX queues of `qd0` in the root namespace (0 when it does not exist).
pub(crate) fn host_rx_queues() -> u32 {
    let dir = Path::new("/sys/class/net").join(HOST_IF).join("queues");
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
            .count() as u32
    })
}

/// Clears XPS on every TX queue of `qd1` (inside the namespace, whose sysfs only
/// `ip netns exec` shows), so its TX queue, and with it `qd0`'s RX queue, follows the
/// flow hash.
pub(crate) fn spread_flows() -> Result<(), Error> {
    let script = format!(
        "for f in /sys/class/net/{PEER_IF}/queues/tx-*/xps_cpus \
                  /sys/class/net/{PEER_IF}/queues/tx-*/xps_rxqs; do \
            [ -w \"$f\" ] && echo 0 > \"$f\"; \
         done; true"
    );
    run("ip", &["netns", "exec", NETNS, "sh", "-c", &script])?;
    Ok(())
}
