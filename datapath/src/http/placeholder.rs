//! The placeholder syntax of request templates: `{sku}`, `{qty}`, `{idempotency_key}`,
//! with `{{` and `}}` for literal braces, split into literal and placeholder segments.
//!
//! One scanner serves both `validate` (config load) and `render` (arm time), so the two
//! cannot disagree about what a template means.

use super::{HttpError, Part};
use std::fmt;

/// One piece of a template field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Segment<'a> {
    /// Text copied as is (`{{` and `}}` arrive here already unescaped).
    Literal(&'a str),
    Sku,
    Qty,
    IdempotencyKey,
}

/// Splits a template field into [`Segment`]s; stops after the first error.
#[derive(Debug)]
pub(crate) struct Segments<'a> {
    field: &'a str,
    pos: usize,
    part: Part,
}

impl<'a> Segments<'a> {
    pub(crate) fn new(field: &'a str, part: Part) -> Self {
        Segments {
            field,
            pos: 0,
            part,
        }
    }

    fn fail(&mut self, e: HttpError) -> Option<Result<Segment<'a>, HttpError>> {
        self.pos = self.field.len();
        Some(Err(e))
    }
}

impl<'a> Iterator for Segments<'a> {
    type Item = Result<Segment<'a>, HttpError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.field.get(self.pos..).filter(|r| !r.is_empty())?;
        let Some(brace) = rest.find(['{', '}']) else {
            self.pos = self.field.len();
            return Some(Ok(Segment::Literal(rest)));
        };
        if brace > 0 {
            self.pos += brace;
            return Some(Ok(Segment::Literal(&rest[..brace])));
        }
        let offset = self.pos;
        if rest.starts_with("{{") || rest.starts_with("}}") {
            self.pos += 2;
            return Some(Ok(Segment::Literal(&rest[..1])));
        }
        if rest.starts_with('}') {
            return self.fail(HttpError::UnmatchedBrace {
                part: self.part,
                offset,
            });
        }
        let Some(close) = rest.find('}') else {
            return self.fail(HttpError::UnmatchedBrace {
                part: self.part,
                offset,
            });
        };
        self.pos += close + 1;
        match &rest[1..close] {
            "sku" => Some(Ok(Segment::Sku)),
            "qty" => Some(Ok(Segment::Qty)),
            "idempotency_key" => Some(Ok(Segment::IdempotencyKey)),
            other => self.fail(HttpError::UnknownPlaceholder {
                part: self.part,
                name: PlaceholderName::new(other),
            }),
        }
    }
}

/// The (possibly truncated) name of an unknown placeholder, held inline so that
/// [`HttpError`] stays `Copy` and never allocates.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PlaceholderName {
    bytes: [u8; Self::MAX],
    len: u8,
    truncated: bool,
}

impl PlaceholderName {
    /// Longer names keep their first bytes (cut at a char boundary) and display with `…`.
    pub const MAX: usize = 32;

    fn new(name: &str) -> Self {
        let mut len = name.len().min(Self::MAX);
        while !name.is_char_boundary(len) {
            len -= 1;
        }
        let mut bytes = [0; Self::MAX];
        bytes[..len].copy_from_slice(&name.as_bytes()[..len]);
        PlaceholderName {
            bytes,
            // `len <= MAX = 32`, so the cast is lossless.
            len: len as u8,
            truncated: len < name.len(),
        }
    }

    /// The name as written between the braces (or its first [`Self::MAX`] bytes).
    pub fn as_str(&self) -> &str {
        // Built from a `&str` cut at a char boundary, so this never fails; the fallback
        // keeps the no-panic promise without `unsafe`.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Display for PlaceholderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        if self.truncated {
            f.write_str("…")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PlaceholderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlaceholderName({:?})", self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(s: &str) -> Result<Vec<Segment<'_>>, HttpError> {
        Segments::new(s, Part::Body).collect()
    }

    #[test]
    fn splits_literals_and_placeholders() {
        assert_eq!(
            segments("/o/{sku}?q={qty}&k={idempotency_key}").unwrap(),
            [
                Segment::Literal("/o/"),
                Segment::Sku,
                Segment::Literal("?q="),
                Segment::Qty,
                Segment::Literal("&k="),
                Segment::IdempotencyKey,
            ]
        );
        assert_eq!(segments("").unwrap(), []);
    }

    #[test]
    fn doubled_braces_are_literal() {
        let got = segments("{{\"sku\":\"{sku}\"}}").unwrap();
        assert_eq!(
            got,
            [
                Segment::Literal("{"),
                Segment::Literal("\"sku\":\""),
                Segment::Sku,
                Segment::Literal("\""),
                Segment::Literal("}"),
            ]
        );
        // `{{sku}}` is the literal text `{sku}`, not a placeholder.
        assert_eq!(
            segments("{{sku}}").unwrap(),
            [
                Segment::Literal("{"),
                Segment::Literal("sku"),
                Segment::Literal("}")
            ]
        );
    }

    #[test]
    fn unknown_placeholder_is_named() {
        let e = segments("a{price}b").unwrap_err();
        let HttpError::UnknownPlaceholder { part, name } = e else {
            panic!("{e:?}")
        };
        assert_eq!((part, name.as_str()), (Part::Body, "price"));
        assert!(e.to_string().contains("`{price}`"), "{e}");
        // Case matters: placeholders are exact.
        assert!(matches!(
            segments("{SKU}"),
            Err(HttpError::UnknownPlaceholder { .. })
        ));
    }

    #[test]
    fn unmatched_braces_report_offset() {
        for (s, offset) in [("ab{sku", 2), ("ab}", 2), ("}x", 0), ("x{{{", 3)] {
            assert_eq!(
                segments(s),
                Err(HttpError::UnmatchedBrace {
                    part: Part::Body,
                    offset
                }),
                "{s}"
            );
        }
    }

    #[test]
    fn long_names_truncate_at_char_boundary() {
        let long = format!("{}é{}", "a".repeat(31), "b".repeat(40));
        let name = PlaceholderName::new(&long);
        assert_eq!(name.as_str(), "a".repeat(31));
        assert!(name.to_string().ends_with('…'));
        assert_eq!(PlaceholderName::new("é").as_str(), "é");
    }

    #[test]
    fn random_templates_never_panic() {
        let mut rng = fastrand::Rng::with_seed(7);
        let alphabet = ['{', '}', 's', 'k', 'u', 'q', 't', 'y', 'é', '_', 'x'];
        for _ in 0..20_000 {
            let s: String = (0..rng.usize(0..24))
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            let _ = segments(&s);
        }
    }
}
