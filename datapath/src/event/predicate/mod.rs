//! The predicate language of event arms, and its compiled form.
//!
//! ```text
//! predicate := "bytes:" string              the data contains these bytes
//!            | clause ("&&" clause)*         every clause holds
//! clause    := path op literal
//! path      := segment ("." segment)*        segment: [A-Za-z0-9_$-]+; digits index arrays
//! op        := "==" | "!=" | ">" | ">=" | "<" | "<="
//! literal   := string | number               JSON syntax ("..." with JSON escapes)
//! ```
//!
//! e.g. `sku == "1001" && stock > 0`, `price.amount <= 12.5`, `items.0.sku == "7"`,
//! `bytes:"\"restock\""`.
//!
//! Where this lives: the control plane parses and validates the text when an arm is made
//! (errors name the column), and hands the datapath the compiled [`Matcher`]. Both sides
//! use this one module, so the datapath does not depend on the control plane and the two
//! can never disagree on the language.
//!
//! Semantics, over the event's data parsed as JSON (invalid JSON matches nothing):
//! a clause looks at the first scalar at its path; it holds only when that scalar exists
//! and has the literal's type (a string for a string, a number for a number) and the
//! comparison is true, so `!=` does not hold for a missing field or a number compared
//! with a string. Strings compare by their bytes (UTF-8, escapes decoded); numbers as
//! f64 (integers beyond 2^53 lose precision). Evaluation never allocates.

mod eval;
mod parse;

pub use parse::{PredicateError, PredicateErrorKind};

use std::fmt;

/// Clauses a predicate may have (the evaluator tracks them in a bit set).
pub const MAX_CLAUSES: usize = 16;
/// Segments a path may have.
pub const MAX_SEGMENTS: usize = 8;
/// Longest string literal, in bytes (after decoding escapes).
pub const MAX_LITERAL: usize = 1024;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Op::Eq => ordering == Equal,
            Op::Ne => ordering != Equal,
            Op::Gt => ordering == Greater,
            Op::Ge => ordering != Less,
            Op::Lt => ordering == Less,
            Op::Le => ordering != Greater,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }
}

/// What a clause compares with.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// Decoded bytes.
    Str(Box<[u8]>),
    Num(f64),
}

/// One step of a clause's path: an object key, which also indexes an array when it is
/// all digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub key: Box<[u8]>,
    pub index: Option<u32>,
}

/// One `path op literal`.
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub path: Box<[Segment]>,
    pub op: Op,
    pub literal: Literal,
}

/// A compiled predicate: what the datapath evaluates against each event.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// The text it was compiled from, as given (for journals and reports).
    text: Box<str>,
    rule: Rule,
}

#[derive(Debug, Clone, PartialEq)]
enum Rule {
    /// The data contains these bytes.
    Bytes(Box<[u8]>),
    /// Every clause holds (1..=[`MAX_CLAUSES`] of them).
    All(Box<[Clause]>),
}

impl Matcher {
    /// Parses and compiles `text`; errors name the byte offset and column.
    pub fn compile(text: &str) -> Result<Matcher, PredicateError> {
        let rule = parse::parse(text)?;
        Ok(Matcher {
            text: text.into(),
            rule,
        })
    }

    /// The predicate's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The clauses, or `None` for a byte match.
    pub fn clauses(&self) -> Option<&[Clause]> {
        match &self.rule {
            Rule::All(clauses) => Some(clauses),
            Rule::Bytes(_) => None,
        }
    }

    /// Whether an event with this data matches. Never allocates.
    pub fn matches(&self, data: &[u8]) -> bool {
        match &self.rule {
            Rule::Bytes(needle) => eval::contains(data, needle),
            Rule::All(clauses) => eval::all(clauses, data),
        }
    }
}

/// Two matchers are the same predicate when they were compiled from the same text.
impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        self.text == other.text
    }
}
impl Eq for Matcher {}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What an arm's `--on` names: a source and a predicate over its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    pub source: Box<str>,
    pub matcher: Matcher,
}

impl EventSpec {
    /// Parses `SOURCE:PREDICATE` (`feed:sku == "1001"`, `feed:bytes:"x"`). Error
    /// positions count from the start of the whole text.
    pub fn parse(text: &str) -> Result<EventSpec, PredicateError> {
        let name_len = text
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
            .count();
        if name_len == 0 {
            return Err(PredicateError::new(0, PredicateErrorKind::NoSource));
        }
        if text.as_bytes().get(name_len) != Some(&b':') {
            return Err(PredicateError::new(
                name_len,
                PredicateErrorKind::Expected("`:` after the source name"),
            ));
        }
        let predicate = &text[name_len + 1..];
        let matcher = Matcher::compile(predicate).map_err(|e| e.shifted(name_len + 1))?;
        Ok(EventSpec {
            source: text[..name_len].into(),
            matcher,
        })
    }
}

#[cfg(test)]
mod tests;
