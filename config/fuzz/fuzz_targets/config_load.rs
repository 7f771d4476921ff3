//! Configuration text of any bytes, parsed and validated.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| quickdraw_config::fuzz::config_load(data));
