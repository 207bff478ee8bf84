//! The SVGs of a sweep: a primary metric over the x levels (every series, mean line, 95 % CI
//! whiskers), and the latency–throughput frontier of a load sweep.

use plotters::prelude::*;

use super::super::chart::unit_scale;
use super::super::plot::{MetricPlot, Point, SweepPlot};
use super::axis::{self, Axis, DrawError};
use super::legend::{self, Swatch};
use super::{colour, with_unit};

/// Series drawn in colour `i` past the palette's length get dashed lines.
fn line_style(i: usize) -> (RGBColor, bool) {
    (colour(i), i >= super::PALETTE.len())
}

/// The largest |value| of `m` (means and CI ends), for the unit choice; the unit follows the
/// means, as in the Mermaid chart.
fn max_mean(m: &MetricPlot) -> f64 {
    m.series
        .iter()
        .flat_map(|s| s.points.iter().flatten())
        .fold(0.0f64, |acc, p| acc.max(p.mean.abs()))
}

/// (lowest, highest) of means and CI ends, scaled.
fn extent<'p>(points: impl Iterator<Item = &'p Point>, scale: f64) -> (f64, f64) {
    points.fold((0.0f64, 0.0f64), |(lo, hi), p| {
        let (l, h) = p.ci.unwrap_or((p.mean, p.mean));
        (
            lo.min(l * scale).min(p.mean * scale),
            hi.max(h * scale).max(p.mean * scale),
        )
    })
}

/// The plotted means of `m` (in the unit `scale` converts to).
fn means(m: &MetricPlot, scale: f64) -> Vec<f64> {
    m.series
        .iter()
        .flat_map(|s| s.points.iter().flatten())
        .map(|p| p.mean * scale)
        .collect()
}

/// Legend entries, one per series: the name, or `mean` for a single unnamed series.
fn series_legend(plot: &SweepPlot, m: &MetricPlot) -> Vec<(Swatch, String)> {
    m.series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let label = if plot.named {
                s.name.clone()
            } else {
                "mean".into()
            };
            let swatch = match line_style(i) {
                (c, true) => Swatch::Dashed(c),
                (c, false) => Swatch::Solid(c),
            };
            (swatch, label)
        })
        .collect()
}

fn notes(m: &MetricPlot) -> Vec<String> {
    let mut n: Vec<usize> = m
        .series
        .iter()
        .flat_map(|s| s.points.iter().flatten().map(|p| p.n))
        .collect();
    n.sort_unstable();
    n.dedup();
    let reps = match (n.first(), n.last()) {
        (Some(a), Some(b)) if a == b => format!("n = {a} repetitions per point"),
        (Some(a), Some(b)) => format!("n = {a} to {b} repetitions per point"),
        _ => String::new(),
    };
    let mut out = vec![
        "line: mean over repetitions".to_string(),
        "bars: 95 % CI of the mean".to_string(),
    ];
    if !reps.is_empty() {
        out.push(reps);
    }
    out
}

/// One primary metric of a sweep: every series with a legend, the mean joined across the x
/// levels (broken where a cell is missing), and 95 % CI whiskers where n ≥ 2.
pub(super) fn metric(plot: &SweepPlot, m: &MetricPlot) -> Result<String, DrawError> {
    let (scale, unit) = unit_scale(m.metric, max_mean(m));
    let (x, positions) = Axis::levels(&plot.x_title, &plot.levels);
    let (lo, hi) = extent(
        m.series.iter().flat_map(|s| s.points.iter().flatten()),
        scale,
    );
    let y = Axis::measured(&with_unit(&m.title, unit), &means(m, scale), lo, hi);
    let mut order: Vec<usize> = (0..plot.levels.len()).collect();
    order.sort_by(|a, b| positions[*a].total_cmp(&positions[*b]));
    let entries = series_legend(plot, m);
    let notes = notes(m);
    let (legend_width, height) = legend::size(&entries, &notes);
    let mut buf = String::new();
    {
        let (left, right) = axis::canvas(&mut buf, axis::PLOT_WIDTH, legend_width, height)?;
        let title = format!("{} by {}", m.title, plot.x_title);
        let mut chart = axis::frame(&left, &title, &x, &y)?;
        let dodge = dodge(&x, &positions, m.series.len());
        for (i, s) in m.series.iter().enumerate() {
            let c = line_style(i).0;
            let shift = dodge * (i as f64 - (m.series.len() - 1) as f64 / 2.0);
            let positions: Vec<f64> = positions.iter().map(|p| p + shift).collect();
            let at = |k: usize| s.points[k].map(|p| (positions[k], p, scale));
            let runs = runs(order.iter().map(|&k| at(k)));
            for run in runs.iter().filter(|r| r.len() >= 2) {
                line(
                    &mut chart,
                    i,
                    run.iter()
                        .map(|(x, p, s)| (*x, y.pos(p.mean * s)))
                        .collect(),
                )?;
            }
            let present: Vec<(f64, Point)> = order
                .iter()
                .filter_map(|&k| s.points[k].map(|p| (positions[k], p)))
                .collect();
            let bars: Vec<(f64, f64, f64)> = present
                .iter()
                .filter_map(|(x, p)| p.ci.map(|(l, h)| (*x, y.pos(l * scale), y.pos(h * scale))))
                .collect();
            axis::v_whiskers(&mut chart, &bars, c.stroke_width(1))?;
            chart.draw_series(
                present
                    .iter()
                    .map(|(x, p)| Circle::new((*x, y.pos(p.mean * scale)), 3, c.filled())),
            )?;
        }
        legend::draw(&right, &entries, &notes)?;
        right.present()?;
    }
    Ok(buf)
}

/// How far apart (in position space) the series are drawn at one level, so their whiskers
/// do not hide each other: 0.8 % of the axis per series, at most a quarter of the closest
/// two levels' gap in all.
fn dodge(x: &Axis, positions: &[f64], series: usize) -> f64 {
    if series < 2 {
        return 0.0;
    }
    let mut sorted = positions.to_vec();
    sorted.sort_by(f64::total_cmp);
    let gap = sorted
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(f64::INFINITY, f64::min);
    let width = x.range.end - x.range.start;
    (0.008 * width).min(0.25 * gap / (series - 1) as f64)
}

/// Splits a sequence of optional points into runs of consecutive present ones.
fn runs<T>(items: impl Iterator<Item = Option<T>>) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = vec![Vec::new()];
    for item in items {
        match item {
            Some(t) => out.last_mut().expect("never empty").push(t),
            None if out.last().is_some_and(|r| !r.is_empty()) => out.push(Vec::new()),
            None => {}
        }
    }
    out.retain(|r| !r.is_empty());
    out
}

/// One point of a frontier: the load's label, the throughput and the latency there.
struct FrontierPoint<'a> {
    load: &'a str,
    throughput: Point,
    latency: Point,
}

/// Per series of `m`, the levels where both metrics were measured, in load order.
fn frontier_points<'a>(
    plot: &'a SweepPlot,
    throughput: &MetricPlot,
    m: &MetricPlot,
) -> Vec<Vec<FrontierPoint<'a>>> {
    let mut order: Vec<usize> = (0..plot.levels.len()).collect();
    if let Some(values) = plot.numeric_levels() {
        order.sort_by(|a, b| values[*a].total_cmp(&values[*b]));
    }
    m.series
        .iter()
        .map(|s| {
            let tp = throughput.series.iter().find(|t| t.name == s.name);
            order
                .iter()
                .filter_map(|&k| {
                    Some(FrontierPoint {
                        load: plot.levels[k].label.as_str(),
                        throughput: tp?.points[k]?,
                        latency: s.points[k]?,
                    })
                })
                .collect()
        })
        .collect()
}

/// The latency–throughput frontier of a load sweep for latency metric `m`: x = output
/// throughput, y = the latency, both means with 95 % CI whiskers; each series' points are
/// joined in load order and labelled with their load.
pub(super) fn frontier(
    plot: &SweepPlot,
    throughput: &MetricPlot,
    m: &MetricPlot,
) -> Result<String, DrawError> {
    let (y_scale, y_unit) = unit_scale(m.metric, max_mean(m));
    let (x_scale, x_unit) = unit_scale(throughput.metric, max_mean(throughput));
    let series = frontier_points(plot, throughput, m);
    let all = || series.iter().flatten();
    let (x_lo, x_hi) = extent(all().map(|p| &p.throughput), x_scale);
    let (y_lo, y_hi) = extent(all().map(|p| &p.latency), y_scale);
    let x = Axis::linear(&with_unit(&throughput.title, x_unit), x_lo, x_hi);
    let latencies: Vec<f64> = all().map(|p| p.latency.mean * y_scale).collect();
    let y = Axis::measured(&with_unit(&m.title, y_unit), &latencies, y_lo, y_hi);
    let entries = series_legend(plot, m);
    let notes = vec![
        format!("labels: {}", plot.x_title),
        "bars: 95 % CI of each mean".to_string(),
    ];
    let (legend_width, height) = legend::size(&entries, &notes);
    let mut buf = String::new();
    {
        let (left, right) = axis::canvas(&mut buf, axis::PLOT_WIDTH, legend_width, height)?;
        let title = format!("{} vs {}", m.title, throughput.title);
        let mut chart = axis::frame(&left, &title, &x, &y)?;
        for (i, points) in series.iter().enumerate() {
            frontier_series(&mut chart, i, points, (x_scale, y_scale), &y)?;
        }
        legend::draw(&right, &entries, &notes)?;
        right.present()?;
    }
    Ok(buf)
}

/// Series `i` of a frontier: the line in load order, whiskers both ways, points, labels.
fn frontier_series(
    chart: &mut axis::Chart<'_, '_>,
    i: usize,
    points: &[FrontierPoint<'_>],
    (x_scale, y_scale): (f64, f64),
    y: &Axis,
) -> Result<(), DrawError> {
    let c = line_style(i).0;
    let xy: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.throughput.mean * x_scale, y.pos(p.latency.mean * y_scale)))
        .collect();
    line(chart, i, xy.clone())?;
    let v: Vec<(f64, f64, f64)> = points
        .iter()
        .zip(&xy)
        .filter_map(|(p, (x, _))| {
            let (lo, hi) = p.latency.ci?;
            Some((*x, y.pos(lo * y_scale), y.pos(hi * y_scale)))
        })
        .collect();
    let h: Vec<(f64, f64, f64)> = points
        .iter()
        .zip(&xy)
        .filter_map(|(p, (_, y))| {
            let (lo, hi) = p.throughput.ci?;
            Some((*y, lo * x_scale, hi * x_scale))
        })
        .collect();
    axis::v_whiskers(chart, &v, c.stroke_width(1))?;
    axis::h_whiskers(chart, &h, c.stroke_width(1))?;
    chart.draw_series(xy.iter().map(|p| Circle::new(*p, 3, c.filled())))?;
    let font = (axis::FONT, 13).into_font().color(&c);
    chart.draw_series(points.iter().zip(&xy).map(|(p, at)| {
        EmptyElement::at(*at) + Text::new(super::clean(p.load, 16), (5, -14), font.clone())
    }))?;
    Ok(())
}

/// The mean line of series `i` through `points`: solid, or dashed past the palette.
fn line(
    chart: &mut axis::Chart<'_, '_>,
    i: usize,
    points: Vec<(f64, f64)>,
) -> Result<(), DrawError> {
    let (c, dashed) = line_style(i);
    if dashed {
        chart.draw_series(DashedLineSeries::new(points, 6, 4, c.stroke_width(2)))?;
    } else {
        chart.draw_series(LineSeries::new(points, c.stroke_width(2)))?;
    }
    Ok(())
}
