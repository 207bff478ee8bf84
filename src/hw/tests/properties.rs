//! Grid properties of the roofline (no extra crate: loops over models × GPUs × tp × shapes).

use super::ideal;
use crate::hw::{Deployment, Efficiency, ModelConfig};

const MODELS: [&str; 5] = [
    "Llama-3.1-8B",
    "Qwen2.5-7B",
    "Qwen2.5-32B",
    "Mixtral-8x7B-v0.1",
    "Qwen3-30B-A3B",
];
const GPUS: [&str; 5] = ["H100-SXM", "A100-80GB", "L40S", "H20", "MI300X"];

/// Every (model, GPU, tp) deployment of the grid, ideal and calibrated.
fn grid() -> Vec<Deployment> {
    let mut out = Vec::new();
    for model in MODELS {
        for gpu in GPUS {
            for tp in [1u32, 2, 4] {
                if !ModelConfig::load(model)
                    .unwrap()
                    .num_heads
                    .is_multiple_of(u64::from(tp))
                {
                    continue;
                }
                let d = ideal(model, gpu, tp);
                let calibrated = d
                    .with_efficiency(Efficiency::calibrated(d.gpu(), d.weight_dtype()))
                    .unwrap();
                out.push(d);
                out.push(calibrated);
            }
        }
    }
    out
}

#[test]
fn more_prompt_tokens_never_lower_the_ttft_floor() {
    for d in grid() {
        let mut last = 0.0;
        for prompt in (1..=16_384).step_by(97) {
            let t = d.prefill_time(prompt, 1).seconds;
            assert!(
                t >= last,
                "{} on {}: TTFT fell at prompt {prompt}",
                d.model().name,
                d.gpu().name
            );
            last = t;
        }
    }
}

#[test]
fn more_batch_never_lowers_the_throughput_ceiling_until_memory_runs_out() {
    for d in grid() {
        for context in [128, 2048, 8192] {
            let Ok(max_batch) = d.max_batch(context, 0.9) else {
                continue;
            };
            let mut last = 0.0;
            for batch in 1..=max_batch.min(1024) as u32 {
                let tps = d.decode_throughput(batch, context);
                assert!(
                    tps >= last * (1.0 - 1e-12),
                    "{} on {} tp {}: throughput fell at batch {batch}, context {context}",
                    d.model().name,
                    d.gpu().name,
                    d.tp()
                );
                last = tps;
            }
        }
    }
}

#[test]
fn tensor_parallelism_lowers_per_gpu_weights_and_never_raises_kv_per_token() {
    for d in grid().into_iter().filter(|d| d.tp() == 1) {
        let mut last = (f64::INFINITY, f64::INFINITY);
        for tp in [1u32, 2, 4, 8]
            .into_iter()
            .filter(|&tp| d.model().num_heads.is_multiple_of(u64::from(tp)))
        {
            let t = ideal(&d.model().name, &d.gpu().name, tp);
            let now = (t.weights_bytes_per_gpu(), t.kv_bytes_per_token_per_gpu());
            assert!(
                now.0 < last.0 && now.1 <= last.1,
                "{} tp {tp}",
                d.model().name
            );
            last = now;
        }
    }
}

#[test]
fn step_time_is_monotone_in_every_kind_of_work() {
    for d in grid() {
        let base = d.step_time(&[], &[1000; 8]).seconds;
        assert!(d.step_time(&[], &[1000; 9]).seconds >= base);
        assert!(d.step_time(&[], &[1001; 8]).seconds >= base);
        let chunk = [crate::hw::PrefillWork {
            new_tokens: 256,
            context_before: 0,
        }];
        let later = [crate::hw::PrefillWork {
            new_tokens: 256,
            context_before: 4096,
        }];
        assert!(d.step_time(&later, &[]).seconds >= d.step_time(&chunk, &[]).seconds);
        assert!(d.step_time(&chunk, &[1000; 8]).seconds >= base);
    }
}

#[test]
fn crossover_batch_separates_memory_and_compute_bound_decode() {
    for d in grid() {
        let Some(b) = d.crossover_batch(0) else {
            continue;
        };
        let below = (b * 0.9).floor().max(1.0) as u32;
        let above = (b * 1.1).ceil() as u32;
        if f64::from(below) < b {
            assert_eq!(d.decode_time(below, 0).bound, crate::hw::Bound::Memory);
        }
        assert_eq!(d.decode_time(above, 0).bound, crate::hw::Bound::Compute);
    }
}
