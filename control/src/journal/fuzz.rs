//! Fuzz body: journal replay. A journal file of any bytes is read back, folded into arms
//! and recovered; shared by cargo-fuzz (`control/fuzz`, which builds this module on its
//! own) and the property test below.

use super::record::Line;
use super::{compact, parse, replay};

/// Input: 8 bytes of "now" (UTC ns), 8 of the minimum lead, 1 of how many closed arms
/// compaction keeps, then the file.
pub fn journal_replay(data: &[u8]) {
    let word = |at: usize| {
        let mut b = [0u8; 8];
        for (i, x) in data.iter().skip(at).take(8).enumerate() {
            b[i] = *x;
        }
        i64::from_le_bytes(b)
    };
    let now_ns = word(0);
    let min_lead_ns = word(8);
    let keep_closed = data.get(16).copied().unwrap_or(0) as usize;
    let file = data.get(17..).unwrap_or_default();

    let replayed = parse(file);
    if let Some((len, _)) = &replayed.torn {
        assert!(*len <= file.len());
    }
    // Every line read back writes out as a line that reads back the same.
    for line in &replayed.lines {
        let text = serde_json::to_string(line).expect("lines serialize");
        assert!(!text.contains('\n'), "a line never spans lines");
        let again: Line = serde_json::from_str(&text).expect("a written line reads back");
        assert_eq!(&again, line);
    }
    let arms = replay::fold(&replayed.lines);
    let actions = replay::recover(&arms, now_ns, min_lead_ns);
    let open = arms.values().filter(|a| a.is_open()).count();
    assert_eq!(actions.len(), open, "one action per open arm");
    // Compaction keeps every open arm's story whole.
    let kept = replay::fold(&compact(replayed.lines.clone(), keep_closed));
    for (id, arm) in arms.iter().filter(|(_, a)| a.is_open()) {
        assert_eq!(kept.get(id), Some(arm), "compaction changed open arm {id}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seeds() -> Vec<Vec<u8>> {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/journal_replay");
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
        seeds.iter().for_each(|s| journal_replay(s));
    }

    /// A scheduled arm at the far end of time, recovered at the other end: `recover`
    /// subtracted the instants unchecked (a panic in debug builds, a wrong verdict in
    /// release ones).
    #[test]
    fn extreme_instants_do_not_overflow() {
        let mut data = Vec::new();
        data.extend_from_slice(&i64::MIN.to_le_bytes());
        data.extend_from_slice(&i64::MAX.to_le_bytes());
        data.push(0);
        data.extend_from_slice(
            br#"{"t":0,"rec":"arm","arm":1,"key":"k","sku":"s","qty":1,"target":"t","conns":1,"at":{"at_ns":9223372036854775807,"fire_ns":9223372036854775807,"correction_ns":0}}"#,
        );
        data.push(b'\n');
        journal_replay(&data);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn replay_never_panics(
            seed in 0usize..64,
            noise in proptest::collection::vec(any::<u8>(), 0..16),
            at in any::<usize>(),
            raw in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let seeds = seeds();
            let mut data = seeds[seed % seeds.len()].clone();
            for (k, b) in noise.iter().enumerate() {
                let pos = at.wrapping_add(k * 7919) % data.len().max(1);
                if let Some(x) = data.get_mut(pos) {
                    *x = *b;
                }
            }
            journal_replay(&data);
            journal_replay(&raw);
        }
    }
}
