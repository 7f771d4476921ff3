//! Event triggers: orders fired by an inbound event rather than by a clock or a command.
//! Sans-IO parts first: the `text/event-stream` parser ([`sse`]) and the predicate
//! language ([`predicate`]), compiled on the control side and evaluated here over an
//! event's JSON data without allocating.

pub mod chunked;
pub mod json;
pub mod predicate;
pub mod sse;
