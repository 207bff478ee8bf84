//! The full method: parameter counts, roofline TTFT/TPOT with the binding bound, throughput
//! ceiling, crossover batch, KV capacity and TP communication (hardware.md §1–§2).

use serde::Serialize;

use super::EstimateRequest;
use crate::hw::deployment::{Deployment, StepTime};
use crate::hw::roofline::AllReduce;

/// Results of [`Method::Full`](super::Method::Full). FLOPs are whole-model unless a field says
/// per GPU; times use the request's efficiency (floors when ideal).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FullEstimate {
    /// Total parameters (all experts, norms, biases, embedding and head).
    pub params_total: u64,
    /// Parameters one token uses (k experts), embedding and head included.
    pub params_active: u64,
    /// Weight bytes on each GPU.
    pub weight_bytes_per_gpu: f64,
    /// KV-cache bytes per token on each GPU.
    pub kv_bytes_per_token_per_gpu: f64,
    /// FLOPs to prefill one prompt (linear + causal attention + LM head once).
    pub prefill_flops_per_request: f64,
    /// The step prefilling all `batch` prompts together: the TTFT floor.
    pub ttft: StepTime,
    /// Mean KV length over the decode steps: `prompt + (output − 1)/2`.
    pub mean_decode_context: f64,
    /// FLOPs to decode one token at the mean context.
    pub decode_flops_per_token: f64,
    /// One decode step of `batch` sequences at the mean context: the TPOT floor.
    pub tpot: StepTime,
    /// Decode tokens/s ceiling at this batch (`batch / tpot`).
    pub decode_tokens_per_s: f64,
    /// `ttft + (output − 1) · tpot`, seconds.
    pub e2e_s: f64,
    /// Batch above which decode is compute-bound, weights only (≈ ridge point for dense BF16).
    pub crossover_batch_weights_only: Option<f64>,
    /// The same counting KV reads at the mean context; `None` = memory-bound at any batch.
    pub crossover_batch_with_kv: Option<f64>,
    /// Whether `batch` sequences of `prompt + output` tokens fit.
    pub capacity: Capacity,
    /// TP all-reduces of the prefill step.
    pub prefill_comm: AllReduce,
    /// TP all-reduces of one decode step.
    pub decode_comm: AllReduce,
    /// The seed documents' quick rule for decode throughput (metrics.md "Theory"): peak FLOP/s
    /// of all GPUs over the seed's decode FLOPs per token at `prompt + output/2` (compute
    /// only; at small batches the memory-bound ceiling above is the real limit). `None` for
    /// MoE and MLA models, which the seed's count does not cover.
    pub quick_rule_tokens_per_s: Option<f64>,
    /// What makes the shape impossible as asked: a batch whose KV cache does not fit, or a
    /// sequence longer than the model's `max_position_embeddings`.
    pub warnings: Vec<String>,
}

/// KV capacity at the request's memory utilisation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Capacity {
    /// The weights fit; the KV cache holds `kv_tokens` tokens.
    Fits {
        /// KV-cache tokens per GPU (= per deployment).
        kv_tokens: u64,
        /// Sequences of `prompt + output` tokens that fit at once.
        max_batch: u64,
    },
    /// The weights alone exceed the budget.
    DoesNotFit {
        /// The error message, with numbers.
        reason: String,
    },
}

pub(super) fn compute(d: &Deployment, req: &EstimateRequest) -> FullEstimate {
    let model = d.model();
    let mean_context = f64::from(req.prompt) + (f64::from(req.output) - 1.0) / 2.0;
    let ttft = d.prefill_time(req.prompt, req.batch);
    let tpot = d.decode_time_f(f64::from(req.batch), mean_context);
    let decode_flops =
        d.decode_flops_per_token(0) + model.attention_flops_per_pair() * mean_context;
    let total_context = req.prompt.saturating_add(req.output);
    let capacity = match d.kv_capacity_tokens(req.gpu_memory_utilization) {
        Ok(kv_tokens) => Capacity::Fits {
            kv_tokens,
            max_batch: kv_tokens / u64::from(total_context),
        },
        Err(e) => Capacity::DoesNotFit {
            reason: e.to_string(),
        },
    };
    let quick_rule_tokens_per_s = super::seed::compute(d, req).ok().map(|s| s.tokens_per_s);
    let warnings = warnings(d, req, &capacity);
    FullEstimate {
        quick_rule_tokens_per_s,
        warnings,
        params_total: model.total_params(),
        params_active: model.active_params(),
        weight_bytes_per_gpu: d.weights_bytes_per_gpu(),
        kv_bytes_per_token_per_gpu: d.kv_bytes_per_token_per_gpu(),
        prefill_flops_per_request: d.prefill_flops(req.prompt),
        ttft,
        mean_decode_context: mean_context,
        decode_flops_per_token: decode_flops,
        tpot,
        decode_tokens_per_s: f64::from(req.batch) / tpot.seconds,
        e2e_s: ttft.seconds + f64::from(req.output - 1) * tpot.seconds,
        crossover_batch_weights_only: d.crossover_batch_weights_only(),
        crossover_batch_with_kv: d.crossover_batch_f(mean_context),
        capacity,
        prefill_comm: d.allreduce(req.prompt.saturating_mul(req.batch)),
        decode_comm: d.allreduce(req.batch),
    }
}

/// The shape's impossibilities, each as one sentence with its numbers.
fn warnings(d: &Deployment, req: &EstimateRequest, capacity: &Capacity) -> Vec<String> {
    let mut out = Vec::new();
    let context = u64::from(req.prompt) + u64::from(req.output);
    match capacity {
        Capacity::Fits {
            kv_tokens,
            max_batch,
        } if u64::from(req.batch) > *max_batch => out.push(format!(
            "batch {} does not fit in memory: it needs {} KV tokens ({} × {context}) and the \
             cache holds {kv_tokens} after weights and the runtime reserve (at most {max_batch} \
             requests of this length)",
            req.batch,
            u64::from(req.batch) * context,
            req.batch
        )),
        Capacity::DoesNotFit { reason } => out.push(format!(
            "the weights do not fit: {}",
            reason.lines().next().unwrap_or("")
        )),
        Capacity::Fits { .. } => {}
    }
    if let Some(max) = d.model().max_position_embeddings
        && context > max
    {
        out.push(format!(
            "prompt {} + output {} = {context} tokens exceeds max_position_embeddings = {max} of \
             {} (the model was not trained for positions that far)",
            req.prompt,
            req.output,
            d.model().name
        ));
    }
    out
}
