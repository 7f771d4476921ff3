//! Transmit frames set aside from the free pool for frames built ahead of their send:
//! an armed order's whole Ethernet/IPv4/TCP frame, the floor's raw frame, the warm frame.
//! Such a frame is pushed to Tx as it stands; when the kernel completes it, it comes back
//! here (still built), not to the pool. A frame the kernel holds (in flight) is never
//! written or pushed again until its completion: with zero-copy the NIC reads it late.

/// A reserved frame, by position in [`Reserved`]; valid until released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHandle(usize);

#[derive(Debug, Clone, Copy)]
struct Slot {
    addr: u64,
    in_flight: bool,
    /// Give the frame back to the pool when its completion arrives.
    release: bool,
}

/// The reserved frames; capacity fixed at start, so reserving never allocates.
#[derive(Debug)]
pub struct Reserved {
    slots: Vec<Option<Slot>>,
}

/// What a completion meant for the reserved set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completed {
    /// Not a reserved frame: it belongs to the pool.
    NotReserved,
    /// A reserved frame, back and ready to push again.
    Kept,
    /// A released frame whose completion was awaited: now it goes to the pool.
    Released,
}

impl Reserved {
    pub fn with_capacity(n: usize) -> Reserved {
        Reserved {
            slots: vec![None; n],
        }
    }

    /// Sets `addr` aside; `None` when every slot is taken.
    pub fn insert(&mut self, addr: u64) -> Option<FrameHandle> {
        let i = self.slots.iter().position(Option::is_none)?;
        self.slots[i] = Some(Slot {
            addr,
            in_flight: false,
            release: false,
        });
        Some(FrameHandle(i))
    }

    /// The frame's address, when it may be written or pushed now (held and not in flight).
    pub fn ready(&self, h: FrameHandle) -> Option<u64> {
        match self.slots.get(h.0).copied().flatten() {
            Some(s) if !s.in_flight && !s.release => Some(s.addr),
            _ => None,
        }
    }

    /// Marks the frame handed to the kernel.
    pub fn pushed(&mut self, h: FrameHandle) {
        if let Some(Some(s)) = self.slots.get_mut(h.0) {
            s.in_flight = true;
        }
    }

    /// Gives the frame up: `Some(addr)` to return to the pool now, or `None` when it is in
    /// flight (it goes back on its completion) or was not held.
    pub fn release(&mut self, h: FrameHandle) -> Option<u64> {
        let slot = self.slots.get_mut(h.0)?;
        match slot {
            Some(s) if s.in_flight => {
                s.release = true;
                None
            }
            Some(s) => {
                let addr = s.addr;
                *slot = None;
                Some(addr)
            }
            None => None,
        }
    }

    /// A completion for `addr` arrived.
    pub fn complete(&mut self, addr: u64) -> Completed {
        for slot in &mut self.slots {
            match slot {
                Some(s) if s.addr == addr && s.in_flight => {
                    if s.release {
                        *slot = None;
                        return Completed::Released;
                    }
                    s.in_flight = false;
                    return Completed::Kept;
                }
                _ => {}
            }
        }
        Completed::NotReserved
    }

    /// Whether `addr` is a reserved frame (any state).
    #[cfg(test)]
    fn holds(&self, addr: u64) -> bool {
        self.slots.iter().flatten().any(|s| s.addr == addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserved_frame_is_reused_after_its_completion_and_never_while_in_flight() {
        let mut r = Reserved::with_capacity(2);
        let a = r.insert(4096).unwrap();
        assert_eq!(r.ready(a), Some(4096));
        r.pushed(a);
        assert_eq!(r.ready(a), None, "in flight: not writable");
        assert_eq!(r.complete(8192), Completed::NotReserved);
        assert_eq!(r.complete(4096), Completed::Kept);
        assert_eq!(r.ready(a), Some(4096));
        assert_eq!(
            r.complete(4096),
            Completed::NotReserved,
            "a duplicate completion"
        );
    }

    #[test]
    fn release_waits_for_the_completion() {
        let mut r = Reserved::with_capacity(1);
        let a = r.insert(4096).unwrap();
        assert!(r.insert(8192).is_none(), "full");
        r.pushed(a);
        assert_eq!(r.release(a), None);
        assert_eq!(r.ready(a), None);
        assert_eq!(r.complete(4096), Completed::Released);
        assert!(!r.holds(4096));
        let b = r.insert(8192).unwrap();
        assert_eq!(r.release(b), Some(8192));
        assert_eq!(r.release(b), None, "released twice");
    }
}
