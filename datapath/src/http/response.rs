//! Incremental HTTP/1.1 response parsing in a buffer sized at construction: bytes are fed
//! as they arrive, in any split, and nothing is allocated or grown while they are.
//!
//! Buffer layout while a response is in flight: `[start .. body_start)` interim 1xx heads
//! and the final head, then the body. A Content-Length body is simply the bytes after the
//! head. A chunked body is de-chunked in place: chunk data moves down to `out`, so
//! `[body_start .. out)` is the decoded body and `[pos .. len)` the framing not yet parsed.
//! Either way `body()` is one contiguous decoded slice. Once a response is complete its
//! bytes stay put until the next `feed`, which is what keeps `body()` valid; whatever
//! followed it in the stream is the start of the next response.

use super::framing::{framing, Length};
use super::HttpError;
use std::fmt;
use std::ops::Range;

/// Header slots on the stack per parse; a head with more fields is rejected
/// (`Malformed(TooManyHeaders)`), as is a trailer section with more.
const MAX_HEADERS: usize = 64;

/// A complete response, as [`ResponseParser::feed`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Bytes of the final head, status line to blank line; skipped 1xx heads excluded.
    pub head_len: usize,
    /// Bytes of the body; for chunked responses, of the decoded body.
    pub body_len: usize,
    /// The server will close the connection: `Connection: close`, or HTTP/1.0 without
    /// `Connection: keep-alive`.
    pub close: bool,
}

/// Parses the responses arriving on one connection, one after another.
pub struct ResponseParser {
    buf: Box<[u8]>,
    len: usize,
    /// First byte of the current response, interim heads included.
    start: usize,
    /// First byte not yet parsed.
    pos: usize,
    state: State,
    head_request: bool,
    /// The body of the last complete response, until the next `feed`.
    body: Range<usize>,
    /// The final head of the last complete response, until the next `feed`.
    head: Range<usize>,
    /// The first error, repeated by every `feed` until `reset`: after a framing error the
    /// stream cannot be re-synchronised.
    failed: Option<HttpError>,
}

/// The final head, once parsed.
#[derive(Debug, Clone, Copy)]
struct Head {
    status: u16,
    head_len: usize,
    close: bool,
    body_start: usize,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Waiting for a complete head at `pos` (a 1xx head is skipped and we wait again).
    Head,
    /// Content-Length body; the response ends at `end`.
    Body { head: Head, end: usize },
    /// Chunked body decoded up to `out`.
    Chunked {
        head: Head,
        phase: Chunk,
        out: usize,
    },
}

#[derive(Debug, Clone, Copy)]
enum Chunk {
    /// A chunk-size line (with optional extensions).
    Size,
    /// Chunk data, `remaining` bytes still to come.
    Data { remaining: u64 },
    /// The CRLF closing chunk data.
    DataEnd,
    /// The trailer section after the last chunk, up to its blank line.
    Trailers,
}

impl ResponseParser {
    /// A parser whose responses (heads, body and framing) must fit in `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        ResponseParser {
            buf: vec![0; capacity].into_boxed_slice(),
            len: 0,
            start: 0,
            pos: 0,
            state: State::Head,
            head_request: false,
            body: 0..0,
            head: 0..0,
            failed: None,
        }
    }

    /// Says whether the next response answers a HEAD request (so has no body whatever
    /// its headers say). Call it before that response's head is complete; it applies to
    /// one response and then reverts to `false`.
    pub fn expect(&mut self, head_request: bool) {
        self.head_request = head_request;
    }

    /// Feeds bytes as they arrive. `Ok(Some(..))` once a whole response is in; bytes after
    /// it are kept as the start of the next, so with pipelining call `feed(&[])` to look
    /// for a next response already buffered. `Ok(None)` means more bytes are needed.
    ///
    /// A response plus whatever arrives after it in the same call must fit in the
    /// capacity, else `TooLarge`. After an error the parser repeats it until `reset`.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<Response>, HttpError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        self.drop_completed();
        let result = self.take(bytes);
        if let Err(e) = result {
            self.failed = Some(e);
        }
        result
    }

    /// The body of the response `feed` last returned, until the next `feed` or `reset`;
    /// de-chunked for chunked responses. Empty before any response completed.
    pub fn body(&self) -> &[u8] {
        self.buf.get(self.body.clone()).unwrap_or_default()
    }

    /// The value of header `name` (case-insensitive) in the head of the response `feed`
    /// last returned, until the next `feed` or `reset`. Parses the head again, on the
    /// stack: meant for the odd header a caller needs (a `Date` for clock sync), not for
    /// every response.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        let head = self.buf.get(self.head.clone())?;
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut headers);
        parsed.parse(head).ok()?;
        parsed
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// Whether any byte of the current response has arrived (interim 1xx included);
    /// after a response completes, whether the next one has begun.
    pub fn started(&self) -> bool {
        self.len > self.start
    }

    /// Forgets everything buffered and any error, as for a new connection.
    pub fn reset(&mut self) {
        self.len = 0;
        self.start = 0;
        self.pos = 0;
        self.state = State::Head;
        self.head_request = false;
        self.body = 0..0;
        self.head = 0..0;
        self.failed = None;
    }

    fn capacity(&self) -> usize {
        self.buf.len()
    }

    fn too_large(&self) -> HttpError {
        HttpError::TooLarge {
            capacity: self.capacity(),
        }
    }

    /// Moves what followed the last complete response to the front of the buffer.
    fn drop_completed(&mut self) {
        self.body = 0..0;
        self.head = 0..0;
        if self.start > 0 {
            self.buf.copy_within(self.start..self.len, 0);
            self.len -= self.start;
            self.pos -= self.start;
            self.start = 0;
        }
    }

    /// Copies `bytes` in as room allows, parsing as it goes so that de-chunking can make
    /// room for more.
    fn take(&mut self, mut bytes: &[u8]) -> Result<Option<Response>, HttpError> {
        loop {
            let n = bytes.len().min(self.capacity() - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
            self.len += n;
            bytes = &bytes[n..];
            if let Some(response) = self.advance()? {
                if bytes.len() > self.capacity() - self.len {
                    return Err(self.too_large());
                }
                self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
                self.len += bytes.len();
                return Ok(Some(response));
            }
            if bytes.is_empty() {
                return Ok(None);
            }
            if self.len == self.capacity() {
                return Err(self.too_large());
            }
        }
    }

    /// Parses as far as the buffered bytes allow.
    fn advance(&mut self) -> Result<Option<Response>, HttpError> {
        loop {
            match self.state {
                State::Head => {
                    if !self.parse_head()? {
                        return Ok(None);
                    }
                }
                State::Body { head, end } => {
                    return Ok((self.len >= end).then(|| self.complete(head, end, end)));
                }
                State::Chunked { head, phase, out } => {
                    return self.advance_chunked(head, phase, out)
                }
            }
        }
    }

    /// Parses a head at `pos`; `Ok(true)` if one was consumed (state has moved on).
    /// A partial head is parsed again from its start on the next feed: heads are small
    /// and nearly always arrive in one segment, so keeping httparse's state is not worth it.
    fn parse_head(&mut self) -> Result<bool, HttpError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut headers);
        let head_len = match parsed.parse(&self.buf[self.pos..self.len]) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(false),
            Err(e) => return Err(HttpError::Malformed(e)),
        };
        let (Some(status), Some(minor)) = (parsed.code, parsed.version) else {
            return Err(HttpError::Malformed(httparse::Error::Status));
        };
        match status {
            0..=99 => return Err(HttpError::Malformed(httparse::Error::Status)),
            101 => return Err(HttpError::UnexpectedStatus { status }),
            // Interim (100 Continue, 103 Early Hints): skip, the real response follows.
            100..=199 => {
                self.pos += head_len;
                return Ok(true);
            }
            _ => {}
        }
        let framing = framing(status, minor, parsed.headers, self.head_request)?;
        let head = Head {
            status,
            head_len,
            close: framing.close,
            body_start: self.pos + head_len,
        };
        self.pos = head.body_start;
        self.state = match framing.length {
            Length::None => State::Body {
                head,
                end: head.body_start,
            },
            Length::Fixed(n) => {
                let room = self.capacity() - head.body_start;
                match usize::try_from(n) {
                    Ok(n) if n <= room => State::Body {
                        head,
                        end: head.body_start + n,
                    },
                    _ => return Err(self.too_large()),
                }
            }
            Length::Chunked => State::Chunked {
                head,
                phase: Chunk::Size,
                out: head.body_start,
            },
        };
        Ok(true)
    }

    /// Decodes chunked framing in place: chunk data moves down to `out`, framing bytes
    /// are dropped, so the buffer holds the decoded body and a short unparsed tail.
    fn advance_chunked(
        &mut self,
        head: Head,
        mut phase: Chunk,
        mut out: usize,
    ) -> Result<Option<Response>, HttpError> {
        loop {
            let pending = &self.buf[self.pos..self.len];
            match phase {
                Chunk::Size => match httparse::parse_chunk_size(pending) {
                    Ok(httparse::Status::Complete((n, size))) => {
                        check_size_line(&pending[..n])?;
                        self.pos += n;
                        phase = if size == 0 {
                            Chunk::Trailers
                        } else if size > (self.capacity() - out) as u64 {
                            return Err(self.too_large());
                        } else {
                            Chunk::Data { remaining: size }
                        };
                    }
                    Ok(httparse::Status::Partial) => break,
                    Err(httparse::InvalidChunkSize) => {
                        return Err(HttpError::BadChunk {
                            why: "invalid chunk-size line",
                        })
                    }
                },
                Chunk::Data { remaining } => {
                    // `n <= remaining`, so the cast back is lossless.
                    let n = (pending.len() as u64).min(remaining) as usize;
                    self.buf.copy_within(self.pos..self.pos + n, out);
                    out += n;
                    self.pos += n;
                    if n as u64 == remaining {
                        phase = Chunk::DataEnd;
                    } else {
                        phase = Chunk::Data {
                            remaining: remaining - n as u64,
                        };
                        break;
                    }
                }
                Chunk::DataEnd => match pending {
                    [b'\r', b'\n', ..] => {
                        self.pos += 2;
                        phase = Chunk::Size;
                    }
                    [] | [b'\r'] => break,
                    _ => {
                        return Err(HttpError::BadChunk {
                            why: "chunk data not followed by CRLF",
                        })
                    }
                },
                Chunk::Trailers => {
                    let mut trailers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    match httparse::parse_headers(pending, &mut trailers) {
                        Ok(httparse::Status::Complete((n, _))) => {
                            self.pos += n;
                            self.close_gap(out);
                            return Ok(Some(self.complete(head, out, out)));
                        }
                        Ok(httparse::Status::Partial) => break,
                        Err(e) => return Err(HttpError::Malformed(e)),
                    }
                }
            }
        }
        self.close_gap(out);
        self.state = State::Chunked { head, phase, out };
        Ok(None)
    }

    /// Moves the unparsed tail down to `out`, reclaiming the framing bytes dropped so far.
    fn close_gap(&mut self, out: usize) {
        if out < self.pos {
            self.buf.copy_within(self.pos..self.len, out);
            self.len -= self.pos - out;
            self.pos = out;
        }
    }

    /// Records a complete response whose body ends at `body_end` and whose bytes end at
    /// `end`; the next response starts at `end`.
    fn complete(&mut self, head: Head, body_end: usize, end: usize) -> Response {
        self.body = head.body_start..body_end;
        self.head = head.body_start - head.head_len..head.body_start;
        self.start = end;
        self.pos = end;
        self.state = State::Head;
        self.head_request = false;
        Response {
            status: head.status,
            head_len: head.head_len,
            body_len: body_end - head.body_start,
            close: head.close,
        }
    }
}

/// `parse_chunk_size` is lenient where leniency enables request smuggling: it accepts a
/// line with no digits, and any byte (bare LF included) inside an extension.
fn check_size_line(line: &[u8]) -> Result<(), HttpError> {
    if !line.first().is_some_and(u8::is_ascii_hexdigit) {
        return Err(HttpError::BadChunk {
            why: "chunk size has no digits",
        });
    }
    // The line ends in the CRLF that parse_chunk_size stopped at; nothing before it may
    // be a control byte other than tab.
    let body = &line[..line.len().saturating_sub(2)];
    if body.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(HttpError::BadChunk {
            why: "control byte in chunk extension",
        });
    }
    Ok(())
}

impl fmt::Debug for ResponseParser {
    // Not derived: the buffer can be 64 KiB.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseParser")
            .field("capacity", &self.capacity())
            .field("len", &self.len)
            .field("start", &self.start)
            .field("pos", &self.pos)
            .field("state", &self.state)
            .field("head_request", &self.head_request)
            .field("failed", &self.failed)
            .finish()
    }
}

#[cfg(test)]
mod tests;
