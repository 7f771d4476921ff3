//! The daemon's request handling end to end over a socket pair, with a stand-in datapath
//! thread that answers commands the way the real one does: no root, no network.

use super::*;
use crate::journal::record::Record;
use crate::protocol::{
    decode_reply, encode_request, ArmReply, ArmRequest, ArmsReply, Done, FireReply, Request,
    StatsReply, StatusReply, TriggerSpec,
};
use crate::setup::TargetPlan;
use crossbeam_queue::ArrayQueue;
use quickdraw_config::{Limits, Timing};
use quickdraw_datapath::http::RequestTemplate;
use quickdraw_datapath::order::Command;
use quickdraw_datapath::order::{Accepted, Event, FireRecord, Outcome, Reject, Stamps, Trigger};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::thread::JoinHandle;

fn lab_target() -> TargetPlan {
    TargetPlan {
        name: "lab".into(),
        host: "target.lab".into(),
        port: 443,
        address: std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(198, 18, 0, 2), 443),
        template: RequestTemplate {
            method: "POST".into(),
            path: "/api/order".into(),
            headers: vec![],
            body: r#"{{"sku":"{sku}","qty":{qty}}}"#.into(),
        },
        connections: 8,
        max_fires_per_arm: 8,
        max_fires_per_minute: 20,
        response_timeout: Duration::from_millis(500),
    }
}

/// A daemon whose datapath is a thread answering commands through the shared state:
/// arms are acknowledged unless they ask for 7 connections (refused, as a full datapath
/// would), and each fire yields one 200 per connection.
struct Rig {
    daemon: Arc<Daemon>,
    stop: Arc<AtomicBool>,
    fake: Option<JoinHandle<Vec<Vec<u8>>>>,
    dir: std::path::PathBuf,
}

impl Rig {
    fn new() -> Rig {
        Rig::with_timing(Timing::default())
    }

    fn with_timing(timing: Timing) -> Rig {
        static RIGS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "qd-daemon-rig-{}-{}",
            std::process::id(),
            RIGS.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        Rig::in_dir(dir, timing)
    }

    /// A rig whose journal lives in `dir` (removed by `finish`).
    fn in_dir(dir: std::path::PathBuf, timing: Timing) -> Rig {
        let (journal, _) = Journal::open(&dir.join("journal.jsonl"), 16).unwrap();
        let journal = Arc::new(Mutex::new(journal));
        let mut state = State::new("kernel", "kernel", false, &["lab".into()]);
        state.apply(Event::Pool {
            target: 0,
            warm: 8,
            wanted: 8,
        });
        let shared = Arc::new(Shared::new(state));
        let commands = Arc::new(ArrayQueue::new(16));
        let stop = Arc::new(AtomicBool::new(false));
        // The fake's events go through the daemon's own pump (and journal).
        let events = Arc::new(ArrayQueue::new(64));
        let pump = pump::spawn(
            events.clone(),
            shared.clone(),
            journal.clone(),
            stop.clone(),
        )
        .unwrap();
        let fake = {
            let (commands, stop) = (commands.clone(), stop.clone());
            std::thread::spawn(move || {
                let armed = fake_datapath(&events, &commands, &stop);
                pump.join().unwrap();
                armed
            })
        };
        let daemon = Arc::new(Daemon {
            shared,
            commands,
            targets: vec![lab_target()],
            rng: SystemRandom::new(),
            down: AtomicBool::new(false),
            journal,
            timing,
            limits: Limits::default(),
            allowed_uid: rustix::process::geteuid().as_raw(),
            sync_running: Mutex::new(()),
        });
        Rig {
            daemon,
            stop,
            fake: Some(fake),
            dir,
        }
    }

    /// The journal's records so far.
    fn journaled(&self) -> Vec<Record> {
        let text = std::fs::read(self.dir.join("journal.jsonl")).unwrap();
        crate::journal::parse(&text)
            .lines
            .into_iter()
            .map(|l| l.record)
            .collect()
    }

    /// One request line in, one reply line out, over a real socket pair.
    fn ask_raw(&self, line: &[u8]) -> Vec<u8> {
        let (mut client, server) = UnixStream::pair().unwrap();
        let daemon = self.daemon.clone();
        let t = std::thread::spawn(move || server::serve(server, &daemon));
        client.write_all(line).unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).unwrap();
        t.join().unwrap().unwrap();
        reply
    }

    fn ask<T: serde::de::DeserializeOwned>(&self, request: &Request) -> Result<T, String> {
        let reply = self.ask_raw(encode_request(request).as_bytes());
        decode_reply(&reply).map_err(|e| e.to_string())
    }

    /// The requests the fake datapath was asked to arm.
    fn finish(mut self) -> Vec<Vec<u8>> {
        self.stop.store(true, Ordering::Relaxed);
        let armed = self.fake.take().unwrap().join().unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
        armed
    }
}

fn fire_events(arm: u64, n: usize, trigger_ns: u64, scheduled_ns: u64) -> Vec<Event> {
    let stamps = Stamps {
        trigger_ns,
        tx_ns: trigger_ns + 12_300,
        first_byte_ns: trigger_ns + 399_000,
        complete_ns: trigger_ns + 409_050,
        scheduled_ns,
        ..Stamps::default()
    };
    let sent = (0..n).map(|conn| Event::Sent {
        arm,
        conn,
        local: None,
        stamps,
    });
    let done = (0..n).map(|conn| {
        Event::Done(FireRecord {
            arm,
            conn,
            local: None,
            stamps,
            outcome: Outcome::Status(200),
        })
    });
    sent.chain(done).collect()
}

/// The server clock the fake datapath's probes read: ours plus this.
const FAKE_SERVER_OFFSET_NS: i64 = 250_000_000;

fn fake_date(real_ns: i64) -> [u8; 29] {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(real_ns.into()).unwrap();
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(format).unwrap().into_bytes().try_into().unwrap()
}

fn fake_datapath(
    queue: &ArrayQueue<Event>,
    commands: &ArrayQueue<Command>,
    stop: &AtomicBool,
) -> Vec<Vec<u8>> {
    let mut armed = Vec::new();
    let mut conns = std::collections::HashMap::new();
    // Scheduled arms: id → deadline.
    let mut due: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        let now = crate::timing::clock::monotonic_ns();
        let fired: Vec<u64> = due
            .iter()
            .filter(|&(_, &d)| d <= now)
            .map(|(&a, _)| a)
            .collect();
        for arm in fired {
            let deadline = due.remove(&arm).unwrap();
            let n = conns.remove(&arm).unwrap();
            emit(queue, fire_events(arm, n, now, deadline));
        }
        let Some(command) = commands.pop() else {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        };
        let ack = |req, result| Event::Ack { req, result };
        let events = match command {
            Command::Arm { req, spec } if spec.conns == 7 => {
                vec![ack(req, Err(Reject::TooManyArms))]
            }
            Command::Arm { req, spec } => {
                armed.push(spec.request.to_vec());
                conns.insert(spec.arm, spec.conns);
                if let Trigger::At(deadline) = spec.trigger {
                    due.insert(spec.arm, deadline);
                }
                vec![ack(req, Ok(Accepted::Armed { conns: spec.conns }))]
            }
            Command::Fire { req, arm } => match conns.remove(&arm) {
                None => vec![ack(req, Err(Reject::UnknownArm))],
                Some(n) => {
                    due.remove(&arm);
                    let mut events = fire_events(arm, n, crate::timing::clock::monotonic_ns(), 0);
                    events.insert(n, ack(req, Ok(Accepted::Fired { sent: n })));
                    events
                }
            },
            Command::Disarm { req, arm } => match conns.remove(&arm) {
                None => vec![ack(req, Err(Reject::UnknownArm))],
                Some(_) => {
                    due.remove(&arm);
                    vec![ack(req, Ok(Accepted::Disarmed))]
                }
            },
            Command::Probe { req, .. } => {
                // The server stamps its Date 50 µs after the send; the answer's first
                // byte comes 100 µs after the send.
                let pair = crate::timing::clock::ClockPair::now();
                let date = fake_date(pair.real_ns + 50_000 + FAKE_SERVER_OFFSET_NS);
                vec![
                    ack(req, Ok(Accepted::Probing)),
                    Event::Probed {
                        req,
                        sent_ns: pair.mono_ns,
                        first_byte_ns: pair.mono_ns + 100_000,
                        status: 204,
                        date: Some(date),
                    },
                ]
            }
            // The daemon sends nothing else.
            other => panic!("unexpected command {other:?}"),
        };
        emit(queue, events);
    }
    armed
}

fn emit(queue: &ArrayQueue<Event>, events: Vec<Event>) {
    for mut e in events {
        while let Err(back) = queue.push(e) {
            e = back;
            std::thread::yield_now();
        }
    }
}

fn arm_request(sku: &str, conns: usize) -> Request {
    scheduled(sku, conns, TriggerSpec::Manual)
}

fn scheduled(sku: &str, conns: usize, trigger: TriggerSpec) -> Request {
    Request::Arm(ArmRequest {
        sku: sku.into(),
        qty: 1,
        conns,
        target: None,
        trigger,
        arrive: None,
    })
}

#[test]
fn arm_fire_and_status_through_the_socket() {
    let rig = Rig::new();
    let status: StatusReply = rig.ask(&Request::Status {}).unwrap();
    assert!(status.ready && status.arms.is_empty());
    assert_eq!((status.targets[0].warm, status.targets[0].wanted), (8, 8));

    let one: ArmReply = rig.ask(&arm_request("1001", 1)).unwrap();
    assert_eq!((one.arm, one.target.as_str(), one.conns), (1, "lab", 1));
    assert_eq!(one.key.len(), 32);
    let status: StatusReply = rig.ask(&Request::Status {}).unwrap();
    assert_eq!(status.arms.len(), 1);
    assert_eq!(status.arms[0].key, one.key);

    let fired: FireReply = rig.ask(&Request::Fire { arm: None }).unwrap();
    assert!(fired.complete);
    assert_eq!(
        (fired.arm, fired.key.as_str(), fired.outcomes.len()),
        (1, one.key.as_str(), 1)
    );
    assert_eq!(fired.outcomes[0].status, Some(200));
    let s = fired.outcomes[0].stamps;
    assert_eq!(s.tx_ns - s.trigger_ns, 12_300);

    let again = rig
        .ask::<FireReply>(&Request::Fire { arm: Some(1) })
        .unwrap_err();
    assert_eq!(again, "arm 1 is done, not armed");

    let burst: ArmReply = rig.ask(&arm_request("1002", 8)).unwrap();
    assert_eq!(burst.arm, 2);
    assert_ne!(burst.key, one.key);
    let fired: FireReply = rig.ask(&Request::Fire { arm: Some(2) }).unwrap();
    assert_eq!(fired.outcomes.len(), 8);
    let conns: std::collections::HashSet<_> = fired.outcomes.iter().map(|o| o.conn).collect();
    assert_eq!(conns.len(), 8);

    let requests = rig.finish();
    let first = String::from_utf8(requests[0].clone()).unwrap();
    assert!(
        first.contains(&format!("Idempotency-Key: {}\r\n", one.key)),
        "{first}"
    );
    assert!(first.ends_with(r#"{"sku":"1001","qty":1}"#), "{first}");
}

#[test]
fn fire_without_an_id_needs_exactly_one_armed_order() {
    let rig = Rig::new();
    assert_eq!(
        rig.ask::<FireReply>(&Request::Fire { arm: None })
            .unwrap_err(),
        "no armed order to fire"
    );
    let a: ArmReply = rig.ask(&arm_request("1", 1)).unwrap();
    let b: ArmReply = rig.ask(&arm_request("2", 1)).unwrap();
    let err = rig
        .ask::<FireReply>(&Request::Fire { arm: None })
        .unwrap_err();
    assert_eq!(
        err,
        format!("2 arms are armed ({}, {}): say which to fire", a.arm, b.arm)
    );
    assert_eq!(
        rig.ask::<FireReply>(&Request::Fire { arm: Some(99) })
            .unwrap_err(),
        "no arm 99"
    );

    let done: Done = rig.ask(&Request::Disarm { arm: a.arm }).unwrap();
    assert_eq!(done.arm, Some(a.arm));
    let err = rig
        .ask::<Done>(&Request::Disarm { arm: a.arm })
        .unwrap_err();
    assert_eq!(err, format!("arm {} is disarmed, not armed", a.arm));
    let fired: FireReply = rig.ask(&Request::Fire { arm: None }).unwrap();
    assert_eq!(fired.arm, b.arm);
    rig.finish();
}

#[test]
fn arm_refusals_reach_the_client() {
    let rig = Rig::new();
    let cases = [
        (
            arm_request("1001", 9),
            "conns 9 is over target lab's 8 (max_fires_per_arm)",
        ),
        (
            arm_request("10 01", 1),
            "sku \"10 01\": must be 1 to 64 characters",
        ),
        (
            arm_request("1001", 7),
            "the datapath refused arm 1: it holds as many arms as it can",
        ),
        (
            Request::Arm(ArmRequest {
                sku: "1".into(),
                qty: 1,
                conns: 1,
                target: Some("prod".into()),
                trigger: TriggerSpec::Manual,
                arrive: None,
            }),
            "unknown target \"prod\" (configured: lab)",
        ),
    ];
    for (request, want) in cases {
        let err = rig.ask::<ArmReply>(&request).unwrap_err();
        assert!(err.starts_with(want), "{err} (wanted {want})");
    }
    assert!(
        rig.finish().is_empty(),
        "nothing refused reached the datapath"
    );
}

#[test]
fn malformed_and_oversized_requests_get_error_replies() {
    let rig = Rig::new();
    for (line, want) in [
        (&b"hello\n"[..], "not JSON"),
        (
            b"{\"v\":1,\"cmd\":\"explode\"}\n",
            "unknown variant `explode`",
        ),
        (b"{\"v\":9,\"cmd\":\"status\"}\n", "version 9 not supported"),
        (b"\n", "not JSON"),
    ] {
        let reply = rig.ask_raw(line);
        let err = decode_reply::<StatusReply>(&reply).unwrap_err().to_string();
        assert!(
            err.contains(want),
            "{}: {err}",
            String::from_utf8_lossy(line)
        );
    }

    // One connection: a bad line is answered and the next one still served.
    let reply = rig.ask_raw(b"{oops\n{\"v\":1,\"cmd\":\"status\"}\n");
    let lines: Vec<&[u8]> = reply
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(decode_reply::<StatusReply>(lines[0]).is_err());
    assert!(decode_reply::<StatusReply>(lines[1]).unwrap().ready);

    // Oversized: refused, connection closed, daemon fine.
    let mut huge = b"{\"v\":1,\"cmd\":\"status\",\"pad\":\"".to_vec();
    huge.resize(200 * 1024, b'x');
    huge.extend_from_slice(b"\"}\n");
    let (mut client, server) = UnixStream::pair().unwrap();
    let daemon = rig.daemon.clone();
    let t = std::thread::spawn(move || server::serve(server, &daemon));
    // The daemon stops reading after the limit: write from another thread, and expect
    // the write to fail once the daemon closes.
    let mut writer = client.try_clone().unwrap();
    let w = std::thread::spawn(move || writer.write_all(&huge));
    let mut line = Vec::new();
    BufReader::new(&mut client)
        .read_until(b'\n', &mut line)
        .unwrap();
    let err = decode_reply::<StatusReply>(&line).unwrap_err().to_string();
    assert_eq!(err, "request longer than 65536 bytes");
    t.join().unwrap().unwrap();
    drop(client);
    let _ = w.join().unwrap();
    let status: StatusReply = rig.ask(&Request::Status {}).unwrap();
    assert!(status.running);
    rig.finish();
}

#[test]
fn down_waits_for_the_stop_and_marks_the_reply() {
    let rig = Rig::new();
    let daemon = rig.daemon.clone();
    let watcher = std::thread::spawn(move || {
        while !daemon.down.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
        }
        daemon.shared.update(|s| {
            s.stopped = true;
            s.running = false;
        });
    });
    let _: Done = rig.ask(&Request::Down {}).unwrap();
    watcher.join().unwrap();
    assert!(rig.daemon.shared.lock().down_replied);
    let err = rig.ask::<ArmReply>(&arm_request("1", 1)).unwrap_err();
    assert_eq!(err, "the datapath is not running");
    rig.finish();
}

mod journal_full;
mod scheduled;
mod scrape;
