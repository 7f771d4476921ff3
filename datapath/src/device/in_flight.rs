//! Which transmit frames the kernel holds: pushed to Tx, not yet back through the
//! Completion ring. A completion is believed only for a frame in that set, so a duplicate
//! or forged completion can never put one frame into the free pool twice (and so into two
//! descriptors at once); it is counted and ignored. Fixed size, set at start.
//!
//! This is the one way from a Completion ring entry back to a [`TxFrame`]: the transmit
//! area checks that the address is one of its frames, and this set that the kernel held it.
//!
//! A frame's second half may be in flight on its own ([`InFlight::push_beside`]: a warm
//! frame sent from beside a frame built ahead, see `XdpDevice::send_warm_frame_beside`).
//! It has its own bit, so it neither holds the frame's first half nor frees it.

use crate::xsk::{CompletionAddr, TxFrame, TxFrames};

/// One bit per transmit frame, and one per frame's second half.
#[derive(Debug)]
pub struct InFlight {
    bits: Vec<u64>,
    beside: Vec<u64>,
    start: u64,
    frame_size: u64,
    frames: u64,
}

/// What a believed completion gave back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// The frame, ours again.
    Frame(TxFrame),
    /// The second half of this frame (the frame itself is not affected).
    Beside(TxFrame),
}

impl InFlight {
    pub fn new(tx_frames: &TxFrames) -> InFlight {
        let frames = u64::from(tx_frames.frame_count());
        InFlight {
            bits: vec![0; frames.div_ceil(64) as usize],
            beside: vec![0; frames.div_ceil(64) as usize],
            start: tx_frames.frames().next().map_or(0, TxFrame::addr),
            frame_size: u64::from(tx_frames.frame_size()),
            frames,
        }
    }

    /// The frame number of a frame of this area, checked (a frame of another UMEM's
    /// transmit area is refused).
    fn index(&self, frame: TxFrame) -> Option<(usize, u64)> {
        let offset = frame.addr().checked_sub(self.start)?;
        if self.frame_size == 0 || offset % self.frame_size != 0 {
            return None;
        }
        let i = offset / self.frame_size;
        (i < self.frames).then(|| ((i / 64) as usize, 1u64 << (i % 64)))
    }

    /// Marks `frame` handed to the kernel. False (and nothing changed) if it already was
    /// or is not one of our frames: a bug in the caller, never the kernel's doing.
    pub fn push(&mut self, frame: TxFrame) -> bool {
        self.index(frame)
            .is_some_and(|at| flip(&mut self.bits, at, false))
    }

    /// Where a frame's second half starts (what [`InFlight::push_beside`] holds).
    pub fn half(&self) -> u64 {
        self.frame_size / 2
    }

    /// Marks the second half of `frame` handed to the kernel, as a descriptor of its own
    /// at [`InFlight::half`]. False (nothing changed) if it already was, or `frame` is not
    /// one of ours.
    pub fn push_beside(&mut self, frame: TxFrame) -> bool {
        self.index(frame)
            .is_some_and(|at| flip(&mut self.beside, at, false))
    }

    /// The kernel gave `addr` back: the frame, now ours again, or the second half of one.
    /// `None` if it was not the kernel's to give: a duplicate completion, or an address
    /// that is no transmit frame of `tx_frames` (the area this set was made for).
    pub fn complete(&mut self, tx_frames: &TxFrames, addr: CompletionAddr) -> Option<Done> {
        let frame = tx_frames.completed(addr)?;
        let at = self.index(frame)?;
        // Only a second half is ever sent from there: a duplicate of its completion must
        // not free the frame.
        if addr.addr() - frame.addr() == self.half() {
            flip(&mut self.beside, at, true).then_some(Done::Beside(frame))
        } else {
            flip(&mut self.bits, at, true).then_some(Done::Frame(frame))
        }
    }
}

/// Flips bit `at` of `bits` if it is `set` now (set → clear, clear → set); false, and
/// nothing changed, if it is not.
fn flip(bits: &mut [u64], (w, bit): (usize, u64), set: bool) -> bool {
    if (bits[w] & bit != 0) != set {
        return false;
    }
    bits[w] ^= bit;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xsk::umem::{Umem, UmemConfig};

    #[test]
    fn only_frames_in_flight_complete_and_only_once() {
        let config = UmemConfig {
            frame_size: 2048,
            frame_count: 200,
            rx_frames: 64,
            headroom: 0,
        };
        let (_rx, tx) = Umem::new(config).unwrap().split();
        let mut f = InFlight::new(&tx);
        let first = tx.frames().next().unwrap();
        let last = tx.frames().last().unwrap();
        let c = CompletionAddr::new;
        let frame = |done: Option<Done>| match done {
            Some(Done::Frame(f)) => Some(f),
            _ => None,
        };
        assert_eq!(f.complete(&tx, c(first.addr())), None, "never pushed");
        assert!(f.push(first) && f.push(last));
        assert!(!f.push(first), "pushed twice");
        let mut complete = |addr: u64| frame(f.complete(&tx, c(addr)));
        assert_eq!(complete(first.addr()), Some(first));
        assert_eq!(complete(first.addr()), None, "a duplicate completion");
        assert_eq!(complete(0), None, "a receive frame");
        assert_eq!(complete(last.addr() + 2048), None, "past the area");
        assert_eq!(complete(u64::MAX), None, "overflowing");
        assert_eq!(
            complete(last.addr() + 60),
            Some(last),
            "an address inside the frame completes the frame"
        );
    }

    #[test]
    fn a_second_half_completes_on_its_own() {
        let config = UmemConfig {
            frame_size: 4096,
            frame_count: 16,
            rx_frames: 8,
            headroom: 0,
        };
        let (_rx, tx) = Umem::new(config).unwrap().split();
        let mut f = InFlight::new(&tx);
        let frame = tx.frames().next().unwrap();
        let half = frame.addr() + f.half();
        let c = CompletionAddr::new;
        assert_eq!(f.half(), 2048);
        assert!(f.push_beside(frame));
        assert!(!f.push_beside(frame), "its second half pushed twice");
        assert_eq!(
            f.complete(&tx, c(frame.addr())),
            None,
            "the frame itself is not held"
        );
        assert!(f.push(frame), "the frame goes out beside its second half");
        assert_eq!(f.complete(&tx, c(half)), Some(Done::Beside(frame)));
        assert_eq!(
            f.complete(&tx, c(half)),
            None,
            "a duplicate never frees the frame"
        );
        assert_eq!(f.complete(&tx, c(frame.addr())), Some(Done::Frame(frame)));
        assert_eq!(f.complete(&tx, c(frame.addr())), None);
    }

    #[test]
    fn a_frame_of_another_umem_is_never_in_flight() {
        let small = UmemConfig {
            frame_size: 2048,
            frame_count: 8,
            rx_frames: 4,
            headroom: 0,
        };
        let big = UmemConfig {
            frame_count: 16,
            ..small
        };
        let (_, tx) = Umem::new(small).unwrap().split();
        let (_, other) = Umem::new(big).unwrap().split();
        let mut f = InFlight::new(&tx);
        assert!(!f.push(other.frames().last().unwrap()));
    }
}
