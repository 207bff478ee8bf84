//! The capacity at the SLO of two `[search]` runs, baseline against candidate (issue 5).
//!
//! The bisections of two searches probe different loads, so their probes share few cells and
//! the cell-by-cell comparison sees little. What they share is the answer: for every searched
//! cell (the swept variables other than the load, matched as [`super::match_cells`] matches
//! cells) present in both runs, a [`CapacityRow`] compares the capacities.
//!
//! **Point estimate.** Δ̂ = candidate capacity / baseline capacity − 1, capacity = the highest
//! load whose mean attainment meets the target below every failing one ([`search::outcome`]).
//!
//! **Interval.** Each run's capacity lies in its *confident bracket* [lo, hi): hi = the lowest
//! load whose 95 % attainment CI lies wholly below the target (unbounded when none), lo = the
//! highest load at or below the capacity whose CI lies wholly at or above it (0 when none). A
//! probe with n < 2 has no CI and counts by its mean. Under the search's own assumption
//! (attainment falls as load rises), a run's true capacity is in [lo, hi) unless one of the two
//! probes' CIs misses, so the bracket carries both the bisection's resolution (it contains
//! [capacity, first failing)) and probe noise. The change then lies in
//! [cand_lo / base_hi − 1, cand_hi / base_lo − 1] (an unbounded end stays unbounded).
//!
//! **Verdict** (statistics.md §2.6 labels; capacity is higher-is-better, τ = `[analysis]
//! thresholds.capacity`, default [`DEFAULT_TAU`]): the interval above +τ → `improvement`,
//! below −τ → `regression`; excluding 0 with |Δ̂| ≤ τ → `within noise`, with |Δ̂| > τ (or Δ̂ not
//! a point estimate) → `possible improvement` / `possible regression`; containing 0 inside
//! ±τ → `no change`, reaching beyond ±τ → `inconclusive`. `invalid` when a search is
//! unfinished, both capacities are below the searched ranges, or the criteria differ (load
//! variable, target, `[slo]` bounds): a capacity under other SLOs is another quantity.
//! Δ̂ is a point estimate only when both searches converged; an `above_range` capacity is a
//! lower bound (hi unbounded), a `below_range` one is only bounded above (lo = 0).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use crate::analysis::{CellResults, cell_label, rep_values};
use crate::scenario::model::{Analysis, CAPACITY_THRESHOLD, SearchSpec, Vars};
use crate::search::{self, Outcome, Probe, ProbeSummary, Status};
use crate::stats::Verdict;
use crate::units;

/// Default τ of the capacity: the default `search.tolerance`. A search resolves its capacity
/// only to within its bracket, so a smaller τ would call bracket-width differences changes;
/// and a bracket as wide as τ leaves no room for `no change`, which needs a tolerance of about
/// τ / 2 or less.
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
    pub slo: &'a BTreeMap<String, Duration>,
}

/// Where a run's capacity lies with confidence, from the probes whose CIs clear the target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ConfidentBracket {
    /// Highest load at or below the capacity whose attainment CI lies at or above the target;
    /// 0 when none.
    pub low: f64,
    /// Lowest load whose attainment CI lies below the target; `None`: unbounded.
    pub high: Option<f64>,
}

/// One run's side of a capacity row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapacitySide {
    /// The search's answer, with every probe.
    pub outcome: Outcome,
    /// The `[slo]` bounds attainment was measured against.
    pub slo: BTreeMap<String, Duration>,
    /// Where the capacity lies with confidence.
    pub confident: ConfidentBracket,
}

/// The interval of the relative change Δ of the capacity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ChangeInterval {
    /// Lower end (≥ −1).
    pub low: f64,
    /// Upper end; `None`: unbounded.
    pub high: Option<f64>,
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
    /// candidate / baseline − 1 of the capacities, when both have one (a bound, not a point
    /// estimate, unless `exact`).
    pub change: Option<f64>,
    /// Both searches converged: `change` is a point estimate.
    pub exact: bool,
    /// The interval of the change; `None` when the row is invalid.
    pub interval: Option<ChangeInterval>,
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
    let tau = settings
        .thresholds
        .get(CAPACITY_THRESHOLD)
        .copied()
        .unwrap_or(DEFAULT_TAU);
    let names: BTreeSet<String> = base_names(bs, baseline.cells)
        .union(&base_names(cs, candidate.cells))
        .cloned()
        .collect();
    let base = searched(bs, baseline.cells, &names);
    let cand = searched(cs, candidate.cells, &names);
    let mut out = CapacityComparison::default();
    for (label, probes) in &cand {
        let Some((_, base_probes)) = base.iter().find(|(l, _)| l == label) else {
            out.notes.push(format!(
                "the capacity of `{label}` is in the candidate only"
            ));
            continue;
        };
        let b = side(search::outcome(bs, label, base_probes), baseline.slo);
        let c = side(search::outcome(cs, label, probes), candidate.slo);
        out.rows.push(row(label, b, c, tau));
    }
    for (label, _) in base
        .iter()
        .filter(|(l, _)| !cand.iter().any(|(c, _)| c == l))
    {
        out.notes
            .push(format!("the capacity of `{label}` is in the baseline only"));
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

/// The probes of every searched cell, keyed by the cell's values of `names`.
fn searched(
    spec: &SearchSpec,
    cells: &[CellResults],
    names: &BTreeSet<String>,
) -> Vec<(String, Vec<Probe>)> {
    let mut out: Vec<(String, Vec<Probe>)> = Vec::new();
    for cell in cells {
        let Some(load) = cell.swept.get(&spec.variable).and_then(|v| v.as_f64()) else {
            continue;
        };
        let attainment = rep_values(cell, "slo_attainment");
        if attainment.is_empty() {
            continue;
        }
        let key: Vars = cell
            .vars
            .iter()
            .filter(|(k, _)| names.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let label = cell_label(&key);
        let probe = Probe { load, attainment };
        match out.iter_mut().find(|(l, _)| *l == label) {
            Some((_, probes)) => probes.push(probe),
            None => out.push((label, vec![probe])),
        }
    }
    out
}

fn side(outcome: Outcome, slo: &BTreeMap<String, Duration>) -> CapacitySide {
    CapacitySide {
        confident: confident_bracket(&outcome),
        outcome,
        slo: slo.clone(),
    }
}

/// The probe's attainment CI lies at or above `target` (its mean does, without a CI).
pub(super) fn confident_pass(p: &ProbeSummary, target: f64) -> bool {
    p.ci.map_or(p.passed, |(low, _)| low >= target - EPS)
}

/// The probe's attainment CI lies below `target` (its mean does, without a CI).
pub(super) fn confident_fail(p: &ProbeSummary, target: f64) -> bool {
    p.ci.map_or(!p.passed, |(_, high)| high < target - EPS)
}

/// The confident bracket of a search (see the module header).
pub fn confident_bracket(o: &Outcome) -> ConfidentBracket {
    let high = o
        .probes
        .iter()
        .filter(|p| confident_fail(p, o.target))
        .map(|p| p.load)
        .reduce(f64::min);
    let low = o
        .probes
        .iter()
        .filter(|p| confident_pass(p, o.target) && o.capacity.is_some_and(|c| p.load <= c))
        .map(|p| p.load)
        .reduce(f64::max)
        .unwrap_or(0.0);
    ConfidentBracket { low, high }
}

/// The interval of candidate / baseline − 1 from the two confident brackets.
pub fn change_interval(base: ConfidentBracket, cand: ConfidentBracket) -> ChangeInterval {
    let low = base.high.map_or(-1.0, |h| cand.low / h - 1.0);
    let high = cand
        .high
        .filter(|_| base.low > 0.0)
        .map(|h| h / base.low - 1.0);
    ChangeInterval { low, high }
}

/// The verdict of an interval (capacity: higher is better); `change` only when it is a point
/// estimate.
pub fn verdict(change: Option<f64>, interval: ChangeInterval, tau: f64) -> Verdict {
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
pub fn slo_text(slo: &BTreeMap<String, Duration>) -> String {
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

fn row(label: &str, b: CapacitySide, c: CapacitySide, tau: f64) -> CapacityRow {
    let shared_loads = b
        .outcome
        .probes
        .iter()
        .filter(|p| c.outcome.probes.iter().any(|q| q.load == p.load))
        .map(|p| p.load)
        .collect();
    let change = b
        .outcome
        .capacity
        .zip(c.outcome.capacity)
        .map(|(bc, cc)| cc / bc - 1.0);
    let exact = b.outcome.status == Status::Converged && c.outcome.status == Status::Converged;
    let invalid = invalid_reason(&b, &c);
    let interval = invalid
        .is_none()
        .then(|| change_interval(b.confident, c.confident));
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
