//! The real-engine stage (issue 4): `exp` launches llama.cpp's `llama-server` on CPU once per
//! server configuration and round, drives it, tears it down, and the statistics see what a
//! continuous-batching engine must show. Runs `scenarios/llamacpp_parallel.toml` as checked in.
//! Issue 17: a `[quality]` pass against llama-server answers retrieval items and reports
//! perplexity as unsupported, with the reason (llama-server does not echo prompt log-probs).
//!
//! Ignored by default (README's `cargo test` stays fast and offline). `.ci/run` installs the
//! engine with `scripts/install-llamacpp.sh` and runs
//! `EXP_LLAMACPP_REQUIRED=1 cargo test --release --test llamacpp -- --ignored --test-threads 1`; with
//! `EXP_LLAMACPP_REQUIRED=1` a missing server or model FAILS the test instead of skipping it.
//! `EXP_LLAMA_SERVER` and `EXP_TINY_MODEL` override the cached paths the script prints.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{json, spawn, text};

/// The whole scenario takes a few minutes on 2 busy cores; this only stops a hung run.
const RUN_DEADLINE: Duration = Duration::from_secs(20 * 60);
const SCENARIO: &str = "scenarios/llamacpp_parallel.toml";
/// From the scenario: every cell's requested output length and requests per repetition.
const OUTPUT_TOKENS: u64 = 32;
const REQUESTS: usize = 96;
const REPETITIONS: usize = 20;
/// The cell with an invalid `--cache-type-k`, the only one that must fail.
const BROKEN: &str = "cache_type_k=no-such-type";

/// The installed engine: the server binary and the tiny model.
struct Engine {
    server: PathBuf,
    model: PathBuf,
}

#[test]
#[ignore = "needs llama-server and a tiny model: scripts/install-llamacpp.sh, then cargo test --release --test llamacpp -- --ignored"]
fn llama_server_slots_raise_throughput_and_broken_cell_fails_alone() {
    let Some(engine) = engine() else { return };
    let before = server_pids(&engine.server);
    let out = tempfile::tempdir().unwrap();
    let mut cmd = common::exp(["run", SCENARIO, "--no-progress", "--out"]);
    cmd.arg(out.path())
        .arg("--set")
        .arg(format!(
            "vars.fixed.llama_server={}",
            engine.server.display()
        ))
        .arg("--set")
        .arg(format!("vars.fixed.model_path={}", engine.model.display()));
    let started = std::time::Instant::now();
    let run = spawn(cmd).wait_within(RUN_DEADLINE);
    eprintln!("exp run took {:.0?}\n{}", started.elapsed(), run.stdout);
    let left: Vec<u32> = (server_pids(&engine.server).into_iter())
        .filter(|p| !before.contains(p))
        .collect();
    assert!(left.is_empty(), "llama-server left running: pids {left:?}");
    let dir = run.run_dir();
    let summary = json(&dir.join("summary.json"));
    let cells = common::cells_by_label(&summary);
    // The broken cell fails alone: the others are measured, and the run ends `partial`
    // with exit code 3 (issue 12: a run with failed repetitions never exits 0).
    assert_eq!(
        run.code(),
        3,
        "a broken cell must fail alone, leaving the run partial:\n{}",
        run.stderr
    );
    assert_eq!(json(&dir.join("manifest.json"))["status"], "partial");
    assert_broken_cell_failed_alone(&cells, &run.stderr, &dir);
    assert_launches(&dir);
    assert_token_counts(&dir, &cells);
    assert_probes(&summary);
    assert_slots_raise_throughput(&summary, &cells);
}

/// Finds the engine, or says why not: a failure when `EXP_LLAMACPP_REQUIRED=1`.
fn engine() -> Option<Engine> {
    let cache = common::engine_cache("scripts/install-llamacpp.sh", "llama.cpp");
    let path = |var: &str, default: PathBuf| std::env::var_os(var).map_or(default, PathBuf::from);
    let engine = Engine {
        server: path("EXP_LLAMA_SERVER", cache.join("bin/llama-server")),
        model: path("EXP_TINY_MODEL", cache.join("models/tiny-llama.gguf")),
    };
    let missing: Vec<String> = [&engine.server, &engine.model]
        .into_iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return Some(engine);
    }
    let why = format!(
        "missing {} (run scripts/install-llamacpp.sh, or set EXP_LLAMA_SERVER and EXP_TINY_MODEL)",
        missing.join(" and ")
    );
    let required = std::env::var("EXP_LLAMACPP_REQUIRED").is_ok_and(|v| v == "1");
    assert!(!required, "EXP_LLAMACPP_REQUIRED=1 but {why}");
    eprintln!("skipped: {why}");
    None
}

/// Live processes running this binary, found by scanning /proc (argv[0] or the executable).
fn server_pids(server: &Path) -> Vec<u32> {
    let server = server
        .canonicalize()
        .unwrap_or_else(|_| server.to_path_buf());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
            let argv0 = std::fs::read(format!("/proc/{pid}/cmdline")).ok().map(|c| {
                let first = c.split(|&b| b == 0).next().unwrap_or_default().to_vec();
                PathBuf::from(String::from_utf8_lossy(&first).into_owned())
            });
            exe.as_deref() == Some(&server) || argv0.as_deref() == Some(&server)
        })
        .collect()
}

/// The invalid flag fails its cell with the server's own words; every other cell finished
/// all its repetitions.
fn assert_broken_cell_failed_alone(
    cells: &BTreeMap<String, serde_json::Value>,
    stderr: &str,
    dir: &Path,
) {
    assert_eq!(
        cells.len(),
        5,
        "4 working cells and the broken one: {cells:#?}"
    );
    for (label, cell) in cells {
        let n = cell["n"].as_u64().unwrap() as usize;
        if label.contains(BROKEN) {
            assert_eq!(n, 0, "the broken cell {label} finished repetitions");
        } else {
            assert_eq!(
                n, REPETITIONS,
                "cell {label} did not finish every repetition"
            );
        }
    }
    let report = text(&dir.join("report.md"));
    let said = format!("{stderr}\n{report}");
    assert!(
        said.contains("no-such-type"),
        "neither stderr nor the report names the broken cell's flag value:\n{said}"
    );
}

/// One launch per server configuration and round: the broken configuration failed before it
/// was ready, with llama-server's own complaint in the failure; every other launch became
/// ready, served its repetition, and exited on SIGTERM (not killed after the grace period).
fn assert_launches(dir: &Path) {
    let manifest = json(&dir.join("manifest.json"));
    let launches = manifest["launches"]
        .as_array()
        .expect("manifest lists launches");
    assert_eq!(
        launches.len(),
        5 * REPETITIONS,
        "5 configurations × {REPETITIONS} rounds"
    );
    for l in launches {
        let command: Vec<&str> = (l["command"].as_array().unwrap().iter())
            .map(|a| a.as_str().unwrap())
            .collect();
        let what = format!("launch {} ({})", l["index"], command.join(" "));
        let pid = l["pid"]
            .as_u64()
            .unwrap_or_else(|| panic!("{what}: no pid"));
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists() || !is_server(pid),
            "{what}: pid {pid} still runs"
        );
        assert!(!l["stopped"].is_null(), "{what}: never stopped");
        if command.contains(&"no-such-type") {
            let failure = l["failure"].as_str().unwrap_or_default();
            assert!(l["ready_seconds"].is_null(), "{what}: became ready");
            assert!(
                failure.contains("before it was ready")
                    && failure.contains("Unsupported cache type: no-such-type"),
                "{what}: unclear failure: {failure}"
            );
        } else {
            assert!(l["failure"].is_null(), "{what}: failed: {}", l["failure"]);
            assert!(l["ready_seconds"].as_f64().is_some(), "{what}: never ready");
            assert_eq!(l["killed"], false, "{what}: ignored SIGTERM");
            assert_eq!(l["repetitions"].as_array().unwrap().len(), 1, "{what}");
            assert!(
                l["engine_version"].as_str().is_some_and(|v| !v.is_empty()),
                "{what}: no engine version from the server"
            );
        }
    }
}

/// Whether a live pid is a llama-server (its argv[0] ends so).
fn is_server(pid: u64) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        let first = c.split(|&b| b == 0).next().unwrap_or_default();
        first.ends_with(b"llama-server")
    })
}

/// The host probe saw the server's CPU and the `/metrics` probe its running requests, in
/// every repetition of the working cells.
fn assert_probes(summary: &serde_json::Value) {
    for rep in summary["repetitions"].as_array().unwrap() {
        let values = &rep["summary"]["values"];
        let cell = rep["cell_id"].as_str().unwrap();
        for metric in ["server_cpu", "server_running", "client_cpu"] {
            assert!(
                values[metric].as_f64().is_some(),
                "{cell} round {}: no {metric} from the probes",
                rep["round"]
            );
        }
    }
}

/// Every measured request of the working cells succeeded, and the server's own `usage` says it
/// generated exactly the requested 32 tokens (`ignore_eos`) for a prompt it counted.
fn assert_token_counts(dir: &Path, cells: &BTreeMap<String, serde_json::Value>) {
    for (label, cell) in cells.iter().filter(|(l, _)| !l.contains(BROKEN)) {
        let id = cell["id"].as_str().unwrap();
        // Every round's records file (a missing one fails here).
        for round in 0..REPETITIONS as u32 {
            let records = common::records(dir, id, round);
            assert_eq!(records.len(), REQUESTS, "{label}, round {round}");
            for r in &records {
                let where_ = format!("{label}, round {round}: {r}");
                assert_eq!(r["outcome"]["status"], "ok", "{where_}");
                assert_eq!(r["requested_output_tokens"], OUTPUT_TOKENS, "{where_}");
                assert_eq!(r["output_tokens"], OUTPUT_TOKENS, "usage: {where_}");
                assert!(r["input_tokens"].as_u64().unwrap_or(0) > 0, "{where_}");
            }
        }
    }
}

/// At 4 concurrent clients, 4 slots batch 4 sequences per decode step: output throughput is
/// significantly higher than with 1 slot (the report's verdict: an improvement beyond τ), and
/// each step does more work, so the time per output token does not fall.
fn assert_slots_raise_throughput(
    summary: &serde_json::Value,
    cells: &BTreeMap<String, serde_json::Value>,
) {
    let rows: Vec<&serde_json::Value> = summary["comparisons"]
        .as_array()
        .expect("summary.json has comparisons")
        .iter()
        .filter(|r| r["factor"] == "parallel" && r["kind"] == "adjacent")
        .collect();
    for ctx in [512, 2048] {
        let at = format!("cache_type_k=f16 · ctx_size={ctx}");
        let mean = |parallel: u32, metric: &str| {
            let label = format!("{at} · parallel={parallel}");
            cells[&label]["metrics"][metric]["mean"].as_f64().unwrap()
        };
        let verdict = |metric: &str| {
            let row = (rows.iter())
                .find(|r| r["metric"] == metric && r["at"].as_str().unwrap().contains(&at))
                .unwrap_or_else(|| panic!("no parallel comparison of {metric} at {at}"));
            row["verdict"].as_str().unwrap().to_string()
        };
        let (t1, t4) = (mean(1, "output_throughput"), mean(4, "output_throughput"));
        let (p1, p4) = (mean(1, "tpot.mean"), mean(4, "tpot.mean"));
        eprintln!(
            "{at}: output throughput {t1:.0} → {t4:.0} tok/s ({}), mean TPOT {:.2} → {:.2} ms ({})",
            verdict("output_throughput"),
            p1 * 1e3,
            p4 * 1e3,
            verdict("tpot.mean")
        );
        let throughput = verdict("output_throughput");
        assert!(
            ["improvement", "possible_improvement"].contains(&throughput.as_str()),
            "{at}: 4 slots did not raise output throughput significantly ({t1:.0} → {t4:.0} tok/s): {throughput}"
        );
        let tpot = verdict("tpot.mean");
        assert!(
            !tpot.contains("improvement"),
            "{at}: mean TPOT fell significantly with 4 slots ({p1} → {p4} s): {tpot}"
        );
    }
}

/// Quality beside speed against llama-server (issue 17), one slot, a few rounds.
const QUALITY_REPETITIONS: usize = 3;
const QUALITY_TRIALS: usize = 12;

/// Issue 17 on llama.cpp: exp's `[quality]` pass against a llama-server it launches. Retrieval
/// runs through (every item answered and scored; a random model's accuracy is near 0), and
/// perplexity is reported as not measured, with the reason: llama-server ignores `echo` and
/// returns the generated token's log-prob alone (in `logprobs.content`), so it cannot score a
/// prompt. Asked once per server, never turned into a number.
#[test]
#[ignore = "needs llama-server and a tiny model: scripts/install-llamacpp.sh, then cargo test --release --test llamacpp -- --ignored"]
fn llama_server_answers_retrieval_and_cannot_score_prompts() {
    let Some(engine) = engine() else { return };
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("llamacpp_quality.toml");
    std::fs::write(&scenario, quality_scenario(&engine)).unwrap();
    let started = std::time::Instant::now();
    let mut cmd = common::exp(["run", scenario.to_str().unwrap(), "--no-progress", "--out"]);
    cmd.arg(dir.path().join("out"));
    let run = spawn(cmd).wait_within(RUN_DEADLINE);
    eprintln!("exp run took {:.0?}\n{}", started.elapsed(), run.stdout);
    assert_eq!(run.code(), 0, "{}", run.stderr);
    let run_dir = run.run_dir();
    let summary = json(&run_dir.join("summary.json"));
    let reps = summary["repetitions"].as_array().unwrap();
    assert_eq!(reps.len(), QUALITY_REPETITIONS);
    let cell = reps[0]["cell_id"].as_str().unwrap().to_string();
    let reason_start = "this server cannot score prompts: asked for the prompt's log-probs (`echo: true`, `logprobs: 1`), it returned 1 log-prob in `logprobs.content`, for the generated text only, and none for the ";
    let reason_end = " prompt tokens: it does not echo the prompt";
    for (round, rep) in reps.iter().enumerate() {
        let values = &rep["summary"]["values"];
        assert!(values["ppl"].is_null(), "round {round}: a ppl: {values}");
        let accuracy = values["retrieval_accuracy"].as_f64();
        eprintln!("round {round}: retrieval accuracy {accuracy:?}");
        assert!(accuracy.is_some(), "round {round}: no retrieval_accuracy");
        let path = common::rep_stem(&run_dir, &cell, round as u32).with_extension("quality.jsonl");
        let lines: Vec<serde_json::Value> = (text(&path).lines())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
        // One line says why perplexity was not measured; every retrieval item was answered.
        assert_eq!(kinds[0], "unsupported", "{}: {lines:?}", path.display());
        let reason = lines[0]["reason"].as_str().unwrap();
        assert!(
            reason.starts_with(reason_start) && reason.ends_with(reason_end),
            "round {round}: {reason}"
        );
        if round == 0 {
            eprintln!("perplexity not measured: {reason}");
        }
        assert_eq!(kinds[1..], ["retrieval"; QUALITY_TRIALS], "{lines:?}");
    }
    let report = text(&run_dir.join("report.md"));
    assert!(report.contains("## Quality"), "{report}");
    assert!(
        report.contains(&format!("perplexity: not measured — {reason_start}")),
        "the report does not give the reason:\n{report}"
    );
}

/// One llama-server (1 slot, 2048-token context), a small closed-loop load, then the quality
/// pass: exp's generated corpus and 12 passkey items of ~256 words.
fn quality_scenario(engine: &Engine) -> String {
    let corpus = common::root().join("scenarios/data/generated-corpus.jsonl");
    format!(
        r#"
[experiment]
name = "llamacpp_quality"
description = "llama-server (CPU, tiny random llama model): perplexity and passkey retrieval beside speed."
seed = 17
repetitions = {QUALITY_REPETITIONS}

[target]
kind = "openai-completions"
base_url = "http://127.0.0.1:{{{{ port }}}}/v1"
model = "tiny"
headers = {{ "Connection" = "close" }}
timeout = "60s"

[server]
command = [
  "{server}", "--model", "{model}", "--alias", "tiny", "--host", "127.0.0.1",
  "--port", "{{{{ port }}}}", "--parallel", "1", "--ctx-size", "2048",
  "--threads", "1", "--threads-batch", "1", "--no-webui",
]
env = {{ OMP_WAIT_POLICY = "passive" }}
ready_url = "http://127.0.0.1:{{{{ port }}}}/health"
ready_timeout = "60s"
stop_grace = "5s"

[vars.fixed]
concurrency = 1
prompt_tokens = 32
output_tokens = 8
requests = 8

[workload]
arrival = "closed"
warmup = 2

[analysis]
primary = ["output_throughput", "ppl", "retrieval_accuracy"]

[quality]
perplexity = {{ corpus = "{corpus}", documents = 5 }}
retrieval = {{ task = "passkey", context_tokens = 256, trials = {QUALITY_TRIALS}, max_tokens = 12 }}
"#,
        server = engine.server.display(),
        model = engine.model.display(),
        corpus = corpus.display(),
    )
}
