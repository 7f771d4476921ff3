//! The appliance's own IPv4 host: a smoltcp `Interface` with its own MAC and address
//! (it answers ARP itself; the XDP program steers ARP for that address to us), and a
//! fixed set of TCP sockets whose buffers are all sized at start-up.

mod udp;

use smoltcp::iface::{
    Config, Interface, PollIngressSingleResult, SocketHandle, SocketSet, SocketStorage,
};
use smoltcp::phy::Device;
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Cidr};
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, SocketAddrV4};

/// The shape of the appliance's host.
#[derive(Debug, Clone)]
pub struct StackConfig {
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
    /// TCP sockets created up front; connections never exceed it.
    pub sockets: usize,
    pub rx_buffer: usize,
    pub tx_buffer: usize,
}

/// Why a connection could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("all {0} TCP sockets are in use")]
    NoFreeSocket(usize),
    #[error("smoltcp refused the connection: {0}")]
    Refused(tcp::ConnectError),
}

/// One connection slot: a socket handle, whether it is in use, and how many times its
/// socket was handed out to change (see [`Version`]).
#[derive(Debug)]
struct Slot {
    handle: SocketHandle,
    busy: bool,
    changes: u64,
}

/// Where a TCP socket's state stands, as far as this stack can tell without asking
/// smoltcp: the passes of smoltcp over all sockets (a frame taken in, an egress pass),
/// and the times this socket was handed out mutably. smoltcp changes a socket in no
/// other way (nothing moves with time alone: its timers act in an egress pass), so two
/// equal versions mean the socket has not changed in between. A conservative count:
/// a pass or a borrow that changed nothing still counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    passes: u64,
    changes: u64,
}

/// The interface and its sockets.
pub struct Stack {
    pub iface: Interface,
    /// TCP sockets are changed only through [`Stack`]'s methods, which keep
    /// [`Version`]s; UDP sockets (feeds) are reached directly.
    sockets: SocketSet<'static>,
    slots: Vec<Slot>,
    /// smoltcp passes that may have changed any socket (see [`Version`]).
    passes: u64,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // smoltcp's Interface has no Debug; the slots say what matters.
        f.debug_struct("Stack").field("slots", &self.slots).finish()
    }
}

/// Ephemeral ports we pick from (IANA dynamic range).
const PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

/// A seed from the OS: `RandomState` keys come from the OS RNG, so hashing nothing with
/// a fresh one yields a random u64 without another dependency or `unsafe`.
fn os_random() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

impl Stack {
    pub fn new<D: Device + ?Sized>(config: &StackConfig, device: &mut D, now: Instant) -> Stack {
        let mut iface_config = Config::new(HardwareAddress::Ethernet(EthernetAddress(config.mac)));
        // smoltcp's default seed is 0: every run would repeat initial sequence numbers.
        iface_config.random_seed = os_random();
        let mut iface = Interface::new(iface_config, device, now);
        let ip = config.ip;
        iface.update_ip_addrs(|addrs| {
            addrs
                .push(IpCidr::Ipv4(Ipv4Cidr::new(ip, config.prefix_len)))
                .expect("one address fits");
        });
        if let Some(gw) = config.gateway {
            iface
                .routes_mut()
                .add_default_ipv4_route(gw)
                .expect("one route fits");
        }

        let storage: Vec<SocketStorage<'static>> =
            (0..config.sockets).map(|_| SocketStorage::EMPTY).collect();
        let mut sockets = SocketSet::new(storage);
        let slots = (0..config.sockets)
            .map(|_| {
                let rx = tcp::SocketBuffer::new(vec![0; config.rx_buffer]);
                let tx = tcp::SocketBuffer::new(vec![0; config.tx_buffer]);
                Slot {
                    handle: sockets.add(tcp::Socket::new(rx, tx)),
                    busy: false,
                    changes: 0,
                }
            })
            .collect();
        Stack {
            iface,
            sockets,
            slots,
            passes: 0,
        }
    }

    /// Opens a TCP connection from our address to `remote`, on a local port drawn at
    /// random for each connection (RFC 6056): a blind attacker cannot predict the next
    /// one, and a restart never collides with a server's stale connection.
    /// Returns the slot index and the local port; the caller steers the flow before the
    /// SYN leaves on the next poll.
    pub fn connect(&mut self, remote: SocketAddrV4) -> Result<(usize, u16), ConnectError> {
        let slot = self
            .slots
            .iter()
            .position(|s| !s.busy)
            .ok_or(ConnectError::NoFreeSocket(self.slots.len()))?;
        let port = self.random_free_port();
        self.slots[slot].changes += 1;
        let socket = self.sockets.get_mut::<tcp::Socket>(self.slots[slot].handle);
        // Order traffic is small request/response: no Nagle, no delayed ACK.
        socket.set_nagle_enabled(false);
        socket.set_ack_delay(None);
        let remote = ((*remote.ip()), remote.port());
        socket
            .connect(self.iface.context(), remote, port)
            .map_err(ConnectError::Refused)?;
        self.slots[slot].busy = true;
        Ok((slot, port))
    }

    /// A random ephemeral port no open socket of ours uses.
    fn random_free_port(&mut self) -> u16 {
        let span = u64::from(PORTS.end() - PORTS.start()) + 1;
        loop {
            let port = PORTS.start() + (os_random() % span) as u16;
            let taken = self.slots.iter().any(|s| {
                s.busy
                    && self
                        .sockets
                        .get::<tcp::Socket>(s.handle)
                        .local_endpoint()
                        .is_some_and(|ep| ep.port == port)
            });
            // At most `sockets` of 16,384 ports are taken: this ends at once.
            if !taken {
                return port;
            }
        }
    }

    /// The socket of slot `slot`, to change (its [`Version`] moves).
    pub fn tcp(&mut self, slot: usize) -> &mut tcp::Socket<'static> {
        self.slots[slot].changes += 1;
        self.sockets.get_mut::<tcp::Socket>(self.slots[slot].handle)
    }

    pub fn tcp_ref(&self, slot: usize) -> &tcp::Socket<'static> {
        self.sockets.get::<tcp::Socket>(self.slots[slot].handle)
    }

    /// Where slot `slot`'s socket stands (see [`Version`]).
    pub fn version(&self, slot: usize) -> Version {
        Version {
            passes: self.passes,
            changes: self.slots[slot].changes,
        }
    }

    /// When smoltcp next needs an egress pass (a timer, or at once), in the clock's ns;
    /// `u64::MAX` when only a received frame can give it work.
    pub fn next_poll_ns(&mut self, now: Instant) -> u64 {
        match self.iface.poll_at(now, &self.sockets) {
            Some(at) => u64::try_from(at.total_micros()).map_or(0, |us| us.saturating_mul(1_000)),
            None => u64::MAX,
        }
    }

    /// Gives slot `slot` back once its socket is closed (aborting it if it is not).
    pub fn release(&mut self, slot: usize) {
        self.slots[slot].changes += 1;
        let socket = self.sockets.get_mut::<tcp::Socket>(self.slots[slot].handle);
        if socket.state() != tcp::State::Closed {
            socket.abort();
        }
        self.slots[slot].busy = false;
    }

    /// Emits what the sockets have queued, and nothing else.
    pub fn poll_egress<D: Device + ?Sized>(&mut self, now: Instant, device: &mut D) {
        self.passes += 1;
        self.iface.poll_egress(now, device, &mut self.sockets);
    }

    /// Emits everything due at `now` (each pass sends at most a segment per socket; as
    /// smoltcp's own `poll` does, pass again until one sends nothing). True if any
    /// socket sent.
    pub fn poll_egress_all<D: Device + ?Sized>(&mut self, now: Instant, device: &mut D) -> bool {
        self.passes += 1;
        let mut sent = false;
        while self.iface.poll_egress(now, device, &mut self.sockets)
            == smoltcp::iface::PollResult::SocketStateChanged
        {
            sent = true;
        }
        sent
    }

    /// smoltcp's receive side at `now`: every waiting frame, nothing transmitted but
    /// what a frame calls for at once (an ARP reply, a RST). True if any socket may
    /// have changed.
    pub fn poll_ingress<D: Device + ?Sized>(&mut self, now: Instant, device: &mut D) -> bool {
        self.iface.poll_maintenance(now);
        let mut changed = false;
        // Bounded by the Rx rings: each call takes one frame, and a frame taken is gone.
        loop {
            match self
                .iface
                .poll_ingress_single(now, device, &mut self.sockets)
            {
                PollIngressSingleResult::None => return changed,
                PollIngressSingleResult::PacketProcessed => self.passes += 1,
                PollIngressSingleResult::SocketStateChanged => {
                    self.passes += 1;
                    changed = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::{Loopback, Medium};

    /// Every way a socket can change moves its version; looking does not. A fire trusts
    /// an unchanged version instead of asking smoltcp (`engine/prebuilt.rs`), so a path
    /// that changed a socket without moving it would send a stale frame.
    #[test]
    fn a_socket_changed_in_any_way_has_a_new_version_and_one_looked_at_has_not() {
        let config = StackConfig {
            mac: [2, 0, 0, 0, 0, 1],
            ip: Ipv4Addr::new(198, 18, 0, 10),
            prefix_len: 24,
            gateway: None,
            sockets: 2,
            rx_buffer: 1024,
            tx_buffer: 1024,
        };
        let mut device = Loopback::new(Medium::Ethernet);
        let now = Instant::from_millis(1);
        let mut stack = Stack::new(&config, &mut device, now);
        let mut last = stack.version(0);
        let mut moved = |stack: &Stack, what: &str, expected: bool| {
            let v = stack.version(0);
            assert_eq!(v != last, expected, "{what}: {last:?} → {v:?}");
            last = v;
        };

        let _ = stack.tcp_ref(0).state();
        let _ = stack.next_poll_ns(now);
        assert!(!stack.poll_ingress(now, &mut device));
        moved(
            &stack,
            "looking, and a receive pass with nothing to take",
            false,
        );

        let (slot, _) = stack
            .connect(SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 443))
            .unwrap();
        assert_eq!(slot, 0);
        moved(&stack, "connect", true);
        let _ = stack.tcp(0);
        moved(&stack, "a mutable borrow", true);
        let _ = stack.tcp(1);
        moved(&stack, "another socket's borrow", false);
        // The SYN waits for ARP: the egress pass emits a request, which the loopback
        // hands back to the receive side.
        stack.poll_egress(now, &mut device);
        moved(&stack, "an egress pass", true);
        let _ = stack.poll_ingress(now, &mut device);
        moved(&stack, "a receive pass that took a frame", true);
        let _ = stack.poll_egress_all(now, &mut device);
        moved(&stack, "a full egress pass", true);
        stack.release(0);
        moved(&stack, "release", true);
    }
}
