//! Fuzz body: frames through the receive gate (the checks, then the pinned-neighbour
//! filter) into a smoltcp interface with a connection opening to a pinned target.
//!
//! Whatever arrives, nothing panics, and every frame smoltcp sends to the target goes to
//! the pinned MAC once there is one: no frame can redirect the connection.

use super::Input;
use crate::device::neighbours::arp_frame;
use crate::device::{classify, frame, Admit, FrameKind, Neighbours, Pin};
use smoltcp::iface::{Config, Interface, SocketSet, SocketStorage};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{
    ArpOperation, EthernetAddress, EthernetFrame, EthernetProtocol, HardwareAddress, IpCidr,
    Ipv4Cidr, Ipv4Packet,
};
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};

const OURS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
const OUR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 10];
const TARGET: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const TARGET_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const OUR_PORT: u16 = 50_000;
/// Frames per input.
const MAX_FRAMES: usize = 64;

/// Nothing to build once per process yet; kept so every target has the same shape.
#[derive(Debug, Default)]
pub struct GateRig;

/// An in-memory Ethernet device: frames put in `rx` are received, what smoltcp sends is
/// kept in `tx` for inspection. Also the stack's own unit tests' wire.
#[derive(Debug, Default)]
pub(crate) struct Wire {
    pub(crate) rx: VecDeque<Vec<u8>>,
    pub(crate) tx: Vec<Vec<u8>>,
}

#[derive(Debug)]
pub(crate) struct Rx(Vec<u8>);
#[derive(Debug)]
pub(crate) struct Tx<'a>(&'a mut Vec<Vec<u8>>);

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0; len];
        let r = f(&mut buf);
        self.0.push(buf);
        r
    }
}

impl phy::Device for Wire {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(Rx, Tx<'_>)> {
        let frame = self.rx.pop_front()?;
        Some((Rx(frame), Tx(&mut self.tx)))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

/// One frame, built from the input: raw bytes, or a crafted ARP or TCP frame with
/// fuzzer-chosen fields (so the fuzzer reaches the interesting cases at once).
fn next_frame(input: &mut Input<'_>) -> Vec<u8> {
    let op = input.u8();
    let mac = |input: &mut Input<'_>| {
        let b = input.u8();
        if b & 0x80 != 0 {
            TARGET_MAC
        } else {
            [2, 0, 0, 0, 1, b]
        }
    };
    let ip = |input: &mut Input<'_>| {
        let b = input.u8();
        match b % 4 {
            0 => TARGET,
            1 => OURS,
            _ => Ipv4Addr::new(198, 18, 0, input.u8()),
        }
    };
    match op % 4 {
        0 => {
            let len = usize::from(input.u16()) % 1600;
            input.take(len).to_vec()
        }
        1 | 2 => {
            let operation = if op % 4 == 1 {
                ArpOperation::Reply
            } else {
                ArpOperation::Request
            };
            let sha = mac(input);
            let spa = ip(input);
            let tpa = ip(input);
            arp_frame(operation, OUR_MAC, sha, spa, [0; 6], tpa).to_vec()
        }
        _ => {
            let src = mac(input);
            let seq = u32::from(input.u16()) << 8;
            let len = usize::from(input.u8());
            let mut f = frame::tcp_frame(
                src,
                OUR_MAC,
                SocketAddrV4::new(TARGET, 443),
                SocketAddrV4::new(OURS, OUR_PORT),
                seq,
                input.take(len),
            );
            // Now and then, a TCP flag byte of the fuzzer's choosing (checksum left stale
            // half the time: the gate must catch it).
            let flags = input.u8();
            if flags & 1 == 1 {
                f[14 + 20 + 13] = flags;
            }
            f
        }
    }
}

/// Input: a byte choosing whether the target's MAC is configured or learned, then frames
/// with a time step before each.
pub fn rx_gate(_rig: &GateRig, data: &[u8]) {
    let mut input = Input::new(data);
    let configured = input.u8() & 1 == 1;
    let pin = Pin {
        ip: TARGET,
        mac: configured.then_some(TARGET_MAC),
    };
    let mut neighbours = Neighbours::new(OURS, 24, OUR_MAC, &[pin]);
    let mut wire = Wire::default();
    let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(OUR_MAC)));
    config.random_seed = 1;
    let mut now = Instant::from_millis(1_000);
    let mut iface = Interface::new(config, &mut wire, now);
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::Ipv4(Ipv4Cidr::new(OURS, 24)))
            .expect("one address");
    });
    let mut storage = [SocketStorage::EMPTY];
    let mut sockets = SocketSet::new(&mut storage[..]);
    let socket = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 4096]),
        tcp::SocketBuffer::new(vec![0; 4096]),
    );
    let handle = sockets.add(socket);
    sockets
        .get_mut::<tcp::Socket>(handle)
        .connect(iface.context(), (TARGET, 443), OUR_PORT)
        .expect("connect");
    iface.poll(now, &mut wire, &mut sockets);

    for _ in 0..MAX_FRAMES {
        if input.is_empty() {
            break;
        }
        now += smoltcp::time::Duration::from_millis(u64::from(input.u8()) * 16);
        let frame = next_frame(&mut input);
        let admit = match classify(&frame) {
            FrameKind::Deliver => neighbours.admit(&frame),
            _ => Admit::Drop,
        };
        match admit {
            Admit::Deliver => wire.rx.push_back(frame),
            Admit::Answer(reply) => check_answer(&reply),
            Admit::Drop => {}
        }
        let sent_before = wire.tx.len();
        iface.poll(now, &mut wire, &mut sockets);
        let pinned = neighbours.pins()[0].mac;
        for sent in &wire.tx[sent_before..] {
            check_sent(sent, pinned);
        }
        if sockets.get::<tcp::Socket>(handle).state() == tcp::State::Closed {
            // A reset: open again, as the datapath would.
            let _ = sockets.get_mut::<tcp::Socket>(handle).connect(
                iface.context(),
                (TARGET, 443),
                OUR_PORT,
            );
        }
    }
    if configured {
        assert_eq!(neighbours.pins()[0].mac, Some(TARGET_MAC));
    }
}

/// Our ARP replies come from our address and MAC.
fn check_answer(reply: &[u8]) {
    let eth = EthernetFrame::new_checked(reply).expect("our reply parses");
    assert_eq!(eth.src_addr(), EthernetAddress(OUR_MAC));
    assert_eq!(eth.ethertype(), EthernetProtocol::Arp);
}

/// A frame smoltcp sent to the target goes to the pinned MAC.
fn check_sent(sent: &[u8], pinned: Option<[u8; 6]>) {
    let eth = EthernetFrame::new_checked(sent).expect("smoltcp frames parse");
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).expect("smoltcp packets parse");
    if ip.dst_addr() == TARGET {
        let pinned = pinned.expect("smoltcp sent to the target before any MAC was pinned");
        assert_eq!(eth.dst_addr(), EthernetAddress(pinned), "redirected");
    }
}
