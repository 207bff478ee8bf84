//! Roofline summaries of a [`Deployment`]: TTFT and TPOT floors, throughput ceilings versus
//! batch, the compute/memory crossover batch, and TP communication per step (hardware.md §1.5,
//! §1.6). All use the deployment's efficiencies; with [`Efficiency::ideal`] they are floors.
//!
//! [`Efficiency::ideal`]: super::Efficiency::ideal

use serde::Serialize;

use super::deployment::{Deployment, StepTime, StepWork};
use super::error::HwError;

/// Tensor-parallel all-reduce traffic of one step (2 all-reduces per layer, ring algorithm).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AllReduce {
    /// Number of all-reduces in the step (`2·L`, or 0 at tp = 1).
    pub count: u32,
    /// Bytes each GPU sends over the step: `2·L · 2(tp−1)/tp · tokens · h · 2`.
    pub bytes_per_gpu: f64,
    /// Time over the step: `2·L · max(8 µs, share / (link · η_comm))`.
    pub seconds: f64,
}

impl Deployment {
    /// One step that prefills `batch` prompts of `prompt` tokens from scratch (the TTFT floor
    /// for `batch` = 1).
    pub fn prefill_time(&self, prompt: u32, batch: u32) -> StepTime {
        let (n, b) = (f64::from(prompt), f64::from(batch));
        self.step_time_of(&StepWork {
            prefill_tokens: n * b,
            prefill_pairs: b * n * (n + 1.0) / 2.0,
            prefill_seqs: b,
            ..StepWork::default()
        })
    }

    /// One decode step of `batch` sequences, each with `context` cached tokens (the TPOT floor
    /// for `batch` = 1).
    pub fn decode_time(&self, batch: u32, context: u32) -> StepTime {
        self.decode_time_f(f64::from(batch), f64::from(context))
    }

    pub(crate) fn decode_time_f(&self, batch: f64, context: f64) -> StepTime {
        self.step_time_of(&StepWork {
            decode_seqs: batch,
            decode_context: batch * context,
            ..StepWork::default()
        })
    }

    /// Decode throughput ceiling, tokens/s: `batch / decode_time(batch, context)`.
    pub fn decode_throughput(&self, batch: u32, context: u32) -> f64 {
        let t = self.decode_time(batch, context).seconds;
        if t > 0.0 { f64::from(batch) / t } else { 0.0 }
    }

    /// Batch at which decode turns compute-bound, counting the KV reads at `context`; `None`
    /// when each sequence's KV traffic alone keeps decode memory-bound at any batch (typical
    /// for GQA, whose attention does only ~2·H/Hkv FLOPs per KV byte).
    pub fn crossover_batch(&self, context: u32) -> Option<f64> {
        self.crossover(f64::from(context), true)
    }

    /// [`Deployment::crossover_batch`] at a fractional (mean) context.
    pub(crate) fn crossover_batch_f(&self, context: f64) -> Option<f64> {
        self.crossover(context, true)
    }

    /// Batch at which decode turns compute-bound counting weight reads only (no attention, no
    /// KV): `≈ peak/BW · (bytes per weight)/2` for dense models, 295 for BF16 on an H100 SXM.
    pub fn crossover_batch_weights_only(&self) -> Option<f64> {
        self.crossover(0.0, false)
    }

    /// Solves `compute(B) = memory(B)` for a decode step of `B` sequences by bisection, each
    /// side summed over matrix work and attention as in the step-time model. Compute grows
    /// linearly in B (the GEMM efficiency `η_mm(B)` turns `F·B/η_mm(B)` into `F·(B + half)`),
    /// memory is affine plus the concave expert term, so the difference has at most one root.
    fn crossover(&self, context: f64, with_kv: bool) -> Option<f64> {
        let k = &self.k;
        let eff = self.efficiency();
        let peak = k.peak_flops;
        let matrix_per_seq = (k.linear_flops_per_token + k.head_flops_per_seq) / k.tp;
        let attn_per_seq = if with_kv {
            k.attn_flops_per_pair * context / k.tp
        } else {
            0.0
        };
        let kv_per_seq = if with_kv {
            k.kv_bytes_per_token_per_gpu * (context + 1.0)
        } else {
            0.0
        };
        let memory_bw = k.bandwidth * eff.memory;
        let compute = |b: f64| {
            matrix_per_seq * b / (peak * eff.matmul_at(b))
                + attn_per_seq * b / (k.attention_peak_flops * eff.attention)
        };
        let memory = |b: f64| {
            (k.resident_bytes + self.expert_bytes_touched(b)) / k.tp / memory_bw
                + kv_per_seq * b / memory_bw
        };
        let gap = |b: f64| compute(b) - memory(b);
        let compute_slope = matrix_per_seq / (peak * eff.matmul)
            + attn_per_seq / (k.attention_peak_flops * eff.attention);
        if compute_slope <= kv_per_seq / memory_bw {
            return None;
        }
        let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
        while gap(hi) < 0.0 {
            hi *= 2.0;
            if hi > 1e12 {
                return None;
            }
        }
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if gap(mid) < 0.0 { lo = mid } else { hi = mid }
        }
        Some(0.5 * (lo + hi))
    }

    /// Largest number of sequences of `context` tokens whose KV cache fits (token granularity).
    pub fn max_batch(&self, context: u32, gpu_memory_utilization: f64) -> Result<u64, HwError> {
        let tokens = self.kv_capacity_tokens(gpu_memory_utilization)?;
        Ok(tokens / u64::from(context.max(1)))
    }

    /// TP all-reduce traffic and time of a step processing `tokens` tokens.
    pub fn allreduce(&self, tokens: u32) -> AllReduce {
        let t = f64::from(tokens);
        AllReduce {
            count: self.k.allreduces_per_step as u32,
            bytes_per_gpu: self.allreduce_bytes(t),
            seconds: self.allreduce_seconds(t),
        }
    }

    /// Whole-model FLOPs to prefill one prompt of `prompt` tokens: linear layers, causal
    /// attention, and the LM head once.
    pub fn prefill_flops(&self, prompt: u32) -> f64 {
        self.prefill_time(prompt, 1).flops * self.k.tp
    }

    /// Whole-model FLOPs to decode one token at `context` cached tokens:
    /// `2·(N_mm + V·h) + A·context`.
    pub fn decode_flops_per_token(&self, context: u32) -> f64 {
        let k = &self.k;
        k.linear_flops_per_token + k.head_flops_per_seq + k.attn_flops_per_pair * f64::from(context)
    }
}
