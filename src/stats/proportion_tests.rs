//! Known values for [`super::wilson`] and [`super::mcnemar`].
//!
//! Published anchors: Newcombe (1998a), "Two-sided confidence intervals for the single
//! proportion", Stat Med 17:857, Table I, method 3 (Wilson): 81/263 → 0.2553–0.3662,
//! 15/148 → 0.0624–0.1605, 0/20 → 0–0.1611, 1/29 → 0.0061–0.1718. Newcombe (1998b),
//! "Improved confidence intervals for the difference between binomial proportions based on
//! paired data", Stat Med 17:2635, Table III, method 10, cell sets (e, f, g, h). Fagerland,
//! Lydersen & Laake (2017), "Statistical Analysis of Contingency Tables", ch. 8, Cavo et al.
//! (2012) [[59, 6], [16, 80]]: Newcombe square-and-add −0.0621 (95 % CI −0.1186 to −0.0046),
//! McNemar exact conditional p = 0.0525.
//!
//! The seven-digit values below come from this plain Python 3 script (no SciPy), which
//! reproduces every published value above to its printed digits:
//!
//! ```python
//! import math
//! from statistics import NormalDist
//! Z = NormalDist().inv_cdf(0.975)
//! def wilson(x, n, z=Z):
//!     c = (x + z*z/2) / (n + z*z)
//!     h = z / (n + z*z) * math.sqrt(x*(n-x)/n + z*z/4)
//!     return c - h, c + h
//! def mcnemar_p(b, c):  # exact: integer binomial coefficients
//!     n, k = b + c, min(b, c)
//!     return 1.0 if n == 0 else min(1.0, 2 * sum(math.comb(n, i) for i in range(k+1)) / 2**n)
//! def newcombe(e, f, g, h, z=Z):  # theta = (e+f)/n - (e+g)/n
//!     n = e+f+g+h
//!     p1, p2 = (e+f)/n, (e+g)/n
//!     l1, u1 = wilson(e+f, n, z); l2, u2 = wilson(e+g, n, z)
//!     num = e*h - f*g
//!     if num > 0: num = max(num - n/2, 0)
//!     den = math.sqrt((e+f)*(g+h)*(e+g)*(f+h))
//!     phi = 0.0 if den == 0 else num/den
//!     d = math.sqrt(max((p1-l1)**2 - 2*phi*(p1-l1)*(u2-p2) + (u2-p2)**2, 0))
//!     eps = math.sqrt(max((u1-p1)**2 - 2*phi*(u1-p1)*(p2-l2) + (p2-l2)**2, 0))
//!     return (f-g)/n - d, (f-g)/n + eps
//! ```
//!
//! The McNemar MDE (Connor 1987) values come from the same script's
//! `NormalDist`, bisecting `δ·√n − z_a·√max(ψ, δ) − z_b·√(max(ψ, δ) − δ²)` on `(0, 1]`
//! (z_a = z_0.975, z_b = z_0.8), and the items needed from
//! `ceil((z_a·√ψ + z_b·√(ψ − δ²))² / δ²)` with `ψ = max(ψ, δ)`.

use super::*;
use crate::stats::fixtures::close;

fn ends(i: Interval) -> (f64, f64) {
    match i {
        Interval::Bounded { low, high } => (low, high),
        Interval::Unbounded => panic!("unbounded"),
    }
}

/// Newcombe's `(e, f, g, h)`: `e` both right, `f` only the first (candidate) right, `g`
/// only the second (baseline) right, `h` neither.
fn table(e: u64, f: u64, g: u64, h: u64) -> PairCounts {
    PairCounts {
        both: e,
        only_candidate: f,
        only_baseline: g,
        neither: h,
    }
}

#[test]
fn wilson_matches_newcombe_1998_table_i() {
    let rows = [
        (81, 263, 0.2552885, 0.3662096),
        (15, 148, 0.0623864, 0.1604872),
        (0, 20, 0.0, 0.1611252),
        (1, 29, 0.0061132, 0.1717552),
    ];
    for (x, n, low, high) in rows {
        let (l, h) = ends(wilson(x, n, 0.95).unwrap());
        close(l, low);
        close(h, high);
    }
    let (l, h) = ends(wilson(81, 263, 0.90).unwrap());
    close(l, 0.2633136);
    close(h, 0.3565663);
}

#[test]
fn wilson_ends_are_exact_at_zero_and_all() {
    assert_eq!(ends(wilson(0, 20, 0.95).unwrap()).0, 0.0);
    let (l, h) = ends(wilson(29, 29, 0.95).unwrap());
    close(l, 0.8830302);
    assert_eq!(h, 1.0);
    // One trial still gives an interval, not a point.
    close(ends(wilson(0, 1, 0.95).unwrap()).1, 0.7934507);
}

#[test]
fn wilson_refuses_what_has_no_interval() {
    assert_eq!(wilson(0, 0, 0.95), None);
    assert_eq!(wilson(3, 2, 0.95), None);
    assert_eq!(wilson(1, 2, 1.0), None);
    assert_eq!(wilson(1, 2, f64::NAN), None);
}

#[test]
fn newcombe_method_10_on_the_1998_table_iii_cell_sets() {
    let rows = [
        ((36, 12, 2, 0), 0.2, 0.0569296, 0.3404276),
        ((20, 12, 2, 16), 0.2, 0.0561564, 0.3292070),
        ((2, 97, 1, 0), 0.96, 0.8721165, 0.9853665),
        ((0, 30, 0, 0), 1.0, 0.8394678, 1.0),
        ((54, 0, 0, 0), 0.0, -0.0664136, 0.0664136),
        ((30, 0, 0, 24), 0.0, -0.0358376, 0.0358376),
    ];
    for ((e, f, g, h), diff, low, high) in rows {
        let m = mcnemar(table(e, f, g, h), 0.05).unwrap();
        close(m.diff, diff);
        let (l, u) = ends(m.diff_ci);
        close(l, low);
        close(u, high);
    }
}

/// Fagerland et al. (2017), ch. 8: Cavo et al. (2012), complete response before (rows) and
/// after (columns) consolidation therapy; `θ = p₁₊ − p₊₁` puts "before" as the candidate.
#[test]
fn cavo_2012_matches_fagerland_2017() {
    let m = mcnemar(table(59, 6, 16, 80), 0.05).unwrap();
    close(m.diff, -0.0621118);
    let (l, u) = ends(m.diff_ci);
    close(l, -0.1186212);
    close(u, -0.0046251);
    close(m.p, 0.052478790283203125);
    close(m.baseline, 75.0 / 161.0);
    close(m.candidate, 65.0 / 161.0);
}

#[test]
fn exact_mcnemar_p_against_integer_binomials() {
    let p = |b, c| {
        let counts = PairCounts {
            both: 10,
            only_baseline: b,
            only_candidate: c,
            neither: 5,
        };
        mcnemar(counts, 0.05).unwrap().p
    };
    // Relative error from ln Γ, not from the sum.
    let near = |a: f64, b: f64| assert!((a / b - 1.0).abs() < 1e-12, "{a} != {b}");
    // 2·(1 + 14 + 91)/2¹⁴
    near(p(12, 2), 0.012939453125);
    near(p(2, 12), 0.012939453125);
    near(p(40, 140), 3.316357383122473e-14);
    assert_eq!((p(0, 0), p(5, 5), p(1, 0), p(30, 30)), (1.0, 1.0, 1.0, 1.0));
}

#[test]
fn identical_answers_are_no_difference() {
    let m = mcnemar(table(400, 0, 0, 100), 0.05).unwrap();
    assert_eq!((m.p, m.diff), (1.0, 0.0));
    let (l, u) = ends(m.diff_ci);
    assert!(l < 0.0 && u > 0.0 && u - l < 0.02, "{l} {u}");
}

#[test]
fn mcnemar_refuses_an_empty_table_or_bad_alpha() {
    assert_eq!(mcnemar(PairCounts::default(), 0.05), None);
    assert_eq!(mcnemar(table(1, 1, 1, 1), 0.0), None);
}

#[test]
fn serializes_the_counts_by_name() {
    let m = mcnemar(table(36, 12, 2, 0), 0.05).unwrap();
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["counts"]["only_candidate"], 12);
    assert_eq!(json["diff_ci"]["kind"], "bounded");
}

/// A table of `n` items of which `discordant` are split as evenly as possible.
fn discordance(n: u64, discordant: u64) -> PairCounts {
    table(
        n - discordant,
        discordant / 2,
        discordant - discordant / 2,
        0,
    )
}

#[test]
fn mcnemar_mde_matches_connor_at_the_observed_discordance() {
    let mde = |n, d| mcnemar_mde(discordance(n, d), 0.05, 0.8).unwrap();
    close(mde(400, 40), 0.044166521985162244);
    close(mde(50, 15), 0.2119319348366241);
    close(mde(20, 10), 0.41732247269607015);
    // No discordant item seen: a difference still needs δ·n of them, so ψ = δ.
    close(mde(400, 0), 0.019506816642658194);
}

#[test]
fn mcnemar_items_needed_inverts_the_mde() {
    let needed = |n, d, delta| mcnemar_items_for(discordance(n, d), delta, 0.05, 0.8).unwrap();
    assert_eq!(needed(400, 40, 0.05), 312);
    assert_eq!(needed(400, 40, 0.02), 1960);
    assert_eq!(needed(400, 0, 0.02), 391);
    // The MDE of n items needs n items, to rounding.
    let mde = mcnemar_mde(discordance(400, 40), 0.05, 0.8).unwrap();
    assert!((399..=401).contains(&needed(400, 40, mde)));
}

#[test]
fn mcnemar_mde_refuses_what_it_cannot_size() {
    assert_eq!(mcnemar_mde(PairCounts::default(), 0.05, 0.8), None);
    assert_eq!(mcnemar_mde(discordance(10, 2), 0.0, 0.8), None);
    assert_eq!(mcnemar_mde(discordance(10, 2), 0.05, 1.0), None);
    // Three items cannot reach significance whatever they say (n < z²).
    assert_eq!(mcnemar_mde(discordance(3, 3), 0.05, 0.8), None);
    assert_eq!(mcnemar_items_for(discordance(10, 2), 0.0, 0.05, 0.8), None);
}
