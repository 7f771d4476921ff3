//! Compiles `src/bpf/steer.bpf.c` into `$OUT_DIR/steer.bpf.o`, which the
//! crate embeds with `include_bytes!` (nothing generated is committed).

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "src/bpf/steer.bpf.c";
const HEADER: &str = "src/bpf/steer.h";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // Only the object is built, no Rust skeleton: see `src/steer.rs` for why
    // the crate opens the object with `ObjectBuilder` instead.
    SkeletonBuilder::new()
        .source(SRC)
        .obj(out.join("steer.bpf.o"))
        // Debian keeps <asm/types.h> under the multiarch directory.
        .clang_args(["-I/usr/include/x86_64-linux-gnu", "-Wall", "-Werror"])
        .build()
        .expect("failed to compile the XDP program (is clang installed?)");
    println!("cargo:rerun-if-changed={SRC}");
    println!("cargo:rerun-if-changed={HEADER}");
}
