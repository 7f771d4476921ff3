//! [`Link`] over the kernel's TCP: non-blocking std sockets with TCP_NODELAY, bound to
//! the configured interface so traffic never leaves by another route.

use super::datagram::{kernel_socket, Datagrams};
use super::{Link, LinkError, LinkId, LinkState};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};

#[derive(Debug)]
enum Slot {
    Free,
    /// Non-blocking connect in progress.
    Connecting(Socket),
    Open(TcpStream),
    Gone,
}

/// The kernel's TCP stack as a link.
#[derive(Debug)]
pub struct KernelLink {
    interface: Option<String>,
    slots: Vec<Slot>,
}

impl KernelLink {
    /// `interface`: bind every socket to it (SO_BINDTODEVICE); `slots`: most connections.
    pub fn new(interface: Option<String>, slots: usize) -> KernelLink {
        KernelLink {
            interface,
            slots: (0..slots).map(|_| Slot::Free).collect(),
        }
    }

    fn open_socket(&self, remote: SocketAddrV4) -> io::Result<Socket> {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        if let Some(dev) = &self.interface {
            // Without a route through this interface the connect fails here, rather than
            // leaving through a default gateway.
            socket.bind_device(Some(dev.as_bytes()))?;
        }
        socket.set_tcp_nodelay(true)?;
        socket.set_nonblocking(true)?;
        match socket.connect(&SockAddr::from(SocketAddr::V4(remote))) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        Ok(socket)
    }
}

impl Link for KernelLink {
    fn connect(&mut self, remote: SocketAddrV4) -> Result<LinkId, LinkError> {
        let slot = self
            .slots
            .iter()
            .position(|s| matches!(s, Slot::Free))
            .ok_or(LinkError::Full)?;
        self.slots[slot] = Slot::Connecting(self.open_socket(remote)?);
        Ok(LinkId(slot))
    }

    fn state(&mut self, id: LinkId) -> LinkState {
        let slot = &mut self.slots[id.0];
        if let Slot::Connecting(socket) = slot {
            // Connected once the peer address is known; failed once SO_ERROR says so.
            match socket.take_error() {
                Ok(None) if socket.peer_addr().is_ok() => {
                    let Slot::Connecting(socket) = std::mem::replace(slot, Slot::Gone) else {
                        unreachable!()
                    };
                    *slot = Slot::Open(socket.into());
                }
                Ok(None) => return LinkState::Connecting,
                _ => *slot = Slot::Gone,
            }
        }
        match slot {
            Slot::Open(_) => LinkState::Open,
            Slot::Connecting(_) => LinkState::Connecting,
            Slot::Free | Slot::Gone => LinkState::Gone,
        }
    }

    fn local_addr(&mut self, id: LinkId) -> Option<SocketAddrV4> {
        match &self.slots[id.0] {
            Slot::Open(stream) => match stream.local_addr() {
                Ok(SocketAddr::V4(a)) => Some(a),
                _ => None,
            },
            _ => None,
        }
    }

    fn send(&mut self, id: LinkId, bytes: &[u8]) -> usize {
        let slot = &mut self.slots[id.0];
        let Slot::Open(stream) = slot else { return 0 };
        match stream.write(bytes) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(_) => {
                *slot = Slot::Gone;
                0
            }
        }
    }

    fn recv(&mut self, id: LinkId, buf: &mut [u8]) -> usize {
        let slot = &mut self.slots[id.0];
        let Slot::Open(stream) = slot else { return 0 };
        match stream.read(buf) {
            Ok(0) => {
                *slot = Slot::Gone; // orderly close by the peer
                0
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(_) => {
                *slot = Slot::Gone;
                0
            }
        }
    }

    fn close(&mut self, id: LinkId) {
        // Dropping the socket sends FIN (or RST when unread data remains).
        self.slots[id.0] = Slot::Free;
    }

    fn poll(&mut self, _now_ns: u64) {
        // The kernel moves the packets; nothing to drive.
    }

    /// A kernel socket; a group is joined on this link's interface when it has one (the
    /// kernel would otherwise pick the interface its routes give the group, often the
    /// default route's, and never see the feed on ours).
    fn bind_udp(
        &mut self,
        addr: Ipv4Addr,
        port: u16,
        _max_payload: usize,
    ) -> Result<Datagrams, LinkError> {
        let ifindex = match &self.interface {
            Some(name) if addr.is_multicast() => Some(crate::xsk::if_index(name)?),
            _ => None,
        };
        kernel_socket(addr, port, ifindex).map(Datagrams::Kernel)
    }

    fn backend(&self) -> &'static str {
        "kernel"
    }

    fn bind_mode(&self) -> &'static str {
        "kernel"
    }
}
