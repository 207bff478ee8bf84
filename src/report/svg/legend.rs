//! The legend column of an SVG chart: a swatch and a label per entry, then grey notes
//! (what the bars mean, n); plotters' own legend would sit on top of the data.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::axis::{DrawError, FONT, HEIGHT};
use super::clean;

/// Legend rows, in pixels apart.
const ROW: i32 = 20;

/// How a legend entry is drawn.
pub(super) enum Swatch {
    /// A filled square in the colour.
    Solid(RGBColor),
    /// A pale square: a CI band.
    Band(RGBColor),
    /// An outlined square: a dashed reference line.
    Outline(RGBColor),
    /// Two short dashes: a series drawn dashed (past the palette's colours).
    Dashed(RGBColor),
}

/// The legend column: one swatch and label per entry, then the notes in grey.
pub(super) fn draw(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    entries: &[(Swatch, String)],
    notes: &[String],
) -> Result<(), DrawError> {
    let text = (FONT, 15).into_font().color(&BLACK);
    let grey = (FONT, 14).into_font().color(&RGBColor(90, 90, 90));
    let mut y = 48;
    for (swatch, label) in entries {
        let style = match swatch {
            Swatch::Solid(c) => c.filled(),
            Swatch::Band(c) => c.mix(0.25).filled(),
            Swatch::Outline(c) => c.stroke_width(2),
            Swatch::Dashed(c) => {
                for x in [2, 12] {
                    area.draw(&PathElement::new([(x, y), (x + 6, y)], c.stroke_width(3)))?;
                }
                c.filled()
            }
        };
        if !matches!(swatch, Swatch::Dashed(_)) {
            area.draw(&Rectangle::new([(4, y - 6), (16, y + 6)], style))?;
        }
        area.draw(&Text::new(
            clean(label, LEGEND_CHARS),
            (24, y - 7),
            text.clone(),
        ))?;
        y += ROW;
    }
    y += ROW / 2;
    for note in notes {
        area.draw(&Text::new(
            clean(note, LEGEND_CHARS + 6),
            (4, y - 7),
            grey.clone(),
        ))?;
        y += ROW - 4;
    }
    Ok(())
}

/// Longest legend label shown, in characters.
pub(super) const LEGEND_CHARS: usize = 40;

/// Width of a legend column for its `entries` and `notes`, and the chart height
/// it needs (labels at ≈ 7 px a character after the swatch, notes at ≈ 6.5 px).
pub(super) fn size(entries: &[(Swatch, String)], notes: &[String]) -> (u32, u32) {
    let chars = |s: &str, max: usize| s.chars().count().min(max) as f64;
    let widest = entries
        .iter()
        .map(|(_, l)| 24.0 + 7.0 * chars(l, LEGEND_CHARS))
        .chain(notes.iter().map(|n| 4.0 + 6.5 * chars(n, LEGEND_CHARS + 6)))
        .fold(0.0f64, f64::max);
    let width = (widest.ceil() as u32 + 12).clamp(160, 380);
    let rows = entries.len() as u32;
    let height = (90 + ROW as u32 * rows + 16 * notes.len() as u32).max(HEIGHT);
    (width, height)
}
