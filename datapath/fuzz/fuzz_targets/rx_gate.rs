//! Frames through the receive gate and the pinned-neighbour filter into smoltcp.
#![no_main]
use quickdraw_datapath::fuzz::{rx_gate, GateRig};

libfuzzer_sys::fuzz_target!(|data: &[u8]| rx_gate(&GateRig, data));
