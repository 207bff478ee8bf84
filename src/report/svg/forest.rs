//! The forest plot of a comparison (`exp compare --out X.md` writes it as `X.forest.svg`):
//! one row per (cell, metric), the relative change Δ = candidate / baseline − 1 with its
//! 95 % CI (paired by round, or Fieller's), the ±τ noise band shaded behind it, coloured by verdict.

use plotters::prelude::*;

use super::axis::{self, Axis, DrawError};
use super::legend::{self, Swatch};
use super::{ReportError, chart_error, colour};
use crate::stats::Verdict;

/// One row of the forest: what the comparison says about one metric of one cell.
#[derive(Debug, Clone, PartialEq)]
pub struct ForestRow {
    /// `cell · metric`.
    pub label: String,
    /// Δ as a fraction (0.083 = +8.3 %).
    pub change: f64,
    /// The CI of Δ; `None` when unbounded (a baseline too noisy for Fieller's interval).
    pub ci: Option<(f64, f64)>,
    /// The noise threshold τ as a fraction.
    pub tau: f64,
    /// The verdict.
    pub verdict: Verdict,
}

/// Verdict colours: regressions red, improvements green, the rest blue.
fn verdict_colour(v: Verdict) -> RGBColor {
    match v {
        Verdict::Regression | Verdict::PossibleRegression => colour(3),
        Verdict::Improvement | Verdict::PossibleImprovement => colour(2),
        _ => colour(0),
    }
}

/// The forest plot of `rows`, titled `title`; `None` when there is no row to draw.
pub fn forest(title: &str, rows: &[ForestRow]) -> Result<Option<String>, ReportError> {
    if rows.is_empty() {
        return Ok(None);
    }
    draw(title, rows)
        .map(Some)
        .map_err(|e| chart_error("forest", e))
}

fn draw(title: &str, rows: &[ForestRow]) -> Result<String, DrawError> {
    let n = rows.len();
    let ends = rows.iter().flat_map(|r| {
        let (lo, hi) = r.ci.unwrap_or((r.change, r.change));
        [lo, hi, r.change, -r.tau, r.tau].map(|x| 100.0 * x)
    });
    let (lo, hi) = ends.fold((0.0f64, 0.0f64), |(l, h), x| (l.min(x), h.max(x)));
    let x = Axis::linear("Δ = candidate / baseline − 1 (%)", lo, hi);
    // Row i at position n − 1 − i, so the first row is at the top.
    let y = Axis {
        title: String::new(),
        log: false,
        range: -0.6..(n as f64 - 0.4),
        ticks: rows
            .iter()
            .enumerate()
            .map(|(i, r)| ((n - 1 - i) as f64, super::clean(&r.label, 40)))
            .collect(),
    };
    let label_width = rows
        .iter()
        .map(|r| r.label.chars().count().min(40) as u32 * 7 + 20)
        .max()
        .unwrap_or(64)
        .clamp(64, 300);
    let entries = vec![
        (
            Swatch::Solid(colour(3)),
            "regression (possible)".to_string(),
        ),
        (
            Swatch::Solid(colour(2)),
            "improvement (possible)".to_string(),
        ),
        (
            Swatch::Solid(colour(0)),
            "no change, noise, other".to_string(),
        ),
        (
            Swatch::Band(RGBColor(120, 120, 120)),
            "±τ noise threshold".to_string(),
        ),
    ];
    let notes = vec!["bars: 95 % CI of Δ (paired by round, or Fieller's)".to_string()];
    let (legend_width, height) = legend::size(&entries, &notes);
    let height = height.max(100 + 26 * n as u32);
    let mut buf = String::new();
    {
        let plot_width = axis::PLOT_WIDTH + label_width;
        let (left, right) = axis::canvas(&mut buf, plot_width, legend_width, height)?;
        let mut chart = axis::frame_with(&left, title, &x, &y, label_width)?;
        draw_rows(&mut chart, rows, &y)?;
        legend::draw(&right, &entries, &notes)?;
        right.present()?;
    }
    Ok(buf)
}

/// The τ bands, the zero line, the whiskers and the points.
fn draw_rows(
    chart: &mut axis::Chart<'_, '_>,
    rows: &[ForestRow],
    y: &Axis,
) -> Result<(), DrawError> {
    let n = rows.len();
    let grey = RGBColor(120, 120, 120);
    chart.draw_series(rows.iter().enumerate().map(|(i, r)| {
        let y = (n - 1 - i) as f64;
        let t = 100.0 * r.tau;
        Rectangle::new([(-t, y - 0.35), (t, y + 0.35)], grey.mix(0.15).filled())
    }))?;
    let (y0, y1) = (y.range.start, y.range.end);
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(0.0, y0), (0.0, y1)],
        BLACK.stroke_width(1),
    )))?;
    for (i, r) in rows.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        let c = verdict_colour(r.verdict);
        if let Some((lo, hi)) = r.ci {
            axis::h_whiskers(chart, &[(y, 100.0 * lo, 100.0 * hi)], c.stroke_width(2))?;
        }
        chart.draw_series(std::iter::once(Circle::new(
            (100.0 * r.change, y),
            4,
            c.filled(),
        )))?;
    }
    Ok(())
}
