//! Precision, power, sample size and minimum detectable effect (statistics.md §3.12).
//!
//! Effects and CVs are fractions (0.02 = 2 %). "Runs" are repetitions per group. Design-time
//! power uses the exact noncentral t (two-sided, equal n, common CV); the MDE observed for one
//! comparison uses the `t_{1−α/2,ν} + t_{power,ν}` rule with the Welch df.

use std::f64::consts::PI;

use statrs::function::beta::beta_reg;
use statrs::function::gamma::ln_gamma;

use super::describe::{mean, variance};
use super::dist::{in_open_unit, t_quantile, z_cdf, z_quantile};
use super::effect::welch_df;

/// Searches for a number of runs stop here and report "not reachable".
pub const MAX_RUNS: usize = 100_000;

/// Conventional target power for MDE and sample-size questions.
pub const DEFAULT_POWER: f64 = 0.8;

/// Relative CI half-width `t_{(1+c)/2, n−1}·CV/√n` of a mean from `n ≥ 2` runs.
pub fn relative_half_width(cv: f64, n: usize, confidence: f64) -> Option<f64> {
    if n < 2 || !(cv >= 0.0 && cv.is_finite()) || !in_open_unit(confidence) {
        return None;
    }
    let t = t_quantile(0.5 + confidence / 2.0, n as f64 - 1.0)?;
    Some(t * cv / (n as f64).sqrt())
}

/// Smallest `n ≥ 2` whose relative half-width at `confidence` is ≤ `target` (statistics.md §2.8
/// stopping rule). `None` for invalid arguments or when more than [`MAX_RUNS`] would be needed.
pub fn runs_for_half_width(cv: f64, target: f64, confidence: f64) -> Option<usize> {
    if !(target > 0.0 && in_open_unit(confidence)) {
        return None;
    }
    // Since t > z, the answer is at least (z·CV/e)²; start there and walk up.
    let z = z_quantile(0.5 + confidence / 2.0);
    let start = ((z * cv / target).powi(2).floor() as usize).clamp(2, MAX_RUNS);
    (start..=MAX_RUNS)
        .find(|&n| relative_half_width(cv, n, confidence).is_some_and(|h| h <= target))
}

/// CDF `P(T′ ≤ t)` of the noncentral t with `df` degrees of freedom and noncentrality `ncp`
/// (Lenth 1989, algorithm AS 243).
pub fn noncentral_t_cdf(t: f64, df: f64, ncp: f64) -> f64 {
    let (tt, del, negated) = if t < 0.0 {
        (-t, -ncp, true)
    } else {
        (t, ncp, false)
    };
    let tail = if del.abs() > 37.0 {
        // exp(−δ²/2) underflows: the normal approximation of Abramowitz & Stegun 26.7.10.
        z_cdf((tt * (1.0 - 1.0 / (4.0 * df)) - del) / (1.0 + tt * tt / (2.0 * df)).sqrt())
    } else {
        as243_series(tt, df, del) + z_cdf(-del)
    };
    let cdf = if negated { 1.0 - tail } else { tail };
    cdf.clamp(0.0, 1.0)
}

/// The Poisson-weighted incomplete-beta series of AS 243 for `t ≥ 0`.
fn as243_series(t: f64, df: f64, del: f64) -> f64 {
    let x = t * t / (t * t + df);
    if x <= 0.0 {
        return 0.0;
    }
    let lambda = del * del;
    let mut p = 0.5 * (-0.5 * lambda).exp();
    let mut q = (2.0 / PI).sqrt() * p * del;
    let mut s = 0.5 - p;
    let mut a = 0.5;
    let b = 0.5 * df;
    let rxb = (1.0 - x).powf(b);
    let ln_beta = 0.5 * PI.ln() + ln_gamma(b) - ln_gamma(a + b);
    let mut xodd = beta_reg(a, b, x);
    let mut godd = 2.0 * rxb * (a * x.ln() - ln_beta).exp();
    let mut xeven = 1.0 - rxb;
    let mut geven = b * x * rxb;
    let mut sum = p * xodd + q * xeven;
    let mut en = 1.0;
    loop {
        a += 1.0;
        xodd -= godd;
        xeven -= geven;
        godd *= x * (a + b - 1.0) / a;
        geven *= x * (a + b - 0.5) / (a + 0.5);
        p *= lambda / (2.0 * en);
        q *= lambda / (2.0 * en + 1.0);
        s -= p;
        en += 1.0;
        sum += p * xodd + q * xeven;
        if 2.0 * s * (xodd - godd) <= 1e-14 || en > 2000.0 {
            return sum;
        }
    }
}

/// Power of the two-sided two-sample t-test at level `alpha` with `n` runs per group to detect
/// a standardized effect `d = δ/CV`: `P(T′ > t_c) + P(T′ < −t_c)`, `ν = 2n − 2`, `ncp = d·√(n/2)`.
fn power_standardized(d: f64, n: usize, alpha: f64) -> Option<f64> {
    let df = 2.0 * n as f64 - 2.0;
    let crit = t_quantile(1.0 - alpha / 2.0, df)?;
    let ncp = d * (n as f64 / 2.0).sqrt();
    Some(1.0 - noncentral_t_cdf(crit, df, ncp) + noncentral_t_cdf(-crit, df, ncp))
}

/// Power to detect a relative change `delta` with `n ≥ 2` runs per group and a common `cv`,
/// two-sided at level `alpha` (exact noncentral t).
pub fn power(delta: f64, cv: f64, n: usize, alpha: f64) -> Option<f64> {
    let valid = n >= 2 && cv > 0.0 && cv.is_finite() && delta.is_finite() && in_open_unit(alpha);
    if !valid {
        return None;
    }
    power_standardized(delta.abs() / cv, n, alpha)
}

/// Smallest `n ≥ 2` runs per group whose exact power to detect `delta` reaches `target_power`.
/// `None` for invalid arguments or when more than [`MAX_RUNS`] would be needed.
pub fn runs_for_effect(delta: f64, cv: f64, alpha: f64, target_power: f64) -> Option<usize> {
    let approx = runs_for_effect_normal(delta, cv, alpha, target_power)?;
    // The exact n is at least the normal approximation (t tails are heavier); start a bit below.
    let start = ((approx * 0.9).floor() as usize).clamp(2, MAX_RUNS);
    (start..=MAX_RUNS).find(|&n| power(delta, cv, n, alpha).is_some_and(|p| p >= target_power))
}

/// Normal approximation of the runs per group: `2·((z_{1−α/2} + z_power)·CV/δ)²` (not rounded).
pub fn runs_for_effect_normal(delta: f64, cv: f64, alpha: f64, target_power: f64) -> Option<f64> {
    let valid = delta != 0.0 && delta.is_finite() && cv > 0.0 && cv.is_finite();
    if !valid || !in_open_unit(alpha) || !in_open_unit(target_power) {
        return None;
    }
    let z = z_quantile(1.0 - alpha / 2.0) + z_quantile(target_power);
    Some(2.0 * (z * cv / delta).powi(2))
}

/// Minimum detectable relative effect with `n ≥ 2` runs per group, common `cv`, two-sided level
/// `alpha` and `target_power` (exact noncentral t, found by bisection). Rule of thumb at n = 10,
/// α = 0.05, power 0.8: MDE ≈ 1.32 × CV.
pub fn design_mde(cv: f64, n: usize, alpha: f64, target_power: f64) -> Option<f64> {
    let valid = n >= 2 && cv > 0.0 && cv.is_finite() && in_open_unit(alpha);
    if !(valid && target_power > alpha && target_power < 1.0) {
        return None;
    }
    let reaches = |d: f64| power_standardized(d, n, alpha).map(|p| p >= target_power);
    let mut high = 1.0;
    while !reaches(high)? {
        high *= 2.0;
        if high > 1e6 {
            return None;
        }
    }
    let mut low = 0.0;
    for _ in 0..80 {
        let mid = 0.5 * (low + high);
        if reaches(mid)? {
            high = mid;
        } else {
            low = mid;
        }
    }
    Some(high * cv)
}

/// MDE observed for one comparison, relative to the baseline mean:
/// `(t_{1−α/2,ν} + t_{power,ν})·√(vₐ + v_b)/ā` with the Welch df `ν`.
///
/// `None` when a group has fewer than 2 values or a non-finite value, the baseline mean is ≤ 0,
/// or the levels are invalid. Two constant groups give 0 (any difference is detectable).
pub fn observed_mde(
    baseline: &[f64],
    candidate: &[f64],
    alpha: f64,
    target_power: f64,
) -> Option<f64> {
    let finite = baseline.iter().chain(candidate).all(|v| v.is_finite());
    if !finite || !in_open_unit(alpha) || !in_open_unit(target_power) {
        return None;
    }
    let va = variance(baseline)? / baseline.len() as f64;
    let vb = variance(candidate)? / candidate.len() as f64;
    let a = mean(baseline);
    if a <= 0.0 {
        return None;
    }
    if va + vb == 0.0 {
        return Some(0.0);
    }
    let df = welch_df(va, vb, baseline.len(), candidate.len());
    let t = t_quantile(1.0 - alpha / 2.0, df)? + t_quantile(target_power, df)?;
    Some(t * (va + vb).sqrt() / a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::{E1_BASE, E1_CAND, E2_BASE, E2_CAND, close};

    #[test]
    fn runs_for_half_width_table() {
        for (cv, e, n) in [
            (0.04, 0.02, 18),
            (0.025, 0.02, 9),
            (0.01, 0.01, 7),
            (0.05, 0.01, 99),
            (0.10, 0.05, 18),
        ] {
            assert_eq!(runs_for_half_width(cv, e, 0.95), Some(n), "cv={cv} e={e}");
        }
        close(t_quantile(0.975, 17.0).unwrap(), 2.109816);
        close(relative_half_width(0.04, 18, 0.95).unwrap(), 0.019892);
    }

    #[test]
    fn relative_half_width_with_ten_runs() {
        close(relative_half_width(0.01, 10, 0.95).unwrap(), 0.007154);
        close(relative_half_width(0.02, 10, 0.95).unwrap(), 0.014307);
        close(relative_half_width(0.05, 10, 0.95).unwrap(), 0.035768);
        assert_eq!(relative_half_width(0.05, 1, 0.95), None);
    }

    #[test]
    fn runs_for_effect_table() {
        // (δ, CV, normal approximation, exact n, power at exact n, power at n = 10)
        let rows = [
            (0.03, 0.025, 10.9012, 12, 0.8021, 0.7184),
            (0.05, 0.03, 5.6512, 7, 0.8163, 0.9408),
            (0.02, 0.02, 15.6978, 17, 0.8070, 0.5620),
            (0.01, 0.02, 62.7910, 64, 0.8015, 0.1851),
        ];
        for (delta, cv, approx, n, p_n, p_10) in rows {
            let got = runs_for_effect_normal(delta, cv, 0.05, 0.8).unwrap();
            assert!((got - approx).abs() < 5e-5, "{got} vs {approx}");
            assert_eq!(runs_for_effect(delta, cv, 0.05, 0.8), Some(n));
            assert!((power(delta, cv, n, 0.05).unwrap() - p_n).abs() < 5e-5);
            assert!((power(delta, cv, 10, 0.05).unwrap() - p_10).abs() < 5e-5);
        }
    }

    #[test]
    fn design_mde_with_ten_runs() {
        for (cv, mde) in [(0.01, 0.013249), (0.02, 0.026499), (0.05, 0.066247)] {
            let got = design_mde(cv, 10, 0.05, 0.8).unwrap();
            assert!((got - mde).abs() < 5e-7, "{got} vs {mde}");
        }
    }

    #[test]
    fn observed_mde_of_the_examples() {
        let df = 8.900050;
        close(t_quantile(0.8, df).unwrap(), 0.883894);
        let e2 = observed_mde(&E2_BASE, &E2_CAND, 0.05, 0.8).unwrap();
        assert!((e2 - 0.122208).abs() < 5e-7);
        let e1 = observed_mde(&E1_BASE, &E1_CAND, 0.05, 0.8).unwrap();
        assert!((e1 - 0.005594).abs() < 5e-7);
    }

    #[test]
    fn observed_mde_edge_cases() {
        assert_eq!(observed_mde(&[5.0; 5], &[6.0; 5], 0.05, 0.8), Some(0.0));
        assert_eq!(observed_mde(&[0.0; 5], &[1.0, 2.0], 0.05, 0.8), None);
        assert_eq!(observed_mde(&[1.0], &[1.0, 2.0], 0.05, 0.8), None);
    }

    #[test]
    fn noncentral_t_reduces_to_central_t_and_is_symmetric() {
        // ncp = 0: the central t CDF, e.g. P(T_9 ≤ 2.262157) = 0.975.
        close(noncentral_t_cdf(2.262157, 9.0, 0.0), 0.975);
        close(noncentral_t_cdf(-2.262157, 9.0, 0.0), 0.025);
        let (a, b) = (
            noncentral_t_cdf(1.3, 7.5, 0.8),
            noncentral_t_cdf(-1.3, 7.5, -0.8),
        );
        close(a + b, 1.0);
        // Far tails do not underflow into nonsense.
        assert!(noncentral_t_cdf(2.0, 18.0, 60.0) < 1e-6);
    }

    #[test]
    fn invalid_arguments_give_none() {
        assert_eq!(runs_for_half_width(0.02, 0.0, 0.95), None);
        assert_eq!(runs_for_effect(0.0, 0.02, 0.05, 0.8), None);
        assert_eq!(design_mde(0.02, 1, 0.05, 0.8), None);
        assert_eq!(power(0.02, 0.0, 10, 0.05), None);
        assert_eq!(runs_for_half_width(10.0, 0.0001, 0.95), None);
    }
}
