//! The fit on synthetic data with known answers, the selection of requests that ran alone,
//! the predictions, the refusals, and the profile file.

use std::time::Duration;

use super::select::{MIN_TPOT_TOKENS, observe, ran_alone};
use super::*;
use crate::hw::{Gpu, ModelConfig};
use crate::record::{Chunk, FailureReason, Outcome, RequestRecord};

/// The truth synthetic data are drawn from; the GEMM half-efficiency size and the API
/// server's cost are the starting preset's (calibration keeps them: low-load prompts cannot
/// pin them apart from `matmul`).
fn known() -> Efficiency {
    Efficiency {
        matmul: 0.55,
        matmul_half_tokens: start().matmul_half_tokens,
        attention: 0.7,
        memory: 0.7,
        comm: 0.8,
        step_overhead_s: 200e-6,
        per_layer_overhead_s: 0.0,
        per_sequence_overhead_s: 0.0,
        per_request_overhead_s: start().per_request_overhead_s,
        per_prompt_token_overhead_s: start().per_prompt_token_overhead_s,
    }
}

fn deployment(eff: Efficiency) -> Deployment {
    let model = ModelConfig::load("llama-3.1-8b").unwrap();
    let gpu = Gpu::load("h100-sxm").unwrap();
    let (w, kv) = (model.dtype, model.default_kv_dtype());
    Deployment::new(model, gpu, 1, w, kv, eff).unwrap()
}

fn cell(start: Efficiency) -> CellModel {
    CellModel {
        deployment: deployment(start),
        chunk_budget: 8192,
    }
}

fn start() -> Efficiency {
    Efficiency::calibrated(&Gpu::load("h100-sxm").unwrap(), crate::hw::Dtype::Bf16)
}

/// Observations the simulator's model predicts at `truth`, each scaled by a deterministic
/// factor from `noise` (cycled), `per_prompt` requests per prompt length.
fn synthetic(
    truth: Efficiency,
    prompts: &[u32],
    per_prompt: usize,
    noise: &[f64],
) -> Vec<Observation> {
    let d = deployment(truth);
    let mut out = Vec::new();
    for &p in prompts {
        for k in 0..per_prompt {
            let n = noise[out.len() % noise.len()];
            let m = noise[(out.len() + 1) % noise.len()];
            let ttft = predict::ttft(&d, p, 8192).seconds * (1.0 + n);
            let tpot = predict::tpot(&d, p, 128).unwrap().seconds * (1.0 + m);
            out.push(Observation {
                cell: 0,
                round: 0,
                index: k as u64,
                prompt_tokens: p,
                output_tokens: 128,
                ttft: Duration::from_secs_f64(ttft),
                tpot: Some(Duration::from_secs_f64(tpot)),
            });
        }
    }
    out
}

fn value(c: &Calibration, name: &str) -> f64 {
    c.fitted.iter().find(|f| f.name == name).unwrap().value
}

fn assert_near(got: f64, want: f64, rel: f64, what: &str) {
    assert!(
        ((got - want) / want).abs() <= rel,
        "{what}: got {got}, want {want} ± {:.3} %",
        rel * 100.0
    );
}

fn rec(index: u64, sent: u64, chunks: &[u64], ok: bool) -> RequestRecord {
    RequestRecord {
        index,
        turn: 0,
        scheduled_ns: sent,
        sent_ns: Some(sent),
        first_sent_ns: None,
        no_done: false,
        text: None,
        counted: None,
        chunks: chunks
            .iter()
            .map(|&t| Chunk {
                at_ns: t,
                tokens: Some(1),
                reasoning: false,
            })
            .collect(),
        done_ns: chunks.last().copied(),
        input_tokens: None,
        output_tokens: ok.then_some(chunks.len() as u32),
        requested_input_tokens: Some(100),
        requested_output_tokens: Some(chunks.len() as u32),
        finish_reason: None,
        outcome: if ok {
            Outcome::Ok
        } else {
            Outcome::Failed {
                reason: FailureReason::Timeout,
                http_status: None,
                message: "slow".into(),
            }
        },
    }
}

#[test]
fn requests_that_only_touch_ran_alone_and_overlapping_ones_did_not() {
    let records = vec![
        rec(0, 0, &[10, 20], true),  // [0, 20]
        rec(1, 20, &[30, 40], true), // [20, 40]: touches 0 and 2 only
        rec(2, 40, &[50, 60], true), // [40, 60]
        rec(3, 100, &[150], true),   // [100, 150] overlaps 4
        rec(4, 120, &[130, 200], true),
        rec(5, 300, &[400], true), // contains 6 (a failure still counts as in flight)
        rec(6, 310, &[320], false),
        rec(7, 500, &[600], true), // alone
    ];
    let alone = ran_alone(&records);
    assert_eq!(
        alone,
        vec![true, true, true, false, false, false, false, true]
    );
}

#[test]
fn observe_keeps_successful_requests_that_ran_alone_with_their_latencies() {
    let tokens: Vec<u64> = (0..MIN_TPOT_TOKENS as u64)
        .map(|k| 1_000 + 100 * k)
        .collect();
    let mut long = rec(0, 0, &tokens, true);
    long.input_tokens = Some(120); // the server's count wins over the requested 100
    let short = rec(1, 10_000, &[10_500, 10_600], true); // too few tokens for a TPOT
    let failed = rec(2, 20_000, &[20_100], false);
    let (obs, counts) = observe(&[long, short, failed], 3, 7);
    assert_eq!(
        counts,
        Counts {
            successful: 2,
            alone: 2
        }
    );
    assert_eq!(obs.len(), 2);
    assert_eq!(
        (obs[0].cell, obs[0].round, obs[0].prompt_tokens),
        (3, 7, 120)
    );
    assert_eq!(obs[0].ttft, Duration::from_nanos(1_000));
    assert_eq!(obs[0].tpot, Some(Duration::from_nanos(100)));
    assert_eq!((obs[1].prompt_tokens, obs[1].tpot), (100, None));
}

#[test]
fn predictions_are_the_engine_steps_of_a_lone_request() {
    let d = deployment(known());
    // Unchunked: the API server's cost, then one prefill step, the roofline's own TTFT.
    let one = predict::ttft(&d, 4096, 8192);
    let server = d.efficiency().admission_seconds(4096);
    assert!(server > 0.0);
    assert!((one.seconds - (server + d.prefill_time(4096, 1).seconds)).abs() < 1e-15);
    assert!(one.compute_bound);
    // Chunked at 4096: two steps, the second attending to the first chunk's 4096 tokens.
    let second = d.step_time(
        &[PrefillWork {
            new_tokens: 4096,
            context_before: 4096,
        }],
        &[],
    );
    let two = predict::ttft(&d, 8192, 4096).seconds;
    let more_tokens = d.efficiency().admission_seconds(8192) - server;
    assert!((two - (one.seconds + more_tokens + second.seconds)).abs() < 1e-15);
    // Two outputs: one decode step at the prompt's context.
    let tpot = predict::tpot(&d, 1000, 2).unwrap();
    assert_eq!(tpot.seconds, d.decode_time(1, 1000).seconds);
    assert!(!tpot.compute_bound);
    assert_eq!(predict::tpot(&d, 1000, 1), None);
}

use crate::hw::PrefillWork;

#[test]
fn exact_synthetic_data_gives_back_the_factors() {
    let obs = synthetic(known(), &[1024, 4096, 16384], 4, &[0.0]);
    let c = calibrate(&[cell(start())], &obs).unwrap();
    assert_near(value(&c, "matmul"), 0.55, 1e-6, "matmul");
    assert_near(value(&c, "memory"), 0.7, 1e-6, "memory");
    // Durations are whole nanoseconds: 1e-4 of the overhead is 20 ns.
    assert_near(
        value(&c, "step_overhead_s"),
        200e-6,
        1e-4,
        "step_overhead_s",
    );
    assert!(
        c.ttft.rms < 1e-6 && c.tpot.rms < 1e-6,
        "{:?} {:?}",
        c.ttft,
        c.tpot
    );
    assert_eq!(c.matmul_compute_bound, obs.len());
    // Unfitted factors are the starting preset's; the per-layer overhead is folded away.
    assert_eq!(c.efficiency.attention, start().attention);
    assert_eq!(c.efficiency.per_layer_overhead_s, 0.0);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn noisy_synthetic_data_gives_factors_within_the_noise_and_reports_it() {
    // ±0.3 % on TPOT (a mean over 127 steps) and TTFT, in a fixed pattern.
    let noise = [0.003, -0.002, 0.001, -0.003, 0.002, -0.001, 0.0];
    let obs = synthetic(known(), &[1024, 4096, 16384], 14, &noise);
    let c = calibrate(&[cell(start())], &obs).unwrap();
    assert_near(value(&c, "matmul"), 0.55, 0.01, "matmul");
    assert_near(value(&c, "memory"), 0.7, 0.01, "memory");
    assert_near(
        value(&c, "step_overhead_s"),
        200e-6,
        0.05,
        "step_overhead_s",
    );
    assert!(c.ttft.rms > 0.001 && c.ttft.rms < 0.003, "{:?}", c.ttft);
    assert!(c.tpot.rms > 0.001 && c.tpot.rms < 0.003, "{:?}", c.tpot);
    let se = c
        .fitted
        .iter()
        .find(|f| f.name == "memory")
        .unwrap()
        .std_error;
    assert!(se.unwrap() > 0.0 && se.unwrap() < 0.01, "{se:?}");
}

#[test]
fn per_layer_overhead_comes_back_folded_into_the_step_overhead() {
    let truth = Efficiency {
        step_overhead_s: 126e-6,
        per_layer_overhead_s: 32e-6,
        ..known()
    };
    let obs = synthetic(truth, &[2048, 16384], 6, &[0.0]);
    let c = calibrate(&[cell(start())], &obs).unwrap();
    // Llama 3.1 8B has 32 layers: 126 + 32·32 = 1150 µs per step.
    assert_near(
        value(&c, "step_overhead_s"),
        1150e-6,
        1e-4,
        "step_overhead_s",
    );
    assert!(c.tpot.rms < 1e-8);
}

#[test]
fn too_little_low_load_data_is_refused_with_what_the_scenario_needs() {
    let few = synthetic(known(), &[1024, 4096], 4, &[0.0]);
    let err = calibrate(&[cell(start())], &few).unwrap_err();
    assert!(
        matches!(err, CalibrateError::TooFewAlone { alone: 8, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("concurrency = 1"), "{err}");

    let alike = synthetic(known(), &[2048, 3000], 6, &[0.0]);
    let err = calibrate(&[cell(start())], &alike).unwrap_err();
    assert_eq!(
        err,
        CalibrateError::PromptsTooAlike {
            shortest: 2048,
            longest: 3000
        }
    );
    assert!(err.to_string().contains("factor of 2"), "{err}");

    let mut no_tpot = synthetic(known(), &[1024, 4096], 6, &[0.0]);
    no_tpot.iter_mut().for_each(|o| o.tpot = None);
    let err = calibrate(&[cell(start())], &no_tpot).unwrap_err();
    assert!(err.to_string().contains("output_tokens"), "{err}");

    // 16- and 32-token prompts: prefill reads the weights for longer than it computes.
    let short = synthetic(known(), &[16, 32], 6, &[0.0]);
    let err = calibrate(&[cell(start())], &short).unwrap_err();
    let CalibrateError::PrefillNotComputeBound { longest, needed } = err else {
        panic!("{err}");
    };
    assert_eq!(longest, 32);
    assert!((33..=1024).contains(&needed), "{needed}");
}

#[test]
fn profile_renders_parses_back_and_is_read_by_the_simulator() {
    let profile = Profile {
        profile: Some(ProfileMeta {
            model: "llama-3.1-8b".into(),
            gpu: "h100-sxm".into(),
            tp: vec![1],
            fitted: vec!["memory".into()],
            std_errors: [("memory".to_string(), 0.001)].into_iter().collect(),
            cells: vec![ProfileCell {
                id: "prompt_tokens=1024".into(),
                requests: 40,
                prompt_tokens_min: 1024,
                prompt_tokens_max: 1024,
            }],
            ..ProfileMeta::default()
        }),
        efficiency: known(),
    };
    let text = profile.render();
    assert!(text.starts_with("# Simulator profile"), "{text}");
    assert_eq!(Profile::parse(&text).unwrap(), profile);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profile.toml");
    std::fs::write(&path, &text).unwrap();
    let sim = crate::scenario::model::SimConfig {
        preset: path.display().to_string(),
        noise_cv: 0.0,
        gpu_memory_utilization: 0.9,
        block_size: 16,
    };
    let gpu = Gpu::load("h100-sxm").unwrap();
    assert_eq!(
        crate::theory::efficiency(&sim, &gpu, crate::hw::Dtype::Bf16).unwrap(),
        known()
    );

    // Hand-written profiles need only [efficiency]; a typo is an error, not ignored.
    let bare = "[efficiency]\nmatmul = 0.5\nattention = 0.3\nmemory = 0.8\n\
                comm = 0.8\nstep_overhead_s = 1e-4\nper_layer_overhead_s = 0.0\n";
    assert!(Profile::parse(bare).unwrap().profile.is_none());
    let typo = format!("[profile]\nmodle = \"x\"\n{bare}");
    assert!(Profile::parse(&typo).unwrap_err().contains("modle"));
}

#[test]
fn report_says_what_was_used_fitted_kept_and_how_well_it_predicts() {
    let obs = synthetic(known(), &[1024, 16384], 6, &[0.0]);
    let mut c = calibrate(&[cell(start())], &obs).unwrap();
    c.warnings.push("a test warning".into());
    let cells = [ProfileCell {
        id: "prompt_tokens-1024".into(),
        requests: 12,
        prompt_tokens_min: 1024,
        prompt_tokens_max: 16384,
    }];
    let ctx = report::Context {
        model: "llama-3.1-8b",
        gpu: "h100-sxm",
        run_dir: "reports/x/1",
        counts: Counts {
            successful: 20,
            alone: 12,
        },
        cells: &cells,
        profile_path: "/abs/profile.toml",
    };
    let text = report::render(&c, &ctx);
    for needle in [
        "calibrated llama-3.1-8b on h100-sxm from reports/x/1",
        "used 12 of 20 successful requests",
        "prompt_tokens-1024: 12 requests, prompt tokens 1024–16384",
        "matmul               0.5500 ± ",
        "memory               0.7000 ± ",
        "step_overhead_s      200 µs ± ",
        "attention               0.700",
        "TTFT  RMS ",
        "warning: a test warning",
        "sim_preset = \"/abs/profile.toml\"",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}
