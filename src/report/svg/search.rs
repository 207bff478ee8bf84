//! The SVG of a capacity search: mean SLO attainment of every probe against its load, with
//! the 95 % CI band shaded, the target as a dashed line and the capacity marked.

use plotters::prelude::*;

use super::axis::{self, Axis, DrawError};
use super::colour;
use super::legend::{self, Swatch};
use crate::search::{self, Outcome, ProbeSummary};
use crate::units;

/// Colours: the mean and its band, the target, the capacity.
const MEAN: usize = 0;
const TARGET: usize = 3;
const CAPACITY: usize = 2;

/// Attainment against load for one searched cell.
pub(super) fn attainment(o: &Outcome) -> Result<String, DrawError> {
    let mut probes: Vec<&ProbeSummary> = o.probes.iter().collect();
    probes.sort_by(|a, b| a.load.total_cmp(&b.load));
    let loads: Vec<f64> = probes.iter().map(|p| p.load).collect();
    let labels: Vec<String> = loads.iter().map(|x| search::load_number(*x)).collect();
    let x = Axis::numbers(&o.variable, &loads, &labels);
    let lowest = probes
        .iter()
        .map(|p| p.ci.map_or(p.mean, |c| c.0).min(p.mean))
        .fold(o.target, f64::min);
    let bottom = ((100.0 * lowest - 2.0) / 10.0).floor().max(0.0) * 10.0;
    let top = 100.0 + 0.02 * (100.0 - bottom);
    let y = Axis::span("SLO attainment (%)", bottom..top);
    let (entries, notes) = legend_of(o, &probes);
    let (legend_width, height) = legend::size(&entries, &notes);
    let mut buf = String::new();
    {
        let (left, right) = axis::canvas(&mut buf, axis::PLOT_WIDTH, legend_width, height)?;
        let title = format!("SLO attainment vs {} ({})", o.variable, o.cell);
        let mut chart = axis::frame(&left, &title, &x, &y)?;
        band(&mut chart, &probes, &x)?;
        let (target, c) = (100.0 * o.target, colour(TARGET));
        let line = vec![(x.range.start, target), (x.range.end, target)];
        chart.draw_series(DashedLineSeries::new(line, 8, 5, c.stroke_width(2)))?;
        let c = colour(MEAN);
        let means: Vec<(f64, f64)> = probes.iter().map(|p| at(&x, p, p.mean)).collect();
        chart.draw_series(LineSeries::new(means.clone(), c.stroke_width(2)))?;
        chart.draw_series(means.iter().map(|p| Circle::new(*p, 3, c.filled())))?;
        if let Some(capacity) = o.capacity {
            let (cx, c) = (x.pos(capacity), colour(CAPACITY));
            let marker = vec![(cx, y.range.start), (cx, y.range.end)];
            chart.draw_series(LineSeries::new(marker, c.stroke_width(2)))?;
            let font = (axis::FONT, 15).into_font().color(&c);
            let text = format!("capacity {}", search::load_text(&o.variable, capacity));
            chart.draw_series(std::iter::once(
                EmptyElement::at((cx, y.range.start)) + Text::new(text, (5, -18), font),
            ))?;
        }
        legend::draw(&right, &entries, &notes)?;
        right.present()?;
    }
    Ok(buf)
}

/// The point of probe `p` at attainment `v`: a t-interval can pass 100 %, attainment cannot.
fn at(x: &Axis, p: &ProbeSummary, v: f64) -> (f64, f64) {
    (x.pos(p.load), 100.0 * v.clamp(0.0, 1.0))
}

/// The CI band through the probes (a whisker when there is only one probe).
fn band(
    chart: &mut axis::Chart<'_, '_>,
    probes: &[&ProbeSummary],
    x: &Axis,
) -> Result<(), DrawError> {
    let c = colour(MEAN);
    let ci = |p: &ProbeSummary| p.ci.unwrap_or((p.mean, p.mean));
    if probes.len() >= 2 {
        let upper = probes.iter().map(|p| at(x, p, ci(p).1));
        let lower = probes.iter().rev().map(|p| at(x, p, ci(p).0));
        let band: Vec<(f64, f64)> = upper.chain(lower).collect();
        chart.draw_series(std::iter::once(Polygon::new(band, c.mix(0.2).filled())))?;
    } else {
        let bars: Vec<(f64, f64, f64)> = probes
            .iter()
            .filter(|p| p.ci.is_some())
            .map(|p| (x.pos(p.load), at(x, p, ci(p).0).1, at(x, p, ci(p).1).1))
            .collect();
        axis::v_whiskers(chart, &bars, c.stroke_width(1))?;
    }
    Ok(())
}

/// Legend entries and notes of the attainment chart.
fn legend_of(o: &Outcome, probes: &[&ProbeSummary]) -> (Vec<(Swatch, String)>, Vec<String>) {
    let mut entries = vec![
        (Swatch::Solid(colour(MEAN)), "mean attainment".to_string()),
        (
            Swatch::Band(colour(MEAN)),
            "95 % CI of the mean".to_string(),
        ),
        (
            Swatch::Outline(colour(TARGET)),
            format!("target {}", units::percent(o.target)),
        ),
    ];
    if let Some(c) = o.capacity {
        entries.push((
            Swatch::Solid(colour(CAPACITY)),
            format!("capacity {}", search::load_text(&o.variable, c)),
        ));
    }
    let n = probes.first().map_or(0, |p| p.n);
    let notes = vec![
        format!("n = {n} repetitions per probe"),
        format!("status: {}", o.status.as_str()),
    ];
    (entries, notes)
}
