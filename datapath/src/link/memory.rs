//! A [`Link`] for tests: each connection is a byte pipe to a simulated server in memory
//! (a real rustls `ServerConnection` and a tiny HTTP/1.1 responder), moved only by
//! [`Link::poll`] on the virtual time the caller passes in. The test keeps a [`Server`]
//! handle to inject faults and to see what the server received.
//!
//! The server answers `GET /healthz` with 204 and `POST /api/order` with 200 and a small
//! JSON body, and records every request with its `Idempotency-Key`.

use super::{Link, LinkError, LinkId, LinkState};
use crate::warming::Pass;
use rustls::{ServerConfig, ServerConnection};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::rc::Rc;
use std::sync::Arc;

/// How the server behaves; tests change it between turns through [`Server::behave`].
#[derive(Debug, Clone)]
pub(crate) struct Behavior {
    /// `connect` itself fails (no route, no slot).
    pub(crate) connect_error: bool,
    /// The server refuses connections: they go from connecting to gone (RST to our SYN).
    pub(crate) refuse: bool,
    /// The server never answers our SYN: connections stay connecting.
    pub(crate) blackhole: bool,
    /// The status orders get.
    pub(crate) order_status: u16,
    /// Orders are answered this long after they arrive (responses keep their order).
    pub(crate) order_delay_ns: u64,
    /// Orders are recorded and never answered.
    pub(crate) drop_orders: bool,
    /// Nothing is answered (a stalled server); requests are still recorded.
    pub(crate) drop_all: bool,
    /// The server closes the connection (FIN) right after reading an order, unanswered.
    pub(crate) close_on_order: bool,
    /// The server completes TLS and closes at once (a draining or overloaded server).
    pub(crate) close_after_handshake: bool,
    /// The server closes connections idle (no request, nothing owed) for this long.
    pub(crate) idle_timeout_ns: Option<u64>,
    /// Most bytes one `send` takes (a full send buffer).
    pub(crate) send_limit: Option<usize>,
    /// Keep-warm answers carry `Connection: close` (a server shedding connections).
    pub(crate) warm_close_header: bool,
    /// The next this many sends are lost on the way (taken, held unacknowledged until
    /// the client retransmits them).
    pub(crate) lose_sends: usize,
    /// Retransmissions are lost too (a blackhole toward the server).
    pub(crate) lose_retransmits: bool,
    /// The answers to the next this many orders are lost on the way back, with the
    /// acknowledgement of the order that rides on them: each arrives
    /// `answer_recovery_ns` after it left (the server's own timer), or as soon as the
    /// client sends a copy of what the server already has (a resend, a tail probe: as
    /// Linux did in the lab). A copy is acknowledged at once, and once the answer is
    /// lost the link then reports the receive gap, as a TCP peer's bare ACK from beyond
    /// the lost answer would show.
    pub(crate) lose_answers: usize,
    pub(crate) answer_recovery_ns: u64,
    /// `GET /events` (an event stream, see `event::sse_source`): answered with this
    /// status and a `text/event-stream` head, chunked or not; the test writes the events
    /// with [`Server::inject_plaintext`].
    pub(crate) events_status: u16,
    pub(crate) events_chunked: bool,
}

impl Default for Behavior {
    fn default() -> Behavior {
        Behavior {
            connect_error: false,
            refuse: false,
            blackhole: false,
            order_status: 200,
            order_delay_ns: 0,
            drop_orders: false,
            drop_all: false,
            close_on_order: false,
            close_after_handshake: false,
            idle_timeout_ns: None,
            send_limit: None,
            warm_close_header: false,
            lose_sends: 0,
            lose_retransmits: false,
            lose_answers: 0,
            answer_recovery_ns: 2_000_000,
            events_status: 200,
            events_chunked: true,
        }
    }
}

/// One HTTP request the server read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// Which server-side connection (counted from 0 in accept order) it came on.
    pub(crate) serial: usize,
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) key: Option<String>,
    pub(crate) body: Vec<u8>,
    pub(crate) at_ns: u64,
}

impl Request {
    pub(crate) fn is_order(&self) -> bool {
        self.method == "POST" && self.path == "/api/order"
    }

    pub(crate) fn is_warm(&self) -> bool {
        self.method == "GET" && self.path == "/healthz"
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PipeState {
    Connecting,
    Open,
    /// The server sent FIN: gone once the client has read what came before it.
    Closing,
    /// Reset, refused or failed: gone now, unread bytes discarded.
    Reset,
}

/// One connection, both ends.
#[derive(Debug)]
struct Pipe {
    serial: usize,
    state: PipeState,
    tls: ServerConnection,
    /// Bytes the client sent that the server has not processed yet.
    to_server: Vec<u8>,
    /// Bytes the server sent that the client has not read yet.
    to_client: VecDeque<u8>,
    /// Plaintext the server received and has not parsed into requests yet.
    plaintext: Vec<u8>,
    /// Answers owed, in request order, each with the time it may leave and whether it
    /// will be lost on the way (see [`Behavior::lose_answers`]).
    owed: VecDeque<(u64, Option<Vec<u8>>, bool)>,
    /// An answer that left and was lost, and when the server resends it by itself;
    /// the answers behind it wait (one byte stream).
    lost_answer: Option<(u64, Vec<u8>)>,
    /// Bytes the server received whose acknowledgement rides on an answer the client has
    /// not got (a resent request's, or a lost one): unacknowledged to the client until
    /// that answer arrives or the client sends a copy of them.
    ack_held: usize,
    /// The server's bare ACK of a copy told the client of a lost answer.
    gap: bool,
    /// Tail probes the client sent.
    probes: usize,
    last_request_ns: u64,
    handshake_seen: bool,
    /// Bytes sent and lost, unacknowledged until retransmitted.
    lost: Vec<u8>,
    /// Retransmissions the client made, and the bytes of each.
    retransmits: Vec<Vec<u8>>,
    /// The "frame" built for a pre-sealed record (`Link::prepare`): its tag and bytes.
    built: Option<(u64, Vec<u8>)>,
}

/// Everything behind the link, shared with the test's [`Server`] handle.
#[derive(Debug)]
struct Net {
    now: u64,
    config: Arc<ServerConfig>,
    behavior: Behavior,
    /// Indexed by `LinkId`; `None` is a free slot.
    slots: Vec<Option<Pipe>>,
    /// Every server-side connection by serial, for logs after the slot is reused.
    log: Vec<PipeLog>,
    requests: Vec<Request>,
    connects: Vec<u64>,
}

/// What a test can still see of a connection after it is gone.
#[derive(Debug, Clone, Default)]
pub(crate) struct PipeLog {
    /// Every `send` the client made, as it made it.
    pub(crate) sends: Vec<Vec<u8>>,
    /// The server's TLS or HTTP error, if it failed the connection.
    pub(crate) error: Option<String>,
    /// The client closed it (FIN from our side).
    pub(crate) closed_by_client: bool,
}

/// The client side: what the appliance drives.
#[derive(Debug)]
pub(crate) struct MemoryLink {
    net: Rc<RefCell<Net>>,
}

/// The test's side: faults in, observations out.
#[derive(Debug, Clone)]
pub(crate) struct Server {
    net: Rc<RefCell<Net>>,
}

/// A link to a server using `config`, and the handle to that server.
pub(crate) fn pair(config: Arc<ServerConfig>) -> (MemoryLink, Server) {
    let net = Rc::new(RefCell::new(Net {
        now: 0,
        config,
        behavior: Behavior::default(),
        slots: Vec::new(),
        log: Vec::new(),
        requests: Vec::new(),
        connects: Vec::new(),
    }));
    (MemoryLink { net: net.clone() }, Server { net })
}

impl Server {
    /// Changes how the server behaves from now on.
    pub(crate) fn behave(&self, f: impl FnOnce(&mut Behavior)) {
        f(&mut self.net.borrow_mut().behavior);
    }

    /// Tail probes the client sent on connection `slot`.
    pub(crate) fn probes(&self, slot: usize) -> usize {
        self.net
            .borrow_mut()
            .pipe(LinkId(slot))
            .map_or(0, |p| p.probes)
    }

    /// Every request read so far, in arrival order.
    pub(crate) fn requests(&self) -> Vec<Request> {
        self.net.borrow().requests.clone()
    }

    pub(crate) fn orders(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.is_order())
            .collect()
    }

    /// When each connection attempt was made (virtual ns), in order.
    pub(crate) fn connects(&self) -> Vec<u64> {
        self.net.borrow().connects.clone()
    }

    /// What happened on connection `serial`.
    pub(crate) fn log(&self, serial: usize) -> PipeLog {
        self.net.borrow().log[serial].clone()
    }

    /// Serials of the connections open now (TLS or not).
    pub(crate) fn open(&self) -> Vec<usize> {
        let net = self.net.borrow();
        net.slots
            .iter()
            .flatten()
            .filter(|p| p.state == PipeState::Open)
            .map(|p| p.serial)
            .collect()
    }

    fn with_pipe<R>(&self, serial: usize, f: impl FnOnce(&mut Pipe) -> R) -> R {
        let mut net = self.net.borrow_mut();
        let pipe = net
            .slots
            .iter_mut()
            .flatten()
            .find(|p| p.serial == serial)
            .expect("no such open connection");
        f(pipe)
    }

    /// The server closes connection `serial`: close_notify first if `notify`, then FIN.
    pub(crate) fn close(&self, serial: usize, notify: bool) {
        self.with_pipe(serial, |p| p.close(notify));
    }

    /// The server resets connection `serial`: gone at once, unread bytes lost.
    pub(crate) fn reset(&self, serial: usize) {
        self.with_pipe(serial, |p| p.state = PipeState::Reset);
    }

    /// The retransmissions the client made on the open connection in slot `slot`.
    pub(crate) fn retransmits(&self, slot: usize) -> Vec<Vec<u8>> {
        self.net
            .borrow_mut()
            .pipe(LinkId(slot))
            .map_or_else(Vec::new, |p| p.retransmits.clone())
    }

    pub(crate) fn inject_raw(&self, serial: usize, bytes: &[u8]) {
        self.with_pipe(serial, |p| p.to_client.extend(bytes));
    }

    /// Application data the client never asked for, properly encrypted.
    pub(crate) fn inject_plaintext(&self, serial: usize, bytes: &[u8]) {
        self.with_pipe(serial, |p| p.write_plaintext(bytes));
    }
}

impl Pipe {
    fn close(&mut self, notify: bool) {
        if notify {
            self.tls.send_close_notify();
            self.flush_tls();
        }
        if self.state == PipeState::Open {
            self.state = PipeState::Closing;
        }
    }

    fn flush_tls(&mut self) {
        let mut out = Vec::new();
        while self.tls.wants_write() {
            self.tls.write_tls(&mut out).expect("writing to a Vec");
        }
        self.to_client.extend(out);
    }

    /// The server got a copy of what it already has: it acknowledges it at once (from
    /// past an answer it lost, if one was: the client sees a gap), and resends that
    /// answer now.
    fn copy_received(&mut self, now: u64) {
        self.ack_held = 0;
        if let Some((at, _)) = &mut self.lost_answer {
            *at = now;
            self.gap = true;
        }
    }

    fn write_plaintext(&mut self, bytes: &[u8]) {
        self.tls.writer().write_all(bytes).expect("rustls buffers");
        self.flush_tls();
    }

    /// Runs the server side: TLS in, requests parsed and answered, TLS out.
    fn serve(
        &mut self,
        now: u64,
        behavior: &mut Behavior,
        requests: &mut Vec<Request>,
        log: &mut PipeLog,
    ) {
        if self.state != PipeState::Open {
            return;
        }
        let mut input = &std::mem::take(&mut self.to_server)[..];
        let received = input.len();
        while !input.is_empty() {
            if let Err(e) = self.tls.read_tls(&mut input) {
                log.error = Some(format!("read_tls: {e}"));
                self.state = PipeState::Reset;
                return;
            }
            if let Err(e) = self.tls.process_new_packets() {
                log.error = Some(e.to_string());
                self.flush_tls(); // our alert
                self.close(false);
                return;
            }
            let mut buf = [0u8; 4096];
            loop {
                match self.tls.reader().read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => self.plaintext.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => {
                        log.error = Some(format!("read: {e}"));
                        break;
                    }
                }
            }
        }
        self.flush_tls();
        if !self.handshake_seen && !self.tls.is_handshaking() {
            self.handshake_seen = true;
            self.last_request_ns = now;
            if behavior.close_after_handshake {
                self.close(false);
                return;
            }
        }
        while let Some(request) = self.parse(now) {
            self.last_request_ns = now;
            let order = request.is_order();
            let response: Option<Vec<u8>> = if behavior.drop_all || (order && behavior.drop_orders)
            {
                None
            } else if order {
                let body = br#"{"status":"accepted"}"#;
                let mut r = format!(
                    "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    behavior.order_status,
                    body.len()
                )
                .into_bytes();
                r.extend_from_slice(body);
                Some(r)
            } else if request.method == "GET" && request.path == "/events" {
                let coding = if behavior.events_chunked {
                    "Transfer-Encoding: chunked\r\n"
                } else {
                    ""
                };
                Some(
                    format!(
                        "HTTP/1.1 {} X\r\nContent-Type: text/event-stream\r\n{coding}\r\n",
                        behavior.events_status
                    )
                    .into_bytes(),
                )
            } else if request.is_warm() && behavior.warm_close_header {
                Some(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".to_vec())
            } else if request.is_warm() {
                Some(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec())
            } else {
                Some(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec())
            };
            let delay = if order { behavior.order_delay_ns } else { 0 };
            requests.push(request);
            if order && behavior.close_on_order {
                self.close(false);
                return;
            }
            let lost = order && response.is_some() && behavior.lose_answers > 0;
            if lost {
                behavior.lose_answers -= 1;
                self.ack_held = self.ack_held.max(received);
            }
            self.owed.push_back((now + delay, response, lost));
        }
        // Answers leave in request order, each when due; a lost one arrives when resent.
        loop {
            if let Some((at, _)) = self.lost_answer {
                if at > now {
                    break;
                }
                let (_, response) = self.lost_answer.take().expect("checked");
                (self.ack_held, self.gap) = (0, false);
                self.write_plaintext(&response);
                continue;
            }
            if self.owed.front().is_none_or(|(due, ..)| *due > now) {
                break;
            }
            match self.owed.pop_front() {
                Some((_, Some(response), true)) => {
                    self.lost_answer = Some((now + behavior.answer_recovery_ns, response));
                }
                Some((_, Some(response), false)) => {
                    // The acknowledgement of what it answers rides on it.
                    self.ack_held = 0;
                    self.write_plaintext(&response);
                }
                _ => {}
            }
        }
        if let Some(idle) = behavior.idle_timeout_ns {
            if self.owed.is_empty() && now - self.last_request_ns > idle {
                self.close(true);
            }
        }
    }

    /// One complete request off the front of `plaintext`, if there is one.
    fn parse(&mut self, now: u64) -> Option<Request> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        let head_len = match req.parse(&self.plaintext) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return None,
            Err(e) => panic!("the client sent a malformed request: {e}"),
        };
        let header = |name: &str| {
            req.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8(h.value.to_vec()).expect("ASCII header"))
        };
        let body_len: usize = header("Content-Length").map_or(0, |v| v.parse().unwrap());
        if self.plaintext.len() < head_len + body_len {
            return None;
        }
        let request = Request {
            serial: self.serial,
            method: req.method.unwrap().to_string(),
            path: req.path.unwrap().to_string(),
            key: header("Idempotency-Key"),
            body: self.plaintext[head_len..head_len + body_len].to_vec(),
            at_ns: now,
        };
        self.plaintext.drain(..head_len + body_len);
        Some(request)
    }
}

impl Net {
    fn pipe(&mut self, id: LinkId) -> Option<&mut Pipe> {
        self.slots.get_mut(id.0).and_then(Option::as_mut)
    }
}

impl Link for MemoryLink {
    fn connect(&mut self, _remote: SocketAddrV4) -> Result<LinkId, LinkError> {
        let mut net = self.net.borrow_mut();
        let now = net.now;
        net.connects.push(now);
        if net.behavior.connect_error {
            return Err(LinkError::Io(std::io::Error::new(
                ErrorKind::NetworkUnreachable,
                "network unreachable",
            )));
        }
        let serial = net.log.len();
        net.log.push(PipeLog::default());
        let pipe = Pipe {
            serial,
            state: PipeState::Connecting,
            tls: ServerConnection::new(net.config.clone()).expect("server config"),
            to_server: Vec::new(),
            to_client: VecDeque::new(),
            plaintext: Vec::new(),
            owed: VecDeque::new(),
            lost_answer: None,
            ack_held: 0,
            gap: false,
            probes: 0,
            last_request_ns: now,
            handshake_seen: false,
            lost: Vec::new(),
            retransmits: Vec::new(),
            built: None,
        };
        let slot = match net.slots.iter().position(Option::is_none) {
            Some(slot) => slot,
            None => {
                net.slots.push(None);
                net.slots.len() - 1
            }
        };
        net.slots[slot] = Some(pipe);
        Ok(LinkId(slot))
    }

    fn state(&mut self, id: LinkId) -> LinkState {
        match self.net.borrow_mut().pipe(id) {
            Some(p) => match p.state {
                PipeState::Connecting => LinkState::Connecting,
                PipeState::Open => LinkState::Open,
                PipeState::Closing if !p.to_client.is_empty() => LinkState::Open,
                PipeState::Closing | PipeState::Reset => LinkState::Gone,
            },
            None => LinkState::Gone,
        }
    }

    fn local_addr(&mut self, id: LinkId) -> Option<SocketAddrV4> {
        let serial = self.net.borrow_mut().pipe(id)?.serial;
        Some(SocketAddrV4::new(
            Ipv4Addr::new(10, 0, 0, 1),
            40_000 + serial as u16,
        ))
    }

    fn send(&mut self, id: LinkId, bytes: &[u8]) -> usize {
        let mut net = self.net.borrow_mut();
        let limit = net.behavior.send_limit.unwrap_or(usize::MAX);
        let Some(pipe) = net.pipe(id) else { return 0 };
        if pipe.state != PipeState::Open || bytes.is_empty() {
            return 0;
        }
        let n = bytes.len().min(limit);
        let lose = net.behavior.lose_sends > 0;
        let Some(pipe) = net.pipe(id) else { return 0 };
        if lose || !pipe.lost.is_empty() {
            // Lost, or behind a lost segment: held until the retransmission.
            pipe.lost.extend_from_slice(&bytes[..n]);
        } else {
            pipe.to_server.extend_from_slice(&bytes[..n]);
        }
        let serial = pipe.serial;
        if lose {
            net.behavior.lose_sends -= 1;
        }
        net.log[serial].sends.push(bytes[..n].to_vec());
        n
    }

    /// Built frames as the AF_XDP link has them, minus the frame: the record is kept,
    /// and its fire sends exactly it, so the fire path (and its rehearsal) runs here as
    /// it does there. Under send faults it declines, and the fire falls back to `send`.
    fn prepare(&mut self, id: LinkId, tag: u64, record: &[u8], _now_ns: u64) -> bool {
        let mut net = self.net.borrow_mut();
        let Some(pipe) = net.pipe(id) else {
            return false;
        };
        if pipe.state != PipeState::Open {
            return false;
        }
        pipe.built = Some((tag, record.to_vec()));
        true
    }

    fn send_prepared(
        &mut self,
        id: LinkId,
        tag: u64,
        record: &[u8],
        _now_ns: u64,
        pass: Pass,
    ) -> bool {
        {
            let mut net = self.net.borrow_mut();
            let faulty = net.behavior.send_limit.is_some() || net.behavior.lose_sends > 0;
            let Some(pipe) = net.pipe(id) else {
                return false;
            };
            let matches = pipe
                .built
                .as_ref()
                .is_some_and(|(t, bytes)| *t == tag && bytes[..] == *record);
            if faulty || !matches || pipe.state != PipeState::Open {
                return false;
            }
            if pass == Pass::Rehearsal {
                return true;
            }
            pipe.built = None;
        }
        let sent = self.send(id, record);
        debug_assert_eq!(
            sent,
            record.len(),
            "an open pipe without faults takes it all"
        );
        true
    }

    fn unacked(&mut self, id: LinkId) -> usize {
        self.net
            .borrow_mut()
            .pipe(id)
            .map_or(0, |p| p.lost.len() + p.ack_held)
    }

    fn receive_gap(&mut self, id: LinkId) -> bool {
        self.net.borrow_mut().pipe(id).is_some_and(|p| p.gap)
    }

    fn probe_tail(&mut self, id: LinkId) -> bool {
        let mut net = self.net.borrow_mut();
        let now = net.now;
        let Some(pipe) = net.pipe(id) else {
            return false;
        };
        if pipe.state != PipeState::Open || !pipe.lost.is_empty() || pipe.ack_held > 0 {
            return false;
        }
        pipe.probes += 1;
        pipe.copy_received(now);
        true
    }

    fn retransmit(&mut self, id: LinkId) -> bool {
        let mut net = self.net.borrow_mut();
        let now = net.now;
        let lose = net.behavior.lose_retransmits;
        let Some(pipe) = net.pipe(id) else {
            return false;
        };
        if pipe.lost.is_empty() && pipe.ack_held > 0 {
            pipe.retransmits.push(Vec::new());
            if !lose {
                pipe.copy_received(now);
            }
            return true;
        }
        if pipe.lost.is_empty() {
            return false;
        }
        pipe.retransmits.push(pipe.lost.clone());
        if !lose {
            let lost = std::mem::take(&mut pipe.lost);
            // Acknowledged with its answer, as a server does a request.
            pipe.ack_held = lost.len();
            pipe.to_server.extend_from_slice(&lost);
        }
        true
    }

    fn recv(&mut self, id: LinkId, buf: &mut [u8]) -> usize {
        let mut net = self.net.borrow_mut();
        let Some(pipe) = net.pipe(id) else { return 0 };
        if pipe.state == PipeState::Reset {
            return 0;
        }
        let n = buf.len().min(pipe.to_client.len());
        for (b, byte) in buf.iter_mut().zip(pipe.to_client.drain(..n)) {
            *b = byte;
        }
        n
    }

    fn close(&mut self, id: LinkId) {
        let net = &mut *self.net.borrow_mut();
        if let Some(mut pipe) = net.slots.get_mut(id.0).and_then(Option::take) {
            // What we sent before our FIN (an alert, say) still reaches the server.
            let log = &mut net.log[pipe.serial];
            pipe.serve(net.now, &mut net.behavior, &mut net.requests, log);
            log.closed_by_client = true;
        }
    }

    fn poll(&mut self, now_ns: u64) {
        let net = &mut *self.net.borrow_mut();
        assert!(now_ns >= net.now, "virtual time went back");
        net.now = now_ns;
        for pipe in net.slots.iter_mut().flatten() {
            if pipe.state == PipeState::Connecting && !net.behavior.blackhole {
                pipe.state = if net.behavior.refuse {
                    PipeState::Reset
                } else {
                    PipeState::Open
                };
            }
            let log = &mut net.log[pipe.serial];
            pipe.serve(now_ns, &mut net.behavior, &mut net.requests, log);
        }
    }

    fn now_ns(&self) -> u64 {
        self.net.borrow().now
    }

    fn backend(&self) -> &'static str {
        "memory"
    }

    fn bind_mode(&self) -> &'static str {
        "memory"
    }
}
