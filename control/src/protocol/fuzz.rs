//! Fuzz body: control-protocol decoding. Any line is a request or an error, never a
//! panic, and a request that decodes encodes back to itself; shared by cargo-fuzz
//! (`control/fuzz`, which builds this module on its own) and the property test below.

use super::*;

pub fn control_decode(line: &[u8]) {
    if let Ok(request) = decode_request(line) {
        let again = encode_request(&request);
        let back = decode_request(again.trim_end().as_bytes()).expect("our own encoding decodes");
        assert_eq!(back, request);
    }
    // What a CLI reads back from a daemon must not panic it either.
    let _ = decode_reply::<StatusReply>(line);
    let _ = decode_reply::<FireReply>(line);
    let _ = decode_reply::<StatsReply>(line);
    let _ = decode_reply::<ArmsReply>(line);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seeds() -> Vec<Vec<u8>> {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/control_decode");
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
        seeds.iter().for_each(|s| control_decode(s));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn decode_never_panics(
            seed in 0usize..64,
            noise in proptest::collection::vec(any::<u8>(), 0..8),
            at in any::<usize>(),
            raw in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let seeds = seeds();
            let mut data = seeds[seed % seeds.len()].clone();
            for (k, b) in noise.iter().enumerate() {
                let pos = at.wrapping_add(k * 31) % data.len().max(1);
                if let Some(x) = data.get_mut(pos) {
                    *x = *b;
                }
            }
            control_decode(&data);
            control_decode(&raw);
        }
    }
}
