//! [`Steer`]: the loaded XDP program, its maps and its attachment.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use libbpf_rs::libbpf_sys::{XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE};
use libbpf_rs::{
    ErrorKind, MapCore, MapFlags, MapHandle, Object, ObjectBuilder, ProgramInput, ProgramMut,
};

use crate::counters::index;
use crate::maps::{self, map_error};
use crate::{flow, sys, Counters, Error, Flow, Verdict};

/// The program as compiled by `build.rs` from `src/bpf/steer.bpf.c`.
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/steer.bpf.o"));

/// Name of the XDP program (the C function).
const PROGRAM: &str = "steer";

/// How the program is attached to an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMode {
    /// In the driver (`XDP_FLAGS_DRV_MODE`): fast; fails if the driver has no
    /// XDP support.
    Native,
    /// Generic XDP after the skb is built (`XDP_FLAGS_SKB_MODE`): works on
    /// any interface, slower.
    Skb,
}

impl AttachMode {
    fn flags(self) -> u32 {
        match self {
            AttachMode::Native => XDP_FLAGS_DRV_MODE,
            AttachMode::Skb => XDP_FLAGS_SKB_MODE,
        }
    }
}

/// A live BPF link: closing its fd detaches the program.
#[derive(Debug)]
struct Attachment {
    ifindex: u32,
    _link: OwnedFd,
}

/// The loaded steering program, its maps, and its link while attached.
///
/// Dropping it detaches the program and frees the maps; so does the end of
/// the process, however it ends (the link is not pinned).
///
/// Why an [`Object`] from [`ObjectBuilder`] and not the libbpf-cargo
/// skeleton: a libbpf-rs 0.27 skeleton borrows its `OpenObject` storage, so
/// keeping one in a struct needs a self-referential struct or storage leaked
/// on every load, and its generated code is `unsafe`, which would put a
/// second module outside `deny(unsafe_code)`. An `Object` is owned and has no
/// lifetime. The map and program names are checked once in [`Steer::load`]
/// instead of at compile time, and the tests check the layouts against the
/// key and value sizes the kernel reports.
#[derive(Debug)]
pub struct Steer {
    // Declared first so that it drops (detaches) before the program closes.
    attachment: Option<Attachment>,
    object: Object,
    flows: MapHandle,
    udp_ports: MapHandle,
    xsks: MapHandle,
    config: MapHandle,
    counters: MapHandle,
}

impl Steer {
    /// Loads the program and creates its maps (empty: no flow owned, no
    /// socket, appliance address unset). Nothing is attached yet.
    pub fn load() -> Result<Steer, Error> {
        let object = ObjectBuilder::default()
            .open_memory(OBJECT)
            .and_then(|open| open.load())
            .map_err(Error::Load)?;
        if !object.progs().any(|p| p.name() == PROGRAM) {
            return Err(Error::Missing {
                kind: "program",
                name: PROGRAM,
            });
        }
        // Each map with the (key size, value size, entries) this crate
        // encodes; `None` entries are not relied upon.
        let map = |name, key, value, entries| maps::checked(&object, name, key, value, entries);
        Ok(Steer {
            attachment: None,
            flows: map("flows", flow::KEY_LEN as u32, 1, None)?,
            udp_ports: map("udp_ports", UDP_KEY_LEN as u32, 1, None)?,
            xsks: map("xsks", 4, 4, None)?,
            config: map("config", 4, 4, Some(1))?,
            counters: map("counters", 4, 8, Some(index::COUNT))?,
            object,
        })
    }

    /// Sets the appliance's own IPv4 address: ARP requests and replies whose
    /// target is this address are steered. `Ipv4Addr::UNSPECIFIED` steers no
    /// ARP (the state after load). Takes effect at once, attached or not.
    pub fn set_appliance_ip(&self, ip: Ipv4Addr) -> Result<(), Error> {
        // struct steer_config { __be32 appliance_ip; }
        let value = ip.octets();
        self.config
            .update(&0u32.to_ne_bytes(), &value, MapFlags::ANY)
            .map_err(map_error("config", "update"))
    }

    /// Attaches the program to interface `ifindex` through a BPF link held by
    /// this `Steer`: [`Steer::detach`], dropping it, or the process's exit
    /// detaches it. See [`if_nametoindex`] to find an index by name.
    pub fn attach(&mut self, ifindex: u32, mode: AttachMode) -> Result<(), Error> {
        if let Some(attachment) = &self.attachment {
            return Err(Error::AlreadyAttached(attachment.ifindex));
        }
        let link =
            sys::xdp_link(self.program()?.as_fd(), ifindex, mode.flags()).map_err(|source| {
                Error::Attach {
                    ifindex,
                    mode,
                    source,
                }
            })?;
        self.attachment = Some(Attachment {
            ifindex,
            _link: link,
        });
        Ok(())
    }

    /// The interface the program is attached to, if any.
    pub fn attached(&self) -> Option<u32> {
        self.attachment.as_ref().map(|a| a.ifindex)
    }

    /// Detaches the program (closes its link); nothing happens if it is not
    /// attached. The maps and their contents stay.
    pub fn detach(&mut self) {
        self.attachment = None;
    }

    /// Steers `flow`'s incoming frames from now on. Adding a flow twice is
    /// not an error. Fails when the map is full (`STEER_MAX_FLOWS`).
    pub fn add_flow(&self, flow: Flow) -> Result<(), Error> {
        // value: __u8, 1 = owned.
        self.flows
            .update(&flow.key(), &[1], MapFlags::ANY)
            .map_err(map_error("flows", "update"))
    }

    /// Stops steering `flow`. Removing a flow that is not there is not an
    /// error.
    pub fn remove_flow(&self, flow: Flow) -> Result<(), Error> {
        match self.flows.delete(&flow.key()) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            other => other.map_err(map_error("flows", "delete")),
        }
    }

    /// How many flows are steered now: a walk of the map, off the hot path (tests and
    /// diagnostics: a flood must not grow it).
    pub fn flow_count(&self) -> usize {
        self.flows.keys().count()
    }

    /// Steers IPv4/UDP datagrams to `local` (the appliance's address, or a
    /// multicast group the interface has joined) from now on: an event feed.
    /// Adding one twice is not an error. Fails when the map is full
    /// (`STEER_MAX_UDP_PORTS`).
    pub fn add_udp_port(&self, local: SocketAddrV4) -> Result<(), Error> {
        self.udp_ports
            .update(&udp_key(local), &[1], MapFlags::ANY)
            .map_err(map_error("udp_ports", "update"))
    }

    /// Stops steering datagrams to `local`; removing one that is not there is
    /// not an error.
    pub fn remove_udp_port(&self, local: SocketAddrV4) -> Result<(), Error> {
        match self.udp_ports.delete(&udp_key(local)) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            other => other.map_err(map_error("udp_ports", "delete")),
        }
    }

    /// Puts AF_XDP socket `xsk` in the slot of rx queue `queue`: the owned
    /// frames received on that queue go to it. Closing the socket empties
    /// the slot again (the kernel removes a closed socket from its maps).
    pub fn set_xsk(&self, queue: u32, xsk: BorrowedFd<'_>) -> Result<(), Error> {
        self.check_queue(queue)?;
        let fd = xsk.as_raw_fd();
        self.xsks
            .update(&queue.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
            .map_err(map_error("xsks", "update"))
    }

    /// Empties the slot of rx queue `queue`: its owned frames fall back to
    /// `XDP_PASS`. Clearing an empty slot is not an error.
    pub fn clear_xsk(&self, queue: u32) -> Result<(), Error> {
        self.check_queue(queue)?;
        match self.xsks.delete(&queue.to_ne_bytes()) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            other => other.map_err(map_error("xsks", "delete")),
        }
    }

    /// The counters since load, summed over CPUs.
    pub fn counters(&self) -> Result<Counters, Error> {
        Ok(Counters {
            seen: self.counter(index::SEEN)?,
            steered: self.counter(index::STEERED)?,
            passed: self.counter(index::PASSED)?,
            malformed: self.counter(index::MALFORMED)?,
        })
    }

    /// Runs the program once on `frame` with the kernel's
    /// `BPF_PROG_TEST_RUN`, as if received on rx queue `rx_queue`, and
    /// returns its verdict. A diagnostic for tests: nothing is sent or
    /// redirected, but the counters count the frame.
    ///
    /// The frame must be at least 14 bytes. When attached, the frame comes
    /// in on the attached interface; otherwise on no device, where the
    /// kernel accepts only rx queue 0.
    pub fn test_run(&self, frame: &[u8], rx_queue: u32) -> Result<Verdict, Error> {
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let ingress = self.attached().unwrap_or(0);
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex,
        // rx_queue_index, egress_ifindex.
        let mut ctx = [0u8; 24];
        for (i, field) in [0, len, 0, ingress, rx_queue, 0].into_iter().enumerate() {
            ctx[i * 4..i * 4 + 4].copy_from_slice(&field.to_ne_bytes());
        }
        let output = self
            .program()?
            .test_run(ProgramInput {
                context_in: Some(&mut ctx),
                data_in: Some(frame),
                ..Default::default()
            })
            .map_err(Error::TestRun)?;
        Ok(Verdict::from(output.return_value))
    }

    /// A `ProgramMut` because libbpf-rs puts `test_run` there; `Object`
    /// hands it out from `&self`.
    pub(crate) fn program(&self) -> Result<ProgramMut<'_>, Error> {
        self.object
            .progs_mut()
            .find(|p| p.name() == PROGRAM)
            .ok_or(Error::Missing {
                kind: "program",
                name: PROGRAM,
            })
    }

    fn check_queue(&self, queue: u32) -> Result<(), Error> {
        let slots = self.xsks.max_entries();
        if queue >= slots {
            return Err(Error::QueueOutOfRange { queue, slots });
        }
        Ok(())
    }

    fn counter(&self, index: u32) -> Result<u64, Error> {
        maps::percpu_sum(&self.counters, "counters", index)
    }
}

/// Size of `struct udp_key` in `steer.h`.
const UDP_KEY_LEN: usize = 8;

/// The `struct udp_key` bytes: destination address and port in network byte
/// order, then two zero bytes.
fn udp_key(local: SocketAddrV4) -> [u8; UDP_KEY_LEN] {
    let mut key = [0; UDP_KEY_LEN];
    key[0..4].copy_from_slice(&local.ip().octets());
    key[4..6].copy_from_slice(&local.port().to_be_bytes());
    key
}

/// The index of the interface called `name` in the calling thread's network
/// namespace (`if_nametoindex(3)`).
pub fn if_nametoindex(name: &str) -> Result<u32, Error> {
    sys::if_nametoindex(name).map_err(|source| Error::NoSuchInterface {
        name: name.to_owned(),
        source,
    })
}
