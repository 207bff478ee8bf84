//! `exp calibrate`: fit the simulator's efficiency factors and fixed step overhead to a real
//! run's low-load TTFT and TPOT, and write them as a profile (`[target] sim_preset = "…"`).
//!
//! What this module owns (pure; the run directory is read by `app::calibrate`):
//! - [`select`]: which requests calibrate — those that ran alone (no other request in flight
//!   between their send and their last token), so their latencies are one request's steps.
//! - [`predict`]: the simulator's TTFT and TPOT for such a request, from
//!   [`crate::hw::Deployment::step_time`].
//! - [`fit`] (over the small in-house least-squares solver in `lsq`): `memory` and
//!   `step_overhead_s` from TPOT, then `matmul` from TTFT, with standard errors.
//! - [`Profile`]: the TOML file (`[profile]` metadata and the `[efficiency]` table that
//!   [`crate::theory::efficiency`] reads).
//! - [`report`]: the text `exp calibrate` prints.

pub mod fit;
mod lsq;
pub mod predict;
mod profile;
pub mod report;
pub mod select;

#[cfg(test)]
mod tests;

pub use fit::calibrate;
pub use profile::{Profile, ProfileCell, ProfileMeta};
pub use select::{Counts, Observation};

use crate::hw::{Deployment, Efficiency};

/// The deployment one cell ran on (model × GPU × TP, with the starting efficiency) and its
/// prefill chunk budget (`max_num_batched_tokens`).
#[derive(Debug, Clone)]
pub struct CellModel {
    /// The cell's deployment.
    pub deployment: Deployment,
    /// Most prompt tokens one step prefills.
    pub chunk_budget: u32,
}

/// One fitted parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    /// Its key in `[efficiency]`.
    pub name: &'static str,
    /// The fitted value (a fraction, or seconds for `step_overhead_s`).
    pub value: f64,
    /// Standard error from the fit's covariance, in the value's unit.
    pub std_error: Option<f64>,
    /// True when the fit stopped on a bound (η = 1, or a zero overhead).
    pub at_bound: bool,
    /// Which data pinned it.
    pub source: &'static str,
}

/// Relative residuals, `(predicted − measured) / measured`, of one metric.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Residuals {
    /// Requests.
    pub n: usize,
    /// Root mean square.
    pub rms: f64,
    /// Mean (positive: the profile predicts too slow).
    pub mean: f64,
    /// Largest absolute value.
    pub max_abs: f64,
}

impl Residuals {
    /// Summarises residuals (all zero for none).
    pub fn of(r: &[f64]) -> Residuals {
        if r.is_empty() {
            return Residuals::default();
        }
        let n = r.len() as f64;
        Residuals {
            n: r.len(),
            rms: (r.iter().map(|x| x * x).sum::<f64>() / n).sqrt(),
            mean: r.iter().sum::<f64>() / n,
            max_abs: r.iter().fold(0.0, |m, x| m.max(x.abs())),
        }
    }
}

/// Measured and predicted means over one cell's requests that ran alone.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CellRow {
    /// Index of the cell (into the fit's cells).
    pub cell: usize,
    /// Shortest prompt, tokens.
    pub prompt_min: u32,
    /// Longest prompt, tokens.
    pub prompt_max: u32,
    /// Requests.
    pub requests: usize,
    /// Mean measured TTFT, seconds.
    pub ttft_measured_s: f64,
    /// Mean predicted TTFT, seconds.
    pub ttft_predicted_s: f64,
    /// Requests with a TPOT.
    pub tpot_requests: usize,
    /// Mean measured TPOT, seconds.
    pub tpot_measured_s: f64,
    /// Mean predicted TPOT, seconds.
    pub tpot_predicted_s: f64,
}

/// The result of [`calibrate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// The fitted efficiency (unfitted factors kept from `start`).
    pub efficiency: Efficiency,
    /// Where the fit started (per-layer overhead folded into the step overhead).
    pub start: Efficiency,
    /// The fitted parameters.
    pub fitted: Vec<Fitted>,
    /// TTFT residuals at the fit.
    pub ttft: Residuals,
    /// TPOT residuals at the fit.
    pub tpot: Residuals,
    /// Requests whose modelled prefill was compute-bound (the ones that pin `matmul`).
    pub matmul_compute_bound: usize,
    /// Measured and predicted means per cell.
    pub by_cell: Vec<CellRow>,
    /// Things the user should know about the fit.
    pub warnings: Vec<String>,
}

/// Too little, or unsuitable, low-load data. Each message says what the scenario needs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalibrateError {
    /// Not enough requests ran alone.
    #[error(
        "only {alone} successful requests ran alone (no other request in flight); calibration \
         needs at least {needed}: run a low-load cell, e.g. arrival = \"closed\" with \
         concurrency = 1 (see scenarios/calibrate_low_load.toml)"
    )]
    TooFewAlone {
        /// Requests that ran alone.
        alone: usize,
        /// The minimum.
        needed: usize,
    },
    /// The prompts that ran alone were all about the same length.
    #[error(
        "the requests that ran alone had prompts of {shortest} to {longest} tokens; calibration \
         needs prompt lengths at least a factor of 2 apart to separate per-token costs from \
         fixed ones, e.g. `[vars.sweep] prompt_tokens = [1024, 4096, 16384]`"
    )]
    PromptsTooAlike {
        /// Shortest prompt.
        shortest: u32,
        /// Longest prompt.
        longest: u32,
    },
    /// Not enough TPOT data.
    #[error(
        "{with_tpot} requests that ran alone have a TPOT (≥ 8 output tokens), with prompts of \
         {shortest} to {longest} tokens; calibration needs at least {needed}, with prompt \
         lengths a factor of 2 apart: set `output_tokens` ≥ 64 (with ignore_eos) on every \
         prompt length"
    )]
    TooFewTpot {
        /// Requests with a TPOT.
        with_tpot: usize,
        /// Shortest prompt among them (0 for none).
        shortest: u32,
        /// Longest prompt among them.
        longest: u32,
        /// The minimum.
        needed: usize,
    },
    /// Prefill was memory-bound for every prompt, so prefill efficiency is not identifiable.
    #[error(
        "the model's prefill is memory-bound for every prompt used (longest {longest} tokens), \
         so TTFT says nothing about prefill compute efficiency: add prompts of at least \
         {needed} tokens, e.g. `prompt_tokens = [{needed}, {}]`", needed * 4
    )]
    PrefillNotComputeBound {
        /// The longest prompt that ran alone.
        longest: u32,
        /// The shortest power-of-two prompt that is compute-bound.
        needed: u32,
    },
}
