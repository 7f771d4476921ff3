//! Matching fires to wire stamps: which frame at the peer's interface carried
//! each fire's request, and which carried the start of its response.
//!
//! Pure logic over plain values (no clock, no kernel): the stamps come from
//! [`quickdraw_bpf::Stamper`] on the lab peer, the fires from the appliance,
//! both on `CLOCK_MONOTONIC`.
//!
//! Rules, per fire, on the fire's connection, within the fire's *window*: from its
//! trigger to the next fire's trigger on the same connection (the last fire's window
//! never closes). A frame after the next trigger is never this fire's.
//! - **request**: the first *new* data-bearing frame arriving at the peer
//!   (ingress, appliance → server) in the window that no earlier fire of the
//!   connection claimed. When the request's wire length is known, the frames
//!   that carry the rest of it are passed over too, so the next fire cannot
//!   claim them.
//! - **expected sequence number**: the end of the previous new data frame of
//!   the connection in that direction (its seq + payload). A request frame
//!   that starts elsewhere is still matched but flagged ([`FireMatch::seq_gap`]):
//!   a data frame between them was not stamped (a lost stamp, or a frame lost
//!   before the peer whose retransmission comes later).
//! - **response**: the first new data-bearing frame leaving the peer
//!   (egress, server → appliance) in the window, not before the request, with
//!   an ACK that covers the whole request (its known length, else its first
//!   frame), that no earlier fire claimed. The ACK rule keeps a response to an
//!   earlier request (a keep-warm one, say) that is still leaving from counting.
//! - *new* data: a frame whose sequence number is not below the highest
//!   sequence end already seen in its direction of its connection. The
//!   others are retransmissions (the first copy counts) and match nothing;
//!   those in a fire's window are counted for it: copies of its request's
//!   bytes arriving, and server frames leaving again. A copy lost before the
//!   peer (on the appliance's side, or dropped by the lab's loss program on
//!   arrival, which runs before the stamper) is never seen: only what reached
//!   the peer counts. Frames are never reordered on the lab's veth; elsewhere
//!   a late frame would be taken for a retransmission too.
//!
//! Each stamp matches at most one fire. A fire without a request frame is
//! unmatched; one with a request but no response has no trigger→response:
//! both are counted in the [`MatchSummary`], and every fire has its entry,
//! matched or not, in [`MatchReport::outcomes`], with every data frame of its
//! window arriving at the peer in [`MatchReport::request_frames`].
//!
//! Assumes one request in flight per connection (HTTP/1.1 without
//! pipelining), which is how the appliance sends.

use std::collections::HashMap;
use std::net::SocketAddrV4;

use quickdraw_bpf::{Direction, WireStamp};
use serde::Serialize;

/// A TCP connection from the appliance's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Conn {
    /// The appliance's (or the kernel path's) address and port.
    pub local: SocketAddrV4,
    /// The server's.
    pub remote: SocketAddrV4,
}

/// One fire, as the appliance recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Fire {
    /// The connection the request went out on.
    pub conn: Conn,
    /// When the trigger was taken, `CLOCK_MONOTONIC` ns.
    pub trigger_ns: u64,
    /// The request's length on the wire (TCP payload bytes: the TLS
    /// record(s)), when known.
    pub request_len: Option<u32>,
}

/// Where a fire's request (and response) were seen on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FireMatch {
    /// The fire's trigger, ns.
    pub trigger_ns: u64,
    /// The first frame of the request at the peer's ingress, ns.
    pub request_ns: u64,
    /// That frame's sequence number.
    pub request_seq: u32,
    /// That frame's payload bytes.
    pub request_payload: u16,
    /// The sequence number the request should start at: the end of the
    /// previous new data frame of the connection arriving at the peer; `None`
    /// when there was none.
    pub expected_seq: Option<u32>,
    /// The frame that completed the request, when its length is known and
    /// that frame was stamped (`== request_ns` for a one-frame request).
    pub request_end_ns: Option<u64>,
    /// The first frame of the response at the peer's egress, ns.
    pub response_ns: Option<u64>,
    /// Copies of the request's bytes that arrived again in the window
    /// (retransmissions by the appliance that reached the peer).
    pub request_retransmissions: u32,
    /// Server frames that left again in the window, from the request on
    /// (retransmissions by the server).
    pub response_retransmissions: u32,
}

impl FireMatch {
    /// Trigger → first frame of the request on the wire, ns.
    pub fn trigger_to_wire_ns(&self) -> u64 {
        self.request_ns.saturating_sub(self.trigger_ns)
    }

    /// Trigger → first frame of the response leaving the server, ns.
    pub fn trigger_to_response_ns(&self) -> Option<u64> {
        Some(self.response_ns?.saturating_sub(self.trigger_ns))
    }

    /// The request did not start where the connection's previous data ended.
    pub fn seq_gap(&self) -> bool {
        self.expected_seq.is_some_and(|e| e != self.request_seq)
    }

    /// Retransmissions seen at the peer in the fire's window, both ways.
    pub fn retransmissions(&self) -> u32 {
        self.request_retransmissions + self.response_retransmissions
    }
}

/// A data-bearing frame arriving at the peer (appliance → server), as
/// stamped there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WireFrame {
    /// When it arrived, ns.
    pub ns: u64,
    /// Its sequence number.
    pub seq: u32,
    /// Its payload bytes.
    pub len: u16,
    /// It repeats bytes already seen (its seq is below the highest end seen).
    pub retransmission: bool,
}

/// The counts of a match, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MatchSummary {
    /// Fires given.
    pub fires: usize,
    /// Fires whose request was found on the wire.
    pub matched: usize,
    /// Fires whose request was not found.
    pub unmatched: usize,
    /// Matched fires whose response was found too.
    pub with_response: usize,
    /// Matched fires whose response was not found.
    pub without_response: usize,
    /// Matched fires whose request did not start at the expected sequence
    /// number.
    pub seq_gaps: usize,
    /// Data-bearing frames taken for retransmissions (on any connection,
    /// fired on or not).
    pub retransmissions: usize,
}

/// The result of [`match_fires`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchReport {
    /// One entry per fire, in the order given: `None` for an unmatched fire.
    pub outcomes: Vec<Option<FireMatch>>,
    /// One entry per fire, in the order given: every data frame of its
    /// connection that arrived at the peer in its window, in time order,
    /// retransmissions included.
    pub request_frames: Vec<Vec<WireFrame>>,
    /// The counts.
    pub summary: MatchSummary,
}

impl MatchReport {
    /// The matched fires, in the order given.
    pub fn matched(&self) -> impl Iterator<Item = &FireMatch> {
        self.outcomes.iter().flatten()
    }

    /// The indices (into the fires given) of the unmatched fires.
    pub fn unmatched(&self) -> impl Iterator<Item = usize> + '_ {
        self.outcomes
            .iter()
            .enumerate()
            .filter(|(_, m)| m.is_none())
            .map(|(i, _)| i)
    }
}

/// A data-bearing frame of one direction of one connection.
#[derive(Debug, Clone, Copy)]
struct Segment {
    ns: u64,
    seq: u32,
    len: u32,
    ack: u32,
    /// Repeats bytes already seen.
    retransmission: bool,
}

impl Segment {
    fn end(&self) -> u32 {
        self.seq.wrapping_add(self.len)
    }
}

/// One direction of one connection: (direction, source, destination).
type Key = (Direction, SocketAddrV4, SocketAddrV4);

/// Matches `fires` to `stamps` (in any order; both are sorted here) by the
/// rules in the module documentation.
pub fn match_fires(fires: &[Fire], stamps: &[WireStamp]) -> MatchReport {
    let (frames, retransmissions) = data_frames(stamps);
    let mut by_conn: HashMap<Conn, Vec<usize>> = HashMap::new();
    for (i, fire) in fires.iter().enumerate() {
        by_conn.entry(fire.conn).or_default().push(i);
    }
    let mut outcomes = vec![None; fires.len()];
    let mut request_frames = vec![Vec::new(); fires.len()];
    let none: &[Segment] = &[];
    for (conn, mut order) in by_conn {
        order.sort_by_key(|&i| (fires[i].trigger_ns, i));
        let key = (Direction::Ingress, conn.local, conn.remote);
        let arriving = frames.get(&key).map_or(none, Vec::as_slice);
        let requests: Vec<Segment> = arriving
            .iter()
            .filter(|s| !s.retransmission)
            .copied()
            .collect();
        let key = (Direction::Egress, conn.remote, conn.local);
        let leaving = frames.get(&key).map_or(none, Vec::as_slice);
        let responses: Vec<Segment> = leaving
            .iter()
            .filter(|s| !s.retransmission)
            .copied()
            .collect();
        let (mut next_request, mut next_response) = (0, 0);
        for (k, &i) in order.iter().enumerate() {
            let fire = &fires[i];
            let window_end = order
                .get(k + 1)
                .map_or(u64::MAX, |&next| fires[next].trigger_ns);
            let in_window = |s: &&Segment| s.ns >= fire.trigger_ns && s.ns < window_end;
            request_frames[i] = arriving
                .iter()
                .filter(in_window)
                .map(|s| WireFrame {
                    ns: s.ns,
                    seq: s.seq,
                    len: s.len as u16,
                    retransmission: s.retransmission,
                })
                .collect();
            // Claimed frames stay claimed: skip what earlier fires took or passed.
            while requests
                .get(next_request)
                .is_some_and(|s| s.ns < fire.trigger_ns)
            {
                next_request += 1;
            }
            let Some(&request) = requests.get(next_request).filter(|s| s.ns < window_end) else {
                continue;
            };
            let expected_seq = next_request.checked_sub(1).map(|prev| requests[prev].end());
            next_request += 1;
            // Everything up to this ACK is the request.
            let mut covered = request.end();
            let mut request_end_ns = None;
            if let Some(len) = fire.request_len {
                covered = request.seq.wrapping_add(len);
                if seq_le(covered, request.end()) {
                    request_end_ns = Some(request.ns);
                } else {
                    // The rest of the request: ours, not the next fire's.
                    while let Some(s) = requests.get(next_request) {
                        if !seq_lt(s.seq, covered) {
                            break;
                        }
                        next_request += 1;
                        if seq_le(covered, s.end()) {
                            request_end_ns = Some(s.ns);
                            break;
                        }
                    }
                }
            }
            let response = responses[next_response..]
                .iter()
                .position(|s| s.ns >= request.ns && seq_le(covered, s.ack))
                .map(|found| next_response + found)
                .filter(|&at| responses[at].ns < window_end);
            if let Some(at) = response {
                next_response = at + 1;
            }
            let request_retransmissions = request_frames[i]
                .iter()
                .filter(|f| {
                    f.retransmission && seq_le(request.seq, f.seq) && seq_lt(f.seq, covered)
                })
                .count() as u32;
            let response_retransmissions = leaving
                .iter()
                .filter(|s| s.retransmission && s.ns >= request.ns && s.ns < window_end)
                .count() as u32;
            outcomes[i] = Some(FireMatch {
                trigger_ns: fire.trigger_ns,
                request_ns: request.ns,
                request_seq: request.seq,
                request_payload: request.len as u16,
                expected_seq,
                request_end_ns,
                response_ns: response.map(|at| responses[at].ns),
                request_retransmissions,
                response_retransmissions,
            });
        }
    }
    let matched = outcomes.iter().flatten().count();
    let with_response = outcomes
        .iter()
        .flatten()
        .filter(|m| m.response_ns.is_some())
        .count();
    let seq_gaps = outcomes.iter().flatten().filter(|m| m.seq_gap()).count();
    MatchReport {
        summary: MatchSummary {
            fires: fires.len(),
            matched,
            unmatched: fires.len() - matched,
            with_response,
            without_response: matched - with_response,
            seq_gaps,
            retransmissions,
        },
        outcomes,
        request_frames,
    }
}

/// The data-bearing frames of each direction of each connection, in `ns`
/// order, each marked new or retransmission, and how many were
/// retransmissions.
fn data_frames(stamps: &[WireStamp]) -> (HashMap<Key, Vec<Segment>>, usize) {
    let mut data: Vec<&WireStamp> = stamps.iter().filter(|s| s.has_data()).collect();
    // Stable: frames with equal timestamps keep the order they came in.
    data.sort_by_key(|s| s.ns);
    let mut frames: HashMap<Key, Vec<Segment>> = HashMap::new();
    let mut highest: HashMap<Key, u32> = HashMap::new();
    let mut retransmissions = 0;
    for s in data {
        let key = (s.direction, s.src, s.dst);
        let mut segment = Segment {
            ns: s.ns,
            seq: s.seq,
            len: u32::from(s.payload_len),
            ack: s.ack,
            retransmission: false,
        };
        let end = segment.end();
        match highest.get_mut(&key) {
            Some(high) if seq_lt(segment.seq, *high) => {
                retransmissions += 1;
                segment.retransmission = true;
                if seq_lt(*high, end) {
                    *high = end;
                }
            }
            Some(high) => *high = end,
            None => {
                highest.insert(key, end);
            }
        }
        frames.entry(key).or_default().push(segment);
    }
    (frames, retransmissions)
}

/// `a < b` in TCP sequence space (RFC 1982 serial arithmetic).
fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `a <= b` in TCP sequence space.
fn seq_le(a: u32, b: u32) -> bool {
    a == b || seq_lt(a, b)
}

#[cfg(test)]
mod tests;
