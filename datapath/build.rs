fn main() {
    // This crate's test binaries linked like the binaries that run the datapath (see
    // bench/build.rs), so that their code, too, moves onto huge pages whole.
    println!("cargo:rustc-link-arg=-Wl,-z,max-page-size=0x200000");
}
