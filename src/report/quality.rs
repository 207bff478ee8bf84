//! The report's Quality section: per cell, the pooled perplexity and the retrieval accuracy
//! with its Wilson interval, broken down by depth (and by context length, which is the cell's
//! own); why a measurement has no value.

use serde::Serialize;

use crate::analysis::quality::{CellQuality, Pooled};
use crate::stats::Interval;
use crate::units;

/// The Quality section.
#[derive(Debug, Clone, Serialize)]
pub struct QualityView {
    /// What the columns mean.
    pub note: String,
    /// The depth columns (`0`, `0.25`, …).
    pub depths: Vec<String>,
    /// One row per cell with a quality pass.
    pub rows: Vec<QualityRow>,
    /// Why measurements have no value, per cell.
    pub notes: Vec<String>,
}

/// One cell's row.
#[derive(Debug, Clone, Serialize)]
pub struct QualityRow {
    /// Cell label.
    pub cell: String,
    /// Pooled perplexity, or `—`.
    pub ppl: String,
    /// Tokens scored per repetition.
    pub tokens: String,
    /// `82.0 % [78.1 %, 85.4 %]`, or `—`.
    pub accuracy: String,
    /// Items answered over every repetition.
    pub items: String,
    /// Prompt length of the items.
    pub context: String,
    /// Accuracy at each depth column.
    pub by_depth: Vec<String>,
}

fn accuracy(p: &Pooled) -> String {
    match p.interval {
        Some(Interval::Bounded { low, high }) => format!(
            "{} [{}, {}]",
            units::percent(p.accuracy),
            units::percent(low),
            units::percent(high)
        ),
        _ => units::percent(p.accuracy),
    }
}

/// `95 %`, `99.5 %`.
fn confidence_text(confidence: f64) -> String {
    let pct = confidence * 100.0;
    match pct.fract().abs() < 1e-9 {
        true => format!("{pct:.0} %"),
        false => units::percent(confidence),
    }
}

/// The section, or `None` without `[quality]`.
pub fn build(cells: &[CellQuality], confidence: f64) -> Option<QualityView> {
    if cells.is_empty() {
        return None;
    }
    let mut depths: Vec<f64> = (cells.iter())
        .flat_map(|c| c.by_depth.iter().map(|d| d.depth))
        .collect();
    depths.sort_by(f64::total_cmp);
    depths.dedup();
    let rows = cells
        .iter()
        .map(|c| QualityRow {
            cell: c.label.clone(),
            ppl: c.ppl.map_or("—".into(), |p| units::sig(p, 4)),
            tokens: c.ppl_tokens.map_or("—".into(), |t| t.to_string()),
            accuracy: c.accuracy.as_ref().map_or("—".into(), accuracy),
            items: c
                .accuracy
                .as_ref()
                .map_or("—".into(), |a| a.trials.to_string()),
            context: c.context_tokens.map_or("—".into(), |t| t.to_string()),
            by_depth: depths
                .iter()
                .map(|d| {
                    (c.by_depth.iter())
                        .find(|x| x.depth == *d)
                        .map_or("—".into(), |x| {
                            format!(
                                "{} ({})",
                                units::percent(x.pooled.accuracy),
                                x.pooled.trials
                            )
                        })
                })
                .collect(),
        })
        .collect();
    let notes = (cells.iter())
        .flat_map(|c| c.notes.iter().map(move |n| format!("{}: {n}", c.label)))
        .collect();
    Some(QualityView {
        note: format!(
            "Pooled over every repetition. PPL = exp(Σ NLL / Σ tokens) of the corpus from the server's prompt log-probs; accuracy = items whose key the reply's first number matches exactly, with a {} Wilson interval; by depth: accuracy (items) with the key at that depth of the filler (0 = start, 1 = end). Between cells the same documents and items are paired: PPL by paired differences of each document's NLL, accuracy by exact McNemar on the items the cells answered differently (see Comparisons).",
            confidence_text(confidence)
        ),
        depths: depths.iter().map(|d| format!("{d}")).collect(),
        rows,
        notes,
    })
}
