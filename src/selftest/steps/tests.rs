//! Known answers for `exp selftest steps`.

use super::*;

/// Llama-3.1-8B's shape, as the script writes it.
const CONFIG: &str = r#"{"model_type": "llama", "architectures": ["LlamaForCausalLM"],
 "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
 "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 14336, "vocab_size": 128256,
 "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
 "tie_word_embeddings": false, "torch_dtype": "bfloat16"}"#;

fn file(prefill: &[(u32, f64)], decode: &[(u32, u32, f64)], smi: &[&str]) -> String {
    let prefill: Vec<String> = prefill
        .iter()
        .map(|(t, ms)| format!(r#"{{"tokens": {t}, "graphs": false, "median_ms": {ms}, "min_ms": {ms}, "samples_ms": [{ms}]}}"#))
        .collect();
    let decode: Vec<String> = decode
        .iter()
        .map(|(b, c, ms)| format!(r#"{{"batch": {b}, "context": {c}, "graphs": true, "median_ms": {ms}, "min_ms": {ms}, "samples_ms": [{ms}]}}"#))
        .collect();
    let smi: Vec<String> = smi
        .iter()
        .map(|l| format!(r#"{{"t_s": 1.0, "point": "p", "line": "{l}"}}"#))
        .collect();
    format!(
        r#"{{"schema": "exp-step-times/1", "complete": true, "device": "cuda",
 "device_name": "NVIDIA H100 80GB HBM3", "torch": "2.5.1", "cuda": "12.4", "dtype": "bf16",
 "warmup": 3, "iterations": 10, "config": {CONFIG},
 "prefill": [{}], "decode": [{}], "skipped": [],
 "nvidia_smi_query": "index,memory.used,memory.total,utilization.gpu,power.draw,total_energy_consumption,clocks.sm",
 "nvidia_smi": [{}], "wall_s": 100.0}}"#,
        prefill.join(","),
        decode.join(","),
        smi.join(",")
    )
}

/// The model's own times on an H100 for a prefill of 1024 and a decode step of 8 × 1024.
fn model_ms() -> (f64, f64, f64, f64) {
    let m = parse(&file(&[(1024, 1.0)], &[(8, 1024, 1.0)], &[]), "x").unwrap();
    let c = compare(&m, None, None).unwrap();
    (
        c.points[0].ideal_ms,
        c.points[0].predicted_ms,
        c.points[1].ideal_ms,
        c.points[1].predicted_ms,
    )
}

#[test]
fn errors_are_the_prediction_over_the_measurement() {
    // Measured 25 % slower than exp predicts: error = 1/1.25 − 1 = −20 % at both points.
    let (_, prefill, _, decode) = model_ms();
    let m = parse(
        &file(&[(1024, prefill * 1.25)], &[(8, 1024, decode * 1.25)], &[]),
        "x",
    )
    .unwrap();
    let c = compare(&m, None, None).unwrap();
    assert_eq!(c.gpu, "H100-SXM");
    for p in &c.points {
        assert!((p.error() + 0.2).abs() < 1e-9, "{p:?}");
        assert!(!p.below_floor());
    }
    let s = c.summary(true).unwrap();
    assert_eq!(s.count, 1);
    assert!((s.median - 0.2).abs() < 1e-9 && (s.worst - 0.2).abs() < 1e-9);
    let text = render(&c, "calibrated");
    assert!(text.contains("decode b=8 c=1024"), "{text}");
    assert!(
        text.contains("every measurement is at or above exp's roofline floor"),
        "{text}"
    );
}

#[test]
fn a_batch_one_decode_at_the_floor_moves_every_byte_at_peak_bandwidth() {
    // At batch 1 the `ideal` step is memory-bound and has no overheads, so a measurement equal
    // to it has MBU exactly 1.
    let m = parse(&file(&[], &[(1, 1024, 1.0)], &[]), "x").unwrap();
    let floor = compare(&m, None, None).unwrap().points[0].ideal_ms;
    // Llama-3.1-8B reads every weight but the input embedding: 32 layers × 218.11 M
    // (attention 41.94 M, MLP 176.16 M, norms) + lm_head 525.34 M + final norm = 7504.9 M
    // parameters, 15.010 GB in BF16; and 1025 tokens × 128 KiB of KV cache, 0.134 GB.
    // 15.144 GB at 3.35 TB/s = 4.5206 ms.
    assert!((floor - 4.5206).abs() < 0.002, "{floor}");
    let m = parse(&file(&[], &[(1, 1024, floor)], &[]), "x").unwrap();
    let p = &compare(&m, None, None).unwrap().points[0];
    assert!((p.mbu - 1.0).abs() < 1e-9, "{p:?}");
    assert!(p.mfu < 0.01, "{p:?}");
}

#[test]
fn a_measurement_below_the_floor_is_flagged_by_name() {
    let (ideal_prefill, _, _, _) = model_ms();
    let m = parse(&file(&[(1024, ideal_prefill * 0.9)], &[], &[]), "x").unwrap();
    let c = compare(&m, None, None).unwrap();
    assert_eq!(c.below_floor().len(), 1);
    let text = render(&c, "calibrated");
    assert!(
        text.contains("⚠ 1 measurement(s) faster than exp's roofline floor (prefill 1024): the catalog's peak FLOP/s or bandwidth for H100-SXM is too low, or the timing is wrong"),
        "{text}"
    );
}

#[test]
fn nvidia_smi_lines_are_read_by_the_gpu_probe_parser() {
    let m = parse(
        &file(
            &[(512, 50.0)],
            &[],
            &[
                "0, 20480, 81559, 100, 512.3, 123456789, 1980",
                "0, 30720, 81559, 99, 650.0, 123456999, 1755",
                "0, 10240, 81559, 0, [N/A], 123457000, 1980",
            ],
        ),
        "x",
    )
    .unwrap();
    let s = compare(&m, None, None).unwrap().smi.unwrap();
    assert_eq!(s.readings, 3);
    assert_eq!(s.max_memory_used, Some(30720.0 * 1024.0 * 1024.0));
    assert_eq!(s.max_power_w, Some(650.0));
    assert_eq!(s.median_sm_clock_hz, Some(1980e6));
    let text = render(&compare(&m, None, None).unwrap(), "calibrated");
    assert!(
        text.contains("nvidia-smi (3 readings, exp's GPU probe): memory used up to 30.0 GiB of 79.6 GiB, power up to 650 W, SM clock median 1980 MHz"),
        "{text}"
    );
}

#[test]
fn bad_files_say_what_is_wrong() {
    let good = file(&[(512, 50.0)], &[], &[]);
    let err = |text: &str| parse(text, "st.json").unwrap_err().to_string();
    assert_eq!(
        err(&good.replace("exp-step-times/1", "exp-step-times/9")),
        "st.json: `schema` is \"exp-step-times/9\", exp reads \"exp-step-times/1\" (written by scripts/gpu-step-times.py)"
    );
    assert_eq!(
        err(&good.replace("\"median_ms\": 50", "\"median_ms\": 0")),
        "st.json: point `prefill 512`: `median_ms` is 0, not a time > 0; the file is not as scripts/gpu-step-times.py writes it: measure again"
    );
    assert_eq!(
        err(&good.replace("\"tokens\": 512", "\"tokens\": 0")),
        "st.json: point `prefill 0`: `tokens` is 0; the file is not as scripts/gpu-step-times.py writes it: measure again"
    );
    assert_eq!(
        err(&file(&[], &[], &[])),
        "st.json: no point was measured (`prefill` and `decode` are empty)"
    );
    assert!(err("{").starts_with("st.json: not a step-times file: "));
    let cpu = parse(
        &good.replace("\"device\": \"cuda\"", "\"device\": \"cpu\""),
        "x",
    )
    .unwrap();
    assert_eq!(
        compare(&cpu, None, None).unwrap_err().to_string(),
        "measured on `cpu` (NVIDIA H100 80GB HBM3), not a GPU: pass --gpu NAME to compare with a GPU anyway"
    );
    assert!(compare(&cpu, Some("h200"), None).is_ok());
    let odd = parse(
        &good.replace("NVIDIA H100 80GB HBM3", "NVIDIA H100 NVL"),
        "x",
    )
    .unwrap();
    assert_eq!(
        compare(&odd, None, None).unwrap_err().to_string(),
        "the device `NVIDIA H100 NVL` is not in exp's GPU catalog: pass --gpu NAME (a catalog name or a GPU TOML file)"
    );
}

#[test]
fn a_point_that_failed_in_the_script_fails_the_check_and_is_named() {
    let text = file(&[(512, 50.0)], &[], &[]).replace(
        "\"skipped\": []",
        r#""skipped": [{"kind": "decode", "batch": 8, "context": 1024, "why": "error: CUDA error: operation not permitted when stream is capturing"},
                        {"kind": "decode", "batch": 256, "context": 8192, "why": "KV cache 68.7 GB + activations 0.1 GB > 90% of free 61.2 GB"}]"#,
    );
    let c = compare(&parse(&text, "x").unwrap(), None, None).unwrap();
    assert!(!c.passed());
    assert_eq!(c.skipped, 1);
    assert_eq!(c.failed.len(), 1);
    let out = render(&c, "calibrated");
    assert!(
        out.contains("1 point(s) skipped by the script for memory or time"),
        "{out}"
    );
    assert!(
        out.contains("⚠ 1 point(s) failed in the script, so they are not compared: decode b=8 c=1024 (error: CUDA error: operation not permitted when stream is capturing)"),
        "{out}"
    );
    // Memory and time skips alone pass.
    let fine = text.replace("\"why\": \"error: ", "\"why\": \"budget ");
    assert!(
        compare(&parse(&fine, "x").unwrap(), None, None)
            .unwrap()
            .passed()
    );
}

#[test]
fn an_unreadable_nvidia_smi_line_is_left_out_not_fatal() {
    let m = parse(
        &file(
            &[(512, 50.0)],
            &[],
            &[
                "0, 20480, 81559, 100, 512.3, 123456789, 1980",
                "Failed to initialize NVML: Unknown Error",
            ],
        ),
        "x",
    )
    .unwrap();
    let c = compare(&m, None, None).unwrap();
    let s = c.smi.as_ref().unwrap();
    assert_eq!(s.readings, 1);
    assert_eq!(s.unreadable.0, 1);
    let out = render(&c, "calibrated");
    assert!(
        out.contains("1 nvidia-smi line(s) unreadable, left out: nvidia-smi printed 1 fields where 7 were asked for: \"Failed to initialize NVML: Unknown Error\""),
        "{out}"
    );
}
