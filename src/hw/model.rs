//! [`ModelConfig`]: the shape of a decoder-only transformer, and everything that follows from it
//! alone (parameter counts, FLOPs per token, KV-cache elements per token).
//!
//! Parameter counts follow hardware.md §1.2:
//! ```text
//! attn_l = h·H·d (q) + 2·h·Hkv·d (k,v) + H·d·h (o)   [+ H·d + 2·Hkv·d QKV bias] [+ h o bias]
//! mlp_l  = 3·h·I (gated) or 2·h·I                      [+ 2·I + h with mlp_bias]
//! moe_l  = E·3·h·I_e + 3·h·I_s (shared) + h·E (router) [+ E router bias] [+ h shared gate]
//! norm_l = 2·h                                         [+ 2·d q/k norms (Qwen3)]
//! N      = Σ_l (attn_l + mlp_l|moe_l + norm_l) + h (final norm) + V·h·(tied ? 1 : 2)
//! ```
//! MLA attention (DeepSeek) replaces `attn_l` by
//! `h·q_lora + q_lora + q_lora·H·(nope+rope) + h·(kv_lora+rope) + kv_lora + kv_lora·H·(nope+v) + H·v·h`
//! (the lone `q_lora` and `kv_lora` terms are the latent norms). Active parameters replace `E`
//! by `k` and include the input embedding and the head.

use serde::Serialize;

use super::dtype::Dtype;

/// A decoder-only transformer as described by a Hugging Face `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelConfig {
    /// Display name (catalog name, or taken from the file's directory).
    pub name: String,
    /// `model_type` (`llama`, `qwen2`, `mixtral`, `deepseek_v3`, …).
    pub model_type: String,
    /// `hidden_size` (h).
    pub hidden_size: u64,
    /// `intermediate_size` (I): width of the dense MLP layers.
    pub intermediate_size: u64,
    /// `num_hidden_layers` (L), not counting multi-token-prediction layers.
    pub num_layers: u64,
    /// `num_attention_heads` (H).
    pub num_heads: u64,
    /// `num_key_value_heads` (Hkv); equal to H for MHA. Irrelevant to the KV cache under MLA.
    pub num_kv_heads: u64,
    /// `head_dim` (d), or h/H when absent.
    pub head_dim: u64,
    /// `vocab_size` (V).
    pub vocab_size: u64,
    /// `tie_word_embeddings`: the LM head reuses the input embedding.
    pub tie_word_embeddings: bool,
    /// Biases on q, k and v (implicit for `qwen2` and `qwen2_moe`, or `attention_bias`).
    pub qkv_bias: bool,
    /// Bias on the attention output projection (`attention_bias` on Llama-style models).
    pub o_bias: bool,
    /// Per-head RMSNorm on q and k (Qwen3).
    pub qk_norm: bool,
    /// Gated MLP (SwiGLU/GeGLU: gate, up, down) rather than two matrices.
    pub gated_mlp: bool,
    /// Biases in the dense MLP (`mlp_bias`).
    pub mlp_bias: bool,
    /// Mixture-of-experts layout, when the model has one.
    pub moe: Option<Moe>,
    /// Multi-head latent attention (DeepSeek), when the model uses it.
    pub mla: Option<Mla>,
    /// The checkpoint's weight format (`torch_dtype`, or the quantisation method).
    pub dtype: Dtype,
    /// `max_position_embeddings`, when present.
    pub max_position_embeddings: Option<u64>,
}

/// Mixture-of-experts layout.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Moe {
    /// Routed experts per MoE layer (E).
    pub num_experts: u64,
    /// Experts each token is routed to (k).
    pub experts_per_token: u64,
    /// Width of one routed expert's MLP (I_e).
    pub expert_intermediate_size: u64,
    /// Total width of the always-active shared experts (0 if none).
    pub shared_intermediate_size: u64,
    /// A sigmoid gate `h×1` on the shared expert (Qwen2-MoE).
    pub shared_expert_gate: bool,
    /// A per-expert routing bias of E values (DeepSeek-V3 `noaux_tc`).
    pub router_bias: bool,
    /// How many of the L layers are MoE layers (the rest are dense MLPs of width I).
    pub moe_layers: u64,
}

/// Multi-head latent attention dimensions (DeepSeek-V2/V3).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mla {
    /// `q_lora_rank`; `None` means q is projected directly from h.
    pub q_lora_rank: Option<u64>,
    /// `kv_lora_rank`: the cached latent width.
    pub kv_lora_rank: u64,
    /// `qk_nope_head_dim`.
    pub qk_nope_head_dim: u64,
    /// `qk_rope_head_dim`: the decoupled RoPE key, also cached.
    pub qk_rope_head_dim: u64,
    /// `v_head_dim`.
    pub v_head_dim: u64,
}

impl ModelConfig {
    /// Layers with a dense MLP (all of them for dense models).
    pub fn dense_layers(&self) -> u64 {
        self.num_layers - self.moe.as_ref().map_or(0, |m| m.moe_layers)
    }

    /// Query/key head width used by attention scores (d, or nope+rope under MLA).
    pub fn qk_head_dim(&self) -> u64 {
        self.mla
            .as_ref()
            .map_or(self.head_dim, |m| m.qk_nope_head_dim + m.qk_rope_head_dim)
    }

    /// Value head width (d, or `v_head_dim` under MLA).
    pub fn v_head_dim(&self) -> u64 {
        self.mla.as_ref().map_or(self.head_dim, |m| m.v_head_dim)
    }

    /// Matmul weights of one attention block (no biases or norms).
    pub fn attention_matmul_params(&self) -> u64 {
        let (h, nh) = (self.hidden_size, self.num_heads);
        match &self.mla {
            None => {
                let d = self.head_dim;
                h * nh * d + 2 * h * self.num_kv_heads * d + nh * d * h
            }
            Some(m) => {
                let qk = m.qk_nope_head_dim + m.qk_rope_head_dim;
                let q = match m.q_lora_rank {
                    Some(r) => h * r + r * nh * qk,
                    None => h * nh * qk,
                };
                let kv_down = h * (m.kv_lora_rank + m.qk_rope_head_dim);
                let kv_up = m.kv_lora_rank * nh * (m.qk_nope_head_dim + m.v_head_dim);
                q + kv_down + kv_up + nh * m.v_head_dim * h
            }
        }
    }

    /// All weights of one attention block: matmuls, biases and MLA latent norms.
    pub fn attention_params(&self) -> u64 {
        let d = self.head_dim;
        let mut n = self.attention_matmul_params();
        if self.qkv_bias {
            n += self.num_heads * d + 2 * self.num_kv_heads * d;
        }
        if self.o_bias {
            n += self.hidden_size;
        }
        if let Some(m) = &self.mla {
            n += m.q_lora_rank.unwrap_or(0) + m.kv_lora_rank;
        }
        n
    }

    /// Matmul weights of an MLP of the given width.
    fn mlp_matmul_params(&self, width: u64) -> u64 {
        let matrices = if self.gated_mlp { 3 } else { 2 };
        matrices * self.hidden_size * width
    }

    /// All weights of one dense MLP layer.
    pub fn dense_mlp_params(&self) -> u64 {
        let bias = if self.mlp_bias {
            let up = if self.gated_mlp { 2 } else { 1 };
            up * self.intermediate_size + self.hidden_size
        } else {
            0
        };
        self.mlp_matmul_params(self.intermediate_size) + bias
    }

    /// Weights of one routed expert (0 for dense models).
    pub fn expert_params(&self) -> u64 {
        self.moe
            .as_ref()
            .map_or(0, |m| self.mlp_matmul_params(m.expert_intermediate_size))
    }

    /// Weights of an MoE layer that every token uses: shared experts, their gate, the router.
    pub fn moe_always_active_params(&self) -> u64 {
        let Some(m) = &self.moe else { return 0 };
        let h = self.hidden_size;
        let mut n = self.mlp_matmul_params(m.shared_intermediate_size) + h * m.num_experts;
        if m.shared_expert_gate {
            n += h;
        }
        if m.router_bias {
            n += m.num_experts;
        }
        n
    }

    /// Norm weights inside one layer (two RMSNorms, plus q/k norms for Qwen3).
    pub fn norm_params_per_layer(&self) -> u64 {
        2 * self.hidden_size + if self.qk_norm { 2 * self.head_dim } else { 0 }
    }

    /// Input-embedding weights (V·h).
    pub fn embedding_params(&self) -> u64 {
        self.vocab_size * self.hidden_size
    }

    /// LM-head weights that are not shared with the embedding (0 when tied).
    pub fn untied_head_params(&self) -> u64 {
        if self.tie_word_embeddings {
            0
        } else {
            self.embedding_params()
        }
    }

    /// Total parameters N (hardware.md §1.2): every weight, all experts.
    pub fn total_params(&self) -> u64 {
        self.params_with_experts(self.moe.as_ref().map_or(0, |m| m.num_experts))
    }

    /// Parameters one token uses: routed experts counted k times instead of E times; the
    /// input embedding and the head are included (hence DeepSeek-V3 37.55 B, Mixtral 12.88 B).
    pub fn active_params(&self) -> u64 {
        self.params_with_experts(self.moe.as_ref().map_or(0, |m| m.experts_per_token))
    }

    fn params_with_experts(&self, experts: u64) -> u64 {
        let per_layer = self.attention_params() + self.norm_params_per_layer();
        let moe_layers = self.num_layers - self.dense_layers();
        let moe = self.moe_always_active_params() + experts * self.expert_params();
        self.num_layers * per_layer
            + self.dense_layers() * self.dense_mlp_params()
            + moe_layers * moe
            + self.hidden_size
            + self.embedding_params()
            + self.untied_head_params()
    }

    /// Matmul weights a token multiplies through in the transformer blocks (N_mm of §1.3):
    /// attention, active experts, shared experts and router; no embedding, head, norms or biases.
    pub fn active_matmul_params(&self) -> u64 {
        let h = self.hidden_size;
        let moe_layers = self.num_layers - self.dense_layers();
        let moe = self.moe.as_ref().map_or(0, |m| {
            let gate = if m.shared_expert_gate { h } else { 0 };
            m.experts_per_token * self.expert_params()
                + self.mlp_matmul_params(m.shared_intermediate_size)
                + h * m.num_experts
                + gate
        });
        self.num_layers * self.attention_matmul_params()
            + self.dense_layers() * self.mlp_matmul_params(self.intermediate_size)
            + moe_layers * moe
    }

    /// Parameters every step reads regardless of routing: all weights except the routed
    /// experts and the input embedding (of which a step reads only a few rows). When the
    /// embeddings are tied, the shared matrix is read once as the head.
    pub fn resident_read_params(&self) -> u64 {
        let moe_layers = self.num_layers - self.dense_layers();
        let routed =
            moe_layers * self.moe.as_ref().map_or(0, |m| m.num_experts) * self.expert_params();
        self.total_params() - routed - self.untied_head_params()
    }

    /// FLOPs per (query token, cached token) pair over all layers: QKᵀ and PV, 2 FLOPs per MAC,
    /// `2·L·H·(d_qk + d_v)` (= `4·L·H·d` for standard attention).
    pub fn attention_flops_per_pair(&self) -> f64 {
        (2 * self.num_layers * self.num_heads * (self.qk_head_dim() + self.v_head_dim())) as f64
    }

    /// KV-cache elements per token for the whole model on one device: `2·L·Hkv·d` (GQA/MHA) or
    /// `L·(kv_lora_rank + qk_rope_head_dim)` (MLA latent).
    pub fn kv_elements_per_token(&self) -> u64 {
        self.kv_elements_per_token_per_gpu(1)
    }

    /// KV-cache elements per token held by each of `tp` GPUs: GQA shards heads as
    /// `ceil(Hkv/tp)` (replicating once tp > Hkv); the MLA latent is replicated on every rank.
    pub fn kv_elements_per_token_per_gpu(&self, tp: u32) -> u64 {
        match &self.mla {
            Some(m) => self.num_layers * (m.kv_lora_rank + m.qk_rope_head_dim),
            None => {
                let heads = self.num_kv_heads.div_ceil(u64::from(tp.max(1)));
                2 * self.num_layers * heads * self.head_dim
            }
        }
    }

    /// True for models the seed method covers (dense, standard attention).
    pub fn is_dense(&self) -> bool {
        self.moe.is_none() && self.mla.is_none()
    }
}
