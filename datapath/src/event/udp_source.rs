//! A UDP event feed: each datagram to the configured port is one event, its payload the
//! event's data (the shape of a market-data or inventory multicast). On the AF_XDP link
//! the datagrams reach our own stack, steered by the XDP program like our TCP flows; on
//! the kernel link they are read from a kernel socket. Reading never allocates.

use super::source::{Source, SourceChange};
use crate::conn::{BACKOFF_MAX_NS, BACKOFF_MIN_NS};
use crate::link::datagram::{kernel_recv, Datagrams};
use crate::link::Link;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Datagrams read per turn at most, so a flood cannot starve the rest of the turn.
const PER_TURN: usize = 64;

/// Where to listen.
#[derive(Debug, Clone)]
pub struct UdpSpec {
    /// The source's name, as arms name it.
    pub name: String,
    /// A multicast group (on both backends), or the address kernel sockets bind (the
    /// kernel backend's own address; the AF_XDP link then uses the appliance's).
    pub addr: Ipv4Addr,
    pub port: u16,
    /// Largest datagram payload kept (longer ones are truncated by the socket and then
    /// dropped here: a cut event must not match).
    pub max_event: usize,
}

/// Counters for the operator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpStats {
    pub events: u64,
    pub oversized: u64,
}

/// The source; see the module docs.
#[derive(Debug)]
pub struct UdpSource {
    spec: UdpSpec,
    rx: Option<Datagrams>,
    buf: Box<[u8]>,
    retry_at_ns: u64,
    backoff_ns: u64,
    change: Option<SourceChange>,
    /// The length of the last event in `buf` (see [`Source::last_event`]).
    last: usize,
    pub stats: UdpStats,
}

impl UdpSource {
    pub fn new(spec: UdpSpec) -> UdpSource {
        // One byte more than an event may have: a datagram that fills it was cut.
        let buf = vec![0; spec.max_event + 1].into_boxed_slice();
        UdpSource {
            spec,
            rx: None,
            buf,
            retry_at_ns: 0,
            backoff_ns: BACKOFF_MIN_NS,
            change: None,
            last: 0,
            stats: UdpStats::default(),
        }
    }
}

impl Source for UdpSource {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn is_live(&self) -> bool {
        self.rx.is_some()
    }

    fn take_change(&mut self) -> Option<SourceChange> {
        self.change.take()
    }

    fn last_event(&self) -> &[u8] {
        // An oversized datagram read since may have overwritten it: harmless bytes.
        &self.buf[..self.last]
    }

    fn progress<L: Link>(
        &mut self,
        link: &mut L,
        now: u64,
        on_event: &mut dyn FnMut(&[u8]),
    ) -> bool {
        let Some(rx) = &self.rx else {
            if now < self.retry_at_ns {
                return false;
            }
            let (addr, port) = (self.spec.addr, self.spec.port);
            match link.bind_udp(addr, port, self.spec.max_event + 1) {
                Ok(rx) => {
                    self.rx = Some(rx);
                    self.backoff_ns = BACKOFF_MIN_NS;
                    self.change = Some(SourceChange::Live);
                }
                Err(e) => {
                    let name = &self.spec.name;
                    let message = format!("event source {name}: UDP {addr}:{port}: {e}");
                    self.change = Some(SourceChange::Down(Some(Arc::from(message))));
                    self.retry_at_ns = now + self.backoff_ns;
                    self.backoff_ns = (self.backoff_ns * 2).min(BACKOFF_MAX_NS);
                }
            }
            return true;
        };
        let mut progressed = false;
        for _ in 0..PER_TURN {
            let n = match rx {
                Datagrams::Kernel(socket) => kernel_recv(socket, &mut self.buf),
                Datagrams::Stack { handle, .. } => link.recv_datagram(*handle, &mut self.buf),
            };
            let Some(n) = n else { break };
            progressed = true;
            if n > self.spec.max_event {
                self.stats.oversized += 1;
                continue;
            }
            self.stats.events += 1;
            self.last = n;
            on_event(&self.buf[..n]);
        }
        progressed
    }
}
