//! Capacity at the SLO (`[search]`): the highest load at which the mean SLO attainment stays
//! at or above the target, found by bracketing and bisection over the load variable.
//!
//! Pure and stateless: [`next_probe`] decides from the finished probes alone (so a resumed
//! search continues where it stopped), and [`outcome`] turns the same probes into the answer
//! with its uncertainty — the bracket [highest passing load, lowest failing load above it] and
//! the attainment CI of every probe. The search trusts attainment to fall as load rises; a
//! probe that contradicts that is reported, not hidden.

use serde::Serialize;

use crate::analysis::{CellResults, cell_label, rep_values};
use crate::metrics::Metric;
use crate::scenario::model::{SearchSpec, Vars};
use crate::stats;

/// How many times the search may halve below `low` or double above `high`.
pub const MAX_WIDEN: i32 = 4;

/// A finished probe: a load and its per-repetition SLO attainment.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// Value of the load variable.
    pub load: f64,
    /// SLO attainment of each repetition (fractions).
    pub attainment: Vec<f64>,
}

impl Probe {
    fn mean(&self) -> f64 {
        self.attainment.iter().sum::<f64>() / self.attainment.len().max(1) as f64
    }

    /// Mean attainment meets the target. Attainments are ratios of counts, so a mean that
    /// equals the target in decimals (0.995, 0.99, 0.985 → 0.99) may fall a rounding error
    /// short of it in binary; that counts as meeting it.
    pub fn passed(&self, spec: &SearchSpec) -> bool {
        self.mean() >= spec.target - 1e-9
    }
}

/// Where the search stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The bracket is within tolerance.
    Converged,
    /// Even the smallest load tried misses the target.
    BelowRange,
    /// The largest load allowed still meets the target.
    AboveRange,
    /// More probes were due (the run was interrupted).
    Unfinished,
}

impl Status {
    /// The snake-case name (`converged`, `below_range`, …), as in `summary.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Converged => "converged",
            Status::BelowRange => "below_range",
            Status::AboveRange => "above_range",
            Status::Unfinished => "unfinished",
        }
    }
}

/// One probe as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeSummary {
    /// Load.
    pub load: f64,
    /// Repetitions.
    pub n: usize,
    /// Mean SLO attainment.
    pub mean: f64,
    /// 95 % Student-t CI of the mean attainment (clamped to [0, 1]); `None` with n < 2.
    pub ci: Option<(f64, f64)>,
    /// Mean ≥ target.
    pub passed: bool,
}

/// The answer of one search.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The swept variables other than the load (`default` when none): whose capacity.
    pub cell: String,
    /// The load variable.
    pub variable: String,
    /// Required mean attainment.
    pub target: f64,
    /// Relative tolerance of the bracket.
    pub tolerance: f64,
    /// Where the search stands.
    pub status: Status,
    /// Highest passing load below every failing one: the capacity (a lower bound).
    pub capacity: Option<f64>,
    /// Lowest failing load above the capacity: the capacity is below it.
    pub first_failing: Option<f64>,
    /// Passing loads above a failing one (attainment did not fall monotonically).
    pub non_monotone: Vec<f64>,
    /// Every probe, by load.
    pub probes: Vec<ProbeSummary>,
}

fn round_load(spec: &SearchSpec, x: f64) -> f64 {
    if spec.integer {
        return x.floor().max(1.0);
    }
    // Four significant digits: fine enough for any tolerance ≥ 0.1 %, short in cell ids.
    let magnitude = 10f64.powi(x.abs().log10().floor() as i32 - 3);
    (x / magnitude).round() * magnitude
}

/// The bracket of the probes: highest passing load below the lowest failing one, and that
/// failing load.
fn bracket(spec: &SearchSpec, probes: &[Probe]) -> (Option<f64>, Option<f64>) {
    let lowest_fail = probes
        .iter()
        .filter(|p| !p.passed(spec))
        .map(|p| p.load)
        .reduce(f64::min);
    let pass = probes
        .iter()
        .filter(|p| p.passed(spec) && lowest_fail.is_none_or(|f| p.load < f))
        .map(|p| p.load)
        .reduce(f64::max);
    (pass, lowest_fail)
}

fn converged(spec: &SearchSpec, pass: f64, fail: f64) -> bool {
    if spec.integer {
        fail - pass <= 1.0
    } else {
        fail - pass <= spec.tolerance * pass
    }
}

/// The next load to probe, or `None` when the search is done. Probes `low`, then `high`,
/// widens (halving below `low`, doubling above `high`, at most [`MAX_WIDEN`] times) until a
/// pass and a fail bracket the capacity, then bisects until the bracket is within tolerance.
pub fn next_probe(spec: &SearchSpec, probes: &[Probe]) -> Option<f64> {
    let probed = |x: f64| probes.iter().any(|p| p.load == x);
    if !probed(spec.low) {
        return Some(spec.low);
    }
    let candidate = match bracket(spec, probes) {
        (None, Some(fail)) => {
            let floor = spec.low / 2f64.powi(MAX_WIDEN);
            Some(round_load(spec, fail / 2.0)).filter(|x| *x >= floor && *x < fail)
        }
        (Some(_), None) if !probed(spec.high) => Some(spec.high),
        (Some(pass), None) => {
            let ceiling = spec.high * 2f64.powi(MAX_WIDEN);
            Some(round_load(spec, pass * 2.0)).filter(|x| *x <= ceiling)
        }
        (Some(pass), Some(fail)) if !converged(spec, pass, fail) => {
            Some(round_load(spec, (pass + fail) / 2.0)).filter(|x| *x > pass && *x < fail)
        }
        _ => None,
    };
    candidate.filter(|x| !probed(*x))
}

/// Probes a search of `spec` runs when the capacity is `capacity` (loads at or below it
/// pass), found by playing [`next_probe`] against it: for plans, before anything is known.
pub fn probes_needed(spec: &SearchSpec, capacity: f64) -> usize {
    let mut probes: Vec<Probe> = Vec::new();
    while let Some(load) = next_probe(spec, &probes) {
        let attainment = if load <= capacity { 1.0 } else { 0.0 };
        probes.push(Probe {
            load,
            attainment: vec![attainment],
        });
        if probes.len() > 200 {
            break;
        }
    }
    probes.len()
}

/// The answer so far for the probes of one cell.
pub fn outcome(spec: &SearchSpec, cell: &str, probes: &[Probe]) -> Outcome {
    let (capacity, first_failing) = bracket(spec, probes);
    let status = if next_probe(spec, probes).is_some() {
        Status::Unfinished
    } else if capacity.is_none() {
        Status::BelowRange
    } else if first_failing.is_none() {
        Status::AboveRange
    } else {
        Status::Converged
    };
    let mut summaries: Vec<ProbeSummary> = probes
        .iter()
        .map(|p| {
            let d = stats::describe(&p.attainment);
            ProbeSummary {
                load: p.load,
                n: p.attainment.len(),
                mean: p.mean(),
                ci: d
                    .and_then(|d| d.ci_low.zip(d.ci_high))
                    .map(|(l, h)| (l.max(0.0), h.min(1.0))),
                passed: p.passed(spec),
            }
        })
        .collect();
    summaries.sort_by(|a, b| a.load.total_cmp(&b.load));
    let non_monotone = summaries
        .iter()
        .filter(|p| p.passed && first_failing.is_some_and(|f| p.load > f))
        .map(|p| p.load)
        .collect();
    Outcome {
        cell: cell.to_string(),
        variable: spec.variable.clone(),
        target: spec.target,
        tolerance: spec.tolerance,
        status,
        capacity,
        first_failing,
        non_monotone,
        probes: summaries,
    }
}

/// `swept` without the load variable: the cell a probe belongs to.
pub fn base_of(spec: &SearchSpec, swept: &Vars) -> Vars {
    let mut base = swept.clone();
    base.remove(&spec.variable);
    base
}

/// The probes of every searched cell among a run's finished repetitions, grouped by cell
/// (in order of first appearance). Probes without finished repetitions are left out.
pub fn probes_by_cell(spec: &SearchSpec, cells: &[CellResults]) -> Vec<(Vars, Vec<Probe>)> {
    let mut out: Vec<(Vars, Vec<Probe>)> = Vec::new();
    for cell in cells {
        let Some(load) = cell.swept.get(&spec.variable).and_then(|v| v.as_f64()) else {
            continue;
        };
        let attainment = rep_values(cell, Metric::SloAttainment.key());
        if attainment.is_empty() {
            continue;
        }
        let probe = Probe { load, attainment };
        let base = base_of(spec, &cell.swept);
        match out.iter_mut().find(|(b, _)| *b == base) {
            Some((_, probes)) => probes.push(probe),
            None => out.push((base, vec![probe])),
        }
    }
    out
}

/// The outcome of every searched cell of a run.
pub fn summarize(spec: &SearchSpec, cells: &[CellResults]) -> Vec<Outcome> {
    probes_by_cell(spec, cells)
        .iter()
        .map(|(base, probes)| outcome(spec, &cell_label(base), probes))
        .collect()
}

/// A load as a short number: whole numbers without decimals, others with four significant
/// digits and no trailing zeros (`5`, `12.82`, `0.3125`).
pub fn load_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        return format!("{}", x as i64);
    }
    let text = crate::units::sig(x, 4);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A load in its unit: `12.82 req/s`, `64 in flight`, `32 per batch`.
pub fn load_text(variable: &str, x: f64) -> String {
    let n = load_number(x);
    match variable {
        "request_rate" => format!("{n} req/s"),
        "concurrency" => format!("{n} in flight"),
        "batch_size" => format!("{n} per batch"),
        other => format!("{other} = {n}"),
    }
}

#[cfg(test)]
mod tests;
