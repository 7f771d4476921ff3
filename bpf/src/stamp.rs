//! [`Stamper`]: the loaded tc timestamping programs, their ring buffer and
//! their attachment to an interface (possibly in another network namespace).

use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use libbpf_rs::{
    MapCore, MapFlags, MapHandle, Object, ObjectBuilder, ProgramInput, ProgramMut, RingBuffer,
    RingBufferBuilder,
};

use crate::counters::stamp_index as index;
use crate::netns::{self, Netns};
use crate::tc::Hooks;
use crate::{
    filter, if_nametoindex, maps, Direction, Error, StampCounters, StampFilter, WireStamp,
};

/// The programs as compiled by `build.rs` from `src/bpf/stamp.bpf.c`.
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/stamp.bpf.o"));

/// Names of the programs (the C functions) and maps, as in `stamp.bpf.c`.
const INGRESS: &str = "stamp_ingress";
const EGRESS: &str = "stamp_egress";
const RING: &str = "stamps";
const CONFIG: &str = "stamp_config";
const COUNTERS: &str = "stamp_counters";

/// `TC_ACT_OK`: end the filter chain, the frame goes on.
pub const TC_ACT_OK: i32 = 0;

/// `TC_ACT_UNSPEC`: what the stamping programs return for every frame: no
/// verdict, the next filter on the hook runs (the lab's loss program, say)
/// and the frame goes on. `TC_ACT_OK` would end the chain at the stamper.
pub const TC_ACT_UNSPEC: i32 = -1;

/// The stamps ring's size after [`Stamper::load`]: 1 MiB, about 21,000
/// records (`STAMP_RING_BYTES`).
pub const DEFAULT_RING_BYTES: u32 = 1 << 20;

/// Records the ring callback has decoded and [`Stamper::poll`] has not yet
/// handed out. Shared with the callback that libbpf calls from inside
/// `ring_buffer__poll`, on the polling thread: the lock is never contended.
#[derive(Debug, Default)]
struct Inbox {
    stamps: Mutex<Vec<WireStamp>>,
    undecodable: AtomicU64,
}

/// Our filters on an interface, and the namespace they were added in:
/// removing them must happen there too. Dropping it removes them.
#[derive(Debug)]
struct Attachment {
    hooks: Option<Hooks>,
    netns: Option<Netns>,
}

impl Attachment {
    fn detach(&mut self) -> Result<(), Error> {
        let Some(mut hooks) = self.hooks.take() else {
            return Ok(());
        };
        netns::within(self.netns.as_ref(), move || hooks.detach())?
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        // Nothing to report to: `Stamper::detach` is there for callers who
        // want the error.
        let _ = self.detach();
    }
}

/// The two tc programs that stamp IPv4/TCP frames on an interface, one on
/// ingress and one on egress, the ring buffer they write, and their
/// attachment.
///
/// Every record is a [`WireStamp`] whose `ns` is `CLOCK_MONOTONIC`, taken by
/// the kernel as the frame crossed the interface. The programs never drop or
/// change a frame. Dropping the `Stamper` removes its filters (and the
/// clsact qdisc, if attaching added it), in the namespace of the attach.
///
/// Unlike the XDP [`Steer`](crate::Steer), which uses a BPF link, tc
/// filters added through netlink outlive a process that dies attached: they
/// go on stamping into a ring nobody reads (harmless: they return
/// `TC_ACT_UNSPEC`), until the interface goes or the next attach replaces them.
#[derive(Debug)]
pub struct Stamper {
    // Declared first so that it drops (detaches) before the programs close,
    // and the ring before the map it maps.
    attachment: Option<Attachment>,
    ring: RingBuffer<'static>,
    inbox: Arc<Inbox>,
    /// Reused by `poll`, so that polling does not allocate once warm.
    batch: Vec<WireStamp>,
    config: MapHandle,
    counters: MapHandle,
    object: Object,
}

impl Stamper {
    /// Loads the programs with a ring of [`DEFAULT_RING_BYTES`]. The filter
    /// stamps every IPv4/TCP frame ([`StampFilter::ANY`]); nothing is
    /// attached yet.
    pub fn load() -> Result<Stamper, Error> {
        Stamper::load_with_ring(DEFAULT_RING_BYTES)
    }

    /// Loads the programs with a ring of `ring_bytes` (a power of two, at
    /// least one 4096-byte page). Each record takes 48 bytes of it.
    pub fn load_with_ring(ring_bytes: u32) -> Result<Stamper, Error> {
        if !ring_bytes.is_power_of_two() || ring_bytes < 4096 {
            return Err(Error::RingSize(ring_bytes));
        }
        let mut open = ObjectBuilder::default()
            .open_memory(OBJECT)
            .map_err(Error::Load)?;
        let mut ring = open
            .maps_mut()
            .find(|m| m.name() == RING)
            .ok_or(Error::Missing {
                kind: "map",
                name: RING,
            })?;
        ring.set_max_entries(ring_bytes).map_err(Error::Load)?;
        let object = open.load().map_err(Error::Load)?;
        for name in [INGRESS, EGRESS] {
            if !object.progs().any(|p| p.name() == name) {
                return Err(Error::Missing {
                    kind: "program",
                    name,
                });
            }
        }
        let inbox = Arc::new(Inbox::default());
        let ring = {
            let map = object
                .maps()
                .find(|m| m.name() == RING)
                .ok_or(Error::Missing {
                    kind: "map",
                    name: RING,
                })?;
            let sink = Arc::clone(&inbox);
            let mut builder = RingBufferBuilder::new();
            builder
                .add(&map, move |record: &[u8]| {
                    match WireStamp::decode(record) {
                        Some(stamp) => sink
                            .stamps
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(stamp),
                        None => {
                            sink.undecodable.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    0
                })
                .map_err(Error::Ring)?;
            builder.build().map_err(Error::Ring)?
        };
        Ok(Stamper {
            attachment: None,
            ring,
            inbox,
            batch: Vec::new(),
            config: maps::checked(&object, CONFIG, 4, filter::CONFIG_LEN as u32, Some(1))?,
            counters: maps::checked(&object, COUNTERS, 4, 8, Some(index::COUNT))?,
            object,
        })
    }

    /// Sets which frames are stamped from now on, attached or not.
    pub fn set_filter(&self, filter: StampFilter) -> Result<(), Error> {
        let config = filter
            .config()
            .ok_or(Error::InvalidPrefix(filter.prefix_len))?;
        self.config
            .update(&0u32.to_ne_bytes(), &config, MapFlags::ANY)
            .map_err(maps::map_error(CONFIG, "update"))
    }

    /// Attaches both programs to interface `ifindex` of the calling thread's
    /// network namespace (clsact ingress and egress). See
    /// [`Stamper::attach_in_netns`] for an interface in another namespace.
    pub fn attach(&mut self, ifindex: u32) -> Result<(), Error> {
        self.attach_within(None, move || Ok(ifindex))
    }

    /// Attaches both programs to the interface called `ifname` in the
    /// named network namespace `netns` (`/run/netns/<netns>`, as made by
    /// `ip netns add`). The netlink work happens on a short-lived thread
    /// that enters the namespace; the calling thread stays where it is.
    /// The `Stamper` keeps the namespace open until it detaches, and
    /// detaches there.
    pub fn attach_in_netns(&mut self, netns: &str, ifname: &str) -> Result<(), Error> {
        let netns = Netns::open(netns)?;
        self.attach_within(Some(netns), || if_nametoindex(ifname))
    }

    fn attach_within(
        &mut self,
        netns: Option<Netns>,
        ifindex: impl FnOnce() -> Result<u32, Error> + Send,
    ) -> Result<(), Error> {
        if let Some(ifindex) = self.attached() {
            return Err(Error::AlreadyAttached(ifindex));
        }
        let hooks = {
            let fd = |direction| {
                self.program(direction)?
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(|e| Error::Load(e.into()))
            };
            let (ingress, egress) = (fd(Direction::Ingress)?, fd(Direction::Egress)?);
            netns::within(netns.as_ref(), move || {
                Hooks::attach(ifindex()?, ingress, egress)
            })??
        };
        self.attachment = Some(Attachment {
            hooks: Some(hooks),
            netns,
        });
        Ok(())
    }

    /// The interface the programs are attached to (its index in the
    /// namespace of the attach), if any.
    pub fn attached(&self) -> Option<u32> {
        self.attachment
            .as_ref()
            .and_then(|a| a.hooks.as_ref())
            .map(|h| h.ifindex)
    }

    /// Removes our filters (and the clsact qdisc, if attaching added it);
    /// nothing happens if not attached. Records already in the ring stay
    /// there for [`Stamper::poll`]. Dropping the `Stamper` does the same,
    /// without the error.
    pub fn detach(&mut self) -> Result<(), Error> {
        match self.attachment.take() {
            Some(mut attachment) => attachment.detach(),
            None => Ok(()),
        }
    }

    /// Waits up to `timeout` for records (not at all for `Duration::ZERO`; looking
    /// every millisecond),
    /// then calls `f` on every record in the ring, oldest first per CPU, and
    /// returns how many. Records from different CPUs may come out of `ns`
    /// order: sort them when the order matters.
    pub fn poll(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(&WireStamp),
    ) -> Result<usize, Error> {
        // libbpf takes an int of milliseconds, -1 for ever.
        let timeout = if timeout == Duration::MAX {
            timeout
        } else {
            timeout.min(Duration::from_millis(i32::MAX as u64))
        };
        // The program never wakes us (BPF_RB_NO_WAKEUP, see stamp.bpf.c): look at the
        // ring every millisecond until something is there or the time is up, instead
        // of sleeping in epoll.
        let deadline = std::time::Instant::now().checked_add(timeout);
        loop {
            let rc = self.ring.consume_raw();
            if rc < 0 && rc != -libc::EINTR {
                return Err(Error::Ring(libbpf_rs::Error::from_raw_os_error(-rc)));
            }
            let left = deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(std::time::Instant::now())
            });
            if rc > 0 || left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(1)));
        }
        {
            let mut stamps = self
                .inbox
                .stamps
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            std::mem::swap(&mut *stamps, &mut self.batch);
        }
        self.batch.iter().for_each(&mut f);
        let n = self.batch.len();
        self.batch.clear();
        Ok(n)
    }

    /// Frames that should have been stamped but found the ring full, since
    /// load.
    pub fn lost(&self) -> Result<u64, Error> {
        maps::percpu_sum(&self.counters, COUNTERS, index::LOST)
    }

    /// The programs' counters since load, summed over CPUs and over both
    /// directions.
    pub fn counters(&self) -> Result<StampCounters, Error> {
        let counter = |i| maps::percpu_sum(&self.counters, COUNTERS, i);
        Ok(StampCounters {
            seen: counter(index::SEEN)?,
            stamped: counter(index::STAMPED)?,
            lost: counter(index::LOST)?,
            skipped: counter(index::SKIPPED)?,
            malformed: counter(index::MALFORMED)?,
            undecodable: self.inbox.undecodable.load(Ordering::Relaxed),
        })
    }

    /// Runs the `direction` program once on `frame` with the kernel's
    /// `BPF_PROG_TEST_RUN` and returns its tc action ([`TC_ACT_UNSPEC`]). A
    /// diagnostic for tests: the frame goes nowhere, but it is stamped (a
    /// record in the ring) and counted like a real one. The frame must be
    /// at least 14 bytes.
    pub fn test_run(&self, direction: Direction, frame: &[u8]) -> Result<i32, Error> {
        self.test_run_repeat(direction, frame, 1)
    }

    /// [`Stamper::test_run`], `repeat` times in one system call.
    pub(crate) fn test_run_repeat(
        &self,
        direction: Direction,
        frame: &[u8],
        repeat: u32,
    ) -> Result<i32, Error> {
        let output = self
            .program(direction)?
            .test_run(ProgramInput {
                data_in: Some(frame),
                repeat,
                ..Default::default()
            })
            .map_err(Error::TestRun)?;
        Ok(i32::from_ne_bytes(output.return_value.to_ne_bytes()))
    }

    /// The program of `direction`. A `ProgramMut` because libbpf-rs puts
    /// `test_run` there; `Object` hands it out from `&self`.
    pub(crate) fn program(&self, direction: Direction) -> Result<ProgramMut<'_>, Error> {
        let name = match direction {
            Direction::Ingress => INGRESS,
            Direction::Egress => EGRESS,
        };
        self.object
            .progs_mut()
            .find(|p| p.name() == name)
            .ok_or(Error::Missing {
                kind: "program",
                name,
            })
    }
}
