//! Evaluating a compiled predicate over an event's data, on the datapath: one pass of
//! the JSON scanner, clause results in two bit sets, no allocation.

use super::{Clause, Literal, Segment};
use crate::event::json::{self, compare_str, Scalar, Step};

/// Whether `haystack` contains `needle` (non-empty).
pub(super) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    if haystack.len() < needle.len() {
        return false;
    }
    let last_start = haystack.len() - needle.len();
    let mut from = 0;
    while from <= last_start {
        let Some(i) = haystack[from..=last_start].iter().position(|&b| b == first) else {
            return false;
        };
        let at = from + i;
        if &haystack[at + 1..at + needle.len()] == rest {
            return true;
        }
        from = at + 1;
    }
    false
}

/// Whether every clause holds for `data` (invalid JSON: none do).
pub(super) fn all(clauses: &[Clause], data: &[u8]) -> bool {
    let every = (1u32 << clauses.len()) - 1;
    let (mut seen, mut held) = (0u32, 0u32);
    let scanned = json::scan(data, |path, value| {
        for (i, clause) in clauses.iter().enumerate() {
            let bit = 1 << i;
            if seen & bit == 0 && path_is(path, &clause.path) {
                seen |= bit;
                if holds(clause, value) {
                    held |= bit;
                }
            }
        }
    });
    scanned.is_ok() && held == every
}

fn path_is(path: &[Step<'_>], want: &[Segment]) -> bool {
    path.len() == want.len()
        && path.iter().zip(want).all(|(step, seg)| match step {
            Step::Key(raw) => compare_str(raw, &seg.key).is_eq(),
            Step::Index(i) => seg.index == Some(*i),
        })
}

fn holds(clause: &Clause, value: Scalar<'_>) -> bool {
    let ordering = match (&clause.literal, value) {
        (Literal::Str(want), Scalar::Str(raw)) => compare_str(raw, want),
        (Literal::Num(want), Scalar::Num(_)) => {
            match value.number().and_then(|v| v.partial_cmp(want)) {
                Some(o) => o,
                None => return false,
            }
        }
        _ => return false,
    };
    clause.op.holds(ordering)
}
