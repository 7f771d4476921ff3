//! Matching fires to wire stamps: which frame at the peer's interface carried
//! each fire's request, and which carried the start of its response.
//!
//! Pure logic over plain values (no clock, no kernel): the stamps come from
//! [`quickdraw_bpf::Stamper`] on the lab peer, the fires from the appliance,
//! both on `CLOCK_MONOTONIC`.
//!
//! Rules, per fire, on the fire's connection:
//! - **request**: the first *new* data-bearing frame arriving at the peer
//!   (ingress, appliance → server) with `ns >= trigger_ns` that no earlier
//!   fire of the connection claimed. When the request's wire length is
//!   known, the frames that carry the rest of it are passed over too, so the
//!   next fire cannot claim them.
//! - **response**: the first new data-bearing frame leaving the peer
//!   (egress, server → appliance) with `ns >=` the request's and an ACK that
//!   covers the whole request (its known length, else its first frame), that
//!   no earlier fire claimed. The ACK rule keeps a response to an earlier
//!   request (a keep-warm one, say) that is still leaving from counting.
//! - *new* data: a frame whose sequence number is not below the highest
//!   sequence end already seen in its direction of its connection. The
//!   others are retransmissions (the first copy counts) and match nothing.
//!   Frames are never reordered on the lab's veth; elsewhere a late frame
//!   would be taken for a retransmission too.
//!
//! Each stamp matches at most one fire. A fire without a request frame is
//! unmatched; one with a request but no response has no trigger→response:
//! both are counted in the [`MatchSummary`], and every fire has its entry,
//! matched or not, in [`MatchReport::outcomes`].
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
    /// The frame that completed the request, when its length is known and
    /// that frame was stamped (`== request_ns` for a one-frame request).
    pub request_end_ns: Option<u64>,
    /// The first frame of the response at the peer's egress, ns.
    pub response_ns: Option<u64>,
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
    /// Data-bearing frames taken for retransmissions (on any connection,
    /// fired on or not).
    pub retransmissions: usize,
}

/// The result of [`match_fires`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchReport {
    /// One entry per fire, in the order given: `None` for an unmatched fire.
    pub outcomes: Vec<Option<FireMatch>>,
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

/// A new data-bearing frame of one direction of one connection.
#[derive(Debug, Clone, Copy)]
struct Segment {
    ns: u64,
    seq: u32,
    len: u32,
    ack: u32,
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
    let (segments, retransmissions) = new_segments(stamps);
    let mut by_conn: HashMap<Conn, Vec<usize>> = HashMap::new();
    for (i, fire) in fires.iter().enumerate() {
        by_conn.entry(fire.conn).or_default().push(i);
    }
    let mut outcomes = vec![None; fires.len()];
    let none: &[Segment] = &[];
    for (conn, mut order) in by_conn {
        order.sort_by_key(|&i| (fires[i].trigger_ns, i));
        let key = (Direction::Ingress, conn.local, conn.remote);
        let requests = segments.get(&key).map_or(none, Vec::as_slice);
        let key = (Direction::Egress, conn.remote, conn.local);
        let responses = segments.get(&key).map_or(none, Vec::as_slice);
        let (mut next_request, mut next_response) = (0, 0);
        for i in order {
            let fire = &fires[i];
            let Some(found) = requests[next_request..]
                .iter()
                .position(|s| s.ns >= fire.trigger_ns)
            else {
                // Later fires on this connection trigger later still.
                break;
            };
            let at = next_request + found;
            let request = requests[at];
            next_request = at + 1;
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
                .map(|found| next_response + found);
            if let Some(at) = response {
                next_response = at + 1;
            }
            outcomes[i] = Some(FireMatch {
                trigger_ns: fire.trigger_ns,
                request_ns: request.ns,
                request_seq: request.seq,
                request_payload: request.len as u16,
                request_end_ns,
                response_ns: response.map(|at| responses[at].ns),
            });
        }
    }
    let matched = outcomes.iter().flatten().count();
    let with_response = outcomes
        .iter()
        .flatten()
        .filter(|m| m.response_ns.is_some())
        .count();
    MatchReport {
        summary: MatchSummary {
            fires: fires.len(),
            matched,
            unmatched: fires.len() - matched,
            with_response,
            without_response: matched - with_response,
            retransmissions,
        },
        outcomes,
    }
}

/// The new data-bearing frames of each direction of each connection, in
/// `ns` order, and how many data-bearing frames were retransmissions.
fn new_segments(stamps: &[WireStamp]) -> (HashMap<Key, Vec<Segment>>, usize) {
    let mut data: Vec<&WireStamp> = stamps.iter().filter(|s| s.has_data()).collect();
    // Stable: frames with equal timestamps keep the order they came in.
    data.sort_by_key(|s| s.ns);
    let mut segments: HashMap<Key, Vec<Segment>> = HashMap::new();
    let mut highest: HashMap<Key, u32> = HashMap::new();
    let mut retransmissions = 0;
    for s in data {
        let key = (s.direction, s.src, s.dst);
        let segment = Segment {
            ns: s.ns,
            seq: s.seq,
            len: u32::from(s.payload_len),
            ack: s.ack,
        };
        let end = segment.end();
        match highest.get_mut(&key) {
            Some(high) if seq_lt(segment.seq, *high) => {
                retransmissions += 1;
                if seq_lt(*high, end) {
                    *high = end;
                }
            }
            Some(high) => {
                *high = end;
                segments.entry(key).or_default().push(segment);
            }
            None => {
                highest.insert(key, end);
                segments.entry(key).or_default().push(segment);
            }
        }
    }
    (segments, retransmissions)
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
