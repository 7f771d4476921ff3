//! The one interface every event source implements, and the set of sources a datapath
//! thread runs.
//!
//! A source owns its transport and framing and hands out whole events: `progress` moves
//! it at the loop's `now` and calls `on_event(data)` for each event completed by what
//! arrived, in order, before it returns, so the caller can fire in the same turn.
//! Connection-oriented sources (SSE; WebSocket next: the same TLS connection and
//! backoff, an HTTP/1.1 Upgrade instead of a GET, RFC 6455 frames instead of SSE lines,
//! and pongs and masked close frames written back) reconnect by themselves; datagram
//! sources (UDP) just read.

use super::sse_source::{SseSource, SseSpec};
use super::udp_source::{UdpSource, UdpSpec};
use crate::link::Link;
use std::sync::Arc;

/// A change in a source's state the operator should see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceChange {
    /// Events flow (a stream was accepted, a socket bound).
    Live,
    /// Not receiving; the message says why when it is not a transient loss.
    Down(Option<Arc<str>>),
}

/// See the module docs.
pub trait Source {
    /// The name arms use (`--on NAME:PREDICATE`).
    fn name(&self) -> &str;
    /// Events can arrive now.
    fn is_live(&self) -> bool;
    /// Moves the source forward; every event completed now goes to `on_event`. True if
    /// anything happened.
    fn progress<L: Link>(
        &mut self,
        link: &mut L,
        now: u64,
        on_event: &mut dyn FnMut(&[u8]),
    ) -> bool;
    /// The last state change not yet reported.
    fn take_change(&mut self) -> Option<SourceChange>;
    /// The data of the last event handed out (empty before the first), kept only to
    /// warm the matching code with between events: predicates are pure, so running
    /// them on it changes nothing. Its bytes may be partly overwritten by a later read.
    fn last_event(&self) -> &[u8];
    /// Keeps the source's receive path warm between events, without reading or
    /// changing anything an event depends on. Sources with nothing to warm do nothing.
    fn warm(&mut self) {}
}

/// How to build a source, given to the datapath at start.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SourceSpec {
    Sse(SseSpec),
    Udp(UdpSpec),
}

/// Any source; dispatch is one `match`.
#[derive(Debug)]
#[non_exhaustive]
pub enum AnySource {
    Sse(Box<SseSource>),
    Udp(Box<UdpSource>),
}

impl AnySource {
    pub fn new(spec: SourceSpec) -> AnySource {
        match spec {
            SourceSpec::Sse(s) => AnySource::Sse(Box::new(SseSource::new(s))),
            SourceSpec::Udp(s) => AnySource::Udp(Box::new(UdpSource::new(s))),
        }
    }
}

impl Source for AnySource {
    fn name(&self) -> &str {
        match self {
            AnySource::Sse(s) => s.name(),
            AnySource::Udp(s) => s.name(),
        }
    }
    fn is_live(&self) -> bool {
        match self {
            AnySource::Sse(s) => s.is_live(),
            AnySource::Udp(s) => s.is_live(),
        }
    }
    fn progress<L: Link>(
        &mut self,
        link: &mut L,
        now: u64,
        on_event: &mut dyn FnMut(&[u8]),
    ) -> bool {
        match self {
            AnySource::Sse(s) => s.progress(link, now, on_event),
            AnySource::Udp(s) => s.progress(link, now, on_event),
        }
    }
    fn take_change(&mut self) -> Option<SourceChange> {
        match self {
            AnySource::Sse(s) => s.take_change(),
            AnySource::Udp(s) => s.take_change(),
        }
    }
    fn last_event(&self) -> &[u8] {
        match self {
            AnySource::Sse(s) => s.last_event(),
            AnySource::Udp(s) => s.last_event(),
        }
    }
    fn warm(&mut self) {
        match self {
            AnySource::Sse(s) => s.warm(),
            AnySource::Udp(s) => s.warm(),
        }
    }
}
