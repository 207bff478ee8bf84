//! The capacity comparison as a specification, on hand-built probe sets with known brackets
//! (3 repetitions per probe: `P`/`F` have zero spread, so every bootstrap draw is the point;
//! `MP`/`MF` pass or fail by their mean, but their CIs straddle 99 %).

use crate::metrics::registry::k;
use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use super::capacity::{self, SearchRun};
use super::capacity_curve::{BootInterval, Crossing};
use super::*;
use crate::analysis::RepResult;
use crate::metrics::RepetitionSummary;
use crate::scenario::model::{SearchSpec, Value, Vars};
use crate::search;

pub(super) const P: [f64; 3] = [1.0, 1.0, 1.0];
pub(super) const F: [f64; 3] = [0.5, 0.5, 0.5];
pub(super) const MP: [f64; 3] = [0.995, 0.99, 0.985];
pub(super) const MF: [f64; 3] = [0.99, 0.985, 0.98];

/// Eight probes: (load, attainment of each repetition).
pub(super) type Probes = [(f64, [f64; 3]); 8];

/// Baseline: converged at 13.21, first failing 13.6 (the search of tests/search.rs).
pub(super) const BASE: Probes = [
    (5.0, P),
    (30.0, F),
    (17.5, F),
    (11.25, P),
    (14.38, F),
    (12.82, P),
    (13.6, F),
    (13.21, P),
];
/// Candidate: converged at 10.08, first failing 10.47.
pub(super) const CAND: Probes = [
    (5.0, P),
    (30.0, F),
    (17.5, F),
    (11.25, F),
    (8.125, P),
    (9.688, P),
    (10.47, F),
    (10.08, P),
];

/// [`BASE`] and [`CAND`] with the same means, so the same capacities and Δ̂, but the probes
/// near the capacities spread so that their CIs straddle the target.
pub(super) fn marginal() -> (Probes, Probes) {
    let (mut base, mut cand) = (BASE, CAND);
    for (load, att) in base.iter_mut().chain(cand.iter_mut()) {
        if [12.82, 13.21, 9.688, 10.08].contains(load) {
            *att = MP;
        }
        if [13.6, 14.38, 10.47].contains(load) {
            *att = MF;
        }
    }
    (base, cand)
}

/// Passes up to the widening limit (30 × 2⁴): above range, capacity ≥ 480.
pub(super) const ABOVE: [(f64, [f64; 3]); 6] = [
    (5.0, P),
    (30.0, P),
    (60.0, P),
    (120.0, P),
    (240.0, P),
    (480.0, P),
];

pub(super) fn spec() -> SearchSpec {
    SearchSpec {
        variable: "request_rate".into(),
        low: 5.0,
        high: 30.0,
        target: 0.99,
        tolerance: 0.05,
        repetitions: NonZeroU32::new(3).unwrap(),
        integer: false,
    }
}

pub(super) fn slo(ms: u64) -> BTreeMap<Metric, Duration> {
    [(Metric::Ttft, Duration::from_millis(ms))].into()
}

/// One probe cell per (load, attainments), with `extra` variables swept too; repetition i is
/// round i.
pub(super) fn cells<const N: usize>(
    probes: &[(f64, [f64; N])],
    extra: &[(&str, i64)],
) -> Vec<CellResults> {
    probes
        .iter()
        .map(|(load, att)| {
            let mut swept: Vars = extra
                .iter()
                .map(|(k, v)| (k.to_string(), Value::Int(*v)))
                .collect();
            swept.insert("request_rate".into(), Value::Float(*load));
            let reps = att
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let mut summary = RepetitionSummary::default();
                    summary.values.insert(k("slo_attainment"), *a);
                    RepResult {
                        round: i as u32,
                        order: i,
                        summary,
                        wall_seconds: 1.0,
                        client_cpu_seconds: None,
                    }
                })
                .collect();
            CellResults {
                id: "c".into(),
                vars: swept.clone(),
                swept,
                reps,
            }
        })
        .collect()
}

fn run<'a>(
    cells: &'a [CellResults],
    search: Option<&'a SearchSpec>,
    slo: &'a BTreeMap<Metric, Duration>,
) -> SearchRun<'a> {
    SearchRun { cells, search, slo }
}

pub(super) fn settings(tau: Option<f64>) -> Analysis {
    Analysis {
        alpha: 0.05,
        primary: vec![k("ttft.mean")],
        thresholds: BTreeMap::new(),
        capacity_threshold: tau,
        load: vec!["request_rate".into()],
        baseline: None,
        cv_warn: 0.05,
    }
}

/// Compares two probe sets under equal criteria (ttft ≤ 200 ms, 99 %).
pub(super) fn pair<const N: usize>(
    base: &[(f64, [f64; N])],
    cand: &[(f64, [f64; N])],
    tau: Option<f64>,
) -> CompareResult {
    let (s, l) = (spec(), slo(200));
    let (b, c) = (cells(base, &[]), cells(cand, &[]));
    compare_runs(
        run(&b, Some(&s), &l),
        run(&c, Some(&s), &l),
        Workloads::default(),
        &settings(tau),
    )
}

pub(super) fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// The crossings of [`BASE`] and [`CAND`]: 2 % of the way from the last pass (1.0) to the
/// first fail (0.5), whose loads are 0.39 apart.
pub(super) const BASE_X: f64 = 13.21 + 0.02 * 0.39;
pub(super) const CAND_X: f64 = 10.08 + 0.02 * 0.39;

fn crossing(s: &capacity::CapacitySide) -> f64 {
    match s.estimate.crossing {
        Crossing::At(x) => x,
        other => panic!("no crossing: {other:?}"),
    }
}

#[test]
fn disjoint_brackets_are_a_regression_and_the_other_way_round_an_improvement() {
    let r = pair(&BASE, &CAND, None);
    let row = &r.capacity[0];
    assert_eq!(row.cell, "default");
    let base = &row.baseline;
    assert_eq!(base.outcome.status, search::Status::Converged);
    assert_eq!(
        (base.outcome.capacity, base.outcome.first_failing),
        (Some(13.21), Some(13.6))
    );
    // Without spread every bootstrap draw is the point: the intervals collapse.
    assert!(close(crossing(base), BASE_X) && close(crossing(&row.candidate), CAND_X));
    let bi = base.estimate.interval;
    assert!(close(bi.low, BASE_X) && close(bi.high.unwrap(), BASE_X));
    let delta = CAND_X / BASE_X - 1.0;
    assert!(close(row.change.unwrap(), delta) && row.exact);
    let i = row.interval.unwrap();
    assert!(close(i.low, delta) && close(i.high.unwrap(), delta));
    assert_eq!((row.verdict, row.tau), (Verdict::Regression, 0.05));
    assert_eq!(row.shared_loads, [5.0, 11.25, 17.5, 30.0]);
    assert_eq!(r.outcome(), Outcome::Regression);
    assert!(r.fails(FailOn::Regression));

    let back = pair(&CAND, &BASE, None);
    assert_eq!(back.capacity[0].verdict, Verdict::Improvement);
    assert_eq!(back.outcome(), Outcome::Improvement);
    assert!(!back.fails(FailOn::Regression) && back.fails(FailOn::AnyChange));
}

#[test]
fn the_same_probes_on_both_sides_are_no_change_unless_their_noise_is_too_wide() {
    let r = pair(&BASE, &BASE, None);
    let row = &r.capacity[0];
    // No spread: every draw of both runs is the crossing, so Δ ∈ [0, 0].
    assert_eq!(row.change, Some(0.0));
    let i = row.interval.unwrap();
    assert_eq!((i.low, i.high), (0.0, Some(0.0)));
    assert_eq!(row.verdict, Verdict::NoChange);
    assert_eq!(r.outcome(), Outcome::NoChange);
    // Changed from `inconclusive`: the confident brackets charged the bisection's resolution
    // (±3 %) to the interval at any τ; the curve's interval carries repetition noise only, and
    // here there is none (the module header says what that leaves out).
    assert_eq!(
        pair(&BASE, &BASE, Some(0.02)).capacity[0].verdict,
        Verdict::NoChange
    );
    // The marginal set against itself: Δ̂ = 0, but two independent bootstraps of three rounds
    // spread Δ over about [−15 %, +17 %], beyond ±5 %.
    let (base, _) = marginal();
    let row = &pair(&base, &base, None).capacity[0];
    let i = row.interval.unwrap();
    assert!(i.low < -0.05 && i.high.unwrap() > 0.05, "{i:?}");
    assert_eq!(row.verdict, Verdict::Inconclusive);
}

#[test]
fn tau_moves_the_same_interval_through_three_verdicts() {
    // The marginal pair: Δ̂ = −23.7 %, interval [−36.2 %, −13.3 %] (capacity_view_tests).
    let (base, cand) = marginal();
    let verdict = |tau| pair(&base, &cand, Some(tau)).capacity[0].verdict;
    assert_eq!(verdict(0.10), Verdict::Regression);
    assert_eq!(verdict(0.20), Verdict::PossibleRegression);
    assert_eq!(verdict(0.25), Verdict::WithinNoise);
    // Without spread the interval is the point (−23.68 %): nothing is `possible`.
    let verdict = |tau| pair(&BASE, &CAND, Some(tau)).capacity[0].verdict;
    assert_eq!(verdict(0.23), Verdict::Regression);
    assert_eq!(verdict(0.24), Verdict::WithinNoise);
}

#[test]
fn an_interval_end_exactly_at_tau_is_not_beyond_it() {
    let i = |low, high| BootInterval { low, high };
    assert_eq!(
        capacity::verdict(Some(0.1), i(0.05, Some(0.2)), 0.05),
        Verdict::PossibleImprovement
    );
    assert_eq!(
        capacity::verdict(Some(0.1), i(0.0500001, Some(0.2)), 0.05),
        Verdict::Improvement
    );
    assert_eq!(
        capacity::verdict(Some(0.0), i(-0.05, Some(0.04)), 0.05),
        Verdict::Inconclusive
    );
    assert_eq!(
        capacity::verdict(Some(0.0), i(-0.049, Some(0.049)), 0.05),
        Verdict::NoChange
    );
    // Not a point estimate (a capacity above or below range): the size is unknown.
    assert_eq!(
        capacity::verdict(None, i(0.01, None), 0.05),
        Verdict::PossibleImprovement
    );
}

#[test]
fn marginal_probes_widen_the_intervals_and_the_regression_stands() {
    let (base, cand) = marginal();
    let r = pair(&base, &cand, None);
    let row = &r.capacity[0];
    assert_eq!(row.baseline.outcome.capacity, Some(13.21));
    assert_eq!(row.candidate.outcome.capacity, Some(10.08));
    // The marginal passes sit exactly at 99 %: the curves cross at the highest of them.
    assert!(close(crossing(&row.baseline), 13.21) && close(crossing(&row.candidate), 10.08));
    // Changed from `inconclusive` ([−53.6 %, 0]: the confident brackets kept only probes whose
    // CIs cleared the target). Redrawn, the marginal probes move each crossing between its
    // neighbours, which have no spread: the baseline's stays above 11.25 (a clear pass), the
    // candidate's below 11.25 (a clear fail) and, interpolated, the two stay over 13 % apart;
    // the clear fail at 17.5 holds the baseline's within a few tenths above 14.38.
    let (bi, ci) = (
        row.baseline.estimate.interval,
        row.candidate.estimate.interval,
    );
    assert!(bi.low > 11.25 && bi.high.unwrap() < 14.6, "{bi:?}");
    assert!(ci.low > 8.125 && ci.high.unwrap() < 11.25, "{ci:?}");
    let i = row.interval.unwrap();
    assert!(
        i.low < row.change.unwrap() && i.high.unwrap() < -0.05,
        "{i:?}"
    );
    assert_eq!(row.verdict, Verdict::Regression);
    assert!(r.fails(FailOn::Regression));
}

fn with_criteria(target: f64, ttft_ms: u64) -> CompareResult {
    let (s, l) = (spec(), slo(200));
    let cs = SearchSpec { target, ..spec() };
    let cl = slo(ttft_ms);
    let (b, c) = (cells(&BASE, &[]), cells(&BASE, &[]));
    compare_runs(
        run(&b, Some(&s), &l),
        run(&c, Some(&cs), &cl),
        Workloads::default(),
        &settings(None),
    )
}

#[test]
fn different_criteria_make_the_capacity_invalid() {
    let r = with_criteria(0.95, 300);
    let row = &r.capacity[0];
    assert_eq!(row.verdict, Verdict::Invalid);
    assert!(row.criteria_differ && row.interval.is_none());
    assert_eq!(
        row.invalid.as_deref(),
        Some(
            "the searches' criteria differ: the attainment targets differ (99.0 % vs 95.0 %), the [slo] bounds differ (ttft ≤ 200 ms vs ttft ≤ 300 ms); a capacity under different SLOs is not comparable"
        )
    );
    // The shared probes' cells have no primary metric here: nothing valid remains.
    assert_eq!(r.outcome(), Outcome::Invalid);
    assert!(r.invalid_reason().unwrap().starts_with(
        "every verdict is invalid (e.g. the capacity of default: the searches' criteria differ"
    ));
    assert_eq!(
        with_criteria(0.99, 200).capacity[0].verdict,
        Verdict::NoChange
    );
}

#[test]
fn an_unfinished_search_is_invalid_and_both_below_range_too() {
    let r = pair(&BASE, &[(5.0, P)], None);
    assert_eq!(
        r.capacity[0].invalid.as_deref(),
        Some("the candidate search is unfinished (continue it with `exp run --resume`)")
    );
    let below = [(5.0, F), (2.5, F), (1.25, F), (0.625, F), (0.3125, F)];
    let r = pair(&below, &below, None);
    assert_eq!(
        r.capacity[0].invalid.as_deref(),
        Some("both capacities are below the searched ranges (lower `search.low`)")
    );
    // One side below range: bounded above only, which can still prove a regression.
    let r = pair(&BASE, &below, None);
    let row = &r.capacity[0];
    assert_eq!(row.candidate.estimate.crossing, Crossing::BelowRange);
    let bound = 0.3125 / BASE_X - 1.0;
    assert!(close(row.change.unwrap(), bound) && !row.exact);
    let i = row.interval.unwrap();
    assert!(close(i.low, -1.0) && close(i.high.unwrap(), bound));
    assert_eq!(row.verdict, Verdict::Regression);
}

#[test]
fn an_above_range_capacity_is_a_lower_bound() {
    // Candidate far below the baseline's lower bound: a regression all the same.
    let r = pair(&ABOVE, &CAND, None);
    let row = &r.capacity[0];
    assert_eq!(row.baseline.outcome.status, search::Status::AboveRange);
    assert_eq!(row.baseline.estimate.interval.high, None);
    assert!(!row.exact);
    assert_eq!(row.verdict, Verdict::Regression);
    // Both above range: nothing bounds either capacity from above.
    let r = pair(&ABOVE, &ABOVE, None);
    let i = r.capacity[0].interval.unwrap();
    assert_eq!((i.low, i.high), (-1.0, None));
    assert_eq!(r.capacity[0].verdict, Verdict::Inconclusive);
}

#[test]
fn capacities_count_without_a_shared_probe_and_cells_match_by_their_other_variables() {
    // The candidate searched from 6 to 31 req/s: no probe load in common with the baseline.
    let (s, l) = (spec(), slo(200));
    let cs = SearchSpec {
        low: 6.0,
        high: 31.0,
        ..spec()
    };
    let shifted: Vec<(f64, [f64; 3])> = [
        (6.0, P),
        (31.0, F),
        (18.5, F),
        (12.25, F),
        (9.125, P),
        (10.69, P),
        (11.47, F),
        (11.08, P),
    ]
    .to_vec();
    let mut b = cells(&BASE, &[("tp", 1)]);
    b.extend(cells(&BASE, &[("tp", 2)]));
    let c = cells(&shifted, &[("tp", 1)]);
    let r = compare_runs(
        run(&b, Some(&s), &l),
        run(&c, Some(&cs), &l),
        Workloads::default(),
        &settings(None),
    );
    assert!(r.matching.matched.is_empty());
    assert_eq!(r.capacity.len(), 1);
    assert_eq!(r.capacity[0].cell, "tp=1");
    assert_eq!(r.capacity[0].verdict, Verdict::Regression);
    // Both tp values' 8 baseline probes and the candidate's 8 are unshared: counted in a
    // note instead of being listed as missing cells.
    assert_eq!(
        r.capacity_notes,
        [
            "the capacity of `tp=2` is in the baseline only",
            "16 baseline and 8 candidate probes at loads the other search did not probe are compared through the capacity, not cell by cell"
        ]
    );
    assert!(r.matching.only_baseline.is_empty() && r.matching.only_candidate.is_empty());
    assert_eq!(r.invalid_reason(), None);
    assert_eq!(r.outcome(), Outcome::Regression);
    assert_eq!(
        report::verdict_line(&r),
        "❌ regression (0 comparisons in 0 matched cells and 1 capacity at the SLO: 1 regression)"
    );
}

#[test]
fn only_one_search_run_leaves_a_note() {
    let (s, l) = (spec(), slo(200));
    let b = cells(&BASE, &[]);
    let r = compare_runs(
        run(&b, None, &l),
        run(&b, Some(&s), &l),
        Workloads::default(),
        &settings(None),
    );
    assert!(r.capacity.is_empty());
    assert_eq!(
        r.capacity_notes,
        ["only the candidate is a [search] run: there is no capacity at the SLO to compare"]
    );
}
