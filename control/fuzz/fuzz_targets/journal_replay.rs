//! A journal file of any bytes, read back, folded and recovered.
#![no_main]
libfuzzer_sys::fuzz_target!(
    |data: &[u8]| quickdraw_control_fuzz::journal::fuzz::journal_replay(data)
);
