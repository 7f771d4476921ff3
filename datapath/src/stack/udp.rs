//! UDP sockets of the appliance's host, for event feeds: created when a feed is bound
//! (off the hot path), with packet buffers sized then; receiving copies a datagram into
//! the caller's buffer and never allocates.
//!
//! A feed on a multicast group: the stack must accept datagrams to the group, so it joins
//! it (smoltcp's `multicast` feature), but without a word of IGMP. Membership is the
//! kernel's job on the interface (a kernel socket holds it: see `link::datagram`), so a
//! real NIC's multicast filter and the network's IGMP snooping follow the kernel, which
//! also answers the queriers (the XDP program steers no IGMP to us). smoltcp would send an
//! unsolicited IGMPv2 report from our own address when joining, and a Leave to all
//! routers when leaving: a second, partial speaker for the same interface, whose Leave
//! could make a router stop forwarding a group the kernel still wants. So the join's
//! report is emitted into [`Mute`], a device that sends nothing, and never reaches the
//! wire.

use super::Stack;
use smoltcp::iface::{MulticastError, SocketHandle, SocketSet, SocketStorage};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::socket::udp;
use smoltcp::time::Instant;
use smoltcp::wire::IpListenEndpoint;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Datagrams a feed socket holds before the loop reads them.
const DATAGRAMS: usize = 64;

impl Stack {
    /// A UDP socket receiving datagrams to `local` (our address, or a group joined with
    /// [`join_group`](Self::join_group)) whose payloads are at most `max_payload` bytes
    /// (larger ones are dropped by smoltcp).
    pub fn bind_udp(
        &mut self,
        local: SocketAddrV4,
        max_payload: usize,
    ) -> Result<SocketHandle, udp::BindError> {
        let rx = udp::PacketBuffer::new(
            vec![udp::PacketMetadata::EMPTY; DATAGRAMS],
            vec![0; DATAGRAMS * max_payload],
        );
        // Nothing is ever sent from it.
        let tx = udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 1], vec![0; 1]);
        let mut socket = udp::Socket::new(rx, tx);
        socket.bind(IpListenEndpoint {
            addr: Some((*local.ip()).into()),
            port: local.port(),
        })?;
        Ok(self.sockets.add(socket))
    }

    /// Accepts datagrams to multicast `group` from now on, sending nothing (see the
    /// module docs). Joining twice is not an error. Fails for an address that is not
    /// multicast, or when smoltcp's group table is full (four groups).
    pub fn join_group(&mut self, group: Ipv4Addr, now: Instant) -> Result<(), MulticastError> {
        self.iface.join_multicast_group(group)?;
        // smoltcp's multicast egress runs first in every egress poll: it turns the join
        // into `Joined` and hands its report to this device, which drops it. No socket
        // is polled (an empty set), so nothing else is emitted or lost.
        let mut none: [SocketStorage<'_>; 0] = [];
        self.iface
            .poll_egress(now, &mut Mute, &mut SocketSet::new(&mut none[..]));
        Ok(())
    }

    /// The next datagram for socket `handle`, copied into `buf` (truncated to it).
    pub fn recv_udp(&mut self, handle: SocketHandle, buf: &mut [u8]) -> Option<usize> {
        let socket = self.sockets.get_mut::<udp::Socket>(handle);
        socket.recv_slice(buf).ok().map(|(n, _)| n)
    }
}

/// A device that receives nothing and drops what it is given to send.
#[derive(Debug)]
struct Mute;

/// Room for what smoltcp writes into a [`Mute`] transmit token (an IGMP report is 42
/// bytes); anything longer is built into a heap buffer, off the hot path anyway.
const MUTE_FRAME: usize = 64;

#[derive(Debug)]
struct MuteToken;

impl phy::RxToken for MuteToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&[])
    }
}

impl phy::TxToken for MuteToken {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        if len <= MUTE_FRAME {
            f(&mut [0; MUTE_FRAME][..len])
        } else {
            f(&mut vec![0; len])
        }
    }
}

impl phy::Device for Mute {
    type RxToken<'a> = MuteToken;
    type TxToken<'a> = MuteToken;

    fn receive(&mut self, _: Instant) -> Option<(MuteToken, MuteToken)> {
        None
    }

    fn transmit(&mut self, _: Instant) -> Option<MuteToken> {
        Some(MuteToken)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

#[cfg(test)]
mod tests;
