//! The metrics endpoint scraped over TCP and parsed by a Prometheus text parser
//! (prometheus-parse): what a Prometheus server would store, checked against the state.

use crate::daemon::metrics;
use crate::daemon::state::{Shared, State};
use crate::protocol::{FireOutcome, StampsView, SyncReply};
use prometheus_parse::{Sample, Scrape, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

fn scrape(addr: std::net::SocketAddr) -> Scrape {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    Scrape::parse(lines).expect("the exposition parses")
}

fn find<'a>(scrape: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect()
}

fn number(s: &Sample) -> f64 {
    match s.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        ref other => panic!("{} is not a number: {other:?}", s.metric),
    }
}

fn outcome(status: u16, trigger_ns: u64) -> FireOutcome {
    FireOutcome {
        conn: Some(0),
        result: "status".into(),
        status: Some(status),
        unknown: None,
        stamps: StampsView {
            trigger_ns,
            tx_ns: trigger_ns + 3_500,
            first_byte_ns: trigger_ns + 60_000,
            complete_ns: trigger_ns + 75_000,
            scheduled_ns: 0,
        },
    }
}

#[test]
fn a_scrape_parses_and_says_what_the_state_says() {
    let mut state = State::new("af_xdp", "copy", true, &["lab".into(), "venue".into()]);
    state.pools[0].warm = 8;
    state.pools[0].wanted = 8;
    state.pools[1].wanted = 4;
    state.pools[0].sync = Some((
        SyncReply {
            target: "lab".into(),
            offset_ns: -4_000,
            uncertainty_ns: 27_000,
            rtt_ns: 48_000,
            one_way_ns: 24_000,
            resolution_ns: 9_000,
            probes: 41,
            failed: 0,
            elapsed_ns: 3_900_000_000,
            at: "2026-12-01T10:00:00.000000Z".into(),
        },
        1,
    ));
    for i in 0..10 {
        state.stats.outcome(0, &outcome(200, 1_000 + i));
    }
    state.stats.outcome(1, &outcome(503, 1_000));
    state.stats.count(0, |c| c.requests = 10);
    let shared = Arc::new(Shared::new(state));
    let addr = metrics::spawn("127.0.0.1:0".parse().unwrap(), shared.clone()).unwrap();
    let scrape = scrape(addr);

    let info = find(&scrape, "quickdraw_build_info", &[("backend", "af_xdp")]);
    assert_eq!(info.len(), 1);
    assert_eq!(
        info[0].labels.get("version"),
        Some(env!("CARGO_PKG_VERSION"))
    );
    let ok = find(
        &scrape,
        "quickdraw_outcomes_total",
        &[("target", "lab"), ("outcome", "ok")],
    );
    assert_eq!(ok.iter().map(|s| number(s)).sum::<f64>(), 10.0);
    assert!(matches!(ok[0].value, Value::Counter(_)), "{ok:?}");
    let bad = find(
        &scrape,
        "quickdraw_outcomes_total",
        &[("target", "venue"), ("outcome", "non_2xx")],
    );
    assert_eq!(number(bad[0]), 1.0);
    let warm = find(&scrape, "quickdraw_warm_connections", &[("target", "lab")]);
    assert!(
        matches!(warm[0].value, Value::Gauge(v) if v == 8.0),
        "{warm:?}"
    );
    let offset = find(
        &scrape,
        "quickdraw_clock_offset_seconds",
        &[("target", "lab")],
    );
    assert_eq!(number(offset[0]), -4e-6);
    assert!(
        find(
            &scrape,
            "quickdraw_clock_offset_seconds",
            &[("target", "venue")]
        )
        .is_empty(),
        "no offset before a sync"
    );
    let pm = find(
        &scrape,
        "quickdraw_clock_offset_uncertainty_seconds",
        &[("target", "lab")],
    );
    assert_eq!(number(pm[0]), 27e-6);
    assert_eq!(
        number(find(&scrape, "quickdraw_journal_healthy", &[])[0]),
        1.0
    );
    assert_eq!(number(find(&scrape, "quickdraw_up", &[])[0]), 1.0);
    assert_eq!(
        number(find(&scrape, "quickdraw_open_arms", &[("target", "lab")])[0]),
        0.0
    );

    // Latency: a histogram per target, with fixed buckets, its count and sum.
    let tx = find(
        &scrape,
        "quickdraw_trigger_to_tx_seconds",
        &[("target", "lab")],
    );
    assert_eq!(tx.len(), 1, "{tx:?}");
    let Value::Histogram(buckets) = &tx[0].value else {
        panic!("{tx:?} is not a histogram");
    };
    let under_5us = buckets
        .iter()
        .find(|b| (b.less_than - 5e-6).abs() < 1e-12)
        .unwrap();
    assert_eq!(under_5us.count, 10.0, "{buckets:?}");
    let under_2us = buckets
        .iter()
        .find(|b| (b.less_than - 2e-6).abs() < 1e-12)
        .unwrap();
    assert_eq!(under_2us.count, 0.0);
    assert!(
        buckets.windows(2).all(|w| w[0].count <= w[1].count),
        "cumulative"
    );
    assert!(
        !scrape
            .samples
            .iter()
            .any(|s| matches!(s.value, Value::Summary(_))),
        "no summaries (and so no max quantile)"
    );
    // Every family is documented.
    for s in &scrape.samples {
        let base = s
            .metric
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        assert!(
            scrape.docs.contains_key(&s.metric) || scrape.docs.contains_key(base),
            "{} has no HELP",
            s.metric
        );
    }
}
