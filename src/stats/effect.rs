//! Effect sizes (statistics.md §3.6): the relative change `Δ = b̄/ā − 1` with Fieller's CI
//! (using the Welch df, so the CI excludes 0 exactly when Welch's p < α) and the log-ratio
//! (delta-method) CI, and Hedges' g with the exact small-sample correction J.

use serde::Serialize;
use statrs::function::gamma::ln_gamma;

use super::Interval;
use super::describe::{mean, variance};
use super::dist::{in_open_unit, t_quantile};

/// Relative change of the candidate mean over the baseline mean, with two CIs of `Δ`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelativeChange {
    /// `R = b̄/ā`.
    pub ratio: f64,
    /// `Δ = R − 1` (a fraction: 0.083 means +8.3 %).
    pub change: f64,
    /// Confidence level of the intervals, `1 − α`.
    pub confidence: f64,
    /// Welch–Satterthwaite df used for Fieller's t quantile; `None` when both groups are
    /// constant (the intervals are then the single point `Δ`).
    pub df: Option<f64>,
    /// Fieller's `g = t²·vₐ/ā²`; the interval is unbounded when `g ≥ 1` ("baseline too noisy").
    pub fieller_g: f64,
    /// Fieller CI of `Δ` (the CI of `R`, minus 1).
    pub fieller: Interval,
    /// Log-ratio (delta-method) CI of `Δ`; `None` when the candidate mean is not positive.
    pub log_ratio: Option<LogRatio>,
}

/// The log-ratio alternative: `R·exp(∓ t_{1−α/2,ν_L}·√(wₐ + w_b))` with `w = v/mean²`.
/// Easier to explain than Fieller, but not exactly consistent with the Welch p-value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogRatio {
    /// Standard error of `ln R`, `√(wₐ + w_b)`.
    pub se: f64,
    /// Welch-type df on the relative variances `ν_L`; `None` when both groups are constant.
    pub df: Option<f64>,
    /// CI of `Δ`.
    pub ci: Interval,
}

/// Relative change `Δ = b̄/ā − 1` of `candidate` over `baseline`, CIs at confidence `1 − α`.
///
/// Returns `None` (no ratio; use the absolute difference from [`super::welch()`]) when a group
/// has fewer than 2 values or a non-finite value, `alpha` is outside `(0, 1)`, or the baseline
/// mean is ≤ 0 — except that two constant groups with equal means give `Δ = 0` even when the
/// mean is 0 (e.g. an error rate that is 0 in every run of both groups).
pub fn relative_change(baseline: &[f64], candidate: &[f64], alpha: f64) -> Option<RelativeChange> {
    let finite = |s: &[f64]| s.iter().all(|v| v.is_finite());
    if !(in_open_unit(alpha) && finite(baseline) && finite(candidate)) {
        return None;
    }
    let (a, b) = (mean(baseline), mean(candidate));
    let va = variance(baseline)? / baseline.len() as f64;
    let vb = variance(candidate)? / candidate.len() as f64;
    let confidence = 1.0 - alpha;
    if va + vb == 0.0 && a == b {
        return Some(point_change(1.0, confidence));
    }
    if a <= 0.0 {
        return None;
    }
    let ratio = b / a;
    if va + vb == 0.0 {
        return Some(point_change(ratio, confidence));
    }
    let df = welch_df(va, vb, baseline.len(), candidate.len());
    let t = t_quantile(1.0 - alpha / 2.0, df)?;
    Some(RelativeChange {
        ratio,
        change: ratio - 1.0,
        confidence,
        df: Some(df),
        fieller_g: t * t * va / (a * a),
        fieller: shift(fieller(a, b, va, vb, t), -1.0),
        log_ratio: log_ratio(baseline, candidate, a, b, va, vb, alpha),
    })
}

fn point_change(ratio: f64, confidence: f64) -> RelativeChange {
    let point = Interval::bounded(ratio - 1.0, ratio - 1.0);
    RelativeChange {
        ratio,
        change: ratio - 1.0,
        confidence,
        df: None,
        fieller_g: 0.0,
        fieller: point,
        log_ratio: Some(LogRatio {
            se: 0.0,
            df: None,
            ci: point,
        }),
    }
}

pub(crate) fn welch_df(va: f64, vb: f64, na: usize, nb: usize) -> f64 {
    (va + vb).powi(2) / (va.powi(2) / (na as f64 - 1.0) + vb.powi(2) / (nb as f64 - 1.0))
}

/// Fieller CI of `μ_b/μ_a` for independent means `a`, `b` with variances of the means `va`,
/// `vb` and critical value `t`; unbounded when `g = t²vₐ/a² ≥ 1`.
fn fieller(a: f64, b: f64, va: f64, vb: f64, t: f64) -> Interval {
    let denom = a * a - t * t * va;
    if denom <= 0.0 {
        return Interval::Unbounded;
    }
    // With g < 1 the discriminant is vb·denom + b²·va ≥ 0.
    let disc = (a * a * vb + b * b * va - t * t * va * vb).max(0.0);
    let root = t * disc.sqrt();
    Interval::bounded((a * b - root) / denom, (a * b + root) / denom)
}

fn shift(ci: Interval, by: f64) -> Interval {
    match ci {
        Interval::Bounded { low, high } => Interval::bounded(low + by, high + by),
        Interval::Unbounded => Interval::Unbounded,
    }
}

fn log_ratio(
    baseline: &[f64],
    candidate: &[f64],
    a: f64,
    b: f64,
    va: f64,
    vb: f64,
    alpha: f64,
) -> Option<LogRatio> {
    if b <= 0.0 {
        return None;
    }
    let (wa, wb) = (va / (a * a), vb / (b * b));
    let df = welch_df(wa, wb, baseline.len(), candidate.len());
    let se = (wa + wb).sqrt();
    let t = t_quantile(1.0 - alpha / 2.0, df)?;
    let ratio = b / a;
    let ci = Interval::bounded(ratio * (-t * se).exp() - 1.0, ratio * (t * se).exp() - 1.0);
    Some(LogRatio {
        se,
        df: Some(df),
        ci,
    })
}

/// Hedges' g: the standardized mean difference (candidate − baseline) over the pooled sd,
/// times the exact small-sample correction J.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HedgesG {
    /// Pooled sd `s_p` (n − 1 weights).
    pub pooled_sd: f64,
    /// Cohen's d `(b̄ − ā)/s_p`.
    pub d: f64,
    /// `J = Γ(ν/2) / (√(ν/2)·Γ((ν − 1)/2))`, `ν = nₐ + n_b − 2`.
    pub j: f64,
    /// `g = J·d`; positive when the candidate mean is larger.
    pub g: f64,
    /// Approximate standard error `√((nₐ + n_b)/(nₐn_b) + g²/(2(nₐ + n_b)))`.
    pub se: f64,
}

/// Hedges' g of `candidate` vs `baseline`. Returns `None` when a group has fewer than 2 values
/// or a non-finite value, or the pooled sd is 0 (both groups constant).
pub fn hedges_g(baseline: &[f64], candidate: &[f64]) -> Option<HedgesG> {
    if !baseline.iter().chain(candidate).all(|v| v.is_finite()) {
        return None;
    }
    let (na, nb) = (baseline.len() as f64, candidate.len() as f64);
    let (sa2, sb2) = (variance(baseline)?, variance(candidate)?);
    let nu = na + nb - 2.0;
    let pooled_sd = (((na - 1.0) * sa2 + (nb - 1.0) * sb2) / nu).sqrt();
    if pooled_sd == 0.0 {
        return None;
    }
    let d = (mean(candidate) - mean(baseline)) / pooled_sd;
    let j = small_sample_correction(nu);
    let g = j * d;
    let se = ((na + nb) / (na * nb) + g * g / (2.0 * (na + nb))).sqrt();
    Some(HedgesG {
        pooled_sd,
        d,
        j,
        g,
        se,
    })
}

/// Exact `J(ν)` via log-gamma (ν ≥ 2 here, since each group has at least 2 values).
fn small_sample_correction(nu: f64) -> f64 {
    (ln_gamma(nu / 2.0) - ln_gamma((nu - 1.0) / 2.0)).exp() / (nu / 2.0).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::{E1_BASE, E1_CAND, E2_BASE, E2_CAND, H_X, H_Y, close};

    fn bounds(ci: Interval) -> (f64, f64) {
        match ci {
            Interval::Bounded { low, high } => (low, high),
            Interval::Unbounded => panic!("unbounded"),
        }
    }

    #[test]
    fn e2_fieller_and_log_ratio() {
        let r = relative_change(&E2_BASE, &E2_CAND, 0.05).unwrap();
        close(r.ratio, 1.083053);
        close(r.change, 0.083053);
        close(r.df.unwrap(), 8.900050);
        assert!((r.fieller_g - 9.230e-4).abs() < 5e-7);
        let (lo, hi) = bounds(r.fieller);
        close(lo, 0.995188 - 1.0);
        close(hi, 1.172919 - 1.0);
        let l = r.log_ratio.unwrap();
        close(l.df.unwrap(), 9.222705);
        close(l.se, 0.036190);
        let (lo, hi) = bounds(l.ci);
        close(lo, 0.998218 - 1.0);
        close(hi, 1.175098 - 1.0);
    }

    #[test]
    fn e2_fieller_with_the_log_ratio_df() {
        let (a, b) = (mean(&E2_BASE), mean(&E2_CAND));
        let va = variance(&E2_BASE).unwrap() / 10.0;
        let vb = variance(&E2_CAND).unwrap() / 8.0;
        let t = t_quantile(0.975, 9.222705).unwrap();
        let (lo, hi) = bounds(fieller(a, b, va, vb, t));
        close(lo, 0.995655);
        close(hi, 1.172431);
    }

    #[test]
    fn e1_fieller_and_log_ratio() {
        let r = relative_change(&E1_BASE, &E1_CAND, 0.05).unwrap();
        close(r.ratio, 0.985033);
        assert!((r.fieller_g - 3.667e-6).abs() < 5e-10);
        let (lo, hi) = bounds(r.fieller);
        close(lo, 0.981067 - 1.0);
        close(hi, 0.989006 - 1.0);
        let (lo, hi) = bounds(r.log_ratio.unwrap().ci);
        close(lo, 0.981069 - 1.0);
        close(hi, 0.989013 - 1.0);
    }

    #[test]
    fn hand_example_is_wide_and_asymmetric() {
        let r = relative_change(&H_X, &H_Y, 0.05).unwrap();
        close(r.ratio, 2.0);
        assert!((r.fieller_g - 0.3359).abs() < 5e-5);
        let (lo, hi) = bounds(r.fieller);
        close(lo, 0.760028 - 1.0);
        close(hi, 5.262967 - 1.0);
    }

    #[test]
    fn fieller_is_unbounded_when_the_baseline_is_too_noisy() {
        let r = relative_change(&[0.1, 5.0, 0.2, 9.0, 0.3], &[5.0, 6.0, 5.5, 6.5, 5.2], 0.05);
        let r = r.unwrap();
        assert!(r.fieller_g >= 1.0);
        assert_eq!(r.fieller, Interval::Unbounded);
    }

    #[test]
    fn no_ratio_for_non_positive_baseline_mean() {
        assert_eq!(relative_change(&[-1.0, 1.0, 0.0], &[1.0, 2.0], 0.05), None);
        assert_eq!(relative_change(&[-2.0, -1.0], &[1.0, 2.0], 0.05), None);
    }

    #[test]
    fn identical_constant_groups_have_zero_change_even_at_zero() {
        let r = relative_change(&[0.0; 5], &[0.0; 5], 0.05).unwrap();
        assert_eq!(r.change, 0.0);
        assert_eq!(r.fieller, Interval::bounded(0.0, 0.0));
    }

    #[test]
    fn different_constant_groups_have_a_point_interval() {
        let r = relative_change(&[100.0; 5], &[110.0; 5], 0.05).unwrap();
        close(r.change, 0.1);
        let (lo, hi) = bounds(r.fieller);
        close(lo, 0.1);
        close(hi, 0.1);
        assert_eq!(r.df, None);
    }

    #[test]
    fn too_few_values_give_none() {
        assert_eq!(relative_change(&[1.0], &[1.0, 2.0], 0.05), None);
        assert_eq!(hedges_g(&[1.0, 2.0], &[1.0]), None);
    }

    #[test]
    fn hedges_g_e2() {
        let h = hedges_g(&E2_BASE, &E2_CAND).unwrap();
        close(h.pooled_sd, 13.845211);
        close(h.d, 1.104895);
        close(h.j, 0.952254);
        close(h.g, 1.052140);
        assert!((h.se - 0.505717).abs() < 1e-5);
    }

    #[test]
    fn hedges_g_e1() {
        let h = hedges_g(&E1_BASE, &E1_CAND).unwrap();
        close(h.pooled_sd, 10.170822);
        close(h.d, -3.605412);
        close(h.j, 0.957646);
        close(h.g, -3.452710);
    }

    #[test]
    fn hedges_g_is_undefined_for_constant_groups() {
        assert_eq!(hedges_g(&[1.0; 5], &[2.0; 5]), None);
    }
}
