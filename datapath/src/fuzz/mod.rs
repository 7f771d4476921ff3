//! The bodies of the fuzz targets, shared by cargo-fuzz (`datapath/fuzz`, built with the
//! `fuzzing` feature) and the stable property tests below, which run the same bodies on
//! the committed seed corpus and on bounded random inputs in `make test`.
//!
//! Each body takes raw bytes, never panics on them, and asserts what must hold whatever
//! they are (a complete response's body is as long as it says; a record sealed by us
//! opens to what was sealed; a frame never changes a pinned neighbour).

mod gate;
mod http;
mod session;
mod tls;

#[cfg(test)] // the stack's unit tests drive smoltcp on the same wire
pub(crate) use gate::Wire;
pub use gate::{rx_gate, GateRig};
pub use http::http_response;
pub use session::{session_receive, SessionRig};
pub use tls::tls_record;

/// Bytes read off the front of a fuzz input, zero once it runs dry, so every input
/// decodes to something.
#[derive(Debug)]
pub(crate) struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Input { bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(crate) fn u8(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((&b, rest)) => {
                self.bytes = rest;
                b
            }
            None => 0,
        }
    }

    pub(crate) fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// Up to `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.bytes.split_at(n.min(self.bytes.len()));
        self.bytes = rest;
        head
    }

    /// Whatever is left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        self.take(self.bytes.len())
    }
}

#[cfg(test)]
mod tests;
