//! Per-request token lengths: request `i`'s prompt and output lengths are drawn from the cell's
//! [`LengthDist`] around its mean, on request `i`'s own stream, so they do not depend on how many
//! requests were drawn before, and cells that differ only in the mean see the same variates
//! scaled (common random numbers). A replayed trace overrides both lengths per request.

use std::sync::Arc;

use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};

use super::error::WorkloadError;
use super::stream::{self, Purpose};
use super::trace::Trace;
use crate::scenario::model::LengthDist;

/// Attempts at a truncated-normal draw before settling on the truncation point.
const NORMAL_ATTEMPTS: u32 = 1000;

/// Draws one length (input or output) per request index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LengthDraw {
    mean: u32,
    dist: LengthDist,
    key: u64,
}

impl LengthDraw {
    /// Lengths around `mean` with `dist`, on the streams of (`seed`, `purpose`).
    pub(crate) fn new(mean: u32, dist: LengthDist, seed: u64, purpose: Purpose) -> Self {
        Self {
            mean,
            dist,
            key: stream::key(seed, purpose),
        }
    }

    /// The length of request `index` (≥ 1).
    pub(crate) fn get(&self, index: u64) -> u32 {
        if matches!(self.dist, LengthDist::Fixed) {
            return self.mean.max(1);
        }
        sample(
            f64::from(self.mean),
            self.dist,
            &mut stream::indexed(self.key, index),
        )
    }

    /// The length of turn `turn` of conversation `index`: turn 0 is [`Self::get`] (what a
    /// single-turn source draws), later turns draw on streams of their own.
    pub(crate) fn get_turn(&self, index: u64, turn: u32) -> u32 {
        if turn == 0 || matches!(self.dist, LengthDist::Fixed) {
            return self.get(index);
        }
        let key = stream::mix64(self.key ^ u64::from(turn));
        sample(
            f64::from(self.mean),
            self.dist,
            &mut stream::indexed(key, index),
        )
    }
}

/// Checks a distribution's parameters (finite, non-negative, uniform spread ≤ 1).
pub(crate) fn check(dist: LengthDist, what: &str) -> Result<(), WorkloadError> {
    let (name, value, max) = match dist {
        LengthDist::Fixed => return Ok(()),
        LengthDist::Uniform { spread } => ("spread", spread, 1.0),
        LengthDist::Normal { cv } => ("cv", cv, f64::INFINITY),
        LengthDist::Lognormal { sigma } => ("sigma", sigma, f64::INFINITY),
    };
    if value.is_finite() && (0.0..=max).contains(&value) {
        Ok(())
    } else {
        Err(WorkloadError::Invalid(format!(
            "{what} distribution: {name} = {value} is out of range (must be finite, >= 0{})",
            if max.is_finite() { ", <= 1" } else { "" }
        )))
    }
}

/// One draw around `mean`, rounded to the nearest integer and clamped to [1, u32::MAX].
///
/// - Uniform: `mean·(1 + spread·(2u − 1))`, u uniform in [0, 1).
/// - Normal: `mean·(1 + cv·z)`, z standard normal, redrawn while below 1 (truncated at 1).
/// - Lognormal: `mean·exp(σ·z − σ²/2)`, whose mean is `mean`.
pub(crate) fn sample<R: rand::Rng + ?Sized>(mean: f64, dist: LengthDist, rng: &mut R) -> u32 {
    let x = match dist {
        LengthDist::Fixed => mean,
        LengthDist::Uniform { spread } => mean * (1.0 + spread * (2.0 * rng.random::<f64>() - 1.0)),
        LengthDist::Normal { cv } => truncated_normal(mean, cv, rng),
        LengthDist::Lognormal { sigma } => {
            let z: f64 = StandardNormal.sample(rng);
            mean * (sigma * z - sigma * sigma / 2.0).exp()
        }
    };
    // `as` saturates for floats; NaN cannot occur with checked parameters but maps to 1.
    (x.round() as u32).max(1)
}

fn truncated_normal<R: rand::Rng + ?Sized>(mean: f64, cv: f64, rng: &mut R) -> f64 {
    for _ in 0..NORMAL_ATTEMPTS {
        let z: f64 = StandardNormal.sample(rng);
        let x = mean * (1.0 + cv * z);
        if x >= 1.0 {
            return x;
        }
    }
    1.0
}

/// Where request `i`'s lengths come from: the cell's distributions, or a replayed trace.
#[derive(Debug, Clone)]
pub(crate) struct LengthPlan {
    input: LengthDraw,
    output: LengthDraw,
    trace: Option<Arc<Trace>>,
}

impl LengthPlan {
    /// Lengths drawn from the cell's distributions, overridden by `trace` where given.
    pub(crate) fn new(input: LengthDraw, output: LengthDraw, trace: Option<Arc<Trace>>) -> Self {
        Self {
            input,
            output,
            trace,
        }
    }

    /// Intended prompt tokens of request `index`: the trace's, else a draw.
    pub(crate) fn input(&self, index: u64) -> u32 {
        self.trace
            .as_ref()
            .map(|t| t.entry(index).input_tokens)
            .unwrap_or_else(|| self.input.get(index))
    }

    /// Output tokens of request `index`: the trace's, else `dataset`'s (a dataset line's own
    /// `output_tokens`), else a draw.
    pub(crate) fn output(&self, index: u64, dataset: Option<u32>) -> u32 {
        self.trace
            .as_ref()
            .map(|t| t.entry(index).output_tokens)
            .or(dataset)
            .unwrap_or_else(|| self.output.get(index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(mean: u32, dist: LengthDist, n: u64) -> Vec<f64> {
        let d = LengthDraw::new(mean, dist, 11, Purpose::InputLength);
        (0..n).map(|i| f64::from(d.get(i))).collect()
    }

    fn mean(xs: &[f64]) -> f64 {
        xs.iter().sum::<f64>() / xs.len() as f64
    }

    #[test]
    fn fixed_is_exactly_the_mean() {
        assert!(
            draws(512, LengthDist::Fixed, 100)
                .iter()
                .all(|&x| x == 512.0)
        );
    }

    #[test]
    fn uniform_stays_in_its_interval_and_keeps_the_mean() {
        let xs = draws(1000, LengthDist::Uniform { spread: 0.5 }, 20_000);
        assert!(xs.iter().all(|&x| (500.0..=1500.0).contains(&x)));
        assert!((mean(&xs) - 1000.0).abs() < 10.0, "{}", mean(&xs));
    }

    #[test]
    fn lognormal_keeps_the_mean() {
        let xs = draws(1000, LengthDist::Lognormal { sigma: 0.5 }, 50_000);
        assert!((mean(&xs) - 1000.0).abs() < 15.0, "{}", mean(&xs));
    }

    #[test]
    fn normal_has_the_cv_and_is_truncated_at_one() {
        let xs = draws(1000, LengthDist::Normal { cv: 0.2 }, 50_000);
        let m = mean(&xs);
        let sd = (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / xs.len() as f64).sqrt();
        assert!((m - 1000.0).abs() < 5.0, "{m}");
        assert!((sd / m - 0.2).abs() < 0.01, "{}", sd / m);
        assert!(
            draws(2, LengthDist::Normal { cv: 3.0 }, 5000)
                .iter()
                .all(|&x| x >= 1.0)
        );
    }

    #[test]
    fn request_lengths_do_not_depend_on_draw_order() {
        let d = LengthDraw::new(
            300,
            LengthDist::Normal { cv: 0.5 },
            5,
            Purpose::OutputLength,
        );
        let forward: Vec<u32> = (0..50).map(|i| d.get(i)).collect();
        let backward: Vec<u32> = (0..50).rev().map(|i| d.get(i)).collect();
        assert_eq!(forward, backward.into_iter().rev().collect::<Vec<_>>());
    }

    #[test]
    fn bad_parameters_are_named() {
        let err = check(LengthDist::Uniform { spread: 1.5 }, "prompt").unwrap_err();
        assert!(err.to_string().contains("spread = 1.5"), "{err}");
        assert!(check(LengthDist::Normal { cv: f64::NAN }, "output").is_err());
    }
}
