//! Datagrams for event feeds: where a UDP source reads. Any link can hand out a kernel
//! socket (the kernel backend does, and so do test links); the AF_XDP link hands out a
//! socket of its own stack, fed by frames the XDP program steers.

use super::LinkError;
use smoltcp::iface::SocketHandle;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};

/// A bound feed socket.
#[derive(Debug)]
pub enum Datagrams {
    /// A non-blocking kernel socket.
    Kernel(UdpSocket),
    /// A UDP socket of the link's own stack; read through
    /// [`Link::recv_datagram`](super::Link::recv_datagram).
    Stack(SocketHandle),
}

/// A non-blocking kernel socket receiving datagrams to `addr:port`; for a multicast
/// `addr`, bound to the port and joined to the group on every interface (a real NIC
/// then accepts the group's frames).
pub fn kernel_socket(addr: Ipv4Addr, port: u16) -> Result<UdpSocket, LinkError> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    let bind = if addr.is_multicast() {
        Ipv4Addr::UNSPECIFIED
    } else {
        addr
    };
    socket.bind(&SockAddr::from(SocketAddr::V4(SocketAddrV4::new(
        bind, port,
    ))))?;
    if addr.is_multicast() {
        socket.join_multicast_v4(&addr, &Ipv4Addr::UNSPECIFIED)?;
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
