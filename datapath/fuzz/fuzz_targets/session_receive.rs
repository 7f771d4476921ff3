//! `Session::receive` on a fresh session per input, fed records sealed with the server's keys.
#![no_main]
use quickdraw_datapath::fuzz::{session_receive, SessionRig};
use std::sync::OnceLock;

static RIG: OnceLock<SessionRig> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| session_receive(RIG.get_or_init(SessionRig::new), data));
