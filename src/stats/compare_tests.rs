//! Tests of [`super::compare()`] and [`super::compare_on()`] on the statistics.md §3 examples.

use super::compare::*;
use super::{Group, Interval, StatsError};
use crate::stats::fixtures::{E1_BASE, E1_CAND, E2_BASE, E2_CAND, close};

#[test]
fn e1_throughput_regression_numbers() {
    let c = compare(&E1_BASE, &E1_CAND, Direction::HigherIsBetter, 0.05).unwrap();
    let w = c.worse.as_ref().unwrap();
    close(w.d, 0.014967);
    let Interval::Bounded { low, high } = w.ci else {
        panic!("unbounded")
    };
    close(low, 0.010994);
    close(high, 0.018933);
    assert!((c.p_value().unwrap() / 1.274109e-06 - 1.0).abs() < 1e-5);
    // Brunner–Munzel is undefined under complete separation; the exact MWU p stands in.
    assert!((c.robust_p_value().unwrap() / 1.082509e-05 - 1.0).abs() < 1e-6);
    assert!(!c.tests_disagree);
    close(c.hedges.as_ref().unwrap().g, -3.452710);
    assert!((c.mde.unwrap() - 0.005594).abs() < 5e-7);
}

#[test]
fn e2_latency_numbers_and_test_disagreement() {
    let c = compare(&E2_BASE, &E2_CAND, Direction::LowerIsBetter, 0.05).unwrap();
    let w = c.worse.as_ref().unwrap();
    close(w.d, 0.083053);
    assert_eq!(w.ci, c.relative.as_ref().unwrap().fieller);
    close(c.p_value().unwrap(), 0.061289);
    close(c.robust_p_value().unwrap(), 0.029763);
    // Welch p = 0.061 is not significant, Brunner–Munzel p = 0.030 is.
    assert!(c.tests_disagree);
    close(c.mann_whitney.as_ref().unwrap().a12, 0.7875);
    close(c.baseline.mean, 184.19);
    close(c.candidate.mean, 199.4875);
}

/// An error rate of 0 has no ratio: on the absolute scale the change is the difference of
/// means with Welch's CI. Candidate [0.02, 0.03, 0.02, 0.03, 0.02] against five zeros:
/// b̄ − ā = 0.024, se = √(30e-6 / 5) = 0.0024495, ν = 4, t_{0.975,4} = 2.776445, so the
/// CI is 0.024 ± 0.0068009 (SciPy: `ttest_ind(..., equal_var=False)`).
#[test]
fn a_rate_from_zero_is_compared_by_its_difference() {
    let base = [0.0; 5];
    let cand = [0.02, 0.03, 0.02, 0.03, 0.02];
    let relative = compare(&base, &cand, Direction::LowerIsBetter, 0.05).unwrap();
    assert_eq!((relative.worse, relative.scale), (None, Scale::Relative));
    let c = compare_on(
        &base,
        &cand,
        Direction::LowerIsBetter,
        0.05,
        Scale::Absolute,
    )
    .unwrap();
    let w = c.worse.as_ref().unwrap();
    close(w.d, 0.024);
    let Interval::Bounded { low, high } = w.ci else {
        panic!("unbounded")
    };
    close(low, 0.017199);
    close(high, 0.030801);
    assert_eq!(c.mde, None);
    // Higher-is-better (an attainment that rose by 0.024): D is the negative.
    let up = compare_on(
        &base,
        &cand,
        Direction::HigherIsBetter,
        0.05,
        Scale::Absolute,
    )
    .unwrap();
    close(up.worse.unwrap().d, -0.024);
    // Two constant groups: the difference is exact.
    let flat = compare_on(
        &[0.0; 3],
        &[0.5; 3],
        Direction::LowerIsBetter,
        0.05,
        Scale::Absolute,
    )
    .unwrap();
    let f = flat.worse.unwrap();
    assert_eq!(
        (f.d, f.ci),
        (
            0.5,
            Interval::Bounded {
                low: 0.5,
                high: 0.5
            }
        )
    );
}

#[test]
fn unusable_inputs_are_errors() {
    let ok = [1.0, 2.0];
    assert_eq!(
        compare(&[], &ok, Direction::LowerIsBetter, 0.05),
        Err(StatsError::Empty {
            group: Group::Baseline
        })
    );
    let err = compare(&ok, &[1.0, f64::NAN], Direction::LowerIsBetter, 0.05).unwrap_err();
    assert!(matches!(
        err,
        StatsError::NonFinite {
            group: Group::Candidate,
            index: 1,
            ..
        }
    ));
    assert_eq!(
        compare(&ok, &ok, Direction::LowerIsBetter, 1.0),
        Err(StatsError::Alpha(1.0))
    );
}

#[test]
fn a_single_run_is_descriptive_only() {
    let c = compare(&[10.0], &[11.0, 12.0], Direction::LowerIsBetter, 0.05).unwrap();
    assert_eq!(c.baseline.std, None);
    assert!(c.welch.is_none() && c.relative.is_none() && c.worse.is_none());
    assert!(c.hedges.is_none() && c.brunner_munzel.is_none() && c.mde.is_none());
    assert_eq!(c.p_value(), None);
    assert!(!c.tests_disagree);
}

#[test]
fn constant_groups_with_different_means_are_deterministic() {
    let c = compare(&[100.0; 5], &[90.0; 5], Direction::LowerIsBetter, 0.05).unwrap();
    assert!(c.is_deterministic());
    assert_eq!(c.p_value(), Some(0.0));
    close(c.worse.as_ref().unwrap().d, -0.1);
    assert!(c.hedges.is_none());
}

#[test]
fn zero_baseline_mean_has_no_ratio_but_keeps_the_test() {
    let c = compare(
        &[0.0; 5],
        &[0.0, 0.01, 0.0, 0.02, 0.0],
        Direction::LowerIsBetter,
        0.05,
    );
    let c = c.unwrap();
    assert!(c.relative.is_none() && c.worse.is_none() && c.mde.is_none());
    assert!(c.p_value().is_some());
    assert_eq!(c.baseline.cv, None);
}

#[test]
fn comparison_serializes_with_snake_case_tags() {
    let c = compare(&E2_BASE, &E2_CAND, Direction::LowerIsBetter, 0.05).unwrap();
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["direction"], "lower_is_better");
    assert_eq!(json["welch"]["kind"], "test");
    assert_eq!(json["worse"]["ci"]["kind"], "bounded");
    assert_eq!(json["mann_whitney"]["method"], "exact");
}
