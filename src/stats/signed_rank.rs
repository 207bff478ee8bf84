//! Wilcoxon's signed-rank test on paired differences: the robustness check of a paired
//! comparison, as Brunner–Munzel is of an unpaired one (statistics.md §2.4 item 6). Zero
//! differences are dropped (Wilcoxon's convention, SciPy's `zero_method="wilcox"`).

use serde::Serialize;

use super::dist::z_sf;
use super::rank::midranks;

/// Largest number of non-zero differences for the exact null distribution.
const EXACT_MAX_N: usize = 50;

/// Which p-value [`SignedRank::p`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignedRankMethod {
    /// Exact null distribution (no ties among `|d|`, at most 50 non-zero differences).
    Exact,
    /// Normal approximation with the tie-corrected variance, no continuity correction.
    Normal,
}

/// Wilcoxon's signed-rank test (two-sided).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignedRank {
    /// Non-zero differences ranked.
    pub n: usize,
    /// `W⁺`: the sum of the ranks of `|d|` over the positive differences.
    pub w_plus: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// How `p` was computed.
    pub method: SignedRankMethod,
}

/// The signed-rank test of `d` against a median of zero; `None` when a value is not finite.
pub fn signed_rank(d: &[f64]) -> Option<SignedRank> {
    if d.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let nonzero: Vec<f64> = d.iter().copied().filter(|x| *x != 0.0).collect();
    let n = nonzero.len();
    let abs: Vec<f64> = nonzero.iter().map(|x| x.abs()).collect();
    let (ranks, ties) = midranks(&abs);
    let w_plus: f64 = (ranks.iter().zip(&nonzero))
        .filter(|(_, x)| **x > 0.0)
        .map(|(r, _)| r)
        .sum();
    if n == 0 {
        return Some(SignedRank {
            n,
            w_plus,
            p: 1.0,
            method: SignedRankMethod::Exact,
        });
    }
    let (p, method) = if ties.is_empty() && n <= EXACT_MAX_N {
        (exact_p(n, w_plus), SignedRankMethod::Exact)
    } else {
        (normal_p(n, w_plus, &ties), SignedRankMethod::Normal)
    };
    Some(SignedRank {
        n,
        w_plus,
        p,
        method,
    })
}

/// `min(1, 2·min(P(W ≤ w), P(W ≥ w)))` from the exact distribution of `W⁺` (every sign
/// pattern equally likely), built by adding ranks 1..=n one at a time.
fn exact_p(n: usize, w: f64) -> f64 {
    let max = n * (n + 1) / 2;
    let mut dist = vec![0.0_f64; max + 1];
    dist[0] = 1.0;
    for rank in 1..=n {
        for s in (rank..=max).rev() {
            dist[s] = 0.5 * (dist[s] + dist[s - rank]);
        }
        for s in dist.iter_mut().take(rank) {
            *s *= 0.5;
        }
    }
    let w = w.round() as usize;
    let low: f64 = dist[..=w.min(max)].iter().sum();
    let high: f64 = dist[w.min(max)..].iter().sum();
    (2.0 * low.min(high)).min(1.0)
}

/// Normal approximation: mean `n(n+1)/4`, variance `n(n+1)(2n+1)/24 − Σ(t³ − t)/48`.
fn normal_p(n: usize, w: f64, ties: &[usize]) -> f64 {
    let n = n as f64;
    let correction: f64 = ties.iter().map(|&t| (t * t * t - t) as f64).sum::<f64>() / 48.0;
    let var = n * (n + 1.0) * (2.0 * n + 1.0) / 24.0 - correction;
    if var <= 0.0 {
        return 1.0;
    }
    let z = (w - n * (n + 1.0) / 4.0) / var.sqrt();
    (2.0 * z_sf(z.abs())).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// By hand, from the 2ⁿ equally likely sign patterns: for six positive differences W⁺ = 21 and
    /// p = 2/2⁶ = 0.03125; for d = [1, −2, 3, 4, 5] W⁺ = 13, and 3 of the 32 sign patterns
    /// reach W⁺ ≥ 13 (sums 13, 14, 15), so p = 2·3/32 = 0.1875.
    #[test]
    fn exact_p_values_by_hand() {
        let all = signed_rank(&[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]).unwrap();
        assert_eq!((all.w_plus, all.method), (21.0, SignedRankMethod::Exact));
        assert!((all.p - 0.03125).abs() < 1e-12);
        let mixed = signed_rank(&[1.0, -2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(mixed.w_plus, 13.0);
        assert!((mixed.p - 0.1875).abs() < 1e-12, "{}", mixed.p);
    }

    /// With ties the normal approximation is used: d = [1, 1, −1, 2, 2, 2] has |d| ranks
    /// 2, 2, 2, 5, 5, 5, W⁺ = 19, variance 22.75 − (24 + 24)/48 = 21.75, z = 1.822591,
    /// p = 0.068365.
    #[test]
    fn ties_use_the_corrected_normal_approximation() {
        let r = signed_rank(&[1.0, 1.0, -1.0, 2.0, 2.0, 2.0]).unwrap();
        assert_eq!((r.w_plus, r.method), (19.0, SignedRankMethod::Normal));
        let z: f64 = (19.0 - 10.5) / 21.75_f64.sqrt();
        assert!((r.p - 2.0 * z_sf(z)).abs() < 1e-12);
        assert!((r.p - 0.068365).abs() < 1e-6, "{}", r.p);
    }

    #[test]
    fn zeros_are_dropped_and_all_zero_is_no_evidence() {
        assert_eq!(signed_rank(&[0.0, 0.0]).unwrap().p, 1.0);
        assert_eq!(signed_rank(&[0.0, 1.0, 2.0]).unwrap().n, 2);
        assert!(signed_rank(&[f64::NAN]).is_none());
    }
}
