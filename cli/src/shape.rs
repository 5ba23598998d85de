//! The sizes written on the command line as decimal fields joined by `x`: the `IxJ` shape
//! of `alibi bias` and the `HxTxIxJ` case of `alibi bench`, both read by [`parse_fields`].

use std::fmt;

/// One `forward(i, j)` request, written `IxJ` on the command line (`10x10`, `1x4096`;
/// `0x5` is a valid, empty request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Queries (rows).
    pub i: usize,
    /// Keys (columns).
    pub j: usize,
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.i, self.j)
    }
}

/// How a kind of argument is written, for the messages of [`parse_fields`].
pub struct Syntax {
    /// What the argument is and its pattern, e.g. "a shape IxJ".
    pub name: &'static str,
    /// What each field means, e.g. "queries x keys".
    pub fields: &'static str,
    /// Valid examples, e.g. "10x10 or 1x4096".
    pub examples: &'static str,
}

/// The syntax of `alibi bias`'s shapes.
pub const SHAPE: Syntax = Syntax {
    name: "a shape IxJ",
    fields: "queries x keys",
    examples: "10x10 or 1x4096",
};

/// Parses `IxJ`: see [`parse_fields`].
pub fn parse_shape(text: &str) -> Result<Shape, String> {
    let [i, j] = parse_fields(text, &SHAPE)?;
    Ok(Shape { i, j })
}

/// Parses exactly `N` unsigned decimal integers joined by a lowercase `x`.
///
/// Only plain ASCII digits are accepted (no sign, no spaces, no `_`), so that `-1x2`,
/// `+1x2` or ` 1x2` are reported rather than guessed at (`usize::from_str` alone would take
/// `+1`). Limits on the values (at most 2^24, at least one head, ...) are the library's to
/// check, with its own messages.
///
/// # Errors
/// One line that quotes `text`, says what is wrong with it and how `syntax` is written.
pub fn parse_fields<const N: usize>(text: &str, syntax: &Syntax) -> Result<[usize; N], String> {
    let refuse = |why: String| {
        format!(
            "`{text}` is not {}: {why} ({}, e.g. {})",
            syntax.name, syntax.fields, syntax.examples
        )
    };
    let parts: Vec<&str> = text.split('x').collect();
    if parts.len() != N {
        return Err(refuse(format!(
            "{} field{} where {N} are expected",
            parts.len(),
            if parts.len() == 1 { "" } else { "s" }
        )));
    }
    let mut values = [0; N];
    for (value, part) in values.iter_mut().zip(parts) {
        if part.is_empty() {
            return Err(refuse("a field is empty".to_owned()));
        }
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(refuse(format!(
                "`{part}` is not an unsigned decimal integer (digits 0-9 only)"
            )));
        }
        // All digits, so the only way to fail is overflow.
        *value = part
            .parse()
            .map_err(|_| refuse(format!("`{part}` is too large")))?;
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_shapes() {
        assert_eq!(parse_shape("10x10"), Ok(Shape { i: 10, j: 10 }));
        assert_eq!(parse_shape("1x4096"), Ok(Shape { i: 1, j: 4096 }));
        assert_eq!(parse_shape("0x5"), Ok(Shape { i: 0, j: 5 }));
        assert_eq!(parse_shape("007x5"), Ok(Shape { i: 7, j: 5 }));
        assert_eq!(Shape { i: 3, j: 5 }.to_string(), "3x5");
    }

    #[test]
    fn rejects_anything_else() {
        for bad in [
            "", "x", "0x", "x5", "axb", "10", "1x2x3", "-1x2", "+1x2", " 1x2", "1x2 ", "1X2",
            "1_0x2", "1x٣",
        ] {
            let message = parse_shape(bad).expect_err(bad);
            assert!(
                message.starts_with(&format!("`{bad}` is not a shape IxJ: ")),
                "{message}"
            );
        }
        let overflow = parse_shape("99999999999999999999999x1").unwrap_err();
        assert!(
            overflow.contains("`99999999999999999999999` is too large"),
            "{overflow}"
        );
    }

    #[test]
    fn messages_say_what_is_wrong() {
        assert_eq!(
            parse_shape("1x2x3").unwrap_err(),
            "`1x2x3` is not a shape IxJ: 3 fields where 2 are expected (queries x keys, e.g. 10x10 or 1x4096)"
        );
        assert_eq!(
            parse_shape("10").unwrap_err(),
            "`10` is not a shape IxJ: 1 field where 2 are expected (queries x keys, e.g. 10x10 or 1x4096)"
        );
        assert!(parse_shape("+1x2")
            .unwrap_err()
            .contains("`+1` is not an unsigned decimal integer"));
        assert!(parse_shape("0x").unwrap_err().contains("a field is empty"));
    }

    #[test]
    fn any_field_count() {
        let four = Syntax {
            name: "a case HxTxIxJ",
            fields: "heads x total heads x queries x keys",
            examples: "8x8x1024x1024",
        };
        assert_eq!(parse_fields("8x8x16x16", &four), Ok([8, 8, 16, 16]));
        for bad in [
            "+8x8x16x16",
            "8x8x16",
            "8x8x16x16x1",
            "8x8x16x-1",
            "8x8x16x",
        ] {
            let message = parse_fields::<4>(bad, &four).expect_err(bad);
            assert!(
                message.starts_with(&format!("`{bad}` is not a case HxTxIxJ: ")),
                "{message}"
            );
        }
    }
}
