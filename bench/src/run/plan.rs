//! The order of a run's fires: backends interleaved fire by fire in a shuffled order each
//! round (so drift and noise hit every backend alike), with jittered gaps between fires
//! (so nothing locks onto a period). Pure and seeded: the same seed gives the same plan.

use std::time::Duration;

/// What a run compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// quickdraw's datapath: TLS records pre-sealed, TCP over AF_XDP.
    AfXdp,
    /// The same requests through the kernel's TCP (std sockets), sealed the same way.
    Kernel,
    /// A complete pre-built frame pushed through the same AF_XDP socket: the floor.
    Floor,
}

impl Backend {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Backend::AfXdp => "af_xdp",
            Backend::Kernel => "kernel",
            Backend::Floor => "floor",
        }
    }

    /// The backend called `name`, if any.
    pub fn parse(name: &str) -> Option<Backend> {
        match name {
            "af_xdp" => Some(Backend::AfXdp),
            "kernel" => Some(Backend::Kernel),
            "floor" => Some(Backend::Floor),
            _ => None,
        }
    }
}

/// One planned fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub backend: Backend,
    /// Idle time before this fire (after its arm is ready).
    pub gap: Duration,
    /// Warm-up fires are made but not counted.
    pub warm_up: bool,
}

/// Plans `warm_up + fires` rounds over `backends`, each round in a fresh shuffled order,
/// gaps uniformly jittered ±`jitter` (a fraction, 0.2 = ±20%) around `gap`.
pub fn plan(
    backends: &[Backend],
    fires: usize,
    warm_up: usize,
    gap: Duration,
    jitter: f64,
    seed: u64,
) -> Vec<Step> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut steps = Vec::with_capacity((fires + warm_up) * backends.len());
    let mut order = backends.to_vec();
    for round in 0..warm_up + fires {
        rng.shuffle(&mut order);
        for &backend in &order {
            let factor = 1.0 + jitter * (2.0 * rng.f64() - 1.0);
            let gap = Duration::from_secs_f64((gap.as_secs_f64() * factor).max(0.0));
            steps.push(Step {
                backend,
                gap,
                warm_up: round < warm_up,
            });
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Backend; 3] = [Backend::AfXdp, Backend::Kernel, Backend::Floor];

    #[test]
    fn every_round_has_every_backend_once_and_warm_up_comes_first() {
        let steps = plan(&ALL, 50, 5, Duration::from_millis(20), 0.2, 7);
        assert_eq!(steps.len(), 55 * 3);
        for (i, round) in steps.chunks(3).enumerate() {
            let mut names: Vec<_> = round.iter().map(|s| s.backend).collect();
            names.sort();
            assert_eq!(names, ALL.to_vec(), "round {i}");
            assert!(round.iter().all(|s| s.warm_up == (i < 5)));
        }
    }

    #[test]
    fn order_is_shuffled_and_gaps_jittered_within_bounds() {
        let steps = plan(&ALL, 200, 0, Duration::from_millis(20), 0.2, 1);
        let firsts: std::collections::HashSet<_> = steps.chunks(3).map(|r| r[0].backend).collect();
        assert_eq!(firsts.len(), 3, "each backend leads some rounds");
        assert!(steps
            .iter()
            .all(|s| s.gap >= Duration::from_millis(16) && s.gap <= Duration::from_millis(24)));
        let distinct: std::collections::HashSet<_> = steps.iter().map(|s| s.gap).collect();
        assert!(distinct.len() > 100, "gaps vary");
        assert_eq!(
            plan(&ALL, 10, 2, Duration::from_millis(5), 0.1, 3),
            plan(&ALL, 10, 2, Duration::from_millis(5), 0.1, 3)
        );
    }

    #[test]
    fn names_round_trip() {
        for b in ALL {
            assert_eq!(Backend::parse(b.name()), Some(b));
        }
        assert_eq!(Backend::parse("dpdk"), None);
    }
}
