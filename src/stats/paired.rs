//! The paired-by-round test (statistics.md §2.4 item 6): when round r of both sides saw the
//! same workload (common random numbers), the run values are matched pairs and most of their
//! run-to-run variance is shared. The test is a one-sample t on the per-round differences:
//! `d_r = ln(b_r/a_r)` on [`Scale::Relative`] (CI of the ratio `exp(d̄ ± t·s_d/√n) − 1`),
//! `d_r = b_r − a_r` on [`Scale::Absolute`] (proportions, in their own unit).

use serde::Serialize;

use super::Interval;
use super::compare::Scale;
use super::describe::{mean, variance};
use super::dist::{in_open_unit, t_quantile, t_two_sided, z_quantile};
use super::power::{MAX_RUNS, noncentral_t_cdf};

/// A one-sample t on the per-round differences of `n ≥ 2` pairs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Paired {
    /// Pairs used (rounds present on both sides).
    pub pairs: usize,
    /// What `d_r` is: `ln(b_r/a_r)` (relative) or `b_r − a_r` (absolute).
    pub scale: Scale,
    /// `d̄`, the mean difference.
    pub mean: f64,
    /// `s_d`, the sample sd of the differences.
    pub sd: f64,
    /// `s_d/√n`.
    pub se: f64,
    /// `n − 1`.
    pub df: f64,
    /// `t = d̄/se`; `None` when every difference is the same (`s_d = 0`).
    pub t: Option<f64>,
    /// Two-sided p: `2·P(T_{n−1} > |t|)`; with `s_d = 0`, 1 for `d̄ = 0` and 0 otherwise.
    pub p_two_sided: f64,
    /// CI of `d̄` at `1 − α`: `d̄ ± t_{1−α/2,n−1}·se`.
    pub mean_ci: Interval,
    /// The change on `scale`: `exp(d̄) − 1` (ratio of geometric means − 1) or `d̄`.
    pub change: f64,
    /// CI of `change`: `exp(mean_ci) − 1`, or `mean_ci`.
    pub change_ci: Interval,
}

impl Paired {
    /// Every difference is the same but not zero: the change is deterministic (p = 0).
    pub fn is_deterministic(&self) -> bool {
        self.sd == 0.0 && self.mean != 0.0
    }
}

/// The per-round differences `d_r` of aligned pairs on `scale`; `None` when a value is not
/// finite, or (relative) not positive, so that its log ratio does not exist.
pub fn differences(baseline: &[f64], candidate: &[f64], scale: Scale) -> Option<Vec<f64>> {
    if baseline.len() != candidate.len() {
        return None;
    }
    let pairs = baseline.iter().zip(candidate);
    let d: Vec<f64> = match scale {
        Scale::Relative => pairs
            .map(|(a, b)| (*a > 0.0 && *b > 0.0).then(|| (b / a).ln()))
            .collect::<Option<_>>()?,
        Scale::Absolute => pairs.map(|(a, b)| b - a).collect(),
    };
    d.iter().all(|x| x.is_finite()).then_some(d)
}

/// The paired t-test of aligned pairs (`baseline[i]` and `candidate[i]` from one round) at
/// level `alpha`. `None` with fewer than 2 pairs, unequal lengths, `alpha` outside `(0, 1)`, or
/// values without a difference on `scale` (see [`differences`]).
pub fn paired(baseline: &[f64], candidate: &[f64], alpha: f64, scale: Scale) -> Option<Paired> {
    if !in_open_unit(alpha) || baseline.len() < 2 {
        return None;
    }
    let d = differences(baseline, candidate, scale)?;
    let n = d.len() as f64;
    let (m, sd) = (mean(&d), variance(&d)?.sqrt());
    let se = sd / n.sqrt();
    let df = n - 1.0;
    let (t, p, mean_ci) = if se > 0.0 {
        let t = m / se;
        let half = t_quantile(1.0 - alpha / 2.0, df)? * se;
        (
            Some(t),
            t_two_sided(t, df)?,
            Interval::bounded(m - half, m + half),
        )
    } else {
        let p = if m == 0.0 { 1.0 } else { 0.0 };
        (None, p, Interval::bounded(m, m))
    };
    let to_change = |x: f64| match scale {
        Scale::Relative => x.exp_m1(),
        Scale::Absolute => x,
    };
    let change_ci = match mean_ci {
        Interval::Bounded { low, high } => Interval::bounded(to_change(low), to_change(high)),
        Interval::Unbounded => Interval::Unbounded,
    };
    Some(Paired {
        pairs: d.len(),
        scale,
        mean: m,
        sd,
        se,
        df,
        t,
        p_two_sided: p,
        mean_ci,
        change: to_change(m),
        change_ci,
    })
}

/// Observed relative MDE of a paired comparison: `exp((t_{1−α/2,n−1} + t_{power,n−1})·s_d/√n)
/// − 1` (statistics.md §3.12 with the paired standard error). `None` on [`Scale::Absolute`],
/// like the unpaired MDE.
pub fn paired_mde(p: &Paired, alpha: f64, target_power: f64) -> Option<f64> {
    if p.scale != Scale::Relative || !in_open_unit(alpha) || !in_open_unit(target_power) {
        return None;
    }
    let t = t_quantile(1.0 - alpha / 2.0, p.df)? + t_quantile(target_power, p.df)?;
    Some((t * p.se).exp_m1())
}

/// Power of the two-sided paired t at level `alpha` with `n ≥ 2` pairs against a true mean
/// difference `delta` when the differences have sd `sd` (exact noncentral t, `ν = n − 1`,
/// `ncp = δ·√n/sd`).
pub fn paired_power(delta: f64, sd: f64, n: usize, alpha: f64) -> Option<f64> {
    let valid = n >= 2 && delta.is_finite() && sd > 0.0 && sd.is_finite();
    if !valid || !in_open_unit(alpha) {
        return None;
    }
    let df = n as f64 - 1.0;
    let crit = t_quantile(1.0 - alpha / 2.0, df)?;
    let ncp = delta.abs() * (n as f64).sqrt() / sd;
    Some(1.0 - noncentral_t_cdf(crit, df, ncp) + noncentral_t_cdf(-crit, df, ncp))
}

/// Smallest number of pairs whose paired t reaches `target_power` against a true mean
/// difference `delta` when the differences have sd `sd` ([`paired_power`]). `None` for
/// invalid arguments or beyond [`MAX_RUNS`].
pub fn paired_runs_for_effect(delta: f64, sd: f64, alpha: f64, target_power: f64) -> Option<usize> {
    let valid = delta != 0.0 && delta.is_finite() && sd > 0.0 && sd.is_finite();
    if !valid || !in_open_unit(alpha) || !in_open_unit(target_power) {
        return None;
    }
    // The normal approximation ((z + z)·sd/δ)² is a lower bound; start a bit below it.
    let z = z_quantile(1.0 - alpha / 2.0) + z_quantile(target_power);
    let approx = (z * sd / delta).powi(2);
    let start = ((approx * 0.9).floor() as usize).clamp(2, MAX_RUNS);
    (start..=MAX_RUNS)
        .find(|&n| paired_power(delta, sd, n, alpha).is_some_and(|p| p >= target_power))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::close;

    /// Known answer, computed independently in plain Python 3 (no SciPy on the build host):
    /// the t CDF from the regularized incomplete beta (Numerical Recipes' continued fraction),
    /// its quantile by bisection, which reproduces the table values t_{0.975,5} = 2.570582,
    /// t_{0.975,4} = 2.776445 and t_{0.8,5} = 0.919544.
    ///
    /// a = [100, 110, 90, 120, 95, 105], b = [102, 111, 93, 121, 97, 108].
    /// d = ln(b/a) = [0.0198026, 0.0090498, 0.0327898, 0.0082988, 0.0208341, 0.0281709];
    /// d̄ = 0.0198243, s_d = 0.0098764, se = 0.0040320, t = 4.916723, ν = 5, p = 0.004410;
    /// CI of d̄ = [0.0094597, 0.0301890] → ratio CI [+0.950458 %, +3.064930 %],
    /// Δ = exp(d̄) − 1 = +2.002215 %; MDE = exp((2.570582 + 0.919544)·se) − 1 = 1.417175 %.
    /// (Welch on the same values: p = 0.748, the per-round spread of ±10 % swamps the +2 %.)
    #[test]
    fn known_answer_on_log_ratios() {
        let a = [100.0, 110.0, 90.0, 120.0, 95.0, 105.0];
        let b = [102.0, 111.0, 93.0, 121.0, 97.0, 108.0];
        let p = paired(&a, &b, 0.05, Scale::Relative).unwrap();
        assert_eq!(p.pairs, 6);
        close(p.mean, 0.0198243);
        close(p.sd, 0.0098764);
        close(p.t.unwrap(), 4.916723);
        close(p.p_two_sided, 0.004410);
        close(p.change, 0.02002215);
        let Interval::Bounded { low, high } = p.change_ci else {
            panic!("unbounded")
        };
        close(low, 0.00950458);
        close(high, 0.03064930);
        close(paired_mde(&p, 0.05, 0.8).unwrap(), 0.01417175);
    }

    /// Proportions pair as plain differences: a = [0.01, 0.02, 0.00, 0.01, 0.03],
    /// b = [0.02, 0.03, 0.02, 0.02, 0.04]; d = [0.01, 0.01, 0.02, 0.01, 0.01], d̄ = 0.012,
    /// s_d = √(0.00002) = 0.0044721, se = 0.002, t = 6, ν = 4, p = 0.003883,
    /// CI 0.012 ± 2.776445·0.002 = [0.0064471, 0.0175529].
    #[test]
    fn known_answer_on_differences() {
        let a = [0.01, 0.02, 0.00, 0.01, 0.03];
        let b = [0.02, 0.03, 0.02, 0.02, 0.04];
        let p = paired(&a, &b, 0.05, Scale::Absolute).unwrap();
        close(p.change, 0.012);
        close(p.t.unwrap(), 6.0);
        close(p.p_two_sided, 0.003883);
        assert_eq!(p.mean_ci, p.change_ci);
        let Interval::Bounded { low, high } = p.change_ci else {
            panic!("unbounded")
        };
        close(low, 0.0064471);
        close(high, 0.0175529);
        assert_eq!(paired_mde(&p, 0.05, 0.8), None);
    }

    /// One-sample t power at n = 10, δ/sd = 1, α = 0.05: 0.803097 (R `pwr.t.test(n = 10,
    /// d = 1, type = "one.sample")` gives 0.8030962; recomputed in plain Python by integrating
    /// the normal tail over the χ² density of the sd).
    #[test]
    fn paired_power_matches_the_one_sample_t() {
        assert!((paired_power(1.0, 1.0, 10, 0.05).unwrap() - 0.803097).abs() < 1e-5);
        assert_eq!(paired_runs_for_effect(1.0, 1.0, 0.05, 0.8), Some(10));
        assert_eq!(paired_power(1.0, 0.0, 10, 0.05), None);
    }

    #[test]
    fn identical_ratios_are_exact() {
        let a = [10.0, 20.0, 30.0];
        let same = paired(&a, &a, 0.05, Scale::Relative).unwrap();
        assert_eq!((same.p_two_sided, same.t, same.change), (1.0, None, 0.0));
        let b: Vec<f64> = a.iter().map(|x| x * 1.1).collect();
        let scaled = paired(&a, &b, 0.05, Scale::Relative).unwrap();
        assert!(scaled.is_deterministic());
        assert_eq!(scaled.p_two_sided, 0.0);
        assert!((scaled.change - 0.1).abs() < 1e-12);
    }

    /// The same known answer through [`compare_paired`]: rounds pair by number (round 6 of
    /// the candidate has no partner and is left out), the p-value, Δ, CI and MDE are the
    /// paired ones, and the descriptions keep every value of each side.
    #[test]
    fn compare_paired_uses_the_rounds_on_both_sides() {
        use crate::stats::{Design, Direction, compare_paired};
        let a = [100.0, 110.0, 90.0, 120.0, 95.0, 105.0];
        let b = [102.0, 111.0, 93.0, 121.0, 97.0, 108.0];
        let base: Vec<(u32, f64)> = (0..6).zip(a).collect();
        let mut cand: Vec<(u32, f64)> = (0..6).zip(b).rev().collect();
        cand.push((6, 500.0));
        let dir = Direction::HigherIsBetter;
        let c = compare_paired(&base, &cand, dir, 0.05, Scale::Relative).unwrap();
        assert_eq!(c.design, Design::Paired { pairs: 6 });
        assert_eq!((c.baseline.n, c.candidate.n), (6, 7));
        close(c.p_value().unwrap(), 0.004410);
        let (change, _) = c.change().unwrap();
        close(change, 0.02002215);
        // Higher is better: a rise is D < 0.
        close(c.worse.as_ref().unwrap().d, -0.02002215);
        close(c.mde.unwrap(), 0.01417175);
        // Six positive log ratios: the signed rank agrees (p = 2/64).
        close(c.robust_p_value().unwrap(), 0.03125);
        assert!(!c.tests_disagree);
    }

    #[test]
    fn too_few_common_rounds_or_non_positive_values_stay_unpaired() {
        use crate::stats::{Design, Direction, compare_paired};
        let base: Vec<(u32, f64)> = (0..6).map(|r| (r, 100.0 + f64::from(r))).collect();
        let late: Vec<(u32, f64)> = (3..9).map(|r| (r, 100.0 + f64::from(r))).collect();
        let dir = Direction::LowerIsBetter;
        let c = compare_paired(&base, &late, dir, 0.05, Scale::Relative).unwrap();
        let Design::Unpaired { reason } = &c.design else {
            panic!("paired over 3 rounds")
        };
        assert!(reason.contains("only 3 rounds"), "{reason}");
        assert_eq!(c.p_value(), c.welch.as_ref().map(|w| w.p_value()));
        let zero: Vec<(u32, f64)> = (0..6).map(|r| (r, f64::from(r))).collect();
        let c = compare_paired(&zero, &base, dir, 0.05, Scale::Relative).unwrap();
        assert!(matches!(c.design, Design::Unpaired { .. }));
        let c = compare_paired(&zero, &base, dir, 0.05, Scale::Absolute).unwrap();
        assert_eq!(c.design, Design::Paired { pairs: 6 });
    }

    #[test]
    fn unusable_pairs_give_none() {
        assert!(paired(&[1.0], &[2.0], 0.05, Scale::Relative).is_none());
        assert!(paired(&[1.0, 2.0], &[2.0], 0.05, Scale::Relative).is_none());
        assert!(paired(&[0.0, 2.0], &[1.0, 2.0], 0.05, Scale::Relative).is_none());
        assert!(paired(&[0.0, 2.0], &[1.0, 2.0], 0.05, Scale::Absolute).is_some());
        assert!(paired(&[1.0, 2.0], &[1.0, 3.0], 1.0, Scale::Relative).is_none());
    }
}
