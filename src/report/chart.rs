//! Mermaid `xychart-beta` charts for sweeps, drawn from the sweep's [`SweepPlot`] (the same
//! analysis as the report's tables): one chart per primary metric, the mean over repetitions
//! on the y axis, the load variable (or else the swept variable with the most levels) on the x
//! axis, and one line per combination of the other swept variables. The SVGs (`svg/`) add
//! what Mermaid cannot draw: CI error bars, log axes, a real legend.
//!
//! xychart-beta draws lines in the colours of `plotColorPalette`, in order, and has no legend,
//! so the legend is a Markdown line of matching coloured squares; at most [`PALETTE`]`.len()`
//! lines share a chart. A line missing a point (an excluded cell) cannot share the categorical
//! x axis, so it gets a chart of its own over the levels it has.

use serde::Serialize;

use super::plot::{MetricPlot, SweepPlot};
use crate::metrics::{MetricKey, Unit};
use crate::units;

/// Line colours and the square emoji that stands for each in the legend.
pub const PALETTE: [(&str, &str); 8] = [
    ("#1f77b4", "🟦"),
    ("#ff7f0e", "🟧"),
    ("#2ca02c", "🟩"),
    ("#d62728", "🟥"),
    ("#9467bd", "🟪"),
    ("#8c564b", "🟫"),
    ("#222222", "⬛"),
    ("#e6c700", "🟨"),
];

/// The colour of an `[slo]` bound's line (grey: not one of the data lines' colours).
pub const SLO_COLOUR: &str = "#7f7f7f";

/// One chart, every field ready to paste into the Mermaid block.
#[derive(Debug, Clone, Serialize)]
pub struct ChartView {
    /// Metric name.
    pub metric: String,
    /// Chart title (no double quotes).
    pub title: String,
    /// x-axis title.
    pub x_title: String,
    /// x-axis categories, e.g. `["1", "2", "4"]`.
    pub categories: String,
    /// y-axis title with the unit, e.g. `TTFT mean (ms)`.
    pub y_title: String,
    /// y-axis range, e.g. `0 --> 250`.
    pub y_range: String,
    /// `plotColorPalette` value: the colours of the lines, in order.
    pub palette: String,
    /// One data array per line, e.g. `[101.2, 130.5, 250]`.
    pub lines: Vec<String>,
    /// Markdown legend (coloured square per line), empty for a single unnamed line.
    pub legend: String,
    /// Relative path of the SVG of this metric (every series, 95 % CI error bars), e.g.
    /// `charts/ttft_p99.svg`; set on the metric's first chart when the SVGs are written.
    pub svg: Option<String>,
    /// Relative path of the latency–throughput frontier SVG of this metric (load sweeps of a
    /// latency metric), e.g. `charts/frontier_ttft_p99.svg`.
    pub frontier_svg: Option<String>,
}

/// The Mermaid charts of a sweep, drawn from its plot (means only): one per primary metric,
/// split as the module header says.
pub(super) fn charts(plot: &SweepPlot) -> Vec<ChartView> {
    let mut out = Vec::new();
    let levels: Vec<usize> = (0..plot.levels.len()).collect();
    for m in plot.metrics.iter().filter(|m| m.primary) {
        let lines: Vec<(String, Vec<Option<f64>>)> = m
            .series
            .iter()
            .map(|s| {
                let means = s.points.iter().map(|p| p.map(|p| p.mean)).collect();
                (s.name.clone(), means)
            })
            .filter(|(_, v): &(String, Vec<Option<f64>>)| {
                v.iter().filter(|x| x.is_some()).count() >= 2
            })
            .collect();
        let (full, partial): (Vec<_>, Vec<_>) = lines
            .into_iter()
            .partition(|(_, v)| v.iter().all(Option::is_some));
        for group in full.chunks(PALETTE.len()) {
            out.push(chart(m, plot, &levels, group, plot.named, ""));
        }
        for line in &partial {
            let have: Vec<usize> = levels
                .iter()
                .copied()
                .filter(|&i| line.1[i].is_some())
                .collect();
            let suffix = format!(" ({})", line.0);
            out.push(chart(
                m,
                plot,
                &have,
                std::slice::from_ref(line),
                false,
                &suffix,
            ));
        }
    }
    out
}

/// One chart of `m` over the x levels `levels` with `lines` (name, mean at every level).
fn chart(
    m: &MetricPlot,
    plot: &SweepPlot,
    levels: &[usize],
    lines: &[(String, Vec<Option<f64>>)],
    legend: bool,
    suffix: &str,
) -> ChartView {
    let (metric, title, x_title) = (m.metric, m.title.as_str(), &plot.x_title);
    let max = lines
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .chain(m.slo.as_ref())
        .fold(0.0f64, |m, x| m.max(x.abs()));
    let (scale, unit) = unit_scale(metric, max);
    let values: Vec<Vec<f64>> = lines
        .iter()
        .map(|(_, v)| {
            levels
                .iter()
                .filter_map(|&i| v[i])
                .map(|x| x * scale)
                .collect()
        })
        .collect();
    let categories: Vec<String> = levels
        .iter()
        .map(|&i| format!("\"{}\"", quote_free(&plot.levels[i].label)))
        .collect();
    let mut values = values;
    let slo = m.slo.map(|t| t * scale);
    // The bound as one more (flat, grey) line: Mermaid's xychart draws no reference lines.
    if let Some(t) = slo {
        values.push(vec![t; levels.len()]);
    }
    let (low, high) = values
        .iter()
        .flatten()
        .fold((0.0f64, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let colours = &PALETTE[..lines.len().min(PALETTE.len())];
    let mut palette: Vec<&str> = colours.iter().map(|(c, _)| *c).collect();
    if slo.is_some() {
        palette.push(SLO_COLOUR);
    }
    ChartView {
        metric: metric.to_string(),
        title: quote_free(&format!("{title} by {x_title}{suffix}")),
        x_title: quote_free(x_title),
        categories: format!("[{}]", categories.join(", ")),
        y_title: quote_free(&if unit.is_empty() {
            title.to_string()
        } else {
            format!("{title} ({unit})")
        }),
        y_range: format!("{} --> {}", plain(-nice_up(-low)), plain(nice_up(high))),
        palette: palette.join(", "),
        lines: values
            .iter()
            .map(|v| {
                format!(
                    "[{}]",
                    v.iter().map(|x| plain(*x)).collect::<Vec<_>>().join(", ")
                )
            })
            .collect(),
        svg: None,
        frontier_svg: None,
        legend: {
            let mut items: Vec<String> = match legend {
                true => (lines.iter().zip(colours))
                    .map(|((name, _), (_, square))| format!("{square} `{name}`"))
                    .collect(),
                false => Vec::new(),
            };
            if let (Some(t), Some(bound)) = (m.slo, slo_name(metric)) {
                items.push(format!(
                    "grey: the `[slo]` bound {bound} ≤ {}",
                    units::seconds(t)
                ));
            }
            match items.is_empty() {
                true => String::new(),
                false => format!("Lines: {}", items.join(" · ")),
            }
        },
    }
}

/// The per-request quantity an `[slo]` bound applies to (`ttft`), for a chart's legend.
fn slo_name(metric: MetricKey) -> Option<&'static str> {
    Some(metric.metric().name())
}

/// The factor from stored SI values to the plotted unit, and the unit's name, for values up
/// to `max` in absolute value (seconds become ms below 1 s).
pub(super) fn unit_scale(metric: MetricKey, max: f64) -> (f64, &'static str) {
    match metric.unit() {
        Unit::Seconds if max >= 1.0 => (1.0, "s"),
        Unit::Seconds => (1e3, "ms"),
        Unit::TokensPerSecond => (1.0, "tok/s"),
        Unit::RequestsPerSecond => (1.0, "req/s"),
        Unit::SamplesPerSecond => (1.0, "samples/s"),
        Unit::Fraction => (100.0, "%"),
        Unit::Watts => (1.0, "W"),
        Unit::Joules => (1.0, "J"),
        Unit::JoulesPerToken => (1.0, "J/tok"),
        Unit::Cores => (1.0, "cores"),
        Unit::PricePer1kTokens => (1.0, "/1k tok"),
        Unit::Count => (1.0, ""),
    }
}

/// The smallest "nice" number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k) ≥ 1.1 × `x`; 0 for
/// `x ≤ 0`, so a y axis of non-negative values starts at 0.
fn nice_up(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return 0.0;
    }
    let target = 1.1 * x;
    let exp = 10f64.powi(target.log10().floor() as i32);
    [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .iter()
        .map(|m| m * exp)
        .find(|v| *v >= target * (1.0 - 1e-12))
        .unwrap_or(10.0 * exp)
}

/// A number with 4 significant digits, no exponent, no trailing zeros (`250`, `0.0123`).
pub(super) fn plain(x: f64) -> String {
    let text = units::sig(x, 4);
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    if text == "-0" { "0".into() } else { text }
}

/// Mermaid strings are double-quoted: any double quote inside becomes a single one.
fn quote_free(s: &str) -> String {
    s.replace('"', "'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_numbers_leave_headroom() {
        assert_eq!(nice_up(100.0), 120.0);
        assert_eq!(nice_up(0.0123), 0.015);
        assert_eq!(nice_up(2413.0), 3000.0);
        assert_eq!(nice_up(0.0), 0.0);
        assert_eq!(plain(120.00000000000001), "120");
        assert_eq!(plain(0.015), "0.015");
        assert_eq!(plain(-0.0), "0");
    }
}

#[cfg(test)]
mod slo_tests {
    use super::super::plot::{Level, MetricPlot, Point, SeriesPoints, SweepPlot};
    use super::*;
    use crate::metrics::registry::k;

    #[test]
    fn an_slo_bound_is_a_grey_line_across_the_chart() {
        let point = |ms: f64| {
            Some(Point {
                mean: ms / 1e3,
                ci: None,
                n: 3,
            })
        };
        let plot = SweepPlot {
            x_title: "request_rate".into(),
            levels: ["5", "10", "20"]
                .map(|l| Level {
                    label: l.into(),
                    value: l.parse().ok(),
                })
                .into(),
            load: true,
            named: false,
            metrics: vec![MetricPlot {
                metric: k("ttft.p99"),
                title: "TTFT p99".into(),
                primary: true,
                series: vec![SeriesPoints {
                    name: "default".into(),
                    points: vec![point(40.0), point(80.0), point(700.0)],
                }],
                slo: Some(0.5),
            }],
        };
        let c = &charts(&plot)[0];
        assert_eq!(c.lines, ["[40, 80, 700]", "[500, 500, 500]"]);
        assert_eq!(c.palette, format!("{}, {SLO_COLOUR}", PALETTE[0].0));
        assert_eq!(c.y_range, "0 --> 800");
        assert_eq!(c.legend, "Lines: grey: the `[slo]` bound ttft ≤ 500 ms");
    }
}
