//! The report's Quality section: per cell, the pooled perplexity and the retrieval accuracy
//! with its Wilson interval, broken down by depth (and by context length, which is the cell's
//! own); why a measurement has no value. Under load, how many arrivals were quality items
//! and how long the items took, apart from the speed metrics.

use serde::Serialize;

use crate::analysis::quality::{CellQuality, LoadSummary, Pooled};
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
    /// Under load: what the mix was (empty for passes after each repetition).
    pub under_load_note: String,
    /// Under load: one row per cell whose items were mixed into its load.
    pub under_load: Vec<LoadRow>,
}

/// How a cell's quality items were mixed into its load.
#[derive(Debug, Clone, Serialize)]
pub struct LoadRow {
    /// Cell label.
    pub cell: String,
    /// `52 (10.1 %)`: arrivals that were quality items, and their share.
    pub quality_arrivals: String,
    /// Arrivals in all (measured requests and quality items).
    pub arrivals: String,
    /// Items there were to mix in, per repetition.
    pub items: String,
    /// Median seconds from send to answer of a scored item.
    pub latency_p50: String,
}

fn load_row(label: &str, u: &LoadSummary) -> LoadRow {
    LoadRow {
        cell: label.to_string(),
        quality_arrivals: format!(
            "{} ({})",
            u.quality_arrivals,
            units::percent(u.quality_arrivals as f64 / u.arrivals.max(1) as f64)
        ),
        arrivals: u.arrivals.to_string(),
        items: u.items.to_string(),
        latency_p50: u.latency_p50.map_or("—".into(), units::seconds),
    }
}

/// What the under-load table means, from the share of the first cell mixed under load.
fn under_load_note(cells: &[CellQuality]) -> String {
    let Some(u) = cells.iter().find_map(|c| c.under_load.as_ref()) else {
        return String::new();
    };
    format!(
        "Measured under load: each arrival of the measured load was a quality item instead of a measured request with probability {} (share = {}), decided per arrival from the round's seed, so every cell of a round mixed the same items in at the same positions. Quality items are in no speed metric (TTFT, TPOT, throughput, …); their latency, from send to answer, is shown here alone (median, type 7, over every repetition). Items whose arrival the load did not reach were not scored.",
        units::percent(u.share),
        u.share
    )
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
        under_load_note: under_load_note(cells),
        under_load: (cells.iter())
            .filter_map(|c| Some(load_row(&c.label, c.under_load.as_ref()?)))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(under_load: Option<LoadSummary>) -> CellQuality {
        CellQuality {
            id: "c".into(),
            label: "rate=8".into(),
            ppl: Some(4.4817),
            ppl_tokens: Some(120),
            accuracy: None,
            context_tokens: None,
            by_depth: vec![],
            notes: vec![],
            under_load,
        }
    }

    #[test]
    fn under_load_the_section_counts_quality_arrivals_and_shows_their_latency_apart() {
        let load = LoadSummary {
            share: 0.05,
            arrivals: 2000,
            quality_arrivals: 98,
            items: 52,
            short_reps: 0,
            reached: 98,
            reps: 2,
            latency_p50: Some(0.0412),
        };
        let view = build(&[cell(Some(load))], 0.95).unwrap();
        let row = &view.under_load[0];
        assert_eq!(
            (row.quality_arrivals.as_str(), row.arrivals.as_str()),
            ("98 (4.90 %)", "2000")
        );
        assert_eq!(row.latency_p50, "41.2 ms");
        assert!(view.under_load_note.starts_with("Measured under load: each arrival of the measured load was a quality item instead of a measured request with probability 5.00 % (share = 0.05)"), "{}", view.under_load_note);
        // After each repetition: no under-load table, no note.
        let view = build(&[cell(None)], 0.95).unwrap();
        assert!(view.under_load.is_empty() && view.under_load_note.is_empty());
    }
}
