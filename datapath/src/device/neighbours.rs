//! Pinned neighbours: the receive gate's ARP filter, ahead of smoltcp's neighbour cache.
//!
//! smoltcp learns a MAC from any ARP request or reply aimed at our address whose sender
//! is in our subnet, overwrites an entry on every such packet, and evicts the oldest of
//! its 8 entries when full. So one forged reply redirects our orders, and eight strangers
//! asking for our address empty the cache. This filter decides what smoltcp may learn:
//!
//! - Each next hop (a target in our subnet, or the gateway) is pinned: its MAC is given in
//!   config, or taken from its first ARP reply, and never changes afterwards. ARP that
//!   claims a pinned address with another MAC is dropped and counted, whatever it is
//!   aimed at.
//! - smoltcp sees only ARP replies from pinned neighbours with their pinned MAC. Nothing
//!   else can fill, overwrite or evict its cache.
//! - Requests for our address are answered here, not by smoltcp (which would learn the
//!   asker): from anyone unicast in our subnet, as smoltcp would have.
//!
//! With no pins at all (a test engine that names no next hop), ARP passes unfiltered, as
//! before this filter existed.

use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr,
};
use std::net::Ipv4Addr;

/// An ARP reply on the wire: Ethernet header and an Ethernet/IPv4 ARP packet.
pub const ARP_FRAME_LEN: usize = 14 + 28;

/// A next hop to pin, and its MAC if known in advance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin {
    pub ip: Ipv4Addr,
    /// `None`: learned from the first ARP reply from `ip`, then fixed.
    pub mac: Option<[u8; 6]>,
}

/// What the filter did; plain counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NeighbourStats {
    /// Pins whose MAC was learned from a first ARP reply.
    pub learned: u64,
    /// ARP that would have changed a pinned neighbour's MAC: dropped.
    pub pin_conflicts: u64,
    /// ARP from addresses that are not pinned, kept from smoltcp's cache.
    pub strangers: u64,
    /// Requests for our address answered by the filter.
    pub answered: u64,
}

/// What to do with one received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Give it to smoltcp.
    Deliver,
    /// Drop it and send this ARP reply instead.
    Answer([u8; ARP_FRAME_LEN]),
    /// Drop it.
    Drop,
}

/// The filter: our address, the pinned next hops and what has been seen.
#[derive(Debug, Clone)]
pub struct Neighbours {
    ip: Ipv4Addr,
    mac: EthernetAddress,
    network: u32,
    mask: u32,
    pins: Vec<Pin>,
    stats: NeighbourStats,
}

impl Neighbours {
    /// A filter for our `ip`/`prefix_len` and `mac`, pinning `pins` (duplicates by IP are
    /// merged, a given MAC winning over none).
    pub fn new(ip: Ipv4Addr, prefix_len: u8, mac: [u8; 6], pins: &[Pin]) -> Neighbours {
        let mask = match prefix_len.min(32) {
            0 => 0,
            n => u32::MAX << (32 - u32::from(n)),
        };
        let mut merged: Vec<Pin> = Vec::with_capacity(pins.len());
        for pin in pins.iter().filter(|p| p.ip != ip) {
            match merged.iter_mut().find(|p| p.ip == pin.ip) {
                Some(p) => p.mac = p.mac.or(pin.mac),
                None => merged.push(*pin),
            }
        }
        Neighbours {
            ip,
            mac: EthernetAddress(mac),
            network: u32::from(ip) & mask,
            mask,
            pins: merged,
            stats: NeighbourStats::default(),
        }
    }

    pub fn stats(&self) -> NeighbourStats {
        self.stats
    }

    /// The pins as they stand (a learned MAC filled in).
    pub fn pins(&self) -> &[Pin] {
        &self.pins
    }

    /// Decides on one received frame. Frames other than ARP are delivered: smoltcp only
    /// refreshes an entry's lifetime from them, and only when the MAC matches.
    pub fn admit(&mut self, frame: &[u8]) -> Admit {
        if self.pins.is_empty() {
            return Admit::Deliver;
        }
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return Admit::Deliver;
        };
        if eth.ethertype() != EthernetProtocol::Arp {
            return Admit::Deliver;
        }
        let repr = ArpPacket::new_checked(eth.payload()).and_then(|p| ArpRepr::parse(&p));
        let Ok(ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr: sha,
            source_protocol_addr: spa,
            target_protocol_addr: tpa,
            ..
        }) = repr
        else {
            self.stats.strangers += 1;
            return Admit::Drop;
        };
        let neighbour = self.is_unicast_neighbour(spa);
        let pin = self.pins.iter_mut().find(|p| p.ip == spa);
        if let Some(Pin { mac: Some(mac), .. }) = pin {
            if *mac != sha.0 {
                self.stats.pin_conflicts += 1;
                return Admit::Drop;
            }
        }
        if tpa != self.ip || !sha.is_unicast() || !neighbour {
            // Not aimed at us (smoltcp would ignore it), or from no one we could answer.
            if pin.is_none() {
                self.stats.strangers += 1;
            }
            return Admit::Drop;
        }
        match operation {
            ArpOperation::Request => {
                if pin.is_none() {
                    self.stats.strangers += 1;
                }
                self.stats.answered += 1;
                Admit::Answer(self.reply(sha, spa))
            }
            ArpOperation::Reply => match pin {
                Some(pin) => {
                    if pin.mac.is_none() {
                        pin.mac = Some(sha.0);
                        self.stats.learned += 1;
                    }
                    Admit::Deliver
                }
                None => {
                    self.stats.strangers += 1;
                    Admit::Drop
                }
            },
            ArpOperation::Unknown(_) => {
                if pin.is_none() {
                    self.stats.strangers += 1;
                }
                Admit::Drop
            }
        }
    }

    /// A unicast address in our subnet, other than our own: someone smoltcp would learn
    /// from and answer.
    fn is_unicast_neighbour(&self, ip: Ipv4Addr) -> bool {
        let bits = u32::from(ip);
        let broadcast = self.network | !self.mask;
        bits & self.mask == self.network
            && ip != self.ip
            && !ip.is_unspecified()
            && !ip.is_multicast()
            && !ip.is_broadcast()
            && (self.mask == u32::MAX || bits != broadcast)
    }

    /// Our ARP reply to `mac`/`ip`, as smoltcp would have sent it.
    fn reply(&self, mac: EthernetAddress, ip: Ipv4Addr) -> [u8; ARP_FRAME_LEN] {
        let mut out = [0u8; ARP_FRAME_LEN];
        let mut frame = EthernetFrame::new_unchecked(&mut out[..]);
        EthernetRepr {
            src_addr: self.mac,
            dst_addr: mac,
            ethertype: EthernetProtocol::Arp,
        }
        .emit(&mut frame);
        let mut packet = ArpPacket::new_unchecked(frame.payload_mut());
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr: self.mac,
            source_protocol_addr: self.ip,
            target_hardware_addr: mac,
            target_protocol_addr: ip,
        }
        .emit(&mut packet);
        out
    }
}

/// An Ethernet/IPv4 ARP frame (tests, fuzzing, and the lab's hostile peer).
pub fn arp_frame(
    operation: ArpOperation,
    eth_dst: [u8; 6],
    sha: [u8; 6],
    spa: Ipv4Addr,
    tha: [u8; 6],
    tpa: Ipv4Addr,
) -> [u8; ARP_FRAME_LEN] {
    let mut out = [0u8; ARP_FRAME_LEN];
    let mut frame = EthernetFrame::new_unchecked(&mut out[..]);
    EthernetRepr {
        src_addr: EthernetAddress(sha),
        dst_addr: EthernetAddress(eth_dst),
        ethertype: EthernetProtocol::Arp,
    }
    .emit(&mut frame);
    let mut packet = ArpPacket::new_unchecked(frame.payload_mut());
    ArpRepr::EthernetIpv4 {
        operation,
        source_hardware_addr: EthernetAddress(sha),
        source_protocol_addr: spa,
        target_hardware_addr: EthernetAddress(tha),
        target_protocol_addr: tpa,
    }
    .emit(&mut packet);
    out
}

#[cfg(test)]
mod tests;
