//! Description of one sample of run-level values (statistics.md §2.3, §3.1): n, mean, sd
//! (n − 1), min, max, median (type 7), the Student-t CI of the mean, its relative half-width
//! and the coefficient of variation.

use serde::Serialize;

use super::dist::{in_open_unit, t_quantile};
use super::quantile::{quantile, sorted_copy};

/// Confidence level used by [`describe`]: 95 %.
pub const DEFAULT_CONFIDENCE: f64 = 0.95;

/// Summary of a sample. Fields that are undefined for the sample (an sd from one value, a
/// relative width around a zero mean) are `None`; no field is ever NaN or infinite.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Description {
    /// Number of values.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation with the n − 1 divisor; `None` when n < 2.
    pub std: Option<f64>,
    /// Standard error of the mean `std/√n`; `None` when n < 2.
    pub se: Option<f64>,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Median (type 7).
    pub median: f64,
    /// Confidence level of the interval below, e.g. 0.95.
    pub confidence: f64,
    /// Lower end of the Student-t CI of the mean; `None` when n < 2.
    pub ci_low: Option<f64>,
    /// Upper end of the Student-t CI of the mean; `None` when n < 2.
    pub ci_high: Option<f64>,
    /// CI half-width `t_{(1+c)/2, n−1}·s/√n`; `None` when n < 2.
    pub half_width: Option<f64>,
    /// Half-width relative to `|mean|` (a fraction); `None` when n < 2 or the mean is 0.
    pub relative_half_width: Option<f64>,
    /// Coefficient of variation `std/|mean|` (a fraction); `None` when n < 2 or the mean is 0.
    pub cv: Option<f64>,
}

/// Describes `values` with a 95 % confidence interval for the mean.
///
/// Returns `None` when `values` is empty or holds a NaN or infinite value.
pub fn describe(values: &[f64]) -> Option<Description> {
    describe_with(values, DEFAULT_CONFIDENCE)
}

/// Describes `values` with a `confidence`-level CI for the mean (`confidence` in `(0, 1)`).
///
/// Returns `None` when `values` is empty, holds a non-finite value, or `confidence` is not
/// strictly between 0 and 1.
pub fn describe_with(values: &[f64], confidence: f64) -> Option<Description> {
    if values.is_empty() || !values.iter().all(|v| v.is_finite()) {
        return None;
    }
    if !in_open_unit(confidence) {
        return None;
    }
    let n = values.len();
    let sorted = sorted_copy(values);
    let m = mean(values);
    let std = variance(values).map(f64::sqrt);
    let se = std.map(|s| s / (n as f64).sqrt());
    let t = t_quantile(0.5 + confidence / 2.0, n as f64 - 1.0);
    let half_width = se.zip(t).map(|(se, t)| t * se);
    let relative = |x: f64| (m != 0.0).then(|| x / m.abs());
    Some(Description {
        n,
        mean: m,
        std,
        se,
        min: sorted[0],
        max: sorted[n - 1],
        median: quantile(&sorted, 0.5)?,
        confidence,
        ci_low: half_width.map(|h| m - h),
        ci_high: half_width.map(|h| m + h),
        half_width,
        relative_half_width: half_width.and_then(relative),
        cv: std.and_then(relative),
    })
}

/// Arithmetic mean; the caller guarantees a non-empty slice.
pub(crate) fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Sample variance with the n − 1 divisor (two-pass); `None` when n < 2.
pub(crate) fn variance(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let m = mean(values);
    let ss: f64 = values.iter().map(|v| (v - m).powi(2)).sum();
    Some(ss / (values.len() - 1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::{E1_BASE, E1_CAND, E2_BASE, E2_CAND, close};

    #[test]
    fn e1_baseline_row_of_statistics_md_3_1() {
        let d = describe(&E1_BASE).unwrap();
        assert_eq!(d.n, 10);
        close(d.mean, 2450.05);
        close(d.std.unwrap(), 6.915562);
        close(d.se.unwrap(), 2.186893);
        close(d.cv.unwrap(), 0.00282262);
        close(d.ci_low.unwrap(), 2445.102905);
        close(d.ci_high.unwrap(), 2454.997095);
        close(d.relative_half_width.unwrap(), 0.00201918);
    }

    #[test]
    fn e1_candidate_row_of_statistics_md_3_1() {
        let d = describe(&E1_CAND).unwrap();
        close(d.mean, 2413.38);
        close(d.std.unwrap(), 12.612146);
        close(d.se.unwrap(), 3.988311);
        close(d.cv.unwrap(), 0.00522593);
        close(d.ci_low.unwrap(), 2404.357814);
        close(d.ci_high.unwrap(), 2422.402186);
        close(d.relative_half_width.unwrap(), 0.00373840);
    }

    #[test]
    fn e2_rows_of_statistics_md_3_1() {
        let b = describe(&E2_BASE).unwrap();
        close(b.mean, 184.19);
        close(b.std.unwrap().powi(2), 60.983222);
        close(b.median, 182.8);
        close(b.min, 175.9);
        close(b.max, 201.7);
        let c = describe(&E2_CAND).unwrap();
        assert_eq!(c.n, 8);
        close(c.mean, 199.4875);
        close(c.std.unwrap(), 18.966846);
        close(c.std.unwrap().powi(2), 359.74125);
        close(c.cv.unwrap(), 0.095078);
        close(c.median, 194.1);
    }

    #[test]
    fn empty_and_non_finite_are_rejected() {
        assert_eq!(describe(&[]), None);
        assert_eq!(describe(&[1.0, f64::NAN]), None);
        assert_eq!(describe(&[1.0, f64::INFINITY]), None);
        assert_eq!(describe_with(&[1.0, 2.0], 1.0), None);
    }

    #[test]
    fn a_single_value_has_no_spread_fields() {
        let d = describe(&[42.0]).unwrap();
        assert_eq!(
            (d.n, d.mean, d.median, d.min, d.max),
            (1, 42.0, 42.0, 42.0, 42.0)
        );
        assert_eq!(d.std, None);
        assert_eq!(d.ci_low, None);
        assert_eq!(d.half_width, None);
        assert_eq!(d.cv, None);
    }

    #[test]
    fn zero_mean_has_no_relative_fields() {
        let d = describe(&[-1.0, 1.0, 0.0]).unwrap();
        assert_eq!(d.mean, 0.0);
        assert!(d.std.is_some() && d.half_width.is_some());
        assert_eq!(d.cv, None);
        assert_eq!(d.relative_half_width, None);
    }

    #[test]
    fn constant_sample_has_a_zero_width_interval() {
        let d = describe(&[5.0; 6]).unwrap();
        assert_eq!(d.std, Some(0.0));
        assert_eq!((d.ci_low, d.ci_high), (Some(5.0), Some(5.0)));
        assert_eq!(d.cv, Some(0.0));
    }

    #[test]
    fn other_confidence_levels_use_the_matching_t_quantile() {
        // t_{0.975, 4} = 2.776445 (statistics.md §3.1): a 95 % CI over 5 values.
        let d = describe_with(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.95).unwrap();
        close(
            d.half_width.unwrap(),
            2.776445 * (2.5f64).sqrt() / 5f64.sqrt(),
        );
        let wider = describe_with(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.99).unwrap();
        assert!(wider.half_width.unwrap() > d.half_width.unwrap());
    }
}
