//! A benchmark case, `HxTxIxJ`: what `alibi bench --case` parses and each measurement runs.

use crate::shape::{parse_fields, Syntax};

/// One benchmark shape: `heads` with slopes, padded to `total_heads`, `forward(i, j)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Case {
    pub heads: usize,
    pub total_heads: usize,
    pub i: usize,
    pub j: usize,
}

pub const DEFAULT_CASES: [Case; 4] = [
    Case {
        heads: 8,
        total_heads: 8,
        i: 1024,
        j: 1024,
    },
    Case {
        heads: 16,
        total_heads: 16,
        i: 2048,
        j: 2048,
    },
    Case {
        heads: 32,
        total_heads: 32,
        i: 2048,
        j: 2048,
    },
    Case {
        heads: 12,
        total_heads: 16,
        i: 1,
        j: 4096,
    },
];

/// How `--case` is written.
const CASE: Syntax = Syntax {
    name: "a case HxTxIxJ",
    fields: "heads with slopes x total heads x queries x keys",
    examples: "8x8x1024x1024 or 12x16x1x4096",
};

pub fn parse_case(text: &str) -> Result<Case, String> {
    let [heads, total_heads, i, j] = parse_fields(text, &CASE)?;
    Ok(Case {
        heads,
        total_heads,
        i,
        j,
    })
}
