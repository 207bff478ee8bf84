//! Perplexity of a fixed corpus compared document by document: both cells scored the same
//! tokens of the same documents (common random numbers), so the per-document differences
//! carry the comparison and their spread is its noise.
//!
//! Per document d the input is `(nll_baseline_d, nll_candidate_d, tokens_d)`, the sums of
//! `−ln p` over the document's scored tokens. With `N = Σ tokens_d`,
//! `Δ = (Σ nll_candidate − Σ nll_baseline)/N`, so `exp(Δ) = ppl_candidate/ppl_baseline`
//! exactly (`ppl = exp(Σ nll/N)`). Writing `δ_d = (nll_candidate_d − nll_baseline_d)/tokens_d`
//! and `w_d = tokens_d/N`, `Δ = Σ w_d δ_d`: a token-weighted mean whose clusters are the
//! documents (tokens of one document are not independent), with the cluster-robust standard
//! error `se = √(D/(D − 1) · Σ w_d² (δ_d − Δ)²)` over `D` documents and a t on `D − 1` df.
//! With equal token counts this is the ordinary paired t on `δ_d`.
//!
//! (Named after its input, the NLL sums; McNemar, the other item-paired test, lives with the
//! proportions.)

use serde::Serialize;

use super::Interval;
use super::dist::{in_open_unit, t_quantile, t_two_sided};

/// The paired per-document test of a perplexity ratio.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedNll {
    /// Documents `D` scored on both sides.
    pub documents: usize,
    /// Scored tokens `N` over all documents.
    pub tokens: u64,
    /// Baseline perplexity `exp(Σ nll_baseline/N)`.
    pub ppl_baseline: f64,
    /// Candidate perplexity `exp(Σ nll_candidate/N)`.
    pub ppl_candidate: f64,
    /// `Δ`: the candidate's mean NLL per token minus the baseline's (nats per token).
    pub delta: f64,
    /// Cluster-robust standard error of `Δ`, documents as clusters.
    pub se: f64,
    /// `D − 1`.
    pub df: f64,
    /// `t = Δ/se`; `None` when every document moved by the same `δ_d` (`se = 0`).
    pub t: Option<f64>,
    /// Two-sided p: `2·P(T_{D−1} > |t|)`; with `se = 0`, 1 for `Δ = 0` and 0 otherwise.
    pub p_two_sided: f64,
    /// CI of `Δ` at `1 − α`: `Δ ± t_{1−α/2, D−1}·se`.
    pub delta_ci: Interval,
    /// `exp(Δ) − 1 = ppl_candidate/ppl_baseline − 1`.
    pub change: f64,
    /// `exp(delta_ci) − 1`.
    pub change_ci: Interval,
}

impl PairedNll {
    /// Every document moved by the same non-zero `δ_d`: the change is deterministic (p = 0).
    pub fn is_deterministic(&self) -> bool {
        self.se == 0.0 && self.delta != 0.0
    }
}

/// The paired per-document perplexity test of `docs` (`(nll_baseline, nll_candidate,
/// tokens)` per document) at level `alpha`. `None` with fewer than 2 documents, a document
/// without tokens, an NLL that is not finite, or `alpha` outside `(0, 1)`.
pub fn paired_nll(docs: &[(f64, f64, u64)], alpha: f64) -> Option<PairedNll> {
    let usable = |(a, b, n): &(f64, f64, u64)| a.is_finite() && b.is_finite() && *n > 0;
    if docs.len() < 2 || !docs.iter().all(usable) || !in_open_unit(alpha) {
        return None;
    }
    let tokens: u64 = docs.iter().map(|d| d.2).sum();
    let total = tokens as f64;
    let (base, cand) = docs.iter().fold((0.0, 0.0), |(a, b), d| (a + d.0, b + d.1));
    let delta = (cand - base) / total;
    let spread: f64 = docs
        .iter()
        .map(|&(a, b, n)| {
            let w = n as f64 / total;
            let residual = (b - a) / n as f64 - delta;
            w * w * residual * residual
        })
        .sum();
    let d = docs.len() as f64;
    let se = (d / (d - 1.0) * spread).sqrt();
    let df = d - 1.0;
    let (t, p, delta_ci) = if se > 0.0 {
        let t = delta / se;
        let half = t_quantile(1.0 - alpha / 2.0, df)? * se;
        let ci = Interval::bounded(delta - half, delta + half);
        (Some(t), t_two_sided(t, df)?, ci)
    } else {
        let p = if delta == 0.0 { 1.0 } else { 0.0 };
        (None, p, Interval::bounded(delta, delta))
    };
    let change_ci = match delta_ci {
        Interval::Bounded { low, high } => Interval::bounded(low.exp_m1(), high.exp_m1()),
        Interval::Unbounded => Interval::Unbounded,
    };
    Some(PairedNll {
        documents: docs.len(),
        tokens,
        ppl_baseline: (base / total).exp(),
        ppl_candidate: (cand / total).exp(),
        delta,
        se,
        df,
        t,
        p_two_sided: p,
        delta_ci,
        change: delta.exp_m1(),
        change_ci,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::compare::Scale;
    use crate::stats::fixtures::close;
    use crate::stats::paired;

    /// Six documents of unequal length.
    const DOCS: [(f64, f64, u64); 6] = [
        (250.0, 262.0, 120),
        (170.0, 171.0, 80),
        (410.0, 431.0, 200),
        (95.0, 99.0, 50),
        (330.0, 334.0, 150),
        (205.0, 214.0, 100),
    ];

    /// Known answer from plain Python 3 (no SciPy; the t CDF is the regularized incomplete
    /// beta by Numerical Recipes' continued fraction, its quantile by bisection, which gives
    /// t_{0.975,5} = 2.570582):
    ///
    /// ```python
    /// import math
    /// docs = [(250, 262, 120), (170, 171, 80), (410, 431, 200), (95, 99, 50),
    ///         (330, 334, 150), (205, 214, 100)]
    /// D, N = len(docs), sum(t for _, _, t in docs)
    /// delta = (sum(c for _, c, _ in docs) - sum(b for b, _, _ in docs)) / N
    /// se = math.sqrt(D / (D - 1) * sum((t / N)**2 * ((c - b) / t - delta)**2
    ///                                  for b, c, t in docs))
    /// q = 2.570582  # t_{0.975, 5}
    /// print(delta, se, delta / se, math.expm1(delta - q * se), math.expm1(delta + q * se))
    /// ```
    ///
    /// Δ = 51/700 = 0.0728571, se = 0.0175886, t = 4.142285, p = 0.008977 (5 df),
    /// CI of Δ [0.0276441, 0.1180702], ppl 8.0503397 → 8.6587592, change +7.557687 %
    /// [+2.802976 %, +12.532307 %].
    #[test]
    fn known_answer_with_unequal_documents() {
        let p = paired_nll(&DOCS, 0.05).unwrap();
        assert_eq!((p.documents, p.tokens, p.df), (6, 700, 5.0));
        close(p.delta, 51.0 / 700.0);
        close(p.se, 0.0175886);
        close(p.t.unwrap(), 4.142285);
        close(p.p_two_sided, 0.008977);
        let Interval::Bounded { low, high } = p.delta_ci else {
            panic!("unbounded")
        };
        close(low, 0.0276441);
        close(high, 0.1180702);
        close(p.ppl_baseline, 8.0503397);
        close(p.ppl_candidate, 8.6587592);
        close(p.change, 0.07557687);
        assert!((p.change - (p.ppl_candidate / p.ppl_baseline - 1.0)).abs() < 1e-12);
        let Interval::Bounded { low, high } = p.change_ci else {
            panic!("unbounded")
        };
        close(low, 0.02802976);
        close(high, 0.12532307);
    }

    /// With every document 100 tokens long the weights are equal, and the test is the paired
    /// t on the per-token NLLs (Python: t = 2.857244, p = 0.035521, se = 0.0297489).
    #[test]
    fn equal_lengths_give_the_ordinary_paired_t() {
        let docs: Vec<_> = DOCS.iter().map(|&(a, b, _)| (a, b, 100)).collect();
        let nll = paired_nll(&docs, 0.05).unwrap();
        let per_token = |f: fn(&(f64, f64, u64)) -> f64| docs.iter().map(f).collect::<Vec<_>>();
        let a = per_token(|d| d.0 / 100.0);
        let b = per_token(|d| d.1 / 100.0);
        let t = paired(&a, &b, 0.05, Scale::Absolute).unwrap();
        assert!((nll.delta - t.mean).abs() < 1e-12);
        assert!((nll.se - t.se).abs() < 1e-12);
        assert!((nll.p_two_sided - t.p_two_sided).abs() < 1e-12);
        let (Interval::Bounded { low, high }, Interval::Bounded { low: l, high: h }) =
            (t.mean_ci, nll.delta_ci)
        else {
            panic!("unbounded")
        };
        assert!((l - low).abs() < 1e-12 && (h - high).abs() < 1e-12);
        close(nll.t.unwrap(), 2.857244);
        close(nll.p_two_sided, 0.035521);
        close(nll.se, 0.0297489);
    }

    #[test]
    fn no_spread_is_exact() {
        let same: Vec<_> = DOCS.iter().map(|&(a, _, n)| (a, a, n)).collect();
        let p = paired_nll(&same, 0.05).unwrap();
        assert_eq!(
            (p.delta, p.t, p.p_two_sided, p.change),
            (0.0, None, 1.0, 0.0)
        );
        assert!(!p.is_deterministic());
        // Every document 0.5 nats per token worse: δ_d = Δ exactly.
        let shifted: Vec<_> = DOCS
            .iter()
            .map(|&(a, _, n)| (a, a + 0.5 * n as f64, n))
            .collect();
        let p = paired_nll(&shifted, 0.05).unwrap();
        assert!(p.is_deterministic());
        assert_eq!(p.p_two_sided, 0.0);
        close(p.change, 0.5_f64.exp_m1());
    }

    #[test]
    fn unusable_documents_give_none() {
        assert!(paired_nll(&DOCS[..1], 0.05).is_none());
        assert!(paired_nll(&[(1.0, 2.0, 3), (1.0, 2.0, 0)], 0.05).is_none());
        assert!(paired_nll(&[(1.0, f64::NAN, 3), (1.0, 2.0, 3)], 0.05).is_none());
        assert!(paired_nll(&DOCS, 1.0).is_none());
    }
}
