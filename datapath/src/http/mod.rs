//! HTTP/1.1 on the wire: requests rendered to bytes once at arm time, and an incremental
//! response parser over a fixed buffer that never allocates while bytes arrive.
//!
//! The split follows the latency budget. Everything that may allocate or be slow (checking
//! a template, substituting placeholders, formatting headers) happens in
//! [`RequestTemplate::render`] before the trigger; the fire path only copies the rendered
//! bytes. [`ResponseParser::feed`] runs on the busy-poll loop and so works in storage sized
//! at construction; its errors are plain `Copy` values.

mod framing;
mod placeholder;
mod request;
mod response;

pub use placeholder::PlaceholderName;
pub use request::{warm_request, Placeholders, RequestTemplate};
pub use response::{Response, ResponseParser};

use std::fmt;

/// Why a request could not be built or a response could not be read.
///
/// Template errors (`Invalid` .. `UnmatchedBrace`) come from config load or arm time and
/// say which [`Part`] is at fault. The others come from [`ResponseParser::feed`]: after
/// one, the connection's byte stream cannot be trusted and must be closed. The type is
/// `Copy` and holds no heap data, so building one on the fire path costs nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// A template field or a value substituted into it is not allowed.
    #[error("{part}: {why}")]
    Invalid { part: Part, why: &'static str },
    /// The template sets a header that quickdraw owns.
    #[error("headers[{index}]: `{name}` cannot be set in a template: {why}")]
    ReservedHeader {
        index: usize,
        name: &'static str,
        why: &'static str,
    },
    /// `{name}` is not one of `{sku}`, `{qty}`, `{idempotency_key}`.
    #[error(
        "{part}: unknown placeholder `{{{name}}}` (known: {{sku}}, {{qty}}, \
         {{idempotency_key}}; write `{{{{` and `}}}}` for literal braces)"
    )]
    UnknownPlaceholder { part: Part, name: PlaceholderName },
    /// A `{` without its `}`, or a lone `}`; `offset` is a byte offset into the field.
    #[error(
        "{part}: unmatched brace at byte {offset} (write `{{{{` and `}}}}` for literal braces)"
    )]
    UnmatchedBrace { part: Part, offset: usize },

    /// The response head is not valid HTTP/1.x.
    #[error("malformed response: {0}")]
    Malformed(httparse::Error),
    /// The response (interim heads, head, body, and framing bytes not yet decoded) does
    /// not fit in the parser's fixed buffer. The buffer never grows.
    #[error("response does not fit in the {capacity}-byte receive buffer")]
    TooLarge { capacity: usize },
    /// A chunk-size line or the CRLF after chunk data is malformed.
    #[error("bad chunked framing: {why}")]
    BadChunk { why: &'static str },
    /// A Content-Length value is not a plain decimal number, overflows, or its
    /// duplicates disagree.
    #[error("bad Content-Length: {why}")]
    BadContentLength { why: &'static str },
    /// Transfer-Encoding is something other than exactly `chunked`.
    #[error("bad Transfer-Encoding: {why}")]
    BadTransferEncoding { why: &'static str },
    /// Both Transfer-Encoding and Content-Length: a response-splitting signature that
    /// RFC 9112 §6.3 says to treat as an error.
    #[error("response has both Transfer-Encoding and Content-Length")]
    ConflictingLength,
    /// A response that may carry a body has neither Content-Length nor chunked coding;
    /// reading until close is not supported on a kept-warm connection.
    #[error("status {status} response has no Content-Length or chunked body")]
    NoLength { status: u16 },
    /// A status quickdraw never asked for (101 Switching Protocols).
    #[error("unexpected status {status}")]
    UnexpectedStatus { status: u16 },
}

/// Which part of a request an error is about. Header indices count from 0, as in
/// [`RequestTemplate::headers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Part {
    Method,
    Path,
    HeaderName(usize),
    HeaderValue(usize),
    Body,
    /// The host given to `render` or `warm_request`.
    Host,
    /// The value given for `{sku}`.
    Sku,
    /// The value given for `{idempotency_key}`.
    IdempotencyKey,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Method => f.write_str("method"),
            Part::Path => f.write_str("path"),
            Part::HeaderName(i) => write!(f, "headers[{i}] name"),
            Part::HeaderValue(i) => write!(f, "headers[{i}] value"),
            Part::Body => f.write_str("body"),
            Part::Host => f.write_str("host"),
            Part::Sku => f.write_str("{sku} value"),
            Part::IdempotencyKey => f.write_str("{idempotency_key} value"),
        }
    }
}
