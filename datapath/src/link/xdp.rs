//! [`Link`] over the AF_XDP [`Engine`]: smoltcp TCP sockets, steered flows, one kick.

use super::datagram::{Datagrams, Membership};
use super::{Link, LinkError, LinkId, LinkState};
use crate::warming::Pass;
use crate::Engine;
use smoltcp::socket::tcp::State;
use std::net::SocketAddrV4;

/// The appliance's own TCP stack as a link.
#[derive(Debug)]
pub struct XdpLink {
    engine: Engine,
}

impl XdpLink {
    pub fn new(engine: Engine) -> XdpLink {
        XdpLink { engine }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }
}

impl Link for XdpLink {
    fn connect(&mut self, remote: SocketAddrV4) -> Result<LinkId, LinkError> {
        match self.engine.connect(remote) {
            Ok(id) => Ok(LinkId(id.0)),
            Err(crate::Error::Connect(_)) => Err(LinkError::Full),
            Err(e) => Err(LinkError::Datapath(Box::new(e))),
        }
    }

    fn state(&mut self, id: LinkId) -> LinkState {
        match self.engine.tcp_ref(crate::ConnId(id.0)).state() {
            State::SynSent | State::SynReceived => LinkState::Connecting,
            State::Established => LinkState::Open,
            _ => LinkState::Gone,
        }
    }

    fn local_addr(&mut self, id: LinkId) -> Option<SocketAddrV4> {
        let ep = self.engine.tcp_ref(crate::ConnId(id.0)).local_endpoint()?;
        match ep.addr {
            smoltcp::wire::IpAddress::Ipv4(ip) => Some(SocketAddrV4::new(ip, ep.port)),
        }
    }

    fn send(&mut self, id: LinkId, bytes: &[u8]) -> usize {
        self.engine.send(crate::ConnId(id.0), bytes)
    }

    fn recv(&mut self, id: LinkId, buf: &mut [u8]) -> usize {
        self.engine.recv(crate::ConnId(id.0), buf)
    }

    fn close(&mut self, id: LinkId) {
        self.engine.close(crate::ConnId(id.0));
    }

    fn poll(&mut self, now_ns: u64) {
        self.engine.poll(now_ns);
    }

    fn poll_receive(&mut self, now_ns: u64) {
        self.engine.poll_receive(now_ns);
    }

    fn finish(&mut self, now_ns: u64) {
        self.engine.finish(now_ns);
    }

    fn defer_acks(&mut self, id: LinkId, delay_ns: u64) {
        let delay = smoltcp::time::Duration::from_micros(delay_ns / 1_000);
        self.engine
            .tcp(crate::ConnId(id.0))
            .set_ack_delay(Some(delay));
    }

    fn warm_code(&self) {
        crate::warming::touch_code(<XdpLink as Link>::send_prepared as *const (), 512);
        crate::warming::touch_code(<XdpLink as Link>::transmit as *const (), 512);
        self.engine.warm_code();
    }

    fn rx_seen_ns(&self) -> u64 {
        self.engine.rx_seen_ns()
    }

    fn transmit(&mut self, now_ns: u64, profile: bool) -> u64 {
        self.engine.transmit(now_ns, profile)
    }

    fn warm(&mut self, id: LinkId, tag: u64, record: &[u8], now_ns: u64) {
        std::hint::black_box(self.engine.warm(crate::ConnId(id.0), tag, record, now_ns));
    }

    fn prepare(&mut self, id: LinkId, tag: u64, record: &[u8], now_ns: u64) -> bool {
        self.engine
            .prepare(crate::ConnId(id.0), tag, record, now_ns)
    }

    fn send_prepared(
        &mut self,
        id: LinkId,
        tag: u64,
        record: &[u8],
        now_ns: u64,
        pass: Pass,
    ) -> bool {
        self.engine
            .send_prepared(crate::ConnId(id.0), tag, record, now_ns, pass)
    }

    fn unacked(&mut self, id: LinkId) -> usize {
        self.engine.unacked(crate::ConnId(id.0))
    }

    fn retransmit(&mut self, id: LinkId) -> bool {
        self.engine.retransmit(crate::ConnId(id.0))
    }

    fn receive_gap(&mut self, id: LinkId) -> bool {
        self.engine.receive_gap(crate::ConnId(id.0))
    }

    fn probe_tail(&mut self, id: LinkId) -> bool {
        self.engine.probe_tail(crate::ConnId(id.0))
    }

    fn warm_raw(&self) {
        self.engine.warm_raw();
    }

    fn warm_wire(&mut self) -> bool {
        self.engine.warm_wire()
    }

    fn counters(&mut self) -> Option<crate::order::LinkCounters> {
        let xsk = self.engine.xsk_stats().ok();
        Some(crate::order::LinkCounters {
            steer: self.engine.steer_counters().ok(),
            device: Some(self.engine.device_stats()),
            rx_ring_full: xsk.map_or(0, |x| x.rx_ring_full),
            fill_ring_empty: xsk.map_or(0, |x| x.rx_fill_ring_empty_descs),
            tx_ring_empty: xsk.map_or(0, |x| x.tx_ring_empty_descs),
            rx_dropped: xsk.map_or(0, |x| x.rx_dropped),
            invalid_descs: xsk.map_or(0, |x| x.rx_invalid_descs + x.tx_invalid_descs),
            ..Default::default()
        })
    }

    fn queues(&mut self) -> Option<crate::device::QueueCounts> {
        Some(crate::device::QueueCounts::of(self.engine.queues()))
    }

    fn prepare_raw(&mut self, frame: &[u8]) -> bool {
        self.engine.prepare_raw(frame)
    }

    fn send_prepared_raw(&mut self, pass: Pass) -> bool {
        self.engine.send_prepared_raw(pass)
    }

    /// A socket of our stack on `addr:port` for a group, else on our own address. For a
    /// group, the kernel joins it on our interface first (so a NIC's multicast filter
    /// lets it in, and IGMP is the kernel's); the feed holds that membership.
    fn bind_udp(
        &mut self,
        addr: std::net::Ipv4Addr,
        port: u16,
        max_payload: usize,
    ) -> Result<Datagrams, LinkError> {
        let (local, membership) = if addr.is_multicast() {
            let membership = Membership::join(addr, self.engine.ifindex())?;
            (SocketAddrV4::new(addr, port), Some(membership))
        } else {
            (SocketAddrV4::new(self.engine.ip(), port), None)
        };
        let handle = self
            .engine
            .bind_udp(local, max_payload)
            .map_err(|e| LinkError::Datapath(Box::new(e)))?;
        Ok(Datagrams::Stack { handle, membership })
    }

    fn recv_datagram(
        &mut self,
        handle: smoltcp::iface::SocketHandle,
        buf: &mut [u8],
    ) -> Option<usize> {
        self.engine.recv_datagram(handle, buf)
    }

    fn backend(&self) -> &'static str {
        "af_xdp"
    }

    fn bind_mode(&self) -> &'static str {
        self.engine.bind_mode().as_str()
    }
}
