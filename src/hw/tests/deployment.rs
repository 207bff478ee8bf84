//! The step-time model: agreement with the closed forms, MoE expert occupancy, MLA, errors,
//! and MFU/MBU.

use std::time::Duration;

use super::{close, ideal};
use crate::hw::{
    Bound, Deployment, Dtype, Efficiency, Gpu, HwError, ModelConfig, PrefillWork, StepWork,
};

#[test]
fn step_time_of_a_slice_matches_the_batch_helpers() {
    let d = ideal("Llama-3.1-8B", "H100-SXM", 2);
    let slice = d.step_time(&[], &[700; 12]);
    assert_eq!(slice, d.decode_time(12, 700));
    let prompts = [PrefillWork {
        new_tokens: 300,
        context_before: 0,
    }; 3];
    assert_eq!(d.step_time(&prompts, &[]), d.prefill_time(300, 3));
}

#[test]
fn running_sums_cost_the_same_as_slices() {
    let d = ideal("Qwen3-30B-A3B", "H100-SXM", 2);
    let prefill = [
        PrefillWork {
            new_tokens: 512,
            context_before: 1024,
        },
        PrefillWork {
            new_tokens: 37,
            context_before: 0,
        },
    ];
    let decodes = [5u32, 900, 4000];
    let mut work = StepWork::default();
    prefill.iter().for_each(|p| work.add_prefill(*p));
    decodes.iter().for_each(|c| work.add_decode(*c));
    assert_eq!(d.step_time_of(&work), d.step_time(&prefill, &decodes));
    assert_eq!(
        work.prefill_pairs,
        512.0 * 1024.0 + 512.0 * 513.0 / 2.0 + 37.0 * 38.0 / 2.0
    );
    assert_eq!(ModelConfig::catalog_names().len(), 13);
}

#[test]
fn an_empty_step_is_idle_and_free() {
    let d = ideal("Llama-3.1-8B", "H100-SXM", 1)
        .with_efficiency(Efficiency::calibrated(
            &Gpu::by_name("H100-SXM").unwrap(),
            Dtype::Bf16,
        ))
        .unwrap();
    let s = d.step_time(&[], &[]);
    assert_eq!((s.seconds, s.bound), (0.0, Bound::Idle));
}

/// Llama-3.1-8B on an A100-80GB with round efficiencies, for hand-checked step times.
fn round_a100() -> (Deployment, f64, f64) {
    let gpu = Gpu::by_name("A100-80GB").unwrap();
    let eff = Efficiency {
        matmul: 0.5,
        matmul_half_tokens: 10.0,
        attention: 0.25,
        memory: 0.8,
        comm: 1.0,
        step_overhead_s: 0.0,
        per_layer_overhead_s: 0.0,
        per_sequence_overhead_s: 0.0,
        per_request_overhead_s: 0.0,
        per_prompt_token_overhead_s: 0.0,
    };
    let d = ideal("Llama-3.1-8B", "A100-80GB", 1)
        .with_efficiency(eff)
        .unwrap();
    (d, gpu.bf16_dense_tflops * 1e12, gpu.bandwidth_bytes_per_s)
}

#[test]
fn matmul_efficiency_is_half_of_its_ceiling_at_the_half_size() {
    let (d, _, _) = round_a100();
    let e = d.efficiency();
    close(e.matmul_at(10.0), 0.25, 1e-12);
    close(e.matmul_at(30.0), 0.375, 1e-12);
    close(e.matmul_at(1e9), 0.5, 1e-6);
    assert_eq!(Efficiency::ideal().matmul_at(1.0), 1.0, "ideal is flat");
}

#[test]
fn long_prefill_is_matrix_compute_plus_attention_compute() {
    // 4096 tokens: matrix FLOPs at 0.5·4096/4106 of peak, attention FLOPs at 0.25 of peak;
    // weights and KV reads are far below both.
    let (d, peak, _) = round_a100();
    let k = &d.k;
    let n = 4096.0;
    let matrix = k.linear_flops_per_token * n + k.head_flops_per_seq;
    let attention = k.attn_flops_per_pair * n * (n + 1.0) / 2.0;
    let expected = matrix / (peak * 0.5 * n / (n + 10.0)) + attention / (peak * 0.25);
    let s = d.prefill_time(4096, 1);
    assert_eq!(s.bound, Bound::Compute);
    close(s.seconds, expected, 1e-9);
}

#[test]
fn batch_one_decode_is_weight_reads_plus_kv_reads() {
    // One token: the GEMMs are memory-bound (weights at 0.8 of bandwidth) and attention is
    // bound by reading 4096 cached tokens plus writing one, at the same bandwidth.
    let (d, _, bw) = round_a100();
    let k = &d.k;
    let expected =
        k.resident_bytes / (bw * 0.8) + k.kv_bytes_per_token_per_gpu * 4097.0 / (bw * 0.8);
    let s = d.decode_time(1, 4096);
    assert_eq!(s.bound, Bound::Memory);
    close(s.seconds, expected, 1e-9);
}

#[test]
fn decode_turns_compute_bound_only_at_large_batches() {
    // Matrix work of B tokens costs F·(B + 10)/(0.5·peak): at B = 64 that is below the
    // weight reads, at B = 1024 above (the A100's ridge at 0.5/0.8 of peak is ~100 tokens).
    let (d, peak, bw) = round_a100();
    let k = &d.k;
    let matrix =
        |b: f64| (k.linear_flops_per_token + k.head_flops_per_seq) * (b + 10.0) / (0.5 * peak);
    let weights = k.resident_bytes / (0.8 * bw);
    assert!(matrix(64.0) < weights);
    assert!(matrix(1024.0) > weights);
    let kv = |b: f64| k.kv_bytes_per_token_per_gpu * 101.0 * b / (0.8 * bw);
    for b in [64u32, 1024] {
        let s = d.decode_time(b, 100);
        let f = f64::from(b);
        close(s.seconds, matrix(f).max(weights) + kv(f), 1e-9);
    }
}

#[test]
fn mixed_steps_pay_matrix_work_once_for_all_their_tokens() {
    // A prefill chunk and decodes in one step share one pass over the weights: the step costs
    // less than the two steps apart, and exactly the formula over the combined token count.
    let (d, peak, bw) = round_a100();
    let k = &d.k;
    let prefill = [PrefillWork {
        new_tokens: 512,
        context_before: 0,
    }];
    let decodes = [100u32; 64];
    let mixed = d.step_time(&prefill, &decodes).seconds;
    let apart = d.step_time(&prefill, &[]).seconds + d.step_time(&[], &decodes).seconds;
    assert!(mixed < apart, "{mixed} vs {apart}");
    let t = 512.0 + 64.0;
    let matrix = (k.linear_flops_per_token * t + k.head_flops_per_seq * 65.0)
        / (peak * 0.5 * t / (t + 10.0));
    let pairs = 512.0 * 513.0 / 2.0 + 64.0 * 100.0;
    let attn = (k.attn_flops_per_pair * pairs / (peak * 0.25))
        .max(k.kv_bytes_per_token_per_gpu * (6400.0 + t) / (bw * 0.8));
    close(
        mixed,
        matrix.max(k.resident_bytes / (bw * 0.8)) + attn,
        1e-9,
    );
}

#[test]
fn moe_reads_the_expected_number_of_distinct_experts() {
    // hardware.md §1.5: Mixtral B=1 → 2, B=8 → 7.2, B=32 → 8; DeepSeek-V3 B=32 → 163.
    let mixtral = ideal("Mixtral-8x7B-v0.1", "H100-SXM", 1);
    let per_expert = |d: &Deployment, b: f64| {
        let m = d.model().moe.clone().unwrap();
        d.expert_bytes_touched(b) / (m.moe_layers as f64 * d.model().expert_params() as f64 * 2.0)
    };
    close(per_expert(&mixtral, 1.0), 2.0, 1e-12);
    close(per_expert(&mixtral, 8.0), 7.2, 1e-3);
    close(per_expert(&mixtral, 32.0), 8.0, 1e-3);
    let v3 = ideal("DeepSeek-V3", "H200", 8);
    let v3_per_expert = |b: f64| {
        let m = v3.model().moe.clone().unwrap();
        v3.expert_bytes_touched(b) / (m.moe_layers as f64 * v3.model().expert_params() as f64)
    };
    close(v3_per_expert(1.0), 8.0, 1e-9);
    close(v3_per_expert(32.0), 163.0, 5e-3);
    // So an MoE decode step grows much faster with batch than a dense one.
    let t1 = mixtral.decode_time(1, 512).seconds;
    close(mixtral.decode_time(32, 512).seconds / t1, 46.7 / 12.9, 0.1);
}

#[test]
fn deepseek_fp8_on_8_h200_fits_and_mla_kv_is_replicated() {
    let d = ideal("DeepSeek-V3", "H200", 8);
    assert_eq!(d.weight_dtype(), Dtype::Fp8);
    assert_eq!(d.kv_bytes_per_token_per_gpu(), 70_272.0);
    close(d.weights_bytes_per_gpu() * 8.0, 671.0e9, 1e-3);
    assert!(d.kv_capacity_tokens(0.9).unwrap() > 100_000);
    // FP8 weights use the FP8 peak.
    close(d.peak_flops_per_gpu(), 1978.9e12, 1e-12);
    let on_h100 = ideal("DeepSeek-V3", "H100-SXM", 8);
    assert!(matches!(
        on_h100.kv_capacity_tokens(0.9),
        Err(HwError::WeightsDoNotFit { .. })
    ));
}

#[test]
fn tp_must_divide_the_heads() {
    let m = ModelConfig::load("Qwen2.5-32B").unwrap();
    let gpu = Gpu::by_name("H100").unwrap();
    let err = Deployment::new(m, gpu, 3, Dtype::Bf16, Dtype::Bf16, Efficiency::ideal());
    let msg = err.unwrap_err().to_string();
    assert!(msg.contains("tp = 3") && msg.contains("40"), "{msg}");
}

#[test]
fn bad_efficiency_and_utilisation_are_rejected() {
    let d = ideal("Llama-3.1-8B", "L4", 1);
    let mut eff = Efficiency::ideal();
    eff.memory = 0.0;
    assert!(d.with_efficiency(eff).is_err());
    assert!(d.kv_capacity_tokens(1.5).is_err());
    assert!(d.kv_capacity_tokens(0.0).is_err());
}

#[test]
fn fp8_kv_and_int4_weights_change_bytes() {
    let m = ModelConfig::load("Llama-3.1-70B").unwrap();
    let gpu = Gpu::by_name("H100").unwrap();
    let d = Deployment::new(m, gpu, 1, Dtype::Int4, Dtype::Fp8, Efficiency::ideal()).unwrap();
    assert_eq!(d.kv_bytes_per_token_per_gpu(), 163_840.0);
    close(
        d.weights_bytes_per_gpu(),
        70_553_706_496.0 * (0.5 + 2.0 / 128.0),
        1e-12,
    );
    // INT4 weight-only kernels compute at the BF16 rate.
    close(d.peak_flops_per_gpu(), 989.4e12, 1e-12);
}

#[test]
fn mfu_and_mbu_of_a_synthetic_window() {
    let d = ideal("Qwen2.5-32B", "H100-SXM", 1);
    // One request of 1024 + 1024 tokens taking exactly its E2E floor: decode dominates, so
    // MBU is close to 1 and MFU is tiny.
    let e2e = d.prefill_time(1024, 1).seconds + 1023.0 * d.decode_time(1, 1535).seconds;
    let u = d
        .utilization(&[(1024, 1024)], Duration::from_secs_f64(e2e), 1.0)
        .unwrap();
    let flops = d.prefill_flops(1024)
        + 1023.0 * d.decode_flops_per_token(0)
        + d.model().attention_flops_per_pair() * (1023.0 * 1024.0 + 1023.0 * 1022.0 / 2.0);
    close(u.flops, flops, 1e-12);
    close(u.mfu, flops / (e2e * 989.4e12), 1e-12);
    assert!(u.mbu > 0.99 && u.mbu < 1.0, "{}", u.mbu);
    close(d.request_flops(1024, 1024), flops, 1e-12);
    assert!(d.utilization(&[], Duration::ZERO, 1.0).is_err());
    assert!(d.utilization(&[], Duration::from_secs(1), 0.5).is_err());
}
