//! Built-in model catalog: trimmed copies of the Hugging Face `config.json` files (only the keys
//! the analytical model reads, values unchanged), looked up by name, alias or HF id.
//!
//! Sources: the HF config mirrors cited in hardware.md §6 (LLM-Prof `sglang/Model_Config.md` for
//! Llama-3.1-8B, Llama-3.2-3B, Qwen2.5-7B/14B/32B, Qwen3-8B/32B/30B-A3B; tt-metal's copy of
//! DeepSeek-V3; the Mixtral config as published by mistralai). Llama-3.1-70B and Llama-3.2-1B
//! are the published meta-llama configs (same keys as Llama-3.1-8B with their own sizes);
//! Qwen2.5-72B is the published Qwen config (Qwen2.5-32B's keys with its own sizes).

/// One catalog entry.
pub(crate) struct CatalogModel {
    /// Display name (the HF repository name).
    pub name: &'static str,
    /// Hugging Face id.
    pub hf_id: &'static str,
    /// Extra spellings accepted by [`find`].
    pub aliases: &'static [&'static str],
    /// The trimmed config.json.
    pub json: &'static str,
}

pub(crate) const MODELS: &[CatalogModel] = &[
    CatalogModel {
        name: "Llama-3.2-1B",
        hf_id: "meta-llama/Llama-3.2-1B",
        aliases: &["llama3.2-1b"],
        json: r#"{"model_type":"llama","hidden_size":2048,"intermediate_size":8192,"num_hidden_layers":16,
"num_attention_heads":32,"num_key_value_heads":8,"head_dim":64,"vocab_size":128256,"tie_word_embeddings":true,
"attention_bias":false,"mlp_bias":false,"hidden_act":"silu","max_position_embeddings":131072,"torch_dtype":"bfloat16"}"#,
    },
    CatalogModel {
        name: "Llama-3.2-3B",
        hf_id: "meta-llama/Llama-3.2-3B",
        aliases: &["llama3.2-3b"],
        json: r#"{"model_type":"llama","hidden_size":3072,"intermediate_size":8192,"num_hidden_layers":28,
"num_attention_heads":24,"num_key_value_heads":8,"head_dim":128,"vocab_size":128256,"tie_word_embeddings":true,
"attention_bias":false,"mlp_bias":false,"hidden_act":"silu","max_position_embeddings":131072,"torch_dtype":"bfloat16"}"#,
    },
    CatalogModel {
        name: "Llama-3.1-8B",
        hf_id: "meta-llama/Llama-3.1-8B",
        aliases: &[
            "llama3.1-8b",
            "meta-llama-3.1-8b",
            "llama-3-8b",
            "meta-llama-3-8b",
        ],
        json: r#"{"model_type":"llama","hidden_size":4096,"intermediate_size":14336,"num_hidden_layers":32,
"num_attention_heads":32,"num_key_value_heads":8,"vocab_size":128256,"tie_word_embeddings":false,
"attention_bias":false,"mlp_bias":false,"hidden_act":"silu","max_position_embeddings":131072,"torch_dtype":"bfloat16"}"#,
    },
    CatalogModel {
        name: "Llama-3.1-70B",
        hf_id: "meta-llama/Llama-3.1-70B",
        aliases: &[
            "llama3.1-70b",
            "meta-llama-3.1-70b",
            "llama-3.3-70b",
            "llama-3-70b",
        ],
        json: r#"{"model_type":"llama","hidden_size":8192,"intermediate_size":28672,"num_hidden_layers":80,
"num_attention_heads":64,"num_key_value_heads":8,"vocab_size":128256,"tie_word_embeddings":false,
"attention_bias":false,"mlp_bias":false,"hidden_act":"silu","max_position_embeddings":131072,"torch_dtype":"bfloat16"}"#,
    },
    CatalogModel {
        name: "Qwen2.5-7B",
        hf_id: "Qwen/Qwen2.5-7B",
        aliases: &["qwen2.5-7b"],
        json: r#"{"model_type":"qwen2","hidden_size":3584,"intermediate_size":18944,"num_hidden_layers":28,
"num_attention_heads":28,"num_key_value_heads":4,"vocab_size":152064,"tie_word_embeddings":false,
"hidden_act":"silu","max_position_embeddings":131072,"torch_dtype":"bfloat16"}"#,
    },
    CatalogModel {
        name: "Qwen2.5-14B",
        hf_id: "Qwen/Qwen2.5-14B",
        aliases: &[],
        json: r#"{"model_type":"qwen2","hidden_size":5120,"intermediate_size":13824,"num_hidden_layers":48,
"num_attention_heads":40,"num_key_value_heads":8,"vocab_size":152064,"tie_word_embeddings":false,
"hidden_act":"silu","max_position_embeddings":131072,"torch_dtype":"bfloat16"}"#,
    },
    CatalogModel {
        name: "Qwen2.5-32B",
        hf_id: "Qwen/Qwen2.5-32B",
        aliases: &[],
        json: r#"{"model_type":"qwen2","hidden_size":5120,"intermediate_size":27648,"num_hidden_layers":64,
"num_attention_heads":40,"num_key_value_heads":8,"vocab_size":152064,"tie_word_embeddings":false,
"hidden_act":"silu","max_position_embeddings":131072,"torch_dtype":"bfloat16"}"#,
    },
    CatalogModel {
        name: "Qwen2.5-72B",
        hf_id: "Qwen/Qwen2.5-72B",
        aliases: &[],
        json: r#"{"model_type":"qwen2","hidden_size":8192,"intermediate_size":29568,"num_hidden_layers":80,
"num_attention_heads":64,"num_key_value_heads":8,"vocab_size":152064,"tie_word_embeddings":false,
"hidden_act":"silu","max_position_embeddings":32768,"torch_dtype":"bfloat16"}"#,
    },
    CatalogModel {
        name: "Qwen3-8B",
        hf_id: "Qwen/Qwen3-8B",
        aliases: &[],
        json: r#"{"model_type":"qwen3","hidden_size":4096,"intermediate_size":12288,"num_hidden_layers":36,
"num_attention_heads":32,"num_key_value_heads":8,"head_dim":128,"vocab_size":151936,"tie_word_embeddings":false,
"attention_bias":false,"hidden_act":"silu","max_position_embeddings":40960,"torch_dtype":"bfloat16"}"#,
    },
    CatalogModel {
        name: "Qwen3-32B",
        hf_id: "Qwen/Qwen3-32B",
        aliases: &[],
        json: r#"{"model_type":"qwen3","hidden_size":5120,"intermediate_size":25600,"num_hidden_layers":64,
"num_attention_heads":64,"num_key_value_heads":8,"head_dim":128,"vocab_size":151936,"tie_word_embeddings":false,
"attention_bias":false,"hidden_act":"silu","max_position_embeddings":40960,"torch_dtype":"bfloat16"}"#,
    },
    CatalogModel {
        name: "Qwen3-30B-A3B",
        hf_id: "Qwen/Qwen3-30B-A3B",
        aliases: &[],
        json: r#"{"model_type":"qwen3_moe","hidden_size":2048,"intermediate_size":6144,"num_hidden_layers":48,
"num_attention_heads":32,"num_key_value_heads":4,"head_dim":128,"vocab_size":151936,"tie_word_embeddings":false,
"attention_bias":false,"hidden_act":"silu","max_position_embeddings":40960,"torch_dtype":"bfloat16",
"num_experts":128,"num_experts_per_tok":8,"moe_intermediate_size":768,"decoder_sparse_step":1,"mlp_only_layers":[]}"#,
    },
    CatalogModel {
        name: "Mixtral-8x7B-v0.1",
        hf_id: "mistralai/Mixtral-8x7B-v0.1",
        aliases: &["mixtral", "mixtral-8x7b"],
        json: r#"{"model_type":"mixtral","hidden_size":4096,"intermediate_size":14336,"num_hidden_layers":32,
"num_attention_heads":32,"num_key_value_heads":8,"vocab_size":32000,"tie_word_embeddings":false,
"hidden_act":"silu","max_position_embeddings":32768,"torch_dtype":"bfloat16",
"num_local_experts":8,"num_experts_per_tok":2}"#,
    },
    CatalogModel {
        name: "DeepSeek-V3",
        hf_id: "deepseek-ai/DeepSeek-V3",
        aliases: &["deepseek-v3-0324", "deepseek-v3-base", "deepseek-r1"],
        json: r#"{"model_type":"deepseek_v3","hidden_size":7168,"intermediate_size":18432,"num_hidden_layers":61,
"num_attention_heads":128,"num_key_value_heads":128,"vocab_size":129280,"tie_word_embeddings":false,
"attention_bias":false,"hidden_act":"silu","max_position_embeddings":163840,"torch_dtype":"bfloat16",
"quantization_config":{"activation_scheme":"dynamic","fmt":"e4m3","quant_method":"fp8","weight_block_size":[128,128]},
"first_k_dense_replace":3,"moe_intermediate_size":2048,"moe_layer_freq":1,"n_routed_experts":256,
"n_shared_experts":1,"num_experts_per_tok":8,"topk_method":"noaux_tc","scoring_func":"sigmoid",
"q_lora_rank":1536,"kv_lora_rank":512,"qk_nope_head_dim":128,"qk_rope_head_dim":64,"v_head_dim":128,
"num_nextn_predict_layers":1}"#,
    },
];

/// Canonical form for matching: lower case, the part after the last `/`, `_` and spaces as
/// `-`, and trailing `-instruct`, `-chat`, `-base`, `-hf`, `-v0.1` removed.
fn key(name: &str) -> String {
    let last = name.trim().rsplit('/').next().unwrap_or("");
    let mut k = last.to_ascii_lowercase().replace(['_', ' '], "-");
    'strip: loop {
        for suffix in ["-instruct", "-chat", "-base", "-hf", "-v0.1"] {
            if let Some(stripped) = k.strip_suffix(suffix) {
                k = stripped.to_string();
                continue 'strip;
            }
        }
        return k;
    }
}

/// The entry whose name, HF id or alias matches `name` (see [`key`]).
pub(crate) fn find(name: &str) -> Option<&'static CatalogModel> {
    let wanted = key(name);
    if wanted.is_empty() {
        return None;
    }
    MODELS.iter().find(|m| {
        key(m.name) == wanted
            || key(m.hf_id) == wanted
            || m.aliases.iter().any(|a| key(a) == wanted)
    })
}

/// Catalog display names, in catalog order.
pub(crate) fn names() -> Vec<&'static str> {
    MODELS.iter().map(|m| m.name).collect()
}
