//! Human-readable summaries: value ranges and a corner-preserving preview of one head.

use std::fmt::Display;

use alibi_wgpu::HostBias;

/// Rows of a head shown at most; larger heads show their first and last rows.
const PREVIEW_ROWS: usize = 4;
/// Columns shown at most; wider rows show their first and last columns.
const PREVIEW_COLS: usize = 6;
/// Values shown at most in a one-line list (slopes).
const LIST_VALUES: usize = 8;

/// Smallest and largest value of the tensor, `None` when it is empty.
pub fn min_max(bias: &HostBias) -> Option<(f32, f32)> {
    let mut values = bias.as_slice().iter().copied();
    let first = values.next()?;
    Some(values.fold((first, first), |(min, max), v| (min.min(v), max.max(v))))
}

/// Head `h` of `bias` as right-aligned text lines, `…` standing for the rows and columns
/// left out. The first and last rows and columns are kept because they are the telling
/// ones: queries are aligned to the end of the keys, so the last row is the newest query
/// (a decode step) and its last column the zero on the diagonal.
pub fn head_preview(bias: &HostBias, h: usize) -> Vec<String> {
    let [_, rows, cols] = bias.shape();
    if rows == 0 || cols == 0 {
        return vec!["(empty)".to_owned()];
    }
    let cell = |r: Option<usize>, k: Option<usize>| match (r, k) {
        (Some(r), Some(k)) => bias
            .get(h, r, k)
            .map_or_else(String::new, |v| v.to_string()),
        _ => "…".to_owned(),
    };
    let row_picks = pick(rows, PREVIEW_ROWS);
    let col_picks = pick(cols, PREVIEW_COLS);
    let grid: Vec<Vec<String>> = row_picks
        .iter()
        .map(|&r| col_picks.iter().map(|&k| cell(r, k)).collect())
        .collect();
    // One width for every column keeps the grid aligned; `…` counts as one character.
    let width = grid
        .iter()
        .flatten()
        .map(|text| text.chars().count())
        .max()
        .unwrap_or(1);
    grid.iter()
        .map(|row| {
            row.iter()
                .map(|text| format!("{text:>width$}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// `[a, b, …, z]` with at most [`LIST_VALUES`] values shown.
pub fn short_list<T: Display>(values: &[T]) -> String {
    let shown: Vec<String> = pick(values.len(), LIST_VALUES)
        .into_iter()
        .map(|index| index.map_or_else(|| "…".to_owned(), |n| values[n].to_string()))
        .collect();
    format!("[{}]", shown.join(", "))
}

/// The indices to show out of `len`: all of them when at most `max`, else the first
/// `ceil(max / 2)` and the last `floor(max / 2)` with a `None` (an ellipsis) between.
fn pick(len: usize, max: usize) -> Vec<Option<usize>> {
    if len <= max {
        return (0..len).map(Some).collect();
    }
    let head = max.div_ceil(2);
    let tail = max / 2;
    (0..head)
        .map(Some)
        .chain(std::iter::once(None))
        .chain((len - tail..len).map(Some))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_keeps_both_ends() {
        assert_eq!(pick(3, 6), vec![Some(0), Some(1), Some(2)]);
        assert_eq!(pick(10, 4), vec![Some(0), Some(1), None, Some(8), Some(9)]);
    }

    #[test]
    fn preview_of_the_spec_example() {
        let slopes = alibi_wgpu::alibi_slopes(4).unwrap();
        let bias = alibi_wgpu::reference::forward(&slopes, 8, 3, 5).unwrap();
        assert_eq!(
            head_preview(&bias, 0),
            vec![
                " -0.5 -0.25     0 -0.25  -0.5",
                "-0.75  -0.5 -0.25     0 -0.25",
                "   -1 -0.75  -0.5 -0.25     0",
            ]
        );
        assert_eq!(min_max(&bias), Some((-1.0, 0.0)));
        assert_eq!(short_list(&[1, 2, 3]), "[1, 2, 3]");
        assert_eq!(
            short_list(&(0..20).collect::<Vec<_>>()),
            "[0, 1, 2, 3, …, 16, 17, 18, 19]"
        );
    }
}
