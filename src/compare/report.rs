//! The Markdown of a comparison: a view model with every number pre-formatted, rendered by
//! minijinja from the embedded `templates/compare.md.j2` (strict undefined variables, no HTML
//! escaping). Short at the top (one verdict line, loud environment warnings, only the cells
//! and metrics that changed), everything else below `<details>` folds, so it reads well as a
//! GitHub pull-request comment.

use serde::Serialize;

use super::capacity_view::{self, CapacityView};
use super::{CompareResult, CompareRow, EnvRow, Environment, Outcome, Severity};
use crate::report::ReportError;
use crate::stats::Verdict;
use crate::store::Manifest;
use crate::units;

/// The embedded template.
pub const TEMPLATE: &str = include_str!("../../templates/compare.md.j2");

/// Verdicts in the order the summary counts them.
const ORDER: [Verdict; 8] = [
    Verdict::Regression,
    Verdict::PossibleRegression,
    Verdict::Improvement,
    Verdict::PossibleImprovement,
    Verdict::WithinNoise,
    Verdict::NoChange,
    Verdict::Inconclusive,
    Verdict::Invalid,
];

/// Everything the compare template can use.
#[derive(Debug, Clone, Serialize)]
pub struct CompareModel {
    /// Layout version of this model.
    pub schema_version: u32,
    /// `exp compare: <scenario name>`.
    pub title: String,
    /// The headline as a word (`regression`, `no_change`, …).
    pub outcome: Outcome,
    /// One line: emoji, headline, verdict counts.
    pub verdict_line: String,
    /// The baseline run.
    pub baseline: SideView,
    /// The candidate run.
    pub candidate: SideView,
    /// Differences that may invalidate the comparison.
    pub cautions: Vec<String>,
    /// Differences and statistical problems that weaken it.
    pub warnings: Vec<String>,
    /// Facts worth knowing.
    pub notes: Vec<String>,
    /// The capacities at the SLO of two `[search]` runs, one row per searched cell.
    pub capacity: Vec<CapacityView>,
    /// How the capacity interval and verdict are computed.
    pub capacity_method: String,
    /// Rows whose verdict is a (possible) regression or improvement.
    pub changed: Vec<RowView>,
    /// Every row.
    pub rows: Vec<RowView>,
    /// Cells only the baseline has.
    pub only_baseline: Vec<String>,
    /// Cells only the candidate has.
    pub only_candidate: Vec<String>,
    /// The environment table.
    pub environment: Vec<EnvRow>,
    /// How the numbers were computed.
    pub method: String,
    /// The forest plot SVG (every Δ with its CI and ±τ), relative to the Markdown
    /// (`compare.forest.svg`); none when no SVG was written (output to stdout).
    pub forest_svg: Option<String>,
}

/// One run's identity.
#[derive(Debug, Clone, Serialize)]
pub struct SideView {
    /// Run id.
    pub run_id: String,
    /// git revision, when known.
    pub git_revision: Option<String>,
}

/// One (cell, metric) row, formatted.
#[derive(Debug, Clone, Serialize)]
pub struct RowView {
    /// Cell label.
    pub cell: String,
    /// Metric name.
    pub metric: String,
    /// Runs per side, `10 / 10`.
    pub n: String,
    /// Baseline mean ± sd.
    pub base: String,
    /// Candidate mean ± sd.
    pub cand: String,
    /// Δ and its CI (paired, or Fieller's).
    pub delta: String,
    /// Primary p (paired t, or Welch).
    pub p: String,
    /// Holm-adjusted p.
    pub p_holm: String,
    /// Hedges' g.
    pub g: String,
    /// Observed MDE.
    pub mde: String,
    /// Verdict with τ (bold for regression and improvement), or why it is invalid.
    pub verdict: String,
    /// The bare verdict label.
    pub label: String,
}

/// Builds the view model of a comparison.
pub fn build(
    result: &CompareResult,
    env: &Environment,
    baseline: &Manifest,
    candidate: &Manifest,
) -> CompareModel {
    let rows: Vec<RowView> = result.rows.iter().map(row_view).collect();
    let changed = result
        .rows
        .iter()
        .zip(&rows)
        .filter(|(r, _)| is_change(r.verdict))
        .map(|(_, v)| v.clone())
        .collect();
    let of = |s: Severity| -> Vec<String> {
        env.differences
            .iter()
            .filter(|d| d.severity == s)
            .map(|d| d.message.clone())
            .collect()
    };
    let mut warnings = of(Severity::Warning);
    warnings.extend(result.warnings.iter().cloned());
    let mut cautions = of(Severity::Invalidates);
    cautions.extend(capacity_view::cautions(result));
    let mut notes = of(Severity::Note);
    notes.extend(capacity_view::notes(result));
    let side = |m: &Manifest| SideView {
        run_id: m.run_id.clone(),
        git_revision: m.git_revision.clone(),
    };
    CompareModel {
        schema_version: crate::store::SCHEMA_VERSION,
        title: format!("exp compare: {}", candidate.scenario_name),
        outcome: result.outcome(),
        verdict_line: verdict_line(result),
        baseline: side(baseline),
        candidate: side(candidate),
        cautions,
        warnings,
        notes,
        capacity: capacity_view::views(result),
        capacity_method: capacity_view::METHOD.into(),
        changed,
        rows,
        only_baseline: result
            .matching
            .only_baseline
            .iter()
            .map(|c| md(c))
            .collect(),
        only_candidate: result
            .matching
            .only_candidate
            .iter()
            .map(|c| md(c))
            .collect(),
        environment: env
            .rows
            .iter()
            .map(|e| EnvRow {
                baseline: md(&e.baseline),
                candidate: md(&e.candidate),
                ..e.clone()
            })
            .collect(),
        method: method(result),
        forest_svg: None,
    }
}

/// The rows of the forest plot: every (cell, metric) judged on its relative change, in table
/// order (proportions, judged in percentage points, have no place on a ratio axis).
pub fn forest_rows(result: &CompareResult) -> Vec<crate::report::svg::ForestRow> {
    result
        .rows
        .iter()
        .filter(|r| r.metric.scale() == crate::stats::Scale::Relative)
        .filter_map(|r| {
            let (change, ci) = r.comparison.as_ref()?.change()?;
            Some(crate::report::svg::ForestRow {
                label: format!("{} · {}", r.cell, r.metric),
                change,
                ci: match ci {
                    crate::stats::Interval::Bounded { low, high } => Some((low, high)),
                    crate::stats::Interval::Unbounded => None,
                },
                tau: r.tau,
                verdict: r.verdict,
            })
        })
        .collect()
}

/// Renders the view model with the embedded template.
pub fn render(model: &CompareModel) -> Result<String, ReportError> {
    crate::report::render_source("compare.md.j2", TEMPLATE, model)
}

/// Escapes `|` so a value cannot break a Markdown table row.
pub(super) fn md(s: &str) -> String {
    s.replace('|', "\\|")
}

/// A (possible) regression or improvement.
pub(super) fn is_change(v: Verdict) -> bool {
    matches!(
        v,
        Verdict::Regression
            | Verdict::PossibleRegression
            | Verdict::Improvement
            | Verdict::PossibleImprovement
    )
}

/// `❌ regression — regression: 1 · no change: 5 (6 comparisons in 1 matched cell)`, with
/// `, 1 capacity at the SLO` when two `[search]` runs were compared.
pub fn verdict_line(result: &CompareResult) -> String {
    let head = match result.outcome() {
        Outcome::Invalid => format!(
            "⛔ invalid comparison: {}",
            result.invalid_reason().unwrap_or_default()
        ),
        Outcome::Regression => "❌ regression".into(),
        Outcome::PossibleRegression => "⚠️ possible regression".into(),
        Outcome::Improvement => "✅ improvement, no regression".into(),
        Outcome::NoChange => "✅ no change beyond the noise thresholds".into(),
    };
    // The headline, then what it rests on: `❌ regression (6 comparisons in 2 matched
    // cells: 4 regression, 2 within noise)`.
    let counts: Vec<String> = ORDER
        .iter()
        .filter_map(|&v| {
            let n = result.count(v);
            (n > 0).then(|| format!("{n} {v}"))
        })
        .collect();
    let cells = result.matching.matched.len();
    let mut scope = format!(
        "{} comparison{} in {cells} matched cell{}",
        result.rows.len(),
        if result.rows.len() == 1 { "" } else { "s" },
        if cells == 1 { "" } else { "s" }
    );
    if !result.capacity.is_empty() {
        let n = result.capacity.len();
        let what = if n == 1 { "capacity" } else { "capacities" };
        scope.push_str(&format!(" and {n} {what} at the SLO"));
    }
    match counts.is_empty() {
        true => format!("{head} ({scope})"),
        false => format!("{head} ({scope}: {})", counts.join(", ")),
    }
}

/// Which analysis the rows used, and how each computes Δ and p.
fn design(result: &CompareResult, confidence: &str) -> String {
    let designs = (result.rows.iter()).filter_map(|r| Some(&r.comparison.as_ref()?.design));
    match designs.clone().next() {
        None => "Design: no comparison.".into(),
        Some(_) => units::design_method(designs, confidence),
    }
}

fn method(result: &CompareResult) -> String {
    let confidence = units::sig(100.0 * (1.0 - result.alpha), 2);
    format!(
        "Sample = one value per repetition; ± = run-to-run standard deviation. Round r of two runs with one seed and one workload saw the same requests, so such cells are compared round by round. {} p (Holm) over the {} valid comparisons; g = Hedges' g (candidate − baseline, unpaired); MDE = smallest change detectable with 80 % power. Verdicts as defined in README (Statistics, \"Verdicts\") with τ = the noise threshold and α = {}. Percentiles within a repetition: type 7 (linear interpolation, as NumPy).",
        design(result, &confidence),
        result.family,
        units::sig(result.alpha, 3)
            .trim_end_matches('0')
            .trim_end_matches('.')
    )
}

fn row_view(r: &CompareRow) -> RowView {
    let m = &r.metric;
    let dash = || "—".to_string();
    let label = r.verdict.to_string();
    let mut verdict = match r.verdict {
        Verdict::Regression | Verdict::Improvement => format!("**{label}**"),
        _ => label.clone(),
    };
    match (&r.invalid, &r.comparison) {
        (Some(why), _) => verdict.push_str(&format!(" ({why})")),
        (None, Some(c)) => {
            let mde = match (r.verdict, c.mde) {
                (Verdict::Inconclusive, Some(mde)) => {
                    format!(", MDE {}", units::threshold(r.metric, mde))
                }
                _ => String::new(),
            };
            verdict.push_str(&format!(" (τ {}{mde})", units::threshold(r.metric, r.tau)));
        }
        (None, None) => {}
    }
    let Some(c) = &r.comparison else {
        return RowView {
            cell: md(&r.cell),
            metric: m.to_string(),
            n: dash(),
            base: dash(),
            cand: dash(),
            delta: dash(),
            p: dash(),
            p_holm: dash(),
            g: dash(),
            mde: dash(),
            verdict,
            label,
        };
    };
    RowView {
        cell: md(&r.cell),
        metric: m.to_string(),
        n: match c.design {
            crate::stats::Design::Paired { pairs } => {
                format!("{} / {} ({pairs} pairs)", c.baseline.n, c.candidate.n)
            }
            crate::stats::Design::Items { unit, pairs } => {
                let noun = unit.noun(pairs);
                format!("{} / {} ({pairs} {noun})", c.baseline.n, c.candidate.n)
            }
            crate::stats::Design::Unpaired { .. } => {
                format!("{} / {}", c.baseline.n, c.candidate.n)
            }
        },
        base: units::mean_std(*m, &c.baseline),
        cand: units::mean_std(*m, &c.candidate),
        delta: units::change(c, *m),
        p: c.p_value().map_or_else(dash, units::p_value),
        p_holm: r.p_holm.map_or_else(dash, units::p_value),
        g: c.hedges.as_ref().map_or_else(dash, |h| units::signed(h.g)),
        mde: c.mde.map_or_else(dash, |x| units::threshold(*m, x)),
        verdict,
        label,
    }
}
