//! The capacity rows of a comparison, formatted for `templates/compare.md.j2`: a short table
//! (criterion, both capacities with their brackets, Δ with its interval, the verdict) and,
//! for the fold, every probe of both runs with its attainment CI.

use serde::Serialize;

use super::CompareResult;
use super::capacity::{
    CapacityRow, CapacitySide, ChangeInterval, confident_fail, confident_pass, slo_text,
};
use super::report::{is_change, md};
use crate::search::{self, ProbeSummary, Status};
use crate::stats::Verdict;
use crate::units;

/// How the capacity interval is computed, for the fold.
pub const METHOD: &str = "Capacity = the highest load whose mean SLO attainment meets the target below every failing load; [a, b) = the search's bracket (b = the lowest failing load). Δ = candidate / baseline − 1 of the capacities. Its interval comes from each run's confident bracket [lo, hi): hi = the lowest load whose 95 % attainment CI lies wholly below the target, lo = the highest load at or below the capacity whose CI lies wholly at or above it (0 when none, unbounded when no probe fails confidently); Δ ∈ [cand lo / base hi − 1, cand hi / base lo − 1]. Verdicts follow statistics.md §2.6 on that interval (capacity: higher is better), τ = `[analysis] thresholds.capacity`.";

/// One capacity row, formatted.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityView {
    /// Whose capacity.
    pub cell: String,
    /// What passing means: `mean attainment ≥ 99 % with ttft ≤ 200 ms`.
    pub criterion: String,
    /// Baseline capacity with its bracket: `13.21 req/s [13.21, 13.6)`.
    pub base: String,
    /// Candidate capacity with its bracket.
    pub cand: String,
    /// Δ with its interval: `−29.6 % [−72.9 %, +55.6 %]`.
    pub delta: String,
    /// Verdict with τ (bold for regression and improvement), why it is invalid, or what to do.
    pub verdict: String,
    /// The bare verdict label.
    pub label: String,
    /// Verdict is a (possible) regression or improvement.
    pub changed: bool,
    /// Both searches in one line each, with their confident brackets.
    pub sides: Vec<String>,
    /// Every probe of both runs, baseline first, by load.
    pub probes: Vec<CapacityProbeView>,
}

/// One probe of one run.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityProbeView {
    /// `baseline` or `candidate`.
    pub run: String,
    /// Load with its unit.
    pub load: String,
    /// Repetitions.
    pub n: usize,
    /// Mean SLO attainment.
    pub attainment: String,
    /// 95 % CI of the mean attainment.
    pub ci: String,
    /// `confident pass`, `pass`, `fail` or `confident fail` (CI wholly on one side).
    pub result: String,
}

/// The views of every capacity row.
pub fn views(result: &CompareResult) -> Vec<CapacityView> {
    result.capacity.iter().map(view).collect()
}

/// Cautions: capacities whose criteria differ.
pub fn cautions(result: &CompareResult) -> Vec<String> {
    result
        .capacity
        .iter()
        .filter(|r| r.criteria_differ)
        .filter_map(|r| {
            let why = r.invalid.as_deref()?;
            Some(format!("capacity at the SLO of `{}`: {why}", md(&r.cell)))
        })
        .collect()
}

/// Notes: what was not compared, and probes both runs made.
pub fn notes(result: &CompareResult) -> Vec<String> {
    let mut out: Vec<String> = result.capacity_notes.iter().map(|n| md(n)).collect();
    for r in result
        .capacity
        .iter()
        .filter(|r| !r.shared_loads.is_empty())
    {
        let variable = &r.candidate.outcome.variable;
        let loads: Vec<String> = r
            .shared_loads
            .iter()
            .map(|x| search::load_text(variable, *x))
            .collect();
        out.push(format!(
            "both searches of `{}` probed {}: those probes are also compared as ordinary cells",
            md(&r.cell),
            loads.join(", ")
        ));
    }
    out
}

fn view(r: &CapacityRow) -> CapacityView {
    let (b, c) = (&r.baseline, &r.candidate);
    let criterion = if r.criteria_differ {
        format!("baseline: {}; candidate: {}", criterion(b), criterion(c))
    } else {
        criterion(c)
    };
    let mut probes: Vec<CapacityProbeView> = Vec::new();
    for (name, s) in [("baseline", b), ("candidate", c)] {
        probes.extend(s.outcome.probes.iter().map(|p| probe(name, s, p)));
    }
    CapacityView {
        cell: md(&r.cell),
        criterion: md(&criterion),
        base: capacity_text(b),
        cand: capacity_text(c),
        delta: delta_text(r),
        verdict: verdict_text(r),
        label: r.verdict.to_string(),
        changed: is_change(r.verdict),
        sides: vec![side_text("baseline", b), side_text("candidate", c)],
        probes,
    }
}

fn criterion(s: &CapacitySide) -> String {
    format!(
        "mean attainment ≥ {} with {}",
        units::percent(s.outcome.target),
        slo_text(&s.slo)
    )
}

/// `13.21 req/s [13.21, 13.6)`, `≥ 320 req/s (above the searched range)`, …
fn capacity_text(s: &CapacitySide) -> String {
    let o = &s.outcome;
    match (o.status, o.capacity, o.first_failing) {
        (Status::Converged, Some(c), Some(f)) => format!(
            "{} [{}, {})",
            search::load_text(&o.variable, c),
            search::load_number(c),
            search::load_number(f)
        ),
        (Status::AboveRange, Some(c), _) => format!(
            "≥ {} (above the searched range)",
            search::load_text(&o.variable, c)
        ),
        (Status::BelowRange, _, Some(f)) => format!(
            "< {} (below the searched range)",
            search::load_text(&o.variable, f)
        ),
        _ => "unfinished".into(),
    }
}

/// `[+200 %, +∞)` or `[−89.6 %, −66.7 %]`.
fn interval_text(i: ChangeInterval) -> String {
    match i.high {
        Some(h) => format!(
            "[{}, {}]",
            units::signed_percent(i.low),
            units::signed_percent(h)
        ),
        None => format!("[{}, +∞)", units::signed_percent(i.low)),
    }
}

/// Δ with its interval (`—` when invalid); a bound (`≤ −20 %`) when a capacity is above range.
pub fn delta_text(r: &CapacityRow) -> String {
    let Some(interval) = r.interval else {
        return "—".into();
    };
    let (bs, cs) = (r.baseline.outcome.status, r.candidate.outcome.status);
    // An above-range capacity is a lower bound, so Δ is bounded on one side only.
    let point = match (r.change, bs, cs) {
        (Some(d), _, _) if r.exact => units::signed_percent(d),
        (Some(d), Status::AboveRange, Status::Converged) => {
            format!("≤ {}", units::signed_percent(d))
        }
        (Some(d), Status::Converged, Status::AboveRange) => {
            format!("≥ {}", units::signed_percent(d))
        }
        _ => "—".into(),
    };
    format!("{point} {}", interval_text(interval))
}

/// What would sharpen an unresolved comparison.
fn advice(r: &CapacityRow) -> String {
    let statuses = [r.baseline.outcome.status, r.candidate.outcome.status];
    if statuses.contains(&Status::AboveRange) {
        "raise `search.high`: an above-range capacity is only a lower bound".into()
    } else if statuses.contains(&Status::BelowRange) {
        "lower `search.low`: a below-range capacity is only an upper bound".into()
    } else {
        format!(
            "add `search.repetitions` so the probes' CIs clear the target, or narrow `search.tolerance` to {} or less",
            units::percent(r.tau / 2.0)
        )
    }
}

fn verdict_text(r: &CapacityRow) -> String {
    let label = r.verdict.to_string();
    let tau = units::percent(r.tau);
    match r.verdict {
        Verdict::Invalid => format!("{label} ({})", r.invalid.as_deref().unwrap_or("")),
        Verdict::Regression | Verdict::Improvement => format!("**{label}** (τ {tau})"),
        Verdict::Inconclusive | Verdict::PossibleRegression | Verdict::PossibleImprovement => {
            format!("{label} (τ {tau}; {})", advice(r))
        }
        _ => format!("{label} (τ {tau})"),
    }
}

fn side_text(name: &str, s: &CapacitySide) -> String {
    let o = &s.outcome;
    let n = |x: f64| search::load_number(x);
    let hi = s.confident.high.map_or("∞".into(), n);
    let mut text = format!(
        "{name} ({}): {}; confident bracket [{}, {hi})",
        o.status.as_str(),
        capacity_text(s),
        n(s.confident.low)
    );
    if !o.non_monotone.is_empty() {
        let loads: Vec<String> = o.non_monotone.iter().map(|x| n(*x)).collect();
        text.push_str(&format!(
            "; attainment did not fall monotonically ({} passed above a failing load)",
            loads.join(", ")
        ));
    }
    text
}

fn probe(run: &str, s: &CapacitySide, p: &ProbeSummary) -> CapacityProbeView {
    let target = s.outcome.target;
    let result = match (p.ci, p.passed) {
        (None, true) => "pass (n < 2, counted as confident)",
        (None, false) => "fail (n < 2, counted as confident)",
        (_, true) if confident_pass(p, target) => "confident pass",
        (_, true) => "pass",
        (_, false) if confident_fail(p, target) => "confident fail",
        (_, false) => "fail",
    };
    CapacityProbeView {
        run: run.into(),
        load: search::load_text(&s.outcome.variable, p.load),
        n: p.n,
        attainment: percent4(p.mean),
        ci: p.ci.map_or("—".into(), |(l, h)| {
            format!("[{}, {}]", percent4(l), percent4(h))
        }),
        result: result.into(),
    }
}

/// Attainment with four significant digits: 98.99 % must not read as 99.0 %.
fn percent4(x: f64) -> String {
    format!("{} %", units::sig(100.0 * x, 4))
}
