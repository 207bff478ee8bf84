//! The simulated engine on the analytical hardware model (`hw::Deployment` as the step cost):
//! exact step times for one request, and textbook behaviour of a real deployment.

use super::tests::{Fixed, open, poisson, work};
use super::*;
use crate::hw::{Deployment, Efficiency, Gpu, ModelConfig};
use crate::record::RequestRecord;

/// A catalog model on a catalog GPU, checkpoint dtypes, calibrated efficiency.
fn deployment(model: &str, gpu: &str, tp: u32) -> Deployment {
    let model = ModelConfig::load(model).unwrap();
    let gpu = Gpu::by_name(gpu).unwrap();
    let (w, kv) = (model.dtype, model.default_kv_dtype());
    let eff = Efficiency::calibrated(&gpu, w);
    Deployment::new(model, gpu, tp, w, kv, eff).unwrap()
}

/// vLLM-like defaults on the deployment's KV capacity at 90% memory, without noise.
fn params_for(d: &Deployment) -> EngineParams {
    let kv = d.kv_capacity_tokens(0.9).unwrap();
    EngineParams {
        noise_cv: 0.0,
        ..EngineParams::new(256, 8192, kv)
    }
}

fn ns(seconds: f64) -> u64 {
    ((seconds * 1e9).round() as u64).max(1)
}

fn ttft_ms(r: &RequestRecord) -> f64 {
    (r.chunks[0].at_ns - r.sent_ns.unwrap()) as f64 / 1e6
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn one_request_takes_exactly_the_api_server_and_the_modelled_step_times() {
    let d = deployment("Llama-3.1-8B", "H100-SXM", 1);
    let w = work(open(vec![0]), Fixed(512, 4), None);
    let r = run_repetition(&w, &params_for(&d), &d, 0).unwrap();
    let pf = [PrefillWork {
        new_tokens: 512,
        context_before: 0,
    }];
    let mut t = ns(d.efficiency().admission_seconds(512)) + ns(d.step_time(&pf, &[]).seconds);
    let mut want = vec![t];
    for ctx in 512..515 {
        t += ns(d.step_time(&[], &[ctx]).seconds);
        want.push(t);
    }
    let got: Vec<u64> = r.records[0].chunks.iter().map(|c| c.at_ns).collect();
    assert_eq!(got, want);
}

#[test]
fn llama_8b_on_h100_behaves_like_a_serving_engine() {
    let d = deployment("Llama-3.1-8B", "H100-SXM", 1);
    let p = params_for(&d);
    let single = run_repetition(&work(open(vec![0]), Fixed(1024, 128), None), &p, &d, 0).unwrap();
    let rec = &single.records[0];
    let tpot_ms = (rec.done_ns.unwrap() - rec.chunks[0].at_ns) as f64 / 127.0 / 1e6;
    // Decode reads 16 GB of weights at 3.35 TB/s: ≥ 4.8 ms a token; prefill of 1024 tokens is
    // 16.4 TFLOPs at ≤ 989 TFLOP/s: ≥ 17 ms.
    assert!((4.8..15.0).contains(&tpot_ms), "{tpot_ms}");
    assert!((17.0..100.0).contains(&ttft_ms(rec)), "{}", ttft_ms(rec));
    // Throughput follows the rate, then saturates while TTFT explodes.
    let at = |rate: f64| {
        let r = run_repetition(
            &work(open(poisson(rate, 1500, 3)), Fixed(1024, 128), None),
            &p,
            &d,
            0,
        )
        .unwrap();
        let thr = r.records.len() as f64 / (r.stats.window_ns as f64 / 1e9);
        (thr, mean(r.records.iter().map(ttft_ms)))
    };
    let (t5, ttft5) = at(5.0);
    let (t_over, ttft_over) = at(2_000.0);
    let (t_over2, _) = at(8_000.0);
    assert!((t5 / 5.0 - 1.0).abs() < 0.1, "{t5}");
    assert!(
        t_over < 1_000.0 && (t_over2 / t_over - 1.0).abs() < 0.1,
        "{t_over} {t_over2}"
    );
    assert!(ttft_over > 50.0 * ttft5, "{ttft5} ms → {ttft_over} ms");
}

#[test]
fn tensor_parallelism_shortens_steps_and_enlarges_the_kv_cache() {
    let one = deployment("Llama-3.1-70B", "H100-SXM", 4);
    let two = deployment("Llama-3.1-70B", "H100-SXM", 8);
    assert!(params_for(&two).kv_capacity_tokens > 2 * params_for(&one).kv_capacity_tokens);
    let w = work(open(vec![0]), Fixed(2048, 64), None);
    let e2e = |d: &Deployment| {
        let r = run_repetition(&w, &params_for(d), d, 0).unwrap();
        r.records[0].done_ns.unwrap()
    };
    assert!(e2e(&two) < e2e(&one));
}

#[test]
fn ttft_grows_with_prompt_length_on_the_hardware_model() {
    let d = deployment("Qwen2.5-7B", "A100-80GB", 1);
    let ttfts: Vec<f64> = [256, 2048, 16384]
        .iter()
        .map(|&prompt| {
            let w = work(open(vec![0]), Fixed(prompt, 8), None);
            ttft_ms(&run_repetition(&w, &params_for(&d), &d, 0).unwrap().records[0])
        })
        .collect();
    assert!(ttfts.windows(2).all(|w| w[1] > 2.0 * w[0]), "{ttfts:?}");
}

/// Simulated requests per wall-clock second on the hardware model (run with
/// `--release -- --ignored --nocapture`).
#[test]
#[ignore = "benchmark"]
fn bench_throughput_hw() {
    let d = deployment("Llama-3.1-8B", "H100-SXM", 1);
    let n = 200_000;
    let w = work(open(poisson(2_000.0, n, 1)), Fixed(512, 128), None);
    let p = EngineParams {
        noise_cv: EngineParams::DEFAULT_NOISE_CV,
        ..params_for(&d)
    };
    let t0 = std::time::Instant::now();
    let r = run_repetition(&w, &p, &d, 1).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(r.records.len(), n);
    println!(
        "hw cost: simulated {n} requests in {secs:.3} s: {:.0} requests/s",
        n as f64 / secs
    );
}
