//! The capacity at the SLO of two `[search]` runs, baseline against candidate (issue 5).
//!
//! The bisections of two searches probe different loads, so their probes share few cells and
//! the cell-by-cell comparison sees little. What they share is the answer: for every searched
//! cell (the swept variables other than the load, matched as [`super::match_cells`] matches
//! cells) present in both runs, a [`CapacityRow`] compares the capacities.
//!
//! **Estimate.** Each run's capacity is where its monotone mean-attainment curve crosses the
//! target, with a 95 % bootstrap interval over its repetitions ([`capacity_curve`]: isotonic
//! regression, linear interpolation in load, 2000 seeded draws). Δ̂ = candidate / baseline − 1
//! of the two crossings; its interval is the percentile interval of Δ over the two runs'
//! independent draws. A draw or a run whose curve never crosses bounds its capacity on one side
//! only ([highest probe, ∞) or [0, lowest probe)), and Δ takes the bound on each side, so an
//! end is unbounded (or −100 %) when more than 2.5 % of the draws leave it so. The search's
//! own bracket [highest passing load, lowest failing load) stays in the report: it is what the
//! bisection measured, and the crossing of the probes' means lies in it or next to it.
//!
//! **Verdict** (statistics.md §2.6 labels; capacity is higher-is-better, τ = `[analysis]
//! thresholds.capacity`, default [`DEFAULT_TAU`]): the interval above +τ → `improvement`,
//! below −τ → `regression`; excluding 0 with |Δ̂| ≤ τ → `within noise`, with |Δ̂| > τ (or Δ̂ not
//! a point estimate) → `possible improvement` / `possible regression`; containing 0 inside
//! ±τ → `no change`, reaching beyond ±τ → `inconclusive`. `invalid` when a search is
//! unfinished, both capacities are below the searched ranges, or the criteria differ (load
//! variable, target, `[slo]` bounds): a capacity under other SLOs is another quantity.
//! Δ̂ is a point estimate only when both curves cross inside their probed ranges.
//!
//! What the interval leaves out: where the curve runs between two probes. Linear interpolation
//! is exact only for a straight curve; with probes a bisection tolerance apart the error is a
//! fraction of that tolerance, which is why τ defaults to it. The straight lines are also where
//! the power comes from: with each draw's crossing anywhere between its two probes (monotonicity
//! alone), the 16- against 12-sequence pair of `tests/compare_capacity.rs` reads
//! `inconclusive` again, Δ ∈ [−54 %, +125 %].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use super::capacity_curve::{self, BootInterval, Bounds, CapacityEstimate, Crossing};
use crate::analysis::{CellResults, cell_label};
use crate::metrics::Metric;
use crate::scenario::model::{Analysis, SearchSpec, Vars};
use crate::search::{self, Outcome, Probe, ProbeSummary, Status};
use crate::stats::Verdict;
use crate::units;

/// Default τ of the capacity: the default `search.tolerance`. The interval carries repetition
/// noise, not the shape of the curve between probes a tolerance apart, so a smaller τ could
/// call interpolation differences changes.
pub const DEFAULT_TAU: f64 = 0.05;

/// Slack for attainments that equal the target in decimals but not in binary (as
/// [`search::Probe::passed`]).
const EPS: f64 = 1e-9;

/// What the capacity comparison reads of one run.
#[derive(Debug, Clone, Copy)]
pub struct SearchRun<'a> {
    /// The run's cell results (its probes, for a search run).
    pub cells: &'a [CellResults],
    /// Its `[search]`, `None` for an ordinary run.
    pub search: Option<&'a SearchSpec>,
    /// Its `[slo]` bounds.
    pub slo: &'a BTreeMap<Metric, Duration>,
}

/// One run's side of a capacity row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapacitySide {
    /// The search's answer, with every probe.
    pub outcome: Outcome,
    /// The `[slo]` bounds attainment was measured against.
    pub slo: BTreeMap<Metric, Duration>,
    /// The crossing of its attainment curve, with its bootstrap interval.
    pub estimate: CapacityEstimate,
}

/// The capacities of one searched cell in both runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapacityRow {
    /// Whose capacity: the swept variables other than the load (`default` when none).
    pub cell: String,
    /// The baseline's search.
    pub baseline: CapacitySide,
    /// The candidate's search.
    pub candidate: CapacitySide,
    /// candidate / baseline − 1 of the crossings: a point estimate when `exact`, else the
    /// bound that [`change_bound`] describes; `None` when neither side bounds it.
    pub change: Option<f64>,
    /// Both curves cross inside their probed ranges: `change` is a point estimate.
    pub exact: bool,
    /// The 95 % bootstrap interval of the change; `None` when the row is invalid.
    pub interval: Option<BootInterval>,
    /// Noise threshold τ (fraction).
    pub tau: f64,
    /// The verdict of statistics.md §2.6.
    pub verdict: Verdict,
    /// Why the verdict is `invalid`.
    pub invalid: Option<String>,
    /// The searches' criteria differ (load variable, target or `[slo]`): not comparable.
    pub criteria_differ: bool,
    /// Loads both runs probed (they are also compared as ordinary cells).
    pub shared_loads: Vec<f64>,
}

/// Every capacity row of two runs, and what could not be compared.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct CapacityComparison {
    /// One row per searched cell present in both runs, in the candidate's order.
    pub rows: Vec<CapacityRow>,
    /// Facts: a run that is no search, searched cells in one run only.
    pub notes: Vec<String>,
}

/// Compares the capacities of every searched cell of `baseline` and `candidate`, τ from
/// `settings` (the candidate's `[analysis]`).
pub fn compare(
    baseline: SearchRun,
    candidate: SearchRun,
    settings: &Analysis,
) -> CapacityComparison {
    let (bs, cs) = match (baseline.search, candidate.search) {
        (Some(b), Some(c)) => (b, c),
        (None, None) => return CapacityComparison::default(),
        (b, _) => {
            let side = if b.is_some() { "baseline" } else { "candidate" };
            let note = format!(
                "only the {side} is a [search] run: there is no capacity at the SLO to compare"
            );
            return CapacityComparison {
                rows: vec![],
                notes: vec![note],
            };
        }
    };
    let tau = settings.capacity_threshold.unwrap_or(DEFAULT_TAU);
    let names: BTreeSet<String> = base_names(bs, baseline.cells)
        .union(&base_names(cs, candidate.cells))
        .cloned()
        .collect();
    let base = searched(bs, baseline.cells, &names);
    let cand = searched(cs, candidate.cells, &names);
    let mut out = CapacityComparison::default();
    for c in &cand {
        let label = &c.label;
        let Some(b) = base.iter().find(|b| b.label == *label) else {
            out.notes.push(format!(
                "the capacity of `{label}` is in the candidate only"
            ));
            continue;
        };
        let b = side(bs, b, baseline.slo, "baseline");
        let c = side(cs, c, candidate.slo, "candidate");
        // `searched` yields no cell without a probe, so both sides have an estimate.
        if let (Some(b), Some(c)) = (b, c) {
            out.rows.push(row(label, b, c, tau));
        }
    }
    for b in base
        .iter()
        .filter(|b| !cand.iter().any(|c| c.label == b.label))
    {
        out.notes.push(format!(
            "the capacity of `{}` is in the baseline only",
            b.label
        ));
    }
    out
}

/// The swept variables of a search run other than its load variable.
fn base_names(spec: &SearchSpec, cells: &[CellResults]) -> BTreeSet<String> {
    cells
        .iter()
        .flat_map(|c| c.swept.keys())
        .filter(|k| **k != spec.variable)
        .cloned()
        .collect()
}

/// The probes of one searched cell, each probe's repetitions in round order.
struct Searched {
    label: String,
    probes: Vec<Probe>,
    /// The rounds of each probe's repetitions.
    rounds: Vec<Vec<u32>>,
}

/// The probes of every searched cell, keyed by the cell's values of `names`.
fn searched(spec: &SearchSpec, cells: &[CellResults], names: &BTreeSet<String>) -> Vec<Searched> {
    let mut out: Vec<Searched> = Vec::new();
    for cell in cells {
        let Some(load) = cell.swept.get(&spec.variable).and_then(|v| v.as_f64()) else {
            continue;
        };
        let mut reps: Vec<(u32, f64)> = cell
            .reps
            .iter()
            .filter_map(|r| {
                Some((
                    r.round,
                    *r.summary.values.get(&Metric::SloAttainment.key())?,
                ))
            })
            .collect();
        if reps.is_empty() {
            continue;
        }
        reps.sort_by_key(|(round, _)| *round);
        let key: Vars = cell
            .vars
            .iter()
            .filter(|(k, _)| names.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let label = cell_label(&key);
        let probe = Probe {
            load,
            attainment: reps.iter().map(|(_, a)| *a).collect(),
        };
        let rounds = reps.iter().map(|(r, _)| *r).collect();
        match out.iter_mut().find(|s| s.label == label) {
            Some(s) => {
                s.probes.push(probe);
                s.rounds.push(rounds);
            }
            None => out.push(Searched {
                label,
                probes: vec![probe],
                rounds: vec![rounds],
            }),
        }
    }
    out
}

/// One run's side, with the bounds of every bootstrap draw.
fn side(
    spec: &SearchSpec,
    cell: &Searched,
    slo: &BTreeMap<Metric, Duration>,
    name: &str,
) -> Option<(CapacitySide, Vec<Bounds>)> {
    let seed = capacity_curve::seed(&cell.label, name);
    let pairing = capacity_curve::pairing(&cell.rounds);
    let (estimate, draws) = capacity_curve::estimate(
        &cell.probes,
        pairing,
        spec.target,
        seed,
        capacity_curve::DRAWS,
    )?;
    let side = CapacitySide {
        outcome: search::outcome(spec, &cell.label, &cell.probes),
        slo: slo.clone(),
        estimate,
    };
    Some((side, draws))
}

/// The probe's attainment CI lies at or above `target` (its mean does, without a CI).
pub(super) fn confident_pass(p: &ProbeSummary, target: f64) -> bool {
    p.ci.map_or(p.passed, |(low, _)| low >= target - EPS)
}

/// The probe's attainment CI lies below `target` (its mean does, without a CI).
pub(super) fn confident_fail(p: &ProbeSummary, target: f64) -> bool {
    p.ci.map_or(!p.passed, |(_, high)| high < target - EPS)
}

/// Which way a non-exact `change` bounds Δ: `Some(true)` for Δ ≥ change (the baseline's
/// capacity is an upper bound or the candidate's a lower one), `Some(false)` for Δ ≤ change,
/// `None` when it is a point estimate (or no bound).
pub fn change_bound(base: &CapacityEstimate, cand: &CapacityEstimate) -> Option<bool> {
    use Crossing::{AboveRange, At, BelowRange};
    match (base.crossing, cand.crossing) {
        (At(_), AboveRange) | (BelowRange, At(_)) => Some(true),
        (AboveRange, At(_)) | (At(_), BelowRange) => Some(false),
        _ => None,
    }
}

/// Δ̂ from the two estimates: a point, a one-sided bound (see [`change_bound`]), or `None`.
fn change(base: &CapacityEstimate, cand: &CapacityEstimate) -> Option<f64> {
    let (b, c) = (base.bounds(), cand.bounds());
    match (base.crossing, cand.crossing) {
        (Crossing::At(bx), Crossing::At(cx)) => Some(cx / bx - 1.0),
        _ => match change_bound(base, cand)? {
            true => Some(c.low / b.high - 1.0),
            false => Some(c.high / b.low - 1.0),
        },
    }
}

/// The verdict of an interval (capacity: higher is better); `change` only when it is a point
/// estimate.
pub fn verdict(change: Option<f64>, interval: BootInterval, tau: f64) -> Verdict {
    let (low, high) = (interval.low, interval.high.unwrap_or(f64::INFINITY));
    if low > tau {
        Verdict::Improvement
    } else if high < -tau {
        Verdict::Regression
    } else if low > 0.0 || high < 0.0 {
        match change {
            Some(d) if d.abs() <= tau => Verdict::WithinNoise,
            _ if low > 0.0 => Verdict::PossibleImprovement,
            _ => Verdict::PossibleRegression,
        }
    } else if low > -tau && high < tau {
        Verdict::NoChange
    } else {
        Verdict::Inconclusive
    }
}

/// How the two searches' criteria differ, in words; `None` when they agree.
fn criteria_difference(b: &CapacitySide, c: &CapacitySide) -> Option<String> {
    let (bo, co) = (&b.outcome, &c.outcome);
    let mut out = Vec::new();
    if bo.variable != co.variable {
        out.push(format!(
            "the load variables differ (`{}` vs `{}`)",
            bo.variable, co.variable
        ));
    }
    if (bo.target - co.target).abs() > EPS {
        out.push(format!(
            "the attainment targets differ ({} vs {})",
            units::percent(bo.target),
            units::percent(co.target)
        ));
    }
    if b.slo != c.slo {
        out.push(format!(
            "the [slo] bounds differ ({} vs {})",
            slo_text(&b.slo),
            slo_text(&c.slo)
        ));
    }
    (!out.is_empty()).then(|| {
        format!(
            "the searches' criteria differ: {}; a capacity under different SLOs is not comparable",
            out.join(", ")
        )
    })
}

/// `ttft ≤ 200 ms and tpot ≤ 50 ms`.
pub fn slo_text(slo: &BTreeMap<Metric, Duration>) -> String {
    let bounds: Vec<String> = slo
        .iter()
        .map(|(m, d)| format!("{m} ≤ {}", units::seconds(d.as_secs_f64())))
        .collect();
    if bounds.is_empty() {
        "none".into()
    } else {
        bounds.join(" and ")
    }
}

/// Why the capacities cannot be compared, or `None`.
fn invalid_reason(b: &CapacitySide, c: &CapacitySide) -> Option<String> {
    if let Some(why) = criteria_difference(b, c) {
        return Some(why);
    }
    let (bs, cs) = (b.outcome.status, c.outcome.status);
    for (name, s) in [("baseline", bs), ("candidate", cs)] {
        if s == Status::Unfinished {
            return Some(format!(
                "the {name} search is unfinished (continue it with `exp run --resume`)"
            ));
        }
    }
    (bs == Status::BelowRange && cs == Status::BelowRange)
        .then(|| "both capacities are below the searched ranges (lower `search.low`)".to_string())
}

fn row(
    label: &str,
    (b, b_draws): (CapacitySide, Vec<Bounds>),
    (c, c_draws): (CapacitySide, Vec<Bounds>),
    tau: f64,
) -> CapacityRow {
    let shared_loads = b
        .outcome
        .probes
        .iter()
        .filter(|p| c.outcome.probes.iter().any(|q| q.load == p.load))
        .map(|p| p.load)
        .collect();
    let change = change(&b.estimate, &c.estimate);
    let exact = matches!(
        (b.estimate.crossing, c.estimate.crossing),
        (Crossing::At(_), Crossing::At(_))
    );
    let invalid = invalid_reason(&b, &c);
    let interval = invalid
        .is_none()
        .then(|| capacity_curve::change_interval(&b_draws, &c_draws))
        .flatten();
    let verdict = interval.map_or(Verdict::Invalid, |i| {
        verdict(change.filter(|_| exact), i, tau)
    });
    CapacityRow {
        cell: label.to_string(),
        criteria_differ: criteria_difference(&b, &c).is_some(),
        baseline: b,
        candidate: c,
        change,
        exact,
        interval,
        tau,
        verdict,
        invalid,
        shared_loads,
    }
}
