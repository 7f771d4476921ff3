//! `bench lab loss PCT`: frame loss on the lab peer's interface (`qd1`, in `qdlab`), both
//! ways, with the BPF loss programs ([`quickdraw_bpf::Loss`]): XDP drops PCT % of the
//! IPv4/TCP frames arriving at the server, a tc egress filter PCT % of those leaving it.
//! ARP and everything that is not IPv4/TCP always pass; 100 is a blackhole for TCP.
//!
//! The kernel here has no `sch_netem` and no `tc matchall`, hence BPF. The programs stay
//! installed after `bench` exits; `loss 0` removes them, and `down` removes them with the
//! namespace. What is set is read back from the kernel, never from a file of ours.
//!
//! With the tc wire stamper on the same interface (`bench run`): a frame dropped on arrival
//! is dropped before tc and is never stamped (it never reached the server); a frame dropped
//! when leaving is stamped first (stamper priority 1, loss priority 2): it left the server
//! and was lost on the way. The matcher treats a later copy with the same sequence number
//! as a retransmission either way.
//!
//! Installing XDP on a veth end switches that end's receive path to NAPI (veth runs XDP
//! there), which moves the peer's timing a little: measure latency with loss 0.
//!
//! Takes no lab lock: it changes only the peer interface's filters, and a test holding a
//! `LabSession` must be able to call it.

use quickdraw_bpf::Loss;

use crate::Error;
use crate::{NETNS, PEER_IF};

/// Sets the loss to `pct` percent each way (0 removes the programs).
pub fn set(pct: u8) -> Result<(), Error> {
    if pct == 0 {
        Loss::remove(Some(NETNS), PEER_IF)?;
        return Ok(());
    }
    Loss::load(pct)?.install(Some(NETNS), PEER_IF)?;
    Ok(())
}

/// The loss set now, in percent (0 when none), read from the kernel.
pub fn current() -> Result<u8, Error> {
    Ok(Loss::installed(Some(NETNS), PEER_IF)?.unwrap_or(0))
}
