//! hardware.md §2: Qwen2.5-32B, 1024 + 1024 tokens, batch 1, one H100 SXM, BF16, ideal.

use super::{close, ideal};
use crate::hw::{Bound, Deployment, Dtype, Efficiency, Gpu, ModelConfig, PrefillWork};

fn h100() -> Deployment {
    ideal("Qwen2.5-32B", "H100-SXM", 1)
}

#[test]
fn per_layer_matmul_weights_and_weight_bytes() {
    let d = h100();
    let m = d.model();
    assert_eq!(m.attention_matmul_params(), 62_914_560);
    assert_eq!(m.dense_mlp_params(), 424_673_280);
    close(d.weights_bytes_per_gpu(), 65.53e9, 1e-3);
    close(d.weights_bytes_per_gpu() / (1u64 << 30) as f64, 61.0, 2e-3);
}

#[test]
fn prefill_flops_and_ttft_floor() {
    let d = h100();
    let attention = d.model().attention_flops_per_pair() * 1024.0 * 1025.0 / 2.0;
    close(attention, 0.69e12, 5e-3);
    close(d.prefill_flops(1024) - attention, 63.91e12, 1e-3);
    close(d.prefill_flops(1024), 64.60e12, 1e-3);
    let ttft = d.prefill_time(1024, 1);
    assert_eq!(ttft.bound, Bound::Compute);
    close(ttft.seconds, 65.3e-3, 1e-3);
    // Arithmetic intensity ≈ 986 FLOP per weight byte, far above the ridge point of 295.
    close(ttft.flops / d.weights_bytes_per_gpu(), 986.0, 1e-2);
    assert!(ttft.flops / ttft.bytes > 3.0 * d.gpu().ridge_point());
    close(d.gpu().ridge_point(), 295.3, 1e-3);
}

#[test]
fn decode_flops_kv_bytes_and_tpot_floor() {
    let d = h100();
    close(d.decode_flops_per_token(0), 63.97e9, 1e-3);
    close(d.decode_flops_per_token(1024), 65.3e9, 1e-3);
    close(d.decode_flops_per_token(2047), 66.7e9, 1e-3);
    assert_eq!(d.kv_bytes_per_token_per_gpu(), 262_144.0);
    let first = d.decode_time(1, 1024);
    let last = d.decode_time(1, 2047);
    assert_eq!(first.bound, Bound::Memory);
    close(first.seconds, 19.18e-3, 1e-3);
    close(last.seconds, 19.26e-3, 1e-3);
    // Compute needs only 0.066 ms: ~290× memory-bound.
    close(first.flops / d.peak_flops_per_gpu(), 0.066e-3, 1e-2);
    let e2e = d.prefill_time(1024, 1).seconds + 1023.0 * d.decode_time(1, 1535).seconds;
    close(e2e, 19.7, 5e-3);
}

#[test]
fn kv_capacity_with_80_gib_and_a_reserve() {
    // §2 assumes 80 GiB, utilisation 0.9 and a 2–4 GB activation reserve (the catalog's H100
    // reports 81,559 MiB, as nvidia-smi does; the worked example's 80 GiB is set here).
    let mut gpu = h100().gpu().clone();
    gpu.memory_bytes = 80 << 30;
    let d = Deployment::new(
        h100().model().clone(),
        gpu,
        1,
        Dtype::Bf16,
        Dtype::Bf16,
        Efficiency::ideal(),
    )
    .unwrap();
    let most = d.kv_capacity_tokens_with_reserve(0.9, 2e9).unwrap();
    let least = d.kv_capacity_tokens_with_reserve(0.9, 4e9).unwrap();
    close(most as f64, 37.3e3, 2e-3);
    close(least as f64, 29.7e3, 2e-3);
    assert_eq!((least / 16, most / 16), (1855, 2332));
    assert_eq!((least / 2048, most / 2048), (14, 18));
}

#[test]
fn batch_16_decode_is_still_memory_bound() {
    let d = h100();
    let step = d.decode_time(16, 1536);
    assert_eq!(step.bound, Bound::Memory);
    close(step.seconds, 21.0e-3, 2e-3);
    close(d.decode_throughput(16, 1536), 760.0, 5e-3);
}

#[test]
fn crossover_is_the_ridge_point_without_kv_and_absent_with_it() {
    let d = h100();
    close(d.crossover_batch_weights_only().unwrap(), 295.0, 2e-3);
    // GQA attention does 2·H/Hkv = 10 FLOPs per KV byte, far below the ridge: no crossover.
    assert_eq!(d.crossover_batch(1024), None);
}

#[test]
fn tp2_halves_times_and_adds_all_reduces() {
    let d = ideal("Qwen2.5-32B", "H100-SXM", 2);
    let decode = d.decode_time(1, 1024);
    close(decode.comm_seconds, 128.0 * 8e-6, 1e-9);
    close(decode.seconds - decode.comm_seconds, 9.6e-3, 5e-3);
    let prefill = d.prefill_time(1024, 1);
    close(prefill.comm_seconds, 3.0e-3, 1e-2);
    close(prefill.seconds - prefill.comm_seconds, 32.7e-3, 2e-3);
    let ar = d.allreduce(1024);
    assert_eq!(ar.count, 128);
    close(ar.bytes_per_gpu / 128.0, 1024.0 * 5120.0 * 2.0, 1e-12);
}

#[test]
fn other_gpus_table() {
    // (gpu, TTFT floor for 1k, TPOT floor), hardware.md §2 second table.
    let cases = [
        ("A100-80GB", 207e-3, 31.4e-3),
        ("H200", 65e-3, 13.3e-3),
        ("B200", 29e-3, 8.0e-3),
        ("MI300X", 49e-3, 12.1e-3),
        ("L40S", 178e-3, 74e-3),
    ];
    for (gpu, ttft, tpot) in cases {
        let d = ideal("Qwen2.5-32B", gpu, 1);
        close(d.prefill_time(1024, 1).seconds, ttft, 0.015);
        close(d.decode_time(1, 1024).seconds, tpot, 0.015);
    }
    let l40s = ideal("Qwen2.5-32B", "L40S", 1);
    let err = l40s.kv_capacity_tokens(0.9).unwrap_err().to_string();
    assert!(
        err.contains("does not fit on L40S") && err.contains("65.53 GB"),
        "{err}"
    );
}

#[test]
fn calibrated_h100_adds_gemm_efficiency_and_overheads_to_the_floors() {
    let d = h100().with_efficiency(Efficiency::calibrated(
        &Gpu::by_name("h100").unwrap(),
        Dtype::Bf16,
    ));
    let d = d.unwrap();
    let e = *d.efficiency();
    let overhead = 550e-6 + 64.0 * 56e-6 + 15e-6;
    // Prefill of 1024 tokens: the 63.91 TFLOP of matrix work at 0.62·1024/1163 of peak, the
    // 0.69 TFLOP of attention at 0.7 of peak, plus the overheads.
    let matrix = 63.91e12 / (989.4e12 * e.matmul_at(1024.0));
    close(
        d.prefill_time(1024, 1).seconds,
        matrix + 0.69e12 / (989.4e12 * 0.7) + overhead,
        2e-3,
    );
    // Decode at 88 % of bandwidth: the 19.18 ms floor / 0.88 plus the overheads.
    close(
        d.decode_time(1, 1024).seconds,
        19.18e-3 / 0.88 + overhead,
        2e-3,
    );
}

#[test]
fn chunked_prefill_costs_the_same_flops_plus_one_head_per_chunk() {
    let d = h100();
    let whole = d.step_time(
        &[PrefillWork {
            new_tokens: 2048,
            context_before: 0,
        }],
        &[],
    );
    let chunks: f64 = (0..4)
        .map(|i| {
            let chunk = PrefillWork {
                new_tokens: 512,
                context_before: 512 * i,
            };
            d.step_time(&[chunk], &[]).flops
        })
        .sum();
    let head = 2.0 * d.model().embedding_params() as f64;
    close(chunks, whole.flops + 3.0 * head, 1e-12);
    let m = ModelConfig::load("Qwen2.5-32B").unwrap();
    assert_eq!(d.model(), &m);
}
