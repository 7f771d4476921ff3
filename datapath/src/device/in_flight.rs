//! Which transmit frames the kernel holds: pushed to Tx, not yet back through the
//! Completion ring. A completion is believed only for a frame in that set, so a duplicate
//! or forged completion can never put one frame into the free pool twice (and so into two
//! descriptors at once); it is counted and ignored. Fixed size, set at start.
//!
//! This is the one way from a Completion ring entry back to a [`TxFrame`]: the transmit
//! area checks that the address is one of its frames, and this set that the kernel held it.

use crate::xsk::{CompletionAddr, TxFrame, TxFrames};

/// One bit per transmit frame.
#[derive(Debug)]
pub struct InFlight {
    bits: Vec<u64>,
    start: u64,
    frame_size: u64,
    frames: u64,
}

impl InFlight {
    pub fn new(tx_frames: &TxFrames) -> InFlight {
        let frames = u64::from(tx_frames.frame_count());
        InFlight {
            bits: vec![0; frames.div_ceil(64) as usize],
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
        match self.index(frame) {
            Some((w, bit)) if self.bits[w] & bit == 0 => {
                self.bits[w] |= bit;
                true
            }
            _ => false,
        }
    }

    /// The kernel gave `addr` back: the frame, now ours again. `None` if it was not the
    /// kernel's to give: a duplicate completion, or an address that is no transmit frame
    /// of `tx_frames` (the area this set was made for).
    pub fn complete(&mut self, tx_frames: &TxFrames, addr: CompletionAddr) -> Option<TxFrame> {
        let frame = tx_frames.completed(addr)?;
        match self.index(frame) {
            Some((w, bit)) if self.bits[w] & bit != 0 => {
                self.bits[w] &= !bit;
                Some(frame)
            }
            _ => None,
        }
    }
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
        assert_eq!(f.complete(&tx, c(first.addr())), None, "never pushed");
        assert!(f.push(first) && f.push(last));
        assert!(!f.push(first), "pushed twice");
        let mut complete = |addr: u64| f.complete(&tx, c(addr));
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
