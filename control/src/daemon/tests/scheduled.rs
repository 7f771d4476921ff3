//! Scheduled arms, the fire-rate cap and clock sync through the daemon, on the stand-in
//! datapath (its fake server clock runs [`FAKE_SERVER_OFFSET_NS`] ahead of ours).

use super::*;

#[test]
fn a_scheduled_arm_fires_at_its_deadline_and_reports_its_error() {
    let rig = Rig::new();
    let armed: ArmReply = rig
        .ask(&scheduled("1001", 2, TriggerSpec::InNs(60_000_000)))
        .unwrap();
    let sch = armed.scheduled.clone().expect("a schedule in the reply");
    assert_eq!(sch.correction_ns, 0);
    assert_eq!(sch.at, sch.fire_at);
    // Not the only armed *manual* order: `fire` without an id leaves it alone.
    assert_eq!(
        rig.ask::<FireReply>(&Request::Fire { arm: None })
            .unwrap_err(),
        "no armed order to fire"
    );
    let done: FireReply = rig
        .ask(&Request::Wait {
            arm: armed.arm,
            timeout_ms: None,
        })
        .unwrap();
    assert!(done.complete, "{done:?}");
    assert_eq!(done.outcomes.len(), 2);
    for o in &done.outcomes {
        assert_eq!(o.stamps.scheduled_ns, sch.deadline_ns);
    }
    let error = done.error_ns.expect("a scheduled fire has an error");
    assert!(
        error >= 0,
        "the trigger cannot precede its deadline: {error}"
    );
    assert_eq!(
        error,
        done.outcomes[0].stamps.trigger_ns as i64 - sch.deadline_ns as i64
    );

    let stats: StatsReply = rig.ask(&Request::Stats {}).unwrap();
    assert_eq!(
        (
            stats.counters.arms,
            stats.counters.fires,
            stats.counters.scheduled_fires,
            stats.counters.requests
        ),
        (1, 1, 1, 2)
    );
    let err = stats
        .latency
        .iter()
        .find(|l| l.metric == "schedule_error")
        .unwrap();
    assert_eq!(err.count, 1);
    let arms: ArmsReply = rig.ask(&Request::Arms {}).unwrap();
    assert_eq!(arms.arms[0].error_ns, Some(error));

    // The journal has the arm (with its instant) before anything else about it, then the
    // sends and the outcomes.
    let kinds: Vec<&str> = rig
        .journaled()
        .iter()
        .map(|r| match r {
            Record::Arm(e) => {
                // The reply shows µs; the journal keeps ns.
                let shown = crate::timing::text::parse_utc(&sch.at).unwrap();
                assert!(
                    (0..1_000).contains(&(e.at.unwrap().fire_ns - shown)),
                    "{e:?}"
                );
                "arm"
            }
            Record::Sent { .. } => "sent",
            Record::Outcome { .. } => "outcome",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["arm", "sent", "sent", "outcome", "outcome"]);
    rig.finish();
}

#[test]
fn schedules_that_cannot_be_kept_are_refused() {
    let rig = Rig::new();
    let cases = [
        (
            TriggerSpec::At("2020-01-01T00:00:00.000000Z".into()),
            "2020-01-01T00:00:00.000000Z is in the past",
        ),
        (TriggerSpec::InNs(1_000_000), "is too soon"),
        (
            TriggerSpec::At("2099-01-01T00:00:00Z".into()),
            "ahead (timing.max_ahead_s)",
        ),
        (
            TriggerSpec::At("2026-11-27T09:00:00+01:00".into()),
            "is not in UTC",
        ),
        (TriggerSpec::At("soon".into()), "not an RFC 3339 instant"),
    ];
    for (trigger, want) in cases {
        let err = rig
            .ask::<ArmReply>(&scheduled("1", 1, trigger))
            .unwrap_err();
        assert!(err.contains(want), "{err} (wanted {want})");
    }
    let mut arrive = scheduled("1", 1, TriggerSpec::InNs(2_000_000_000));
    if let Request::Arm(a) = &mut arrive {
        a.arrive = Some(true);
    }
    let err = rig.ask::<ArmReply>(&arrive).unwrap_err();
    assert!(
        err.contains("run `control sync --target lab` first"),
        "{err}"
    );
    let mut manual = arm_request("1", 1);
    if let Request::Arm(a) = &mut manual {
        a.arrive = Some(true);
    }
    let err = rig.ask::<ArmReply>(&manual).unwrap_err();
    assert!(err.contains("--arrive applies to scheduled arms"), "{err}");
    assert!(
        rig.finish().is_empty(),
        "nothing refused reached the datapath"
    );
}

#[test]
fn a_scheduled_arm_can_be_fired_early_by_name_or_disarmed() {
    let rig = Rig::new();
    let a: ArmReply = rig
        .ask(&scheduled("1", 1, TriggerSpec::InNs(60_000_000_000)))
        .unwrap();
    let fired: FireReply = rig.ask(&Request::Fire { arm: Some(a.arm) }).unwrap();
    assert!(fired.complete && fired.error_ns.is_none(), "{fired:?}");
    assert_eq!(fired.outcomes[0].stamps.scheduled_ns, 0, "fired by hand");

    let b: ArmReply = rig
        .ask(&scheduled("2", 1, TriggerSpec::InNs(60_000_000_000)))
        .unwrap();
    let c: ArmReply = rig.ask(&arm_request("3", 1)).unwrap();
    let all: crate::protocol::DisarmedAll = rig.ask(&Request::DisarmAll {}).unwrap();
    assert_eq!(all.disarmed, vec![b.arm, c.arm]);
    assert!(all.failed.is_empty());
    let waited: FireReply = rig
        .ask(&Request::Wait {
            arm: b.arm,
            timeout_ms: Some(10),
        })
        .unwrap();
    assert_eq!(waited.state, Some(crate::protocol::ArmState::Disarmed));
    assert!(!waited.complete);
    let journal = rig.journaled();
    assert!(journal.contains(&Record::Fire { arm: a.arm }));
    assert!(journal.contains(&Record::Disarm { arm: b.arm }));
    assert!(journal.contains(&Record::Disarmed { arm: c.arm }));
    rig.finish();
}

#[test]
fn the_fire_rate_cap_counts_sent_and_armed_requests() {
    let rig = Rig::new(); // lab_target: 20 requests a minute
    let a: ArmReply = rig.ask(&arm_request("1", 8)).unwrap();
    let _: FireReply = rig.ask(&Request::Fire { arm: Some(a.arm) }).unwrap();
    let _: ArmReply = rig.ask(&arm_request("2", 8)).unwrap();
    let err = rig.ask::<ArmReply>(&arm_request("3", 5)).unwrap_err();
    assert!(
        err.contains("16 request(s) sent in the last minute or armed, and 5 more would pass its max_fires_per_minute (20)"),
        "{err}"
    );
    let _: ArmReply = rig.ask(&arm_request("4", 4)).unwrap();
    rig.finish();
}

#[test]
fn sync_measures_the_server_clock_and_arrive_uses_it() {
    let rig = Rig::new();
    let sync: crate::protocol::SyncReply = rig.ask(&Request::Sync { target: None }).unwrap();
    let error = sync.offset_ns - FAKE_SERVER_OFFSET_NS;
    // The fake's server stamps 50 µs into a 100 µs round trip; the machine is noisy, so
    // only the estimator's own claim is held to, plus a generous bound.
    assert!(error.abs() <= sync.uncertainty_ns, "{sync:?}");
    assert!(error.abs() < 20_000_000, "{sync:?}");
    assert!(
        sync.probes <= 80 && sync.elapsed_ns <= 5_100_000_000,
        "{sync:?}"
    );

    let mut arrive = scheduled("1", 1, TriggerSpec::InNs(500_000_000));
    if let Request::Arm(a) = &mut arrive {
        a.arrive = Some(true);
    }
    let armed: ArmReply = rig.ask(&arrive).unwrap();
    let s = armed.scheduled.unwrap();
    assert_eq!(s.correction_ns, sync.offset_ns + sync.one_way_ns);
    let status: StatusReply = rig.ask(&Request::Status {}).unwrap();
    assert_eq!(status.targets[0].sync.as_ref(), Some(&sync));
    rig.finish();
}
