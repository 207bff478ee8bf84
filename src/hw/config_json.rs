//! Reading a Hugging Face `config.json` into a [`ModelConfig`], and `ModelConfig::load`.
//!
//! The raw mirror accepts unknown keys (real configs carry dozens we do not need) and `null`
//! for optional ones. Keys by family (hardware.md §1.1):
//! - Mixtral: `num_local_experts`, `num_experts_per_tok`; every layer is MoE, experts of width
//!   `intermediate_size`.
//! - Qwen-MoE: `num_experts`, `moe_intermediate_size`, `shared_expert_intermediate_size`,
//!   `decoder_sparse_step`, `mlp_only_layers`.
//! - DeepSeek: `n_routed_experts`, `n_shared_experts`, `moe_intermediate_size`,
//!   `first_k_dense_replace`, `moe_layer_freq`, `topk_method`; MLA `q_lora_rank`,
//!   `kv_lora_rank`, `qk_nope_head_dim`, `qk_rope_head_dim`, `v_head_dim`.

use std::path::Path;

use serde::Deserialize;

use super::catalog_models;
use super::dtype::Dtype;
use super::error::{HwError, did_you_mean};
use super::model::{Mla, ModelConfig, Moe};

#[derive(Debug, Default, Deserialize)]
struct RawConfig {
    model_type: Option<String>,
    hidden_size: Option<u64>,
    intermediate_size: Option<u64>,
    num_hidden_layers: Option<u64>,
    num_attention_heads: Option<u64>,
    num_key_value_heads: Option<u64>,
    head_dim: Option<u64>,
    vocab_size: Option<u64>,
    tie_word_embeddings: Option<bool>,
    attention_bias: Option<bool>,
    mlp_bias: Option<bool>,
    hidden_act: Option<String>,
    torch_dtype: Option<String>,
    dtype: Option<String>,
    quantization_config: Option<serde_json::Value>,
    max_position_embeddings: Option<u64>,
    num_local_experts: Option<u64>,
    num_experts: Option<u64>,
    n_routed_experts: Option<u64>,
    num_experts_per_tok: Option<u64>,
    moe_intermediate_size: Option<u64>,
    shared_expert_intermediate_size: Option<u64>,
    n_shared_experts: Option<u64>,
    decoder_sparse_step: Option<u64>,
    mlp_only_layers: Option<Vec<u64>>,
    first_k_dense_replace: Option<u64>,
    moe_layer_freq: Option<u64>,
    topk_method: Option<String>,
    q_lora_rank: Option<u64>,
    kv_lora_rank: Option<u64>,
    qk_nope_head_dim: Option<u64>,
    qk_rope_head_dim: Option<u64>,
    v_head_dim: Option<u64>,
    text_config: Option<serde_json::Value>,
}

impl ModelConfig {
    /// Loads a model by catalog name (case-insensitive; aliases such as `llama-3.1-8b` or
    /// `meta-llama/Llama-3.1-8B` work), else from a `config.json` path or a directory holding one.
    pub fn load(name_or_path: &str) -> Result<ModelConfig, HwError> {
        if let Some(entry) = catalog_models::find(name_or_path) {
            return ModelConfig::from_json_str(entry.json, entry.name);
        }
        let path = Path::new(name_or_path);
        if !path.exists() {
            let names = catalog_models::names();
            return Err(HwError::UnknownModel {
                name: name_or_path.to_string(),
                suggestion: did_you_mean(name_or_path, names.iter().copied()),
                catalog: names.join(", "),
            });
        }
        let file = if path.is_dir() {
            path.join("config.json")
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&file).map_err(|source| HwError::Read {
            path: file.clone(),
            source,
        })?;
        let mut config = ModelConfig::from_json_str(&text, &file.display().to_string())?;
        config.name = display_name(&file);
        Ok(config)
    }

    /// Names of the built-in catalog models, in catalog order.
    pub fn catalog_names() -> Vec<&'static str> {
        catalog_models::names()
    }

    /// Parses the text of a `config.json`; `origin` names it in errors and becomes the name.
    pub fn from_json_str(text: &str, origin: &str) -> Result<ModelConfig, HwError> {
        let raw: RawConfig = serde_json::from_str(text).map_err(|source| HwError::ConfigJson {
            origin: origin.to_string(),
            source,
        })?;
        let raw = match (&raw.hidden_size, &raw.text_config) {
            // Multimodal wrappers keep the language model under `text_config`.
            (None, Some(inner)) => {
                RawConfig::deserialize(inner).map_err(|source| HwError::ConfigJson {
                    origin: format!("{origin} (text_config)"),
                    source,
                })?
            }
            _ => raw,
        };
        build(raw, origin)
    }
}

/// `…/Qwen2.5-7B/config.json` → `Qwen2.5-7B`; `my-model.json` → `my-model`.
fn display_name(file: &Path) -> String {
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    let dir = file
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|s| s.to_str());
    if let (true, Some(dir)) = (stem == "config", dir) {
        return dir.to_string();
    }
    stem.to_string()
}

fn build(raw: RawConfig, origin: &str) -> Result<ModelConfig, HwError> {
    let invalid = |problem: String| HwError::InvalidConfig {
        origin: origin.to_string(),
        problem,
    };
    let need = |value: Option<u64>, key: &str| match value {
        Some(v) if v > 0 => Ok(v),
        Some(_) => Err(invalid(format!("`{key}` must be > 0"))),
        None => Err(invalid(format!("missing key `{key}`"))),
    };
    let hidden_size = need(raw.hidden_size, "hidden_size")?;
    let num_layers = need(raw.num_hidden_layers, "num_hidden_layers")?;
    let num_heads = need(raw.num_attention_heads, "num_attention_heads")?;
    let vocab_size = need(raw.vocab_size, "vocab_size")?;
    let num_kv_heads = need(
        raw.num_key_value_heads.or(Some(num_heads)),
        "num_key_value_heads",
    )?;
    let head_dim = match raw.head_dim {
        Some(d) => need(Some(d), "head_dim")?,
        None if hidden_size % num_heads == 0 => hidden_size / num_heads,
        None => {
            return Err(invalid(format!(
                "hidden_size {hidden_size} is not divisible by num_attention_heads {num_heads} and `head_dim` is absent"
            )));
        }
    };
    let model_type = raw.model_type.clone().unwrap_or_default();
    let moe = parse_moe(&raw, num_layers).map_err(invalid)?;
    // Mixtral's experts use `intermediate_size`; DeepSeek's dense layers do. A model whose
    // every layer is MoE may omit it.
    let intermediate_size = match (raw.intermediate_size, &moe) {
        (Some(i), _) => i,
        (None, Some(m)) if m.moe_layers == num_layers => 0,
        (None, _) => need(None, "intermediate_size")?,
    };
    let mla = parse_mla(&raw).map_err(invalid)?;
    let attention_bias = raw.attention_bias.unwrap_or(false);
    Ok(ModelConfig {
        name: origin.to_string(),
        qkv_bias: attention_bias || matches!(model_type.as_str(), "qwen2" | "qwen2_moe"),
        o_bias: attention_bias,
        qk_norm: matches!(model_type.as_str(), "qwen3" | "qwen3_moe"),
        gated_mlp: is_gated(&model_type, raw.hidden_act.as_deref()),
        mlp_bias: raw.mlp_bias.unwrap_or(false),
        dtype: parse_dtype(&raw),
        model_type,
        hidden_size,
        intermediate_size,
        num_layers,
        num_heads,
        num_kv_heads,
        head_dim,
        vocab_size,
        tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(false),
        moe,
        mla,
        max_position_embeddings: raw.max_position_embeddings,
    })
}

/// Gated (3-matrix) MLPs are the norm for Llama-style models; a few older families use 2.
fn is_gated(model_type: &str, act: Option<&str>) -> bool {
    let ungated_family = matches!(
        model_type,
        "gpt2" | "gpt_neox" | "gptj" | "opt" | "falcon" | "phi" | "starcoder2" | "gpt_bigcode"
    );
    let ungated_act = matches!(act, Some("relu" | "gelu_new"));
    !(ungated_family || ungated_act)
}

fn parse_dtype(raw: &RawConfig) -> Dtype {
    let quant = raw.quantization_config.as_ref();
    let method = quant
        .and_then(|q| q.get("quant_method"))
        .and_then(|m| m.as_str())
        .unwrap_or("");
    let bits = quant.and_then(|q| q.get("bits")).and_then(|b| b.as_u64());
    match (method, bits) {
        ("fp8", _) => Dtype::Fp8,
        ("awq" | "gptq", Some(4)) => Dtype::Int4,
        _ => raw
            .torch_dtype
            .as_deref()
            .or(raw.dtype.as_deref())
            .and_then(|s| s.parse().ok())
            .unwrap_or(Dtype::Bf16),
    }
}

fn parse_moe(raw: &RawConfig, layers: u64) -> Result<Option<Moe>, String> {
    let k = || {
        raw.num_experts_per_tok
            .filter(|&k| k > 0)
            .ok_or_else(|| "MoE config lacks `num_experts_per_tok`".to_string())
    };
    let width = |key_value: Option<u64>, key: &str| {
        key_value
            .filter(|&w| w > 0)
            .ok_or_else(|| format!("MoE config lacks `{key}`"))
    };
    let moe = if let Some(e) = raw.num_local_experts.filter(|&e| e > 0) {
        Moe {
            num_experts: e,
            experts_per_token: k()?,
            expert_intermediate_size: width(raw.intermediate_size, "intermediate_size")?,
            shared_intermediate_size: 0,
            shared_expert_gate: false,
            router_bias: false,
            moe_layers: layers,
        }
    } else if let Some(e) = raw.n_routed_experts.filter(|&e| e > 0) {
        let first_dense = raw.first_k_dense_replace.unwrap_or(0);
        let freq = raw.moe_layer_freq.unwrap_or(1).max(1);
        let expert = width(raw.moe_intermediate_size, "moe_intermediate_size")?;
        Moe {
            num_experts: e,
            experts_per_token: k()?,
            expert_intermediate_size: expert,
            shared_intermediate_size: raw.n_shared_experts.unwrap_or(0) * expert,
            shared_expert_gate: false,
            router_bias: raw.topk_method.as_deref() == Some("noaux_tc"),
            moe_layers: (0..layers)
                .filter(|i| *i >= first_dense && i % freq == 0)
                .count() as u64,
        }
    } else if let Some(e) = raw.num_experts.filter(|&e| e > 0) {
        let step = raw.decoder_sparse_step.unwrap_or(1).max(1);
        let dense_only = raw.mlp_only_layers.clone().unwrap_or_default();
        let shared = raw.shared_expert_intermediate_size.unwrap_or(0);
        Moe {
            num_experts: e,
            experts_per_token: k()?,
            expert_intermediate_size: width(raw.moe_intermediate_size, "moe_intermediate_size")?,
            shared_intermediate_size: shared,
            shared_expert_gate: shared > 0,
            router_bias: false,
            moe_layers: (0..layers)
                .filter(|i| !dense_only.contains(i) && (i + 1) % step == 0)
                .count() as u64,
        }
    } else {
        return Ok(None);
    };
    if moe.experts_per_token > moe.num_experts {
        return Err(format!(
            "`num_experts_per_tok` {} exceeds the number of experts {}",
            moe.experts_per_token, moe.num_experts
        ));
    }
    Ok(Some(moe))
}

fn parse_mla(raw: &RawConfig) -> Result<Option<Mla>, String> {
    let Some(kv_lora_rank) = raw.kv_lora_rank else {
        return Ok(None);
    };
    let need = |v: Option<u64>, key: &str| {
        v.ok_or_else(|| format!("MLA config (`kv_lora_rank` present) lacks `{key}`"))
    };
    Ok(Some(Mla {
        q_lora_rank: raw.q_lora_rank,
        kv_lora_rank,
        qk_nope_head_dim: need(raw.qk_nope_head_dim, "qk_nope_head_dim")?,
        qk_rope_head_dim: need(raw.qk_rope_head_dim, "qk_rope_head_dim")?,
        v_head_dim: need(raw.v_head_dim, "v_head_dim")?,
    }))
}
