//! [`Deployment`] (model × GPU × tensor parallelism × dtypes × efficiency) and its step-time
//! model, [`Deployment::step_time`], which the simulated engine calls on every engine step.
//!
//! For one step, per GPU (tensor parallelism splits FLOPs and weights evenly over `tp` ranks),
//! with `T` tokens computed (prompt tokens plus one per decoding sequence):
//! ```text
//! matrix    = max(weights/tp · (1 + …experts) / (BW·η_mem),
//!                 (2·N_mm/tp · T + 2·V·h/tp · sequences) / (peak·η_mm(T)))
//! attention = max(kv/GPU · (tokens read + written) / (BW·η_mem), A/tp · Σ pairs / (peak·η_attn))
//! time      = matrix + attention + 2·L all-reduces
//!             + step overhead + L · per-layer overhead + sequences · per-sequence overhead
//! η_mm(T)   = matmul · T / (T + matmul_half_tokens)
//! ```
//! with `A = 2·L·H·(d_qk + d_v)` FLOPs per (query, key) pair, at the BF16 peak (attention
//! multiplies activations, not stored weights; `peak` is the weight format's). Matrix work and attention are
//! separate kernels that run one after the other, so their times add; each is bound by its own
//! roofline. Small decode batches read every weight for few tokens (memory-bound); long prompts
//! run the same GEMMs compute-bound at close to `matmul` of peak; the GEMM efficiency in
//! between depends on the step's token count. A prefill chunk of `n` new tokens after `p` cached
//! ones attends to `n·p + n(n+1)/2` pairs and reads `p` cached tokens; a decode at context `c`
//! attends to `c` pairs and reads `c` cached tokens; every new token writes one. MoE steps read
//! the expected number of distinct experts per MoE layer under uniform routing,
//! `E·(1 − (1 − k/E)^T)` for `T` tokens in the step (hardware.md §1.5). With
//! [`Efficiency::ideal`] every term is its roofline floor and the sum is a floor too, since a
//! layer's GEMMs and attention depend on each other's outputs.
//!
//! KV capacity is what vLLM leaves after the weights and a stated reservation for activations,
//! CUDA graphs and the CUDA context ([`Deployment::runtime_reserve_bytes`]).

use serde::{Deserialize, Serialize};

use super::dtype::Dtype;
use super::efficiency::Efficiency;
use super::error::HwError;
use super::gpu::Gpu;
use super::model::ModelConfig;

/// Bytes per activation element in all-reduces (BF16 activations).
const ACTIVATION_BYTES: f64 = 2.0;
/// Memory every GPU sets aside for the CUDA context, library workspaces and CUDA graphs,
/// bytes (1 GiB), before activations; see [`Deployment::runtime_reserve_bytes`].
pub const FIXED_RESERVE_BYTES: f64 = 1024.0 * 1024.0 * 1024.0;
/// vLLM's default token budget per step on large GPUs (`max_num_batched_tokens` = 8192), used
/// for the activation reserve when no engine settings are known.
pub const DEFAULT_BATCHED_TOKENS: u32 = 8192;
/// Minimum latency of one all-reduce, seconds (llm-analysis `intra_node_min_message_latency`).
pub(crate) const ALLREDUCE_FLOOR_S: f64 = 8e-6;

/// A prefill (or chunk of one) scheduled in a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefillWork {
    /// Prompt tokens computed in this step.
    pub new_tokens: u32,
    /// Tokens of this sequence already in the KV cache (earlier chunks or a prefix-cache hit).
    pub context_before: u32,
}

/// Which roofline term set a step's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bound {
    /// FLOPs / (peak · η) was the larger term.
    Compute,
    /// Bytes / (bandwidth · η) was the larger term.
    Memory,
    /// The step had no work (zero time).
    Idle,
}

/// The modelled cost of one engine step. FLOPs and bytes are per GPU.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StepTime {
    /// Modelled wall time of the step, seconds (roofline + communication + overheads).
    pub seconds: f64,
    /// FLOPs each GPU performs.
    pub flops: f64,
    /// Bytes each GPU moves to or from device memory.
    pub bytes: f64,
    /// Tensor-parallel all-reduce time included in `seconds`.
    pub comm_seconds: f64,
    /// The binding roofline term.
    pub bound: Bound,
}

/// The work of one step as running sums, for callers that keep totals incrementally instead
/// of passing slices (cost the same way with [`Deployment::step_time_of`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepWork {
    /// Prompt tokens computed (Σ `new_tokens`).
    pub prefill_tokens: f64,
    /// Attended (query, key) pairs of the prefill chunks (Σ `n·p + n(n+1)/2`).
    pub prefill_pairs: f64,
    /// Prefill chunks (each runs the LM head once).
    pub prefill_seqs: f64,
    /// Cached tokens the prefill chunks read (Σ `context_before`).
    pub prefill_cached: f64,
    /// Decoding sequences (one token each).
    pub decode_seqs: f64,
    /// Σ of the decoding sequences' contexts.
    pub decode_context: f64,
}

impl StepWork {
    /// Adds one prefill chunk.
    pub fn add_prefill(&mut self, p: PrefillWork) {
        let (n, c) = (f64::from(p.new_tokens), f64::from(p.context_before));
        self.prefill_tokens += n;
        self.prefill_pairs += n * c + n * (n + 1.0) / 2.0;
        self.prefill_seqs += 1.0;
        self.prefill_cached += c;
    }

    /// Adds one decoding sequence with `context` cached tokens.
    pub fn add_decode(&mut self, context: u32) {
        self.decode_seqs += 1.0;
        self.decode_context += f64::from(context);
    }
}

/// Per-deployment constants, whole-model (not per GPU) unless named `_per_gpu`.
#[derive(Debug, Clone)]
pub(crate) struct Constants {
    pub peak_flops: f64,
    pub attention_peak_flops: f64,
    pub bandwidth: f64,
    pub link: f64,
    pub linear_flops_per_token: f64,
    pub head_flops_per_seq: f64,
    pub attn_flops_per_pair: f64,
    pub resident_bytes: f64,
    pub expert_bytes: f64,
    pub moe_layers: f64,
    pub num_experts: f64,
    pub expert_miss: f64,
    pub kv_bytes_per_token_per_gpu: f64,
    pub allreduces_per_step: f64,
    pub allreduce_bytes_per_token: f64,
    pub overhead_s: f64,
    pub tp: f64,
}

/// A model served on `tp` identical GPUs with given dtypes and efficiencies.
#[derive(Debug, Clone)]
pub struct Deployment {
    model: ModelConfig,
    gpu: Gpu,
    tp: u32,
    weight_dtype: Dtype,
    kv_dtype: Dtype,
    efficiency: Efficiency,
    pub(crate) k: Constants,
}

impl Deployment {
    /// Builds a deployment and precomputes its constants. Fails when `tp` is 0 or does not
    /// divide the attention heads (vLLM's requirement), or when the efficiency or GPU figures
    /// are invalid. Whether the weights fit is checked by [`Deployment::kv_capacity_tokens`].
    pub fn new(
        model: ModelConfig,
        gpu: Gpu,
        tp: u32,
        weight_dtype: Dtype,
        kv_dtype: Dtype,
        efficiency: Efficiency,
    ) -> Result<Deployment, HwError> {
        if tp == 0 || !model.num_heads.is_multiple_of(u64::from(tp)) {
            return Err(HwError::InvalidDeployment(format!(
                "tp = {tp} must be ≥ 1 and divide num_attention_heads = {} of {}",
                model.num_heads, model.name
            )));
        }
        efficiency.validate()?;
        gpu.validate(&gpu.name)?;
        let k = constants(&model, &gpu, tp, weight_dtype, kv_dtype, &efficiency);
        Ok(Deployment {
            model,
            gpu,
            tp,
            weight_dtype,
            kv_dtype,
            efficiency,
            k,
        })
    }

    /// The same deployment with other efficiencies.
    pub fn with_efficiency(&self, efficiency: Efficiency) -> Result<Deployment, HwError> {
        let (m, g) = (self.model.clone(), self.gpu.clone());
        Deployment::new(m, g, self.tp, self.weight_dtype, self.kv_dtype, efficiency)
    }

    /// The model.
    pub fn model(&self) -> &ModelConfig {
        &self.model
    }
    /// The GPU (each of the `tp` ranks).
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }
    /// Tensor-parallel degree.
    pub fn tp(&self) -> u32 {
        self.tp
    }
    /// Weight storage format.
    pub fn weight_dtype(&self) -> Dtype {
        self.weight_dtype
    }
    /// KV-cache storage format.
    pub fn kv_dtype(&self) -> Dtype {
        self.kv_dtype
    }
    /// Efficiencies and overheads.
    pub fn efficiency(&self) -> &Efficiency {
        &self.efficiency
    }
    /// Peak dense FLOP/s of one GPU for this weight format.
    pub fn peak_flops_per_gpu(&self) -> f64 {
        self.k.peak_flops
    }

    /// Cost of one engine step: `prefill` chunks and one decode token per entry of
    /// `decode_contexts` (each the sequence's KV length before the step). O(len), no allocation.
    pub fn step_time(&self, prefill: &[PrefillWork], decode_contexts: &[u32]) -> StepTime {
        let mut w = StepWork::default();
        for p in prefill {
            w.add_prefill(*p);
        }
        for &c in decode_contexts {
            w.add_decode(c);
        }
        self.step_time_of(&w)
    }

    /// Cost of one engine step given as running sums (see the module docs for the formulas).
    pub fn step_time_of(&self, w: &StepWork) -> StepTime {
        let k = &self.k;
        let tokens = w.prefill_tokens + w.decode_seqs;
        if tokens <= 0.0 {
            return StepTime {
                seconds: 0.0,
                flops: 0.0,
                bytes: 0.0,
                comm_seconds: 0.0,
                bound: Bound::Idle,
            };
        }
        let eff = &self.efficiency;
        let sequences = w.prefill_seqs + w.decode_seqs;
        let matrix_flops =
            (k.linear_flops_per_token * tokens + k.head_flops_per_seq * sequences) / k.tp;
        let weight_bytes = (k.resident_bytes + self.expert_bytes_touched(tokens)) / k.tp;
        let attn_flops = k.attn_flops_per_pair * (w.prefill_pairs + w.decode_context) / k.tp;
        let kv_bytes =
            k.kv_bytes_per_token_per_gpu * (w.prefill_cached + w.decode_context + tokens);
        let bandwidth = k.bandwidth * eff.memory;
        let matrix_compute = matrix_flops / (k.peak_flops * eff.matmul_at(tokens));
        let matrix_memory = weight_bytes / bandwidth;
        let attn_compute = attn_flops / (k.attention_peak_flops * eff.attention);
        let attn_memory = kv_bytes / bandwidth;
        let comm_seconds = self.allreduce_seconds(tokens);
        let bound = if matrix_compute + attn_compute >= matrix_memory + attn_memory {
            Bound::Compute
        } else {
            Bound::Memory
        };
        StepTime {
            seconds: matrix_compute.max(matrix_memory)
                + attn_compute.max(attn_memory)
                + comm_seconds
                + k.overhead_s
                + eff.per_sequence_overhead_s * sequences,
            flops: matrix_flops + attn_flops,
            bytes: weight_bytes + kv_bytes,
            comm_seconds,
            bound,
        }
    }

    /// Routed-expert bytes (whole model) a step of `tokens` tokens reads.
    pub(crate) fn expert_bytes_touched(&self, tokens: f64) -> f64 {
        let k = &self.k;
        if k.moe_layers == 0.0 {
            return 0.0;
        }
        let distinct = k.num_experts * (1.0 - k.expert_miss.powf(tokens));
        k.moe_layers * distinct * k.expert_bytes
    }

    /// Bytes each GPU sends in one step's all-reduces (ring: `2(tp−1)/tp` of the message).
    pub(crate) fn allreduce_bytes(&self, tokens: f64) -> f64 {
        self.k.allreduces_per_step * self.k.allreduce_bytes_per_token * tokens
    }

    /// All-reduce time of one step: `2·L · max(8 µs, message share / (link · η_comm))`.
    pub(crate) fn allreduce_seconds(&self, tokens: f64) -> f64 {
        let k = &self.k;
        if k.allreduces_per_step == 0.0 {
            return 0.0;
        }
        let one = k.allreduce_bytes_per_token * tokens / (k.link * self.efficiency.comm);
        k.allreduces_per_step * one.max(ALLREDUCE_FLOOR_S)
    }

    /// Weight bytes held by each GPU: `N · bytes(weight_dtype) / tp`.
    pub fn weights_bytes_per_gpu(&self) -> f64 {
        self.model.total_params() as f64 * self.weight_dtype.bytes() / self.k.tp
    }

    /// KV-cache bytes per token on each GPU (GQA heads sharded as `ceil(Hkv/tp)`; the MLA latent
    /// replicated).
    pub fn kv_bytes_per_token_per_gpu(&self) -> f64 {
        self.k.kv_bytes_per_token_per_gpu
    }

    /// KV-cache capacity in tokens: `(memory · utilization − weights/tp − reserve) / kv bytes
    /// per token`, with the reserve of [`Deployment::runtime_reserve_bytes`] at vLLM's
    /// default token budget ([`DEFAULT_BATCHED_TOKENS`]).
    pub fn kv_capacity_tokens(&self, gpu_memory_utilization: f64) -> Result<u64, HwError> {
        let reserve = self.runtime_reserve_bytes(DEFAULT_BATCHED_TOKENS);
        self.kv_capacity_tokens_with_reserve(gpu_memory_utilization, reserve)
    }

    /// Memory each GPU sets aside besides weights and KV cache, bytes: a fixed
    /// [`FIXED_RESERVE_BYTES`] (CUDA context, cuBLAS and NCCL workspaces, CUDA graphs) plus the
    /// peak activations of a step of `max_num_batched_tokens` tokens, counted as BF16 values of
    /// the widest tensors alive at once: `tokens · (4·h + 2·I/tp) · 2` (residual stream and
    /// its normed copy, attention output, and the gate and up projections of the MLP). vLLM
    /// measures this by profiling a step of that size; this is the stated estimate of it.
    pub fn runtime_reserve_bytes(&self, max_num_batched_tokens: u32) -> f64 {
        let m = &self.model;
        let width = 4.0 * m.hidden_size as f64 + 2.0 * m.intermediate_size as f64 / self.k.tp;
        FIXED_RESERVE_BYTES + f64::from(max_num_batched_tokens) * width * ACTIVATION_BYTES
    }

    /// KV-cache capacity in tokens after also setting aside `reserve_bytes` per GPU for
    /// activations and graphs. Errors when the weights (plus reserve) leave no room.
    pub fn kv_capacity_tokens_with_reserve(
        &self,
        gpu_memory_utilization: f64,
        reserve_bytes: f64,
    ) -> Result<u64, HwError> {
        let util = gpu_memory_utilization;
        let util_ok = util > 0.0 && util <= 1.0;
        if !util_ok || reserve_bytes.is_nan() || reserve_bytes < 0.0 {
            return Err(HwError::InvalidDeployment(format!(
                "gpu_memory_utilization = {util} must be in (0, 1] and the reserve ({reserve_bytes} B) ≥ 0"
            )));
        }
        let memory = self.gpu.memory_bytes as f64;
        let budget = memory * util - reserve_bytes;
        let weights = self.weights_bytes_per_gpu();
        if weights >= budget {
            return Err(HwError::WeightsDoNotFit {
                model: self.model.name.clone(),
                gpu: self.gpu.name.clone(),
                tp: self.tp,
                weights_gb: weights / 1e9,
                budget_gb: budget / 1e9,
                memory_gb: memory / 1e9,
                utilization: util,
            });
        }
        Ok(((budget - weights) / self.k.kv_bytes_per_token_per_gpu).floor() as u64)
    }
}

impl ModelConfig {
    /// vLLM's `kv_cache_dtype = auto`: the activation dtype, i.e. the checkpoint's 16-bit
    /// format, or BF16 for FP8/INT4/FP32 checkpoints.
    pub fn default_kv_dtype(&self) -> Dtype {
        match self.dtype {
            Dtype::Fp16 => Dtype::Fp16,
            _ => Dtype::Bf16,
        }
    }
}

fn constants(
    model: &ModelConfig,
    gpu: &Gpu,
    tp: u32,
    weight_dtype: Dtype,
    kv_dtype: Dtype,
    eff: &Efficiency,
) -> Constants {
    let wb = weight_dtype.bytes();
    let tp_f = f64::from(tp);
    let (moe_layers, num_experts, expert_miss) = match &model.moe {
        Some(m) => {
            let e = m.num_experts as f64;
            (m.moe_layers as f64, e, 1.0 - m.experts_per_token as f64 / e)
        }
        None => (0.0, 0.0, 1.0),
    };
    let allreduces = if tp > 1 {
        2.0 * model.num_layers as f64
    } else {
        0.0
    };
    Constants {
        peak_flops: gpu.peak_flops(weight_dtype),
        // Attention multiplies activations (BF16/FP16 in every engine measured), whatever
        // format the weights are stored in.
        attention_peak_flops: gpu.peak_flops(Dtype::Bf16),
        bandwidth: gpu.bandwidth_bytes_per_s,
        link: gpu.interconnect_bytes_per_s,
        linear_flops_per_token: 2.0 * model.active_matmul_params() as f64,
        head_flops_per_seq: 2.0 * model.embedding_params() as f64,
        attn_flops_per_pair: model.attention_flops_per_pair(),
        resident_bytes: model.resident_read_params() as f64 * wb,
        expert_bytes: model.expert_params() as f64 * wb,
        moe_layers,
        num_experts,
        expert_miss,
        kv_bytes_per_token_per_gpu: model.kv_elements_per_token_per_gpu(tp) as f64
            * kv_dtype.bytes(),
        allreduces_per_step: allreduces,
        allreduce_bytes_per_token: 2.0 * (tp_f - 1.0) / tp_f
            * model.hidden_size as f64
            * ACTIVATION_BYTES,
        overhead_s: eff.step_overhead_s + model.num_layers as f64 * eff.per_layer_overhead_s,
        tp: tp_f,
    }
}
