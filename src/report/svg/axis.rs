//! What every SVG chart shares: axes with ticks chosen here (levels of the sweep, or nice
//! round numbers), the canvas, the framed chart with its grid, and CI whiskers.
//!
//! Charts draw in "position" space: the value itself on a linear axis, its log10 on a log
//! axis, the level index on a categorical one; tick labels always show the values.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;

use super::super::chart::plain;
use super::super::plot::{Level, log_axis};
use super::clean;

/// Width of the plotting part of a chart, in pixels (the legend column comes on top).
pub(super) const PLOT_WIDTH: u32 = 640;
/// Height of a chart, in pixels (taller when the legend needs it).
pub(super) const HEIGHT: u32 = 420;
/// Half-width of a whisker's cap, in pixels.
const CAP: i32 = 4;
pub(super) const FONT: &str = "sans-serif";

/// A canvas split into the plotting part and the legend column.
pub(super) type Areas<'b> = (
    DrawingArea<SVGBackend<'b>, Shift>,
    DrawingArea<SVGBackend<'b>, Shift>,
);
/// plotters' error on the SVG backend.
pub(super) type DrawError = DrawingAreaErrorKind<std::io::Error>;
/// A framed chart: both axes in position space with ticks chosen here.
pub(super) type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<Ticked, Ticked>>;

/// A linear coordinate whose grid lines and labels are exactly the given ticks (plotters'
/// own float coordinates choose their own, and its key-point wrapper loses the formatter).
pub(super) struct Ticked {
    range: Range<f64>,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let width = self.range.end - self.range.start;
        let fraction = if width > 0.0 {
            (value - self.range.start) / width
        } else {
            0.5
        };
        limit.0 + (fraction * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }

    // Both ends inclusive, so a tick at the top of the range keeps its label.
    fn axis_pixel_range(&self, limit: (i32, i32)) -> Range<i32> {
        limit.0.min(limit.1)..limit.0.max(limit.1) + 1
    }
}

/// One axis: its title, whether it is logarithmic, its range in position space and its
/// ticks (position, label).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Axis {
    pub title: String,
    pub log: bool,
    pub range: Range<f64>,
    pub ticks: Vec<(f64, String)>,
}

impl Axis {
    /// An x axis over the levels of a sweep, and the position of each level: numeric (log
    /// when [`log_axis`] says so) when every level is a number, else categorical.
    pub fn levels(title: &str, levels: &[Level]) -> (Axis, Vec<f64>) {
        let labels: Vec<String> = levels.iter().map(|l| l.label.clone()).collect();
        match levels.iter().map(|l| l.value).collect::<Option<Vec<f64>>>() {
            Some(values) => {
                let axis = Axis::numbers(title, &values, &labels);
                let positions = values.iter().map(|v| axis.pos(*v)).collect();
                (axis, positions)
            }
            None => {
                let n = levels.len() as f64;
                let axis = Axis {
                    title: title.to_string(),
                    log: false,
                    range: -0.5..(n - 0.5).max(0.5),
                    ticks: labels
                        .into_iter()
                        .enumerate()
                        .map(|(i, l)| (i as f64, clean(&l, 24)))
                        .collect(),
                };
                (axis, (0..levels.len()).map(|i| i as f64).collect())
            }
        }
    }

    /// A numeric axis with a tick at each of `values` (labelled `labels`), log when the
    /// values span a factor of 8 or more; ticks too close to the previous one are left out.
    pub fn numbers(title: &str, values: &[f64], labels: &[String]) -> Axis {
        let log = log_axis(values);
        let pos = |v: f64| if log { v.log10() } else { v };
        let mut ticks: Vec<(f64, String)> = values
            .iter()
            .zip(labels)
            .map(|(v, l)| (pos(*v), clean(l, 16)))
            .collect();
        ticks.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (lo, hi) = (
            ticks.first().map_or(0.0, |t| t.0),
            ticks.last().map_or(1.0, |t| t.0),
        );
        let pad = if hi > lo {
            0.06 * (hi - lo)
        } else {
            0.5 * lo.abs().max(1.0)
        };
        let range = (lo - pad)..(hi + pad);
        let gap = 0.06 * (range.end - range.start);
        let mut kept: Vec<(f64, String)> = Vec::new();
        for t in ticks {
            if kept.last().is_none_or(|k| t.0 - k.0 >= gap) {
                kept.push(t);
            }
        }
        Axis {
            title: title.to_string(),
            log,
            range,
            ticks: kept,
        }
    }

    /// A linear axis over data from `low` to `high`, always including 0: round ticks, the
    /// top a tick with at least 5 % headroom, the bottom 0 for data ≥ 0 (else the next fifth
    /// of a step below the data, so a CI dipping just below 0 costs little room).
    pub fn linear(title: &str, low: f64, high: f64) -> Axis {
        let (low, high) = (low.min(0.0), high.max(0.0));
        let high = if high > low { high } else { low + 1.0 };
        let step = nice_step((high - low) / 5.0);
        let top = (1.05 * high / step).ceil() * step;
        let minor = step / 5.0;
        let bottom = (low / minor).floor() * minor;
        Axis::stepped(title, bottom..top, step)
    }

    /// A value axis for measured means (with their CIs from `low` to `high`): logarithmic
    /// when every mean is positive and they span [`LOG_SPAN`] or more — a latency that
    /// grows from 20 ms to 10 s under overload would otherwise flatten every other point —
    /// else [`Axis::linear`] from 0. `means` are the plotted means.
    pub fn measured(title: &str, means: &[f64], low: f64, high: f64) -> Axis {
        let positive = !means.is_empty() && means.iter().all(|m| *m > 0.0 && m.is_finite());
        let smallest = means.iter().copied().fold(f64::INFINITY, f64::min);
        let largest = means.iter().copied().fold(0.0f64, f64::max);
        if !positive || largest / smallest < LOG_SPAN {
            return Axis::linear(title, low, high);
        }
        let largest = largest.max(high);
        // CI ends at or below 0 are drawn from the bottom of the axis.
        let bottom = if low > 0.0 {
            low.min(smallest)
        } else {
            smallest
        };
        let (lo, hi) = (bottom.log10(), largest.log10());
        let pad = 0.05 * (hi - lo);
        let range = (lo - pad)..(hi + pad);
        Axis {
            title: title.to_string(),
            log: true,
            ticks: log_ticks(&range),
            range,
        }
    }

    /// A linear axis over exactly `range` with round ticks inside it.
    pub fn span(title: &str, range: Range<f64>) -> Axis {
        let step = nice_step((range.end - range.start) / 5.0);
        Axis::stepped(title, range, step)
    }

    fn stepped(title: &str, range: Range<f64>, step: f64) -> Axis {
        let first = (range.start / step - 1e-9).ceil() as i64;
        let last = (range.end / step + 1e-9).floor() as i64;
        Axis {
            title: title.to_string(),
            log: false,
            ticks: (first..=last)
                .map(|k| {
                    let v = k as f64 * step;
                    (v, plain(v))
                })
                .collect(),
            range,
        }
    }

    /// The position of value `v` on this (numeric) axis; on a log axis a value at or below
    /// 0 sits at the bottom of the range.
    pub fn pos(&self, v: f64) -> f64 {
        match (self.log, v > 0.0) {
            (false, _) => v,
            (true, true) => v.log10(),
            (true, false) => self.range.start,
        }
    }

    /// The label of the tick at position `p`.
    fn label(&self, p: f64) -> String {
        self.ticks
            .iter()
            .min_by(|a, b| (a.0 - p).abs().total_cmp(&(b.0 - p).abs()))
            .map_or_else(|| plain(p), |t| t.1.clone())
    }

    fn coord(&self) -> Ticked {
        Ticked {
            range: self.range.clone(),
            ticks: self.ticks.iter().map(|t| t.0).collect(),
        }
    }
}

/// Means spanning this factor or more get a log value axis.
pub(super) const LOG_SPAN: f64 = 30.0;

/// Ticks of a log axis over `range` (log10 positions): 1, 2, 5 × 10^k, or only the powers
/// of ten when that would make more than 8 ticks.
fn log_ticks(range: &Range<f64>) -> Vec<(f64, String)> {
    let decades = (range.start.floor() as i32)..=(range.end.ceil() as i32);
    let all = |mantissas: &[f64]| -> Vec<(f64, String)> {
        decades
            .clone()
            .flat_map(|k| mantissas.iter().map(move |m| m * 10f64.powi(k)))
            .map(|v| (v.log10(), v))
            .filter(|(p, _)| range.contains(p))
            .map(|(p, v)| (p, plain(v)))
            .collect()
    };
    let fine = all(&[1.0, 2.0, 5.0]);
    if fine.len() <= 8 { fine } else { all(&[1.0]) }
}

/// The smallest of 1, 2, 2.5, 5 × 10^k that is ≥ `x`.
fn nice_step(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return 1.0;
    }
    let exp = 10f64.powi(x.log10().floor() as i32);
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * exp)
        .find(|v| *v >= x * (1.0 - 1e-12))
        .unwrap_or(10.0 * exp)
}

/// A white canvas of `plot_width` + `legend_width` × `height` pixels, split into the
/// plotting part (left) and the legend column (right).
pub(super) fn canvas(
    buf: &mut String,
    plot_width: u32,
    legend_width: u32,
    height: u32,
) -> Result<Areas<'_>, DrawError> {
    let size = (plot_width + legend_width, height);
    let root = SVGBackend::with_string(buf, size).into_drawing_area();
    root.fill(&WHITE)?;
    Ok(root.split_horizontally(plot_width))
}

/// The framed chart on `area`: title, axis titles, grid lines at the ticks, tick labels.
pub(super) fn frame<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: &str,
    x: &Axis,
    y: &Axis,
) -> Result<Chart<'a, 'b>, DrawError> {
    frame_with(area, title, x, y, 64)
}

/// [`frame`] with `y_labels` pixels for the y tick labels and title.
pub(super) fn frame_with<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: &str,
    x: &Axis,
    y: &Axis,
    y_labels: u32,
) -> Result<Chart<'a, 'b>, DrawError> {
    let mut chart = ChartBuilder::on(area)
        .caption(clean(title, 80), (FONT, 22))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(y_labels)
        .build_cartesian_2d(x.coord(), y.coord())?;
    let x_label = |p: &f64| x.label(*p);
    let y_label = |p: &f64| y.label(*p);
    chart
        .configure_mesh()
        .x_desc(clean(&axis_title(x), 60))
        .y_desc(clean(&axis_title(y), 60))
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .bold_line_style(RGBColor(220, 220, 220))
        .light_line_style(TRANSPARENT)
        .draw()?;
    Ok(chart)
}

fn axis_title(axis: &Axis) -> String {
    if axis.log {
        format!("{} (log scale)", axis.title)
    } else {
        axis.title.clone()
    }
}

/// Vertical 95 % CI whiskers `(x, low, high)` in position space: one polyline each, capped.
pub(super) fn v_whiskers(
    chart: &mut Chart<'_, '_>,
    bars: &[(f64, f64, f64)],
    style: ShapeStyle,
) -> Result<(), DrawError> {
    let elements: Vec<_> = bars
        .iter()
        .map(|&(x, lo, hi)| {
            let d = chart.backend_coord(&(x, lo)).1 - chart.backend_coord(&(x, hi)).1;
            let path = vec![(-CAP, 0), (CAP, 0), (0, 0), (0, d), (-CAP, d), (CAP, d)];
            EmptyElement::at((x, hi)) + PathElement::new(path, style)
        })
        .collect();
    chart.draw_series(elements)?;
    Ok(())
}

/// Horizontal 95 % CI whiskers `(y, low, high)` in position space: one polyline each.
pub(super) fn h_whiskers(
    chart: &mut Chart<'_, '_>,
    bars: &[(f64, f64, f64)],
    style: ShapeStyle,
) -> Result<(), DrawError> {
    let elements: Vec<_> = bars
        .iter()
        .map(|&(y, lo, hi)| {
            let d = chart.backend_coord(&(hi, y)).0 - chart.backend_coord(&(lo, y)).0;
            let path = vec![(0, -CAP), (0, CAP), (0, 0), (-d, 0), (-d, -CAP), (-d, CAP)];
            EmptyElement::at((hi, y)) + PathElement::new(path, style)
        })
        .collect();
    chart.draw_series(elements)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_axes_get_round_ticks_from_zero() {
        let a = Axis::linear("y", 0.0, 41.08);
        assert_eq!(a.range, 0.0..50.0);
        let labels: Vec<&str> = a.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["0", "10", "20", "30", "40", "50"]);
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(2.1), 2.5);
    }

    #[test]
    fn means_spanning_thirty_times_get_a_log_value_axis_with_1_2_5_ticks() {
        // TTFT p99 in ms from 21 to 9,640 under overload: log, ticks 20 … 5000 and 10000.
        let a = Axis::measured("TTFT", &[21.0, 35.0, 180.0, 9640.0], 19.5, 10_100.0);
        assert!(a.log);
        let labels: Vec<&str> = a.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["100", "1000", "10000"]);
        assert!((a.pos(1000.0) - 3.0).abs() < 1e-12);
        assert_eq!(a.pos(0.0), a.range.start);
        assert!(a.range.start < 19.5f64.log10() && a.range.end > 10_100f64.log10());
        // Two decades or less get 1-2-5 ticks.
        let b = Axis::measured("E2E", &[2.0, 70.0], 1.8, 75.0);
        let labels: Vec<&str> = b.ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["2", "5", "10", "20", "50"]);
        // Less than 30× apart, a zero mean, or no means: linear from 0.
        assert!(!Axis::measured("x", &[10.0, 290.0], 9.0, 300.0).log);
        assert!(!Axis::measured("x", &[0.0, 100.0], 0.0, 100.0).log);
        assert!(!Axis::measured("x", &[], 0.0, 1.0).log);
    }

    #[test]
    fn numeric_levels_spanning_eight_times_get_a_log_axis_with_a_tick_per_level() {
        let labels: Vec<String> = ["1", "2", "4", "8", "16"].map(String::from).to_vec();
        let a = Axis::numbers("rate", &[1.0, 2.0, 4.0, 8.0, 16.0], &labels);
        assert!(a.log);
        assert_eq!(a.ticks.len(), 5);
        assert!((a.ticks[4].0 - 16f64.log10()).abs() < 1e-12);
        let lin = Axis::numbers("rate", &[10.0, 20.0, 30.0], &labels[..3]);
        assert!(!lin.log);
        // 1 and 1.01 would print on top of each other: the second tick is dropped.
        let close = Axis::numbers("x", &[1.0, 1.01, 2.0], &labels[..3]);
        assert_eq!(close.ticks.len(), 2);
    }
}
