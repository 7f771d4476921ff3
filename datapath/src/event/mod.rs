//! Event triggers: orders fired by an inbound event rather than by a clock or a command.
//!
//! Sans-IO parts: the `text/event-stream` parser ([`sse`]), a chunked-body decoder
//! ([`chunked`]), a validating JSON scanner ([`json`]) and the predicate language
//! ([`predicate`]), compiled on the control side and evaluated here over an event's data
//! without allocating. Sources ([`source`]) run on the datapath thread over its links:
//! [`sse_source`] subscribes to a server-sent-events stream over its own TLS
//! connection, [`udp_source`] reads datagrams (steered to our stack by XDP, or from a
//! kernel socket). The appliance fires matching arms in the turn an event completes
//! (`appliance/events.rs`).

pub mod chunked;
pub mod json;
pub mod predicate;
pub mod source;
pub mod sse;
pub mod sse_source;
pub mod udp_source;
