//! Group-sequential looks (statistics.md §2.8): when a pull-request comparison is inconclusive
//! and a few more repetitions are added before looking again, testing every look at α lets a
//! true null cross the line by chance at some look far more often than α (three looks at
//! 0.05 each: ≈ 0.107). Pocock's design tests every one of `K` planned looks at one smaller
//! nominal level α′ chosen so that the chance of crossing at *any* look is α (two-sided
//! α = 0.05: α′ = 0.0294 for 2 looks, 0.0221 for 3).
//!
//! α′ comes from the canonical joint distribution of the look statistics under equally spaced
//! information: the z statistic at look k is `S_k / √k` for a sum `S_k` of k independent
//! standard normal increments. The probability of never crossing `±c` is computed by the
//! Armitage–McPherson–Rowe recursion — the density of `S_k` on the continuation region,
//! convolved with the next increment — integrated by Simpson's rule; `c` is then found by
//! bisection and α′ = 2·(1 − Φ(c)). Unequal look spacing (the baseline does not grow while the
//! candidate does) makes the design approximate; the error is small next to run-to-run noise
//! and is stated in the report.

use super::dist::{z_quantile, z_sf};

/// Rounds `exp run --baseline --extra-looks` adds to the candidate before each further look
/// (statistics.md §2.8's batch_max).
pub const EXTRA_ROUNDS: u32 = 5;

/// Fewest grid points per look for the integration (odd, for Simpson's rule).
const GRID: usize = 401;

/// Most grid points per look (the integration costs looks × points²).
const MAX_GRID: usize = 2001;

/// Standard normal density.
fn phi(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Simpson weights for `n` (odd) equally spaced points with spacing `h`.
fn simpson(n: usize, h: f64) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let w = if i == 0 || i == n - 1 {
                1.0
            } else if i % 2 == 1 {
                4.0
            } else {
                2.0
            };
            w * h / 3.0
        })
        .collect()
}

/// `n` equally spaced points over `[-half, half]` and their spacing.
fn grid(half: f64, n: usize) -> (Vec<f64>, f64) {
    let h = 2.0 * half / (n - 1) as f64;
    ((0..n).map(|i| -half + i as f64 * h).collect(), h)
}

/// The information of `looks` equally spaced looks (1, 2, …, K): Pocock's original design.
pub fn equally_spaced(looks: usize) -> Vec<f64> {
    (1..=looks).map(|k| k as f64).collect()
}

/// The information at each look of `exp run --baseline --extra-looks`: a fixed baseline of
/// `baseline` runs against a candidate of `candidate[k]` runs at look k. With equal run-to-run
/// variance, the difference of means has variance ∝ 1/n_b + 1/n_c, so the information is its
/// reciprocal. The baseline's noise is shared by every look, which makes the looks strongly
/// correlated and the right nominal level larger than Pocock's equally spaced one.
pub fn fixed_baseline(baseline: u32, candidate: &[u32]) -> Vec<f64> {
    candidate
        .iter()
        .map(|&n| 1.0 / (1.0 / f64::from(baseline.max(1)) + 1.0 / f64::from(n.max(1))))
        .collect()
}

/// Probability that the z statistics at looks with increasing `information` all stay inside
/// `±c`: with `S` a Brownian motion, `z_k = S(I_k) / √I_k`, so `S` must stay inside
/// `±c·√I_k` at every look.
pub fn stay_inside(c: f64, information: &[f64]) -> f64 {
    let Some(&first) = information.first() else {
        return 1.0;
    };
    // Grid fine enough for the narrowest increment's kernel.
    let smallest = information
        .windows(2)
        .map(|w| (w[1] - w[0]).sqrt())
        .fold(first.sqrt(), f64::min);
    let widest = c * information.last().copied().unwrap_or(first).sqrt();
    let n = ((40.0 * widest / smallest).ceil() as usize).clamp(GRID, MAX_GRID) | 1;
    let (mut points, h) = grid(c * first.sqrt(), n);
    let mut weights = simpson(n, h);
    let sd = first.sqrt();
    let mut density: Vec<f64> = points.iter().map(|&s| phi(s / sd) / sd).collect();
    for pair in information.windows(2) {
        let sd = (pair[1] - pair[0]).sqrt();
        let (next, h) = grid(c * pair[1].sqrt(), n);
        let next_density: Vec<f64> = next
            .iter()
            .map(|&s| {
                points
                    .iter()
                    .zip(&weights)
                    .zip(&density)
                    .map(|((&u, &w), &f)| w * f * phi((s - u) / sd) / sd)
                    .sum()
            })
            .collect();
        points = next;
        weights = simpson(n, h);
        density = next_density;
    }
    weights.iter().zip(&density).map(|(w, f)| w * f).sum()
}

/// Pocock's critical |z| for looks at the given (strictly increasing, positive)
/// `information`, at overall two-sided level `alpha`. `None` for no looks, information that
/// does not increase, or `alpha` outside (0, 1).
pub fn pocock_z(information: &[f64], alpha: f64) -> Option<f64> {
    let increasing = information.first().is_some_and(|&i| i > 0.0)
        && information.windows(2).all(|w| w[1] > w[0])
        && information.iter().all(|i| i.is_finite());
    if !(increasing && alpha > 0.0 && alpha < 1.0) {
        return None;
    }
    let looks = information.len();
    // c lies between the unadjusted and the Bonferroni critical values.
    let mut low = z_quantile(1.0 - alpha / 2.0);
    if looks == 1 {
        return Some(low);
    }
    let mut high = z_quantile(1.0 - alpha / (2.0 * looks as f64)) + 1e-9;
    while high - low > 1e-6 {
        let mid = 0.5 * (low + high);
        if 1.0 - stay_inside(mid, information) > alpha {
            low = mid;
        } else {
            high = mid;
        }
    }
    Some(0.5 * (low + high))
}

/// The nominal two-sided level α′ at which every look is tested so that the chance of a
/// false positive at any of them is `alpha` (Pocock). Equals `alpha` for one look.
pub fn pocock_alpha(information: &[f64], alpha: f64) -> Option<f64> {
    if information.len() == 1 {
        return pocock_z(information, alpha).map(|_| alpha);
    }
    pocock_z(information, alpha).map(|c| 2.0 * z_sf(c))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    use super::*;

    /// Pocock (1977), Table 1 / Jennison & Turnbull (2000) Table 2.1, two-sided α = 0.05:
    /// c = 2.178 (2 looks), 2.289 (3), 2.361 (4); nominal α′ 0.0294 and 0.0221 as in
    /// statistics.md §2.8.
    #[test]
    fn matches_published_pocock_constants() {
        let cases = [(2, 2.178, 0.0294), (3, 2.289, 0.0221), (4, 2.361, 0.0182)];
        for (looks, c, nominal) in cases {
            let z = pocock_z(&equally_spaced(looks), 0.05).unwrap();
            assert!(
                (z - c).abs() < 1e-3,
                "{looks} looks: c = {z}, published {c}"
            );
            let a = pocock_alpha(&equally_spaced(looks), 0.05).unwrap();
            assert!((a - nominal).abs() < 1e-4, "{looks} looks: α′ = {a}");
        }
        // Only the ratios of the information matter.
        let scaled = pocock_z(&[5.0, 10.0, 15.0], 0.05).unwrap();
        assert!((scaled - pocock_z(&equally_spaced(3), 0.05).unwrap()).abs() < 1e-5);
        assert_eq!(pocock_alpha(&[1.0], 0.05), Some(0.05));
        assert_eq!(pocock_alpha(&[], 0.05), None);
        assert_eq!(pocock_alpha(&[2.0, 1.0], 0.05), None);
        assert_eq!(pocock_alpha(&equally_spaced(2), 1.5), None);
    }

    #[test]
    fn one_look_integrates_to_the_normal_probability() {
        // P(|Z| < 1.96) = 0.950004…
        assert!((stay_inside(1.959964, &[1.0]) - 0.95).abs() < 1e-6);
        assert!((stay_inside(1.959964, &[7.0]) - 0.95).abs() < 1e-6);
    }

    /// An independent check by simulation: random walks of equally spaced looks cross
    /// ±Pocock's c at some look in 5 % of trials under the null, while testing every look at
    /// the unadjusted 1.96 crosses in ≈ 10.7 % (three looks; Armitage et al. 1969).
    #[test]
    fn simulated_false_positive_rate_is_alpha_over_all_looks() {
        let looks = 3;
        let c = pocock_z(&equally_spaced(looks), 0.05).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(20261121);
        let trials = 40_000;
        let (mut pocock, mut naive) = (0u32, 0u32);
        for _ in 0..trials {
            let mut sum = 0.0;
            let (mut crossed_pocock, mut crossed_naive) = (false, false);
            for k in 1..=looks {
                let step: f64 = StandardNormal.sample(&mut rng);
                sum += step;
                let z = (sum / (k as f64).sqrt()).abs();
                crossed_pocock |= z >= c;
                crossed_naive |= z >= 1.959964;
            }
            pocock += crossed_pocock as u32;
            naive += crossed_naive as u32;
        }
        let (p, n) = (
            f64::from(pocock) / f64::from(trials),
            f64::from(naive) / f64::from(trials),
        );
        // 4 standard errors of a binomial proportion at 0.05 over 40,000 trials ≈ 0.0044.
        assert!((p - 0.05).abs() < 0.0044, "Pocock FPR {p}");
        assert!((n - 0.107).abs() < 0.006, "naive FPR {n}");
    }

    /// The PR-mode design: 10 baseline runs fixed, the candidate at 10, 15, 20 runs. Simulated
    /// z tests (known σ) on exactly that design cross ±c at some look in 5 % of A/A trials.
    #[test]
    fn the_fixed_baseline_design_keeps_alpha() {
        let info = fixed_baseline(10, &[10, 15, 20]);
        assert!((info[0] - 5.0).abs() < 1e-12 && (info[2] - 20.0 / 3.0).abs() < 1e-12);
        let c = pocock_z(&info, 0.05).unwrap();
        // Strongly correlated looks: c is below the equally spaced 2.289.
        assert!(c > 1.96 && c < 2.2, "c = {c}");
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let trials = 40_000;
        let mut hits = 0u32;
        let mut normal = || -> f64 { StandardNormal.sample(&mut rng) };
        for _ in 0..trials {
            let base: f64 = (0..10).map(|_| normal()).sum::<f64>() / 10.0;
            let cand: Vec<f64> = (0..20).map(|_| normal()).collect();
            let crossed = [10usize, 15, 20].iter().any(|&n| {
                let mean = cand[..n].iter().sum::<f64>() / n as f64;
                ((mean - base) / (0.1 + 1.0 / n as f64).sqrt()).abs() >= c
            });
            hits += crossed as u32;
        }
        let p = f64::from(hits) / f64::from(trials);
        assert!((p - 0.05).abs() < 0.0044, "FPR {p}");
    }
}
