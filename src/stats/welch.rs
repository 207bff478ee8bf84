//! Welch's two-sample t-test with the Welch–Satterthwaite df (statistics.md §3.3): the primary
//! test of a baseline-vs-candidate comparison, on run-level values.

use serde::Serialize;

use super::Interval;
use super::describe::{mean, variance};
use super::dist::{in_open_unit, t_quantile, t_sf, t_two_sided};

/// A Welch test with a defined t statistic (at least one group has non-zero variance).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Welch {
    /// Difference of means, candidate − baseline (`b̄ − ā`).
    pub diff: f64,
    /// Standard error `√(vₐ + v_b)` with `v = s²/n`.
    pub se: f64,
    /// `t = (b̄ − ā)/se`.
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom `ν` (not an integer in general).
    pub df: f64,
    /// Two-sided p-value `2·P(T_ν > |t|)`.
    pub p_two_sided: f64,
    /// One-sided p-value for "candidate greater": `P(T_ν > t)`.
    pub p_greater: f64,
    /// One-sided p-value for "candidate less": `P(T_ν < t)`.
    pub p_less: f64,
    /// Confidence level of `diff_ci`, `1 − α`.
    pub confidence: f64,
    /// CI of `b̄ − ā`: `diff ± t_{1−α/2,ν}·se`.
    pub diff_ci: Interval,
}

/// Outcome of [`welch`]: a test, or the degenerate case where both variances are zero.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WelchResult {
    /// The regular test.
    Test(Welch),
    /// Both groups are constant, so t and ν are undefined. Equal means: no difference (p = 1);
    /// different means: a deterministic difference (p = 0), which reports should flag.
    ZeroVariance {
        /// `b̄ − ā`.
        diff: f64,
    },
}

impl WelchResult {
    /// The two-sided p-value to feed into Holm: the test's, or 1 (equal constant groups) /
    /// 0 (different constant groups) in the zero-variance case.
    pub fn p_value(&self) -> f64 {
        match self {
            WelchResult::Test(w) => w.p_two_sided,
            WelchResult::ZeroVariance { diff } if *diff == 0.0 => 1.0,
            WelchResult::ZeroVariance { .. } => 0.0,
        }
    }

    /// The Welch–Satterthwaite df, when a test was possible.
    pub fn df(&self) -> Option<f64> {
        match self {
            WelchResult::Test(w) => Some(w.df),
            WelchResult::ZeroVariance { .. } => None,
        }
    }
}

/// Welch's t-test of `candidate` against `baseline` at significance level `alpha` (the CI of
/// the difference has confidence `1 − α`).
///
/// Returns `None` when a group has fewer than 2 values, a value is not finite, or `alpha` is not
/// in `(0, 1)`: there is no variance to test with (statistics.md §3.14).
pub fn welch(baseline: &[f64], candidate: &[f64], alpha: f64) -> Option<WelchResult> {
    if !in_open_unit(alpha) {
        return None;
    }
    let all_finite = |s: &[f64]| s.iter().all(|v| v.is_finite());
    if !all_finite(baseline) || !all_finite(candidate) {
        return None;
    }
    let (na, nb) = (baseline.len() as f64, candidate.len() as f64);
    let va = variance(baseline)? / na;
    let vb = variance(candidate)? / nb;
    let diff = mean(candidate) - mean(baseline);
    if va + vb == 0.0 {
        return Some(WelchResult::ZeroVariance { diff });
    }
    let se = (va + vb).sqrt();
    let t = diff / se;
    let df = (va + vb).powi(2) / (va.powi(2) / (na - 1.0) + vb.powi(2) / (nb - 1.0));
    let crit = t_quantile(1.0 - alpha / 2.0, df)?;
    Some(WelchResult::Test(Welch {
        diff,
        se,
        t,
        df,
        p_two_sided: t_two_sided(t, df)?,
        p_greater: t_sf(t, df)?,
        p_less: t_sf(-t, df)?,
        confidence: 1.0 - alpha,
        diff_ci: Interval::bounded(diff - crit * se, diff + crit * se),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::{E1_BASE, E1_CAND, E2_BASE, E2_CAND, H_X, H_Y, close};

    fn test(a: &[f64], b: &[f64]) -> Welch {
        match welch(a, b, 0.05).unwrap() {
            WelchResult::Test(w) => w,
            other => panic!("expected a test, got {other:?}"),
        }
    }

    fn assert_ci(ci: Interval, low: f64, high: f64) {
        let Interval::Bounded { low: l, high: h } = ci else {
            panic!("unbounded")
        };
        close(l, low);
        close(h, high);
    }

    #[test]
    fn hand_example() {
        // statistics.md computes x̄ − ȳ, i.e. x = H_X plays the candidate.
        let w = test(&H_Y, &H_X);
        close(w.t, -1.897367);
        close(w.df, 5.882353);
        close(w.p_two_sided, 0.107531);
    }

    #[test]
    fn e2_matches_statistics_md_3_3() {
        let w = test(&E2_BASE, &E2_CAND);
        close(w.t, 2.140694);
        close(w.df, 8.900050);
        close(w.p_two_sided, 0.061289);
        close(w.p_greater, 0.030644);
        close(w.se, 7.146046);
        close(w.diff, 15.2975);
        assert_ci(w.diff_ci, -0.895696, 31.490696);
    }

    #[test]
    fn e1_matches_statistics_md_3_3() {
        let w = test(&E1_BASE, &E1_CAND);
        close(w.t, -8.061946);
        close(w.df, 13.963235);
        assert!((w.p_two_sided / 1.274109e-06 - 1.0).abs() < 1e-5);
        assert!((w.p_less / 6.370545e-07 - 1.0).abs() < 1e-5);
        close(w.diff, -36.67);
        assert_ci(w.diff_ci, -46.428036, -26.911964);
    }

    #[test]
    fn fewer_than_two_values_gives_no_test() {
        assert_eq!(welch(&[1.0], &[1.0, 2.0], 0.05), None);
        assert_eq!(welch(&[1.0, 2.0], &[], 0.05), None);
    }

    #[test]
    fn bad_inputs_give_no_test() {
        assert_eq!(welch(&[1.0, f64::NAN], &[1.0, 2.0], 0.05), None);
        assert_eq!(welch(&[1.0, 2.0], &[1.0, 2.0], 0.0), None);
    }

    #[test]
    fn zero_variance_in_both_groups() {
        let same = welch(&[3.0; 5], &[3.0; 6], 0.05).unwrap();
        assert_eq!(same, WelchResult::ZeroVariance { diff: 0.0 });
        assert_eq!(same.p_value(), 1.0);
        let apart = welch(&[3.0; 5], &[4.0; 5], 0.05).unwrap();
        assert_eq!(apart, WelchResult::ZeroVariance { diff: 1.0 });
        assert_eq!(apart.p_value(), 0.0);
        assert_eq!(apart.df(), None);
    }

    #[test]
    fn zero_variance_in_one_group_uses_the_other_groups_df() {
        let w = test(&[3.0; 5], &[1.0, 2.0, 3.0, 4.0]);
        close(w.df, 3.0);
    }
}
