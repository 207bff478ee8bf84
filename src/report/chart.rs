//! Mermaid `xychart-beta` charts for sweeps, built from the same analysis as the report's
//! tables: one chart per primary metric, the mean over repetitions on the y axis, the load
//! variable (or else the swept variable with the most levels) on the x axis, and one line per
//! combination of the other swept variables.
//!
//! xychart-beta draws lines in the colours of `plotColorPalette`, in order, and has no legend,
//! so the legend is a Markdown line of matching coloured squares; at most [`PALETTE`]`.len()`
//! lines share a chart. A line missing a point (an excluded cell) cannot share the categorical
//! x axis, so it gets a chart of its own over the levels it has.

use serde::Serialize;

use super::model::MetricTable;
use crate::analysis::{CellAnalysis, cell_label};
use crate::metrics::names::{self, Unit};
use crate::scenario::model::{Scenario, Value, Vars};
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
}

/// The x axis: one swept variable, or a linked group moving together.
struct Axis {
    vars: Vec<String>,
    levels: Vec<Vec<Value>>,
}

/// One line: the other swept variables, and the cell index at each x level.
struct Series {
    key: Vars,
    cells: Vec<Option<usize>>,
}

fn x_axis(scenario: &Scenario) -> Option<Axis> {
    let mut axes: Vec<(bool, Axis)> = Vec::new();
    let load = &scenario.analysis.load;
    for (name, values) in &scenario.vars.sweep {
        axes.push((
            load.contains(name),
            Axis {
                vars: vec![name.clone()],
                levels: values.iter().map(|v| vec![v.clone()]).collect(),
            },
        ));
    }
    for group in &scenario.vars.linked {
        let len = group.vars.first().map_or(0, |(_, v)| v.len());
        axes.push((
            group.vars.iter().any(|(n, _)| load.contains(n)),
            Axis {
                vars: group.vars.iter().map(|(n, _)| n.clone()).collect(),
                levels: (0..len)
                    .map(|i| group.vars.iter().map(|(_, v)| v[i].clone()).collect())
                    .collect(),
            },
        ));
    }
    axes.retain(|(_, a)| a.levels.len() >= 2);
    let best_load = axes.iter().position(|(is_load, _)| *is_load);
    let index = best_load.or_else(|| {
        (0..axes.len()).reduce(|best, i| {
            if axes[i].1.levels.len() > axes[best].1.levels.len() {
                i
            } else {
                best
            }
        })
    })?;
    Some(axes.swap_remove(index).1)
}

fn series(axis: &Axis, swept: &[&Vars]) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for (i, vars) in swept.iter().enumerate() {
        let Some(level) = axis.levels.iter().position(|lvl| {
            axis.vars
                .iter()
                .zip(lvl)
                .all(|(name, value)| vars.get(name) == Some(value))
        }) else {
            continue;
        };
        let key: Vars = vars
            .iter()
            .filter(|(k, _)| !axis.vars.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let pos = match out.iter().position(|s| s.key == key) {
            Some(p) => p,
            None => {
                out.push(Series {
                    key,
                    cells: vec![None; axis.levels.len()],
                });
                out.len() - 1
            }
        };
        out[pos].cells[level] = Some(i);
    }
    out
}

/// The charts of a report; empty unless a variable is swept over at least 2 levels.
pub(super) fn charts(
    scenario: &Scenario,
    swept: &[&Vars],
    cells: &[CellAnalysis],
    tables: &[MetricTable],
) -> Vec<ChartView> {
    let Some(axis) = x_axis(scenario) else {
        return Vec::new();
    };
    let all_series = series(&axis, swept);
    let x_title = axis.vars.join(" · ");
    let mut out = Vec::new();
    for metric in &scenario.analysis.primary {
        let Some(table) = tables.iter().find(|t| &t.name == metric) else {
            continue;
        };
        let mean = |i: Option<usize>| Some(cells.get(i?)?.metrics.get(metric)?.mean);
        let lines: Vec<(String, Vec<Option<f64>>)> = all_series
            .iter()
            .map(|s| {
                (
                    cell_label(&s.key),
                    s.cells.iter().map(|&i| mean(i)).collect::<Vec<_>>(),
                )
            })
            .filter(|(_, v)| v.iter().filter(|x| x.is_some()).count() >= 2)
            .collect();
        let named = all_series.iter().any(|s| !s.key.is_empty());
        let (full, partial): (Vec<_>, Vec<_>) = lines
            .into_iter()
            .partition(|(_, v)| v.iter().all(Option::is_some));
        let levels: Vec<usize> = (0..axis.levels.len()).collect();
        for group in full.chunks(PALETTE.len()) {
            out.push(chart(
                metric,
                &table.title,
                &x_title,
                &axis,
                &levels,
                group,
                named,
                "",
            ));
        }
        for line in &partial {
            let have: Vec<usize> = levels
                .iter()
                .copied()
                .filter(|&i| line.1[i].is_some())
                .collect();
            let suffix = format!(" ({})", line.0);
            let one = std::slice::from_ref(line);
            out.push(chart(
                metric,
                &table.title,
                &x_title,
                &axis,
                &have,
                one,
                false,
                &suffix,
            ));
        }
    }
    out
}

/// One chart over the x levels `levels` with `lines` (name, value at every level).
#[allow(clippy::too_many_arguments)]
fn chart(
    metric: &str,
    title: &str,
    x_title: &str,
    axis: &Axis,
    levels: &[usize],
    lines: &[(String, Vec<Option<f64>>)],
    legend: bool,
    suffix: &str,
) -> ChartView {
    let (scale, unit) = scale(metric, lines);
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
        .map(|&i| {
            let text: Vec<String> = axis.levels[i].iter().map(ToString::to_string).collect();
            format!("\"{}\"", quote_free(&text.join(" · ")))
        })
        .collect();
    let (low, high) = values
        .iter()
        .flatten()
        .fold((0.0f64, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let colours = &PALETTE[..lines.len().min(PALETTE.len())];
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
        palette: colours
            .iter()
            .map(|(c, _)| *c)
            .collect::<Vec<_>>()
            .join(", "),
        lines: values
            .iter()
            .map(|v| {
                format!(
                    "[{}]",
                    v.iter().map(|x| plain(*x)).collect::<Vec<_>>().join(", ")
                )
            })
            .collect(),
        legend: if legend {
            let items: Vec<String> = lines
                .iter()
                .zip(colours)
                .map(|((name, _), (_, square))| format!("{square} `{name}`"))
                .collect();
            format!("Lines: {}", items.join(" · "))
        } else {
            String::new()
        },
    }
}

/// The factor from stored SI values to the plotted unit, and the unit's name.
fn scale(metric: &str, lines: &[(String, Vec<Option<f64>>)]) -> (f64, &'static str) {
    let max = lines
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .fold(0.0f64, |m, x| m.max(x.abs()));
    match names::info(metric).map(|i| i.unit) {
        Some(Unit::Seconds) if max >= 1.0 => (1.0, "s"),
        Some(Unit::Seconds) => (1e3, "ms"),
        Some(Unit::TokensPerSecond) => (1.0, "tok/s"),
        Some(Unit::RequestsPerSecond) => (1.0, "req/s"),
        Some(Unit::Fraction) => (100.0, "%"),
        Some(Unit::Watts) => (1.0, "W"),
        Some(Unit::Joules) => (1.0, "J"),
        Some(Unit::JoulesPerToken) => (1.0, "J/tok"),
        Some(Unit::Cores) => (1.0, "cores"),
        Some(Unit::PricePer1kTokens) => (1.0, "/1k tok"),
        Some(Unit::Count) | None => (1.0, ""),
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
fn plain(x: f64) -> String {
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
