//! The capacity comparison on realistic noise: the per-round SLO attainments of a simulated
//! 16-sequence search (10 rounds per probe, copied from `exp search
//! tests/fixtures/cli/search_sim.toml --set search.repetitions=10`), where one unlucky arrival
//! sequence (round 4) drags every probe down at once.

use super::capacity::SearchRun;
use super::capacity_tests::{cells, close, settings, slo, spec};
use super::*;
use crate::compare::capacity_curve::{Crossing, Pairing};
use crate::scenario::model::SearchSpec;
use crate::search::{self, Probe};

/// Load and the attainment of rounds 0..10.
const SIM16: [(f64, [f64; 10]); 8] = [
    (5.0, [1.0; 10]),
    (
        11.25,
        [1.0, 1.0, 0.995, 1.0, 0.965, 1.0, 1.0, 1.0, 1.0, 1.0],
    ),
    (11.65, [1.0, 1.0, 0.99, 1.0, 0.95, 1.0, 1.0, 1.0, 1.0, 1.0]),
    (
        12.04,
        [1.0, 1.0, 0.985, 1.0, 0.925, 1.0, 0.975, 1.0, 1.0, 1.0],
    ),
    (
        12.82,
        [1.0, 0.995, 0.985, 1.0, 0.86, 0.995, 0.965, 1.0, 1.0, 1.0],
    ),
    (
        14.38,
        [1.0, 0.985, 0.94, 0.99, 0.73, 0.87, 0.925, 0.98, 1.0, 0.995],
    ),
    (
        17.5,
        [
            0.905, 0.865, 0.605, 0.805, 0.185, 0.125, 0.675, 0.905, 0.955, 0.505,
        ],
    ),
    (
        30.0,
        [
            0.09, 0.08, 0.08, 0.095, 0.08, 0.08, 0.095, 0.105, 0.08, 0.08,
        ],
    ),
];

/// The attainments of [`SIM16`] (the simulator's order: 5, 30, 17.5, 11.25, 14.38, 12.82,
/// 12.04, 11.65) at the loads a search from `low` to `high` (factor × 5 and × 30) probes, in
/// that order: the same pass / fail sequence, so the same bisection on loads scaled by
/// `factor` (up to the search's rounding to four significant digits). `shortfall` scales every
/// round's shortfall 1 − attainment.
fn bisected_with(factor: f64, shortfall: f64) -> (SearchSpec, Vec<(f64, [f64; 10])>) {
    let order = [0, 7, 6, 1, 5, 4, 3, 2];
    let s = SearchSpec {
        low: 5.0 * factor,
        high: 30.0 * factor,
        ..spec()
    };
    let mut probes: Vec<Probe> = Vec::new();
    while let Some(load) = search::next_probe(&s, &probes) {
        let sim = SIM16[order[probes.len()]].1;
        let attainment = sim
            .iter()
            .map(|a| a + (1.0 - shortfall) * (1.0 - a))
            .collect();
        probes.push(Probe { load, attainment });
    }
    let out = probes
        .iter()
        .map(|p| (p.load, p.attainment.clone().try_into().unwrap()))
        .collect();
    (s, out)
}

fn bisected(factor: f64) -> (SearchSpec, Vec<(f64, [f64; 10])>) {
    bisected_with(factor, 1.0)
}

type Search = (SearchSpec, Vec<(f64, [f64; 10])>);

/// Compares two searches under `ttft ≤ 200 ms`, 99 %.
fn compare_searches(base: &Search, cand: &Search) -> CompareResult {
    let ((bs, base), (cs, cand)) = (base, cand);
    let l = slo(200);
    let (b, c) = (cells(base, &[]), cells(cand, &[]));
    let side = |cells, search| SearchRun {
        cells,
        search: Some(search),
        slo: &l,
    };
    compare_runs(
        side(&b, bs),
        side(&c, cs),
        Workloads::default(),
        &settings(None),
    )
}

/// The simulated search against the same curve at `factor` × its loads.
fn against(factor: f64) -> (CompareResult, Vec<(f64, [f64; 10])>) {
    let cand = bisected(factor);
    (compare_searches(&bisected(1.0), &cand), cand.1)
}

/// Where [`SIM16`]'s means cross 99 %: between 11.65 (99.4 %) and 12.04 (98.85 %), 4 / 5.5 of
/// the way; `loads` in bisection order.
fn hand_crossing(loads: &[(f64, [f64; 10])]) -> f64 {
    let (pass, fail) = (loads[7].0, loads[6].0);
    pass + (fail - pass) * (0.994 - 0.99) / (0.994 - 0.9885)
}

fn crossing(row: &CapacityRow) -> (f64, f64) {
    let at = |s: &capacity::CapacitySide| match s.estimate.crossing {
        Crossing::At(x) => x,
        other => panic!("no crossing: {other:?}"),
    };
    (at(&row.baseline), at(&row.candidate))
}

#[test]
fn the_hand_bisection_is_the_simulated_search() {
    let (_, base) = bisected(1.0);
    let sim = SIM16.map(|p| p.0);
    let order = [5.0, 30.0, 17.5, 11.25, 14.38, 12.82, 12.04, 11.65];
    for ((load, att), want) in base.iter().zip(order) {
        assert!(close(*load, want), "{load} vs {want}");
        let i = sim.iter().position(|x| *x == want).unwrap();
        assert_eq!(*att, SIM16[i].1);
    }
}

#[test]
fn a_thirty_percent_drop_under_realistic_noise_is_a_regression() {
    let (r, cand) = against(0.7);
    let row = &r.capacity[0];
    let (_, base) = bisected(1.0);
    let (xb, xc) = (hand_crossing(&base), hand_crossing(&cand));
    let (b, c) = crossing(row);
    assert!(close(b, xb) && close(c, xc), "{b} {c}");
    // −30 % up to the candidate search's rounding of its loads.
    let delta = xc / xb - 1.0;
    assert!((delta + 0.3).abs() < 1e-3, "{delta}");
    assert!(close(row.change.unwrap(), delta) && row.exact);
    assert_eq!(row.baseline.estimate.pairing, Pairing::ByRound);
    // The old rule read this pair as `inconclusive`: its confident brackets were [5, 17.5)
    // and [3.5, 12.25) (only the lowest load passes with its CI wholly at or above 99 %, only
    // the third fails wholly below it), so Δ ∈ [3.5 / 17.5 − 1, 12.25 / 5 − 1] = [−80 %, +145 %].
    let i = row.interval.unwrap();
    let high = i.high.unwrap();
    assert!(
        i.low > -0.5 && i.low < -0.3 && high > -0.3 && high < -0.1,
        "{i:?}"
    );
    assert_eq!(row.verdict, Verdict::Regression);
    assert_eq!(r.outcome(), Outcome::Regression);
    assert!(r.fails(FailOn::Regression));
}

#[test]
fn a_small_shift_under_this_noise_is_inconclusive_and_less_noise_narrows_it() {
    // A 2 % shift: Δ̂ ≈ −2 %, but the interval reaches past ±5 %.
    let (r, _) = against(0.98);
    let row = &r.capacity[0];
    assert!((row.change.unwrap() + 0.02).abs() < 1e-3);
    let i = row.interval.unwrap();
    assert!(i.low < -0.05 && i.high.unwrap() > 0.05, "{i:?}");
    assert_eq!(row.verdict, Verdict::Inconclusive);
    // Every round's shortfall halved: the same crossing region, a narrower interval.
    let (base, cand) = (bisected_with(1.0, 0.5), bisected_with(0.98, 0.5));
    let calm = compare_searches(&base, &cand).capacity[0].interval.unwrap();
    assert!(
        calm.high.unwrap() - calm.low < i.high.unwrap() - i.low,
        "{calm:?}"
    );
}

#[test]
fn the_bootstrap_repeats_itself() {
    let interval = || against(0.7).0.capacity[0].interval;
    assert_eq!(interval(), interval());
}
