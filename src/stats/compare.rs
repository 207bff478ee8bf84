//! Baseline vs candidate on run-level values (statistics.md §2.4): every raw number behind a
//! verdict — descriptions, Welch, the relative change with Fieller's CI (also as "D, positive =
//! worse"), Hedges' g, Mann–Whitney, Brunner–Munzel and the observed MDE. [`super::verdict()`]
//! turns a [`Comparison`] plus the Holm-adjusted p into a label.

use serde::Serialize;

use super::describe::{Description, describe_with};
use super::dist::in_open_unit;
use super::effect::{HedgesG, RelativeChange, hedges_g, relative_change};
use super::power::{DEFAULT_POWER, observed_mde};
use super::rank::{BrunnerMunzel, MannWhitney, brunner_munzel, mann_whitney};
use super::welch::{WelchResult, welch};
use super::{Group, Interval, StatsError};

/// Which way a metric improves. (The metrics module has its own enum; the caller maps it.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Larger is better (throughput, goodput).
    HigherIsBetter,
    /// Smaller is better (latencies, error rates).
    LowerIsBetter,
}

/// On which scale a change is measured and judged against τ (statistics.md §2.6, §3.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// `Δ = b̄/ā − 1` with Fieller's CI; τ is a fraction of the baseline. For positive
    /// quantities (latencies, throughputs).
    Relative,
    /// `b̄ − ā` with Welch's CI, in the metric's own unit; τ in that unit. For metrics that
    /// can be 0 (an error rate, an SLO attainment of 100 %), whose ratio to a baseline of 0
    /// does not exist.
    Absolute,
}

/// The change re-expressed so that positive means worse (statistics.md §2.6), on the
/// comparison's [`Scale`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorseChange {
    /// `D`: the change (`Δ`, or `b̄ − ā`) for lower-is-better metrics, its negative for
    /// higher-is-better ones.
    pub d: f64,
    /// CI of `D` at confidence `1 − α` (Fieller's, or Welch's for [`Scale::Absolute`]).
    pub ci: Interval,
}

/// All raw numbers of one baseline-vs-candidate comparison of one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Which way the metric improves.
    pub direction: Direction,
    /// Significance level; CIs here have confidence `1 − α`.
    pub alpha: f64,
    /// The scale `worse` (and so the verdict) is on.
    pub scale: Scale,
    /// Baseline description (CI at `1 − α`).
    pub baseline: Description,
    /// Candidate description (CI at `1 − α`).
    pub candidate: Description,
    /// Welch's test; `None` when a group has fewer than 2 runs.
    pub welch: Option<WelchResult>,
    /// `Δ = b̄/ā − 1` with Fieller and log-ratio CIs; `None` without a ratio (fewer than 2 runs,
    /// or baseline mean ≤ 0: use `welch`'s absolute difference instead).
    pub relative: Option<RelativeChange>,
    /// `D` (positive = worse) and its CI on `scale`: present exactly when `relative` is
    /// ([`Scale::Relative`]) or when `welch` is ([`Scale::Absolute`]).
    pub worse: Option<WorseChange>,
    /// Hedges' g (candidate − baseline); `None` with fewer than 2 runs or no spread at all.
    pub hedges: Option<HedgesG>,
    /// Mann–Whitney U with A₁₂ = P(cand > base) + ½P(=).
    pub mann_whitney: Option<MannWhitney>,
    /// Brunner–Munzel; `None` with fewer than 2 runs in a group.
    pub brunner_munzel: Option<BrunnerMunzel>,
    /// Observed relative MDE at 80 % power (statistics.md §3.12); `None` without a ratio
    /// and on [`Scale::Absolute`].
    pub mde: Option<f64>,
    /// Welch and the rank test (Brunner–Munzel, or exact MWU under complete separation) reach
    /// different significance decisions at `α`: the difference is shape- or outlier-driven.
    pub tests_disagree: bool,
}

impl Comparison {
    /// The primary two-sided p-value (Welch) to adjust with [`super::holm()`] across the family;
    /// `None` when a group has fewer than 2 runs.
    pub fn p_value(&self) -> Option<f64> {
        self.welch.as_ref().map(WelchResult::p_value)
    }

    /// The robustness p-value: Brunner–Munzel's, or the Mann–Whitney p under complete separation.
    pub fn robust_p_value(&self) -> Option<f64> {
        let bm = self.brunner_munzel.as_ref()?;
        bm.p_value()
            .or_else(|| self.mann_whitney.as_ref().map(|m| m.p))
    }

    /// Both groups are constant with different means: the difference is deterministic
    /// (p = 0 by convention), which reports should flag.
    pub fn is_deterministic(&self) -> bool {
        matches!(self.welch, Some(WelchResult::ZeroVariance { diff }) if diff != 0.0)
    }
}

/// [`compare_on`] on the relative scale: the comparison of positive quantities.
pub fn compare(
    baseline: &[f64],
    candidate: &[f64],
    direction: Direction,
    alpha: f64,
) -> Result<Comparison, StatsError> {
    compare_on(baseline, candidate, direction, alpha, Scale::Relative)
}

/// Every raw number behind a verdict on baseline vs candidate run-level values, with the
/// change judged on `scale`.
pub fn compare_on(
    baseline: &[f64],
    candidate: &[f64],
    direction: Direction,
    alpha: f64,
    scale: Scale,
) -> Result<Comparison, StatsError> {
    if !in_open_unit(alpha) {
        return Err(StatsError::Alpha(alpha));
    }
    let baseline_desc = describe_group(baseline, Group::Baseline, 1.0 - alpha)?;
    let candidate_desc = describe_group(candidate, Group::Candidate, 1.0 - alpha)?;
    let relative = relative_change(baseline, candidate, alpha);
    let welch = welch(baseline, candidate, alpha);
    let change = match scale {
        Scale::Relative => relative.as_ref().map(|r| (r.change, r.fieller)),
        Scale::Absolute => welch.as_ref().map(|w| match w {
            WelchResult::Test(t) => (t.diff, t.diff_ci),
            WelchResult::ZeroVariance { diff } => (
                *diff,
                Interval::Bounded {
                    low: *diff,
                    high: *diff,
                },
            ),
        }),
    };
    let worse = change.map(|(d, ci)| match direction {
        Direction::LowerIsBetter => WorseChange { d, ci },
        Direction::HigherIsBetter => WorseChange {
            d: -d,
            ci: ci.negated(),
        },
    });
    let mde = match scale {
        Scale::Relative => observed_mde(baseline, candidate, alpha, DEFAULT_POWER),
        Scale::Absolute => None,
    };
    let mut comparison = Comparison {
        direction,
        alpha,
        scale,
        baseline: baseline_desc,
        candidate: candidate_desc,
        welch,
        relative,
        worse,
        hedges: hedges_g(baseline, candidate),
        mann_whitney: mann_whitney(baseline, candidate),
        brunner_munzel: brunner_munzel(baseline, candidate),
        mde,
        tests_disagree: false,
    };
    comparison.tests_disagree = match (comparison.p_value(), comparison.robust_p_value()) {
        (Some(p), Some(r)) => (p < alpha) != (r < alpha),
        _ => false,
    };
    Ok(comparison)
}

fn describe_group(
    values: &[f64],
    group: Group,
    confidence: f64,
) -> Result<Description, StatsError> {
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(StatsError::NonFinite {
            group,
            index,
            value,
        });
    }
    describe_with(values, confidence).ok_or(StatsError::Empty { group })
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
