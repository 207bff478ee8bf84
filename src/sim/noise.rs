//! Seeded step-time noise: each engine step's modelled time is multiplied by a lognormal factor
//! with mean 1 and a chosen coefficient of variation, drawn from a ChaCha8 stream of its own so
//! that the same seed always gives the same sequence of factors.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};

/// A stream of multiplicative noise factors.
#[derive(Debug, Clone)]
pub(crate) struct Noise {
    rng: ChaCha8Rng,
    /// `None` when the CV is 0: every factor is exactly 1 and no random number is drawn.
    dist: Option<LogNormal<f64>>,
}

impl Noise {
    /// Factors with mean 1 and coefficient of variation `cv` (validated finite and ≥ 0).
    pub(crate) fn new(cv: f64, seed: u64) -> Self {
        let dist = (cv > 0.0).then(|| {
            // sigma² = ln(1 + cv²), mu = −sigma²/2 gives mean 1 and std cv.
            LogNormal::from_mean_cv(1.0, cv).expect("cv is validated finite and positive")
        });
        Noise {
            rng: ChaCha8Rng::seed_from_u64(seed),
            dist,
        }
    }

    /// The next factor.
    pub(crate) fn factor(&mut self) -> f64 {
        match &self.dist {
            Some(d) => d.sample(&mut self.rng),
            None => 1.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(cv: f64, n: usize) -> (f64, f64) {
        let mut noise = Noise::new(cv, 7);
        let xs: Vec<f64> = (0..n).map(|_| noise.factor()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        (mean, var.sqrt() / mean)
    }

    #[test]
    fn factors_have_mean_one_and_the_requested_cv() {
        // n = 200k: standard error of the mean ≈ 0.1 × 0.0022, of the CV ≈ 0.1 × 0.0016.
        let (mean, cv) = moments(0.1, 200_000);
        assert!((mean - 1.0).abs() < 0.002, "mean {mean}");
        assert!((cv - 0.1).abs() < 0.002, "cv {cv}");
    }

    #[test]
    fn zero_cv_is_exactly_one() {
        let mut noise = Noise::new(0.0, 1);
        assert!((0..100).all(|_| noise.factor() == 1.0));
    }

    #[test]
    fn same_seed_same_factors_other_seed_other_factors() {
        let draw = |seed| {
            let mut n = Noise::new(0.02, seed);
            (0..16).map(|_| n.factor()).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }
}
