//! Drift detection (statistics.md §3.11): the Mann–Kendall trend test with tie-corrected
//! variance and continuity correction, and Sen's slope. O(n²): apply it to run values in
//! execution order or to 10–20 window medians of a run, not to thousands of requests.

use serde::Serialize;

use super::dist::z_sf;
use super::quantile::quantile_of;

/// Result of [`mann_kendall`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MannKendall {
    /// Number of values (in execution order).
    pub n: usize,
    /// `S = Σ_{i<j} sign(x_j − x_i)`.
    pub s: i64,
    /// Tie-corrected `Var(S)`.
    pub var_s: f64,
    /// Continuity-corrected z: `(S ∓ 1)/√Var`, 0 when `S = 0` or `Var = 0`.
    pub z: f64,
    /// Two-sided p-value `2·(1 − Φ(|z|))`.
    pub p: f64,
    /// Kendall's τ-a, `S/(n(n − 1)/2)`.
    pub tau: f64,
    /// Sen's slope: median of `(x_j − x_i)/(j − i)` over `i < j`, in units per step.
    pub sen_slope: f64,
    /// Relative drift over the series, `sen_slope·(n − 1)/|mean|`; `None` when the mean is 0.
    pub relative_drift: Option<f64>,
}

/// Mann–Kendall test and Sen's slope of `values` in order. Returns `None` for fewer than 3
/// values or a non-finite value.
pub fn mann_kendall(values: &[f64]) -> Option<MannKendall> {
    let n = values.len();
    if n < 3 || !values.iter().all(|v| v.is_finite()) {
        return None;
    }
    let mut s: i64 = 0;
    let mut slopes = Vec::with_capacity(n * (n - 1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            let d = values[j] - values[i];
            s += if d > 0.0 {
                1
            } else if d < 0.0 {
                -1
            } else {
                0
            };
            slopes.push(d / (j - i) as f64);
        }
    }
    let var_s = variance_of_s(values);
    let z = if var_s <= 0.0 || s == 0 {
        0.0
    } else {
        (s as f64 - (s.signum() as f64)) / var_s.sqrt()
    };
    let sen_slope = quantile_of(&slopes, 0.5)?;
    let mean = values.iter().sum::<f64>() / n as f64;
    Some(MannKendall {
        n,
        s,
        var_s,
        z,
        p: (2.0 * z_sf(z.abs())).min(1.0),
        tau: s as f64 / (n * (n - 1) / 2) as f64,
        sen_slope,
        relative_drift: (mean != 0.0).then(|| sen_slope * (n - 1) as f64 / mean.abs()),
    })
}

/// `[n(n − 1)(2n + 5) − Σ t(t − 1)(2t + 5)]/18` over tie groups of size `t`.
fn variance_of_s(values: &[f64]) -> f64 {
    let term = |t: usize| (t * (t - 1) * (2 * t + 5)) as f64;
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let ties: f64 = sorted
        .chunk_by(|a, b| a == b)
        .map(|group| term(group.len()))
        .sum();
    (term(values.len()) - ties) / 18.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::close;

    #[test]
    fn drift_example_of_statistics_md_3_11() {
        let x = [
            101.2, 100.8, 100.1, 99.7, 99.9, 99.2, 98.8, 99.0, 98.5, 98.1,
        ];
        let mk = mann_kendall(&x).unwrap();
        assert_eq!(mk.s, -41);
        close(mk.var_s, 125.0);
        close(mk.z, -3.577709);
        close(mk.p, 0.000347);
        close(mk.tau, -0.911111);
        close(mk.sen_slope, -0.325);
        // −0.325·9/99.53 = −2.939 % (statistics.md gives four digits).
        assert!((mk.relative_drift.unwrap() + 0.02939).abs() < 5e-6);
    }

    #[test]
    fn no_trend_example() {
        let x = [
            100.3, 99.6, 100.9, 99.8, 100.1, 100.6, 99.5, 100.2, 99.9, 100.4,
        ];
        let mk = mann_kendall(&x).unwrap();
        assert_eq!(mk.s, 1);
        assert_eq!(mk.z, 0.0);
        assert_eq!(mk.p, 1.0);
    }

    #[test]
    fn ties_reduce_the_variance() {
        // Tie group of size 2: Var = [4·3·13 − 2·1·9]/18 = 138/18.
        let mk = mann_kendall(&[1.0, 2.0, 2.0, 3.0]).unwrap();
        close(mk.var_s, 138.0 / 18.0);
        assert_eq!(mk.s, 5);
    }

    #[test]
    fn constant_series_has_no_trend() {
        let mk = mann_kendall(&[5.0; 6]).unwrap();
        assert_eq!((mk.s, mk.var_s, mk.z, mk.p), (0, 0.0, 0.0, 1.0));
        assert_eq!(mk.sen_slope, 0.0);
    }

    #[test]
    fn too_short_or_non_finite_gives_none() {
        assert_eq!(mann_kendall(&[1.0, 2.0]), None);
        assert_eq!(mann_kendall(&[1.0, 2.0, f64::NAN]), None);
    }
}
