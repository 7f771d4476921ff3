//! The wire shapes, round trips and refusals of the control protocol.

use super::*;

fn round_trip(request: Request) {
    let line = encode_request(&request);
    assert!(
        line.ends_with('\n') && line.starts_with("{\"v\":1,"),
        "{line}"
    );
    assert_eq!(decode_request(line.trim_end().as_bytes()).unwrap(), request);
}

#[test]
fn requests_round_trip() {
    round_trip(Request::Status {});
    round_trip(Request::Down {});
    round_trip(Request::Fire { arm: None });
    round_trip(Request::Fire { arm: Some(7) });
    round_trip(Request::Disarm { arm: 3 });
    round_trip(Request::Arm(ArmRequest {
        sku: "1001".into(),
        qty: 2,
        conns: 8,
        target: Some("lab".into()),
        trigger: TriggerSpec::Manual,
        arrive: None,
    }));
    round_trip(Request::Arm(ArmRequest {
        sku: "1001".into(),
        qty: 1,
        conns: 1,
        target: None,
        trigger: TriggerSpec::At("2026-11-27T08:00:00.000000Z".into()),
        arrive: Some(true),
    }));
    round_trip(Request::Arm(ArmRequest {
        sku: "1001".into(),
        qty: 1,
        conns: 1,
        target: None,
        trigger: TriggerSpec::InNs(2_000_000_000),
        arrive: None,
    }));
    round_trip(Request::DisarmAll {});
    round_trip(Request::Arms {});
    round_trip(Request::Stats {});
    round_trip(Request::Sync { target: None });
    round_trip(Request::Wait {
        arm: 3,
        timeout_ms: Some(5),
    });
}

#[test]
fn wire_shape_is_the_documented_one() {
    let line = br#"{"v":1,"cmd":"arm","sku":"1001","trigger":"manual"}"#;
    let Request::Arm(arm) = decode_request(line).unwrap() else {
        panic!()
    };
    assert_eq!((arm.qty, arm.conns, arm.target), (1, 1, None));
    assert_eq!(
        decode_request(br#"{"cmd":"fire","v":1}"#).unwrap(),
        Request::Fire { arm: None }
    );
    assert_eq!(
        encode_request(&Request::Disarm { arm: 4 }),
        "{\"v\":1,\"cmd\":\"disarm\",\"arm\":4}\n"
    );
    let line = br#"{"v":1,"cmd":"arm","sku":"1","trigger":{"at":"2026-11-27T08:00:00.000000Z"},"arrive":true}"#;
    let Request::Arm(arm) = decode_request(line).unwrap() else {
        panic!()
    };
    assert_eq!(
        arm.trigger,
        TriggerSpec::At("2026-11-27T08:00:00.000000Z".into())
    );
    assert_eq!(arm.arrive, Some(true));
    let line = br#"{"v":1,"cmd":"arm","sku":"1","trigger":{"in_ns":2000000000}}"#;
    let Request::Arm(arm) = decode_request(line).unwrap() else {
        panic!()
    };
    assert_eq!(arm.trigger, TriggerSpec::InNs(2_000_000_000));
}

#[test]
fn replies_round_trip() {
    let reply = ArmReply {
        arm: 1,
        key: "ab".into(),
        target: "lab".into(),
        conns: 1,
        scheduled: None,
    };
    let line = encode_ok(&reply);
    assert!(line.starts_with("{\"v\":1,\"ok\":true,"), "{line}");
    assert_eq!(decode_reply::<ArmReply>(line.as_bytes()).unwrap(), reply);

    let fire = FireReply {
        state: Some(ArmState::Done),
        scheduled: None,
        error_ns: None,
        recovered: None,
        arm: 2,
        key: "k".into(),
        expected: 2,
        complete: true,
        outcomes: vec![
            FireOutcome {
                conn: Some(0),
                result: "status".into(),
                status: Some(200),
                unknown: None,
                stamps: StampsView {
                    trigger_ns: 1,
                    tx_ns: 2,
                    first_byte_ns: 3,
                    complete_ns: 4,
                    scheduled_ns: 0,
                },
            },
            FireOutcome {
                conn: None,
                result: "not_sent".into(),
                status: None,
                unknown: None,
                stamps: StampsView::default(),
            },
        ],
    };
    assert_eq!(
        decode_reply::<FireReply>(encode_ok(&fire).as_bytes()).unwrap(),
        fire
    );
    assert_eq!(
        decode_reply::<Done>(encode_ok(&Done::default()).as_bytes()).unwrap(),
        Done::default()
    );
}

#[test]
fn refusals_come_back_as_errors() {
    let line = encode_error("no such arm 9");
    assert_eq!(line, "{\"v\":1,\"ok\":false,\"error\":\"no such arm 9\"}\n");
    match decode_reply::<Done>(line.as_bytes()) {
        Err(ProtocolError::Refused(m)) => assert_eq!(m, "no such arm 9"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn replies_tolerate_fields_from_newer_daemons() {
    let line = br#"{"v":1,"ok":true,"arm":1,"key":"k","target":"t","conns":1,"later":true}"#;
    assert_eq!(decode_reply::<ArmReply>(line).unwrap().arm, 1);
}

#[test]
fn malformed_requests_are_errors_not_panics() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "not JSON"),
        (b"{", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1,2]", "object"),
        (b"{\"cmd\":\"status\"}", "missing \"v\""),
        (b"{\"v\":2,\"cmd\":\"status\"}", "version 2 not supported"),
        (b"{\"v\":\"1\",\"cmd\":\"status\"}", "not supported"),
        (b"{\"v\":1}", "missing field `cmd`"),
        (b"{\"v\":1,\"cmd\":\"launch\"}", "unknown variant `launch`"),
        (b"{\"v\":1,\"cmd\":\"disarm\"}", "missing field `arm`"),
        (b"{\"v\":1,\"cmd\":\"disarm\",\"arm\":-1}", "invalid value"),
        (
            b"{\"v\":1,\"cmd\":\"arm\",\"sku\":\"1\"}",
            "missing field `trigger`",
        ),
        (
            b"{\"v\":1,\"cmd\":\"arm\",\"sku\":\"1\",\"trigger\":\"soon\"}",
            "unknown variant `soon`",
        ),
        (
            b"{\"v\":1,\"cmd\":\"arm\",\"sku\":\"1\",\"trigger\":{\"in_ns\":-5}}",
            "invalid value",
        ),
        (b"{\"v\":1,\"cmd\":\"wait\"}", "missing field `arm`"),
        (
            b"{\"v\":1,\"cmd\":\"arm\",\"sku\":\"1\",\"trigger\":\"manual\",\"qtty\":2}",
            "unknown field `qtty`",
        ),
        (
            b"{\"v\":1,\"cmd\":\"status\",\"verbose\":true}",
            "unknown field `verbose`",
        ),
    ];
    for (line, want) in cases {
        let err = decode_request(line)
            .expect_err(&String::from_utf8_lossy(line))
            .to_string();
        assert!(
            err.contains(want),
            "{:?}: {err}",
            String::from_utf8_lossy(line)
        );
    }
}
