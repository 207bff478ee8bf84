//! The seed documents' simplified method (metrics.md "Theory"), reproduced without rounding.
//!
//! With h = hidden, I = intermediate, L = layers, kv = Hkv·d, V = vocab, s = prompt, B = batch:
//! ```text
//! params        = L·(2·h·h + 2·h·kv + 3·h·I) + V·h      (embedding once; no norms, biases, head)
//! prefill FLOPs = B·(2·s·L·(2·h·h + 2·h·kv + 3·h·I) + 4·L·s²·h)   (non-causal attention)
//! TTFT          = prefill FLOPs / peak                  (compute only)
//! decode FLOPs  = 2·L·(2·h·h + 2·h·kv + 3·h·I) + 4·L·h·c   per token at context c
//! tokens/s      = peak / decode FLOPs at the average context c̄ = s + output/2
//! quick rule    = 2·B·s·params, params rounded to whole billions
//! ```
//! For Qwen2.5-32B on an H20 (148 TFLOP/s), 1024 + 1024: 31.98 B, 65.28 TFLOP, 441 ms,
//! 0.0637 TFLOP at c = 1024 (printed ≈ 0.064), 0.0644 at c̄ = 1536, 2297 tokens/s. The seed
//! rounds 0.0644 to 0.06 (→ 2466.7 tokens/s) and prints the quick rule's 65,536 GFLOP as "64 T"
//! (divided by 1024) → 432 ms; both slips are shown beside the unrounded values.

use serde::Serialize;

use super::EstimateRequest;
use crate::hw::deployment::Deployment;
use crate::hw::error::HwError;

/// Results of [`Method::Seed`](super::Method::Seed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeedEstimate {
    /// Parameters by the seed's count (embedding once, no norms, biases or head).
    pub params: u64,
    /// Prefill FLOPs of the batch (non-causal attention).
    pub prefill_flops: f64,
    /// Peak FLOP/s of all `tp` GPUs.
    pub peak_flops: f64,
    /// `prefill_flops / peak_flops`, seconds.
    pub ttft_s: f64,
    /// Decode FLOPs per token at context = prompt.
    pub decode_flops_per_token_at_prompt: f64,
    /// The average context `prompt + output/2`.
    pub mean_context: f64,
    /// Decode FLOPs per token at the average context.
    pub decode_flops_per_token: f64,
    /// `peak_flops / decode_flops_per_token`: the compute-only decode bound.
    pub tokens_per_s: f64,
    /// The seed's printed decode figure: TFLOPs rounded to two decimals (0.06).
    pub seed_rounded_decode_tflops: f64,
    /// `peak / seed_rounded_decode_tflops` (≈ 2466.7 tokens/s); `None` when the rounding
    /// gives 0 (models under ~0.005 TFLOP per token).
    pub seed_rounded_tokens_per_s: Option<f64>,
    /// The quick rule `2·B·prompt·params` with params rounded to whole billions.
    pub quick_rule_flops: f64,
    /// `quick_rule_flops / peak_flops`, seconds.
    pub quick_rule_ttft_s: f64,
    /// The seed's printed quick-rule figure in "TFLOPs" (GFLOPs / 1024: 64 for 65,536).
    pub seed_printed_quick_rule_tflops: f64,
    /// `seed_printed_quick_rule_tflops · 1e12 / peak`, seconds (432 ms).
    pub seed_printed_quick_rule_ttft_s: f64,
}

pub(super) fn compute(d: &Deployment, req: &EstimateRequest) -> Result<SeedEstimate, HwError> {
    let m = d.model();
    if !m.is_dense() {
        return Err(HwError::InvalidDeployment(format!(
            "the seed method covers dense models only and {} is MoE or MLA; use the full method",
            m.name
        )));
    }
    let (h, l) = (m.hidden_size as f64, m.num_layers as f64);
    let kv = (m.num_kv_heads * m.head_dim) as f64;
    let layer = 2.0 * h * h + 2.0 * h * kv + 3.0 * h * m.intermediate_size as f64;
    let params = l * layer + (m.vocab_size * m.hidden_size) as f64;
    let (s, b) = (f64::from(req.prompt), f64::from(req.batch));
    let prefill_flops = b * (2.0 * s * l * layer + 4.0 * l * s * s * h);
    let peak = d.peak_flops_per_gpu() * f64::from(req.tp);
    let decode_at = |c: f64| 2.0 * l * layer + 4.0 * l * h * c;
    let mean_context = s + f64::from(req.output) / 2.0;
    let decode = decode_at(mean_context);
    let rounded_tflops = (decode / 1e12 * 100.0).round() / 100.0;
    let quick_params = (params / 1e9).round() * 1e9;
    let quick = 2.0 * b * s * quick_params;
    let printed_quick_tflops = quick / 1e9 / 1024.0;
    Ok(SeedEstimate {
        params: params as u64,
        prefill_flops,
        peak_flops: peak,
        ttft_s: prefill_flops / peak,
        decode_flops_per_token_at_prompt: decode_at(s),
        mean_context,
        decode_flops_per_token: decode,
        tokens_per_s: peak / decode,
        seed_rounded_decode_tflops: rounded_tflops,
        seed_rounded_tokens_per_s: (rounded_tflops > 0.0).then(|| peak / (rounded_tflops * 1e12)),
        quick_rule_flops: quick,
        quick_rule_ttft_s: quick / peak,
        seed_printed_quick_rule_tflops: printed_quick_tflops,
        seed_printed_quick_rule_ttft_s: printed_quick_tflops * 1e12 / peak,
    })
}
