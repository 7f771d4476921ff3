//! The event pump: drains the datapath's event queue into the shared state, continuously,
//! so the datapath never finds its queue full, whatever the clients are doing. What must
//! survive a crash (a send, an outcome, a refused or dropped arm) is journaled, and on
//! disk, before the state shows it to anyone.

use super::state::{outcome_view, stamps_view, Ask, Shared, State};
use crate::journal::record::Record;
use crate::journal::Journal;
use crossbeam_queue::ArrayQueue;
use quickdraw_datapath::order::Event;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Rest between empty polls: events wait at most this long, and the pump costs little.
const IDLE: Duration = Duration::from_micros(500);
/// Rest between empty polls for a while after an event: answers to commands just sent
/// (a clock sync's probes, a fire's outcomes) reach their waiters within tens of µs.
const EAGER: Duration = Duration::from_micros(20);
/// How long after an event the pump stays eager.
const EAGER_FOR: Duration = Duration::from_millis(20);
/// Events applied under one lock, so a burst does not hold the state for long.
const BATCH: usize = 256;

/// Starts the pump; it stops once `stop` is set and the queue is empty.
pub fn spawn(
    events: Arc<ArrayQueue<Event>>,
    shared: Arc<Shared>,
    journal: Arc<Mutex<Journal>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("control-pump".into())
        .spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            let mut records = Vec::with_capacity(BATCH);
            let mut eager_until = Instant::now();
            loop {
                let stopping = stop.load(Ordering::Relaxed);
                while batch.len() < BATCH {
                    match events.pop() {
                        Some(e) => batch.push(e),
                        None => break,
                    }
                }
                if batch.is_empty() {
                    if stopping {
                        return;
                    }
                    let eager = Instant::now() < eager_until;
                    std::thread::sleep(if eager { EAGER } else { IDLE });
                    continue;
                }
                eager_until = Instant::now() + EAGER_FOR;
                {
                    let s = shared.lock();
                    records.extend(batch.iter().filter_map(|e| to_record(&s, e)));
                }
                let mut healthy = None;
                if !records.is_empty() {
                    let mut j = journal.lock().unwrap_or_else(|p| p.into_inner());
                    for r in records.drain(..) {
                        let written = j.append(r);
                        if let Err(e) = &written {
                            // Keep serving: the outcome still reaches the operator, who
                            // is told the journal failed.
                            tracing::error!(error = %e, path = %j.path().display(), "journal write failed");
                        }
                        healthy = Some(written.is_ok());
                    }
                }
                shared.update(|s| {
                    if let Some(ok) = healthy {
                        s.journal_healthy = ok;
                    }
                    batch.drain(..).for_each(|e| s.apply(e))
                });
            }
        })
}

/// The journal line an event calls for, if any.
fn to_record(s: &State, event: &Event) -> Option<Record> {
    match event {
        Event::Sent {
            arm, conn, stamps, ..
        } => Some(Record::Sent {
            arm: *arm,
            conn: *conn,
            stamps: stamps_view(stamps),
        }),
        Event::Done(r) => Some(Record::Outcome {
            arm: r.arm,
            outcome: outcome_view(r),
        }),
        // Only a refusal of the arm itself closes it (not of a fire or disarm of it).
        Event::Ack { req, result } => match (s.asked(*req)?, result) {
            (Ask::Arm(arm), Err(reason)) => Some(Record::Rejected {
                arm,
                reason: reason.to_string(),
            }),
            (Ask::Disarm(arm), Ok(_)) => Some(Record::Disarmed { arm }),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::lifecycle::ArmStep;
    use crate::daemon::state::ArmRecord;
    use crate::journal::replay;
    use crate::protocol::ArmState;
    use quickdraw_datapath::order::{FireRecord, Outcome, Stamps};

    fn journal(tag: &str) -> (Arc<Mutex<Journal>>, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("qd-pump-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("journal.jsonl");
        let (j, _) = Journal::open(&path, 16).unwrap();
        (Arc::new(Mutex::new(j)), dir)
    }

    #[test]
    fn drains_the_queue_into_the_state_then_stops() {
        let shared = Arc::new(Shared::new(State::new(
            "kernel",
            "kernel",
            false,
            &["lab".into()],
        )));
        let (journal, dir) = journal("drain");
        let events = Arc::new(ArrayQueue::new(8));
        let stop = Arc::new(AtomicBool::new(false));
        let pump = spawn(events.clone(), shared.clone(), journal, stop.clone()).unwrap();
        for warm in 1..=100 {
            while events
                .push(Event::Pool {
                    target: 0,
                    warm,
                    wanted: 100,
                })
                .is_err()
            {
                std::thread::yield_now();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        assert_eq!(
            shared.wait_for(deadline, |s| s.ready().then_some(())),
            Some(())
        );
        stop.store(true, Ordering::Relaxed);
        pump.join().unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn sends_and_outcomes_are_journaled_before_they_are_shown() {
        let shared = Arc::new(Shared::new(State::new(
            "kernel",
            "kernel",
            false,
            &["lab".into()],
        )));
        shared.update(|s| {
            s.insert_arm(ArmRecord::new(1, ("1001", 1, "k1"), (0, "lab"), 1));
            s.step(1, ArmStep::Acked);
        });
        let (journal, dir) = journal("order");
        let events = Arc::new(ArrayQueue::new(8));
        let stop = Arc::new(AtomicBool::new(false));
        let pump = spawn(
            events.clone(),
            shared.clone(),
            journal.clone(),
            stop.clone(),
        )
        .unwrap();
        let stamps = Stamps {
            trigger_ns: 10,
            tx_ns: 20,
            first_byte_ns: 30,
            complete_ns: 40,
            scheduled_ns: 7,
            ..Stamps::default()
        };
        events
            .push(Event::Sent {
                arm: 1,
                conn: 2,
                local: None,
                stamps,
            })
            .unwrap();
        events
            .push(Event::Done(FireRecord {
                arm: 1,
                conn: 2,
                local: None,
                stamps,
                outcome: Outcome::Status(201),
            }))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let seen = shared.wait_for(deadline, |s| {
            let a = s.arm(1)?;
            (a.state() == ArmState::Done).then_some(a.error_ns)
        });
        assert_eq!(
            seen,
            Some(Some(3)),
            "the scheduled fire's error is trigger − deadline"
        );
        // Once the state shows it, the journal has it.
        let path = journal.lock().unwrap().path().to_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines = crate::journal::parse(text.as_bytes()).lines;
        let arms = replay::fold(
            &[
                vec![crate::journal::record::Line {
                    t: 0,
                    record: Record::Arm(crate::journal::record::ArmEntry {
                        arm: 1,
                        key: "k1".into(),
                        sku: "1001".into(),
                        qty: 1,
                        target: "lab".into(),
                        conns: 1,
                        at: None,
                        on: None,
                    }),
                }],
                lines,
            ]
            .concat(),
        );
        assert_eq!(arms[&1].state, ArmState::Done);
        assert_eq!(arms[&1].outcomes[0].status, Some(201));
        assert_eq!(arms[&1].sent, vec![(2, stamps_view(&stamps))]);
        stop.store(true, Ordering::Relaxed);
        pump.join().unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }
}
