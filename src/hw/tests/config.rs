//! config.json parsing, catalog lookup and parameter counts.

use super::close;
use crate::hw::{Dtype, HwError, ModelConfig};

fn load(name: &str) -> ModelConfig {
    ModelConfig::load(name).unwrap()
}

#[test]
fn official_parameter_counts_are_exact() {
    // hardware.md §1.2 / §2 / §6 (derived, matching the official totals).
    assert_eq!(load("Llama-3.1-8B").total_params(), 8_030_261_248);
    assert_eq!(load("Qwen2.5-32B").total_params(), 32_763_876_352);
    assert_eq!(load("Qwen2.5-7B").total_params(), 7_615_616_512);
    assert_eq!(load("Llama-3.1-70B").total_params(), 70_553_706_496);
    // Tied embeddings are counted once (HF: 1.24 B).
    assert_eq!(load("Llama-3.2-1B").total_params(), 1_235_814_400);
}

#[test]
fn moe_totals_and_active_match_the_published_figures() {
    let mixtral = load("mixtral-8x7b");
    assert_eq!(mixtral.total_params(), 46_702_792_704);
    assert_eq!(mixtral.active_params(), 12_879_925_248);
    let v3 = load("deepseek-ai/DeepSeek-V3");
    assert_eq!(v3.total_params(), 671_026_419_200); // 671.03 B (official 671 B)
    // 37.55 B with the input embedding, 36.63 B without (official "36.6 B").
    assert_eq!(v3.active_params(), 37_552_297_472);
    close(
        (v3.active_params() - v3.embedding_params()) as f64,
        36.63e9,
        1e-3,
    );
    let qwen3 = load("Qwen3-30B-A3B");
    close(qwen3.total_params() as f64, 30.53e9, 1e-3);
    close(qwen3.active_params() as f64, 3.35e9, 1e-3);
}

#[test]
fn deepseek_layout_is_read_from_its_keys() {
    let v3 = load("DeepSeek-V3");
    assert_eq!(v3.attention_params(), 187_107_328);
    let moe = v3.moe.as_ref().unwrap();
    assert_eq!((moe.moe_layers, v3.dense_layers()), (58, 3));
    assert_eq!(moe.shared_intermediate_size, 2048);
    assert!(moe.router_bias);
    assert_eq!(v3.dtype, Dtype::Fp8);
    assert_eq!(v3.default_kv_dtype(), Dtype::Bf16);
}

#[test]
fn kv_elements_per_token_match_the_catalog_table() {
    // hardware.md §6, bytes per token at BF16.
    let cases = [
        ("Llama-3.1-8B", 131_072),
        ("Llama-3.1-70B", 327_680),
        ("Qwen2.5-7B", 57_344),
        ("Qwen2.5-32B", 262_144),
        ("Mixtral-8x7B-v0.1", 131_072),
        ("DeepSeek-V3", 70_272),
    ];
    for (name, bytes) in cases {
        assert_eq!(load(name).kv_elements_per_token() * 2, bytes, "{name}");
    }
}

#[test]
fn kv_under_tp_shards_gqa_heads_and_replicates_mla() {
    let llama = load("Llama-3.1-8B");
    assert_eq!(llama.kv_elements_per_token(), 65_536);
    assert_eq!(llama.kv_elements_per_token_per_gpu(2), 32_768);
    assert_eq!(llama.kv_elements_per_token_per_gpu(8), 8_192);
    // tp 16 > Hkv 8: heads are replicated, KV per GPU stops shrinking.
    assert_eq!(llama.kv_elements_per_token_per_gpu(16), 8_192);
    let v3 = load("DeepSeek-V3");
    assert_eq!(
        v3.kv_elements_per_token_per_gpu(8),
        v3.kv_elements_per_token()
    );
}

#[test]
fn catalog_accepts_aliases_and_hf_ids_case_insensitively() {
    for name in [
        "llama-3.1-8b",
        "meta-llama/Llama-3.1-8B",
        "meta-llama/Meta-Llama-3.1-8B-Instruct",
        "LLAMA3.1-8B",
    ] {
        assert_eq!(load(name).name, "Llama-3.1-8B", "{name}");
    }
    assert_eq!(load("qwen2.5-32b").name, "Qwen2.5-32B");
    assert_eq!(load("Qwen/Qwen2.5-7B-Instruct").name, "Qwen2.5-7B");
    assert_eq!(
        load("mistralai/Mixtral-8x7B-Instruct-v0.1").name,
        "Mixtral-8x7B-v0.1"
    );
}

#[test]
fn qwen2_has_implicit_qkv_bias_and_llama_does_not() {
    let qwen = load("Qwen2.5-32B");
    assert!(qwen.qkv_bias && !qwen.o_bias);
    assert_eq!(
        qwen.attention_params() - qwen.attention_matmul_params(),
        5120 + 2 * 1024
    );
    assert!(!load("Llama-3.1-8B").qkv_bias);
    assert!(load("Qwen3-8B").qk_norm);
}

#[test]
fn unknown_model_lists_the_catalog_and_says_how_to_pass_a_path() {
    let err = ModelConfig::load("qwen2.5-32").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, HwError::UnknownModel { .. }));
    assert!(msg.contains("did you mean `Qwen2.5-32B`?"), "{msg}");
    assert!(msg.contains("Llama-3.1-8B, Llama-3.1-70B"), "{msg}");
    assert!(msg.contains("config.json"), "{msg}");
}

#[test]
fn config_files_load_by_path_or_directory() {
    let dir = tempfile::tempdir().unwrap();
    let model_dir = dir.path().join("Tiny-Llama");
    std::fs::create_dir(&model_dir).unwrap();
    let json = r#"{"model_type":"llama","hidden_size":64,"intermediate_size":128,
        "num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100,"torch_dtype":"float16",
        "some_unknown_key":[1,2,3],"head_dim":null}"#;
    std::fs::write(model_dir.join("config.json"), json).unwrap();
    let by_dir = ModelConfig::load(model_dir.to_str().unwrap()).unwrap();
    let by_file = ModelConfig::load(model_dir.join("config.json").to_str().unwrap()).unwrap();
    assert_eq!(by_dir, by_file);
    assert_eq!(by_dir.name, "Tiny-Llama");
    assert_eq!((by_dir.num_kv_heads, by_dir.head_dim), (4, 16));
    assert_eq!(by_dir.dtype, Dtype::Fp16);
    // attn 4·64·64, mlp 3·64·128, norms 2·64, per layer; final norm; untied embedding + head.
    let per_layer = 4 * 64 * 64 + 3 * 64 * 128 + 2 * 64;
    assert_eq!(by_dir.total_params(), 2 * per_layer + 64 + 2 * 100 * 64);
}

#[test]
fn invalid_configs_name_the_key() {
    let missing = ModelConfig::from_json_str(r#"{"hidden_size":64}"#, "x.json").unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("missing key `num_hidden_layers`"),
        "{missing}"
    );
    let bad_json = ModelConfig::from_json_str("{", "y.json").unwrap_err();
    assert!(matches!(bad_json, HwError::ConfigJson { .. }));
    let moe = r#"{"hidden_size":64,"intermediate_size":64,"num_hidden_layers":1,
        "num_attention_heads":4,"vocab_size":10,"num_local_experts":4}"#;
    let err = ModelConfig::from_json_str(moe, "z.json").unwrap_err();
    assert!(err.to_string().contains("num_experts_per_tok"), "{err}");
}

#[test]
fn multimodal_configs_use_their_text_config() {
    let json = r#"{"model_type":"llava","text_config":{"model_type":"llama","hidden_size":64,
        "intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100}}"#;
    let m = ModelConfig::from_json_str(json, "llava").unwrap();
    assert_eq!((m.model_type.as_str(), m.hidden_size), ("llama", 64));
}

#[test]
fn qwen_moe_layout_honours_sparse_step_and_dense_layers() {
    let json = r#"{"model_type":"qwen2_moe","hidden_size":64,"intermediate_size":128,
        "num_hidden_layers":6,"num_attention_heads":4,"vocab_size":10,"num_experts":8,
        "num_experts_per_tok":2,"moe_intermediate_size":16,"shared_expert_intermediate_size":32,
        "decoder_sparse_step":2,"mlp_only_layers":[3]}"#;
    let m = ModelConfig::from_json_str(json, "q").unwrap();
    let moe = m.moe.as_ref().unwrap();
    // Layers 1, 3, 5 are sparse by step; 3 is forced dense → 2 MoE layers.
    assert_eq!((moe.moe_layers, m.dense_layers()), (2, 4));
    assert!(moe.shared_expert_gate && m.qkv_bias);
    assert_eq!(m.moe_always_active_params(), 3 * 64 * 32 + 64 * 8 + 64);
}
