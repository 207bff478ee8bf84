//! Property-style checks on seeded random data (ChaCha8, fixed seeds): invariants that must
//! hold for every input, not just the worked examples.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

/// `n` normal draws with the given mean and sd (Box–Muller), rounded to 0.01 like real metrics.
fn normal_sample(rng: &mut ChaCha8Rng, n: usize, mean: f64, sd: f64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let (u1, u2): (f64, f64) = (rng.random(), rng.random());
            let z = (-2.0 * (1.0 - u1).ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            ((mean + sd * z) * 100.0).round() / 100.0
        })
        .collect()
}

/// Random pairs of groups: sizes 5..=15, a relative shift in ±8 %, CVs of 1–6 %.
fn random_pairs(seed: u64, count: usize) -> Vec<(Vec<f64>, Vec<f64>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let (na, nb) = (rng.random_range(5..=15), rng.random_range(5..=15));
            let shift = rng.random_range(-0.08..0.08);
            let (cva, cvb) = (rng.random_range(0.01..0.06), rng.random_range(0.01..0.06));
            let a = normal_sample(&mut rng, na, 100.0, 100.0 * cva);
            let b = normal_sample(&mut rng, nb, 100.0 * (1.0 + shift), 100.0 * cvb);
            (a, b)
        })
        .collect()
}

#[test]
fn fieller_ci_excludes_zero_iff_welch_is_significant() {
    let mut significant = 0;
    for (a, b) in random_pairs(20_251_121, 400) {
        let c = compare(&a, &b, Direction::LowerIsBetter, 0.05).unwrap();
        let p = c.p_value().unwrap();
        if (p - 0.05).abs() < 1e-9 {
            continue; // too close to the boundary for floating point
        }
        let ci = c.relative.as_ref().unwrap().fieller;
        assert_eq!(
            ci.excludes(0.0),
            p < 0.05,
            "p = {p}, ci = {ci:?}, a = {a:?}, b = {b:?}"
        );
        significant += usize::from(p < 0.05);
    }
    // Both branches were exercised.
    assert!(significant > 50 && significant < 350, "{significant}");
}

#[test]
fn swapping_groups_mirrors_every_statistic() {
    for (a, b) in random_pairs(7, 100) {
        let w_ab = welch(&a, &b, 0.05).unwrap();
        let w_ba = welch(&b, &a, 0.05).unwrap();
        let (WelchResult::Test(x), WelchResult::Test(y)) = (&w_ab, &w_ba) else {
            panic!("random data has spread")
        };
        assert!((x.t + y.t).abs() < 1e-9 && (x.p_two_sided - y.p_two_sided).abs() < 1e-12);
        let (g_ab, g_ba) = (hedges_g(&a, &b).unwrap(), hedges_g(&b, &a).unwrap());
        assert!((g_ab.g + g_ba.g).abs() < 1e-9);
        let (m_ab, m_ba) = (mann_whitney(&a, &b).unwrap(), mann_whitney(&b, &a).unwrap());
        assert!((m_ab.a12 + m_ba.a12 - 1.0).abs() < 1e-12);
        assert!((m_ab.p - m_ba.p).abs() < 1e-12);
        let (bm_ab, bm_ba) = (
            brunner_munzel(&a, &b).unwrap(),
            brunner_munzel(&b, &a).unwrap(),
        );
        assert!((bm_ab.p_hat + bm_ba.p_hat - 1.0).abs() < 1e-12);
        match (bm_ab.p_value(), bm_ba.p_value()) {
            (Some(x), Some(y)) => assert!((x - y).abs() < 1e-9),
            (x, y) => assert_eq!(x, y, "separation is symmetric"),
        }
        let (r_ab, r_ba) = (
            relative_change(&a, &b, 0.05).unwrap(),
            relative_change(&b, &a, 0.05).unwrap(),
        );
        assert!((r_ab.ratio * r_ba.ratio - 1.0).abs() < 1e-12);
    }
}

#[test]
fn flipping_the_direction_mirrors_the_verdict() {
    let mirror = |v: Verdict| match v {
        Verdict::Regression => Verdict::Improvement,
        Verdict::Improvement => Verdict::Regression,
        Verdict::PossibleRegression => Verdict::PossibleImprovement,
        Verdict::PossibleImprovement => Verdict::PossibleRegression,
        other => other,
    };
    for (a, b) in random_pairs(99, 200) {
        let lower = compare(&a, &b, Direction::LowerIsBetter, 0.05).unwrap();
        let higher = compare(&a, &b, Direction::HigherIsBetter, 0.05).unwrap();
        let p = lower.p_value().unwrap();
        for tau in [0.0, 0.01, 0.03, 0.05] {
            let v = verdict(&lower, p, tau, 0.05);
            assert_eq!(verdict(&higher, p, tau, 0.05), mirror(v));
            let d = lower.worse.as_ref().unwrap().d;
            if v == Verdict::Regression {
                assert!(d > tau);
            }
        }
    }
}

#[test]
fn degenerate_inputs_never_yield_non_finite_numbers() {
    let cases: [(&[f64], &[f64]); 6] = [
        (&[5.0], &[5.0]),
        (&[0.0; 5], &[0.0; 5]),
        (&[0.0; 5], &[1.0; 5]),
        (&[1.0, 1.0, 1.0, 1.0, 2.0], &[1.0; 5]),
        (&[-3.0, 3.0, 0.0, 1.0, -1.0], &[1.0, 2.0, 3.0, 4.0, 5.0]),
        (&[1e-12, 2e-12, 3e-12], &[1e12, 2e12]),
    ];
    for (a, b) in cases {
        let c = compare(a, b, Direction::LowerIsBetter, 0.05).unwrap();
        let mut numbers = vec![c.baseline.mean, c.candidate.mean];
        numbers.extend(
            [c.baseline.std, c.baseline.cv, c.candidate.half_width]
                .into_iter()
                .flatten(),
        );
        numbers.extend(c.p_value());
        numbers.extend(c.robust_p_value());
        numbers.extend(c.mde);
        numbers.extend(c.hedges.as_ref().map(|h| h.g));
        if let Some(w) = &c.worse {
            numbers.push(w.d);
            if let Interval::Bounded { low, high } = w.ci {
                numbers.extend([low, high]);
            }
        }
        if let Some(WelchResult::Test(w)) = &c.welch {
            numbers.extend([w.t, w.df, w.p_two_sided]);
        }
        assert!(
            numbers.iter().all(|x| x.is_finite()),
            "{a:?} vs {b:?}: {numbers:?}"
        );
        let p = c.p_value().unwrap_or(1.0);
        let _ = verdict(&c, p, 0.03, 0.05);
    }
}
