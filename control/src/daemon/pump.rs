//! The event pump: drains the datapath's event queue into the shared state, continuously,
//! so the datapath never finds its queue full, whatever the clients are doing.

use super::state::Shared;
use crossbeam_queue::ArrayQueue;
use quickdraw_datapath::order::Event;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Rest between empty polls: events wait at most this long, and the pump costs little.
const IDLE: Duration = Duration::from_micros(500);
/// Events applied under one lock, so a burst does not hold the state for long.
const BATCH: usize = 256;

/// Starts the pump; it stops once `stop` is set and the queue is empty.
pub fn spawn(
    events: Arc<ArrayQueue<Event>>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("control-pump".into())
        .spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
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
                    std::thread::sleep(IDLE);
                    continue;
                }
                shared.update(|s| batch.drain(..).for_each(|e| s.apply(e)));
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::state::State;
    use std::time::Instant;

    #[test]
    fn drains_the_queue_into_the_state_then_stops() {
        let shared = Arc::new(Shared::new(State::new(
            "kernel",
            "kernel",
            false,
            &["lab".into()],
        )));
        let events = Arc::new(ArrayQueue::new(8));
        let stop = Arc::new(AtomicBool::new(false));
        let pump = spawn(events.clone(), shared.clone(), stop.clone()).unwrap();
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
    }
}
