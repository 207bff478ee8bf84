//! Sample quantiles, Hyndman–Fan **type 7** (linear interpolation between order statistics;
//! NumPy's default `method="linear"`, R's `type=7`, criterion's `Percentiles::at`, vLLM's
//! `np.percentile`). Reports must name this estimator: on 1..=10 the p90 is 9.1 here, 9.63 with
//! statrs' type-8 `quantile` and 10 with nearest rank (HdrHistogram).
//!
//! Also: the distribution-free order-statistic CI of a quantile (statistics.md §3.9) and the
//! tail-sufficiency rule (§2.2).

use serde::Serialize;
use statrs::distribution::{Binomial, DiscreteCDF};

/// Type-7 quantile of an **ascending-sorted** slice, `q` in `[0, 1]`.
///
/// With `h = (n − 1)·q` and `j = ⌊h⌋`: `v[j] + (h − j)·(v[j+1] − v[j])`.
/// Returns `None` when `sorted` is empty or `q` is outside `[0, 1]` (or NaN).
/// The caller guarantees the order; use [`quantile_of`] for unsorted data.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    quantile_by(sorted.len(), q, |rank| sorted[rank])
}

/// The 0-based ranks a type-7 `q`-quantile of `n` values reads: `⌊h⌋`, and `⌊h⌋ + 1` when it
/// interpolates. `None` when `n = 0` or `q` is outside `[0, 1]`.
pub fn quantile_ranks(n: usize, q: f64) -> Option<(usize, Option<usize>)> {
    if n == 0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let h = (n - 1) as f64 * q;
    let j = h.floor() as usize;
    let next = (j + 1 < n && h - j as f64 > 0.0).then_some(j + 1);
    Some((j, next))
}

/// [`quantile`] of `n` values known by rank: `at(r)` is the value of 0-based rank `r` in
/// ascending order, and is asked only for the ranks of [`quantile_ranks`]. The arithmetic is
/// [`quantile`]'s, so a caller that finds order statistics without sorting (by selection over
/// a file) gets the same bits.
pub fn quantile_by(n: usize, q: f64, mut at: impl FnMut(usize) -> f64) -> Option<f64> {
    let (j, next) = quantile_ranks(n, q)?;
    let frac = (n - 1) as f64 * q - j as f64;
    let low = at(j);
    Some(match next {
        Some(k) => low + frac * (at(k) - low),
        None => low,
    })
}

/// Sorts a copy of `values` (total order) and returns its type-7 `q`-quantile.
pub fn quantile_of(values: &[f64], q: f64) -> Option<f64> {
    quantile(&sorted_copy(values), q)
}

/// Sorts a copy once and returns the type-7 quantile for each of `qs` (same order as `qs`).
/// Returns `None` when `values` is empty or any `q` is outside `[0, 1]`.
pub fn quantiles_of(values: &[f64], qs: &[f64]) -> Option<Vec<f64>> {
    let sorted = sorted_copy(values);
    qs.iter().map(|&q| quantile(&sorted, q)).collect()
}

pub(crate) fn sorted_copy(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// The tail-sufficiency rule (statistics.md §2.2): a per-run `q`-quantile from `n` values is
/// reliable only if `n·(1 − q) ≥ 10` (p99 needs 1000 values, p99.9 needs 10 000).
/// Unreliable quantiles are still computed but should be marked `(!)` in reports.
pub fn tail_is_reliable(n: usize, q: f64) -> bool {
    // The tolerance keeps exact cases such as 1000·(1 − 0.99) on the reliable side.
    n as f64 * (1.0 - q) + 1e-9 >= 10.0
}

/// Distribution-free confidence interval for the population `q`-quantile, as 1-based ranks of
/// the sorted sample (statistics.md §3.9; matches `scipy.stats.quantile_test`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QuantileRanks {
    /// 1-based rank of the lower bound `x₍ₗ₎`; `None` means the bound is −∞.
    pub lower: Option<usize>,
    /// 1-based rank of the upper bound `x₍ᵤ₎`; `None` means the bound is +∞ (too few values).
    pub upper: Option<usize>,
    /// Exact coverage `F_B(u − 1) − F_B(l − 1)` with `B ~ Binomial(n, q)`.
    pub coverage: f64,
}

/// Order-statistic CI for the `q`-quantile from `n` i.i.d. values at `confidence` (e.g. 0.95).
///
/// `l = max{k ≥ 1 : F_B(k − 1) ≤ α/2}`, `u = min{k : F_B(k − 1) ≥ 1 − α/2}`, `B ~ Bin(n, q)`.
/// Returns `None` for `n = 0`, `q` outside `(0, 1)` or `confidence` outside `(0, 1)`.
/// Requests inside a run are not i.i.d., so use this to illustrate tail sufficiency only.
pub fn quantile_ci_ranks(n: usize, q: f64, confidence: f64) -> Option<QuantileRanks> {
    let open_unit = |x: f64| x > 0.0 && x < 1.0;
    if n == 0 || !open_unit(q) || !open_unit(confidence) {
        return None;
    }
    let bin = Binomial::new(q, n as u64).ok()?;
    let cdf = |j: usize| bin.cdf(j as u64);
    let half = (1.0 - confidence) / 2.0;
    // Largest j in [0, n − 1] with F(j) ≤ α/2, found by bisection on the monotone CDF.
    // `lower` is that j + 1, i.e. the count of such j.
    let lower = Some(partition_point(n, |j| cdf(j) <= half)).filter(|&l| l >= 1);
    // Smallest j in [0, n] with F(j) ≥ 1 − α/2; F(n) = 1 always qualifies.
    let j_up = partition_point(n + 1, |j| cdf(j) < 1.0 - half);
    let upper = (j_up < n).then_some(j_up + 1);
    let f_upper = upper.map_or(1.0, |u| cdf(u - 1));
    let f_lower = lower.map_or(0.0, |l| cdf(l - 1));
    Some(QuantileRanks {
        lower,
        upper,
        coverage: f_upper - f_lower,
    })
}

/// Number of leading indices in `0..len` for which a true-then-false predicate holds
/// (`slice::partition_point` over indices, without allocating).
fn partition_point(len: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0usize, len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-6, "{a} != {b}");
    }

    #[test]
    fn p90_of_one_to_ten_is_9_1() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert!((quantile(&v, 0.90).unwrap() - 9.1).abs() < 1e-12);
    }

    #[test]
    fn type_7_row_of_statistics_md_3_2() {
        let x = [12.0, 15.0, 11.0, 20.0, 14.0, 13.0, 100.0, 16.0, 18.0, 17.0];
        let got = quantiles_of(&x, &[0.5, 0.9, 0.95, 0.99]).unwrap();
        for (g, want) in got.iter().zip([15.5, 28.0, 64.0, 92.8]) {
            close(*g, want);
        }
        close(quantile_of(&x, 0.0).unwrap(), 11.0);
        close(quantile_of(&x, 1.0).unwrap(), 100.0);
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[3.0], 0.99), Some(3.0));
        assert_eq!(quantile(&[1.0, 2.0], 1.5), None);
        assert_eq!(quantile(&[1.0, 2.0], f64::NAN), None);
        assert_eq!(quantiles_of(&[1.0], &[0.5, -0.1]), None);
    }

    #[test]
    fn tail_sufficiency_rule() {
        assert!(tail_is_reliable(1000, 0.99));
        assert!(!tail_is_reliable(999, 0.99));
        assert!(tail_is_reliable(10_000, 0.999));
        assert!(!tail_is_reliable(400, 0.99));
    }

    #[test]
    fn order_statistic_ci_table_of_statistics_md_3_9() {
        type Row = (usize, f64, Option<usize>, Option<usize>, f64);
        let rows: [Row; 7] = [
            (10, 0.5, Some(2), Some(9), 0.978516),
            (200, 0.5, Some(86), Some(115), 0.959963),
            (100, 0.99, Some(97), None, 0.981626),
            (1000, 0.99, Some(983), Some(997), 0.976095),
            (5000, 0.99, Some(4936), Some(4964), 0.953740),
            (2000, 0.999, Some(1995), None, 0.983491),
            (10_000, 0.999, Some(9983), Some(9997), 0.975457),
        ];
        for (n, q, lo, hi, cov) in rows {
            let r = quantile_ci_ranks(n, q, 0.95).unwrap();
            assert_eq!((r.lower, r.upper), (lo, hi), "n={n} q={q}");
            close(r.coverage, cov);
        }
    }

    #[test]
    fn binomial_checks_of_statistics_md_3_9() {
        let b = Binomial::new(0.99, 1000).unwrap();
        close(b.cdf(982), 0.013833);
        close(b.cdf(996), 0.989927);
    }

    #[test]
    fn order_statistic_ci_rejects_bad_arguments() {
        assert_eq!(quantile_ci_ranks(0, 0.5, 0.95), None);
        assert_eq!(quantile_ci_ranks(10, 1.0, 0.95), None);
        assert_eq!(quantile_ci_ranks(10, 0.5, 1.0), None);
    }
}
