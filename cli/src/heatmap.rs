//! Drawing a bias tensor: one heatmap per head in a grid, a shared colour scale, each
//! head's slope as its caption, encoded as PNG.
//!
//! plotters draws into an RGB buffer (its bitmap backend) with a font compiled in (DejaVu
//! Sans through ab_glyph, so no system font or fontconfig is needed), and `image` encodes
//! it. One colour scale serves every head, so heads compare at a glance: the steep first
//! heads fade fast from the diagonal, the last ones barely. The -inf of a causal bias's
//! future keys has no place on a scale: those cells get a colour outside viridis, which the
//! legend names "masked".

use alibi_wgpu::HostBias;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;

/// The largest heatmap drawn per head, in pixels: a larger `i` or `j` is sampled.
const HEAD_PIXELS: u32 = 200;
/// The smallest side of a heatmap, so that a `1xJ` decode step is still a visible strip.
const MIN_SIDE: u32 = 24;
/// Room around each heatmap for its caption and axes.
const CAPTION: u32 = 24;
const X_AXIS: u32 = 26;
const Y_AXIS: u32 = 44;
const MARGIN: u32 = 8;
/// The colour bar's column and the title's row.
const SCALE_WIDTH: u32 = 140;
const TITLE: u32 = 40;

/// The font family every text uses; registered once, by [`draw`].
const FONT: &str = "sans-serif";

/// Masked (-inf) cells: light coral, a hue that neither viridis (purple to yellow) nor the
/// grey anti-aliased text ever gives.
pub const MASKED: RGBColor = RGBColor(240, 128, 128);
/// The height of the legend row that names [`MASKED`], under the colour bar.
const MASKED_LEGEND: u32 = 30;

/// `bias` drawn as RGB pixels (`width * height * 3` bytes), with `slopes` for the
/// captions (heads past them are padding) and `title` on top.
pub fn draw(bias: &HostBias, slopes: &[f32], title: &str) -> Result<(Vec<u8>, u32, u32), String> {
    plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
        .map_err(|_| "the built-in DejaVu Sans font does not parse".to_owned())?;
    let [heads, i, j] = bias.shape();
    let (head_w, head_h) = head_size(i, j);
    // A near-square grid: 8 heads in 3 columns, 12 in 4, 64 in 8.
    let columns = (1..=heads.max(1)).find(|c| c * c >= heads).unwrap_or(1);
    let rows = heads.div_ceil(columns);
    let panel = (
        head_w + Y_AXIS + 2 * MARGIN,
        head_h + CAPTION + X_AXIS + 2 * MARGIN,
    );
    let width = panel.0 * columns as u32 + SCALE_WIDTH;
    let height = panel.1 * rows as u32 + TITLE;
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root.titled(title, (FONT, 20)).map_err(|e| e.to_string())?;
        let (grid, scale) = root.split_horizontally(width - SCALE_WIDTH);
        let (low, high) = value_range(bias);
        for (h, area) in grid
            .split_evenly((rows, columns))
            .iter()
            .enumerate()
            .take(heads)
        {
            let caption = match slopes.get(h) {
                Some(slope) => format!("head {h}: slope {slope}"),
                None => format!("head {h}: padding, all 0"),
            };
            draw_head(area, bias, h, &caption, (low, high)).map_err(|e| e.to_string())?;
        }
        let masked = bias.as_slice().contains(&f32::NEG_INFINITY);
        draw_scale(&scale, (low, high), panel.1.min(height - TITLE), masked)
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok((pixels, width, height))
}

/// The heatmap's pixels for `i` rows by `j` columns: the shape's aspect, within
/// [`HEAD_PIXELS`], no side under [`MIN_SIDE`].
fn head_size(i: usize, j: usize) -> (u32, u32) {
    let side = |part: usize, whole: usize| {
        ((HEAD_PIXELS as f64 * part as f64 / whole as f64).round() as u32).max(MIN_SIDE)
    };
    if j >= i {
        (HEAD_PIXELS, side(i, j))
    } else {
        (side(j, i), HEAD_PIXELS)
    }
}

/// The smallest and largest finite value (masked cells are drawn apart), widened to a
/// non-empty range (an all-zero or all-masked tensor still gets a scale).
fn value_range(bias: &HostBias) -> (f32, f32) {
    let values = bias.as_slice().iter().copied().filter(|v| v.is_finite());
    let low = values.clone().fold(f32::INFINITY, f32::min);
    let high = values.fold(f32::NEG_INFINITY, f32::max);
    if low < high {
        (low, high)
    } else if high.is_finite() {
        (high - 1.0, high)
    } else {
        (-1.0, 0.0)
    }
}

/// One head: rows top to bottom, keys left to right, one rectangle per shown cell. A
/// head larger than its heatmap shows every n-th row and column (the first of each block).
fn draw_head<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    bias: &HostBias,
    h: usize,
    caption: &str,
    (low, high): (f32, f32),
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let [_, i, j] = bias.shape();
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 14))
        .margin(MARGIN)
        .x_label_area_size(X_AXIS)
        .y_label_area_size(Y_AXIS)
        .build_cartesian_2d(0.0..j as f64, i as f64..0.0)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(4)
        .y_labels(4)
        .x_label_formatter(&|k| format!("{k:.0}"))
        .y_label_formatter(&|r| format!("{r:.0}"))
        .label_style((FONT, 11))
        .draw()?;
    let (width, height) = chart.plotting_area().dim_in_pixel();
    let (shown_cols, shown_rows) = (j.min(width as usize), i.min(height as usize));
    let cells = (0..shown_rows).flat_map(|a| (0..shown_cols).map(move |b| (a, b)));
    chart.draw_series(cells.map(|(a, b)| {
        let (r0, r1) = (a * i / shown_rows, (a + 1) * i / shown_rows);
        let (k0, k1) = (b * j / shown_cols, (b + 1) * j / shown_cols);
        let value = bias.get(h, r0, k0).unwrap_or(0.0);
        let colour = if value == f32::NEG_INFINITY {
            MASKED
        } else {
            ViridisRGB.get_color_normalized(value, low, high)
        };
        Rectangle::new(
            [(k0 as f64, r0 as f64), (k1 as f64, r1 as f64)],
            colour.filled(),
        )
    }))?;
    Ok(())
}

/// The colour bar: the scale from `low` to `high`, with labelled ticks, and under it, when
/// some cells are `masked`, the legend of their colour.
fn draw_scale<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    (low, high): (f32, f32),
    height: u32,
    masked: bool,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (area, _) = area.split_vertically(height);
    let area = if masked {
        let (bar, legend) = area.split_vertically(height.saturating_sub(MASKED_LEGEND));
        let swatch = (MARGIN as i32, MARGIN as i32);
        let side = 14;
        legend.draw(&Rectangle::new(
            [swatch, (swatch.0 + side, swatch.1 + side)],
            MASKED.filled(),
        ))?;
        legend.draw(&Text::new(
            "masked (-inf)",
            (swatch.0 + side + 6, swatch.1),
            (FONT, 12),
        ))?;
        bar
    } else {
        area
    };
    let mut chart = ChartBuilder::on(&area)
        .caption("bias", (FONT, 14))
        .margin(MARGIN)
        .margin_right(MARGIN * 5)
        .y_label_area_size(Y_AXIS + 16)
        .build_cartesian_2d(0.0..1.0, f64::from(low)..f64::from(high))?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(6)
        .label_style((FONT, 11))
        .draw()?;
    const STEPS: usize = 128;
    let step = (f64::from(high) - f64::from(low)) / STEPS as f64;
    chart.draw_series((0..STEPS).map(|n| {
        let from = f64::from(low) + n as f64 * step;
        let colour = ViridisRGB.get_color_normalized(from as f32, low, high);
        Rectangle::new([(0.0, from), (1.0, from + step)], colour.filled())
    }))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heatmap_sizes_keep_the_aspect_within_bounds() {
        assert_eq!(head_size(16, 16), (HEAD_PIXELS, HEAD_PIXELS));
        assert_eq!(head_size(1, 4096), (HEAD_PIXELS, MIN_SIDE));
        assert_eq!(head_size(100, 50), (100, HEAD_PIXELS));
    }

    #[test]
    fn value_range_is_never_empty() {
        let slopes = alibi_wgpu::alibi_slopes(2).unwrap();
        let bias = alibi_wgpu::reference::forward(&slopes, 2, 3, 5).unwrap();
        assert_eq!(value_range(&bias), (-0.25, 0.0));
        let zero = alibi_wgpu::reference::forward(&slopes, 2, 1, 1).unwrap();
        assert_eq!(value_range(&zero), (-1.0, 0.0));
    }

    #[test]
    fn draws_every_head() {
        let slopes = alibi_wgpu::alibi_slopes(3).unwrap();
        let bias = alibi_wgpu::reference::forward(&slopes, 4, 6, 9).unwrap();
        let (pixels, width, height) = draw(&bias, &slopes, "test").unwrap();
        assert_eq!(pixels.len(), (width * height * 3) as usize);
        // Four heads in two rows of two.
        assert_eq!(
            height,
            TITLE + 2 * (head_size(6, 9).1 + CAPTION + X_AXIS + 2 * MARGIN)
        );
        // The padding head's heatmap is one colour, the top of the scale (bias 0).
        let top = ViridisRGB.get_color(1.0);
        assert!(pixels.chunks(3).any(|p| p == [top.0, top.1, top.2]));
        let coral = [MASKED.0, MASKED.1, MASKED.2];
        assert!(!pixels.chunks(3).any(|p| p == coral), "nothing is masked");
    }

    #[test]
    fn masked_cells_have_their_colour_off_the_scale() {
        let slopes = alibi_wgpu::alibi_slopes(2).unwrap();
        let bias = alibi_wgpu::reference::forward_causal(&slopes, 2, 3, 5).unwrap();
        // The finite values alone: the plain bias's range (head 0's slope 2^-4 times the
        // distance 4 of the last query to key 0), not -inf.
        assert_eq!(value_range(&bias), (-0.25, 0.0));
        let (pixels, _, _) = draw(&bias, &slopes, "causal").unwrap();
        let coral = [MASKED.0, MASKED.1, MASKED.2];
        assert!(pixels.chunks(3).any(|p| p == coral));
        // No finite value at all: still a scale.
        let all_masked = bias.map(|_| f32::NEG_INFINITY);
        assert_eq!(value_range(&all_masked), (-1.0, 0.0));
    }
}
