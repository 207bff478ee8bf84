//! The simulated inference engine: a discrete-event model of a continuous-batching server
//! (vLLM V1-like) in virtual time (`u64` nanoseconds), with no I/O and no async runtime.
//!
//! - [`Engine`] is the core, usable step by step from any clock: requests are added, and each
//!   [`Engine::next_step`] schedules one batch (token budget, sequence cap, chunked prefill,
//!   KV-cache blocks with an admission watermark, preemption by recompute), asks a
//!   [`StepCost`] how long it takes, applies seeded lognormal noise, and reports which
//!   sequences emitted a token at the step's end.
//! - [`run_repetition`] drives that core in virtual time through one [`RepetitionWork`]
//!   (open, closed or batch arrivals, warm-up, request count, duration and grace) and returns
//!   the same [`RequestRecord`]s the HTTP driver writes, plus engine [`SimStats`].
//! - The step cost is pluggable: [`LinearCost`] for tests and quick what-ifs, and the analytical
//!   hardware model, [`crate::hw::Deployment`], which implements [`StepCost`] (see `cost.rs`).
//!
//! [`RepetitionWork`]: crate::workload::work::RepetitionWork
//! [`RequestRecord`]: crate::record::RequestRecord

mod cost;
mod driver;
mod engine;
mod kv;
mod noise;
mod phase;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_driver;
#[cfg(test)]
mod tests_hw;
#[cfg(test)]
mod tests_turns;

pub use cost::LinearCost;
pub use driver::{
    GaugeSample, SAMPLE_INTERVAL_NS, SimRun, SimStats, run_repetition, run_repetition_into,
};
pub use engine::{Emission, Engine, StepReport};

/// One sequence's share of a step's prefill work (the hardware model's own type, so steps pass
/// their batch to [`crate::hw::Deployment`] without conversion).
pub use crate::hw::PrefillWork;

/// Time model of one engine step.
pub trait StepCost {
    /// Seconds one step takes, before noise: `prefill` lists the sequences computing prompt
    /// tokens (chunks of prompts, or whole recomputations after preemption); `decode_contexts`
    /// gives, for each sequence decoding one token, its KV length before the step (the tokens
    /// it attends to besides the new one; the same convention as `hw::Deployment::step_time`).
    /// Must be finite and ≥ 0.
    fn step_seconds(&self, prefill: &[PrefillWork], decode_contexts: &[u32]) -> f64;

    /// Seconds the API server in front of the engine spends on a request of `prompt_tokens`
    /// tokens before the engine sees it (HTTP, tokenisation, admission). The driver runs one
    /// such server thread, so a burst of requests queues there. Default 0: requests reach the
    /// engine when they are sent. Must be finite and ≥ 0.
    fn admission_seconds(&self, prompt_tokens: u32) -> f64 {
        let _ = prompt_tokens;
        0.0
    }
}

impl<T: StepCost + ?Sized> StepCost for &T {
    fn step_seconds(&self, prefill: &[PrefillWork], decode_contexts: &[u32]) -> f64 {
        (**self).step_seconds(prefill, decode_contexts)
    }
    fn admission_seconds(&self, prompt_tokens: u32) -> f64 {
        (**self).admission_seconds(prompt_tokens)
    }
}

impl<T: StepCost + ?Sized> StepCost for Box<T> {
    fn step_seconds(&self, prefill: &[PrefillWork], decode_contexts: &[u32]) -> f64 {
        (**self).step_seconds(prefill, decode_contexts)
    }
    fn admission_seconds(&self, prompt_tokens: u32) -> f64 {
        (**self).admission_seconds(prompt_tokens)
    }
}

impl<T: StepCost + ?Sized> StepCost for std::sync::Arc<T> {
    fn step_seconds(&self, prefill: &[PrefillWork], decode_contexts: &[u32]) -> f64 {
        (**self).step_seconds(prefill, decode_contexts)
    }
    fn admission_seconds(&self, prompt_tokens: u32) -> f64 {
        (**self).admission_seconds(prompt_tokens)
    }
}

/// Scheduler and memory settings of the simulated engine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineParams {
    /// Most sequences running at once (vLLM `max_num_seqs`).
    pub max_num_seqs: u32,
    /// Token budget of one step (vLLM `max_num_batched_tokens`).
    pub max_num_batched_tokens: u32,
    /// Tokens per KV-cache block (vLLM `block_size`, default 16).
    pub block_size: u32,
    /// Tokens the KV cache holds across all sequences (rounded down to whole blocks).
    pub kv_capacity_tokens: u64,
    /// Coefficient of variation of the per-step time noise (default 0.02; 0 = no noise).
    pub noise_cv: f64,
    /// Share of KV blocks a new admission must leave free (default 0.01).
    pub watermark: f64,
}

impl EngineParams {
    /// Default KV block size in tokens.
    pub const DEFAULT_BLOCK_SIZE: u32 = 16;
    /// Default step-time noise CV.
    pub const DEFAULT_NOISE_CV: f64 = 0.02;
    /// Default admission watermark (share of blocks).
    pub const DEFAULT_WATERMARK: f64 = 0.01;

    /// Settings with the given limits and capacity, and default block size, noise and watermark.
    pub fn new(max_num_seqs: u32, max_num_batched_tokens: u32, kv_capacity_tokens: u64) -> Self {
        EngineParams {
            max_num_seqs,
            max_num_batched_tokens,
            block_size: Self::DEFAULT_BLOCK_SIZE,
            kv_capacity_tokens,
            noise_cv: Self::DEFAULT_NOISE_CV,
            watermark: Self::DEFAULT_WATERMARK,
        }
    }

    /// Checks every field; the engine refuses settings that fail.
    pub fn validate(&self) -> Result<(), SimError> {
        for (name, v) in [
            ("max_num_seqs", self.max_num_seqs),
            ("max_num_batched_tokens", self.max_num_batched_tokens),
            ("block_size", self.block_size),
        ] {
            if v == 0 {
                return Err(SimError::Zero { name });
            }
        }
        if !(self.noise_cv.is_finite() && self.noise_cv >= 0.0) {
            return Err(SimError::NoiseCv(self.noise_cv));
        }
        if !(0.0..1.0).contains(&self.watermark) {
            return Err(SimError::Watermark(self.watermark));
        }
        Ok(())
    }
}

/// Invalid settings, or a workload the simulation cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// A count that must be positive is 0.
    #[error("engine setting `{name}` must be > 0")]
    Zero {
        /// The setting's name.
        name: &'static str,
    },
    /// The noise CV is negative or not finite.
    #[error("noise_cv = {0}: must be finite and >= 0 (0 gives bit-identical runs)")]
    NoiseCv(f64),
    /// The watermark is outside [0, 1).
    #[error("watermark = {0}: must be in [0, 1)")]
    Watermark(f64),
    /// Closed-loop or batch work with neither a request count nor a duration would never end.
    #[error("closed-loop and batch work need `requests` or `duration`, or it never ends")]
    Unbounded,
    /// Every request was rejected (too large for the KV cache) and virtual time cannot advance.
    #[error(
        "{rejected} requests in a row were rejected (each needs more KV cache than the engine \
         has) and virtual time cannot advance; raise the KV capacity or shorten the requests"
    )]
    NoProgress {
        /// Consecutive rejections seen.
        rejected: u64,
    },
}

/// Why [`Engine::add`] refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddError {
    /// The sequence (prompt plus output) could never fit in the KV cache, even alone.
    #[error(
        "request needs {needed_tokens} KV tokens (prompt + output − 1) but the cache holds \
         {capacity_tokens} (less the admission watermark)"
    )]
    Rejected {
        /// Tokens the sequence would hold at its longest.
        needed_tokens: u64,
        /// Tokens the whole KV cache holds.
        capacity_tokens: u64,
    },
    /// The prompt or the output length is 0.
    #[error("a request needs at least one prompt token and one output token")]
    Empty,
    /// A request with this id is already in the engine.
    #[error("request id {0} is already in the engine")]
    DuplicateId(u64),
}
