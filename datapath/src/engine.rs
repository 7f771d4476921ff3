//! The engine one datapath thread drives: the AF_XDP device, the appliance's TCP/IP
//! stack, and the XDP program that steers our flows to them. One [`Engine::turn`] runs
//! completions → RX → smoltcp → TX → kick → Fill refill, and keeps the steering map in
//! step with the connections that exist.

mod udp;

use crate::clock::smoltcp_instant;
use crate::device::{DeviceStats, XdpDevice};
use crate::poll::{Turn, Work};
use crate::stack::{Stack, StackConfig};
use crate::xsk::{self, BindMode, Xsk, XskConfig};
use crate::Error;
use quickdraw_bpf::{AttachMode, Counters, Flow, Steer};
use smoltcp::socket::tcp;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsFd;

/// Where the engine sits and how big it is.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub interface: String,
    pub queue: u32,
    pub xdp_mode: AttachMode,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
    /// Our MAC; `None` takes the interface's (sharing it with the host is fine: the IP
    /// address is what must differ).
    pub mac: Option<[u8; 6]>,
    pub xsk: XskConfig,
    pub sockets: usize,
    pub socket_buffer: usize,
}

impl EngineConfig {
    /// The lab's appliance: 198.18.0.10 on `qd0`.
    pub fn lab() -> EngineConfig {
        EngineConfig {
            interface: "qd0".into(),
            queue: 0,
            xdp_mode: AttachMode::Native,
            ip: Ipv4Addr::new(198, 18, 0, 10),
            prefix_len: 24,
            gateway: None,
            mac: None,
            xsk: XskConfig::default(),
            sockets: 16,
            socket_buffer: 64 * 1024,
        }
    }
}

/// A connection the engine opened: its stack slot and its steered flow.
#[derive(Debug, Clone, Copy)]
struct Conn {
    flow: Flow,
    /// Closing was asked for; the flow is unsteered once the socket is fully closed.
    closing: bool,
}

/// Identifies a connection of this engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(pub usize);

/// The running datapath of one queue.
#[derive(Debug)]
pub struct Engine {
    device: XdpDevice,
    stack: Stack,
    steer: Steer,
    conns: Vec<Option<Conn>>,
    ip: Ipv4Addr,
    kick_errors_seen: u64,
}

impl Engine {
    /// Loads and attaches the XDP program, binds the AF_XDP socket and puts it in the
    /// program's XSKMAP slot for our queue, and brings the stack up. The program is
    /// attached through a BPF link, so it goes away with this process, even on a crash.
    pub fn start(config: &EngineConfig, now_ns: u64) -> Result<Engine, Error> {
        let ifindex = xsk::if_index(&config.interface)
            .map_err(Error::xsk(format!("interface {}", config.interface)))?;
        let mac = match config.mac {
            Some(mac) => mac,
            None => interface_mac(&config.interface)?,
        };
        let mut steer = Steer::load()?;
        steer.set_appliance_ip(config.ip)?;
        let xsk = Xsk::bind(ifindex, config.queue, &config.xsk).map_err(Error::xsk(format!(
            "AF_XDP socket on {} queue {}",
            config.interface, config.queue
        )))?;
        steer.set_xsk(config.queue, xsk.as_fd())?;
        steer.attach(ifindex, config.xdp_mode)?;
        tracing::info!(
            interface = %config.interface, queue = config.queue, mode = xsk.mode().as_str(),
            ip = %config.ip, "datapath attached"
        );

        let mut device = XdpDevice::new(xsk);
        let stack_config = StackConfig {
            mac,
            ip: config.ip,
            prefix_len: config.prefix_len,
            gateway: config.gateway,
            sockets: config.sockets,
            rx_buffer: config.socket_buffer,
            tx_buffer: config.socket_buffer,
        };
        let stack = Stack::new(&stack_config, &mut device, smoltcp_instant(now_ns));
        Ok(Engine {
            device,
            stack,
            steer,
            conns: vec![None; config.sockets],
            ip: config.ip,
            kick_errors_seen: 0,
        })
    }

    /// Opens a TCP connection to `remote`. The flow is steered before the SYN is sent, so
    /// the SYN-ACK already comes to us.
    pub fn connect(&mut self, remote: SocketAddrV4) -> Result<ConnId, Error> {
        let (slot, port) = self.stack.connect(remote)?;
        let flow = Flow {
            local: SocketAddrV4::new(self.ip, port),
            remote,
        };
        if let Err(e) = self.steer.add_flow(flow) {
            self.stack.release(slot);
            return Err(e.into());
        }
        self.conns[slot] = Some(Conn {
            flow,
            closing: false,
        });
        Ok(ConnId(slot))
    }

    /// The TCP socket of a connection.
    pub fn tcp(&mut self, id: ConnId) -> &mut tcp::Socket<'static> {
        self.stack.tcp(id.0)
    }

    /// Starts a clean close (FIN). The flow stays steered until the socket is closed, so
    /// the peer's FIN and ACKs still reach us.
    pub fn close(&mut self, id: ConnId) {
        if let Some(conn) = self.conns[id.0].as_mut() {
            conn.closing = true;
            self.stack.tcp(id.0).close();
        }
    }

    /// Whether connection `id` is fully gone (closed and unsteered).
    pub fn is_released(&self, id: ConnId) -> bool {
        self.conns[id.0].is_none()
    }

    /// The fire path: smoltcp emits what the sockets have queued (egress only, no receive
    /// processing ahead of it), then one kick. With `profile`, returns the clock between
    /// the two (0 otherwise): step profiling for the bench, off in production.
    pub fn transmit(&mut self, now_ns: u64, profile: bool) -> u64 {
        self.stack
            .poll_egress(smoltcp_instant(now_ns), &mut self.device);
        let pushed = if profile {
            crate::clock::monotonic_ns()
        } else {
            0
        };
        let _ = self.device.kick_if_needed();
        pushed
    }

    /// Send warming for an armed connection: the record is written where a send would
    /// copy it — the free space of the socket's send buffer (offered by smoltcp's
    /// `send`, which enqueues nothing when we take 0 bytes) and the next Tx frame (see
    /// [`XdpDevice::warm_tx`]) — so the fire finds those lines, the socket and the frame's
    /// TLB entry in cache. Nothing is queued or sent.
    pub fn warm(&mut self, id: ConnId, record: &[u8]) -> u16 {
        let _ = self.stack.tcp(id.0).send(|free| {
            let n = free.len().min(record.len());
            free[..n].copy_from_slice(&record[..n]);
            (0, ())
        });
        self.device.warm_tx(record)
    }

    /// Pushes a complete frame to the Tx ring and kicks: the floor of the AF_XDP path.
    pub fn send_raw(&mut self, frame: &[u8]) -> bool {
        let sent = self.device.send_frame(frame);
        sent && self.device.kick_if_needed().is_ok()
    }

    pub fn bind_mode(&self) -> BindMode {
        self.device.xsk().mode()
    }

    pub fn device_stats(&self) -> DeviceStats {
        self.device.stats()
    }

    pub fn steer_counters(&self) -> Result<Counters, Error> {
        Ok(self.steer.counters()?)
    }

    pub fn xsk_stats(&self) -> Result<xsk::XskStats, Error> {
        self.device
            .xsk()
            .stats()
            .map_err(Error::xsk("reading XDP_STATISTICS"))
    }

    /// Unsteers and frees the slots of connections that have finished closing (or were
    /// reset). Off the hot path: only sockets that are closing are looked at.
    fn reap_closed(&mut self) {
        for slot in 0..self.conns.len() {
            let Some(conn) = self.conns[slot] else {
                continue;
            };
            let state = self.stack.tcp(slot).state();
            let done =
                state == tcp::State::Closed || (conn.closing && state == tcp::State::TimeWait);
            if done {
                if let Err(e) = self.steer.remove_flow(conn.flow) {
                    tracing::warn!(error = %e, "removing a closed flow from the steering map");
                }
                self.stack.release(slot);
                self.conns[slot] = None;
            }
        }
    }
}

impl Turn for Engine {
    fn turn(&mut self, now_ns: u64) -> Work {
        self.device.reap_completions();
        let changed = self.stack.poll(smoltcp_instant(now_ns), &mut self.device);
        // A failed kick leaves the descriptors in the ring for the next one; it is
        // counted by the device, and logged here once per new failure, not per turn.
        if self.device.flush().is_err() && self.device.stats().kick_errors > self.kick_errors_seen {
            self.kick_errors_seen = self.device.stats().kick_errors;
            tracing::warn!(errors = self.kick_errors_seen, "AF_XDP kick failed");
        }
        if changed {
            self.reap_closed();
            Work::Busy
        } else {
            Work::Idle
        }
    }
}

/// The interface's MAC address, from sysfs.
fn interface_mac(name: &str) -> Result<[u8; 6], Error> {
    let bad = |reason: String| Error::Interface {
        name: name.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/address"))
        .map_err(|e| bad(e.to_string()))?;
    let mut mac = [0u8; 6];
    let mut parts = text.trim().split(':');
    for byte in &mut mac {
        let part = parts
            .next()
            .ok_or_else(|| bad(format!("short MAC {text:?}")))?;
        *byte = u8::from_str_radix(part, 16).map_err(|_| bad(format!("bad MAC {text:?}")))?;
    }
    Ok(mac)
}
