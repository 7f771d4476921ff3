//! A control-socket line of any bytes, decoded as a request and as replies.
#![no_main]
libfuzzer_sys::fuzz_target!(
    |data: &[u8]| quickdraw_control_fuzz::protocol::fuzz::control_decode(data)
);
