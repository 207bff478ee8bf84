//! The SVG of a capacity search: mean SLO attainment of every probe against its load, with
//! the 95 % CI band shaded, the target as a dashed line and the capacity marked.

use plotters::prelude::*;

use super::axis::{self, Axis, DrawError};
use super::colour;
use super::legend::{self, Swatch};
use crate::search::{self, Outcome};
use crate::units;

/// Attainment against load for one searched cell.
pub(super) fn attainment(o: &Outcome) -> Result<String, DrawError> {
    let mut probes: Vec<&search::ProbeSummary> = o.probes.iter().collect();
    probes.sort_by(|a, b| a.load.total_cmp(&b.load));
    let loads: Vec<f64> = probes.iter().map(|p| p.load).collect();
    let labels: Vec<String> = loads.iter().map(|x| search::load_number(*x)).collect();
    let x = Axis::numbers(&o.variable, &loads, &labels);
    let lowest = probes
        .iter()
        .map(|p| p.ci.map_or(p.mean, |c| c.0).min(p.mean))
        .fold(o.target, f64::min);
    let bottom = ((100.0 * lowest - 2.0) / 10.0).floor().max(0.0) * 10.0;
    let y = Axis::span(
        "SLO attainment (%)",
        bottom..100.0 + 0.02 * (100.0 - bottom),
    );
    let (mean_c, band_c, target_c, cap_c) = (colour(0), colour(0), colour(3), colour(2));
    // A t-interval can pass 100 %; attainment cannot.
    let at = |p: &search::ProbeSummary, v: f64| (x.pos(p.load), 100.0 * v.clamp(0.0, 1.0));
    let mut entries = vec![
        (Swatch::Solid(mean_c), "mean attainment".to_string()),
        (Swatch::Band(band_c), "95 % CI of the mean".to_string()),
        (
            Swatch::Outline(target_c),
            format!("target {}", units::percent(o.target)),
        ),
    ];
    if let Some(c) = o.capacity {
        entries.push((
            Swatch::Solid(cap_c),
            format!("capacity {}", search::load_text(&o.variable, c)),
        ));
    }
    let notes = vec![
        format!(
            "n = {} repetitions per probe",
            probes.first().map_or(0, |p| p.n)
        ),
        format!("status: {}", o.status.as_str()),
    ];
    let (legend_width, height) = legend::size(&entries, &notes);
    let mut buf = String::new();
    {
        let (left, right) = axis::canvas(&mut buf, axis::PLOT_WIDTH, legend_width, height)?;
        let title = format!("SLO attainment vs {} ({})", o.variable, o.cell);
        let mut chart = axis::frame(&left, &title, &x, &y)?;
        if probes.len() >= 2 {
            let upper = probes.iter().map(|p| at(p, p.ci.map_or(p.mean, |c| c.1)));
            let lower = probes
                .iter()
                .rev()
                .map(|p| at(p, p.ci.map_or(p.mean, |c| c.0)));
            let band: Vec<(f64, f64)> = upper.chain(lower).collect();
            chart.draw_series(std::iter::once(Polygon::new(
                band,
                band_c.mix(0.2).filled(),
            )))?;
        } else {
            let bars: Vec<(f64, f64, f64)> = probes
                .iter()
                .filter_map(|p| {
                    let (l, h) = p.ci?;
                    Some((x.pos(p.load), 100.0 * l.max(0.0), 100.0 * h.min(1.0)))
                })
                .collect();
            axis::v_whiskers(&mut chart, &bars, band_c.stroke_width(1))?;
        }
        let target = vec![
            (x.range.start, 100.0 * o.target),
            (x.range.end, 100.0 * o.target),
        ];
        chart.draw_series(DashedLineSeries::new(
            target,
            8,
            5,
            target_c.stroke_width(2),
        ))?;
        let means: Vec<(f64, f64)> = probes.iter().map(|p| at(p, p.mean)).collect();
        chart.draw_series(LineSeries::new(means.clone(), mean_c.stroke_width(2)))?;
        chart.draw_series(means.iter().map(|p| Circle::new(*p, 3, mean_c.filled())))?;
        if let Some(c) = o.capacity {
            let cx = x.pos(c);
            let marker = vec![(cx, y.range.start), (cx, y.range.end)];
            chart.draw_series(LineSeries::new(marker, cap_c.stroke_width(2)))?;
            let font = ("sans-serif", 15).into_font().color(&cap_c);
            let text = format!("capacity {}", search::load_text(&o.variable, c));
            chart.draw_series(std::iter::once(
                EmptyElement::at((cx, y.range.start)) + Text::new(text, (5, -18), font),
            ))?;
        }
        legend::draw(&right, &entries, &notes)?;
        right.present()?;
    }
    Ok(buf)
}
