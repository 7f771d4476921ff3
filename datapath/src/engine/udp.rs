//! Event-feed datagrams on the AF_XDP engine: a UDP socket in the stack and its
//! destination steered by the XDP program, like our TCP flows (and, with
//! `steer = "ntuple"`, by a NIC flow rule to our queue).

use super::Engine;
use crate::Error;
use smoltcp::iface::SocketHandle;
use std::net::SocketAddrV4;

impl Engine {
    /// Receives datagrams to `port` on our own address from now on, payloads up to
    /// `max_payload` bytes. Returns the socket's handle.
    pub fn bind_udp(&mut self, port: u16, max_payload: usize) -> Result<SocketHandle, Error> {
        let local = SocketAddrV4::new(self.ip, port);
        let handle = self
            .stack
            .bind_udp(local, max_payload)
            .map_err(|e| Error::Udp {
                local,
                why: e.to_string(),
            })?;
        self.steer.add_udp_port(local)?;
        // With steer = "ntuple", the NIC must bring the feed to our queue too.
        if let Some((interface, queue)) = &self.ntuple_at {
            let rule = super::NtupleRule::install_udp(interface, local, *queue)?;
            self.ntuple_udp.push(rule);
        }
        Ok(handle)
    }

    /// The next datagram received for `handle`, into `buf`.
    pub fn recv_datagram(&mut self, handle: SocketHandle, buf: &mut [u8]) -> Option<usize> {
        self.stack.recv_udp(handle, buf)
    }
}
