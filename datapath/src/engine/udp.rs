//! Event-feed datagrams on the AF_XDP engine: a UDP socket in the stack and its
//! destination steered by the XDP program, like our TCP flows (and, with
//! `steer = "ntuple"`, by a NIC flow rule to our queue). A destination is our own
//! address or a multicast group; for a group the stack joins it too (silently: the
//! interface's membership is the kernel's, held by the link).

use super::Engine;
use crate::clock::smoltcp_instant;
use crate::Error;
use smoltcp::iface::SocketHandle;
use std::net::{Ipv4Addr, SocketAddrV4};

impl Engine {
    /// Receives datagrams to `local` (our address, or a multicast group) from now on,
    /// payloads up to `max_payload` bytes. Returns the socket's handle.
    pub fn bind_udp(
        &mut self,
        local: SocketAddrV4,
        max_payload: usize,
    ) -> Result<SocketHandle, Error> {
        let refused = |why: String| Error::Udp { local, why };
        let group = local.ip().is_multicast();
        if !group && *local.ip() != self.ip {
            return Err(refused(format!(
                "{} is neither ours nor a group",
                local.ip()
            )));
        }
        // smoltcp hands a datagram to the first UDP socket on its port that accepts it,
        // and a socket bound to any address accepts every group's datagrams to its port:
        // two feeds on one port would take each other's.
        if let Some(other) = self.feeds.iter().find(|f| f.port() == local.port()) {
            return Err(refused(format!(
                "port {} already carries the feed on {other}",
                local.port()
            )));
        }
        if group {
            let now = smoltcp_instant(self.now_ns);
            self.stack
                .join_group(*local.ip(), now)
                .map_err(|e| refused(format!("joining the group: {e}")))?;
        }
        let handle = self
            .stack
            .bind_udp(local, max_payload)
            .map_err(|e| refused(e.to_string()))?;
        self.steer.add_udp_port(local)?;
        // With steer = "ntuple", the NIC must bring the feed to our queue too.
        if let Some((interface, queue)) = &self.ntuple_at {
            let rule = super::NtupleRule::install_udp(interface, local, *queue)?;
            self.ntuple_udp.push(rule);
        }
        self.feeds.push(local);
        Ok(handle)
    }

    /// The next datagram received for `handle`, into `buf`.
    pub fn recv_datagram(&mut self, handle: SocketHandle, buf: &mut [u8]) -> Option<usize> {
        self.stack.recv_udp(handle, buf)
    }

    /// The appliance's own address.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// The index of the interface the engine runs on.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }
}
