//! The parts of `status` that say where the datapath runs: its core and scheduling as they
//! took effect, and what each NIC queue has received.

use serde::{Deserialize, Serialize};

/// Frames one NIC queue's AF_XDP socket has received (`status --json` → `queues`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStatus {
    pub queue: u32,
    pub rx_frames: u64,
}

/// The datapath thread's placement, as it took effect.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PlacementStatus {
    /// The core it is pinned to (none: unpinned).
    pub core: Option<usize>,
    /// That core is in `isolcpus` / `nohz_full`.
    pub isolated: bool,
    pub nohz_full: bool,
    /// SCHED_FIFO priority in effect (none: normal scheduling).
    pub realtime_priority: Option<u8>,
    /// The daemon's memory is locked (mlockall).
    pub memory_locked: bool,
    /// Bytes of the program's code on 2 MiB pages.
    #[serde(default)]
    pub code_on_huge_pages: usize,
    /// What was asked for and did not take effect.
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl PlacementStatus {
    /// One line for `control status`.
    pub fn line(&self) -> String {
        let yes = |b: bool| if b { "yes" } else { "no" };
        let core = match self.core {
            Some(c) => format!(
                "core {c} (isolated {}, nohz_full {})",
                yes(self.isolated),
                yes(self.nohz_full)
            ),
            None => "no pinned core".to_owned(),
        };
        let sched = match self.realtime_priority {
            Some(p) => format!("SCHED_FIFO {p}"),
            None => "SCHED_OTHER".to_owned(),
        };
        let mem = if self.memory_locked {
            "memory locked"
        } else {
            "memory not locked"
        };
        let code = match self.code_on_huge_pages {
            0 => "code on 4 KiB pages".to_owned(),
            n => format!("code on 2 MiB pages ({} MiB)", n >> 20),
        };
        format!("datapath on {core}, {sched}, {mem}, {code}")
    }
}

/// `queues: 0=12 1=30 ...` for `control status`.
pub fn queues_line(queues: &[QueueStatus]) -> String {
    let parts: Vec<String> = queues
        .iter()
        .map(|q| format!("{}={}", q.queue, q.rx_frames))
        .collect();
    format!("rx frames by queue: {}", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        let p = PlacementStatus {
            core: Some(1),
            isolated: true,
            nohz_full: false,
            realtime_priority: Some(50),
            memory_locked: true,
            code_on_huge_pages: 6 << 20,
            warnings: vec![],
        };
        assert_eq!(
            p.line(),
            "datapath on core 1 (isolated yes, nohz_full no), SCHED_FIFO 50, memory locked, \
             code on 2 MiB pages (6 MiB)"
        );
        assert_eq!(
            PlacementStatus::default().line(),
            "datapath on no pinned core, SCHED_OTHER, memory not locked, code on 4 KiB pages"
        );
        let q = [
            QueueStatus {
                queue: 0,
                rx_frames: 12,
            },
            QueueStatus {
                queue: 3,
                rx_frames: 30,
            },
        ];
        assert_eq!(queues_line(&q), "rx frames by queue: 0=12 3=30");
    }
}
