//! Fuzz body: configuration loading. Any text is a configuration or a list of problems,
//! never a panic; shared by cargo-fuzz (`config/fuzz`) and the property test below.

use crate::Config;

pub fn config_load(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml(text) {
        Ok(config) => {
            // A valid configuration names its targets uniquely enough to look them up.
            for t in &config.targets {
                assert!(config.target(&t.name).is_some());
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seeds() -> Vec<Vec<u8>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/config_load");
        let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .expect("seed corpus")
            .map(|e| std::fs::read(e.expect("entry").path()).expect("seed"))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn seeds_run_clean() {
        let seeds = seeds();
        assert!(!seeds.is_empty());
        seeds.iter().for_each(|s| config_load(s));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn load_never_panics(
            seed in 0usize..64,
            noise in proptest::collection::vec(any::<u8>(), 0..8),
            at in any::<usize>(),
            raw in "[a-z_\\[\\]=\" .0-9:\n{}]{0,256}",
        ) {
            let seeds = seeds();
            let mut data = seeds[seed % seeds.len()].clone();
            for (k, b) in noise.iter().enumerate() {
                let pos = at.wrapping_add(k * 131) % data.len().max(1);
                if let Some(x) = data.get_mut(pos) {
                    *x = *b;
                }
            }
            config_load(&data);
            config_load(raw.as_bytes());
        }
    }
}
