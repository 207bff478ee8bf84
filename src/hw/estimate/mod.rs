//! `exp estimate`: theoretical performance of one model × GPU × shape, as data ([`Estimate`],
//! serialisable) and as an aligned text table ([`render_table`]).
//!
//! Two methods:
//! - [`Method::Full`] (default): parameters with norms, biases and the LM head; prefill and
//!   decode through the deployment's roofline (compute *and* memory), naming the binding bound,
//!   plus KV capacity, crossover batch and TP communication.
//! - [`Method::Seed`]: the seed documents' simplified arithmetic (metrics.md "Theory"), unrounded,
//!   with the seed's own rounded figures beside it. Dense models only.

mod full;
mod seed;
mod table;

use serde::Serialize;

pub use full::{Capacity, FullEstimate};
pub use seed::SeedEstimate;
pub use table::render_table;

use super::deployment::Deployment;
use super::dtype::Dtype;
use super::efficiency::Efficiency;
use super::error::HwError;
use super::gpu::Gpu;
use super::model::ModelConfig;

/// Which arithmetic to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Full count and roofline (compute and memory bounds).
    #[default]
    Full,
    /// The seed documents' simplified formulas (compute only, no norms or head).
    Seed,
}

/// What to estimate.
#[derive(Debug, Clone)]
pub struct EstimateRequest {
    /// The model.
    pub model: ModelConfig,
    /// The GPU (each of `tp`).
    pub gpu: Gpu,
    /// Prompt tokens per request.
    pub prompt: u32,
    /// Output tokens per request.
    pub output: u32,
    /// Concurrent requests (prefilled together, then decoded together).
    pub batch: u32,
    /// Tensor-parallel degree.
    pub tp: u32,
    /// Arithmetic to use.
    pub method: Method,
    /// Weight format; `None` = the checkpoint's.
    pub weight_dtype: Option<Dtype>,
    /// KV-cache format; `None` = vLLM's `auto` ([`ModelConfig::default_kv_dtype`]).
    pub kv_dtype: Option<Dtype>,
    /// Efficiencies; [`Efficiency::ideal`] gives floors.
    pub efficiency: Efficiency,
    /// Fraction of GPU memory for weights + KV cache (vLLM's default 0.9).
    pub gpu_memory_utilization: f64,
}

impl EstimateRequest {
    /// Defaults: 1024 + 1024 tokens, batch 1, tp 1, full method, checkpoint dtypes, ideal
    /// efficiency, utilisation 0.9.
    pub fn new(model: ModelConfig, gpu: Gpu) -> EstimateRequest {
        EstimateRequest {
            model,
            gpu,
            prompt: 1024,
            output: 1024,
            batch: 1,
            tp: 1,
            method: Method::Full,
            weight_dtype: None,
            kv_dtype: None,
            efficiency: Efficiency::ideal(),
            gpu_memory_utilization: 0.9,
        }
    }
}

/// The inputs, echoed, and the result of one method.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// Model name.
    pub model: String,
    /// GPU name.
    pub gpu: String,
    /// Prompt tokens per request.
    pub prompt: u32,
    /// Output tokens per request.
    pub output: u32,
    /// Concurrent requests.
    pub batch: u32,
    /// Tensor-parallel degree.
    pub tp: u32,
    /// Weight format used.
    pub weight_dtype: Dtype,
    /// KV-cache format used.
    pub kv_dtype: Dtype,
    /// Efficiencies used.
    pub efficiency: Efficiency,
    /// True when `efficiency` is [`Efficiency::ideal`] (times are floors).
    pub ideal: bool,
    /// The result.
    pub result: EstimateResult,
}

/// The result of the chosen method.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum EstimateResult {
    /// [`Method::Full`].
    Full(FullEstimate),
    /// [`Method::Seed`].
    Seed(SeedEstimate),
}

/// Computes the estimate. Fails on an impossible deployment (tp not dividing the heads,
/// invalid efficiency), zero-token shapes, or the seed method on an MoE/MLA model.
pub fn estimate(req: &EstimateRequest) -> Result<Estimate, HwError> {
    if req.prompt == 0 || req.output == 0 || req.batch == 0 {
        return Err(HwError::InvalidDeployment(format!(
            "prompt ({}), output ({}) and batch ({}) must all be ≥ 1",
            req.prompt, req.output, req.batch
        )));
    }
    let weight_dtype = req.weight_dtype.unwrap_or(req.model.dtype);
    let kv_dtype = req.kv_dtype.unwrap_or_else(|| req.model.default_kv_dtype());
    let deployment = Deployment::new(
        req.model.clone(),
        req.gpu.clone(),
        req.tp,
        weight_dtype,
        kv_dtype,
        req.efficiency,
    )?;
    let result = match req.method {
        Method::Full => EstimateResult::Full(full::compute(&deployment, req)),
        Method::Seed => EstimateResult::Seed(seed::compute(&deployment, req)?),
    };
    Ok(Estimate {
        model: req.model.name.clone(),
        gpu: req.gpu.name.clone(),
        prompt: req.prompt,
        output: req.output,
        batch: req.batch,
        tp: req.tp,
        weight_dtype,
        kv_dtype,
        efficiency: req.efficiency,
        ideal: req.efficiency == Efficiency::ideal(),
        result,
    })
}
