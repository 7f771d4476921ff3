//! The engine one datapath thread drives: the AF_XDP device, the appliance's TCP/IP
//! stack, and the XDP program that steers our flows to them. One [`Engine::poll`] runs
//! completions → RX → smoltcp → TX → kick → Fill refill, and keeps the steering map in
//! step with the connections that exist.

mod prebuilt;
mod udp;

use crate::clock::smoltcp_instant;
use crate::device::{DeviceStats, Neighbours, Pin, QueueRx, XdpDevice};
use crate::ntuple::NtupleRule;
use crate::poll::Work;
use crate::stack::{Stack, StackConfig};
use crate::warming::Pass;
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
    /// The queue of the socket that sends (and receives); its UMEM is shared.
    pub queue: u32,
    /// Further queues to receive on, each with a socket on the same UMEM (RSS can put
    /// a flow on any of them). `queue` itself may be listed; empty: `queue` only.
    pub rx_queues: Vec<u32>,
    /// With `Ntuple`, a NIC rule sends our TCP to `queue` while the engine runs.
    pub steer: quickdraw_config::Steering,
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
    /// Next hops whose MAC is pinned (see `device::neighbours`); empty pins nothing.
    pub neighbours: Vec<Pin>,
}

impl EngineConfig {
    /// An engine with address `ip/prefix_len` on queue 0 of `interface`, native XDP, no
    /// gateway, the interface's MAC, and room for 16 connections of 64 KiB buffers.
    pub fn new(interface: &str, ip: Ipv4Addr, prefix_len: u8) -> EngineConfig {
        EngineConfig {
            interface: interface.into(),
            queue: 0,
            rx_queues: Vec::new(),
            steer: quickdraw_config::Steering::Rss,
            xdp_mode: AttachMode::Native,
            ip,
            prefix_len,
            gateway: None,
            mac: None,
            xsk: XskConfig::default(),
            sockets: 16,
            socket_buffer: 64 * 1024,
            neighbours: Vec::new(),
        }
    }
}

/// A connection the engine opened: its stack slot and its steered flow.
#[derive(Debug, Clone, Copy)]
struct Steered {
    flow: Flow,
    /// Closing was asked for (at this time, ns); the flow is unsteered once the socket
    /// is fully closed, or [`CLOSE_LINGER_NS`] later whatever the peer does.
    closing: Option<u64>,
}

/// How long a closing connection (FIN-WAIT, CLOSING, LAST-ACK, TIME-WAIT) may hold its
/// slot and its steering entry: a peer that vanished must not keep them forever.
const CLOSE_LINGER_NS: u64 = 3_000_000_000;

/// The lowest retransmission timeout of our connections (smoltcp's default is RFC 6298's
/// one second: one lost frame would cost a million round trips of a LAN). smoltcp adds
/// max(5 ms, 4·RTTVAR) to SRTT, so a path measured slower gets a longer one.
const RTO_MIN: smoltcp::time::Duration = smoltcp::time::Duration::from_millis(5);
/// The longest an egress pass is skipped while nothing seems due: a bound on what a
/// change the engine did not see (smoltcp's own state moving) can wait.
const EGRESS_IDLE_MAX_NS: u64 = 100_000;

/// Identifies a connection of this engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(pub usize);

/// The running datapath of one queue.
#[derive(Debug)]
pub struct Engine {
    device: XdpDevice,
    stack: Stack,
    steer: Steer,
    conns: Vec<Option<Steered>>,
    ip: Ipv4Addr,
    /// The interface's index (for the kernel's memberships of feeds' groups).
    ifindex: u32,
    kick_errors_seen: u64,
    /// Stage 3: each connection's order frame, built ahead (see [`prebuilt`]).
    prebuilt: Vec<Option<prebuilt::Prebuilt>>,
    /// Something was queued on a socket since the last egress poll: the fire path must
    /// let smoltcp emit it. A fire that only pushed built frames skips smoltcp entirely.
    egress_pending: bool,
    /// A built frame was pushed whose octets smoltcp has not taken as sent yet
    /// ([`Engine::settle`]).
    owed: bool,
    /// Settles smoltcp refused (none expected: see [`prebuilt::Settled::Refused`]).
    pub settle_refused: u64,
    /// Built frames fired on the check made when they were last refreshed, the socket
    /// unchanged since (smoltcp not asked again; see [`prebuilt::fire`]).
    pub fires_unchanged: u64,
    /// The clock of the last turn (for work done between turns).
    now_ns: u64,
    /// The clock when a poll last found frames waiting on a Rx ring (the receive
    /// floor's end: see [`Engine::rx_seen_ns`]).
    rx_seen_ns: u64,
    /// Whether this turn's receive half changed a socket (reaping looks at it).
    received_changes: bool,
    /// Whether this turn's receive half took frames: the stack may owe ACKs.
    received: bool,
    /// A socket was changed through the API since the last egress pass (connect,
    /// close, a read, a delegated send, `tcp()`): the next `finish` runs one.
    egress_due: bool,
    /// When smoltcp said it next needs an egress pass (its timers), as of the last one.
    egress_at_ns: u64,
    /// When the last egress pass ran.
    egressed_ns: u64,
    /// When closed connections were last reaped.
    reaped_at: u64,
    /// The raw frame (the bench's floor), built ahead: its frame and length.
    raw: Option<(crate::device::FrameHandle, usize)>,
    /// The ntuple rule of `steer = "ntuple"`, deleted with the engine.
    _ntuple: Option<NtupleRule>,
    /// With `steer = "ntuple"`: the interface and queue, for the UDP feeds' rules.
    ntuple_at: Option<(String, u32)>,
    /// Those rules, one per bound feed, deleted with the engine.
    ntuple_udp: Vec<NtupleRule>,
    /// The destinations of the UDP feeds bound so far.
    feeds: Vec<SocketAddrV4>,
    /// Whose built frame the next warm frame goes out beside (round robin).
    warm_turn: usize,
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
        let ntuple = match config.steer {
            quickdraw_config::Steering::Ntuple => Some(NtupleRule::install(
                &config.interface,
                config.ip,
                config.queue,
            )?),
            quickdraw_config::Steering::Rss => None,
        };
        let mut steer = Steer::load()?;
        steer.set_appliance_ip(config.ip)?;
        let others: Vec<u32> = config
            .rx_queues
            .iter()
            .copied()
            .filter(|&q| q != config.queue)
            .collect();
        let xsk = Xsk::bind_queues(ifindex, config.queue, &others, &config.xsk).map_err(
            Error::xsk(format!(
                "AF_XDP socket on {} queue {}",
                config.interface, config.queue
            )),
        )?;
        steer.set_xsk(config.queue, xsk.as_fd())?;
        for shared in &xsk.shared {
            steer.set_xsk(shared.queue(), shared.as_fd())?;
        }
        steer.attach(ifindex, config.xdp_mode)?;
        tracing::info!(
            interface = %config.interface, queue = config.queue, rx_queues = ?others,
            mode = xsk.mode().as_str(), ip = %config.ip, "datapath attached"
        );

        let mut device = XdpDevice::new(xsk, mac);
        device.set_neighbours(Neighbours::new(
            config.ip,
            config.prefix_len,
            mac,
            &config.neighbours,
        ));
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
            ifindex,
            kick_errors_seen: 0,
            prebuilt: (0..config.sockets).map(|_| None).collect(),
            egress_pending: false,
            owed: false,
            settle_refused: 0,
            fires_unchanged: 0,
            now_ns,
            rx_seen_ns: 0,
            received_changes: false,
            received: false,
            egress_due: true,
            egress_at_ns: 0,
            egressed_ns: now_ns,
            reaped_at: now_ns,
            raw: None,
            ntuple_at: ntuple
                .as_ref()
                .map(|_| (config.interface.clone(), config.queue)),
            _ntuple: ntuple,
            ntuple_udp: Vec::new(),
            feeds: Vec::new(),
            warm_turn: 0,
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
        self.conns[slot] = Some(Steered {
            flow,
            closing: None,
        });
        self.stack.tcp(slot).set_rto_min(RTO_MIN);
        self.egress_due = true;
        Ok(ConnId(slot))
    }

    /// The connections open now (by slot), established or not.
    pub fn open_conns(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.conns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_some_and(|c| c.closing.is_none()))
            .map(|(i, _)| ConnId(i))
    }

    /// Our MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.device.mac()
    }

    /// The TCP socket of a connection, to change: the turn's end runs smoltcp's
    /// egress after it.
    pub fn tcp(&mut self, id: ConnId) -> &mut tcp::Socket<'static> {
        self.settle();
        self.egress_due = true;
        self.stack.tcp(id.0)
    }

    /// The TCP socket of a connection, to look at.
    pub fn tcp_ref(&self, id: ConnId) -> &tcp::Socket<'static> {
        self.stack.tcp_ref(id.0)
    }

    /// Reads received bytes of connection `id` into `buf`.
    pub fn recv(&mut self, id: ConnId, buf: &mut [u8]) -> usize {
        self.settle();
        let n = self.stack.tcp(id.0).recv_slice(buf).unwrap_or(0);
        // The window opened: smoltcp may want to say so.
        self.egress_due |= n > 0;
        n
    }

    /// Starts a clean close (FIN). The flow stays steered until the socket is closed, so
    /// the peer's FIN and ACKs still reach us.
    pub fn close(&mut self, id: ConnId) {
        self.settle();
        if let Some(conn) = self.conns[id.0].as_mut() {
            conn.closing = Some(self.now_ns);
            self.stack.tcp(id.0).close();
            self.egress_due = true;
        }
        if let Some(p) = self.prebuilt[id.0].take() {
            self.device.release(p.frame());
        }
    }

    /// Whether connection `id` is fully gone (closed and unsteered).
    pub fn is_released(&self, id: ConnId) -> bool {
        self.conns[id.0].is_none()
    }

    /// The fire path: smoltcp emits what the sockets have queued (egress only, no receive
    /// processing ahead of it), then one kick. With `profile`, returns the clock between
    /// the two (0 otherwise): step profiling for the bench, off in production.
    #[inline(never)] // code warming touches this very body (warming/code.rs)
    pub fn transmit(&mut self, now_ns: u64, profile: bool) -> u64 {
        if std::mem::take(&mut self.egress_pending) {
            // smoltcp's pass must see every delegated send accounted for.
            self.settle();
            self.stack
                .poll_egress(smoltcp_instant(now_ns), &mut self.device);
            // One pass sends one segment per socket: the turn's end sends the rest.
            self.egress_due = true;
        }
        let pushed = if profile {
            crate::clock::monotonic_ns()
        } else {
            0
        };
        let _ = self.device.kick_if_needed();
        self.settle();
        pushed
    }

    /// smoltcp takes as sent the octets of every built frame pushed since the last
    /// settle (see `engine/prebuilt.rs` for why this may follow the kick). Runs before
    /// anything else can touch those sockets: at the end of a fire's transmit, and
    /// first in every receive and egress pass. A refusal, which the order of work rules
    /// out, aborts the connection rather than let it reuse the sequence numbers.
    fn settle(&mut self) {
        if !std::mem::take(&mut self.owed) {
            return;
        }
        for slot in 0..self.prebuilt.len() {
            if self.prebuilt[slot].is_none() {
                continue;
            }
            let socket = self.stack.tcp(slot);
            let settled = prebuilt::settle(&mut self.prebuilt[slot], &self.device, socket);
            if settled == prebuilt::Settled::Refused {
                debug_assert!(false, "smoltcp refused a delegated send it had prepared");
                self.settle_refused += 1;
                socket.abort();
                self.egress_due = true;
            }
        }
    }

    /// Queues bytes on a connection for smoltcp to send.
    pub fn send(&mut self, id: ConnId, bytes: &[u8]) -> usize {
        self.settle();
        let n = self.stack.tcp(id.0).send_slice(bytes).unwrap_or(0);
        self.egress_pending |= n > 0;
        n
    }

    /// Stage 3: builds connection `id`'s whole frame carrying `record` (named `tag` by
    /// the caller, non-zero) into a reserved transmit frame, or brings its ACK and window
    /// up to date. False when it cannot now (the fire then goes through smoltcp).
    pub fn prepare(&mut self, id: ConnId, tag: u64, record: &[u8], now_ns: u64) -> bool {
        self.settle();
        prebuilt::prepare(
            &mut self.prebuilt[id.0],
            &mut self.device,
            &self.stack.iface,
            self.stack.tcp_ref(id.0),
            self.stack.version(id.0),
            tag,
            record,
            smoltcp_instant(now_ns),
        )
    }

    /// The fire of a prepared order: patch, push (the kick, then smoltcp's accounting,
    /// follow in [`Engine::transmit`]). False when the built frame does not match (nothing sent:
    /// the caller sends through smoltcp instead). A rehearsal pushes nothing and
    /// says whether the fire would have sent the frame.
    #[inline(never)] // code warming touches this very body (warming/code.rs)
    pub fn send_prepared(
        &mut self,
        id: ConnId,
        tag: u64,
        record: &[u8],
        now_ns: u64,
        pass: Pass,
    ) -> bool {
        let stack = &self.stack;
        let fired = prebuilt::fire(
            &mut self.prebuilt[id.0],
            &mut self.device,
            || stack.tcp_ref(id.0),
            stack.version(id.0),
            tag,
            record,
            smoltcp_instant(now_ns),
            pass,
        );
        if pass == Pass::Rehearsal {
            return fired.is_ok();
        }
        self.fires_unchanged += u64::from(fired == Ok(prebuilt::Checked::Before));
        let fired = fired.is_ok();
        // The socket times the octets as sent once settled: the next pass learns its timer.
        self.owed |= fired;
        self.egress_due |= fired;
        fired
    }

    /// Bytes queued on connection `id` and not yet acknowledged (or not yet sent).
    pub fn unacked(&mut self, id: ConnId) -> usize {
        self.settle();
        self.stack.tcp(id.0).send_queue()
    }

    /// A keep-alive probe on connection `id` at the next egress pass, where all that was
    /// sent is acknowledged (smoltcp patch 5, `send_keep_alive_now`). False if not now.
    pub fn probe_tail(&mut self, id: ConnId) -> bool {
        self.settle();
        let probed = self.stack.tcp(id.0).send_keep_alive_now();
        self.egress_pending |= probed;
        probed
    }

    /// Whether the server sent past what arrived in order on connection `id` (a lost or
    /// late segment of an answer; see the smoltcp patch's `has_receive_gap`).
    pub fn receive_gap(&self, id: ConnId) -> bool {
        self.stack.tcp_ref(id.0).has_receive_gap()
    }

    /// Resends connection `id`'s unacknowledged bytes now, identical (same sequence
    /// numbers), ahead of smoltcp's timer. False when nothing was in flight.
    pub fn retransmit(&mut self, id: ConnId) -> bool {
        self.settle();
        let again = self.stack.tcp(id.0).retransmit_now();
        self.egress_pending |= again;
        again
    }

    /// Send warming for an armed connection: its frame is built or refreshed (ACK and
    /// window), and the record is written where the fire will copy it — the free space
    /// of the socket's send buffer (offered by smoltcp's `send`, which enqueues nothing
    /// when we take 0 bytes) — so the fire finds those lines, the socket, the frame and
    /// its TLB entry in cache. Nothing is queued or sent. Where no frame can be built,
    /// the next Tx frame is warmed for smoltcp's send instead. Returns 1 when the built
    /// frame was refreshed, else the checksum `warm_tx` computed: the caller keeps it
    /// (`black_box`) so the work is not optimised away.
    pub fn warm(&mut self, id: ConnId, tag: u64, record: &[u8], now_ns: u64) -> u16 {
        self.settle();
        let _ = self.stack.tcp(id.0).send(|free| {
            let n = free.len().min(record.len());
            free[..n].copy_from_slice(&record[..n]);
            (0, ())
        });
        if self.prepare(id, tag, record, now_ns) {
            if let Some(p) = &self.prebuilt[id.0] {
                self.device.warm_reserved(p.frame(), p.len());
            }
            return 1;
        }
        self.device.warm_tx(record)
    }

    /// Code warming of the engine's part of the fire path: the built frame's send, the
    /// kick, and smoltcp's delegated-send accounting.
    pub fn warm_code(&self) {
        use crate::warming::touch_code;
        touch_code(Engine::send_prepared as *const (), 1024);
        touch_code(Engine::transmit as *const (), 512);
        touch_code(tcp::Socket::delegated_send_complete as *const (), 512);
        touch_code(tcp::Socket::delegated_send_prepare as *const (), 512);
        self.device.warm_code();
    }

    /// Pushes a self-addressed warm frame and kicks (see [`XdpDevice::send_warm_frame`]).
    /// The frame is as long as the longest frame built for an armed order (or the raw
    /// floor frame), so the kernel's path for that size is the one kept warm. It goes out
    /// from beside one of those built frames, in turn
    /// ([`XdpDevice::send_warm_frame_beside`]), so the pages the fire's frame lies on stay
    /// warm for the kernel too; from its own frame when there is none.
    pub fn warm_wire(&mut self) -> bool {
        let (prebuilt, raw) = (&self.prebuilt, self.raw.filter(|&(_, len)| len > 0));
        let built = || {
            let orders = prebuilt.iter().flatten().map(|p| (p.frame(), p.len()));
            orders.chain(raw)
        };
        let len = built().map(|(_, len)| len).max().unwrap_or(0);
        let count = built().count();
        if count > 0 {
            self.warm_turn = self.warm_turn.wrapping_add(1);
            if let Some((frame, _)) = built().nth(self.warm_turn % count) {
                if self.device.send_warm_frame_beside(frame, len) {
                    return true;
                }
            }
        }
        self.device.send_warm_frame(len)
    }

    /// Builds a complete frame into the transmit frame set aside for raw frames (the
    /// floor), as an order's frame is built at arm time. False if it does not fit or no
    /// frame is free.
    pub fn prepare_raw(&mut self, frame: &[u8]) -> bool {
        if frame.len() > self.device.mtu() {
            return false;
        }
        let handle = match self.raw {
            Some((h, _)) => h,
            None => match self.device.reserve() {
                Some(h) => h,
                None => return false,
            },
        };
        self.raw = Some((handle, 0));
        let Some(buf) = self.device.reserved_mut(handle, frame.len()) else {
            return false;
        };
        buf.copy_from_slice(frame);
        self.raw = Some((handle, frame.len()));
        true
    }

    /// Send warming for the prepared raw frame: its bytes and its send's code pulled into
    /// the cache, as [`Engine::warm`] and [`Engine::warm_code`] do for an order's.
    pub fn warm_raw(&self) {
        if let Some((handle, len)) = self.raw.filter(|&(_, len)| len > 0) {
            self.device.warm_reserved(handle, len);
            crate::warming::touch_code(Engine::send_prepared_raw as *const (), 256);
            self.device.warm_code();
        }
    }

    /// Pushes the prepared raw frame as it stands and kicks: the floor of the AF_XDP
    /// path, with exactly the fire-time work of a built order frame but the TCP fix-up.
    /// Rehearsed as an order's fire is: up to the push.
    #[inline(never)] // code warming touches this very body (warming/code.rs)
    pub fn send_prepared_raw(&mut self, pass: Pass) -> bool {
        let Some((handle, len)) = self.raw.filter(|&(_, len)| len > 0) else {
            return false;
        };
        if pass == Pass::Rehearsal {
            return self.device.tx_free();
        }
        self.device.push_reserved(handle, len) && self.device.kick_if_needed().is_ok()
    }

    pub fn bind_mode(&self) -> BindMode {
        self.device.xsk().mode()
    }

    /// The clock when a poll last found received frames waiting in a Rx ring, 0 before
    /// the first: what `Stamps::rx_ns` of an event fire is on this link.
    pub fn rx_seen_ns(&self) -> u64 {
        self.rx_seen_ns
    }

    pub fn device_stats(&self) -> DeviceStats {
        self.device.stats()
    }

    /// Receive counts per queue (the sending socket's queue first).
    pub fn queues(&self) -> &[QueueRx] {
        self.device.queues()
    }

    /// Flows in the steering map now: one per connection the engine holds (a walk of the
    /// map, off the hot path).
    pub fn steered_flows(&self) -> usize {
        self.steer.flow_count()
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
    fn reap_closed(&mut self, now_ns: u64) {
        for slot in 0..self.conns.len() {
            let Some(conn) = self.conns[slot] else {
                continue;
            };
            let state = self.stack.tcp_ref(slot).state();
            let lingered = conn
                .closing
                .is_some_and(|since| now_ns.saturating_sub(since) > CLOSE_LINGER_NS);
            let done = state == tcp::State::Closed
                || (conn.closing.is_some() && state == tcp::State::TimeWait)
                || lingered;
            if done {
                if let Some(p) = self.prebuilt[slot].take() {
                    self.device.release(p.frame());
                }
                if let Err(e) = self.steer.remove_flow(conn.flow) {
                    tracing::warn!(error = %e, "removing a closed flow from the steering map");
                }
                self.stack.release(slot);
                self.conns[slot] = None;
            }
        }
    }
}

impl Engine {
    /// One whole turn: [`poll_receive`](Self::poll_receive) then
    /// [`finish`](Self::finish).
    pub fn poll(&mut self, now_ns: u64) -> Work {
        let received = self.poll_receive(now_ns);
        let finished = self.finish(now_ns);
        if received == Work::Busy {
            Work::Busy
        } else {
            finished
        }
    }

    /// The receive half of a turn: completions, then every waiting frame through
    /// smoltcp's receive side. What the stack owes in return (ACKs, retransmissions,
    /// data written during the turn) waits for [`finish`](Self::finish), so that an
    /// event in these frames is matched and its order sent before any of it.
    pub fn poll_receive(&mut self, now_ns: u64) -> Work {
        self.settle();
        self.now_ns = now_ns;
        // One clock read, only in a turn that has frames to take: when an event's frame
        // was first seen in our ring, before the stack, TLS and the parser touch it.
        if self.device.rx_waiting() {
            self.rx_seen_ns = crate::clock::monotonic_ns();
            self.received = true;
        }
        self.device.reap_completions();
        let changed = self
            .stack
            .poll_ingress(smoltcp_instant(now_ns), &mut self.device);
        self.received_changes |= changed;
        if changed {
            Work::Busy
        } else {
            Work::Idle
        }
    }

    /// The send half of a turn: smoltcp transmits what is due, the Rx ring is released
    /// and Fill refilled, one kick; and the steering map kept in step with the
    /// connections that exist.
    ///
    /// smoltcp's egress looks at every socket; it runs only when something may be due:
    /// frames came in, a socket was changed, one of smoltcp's timers is up, or
    /// `EGRESS_IDLE_MAX_NS` passed. Idle turns stay short, which is what a deadline's
    /// accuracy and an event's wait for the next look at the ring are made of.
    pub fn finish(&mut self, now_ns: u64) -> Work {
        self.settle();
        let asked = std::mem::take(&mut self.egress_pending)
            | std::mem::take(&mut self.egress_due)
            | std::mem::take(&mut self.received);
        let due = asked
            || now_ns >= self.egress_at_ns
            || now_ns.saturating_sub(self.egressed_ns) >= EGRESS_IDLE_MAX_NS;
        let mut changed = std::mem::take(&mut self.received_changes);
        if due {
            let at = smoltcp_instant(now_ns);
            changed |= self.stack.poll_egress_all(at, &mut self.device);
            self.egress_at_ns = self.stack.next_poll_ns(at);
            self.egressed_ns = now_ns;
            // A pass only time called for: the built frames' checks are made current
            // again (each a look at its socket), so a fire after a quiet wait skips it.
            // Passes that frames or changes called for are left alone: under traffic
            // every turn has one, and the fires then ask smoltcp themselves.
            if !asked {
                for slot in 0..self.prebuilt.len() {
                    if self.prebuilt[slot].is_some() {
                        prebuilt::refresh(
                            &mut self.prebuilt[slot],
                            &mut self.device,
                            self.stack.tcp_ref(slot),
                            self.stack.version(slot),
                        );
                    }
                }
            }
        }
        // A failed kick leaves the descriptors in the ring for the next one; it is
        // counted by the device, and logged here once per new failure, not per turn.
        if self.device.flush().is_err() && self.device.stats().kick_errors > self.kick_errors_seen {
            self.kick_errors_seen = self.device.stats().kick_errors;
            tracing::warn!(errors = self.kick_errors_seen, "AF_XDP kick failed");
        }
        // Closing connections are also looked at now and then, not only on a change: one
        // whose peer vanished changes nothing, and must still give its slot back.
        if changed || (now_ns / CLOSE_LINGER_NS) != (self.reaped_at / CLOSE_LINGER_NS) {
            self.reaped_at = now_ns;
            self.reap_closed(now_ns);
            // Reaping may abort a socket (a RST to send).
            self.egress_due = true;
        }
        if changed {
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
