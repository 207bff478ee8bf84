//! Issue 17 on vLLM: quality beside speed. `scenarios/vllm_cpu_quality.toml` as checked in:
//! exp launches `vllm serve` for the tiny model at `--max-num-seqs` 1 and 4 and for its
//! perturbed copy at 4, and after each repetition's load scores the generated corpus
//! (perplexity from `echo` + `logprobs`) and answers passkey items on the same server.

use super::*;

const QUALITY_SCENARIO: &str = "scenarios/vllm_cpu_quality.toml";
/// From the scenario.
const QUALITY_REPETITIONS: usize = 5;
const DOCUMENTS: usize = 20;
const TRIALS: usize = 50;
/// The tiny models' vocabulary: a random model's perplexity sits near it.
const VOCABULARY: f64 = 2048.0;

#[test]
#[ignore = "needs vLLM and the tiny models: scripts/install-vllm.sh, then cargo test --release --test vllm -- --ignored"]
fn vllm_quality_holds_across_batching_and_regresses_on_a_perturbed_model() {
    let Some(engine) = engine() else { return };
    let before = vllm_pids();
    let out = tempfile::tempdir().unwrap();
    let mut cmd = common::exp(["run", QUALITY_SCENARIO, "--no-progress", "--out"]);
    cmd.arg(out.path()).args(engine.quality_sets());
    let started = Instant::now();
    let run = spawn(cmd).wait_within(RUN_DEADLINE);
    let took = started.elapsed();
    eprintln!("exp run took {took:.0?}\n{}", run.stdout);
    let left: Vec<u32> = vllm_pids().difference(&before).copied().collect();
    assert!(
        left.is_empty(),
        "vLLM processes left running: pids {left:?}"
    );
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let dir = run.run_dir();
    let summary = json(&dir.join("summary.json"));
    let cells = common::cells_by_label(&summary);
    assert_eq!(
        cells.len(),
        3,
        "tiny at 1 and 4, perturbed at 4: {cells:#?}"
    );
    assert_every_repetition_scored(&dir, &summary);
    let figure = |label: &str, metric: &str| {
        let cell = (cells.iter())
            .find(|(l, _)| label.split(' ').all(|part| l.contains(part)))
            .unwrap_or_else(|| panic!("no cell {label}: {:?}", cells.keys()));
        cell.1["metrics"][metric]["mean"]
            .as_f64()
            .unwrap_or_else(|| panic!("{label}: no mean {metric}"))
    };
    for label in [
        "model=tiny max_num_seqs=1",
        "model=tiny max_num_seqs=4",
        "model=perturbed max_num_seqs=4",
    ] {
        eprintln!(
            "{label}: ppl {:.0}, retrieval accuracy {:.3}, output throughput {:.0} tok/s",
            figure(label, "ppl"),
            figure(label, "retrieval_accuracy"),
            figure(label, "output_throughput"),
        );
    }
    let tiny = figure("model=tiny max_num_seqs=4", "ppl");
    assert!(
        (100.0..10.0 * VOCABULARY).contains(&tiny),
        "the tiny random model's perplexity {tiny} is not near its vocabulary ({VOCABULARY})"
    );
    let mut failures = String::new();
    for metric in ["ppl", "retrieval_accuracy"] {
        let v = verdict(&summary, "max_num_seqs", metric, "model=tiny");
        eprintln!("tiny, max_num_seqs 1 → 4, {metric}: {v}");
        if v != "no_change" && v != "within_noise" {
            let _ = writeln!(failures, "batching changed {metric}: {v}");
        }
    }
    let v = verdict(&summary, "model", "ppl", "max_num_seqs=4");
    eprintln!("max_num_seqs 4, tiny → perturbed, ppl: {v}");
    if v != "regression" {
        let _ = writeln!(
            failures,
            "the perturbed model's perplexity is not a regression: {v}"
        );
    }
    let report = text(&dir.join("report.md"));
    if !report.contains("## Quality") {
        let _ = writeln!(failures, "the report has no Quality section");
    }
    assert!(failures.is_empty(), "{failures}\n{report}");
    eprintln!("vllm_cpu_quality: {took:.0?} in all");
}

impl Engine {
    /// The `--set` overrides that point the quality scenario at this install.
    fn quality_sets(&self) -> Vec<String> {
        let set = |kv: String| ["--set".to_string(), kv];
        [
            set(format!("vars.fixed.vllm={}", self.vllm.display())),
            set(format!("vars.fixed.tiny_path={}", self.model.display())),
            set(format!(
                "vars.fixed.perturbed_path={}",
                self.perturbed.display()
            )),
            set(format!("target.tokenizer={}", self.tokenizer().display())),
            // CI time: 5 rounds settle the verdicts asserted here (the file says 10).
            set("experiment.repetitions=5".into()),
        ]
        .concat()
    }
}

/// Every repetition of every cell has both quality metrics, and its quality file one line per
/// document and per retrieval item, none failed.
fn assert_every_repetition_scored(dir: &Path, summary: &serde_json::Value) {
    let reps = summary["repetitions"].as_array().unwrap();
    assert_eq!(reps.len(), 3 * QUALITY_REPETITIONS);
    for rep in reps {
        let cell = rep["cell_id"].as_str().unwrap();
        let round = rep["round"].as_u64().unwrap() as u32;
        let values = &rep["summary"]["values"];
        for metric in ["ppl", "retrieval_accuracy"] {
            assert!(
                values[metric].as_f64().is_some(),
                "{cell} round {round}: no {metric}: {values}"
            );
        }
        let path = common::rep_stem(dir, cell, round).with_extension("quality.jsonl");
        let mut kinds = BTreeMap::<String, usize>::new();
        for line in text(&path).lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            *kinds.entry(v["kind"].as_str().unwrap().into()).or_default() += 1;
        }
        let want = BTreeMap::from([
            ("perplexity".into(), DOCUMENTS),
            ("retrieval".into(), TRIALS),
        ]);
        assert_eq!(kinds, want, "{}", path.display());
    }
}

/// Issue 17, `when = "under-load"` on vLLM: 40 % of a closed loop's 120 arrivals are quality
/// items instead of measured requests, on the same server while it serves the rest. The items
/// never reach the request records (measured requests + quality arrivals = arrivals), batching
/// still leaves perplexity unchanged, and the perturbed model still regresses it.
#[test]
#[ignore = "needs vLLM and the tiny models: scripts/install-vllm.sh, then cargo test --release --test vllm -- --ignored"]
fn vllm_quality_under_load_is_scored_beside_the_load_and_kept_out_of_it() {
    const REPETITIONS: usize = 3;
    const ARRIVALS: u64 = 120;
    let Some(engine) = engine() else { return };
    let before = vllm_pids();
    let out = tempfile::tempdir().unwrap();
    let mut cmd = common::exp(["run", QUALITY_SCENARIO, "--no-progress", "--out"]);
    cmd.arg(out.path()).args(engine.quality_sets());
    for set in [
        format!("experiment.repetitions={REPETITIONS}"),
        "quality.when=\"under-load\"".into(),
        "quality.share=0.4".into(),
        format!("vars.fixed.requests={ARRIVALS}"),
        "vars.fixed.concurrency=4".into(),
    ] {
        cmd.args(["--set", &set]);
    }
    let started = Instant::now();
    let run = spawn(cmd).wait_within(RUN_DEADLINE);
    let took = started.elapsed();
    eprintln!("exp run took {took:.0?}\n{}", run.stdout);
    let left: Vec<u32> = vllm_pids().difference(&before).copied().collect();
    assert!(
        left.is_empty(),
        "vLLM processes left running: pids {left:?}"
    );
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let dir = run.run_dir();
    let summary = json(&dir.join("summary.json"));
    let reps = summary["repetitions"].as_array().unwrap();
    assert_eq!(reps.len(), 3 * REPETITIONS);
    for rep in reps {
        let cell = rep["cell_id"].as_str().unwrap();
        let round = rep["round"].as_u64().unwrap() as u32;
        let path = common::rep_stem(&dir, cell, round).with_extension("quality.jsonl");
        let lines: Vec<serde_json::Value> = (text(&path).lines())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mix = (lines.iter())
            .find(|v| v["kind"] == "mix")
            .unwrap_or_else(|| panic!("{}: no mix line", path.display()));
        assert_eq!(mix["arrivals"].as_u64(), Some(ARRIVALS), "{mix}");
        let quality = mix["quality_arrivals"].as_u64().unwrap();
        let measured = rep["summary"]["values"]["requests"].as_f64().unwrap() as u64;
        assert_eq!(
            measured + quality,
            ARRIVALS,
            "{cell} round {round}: {measured} measured requests + {quality} quality arrivals"
        );
        let scored = (lines.iter())
            .filter(|v| v["kind"] == "perplexity" || v["kind"] == "retrieval")
            .filter(|v| v["under_load"]["latency_ns"].as_u64().is_some())
            .count();
        assert!(scored > 0, "{}: no item scored under load", path.display());
        assert!(
            rep["summary"]["values"]["ppl"].as_f64().is_some(),
            "{cell} round {round}: no ppl under load"
        );
    }
    let mut failures = String::new();
    let v = verdict(&summary, "max_num_seqs", "ppl", "model=tiny");
    eprintln!("under load, tiny, max_num_seqs 1 → 4, ppl: {v}");
    if v != "no_change" && v != "within_noise" {
        let _ = writeln!(failures, "batching changed ppl under load: {v}");
    }
    let v = verdict(&summary, "model", "ppl", "max_num_seqs=4");
    eprintln!("under load, max_num_seqs 4, tiny → perturbed, ppl: {v}");
    if v != "regression" {
        let _ = writeln!(failures, "the perturbed model is not a regression: {v}");
    }
    let report = text(&dir.join("report.md"));
    if !report.contains("Measured under load") {
        let _ = writeln!(failures, "the report does not say the items ran under load");
    }
    assert!(failures.is_empty(), "{failures}\n{report}");
}
