//! Per-queue receive counts: what each NIC queue's socket has taken from its Rx ring, so
//! an operator can see where RSS (or an ntuple rule) puts the appliance's flows.

/// One receive queue's share of the device's counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QueueRx {
    /// The NIC queue.
    pub queue: u32,
    /// Descriptors taken from its Rx ring.
    pub rx_frames: u64,
    /// Fill entries pushed since the last flush (the device's bookkeeping).
    pub(super) refilled: bool,
}

/// The counts of up to [`QueueCounts::MAX`] queues in a `Copy` value, so they travel in
/// the datapath's events without an allocation.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QueueCounts {
    len: u8,
    queue: [u32; QueueCounts::MAX],
    rx_frames: [u64; QueueCounts::MAX],
}

impl QueueCounts {
    /// Most queues reported (the first ones bound; the rest are still polled).
    pub const MAX: usize = 16;

    /// The first [`QueueCounts::MAX`] of `queues`.
    pub fn of(queues: &[QueueRx]) -> QueueCounts {
        let mut counts = QueueCounts::default();
        for q in queues.iter().take(Self::MAX) {
            let i = usize::from(counts.len);
            counts.queue[i] = q.queue;
            counts.rx_frames[i] = q.rx_frames;
            counts.len += 1;
        }
        counts
    }

    /// `(queue, rx_frames)` of each reported queue, in bind order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        let n = usize::from(self.len);
        self.queue[..n]
            .iter()
            .copied()
            .zip(self.rx_frames[..n].iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_caps_at_max() {
        let queues: Vec<QueueRx> = (0..20)
            .map(|q| QueueRx {
                queue: 19 - q,
                rx_frames: u64::from(q) * 10,
                refilled: false,
            })
            .collect();
        let counts = QueueCounts::of(&queues);
        let seen: Vec<_> = counts.iter().collect();
        assert_eq!(seen.len(), QueueCounts::MAX);
        assert_eq!(seen[0], (19, 0));
        assert_eq!(seen[2], (17, 20));
        assert_eq!(QueueCounts::of(&[]).iter().count(), 0);
    }
}
