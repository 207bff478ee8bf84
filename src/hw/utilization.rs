//! MFU and MBU of a measured run (hardware.md §1.7), from the requests' token counts and the
//! window's duration. Our own arithmetic: `nvidia-smi`'s `utilization.gpu` is not MFU.
//!
//! ```text
//! FLOPs  = Σ_requests prefill_flops(prompt) + Σ_{i=1}^{output−1} decode_flops(prompt + i − 1)
//! MFU    = FLOPs / (window · peak dense FLOP/s · tp)
//! bytes  = decode_steps · weights read per step + KV bytes read and written by decode tokens,
//!          decode_steps = Σ (output − 1) / mean decode batch
//! MBU    = bytes / (window · peak bandwidth · tp)
//! ```
//! The first output token comes from the prefill; each later one is a decode step whose
//! context is the tokens cached before it. MBU follows Databricks' definition (decode traffic
//! over time), so prefill weight reads are not counted; the peak is the dense rate of the
//! weight format (FP8 rate for FP8 weights), never a sparsity figure.

use std::time::Duration;

use serde::Serialize;

use super::deployment::Deployment;
use super::error::HwError;

/// Achieved model FLOPs and bytes in a window, as fractions of the deployment's peaks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Utilization {
    /// Whole-model FLOPs performed in the window.
    pub flops: f64,
    /// Whole-model bytes moved by decode in the window.
    pub bytes: f64,
    /// Model FLOPs utilisation, 0–1 (`flops / (window · peak · tp)`).
    pub mfu: f64,
    /// Model bandwidth utilisation, 0–1 (`bytes / (window · bandwidth · tp)`).
    pub mbu: f64,
}

/// Sums over requests that [`Deployment::utilization_of`] turns into MFU and MBU, so a
/// repetition's requests need not be held.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WorkTotals {
    flops: f64,
    decode_tokens: f64,
    kv_tokens: f64,
}

impl Deployment {
    /// Whole-model FLOPs of one request with `prompt` input and `output` generated tokens.
    pub fn request_flops(&self, prompt: u32, output: u32) -> f64 {
        let decodes = f64::from(output.saturating_sub(1));
        let context_sum = decodes * f64::from(prompt) + decodes * (decodes - 1.0).max(0.0) / 2.0;
        let k = &self.k;
        self.prefill_flops(prompt)
            + decodes * (k.linear_flops_per_token + k.head_flops_per_seq)
            + k.attn_flops_per_pair * context_sum
    }

    /// MFU and MBU of `requests` (`(prompt, output)` token counts) completed in `window`.
    /// `mean_decode_batch` (≥ 1) is the average number of sequences per decode step, e.g. the
    /// mean of `vllm:num_requests_running` samples.
    pub fn utilization(
        &self,
        requests: &[(u32, u32)],
        window: Duration,
        mean_decode_batch: f64,
    ) -> Result<Utilization, HwError> {
        let mut totals = WorkTotals::default();
        for &(prompt, output) in requests {
            self.add_work(&mut totals, prompt, output);
        }
        self.utilization_of(totals, window, mean_decode_batch)
    }

    /// Adds one request's work to `totals` (requests one at a time, in any number).
    pub fn add_work(&self, totals: &mut WorkTotals, prompt: u32, output: u32) {
        totals.flops += self.request_flops(prompt, output);
        let d = f64::from(output.saturating_sub(1));
        totals.decode_tokens += d;
        // Reads of the cached context plus the one write of each decoded token.
        totals.kv_tokens += d * f64::from(prompt) + d * (d - 1.0).max(0.0) / 2.0 + d;
    }

    /// [`Deployment::utilization`] of the requests added to `totals`.
    pub fn utilization_of(
        &self,
        totals: WorkTotals,
        window: Duration,
        mean_decode_batch: f64,
    ) -> Result<Utilization, HwError> {
        let secs = window.as_secs_f64();
        if secs <= 0.0 || !(mean_decode_batch >= 1.0 && mean_decode_batch.is_finite()) {
            return Err(HwError::InvalidDeployment(format!(
                "utilization needs a window > 0 (got {secs} s) and a mean decode batch ≥ 1 (got {mean_decode_batch})"
            )));
        }
        let k = &self.k;
        let WorkTotals {
            flops,
            decode_tokens,
            kv_tokens,
        } = totals;
        let steps = decode_tokens / mean_decode_batch;
        let weights_per_step = k.resident_bytes + self.expert_bytes_touched(mean_decode_batch);
        let bytes = steps * weights_per_step + kv_tokens * k.kv_bytes_per_token_per_gpu * k.tp;
        Ok(Utilization {
            flops,
            bytes,
            mfu: flops / (secs * k.peak_flops * k.tp),
            mbu: bytes / (secs * k.bandwidth * k.tp),
        })
    }
}
