//! Transmit frames set aside from the free pool for frames built ahead of their send:
//! an armed order's whole Ethernet/IPv4/TCP frame, the floor's raw frame, the warm frame.
//! Such a frame is pushed to Tx as it stands; when the kernel completes it, it comes back
//! here (still built), not to the pool. A frame the kernel holds (in flight) is never
//! written or pushed again until its completion: with zero-copy the NIC reads it late.

use crate::xsk::TxFrame;

/// A reserved frame, by position in [`Reserved`]; valid until released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHandle(usize);

#[derive(Debug, Clone, Copy)]
struct Slot {
    frame: TxFrame,
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

    /// Sets `frame` aside; `None` when every slot is taken.
    pub fn insert(&mut self, frame: TxFrame) -> Option<FrameHandle> {
        let i = self.slots.iter().position(Option::is_none)?;
        self.slots[i] = Some(Slot {
            frame,
            in_flight: false,
            release: false,
        });
        Some(FrameHandle(i))
    }

    /// The frame, when it may be written or pushed now (held and not in flight).
    pub fn ready(&self, h: FrameHandle) -> Option<TxFrame> {
        match self.slots.get(h.0).copied().flatten() {
            Some(s) if !s.in_flight && !s.release => Some(s.frame),
            _ => None,
        }
    }

    /// The frame while it is held, in flight or not: to read what was built into it
    /// (the kernel never writes a transmit frame).
    pub fn held(&self, h: FrameHandle) -> Option<TxFrame> {
        match self.slots.get(h.0).copied().flatten() {
            Some(s) if !s.release => Some(s.frame),
            _ => None,
        }
    }

    /// Marks the frame handed to the kernel.
    pub fn pushed(&mut self, h: FrameHandle) {
        if let Some(Some(s)) = self.slots.get_mut(h.0) {
            s.in_flight = true;
        }
    }

    /// Gives the frame up: `Some(frame)` to return to the pool now, or `None` when it is
    /// in flight (it goes back on its completion) or was not held.
    pub fn release(&mut self, h: FrameHandle) -> Option<TxFrame> {
        let slot = self.slots.get_mut(h.0)?;
        match slot {
            Some(s) if s.in_flight => {
                s.release = true;
                None
            }
            Some(s) => {
                let frame = s.frame;
                *slot = None;
                Some(frame)
            }
            None => None,
        }
    }

    /// A completion for `frame` arrived.
    pub fn complete(&mut self, frame: TxFrame) -> Completed {
        for slot in &mut self.slots {
            match slot {
                Some(s) if s.frame == frame && s.in_flight => {
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

    /// Whether `frame` is a reserved frame (any state).
    #[cfg(test)]
    fn holds(&self, frame: TxFrame) -> bool {
        self.slots.iter().flatten().any(|s| s.frame == frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xsk::umem::{Umem, UmemConfig};

    /// Two transmit frames of a small UMEM.
    fn two_frames() -> (TxFrame, TxFrame) {
        let config = UmemConfig {
            frame_size: 2048,
            frame_count: 4,
            rx_frames: 2,
            headroom: 0,
        };
        let (_rx, tx) = Umem::new(config).unwrap().split();
        let mut frames = tx.frames();
        (frames.next().unwrap(), frames.next().unwrap())
    }

    #[test]
    fn a_reserved_frame_is_reused_after_its_completion_and_never_while_in_flight() {
        let (f, g) = two_frames();
        let mut r = Reserved::with_capacity(2);
        let a = r.insert(f).unwrap();
        assert_eq!(r.ready(a), Some(f));
        r.pushed(a);
        assert_eq!(r.ready(a), None, "in flight: not writable");
        assert_eq!(r.complete(g), Completed::NotReserved);
        assert_eq!(r.complete(f), Completed::Kept);
        assert_eq!(r.ready(a), Some(f));
        assert_eq!(
            r.complete(f),
            Completed::NotReserved,
            "a duplicate completion"
        );
    }

    #[test]
    fn release_waits_for_the_completion() {
        let (f, g) = two_frames();
        let mut r = Reserved::with_capacity(1);
        let a = r.insert(f).unwrap();
        assert!(r.insert(g).is_none(), "full");
        r.pushed(a);
        assert_eq!(r.release(a), None);
        assert_eq!(r.ready(a), None);
        assert_eq!(r.complete(f), Completed::Released);
        assert!(!r.holds(f));
        let b = r.insert(g).unwrap();
        assert_eq!(r.release(b), Some(g));
        assert_eq!(r.release(b), None, "released twice");
    }
}
