//! `exp estimate`: the seed numbers of metrics.md "Theory", the full method, and the table.

use super::close;
use crate::hw::estimate::{
    Capacity, EstimateRequest, EstimateResult, Method, estimate, render_table,
};
use crate::hw::{Bound, Gpu, ModelConfig};

fn request(model: &str, gpu: &str, method: Method) -> EstimateRequest {
    let mut req = EstimateRequest::new(
        ModelConfig::load(model).unwrap(),
        Gpu::by_name(gpu).unwrap(),
    );
    req.method = method;
    req
}

#[test]
fn seed_method_reproduces_the_seed_numbers_unrounded() {
    let e = estimate(&request("Qwen2.5-32B", "H20", Method::Seed)).unwrap();
    let EstimateResult::Seed(s) = e.result else {
        panic!("seed result")
    };
    assert_eq!(s.params, 31_984_189_440);
    close(s.prefill_flops, 65.28e12, 1e-4);
    close(s.peak_flops, 148e12, 1e-12);
    close(s.ttft_s, 0.441, 1e-3);
    assert!((s.decode_flops_per_token_at_prompt / 1e12 - 0.064).abs() < 5e-4);
    assert_eq!(s.mean_context, 1536.0);
    close(s.decode_flops_per_token / 1e12, 0.0644, 1e-3);
    close(s.tokens_per_s, 2297.0, 1e-3);
    assert_eq!(s.seed_rounded_decode_tflops, 0.06);
    close(s.seed_rounded_tokens_per_s.unwrap(), 2466.7, 1e-4);
    close(s.quick_rule_flops, 65.5e12, 1e-3);
    assert_eq!(s.seed_printed_quick_rule_tflops, 64.0);
    close(s.seed_printed_quick_rule_ttft_s, 0.432, 2e-3);
}

#[test]
fn full_method_counts_norms_and_head_and_names_the_bound() {
    let e = estimate(&request("Qwen2.5-32B", "H20", Method::Full)).unwrap();
    let EstimateResult::Full(f) = e.result else {
        panic!("full result")
    };
    assert_eq!(f.params_total, 32_763_876_352);
    close(f.ttft.seconds, 64.60e12 / 148e12, 1e-3);
    assert_eq!(f.ttft.bound, Bound::Compute);
    // On an H20 decode is memory-bound: (63.97 GB + KV) / 4 TB/s ≈ 16 ms, not 0.44 ms.
    assert_eq!(f.tpot.bound, Bound::Memory);
    close(
        f.tpot.seconds,
        (63.97e9 + 262_144.0 * 1536.5) / 4.0e12,
        1e-3,
    );
    close(f.decode_tokens_per_s, 1.0 / f.tpot.seconds, 1e-12);
    close(f.crossover_batch_weights_only.unwrap(), 148.0 / 4.0, 2e-3);
    assert!(matches!(f.capacity, Capacity::Fits { max_batch, .. } if max_batch > 5));
    assert_eq!(f.decode_comm.count, 0);
}

#[test]
fn seed_method_refuses_moe_models() {
    let err = estimate(&request("Mixtral-8x7B-v0.1", "H100", Method::Seed)).unwrap_err();
    assert!(err.to_string().contains("dense models only"), "{err}");
}

#[test]
fn zero_shapes_are_rejected() {
    let mut req = request("Llama-3.1-8B", "L4", Method::Full);
    req.output = 0;
    assert!(estimate(&req).is_err());
}

#[test]
fn full_table_is_aligned_and_has_every_row() {
    let mut req = request("Qwen2.5-32B", "H100-SXM", Method::Full);
    req.tp = 2;
    let table = render_table(&estimate(&req).unwrap());
    for needle in [
        "Qwen2.5-32B on 2 × H100-SXM (bf16 weights, bf16 KV): prompt 1024, output 1024, batch 1",
        "parameters (total)",
        "32.76 B",
        "32,763,876,352",
        "weights per GPU",
        "32.76 GB",
        "KV cache per token per GPU",
        "131,072 B",
        "prefill FLOPs per request",
        "64.60 TFLOP",
        "TTFT floor",
        "compute-bound",
        "TPOT floor",
        "memory-bound",
        "decode throughput ceiling",
        "crossover batch (weights only)",
        "max batch that fits",
        "TP all-reduce per decode step",
        "128 all-reduces",
    ] {
        assert!(table.contains(needle), "missing {needle:?} in\n{table}");
    }
    let value_column = |line: &str| {
        line.find("  ")
            .map(|i| i + line[i..].len() - line[i..].trim_start().len())
    };
    let lines: Vec<&str> = table
        .lines()
        .skip_while(|l| !l.starts_with("quantity"))
        .collect();
    let first = value_column(lines[0]);
    assert!(lines.iter().all(|l| value_column(l) == first), "{table}");
    assert!(table.lines().all(|l| l == l.trim_end()));
}

#[test]
fn seed_table_shows_rounded_figures_beside_unrounded_ones() {
    let table = render_table(&estimate(&request("Qwen2.5-32B", "H20", Method::Seed)).unwrap());
    for needle in [
        "31.98 B",
        "65.28 TFLOP",
        "441.",
        "0.0644 TFLOP",
        "2297.",
        "2466.7",
        "432.",
    ] {
        assert!(table.contains(needle), "missing {needle:?} in\n{table}");
    }
}

#[test]
fn a_model_that_does_not_fit_says_so_in_the_table() {
    let table = render_table(&estimate(&request("Llama-3.1-70B", "L40S", Method::Full)).unwrap());
    assert!(table.contains("does not fit on L40S"), "{table}");
}

#[test]
fn estimates_serialize_to_json_with_the_method_tag() {
    let e = estimate(&request("Llama-3.1-8B", "A10G", Method::Full)).unwrap();
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["result"]["method"], "full");
    assert_eq!(json["result"]["tpot"]["bound"], "memory");
}

fn full(req: &EstimateRequest) -> crate::hw::estimate::FullEstimate {
    match estimate(req).unwrap().result {
        EstimateResult::Full(f) => f,
        EstimateResult::Seed(_) => panic!("full result"),
    }
}

#[test]
fn full_method_prints_the_seed_quick_rule_throughput() {
    // Issue 13: the seed's compute-only rule beside the roofline, 2297 tok/s unrounded for
    // Qwen2.5-32B on an H20 at 1024 + 1024; none for MoE models, which the seed cannot count.
    let f = full(&request("Qwen2.5-32B", "H20", Method::Full));
    close(f.quick_rule_tokens_per_s.unwrap(), 2297.0, 1e-3);
    assert!(f.warnings.is_empty(), "{:?}", f.warnings);
    let text = render_table(&estimate(&request("Qwen2.5-32B", "H20", Method::Full)).unwrap());
    let line = text
        .lines()
        .find(|l| l.starts_with("quick-rule throughput (seed)"));
    assert!(line.is_some_and(|l| l.contains(" 2297.3 tok/s ")), "{text}");
    let moe = full(&request("Mixtral-8x7B-v0.1", "H100-SXM", Method::Full));
    assert_eq!(moe.quick_rule_tokens_per_s, None);
}

#[test]
fn a_batch_that_does_not_fit_is_flagged() {
    let mut req = request("Qwen2.5-32B", "H100-SXM", Method::Full);
    (req.prompt, req.output, req.batch) = (4096, 1024, 64);
    let f = full(&req);
    let Capacity::Fits { max_batch, .. } = f.capacity else {
        panic!("weights fit")
    };
    assert!(max_batch < 64);
    assert_eq!(f.warnings.len(), 1, "{:?}", f.warnings);
    assert!(
        f.warnings[0].starts_with("batch 64 does not fit in memory: it needs 327680 KV tokens")
    );
    let text = render_table(&estimate(&req).unwrap());
    assert!(
        text.contains("\nwarning: batch 64 does not fit in memory"),
        "{text}"
    );
    // Weights that do not fit at all are flagged too.
    let l40s = full(&request("Qwen2.5-32B", "L40S", Method::Full));
    assert!(
        l40s.warnings[0].starts_with("the weights do not fit"),
        "{:?}",
        l40s.warnings
    );
}

#[test]
fn a_prompt_beyond_max_position_embeddings_is_flagged() {
    let mut req = request("Qwen2.5-72B", "H200", Method::Full);
    (req.prompt, req.output, req.tp) = (32_000, 1024, 2);
    let f = full(&req);
    assert_eq!(
        f.warnings,
        vec![
            "prompt 32000 + output 1024 = 33024 tokens exceeds max_position_embeddings = 32768 \
             of Qwen2.5-72B (the model was not trained for positions that far)"
                .to_string()
        ]
    );
}
