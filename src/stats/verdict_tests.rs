//! Tests of the verdict table (statistics.md §2.6) and its edge cases (§3.14).

use super::*;
use crate::stats::compare::{Direction, WorseChange, compare};
use crate::stats::fixtures::{E1_BASE, E1_CAND, E2_BASE, E2_CAND};
use crate::stats::holm;

const ALL: [(Verdict, &str, &str); 8] = [
    (Verdict::Regression, "regression", "regression"),
    (Verdict::Improvement, "improvement", "improvement"),
    (Verdict::WithinNoise, "within noise", "within_noise"),
    (
        Verdict::PossibleRegression,
        "possible regression",
        "possible_regression",
    ),
    (
        Verdict::PossibleImprovement,
        "possible improvement",
        "possible_improvement",
    ),
    (Verdict::NoChange, "no change", "no_change"),
    (Verdict::Inconclusive, "inconclusive", "inconclusive"),
    (Verdict::Invalid, "invalid", "invalid"),
];

#[test]
fn labels_and_serde_names() {
    for (v, label, snake) in ALL {
        assert_eq!(v.to_string(), label);
        assert_eq!(serde_json::to_value(v).unwrap(), snake);
    }
}

#[test]
fn gates() {
    assert_eq!(Verdict::Regression.gate(Gate::Neutral), Gate::Fail);
    assert_eq!(Verdict::WithinNoise.gate(Gate::Neutral), Gate::Pass);
    assert_eq!(Verdict::Inconclusive.gate(Gate::Neutral), Gate::Warn);
    assert_eq!(Verdict::PossibleImprovement.gate(Gate::Neutral), Gate::Warn);
    assert_eq!(Verdict::Invalid.gate(Gate::Fail), Gate::Fail);
    assert_eq!(Verdict::Invalid.gate(Gate::Neutral), Gate::Neutral);
}

#[test]
fn report_example_throughput_is_a_regression_at_one_percent() {
    // statistics.md §2.10: Holm over 2 primary metrics, p = 1.3e-6 and 0.061.
    let tput = compare(&E1_BASE, &E1_CAND, Direction::HigherIsBetter, 0.05).unwrap();
    let ttft = compare(&E2_BASE, &E2_CAND, Direction::LowerIsBetter, 0.05).unwrap();
    let adjusted = holm(&[tput.p_value().unwrap(), ttft.p_value().unwrap()]);
    assert!((adjusted[0] - 2.548218e-6).abs() < 1e-10);
    assert_eq!(verdict(&tput, adjusted[0], 0.01, 0.05), Verdict::Regression);
    assert_eq!(
        verdict(&tput, adjusted[0], 0.02, 0.05),
        Verdict::WithinNoise
    );
    assert_eq!(
        verdict(&ttft, adjusted[1], 0.05, 0.05),
        Verdict::Inconclusive
    );
}

/// A comparison of two valid groups whose `D` and CI are then replaced by the given ones.
fn with_worse(d: f64, ci: Interval) -> Comparison {
    let mut c = compare(&E2_BASE, &E2_CAND, Direction::LowerIsBetter, 0.05).unwrap();
    c.worse = Some(WorseChange { d, ci });
    c
}

#[test]
fn decision_table_rows() {
    let b = Interval::bounded;
    let rows = [
        // (D, CI, p_holm, expected) with τ = 3 %, α = 0.05
        (0.06, b(0.04, 0.08), 0.001, Verdict::Regression),
        (-0.06, b(-0.08, -0.04), 0.001, Verdict::Improvement),
        (0.02, b(0.01, 0.03), 0.001, Verdict::WithinNoise),
        (0.025, b(0.005, 0.045), 0.001, Verdict::WithinNoise),
        (0.05, b(0.01, 0.09), 0.001, Verdict::PossibleRegression),
        (-0.05, b(-0.09, -0.01), 0.001, Verdict::PossibleImprovement),
        (0.005, b(-0.02, 0.025), 0.40, Verdict::NoChange),
        (0.01, b(-0.02, 0.04), 0.40, Verdict::Inconclusive),
        (0.0, b(-0.03, 0.01), 0.40, Verdict::Inconclusive),
        (
            0.05,
            Interval::Unbounded,
            0.001,
            Verdict::PossibleRegression,
        ),
        (0.01, Interval::Unbounded, 0.001, Verdict::WithinNoise),
        (0.01, Interval::Unbounded, 0.40, Verdict::Inconclusive),
        // The Holm-adjusted p gates significance even when the CI excludes 0.
        (0.06, b(0.04, 0.08), 0.07, Verdict::Inconclusive),
    ];
    for (d, ci, p, want) in rows {
        assert_eq!(
            verdict(&with_worse(d, ci), p, 0.03, 0.05),
            want,
            "D={d} {ci:?} p={p}"
        );
    }
}

#[test]
fn fewer_than_five_runs_is_invalid() {
    let c = compare(
        &[1.0, 1.1, 0.9, 1.0],
        &E2_CAND,
        Direction::LowerIsBetter,
        0.05,
    )
    .unwrap();
    assert_eq!(verdict(&c, 0.001, 0.03, 0.05), Verdict::Invalid);
    assert_eq!(
        invalid_reason(&c, 0.001, 0.03, 0.05),
        Some(InvalidReason::TooFewRuns {
            group: Group::Baseline,
            n: 4
        })
    );
}

#[test]
fn a_single_run_is_invalid_without_panicking() {
    let c = compare(&[3.0], &[3.0], Direction::LowerIsBetter, 0.05).unwrap();
    assert_eq!(c.p_value(), None);
    assert_eq!(verdict(&c, 1.0, 0.03, 0.05), Verdict::Invalid);
}

#[test]
fn zero_baseline_mean_is_invalid_with_no_ratio() {
    let c = compare(
        &[0.0; 5],
        &[0.0, 1.0, 0.0, 2.0, 0.0],
        Direction::LowerIsBetter,
        0.05,
    );
    let c = c.unwrap();
    let p = c.p_value().unwrap();
    assert_eq!(
        invalid_reason(&c, p, 0.03, 0.05),
        Some(InvalidReason::NoRatio)
    );
    assert_eq!(verdict(&c, p, 0.03, 0.05), Verdict::Invalid);
}

#[test]
fn identical_constant_samples_are_no_change_even_at_zero() {
    for value in [0.0, 7.5] {
        let c = compare(&[value; 6], &[value; 6], Direction::LowerIsBetter, 0.05).unwrap();
        let p = c.p_value().unwrap();
        assert_eq!(p, 1.0);
        assert_eq!(verdict(&c, p, 0.03, 0.05), Verdict::NoChange);
    }
}

#[test]
fn identical_varying_samples_are_no_change() {
    let c = compare(&E1_BASE, &E1_BASE, Direction::HigherIsBetter, 0.05).unwrap();
    let p = c.p_value().unwrap();
    assert!((p - 1.0).abs() < 1e-12);
    assert_eq!(c.worse.as_ref().unwrap().d, 0.0);
    assert_eq!(verdict(&c, p, 0.01, 0.05), Verdict::NoChange);
}

#[test]
fn constant_groups_with_different_means_decide_on_d_alone() {
    let slower = compare(&[100.0; 5], &[110.0; 5], Direction::LowerIsBetter, 0.05).unwrap();
    assert_eq!(verdict(&slower, 0.0, 0.03, 0.05), Verdict::Regression);
    assert_eq!(verdict(&slower, 0.0, 0.20, 0.05), Verdict::WithinNoise);
    let faster = compare(&[100.0; 5], &[110.0; 5], Direction::HigherIsBetter, 0.05).unwrap();
    assert_eq!(verdict(&faster, 0.0, 0.03, 0.05), Verdict::Improvement);
}

#[test]
fn bad_parameters_are_invalid() {
    let c = compare(&E2_BASE, &E2_CAND, Direction::LowerIsBetter, 0.05).unwrap();
    for (p, tau, alpha, name) in [
        (0.01, -0.1, 0.05, "tau"),
        (0.01, f64::NAN, 0.05, "tau"),
        (0.01, 0.03, 0.0, "alpha"),
        (f64::NAN, 0.03, 0.05, "p_adjusted"),
        (1.5, 0.03, 0.05, "p_adjusted"),
    ] {
        assert_eq!(verdict(&c, p, tau, alpha), Verdict::Invalid);
        let reason = invalid_reason(&c, p, tau, alpha).unwrap();
        assert!(matches!(reason, InvalidReason::BadParameter { name: n, .. } if n == name));
    }
}

#[test]
fn invalid_reasons_read_well() {
    let r = InvalidReason::TooFewRuns {
        group: Group::Candidate,
        n: 3,
    };
    assert_eq!(
        r.to_string(),
        "only 3 candidate runs (at least 5 needed for tests)"
    );
}
