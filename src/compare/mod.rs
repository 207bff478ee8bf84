//! `exp compare`: a candidate run against a baseline run, cell by cell (statistics.md
//! §2.4–2.7). Pure: the two runs' cell results and the candidate's `[analysis]` settings in, a
//! [`CompareResult`] out; [`report`] turns it (with the [`Environment`] of the two manifests)
//! into the Markdown people attach to pull requests.
//!
//! For every matched cell (see [`match_cells`]) and every primary metric: both means ± sd,
//! the change with its CI and p — paired by round where both runs drew the same workload in
//! each round (same seed, same workload settings: [`Workloads`]; the rounds present in both
//! runs pair), else Welch's p with Δ = candidate / baseline − 1 and Fieller's CI — Holm over the whole family of
//! testable (cell, metric) pairs, Hedges' g, the MDE and the verdict of §2.6 with τ from
//! `[analysis] thresholds` or the metric's default. Two `[search]` runs also get their
//! capacities at the SLO compared per searched cell ([`capacity`]); those verdicts count like
//! the metric rows in the outcome, `--fail-on` and validity.

pub mod capacity;
pub mod capacity_curve;
pub(crate) mod capacity_view;
mod env;
mod matching;
mod pairing;
pub mod report;

#[cfg(test)]
mod capacity_curve_tests;
#[cfg(test)]
mod capacity_noise_tests;
#[cfg(test)]
mod capacity_tests;
#[cfg(test)]
mod capacity_view_tests;
#[cfg(test)]
mod tests;

pub use capacity::{CapacityRow, SearchRun};
pub use env::{EnvDifference, EnvRow, Environment, Severity, environment};
pub use matching::{MatchedCell, Matching, VarDifference, match_cells};
pub use pairing::{RunWorkload, Workloads};

use serde::Serialize;

use crate::analysis::quality::QUALITY_METRICS;
use crate::analysis::{CellResults, rep_rounds, rep_values};
use crate::metrics::{Metric, MetricKey};
use crate::scenario::model::Analysis;
use crate::stats::{self, Comparison, Verdict};
use crate::units;

/// Mean error rate of a cell above which its verdicts are `invalid` (statistics.md §2.7:
/// failures above 1 % are an error, and latencies of the survivors are biased).
pub const ERROR_RATE_LIMIT: f64 = 0.01;

/// When a comparison should fail a CI job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailOn {
    /// Any `regression` verdict.
    Regression,
    /// Any `regression`, `improvement`, `possible regression` or `possible improvement`.
    AnyChange,
}

/// The headline of a comparison, most serious first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing could be compared (see [`CompareResult::invalid_reason`]).
    Invalid,
    /// At least one `regression`.
    Regression,
    /// No regression, at least one `possible regression`.
    PossibleRegression,
    /// No regression of any kind, at least one (possible) improvement.
    Improvement,
    /// No verdict beyond the noise thresholds.
    NoChange,
}

/// One (cell, primary metric) pair.
#[derive(Debug, Clone, Serialize)]
pub struct CompareRow {
    /// Cell label.
    pub cell: String,
    /// Metric.
    pub metric: MetricKey,
    /// The statistics; `None` when a side did not measure the metric.
    pub comparison: Option<Comparison>,
    /// The primary p (paired t, or Welch) adjusted by Holm over the family; `None` outside
    /// the family (invalid rows).
    pub p_holm: Option<f64>,
    /// Noise threshold τ (fraction).
    pub tau: f64,
    /// The verdict of statistics.md §2.6.
    pub verdict: Verdict,
    /// Why the verdict is `invalid`.
    pub invalid: Option<String>,
}

/// Everything `exp compare` decided.
#[derive(Debug, Clone, Serialize)]
pub struct CompareResult {
    /// Significance level.
    pub alpha: f64,
    /// Which cells were compared.
    pub matching: Matching,
    /// One row per matched cell × primary metric, cells in the candidate's order.
    pub rows: Vec<CompareRow>,
    /// Size of the Holm family (rows with a valid test).
    pub family: usize,
    /// Statistical warnings (failures, test disagreement, underpowered comparisons).
    pub warnings: Vec<String>,
    /// One row per searched cell of two `[search]` runs: their capacities at the SLO.
    pub capacity: Vec<CapacityRow>,
    /// What the capacity comparison could not compare (a run that is no search, …).
    pub capacity_notes: Vec<String>,
}

impl CompareResult {
    /// Every verdict: the metric rows', then the capacity rows'.
    fn verdicts(&self) -> impl Iterator<Item = Verdict> + '_ {
        let rows = self.rows.iter().map(|r| r.verdict);
        rows.chain(self.capacity.iter().map(|r| r.verdict))
    }

    /// Number of rows (metric and capacity) with `verdict`.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.verdicts().filter(|v| *v == verdict).count()
    }

    /// Why nothing valid could be compared, or `None` when at least one verdict (of a metric
    /// or a capacity) is valid.
    pub fn invalid_reason(&self) -> Option<String> {
        if self.verdicts().any(|v| v != Verdict::Invalid) {
            return None;
        }
        if let Some(r) = self.capacity.first() {
            let why = r.invalid.as_deref().unwrap_or("invalid data");
            return Some(format!(
                "every verdict is invalid (e.g. the capacity of {}: {why})",
                r.cell
            ));
        }
        if self.matching.matched.is_empty() {
            return Some("no cell is present in both runs".into());
        }
        if self.rows.is_empty() {
            return Some("no primary metric was measured in the matched cells".into());
        }
        let first = self.rows[0].invalid.as_deref().unwrap_or("invalid data");
        Some(format!("every verdict is invalid (e.g. {first})"))
    }

    /// The headline.
    pub fn outcome(&self) -> Outcome {
        let any = |v: &[Verdict]| self.verdicts().any(|x| v.contains(&x));
        if self.invalid_reason().is_some() {
            Outcome::Invalid
        } else if any(&[Verdict::Regression]) {
            Outcome::Regression
        } else if any(&[Verdict::PossibleRegression]) {
            Outcome::PossibleRegression
        } else if any(&[Verdict::Improvement, Verdict::PossibleImprovement]) {
            Outcome::Improvement
        } else {
            Outcome::NoChange
        }
    }

    /// True when `fail_on` is met (an invalid comparison is reported separately).
    pub fn fails(&self, fail_on: FailOn) -> bool {
        let failing: &[Verdict] = match fail_on {
            FailOn::Regression => &[Verdict::Regression],
            FailOn::AnyChange => &[
                Verdict::Regression,
                Verdict::Improvement,
                Verdict::PossibleRegression,
                Verdict::PossibleImprovement,
            ],
        };
        self.verdicts().any(|v| failing.contains(&v))
    }
}

/// Compares two runs: their matched cells ([`compare`]) and, for two `[search]` runs, their
/// capacities at the SLO ([`capacity::compare`]), under the candidate's `[analysis]`.
pub fn compare_runs(
    baseline: SearchRun,
    candidate: SearchRun,
    workloads: Workloads,
    settings: &Analysis,
) -> CompareResult {
    let mut result = compare_with(baseline.cells, candidate.cells, workloads, settings);
    let capacity = capacity::compare(baseline, candidate, settings);
    result.capacity = capacity.rows;
    result.capacity_notes = capacity.notes;
    let both_search = matches!(
        (baseline.search, candidate.search),
        (Some(a), Some(b)) if a.variable == b.variable
    );
    if both_search && !result.capacity.is_empty() {
        // Two bisections probe different loads by design: their unshared probes are
        // compared through the capacity rows, not listed as missing cells.
        let m = &mut result.matching;
        let (nb, nc) = (m.only_baseline.len(), m.only_candidate.len());
        if nb + nc > 0 {
            result.capacity_notes.push(format!(
                "{nb} baseline and {nc} candidate probes at loads the other search did not probe are compared through the capacity, not cell by cell"
            ));
        }
        m.only_baseline.clear();
        m.only_candidate.clear();
    }
    result
}

/// Compares `candidate` against `baseline` under the candidate's `[analysis]` settings, as two
/// independent samples (their workloads are unknown: see [`compare_with`]).
pub fn compare(
    baseline: &[CellResults],
    candidate: &[CellResults],
    settings: &Analysis,
) -> CompareResult {
    compare_with(baseline, candidate, Workloads::default(), settings)
}

/// Compares `candidate` against `baseline` under the candidate's `[analysis]` settings, each
/// matched cell paired by round when `workloads` says both runs drew the same rounds.
pub fn compare_with(
    baseline: &[CellResults],
    candidate: &[CellResults],
    workloads: Workloads,
    settings: &Analysis,
) -> CompareResult {
    let matching = match_cells(baseline, candidate);
    let mut rows = Vec::new();
    let mut warnings = Vec::new();
    for m in &matching.matched {
        let (a, b) = (&baseline[m.baseline], &candidate[m.candidate]);
        let failed = failure_reason(a, b);
        if let Some(reason) = &failed {
            warnings.push(format!(
                "cell {}: {reason}; its verdicts are invalid",
                m.label
            ));
        }
        let unpaired = workloads.unpaired_reason(m);
        // Quality metrics join the family whenever a side measured them (`[quality]`).
        let quality = QUALITY_METRICS
            .into_iter()
            .filter(|m| !settings.primary.contains(m));
        for metric in settings.primary.iter().copied().chain(quality) {
            let sides = Sides {
                a,
                b,
                unpaired: unpaired.as_deref(),
                quality: [
                    workloads.quality_unpaired_reason(m, true),
                    workloads.quality_unpaired_reason(m, false),
                ],
            };
            let text = (metric == Metric::Ppl.key())
                .then(|| crate::analysis::quality::changed_text(a, b))
                .flatten();
            let invalid = failed.as_deref().or(text.as_deref());
            if let Some(row) = row(&m.label, metric, sides, settings, invalid) {
                rows.push(row);
            }
        }
    }
    let family: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].invalid.is_none())
        .collect();
    let raw: Vec<f64> = family
        .iter()
        .map(|&i| {
            rows[i]
                .comparison
                .as_ref()
                .and_then(Comparison::p_value)
                .unwrap_or(1.0)
        })
        .collect();
    for (&i, p) in family.iter().zip(stats::holm(&raw)) {
        let row = &mut rows[i];
        if let Some(c) = &row.comparison {
            row.p_holm = Some(p);
            row.verdict = stats::verdict(c, p, row.tau, settings.alpha);
        }
    }
    warnings.extend(stat_warnings(&rows));
    CompareResult {
        alpha: settings.alpha,
        matching,
        rows,
        family: family.len(),
        warnings,
        capacity: Vec::new(),
        capacity_notes: Vec::new(),
    }
}

/// A matched cell's two sides, and why their rounds cannot be paired (`None`: they can).
struct Sides<'a> {
    a: &'a CellResults,
    b: &'a CellResults,
    unpaired: Option<&'a str>,
    /// Why their quality items cannot be paired: perplexity's documents, retrieval's items.
    quality: [Option<String>; 2],
}

impl Sides<'_> {
    fn quality_unpaired(&self, perplexity: bool) -> Option<String> {
        self.quality[usize::from(!perplexity)].clone()
    }
}

/// The statistics of one metric of a matched cell: paired by round, or unpaired with the
/// reason.
fn statistics(
    sides: &Sides,
    metric: MetricKey,
    alpha: f64,
) -> Result<Comparison, stats::StatsError> {
    let (direction, scale) = (metric.direction(), metric.scale());
    // Quality pairs by item where both runs scored the same items (`Workloads::
    // quality_unpaired_reason`); otherwise its per-repetition values, unpaired, say why.
    if QUALITY_METRICS.contains(&metric) {
        let reason = match sides.quality_unpaired(metric == Metric::Ppl.key()) {
            None => match crate::analysis::quality::compare(sides.a, sides.b, metric, alpha) {
                Some(result) => return result,
                None => "no item was scored on both sides".to_string(),
            },
            Some(reason) => reason,
        };
        let (a, b) = (rep_values(sides.a, metric), rep_values(sides.b, metric));
        let mut c = stats::compare_on(&a, &b, direction, alpha, scale)?;
        c.design = stats::Design::Unpaired { reason };
        return Ok(c);
    }
    let Some(reason) = sides.unpaired else {
        let (a, b) = (rep_rounds(sides.a, metric), rep_rounds(sides.b, metric));
        return stats::compare_paired(&a, &b, direction, alpha, scale);
    };
    let (a, b) = (rep_values(sides.a, metric), rep_values(sides.b, metric));
    let mut c = stats::compare_on(&a, &b, direction, alpha, scale)?;
    c.design = stats::Design::Unpaired {
        reason: reason.to_string(),
    };
    Ok(c)
}

/// The row of one metric in one matched cell, with the verdict left for Holm unless invalid.
fn row(
    label: &str,
    metric: MetricKey,
    sides: Sides,
    settings: &Analysis,
    failed: Option<&str>,
) -> Option<CompareRow> {
    let tau = settings.threshold(metric);
    if rep_values(sides.a, metric).is_empty() && rep_values(sides.b, metric).is_empty() {
        return None;
    }
    let comparison = statistics(&sides, metric, settings.alpha);
    let invalid = match &comparison {
        Err(e) => Some(format!("{metric} not measured: {e}")),
        Ok(_) if failed.is_some() => failed.map(str::to_string),
        Ok(c) => stats::invalid_reason(c, 0.0, tau, settings.alpha).map(|r| r.to_string()),
    };
    Some(CompareRow {
        cell: label.to_string(),
        metric,
        comparison: comparison.ok(),
        p_holm: None,
        tau,
        verdict: Verdict::Invalid,
        invalid,
    })
}

/// Why a matched cell cannot be judged: too many failed requests on either side.
fn failure_reason(a: &CellResults, b: &CellResults) -> Option<String> {
    let rate = |c: &CellResults| {
        let v = rep_values(c, Metric::ErrorRate.key());
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let sides = [("baseline", rate(a)), ("candidate", rate(b))];
    let bad: Vec<String> = sides
        .iter()
        .filter_map(|(side, r)| {
            r.filter(|r| *r > ERROR_RATE_LIMIT)
                .map(|r| format!("{} of {side} requests failed", units::percent(r)))
        })
        .collect();
    (!bad.is_empty()).then(|| {
        format!(
            "{} (limit {})",
            bad.join(", "),
            units::percent(ERROR_RATE_LIMIT)
        )
    })
}

fn stat_warnings(rows: &[CompareRow]) -> Vec<String> {
    let mut out = Vec::new();
    for r in rows {
        let Some(c) = &r.comparison else { continue };
        if r.invalid.is_none() && c.tests_disagree {
            out.push(format!(
                "cell {}, {}: {} disagree (difference driven by shape or outliers)",
                r.cell,
                r.metric,
                c.tests_name()
            ));
        }
    }
    let underpowered: Vec<&CompareRow> = rows
        .iter()
        .filter(|r| r.verdict == Verdict::Inconclusive)
        .filter(|r| {
            r.comparison
                .as_ref()
                .and_then(|c| c.mde)
                .is_some_and(|mde| mde > r.tau)
        })
        .collect();
    if let Some(first) = underpowered.first() {
        out.push(format!(
            "{} comparison(s) are underpowered (MDE above τ, e.g. {} at {}): add repetitions to both runs",
            underpowered.len(),
            first.metric,
            first.cell
        ));
    }
    out
}
