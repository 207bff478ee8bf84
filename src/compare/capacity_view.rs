//! The capacity rows of a comparison, formatted for `templates/compare.md.j2`: a short table
//! (criterion, both capacities and Δ with their 95 % bootstrap intervals, the verdict) and, for
//! the fold, each search's bisection bracket and every probe of both runs with its attainment
//! CI.

use serde::Serialize;

use super::CompareResult;
use super::capacity::{
    CapacityRow, CapacitySide, change_bound, confident_fail, confident_pass, slo_text,
};
use super::capacity_curve::{BootInterval, Crossing, Pairing};
use super::report::{is_change, md};
use crate::search::{self, ProbeSummary, Status};
use crate::stats::Verdict;
use crate::units;

/// How the capacities and the interval of Δ are computed, for the fold.
pub const METHOD: &str = "Capacity = the load where the probes' mean SLO attainment, made non-increasing in load (isotonic regression weighted by repetitions) and joined linearly between probes, falls below the target; its 95 % interval and that of Δ = candidate / baseline − 1 are percentile intervals over 2000 seeded bootstrap draws of each run's rounds (the same rounds at every probe, as a round's workload is the same at every load; spread so that one probe's interval matches Student's t; a draw whose curve never crosses bounds the capacity on one side only), and the verdict (README, Statistics, \"Verdicts\") is taken on the interval of Δ (capacity: higher is better, τ = `[analysis] thresholds.capacity`).";

/// One capacity row, formatted.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityView {
    /// Whose capacity.
    pub cell: String,
    /// What passing means: `mean attainment ≥ 99 % with ttft ≤ 200 ms`.
    pub criterion: String,
    /// Baseline capacity with its 95 % interval: `11.93 req/s [11.49, 12.65]`.
    pub base: String,
    /// Candidate capacity with its 95 % interval.
    pub cand: String,
    /// Δ with its 95 % interval: `−32.3 % [−39.0 %, −27.5 %]`.
    pub delta: String,
    /// Verdict with τ (bold for regression and improvement), why it is invalid, or what to do.
    pub verdict: String,
    /// The bare verdict label.
    pub label: String,
    /// Verdict is a (possible) regression or improvement.
    pub changed: bool,
    /// Both searches in one line each: bisection bracket, crossing and its draws.
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

/// `[11.49, 12.65]`, `[480, ∞)`.
fn load_interval(i: BootInterval) -> String {
    let n = search::load_number;
    match i.high {
        Some(h) => format!("[{}, {}]", n(i.low), n(h)),
        None => format!("[{}, ∞)", n(i.low)),
    }
}

/// `11.93 req/s [11.49, 12.65]`, `≥ 480 req/s (above the probed range) [480, ∞)`, …
fn capacity_text(s: &CapacitySide) -> String {
    let (o, e) = (&s.outcome, &s.estimate);
    if o.status == Status::Unfinished {
        return "unfinished".into();
    }
    let load = |x| search::load_text(&o.variable, x);
    let point = match e.crossing {
        Crossing::At(x) => load(x),
        Crossing::AboveRange => format!("≥ {} (above the probed range)", load(e.highest)),
        Crossing::BelowRange => format!("< {} (below the probed range)", load(e.lowest)),
    };
    format!("{point} {}", load_interval(e.interval))
}

/// The search's bisection bracket: `[11.65, 12.04)`, `≥ 480`, `< 0.3125`.
fn bracket_text(s: &CapacitySide) -> String {
    let o = &s.outcome;
    let n = search::load_number;
    match (o.capacity, o.first_failing) {
        (Some(c), Some(f)) => format!("[{}, {})", n(c), n(f)),
        (Some(c), None) => format!("≥ {}", n(c)),
        (None, Some(f)) => format!("< {}", n(f)),
        (None, None) => "none".into(),
    }
}

/// `[+200 %, +∞)` or `[−89.6 %, −66.7 %]`.
fn interval_text(i: BootInterval) -> String {
    match i.high {
        Some(h) => format!(
            "[{}, {}]",
            units::signed_percent(i.low),
            units::signed_percent(h)
        ),
        None => format!("[{}, +∞)", units::signed_percent(i.low)),
    }
}

/// Δ with its interval (`—` when invalid); a bound (`≤ −20 %`) when a capacity is outside
/// its probed range.
pub fn delta_text(r: &CapacityRow) -> String {
    let Some(interval) = r.interval else {
        return "—".into();
    };
    let (b, c) = (&r.baseline.estimate, &r.candidate.estimate);
    let point = match (r.change, r.exact, change_bound(b, c)) {
        (Some(d), true, _) => units::signed_percent(d),
        (Some(d), false, Some(true)) => format!("≥ {}", units::signed_percent(d)),
        (Some(d), false, Some(false)) => format!("≤ {}", units::signed_percent(d)),
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
        "add `search.repetitions` to both searches: the interval narrows about as 1 / √repetitions"
            .into()
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
    let (o, e) = (&s.outcome, &s.estimate);
    let mut text = format!(
        "{name} ({}): bisection bracket {}; curve crossing {}",
        o.status.as_str(),
        bracket_text(s),
        capacity_text(s)
    );
    let outside: Vec<String> = [
        (e.above_range_draws, "never fell below the target"),
        (e.below_range_draws, "started below it"),
    ]
    .iter()
    .filter(|(k, _)| *k > 0)
    .map(|(k, what)| format!("{k} {what}"))
    .collect();
    let unit = match e.pairing {
        Pairing::ByRound => "whole rounds",
        Pairing::Independent => "each probe's repetitions",
    };
    text.push_str(&format!("; {} bootstrap draws of {unit}", e.draws));
    if !outside.is_empty() {
        text.push_str(&format!(" ({})", outside.join(", ")));
    }
    if !o.non_monotone.is_empty() {
        let loads: Vec<String> = o
            .non_monotone
            .iter()
            .map(|x| search::load_number(*x))
            .collect();
        text.push_str(&format!(
            "; attainment did not fall monotonically ({} passed above a failing load; the curve pools them)",
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
