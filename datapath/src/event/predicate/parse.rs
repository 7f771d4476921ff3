//! The predicate text → [`Rule`] parser, with errors that point at a column.

use super::{Clause, Literal, Op, Rule, Segment, MAX_CLAUSES, MAX_LITERAL, MAX_SEGMENTS};
use std::fmt;

/// What is wrong with a predicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PredicateErrorKind {
    /// Nothing to match on.
    Empty,
    /// `--on` text without a source name before its `:`.
    NoSource,
    /// Something else was expected here.
    Expected(&'static str),
    /// `=` where `==` was meant.
    SingleEquals,
    /// `||`: predicates are conjunctions.
    Or,
    UnterminatedString,
    BadEscape,
    /// A number that is not JSON syntax.
    BadNumber(&'static str),
    TooManyClauses,
    PathTooLong,
    LiteralTooLong,
}

impl fmt::Display for PredicateErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "empty predicate"),
            Self::NoSource => write!(f, "expected SOURCE:PREDICATE (a source name first)"),
            Self::Expected(what) => write!(f, "expected {what}"),
            Self::SingleEquals => write!(f, "`=` is not a comparison; write `==`"),
            Self::Or => write!(
                f,
                "`||` is not supported: a predicate is a conjunction (`&&`); \
                 make one arm per alternative"
            ),
            Self::UnterminatedString => write!(f, "unterminated string"),
            Self::BadEscape => write!(
                f,
                "invalid escape (JSON escapes: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)"
            ),
            Self::BadNumber(why) => write!(f, "bad number: {why}"),
            Self::TooManyClauses => write!(f, "more than {MAX_CLAUSES} clauses"),
            Self::PathTooLong => write!(f, "a path has more than {MAX_SEGMENTS} segments"),
            Self::LiteralTooLong => write!(f, "a string longer than {MAX_LITERAL} bytes"),
        }
    }
}

/// A predicate error at byte offset `at` of the text (column `at + 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("column {}: {kind}", self.at + 1)]
pub struct PredicateError {
    pub at: usize,
    pub kind: PredicateErrorKind,
}

impl PredicateError {
    pub fn new(at: usize, kind: PredicateErrorKind) -> PredicateError {
        PredicateError { at, kind }
    }

    pub(super) fn shifted(self, by: usize) -> PredicateError {
        PredicateError {
            at: self.at + by,
            ..self
        }
    }

    /// The text with a caret under the error, then the message: for a person.
    pub fn show(&self, text: &str) -> String {
        let column = text.get(..self.at).map_or(self.at, |t| t.chars().count());
        format!("{text}\n{}^\n{self}", " ".repeat(column))
    }
}

type Parsed<T> = Result<T, PredicateError>;

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
}

/// Parses a whole predicate.
pub(super) fn parse(text: &str) -> Parsed<Rule> {
    let mut p = Parser {
        text: text.as_bytes(),
        at: 0,
    };
    p.ws();
    if p.at == p.text.len() {
        return Err(p.err(PredicateErrorKind::Empty));
    }
    if p.rest().starts_with(b"bytes:") {
        p.at += "bytes:".len();
        p.ws();
        let needle = p.string()?;
        if needle.is_empty() {
            return Err(p.err(PredicateErrorKind::Expected("a non-empty byte string")));
        }
        p.end()?;
        return Ok(Rule::Bytes(needle.into()));
    }
    let mut clauses = Vec::new();
    loop {
        if clauses.len() == MAX_CLAUSES {
            return Err(p.err(PredicateErrorKind::TooManyClauses));
        }
        clauses.push(p.clause()?);
        p.ws();
        if p.rest().starts_with(b"&&") {
            p.at += 2;
            p.ws();
        } else if p.rest().starts_with(b"||") {
            return Err(p.err(PredicateErrorKind::Or));
        } else {
            p.end()?;
            return Ok(Rule::All(clauses.into()));
        }
    }
}

impl Parser<'_> {
    fn rest(&self) -> &[u8] {
        &self.text[self.at..]
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn err(&self, kind: PredicateErrorKind) -> PredicateError {
        PredicateError::new(self.at, kind)
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn end(&mut self) -> Parsed<()> {
        self.ws();
        if self.at == self.text.len() {
            Ok(())
        } else {
            Err(self.err(PredicateErrorKind::Expected("`&&` or the end")))
        }
    }

    fn clause(&mut self) -> Parsed<Clause> {
        let path = self.path()?;
        self.ws();
        let op = self.op()?;
        self.ws();
        let literal = match self.peek() {
            Some(b'"') => Literal::Str(self.string()?.into()),
            Some(b'-' | b'0'..=b'9') => Literal::Num(self.number()?),
            _ => {
                return Err(self.err(PredicateErrorKind::Expected(
                    "a string (\"...\") or a number",
                )))
            }
        };
        Ok(Clause { path, op, literal })
    }

    fn path(&mut self) -> Parsed<Box<[Segment]>> {
        let mut path = Vec::new();
        loop {
            let start = self.at;
            while self
                .peek()
                .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'-'))
            {
                self.at += 1;
            }
            if self.at == start {
                return Err(self.err(PredicateErrorKind::Expected(if path.is_empty() {
                    "a field path (like sku or price.amount)"
                } else {
                    "a field name after `.`"
                })));
            }
            if path.len() == MAX_SEGMENTS {
                return Err(PredicateError::new(start, PredicateErrorKind::PathTooLong));
            }
            let key = &self.text[start..self.at];
            let index = std::str::from_utf8(key)
                .ok()
                .filter(|k| k.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|k| k.parse().ok());
            path.push(Segment {
                key: key.into(),
                index,
            });
            if self.peek() != Some(b'.') {
                return Ok(path.into());
            }
            self.at += 1;
        }
    }

    fn op(&mut self) -> Parsed<Op> {
        let (op, len) = match self.rest() {
            [b'=', b'=', ..] => (Op::Eq, 2),
            [b'!', b'=', ..] => (Op::Ne, 2),
            [b'>', b'=', ..] => (Op::Ge, 2),
            [b'<', b'=', ..] => (Op::Le, 2),
            [b'>', ..] => (Op::Gt, 1),
            [b'<', ..] => (Op::Lt, 1),
            [b'=', ..] => return Err(self.err(PredicateErrorKind::SingleEquals)),
            _ => {
                return Err(self.err(PredicateErrorKind::Expected(
                    "an operator (==, !=, >, >=, <, <=)",
                )))
            }
        };
        self.at += len;
        Ok(op)
    }

    /// A JSON string literal, decoded.
    fn string(&mut self) -> Parsed<Vec<u8>> {
        if self.peek() != Some(b'"') {
            return Err(self.err(PredicateErrorKind::Expected("a string (\"...\")")));
        }
        let open = self.at;
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(PredicateError::new(
                    open,
                    PredicateErrorKind::UnterminatedString,
                ));
            };
            match b {
                b'"' => {
                    self.at += 1;
                    return Ok(out);
                }
                b'\\' => self.escape(&mut out)?,
                _ => {
                    out.push(b);
                    self.at += 1;
                }
            }
            if out.len() > MAX_LITERAL {
                return Err(PredicateError::new(
                    open,
                    PredicateErrorKind::LiteralTooLong,
                ));
            }
        }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let h = self.text.get(at..at + 4)?;
        if !h.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Parsed<()> {
        let bad = self.err(PredicateErrorKind::BadEscape);
        let b = match self.text.get(self.at + 1) {
            Some(b'"') => b'"',
            Some(b'\\') => b'\\',
            Some(b'/') => b'/',
            Some(b'b') => 0x08,
            Some(b'f') => 0x0C,
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(b'u') => {
                let mut code = self.hex4(self.at + 2).ok_or(bad)?;
                let mut len = 6;
                if (0xD800..0xDC00).contains(&code) {
                    let low = (self.text.get(self.at + 6..self.at + 8) == Some(b"\\u"))
                        .then(|| self.hex4(self.at + 8))
                        .flatten()
                        .filter(|l| (0xDC00..0xE000).contains(l))
                        .ok_or(bad)?;
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                    len = 12;
                }
                let c = char::from_u32(code).ok_or(bad)?;
                let mut utf8 = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                self.at += len;
                return Ok(());
            }
            _ => return Err(bad),
        };
        out.push(b);
        self.at += 2;
        Ok(())
    }

    /// A JSON number literal.
    fn number(&mut self) -> Parsed<f64> {
        let start = self.at;
        let digits = |p: &mut Self| {
            let s = p.at;
            while p.peek().is_some_and(|b| b.is_ascii_digit()) {
                p.at += 1;
            }
            p.at - s
        };
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.at += 1;
                if self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    return Err(self.err(PredicateErrorKind::BadNumber("no leading zeros")));
                }
            }
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(self.err(PredicateErrorKind::BadNumber("expected a digit"))),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if digits(self) == 0 {
                return Err(self.err(PredicateErrorKind::BadNumber("expected a digit after `.`")));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if digits(self) == 0 {
                return Err(self.err(PredicateErrorKind::BadNumber(
                    "expected a digit in the exponent",
                )));
            }
        }
        let text = std::str::from_utf8(&self.text[start..self.at]).unwrap_or("");
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(PredicateError::new(
                start,
                PredicateErrorKind::BadNumber("out of range"),
            )),
        }
    }
}
