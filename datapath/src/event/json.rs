//! A validating JSON scanner (RFC 8259) that visits every scalar with its path, for
//! predicates over an event's data. It allocates nothing: the path is a fixed stack of
//! borrowed keys and array indices, strings are handed out raw (escapes undecoded) and
//! compared through [`Unescaped`].

use std::cmp::Ordering;

/// Nesting deeper than this is refused (an event is small and flat; a deep one is not
/// worth the stack).
pub const MAX_DEPTH: usize = 16;

/// One step of a path: an object key (raw, as between its quotes) or an array index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    Key(&'a [u8]),
    Index(u32),
}

/// A scalar value, raw: a string's bytes between its quotes, a number's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar<'a> {
    Str(&'a [u8]),
    Num(&'a [u8]),
    Bool(bool),
    Null,
}

impl Scalar<'_> {
    /// The number's value (its text is valid JSON, so this cannot fail, short of
    /// overflow to infinity, which compares like any float).
    pub fn number(&self) -> Option<f64> {
        match self {
            Scalar::Num(text) => std::str::from_utf8(text).ok()?.parse().ok(),
            _ => None,
        }
    }
}

/// Why the data is not JSON, and where (byte offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at byte {at}: {why}")]
pub struct JsonError {
    pub at: usize,
    pub why: &'static str,
}

/// Walks `data`, which must be exactly one JSON value (whitespace around it allowed),
/// calling `visit(path, value)` for every scalar in document order. Stops at the first
/// error; scalars before it have been visited.
pub fn scan<'a>(
    data: &'a [u8],
    mut visit: impl FnMut(&[Step<'a>], Scalar<'a>),
) -> Result<(), JsonError> {
    let mut s = Scanner {
        data,
        at: 0,
        path: [Step::Index(0); MAX_DEPTH],
        depth: 0,
    };
    s.ws();
    s.value(&mut visit)?;
    s.ws();
    if s.at != data.len() {
        return Err(s.err("trailing bytes after the value"));
    }
    Ok(())
}

struct Scanner<'a> {
    data: &'a [u8],
    at: usize,
    path: [Step<'a>; MAX_DEPTH],
    depth: usize,
}

impl<'a> Scanner<'a> {
    fn err(&self, why: &'static str) -> JsonError {
        JsonError { at: self.at, why }
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.at).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, b: u8, why: &'static str) -> Result<(), JsonError> {
        if self.peek() == Some(b) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.err(why))
        }
    }

    fn value(&mut self, visit: &mut impl FnMut(&[Step<'a>], Scalar<'a>)) -> Result<(), JsonError> {
        let scalar = match self.peek() {
            Some(b'{' | b'[') if self.depth == MAX_DEPTH => return Err(self.err("nested too deep")),
            Some(b'{') => return self.object(visit),
            Some(b'[') => return self.array(visit),
            Some(b'"') => Scalar::Str(self.string()?),
            Some(b'-' | b'0'..=b'9') => Scalar::Num(self.number()?),
            Some(b't') => self.word(b"true", Scalar::Bool(true))?,
            Some(b'f') => self.word(b"false", Scalar::Bool(false))?,
            Some(b'n') => self.word(b"null", Scalar::Null)?,
            Some(_) => return Err(self.err("expected a value")),
            None => return Err(self.err("unexpected end, expected a value")),
        };
        visit(&self.path[..self.depth], scalar);
        Ok(())
    }

    fn word(&mut self, word: &'static [u8], scalar: Scalar<'a>) -> Result<Scalar<'a>, JsonError> {
        if self.data[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(scalar)
        } else {
            Err(self.err("expected true, false or null"))
        }
    }

    fn enter(&mut self, step: Step<'a>) -> Result<(), JsonError> {
        if self.depth == MAX_DEPTH {
            return Err(self.err("nested too deep"));
        }
        self.path[self.depth] = step;
        self.depth += 1;
        Ok(())
    }

    fn object(&mut self, visit: &mut impl FnMut(&[Step<'a>], Scalar<'a>)) -> Result<(), JsonError> {
        self.at += 1; // {
        self.ws();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a key (a string)"));
            }
            let key = self.string()?;
            self.ws();
            self.expect(b':', "expected `:` after a key")?;
            self.ws();
            self.enter(Step::Key(key))?;
            self.value(visit)?;
            self.depth -= 1;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.at += 1;
                    self.ws();
                }
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected `,` or `}`")),
            }
        }
    }

    fn array(&mut self, visit: &mut impl FnMut(&[Step<'a>], Scalar<'a>)) -> Result<(), JsonError> {
        self.at += 1; // [
        self.ws();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(());
        }
        let mut index: u32 = 0;
        loop {
            self.enter(Step::Index(index))?;
            self.value(visit)?;
            self.depth -= 1;
            index = index.saturating_add(1);
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.at += 1;
                    self.ws();
                }
                Some(b']') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected `,` or `]`")),
            }
        }
    }

    /// A string; returns its raw bytes between the quotes, escapes checked not decoded.
    fn string(&mut self) -> Result<&'a [u8], JsonError> {
        self.at += 1; // "
        let start = self.at;
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(&self.data[start..self.at - 1]);
                }
                Some(b'\\') => {
                    self.at += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.at += 1
                        }
                        Some(b'u') => {
                            self.at += 1;
                            let hex = self.data.get(self.at..self.at + 4);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return Err(self.err("expected 4 hex digits after \\u"));
                            }
                            self.at += 4;
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                Some(0..=0x1F) => return Err(self.err("control character in a string")),
                Some(_) => self.at += 1,
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - start
    }

    fn number(&mut self) -> Result<&'a [u8], JsonError> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(self.err("expected a digit after `.`"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("expected a digit in the exponent"));
            }
        }
        Ok(&self.data[start..self.at])
    }
}

/// The bytes of a raw JSON string (as [`Scalar::Str`] or [`Step::Key`] give it) with its
/// escapes decoded, UTF-8 throughout (`\u` escapes, surrogate pairs included, become
/// their UTF-8 bytes; a lone surrogate becomes U+FFFD). Never allocates.
#[derive(Debug, Clone)]
pub struct Unescaped<'a> {
    raw: &'a [u8],
    at: usize,
    /// UTF-8 bytes of a decoded `\u` escape still to hand out.
    pending: [u8; 4],
    pending_len: u8,
    pending_at: u8,
}

impl<'a> Unescaped<'a> {
    pub fn new(raw: &'a [u8]) -> Unescaped<'a> {
        Unescaped {
            raw,
            at: 0,
            pending: [0; 4],
            pending_len: 0,
            pending_at: 0,
        }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let h = self.raw.get(at..at + 4)?;
        let s = std::str::from_utf8(h).ok()?;
        u32::from_str_radix(s, 16).ok()
    }
}

impl Iterator for Unescaped<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        if self.pending_at < self.pending_len {
            self.pending_at += 1;
            return Some(self.pending[self.pending_at as usize - 1]);
        }
        let b = *self.raw.get(self.at)?;
        self.at += 1;
        if b != b'\\' {
            return Some(b);
        }
        let e = *self.raw.get(self.at)?;
        self.at += 1;
        let simple = match e {
            b'b' => 0x08,
            b'f' => 0x0C,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => 0,
            other => other, // \" \\ \/
        };
        if e != b'u' {
            return Some(simple);
        }
        let mut code = self.hex4(self.at).unwrap_or(0xFFFD);
        self.at += 4;
        if (0xD800..0xDC00).contains(&code) {
            // A high surrogate: a low one must follow as `\uDC00`..`\uDFFF`.
            let low = (self.raw.get(self.at..self.at + 2) == Some(b"\\u"))
                .then(|| self.hex4(self.at + 2))
                .flatten()
                .filter(|l| (0xDC00..0xE000).contains(l));
            code = match low {
                Some(low) => {
                    self.at += 6;
                    0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                }
                None => 0xFFFD,
            };
        }
        let c = char::from_u32(code).unwrap_or('\u{FFFD}');
        let len = c.encode_utf8(&mut self.pending).len();
        self.pending_len = len as u8;
        self.pending_at = 1;
        Some(self.pending[0])
    }
}

/// Compares a raw JSON string with plain bytes, escapes decoded.
pub fn compare_str(raw: &[u8], plain: &[u8]) -> Ordering {
    if !raw.contains(&b'\\') {
        return raw.cmp(plain);
    }
    Unescaped::new(raw).cmp(plain.iter().copied())
}

#[cfg(test)]
mod tests;
