fn main() {
    // Segments 2 MiB apart, so the code's huge pages hold nothing else and all of the
    // code moves onto them at start (datapath/src/placement/text.rs).
    println!("cargo:rustc-link-arg-bins=-Wl,-z,max-page-size=0x200000");
}
