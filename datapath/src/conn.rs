//! One warm connection to a target: TCP over a [`Link`], TLS 1.3 with records sealed by
//! us, HTTP/1.1 responses parsed as they arrive. It reconnects with capped backoff, keeps
//! itself warm with a tiny request, holds at most one pre-sealed order, and turns every
//! request it sent into exactly one outcome.

mod rtt;

use crate::http::ResponseParser;
use crate::link::{Link, LinkId, LinkState};
use crate::order::{ArmId, Event, FireRecord, Outcome, Stamps, Unknown};
use crate::target::TargetSpec;
use crate::tls::{Handshake, Presealed, Progress, Session};
use crate::warming::Pass;
use rtt::Rtt;
use std::collections::VecDeque;
use std::net::SocketAddrV4;

/// Largest request an arm may carry: one TLS record's plaintext.
pub const MAX_REQUEST: usize = 16 * 1024;
/// Room for sealed records waiting to go out (a request record plus a warm one, with
/// headers and tags).
const OUT_CAPACITY: usize = 2 * (MAX_REQUEST + 512);
/// Responses are parsed in a buffer this big (head + body of one response).
const RESPONSE_CAPACITY: usize = 64 * 1024;
/// Requests in flight on one connection at once (a warm request and an order).
const MAX_PENDING: usize = 4;
/// Reconnect backoff, doubling from min to max (event sources share it).
pub(crate) const BACKOFF_MIN_NS: u64 = 1_000_000;
pub(crate) const BACKOFF_MAX_NS: u64 = 1_000_000_000;
/// Early retransmission: a request unacknowledged for max(2·SRTT, 1.25·peak, this) is
/// resent as it was (same sequence number, same bytes), a few times, each wait doubled;
/// then the stack's own timer takes over. SRTT and the peak are request → response, as
/// measured on this connection's keep-warms and orders (`conn/rtt.rs`), so a server
/// that is slow, or slow now and then, does not cause spurious resends.
const RTX_MIN_NS: u64 = 200_000;
/// While an order is in flight the first resend waits no longer than max(2·SRTT, this),
/// whatever slow answers the peak remembers (lab, 5 % loss, a server answering in
/// ~250 µs with a slow tail: orders whose first copy was lost reached it 0.49–2.4 ms
/// after the trigger without it, 9 of 36 after 1 ms).
const RTX_ORDER_CAP_NS: u64 = 800_000;
pub(crate) const RTX_EARLY_MAX: u32 = 4;
/// SRTT before the first measurement (a fresh connection measures at once: its first
/// keep-warm is sent right after the handshake).
const SRTT_INITIAL_NS: u64 = 1_000_000;

#[derive(Debug)]
enum Phase {
    /// Not connected; reconnect at `retry_at`.
    Down,
    Connecting,
    Handshaking(Box<Handshake>),
    Ready(Box<Session>),
}

#[derive(Debug, Clone, Copy)]
enum Pending {
    /// The keep-warm request, sent at `sent_ns`.
    Warm {
        sent_ns: u64,
    },
    Order {
        arm: ArmId,
        stamps: Stamps,
    },
    Probe {
        id: u64,
        sent_ns: u64,
        first_byte_ns: u64,
    },
}

/// A record sealed ahead of its fire, in `buf`; valid while it is still the next record
/// the session would seal (any other record sealed first makes it stale).
#[derive(Debug)]
struct Preseal {
    arm: Option<ArmId>,
    record: Option<Presealed>,
    buf: Box<[u8]>,
    /// Names the current record for the link's built frame (a new value per sealing).
    tag: u64,
}

/// Early retransmission of what this connection has in flight (see [`RTX_MIN_NS`]).
#[derive(Debug, Clone, Copy)]
struct Rtx {
    /// Unacknowledged bytes when last looked at.
    unacked: usize,
    /// When to resend if nothing more is acknowledged by then.
    at_ns: u64,
    /// Resends since the last progress.
    count: u32,
}

/// Tail probes: everything sent is acknowledged and an answer still owed (see
/// [`WarmConn::watch_loss`]).
#[derive(Debug, Clone, Copy)]
struct Tail {
    /// When to probe if nothing of the answer arrives by then.
    at_ns: u64,
    /// Probes since the answer last moved.
    count: u32,
}

/// What befell the requests in flight since nothing was last pending. An answer's time
/// is the server's pace only if nothing was resent; if something was, the first copy was
/// lost (the answer carries the acknowledgement), or the server had it and was slow (it
/// acknowledges the resent copy at once, apart from the answer), or its answer was lost
/// on the way back (that acknowledgement comes from past the answer: a receive gap).
#[derive(Debug, Default, Clone, Copy)]
struct Episode {
    resent: bool,
    acked_unanswered: bool,
    answer_lost: bool,
}

/// One connection of a target's pool.
#[derive(Debug)]
pub struct WarmConn {
    pub target: usize,
    /// Position within the target's pool (what reports call the connection id).
    pub index: usize,
    link: Option<LinkId>,
    phase: Phase,
    since_ns: u64,
    retry_at_ns: u64,
    backoff_ns: u64,
    hs_in: Vec<u8>,
    hs_out: Vec<u8>,
    /// Sealed bytes not yet taken by the link, `out[out_start..out_end]`.
    out: Box<[u8]>,
    out_start: usize,
    out_end: usize,
    rx: Box<[u8]>,
    parser: ResponseParser,
    pending: VecDeque<Pending>,
    preseal: Preseal,
    /// Our end of the current connection, learned once it opens (off the fire path).
    pub local: Option<SocketAddrV4>,
    last_sent_ns: u64,
    /// A keep-warm request is due now, whatever the clock says (a new connection).
    warm_due: bool,
    rtx: Option<Rtx>,
    tail: Option<Tail>,
    /// Request → response time of this connection: smoothed, and its recent peak.
    rtt: Rtt,
    /// What befell the requests in flight since nothing was last pending: what an
    /// answer's time says about the server.
    episode: Episode,
    /// Early retransmissions made on this connection, all told.
    pub retransmits: u64,
    /// Tail probes sent on this connection, all told.
    pub tail_probes: u64,
    /// Connections opened after the first (each one a TCP and TLS handshake at the
    /// server), all told.
    pub reconnects: u64,
}

impl WarmConn {
    pub fn new(target: usize, index: usize) -> WarmConn {
        WarmConn {
            target,
            index,
            link: None,
            phase: Phase::Down,
            since_ns: 0,
            retry_at_ns: 0,
            backoff_ns: BACKOFF_MIN_NS,
            hs_in: Vec::with_capacity(32 * 1024),
            hs_out: Vec::with_capacity(4 * 1024),
            out: vec![0; OUT_CAPACITY].into_boxed_slice(),
            out_start: 0,
            out_end: 0,
            rx: vec![0; 16 * 1024].into_boxed_slice(),
            parser: ResponseParser::new(RESPONSE_CAPACITY),
            pending: VecDeque::with_capacity(MAX_PENDING),
            local: None,
            preseal: Preseal {
                arm: None,
                record: None,
                buf: vec![0; MAX_REQUEST + 512].into_boxed_slice(),
                tag: 0,
            },
            last_sent_ns: 0,
            warm_due: false,
            rtx: None,
            tail: None,
            episode: Episode::default(),
            rtt: Rtt::new(SRTT_INITIAL_NS),
            retransmits: 0,
            tail_probes: 0,
            reconnects: 0,
        }
    }

    /// TLS is up and the connection can carry a request.
    pub fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Ready(_))
    }

    fn preseal_valid(&self) -> bool {
        match (&self.phase, &self.preseal.record) {
            (Phase::Ready(session), Some(record)) => record.position() == session.next_position(),
            _ => false,
        }
    }

    /// Holds a still-valid pre-sealed record of `arm`.
    pub fn holds(&self, arm: ArmId) -> bool {
        self.preseal.arm == Some(arm) && self.preseal_valid()
    }

    /// Where the session's next record goes (its TLS sequence number), once ready.
    #[cfg(test)]
    pub(crate) fn next_position(&self) -> Option<crate::tls::SealPosition> {
        match &self.phase {
            Phase::Ready(session) => Some(session.next_position()),
            _ => None,
        }
    }

    /// The arm whose still-valid pre-sealed record this connection holds.
    pub fn held_arm(&self) -> Option<ArmId> {
        self.preseal.arm.filter(|_| self.preseal_valid())
    }

    /// Holds a still-valid pre-sealed record of any arm.
    pub fn is_holding(&self) -> bool {
        self.preseal_valid()
    }

    /// The link connection this one runs on, while it has one.
    pub fn link_id(&self) -> Option<LinkId> {
        self.link
    }

    /// The pre-sealed record as it would go out and its tag, while it is still valid
    /// (also what send warming touches).
    pub(crate) fn presealed_bytes(&self) -> Option<(u64, &[u8])> {
        let record = self
            .preseal
            .record
            .as_ref()
            .filter(|_| self.preseal_valid())?;
        Some((self.preseal.tag, &self.preseal.buf[..record.wire_len()]))
    }

    pub fn drop_preseal(&mut self, arm: ArmId) {
        if self.preseal.arm == Some(arm) {
            self.preseal.arm = None;
            self.preseal.record = None;
        }
    }

    /// Seals `request` now as the next record, to be sent at the fire, and has the link
    /// build the frame that will carry it. False if the connection is not ready or
    /// already holds another arm's record.
    pub fn preseal<L: Link>(&mut self, link: &mut L, arm: ArmId, request: &[u8], now: u64) -> bool {
        if self.is_holding() && self.preseal.arm != Some(arm) {
            return false;
        }
        let Phase::Ready(session) = &mut self.phase else {
            return false;
        };
        match session.preseal_app_data(request, &mut self.preseal.buf) {
            Ok(record) => {
                self.preseal.arm = Some(arm);
                self.preseal.tag = self.preseal.tag.wrapping_add(1).max(1);
                let len = record.wire_len();
                self.preseal.record = Some(record);
                if let Some(id) = self.link {
                    // Best effort: without a built frame the fire goes through the stack.
                    let _ = link.prepare(id, self.preseal.tag, &self.preseal.buf[..len], now);
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Sends `arm`'s request: its pre-sealed record when this connection holds a valid
    /// one, else sealed now. False if the connection cannot carry it. No allocation: the
    /// record goes from a fixed buffer into the link.
    ///
    /// A [`Pass::Rehearsal`] runs the same checks and changes nothing (see
    /// [`Pass`]): the record is checked, not committed, and nothing is sent; it
    /// writes the pending queue's next slot and takes it back. True if the fire would
    /// send the pre-sealed record as its built frame.
    #[inline(never)] // code warming touches this very body (warming/code.rs)
    pub fn fire<L: Link>(
        &mut self,
        link: &mut L,
        arm: ArmId,
        request: &[u8],
        stamps: Stamps,
        pass: Pass,
    ) -> bool {
        let Some(id) = self.link else { return false };
        if self.pending.len() >= MAX_PENDING {
            return false;
        }
        let holds = self.holds(arm) && self.out_end == self.out_start;
        let Phase::Ready(session) = &mut self.phase else {
            return false;
        };
        let committed = match (holds, pass) {
            (false, _) => None,
            (true, Pass::Live) => self
                .preseal
                .record
                .take()
                .and_then(|p| session.commit(p).ok()),
            (true, Pass::Rehearsal) => self
                .preseal
                .record
                .as_ref()
                .and_then(|p| session.check_commit(p).ok()),
        };
        if let Some(len) = committed {
            let record = &self.preseal.buf[..len];
            let tag = self.preseal.tag;
            let sent = if link.send_prepared(id, tag, record, stamps.trigger_ns, pass) {
                record.len()
            } else if pass == Pass::Rehearsal {
                return false;
            } else {
                link.send(id, record)
            };
            if sent < record.len() {
                let rest = record.len() - sent;
                self.out[..rest].copy_from_slice(&record[sent..]);
                self.out_start = 0;
                self.out_end = rest;
            }
        } else if pass == Pass::Rehearsal {
            return false;
        } else {
            let Ok(len) = session.seal_app_data(request, &mut self.out[self.out_end..]) else {
                return false;
            };
            self.out_end += len;
            self.flush_out(link);
        }
        // Within the capacity reserved at start (checked above): no allocation.
        self.pending.push_back(Pending::Order { arm, stamps });
        if pass == Pass::Rehearsal {
            self.pending.pop_back();
            return true;
        }
        self.preseal.arm = None;
        self.preseal.record = None;
        self.last_sent_ns = stamps.trigger_ns;
        true
    }

    /// Sends `request` (the keep-warm one) as a probe, if this connection is ready and
    /// idle. The pre-sealed order, if any, goes stale and is sealed again by the caller.
    pub fn probe<L: Link>(&mut self, link: &mut L, id: u64, request: &[u8], now: u64) -> bool {
        if !self.pending.is_empty() || self.out_start != self.out_end {
            return false;
        }
        let Phase::Ready(session) = &mut self.phase else {
            return false;
        };
        let Ok(len) = session.seal_app_data(request, &mut self.out[self.out_end..]) else {
            return false;
        };
        self.out_end += len;
        self.flush_out(link);
        self.pending.push_back(Pending::Probe {
            id,
            sent_ns: now,
            first_byte_ns: 0,
        });
        self.last_sent_ns = now;
        true
    }

    /// Records the fire's stamps taken after the kick (tx, and when profiling, queued
    /// and pushed) on the newest order.
    pub fn set_tx(&mut self, fired: Stamps) {
        if let Some(Pending::Order { stamps, .. }) = self.pending.back_mut() {
            stamps.tx_ns = fired.tx_ns;
            stamps.queued_ns = fired.queued_ns;
            stamps.pushed_ns = fired.pushed_ns;
        }
    }

    fn flush_out<L: Link>(&mut self, link: &mut L) {
        let Some(id) = self.link else { return };
        if self.out_start < self.out_end {
            self.out_start += link.send(id, &self.out[self.out_start..self.out_end]);
            if self.out_start == self.out_end {
                self.out_start = 0;
                self.out_end = 0;
            }
        }
    }

    /// Moves this connection forward at `now`. True if anything happened.
    pub fn progress<L: Link>(
        &mut self,
        link: &mut L,
        target: &TargetSpec,
        now: u64,
        sink: &mut impl FnMut(Event),
    ) -> bool {
        match self.phase {
            Phase::Down => {
                if now < self.retry_at_ns {
                    return false;
                }
                match link.connect(target.address) {
                    Ok(id) => {
                        self.reconnects += u64::from(self.retry_at_ns != 0);
                        self.link = Some(id);
                        self.phase = Phase::Connecting;
                        self.since_ns = now;
                    }
                    Err(e) => self.fail(
                        link,
                        now,
                        Some(format!("connect to {}: {e}", target.name)),
                        target,
                        sink,
                    ),
                }
                true
            }
            Phase::Connecting => {
                let id = self.link.expect("connecting has a link");
                match link.state(id) {
                    LinkState::Open => {
                        self.local = link.local_addr(id);
                        match Handshake::new(target.tls.clone(), target.server_name.clone()) {
                            Ok(hs) => {
                                self.phase = Phase::Handshaking(Box::new(hs));
                                self.since_ns = now;
                                self.hs_in.clear();
                                self.hs_out.clear();
                                self.handshake(link, target, now, sink);
                            }
                            Err(e) => {
                                self.fail(link, now, Some(format!("TLS setup: {e}")), target, sink)
                            }
                        }
                        true
                    }
                    LinkState::Gone => {
                        self.fail(link, now, None, target, sink);
                        true
                    }
                    LinkState::Connecting if now - self.since_ns > target.connect_timeout_ns => {
                        self.fail(link, now, None, target, sink);
                        true
                    }
                    LinkState::Connecting => false,
                }
            }
            Phase::Handshaking(_) => self.handshake(link, target, now, sink),
            Phase::Ready(_) => self.ready(link, target, now, sink),
        }
    }

    fn handshake<L: Link>(
        &mut self,
        link: &mut L,
        target: &TargetSpec,
        now: u64,
        sink: &mut impl FnMut(Event),
    ) -> bool {
        let id = self.link.expect("handshaking has a link");
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
            return progressed;
        };
        let result = hs.advance(&mut self.hs_in, &mut self.hs_out);
        if !self.hs_out.is_empty() {
            let sent = link.send(id, &self.hs_out);
            self.hs_out.drain(..sent);
            progressed = true;
        }
        match result {
            Ok(Progress::Continue) => {}
            Ok(Progress::Done(established)) => {
                let mut session = Box::new(established.session);
                self.parser.reset();
                self.pending.clear();
                self.preseal.arm = None;
                self.preseal.record = None;
                // A first warm request right away: it proves HTTP works on the new
                // connection and starts the server's keep-alive timer (until a first
                // request, servers apply their longer header timeout instead). Not
                // `last_sent_ns = 0`: a clock younger than the interval (a fresh boot,
                // virtual time) would hold it back. The backoff is reset only once a
                // response proves the connection carries HTTP (see `ready`).
                self.warm_due = true;
                // Records that arrived right behind the handshake (session tickets).
                let leftover = std::mem::take(&mut self.hs_in);
                let ok = session.receive(&leftover, |_| {}).is_ok();
                self.hs_in = leftover;
                self.hs_in.clear();
                self.phase = Phase::Ready(session);
                if !ok {
                    self.fail(
                        link,
                        now,
                        Some(format!(
                            "TLS with {}: error right after the handshake",
                            target.name
                        )),
                        target,
                        sink,
                    );
                }
                return true;
            }
            Err(e) => {
                self.fail(
                    link,
                    now,
                    Some(format!("TLS handshake with {}: {e}", target.name)),
                    target,
                    sink,
                );
                return true;
            }
        }
        if link.state(id) == LinkState::Gone {
            self.fail(
                link,
                now,
                Some(format!(
                    "{} closed the connection during the TLS handshake",
                    target.name
                )),
                target,
                sink,
            );
            return true;
        }
        if now - self.since_ns > target.connect_timeout_ns {
            self.fail(
                link,
                now,
                Some(format!("TLS handshake with {} timed out", target.name)),
                target,
                sink,
            );
            return true;
        }
        progressed
    }

    fn ready<L: Link>(
        &mut self,
        link: &mut L,
        target: &TargetSpec,
        now: u64,
        sink: &mut impl FnMut(Event),
    ) -> bool {
        let id = self.link.expect("ready has a link");
        let mut progressed = false;
        self.flush_out(link);
        let mut lost = None;
        let awaited = self.pending.len();
        let mut rtt = None;
        loop {
            let n = link.recv(id, &mut self.rx);
            if n == 0 {
                break;
            }
            progressed = true;
            // The answer moves: a tail probe waits from here.
            self.tail = None;
            let Phase::Ready(session) = &mut self.phase else {
                break;
            };
            let (parser, pending) = (&mut self.parser, &mut self.pending);
            let (mut bad, mut closing) = (false, false);
            let received = session.receive(&self.rx[..n], |data| {
                if !bad {
                    match deliver(
                        parser,
                        pending,
                        data,
                        now,
                        (self.index, self.local),
                        &mut rtt,
                        sink,
                    ) {
                        Ok(close) => closing |= close,
                        Err(()) => bad = true,
                    }
                }
            });
            match received {
                Ok(r) if r.closed => lost = Some(Unknown::ConnectionLost),
                Ok(_) => {}
                Err(_) => lost = Some(Unknown::BadResponse),
            }
            if bad {
                lost = Some(Unknown::BadResponse);
            } else if closing && lost.is_none() {
                // The server said `Connection: close`: it reads nothing after that
                // response. Anything still in flight here is reported, and the pool
                // reconnects now rather than when the FIN arrives.
                lost = Some(Unknown::ConnectionLost);
            }
            // TLS may have something to say back (a KeyUpdate answer).
            if let Phase::Ready(session) = &mut self.phase {
                let out = session.pending_output();
                if !out.is_empty() {
                    let sent = link.send(id, out);
                    session.consume_output(sent);
                }
            }
            if lost.is_some() {
                break;
            }
        }
        let answered = self.pending.len() < awaited;
        if let Some(ns) = rtt {
            match self.episode {
                // Late by its own loss (resent or probed for): learnt as the server's
                // pace, it put the next resend past a millisecond (lab, 5 % loss:
                // answers recovered by the server after 1.5–2 ms).
                Episode {
                    answer_lost: true, ..
                } => {}
                Episode { resent: false, .. } => self.rtt.sample(ns),
                // Karn: a resent request's answer gives no RTT sample. But the server
                // had the first copy and was slow: that bounds the peak (from the first
                // send, never too low), or a timeout that resent every slow answer would
                // never learn of them.
                Episode {
                    acked_unanswered: true,
                    ..
                } => self.rtt.sample_resent(ns),
                // The first copy was lost: only the time of the path's loss.
                Episode { .. } => {}
            }
        }
        if self.pending.is_empty() {
            self.episode = Episode::default();
        }
        if lost.is_none() && link.state(id) == LinkState::Gone {
            lost = Some(Unknown::ConnectionLost);
        }
        if lost.is_none() {
            // Any request unanswered for too long: an order is reported as timed out, and
            // a keep-warm or probe the server never answers means a dead connection that
            // must not keep counting as warm.
            let oldest = self.pending.iter().map(|p| match p {
                Pending::Order { stamps, .. } => stamps.trigger_ns,
                Pending::Warm { sent_ns } | Pending::Probe { sent_ns, .. } => *sent_ns,
            });
            if oldest
                .min()
                .is_some_and(|t| now.saturating_sub(t) > target.response_timeout_ns)
            {
                lost = Some(Unknown::Timeout);
            }
        }
        if let Some(why) = lost {
            self.drain_lost(why, now, sink);
            self.fail(link, now, None, target, sink);
            return true;
        }
        if answered {
            // A response came and the connection stays open: the server serves it, so a
            // later failure starts backing off from the minimum again. (A response that
            // closes, `Connection: close` on every answer, must not: that server would
            // see a TCP and TLS handshake per round trip, for ever.)
            self.backoff_ns = BACKOFF_MIN_NS;
        }
        self.watch_loss(link, now);
        // Keep warm: an idle connection sends the tiny request before the server's
        // keep-alive timer can run out. A pre-sealed order is re-sealed afterwards.
        if self.pending.is_empty()
            && self.out_start == self.out_end
            && (self.warm_due || now - self.last_sent_ns >= target.warm_interval_ns)
        {
            let Phase::Ready(session) = &mut self.phase else {
                return progressed;
            };
            if let Ok(len) =
                session.seal_app_data(&target.warm_request, &mut self.out[self.out_end..])
            {
                self.out_end += len;
                self.pending.push_back(Pending::Warm { sent_ns: now });
                self.last_sent_ns = now;
                self.warm_due = false;
                self.flush_out(link);
                progressed = true;
            }
        }
        progressed
    }

    /// Early retransmission (see [`RTX_MIN_NS`]): what stays unacknowledged past the
    /// timeout is resent as it was, and counted on the orders in flight. And tail probes:
    /// an answer still owed that long after everything was acknowledged, with nothing of
    /// it arriving, gets a keep-alive probe, again with the wait doubled, a few times. A
    /// server whose answer was lost resends it when it gets a copy of what it already
    /// has (lab, 5 % loss: ~20 µs after our resend reached it), where its own timer
    /// waited ~200 ms (Linux's RTO floor) when our resend had come before it answered.
    fn watch_loss<L: Link>(&mut self, link: &mut L, now: u64) {
        let Some(id) = self.link else { return };
        let owed = !self.pending.is_empty();
        // Seen while an answer is owed, and before it arrives: once the server's
        // retransmission fills the gap, it is gone.
        self.episode.answer_lost |= owed && link.receive_gap(id);
        let unacked = link.unacked(id);
        // Acknowledged apart from an answer: the server had the copy before ours (a
        // server acknowledges a duplicate at once; a request it gets answers with its
        // acknowledgement on the answer).
        self.episode.acked_unanswered |=
            owed && self.episode.resent && self.rtx.is_some_and(|r| unacked < r.unacked);
        let order = self
            .pending
            .iter()
            .any(|p| matches!(p, Pending::Order { .. }));
        let timeout = match order {
            true => self.rtt.order_timeout(RTX_MIN_NS, RTX_ORDER_CAP_NS),
            false => self.rtt.timeout(RTX_MIN_NS),
        };
        if unacked == 0 {
            self.rtx = None;
            self.tail = match self.tail {
                _ if !owed => None,
                None => Some(Tail {
                    at_ns: now + timeout,
                    count: 0,
                }),
                Some(t) if now >= t.at_ns && t.count < RTX_EARLY_MAX && link.probe_tail(id) => {
                    self.tail_probes += 1;
                    Some(Tail {
                        at_ns: now + (timeout << (t.count + 1)),
                        count: t.count + 1,
                    })
                }
                t => t,
            };
            return;
        }
        self.tail = None;
        match &mut self.rtx {
            Some(r) if unacked >= r.unacked => {
                r.unacked = unacked;
                if now >= r.at_ns && r.count < RTX_EARLY_MAX && link.retransmit(id) {
                    r.count += 1;
                    r.at_ns = now + (timeout << r.count);
                    self.retransmits += 1;
                    self.episode.resent = true;
                    for p in &mut self.pending {
                        if let Pending::Order { stamps, .. } = p {
                            stamps.retransmits += 1;
                        }
                    }
                }
            }
            // New data in flight, or some of it acknowledged: the clock starts again.
            _ => {
                self.rtx = Some(Rtx {
                    unacked,
                    at_ns: now + timeout,
                    count: 0,
                })
            }
        }
    }

    /// Reports every order still in flight as lost in the given way.
    fn drain_lost(&mut self, why: Unknown, now: u64, sink: &mut impl FnMut(Event)) {
        while let Some(p) = self.pending.pop_front() {
            if let Pending::Probe { id, sent_ns, .. } = p {
                sink(Event::Probed {
                    req: id,
                    sent_ns,
                    first_byte_ns: 0,
                    status: 0,
                    date: None,
                });
            }
            if let Pending::Order { arm, mut stamps } = p {
                stamps.complete_ns = now;
                sink(Event::Done(FireRecord {
                    arm,
                    conn: self.index,
                    local: self.local,
                    stamps,
                    outcome: Outcome::Unknown(why),
                }));
            }
        }
    }

    /// Closes the link and schedules a reconnect with capped exponential backoff.
    fn fail<L: Link>(
        &mut self,
        link: &mut L,
        now: u64,
        message: Option<String>,
        target: &TargetSpec,
        sink: &mut impl FnMut(Event),
    ) {
        let _ = target;
        if let Some(id) = self.link.take() {
            link.close(id);
        }
        self.drain_lost(Unknown::ConnectionLost, now, sink);
        self.phase = Phase::Down;
        self.rtx = None;
        self.tail = None;
        self.episode = Episode::default();
        self.preseal.arm = None;
        self.preseal.record = None;
        self.out_start = 0;
        self.out_end = 0;
        self.parser.reset();
        self.retry_at_ns = now + self.backoff_ns;
        if let Some(message) = message {
            // A failure worth a message is usually not transient (a certificate): back
            // off fully, from this very failure, rather than hammer the server.
            self.backoff_ns = BACKOFF_MAX_NS;
            self.retry_at_ns = now + BACKOFF_MAX_NS;
            sink(Event::ConnError {
                target: self.target,
                conn: self.index,
                message: message.into(),
            });
        } else {
            self.backoff_ns = (self.backoff_ns * 2).min(BACKOFF_MAX_NS);
        }
    }
}

/// Feeds decrypted bytes to the response parser and completes the oldest request for
/// each response that finishes. `Ok(true)` when a response said `Connection: close`.
fn deliver(
    parser: &mut ResponseParser,
    pending: &mut VecDeque<Pending>,
    data: &[u8],
    now: u64,
    (conn, local): (usize, Option<SocketAddrV4>),
    rtt: &mut Option<u64>,
    sink: &mut impl FnMut(Event),
) -> Result<bool, ()> {
    let mut input = data;
    let mut closing = false;
    loop {
        let done = parser.feed(input).map_err(|_| ())?;
        input = &[];
        match pending.front_mut() {
            Some(Pending::Order { stamps, .. })
                if stamps.first_byte_ns == 0 && parser.started() =>
            {
                stamps.first_byte_ns = now;
            }
            Some(Pending::Probe { first_byte_ns, .. })
                if *first_byte_ns == 0 && parser.started() =>
            {
                *first_byte_ns = now;
            }
            _ => {}
        }
        let Some(response) = done else {
            return Ok(closing);
        };
        closing |= response.close;
        let popped = pending.pop_front();
        *rtt = match popped {
            Some(Pending::Order { stamps, .. }) => Some(now.saturating_sub(stamps.trigger_ns)),
            Some(Pending::Warm { sent_ns } | Pending::Probe { sent_ns, .. }) => {
                Some(now.saturating_sub(sent_ns))
            }
            _ => *rtt,
        };
        match popped {
            Some(Pending::Order { arm, mut stamps }) => {
                if stamps.first_byte_ns == 0 {
                    stamps.first_byte_ns = now;
                }
                stamps.complete_ns = now;
                sink(Event::Done(FireRecord {
                    arm,
                    conn,
                    local,
                    stamps,
                    outcome: Outcome::Status(response.status),
                }));
            }
            Some(Pending::Warm { .. }) => {}
            Some(Pending::Probe {
                id,
                sent_ns,
                first_byte_ns,
            }) => {
                let date = parser
                    .header("date")
                    .and_then(|d| <[u8; 29]>::try_from(d).ok());
                let first_byte_ns = if first_byte_ns == 0 {
                    now
                } else {
                    first_byte_ns
                };
                sink(Event::Probed {
                    req: id,
                    sent_ns,
                    first_byte_ns,
                    status: response.status,
                    date,
                });
            }
            None => return Err(()), // a response nobody asked for
        }
    }
}
