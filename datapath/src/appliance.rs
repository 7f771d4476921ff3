//! What a datapath thread runs each turn: triggers first, then commands, then packets,
//! then every connection's progress. It owns the links (usually one; the bench runs two
//! side by side on one thread), the warm pools of every target,
//! and the armed orders; it talks to the control plane only through its two queues.

use crate::conn::WarmConn;
use crate::link::Link;
use crate::order::{
    Accepted, ArmId, ArmSpec, Command, Event, FireRecord, Outcome, Reject, RequestId, Stamps,
    Trigger,
};
use crate::poll::{Turn, Work};
use crate::target::TargetSpec;
use crate::warming::{Pass, Warming};
use crossbeam_queue::ArrayQueue;
use std::collections::VecDeque;
use std::sync::Arc;

/// An order waiting for its trigger, or fired and waiting for its outcomes.
#[derive(Debug)]
struct Arm {
    /// `spec.arm`, kept beside the slot: finding a fire's arm reads no `ArmSpec`.
    id: ArmId,
    spec: Box<ArmSpec>,
    /// Connections (indices into `Appliance::conns`) holding this arm's pre-sealed record.
    conns: Vec<usize>,
    fired: bool,
    /// Outcomes still to come after the fire.
    outstanding: usize,
}

/// Commands handled per turn: enough for any burst of control traffic, few enough that a
/// turn stays short.
const COMMANDS_PER_TURN: usize = 8;

/// The datapath's state machine over a link.
#[derive(Debug)]
pub struct Appliance<L: Link> {
    links: Vec<L>,
    /// Which link carries each target.
    target_link: Vec<usize>,
    targets: Vec<TargetSpec>,
    conns: Vec<WarmConn>,
    arms: Vec<Option<Arm>>,
    commands: Arc<ArrayQueue<Command>>,
    events: Arc<ArrayQueue<Event>>,
    /// Events the queue had no room for yet; capacity fixed at start, so holding them
    /// never allocates. Outcomes are never dropped while there is room here.
    backlog: VecDeque<Event>,
    /// Warm connections per target as last reported.
    warm: Vec<usize>,
    /// Connections (indices into `conns`) sent on in the current fire, awaiting their tx
    /// stamp; capacity fixed at start.
    fired: Vec<usize>,
    /// Events lost because both the queue and the backlog were full.
    pub events_dropped: u64,
    /// When link counters were last reported.
    counted_at: u64,
    /// Step profiling: two extra clock reads per fire (see [`Stamps::queued_ns`]). Off
    /// in production; the bench turns it on to say where the time goes.
    pub profile: bool,
    /// When and how the send path is kept warm while an order is armed.
    pub warming: Warming,
    /// Send warmings done (our half), rehearsals of a fire among them, and warm frames
    /// sent (the kernel's half).
    pub warmings: u64,
    pub rehearsals: u64,
    pub warm_frames: u64,
    /// When send warming last ran, and which connection it warms next (round robin).
    warmed_at: u64,
    warm_next: usize,
    /// When the last warm frame went out.
    wired_at: u64,
    /// When the last turn's work was done (a scheduled fire's `turn_before_end_ns`).
    turned_ns: u64,
    /// A raw frame is prepared and waits for its `Raw` command (warmed like an order).
    raw_armed: bool,
    /// Event sources and the arms their events fire (see `appliance/events.rs`).
    feeds: events::Feeds,
}

/// How often link counters are reported (while nothing is armed).
const COUNTERS_NS: u64 = 1_000_000_000;

/// The final approach to a deadline: in its last 10 µs a turn does nothing but look for
/// due triggers, so the next turn (and its clock read) follows at once and a deadline is
/// caught within a clock read rather than within a whole turn (commands, received
/// frames, every connection's progress: a few µs when frames arrive). Commands and
/// frames that come in that window wait for the fire, at most this long. Longer than
/// the longest ordinary turn seen in the lab (scheduled error p99 0.4–2.1 µs before).
pub const APPROACH_NS: u64 = 10_000;

impl<L: Link> Appliance<L> {
    /// An appliance whose targets all go over `link`.
    pub fn new(
        link: L,
        targets: Vec<TargetSpec>,
        max_arms: usize,
        commands: Arc<ArrayQueue<Command>>,
        events: Arc<ArrayQueue<Event>>,
    ) -> Appliance<L> {
        let target_link = vec![0; targets.len()];
        Appliance::with_links(vec![link], target_link, targets, max_arms, commands, events)
    }

    /// An appliance over several links; target `t` goes over `links[target_link[t]]`.
    ///
    /// # Panics
    /// If a target names a link that does not exist (a bug in the caller's setup).
    pub fn with_links(
        links: Vec<L>,
        target_link: Vec<usize>,
        targets: Vec<TargetSpec>,
        max_arms: usize,
        commands: Arc<ArrayQueue<Command>>,
        events: Arc<ArrayQueue<Event>>,
    ) -> Appliance<L> {
        assert_eq!(
            target_link.len(),
            targets.len(),
            "one link index per target"
        );
        assert!(
            target_link.iter().all(|&l| l < links.len()),
            "target link out of range"
        );
        crate::warming::find_code();
        let conns: Vec<WarmConn> = targets
            .iter()
            .enumerate()
            .flat_map(|(t, spec)| (0..spec.connections).map(move |i| (t, i)))
            .map(|(t, i)| WarmConn::new(t, i))
            .collect();
        let total = conns.len();
        let warm = vec![0; targets.len()];
        let backlog = VecDeque::with_capacity(events.capacity() * 2);
        let mut appliance = Appliance {
            links,
            target_link,
            targets,
            conns,
            arms: (0..max_arms).map(|_| None).collect(),
            commands,
            events,
            backlog,
            warm,
            fired: Vec::with_capacity(total),
            events_dropped: 0,
            counted_at: 0,
            profile: false,
            warming: Warming::default(),
            warmings: 0,
            rehearsals: 0,
            turned_ns: 0,
            warm_frames: 0,
            warmed_at: 0,
            warm_next: 0,
            wired_at: 0,
            raw_armed: false,
            feeds: events::Feeds::new(max_arms),
        };
        for t in 0..appliance.targets.len() {
            appliance.emit(Event::Pool {
                target: t,
                warm: 0,
                wanted: appliance.targets[t].connections,
            });
        }
        appliance
    }

    pub fn link(&self) -> &L {
        &self.links[0]
    }

    /// The first link, to inspect its stack (tests, diagnostics).
    pub fn link_mut(&mut self) -> &mut L {
        &mut self.links[0]
    }

    fn emit(&mut self, event: Event) {
        if self.backlog.is_empty() {
            if let Err(event) = self.events.push(event) {
                self.hold(event);
            }
        } else {
            self.hold(event);
        }
    }

    fn hold(&mut self, event: Event) {
        // A pool report supersedes an older one for its target still held: a flapping
        // pool must not fill the backlog and crowd out outcomes.
        if let Event::Pool { target, .. } = event {
            self.backlog
                .retain(|e| !matches!(e, Event::Pool { target: t, .. } if *t == target));
        }
        if self.backlog.len() < self.backlog.capacity() {
            self.backlog.push_back(event);
        } else {
            self.events_dropped += 1;
        }
    }

    fn flush_backlog(&mut self) {
        while let Some(event) = self.backlog.pop_front() {
            if let Err(event) = self.events.push(event) {
                self.backlog.push_front(event);
                break;
            }
        }
    }

    fn arm_slot(&self, id: ArmId) -> Option<usize> {
        self.arms
            .iter()
            .position(|a| a.as_ref().is_some_and(|a| a.id == id))
    }

    /// Answers a command.
    fn ack(&mut self, req: RequestId, result: Result<Accepted, Reject>) {
        self.emit(Event::Ack { req, result });
    }

    /// Handles one command and acknowledges it; returns the turn's `now` afterwards
    /// (later if it fired or sent).
    fn command(&mut self, command: Command, now: u64) -> u64 {
        match command {
            Command::Arm { req, spec } => {
                let result = self.arm(spec, now);
                self.ack(req, result);
            }
            Command::Fire { req, arm } => return self.fire_command(req, arm, now, Pass::Live),
            Command::Probe { req, target } => {
                let Some(spec) = self.targets.get(target) else {
                    self.ack(req, Err(Reject::UnknownTarget));
                    return now;
                };
                let link = &mut self.links[self.target_link[target]];
                // Any idle ready connection (several probes may be in flight at once).
                let sent = self
                    .conns
                    .iter_mut()
                    .filter(|c| c.target == target && c.is_ready() && !c.is_holding())
                    .any(|c| c.probe(link, req, &spec.warm_request, now));
                link.poll(now);
                let after = link.now_ns();
                let result = match sent {
                    true => Ok(Accepted::Probing),
                    false => Err(Reject::NoReadyConnection),
                };
                self.ack(req, result);
                return after;
            }
            Command::PrepareRaw { req, frame } => {
                // On the first link that can hold it; dropping the Box here, off the
                // timed path, is the only cost of its trip across cores.
                self.raw_armed = self.links.iter_mut().any(|l| l.prepare_raw(&frame));
                let result = match self.raw_armed {
                    true => Ok(Accepted::RawPrepared),
                    false => Err(Reject::NoRawPath),
                };
                self.ack(req, result);
            }
            Command::Raw { req } => return self.raw_command(req, now, Pass::Live),
            Command::Disarm { req, arm } => match self.arm_slot(arm) {
                Some(slot) if self.arms[slot].as_ref().is_some_and(|a| a.fired) => {
                    self.ack(req, Err(Reject::AlreadyFired))
                }
                Some(slot) => {
                    let held = self.arms[slot].take().expect("slot holds an arm");
                    for &c in &held.conns {
                        self.conns[c].drop_preseal(arm);
                    }
                    self.ack(req, Ok(Accepted::Disarmed));
                }
                None => self.ack(req, Err(Reject::UnknownArm)),
            },
        }
        now
    }

    /// A `Fire` command: its own function, out of the turn's, so that code warming can
    /// touch and rehearse exactly what a manual fire runs before the kick. A rehearsal
    /// answers nothing.
    #[inline(never)] // code warming touches this very body (warming/code.rs)
    fn fire_command(&mut self, req: RequestId, arm: ArmId, now: u64, pass: Pass) -> u64 {
        let result = match self.arm_slot(arm) {
            Some(slot) if self.arms[slot].as_ref().is_some_and(|a| a.fired) => {
                Err(Reject::AlreadyFired)
            }
            Some(slot) => {
                let (after, sent) = self.fire(slot, Stamps::triggered(now), pass);
                if pass == Pass::Live {
                    self.ack(req, Ok(Accepted::Fired { sent }));
                }
                return after;
            }
            None => Err(Reject::UnknownArm),
        };
        if pass == Pass::Live {
            self.ack(req, result);
        }
        now
    }

    /// A `Raw` command (the bench's floor): the prepared raw frame goes out, once. Its
    /// own function, rehearsed like an order's fire so the floor is kept warm the same
    /// way; a rehearsal sends and answers nothing.
    #[inline(never)] // rehearsed as `fire_command` is
    fn raw_command(&mut self, req: RequestId, now: u64, pass: Pass) -> u64 {
        let sent_on = if self.raw_armed {
            self.links
                .iter_mut()
                .position(|l| l.send_prepared_raw(pass))
        } else {
            None
        };
        if pass == Pass::Rehearsal {
            return now;
        }
        self.raw_armed = false;
        let Some(link) = sent_on else {
            self.ack(req, Err(Reject::NoRawPath));
            return now;
        };
        let tx_ns = self.links[link].now_ns();
        let stamps = Stamps {
            trigger_ns: now,
            tx_ns,
            ..Stamps::default()
        };
        self.ack(req, Ok(Accepted::RawSent { stamps }));
        tx_ns
    }

    fn arm(&mut self, spec: Box<ArmSpec>, now: u64) -> Result<Accepted, Reject> {
        let reject = if spec.target >= self.targets.len() {
            Some(Reject::UnknownTarget)
        } else if !self.feeds.knows(&spec.trigger) {
            Some(Reject::UnknownSource)
        } else if self.arm_slot(spec.arm).is_some() {
            Some(Reject::DuplicateArm)
        } else if spec.conns == 0 || spec.conns > self.targets[spec.target].connections {
            Some(Reject::TooManyConns {
                asked: spec.conns,
                pool: self.targets[spec.target].connections,
            })
        } else if spec.request.len() > crate::conn::MAX_REQUEST {
            Some(Reject::RequestTooLarge)
        } else {
            None
        };
        if let Some(reason) = reject {
            return Err(reason);
        }
        let Some(slot) = self.arms.iter().position(Option::is_none) else {
            return Err(Reject::TooManyArms);
        };
        let conns = Vec::with_capacity(spec.conns);
        let n = spec.conns;
        self.arms[slot] = Some(Arm {
            id: spec.arm,
            spec,
            conns,
            fired: false,
            outstanding: 0,
        });
        self.assign(slot, now);
        Ok(Accepted::Armed { conns: n })
    }

    /// Gives an unfired arm ready connections (preferring ones holding no other arm) and
    /// pre-seals its request on each, until it has as many as it asked for.
    fn assign(&mut self, slot: usize, now: u64) {
        let Some(arm) = self.arms[slot].as_mut() else {
            return;
        };
        if arm.fired {
            return;
        }
        arm.conns.retain(|&c| self.conns[c].holds(arm.spec.arm));
        for c in 0..self.conns.len() {
            if arm.conns.len() >= arm.spec.conns {
                break;
            }
            let conn = &mut self.conns[c];
            if conn.target != arm.spec.target
                || !conn.is_ready()
                || conn.is_holding()
                || arm.conns.contains(&c)
            {
                continue;
            }
            let link = &mut self.links[self.target_link[arm.spec.target]];
            if conn.preseal(link, arm.spec.arm, &arm.spec.request, now) {
                arm.conns.push(c);
            }
        }
    }

    /// Fires the arm in `slot`: the pre-sealed record goes out on each of its connections,
    /// the stack transmits, one kick. Nothing here allocates or logs. Returns the clock
    /// after the kick (the tx stamp), which the rest of the turn uses as its `now`: on
    /// veth the kick can run the peer's whole receive path, so a response may already be
    /// waiting, and stamping it with the trigger's `now` would be wrong. Also returns how
    /// many requests left.
    /// `stamps` holds what is known before the send: the trigger (the turn's `now`),
    /// and for scheduled or event fires the deadline or the receive stamp.
    ///
    /// A [`Pass::Rehearsal`] (send warming) runs the same code up to the kick and
    /// changes nothing: the arm stays unfired, nothing is sent, nothing reported; it
    /// returns `now` and how many requests would have left.
    #[inline(never)] // code warming touches this very body (warming/code.rs)
    fn fire(&mut self, slot: usize, stamps: Stamps, pass: Pass) -> (u64, usize) {
        let now = stamps.trigger_ns;
        let Some(arm) = self.arms[slot].as_mut() else {
            return (now, 0);
        };
        arm.fired |= pass == Pass::Live;
        let id = arm.spec.arm;
        let link = &mut self.links[self.target_link[arm.spec.target]];
        self.fired.clear();
        for &c in &arm.conns {
            if self.conns[c].fire(link, id, &arm.spec.request, stamps, pass) {
                self.fired.push(c);
            }
        }
        // Connections the arm asked for but could not pre-seal on: any ready one of the
        // target, sealed now; first those holding no other arm's record, then those that
        // do (that arm is pre-sealed again at the end of the turn).
        for round in 0..2 {
            if self.fired.len() >= arm.spec.conns {
                break;
            }
            for c in 0..self.conns.len() {
                if self.fired.len() >= arm.spec.conns {
                    break;
                }
                let conn = &mut self.conns[c];
                let spare = conn.target == arm.spec.target
                    && conn.is_ready()
                    && !arm.conns.contains(&c)
                    && !self.fired.contains(&c)
                    && (round == 1 || !conn.is_holding());
                if spare && conn.fire(link, id, &arm.spec.request, stamps, pass) {
                    self.fired.push(c);
                }
            }
        }
        if pass == Pass::Rehearsal {
            return (now, self.fired.len());
        }
        let queued_ns = if self.profile { link.now_ns() } else { 0 };
        let pushed_ns = link.transmit(now, self.profile);
        let tx_ns = link.now_ns();
        let sent = self.fired.len();
        let shortfall = arm.spec.conns - sent;
        arm.outstanding = sent;
        for i in 0..self.fired.len() {
            let c = self.fired[i];
            let stamps = Stamps {
                tx_ns,
                queued_ns,
                pushed_ns,
                ..stamps
            };
            self.conns[c].set_tx(stamps);
            self.emit(Event::Sent {
                arm: id,
                conn: self.conns[c].index,
                local: self.conns[c].local,
                stamps,
            });
        }
        for _ in 0..shortfall {
            let record = FireRecord {
                arm: id,
                conn: usize::MAX,
                local: None,
                stamps,
                outcome: Outcome::NotSent,
            };
            self.emit(Event::Done(record));
        }
        self.finish_if_done(slot);
        (tx_ns, sent)
    }

    fn finish_if_done(&mut self, slot: usize) {
        if self.arms[slot]
            .as_ref()
            .is_some_and(|a| a.fired && a.outstanding == 0)
        {
            self.arms[slot] = None;
        }
    }

    /// Reports every link's counters each [`COUNTERS_NS`], but only while no order is
    /// armed: reading them takes system calls, which must never delay a trigger.
    fn report_counters(&mut self, now: u64) {
        if now.saturating_sub(self.counted_at) < COUNTERS_NS
            || self
                .arms
                .iter()
                .any(|a| a.as_ref().is_some_and(|a| !a.fired))
        {
            return;
        }
        self.counted_at = now;
        for link in 0..self.links.len() {
            if let Some(mut counters) = self.links[link].counters() {
                for conn in self
                    .conns
                    .iter()
                    .filter(|c| self.target_link[c.target] == link)
                {
                    counters.reconnects += conn.reconnects;
                    counters.retransmits += conn.retransmits;
                    counters.tail_probes += conn.tail_probes;
                }
                self.emit(Event::Counters { link, counters });
            }
            if let Some(counts) = self.links[link].queues() {
                self.emit(Event::Queues { link, counts });
            }
        }
    }

    /// Keeps the send path warm while an order is armed (see [`Warming`]): our half
    /// (one connection holding a pre-sealed order has its frame refreshed and its send
    /// path touched, round robin) and the kernel's half (a warm frame through each
    /// link's Tx ring and kick). It runs after the turn's triggers, so it can delay a
    /// due fire by at most one warming, never within the quiet window of a deadline.
    fn warm_send_path(&mut self, now: u64) {
        let mut untimed = self.raw_armed;
        let mut deadline: Option<u64> = None;
        for arm in self.arms.iter().flatten().filter(|a| !a.fired) {
            match arm.spec.trigger {
                Trigger::At(d) => deadline = Some(deadline.map_or(d, |n| n.min(d))),
                _ => untimed = true,
            }
        }
        if !untimed && deadline.is_none() {
            return;
        }
        if self.warming.send_due(now, self.warmed_at, deadline) {
            self.warmed_at = now;
            if self.raw_armed {
                self.links.iter().for_each(Link::warm_raw);
                self.raw_command(0, now, Pass::Rehearsal);
            }
            self.warm_events();
            for i in 0..self.conns.len() {
                let c = (self.warm_next + i) % self.conns.len();
                if let (Some((tag, record)), Some(id)) =
                    (self.conns[c].presealed_bytes(), self.conns[c].link_id())
                {
                    let link = self.target_link[self.conns[c].target];
                    self.links[link].warm(id, tag, record, now);
                    // The fire's own code (sizes from `nm -S` of the release build, rounded
                    // up: 3.3 KiB and 1.2 KiB), all of it: the rehearsal below runs only
                    // what comes before the kick.
                    crate::warming::touch_code(Self::fire_command as *const (), 640);
                    crate::warming::touch_code(Self::fire as *const (), 4096);
                    crate::warming::touch_code(crate::conn::WarmConn::fire::<L> as *const (), 1536);
                    self.links[link].warm_code();
                    // The order this connection holds, fired as a rehearsal (see `Pass`).
                    if let Some(arm) = self.conns[c].held_arm() {
                        self.fire_command(0, arm, now, Pass::Rehearsal);
                        self.rehearsals += 1;
                    }
                    self.warmings += 1;
                    self.warm_next = c + 1;
                    break;
                }
            }
        }
        if self.warming.wire_due(now, self.wired_at, untimed, deadline) {
            self.wired_at = now;
            for link in &mut self.links {
                if link.warm_wire() {
                    self.warm_frames += 1;
                }
            }
        }
    }

    /// Passes a connection's event on; an outcome also counts down its arm.
    fn on_conn_event(&mut self, event: Event) {
        if let Event::Done(record) = &event {
            if let Some(slot) = self.arm_slot(record.arm) {
                if let Some(arm) = self.arms[slot].as_mut() {
                    arm.outstanding = arm.outstanding.saturating_sub(1);
                }
                self.emit(event);
                self.finish_if_done(slot);
                return;
            }
        }
        self.emit(event);
    }
}

impl<L: Link> Turn for Appliance<L> {
    fn turn(&mut self, mut now: u64) -> Work {
        let mut work = Work::Idle;
        let turn_before_end_ns = self.turned_ns;
        // Triggers first: nothing else in the turn may delay a due fire.
        let mut approaching = false;
        let mut waiting = false;
        for slot in 0..self.arms.len() {
            let due = match &self.arms[slot] {
                Some(arm) if !arm.fired => match arm.spec.trigger {
                    Trigger::At(deadline) if deadline <= now => Some(deadline),
                    Trigger::At(deadline) => {
                        approaching |= deadline - now < APPROACH_NS;
                        waiting = true;
                        None
                    }
                    _ => None,
                },
                _ => None,
            };
            if let Some(deadline) = due {
                let stamps = Stamps {
                    scheduled_ns: deadline,
                    turn_before_end_ns,
                    ..Stamps::triggered(now)
                };
                now = self.fire(slot, stamps, Pass::Live).0;
                work = Work::Busy;
            }
        }
        if approaching {
            // Done as soon as begun: a turn in the approach does nothing else.
            self.turned_ns = now;
            return Work::Busy;
        }
        for _ in 0..COMMANDS_PER_TURN {
            let Some(command) = self.commands.pop() else {
                break;
            };
            // A fire (and the floor's raw send) goes straight to its own function, not
            // through `command`'s: the code run is the code rehearsed.
            now = match command {
                Command::Fire { req, arm } => self.fire_command(req, arm, now, Pass::Live),
                Command::Raw { req } => self.raw_command(req, now, Pass::Live),
                command => self.command(command, now),
            };
            work = Work::Busy;
        }

        // Receive only: an event in these frames fires below, before the stack's own
        // sends (ACKs and the like) go out at the end of the turn.
        for link in &mut self.links {
            link.poll_receive(now);
        }
        now = self.feed_events(now, &mut work);
        let mut events: [Option<Event>; 8] = Default::default();
        for c in 0..self.conns.len() {
            let t = self.conns[c].target;
            let mut n = 0;
            let progressed = self.conns[c].progress(
                &mut self.links[self.target_link[t]],
                &self.targets[t],
                now,
                &mut |e| {
                    if n < events.len() {
                        events[n] = Some(e);
                        n += 1;
                    }
                },
            );
            if progressed {
                work = Work::Busy;
            }
            for e in events.iter_mut().take(n) {
                if let Some(e) = e.take() {
                    self.on_conn_event(e);
                }
            }
        }

        // Pools: report changes, and give armed-but-short arms newly ready connections.
        for t in 0..self.targets.len() {
            let warm = self
                .conns
                .iter()
                .filter(|c| c.target == t && c.is_ready())
                .count();
            if warm != self.warm[t] {
                self.warm[t] = warm;
                self.emit(Event::Pool {
                    target: t,
                    warm,
                    wanted: self.targets[t].connections,
                });
                for slot in 0..self.arms.len() {
                    self.assign(slot, now);
                }
            }
        }
        for link in &mut self.links {
            link.finish(now);
        }
        self.warm_send_path(now);
        self.report_counters(now);
        for slot in 0..self.arms.len() {
            // Short: a record went stale, or the arm has fewer connections than it asked
            // for (one it could not have at arm time may be free now, after a disarm).
            let short = self.arms[slot].as_ref().is_some_and(|a| {
                !a.fired
                    && (a.conns.len() < a.spec.conns
                        || a.conns.iter().any(|&c| !self.conns[c].holds(a.spec.arm)))
            });
            if short {
                self.assign(slot, now);
            }
        }
        self.flush_backlog();
        // When this turn's work was done, for a deadline's fire to tell its lateness
        // apart (`Stamps::turn_before_end_ns`): one clock read, and only while a
        // deadline waits; 0 (unknown) otherwise.
        self.turned_ns = match (waiting, self.links.first()) {
            (true, Some(link)) => link.now_ns(),
            _ => 0,
        };
        work
    }
}

mod events;
#[cfg(test)]
mod tests;
