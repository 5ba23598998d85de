//! The row loop of every host path (the CPU path and the host-mapped writer): i32
//! arithmetic the compiler vectorises, written once so both write the same bytes.

/// Fills `out` with elements `start..` of a `[heads, rows, cols]` tensor (row-major) whose
/// first `slopes.len()` heads have these slopes and whose other heads are +0.0 padding;
/// when `causal`, every head's future keys are `-inf`. `start` need not be a row start, so
/// the host-mapped writer can cut the tensor anywhere.
pub(crate) fn fill_elements(
    out: &mut [f32],
    start: usize,
    rows: usize,
    cols: usize,
    slopes: &[f32],
    causal: bool,
) {
    let mut done = 0;
    while done < out.len() {
        let element = start + done;
        let (global_row, first_key) = (element / cols, element % cols);
        let len = (cols - first_key).min(out.len() - done);
        let slope = slopes.get(global_row / rows).copied();
        // Queries are aligned to the end of the keys. Positions fit in i32 (rows and cols
        // are at most 2^24), which lets the loop below vectorise (i32 -> f32 is one
        // instruction).
        let query = cols as i32 - rows as i32 + (global_row % rows) as i32;
        let segment = &mut out[done..done + len];
        // A causal row's future keys (`k > query`) are the segment's tail: only the keys
        // before it are computed.
        let first_future = if causal {
            (i64::from(query) + 1 - first_key as i64).clamp(0, len as i64) as usize
        } else {
            len
        };
        let (past, future) = segment.split_at_mut(first_future);
        fill_row_segment(past, slope, query, first_key);
        future.fill(f32::NEG_INFINITY);
        done += len;
    }
}

/// Keys `first_key..` of one query row: `(-|k - query|) as f32 * slope`, or +0.0 for a
/// padding head (`slope` `None`). Negating the integer before the multiplication gives
/// +0.0, not -0.0, on the diagonal, as PyTorch does.
fn fill_row_segment(out: &mut [f32], slope: Option<f32>, query: i32, first_key: usize) {
    let Some(slope) = slope else {
        out.fill(0.0);
        return;
    };
    // Distances relative to the segment's first key: `enumerate` keeps the loop in the
    // shape the compiler vectorises.
    let offset = first_key as i32 - query;
    for (k, value) in out.iter_mut().enumerate() {
        *value = (-(k as i32 + offset).abs()) as f32 * slope;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;

    fn same_bits(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    #[test]
    fn elements_from_any_start_equal_whole_rows() {
        let slopes = crate::alibi_slopes(3).unwrap();
        let (i, j) = (5, 7);
        let whole = reference::forward(&slopes, 4, i, j).unwrap();
        let causal = reference::forward_causal(&slopes, 4, i, j).unwrap();
        for (start, len) in [(0, 140), (3, 1), (6, 9), (33, 70), (104, 36), (139, 1)] {
            let mut part = vec![f32::NAN; len];
            fill_elements(&mut part, start, i, j, &slopes, false);
            let expected = &whole.as_slice()[start..start + len];
            assert!(
                same_bits(&part, expected),
                "elements {start}..{}",
                start + len
            );
            fill_elements(&mut part, start, i, j, &slopes, true);
            let expected = &causal.as_slice()[start..start + len];
            assert!(
                same_bits(&part, expected),
                "causal {start}..{}",
                start + len
            );
        }
    }
}
