//! The curve and its bootstrap on hand-computed values: pool-adjacent-violators, the
//! interpolated crossing, the order-statistic percentiles and their unbounded ends, and the
//! bootstrap on probe sets whose answers are known.

use std::num::NonZeroU32;

use super::capacity_curve::*;
use crate::scenario::model::SearchSpec;
use crate::search::{self, Probe};
use crate::seed::SplitMix64;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn all_close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| close(*x, *y))
}

fn probe(load: f64, attainment: &[f64]) -> Probe {
    Probe {
        load,
        attainment: attainment.to_vec(),
    }
}

#[test]
fn pava_pools_each_rising_run_into_its_weighted_mean() {
    let ones = [1.0; 5];
    // Already non-increasing: unchanged.
    let v = [1.0, 0.99, 0.9, 0.2];
    assert_eq!(isotonic_decreasing(&v, &ones[..4]), v);
    // 1, 3, 2: 3 > 1 pools to 2 (weight 2); 2 ≤ 2 stays.
    assert!(all_close(
        &isotonic_decreasing(&[1.0, 3.0, 2.0], &ones[..3]),
        &[2.0, 2.0, 2.0]
    ));
    // 1.0, 0.8, 0.9, 0.95: 0.9 pools with 0.8 (0.85), then 0.95 with that block:
    // (0.8 + 0.9 + 0.95) / 3 = 0.88333, below 1.0, so the first value stays.
    assert!(all_close(
        &isotonic_decreasing(&[1.0, 0.8, 0.9, 0.95], &ones[..4]),
        &[1.0, 2.65 / 3.0, 2.65 / 3.0, 2.65 / 3.0]
    ));
    // Weights: 0.9 (n = 1) below 1.0 (n = 3) pools to (0.9 + 3.0) / 4 = 0.975.
    assert!(all_close(
        &isotonic_decreasing(&[0.9, 1.0, 0.95, 0.5], &[1.0, 3.0, 1.0, 1.0]),
        &[0.975, 0.975, 0.95, 0.5]
    ));
    // Rising throughout: one block, the weighted mean (0.5·1 + 0.6·2 + 0.7·1) / 4 = 0.6.
    assert!(all_close(
        &isotonic_decreasing(&[0.5, 0.6, 0.7], &[1.0, 2.0, 1.0]),
        &[0.6, 0.6, 0.6]
    ));
    assert!(isotonic_decreasing(&[], &[]).is_empty());
}

#[test]
fn the_crossing_interpolates_linearly_between_the_last_pass_and_the_first_fail() {
    let loads = [5.0, 10.0, 12.0, 14.0];
    // 0.995 at 10, 0.98 at 12: a third of the way, 10 + 2/3.
    let c = crossing(&loads, &[1.0, 0.995, 0.98, 0.5], 0.99);
    assert!(
        matches!(c, Crossing::At(x) if close(x, 10.0 + 2.0 / 3.0)),
        "{c:?}"
    );
    // Exactly at the target at 10 (in decimals): the crossing is 10.
    let c = crossing(&loads, &[1.0, 0.995 - 0.005, 0.98, 0.5], 0.99);
    assert!(matches!(c, Crossing::At(x) if close(x, 10.0)), "{c:?}");
    // A pooled block at the target stays passing to its end (12).
    let c = crossing(&loads, &[1.0, 0.99, 0.99, 0.5], 0.99);
    assert!(matches!(c, Crossing::At(x) if close(x, 12.0)), "{c:?}");
    assert_eq!(
        crossing(&loads, &[1.0, 1.0, 0.995, 0.99], 0.99),
        Crossing::AboveRange
    );
    assert_eq!(
        crossing(&loads, &[0.98, 0.5, 0.4, 0.1], 0.99),
        Crossing::BelowRange
    );
}

#[test]
fn percentiles_leave_out_two_and_a_half_percent_on_each_side_and_unbounded_draws_count() {
    // 100 draws: ⌊2.5⌋ = 2 left out on each side, so the 3rd smallest and 3rd largest.
    let point = |x: f64| Bounds { low: x, high: x };
    let mut draws: Vec<Bounds> = (1..=100).map(|i| point(i as f64)).collect();
    let i = percentile_interval(&draws).unwrap();
    assert_eq!((i.low, i.high), (3.0, Some(98.0)));
    // Two draws above range (2 %): the upper end stays finite, now the 100th draw.
    for d in &mut draws[..2] {
        *d = Bounds {
            low: 100.0,
            high: f64::INFINITY,
        };
    }
    let i = percentile_interval(&draws).unwrap();
    assert_eq!((i.low, i.high), (5.0, Some(100.0)));
    // Three (3 % > 2.5 %): unbounded.
    draws[2] = draws[0];
    assert_eq!(percentile_interval(&draws).unwrap().high, None);
    // Three below range: the lower end is 0.
    for d in &mut draws[3..6] {
        *d = Bounds {
            low: 0.0,
            high: 5.0,
        };
    }
    assert_eq!(percentile_interval(&draws).unwrap().low, 0.0);
    assert_eq!(percentile_interval(&[]), None);
}

#[test]
fn change_bounds_take_the_far_side_of_one_sided_capacities() {
    let at = |x: f64| Bounds { low: x, high: x };
    let d = change_bounds(at(10.0), at(8.0));
    assert!(close(d.low, -0.2) && close(d.high, -0.2));
    // Baseline ≥ 20: Δ ≤ 8 / 20 − 1, and down to −100 %.
    let above = Bounds {
        low: 20.0,
        high: f64::INFINITY,
    };
    let d = change_bounds(above, at(8.0));
    assert!(close(d.low, -1.0) && close(d.high, -0.6));
    // Baseline < 5: Δ > 8 / 5 − 1, unbounded above.
    let d = change_bounds(
        Bounds {
            low: 0.0,
            high: 5.0,
        },
        at(8.0),
    );
    assert!(close(d.low, 0.6) && d.high == f64::INFINITY);
}

#[test]
fn calibration_turns_the_bootstrap_spread_into_students() {
    // √(n / (n − 1))·t₀.₉₇₅(n − 1) / z₀.₉₇₅ with t₀.₉₇₅(9) = 2.262157, t₀.₉₇₅(2) = 4.302653,
    // z₀.₉₇₅ = 1.959964.
    let z = 1.959964;
    assert!((calibration(10) - (10.0f64 / 9.0).sqrt() * 2.262157 / z).abs() < 1e-5);
    assert!((calibration(3) - 1.5f64.sqrt() * 4.302653 / z).abs() < 1e-5);
    assert_eq!((calibration(1), calibration(0)), (0.0, 0.0));
    // Large n: both factors tend to 1.
    assert!((calibration(100_000) - 1.0).abs() < 1e-4);
}

#[test]
fn identical_repetitions_collapse_the_interval_to_the_crossing() {
    // Means 1, 0.995, 0.98, 0.5 at 5, 10, 12, 14 (as in the crossing test): 10 + 2/3.
    let probes = [
        probe(12.0, &[0.98; 10]),
        probe(5.0, &[1.0; 10]),
        probe(14.0, &[0.5; 10]),
        probe(10.0, &[0.995; 10]),
    ];
    for pairing in [Pairing::ByRound, Pairing::Independent] {
        let (e, draws) = estimate(&probes, pairing, 0.99, 7, 500).unwrap();
        let x = 10.0 + 2.0 / 3.0;
        assert!(matches!(e.crossing, Crossing::At(c) if close(c, x)));
        assert!(close(e.interval.low, x) && close(e.interval.high.unwrap(), x));
        assert_eq!((e.lowest, e.highest, e.draws), (5.0, 14.0, 500));
        assert_eq!((e.above_range_draws, e.below_range_draws), (0, 0));
        assert_eq!(draws.len(), 500);
    }
}

#[test]
fn a_non_monotone_probe_is_pooled_before_the_crossing() {
    // 0.98 at 10 then 1.0 at 11 (n = 1 each, no spread): pooled to 0.99, which meets the
    // target, so the curve crosses between 11 and 12 (0.5): 11 + 0 = 11.
    let probes = [
        probe(5.0, &[1.0]),
        probe(10.0, &[0.98]),
        probe(11.0, &[1.0]),
        probe(12.0, &[0.5]),
    ];
    let (e, _) = estimate(&probes, Pairing::Independent, 0.99, 1, 10).unwrap();
    assert!(
        matches!(e.crossing, Crossing::At(x) if close(x, 11.0)),
        "{e:?}"
    );
}

#[test]
fn draws_that_never_fail_make_the_upper_end_unbounded() {
    // The highest probe fails by one round in ten: a draw without that round (about
    // 0.9^10 ≈ 35 %) passes everywhere, far more than 2.5 %.
    let mut top = [1.0; 10];
    top[4] = 0.85;
    let probes = [probe(5.0, &[1.0; 10]), probe(10.0, &top)];
    let (e, _) = estimate(&probes, Pairing::ByRound, 0.99, 3, DRAWS).unwrap();
    assert!(matches!(e.crossing, Crossing::At(_)));
    assert!(e.above_range_draws > DRAWS / 5, "{e:?}");
    assert_eq!(e.interval.high, None);
    assert!(e.interval.low > 5.0);
}

#[test]
fn the_seed_fixes_the_draws_and_the_cell_label_changes_them() {
    let top = [1.0, 0.995, 0.99, 0.985, 0.97, 1.0, 0.995, 0.98, 1.0, 0.99];
    let probes = [
        probe(5.0, &[1.0; 10]),
        probe(10.0, &top),
        probe(20.0, &[0.2; 10]),
    ];
    let run = |seed| estimate(&probes, Pairing::ByRound, 0.99, seed, 200).unwrap();
    assert_eq!(
        run(seed("default", "baseline")),
        run(seed("default", "baseline"))
    );
    assert_ne!(seed("default", "baseline"), seed("default", "candidate"));
    assert_ne!(seed("tp=1", "baseline"), seed("tp=2", "baseline"));
    assert_ne!(run(1).1, run(2).1);
}

#[test]
fn pairing_by_round_is_only_claimed_for_identical_rounds() {
    assert_eq!(pairing(&[vec![0, 1, 2], vec![0, 1, 2]]), Pairing::ByRound);
    assert_eq!(
        pairing(&[vec![0, 1, 2], vec![0, 2, 3]]),
        Pairing::Independent
    );
    assert_eq!(pairing(&[vec![0, 1, 2], vec![0, 1]]), Pairing::Independent);
    assert_eq!(pairing(&[]), Pairing::Independent);
    // Probes of different lengths fall back to independent draws whatever the caller says.
    let probes = [probe(5.0, &[1.0, 1.0]), probe(10.0, &[0.5])];
    let (e, _) = estimate(&probes, Pairing::ByRound, 0.99, 1, 10).unwrap();
    assert_eq!(e.pairing, Pairing::Independent);
}

/// A bisection (as `exp search` runs it, 5 to 30 req/s, 5 % tolerance) of an engine whose
/// attainment in round r is 1 − 0.01·e^((x − c_r) / (0.05 c_r)), quantized to 1/200 with
/// noise: c_r = `capacity`·(1 + u_r), u_r uniform in ±12 % and shared by every load of the
/// round (common random numbers), so an unlucky round is unlucky at every probe.
fn simulated_search(capacity: f64, reps: u32, rng: &mut SplitMix64) -> Vec<Probe> {
    let spec = SearchSpec {
        variable: "request_rate".into(),
        low: 5.0,
        high: 30.0,
        target: 0.99,
        tolerance: 0.05,
        repetitions: NonZeroU32::new(reps).unwrap(),
        integer: false,
    };
    let mut uniform =
        |a: f64, b: f64| a + (b - a) * (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let rounds: Vec<(f64, f64)> = (0..reps)
        .map(|_| {
            (
                capacity * (1.0 + uniform(-0.12, 0.12)),
                uniform(-0.005, 0.005),
            )
        })
        .collect();
    let mut probes = Vec::new();
    while let Some(load) = search::next_probe(&spec, &probes) {
        let attainment = rounds
            .iter()
            .map(|(c, noise)| {
                let a = 1.0 - 0.01 * ((load - c) / (0.05 * c)).exp() + noise;
                (a.clamp(0.0, 1.0) * 200.0).round() / 200.0
            })
            .collect();
        probes.push(Probe { load, attainment });
    }
    probes
}

fn point(e: &CapacityEstimate) -> f64 {
    match e.crossing {
        Crossing::At(x) => x,
        other => panic!("no crossing: {other:?}"),
    }
}

#[test]
fn the_point_estimate_lies_inside_its_interval() {
    let mut rng = SplitMix64::new(11);
    for case in 0..24 {
        let (cb, cc) = (12.0, 12.0 * (0.6 + 0.05 * (case % 12) as f64));
        let reps = if case < 12 { 10 } else { 5 };
        let (base, cand) = (
            simulated_search(cb, reps, &mut rng),
            simulated_search(cc, reps, &mut rng),
        );
        let (eb, db) =
            estimate(&base, Pairing::ByRound, 0.99, seed("c", "baseline"), DRAWS).unwrap();
        let (ec, dc) =
            estimate(&cand, Pairing::ByRound, 0.99, seed("c", "candidate"), DRAWS).unwrap();
        for e in [&eb, &ec] {
            let (x, i) = (point(e), e.interval);
            assert!(
                i.low <= x && i.high.is_none_or(|h| x <= h),
                "case {case}: {e:?}"
            );
        }
        let delta = point(&ec) / point(&eb) - 1.0;
        let i = change_interval(&db, &dc).unwrap();
        assert!(
            i.low <= delta && i.high.is_none_or(|h| delta <= h),
            "case {case}: Δ̂ {delta} outside {i:?}"
        );
    }
}

#[test]
fn redrawing_whole_rounds_widens_the_interval_of_correlated_probes() {
    // Two rounds in ten are bad at every load (as one unlucky arrival sequence is): redrawn
    // independently, each probe's bad rounds come and go on their own and partly cancel.
    let probes: Vec<Probe> = [
        (5.0, 0.0),
        (10.0, 0.01),
        (11.0, 0.02),
        (12.0, 0.04),
        (14.0, 0.3),
    ]
    .iter()
    .map(|&(load, drop): &(f64, f64)| {
        let mut a = [1.0 - drop / 4.0; 10];
        a[3] -= drop * 2.0;
        a[7] -= drop * 2.0;
        probe(load, &a)
    })
    .collect();
    let width = |pairing| {
        let (e, _) = estimate(&probes, pairing, 0.99, 5, DRAWS).unwrap();
        e.interval.high.unwrap() - e.interval.low
    };
    let (joint, independent) = (width(Pairing::ByRound), width(Pairing::Independent));
    assert!(joint > 1.2 * independent, "{joint} vs {independent}");
}
