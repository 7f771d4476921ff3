//! Which transmit frames the kernel holds: pushed to Tx, not yet back through the
//! Completion ring. A completion is believed only for a frame in that set, so a duplicate
//! or forged completion can never put one frame into the free pool twice (and so into two
//! descriptors at once); it is counted and ignored. Fixed size, set at start.

use crate::xsk::Frames;

/// One bit per transmit frame.
#[derive(Debug)]
pub struct InFlight {
    bits: Vec<u64>,
    start: u64,
    frame_size: u64,
    frames: u64,
}

impl InFlight {
    pub fn new(tx_frames: &Frames) -> InFlight {
        let frames = u64::from(tx_frames.frame_count());
        InFlight {
            bits: vec![0; frames.div_ceil(64) as usize],
            start: tx_frames.frame_addrs().next().unwrap_or(0),
            frame_size: u64::from(tx_frames.frame_size()),
            frames,
        }
    }

    /// The frame number of a frame-aligned address of this area, checked.
    fn index(&self, addr: u64) -> Option<(usize, u64)> {
        let offset = addr.checked_sub(self.start)?;
        if self.frame_size == 0 || offset % self.frame_size != 0 {
            return None;
        }
        let i = offset / self.frame_size;
        (i < self.frames).then(|| ((i / 64) as usize, 1u64 << (i % 64)))
    }

    /// Marks `addr` handed to the kernel. False (and nothing changed) if it already was
    /// or is not one of our frames: a bug in the caller, never the kernel's doing.
    pub fn push(&mut self, addr: u64) -> bool {
        match self.index(addr) {
            Some((w, bit)) if self.bits[w] & bit == 0 => {
                self.bits[w] |= bit;
                true
            }
            _ => false,
        }
    }

    /// The kernel gave `addr` back. False if it was not ours to give: a duplicate
    /// completion, or an address that is no transmit frame.
    pub fn complete(&mut self, addr: u64) -> bool {
        match self.index(addr) {
            Some((w, bit)) if self.bits[w] & bit != 0 => {
                self.bits[w] &= !bit;
                true
            }
            _ => false,
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
        let first = tx.frame_addrs().next().unwrap();
        let last = tx.frame_addrs().last().unwrap();
        assert!(!f.complete(first), "never pushed");
        assert!(f.push(first) && f.push(last));
        assert!(!f.push(first), "pushed twice");
        assert!(f.complete(first));
        assert!(!f.complete(first), "a duplicate completion");
        assert!(!f.complete(first + 1), "not frame-aligned");
        assert!(!f.complete(0), "a receive frame");
        assert!(!f.complete(last + 2048), "past the area");
        assert!(!f.complete(u64::MAX), "overflowing");
        assert!(f.complete(last));
    }
}
