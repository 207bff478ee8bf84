//! Thin wrappers over `statrs` distributions (Student t with non-integer df, standard normal).
//!
//! Callers in this module guarantee `df > 0` and probabilities in `[0, 1]`; the wrappers return
//! `None` otherwise instead of panicking inside statrs.

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// `true` when `x` lies strictly between 0 and 1 (false for NaN).
pub(crate) fn in_open_unit(x: f64) -> bool {
    x > 0.0 && x < 1.0
}

fn student(df: f64) -> Option<StudentsT> {
    if df.is_nan() || df <= 0.0 {
        return None;
    }
    StudentsT::new(0.0, 1.0, df).ok()
}

/// The `p`-quantile of Student's t with `df` degrees of freedom.
pub(crate) fn t_quantile(p: f64, df: f64) -> Option<f64> {
    if !(0.0..=1.0).contains(&p) {
        return None;
    }
    let q = student(df)?.inverse_cdf(p);
    q.is_finite().then_some(q)
}

/// Upper tail `P(T > x)` of Student's t with `df` degrees of freedom.
pub(crate) fn t_sf(x: f64, df: f64) -> Option<f64> {
    Some(student(df)?.sf(x).clamp(0.0, 1.0))
}

/// Two-sided p-value `2·P(T > |x|)`, capped at 1.
pub(crate) fn t_two_sided(x: f64, df: f64) -> Option<f64> {
    Some((2.0 * t_sf(x.abs(), df)?).min(1.0))
}

/// The `p`-quantile of the standard normal distribution; `p` must lie in `(0, 1)`.
pub(crate) fn z_quantile(p: f64) -> f64 {
    Normal::standard().inverse_cdf(p.clamp(f64::MIN_POSITIVE, 1.0 - f64::EPSILON))
}

/// Standard normal CDF.
pub(crate) fn z_cdf(x: f64) -> f64 {
    Normal::standard().cdf(x)
}

/// Standard normal upper tail `P(Z > x)`.
pub(crate) fn z_sf(x: f64) -> f64 {
    Normal::standard().sf(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-6, "{a} != {b}");
    }

    #[test]
    fn t_quantiles_match_statistics_md_3_1() {
        close(t_quantile(0.975, 4.0).unwrap(), 2.776445);
        close(t_quantile(0.975, 9.0).unwrap(), 2.262157);
        close(t_quantile(0.975, 14.0).unwrap(), 2.144787);
        close(t_quantile(0.975, 19.0).unwrap(), 2.093024);
        close(t_quantile(0.975, 29.0).unwrap(), 2.045230);
        close(t_quantile(0.975, 8.900050).unwrap(), 2.266036);
        close(z_quantile(0.975), 1.959964);
        close(z_quantile(0.8), 0.841621);
    }

    #[test]
    fn invalid_arguments_give_none_not_panics() {
        assert_eq!(t_quantile(0.5, 0.0), None);
        assert_eq!(t_quantile(1.5, 3.0), None);
        assert_eq!(t_sf(1.0, f64::NAN), None);
    }
}
