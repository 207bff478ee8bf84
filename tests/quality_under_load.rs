//! Issue 17, `[quality] when = "under-load"`, end to end over HTTP against the referee (`exp
//! serve --fixed …,accuracy=P,logprob=L`): a seeded share of the measured arrivals are
//! quality items instead of requests. The truth is known: the perplexity is exactly e^(−L),
//! the accuracy P up to sampling; the quality items are never request records; and every
//! cell of a round mixes the same items in at the same arrivals.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{fixed_server, free_port, json, records, run_scenario, text};
use serde_json::Value;

/// A scenario with one cell per port: `requests` arrivals per repetition, `load` the
/// `[workload]` lines, `quality` the `[quality]` lines.
fn scenario(dir: &Path, ports: &[u16], reps: u32, load: &str, quality: &str) -> std::path::PathBuf {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let text = format!(
        r#"
[experiment]
name = "quality_under_load"
description = "referee: known perplexity and accuracy under load"
seed = 11
repetitions = {reps}

[target]
kind = "openai-completions"
base_url = "http://127.0.0.1:{{{{ port }}}}/v1"
model = "exp-fixed"

[vars.fixed]
prompt_tokens = 16
output_tokens = 4
requests = 200
concurrency = 4
request_rate = 400
[vars.sweep]
port = [{}]

[workload]
warmup = 2
{load}

[analysis]
primary = ["ttft.mean"]

[quality]
when = "under-load"
{quality}
"#,
        ports.join(", ")
    );
    let path = dir.join("quality.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The lines of a repetition's quality file.
fn quality_lines(run_dir: &Path, cell: &str, round: u32) -> Vec<Value> {
    let path = common::rep_stem(run_dir, cell, round).with_extension("quality.jsonl");
    (text(&path).lines())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// (arrival, what) of each item sent under load: `p<document>.<window>` or `r<item>`.
fn placed(lines: &[Value]) -> BTreeSet<(u64, String)> {
    (lines.iter())
        .filter(|l| !l["under_load"].is_null())
        .map(|l| {
            let what = match l["kind"].as_str().unwrap() {
                "perplexity" => format!("p{}.{}", l["document"], l["window"]),
                "retrieval" => format!("r{}", l["item"]),
                other => panic!("unexpected {other}: {l}"),
            };
            (l["under_load"]["arrival"].as_u64().unwrap(), what)
        })
        .collect()
}

fn cell_ids(summary: &Value) -> Vec<String> {
    let mut ids: Vec<String> = (summary["repetitions"].as_array().unwrap().iter())
        .map(|r| r["cell_id"].as_str().unwrap().to_string())
        .collect();
    ids.dedup();
    ids
}

#[test]
fn under_load_the_referee_perplexity_is_exact_and_lower_accuracy_is_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = common::generated_corpus(dir.path());
    let (a, b) = (free_port(), free_port());
    let _sa = fixed_server("ttft=1ms,itl=1ms,accuracy=0.8,logprob=-1.5", a);
    let _sb = fixed_server("ttft=1ms,itl=1ms,accuracy=0.6,logprob=-1.5", b);
    let quality = format!(
        "share = 0.3\nperplexity = {{ corpus = \"{}\" }}\nretrieval = {{ task = \"passkey\", context_tokens = 300, trials = 40 }}",
        corpus.display()
    );
    let path = scenario(dir.path(), &[a, b], 10, "arrival = \"closed\"", &quality);
    let run = run_scenario(&path, &dir.path().join("out")).expect_code(0);
    let run_dir = run.run_dir();
    let summary = json(&run_dir.join("summary.json"));
    let reps = summary["repetitions"].as_array().unwrap();
    assert_eq!(reps.len(), 20);
    for rep in reps {
        let v = rep["summary"]["values"]["ppl"]
            .as_f64()
            .expect("a perplexity");
        assert!((v - 1.5f64.exp()).abs() < 1e-9, "ppl {v}");
    }
    let verdict = |metric: &str| {
        (summary["comparisons"].as_array().unwrap().iter())
            .find(|c| c["metric"] == metric)
            .map(|c| c["verdict"].as_str().unwrap().to_string())
    };
    assert_eq!(verdict("retrieval_accuracy").as_deref(), Some("regression"));
    assert_eq!(verdict("ppl").as_deref(), Some("no_change"));

    let cells = cell_ids(&summary);
    assert_eq!(cells.len(), 2);
    for round in 0..10 {
        let per_cell: Vec<Vec<Value>> = (cells.iter())
            .map(|c| quality_lines(&run_dir, c, round))
            .collect();
        for (cell, lines) in cells.iter().zip(&per_cell) {
            // The mix line first: 200 arrivals, some of them quality items.
            let mix = &lines[0];
            assert_eq!(mix["kind"], "mix", "{mix}");
            assert_eq!(mix["arrivals"], 200, "{mix}");
            assert_eq!(mix["items"], 52, "{mix}");
            let quality = mix["quality_arrivals"].as_u64().unwrap();
            assert!((30..=52).contains(&quality), "{mix}");
            // No quality item among the request records: the measured requests are the
            // planned arrivals less the quality ones, at the other arrival indices.
            let recs = records(&run_dir, cell, round);
            assert_eq!(recs.len() as u64, 200 - quality, "{cell} round {round}");
            let items = placed(lines);
            assert_eq!(items.len() as u64, quality);
            let taken: BTreeSet<u64> = items.iter().map(|(i, _)| *i).collect();
            for r in &recs {
                assert!(!taken.contains(&r["i"].as_u64().unwrap()), "{r}");
            }
            for l in lines.iter().filter(|l| !l["under_load"].is_null()) {
                let latency = l["under_load"]["latency_ns"].as_u64().unwrap();
                assert!(latency > 0, "{l}");
            }
        }
        // Common random numbers: the same items at the same arrivals in both cells.
        assert_eq!(placed(&per_cell[0]), placed(&per_cell[1]), "round {round}");
    }

    let report = text(&run_dir.join("report.md"));
    assert!(report.contains("## Quality"), "{report}");
    assert!(
        report.contains("Measured under load") && report.contains("(share = 0.3)"),
        "{report}"
    );
    assert!(report.contains("| item latency p50 |"), "{report}");
}

/// Open loop, on a server that cannot score prompts: no perplexity item is mixed in (their
/// arrivals stay measured requests), retrieval items still are, and the report says why.
#[test]
fn under_load_without_prompt_scores_only_retrieval_is_mixed_in() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = common::generated_corpus(dir.path());
    let port = free_port();
    let _s = fixed_server("ttft=1ms,itl=1ms,logprob=-1,scoring=generated", port);
    let quality = format!(
        "share = 0.1\nperplexity = {{ corpus = \"{}\" }}\nretrieval = {{ task = \"niah\", context_tokens = 200, trials = 10 }}",
        corpus.display()
    );
    let path = scenario(dir.path(), &[port], 2, "arrival = \"poisson\"", &quality);
    let run = run_scenario(&path, &dir.path().join("out")).expect_code(0);
    let run_dir = run.run_dir();
    let summary = json(&run_dir.join("summary.json"));
    let cell = &cell_ids(&summary)[0];
    for round in 0..2 {
        let lines = quality_lines(&run_dir, cell, round);
        assert_eq!(lines[0]["kind"], "mix");
        assert_eq!(lines[0]["items"], 10, "{}", lines[0]);
        assert_eq!(lines[1]["kind"], "unsupported", "{}", lines[1]);
        let items = placed(&lines);
        assert!(
            items.iter().all(|(_, what)| what.starts_with('r')),
            "{items:?}"
        );
        let quality = lines[0]["quality_arrivals"].as_u64().unwrap();
        assert_eq!(items.len() as u64, quality);
        let recs = records(&run_dir, cell, round);
        assert_eq!(recs.len() as u64, 200 - quality);
    }
    let report = text(&run_dir.join("report.md"));
    let reason = "perplexity: not measured — this server cannot score prompts";
    assert!(report.contains(reason), "{report}");
    assert!(report.contains("Measured under load"), "{report}");
}
