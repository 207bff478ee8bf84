//! SVG charts written next to the report (`charts/*.svg`), for what Mermaid's xychart-beta
//! cannot draw: 95 % CI error bars and bands, log axes, several series with a legend.
//! Drawn with plotters' SVG backend from the same numbers as the Mermaid charts (the
//! report's [`SweepPlot`] and each search's `Outcome`):
//!
//! - one chart per primary metric that has a Mermaid chart: every series, mean line with 95 %
//!   CI whiskers (`<metric>.svg`, e.g. `ttft_p99.svg`);
//! - for a load sweep, one latency–throughput frontier per latency primary metric (one SVG
//!   each, so each keeps its own unit): output throughput against the latency, both with CI
//!   whiskers, points labelled with their load (`frontier_<metric>.svg`);
//! - per searched cell, SLO attainment against load with the CI band, the target and the
//!   capacity (`attainment.svg`, or `attainment_<cell>.svg` beside other swept variables);
//! - for `exp compare`, the forest plot of every Δ with its CI and ±τ band ([`forest`]; the
//!   app writes it next to the comparison's Markdown).
//!
//! plotters escapes `&`, `<`, `>`, `"` and `'` in text and attributes; control characters,
//! which XML 1.0 forbids even escaped, are dropped here ([`clean`]).

mod axis;
mod forest;
mod legend;
mod search;
mod sweep;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use plotters::prelude::*;

pub use forest::{ForestRow, forest};

use super::chart::PALETTE;
use super::plot::SweepPlot;
use super::{ReportError, ReportModel};
use crate::metrics::{Metric, Unit};

/// The folder next to the report that holds its SVGs.
pub const CHART_DIR: &str = "charts";

/// One SVG of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct SvgFile {
    /// File name inside [`CHART_DIR`] (`ttft_p99.svg`): lowercase ASCII, digits, `_`, `-`.
    pub name: String,
    /// The SVG document.
    pub text: String,
}

/// Renders every SVG of the report and records each one's relative path
/// (`charts/<name>`) in the chart that links it (`svg`, `frontier_svg`).
pub fn render(model: &mut ReportModel) -> Result<Vec<SvgFile>, ReportError> {
    let mut names = Names::default();
    let mut out = Vec::new();
    if let Some(plot) = &model.plot {
        sweep_files(plot, &mut model.charts, &mut names, &mut out)?;
    }
    for s in &mut model.search {
        if s.outcome.probes.is_empty() {
            continue;
        }
        let stem = if s.cell == "default" {
            "attainment".to_string()
        } else {
            format!("attainment_{}", s.cell)
        };
        let name = names.take(&stem);
        out.push(SvgFile {
            text: search::attainment(&s.outcome).map_err(|e| chart_error(&name, e))?,
            name: name.clone(),
        });
        s.chart.svg = Some(format!("{CHART_DIR}/{name}"));
    }
    Ok(out)
}

/// The metric and frontier SVGs of a sweep, each linked from the metric's first chart.
fn sweep_files(
    plot: &SweepPlot,
    charts: &mut [super::ChartView],
    names: &mut Names,
    out: &mut Vec<SvgFile>,
) -> Result<(), ReportError> {
    for m in plot.metrics.iter().filter(|m| m.primary) {
        let Some(chart) = charts.iter_mut().find(|c| c.metric == m.metric.to_string()) else {
            continue;
        };
        let name = names.take(&m.metric.to_string());
        out.push(SvgFile {
            text: sweep::metric(plot, m).map_err(|e| chart_error(&name, e))?,
            name: name.clone(),
        });
        chart.svg = Some(format!("{CHART_DIR}/{name}"));
        let latency = m.metric.unit() == Unit::Seconds;
        let throughput = plot.metric(Metric::OutputThroughput.key());
        if let (true, true, Some(tp)) = (plot.load, latency, throughput) {
            let name = names.take(&format!("frontier_{}", m.metric));
            out.push(SvgFile {
                text: sweep::frontier(plot, tp, m).map_err(|e| chart_error(&name, e))?,
                name: name.clone(),
            });
            chart.frontier_svg = Some(format!("{CHART_DIR}/{name}"));
        }
    }
    Ok(())
}

fn chart_error(name: &str, err: impl std::fmt::Display) -> ReportError {
    ReportError::Chart {
        name: name.to_string(),
        message: err.to_string(),
    }
}

/// File names handed out so far, so two charts never share one.
#[derive(Default)]
struct Names(BTreeSet<String>);

impl Names {
    /// `<slug>.svg`, or `<slug>_2.svg`, … when taken.
    fn take(&mut self, stem: &str) -> String {
        let base = slug(stem);
        let mut name = format!("{base}.svg");
        let mut i = 2;
        while self.0.contains(&name) {
            name = format!("{base}_{i}.svg");
            i += 1;
        }
        self.0.insert(name.clone());
        name
    }
}

/// A file-name stem that is safe everywhere: lowercase ASCII letters, digits and `-`, every
/// other run of characters one `_`, at most 60 characters, never empty
/// (`ttft.p99` → `ttft_p99`, `engine=a&b · tp=2` → `engine_a_b_tp_2`).
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '-' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out: String = out.trim_matches('_').chars().take(60).collect();
    let out = out.trim_end_matches('_');
    if out.is_empty() {
        "chart".into()
    } else {
        out.to_string()
    }
}

/// Text for an SVG: control characters (not allowed in XML 1.0) dropped, at most `max`
/// characters (longer text ends in `…`). plotters escapes the rest.
pub(super) fn clean(text: &str, max: usize) -> String {
    let kept: Vec<char> = text.chars().filter(|c| !c.is_control()).collect();
    if kept.len() <= max {
        kept.into_iter().collect()
    } else {
        let mut s: String = kept[..max.saturating_sub(1)].iter().collect();
        s.push('…');
        s
    }
}

/// The colour of series `i`: [`PALETTE`], repeating.
pub(super) fn colour(i: usize) -> RGBColor {
    let hex = PALETTE[i % PALETTE.len()].0.trim_start_matches('#');
    let byte = |k: usize| u8::from_str_radix(&hex[k..k + 2], 16).unwrap_or(0);
    RGBColor(byte(0), byte(2), byte(4))
}

/// `title (unit)`, or the title alone for a unitless metric.
pub(super) fn with_unit(title: &str, unit: &str) -> String {
    if unit.is_empty() {
        title.to_string()
    } else {
        format!("{title} ({unit})")
    }
}
