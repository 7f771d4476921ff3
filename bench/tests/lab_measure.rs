//! Not a test: the measurements of issue 9, made reproducible under the lab lock (so they
//! never collide with another run). Ignored by default; run them with
//! `cargo test --release -p quickdraw-bench --test lab_measure -- --ignored --nocapture`.
//! Each prints what `bench run` prints and leaves its files under `out/issue9/`.

use quickdraw_lab::LabSession;
use std::process::Command;

fn bench(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("run bench");
    println!("$ bench {}", args.join(" "));
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    println!("(exit: {})", out.status);
}

#[test]
#[ignore = "a measurement of several minutes, not a test"]
fn cold_hot_and_loss_tables() {
    let _lab = LabSession::start().expect("lab up");
    std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/../out/issue9")).unwrap();
    #[rustfmt::skip]
    bench(&["run", "--gaps", "2ms,20ms,1s", "--fires", "300,300,40",
        "--json", "out/issue9/gaps.json", "--per-fire", "out/issue9/gaps.jsonl",
        "--hdr-dir", "out/issue9/hdr"]);
    bench(&["lab", "loss", "5"]);
    #[rustfmt::skip]
    bench(&["run", "--gap", "20ms", "--fires", "200",
        "--json", "out/issue9/loss5.json", "--per-fire", "out/issue9/loss5.jsonl"]);
    bench(&["lab", "loss", "0"]);
}
