//! `bench run --trigger event`: tick-to-trade in the lab, measured wire to wire. One
//! datapath thread runs the AF_XDP and kernel backends side by side, each with its own
//! event source (an SSE stream from the lab's event server, or the UDP feed) and its own
//! pool to the lab's nginx. Per fire: an event arm (`seq == N && go == 1`) is armed on
//! one backend; after the gap a non-matching event for the same `seq` is sent (it must
//! never fire), then the matching one. The tc stamper on `qd1` stamps the event frame
//! leaving the server and the order frame arriving at nginx, on the datapath's clock:
//! wire to wire is the difference. Backends alternate in a shuffled order each round.

use super::{spawn_collector, Backend};
use crate::measure::{match_fires, Conn, Fire, Percentiles, Series};
use anyhow::{bail, Context};
use quickdraw_bpf::{Direction, StampFilter, Stamper, WireStamp};
use quickdraw_config::Config;
use quickdraw_datapath::clock::monotonic_ns;
use quickdraw_datapath::event::predicate::Matcher;
use quickdraw_datapath::event::source::SourceSpec;
use quickdraw_datapath::event::sse_source::SseSpec;
use quickdraw_datapath::event::udp_source::UdpSpec;
use quickdraw_datapath::order::{ArmSpec, Command, Event, Outcome, Trigger};
use quickdraw_datapath::poll::Idle;
use quickdraw_datapath::runner::{self, BackendConfig, DatapathConfig, Handle};
use quickdraw_datapath::{setup, tls};
use quickdraw_lab::events::{udp_feed, EventServer, EVENTS_PATH, EVENTS_PORT, UDP_PORT};
use quickdraw_lab::LabPaths;
use quickdraw_lab::{self as lab, LabSession, APPLIANCE_IP, KERNEL_IP, NETNS, PEER_IF, TARGET_IP};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which event source the run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    /// The lab's SSE server, one stream per backend.
    Sse,
    /// The lab's UDP sender, to each backend's feed address.
    Udp,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct EventRunOptions {
    /// The appliance configuration (its first target takes the orders).
    pub config: PathBuf,
    /// Which source carries the events.
    pub source: EventSource,
    /// Counted fires per backend.
    pub fires: usize,
    /// Fires per backend made first and not counted.
    pub warm_up: usize,
    /// Armed wait before each event, jittered ±20%.
    pub gap: Duration,
    /// Where to write the JSON report.
    pub json: Option<PathBuf>,
    /// Leave the datapath unpinned.
    pub no_pin: bool,
    /// Seed of the interleaving and jitter.
    pub seed: u64,
}

/// One backend's numbers, all ns.
#[derive(Debug, Clone, Serialize)]
pub struct EventBackendReport {
    /// Counted fires.
    pub fires: usize,
    /// Fires answered 200.
    pub ok: usize,
    /// Fires whose event frame and order frame were both found on the wire.
    pub matched: usize,
    /// Fires on a non-matching event (must be 0).
    pub false_fires: usize,
    /// Event frame leaving the server → order frame arriving at it (qd1 stamps).
    pub wire_to_wire_ns: Option<Percentiles>,
    /// Event frame on the wire → the datapath turn that decoded it (our trigger stamp):
    /// the receive side (ring, stack, TLS for SSE, parse, match).
    pub event_wire_to_trigger_ns: Option<Percentiles>,
    /// The receive floor (AF_XDP only): the event frame on the wire → the turn that found
    /// it waiting in our Rx ring, before any protocol work. What the lab's veth and the
    /// kernel's XDP path cost, which the appliance cannot make shorter.
    pub event_wire_to_rx_ns: Option<Percentiles>,
    /// Our receive work (AF_XDP only): found in the Rx ring → event matched (stack, TLS
    /// for SSE, parse, match).
    pub rx_to_trigger_ns: Option<Percentiles>,
    /// Wire to wire less the receive floor (AF_XDP only): the appliance's own share.
    pub rx_to_wire_ns: Option<Percentiles>,
    /// Trigger → order frame on the wire: the send side, as `bench run` measures it.
    pub trigger_to_wire_ns: Option<Percentiles>,
    /// Trigger → kick returned (`event_to_tx` in `control stats`).
    pub event_to_tx_ns: Option<Percentiles>,
}

/// The run's report.
#[derive(Debug, Clone, Serialize)]
pub struct EventRunReport {
    /// Always "event".
    pub trigger: &'static str,
    /// The source measured.
    pub source: EventSource,
    /// Counted fires per backend.
    pub fires_per_backend: usize,
    /// The armed wait before each event.
    pub gap_ns: u64,
    /// Per backend: "af_xdp", "kernel".
    pub backends: BTreeMap<&'static str, EventBackendReport>,
    /// Wire stamps the ring had no room for.
    pub stamps_lost: u64,
    /// Why the numbers cannot be trusted (see [`EventRunReport::check`]); empty for a
    /// good run.
    pub problems: Vec<String>,
}

/// One fire as the datapath and the driver saw it.
#[derive(Debug, Clone, Copy)]
struct Sample {
    backend: Backend,
    warm_up: bool,
    /// The host clock just before the matching event was handed to the server/socket.
    sent_ns: u64,
    local: Option<SocketAddrV4>,
    trigger_ns: u64,
    /// When the event's frames were found in our Rx ring (AF_XDP), else 0.
    rx_ns: u64,
    tx_ns: u64,
    ok: bool,
    false_fire: bool,
}

fn backend_ip(b: Backend) -> Ipv4Addr {
    match b {
        Backend::AfXdp => APPLIANCE_IP,
        _ => KERNEL_IP,
    }
}

/// Runs the measurement; writes the JSON report when asked.
pub fn run(opts: &EventRunOptions) -> anyhow::Result<EventRunReport> {
    let config =
        Config::load(&opts.config).with_context(|| format!("loading {}", opts.config.display()))?;
    if config.targets.is_empty() {
        bail!("{}: no target", opts.config.display());
    }
    let _lab = if lab::status().map(|s| s.up).unwrap_or(false) {
        None
    } else {
        Some(LabSession::start()?)
    };
    let paths = LabPaths::standard();
    let server = EventServer::start(&paths).context("starting the lab event server")?;

    let mut stamper = Stamper::load()?;
    stamper.set_filter(StampFilter {
        data_only: true,
        udp: opts.source == EventSource::Udp,
        ..StampFilter::network(TARGET_IP, 24)
    })?;
    stamper
        .attach_in_netns(NETNS, PEER_IF)
        .context("attaching the wire stamper to the lab peer")?;
    let stop = Arc::new(AtomicBool::new(false));
    let collector = spawn_collector(stamper, stop.clone());
    let result = measure(opts, &config, &paths, &server);
    stop.store(true, Ordering::Relaxed);
    let (stamps, health) = collector
        .join()
        .map_err(|_| anyhow::anyhow!("stamp collector panicked"))??;
    let samples = result?;
    let report = analyse(
        opts,
        &samples,
        &stamps,
        health.lost,
        config.targets[0].address,
    );
    if let Some(path) = &opts.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

fn source_spec(
    source: EventSource,
    ca: &std::path::Path,
    backend: Backend,
) -> anyhow::Result<SourceSpec> {
    Ok(match source {
        EventSource::Sse => {
            let roots = tls::roots_from_pem_file(ca)?;
            SourceSpec::Sse(SseSpec {
                name: "lab-sse".into(),
                address: SocketAddrV4::new(TARGET_IP, EVENTS_PORT),
                server_name: rustls::pki_types::ServerName::try_from(lab::SERVER_NAME)?.to_owned(),
                tls: tls::client_config(roots, &[b"http/1.1"])?,
                host: lab::SERVER_NAME.into(),
                port: EVENTS_PORT,
                path: EVENTS_PATH.into(),
                connect_timeout_ns: 3_000_000_000,
                idle_timeout_ns: 0,
                max_event: 4096,
            })
        }
        EventSource::Udp => SourceSpec::Udp(UdpSpec {
            name: "lab-udp".into(),
            addr: backend_ip(backend),
            port: UDP_PORT,
            max_event: 1024,
        }),
    })
}

fn measure(
    opts: &EventRunOptions,
    config: &Config,
    paths: &LabPaths,
    server: &EventServer,
) -> anyhow::Result<Vec<Sample>> {
    let t = &config.targets[0];
    let mut spec = setup::target_spec(t)?;
    spec.connections = 1;
    let datapath = DatapathConfig {
        backend: BackendConfig::AfXdp(setup::engine_config(config, 4)),
        core: (!opts.no_pin).then_some(config.appliance.core),
        scheduling: Default::default(),
        targets: vec![spec.clone(), spec],
        max_arms: 8,
        queue_len: 4096,
        idle: Idle::Spin,
        profile_steps: false,
        warming: quickdraw_datapath::warming::Warming::default(),
        sources: vec![
            (source_spec(opts.source, &paths.ca_cert, Backend::AfXdp)?, 0),
            (
                source_spec(opts.source, &paths.ca_cert, Backend::Kernel)?,
                1,
            ),
        ],
    };
    let kernel = BackendConfig::Kernel {
        interface: Some(config.appliance.interface.clone()),
    };
    let handle = runner::spawn_links(datapath, vec![kernel], vec![0, 1])?;
    let template = setup::template(t);
    let mut events = Vec::new();
    let ready = |events: &[Event]| {
        let warm = |target| {
            events.iter().rev().find_map(|e| match e {
                Event::Pool {
                    target: t, warm, ..
                } if *t == target => Some(*warm),
                _ => None,
            }) >= Some(1)
        };
        let live = |source| {
            events.iter().rev().find_map(|e| match e {
                Event::Source {
                    source: s, live, ..
                } if *s == source => Some(*live),
                _ => None,
            }) == Some(true)
        };
        warm(0) && warm(1) && live(0) && live(1)
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while !(ready(&events)
        && (opts.source == EventSource::Udp
            || (server.subscribed(APPLIANCE_IP) >= 1 && server.subscribed(KERNEL_IP) >= 1)))
    {
        if Instant::now() > deadline {
            bail!("the pools and event sources did not come up: {events:?}");
        }
        drain(&handle, &mut events);
        std::thread::sleep(Duration::from_millis(5));
    }

    let mut rng = fastrand::Rng::with_seed(opts.seed);
    let mut samples = Vec::new();
    let mut next_arm = 1u64;
    for round in 0..opts.warm_up + opts.fires {
        let mut order = [Backend::AfXdp, Backend::Kernel];
        rng.shuffle(&mut order);
        for backend in order {
            let arm = next_arm;
            next_arm += 1;
            let (target, source) = if backend == Backend::AfXdp {
                (0, 0)
            } else {
                (1, 1)
            };
            let key = format!("bench-ev-{}-{arm}", opts.seed);
            let p = quickdraw_datapath::http::Placeholders {
                sku: "1001",
                qty: 1,
                idempotency_key: &key,
            };
            let request = template.render(&t.server_name, t.address.port(), &p)?;
            let matcher = Matcher::compile(&format!("seq == {arm} && go == 1"))?;
            let spec = ArmSpec {
                arm,
                target,
                request: request.into_boxed_slice(),
                conns: 1,
                trigger: Trigger::Event {
                    source,
                    matcher: Arc::new(matcher),
                },
            };
            push(
                &handle,
                Command::Arm {
                    req: arm,
                    spec: Box::new(spec),
                },
            )?;
            let acked = wait(
                &handle,
                &mut events,
                |e| matches!(e, Event::Ack { req, .. } if *req == arm),
            )?;
            if let Event::Ack {
                result: Err(reason),
                ..
            } = acked
            {
                bail!("arm {arm} refused: {reason}");
            }
            let gap = opts.gap.mul_f64(rng.f64() * 0.4 + 0.8);
            std::thread::sleep(gap / 2);
            let miss = format!(r#"{{"seq":{arm},"go":0}}"#);
            let hit = format!(r#"{{"seq":{arm},"go":1}}"#);
            send(server, opts.source, backend, &miss)?;
            std::thread::sleep(gap / 2);
            drain(&handle, &mut events);
            let false_fire = events
                .iter()
                .any(|e| matches!(e, Event::Sent { arm: a, .. } if *a == arm));
            let sent_ns = monotonic_ns();
            send(server, opts.source, backend, &hit)?;
            let sent = wait(
                &handle,
                &mut events,
                |e| matches!(e, Event::Sent { arm: a, .. } if *a == arm),
            );
            let (local, stamps) = match sent {
                Ok(Event::Sent { local, stamps, .. }) => (local, stamps),
                _ => (None, Default::default()),
            };
            let ok = wait(
                &handle,
                &mut events,
                |e| matches!(e, Event::Done(r) if r.arm == arm),
            )
            .is_ok_and(|e| matches!(e, Event::Done(r) if r.outcome == Outcome::Status(200)));
            samples.push(Sample {
                backend,
                warm_up: round < opts.warm_up,
                sent_ns,
                local,
                trigger_ns: stamps.trigger_ns,
                rx_ns: stamps.rx_ns,
                tx_ns: stamps.tx_ns,
                ok,
                false_fire,
            });
            events.clear();
        }
    }
    handle.stop();
    Ok(samples)
}

fn send(
    server: &EventServer,
    source: EventSource,
    backend: Backend,
    data: &str,
) -> anyhow::Result<()> {
    match source {
        EventSource::Sse => {
            let event = format!("data: {data}\n\n");
            let reached = server.send_sse_to(
                Some(backend_ip(backend)),
                event.as_bytes(),
                &[],
                Duration::ZERO,
            );
            if reached == 0 {
                bail!("the {} SSE stream is gone", backend.name());
            }
        }
        EventSource::Udp => server.send_udp(udp_feed(backend_ip(backend)), data.as_bytes())?,
    }
    Ok(())
}

fn push(handle: &Handle, command: Command) -> anyhow::Result<()> {
    handle
        .commands
        .push(command)
        .map_err(|_| anyhow::anyhow!("the datapath's command queue is full"))
}

fn drain(handle: &Handle, events: &mut Vec<Event>) {
    while let Some(e) = handle.events.pop() {
        events.push(e);
    }
}

/// Waits (bounded) for an event `want` accepts, keeping every event seen.
fn wait(
    handle: &Handle,
    events: &mut Vec<Event>,
    want: impl Fn(&Event) -> bool,
) -> anyhow::Result<Event> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(e) = events.iter().find(|e| want(e)) {
            return Ok(e.clone());
        }
        if Instant::now() > deadline {
            bail!("timed out; events: {events:?}");
        }
        drain(handle, events);
        // Not a spin: on a small machine this thread would take the datapath's core.
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// The event frame of a sample: the first data frame leaving the server towards the
/// backend's address after the event was handed over (SSE: from the event server's
/// port; UDP: the feed's datagram, stamped as the stamper sees it).
fn event_frame(stamps: &[WireStamp], s: &Sample, source: EventSource) -> Option<u64> {
    let ip = backend_ip(s.backend);
    stamps
        .iter()
        .filter(|w| w.direction == Direction::Egress && w.has_data() && w.ns >= s.sent_ns)
        .filter(|w| *w.dst.ip() == ip)
        .find(|w| match source {
            EventSource::Sse => w.src.port() == EVENTS_PORT,
            EventSource::Udp => w.dst.port() == UDP_PORT,
        })
        .map(|w| w.ns)
}

fn analyse(
    opts: &EventRunOptions,
    samples: &[Sample],
    stamps: &[WireStamp],
    lost: u64,
    remote: SocketAddrV4,
) -> EventRunReport {
    let mut backends = BTreeMap::new();
    for backend in [Backend::AfXdp, Backend::Kernel] {
        let counted: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.backend == backend && !s.warm_up)
            .collect();
        let (mut w2w, mut rx, mut t2w, mut tx) =
            (Series::new(), Series::new(), Series::new(), Series::new());
        let (mut floor, mut ours_rx, mut ours) = (Series::new(), Series::new(), Series::new());
        let mut matched = 0;
        for s in &counted {
            if s.tx_ns > s.trigger_ns && s.trigger_ns > 0 {
                tx.record(s.tx_ns - s.trigger_ns);
            }
            let (Some(local), Some(event_ns)) = (s.local, event_frame(stamps, s, opts.source))
            else {
                continue;
            };
            let fire = Fire {
                conn: Conn { local, remote },
                trigger_ns: event_ns,
                request_len: None,
            };
            let m = match_fires(&[fire], stamps);
            let Some(Some(m)) = m.outcomes.first() else {
                continue;
            };
            matched += 1;
            w2w.record(m.request_ns.saturating_sub(event_ns));
            rx.record(s.trigger_ns.saturating_sub(event_ns));
            t2w.record(m.request_ns.saturating_sub(s.trigger_ns));
            // A ring stamp before the event's wire stamp is an older turn's (the frame
            // landed between the ring check and the read): not a sample.
            if s.rx_ns >= event_ns && s.rx_ns <= s.trigger_ns {
                floor.record(s.rx_ns - event_ns);
                ours_rx.record(s.trigger_ns - s.rx_ns);
                ours.record(m.request_ns.saturating_sub(s.rx_ns));
            }
        }
        backends.insert(
            backend.name(),
            EventBackendReport {
                fires: counted.len(),
                ok: counted.iter().filter(|s| s.ok).count(),
                matched,
                false_fires: counted.iter().filter(|s| s.false_fire).count(),
                wire_to_wire_ns: w2w.percentiles(),
                event_wire_to_trigger_ns: rx.percentiles(),
                event_wire_to_rx_ns: floor.percentiles(),
                rx_to_trigger_ns: ours_rx.percentiles(),
                rx_to_wire_ns: ours.percentiles(),
                trigger_to_wire_ns: t2w.percentiles(),
                event_to_tx_ns: tx.percentiles(),
            },
        );
    }
    let problems = problems(&backends, lost);
    EventRunReport {
        trigger: "event",
        source: opts.source,
        fires_per_backend: opts.fires,
        gap_ns: opts.gap.as_nanos() as u64,
        backends,
        stamps_lost: lost,
        problems,
    }
}

/// What makes an event run's numbers untrustworthy, the rules of `bench run`'s
/// (`analyse::problems`): more than [`super::MAX_UNMATCHED_PCT`] of a backend's fires
/// without both wire stamps, any fire on a non-matching event, any stamp lost.
fn problems(backends: &BTreeMap<&'static str, EventBackendReport>, lost: u64) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, b) in backends {
        let unmatched = b.fires - b.matched.min(b.fires);
        if super::analyse::too_many(unmatched, b.fires) {
            problems.push(format!(
                "{name}: {unmatched} of {} fires without both the event's and the order's \
                 wire stamp at the peer (more than {}%); is the stamper on {} blind (a \
                 foreign qdisc?) or did frames not leave?",
                b.fires,
                super::MAX_UNMATCHED_PCT,
                quickdraw_lab::PEER_IF
            ));
        }
        if b.false_fires > 0 {
            problems.push(format!(
                "{name}: {} fires on a non-matching event",
                b.false_fires
            ));
        }
    }
    if lost > 0 {
        problems.push(super::analyse::stamps_lost(lost));
    }
    problems
}

impl EventRunReport {
    /// Fails, with every problem in the message, when the numbers cannot be trusted.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.problems.is_empty() {
            return Ok(());
        }
        bail!(
            "this event run cannot be trusted:\n  - {}",
            self.problems.join("\n  - ")
        )
    }

    /// The table for a person, µs.
    pub fn table(&self) -> String {
        let us = |p: &Option<Percentiles>, f: fn(&Percentiles) -> u64| {
            p.as_ref()
                .map_or("-".to_owned(), |p| format!("{:.1}", f(p) as f64 / 1000.0))
        };
        let mut out = format!(
            "{:<8} {:<26} {:>8} {:>8} {:>8} {:>8}\n",
            "backend", "metric (µs)", "p50", "p90", "p99", "max"
        );
        for (name, b) in &self.backends {
            for (metric, p) in [
                ("wire_to_wire", &b.wire_to_wire_ns),
                ("event_wire_to_trigger", &b.event_wire_to_trigger_ns),
                ("event_wire_to_rx (floor)", &b.event_wire_to_rx_ns),
                ("rx_to_trigger", &b.rx_to_trigger_ns),
                ("rx_to_wire (ours)", &b.rx_to_wire_ns),
                ("trigger_to_wire", &b.trigger_to_wire_ns),
                ("event_to_tx", &b.event_to_tx_ns),
            ] {
                out += &format!(
                    "{:<8} {:<26} {:>8} {:>8} {:>8} {:>8}\n",
                    name,
                    metric,
                    us(p, |p| p.p50),
                    us(p, |p| p.p90),
                    us(p, |p| p.p99),
                    us(p, |p| p.max)
                );
            }
            out += &format!(
                "{:<8} fires {} ok {} matched {} false_fires {}\n",
                name, b.fires, b.ok, b.matched, b.false_fires
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(fires: usize, matched: usize, false_fires: usize) -> EventBackendReport {
        EventBackendReport {
            fires,
            ok: fires,
            matched,
            false_fires,
            wire_to_wire_ns: None,
            event_wire_to_trigger_ns: None,
            event_wire_to_rx_ns: None,
            rx_to_trigger_ns: None,
            rx_to_wire_ns: None,
            trigger_to_wire_ns: None,
            event_to_tx_ns: None,
        }
    }

    #[test]
    fn a_blind_stamper_a_false_fire_or_a_lost_stamp_makes_an_event_run_untrustworthy() {
        let good = BTreeMap::from([
            ("af_xdp", backend(300, 300, 0)),
            ("kernel", backend(300, 297, 0)),
        ]);
        assert!(problems(&good, 0).is_empty(), "1 % unmatched is allowed");
        let blind = BTreeMap::from([
            ("af_xdp", backend(15, 0, 0)),
            ("kernel", backend(15, 15, 0)),
        ]);
        let p = problems(&blind, 0);
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("af_xdp: 15 of 15 fires"), "{p:?}");
        assert!(!p[0].contains("  "), "one line of prose: {p:?}");
        let false_fire = BTreeMap::from([("kernel", backend(300, 300, 1))]);
        assert_eq!(problems(&false_fire, 0).len(), 1);
        assert_eq!(problems(&good, 2).len(), 1, "stamps lost");
    }
}
