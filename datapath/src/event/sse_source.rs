//! A server-sent-events source: one long-lived `GET` with `Accept: text/event-stream` on
//! its own verified TLS connection over a [`Link`], re-established with the pools'
//! capped backoff. Records are opened in place as they arrive, the body is de-chunked and
//! parsed in fixed buffers, and each event's data is handed to the caller in the turn
//! its last byte is decrypted.

use super::chunked::Chunked;
use super::source::{Source, SourceChange};
use super::sse::SseParser;
use crate::conn::{BACKOFF_MAX_NS, BACKOFF_MIN_NS};
use crate::link::{Link, LinkId, LinkState};
use crate::tls::{Handshake, Progress, Session};
use rustls::pki_types::ServerName;
use std::net::SocketAddrV4;
use std::sync::Arc;

/// Largest response head accepted.
const HEAD_CAPACITY: usize = 4 * 1024;
/// How long our stack may hold the ACK of an event's segment. Sent at once, that ACK's
/// kick (on veth: the server's whole receive of it) would run between the event's frame
/// and the match; held, it leaves in the turn after the fire. Short, because a server
/// that runs Nagle waits for it before sending its next small segment.
const EVENT_ACK_DELAY_NS: u64 = 50_000;
/// Received bytes read from the link at once.
const RX_CHUNK: usize = 16 * 1024;

/// Where and how to subscribe.
#[derive(Debug, Clone)]
pub struct SseSpec {
    /// The source's name, as arms name it (`--on NAME:...`).
    pub name: String,
    pub address: SocketAddrV4,
    pub server_name: ServerName<'static>,
    pub tls: Arc<rustls::ClientConfig>,
    /// `Host` header value and the stream's path.
    pub host: String,
    pub port: u16,
    pub path: String,
    pub connect_timeout_ns: u64,
    /// Reconnect when nothing at all arrived for this long (servers send comment lines
    /// as heartbeats); 0 = never.
    pub idle_timeout_ns: u64,
    /// Largest event data kept (bigger events are dropped and counted).
    pub max_event: usize,
}

#[derive(Debug)]
enum Phase {
    Down,
    Connecting,
    Handshaking(Box<Handshake>),
    Open(Box<Session>),
}

/// How the response body is delimited, once the head is in.
#[derive(Debug)]
enum Body {
    /// The head is still arriving.
    Head,
    /// Until the connection closes.
    Open,
    Chunked(Chunked),
    Length(u64),
}

/// Counters for the operator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SseStats {
    pub connects: u64,
    /// Streams that started (a 200 `text/event-stream` head).
    pub streams: u64,
    pub events: u64,
    /// Events dropped for not fitting.
    pub oversized: u64,
}

/// The source; see the module docs.
#[derive(Debug)]
pub struct SseSource {
    spec: SseSpec,
    link: Option<LinkId>,
    phase: Phase,
    since_ns: u64,
    retry_at_ns: u64,
    backoff_ns: u64,
    last_rx_ns: u64,
    hs_in: Vec<u8>,
    hs_out: Vec<u8>,
    rx: Box<[u8]>,
    head: Box<[u8]>,
    head_len: usize,
    body: Body,
    parser: SseParser,
    change: Option<SourceChange>,
    pub stats: SseStats,
}

/// Why a stream ended; `message` for failures the operator must see.
struct Broken(Option<String>);

impl SseSource {
    pub fn new(spec: SseSpec) -> SseSource {
        let parser = SseParser::new(spec.max_event);
        SseSource {
            spec,
            link: None,
            phase: Phase::Down,
            since_ns: 0,
            retry_at_ns: 0,
            backoff_ns: BACKOFF_MIN_NS,
            last_rx_ns: 0,
            hs_in: Vec::with_capacity(32 * 1024),
            hs_out: Vec::with_capacity(4 * 1024),
            rx: vec![0; RX_CHUNK].into_boxed_slice(),
            head: vec![0; HEAD_CAPACITY].into_boxed_slice(),
            head_len: 0,
            body: Body::Head,
            parser,
            change: None,
            stats: SseStats::default(),
        }
    }

    /// The subscription request: rendered at each connect (it carries `Last-Event-ID`).
    fn request(&self) -> Result<Vec<u8>, crate::http::HttpError> {
        let mut r = crate::http::warm_request(&self.spec.host, self.spec.port, &self.spec.path)?;
        r.truncate(r.len() - 2); // the blank line
        r.extend_from_slice(b"Accept: text/event-stream\r\nCache-Control: no-cache\r\n");
        let id = self.parser.last_event_id();
        if !id.is_empty() && id.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            r.extend_from_slice(b"Last-Event-ID: ");
            r.extend_from_slice(id);
            r.extend_from_slice(b"\r\n");
        }
        r.extend_from_slice(b"\r\n");
        Ok(r)
    }

    fn fail<L: Link>(&mut self, link: &mut L, now: u64, message: Option<String>) {
        if let Some(id) = self.link.take() {
            link.close(id);
        }
        let was_live = matches!(self.body, Body::Open | Body::Chunked(_) | Body::Length(_));
        self.phase = Phase::Down;
        self.body = Body::Head;
        self.head_len = 0;
        self.parser.reset();
        if message.is_some() {
            // Not transient (a certificate, a 404): back off fully.
            self.backoff_ns = BACKOFF_MAX_NS;
        }
        self.retry_at_ns = now + self.backoff_ns;
        self.backoff_ns = (self.backoff_ns * 2).min(BACKOFF_MAX_NS);
        if was_live || message.is_some() {
            self.change = Some(SourceChange::Down(message.map(Arc::from)));
        }
    }

    fn connect<L: Link>(&mut self, link: &mut L, now: u64) -> bool {
        if now < self.retry_at_ns {
            return false;
        }
        self.stats.connects += 1;
        match link.connect(self.spec.address) {
            Ok(id) => {
                link.defer_acks(id, EVENT_ACK_DELAY_NS);
                self.link = Some(id);
                self.phase = Phase::Connecting;
                self.since_ns = now;
            }
            Err(e) => {
                let message = format!("event source {}: connect: {e}", self.spec.name);
                self.fail(link, now, Some(message));
            }
        }
        true
    }

    fn connecting<L: Link>(&mut self, link: &mut L, id: LinkId, now: u64) -> bool {
        match link.state(id) {
            LinkState::Open => {
                match Handshake::new(self.spec.tls.clone(), self.spec.server_name.clone()) {
                    Ok(hs) => {
                        self.phase = Phase::Handshaking(Box::new(hs));
                        self.hs_in.clear();
                        self.hs_out.clear();
                        self.since_ns = now;
                    }
                    Err(e) => {
                        let message = format!("event source {}: TLS setup: {e}", self.spec.name);
                        self.fail(link, now, Some(message));
                    }
                }
                true
            }
            LinkState::Gone => {
                self.fail(link, now, None);
                true
            }
            LinkState::Connecting if now - self.since_ns > self.spec.connect_timeout_ns => {
                self.fail(link, now, None);
                true
            }
            LinkState::Connecting => false,
        }
    }

    fn handshake<L: Link>(&mut self, link: &mut L, id: LinkId, now: u64) -> Result<bool, Broken> {
        let mut progressed = false;
        loop {
            let n = link.recv(id, &mut self.rx);
            if n == 0 {
                break;
            }
            self.hs_in.extend_from_slice(&self.rx[..n]);
            progressed = true;
        }
        let Phase::Handshaking(hs) = &mut self.phase else {
            return Ok(progressed);
        };
        let result = hs.advance(&mut self.hs_in, &mut self.hs_out);
        if !self.hs_out.is_empty() {
            let sent = link.send(id, &self.hs_out);
            self.hs_out.drain(..sent);
            progressed = true;
        }
        let name = &self.spec.name;
        match result {
            Ok(Progress::Continue) => {}
            Ok(Progress::Done(established)) => {
                let mut session = Box::new(established.session);
                let request = self
                    .request()
                    .map_err(|e| Broken(Some(format!("event source {name}: request: {e}"))))?;
                // Leftover records (tickets) first, then the subscription.
                session.receive(&[], |_| {}).map_err(|_| Broken(None))?;
                let mut out = vec![0; request.len() + 256];
                let len = session
                    .seal_app_data(&request, &mut out)
                    .map_err(|e| Broken(Some(format!("event source {name}: sealing: {e}"))))?;
                self.hs_out.extend_from_slice(&out[..len]);
                let sent = link.send(id, &self.hs_out);
                self.hs_out.drain(..sent);
                self.phase = Phase::Open(session);
                self.body = Body::Head;
                self.head_len = 0;
                self.last_rx_ns = now;
                return Ok(true);
            }
            Err(e) => return Err(Broken(Some(format!("event source {name}: TLS: {e}")))),
        }
        if link.state(id) == LinkState::Gone {
            return Err(Broken(None));
        }
        if now - self.since_ns > self.spec.connect_timeout_ns {
            return Err(Broken(Some(format!(
                "event source {name}: TLS handshake timed out"
            ))));
        }
        Ok(progressed)
    }

    /// Reads and parses what arrived. No allocation once the stream is up.
    fn stream<L: Link>(
        &mut self,
        link: &mut L,
        id: LinkId,
        now: u64,
        on_event: &mut dyn FnMut(&[u8]),
    ) -> Result<bool, Broken> {
        let mut progressed = false;
        if !self.hs_out.is_empty() {
            let sent = link.send(id, &self.hs_out);
            self.hs_out.drain(..sent);
        }
        loop {
            let n = link.recv(id, &mut self.rx);
            if n == 0 {
                break;
            }
            progressed = true;
            self.last_rx_ns = now;
            let Phase::Open(session) = &mut self.phase else {
                break;
            };
            let mut broken: Option<Broken> = None;
            let mut deliver = Deliver {
                head: &mut self.head,
                head_len: &mut self.head_len,
                body: &mut self.body,
                parser: &mut self.parser,
                stats: &mut self.stats,
                change: &mut self.change,
                backoff_ns: &mut self.backoff_ns,
                name: &self.spec.name,
            };
            let received = session.receive(&self.rx[..n], |data| {
                if broken.is_none() {
                    if let Err(b) = deliver.data(data, on_event) {
                        broken = Some(b);
                    }
                }
            });
            if let Some(b) = broken {
                return Err(b);
            }
            match received {
                Ok(r) if r.closed => return Err(Broken(None)),
                Ok(_) => {}
                Err(e) => {
                    let name = &self.spec.name;
                    return Err(Broken(Some(format!("event source {name}: TLS: {e}"))));
                }
            }
            let out = session.pending_output();
            if !out.is_empty() {
                let sent = link.send(id, out);
                session.consume_output(sent);
            }
        }
        if matches!(&self.body, Body::Chunked(c) if c.is_done())
            || matches!(self.body, Body::Length(0))
        {
            return Err(Broken(None)); // the server ended the stream: subscribe again
        }
        if link.state(id) == LinkState::Gone {
            return Err(Broken(None));
        }
        let idle = self.spec.idle_timeout_ns;
        if idle > 0 && now.saturating_sub(self.last_rx_ns) > idle {
            return Err(Broken(None));
        }
        Ok(progressed)
    }
}

/// The stream's receive-side state, borrowed apart from the session that decrypts into
/// it.
struct Deliver<'a> {
    head: &'a mut [u8],
    head_len: &'a mut usize,
    body: &'a mut Body,
    parser: &'a mut SseParser,
    stats: &'a mut SseStats,
    change: &'a mut Option<SourceChange>,
    backoff_ns: &'a mut u64,
    name: &'a str,
}

impl Deliver<'_> {
    fn data(&mut self, data: &[u8], on_event: &mut dyn FnMut(&[u8])) -> Result<(), Broken> {
        if !matches!(self.body, Body::Head) {
            return self.body_bytes(data, on_event);
        }
        let room = self.head.len() - *self.head_len;
        let take = data.len().min(room);
        self.head[*self.head_len..*self.head_len + take].copy_from_slice(&data[..take]);
        *self.head_len += take;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let name = self.name;
        let head_end = match response.parse(&self.head[..*self.head_len]) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if take < data.len() => {
                return Err(Broken(Some(format!(
                    "event source {name}: response head too large"
                ))))
            }
            Ok(httparse::Status::Partial) => return Ok(()),
            Err(e) => {
                return Err(Broken(Some(format!(
                    "event source {name}: bad response: {e}"
                ))))
            }
        };
        let status = response.code.unwrap_or(0);
        if status != 200 {
            return Err(Broken(Some(format!(
                "event source {name}: status {status}"
            ))));
        }
        let header = |h: &str| {
            response
                .headers
                .iter()
                .find(|x| x.name.eq_ignore_ascii_case(h))
                .map(|x| x.value)
        };
        let is_stream = header("content-type")
            .is_some_and(|v| v.len() >= 17 && v[..17].eq_ignore_ascii_case(b"text/event-stream"));
        if !is_stream {
            return Err(Broken(Some(format!(
                "event source {name}: not text/event-stream"
            ))));
        }
        let chunked = header("transfer-encoding").is_some_and(|v| {
            v.rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
        });
        let length = header("content-length")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        *self.body = match (chunked, length) {
            (true, _) => Body::Chunked(Chunked::new()),
            (false, Some(n)) => Body::Length(n),
            (false, None) => Body::Open,
        };
        self.stats.streams += 1;
        *self.backoff_ns = BACKOFF_MIN_NS;
        *self.change = Some(SourceChange::Live);
        // Body bytes that came with the head: in the head buffer, then the rest of `data`.
        let (head, rest) = (std::mem::take(&mut self.head), &data[take..]);
        let result = self
            .body_bytes(&head[head_end..*self.head_len], on_event)
            .and_then(|()| self.body_bytes(rest, on_event));
        self.head = head;
        *self.head_len = 0;
        result
    }

    fn body_bytes(&mut self, data: &[u8], on_event: &mut dyn FnMut(&[u8])) -> Result<(), Broken> {
        let (parser, stats) = (&mut *self.parser, &mut *self.stats);
        let mut feed = |bytes: &[u8]| {
            parser.feed(bytes, |e| {
                stats.events += 1;
                on_event(e.data);
            });
            stats.oversized = parser.oversized;
        };
        match self.body {
            Body::Head => unreachable!("the head is complete"),
            Body::Open => feed(data),
            Body::Length(left) => {
                let n = data.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                feed(&data[..n]);
                *left -= n as u64;
            }
            Body::Chunked(c) => c
                .feed(data, feed)
                .map_err(|e| Broken(Some(format!("event source {}: {e}", self.name))))?,
        }
        Ok(())
    }
}

impl Source for SseSource {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn is_live(&self) -> bool {
        matches!(self.phase, Phase::Open(_)) && !matches!(self.body, Body::Head)
    }

    fn take_change(&mut self) -> Option<SourceChange> {
        self.change.take()
    }

    fn last_event(&self) -> &[u8] {
        self.parser.last_data()
    }

    /// The record's decryption (a throwaway record through the same AEAD code, the
    /// session's key pulled into the cache) and the buffer reads land in.
    fn warm(&mut self) {
        if let Phase::Open(session) = &mut self.phase {
            session.warm_receive();
            crate::warming::touch(&self.rx[..self.rx.len().min(512)]);
        }
    }

    fn progress<L: Link>(
        &mut self,
        link: &mut L,
        now: u64,
        on_event: &mut dyn FnMut(&[u8]),
    ) -> bool {
        let Some(id) = self.link else {
            return self.connect(link, now);
        };
        let result = match self.phase {
            Phase::Down => return self.connect(link, now),
            Phase::Connecting => return self.connecting(link, id, now),
            Phase::Handshaking(_) => self.handshake(link, id, now),
            Phase::Open(_) => self.stream(link, id, now, on_event),
        };
        match result {
            Ok(progressed) => progressed,
            Err(Broken(message)) => {
                self.fail(link, now, message);
                true
            }
        }
    }
}
