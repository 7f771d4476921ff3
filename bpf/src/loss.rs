//! [`Loss`]: the lab's fault injector (`src/bpf/loss.bpf.c`): drops a share
//! of the IPv4/TCP frames crossing an interface, arriving (XDP) and leaving
//! (tc clsact egress), and never ARP or anything that is not IPv4/TCP.
//!
//! Unlike [`Steer`](crate::Steer) and [`Stamper`](crate::Stamper), whose
//! attachments end with their owner, an installed `Loss` stays in the
//! kernel after the process exits (XDP attached through netlink, not a
//! link; a tc filter): `bench lab loss 5` sets it and returns. [`Loss::remove`]
//! takes it off again, and so does deleting the interface. What is set is
//! read back from the kernel ([`Loss::installed`]): the XDP program on the
//! interface, its `loss_config` map.
//!
//! Order on the tc egress hook: the stamper's filter has priority 1, this
//! one [`PRIORITY`] 2, so the stamper sees (and stamps) a leaving frame
//! before it is dropped. On arrival XDP runs before tc: a frame dropped there
//! is never stamped.

use std::os::fd::{AsFd, OwnedFd};

use libbpf_rs::query::{ProgInfoIter, ProgInfoQueryOptions};
use libbpf_rs::{
    MapCore, MapFlags, MapHandle, Object, ObjectBuilder, ProgramInput, ProgramMut, TcHook, Xdp,
    XdpFlags, TC_EGRESS,
};

use crate::maps::{self, map_error};
use crate::netns::{self, Netns};
use crate::{if_nametoindex, sys, Error, Verdict};

/// The programs as compiled by `build.rs` from `src/bpf/loss.bpf.c`.
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/loss.bpf.o"));

/// Names of the programs (the C functions) and maps, as in `loss.bpf.c`.
const XDP_PROGRAM: &str = "loss_xdp";
const TC_PROGRAM: &str = "loss_egress";
const CONFIG: &str = "loss_config";
const COUNTERS: &str = "loss_counters";

/// Our tc filter's handle ("lo"), on the egress hook.
pub const HANDLE: u32 = 0x6c6f;
/// Our tc filter's priority: after the stamper's (1), so a frame leaving is
/// stamped before it is dropped.
pub const PRIORITY: u32 = 2;

/// `TC_ACT_SHOT`: what the egress program returns for a frame it drops.
pub const TC_ACT_SHOT: i32 = 2;

/// Indices of the `loss_counters` map: `enum loss_counter` in `loss.h`.
mod index {
    pub const XDP_TCP: u32 = 0;
    pub const XDP_DROPPED: u32 = 1;
    pub const EGRESS_TCP: u32 = 2;
    pub const EGRESS_DROPPED: u32 = 3;
    /// `LOSS_NR_COUNTERS`.
    pub const COUNT: u32 = 4;
}

/// What the loss programs have seen and dropped since load, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LossCounters {
    /// IPv4/TCP frames arriving (XDP).
    pub arriving: u64,
    /// Of those, dropped.
    pub arriving_dropped: u64,
    /// IPv4/TCP frames leaving (tc egress).
    pub leaving: u64,
    /// Of those, dropped.
    pub leaving_dropped: u64,
}

/// The loaded loss programs and their maps.
#[derive(Debug)]
pub struct Loss {
    object: Object,
    config: MapHandle,
    counters: MapHandle,
}

impl Loss {
    /// Loads the programs with `pct` percent of IPv4/TCP frames to drop
    /// (0..=100). Nothing is attached yet.
    pub fn load(pct: u8) -> Result<Loss, Error> {
        let object = ObjectBuilder::default()
            .open_memory(OBJECT)
            .and_then(|open| open.load())
            .map_err(Error::Load)?;
        for name in [XDP_PROGRAM, TC_PROGRAM] {
            if !object.progs().any(|p| p.name() == name) {
                return Err(Error::Missing {
                    kind: "program",
                    name,
                });
            }
        }
        let loss = Loss {
            config: maps::checked(&object, CONFIG, 4, 4, Some(1))?,
            counters: maps::checked(&object, COUNTERS, 4, 8, Some(index::COUNT))?,
            object,
        };
        loss.set_pct(pct)?;
        Ok(loss)
    }

    /// Sets the share of IPv4/TCP frames dropped from now on, in percent
    /// (0..=100), attached or not.
    pub fn set_pct(&self, pct: u8) -> Result<(), Error> {
        if pct > 100 {
            return Err(Error::LossPct(pct));
        }
        // struct loss_config { __u32 pct; }
        self.config
            .update(
                &0u32.to_ne_bytes(),
                &u32::from(pct).to_ne_bytes(),
                MapFlags::ANY,
            )
            .map_err(map_error(CONFIG, "update"))
    }

    /// The programs' counters since load.
    pub fn counters(&self) -> Result<LossCounters, Error> {
        let counter = |i| maps::percpu_sum(&self.counters, COUNTERS, i);
        Ok(LossCounters {
            arriving: counter(index::XDP_TCP)?,
            arriving_dropped: counter(index::XDP_DROPPED)?,
            leaving: counter(index::EGRESS_TCP)?,
            leaving_dropped: counter(index::EGRESS_DROPPED)?,
        })
    }

    /// Runs the XDP (arriving) program `repeat` times on `frame` with the
    /// kernel's `BPF_PROG_TEST_RUN`; returns the last run's verdict. Counted
    /// like real frames.
    pub fn test_run_arriving(&self, frame: &[u8], repeat: u32) -> Result<Verdict, Error> {
        let action = self.test_run(XDP_PROGRAM, frame, repeat)?;
        Ok(Verdict::from(action))
    }

    /// Runs the tc egress (leaving) program `repeat` times on `frame`;
    /// returns the last run's tc action: `TC_ACT_UNSPEC` (kept, the next
    /// filter runs) or [`TC_ACT_SHOT`] (dropped). The frame must be at least
    /// 14 bytes.
    pub fn test_run_leaving(&self, frame: &[u8], repeat: u32) -> Result<i32, Error> {
        let action = self.test_run(TC_PROGRAM, frame, repeat)?;
        Ok(i32::from_ne_bytes(action.to_ne_bytes()))
    }

    fn test_run(&self, name: &'static str, frame: &[u8], repeat: u32) -> Result<u32, Error> {
        let output = self
            .program(name)?
            .test_run(ProgramInput {
                data_in: Some(frame),
                repeat,
                ..Default::default()
            })
            .map_err(Error::TestRun)?;
        Ok(output.return_value)
    }

    fn program(&self, name: &'static str) -> Result<ProgramMut<'_>, Error> {
        self.object
            .progs_mut()
            .find(|p| p.name() == name)
            .ok_or(Error::Missing {
                kind: "program",
                name,
            })
    }

    fn fd(&self, name: &'static str) -> Result<OwnedFd, Error> {
        self.program(name)?
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Error::Load(e.into()))
    }

    /// Installs both programs on `ifname` in network namespace `netns`
    /// (`None`: the caller's), replacing loss programs installed before
    /// (ours, from any process). They stay after this `Loss` and the process
    /// are gone. Refuses an interface that has another XDP program.
    pub fn install(&self, netns: Option<&str>, ifname: &str) -> Result<(), Error> {
        let netns = netns.map(Netns::open).transpose()?;
        let (xdp, tc) = (self.fd(XDP_PROGRAM)?, self.fd(TC_PROGRAM)?);
        netns::within(netns.as_ref(), move || {
            let ifindex = if_nametoindex(ifname)?;
            let target = xdp_target(ifindex)?;
            if let Some(id) = xdp_program_id(xdp.as_fd(), target)? {
                let name = program_name(id).unwrap_or_default();
                if name != XDP_PROGRAM {
                    return Err(Error::ForeignXdp { ifindex, name });
                }
            }
            Xdp::new(xdp.as_fd())
                .attach(target, XdpFlags::DRV_MODE)
                .map_err(|source| Error::Xdp {
                    op: "attach",
                    ifindex,
                    source,
                })?;
            sys::clsact_create(ifindex).map_err(|e| Error::Tc {
                op: "qdisc add",
                ifindex,
                source: e.into(),
            })?;
            egress_hook(tc.as_fd(), target)
                .attach()
                .map_err(|source| Error::Tc {
                    op: "filter add",
                    ifindex,
                    source,
                })?;
            Ok(())
        })?
    }

    /// Takes the loss programs off `ifname` in `netns`, if they are there;
    /// leaves any other XDP program and filter, and the clsact qdisc, alone.
    /// Returns whether our XDP program was there.
    pub fn remove(netns: Option<&str>, ifname: &str) -> Result<bool, Error> {
        let netns = netns.map(Netns::open).transpose()?;
        let loaded = Loss::load(0)?;
        let (xdp, tc) = (loaded.fd(XDP_PROGRAM)?, loaded.fd(TC_PROGRAM)?);
        netns::within(netns.as_ref(), move || {
            let ifindex = if_nametoindex(ifname)?;
            let target = xdp_target(ifindex)?;
            let ours = match xdp_program_id(xdp.as_fd(), target)? {
                Some(id) => program_name(id).as_deref() == Some(XDP_PROGRAM),
                None => false,
            };
            if ours {
                Xdp::new(xdp.as_fd())
                    .detach(target, XdpFlags::DRV_MODE)
                    .map_err(|source| Error::Xdp {
                        op: "detach",
                        ifindex,
                        source,
                    })?;
            }
            match egress_hook(tc.as_fd(), target).detach() {
                Err(e) if e.kind() != libbpf_rs::ErrorKind::NotFound => Err(Error::Tc {
                    op: "filter del",
                    ifindex,
                    source: e,
                }),
                _ => Ok(ours),
            }
        })?
    }

    /// The loss installed on `ifname` in `netns`, in percent, read from the
    /// kernel: the `loss_config` of our XDP program on the interface; `None`
    /// when it has none (or another program).
    pub fn installed(netns: Option<&str>, ifname: &str) -> Result<Option<u8>, Error> {
        let netns = netns.map(Netns::open).transpose()?;
        let loaded = Loss::load(0)?;
        let xdp = loaded.fd(XDP_PROGRAM)?;
        let id = netns::within(netns.as_ref(), move || {
            let target = xdp_target(if_nametoindex(ifname)?)?;
            xdp_program_id(xdp.as_fd(), target)
        })??;
        let Some(id) = id else { return Ok(None) };
        let with_maps = ProgInfoQueryOptions::default().include_map_ids(true);
        let Some(info) = ProgInfoIter::with_query_opts(with_maps).find(|p| p.id == id) else {
            return Ok(None);
        };
        if info.name.to_str() != Some(XDP_PROGRAM) {
            return Ok(None);
        }
        for map_id in info.map_ids {
            let Ok(map) = MapHandle::from_map_id(map_id) else {
                continue;
            };
            if map.name().to_str() != Some(CONFIG) {
                continue;
            }
            let value = map
                .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
                .map_err(map_error(CONFIG, "lookup"))?
                .and_then(|v| Some(u32::from_ne_bytes(v.get(..4)?.try_into().ok()?)));
            return Ok(value.map(|pct| pct.min(100) as u8));
        }
        Ok(None)
    }
}

/// `ifindex` as libbpf takes it.
fn xdp_target(ifindex: u32) -> Result<i32, Error> {
    i32::try_from(ifindex).map_err(|_| Error::NoSuchInterface {
        name: ifindex.to_string(),
        source: std::io::Error::from_raw_os_error(libc::ENODEV),
    })
}

/// The id of the XDP program attached to `ifindex` (any mode), if any. `fd`
/// is any program's: libbpf's query API wants one, and ignores it.
fn xdp_program_id(fd: std::os::fd::BorrowedFd<'_>, ifindex: i32) -> Result<Option<u32>, Error> {
    let id = Xdp::new(fd)
        .query_id(ifindex, XdpFlags::NONE)
        .map_err(Error::Load)?;
    Ok((id != 0).then_some(id))
}

/// The name of loaded program `id`, as the kernel keeps it (15 bytes at
/// most).
fn program_name(id: u32) -> Option<String> {
    ProgInfoIter::default()
        .find(|p| p.id == id)
        .and_then(|p| p.name.into_string().ok())
}

/// Our filter on the egress hook of `ifindex`.
fn egress_hook(fd: std::os::fd::BorrowedFd<'_>, ifindex: i32) -> TcHook {
    let mut hook = TcHook::new(fd);
    hook.ifindex(ifindex)
        .attach_point(TC_EGRESS)
        .handle(HANDLE)
        .priority(PRIORITY)
        .replace(true);
    hook
}
