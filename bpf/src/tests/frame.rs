//! Hand-built frames for test runs: Ethernet, 802.1Q/802.1ad, IPv4, IPv6,
//! TCP, UDP and ARP, with lengths and IPv4 checksums filled in.

use std::net::Ipv4Addr;

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;

pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

pub const ARP_REQUEST: u16 = 1;
pub const ARP_REPLY: u16 = 2;

const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// An Ethernet II frame (no FCS).
pub fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(14 + payload.len());
    frame.extend_from_slice(&DST_MAC);
    frame.extend_from_slice(&SRC_MAC);
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// An Ethernet frame with one VLAN tag (`tpid` 802.1Q or 802.1ad).
pub fn vlan(tpid: u16, vid: u16, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut inner = Vec::with_capacity(4 + payload.len());
    inner.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    inner.extend_from_slice(&ethertype.to_be_bytes());
    inner.extend_from_slice(payload);
    ethernet(tpid, &inner)
}

/// An IPv4 header; the fields that tests break on purpose are overridable.
#[derive(Debug, Clone)]
pub struct Ipv4 {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    /// Options, padded with zeros (end of list) to a multiple of 4 bytes.
    pub options: Vec<u8>,
    /// Flags and fragment offset, host order (0x2000 = MF, low 13 bits offset).
    pub frag_off: u16,
    pub version: u8,
    /// Overrides the header length field (in 32-bit words).
    pub ihl: Option<u8>,
    /// Overrides the total length field.
    pub tot_len: Option<u16>,
}

impl Ipv4 {
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8) -> Ipv4 {
        Ipv4 {
            src,
            dst,
            protocol,
            options: Vec::new(),
            frag_off: 0x4000, // DF
            version: 4,
            ihl: None,
            tot_len: None,
        }
    }

    /// The header followed by `payload`.
    pub fn packet(&self, payload: &[u8]) -> Vec<u8> {
        let mut options = self.options.clone();
        options.resize(options.len().div_ceil(4) * 4, 0);
        let header_len = 20 + options.len();
        let ihl = self.ihl.unwrap_or((header_len / 4) as u8);
        let tot_len = self.tot_len.unwrap_or((header_len + payload.len()) as u16);
        let mut p = Vec::with_capacity(header_len + payload.len());
        p.push(self.version << 4 | (ihl & 0x0f));
        p.push(0); // DSCP/ECN
        p.extend_from_slice(&tot_len.to_be_bytes());
        p.extend_from_slice(&0x1234u16.to_be_bytes()); // identification
        p.extend_from_slice(&self.frag_off.to_be_bytes());
        p.push(64); // TTL
        p.push(self.protocol);
        p.extend_from_slice(&[0, 0]); // checksum, below
        p.extend_from_slice(&self.src.octets());
        p.extend_from_slice(&self.dst.octets());
        p.extend_from_slice(&options);
        let checksum = internet_checksum(&p);
        p[10..12].copy_from_slice(&checksum.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    /// An Ethernet frame carrying this header and `payload`.
    pub fn frame(&self, payload: &[u8]) -> Vec<u8> {
        ethernet(ETH_P_IP, &self.packet(payload))
    }
}

/// A TCP SYN header of `doff` 32-bit words (5 = no options; larger values
/// are padded with NOP options). Checksum left 0: XDP does not verify it.
pub fn tcp(src_port: u16, dst_port: u16, doff: u8) -> Vec<u8> {
    let mut h = Vec::with_capacity(usize::from(doff.max(5)) * 4);
    h.extend_from_slice(&src_port.to_be_bytes());
    h.extend_from_slice(&dst_port.to_be_bytes());
    h.extend_from_slice(&1u32.to_be_bytes()); // seq
    h.extend_from_slice(&0u32.to_be_bytes()); // ack
    h.push(doff << 4);
    h.push(0x02); // SYN
    h.extend_from_slice(&64240u16.to_be_bytes()); // window
    h.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    h.resize(usize::from(doff.max(5)) * 4, 1); // NOP options
    h
}

/// A TCP segment: header of `doff` 32-bit words (larger than 5: padded with
/// NOP options), sequence and acknowledgement numbers, `flags` (header byte
/// 13), then `payload`. Checksum left 0: nothing here verifies it.
pub fn tcp_segment(
    ports: (u16, u16),
    seq: u32,
    ack: u32,
    flags: u8,
    doff: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut h = tcp(ports.0, ports.1, doff);
    h[4..8].copy_from_slice(&seq.to_be_bytes());
    h[8..12].copy_from_slice(&ack.to_be_bytes());
    h[13] = flags;
    h.extend_from_slice(payload);
    h
}

/// A UDP header and payload (checksum 0: none).
pub fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(8 + payload.len());
    d.extend_from_slice(&src_port.to_be_bytes());
    d.extend_from_slice(&dst_port.to_be_bytes());
    d.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    d
}

/// An Ethernet/IPv4 ARP packet (28 bytes).
pub fn arp(oper: u16, spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    let mut a = Vec::with_capacity(28);
    a.extend_from_slice(&1u16.to_be_bytes()); // htype: Ethernet
    a.extend_from_slice(&ETH_P_IP.to_be_bytes()); // ptype
    a.push(6); // hlen
    a.push(4); // plen
    a.extend_from_slice(&oper.to_be_bytes());
    a.extend_from_slice(&SRC_MAC);
    a.extend_from_slice(&spa.octets());
    a.extend_from_slice(if oper == ARP_REPLY { &DST_MAC } else { &[0; 6] });
    a.extend_from_slice(&tpa.octets());
    a
}

/// An IPv6 header (`next` = next header) followed by `payload`.
pub fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(40 + payload.len());
    p.extend_from_slice(&[0x60, 0, 0, 0]);
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.push(next);
    p.push(64); // hop limit
    p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    p.extend_from_slice(payload);
    p
}

/// RFC 1071 checksum.
fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[test]
fn ipv4_header_checksum_verifies() {
    let h = Ipv4::new(
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
        IPPROTO_TCP,
    )
    .packet(&[]);
    assert_eq!(h.len(), 20);
    assert_eq!(internet_checksum(&h), 0);
}
