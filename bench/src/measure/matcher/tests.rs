//! The matcher on synthetic stamp streams.

use std::net::{Ipv4Addr, SocketAddrV4};

use quickdraw_bpf::{Direction, TcpFlags, WireStamp};

use super::*;

const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 443);

/// The appliance's connection from local port `port`.
fn conn(port: u16) -> Conn {
    Conn {
        local: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 10), port),
        remote: SERVER,
    }
}

fn fire(conn: Conn, trigger_ns: u64) -> Fire {
    Fire {
        conn,
        trigger_ns,
        request_len: None,
    }
}

/// A frame of `conn` at the peer: ingress = appliance → server.
fn frame(conn: Conn, direction: Direction, ns: u64, seq: u32, ack: u32, len: u16) -> WireStamp {
    let (src, dst) = match direction {
        Direction::Ingress => (conn.local, conn.remote),
        Direction::Egress => (conn.remote, conn.local),
    };
    WireStamp {
        ns,
        direction,
        src,
        dst,
        seq,
        ack,
        flags: TcpFlags(TcpFlags::ACK | if len > 0 { TcpFlags::PSH } else { 0 }),
        payload_len: len,
        ifindex: 2,
        frame_len: 54 + u32::from(len),
    }
}

/// A request segment of `len` bytes at `seq` (server side at 5000).
fn request(conn: Conn, ns: u64, seq: u32, len: u16) -> WireStamp {
    frame(conn, Direction::Ingress, ns, seq, 5000, len)
}

/// A response segment acknowledging up to `ack`.
fn response(conn: Conn, ns: u64, seq: u32, ack: u32, len: u16) -> WireStamp {
    frame(conn, Direction::Egress, ns, seq, ack, len)
}

/// (trigger→wire, trigger→response) of every fire, `None` if unmatched.
fn latencies(report: &MatchReport) -> Vec<Option<(u64, Option<u64>)>> {
    report
        .outcomes
        .iter()
        .map(|m| m.map(|m| (m.trigger_to_wire_ns(), m.trigger_to_response_ns())))
        .collect()
}

#[test]
fn one_fire_one_request_one_response() {
    let c = conn(40000);
    let stamps = [
        request(c, 1_004_300, 1000, 230),
        // The server's bare ACK, then its response.
        response(c, 1_010_000, 5000, 1230, 0),
        response(c, 1_090_000, 5000, 1230, 120),
    ];
    let report = match_fires(&[fire(c, 1_000_000)], &stamps);
    assert_eq!(
        report.outcomes,
        [Some(FireMatch {
            trigger_ns: 1_000_000,
            request_ns: 1_004_300,
            request_seq: 1000,
            request_payload: 230,
            expected_seq: None,
            request_end_ns: None,
            response_ns: Some(1_090_000),
            request_retransmissions: 0,
            response_retransmissions: 0,
        })]
    );
    assert_eq!(latencies(&report), [Some((4_300, Some(90_000)))]);
    assert_eq!(
        report.summary,
        MatchSummary {
            fires: 1,
            matched: 1,
            unmatched: 0,
            with_response: 1,
            without_response: 0,
            seq_gaps: 0,
            retransmissions: 0,
        }
    );
}

#[test]
fn frames_before_the_trigger_are_ignored() {
    let c = conn(40000);
    let stamps = [
        // A keep-warm request and its response, before the trigger.
        request(c, 100, 1000, 40),
        response(c, 150, 5000, 1040, 30),
        // A bare ACK carries no data: never a request.
        frame(c, Direction::Ingress, 160, 1040, 5030, 0),
        // The fire's request and response.
        request(c, 1_200, 1040, 230),
        response(c, 1_500, 5030, 1270, 120),
    ];
    let report = match_fires(&[fire(c, 1_000)], &stamps);
    assert_eq!(latencies(&report), [Some((200, Some(500)))]);
    assert_eq!(report.outcomes[0].unwrap().request_seq, 1040);
}

#[test]
fn interleaved_connections_each_get_their_own_frames() {
    let (a, b) = (conn(40000), conn(40001));
    let fires = [
        fire(a, 1_000),
        fire(b, 1_100),
        fire(a, 5_000),
        fire(b, 5_050),
    ];
    let stamps = [
        request(b, 1_150, 7000, 100),
        request(a, 1_200, 1000, 100),
        response(a, 1_900, 5000, 1100, 50),
        response(b, 2_000, 9000, 7100, 50),
        request(a, 5_400, 1100, 100),
        request(b, 5_300, 7100, 100),
        response(b, 6_000, 9050, 7200, 50),
        response(a, 6_100, 5050, 1200, 50),
    ];
    let report = match_fires(&fires, &stamps);
    assert_eq!(
        latencies(&report),
        [
            Some((200, Some(900))),
            Some((50, Some(900))),
            Some((400, Some(1_100))),
            Some((250, Some(950))),
        ]
    );
}

#[test]
fn a_retransmission_never_matches_the_first_copy_counts() {
    let c = conn(40000);
    let fires = [fire(c, 1_000), fire(c, 2_500)];
    let stamps = [
        request(c, 1_010, 1000, 230),
        // The same segment again (say, its ACK was lost), after the second
        // trigger: it is not the second fire's request.
        request(c, 3_000, 1000, 230),
        response(c, 3_100, 5000, 1230, 90),
        request(c, 3_500, 1230, 230),
        response(c, 3_900, 5090, 1460, 90),
    ];
    let report = match_fires(&fires, &stamps);
    // The first fire's response left after the second trigger: outside its
    // window, so not its response.
    assert_eq!(
        latencies(&report),
        [Some((10, None)), Some((1_000, Some(1_400)))]
    );
    let second = report.outcomes[1].unwrap();
    assert_eq!(
        (second.request_seq, second.expected_seq),
        (1230, Some(1230))
    );
    assert_eq!(second.request_retransmissions, 0, "not a copy of its bytes");
    assert_eq!(report.summary.retransmissions, 1);
    let seen: Vec<(u32, bool)> = report.request_frames[1]
        .iter()
        .map(|f| (f.seq, f.retransmission))
        .collect();
    assert_eq!(seen, [(1000, true), (1230, false)]);
}

#[test]
fn a_retransmitted_response_is_not_the_next_response() {
    let c = conn(40000);
    let fires = [fire(c, 1_000), fire(c, 4_000)];
    let stamps = [
        request(c, 1_010, 1000, 100),
        response(c, 1_500, 5000, 1100, 90),
        request(c, 4_010, 1100, 100),
        // The first response again, now acknowledging the second request
        // too: still a retransmission.
        response(c, 4_020, 5000, 1200, 90),
        response(c, 4_500, 5090, 1200, 90),
    ];
    let report = match_fires(&fires, &stamps);
    assert_eq!(
        latencies(&report),
        [Some((10, Some(500))), Some((10, Some(500)))]
    );
    assert_eq!(report.summary.retransmissions, 1);
}

#[test]
fn a_burst_over_several_connections() {
    let conns: Vec<Conn> = (0..4).map(|i| conn(40000 + i)).collect();
    // All four fired at once; the frames leave one after the other, in
    // another order than the fires were given.
    let fires: Vec<Fire> = conns.iter().map(|&c| fire(c, 10_000)).collect();
    let mut stamps = Vec::new();
    for (k, &i) in [2usize, 0, 3, 1].iter().enumerate() {
        let ns = 10_000 + 4_000 + 1_000 * k as u64;
        stamps.push(request(conns[i], ns, 100 * i as u32, 230));
        stamps.push(response(
            conns[i],
            ns + 50_000,
            0,
            100 * i as u32 + 230,
            120,
        ));
    }
    let report = match_fires(&fires, &stamps);
    assert_eq!(
        latencies(&report),
        [
            Some((5_000, Some(55_000))),
            Some((7_000, Some(57_000))),
            Some((4_000, Some(54_000))),
            Some((6_000, Some(56_000))),
        ]
    );
    assert_eq!(report.summary.matched, 4);
}

#[test]
fn a_frame_after_the_next_trigger_is_never_this_fires() {
    let c = conn(40000);
    // The first fire's request never arrived; the only frame comes after the
    // second trigger: it is the second fire's, and the first is unmatched.
    let fires = [fire(c, 1_000), fire(c, 2_000)];
    let stamps = [
        request(c, 500, 900, 100),
        request(c, 2_100, 1000, 100),
        response(c, 2_500, 5000, 1100, 10),
    ];
    let report = match_fires(&fires, &stamps);
    assert_eq!(latencies(&report), [None, Some((100, Some(500)))]);
    assert_eq!(report.outcomes[1].unwrap().expected_seq, Some(1000));
    assert!(!report.outcomes[1].unwrap().seq_gap());
}

#[test]
fn a_request_that_skips_sequence_space_is_flagged() {
    let c = conn(40000);
    let stamps = [
        request(c, 500, 900, 100),
        // 1000..1040 was never stamped.
        request(c, 1_100, 1040, 100),
    ];
    let report = match_fires(&[fire(c, 1_000)], &stamps);
    let m = report.outcomes[0].unwrap();
    assert_eq!((m.request_seq, m.expected_seq), (1040, Some(1000)));
    assert!(m.seq_gap());
    assert_eq!(report.summary.seq_gaps, 1);
}

#[test]
fn retransmissions_in_the_window_are_counted_per_fire() {
    let c = conn(40000);
    let fires = [fire(c, 1_000), fire(c, 5_000)];
    let stamps = [
        request(c, 1_010, 1000, 100),
        // The order again (its ACK was lost), same seq; then the server's
        // response, twice.
        request(c, 2_010, 1000, 100),
        response(c, 2_100, 5000, 1100, 50),
        response(c, 3_100, 5000, 1100, 50),
        request(c, 5_010, 1100, 100),
        response(c, 5_100, 5050, 1200, 50),
    ];
    let report = match_fires(&fires, &stamps);
    let m = report.outcomes[0].unwrap();
    assert_eq!(
        (m.request_retransmissions, m.response_retransmissions),
        (1, 1)
    );
    assert_eq!(m.retransmissions(), 2);
    let copies: Vec<(u64, u32)> = report.request_frames[0]
        .iter()
        .map(|f| (f.ns, f.seq))
        .collect();
    assert_eq!(
        copies,
        [(1_010, 1000), (2_010, 1000)],
        "same seq both times"
    );
    assert_eq!(report.outcomes[1].unwrap().retransmissions(), 0);
}

#[test]
fn an_unmatched_fire_is_counted_and_reported() {
    let (a, b) = (conn(40000), conn(40001));
    let fires = [
        fire(a, 1_000),
        // Nothing on b at all.
        fire(b, 1_000),
        // a's only request frame went to the first fire.
        fire(a, 1_500),
    ];
    let stamps = [request(a, 1_200, 1000, 100)];
    let report = match_fires(&fires, &stamps);
    assert_eq!(latencies(&report), [Some((200, None)), None, None]);
    assert_eq!(report.unmatched().collect::<Vec<_>>(), [1, 2]);
    assert_eq!(
        report.summary,
        MatchSummary {
            fires: 3,
            matched: 1,
            unmatched: 2,
            with_response: 0,
            without_response: 1,
            seq_gaps: 0,
            retransmissions: 0,
        }
    );
    // Only what matched goes into the series.
    assert_eq!(report.trigger_to_wire().len(), 1);
    assert!(report.trigger_to_response().is_empty());
}

#[test]
fn a_response_to_an_earlier_request_is_not_this_fires() {
    let c = conn(40000);
    let stamps = [
        // A keep-warm request just before the trigger...
        request(c, 900, 1000, 40),
        request(c, 1_100, 1040, 230),
        // ...whose response leaves after the fire's request arrived.
        response(c, 1_200, 5000, 1040, 30),
        response(c, 1_700, 5030, 1270, 120),
    ];
    let report = match_fires(&[fire(c, 1_000)], &stamps);
    assert_eq!(latencies(&report), [Some((100, Some(700)))]);
}

#[test]
fn a_request_of_known_length_over_several_frames() {
    let c = conn(40000);
    let mut first = fire(c, 1_000);
    first.request_len = Some(3_000);
    let mut second = fire(c, 1_550);
    second.request_len = Some(100);
    let stamps = [
        request(c, 1_100, 1000, 1448),
        request(c, 1_110, 2448, 1448),
        request(c, 1_120, 3896, 104),
        // The server answers once it has the whole of it.
        response(c, 1_500, 5000, 4000, 200),
        request(c, 1_600, 4000, 100),
        response(c, 1_900, 5200, 4100, 200),
    ];
    let report = match_fires(&[first, second], &stamps);
    let m: Vec<FireMatch> = report.matched().copied().collect();
    assert_eq!(m.len(), 2, "the continuation frames are not the second's");
    assert_eq!((m[0].request_ns, m[0].request_end_ns), (1_100, Some(1_120)));
    assert_eq!(m[0].response_ns, Some(1_500));
    assert_eq!((m[1].request_ns, m[1].request_end_ns), (1_600, Some(1_600)));
    assert_eq!(m[1].response_ns, Some(1_900));
}

#[test]
fn sequence_numbers_wrap() {
    let c = conn(40000);
    let seq = u32::MAX - 50;
    let stamps = [
        request(c, 1_100, seq, 100),
        request(c, 1_200, seq, 100), // retransmission across the wrap
        response(c, 1_300, 5000, seq.wrapping_add(100), 10),
        request(c, 2_100, seq.wrapping_add(100), 100),
        response(c, 2_300, 5010, seq.wrapping_add(200), 10),
    ];
    let report = match_fires(&[fire(c, 1_000), fire(c, 1_350)], &stamps);
    assert_eq!(
        latencies(&report),
        [Some((100, Some(300))), Some((750, Some(950)))]
    );
    assert_eq!(report.outcomes[0].unwrap().request_retransmissions, 1);
    assert_eq!(
        report.outcomes[1].unwrap().expected_seq,
        Some(seq.wrapping_add(100))
    );
    assert_eq!(report.summary.retransmissions, 1);
}

#[test]
fn stamps_in_any_order_give_the_same_report() {
    let (a, b) = (conn(40000), conn(40001));
    let fires = [fire(a, 1_000), fire(b, 1_010), fire(a, 3_000)];
    let stamps = vec![
        request(a, 1_100, 1000, 100),
        request(b, 1_120, 2000, 100),
        response(a, 1_400, 5000, 1100, 10),
        response(b, 1_450, 6000, 2100, 10),
        request(a, 3_100, 1100, 100),
        response(a, 3_400, 5010, 1200, 10),
    ];
    let sorted = match_fires(&fires, &stamps);
    let mut reversed = stamps.clone();
    reversed.reverse();
    // As two CPUs' rings might hand them out: interleaved.
    let mut shuffled: Vec<WireStamp> = stamps.iter().step_by(2).copied().collect();
    shuffled.extend(stamps.iter().skip(1).step_by(2));
    assert_eq!(match_fires(&fires, &reversed), sorted);
    assert_eq!(match_fires(&fires, &shuffled), sorted);
    assert_eq!(sorted.summary.matched, 3);
}

#[test]
fn the_report_serializes() {
    let c = conn(40000);
    let report = match_fires(&[fire(c, 10)], &[request(c, 15, 1, 1)]);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["summary"]["matched"], 1);
    assert_eq!(json["outcomes"][0]["request_ns"], 15);
    assert!(json["outcomes"][0]["response_ns"].is_null());
}
