//! The fuzz targets as property tests: each body over the committed seed corpus, then
//! over bounded random inputs (proptest shrinks a failure to a small one).

use super::*;
use proptest::prelude::*;
use std::path::PathBuf;

/// The seeds cargo-fuzz starts from, committed beside the targets.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.expect("corpus entry").path()).expect("seed"))
        .collect();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out.sort();
    out
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

/// A seed with a few bytes changed: random bytes alone rarely get past a parser's first
/// check.
fn mutated(target: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds(target);
    (0..seeds.len(), bytes(16), any::<u64>()).prop_map(move |(i, noise, at)| {
        let mut s = seeds[i].clone();
        for (k, b) in noise.iter().enumerate() {
            if s.is_empty() {
                s.push(*b);
            } else {
                let pos = (at as usize).wrapping_add(k * 7919) % s.len();
                s[pos] = *b;
            }
        }
        s
    })
}

#[test]
fn seeds_run_clean() {
    seeds("http_response").iter().for_each(|s| http_response(s));
    seeds("tls_record").iter().for_each(|s| tls_record(s));
    let gate = GateRig;
    seeds("rx_gate").iter().for_each(|s| rx_gate(&gate, s));
    let rig = SessionRig::new();
    seeds("session_receive")
        .iter()
        .for_each(|s| session_receive(&rig, s));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn http_response_never_panics(data in prop_oneof![bytes(2048), mutated("http_response")]) {
        http_response(&data);
    }

    #[test]
    fn tls_record_never_panics(data in prop_oneof![bytes(512), mutated("tls_record")]) {
        tls_record(&data);
    }

    #[test]
    fn rx_gate_never_redirects(data in prop_oneof![bytes(1024), mutated("rx_gate")]) {
        rx_gate(&GateRig, &data);
    }
}

proptest! {
    // A real handshake per case.
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn session_receive_never_panics(data in prop_oneof![bytes(512), mutated("session_receive")]) {
        thread_local!(static RIG: SessionRig = SessionRig::new());
        RIG.with(|rig| session_receive(rig, &data));
    }
}
