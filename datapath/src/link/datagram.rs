//! Datagrams for event feeds: where a UDP source reads. Any link can hand out a kernel
//! socket (the kernel backend does, and so do test links); the AF_XDP link hands out a
//! socket of its own stack, fed by frames the XDP program steers, and for a multicast
//! group a [`Membership`]: the kernel's, so the kernel answers for the interface.

use super::LinkError;
use smoltcp::iface::SocketHandle;
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};

/// A bound feed socket.
#[derive(Debug)]
pub enum Datagrams {
    /// A non-blocking kernel socket.
    Kernel(UdpSocket),
    /// A UDP socket of the link's own stack; read through
    /// [`Link::recv_datagram`](super::Link::recv_datagram).
    Stack {
        handle: SocketHandle,
        /// For a group: the interface's membership, held as long as the feed.
        membership: Option<Membership>,
    },
}

/// The interface's membership of a multicast group, held by a kernel socket that never
/// receives (it is bound to no port): the kernel opens the NIC's multicast filter for the
/// group and speaks IGMP for it (reports, answers to queries) until this is dropped. What
/// the group's datagrams then do is up to the XDP program: ours are steered past the
/// kernel to our own stack.
#[derive(Debug)]
pub struct Membership {
    group: Ipv4Addr,
    ifindex: u32,
    _socket: Socket,
}

impl Membership {
    /// Joins `group` on interface `ifindex` (IP_ADD_MEMBERSHIP with `ip_mreqn`).
    pub fn join(group: Ipv4Addr, ifindex: u32) -> Result<Membership, LinkError> {
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        socket.join_multicast_v4_n(&group, &InterfaceIndexOrAddress::Index(ifindex))?;
        Ok(Membership {
            group,
            ifindex,
            _socket: socket,
        })
    }

    pub fn group(&self) -> Ipv4Addr {
        self.group
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }
}

/// A non-blocking kernel socket receiving datagrams to `addr:port`. For a multicast
/// `addr`, bound to the group itself (Linux then delivers only the group's datagrams to
/// it, not unicast to the port) and joined to it on interface `ifindex`, or where the
/// kernel routes the group when there is none (a real NIC then accepts the group's
/// frames).
pub fn kernel_socket(
    addr: Ipv4Addr,
    port: u16,
    ifindex: Option<u32>,
) -> Result<UdpSocket, LinkError> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&SockAddr::from(SocketAddr::V4(SocketAddrV4::new(
        addr, port,
    ))))?;
    if addr.is_multicast() {
        let interface = match ifindex {
            Some(index) => InterfaceIndexOrAddress::Index(index),
            None => InterfaceIndexOrAddress::Address(Ipv4Addr::UNSPECIFIED),
        };
        socket.join_multicast_v4_n(&addr, &interface)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The next datagram on a kernel socket, into `buf` (truncated to it).
pub fn kernel_recv(socket: &UdpSocket, buf: &mut [u8]) -> Option<usize> {
    match socket.recv(buf) {
        Ok(n) => Some(n),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests;
