//! Building blocks for the fire-path lab tests: the lab target as a datapath target,
//! rendered orders, and waiting on the datapath's events.

use crossbeam_queue::ArrayQueue;
use quickdraw_datapath::http::{warm_request, Placeholders, RequestTemplate};
use quickdraw_datapath::order::{Event, FireRecord};
use quickdraw_datapath::poll::Idle;
use quickdraw_datapath::runner::{BackendConfig, DatapathConfig};
use quickdraw_datapath::tls;
use quickdraw_datapath::TargetSpec;
use quickdraw_lab::{SERVER_NAME, TARGET_IP, TARGET_PORT};
use rustls_pki_types::ServerName;
use std::net::SocketAddrV4;
use std::path::Path;
use std::time::{Duration, Instant};

pub const POOL: usize = 8;

pub fn target(ca: &Path, warm_interval: Duration) -> TargetSpec {
    let roots = tls::roots_from_pem_file(ca).expect("lab CA");
    TargetSpec {
        name: "lab".into(),
        address: SocketAddrV4::new(TARGET_IP, TARGET_PORT),
        server_name: ServerName::try_from(SERVER_NAME).unwrap().to_owned(),
        tls: tls::client_config(roots, &[b"http/1.1"]).unwrap(),
        connections: POOL,
        warm_request: warm_request(SERVER_NAME, TARGET_PORT, "/healthz")
            .unwrap()
            .into_boxed_slice(),
        warm_interval_ns: warm_interval.as_nanos() as u64,
        response_timeout_ns: 5_000_000_000,
        connect_timeout_ns: 3_000_000_000,
    }
}

pub fn backend(name: &str) -> BackendConfig {
    match name {
        "af_xdp" => BackendConfig::AfXdp(super::lab_engine()),
        _ => BackendConfig::Kernel {
            interface: Some(quickdraw_lab::HOST_IF.into()),
        },
    }
}

pub fn config(backend: BackendConfig, target: TargetSpec) -> DatapathConfig {
    DatapathConfig {
        backend,
        core: None,
        scheduling: Default::default(),
        targets: vec![target],
        max_arms: 16,
        queue_len: 1024,
        // Tests share two cores with nginx: rest when idle rather than spin.
        idle: Idle::Sleep(Duration::from_micros(50)),
        profile_steps: false,
        warming: quickdraw_datapath::warming::Warming::default(),
        sources: Vec::new(),
    }
}

/// The lab's order request for `sku`, with `key` as its Idempotency-Key.
pub fn order(sku: &str, key: &str) -> Box<[u8]> {
    let template = RequestTemplate {
        method: "POST".into(),
        path: "/api/order".into(),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: r#"{{"sku":"{sku}","qty":{qty}}}"#.into(),
    };
    let p = Placeholders {
        sku,
        qty: 1,
        idempotency_key: key,
    };
    template
        .render(SERVER_NAME, TARGET_PORT, &p)
        .unwrap()
        .into_boxed_slice()
}

/// Pops events until `want` returns a value or `limit` passes; every event is also
/// collected into `seen` for diagnostics.
pub fn wait_for<T>(
    events: &ArrayQueue<Event>,
    seen: &mut Vec<Event>,
    limit: Duration,
    mut want: impl FnMut(&Event) -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match events.pop() {
            Some(e) => {
                let got = want(&e);
                seen.push(e);
                if got.is_some() {
                    return got;
                }
            }
            None => std::thread::sleep(Duration::from_micros(200)),
        }
    }
    None
}

/// Waits until the pool reports `warm` connections.
pub fn wait_warm(
    events: &ArrayQueue<Event>,
    seen: &mut Vec<Event>,
    warm: usize,
    limit: Duration,
) -> bool {
    wait_for(events, seen, limit, |e| match e {
        Event::Pool { warm: w, .. } if *w >= warm => Some(()),
        _ => None,
    })
    .is_some()
}

/// Collects `n` final outcomes of `arm`.
pub fn outcomes(
    events: &ArrayQueue<Event>,
    seen: &mut Vec<Event>,
    arm: u64,
    n: usize,
) -> Vec<FireRecord> {
    let mut done = Vec::new();
    while done.len() < n {
        let got = wait_for(events, seen, Duration::from_secs(8), |e| match e {
            Event::Done(r) if r.arm == arm => Some(*r),
            _ => None,
        });
        match got {
            Some(r) => done.push(r),
            None => panic!(
                "only {} of {n} outcomes for arm {arm}; events: {seen:?}",
                done.len()
            ),
        }
    }
    done
}

/// Lines of the nginx access log that record an order carrying `key`, once there are
/// `want` of them or 2 s have passed (nginx writes a line after it sent the response, so
/// the client can see the answer a moment before the line exists). Waiting past `want`
/// a little more would catch a duplicate arriving late: callers compare the length.
pub fn orders_logged(access_log: &Path, key: &str, want: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let text = std::fs::read_to_string(access_log).unwrap_or_default();
        let lines: Vec<String> = text
            .lines()
            .filter(|l| l.contains("POST /api/order") && l.contains(key))
            .map(str::to_owned)
            .collect();
        if lines.len() >= want || Instant::now() >= deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
