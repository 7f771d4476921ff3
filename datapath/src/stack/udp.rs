//! UDP sockets of the appliance's host, for event feeds: created when a feed is bound
//! (off the hot path), with packet buffers sized then; receiving copies a datagram into
//! the caller's buffer and never allocates.

use super::Stack;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::IpListenEndpoint;
use std::net::SocketAddrV4;

/// Datagrams a feed socket holds before the loop reads them.
const DATAGRAMS: usize = 64;

impl Stack {
    /// A UDP socket receiving datagrams to `local` whose payloads are at most
    /// `max_payload` bytes (larger ones are dropped by smoltcp).
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

    /// The next datagram for socket `handle`, copied into `buf` (truncated to it).
    pub fn recv_udp(&mut self, handle: SocketHandle, buf: &mut [u8]) -> Option<usize> {
        let socket = self.sockets.get_mut::<udp::Socket>(handle);
        socket.recv_slice(buf).ok().map(|(n, _)| n)
    }
}
