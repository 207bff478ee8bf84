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
    assert_eq!(ModelConfig::catalog_names().len(), 12);
}

#[test]
fn an_empty_step_is_idle_and_free() {
    let d = ideal("Llama-3.1-8B", "H100-SXM", 1)
        .with_efficiency(Efficiency::calibrated(&Gpu::by_name("H100-SXM").unwrap()))
        .unwrap();
    let s = d.step_time(&[], &[]);
    assert_eq!((s.seconds, s.bound), (0.0, Bound::Idle));
}

#[test]
fn mixed_steps_charge_prefill_and_decode_at_their_own_efficiency() {
    let gpu = Gpu::by_name("A100-80GB").unwrap();
    let mut eff = Efficiency::ideal();
    eff.prefill_compute = 0.5;
    eff.decode_compute = 0.25;
    let d = ideal("Llama-3.1-8B", "A100-80GB", 1)
        .with_efficiency(eff)
        .unwrap();
    let prefill = [PrefillWork {
        new_tokens: 4096,
        context_before: 0,
    }];
    let decodes = [100u32; 64];
    let mixed = d.step_time(&prefill, &decodes);
    let base = ideal("Llama-3.1-8B", "A100-80GB", 1);
    let expected = base.step_time(&prefill, &[]).flops / 0.5 / (gpu.bf16_dense_tflops * 1e12)
        + base.step_time(&[], &decodes).flops / 0.25 / (gpu.bf16_dense_tflops * 1e12);
    assert_eq!(mixed.bound, Bound::Compute);
    close(mixed.seconds, expected, 1e-9);
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
