//! Rank tests on run-level values (statistics.md §3.4, §3.5): Mann–Whitney U (asymptotic with
//! tie correction and continuity correction; exact by a q-binomial recursion when there are no
//! ties) with A₁₂, and Brunner–Munzel. Both are robustness checks; only Welch's p enters Holm.
//! statrs' `mannwhitneyu` is deliberately not used: its exact path is wrong when
//! `len(x) <= len(y)` and enumerates all subsets.

use serde::Serialize;

use super::dist::{t_two_sided, z_sf};

/// Largest `n₁ + n₂` for the exact Mann–Whitney distribution (counts stay within `i128`).
const EXACT_MAX_N: usize = 100;

/// Which Mann–Whitney p-value [`MannWhitney::p`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MwuMethod {
    /// Exact null distribution (no ties, `n₁ + n₂ ≤ 100`).
    Exact,
    /// Normal approximation with tie and continuity correction.
    Asymptotic,
}

/// Mann–Whitney U test of candidate vs baseline (two-sided).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MannWhitney {
    /// `U` of the candidate: `R_cand − n_c(n_c + 1)/2`.
    pub u_candidate: f64,
    /// `U` of the baseline: `n_c·n_b − u_candidate`.
    pub u_baseline: f64,
    /// `A₁₂ = u_candidate/(n_c·n_b) = P(cand > base) + ½P(=)`.
    pub a12: f64,
    /// Whether any value occurs more than once in the pooled sample.
    pub ties: bool,
    /// Continuity-corrected z of `max(U)`; `None` when every value is tied.
    pub z: Option<f64>,
    /// Asymptotic two-sided p-value.
    pub p_asymptotic: f64,
    /// Exact two-sided p-value; `None` with ties or when `n₁ + n₂ > 100`.
    pub p_exact: Option<f64>,
    /// The p-value to report: exact when available, else asymptotic.
    pub p: f64,
    /// Which of the two `p` is.
    pub method: MwuMethod,
}

/// Mann–Whitney U of `candidate` against `baseline`. Returns `None` when a group is empty or a
/// value is not finite.
pub fn mann_whitney(baseline: &[f64], candidate: &[f64]) -> Option<MannWhitney> {
    let (nc, nb) = (candidate.len(), baseline.len());
    if nc == 0 || nb == 0 || !candidate.iter().chain(baseline).all(|v| v.is_finite()) {
        return None;
    }
    let pooled: Vec<f64> = candidate.iter().chain(baseline).copied().collect();
    let (ranks, tie_sizes) = midranks(&pooled);
    let r_cand: f64 = ranks[..nc].iter().sum();
    let (n1, n2, n) = (nc as f64, nb as f64, (nc + nb) as f64);
    let u_candidate = r_cand - n1 * (n1 + 1.0) / 2.0;
    let u_baseline = n1 * n2 - u_candidate;
    let u = u_candidate.max(u_baseline);
    let tie_term: f64 = tie_sizes.iter().map(|&t| (t * t * t - t) as f64).sum();
    let sigma2 = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    let z = (sigma2 > 0.0).then(|| (u - n1 * n2 / 2.0 - 0.5) / sigma2.sqrt());
    let p_asymptotic = z.map_or(1.0, |z| (2.0 * z_sf(z)).min(1.0));
    let ties = !tie_sizes.is_empty();
    let p_exact = (!ties && nc + nb <= EXACT_MAX_N).then(|| exact_p(nc, nb, u));
    Some(MannWhitney {
        u_candidate,
        u_baseline,
        a12: u_candidate / (n1 * n2),
        ties,
        z,
        p_asymptotic,
        p_exact,
        p: p_exact.unwrap_or(p_asymptotic),
        method: if p_exact.is_some() {
            MwuMethod::Exact
        } else {
            MwuMethod::Asymptotic
        },
    })
}

/// Mid-ranks (1-based, ties share the mean rank) and the sizes of tie groups larger than 1.
pub(super) fn midranks(values: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut ranks = vec![0.0; values.len()];
    let mut ties = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end hold ranks start+1..=end; their mean is (start + 1 + end)/2.
        let rank = (start + 1 + end) as f64 / 2.0;
        order[start..end].iter().for_each(|&i| ranks[i] = rank);
        if end - start > 1 {
            ties.push(end - start);
        }
        start = end;
    }
    (ranks, ties)
}

/// Exact two-sided p `min(1, 2·P(U ≥ u))` under H0 without ties.
fn exact_p(n1: usize, n2: usize, u: f64) -> f64 {
    let counts = u_distribution(n1.min(n2), n1.max(n2));
    let total: i128 = counts.iter().sum();
    // Without ties U is an integer; rounding guards against float noise in the rank sum.
    let from = (u.round() as usize).min(counts.len());
    let tail: i128 = counts[from..].iter().sum();
    (2.0 * tail as f64 / total as f64).min(1.0)
}

/// Number of arrangements giving each `U = 0..=m·n`: the coefficients of the Gaussian binomial
/// `[m+n choose m]_q`, built as `P_k = P_{k−1}·(1 − q^{n+k})/(1 − q^k)` in exact integers.
fn u_distribution(m: usize, n: usize) -> Vec<i128> {
    let mut poly = vec![0i128; m * n + 1];
    poly[0] = 1;
    for k in 1..=m {
        let degree = k * n;
        // Multiply by (1 − q^{n+k}), from the top so each source term is read before it changes.
        for i in (n + k..=degree).rev() {
            poly[i] -= poly[i - n - k];
        }
        // Divide by (1 − q^k): Q[i] = R[i] + Q[i − k].
        for i in k..=degree {
            poly[i] += poly[i - k];
        }
    }
    poly
}

/// Outcome of the Brunner–Munzel test.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BrunnerMunzelResult {
    /// The regular test (t approximation; Neubert & Brunner's corrected version).
    Test {
        /// Statistic W; positive when the baseline tends to be larger (SciPy's sign with
        /// x = candidate, y = baseline).
        w: f64,
        /// Welch-type degrees of freedom.
        df: f64,
        /// Two-sided p-value.
        p: f64,
    },
    /// Every candidate value lies on the same side of every baseline value: W is infinite and
    /// df undefined. Report the separation and use the exact Mann–Whitney p instead.
    CompleteSeparation,
    /// All values are equal: no difference (p = 1).
    AllTied,
}

/// Brunner–Munzel test of candidate vs baseline, with its effect size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BrunnerMunzel {
    /// `p̂ = P(base < cand) + ½P(base = cand)`.
    pub p_hat: f64,
    /// The test, or the degenerate case.
    pub result: BrunnerMunzelResult,
}

impl BrunnerMunzel {
    /// The two-sided p-value, `None` under complete separation (use the exact MWU p).
    pub fn p_value(&self) -> Option<f64> {
        match self.result {
            BrunnerMunzelResult::Test { p, .. } => Some(p),
            BrunnerMunzelResult::CompleteSeparation => None,
            BrunnerMunzelResult::AllTied => Some(1.0),
        }
    }
}

/// Brunner–Munzel of `candidate` (x) against `baseline` (y). Returns `None` when a group has
/// fewer than 2 values or a value is not finite.
pub fn brunner_munzel(baseline: &[f64], candidate: &[f64]) -> Option<BrunnerMunzel> {
    let (nx, ny) = (candidate.len(), baseline.len());
    if nx < 2 || ny < 2 || !candidate.iter().chain(baseline).all(|v| v.is_finite()) {
        return None;
    }
    let pooled: Vec<f64> = candidate.iter().chain(baseline).copied().collect();
    let (ranks, _) = midranks(&pooled);
    let (rx, ry) = ranks.split_at(nx);
    let (sx2, mean_x) = rank_variance(rx, &midranks(candidate).0);
    let (sy2, mean_y) = rank_variance(ry, &midranks(baseline).0);
    let (fx, fy) = (nx as f64, ny as f64);
    let p_hat = (mean_x - (fx + 1.0) / 2.0) / fy;
    let spread = fx * sx2 + fy * sy2;
    let result = if spread == 0.0 {
        if p_hat == 0.5 {
            BrunnerMunzelResult::AllTied
        } else {
            BrunnerMunzelResult::CompleteSeparation
        }
    } else {
        let w = fx * fy * (mean_y - mean_x) / ((fx + fy) * spread.sqrt());
        let df =
            spread.powi(2) / ((fx * sx2).powi(2) / (fx - 1.0) + (fy * sy2).powi(2) / (fy - 1.0));
        BrunnerMunzelResult::Test {
            w,
            df,
            p: t_two_sided(w, df)?,
        }
    };
    Some(BrunnerMunzel { p_hat, result })
}

/// `Sᵢ²` of one sample from its combined and within-sample ranks, and its mean combined rank.
fn rank_variance(combined: &[f64], within: &[f64]) -> (f64, f64) {
    let n = combined.len() as f64;
    let mean = combined.iter().sum::<f64>() / n;
    let ss: f64 = combined
        .iter()
        .zip(within)
        .map(|(r, w)| (r - w - mean + (n + 1.0) / 2.0).powi(2))
        .sum();
    (ss / (n - 1.0), mean)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::{E1_BASE, E1_CAND, E2_BASE, E2_CAND, H_X, H_Y, close};

    #[test]
    fn e2_mann_whitney() {
        let m = mann_whitney(&E2_BASE, &E2_CAND).unwrap();
        close(m.u_candidate, 63.0);
        close(m.a12, 0.7875);
        close(m.p_asymptotic, 0.045589);
        close(m.p_exact.unwrap(), 0.043421);
        assert_eq!(m.method, MwuMethod::Exact);
    }

    #[test]
    fn e1_complete_separation_mann_whitney() {
        let m = mann_whitney(&E1_BASE, &E1_CAND).unwrap();
        close(m.u_candidate, 0.0);
        assert!((m.p_exact.unwrap() / 1.082509e-05 - 1.0).abs() < 1e-6);
        assert!((m.p_asymptotic / 1.826718e-04 - 1.0).abs() < 1e-5);
    }

    #[test]
    fn hand_example_with_ties_is_asymptotic() {
        let m = mann_whitney(&H_Y, &H_X).unwrap();
        close(m.u_candidate, 5.0);
        assert!(m.ties);
        assert_eq!(m.p_exact, None);
        assert_eq!(m.method, MwuMethod::Asymptotic);
        close(m.p, 0.141238);
    }

    #[test]
    fn exact_p_value_floor_table() {
        for (n, floor) in [(3usize, 0.1), (4, 0.028571), (5, 0.007937)] {
            let low: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let high: Vec<f64> = (0..n).map(|i| 100.0 + i as f64).collect();
            close(mann_whitney(&low, &high).unwrap().p, floor);
        }
    }

    #[test]
    fn u_distribution_counts_sum_to_the_binomial_coefficient() {
        let c = u_distribution(10, 10);
        assert_eq!(c.iter().sum::<i128>(), 184_756);
        assert_eq!(c.len(), 101);
        assert_eq!((c[0], c[1], c[2], c[100]), (1, 1, 2, 1));
        assert_eq!(u_distribution(0, 5), vec![1]);
    }

    #[test]
    fn all_tied_mann_whitney_has_p_one() {
        let m = mann_whitney(&[2.0; 4], &[2.0; 3]).unwrap();
        assert_eq!(m.z, None);
        assert_eq!(m.p, 1.0);
        close(m.a12, 0.5);
    }

    #[test]
    fn empty_or_non_finite_gives_none() {
        assert_eq!(mann_whitney(&[], &[1.0]), None);
        assert_eq!(mann_whitney(&[1.0], &[f64::NAN]), None);
        assert_eq!(brunner_munzel(&[1.0], &[1.0, 2.0]), None);
    }

    #[test]
    fn e2_brunner_munzel() {
        let b = brunner_munzel(&E2_BASE, &E2_CAND).unwrap();
        close(b.p_hat, 0.7875);
        let BrunnerMunzelResult::Test { w, df, p } = b.result else {
            panic!("expected a test")
        };
        close(w, -2.462044);
        close(df, 12.110727);
        close(p, 0.029763);
        let (rx, ry) = {
            let pooled: Vec<f64> = E2_CAND.iter().chain(&E2_BASE).copied().collect();
            let r = midranks(&pooled).0;
            (r[..8].to_vec(), r[8..].to_vec())
        };
        close(rank_variance(&rx, &midranks(&E2_CAND).0).0, 7.839286);
        close(rank_variance(&ry, &midranks(&E2_BASE).0).0, 2.455556);
    }

    #[test]
    fn hand_brunner_munzel() {
        let b = brunner_munzel(&H_Y, &H_X).unwrap();
        let BrunnerMunzelResult::Test { w, p, .. } = b.result else {
            panic!("expected a test")
        };
        close(w, 1.936492);
        close(p, 0.101183);
    }

    #[test]
    fn e1_brunner_munzel_reports_separation() {
        let b = brunner_munzel(&E1_BASE, &E1_CAND).unwrap();
        assert_eq!(b.result, BrunnerMunzelResult::CompleteSeparation);
        assert_eq!(b.p_hat, 0.0);
        assert_eq!(b.p_value(), None);
    }

    #[test]
    fn all_tied_brunner_munzel() {
        let b = brunner_munzel(&[7.0; 5], &[7.0; 5]).unwrap();
        assert_eq!(b.result, BrunnerMunzelResult::AllTied);
        assert_eq!(b.p_value(), Some(1.0));
    }
}
