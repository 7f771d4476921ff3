//! An incremental `text/event-stream` parser (WHATWG HTML, "Server-sent events", §9.2.6)
//! over fixed buffers: bytes go in as they are decrypted, in pieces of any size, and each
//! event is handed out the moment the blank line that ends it arrives. Nothing allocates
//! after construction.
//!
//! Every byte sequence is a valid stream, so there are no errors: an event whose data,
//! type or id does not fit in its buffer is dropped whole and counted
//! ([`SseParser::oversized`]), never truncated (a truncated event could match a predicate
//! the real one does not).

/// One dispatched event; the slices are valid during the callback only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` field; empty means the default type, `message`.
    pub kind: &'a [u8],
    /// The `data:` lines joined with `\n`.
    pub data: &'a [u8],
    /// The last event id seen on the stream (it persists across events).
    pub id: &'a [u8],
}

/// Largest `event:` type and `id:` kept.
pub const MAX_KIND: usize = 64;
pub const MAX_ID: usize = 64;

/// Which buffer the current field's value goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Data,
    Kind,
    Id,
    Retry,
    Ignored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line.
    LineStart,
    /// Reading a field name (`name[..name_len]`).
    Name,
    /// Right after the colon: one space is skipped.
    AfterColon(Field),
    /// Reading a value into its buffer.
    Value(Field),
    /// A comment line (starts with `:`), skipped to its end.
    Comment,
}

/// The parser; see the module docs.
#[derive(Debug)]
pub struct SseParser {
    state: State,
    /// The previous byte was CR: a following LF belongs to the same line end.
    after_cr: bool,
    /// Bytes of a leading UTF-8 BOM matched so far (0..=3), 4 once past the start.
    bom: u8,
    name: [u8; 5],
    name_len: usize,
    data: Box<[u8]>,
    data_len: usize,
    /// The length of the last event dispatched, whose data stays at the start of `data`
    /// until the next event's overwrites it (see [`SseParser::last_data`]).
    last_len: usize,
    /// A `data` field was seen for the pending event (its data may still be empty).
    has_data: bool,
    kind: [u8; MAX_KIND],
    kind_len: usize,
    /// The id being read on the current line; it replaces `id` at the line's end.
    id_line: [u8; MAX_ID],
    id_line_len: usize,
    id_line_bad: bool,
    id: [u8; MAX_ID],
    id_len: usize,
    /// The current `retry:` value, while all digits, and whether it has any.
    retry: Option<u64>,
    retry_digits: bool,
    /// The pending event overflowed a buffer and will be dropped at its end.
    overflow: bool,
    /// The server's reconnection time, from the last valid `retry:` field (ms).
    pub retry_ms: Option<u64>,
    /// Events dropped because they did not fit.
    pub oversized: u64,
    /// Events dispatched.
    pub dispatched: u64,
}

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

impl SseParser {
    /// A parser whose events carry at most `data_capacity` bytes of data.
    pub fn new(data_capacity: usize) -> SseParser {
        SseParser {
            state: State::LineStart,
            after_cr: false,
            bom: 0,
            name: [0; 5],
            name_len: 0,
            data: vec![0; data_capacity].into_boxed_slice(),
            data_len: 0,
            last_len: 0,
            has_data: false,
            kind: [0; MAX_KIND],
            kind_len: 0,
            id_line: [0; MAX_ID],
            id_line_len: 0,
            id_line_bad: false,
            id: [0; MAX_ID],
            id_len: 0,
            retry: None,
            retry_digits: false,
            overflow: false,
            retry_ms: None,
            oversized: 0,
            dispatched: 0,
        }
    }

    /// The data of the last event dispatched, for warming the code that matches events
    /// (a pure function of these bytes). Once the next event is being read, its bytes
    /// overwrite these from the start: still harmless bytes to warm with, never an
    /// event to act on.
    pub fn last_data(&self) -> &[u8] {
        &self.data[..self.last_len]
    }

    /// Back to the start of a new stream (a reconnect). The last event id is kept: a
    /// reconnecting client sends it as `Last-Event-ID`.
    pub fn reset(&mut self) {
        self.state = State::LineStart;
        self.after_cr = false;
        self.bom = 0;
        self.data_len = 0;
        self.has_data = false;
        self.kind_len = 0;
        self.overflow = false;
    }

    /// The last event id seen (empty if none).
    pub fn last_event_id(&self) -> &[u8] {
        &self.id[..self.id_len]
    }

    /// Feeds the next bytes of the stream; every event they complete goes to `on_event`,
    /// in order, before this returns.
    pub fn feed(&mut self, bytes: &[u8], mut on_event: impl FnMut(SseEvent<'_>)) {
        for &b in bytes {
            if self.bom < 3 {
                if b == BOM[self.bom as usize] {
                    self.bom += 1;
                    continue;
                }
                // Not a BOM after all: the bytes held back are stream content.
                let held = self.bom as usize;
                self.bom = 4;
                for &h in &BOM[..held] {
                    self.byte(h, &mut on_event);
                }
            }
            self.bom = 4;
            self.byte(b, &mut on_event);
        }
    }

    fn byte(&mut self, b: u8, on_event: &mut impl FnMut(SseEvent<'_>)) {
        if self.after_cr {
            self.after_cr = false;
            if b == b'\n' {
                return; // the LF of a CRLF: the line already ended at the CR
            }
        }
        if b == b'\r' || b == b'\n' {
            self.after_cr = b == b'\r';
            self.end_line(on_event);
            return;
        }
        match self.state {
            State::LineStart => {
                if b == b':' {
                    self.state = State::Comment;
                } else {
                    self.name_len = 0;
                    self.push_name(b);
                    self.state = State::Name;
                }
            }
            State::Name => {
                if b == b':' {
                    let field = self.field();
                    self.start_value(field);
                    self.state = State::AfterColon(field);
                } else {
                    self.push_name(b);
                }
            }
            State::AfterColon(field) => {
                self.state = State::Value(field);
                if b != b' ' {
                    self.value(field, b);
                }
            }
            State::Value(field) => self.value(field, b),
            State::Comment => {}
        }
    }

    fn push_name(&mut self, b: u8) {
        if self.name_len < self.name.len() {
            self.name[self.name_len] = b;
        }
        self.name_len += 1;
    }

    fn field(&self) -> Field {
        match &self.name[..self.name_len.min(self.name.len())] {
            _ if self.name_len > self.name.len() => Field::Ignored,
            b"data" => Field::Data,
            b"event" => Field::Kind,
            b"id" => Field::Id,
            b"retry" => Field::Retry,
            _ => Field::Ignored,
        }
    }

    /// A field begins (its name just ended, at a colon or at the line's end).
    fn start_value(&mut self, field: Field) {
        match field {
            Field::Data => {
                if self.has_data {
                    self.push_data(b'\n');
                }
                self.has_data = true;
            }
            Field::Kind => self.kind_len = 0,
            Field::Id => {
                self.id_line_len = 0;
                self.id_line_bad = false;
            }
            Field::Retry => {
                self.retry = Some(0);
                self.retry_digits = false;
            }
            Field::Ignored => {}
        }
    }

    fn push_data(&mut self, b: u8) {
        if self.data_len < self.data.len() {
            self.data[self.data_len] = b;
            self.data_len += 1;
        } else {
            self.overflow = true;
        }
    }

    fn value(&mut self, field: Field, b: u8) {
        match field {
            Field::Data => self.push_data(b),
            Field::Kind => {
                if self.kind_len < MAX_KIND {
                    self.kind[self.kind_len] = b;
                    self.kind_len += 1;
                } else {
                    self.overflow = true;
                }
            }
            Field::Id => {
                // An id with NUL is ignored (spec); one longer than we keep, too.
                if b == 0 || self.id_line_len == MAX_ID {
                    self.id_line_bad = true;
                } else {
                    self.id_line[self.id_line_len] = b;
                    self.id_line_len += 1;
                }
            }
            Field::Retry => {
                self.retry_digits = true;
                self.retry = match (self.retry, b) {
                    (Some(r), b'0'..=b'9') => r
                        .checked_mul(10)
                        .and_then(|r| r.checked_add(u64::from(b - b'0'))),
                    _ => None,
                };
            }
            Field::Ignored => {}
        }
    }

    fn end_line(&mut self, on_event: &mut impl FnMut(SseEvent<'_>)) {
        let field = match self.state {
            State::LineStart => return self.dispatch(on_event),
            State::Comment => None,
            // A line with no colon: the whole line is the field name, the value is empty.
            State::Name => {
                let field = self.field();
                self.start_value(field);
                Some(field)
            }
            State::AfterColon(field) | State::Value(field) => Some(field),
        };
        self.state = State::LineStart;
        match field {
            Some(Field::Id) if !self.id_line_bad => {
                self.id[..self.id_line_len].copy_from_slice(&self.id_line[..self.id_line_len]);
                self.id_len = self.id_line_len;
            }
            Some(Field::Retry) => {
                if let Some(ms) = self.retry.take().filter(|_| self.retry_digits) {
                    self.retry_ms = Some(ms);
                }
            }
            _ => {}
        }
    }

    /// A blank line: the pending event, if it has data, goes out.
    fn dispatch(&mut self, on_event: &mut impl FnMut(SseEvent<'_>)) {
        if self.has_data {
            if self.overflow {
                self.oversized += 1;
            } else {
                self.dispatched += 1;
                self.last_len = self.data_len;
                on_event(SseEvent {
                    kind: &self.kind[..self.kind_len],
                    data: &self.data[..self.data_len],
                    id: &self.id[..self.id_len],
                });
            }
        }
        self.data_len = 0;
        self.has_data = false;
        self.kind_len = 0;
        self.overflow = false;
    }
}

#[cfg(test)]
mod tests;
