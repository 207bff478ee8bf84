//! Issue 17: quality beside speed, end to end over HTTP against the referee — `exp serve
//! --fixed …,accuracy=P,logprob=L` answers each retrieval item right with probability P
//! (decided by the item) and gives every prompt token log-prob L, so the truth is known: the
//! perplexity is exactly e^(−L) and the accuracy is P up to sampling.

mod common;

use std::path::Path;

use common::{fixed_server, free_port, json, run_scenario, text};

fn scenario(dir: &Path, ports: &[u16], quality: &str) -> std::path::PathBuf {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let text = format!(
        r#"
[experiment]
name = "quality"
description = "referee: known perplexity and accuracy"
seed = 7
repetitions = 10

[target]
kind = "openai-completions"
base_url = "http://127.0.0.1:{{{{ port }}}}/v1"
model = "exp-fixed"

[vars.fixed]
prompt_tokens = 16
output_tokens = 4
requests = 8
concurrency = 4
[vars.sweep]
port = [{}]

[workload]
arrival = "closed"
warmup = 0

[analysis]
primary = ["ttft.mean"]

[quality]
{quality}
"#,
        ports.join(", ")
    );
    let path = dir.join("quality.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The values of `metric` in every repetition of `summary.json`, cell by cell.
fn rep_values(summary: &serde_json::Value, metric: &str) -> Vec<Option<f64>> {
    (summary["repetitions"].as_array().unwrap().iter())
        .map(|rep| rep["summary"]["values"][metric].as_f64())
        .collect()
}

#[test]
fn the_referee_perplexity_is_exact_and_lower_accuracy_is_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = common::generated_corpus(dir.path());
    let (a, b) = (free_port(), free_port());
    let _sa = fixed_server("ttft=1ms,itl=1ms,accuracy=0.8,logprob=-1.5", a);
    let _sb = fixed_server("ttft=1ms,itl=1ms,accuracy=0.6,logprob=-1.5", b);
    let quality = format!(
        "perplexity = {{ corpus = \"{}\" }}\nretrieval = {{ task = \"passkey\", context_tokens = 300, trials = 40 }}",
        corpus.display()
    );
    let out = dir.path().join("out");
    let run = run_scenario(&scenario(dir.path(), &[a, b], &quality), &out).expect_code(0);
    let run_dir = run.run_dir();
    let summary = json(&run_dir.join("summary.json"));
    // Every repetition's perplexity is e^1.5 to rounding: every token at log-prob −1.5.
    let ppl = rep_values(&summary, "ppl");
    assert_eq!(ppl.len(), 20);
    for v in &ppl {
        let v = v.expect("every repetition has a perplexity");
        assert!((v - 1.5f64.exp()).abs() < 1e-9, "ppl {v}");
    }
    let accuracy = rep_values(&summary, "retrieval_accuracy");
    let mean = |xs: &[Option<f64>]| xs.iter().map(|x| x.unwrap()).sum::<f64>() / xs.len() as f64;
    let (acc_a, acc_b) = (mean(&accuracy[..10]), mean(&accuracy[10..]));
    assert!(
        (acc_a - 0.8).abs() < 0.08 && (acc_b - 0.6).abs() < 0.08,
        "{acc_a} {acc_b}"
    );
    // The quality file holds every item, and the marker came after it.
    let cell = summary["repetitions"][0]["cell_id"]
        .as_str()
        .unwrap()
        .to_string();
    let items = text(&common::rep_stem(&run_dir, &cell, 0).with_extension("quality.jsonl"));
    assert_eq!(items.lines().count(), 12 + 40);
    // The report: the verdicts, the Quality section, and speed and quality on one line.
    let report = text(&run_dir.join("report.md"));
    let verdicts: Vec<(String, String)> = summary["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["metric"].as_str().unwrap().to_string(),
                c["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        verdicts.contains(&("retrieval_accuracy".into(), "regression".into())),
        "{verdicts:?}"
    );
    assert!(
        verdicts.contains(&("ppl".into(), "no_change".into())),
        "{verdicts:?}"
    );
    assert!(report.contains("## Quality"), "{report}");
    let joined = report
        .lines()
        .find(|l| l.contains("port=") && l.contains("PPL") && l.contains("Retrieval accuracy"))
        .unwrap_or_else(|| panic!("no line joining speed and quality:\n{report}"));
    assert!(joined.starts_with("- ❌"), "{joined}");
    assert!(joined.contains("TTFT mean"), "{joined}");
}

#[test]
fn a_server_that_cannot_score_prompts_is_reported_never_computed() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = common::generated_corpus(dir.path());
    let port = free_port();
    // Like llama.cpp (whose exact reply is a unit test in src/backend/client/quality.rs):
    // `echo` answered with log-probs of the generated tokens only.
    let _s = fixed_server("ttft=1ms,itl=1ms,logprob=-1,scoring=generated", port);
    let quality = format!("perplexity = {{ corpus = \"{}\" }}", corpus.display());
    let out = dir.path().join("out");
    let run = run_scenario(&scenario(dir.path(), &[port], &quality), &out).expect_code(0);
    let run_dir = run.run_dir();
    let summary = json(&run_dir.join("summary.json"));
    assert!(rep_values(&summary, "ppl").iter().all(Option::is_none));
    let report = text(&run_dir.join("report.md"));
    let reason =
        "perplexity: not measured — this server cannot score prompts: asked for the log-probs of a";
    assert!(report.contains(reason), "{report}");
    // It was asked once, not once per document and repetition.
    let cell = summary["repetitions"][0]["cell_id"]
        .as_str()
        .unwrap()
        .to_string();
    let items = text(&common::rep_stem(&run_dir, &cell, 3).with_extension("quality.jsonl"));
    assert_eq!(items.lines().count(), 1, "{items}");
    assert!(items.contains("\"kind\":\"unsupported\""), "{items}");
}

/// `exp compare --fail-on regression` fails on a quality regression as on a speed one: the
/// candidate server answers the same items right less often.
#[test]
fn compare_fails_on_a_quality_regression() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (free_port(), free_port());
    let _sa = fixed_server("ttft=1ms,itl=1ms,accuracy=0.9,logprob=-1", a);
    let _sb = fixed_server("ttft=1ms,itl=1ms,accuracy=0.7,logprob=-1", b);
    let toml = r#"
[experiment]
name = "quality_pr"
description = "the same scenario against main and the pull request"
seed = 3
repetitions = 10
[target]
kind = "openai-completions"
base_url = "http://127.0.0.1:9/v1"
model = "exp-fixed"
[vars.fixed]
prompt_tokens = 16
output_tokens = 4
requests = 8
concurrency = 4
[workload]
arrival = "closed"
warmup = 0
[quality]
retrieval = { task = "niah", context_tokens = 200, trials = 30 }
"#;
    let scenario = dir.path().join("pr.toml");
    std::fs::write(&scenario, toml).unwrap();
    let run_at = |port: u16, name: &str| {
        let out = dir.path().join(name);
        let url = format!("http://127.0.0.1:{port}/v1");
        let args = ["run", scenario.to_str().unwrap(), "--target", &url, "--out"];
        let run = common::run(
            args.into_iter()
                .chain([out.to_str().unwrap(), "--no-progress"]),
        );
        run.expect_code(0).run_dir()
    };
    let (base, cand) = (run_at(a, "main"), run_at(b, "pr"));
    let out = dir.path().join("compare.md");
    let args = [
        "compare",
        base.to_str().unwrap(),
        cand.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--fail-on",
        "regression",
    ];
    let outcome = common::run(args).expect_code(1);
    assert!(
        outcome.stdout.starts_with("❌ regression"),
        "{}",
        outcome.stdout
    );
    let md = text(&out);
    let row = md
        .lines()
        .find(|l| l.contains("retrieval_accuracy"))
        .unwrap_or_else(|| panic!("no retrieval_accuracy row:\n{md}"));
    assert!(row.contains("regression"), "{row}");
}
