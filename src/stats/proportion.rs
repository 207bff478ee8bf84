//! Proportions of items answered correctly (retrieval accuracy): Wilson's score interval for
//! one proportion, and for two cells that scored the same items (common random numbers) the
//! exact McNemar test with Newcombe's interval for the difference of the paired proportions.
//!
//! The unit is the item, not the repetition: both sides answered item i, so the information
//! about a difference lies in the discordant items only (`b` = baseline right and candidate
//! wrong, `c` = the reverse).

use std::f64::consts::LN_2;

use serde::{Deserialize, Serialize};
use statrs::function::gamma::ln_gamma;

use super::Interval;
use super::dist::{in_open_unit, z_quantile};

/// Wilson's score interval for the proportion `successes / trials` at `confidence` (e.g.
/// 0.95): the roots of `|π − p̂| = z·√(π(1 − π)/n)`. Unlike the Wald interval it stays
/// inside `[0, 1]` and is not degenerate at 0/n or n/n (ends there are exactly 0 or 1).
/// `None` for `trials = 0`, `successes > trials` or `confidence` outside `(0, 1)`.
pub fn wilson(successes: u64, trials: u64, confidence: f64) -> Option<Interval> {
    if trials == 0 || successes > trials || !in_open_unit(confidence) {
        return None;
    }
    let z = z_quantile(1.0 - (1.0 - confidence) / 2.0);
    let (x, n, z2) = (successes as f64, trials as f64, z * z);
    let centre = (x + z2 / 2.0) / (n + z2);
    let half = z / (n + z2) * (x * (n - x) / n + z2 / 4.0).sqrt();
    let low = if successes == 0 { 0.0 } else { centre - half };
    let high = if successes == trials {
        1.0
    } else {
        centre + half
    };
    Some(Interval::bounded(low.max(0.0), high.min(1.0)))
}

/// The 2×2 table of two cells that scored the same items, each item right or wrong on each
/// side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PairCounts {
    /// Items both sides answered correctly.
    pub both: u64,
    /// Items the baseline answered correctly and the candidate did not (`b`).
    pub only_baseline: u64,
    /// Items the candidate answered correctly and the baseline did not (`c`).
    pub only_candidate: u64,
    /// Items neither side answered correctly.
    pub neither: u64,
}

impl PairCounts {
    /// The table of `(baseline correct, candidate correct)` per item.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (bool, bool)>) -> Self {
        let mut t = PairCounts {
            both: 0,
            only_baseline: 0,
            only_candidate: 0,
            neither: 0,
        };
        for pair in pairs {
            match pair {
                (true, true) => t.both += 1,
                (true, false) => t.only_baseline += 1,
                (false, true) => t.only_candidate += 1,
                (false, false) => t.neither += 1,
            }
        }
        t
    }

    /// Items scored on both sides.
    pub fn items(&self) -> u64 {
        self.both + self.only_baseline + self.only_candidate + self.neither
    }

    /// Items the two sides disagree on (`b + c`).
    pub fn discordant(&self) -> u64 {
        self.only_baseline + self.only_candidate
    }

    /// Items the baseline answered correctly.
    pub fn baseline_correct(&self) -> u64 {
        self.both + self.only_baseline
    }

    /// Items the candidate answered correctly.
    pub fn candidate_correct(&self) -> u64 {
        self.both + self.only_candidate
    }
}

/// The exact McNemar test of two paired accuracies, with the accuracy difference and
/// Newcombe's interval for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct McNemar {
    /// The table the test was computed from.
    pub counts: PairCounts,
    /// Baseline accuracy, `(both + only_baseline) / items`.
    pub baseline: f64,
    /// Candidate accuracy, `(both + only_candidate) / items`.
    pub candidate: f64,
    /// Exact two-sided p: `min(1, 2·P(X ≤ min(b, c)))` with `X ~ Bin(b + c, ½)`, the
    /// binomial test of the discordant items; 1 when there are none.
    pub p: f64,
    /// `candidate − baseline`, an absolute difference of proportions (0.02 = 2 pp).
    pub diff: f64,
    /// CI of `diff` at `1 − α`: Newcombe's (1998) method 10, the square-and-add of the two
    /// marginal Wilson intervals with the correlation `φ̂` of the table (continuity-corrected
    /// when positive).
    pub diff_ci: Interval,
}

/// The exact McNemar test and Newcombe's interval of the accuracy difference for two cells
/// that scored the same items, at level `alpha`. `None` with no items or `alpha` outside
/// `(0, 1)`.
pub fn mcnemar(counts: PairCounts, alpha: f64) -> Option<McNemar> {
    if counts.items() == 0 || !in_open_unit(alpha) {
        return None;
    }
    let n = counts.items() as f64;
    let (baseline, candidate) = (
        counts.baseline_correct() as f64 / n,
        counts.candidate_correct() as f64 / n,
    );
    let (b, c) = (counts.only_baseline, counts.only_candidate);
    Some(McNemar {
        counts,
        baseline,
        candidate,
        p: binomial_two_sided(b.min(c), b + c),
        diff: (c as f64 - b as f64) / n,
        diff_ci: newcombe_paired(counts, 1.0 - alpha)?,
    })
}

/// The smallest accuracy difference (absolute, either direction) that `counts.items()` paired
/// items detect with probability `power` at two-sided level `alpha`, by Connor's (1987)
/// normal approximation to McNemar's test: `δ` solving
/// `δ·√n = z_{1−α/2}·√ψ + z_power·√(ψ − δ²)`, where `ψ` is the share of discordant items,
/// taken as observed but never below `δ` itself (a difference δ needs at least δ·n discordant
/// items). Its power comes from the items, not the repetitions: more rounds or more trials
/// per round lower it. `None` with no items, or `alpha`/`power` outside `(0, 1)`.
pub fn mcnemar_mde(counts: PairCounts, alpha: f64, power: f64) -> Option<f64> {
    if counts.items() == 0 || !in_open_unit(alpha) || !in_open_unit(power) {
        return None;
    }
    let n = counts.items() as f64;
    let observed = counts.discordant() as f64 / n;
    let (za, zb) = (z_quantile(1.0 - alpha / 2.0), z_quantile(power));
    let shortfall = |d: f64| {
        let psi = observed.max(d);
        za * psi.sqrt() + zb * (psi - d * d).max(0.0).sqrt() - d * n.sqrt()
    };
    // Positive at δ → 0, and at δ = 1 whenever n > z² (about 4 items): bisect for the root.
    if shortfall(1.0) > 0.0 {
        return None;
    }
    let (mut low, mut high) = (0.0_f64, 1.0_f64);
    for _ in 0..100 {
        let mid = (low + high) / 2.0;
        if shortfall(mid) > 0.0 {
            low = mid;
        } else {
            high = mid;
        }
    }
    Some(high)
}

/// Paired items that detect an accuracy difference `delta` with probability `power` at
/// two-sided `alpha` (Connor 1987), at the discordance observed in `counts` (at least
/// `delta`): `⌈(z_{1−α/2}·√ψ + z_power·√(ψ − δ²))² / δ²⌉`. `None` for `delta` outside
/// `(0, 1]`, no items, or `alpha`/`power` outside `(0, 1)`.
pub fn mcnemar_items_for(counts: PairCounts, delta: f64, alpha: f64, power: f64) -> Option<u64> {
    if counts.items() == 0 || !(delta > 0.0 && delta <= 1.0) {
        return None;
    }
    if !in_open_unit(alpha) || !in_open_unit(power) {
        return None;
    }
    let psi = (counts.discordant() as f64 / counts.items() as f64).max(delta);
    let (za, zb) = (z_quantile(1.0 - alpha / 2.0), z_quantile(power));
    let root = za * psi.sqrt() + zb * (psi - delta * delta).max(0.0).sqrt();
    Some((root * root / (delta * delta)).ceil() as u64)
}

/// `min(1, 2·P(X ≤ k))` for `X ~ Bin(n, ½)` and `k ≤ n/2`; 1 for `n = 0`.
fn binomial_two_sided(k: u64, n: u64) -> f64 {
    if n == 0 || 2 * k >= n {
        return 1.0;
    }
    let nf = n as f64;
    let ln_top =
        ln_gamma(nf + 1.0) - ln_gamma(k as f64 + 1.0) - ln_gamma((n - k) as f64 + 1.0) - nf * LN_2;
    // Below n/2 the terms fall as i falls (ratio pmf(i − 1)/pmf(i) = i/(n − i + 1)), so the
    // sum runs down from pmf(k), scaled to 1, until the rest is negligible.
    let (mut term, mut sum, mut i) = (1.0_f64, 0.0_f64, k);
    loop {
        sum += term;
        if i == 0 || term < sum * 1e-17 {
            break;
        }
        term *= i as f64 / (nf - i as f64 + 1.0);
        i -= 1;
    }
    (2.0 * (ln_top + sum.ln()).exp()).min(1.0)
}

/// Newcombe (1998, paired data, method 10) for `p_candidate − p_baseline` at `confidence`.
/// In the paper's notation `e = both`, `f = only_candidate`, `g = only_baseline`,
/// `h = neither`, `θ̂ = (f − g)/n`, Wilson limits `l₁, u₁` of `(e + f)/n` and `l₂, u₂` of
/// `(e + g)/n`, and
/// `L = θ̂ − √((p₁ − l₁)² − 2φ̂(p₁ − l₁)(u₂ − p₂) + (u₂ − p₂)²)`,
/// `U = θ̂ + √((u₁ − p₁)² − 2φ̂(u₁ − p₁)(p₂ − l₂) + (p₂ − l₂)²)`,
/// `φ̂ = (eh − fg)/√((e + f)(g + h)(e + g)(f + h))` with `eh − fg` replaced by
/// `max(eh − fg − n/2, 0)` when positive, and `φ̂ = 0` when a margin is empty.
fn newcombe_paired(counts: PairCounts, confidence: f64) -> Option<Interval> {
    let n = counts.items();
    let (x1, x2) = (counts.candidate_correct(), counts.baseline_correct());
    let (p1, p2) = (x1 as f64 / n as f64, x2 as f64 / n as f64);
    let Interval::Bounded { low: l1, high: u1 } = wilson(x1, n, confidence)? else {
        return None;
    };
    let Interval::Bounded { low: l2, high: u2 } = wilson(x2, n, confidence)? else {
        return None;
    };
    let phi = phi_corrected(counts);
    let theta = p1 - p2;
    let spread = |a: f64, b: f64| (a * a - 2.0 * phi * a * b + b * b).max(0.0).sqrt();
    Some(Interval::bounded(
        theta - spread(p1 - l1, u2 - p2),
        theta + spread(u1 - p1, p2 - l2),
    ))
}

/// Newcombe's `φ̂` of the paired table, continuity-corrected when positive (see
/// [`newcombe_paired`]).
fn phi_corrected(counts: PairCounts) -> f64 {
    let (e, f) = (counts.both as f64, counts.only_candidate as f64);
    let (g, h) = (counts.only_baseline as f64, counts.neither as f64);
    let margins = (e + f) * (g + h) * (e + g) * (f + h);
    if margins == 0.0 {
        return 0.0;
    }
    let n = e + f + g + h;
    let mut num = e * h - f * g;
    if num > 0.0 {
        num = (num - n / 2.0).max(0.0);
    }
    num / margins.sqrt()
}

#[cfg(test)]
#[path = "proportion_tests.rs"]
mod tests;
