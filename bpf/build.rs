//! Compiles each `src/bpf/<name>.bpf.c` into `$OUT_DIR/<name>.bpf.o`, which
//! the crate embeds with `include_bytes!` (nothing generated is committed).

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

/// The programs: `src/bpf/<name>.bpf.c`, each with its `src/bpf/<name>.h`.
const PROGRAMS: [&str; 3] = ["steer", "stamp", "loss"];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for name in PROGRAMS {
        let src = format!("src/bpf/{name}.bpf.c");
        // Only the object is built, no Rust skeleton: see `src/steer.rs` for
        // why the crate opens the object with `ObjectBuilder` instead.
        SkeletonBuilder::new()
            .source(&src)
            .obj(out.join(format!("{name}.bpf.o")))
            // Debian keeps <asm/types.h> under the multiarch directory.
            .clang_args(["-I/usr/include/x86_64-linux-gnu", "-Wall", "-Werror"])
            .build()
            .unwrap_or_else(|e| panic!("failed to compile {src} (is clang installed?): {e:#}"));
        println!("cargo:rerun-if-changed={src}");
        println!("cargo:rerun-if-changed=src/bpf/{name}.h");
    }
}
