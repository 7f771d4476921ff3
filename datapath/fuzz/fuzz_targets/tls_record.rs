//! The TLS record opener, on raw bytes and on records sealed then damaged.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| quickdraw_datapath::fuzz::tls_record(data));
