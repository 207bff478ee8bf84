//! `exp selftest stats` (issue 5, "Proof that the statistics are calibrated"): prints both
//! rates with their intervals and exits 0 when calibrated; refuses fewer than 1000 trials.

mod common;

use common::run;

#[test]
fn selftest_stats_prints_both_rates_and_passes() {
    let out = run(["selftest", "stats"]).expect_code(0);
    assert!(
        out.stdout.contains(
            "false positives (A/A):     4.40 % (88 of 2000; 95 % CI [3.59 %, 5.39 %])  must be in [3.50 %, 6.50 %]  ok"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("92.5 % (1849 of 2000; 95 % CI [91.2 %, 93.5 %])  analytical power 94.1 % ± 5 points  ok"),
        "{}",
        out.stdout
    );
    // Issue 15: the paired design, rounds sharing a large workload effect.
    assert!(
        out.stdout.contains(
            "false positives (A/A, paired):     4.50 % (90 of 2000; 95 % CI [3.68 %, 5.50 %])  must be in [3.50 %, 6.50 %]  ok"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "detection (+1.00 % shift, paired):  53.5 % (1071 of 2000; 95 % CI [51.4 %, 55.7 %])  analytical power 51.0 % ± 5 points  ok"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn selftest_stats_needs_a_thousand_trials() {
    let out = run(["selftest", "stats", "--trials", "999"]).expect_code(2);
    assert!(
        out.stderr.contains("999 is not in 1000.."),
        "{}",
        out.stderr
    );
}

#[test]
fn selftest_fidelity_prints_every_case_and_the_summary_per_metric() {
    // Issue 13: published vs exp vs error per figure, median and worst per metric for fit and
    // held-out cases; the calibrated preset misses the worst-case goal for TTFT and TPOT
    // (InferenceX's B200 runs), so the exit code is 1.
    let out = run(["selftest", "fidelity"]).expect_code(1);
    for needle in [
        "against 47 published measurements (25 cases, 6 GPU types)",
        "tt143-qwen72b-h100x2-128               fit      TTFT ms          41.1",
        "TTFT       all             6.3%    69.7%   (22)",
        "TPOT       all             4.0%    21.4%   (19)",
        "throughput all             6.2%    17.1%   (6)",
        "goal (median ≤ 10 %, worst ≤ 20 % per metric over all cases): NOT met",
    ] {
        assert!(
            out.stdout.contains(needle),
            "missing {needle:?} in\n{}",
            out.stdout
        );
    }
    let ideal = run(["selftest", "fidelity", "--preset", "ideal"]).expect_code(1);
    assert!(ideal.stdout.contains("preset `ideal`"), "{}", ideal.stdout);
}

#[test]
fn selftest_steps_compares_a_measured_file_and_fails_on_a_broken_floor() {
    // Issue 13's GPU check: the file `scripts/gpu-step-times.py` writes. A batch-1 decode
    // of Llama-3.1-8B on an H100 cannot take less than 4.52 ms (15.14 GB at 3.35 TB/s).
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, decode_ms: f64| {
        let path = dir.path().join(name);
        let text = format!(
            r#"{{"schema": "exp-step-times/1", "complete": true, "device": "cuda",
 "device_name": "NVIDIA H100 80GB HBM3", "dtype": "bf16",
 "config": {{"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32,
  "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
  "intermediate_size": 14336, "vocab_size": 128256, "max_position_embeddings": 131072,
  "tie_word_embeddings": false, "torch_dtype": "bfloat16"}},
 "prefill": [], "decode": [{{"batch": 1, "context": 1024, "median_ms": {decode_ms}}}]}}"#
        );
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let ok = run(["selftest", "steps", &write("ok.json", 6.0)]).expect_code(0);
    assert!(
        ok.stdout
            .contains("decode b=1 c=1024              6.000       4.521"),
        "{}",
        ok.stdout
    );
    assert!(ok.stdout.contains("MBU"), "{}", ok.stdout);
    let fast = run(["selftest", "steps", &write("fast.json", 4.0)]).expect_code(1);
    assert!(
        fast.stdout
            .contains("⚠ 1 measurement(s) faster than exp's roofline floor (decode b=1 c=1024)"),
        "{}",
        fast.stdout
    );
    // An error about the file's content names the file.
    let cpu = write("cpu.json", 6.0);
    std::fs::write(
        &cpu,
        std::fs::read_to_string(&cpu)
            .unwrap()
            .replace("\"device\": \"cuda\"", "\"device\": \"cpu\""),
    )
    .unwrap();
    let refused = run(["selftest", "steps", &cpu]).expect_code(2);
    assert!(
        refused.stderr.contains(&format!(
            "error: {cpu}: measured on `cpu` (NVIDIA H100 80GB HBM3), not a GPU: pass --gpu NAME to compare with a GPU anyway"
        )),
        "{}",
        refused.stderr
    );
    let missing = run(["selftest", "steps", "no-such.json"]).expect_code(2);
    assert!(
        missing.stderr.contains("reading no-such.json"),
        "{}",
        missing.stderr
    );
}

#[test]
fn selftest_steps_reads_what_the_script_writes() {
    // tests/fixtures/steps/cpu-tiny.json is scripts/gpu-step-times.py's own output (a
    // two-layer model on the CPU), so a drift between the script's keys and exp's reader fails
    // here, not only in CI's stage that runs the script.
    let path = common::root().join("tests/fixtures/steps/cpu-tiny.json");
    let path = path.display().to_string();
    let out = run(["selftest", "steps", &path, "--gpu", "h100-sxm"]).expect_code(0);
    for needle in [
        "against 3 forward steps measured on cpu",
        "prefill 32 ",
        "decode b=1 c=64 ",
        "decode b=4 c=64 ",
        "every measurement is at or above exp's roofline floor",
    ] {
        assert!(
            out.stdout.contains(needle),
            "missing {needle:?} in\n{}",
            out.stdout
        );
    }
}
