//! The control plane's parsers, built from their own files for the fuzz targets: `control`
//! has no library, and these modules depend only on each other and on the clock below.
#![allow(dead_code, unused_imports)]

#[path = "../../src/journal/mod.rs"]
pub mod journal;
#[path = "../../src/protocol/mod.rs"]
pub mod protocol;

/// Stands in for `control`'s `timing` module: the journal stamps appended lines with it.
pub mod timing {
    pub mod clock {
        pub fn realtime_ns() -> i64 {
            0
        }
    }
}
