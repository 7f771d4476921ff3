//! `bench run --per-fire FILE`: one JSON line per fire (warm-up fires included, flagged),
//! in the order fired, with everything the run knows about it. Schema in README.

use super::analyse::FireView;
use super::driver::Driver;
use super::plan::Backend;
use crate::measure::WireFrame;
use anyhow::Context;
use serde::Serialize;
use std::io::Write as _;
use std::net::SocketAddrV4;
use std::path::Path;

/// One line of the file.
#[derive(Debug, Serialize)]
pub struct FireLine<'a> {
    /// Which gap of the run (`--gaps`, from 0).
    pub gap_index: usize,
    /// That gap's nominal value, ns.
    pub gap_ns: u64,
    /// The gap this fire actually waited (jittered), ns.
    pub waited_ns: u64,
    /// `af_xdp`, `kernel` or `floor`.
    pub backend: &'static str,
    /// A warm-up fire: made, not counted in the report.
    pub warm_up: bool,
    /// The arm id (the floor: the raw frame's id).
    pub arm: u64,
    /// The order's Idempotency-Key (as in nginx's access log); `null` for the floor.
    pub idempotency_key: Option<String>,
    /// The connection's local end (`null`: nothing sent).
    pub local: Option<SocketAddrV4>,
    /// The server's end (the floor: its frame's destination).
    pub remote: SocketAddrV4,
    /// `status_<code>`, `timeout`, `connection_lost`, `bad_response`, `not_sent`, `sent`.
    pub outcome: String,
    /// The HTTP status (the floor: 0 when sent).
    pub status: Option<u16>,
    /// The trigger, CLOCK_MONOTONIC ns, as are the stamps below (0 = did not happen).
    pub trigger_ns: u64,
    /// The kick (or write) returned.
    pub tx_ns: u64,
    /// The first response byte seen by the datapath.
    pub first_byte_ns: u64,
    /// The deadline of a scheduled fire.
    pub scheduled_ns: u64,
    /// A scheduled fire: when the datapath's turn before the one that fired it was done
    /// (0 if unknown; see `scheduled_late_core_away`).
    pub turn_before_end_ns: u64,
    /// With `--profile-steps` (else 0): the request was queued (the record committed).
    pub queued_ns: u64,
    /// With `--profile-steps` (else 0): its frame was on the Tx ring (the kick follows).
    pub pushed_ns: u64,
    /// Matched to a request frame at the peer.
    pub matched: bool,
    /// The peer's view (`null` when unmatched): request and response frames, expected
    /// and actual sequence numbers, retransmission counts.
    pub wire: Option<crate::measure::FireMatch>,
    /// Trigger → the request's first frame at the peer.
    pub trigger_to_wire_ns: Option<u64>,
    /// Trigger → first response byte in the datapath.
    pub trigger_to_response_ns: Option<u64>,
    /// The response's first frame leaving the peer → its first byte in the datapath.
    pub response_wire_to_first_byte_ns: Option<u64>,
    /// Retransmissions seen at the peer in the fire's window, both ways.
    pub retransmissions: u32,
    /// Early retransmissions of the request the appliance says it made.
    pub retransmits: u32,
    /// Every data frame of the fire's connection that arrived at the peer in its window
    /// (from its trigger to the next fire on the connection), retransmissions included:
    /// a retransmitted order shows as a second frame with the same `seq`.
    pub request_frames: &'a [WireFrame],
}

impl<'a> FireLine<'a> {
    /// The line for `view`, fired in run `run_id` at nominal gap `gap_ns`.
    pub fn new(view: &FireView<'a>, run_id: u64, gap_ns: u64) -> FireLine<'a> {
        let s = view.sample;
        let wire = view.wire.copied();
        FireLine {
            gap_index: s.gap_index,
            gap_ns,
            waited_ns: s.gap.as_nanos() as u64,
            backend: s.backend.name(),
            warm_up: s.warm_up,
            arm: s.arm,
            idempotency_key: (s.backend != Backend::Floor)
                .then(|| Driver::idempotency_key(run_id, s.arm)),
            local: s.local,
            remote: s.remote,
            outcome: s.outcome.name(),
            status: s.status,
            trigger_ns: s.trigger_ns,
            tx_ns: s.tx_ns,
            first_byte_ns: s.first_byte_ns,
            scheduled_ns: s.scheduled_ns,
            turn_before_end_ns: s.turn_before_end_ns,
            queued_ns: s.queued_ns,
            pushed_ns: s.pushed_ns,
            matched: wire.is_some(),
            trigger_to_wire_ns: wire.map(|m| m.trigger_to_wire_ns()),
            trigger_to_response_ns: (s.first_byte_ns > 0)
                .then(|| s.first_byte_ns.saturating_sub(s.trigger_ns)),
            response_wire_to_first_byte_ns: view.response_wire_to_first_byte_ns(),
            retransmissions: wire.map_or(0, |m| m.retransmissions()),
            retransmits: s.retransmits,
            wire,
            request_frames: view.frames,
        }
    }
}

/// Writes every fire of `views` to `path`, one JSON object per line.
pub fn write(
    path: &Path,
    views: &[FireView<'_>],
    run_id: u64,
    gap_ns: &[u64],
) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    for v in views {
        let gap = gap_ns.get(v.sample.gap_index).copied().unwrap_or(0);
        serde_json::to_writer(&mut out, &FireLine::new(v, run_id, gap))?;
        out.write_all(b"\n")?;
    }
    out.flush()
        .with_context(|| format!("writing {}", path.display()))
}
