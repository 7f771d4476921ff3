//! Which NIC queues the appliance listens on, and how its flows are kept on them.

use serde::Deserialize;

/// The queues that get an AF_XDP socket (`appliance.queues`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Queues {
    /// Every receive queue the interface has when the datapath starts (the default: RSS
    /// may put a flow on any of them).
    #[default]
    All,
    /// These queues only (the flows must be steered there, e.g. by an ntuple rule).
    List(Vec<u32>),
}

impl Queues {
    /// The queues to bind on an interface with `available` receive queues: all of them,
    /// or the listed ones in the order given.
    pub fn resolve(&self, available: u32) -> Vec<u32> {
        match self {
            Queues::All => (0..available.max(1)).collect(),
            Queues::List(list) => list.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for Queues {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            List(Vec<u32>),
        }
        match Raw::deserialize(de)? {
            Raw::Word(w) if w == "all" => Ok(Queues::All),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "{w:?}: expected \"all\" or a list of queue numbers"
            ))),
            Raw::List(list) => Ok(Queues::List(list)),
        }
    }
}

/// How the appliance's flows reach the queues it listens on (`appliance.steer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Steering {
    /// The NIC's RSS hash spreads flows; a socket on every queue in `queues` catches them.
    #[default]
    Rss,
    /// An ntuple rule (`ethtool -N ... action <queue>`) installed at start and removed at
    /// exit sends every TCP frame for the appliance's address to `appliance.queue`.
    Ntuple,
}

impl Steering {
    pub fn as_str(self) -> &'static str {
        match self {
            Steering::Rss => "rss",
            Steering::Ntuple => "ntuple",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        q: Queues,
    }

    #[test]
    fn all_or_a_list() {
        let t: T = toml::from_str("q = \"all\"").unwrap();
        assert_eq!(t.q, Queues::All);
        assert_eq!(t.q.resolve(4), vec![0, 1, 2, 3]);
        let t: T = toml::from_str("q = [3, 1]").unwrap();
        assert_eq!(t.q.resolve(8), vec![3, 1]);
        assert!(toml::from_str::<T>("q = \"some\"").is_err());
        assert!(toml::from_str::<T>("q = 3").is_err());
    }
}
