//! The event-trigger part of the appliance's turn: event sources run right after the
//! links are polled, and each event fires every unfired arm whose predicate it matches,
//! in that same turn, with the event's receive stamp (the clock once it was read and
//! matched) as the trigger.
//! An arm fires at most once; nothing here allocates once the sources are up.

use super::Appliance;
use crate::event::source::{AnySource, Source, SourceChange, SourceSpec};
use crate::link::Link;
use crate::order::{Event, Stamps, Trigger};
use crate::poll::Work;
use crate::warming::Pass;

/// The sources of one datapath thread and the arms one turn's events made due.
#[derive(Debug)]
pub(super) struct Feeds {
    sources: Vec<AnySource>,
    /// Which link carries each source.
    link: Vec<usize>,
    /// Arm slots matched in the current turn; capacity = the arm slots, no duplicates.
    due: Vec<usize>,
}

impl Feeds {
    pub(super) fn new(max_arms: usize) -> Feeds {
        Feeds {
            sources: Vec::new(),
            link: Vec::new(),
            due: Vec::with_capacity(max_arms),
        }
    }

    /// Whether the trigger names a source that exists (other triggers: always).
    pub(super) fn knows(&self, trigger: &Trigger) -> bool {
        match trigger {
            Trigger::Event { source, .. } => *source < self.sources.len(),
            _ => true,
        }
    }
}

impl<L: Link> Appliance<L> {
    /// Adds an event source carried by link `link`; arms name it by the index returned
    /// (sources are numbered in the order they are added). Call before the loop starts.
    ///
    /// # Panics
    /// If `link` does not exist (a bug in the caller's setup).
    pub fn add_source(&mut self, spec: SourceSpec, link: usize) -> usize {
        assert!(link < self.links.len(), "source link out of range");
        self.feeds.sources.push(AnySource::new(spec));
        self.feeds.link.push(link);
        self.feeds.sources.len() - 1
    }

    /// Whether source `source` receives events now.
    pub fn source_live(&self, source: usize) -> bool {
        self.feeds.sources.get(source).is_some_and(Source::is_live)
    }

    /// Warms the event path between events, for every source an unfired arm watches:
    /// the source's receive side ([`Source::warm`]: for SSE the record decryption), then
    /// every such arm's predicate on its source's last event, result discarded. After
    /// 20 ms without events, matching one event took about 0.6 µs (the predicate's and
    /// the JSON scanner's code cold), opening its TLS record about 0.5 µs. Predicates
    /// are pure and never allocate; nothing is read from the wire or fired here.
    pub(super) fn warm_events(&mut self) {
        for s in 0..self.feeds.sources.len() {
            let watched = self.arms.iter().flatten().any(|a| {
                !a.fired && matches!(&a.spec.trigger, Trigger::Event { source, .. } if *source == s)
            });
            if watched {
                self.feeds.sources[s].warm();
            }
        }
        for arm in self.arms.iter().flatten().filter(|a| !a.fired) {
            if let Trigger::Event { source, matcher } = &arm.spec.trigger {
                if let Some(s) = self.feeds.sources.get(*source) {
                    std::hint::black_box(matcher.matches(std::hint::black_box(s.last_event())));
                }
            }
        }
    }

    /// Runs every source at `now`; returns the clock after the last fire (or `now`).
    pub(super) fn feed_events(&mut self, now: u64, work: &mut Work) -> u64 {
        let mut after = now;
        for s in 0..self.feeds.sources.len() {
            let link = &mut self.links[self.feeds.link[s]];
            let (arms, due) = (&self.arms, &mut self.feeds.due);
            let progressed = self.feeds.sources[s].progress(link, now, &mut |data| {
                for (slot, arm) in arms.iter().enumerate() {
                    let Some(arm) = arm else { continue };
                    let Trigger::Event { source, matcher } = &arm.spec.trigger else {
                        continue;
                    };
                    if *source == s && !arm.fired && !due.contains(&slot) && matcher.matches(data) {
                        due.push(slot);
                    }
                }
            });
            if progressed {
                *work = Work::Busy;
            }
            // The event's receive stamp: the clock once its last byte has been read,
            // decrypted, parsed and matched (the turn's `now` can be older than the
            // event: a kernel socket is read in the middle of the turn). One clock read,
            // only when something fires.
            let stamps = if self.feeds.due.is_empty() {
                Stamps::triggered(now)
            } else {
                let link = &self.links[self.feeds.link[s]];
                Stamps {
                    rx_ns: link.rx_seen_ns(),
                    ..Stamps::triggered(link.now_ns().max(now))
                }
            };
            for i in 0..self.feeds.due.len() {
                let slot = self.feeds.due[i];
                after = after.max(self.fire(slot, stamps, Pass::Live).0);
            }
            self.feeds.due.clear();
            if let Some(change) = self.feeds.sources[s].take_change() {
                let (live, message) = match change {
                    SourceChange::Live => (true, None),
                    SourceChange::Down(message) => (false, message),
                };
                self.emit(Event::Source {
                    source: s,
                    live,
                    message,
                });
            }
        }
        after
    }
}

#[cfg(test)]
mod tests;
