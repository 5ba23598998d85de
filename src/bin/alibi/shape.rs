//! The `IxJ` shape argument: `i` queries by `j` keys.

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

/// Parses `IxJ`: two unsigned decimal integers joined by a lowercase `x`.
///
/// Only plain digits are accepted (no sign, no spaces), so that `-1x2` or `+1x2` are
/// reported rather than guessed at. Limits on the values (at most 2^24) are the library's
/// to check, with its own message.
pub fn parse_shape(text: &str) -> Result<Shape, String> {
    let syntax = || format!("`{text}` is not a shape IxJ (queries x keys, e.g. 10x10 or 1x4096)");
    let (i, j) = text.split_once('x').ok_or_else(syntax)?;
    let number = |part: &str| -> Result<usize, String> {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(syntax());
        }
        // All digits, so the only way to fail is overflow.
        part.parse()
            .map_err(|_| format!("`{part}` in shape `{text}` is too large"))
    };
    Ok(Shape {
        i: number(i)?,
        j: number(j)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_shapes() {
        assert_eq!(parse_shape("10x10"), Ok(Shape { i: 10, j: 10 }));
        assert_eq!(parse_shape("1x4096"), Ok(Shape { i: 1, j: 4096 }));
        assert_eq!(parse_shape("0x5"), Ok(Shape { i: 0, j: 5 }));
        assert_eq!(Shape { i: 3, j: 5 }.to_string(), "3x5");
    }

    #[test]
    fn rejects_anything_else() {
        for bad in [
            "", "x", "0x", "x5", "axb", "10", "1x2x3", "-1x2", "+1x2", " 1x2", "1X2",
        ] {
            assert!(parse_shape(bad).is_err(), "{bad:?} was accepted");
        }
        let overflow = parse_shape("99999999999999999999999x1").unwrap_err();
        assert!(overflow.contains("too large"), "{overflow}");
    }
}
