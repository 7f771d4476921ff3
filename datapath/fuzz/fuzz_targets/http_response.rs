//! The HTTP/1.1 response parser, fed in fuzzer-chosen splits.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| quickdraw_datapath::fuzz::http_response(data));
