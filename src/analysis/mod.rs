//! Analysis across repetitions: per-cell descriptions, controlled comparisons with their
//! verdicts, `[checks]`, and the warnings a reader needs (statistics.md §2). Pure: saved
//! repetition summaries in, an [`Analysis`] out; the report renders it.

mod checks;
mod compare;
mod diagnostics;
pub mod nodes;
pub mod quality;
mod warnings;

pub use checks::CheckOutcome;
pub use compare::{ComparisonKind, ComparisonRow};

use std::collections::BTreeMap;

use serde::Serialize;

use crate::metrics::{MetricKey, RepetitionSummary};
use crate::scenario::model::{Scenario, Vars};
use crate::stats::{Description, describe};

/// One finished repetition of a cell, as read back from the run directory.
#[derive(Debug, Clone, Serialize)]
pub struct RepResult {
    /// Repetition round.
    pub round: u32,
    /// Position of this repetition in the run's execution order (for drift tests).
    pub order: usize,
    /// The repetition's summary.
    pub summary: RepetitionSummary,
    /// Wall-clock seconds it took.
    pub wall_seconds: f64,
    /// Client CPU seconds spent (HTTP runs).
    pub client_cpu_seconds: Option<f64>,
}

/// The finished repetitions of one cell.
#[derive(Debug, Clone, Serialize)]
pub struct CellResults {
    /// Cell id.
    pub id: String,
    /// Every variable of the cell.
    pub vars: Vars,
    /// The variables that differ between cells.
    pub swept: Vars,
    /// Finished repetitions, in round order.
    pub reps: Vec<RepResult>,
}

/// A cell described across its repetitions.
#[derive(Debug, Clone, Serialize)]
pub struct CellAnalysis {
    /// Cell id.
    pub id: String,
    /// `request_rate=10 · tp=4`, or `default` for a single-cell scenario.
    pub label: String,
    /// Repetitions that finished.
    pub n: usize,
    /// Metric → description of its per-repetition values.
    pub metrics: BTreeMap<MetricKey, Description>,
}

/// Everything the report shows beyond raw numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// Per-cell descriptions, in matrix order.
    pub cells: Vec<CellAnalysis>,
    /// Controlled comparisons with verdicts (Holm over all of them).
    pub comparisons: Vec<ComparisonRow>,
    /// `[checks]` outcomes, per cell.
    pub checks: Vec<CheckOutcome>,
    /// Each cell's quality (`[quality]`), in matrix order; empty without.
    pub quality: Vec<quality::CellQuality>,
    /// Warnings, most important first.
    pub warnings: Vec<String>,
}

impl Analysis {
    /// True when any check failed.
    pub fn checks_failed(&self) -> bool {
        self.checks.iter().any(|c| !c.passed)
    }
}

/// Label of a cell from its swept variables.
pub fn cell_label(swept: &Vars) -> String {
    if swept.is_empty() {
        return "default".into();
    }
    swept
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// Analyses the finished repetitions of every cell under the scenario's `[analysis]`,
/// `[checks]` and warning thresholds.
pub fn analyze(scenario: &Scenario, cells: &[CellResults]) -> Analysis {
    let described: Vec<CellAnalysis> = cells.iter().map(describe_cell).collect();
    let comparisons = compare::compare_cells(scenario, cells);
    let checks = checks::judge(scenario, &described);
    let mut warnings = warnings::collect(scenario, cells, &described, &comparisons);
    let quality = quality::describe(cells, 1.0 - scenario.analysis.alpha);
    warnings.extend(
        (quality.iter()).flat_map(|q| q.notes.iter().map(move |n| format!("{}: {n}", q.label))),
    );
    Analysis {
        cells: described,
        comparisons,
        checks,
        quality,
        warnings,
    }
}

fn describe_cell(cell: &CellResults) -> CellAnalysis {
    let mut values: BTreeMap<MetricKey, Vec<f64>> = BTreeMap::new();
    for rep in &cell.reps {
        for (key, v) in &rep.summary.values {
            values.entry(*key).or_default().push(*v);
        }
    }
    let metrics = values
        .into_iter()
        .filter_map(|(key, v)| Some((key, describe(&v)?)))
        .collect();
    CellAnalysis {
        id: cell.id.clone(),
        label: cell_label(&cell.swept),
        n: cell.reps.len(),
        metrics,
    }
}

/// The `(round, value)` of `metric` over a cell's repetitions, in round order (absent ones
/// skipped): the input of a comparison paired by round.
pub(crate) fn rep_rounds(cell: &CellResults, metric: MetricKey) -> Vec<(u32, f64)> {
    cell.reps
        .iter()
        .filter_map(|r| Some((r.round, *r.summary.values.get(&metric)?)))
        .collect()
}

/// The values of `metric` over a cell's repetitions, in round order (absent ones skipped).
pub(crate) fn rep_values(cell: &CellResults, metric: MetricKey) -> Vec<f64> {
    cell.reps
        .iter()
        .filter_map(|r| r.summary.values.get(&metric).copied())
        .collect()
}

#[cfg(test)]
mod quality_tests;
#[cfg(test)]
mod tests;
