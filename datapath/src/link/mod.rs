//! A byte pipe to a target, the same to the connection logic whichever stack carries it:
//! [`xdp`] is our own TCP over AF_XDP (the appliance), [`kernel`] is the kernel's TCP
//! through std sockets (the baseline and fallback). Everything above a link (TLS, HTTP,
//! pools, fires) is written once, against this trait.

pub mod datagram;
pub mod kernel;
#[cfg(test)]
pub(crate) mod memory;
pub mod xdp;

use crate::warming::Pass;
use std::net::SocketAddrV4;

/// Identifies one connection of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkId(pub usize);

/// Where a connection stands, as far as bytes can flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// The TCP handshake is under way.
    Connecting,
    /// Bytes flow both ways.
    Open,
    /// The peer closed, reset, or the connection failed: it will carry nothing more.
    Gone,
}

/// Why a link refused to open a connection.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("no connection slot free")]
    Full,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Datapath(Box<crate::Error>),
}

/// The operations the connection logic needs of a TCP stack. Non-blocking throughout.
pub trait Link {
    /// Starts opening a connection to `remote`.
    fn connect(&mut self, remote: SocketAddrV4) -> Result<LinkId, LinkError>;
    fn state(&mut self, id: LinkId) -> LinkState;
    /// Our end of an open connection (for matching wire stamps to fires).
    fn local_addr(&mut self, id: LinkId) -> Option<SocketAddrV4>;
    /// Queues bytes for sending; returns how many were taken (fewer when buffers are full).
    fn send(&mut self, id: LinkId, bytes: &[u8]) -> usize;
    /// Reads received bytes into `buf`; 0 when there are none right now.
    fn recv(&mut self, id: LinkId, buf: &mut [u8]) -> usize;
    /// Closes cleanly (FIN) and forgets the connection; its id may be reused.
    fn close(&mut self, id: LinkId);
    /// Moves packets: receive, run the stack, transmit, kick.
    fn poll(&mut self, now_ns: u64);
    /// The receive half of a loop turn: what arrived goes through the stack, and what
    /// the stack owes in return waits for [`finish`](Self::finish) at the end of the
    /// turn, after the turn's triggers have fired. Links without such a split poll
    /// whole here.
    fn poll_receive(&mut self, now_ns: u64) {
        self.poll(now_ns);
    }
    /// The send half of a loop turn: what the stack owes and what the turn queued goes
    /// out, one kick.
    fn finish(&mut self, now_ns: u64) {
        let _ = now_ns;
    }
    /// Pushes out what was just sent, and nothing else: the fire path's half of
    /// [`poll`](Self::poll) (no receive processing ahead of the order). A link that
    /// pushed built frames settles its stack's accounting of them after the kick.
    ///
    /// With `profile`, returns the clock between the descriptor push and the kick (links
    /// whose sends already left, the kernel's, return the clock after their poll); always
    /// 0 without `profile`.
    fn transmit(&mut self, now_ns: u64, profile: bool) -> u64 {
        self.poll(now_ns);
        if profile {
            self.now_ns()
        } else {
            0
        }
    }
    /// Keeps connection `id`'s send path warm for `record` (named `tag`, as in
    /// [`prepare`](Self::prepare)) while an order is armed, without sending anything
    /// (Onload calls this send warming). Links with nothing to warm do nothing.
    fn warm(&mut self, id: LinkId, tag: u64, record: &[u8], now_ns: u64) {
        let _ = (id, tag, record, now_ns);
    }
    /// Builds the whole frame that would carry `record` on connection `id` ahead of its
    /// send (`tag`, non-zero, names that record), or brings it up to date. Off the hot
    /// path. Links that cannot (the kernel's sockets) return false.
    fn prepare(&mut self, id: LinkId, tag: u64, record: &[u8], now_ns: u64) -> bool {
        let _ = (id, tag, record, now_ns);
        false
    }
    /// Sends `record` on connection `id` as the frame [`prepare`](Self::prepare) built
    /// for `tag` (the kick, and the stack's accounting of the octets, follow in
    /// [`transmit`](Self::transmit), which the caller must call next). False, with nothing
    /// sent, when there is no such frame or the connection moved on since: the caller
    /// then uses [`send`](Self::send). A [`Pass::Rehearsal`] sends nothing and changes
    /// nothing the fire would find: true if the fire would have sent the frame.
    fn send_prepared(
        &mut self,
        id: LinkId,
        tag: u64,
        record: &[u8],
        now_ns: u64,
        pass: Pass,
    ) -> bool {
        let _ = (id, tag, record, now_ns, pass);
        false
    }
    /// Bytes sent on connection `id` and not yet acknowledged (plus any not yet sent), as
    /// far as this link can tell; 0 for links whose stack keeps this to itself.
    fn unacked(&mut self, id: LinkId) -> usize {
        let _ = id;
        0
    }
    /// Resends connection `id`'s unacknowledged bytes now, identical (same sequence
    /// numbers, so the peer keeps one copy). False if nothing was in flight or the link
    /// leaves retransmission to its stack.
    fn retransmit(&mut self, id: LinkId) -> bool {
        let _ = id;
        false
    }
    /// Sends a probe the server acknowledges at once (a keep-alive: one octet it already
    /// has) on connection `id`, where everything sent is acknowledged and an answer is
    /// still awaited. False if it cannot now, or the link leaves this to its stack.
    fn probe_tail(&mut self, id: LinkId) -> bool {
        let _ = id;
        false
    }
    /// Whether the peer on connection `id` has sent past what arrived here in order: an
    /// answer (or part of one) lost or late on the way back (smoltcp's
    /// `has_receive_gap`). False for links whose stack keeps this to itself.
    fn receive_gap(&mut self, id: LinkId) -> bool {
        let _ = id;
        false
    }
    /// Warms the whole transmit path down to the wire with a frame that reaches no one
    /// (see `XdpDevice::send_warm_frame`). False if the link has no such thing.
    fn warm_wire(&mut self) -> bool {
        false
    }
    /// Code warming of this link's part of the fire path (see
    /// [`crate::warming::touch_code`]). Links with no code of their own there do
    /// nothing.
    fn warm_code(&self) {}
    /// The clock right after a [`poll`](Self::poll) returned: a fire's tx stamp. Real
    /// links read CLOCK_MONOTONIC; a simulated one answers with its virtual time.
    fn now_ns(&self) -> u64 {
        crate::clock::monotonic_ns()
    }
    /// Lets the link hold the ACK of data received on `id` for up to `delay_ns`: for a
    /// stream whose data triggers sends (an event feed), so that the ACK leaves after
    /// the fire rather than between the frame's arrival and the match. Links whose TCP
    /// is the kernel's keep its own policy.
    fn defer_acks(&mut self, id: LinkId, delay_ns: u64) {
        let _ = (id, delay_ns);
    }
    /// When this link last saw received frames waiting for it, before any protocol work
    /// (AF_XDP: a poll found descriptors in a Rx ring); 0 where the link has no such
    /// moment of its own (kernel sockets: the read is the first sight). An event fire's
    /// `Stamps::rx_ns`.
    fn rx_seen_ns(&self) -> u64 {
        0
    }
    /// Builds a complete Ethernet frame into a transmit frame set aside for it, to go out
    /// later with [`send_prepared_raw`](Self::send_prepared_raw). False without frame
    /// access.
    fn prepare_raw(&mut self, frame: &[u8]) -> bool {
        let _ = frame;
        false
    }
    /// Pushes the prepared raw frame as it stands and kicks; a rehearsal only says
    /// whether it would.
    fn send_prepared_raw(&mut self, pass: Pass) -> bool {
        let _ = pass;
        false
    }
    /// Send warming for the prepared raw frame (kept warm as an order's frame is).
    fn warm_raw(&self) {}
    /// The link's counters, read with system calls: never on the fire path (the
    /// appliance reads them only while nothing is armed).
    fn counters(&mut self) -> Option<crate::order::LinkCounters> {
        None
    }
    /// Frames received per NIC queue (AF_XDP links), read with the counters.
    fn queues(&mut self) -> Option<crate::device::QueueCounts> {
        None
    }
    /// Starts receiving UDP datagrams to `addr:port` for an event feed, payloads up to
    /// `max_payload` bytes; `addr` a multicast group, or what a kernel socket binds for
    /// unicast. By default a kernel socket (the kernel backend's way), joined to a group
    /// where the kernel routes it; the kernel link joins on its own interface. The AF_XDP
    /// link binds a socket of its own stack instead, on the group or its own address, and
    /// steers that destination to itself (the kernel keeps the group's membership).
    fn bind_udp(
        &mut self,
        addr: std::net::Ipv4Addr,
        port: u16,
        max_payload: usize,
    ) -> Result<datagram::Datagrams, LinkError> {
        let _ = max_payload;
        datagram::kernel_socket(addr, port, None).map(datagram::Datagrams::Kernel)
    }
    /// The next datagram of a [`datagram::Datagrams::Stack`] socket, into `buf`.
    fn recv_datagram(
        &mut self,
        handle: smoltcp::iface::SocketHandle,
        buf: &mut [u8],
    ) -> Option<usize> {
        let _ = (handle, buf);
        None
    }
    /// Short name for reports: "af_xdp" or "kernel".
    fn backend(&self) -> &'static str;
    /// How frames reach the wire: "copy"/"zerocopy" for AF_XDP, "kernel" for sockets.
    fn bind_mode(&self) -> &'static str;
}

/// Either link, for one thread that runs both side by side (the bench compares them fire
/// by fire on the same core). Dispatch is one `match` per call.
#[derive(Debug)]
// One or two per thread, never moved after start: boxing the large variant would only add
// a pointer chase to every call.
#[allow(clippy::large_enum_variant)]
pub enum AnyLink {
    Xdp(xdp::XdpLink),
    Kernel(kernel::KernelLink),
}

macro_rules! dispatch {
    ($self:ident, $l:ident => $e:expr) => {
        match $self {
            AnyLink::Xdp($l) => $e,
            AnyLink::Kernel($l) => $e,
        }
    };
}

impl Link for AnyLink {
    fn connect(&mut self, remote: SocketAddrV4) -> Result<LinkId, LinkError> {
        dispatch!(self, l => l.connect(remote))
    }
    fn state(&mut self, id: LinkId) -> LinkState {
        dispatch!(self, l => l.state(id))
    }
    fn local_addr(&mut self, id: LinkId) -> Option<SocketAddrV4> {
        dispatch!(self, l => l.local_addr(id))
    }
    fn send(&mut self, id: LinkId, bytes: &[u8]) -> usize {
        dispatch!(self, l => l.send(id, bytes))
    }
    fn recv(&mut self, id: LinkId, buf: &mut [u8]) -> usize {
        dispatch!(self, l => l.recv(id, buf))
    }
    fn close(&mut self, id: LinkId) {
        dispatch!(self, l => l.close(id))
    }
    fn poll(&mut self, now_ns: u64) {
        dispatch!(self, l => l.poll(now_ns))
    }
    fn poll_receive(&mut self, now_ns: u64) {
        dispatch!(self, l => l.poll_receive(now_ns))
    }
    fn finish(&mut self, now_ns: u64) {
        dispatch!(self, l => l.finish(now_ns))
    }
    fn now_ns(&self) -> u64 {
        dispatch!(self, l => l.now_ns())
    }
    fn rx_seen_ns(&self) -> u64 {
        dispatch!(self, l => l.rx_seen_ns())
    }
    fn warm_code(&self) {
        crate::warming::touch_code(<AnyLink as Link>::send_prepared as *const (), 512);
        crate::warming::touch_code(<AnyLink as Link>::transmit as *const (), 512);
        dispatch!(self, l => l.warm_code())
    }
    fn defer_acks(&mut self, id: LinkId, delay_ns: u64) {
        dispatch!(self, l => l.defer_acks(id, delay_ns))
    }
    fn transmit(&mut self, now_ns: u64, profile: bool) -> u64 {
        dispatch!(self, l => l.transmit(now_ns, profile))
    }
    fn warm(&mut self, id: LinkId, tag: u64, record: &[u8], now_ns: u64) {
        dispatch!(self, l => l.warm(id, tag, record, now_ns))
    }
    fn prepare(&mut self, id: LinkId, tag: u64, record: &[u8], now_ns: u64) -> bool {
        dispatch!(self, l => l.prepare(id, tag, record, now_ns))
    }
    fn send_prepared(
        &mut self,
        id: LinkId,
        tag: u64,
        record: &[u8],
        now_ns: u64,
        pass: Pass,
    ) -> bool {
        dispatch!(self, l => l.send_prepared(id, tag, record, now_ns, pass))
    }
    fn unacked(&mut self, id: LinkId) -> usize {
        dispatch!(self, l => l.unacked(id))
    }
    fn retransmit(&mut self, id: LinkId) -> bool {
        dispatch!(self, l => l.retransmit(id))
    }
    fn receive_gap(&mut self, id: LinkId) -> bool {
        dispatch!(self, l => l.receive_gap(id))
    }
    fn probe_tail(&mut self, id: LinkId) -> bool {
        dispatch!(self, l => l.probe_tail(id))
    }
    fn warm_wire(&mut self) -> bool {
        dispatch!(self, l => l.warm_wire())
    }
    fn counters(&mut self) -> Option<crate::order::LinkCounters> {
        dispatch!(self, l => l.counters())
    }
    fn queues(&mut self) -> Option<crate::device::QueueCounts> {
        dispatch!(self, l => l.queues())
    }
    fn prepare_raw(&mut self, frame: &[u8]) -> bool {
        dispatch!(self, l => l.prepare_raw(frame))
    }
    fn send_prepared_raw(&mut self, pass: Pass) -> bool {
        dispatch!(self, l => l.send_prepared_raw(pass))
    }
    fn warm_raw(&self) {
        dispatch!(self, l => l.warm_raw())
    }
    fn bind_udp(
        &mut self,
        addr: std::net::Ipv4Addr,
        port: u16,
        max_payload: usize,
    ) -> Result<datagram::Datagrams, LinkError> {
        dispatch!(self, l => l.bind_udp(addr, port, max_payload))
    }
    fn recv_datagram(
        &mut self,
        handle: smoltcp::iface::SocketHandle,
        buf: &mut [u8],
    ) -> Option<usize> {
        dispatch!(self, l => l.recv_datagram(handle, buf))
    }
    fn backend(&self) -> &'static str {
        dispatch!(self, l => l.backend())
    }
    fn bind_mode(&self) -> &'static str {
        dispatch!(self, l => l.bind_mode())
    }
}
