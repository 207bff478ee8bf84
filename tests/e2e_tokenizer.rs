//! Issue 2, exact prompt lengths, end to end: a scenario with `[target] tokenizer` run against
//! exp's fixed server records exact `requested_input_tokens`, and the report drops the
//! "approximate lengths" warning and flags a server that counts prompts differently. The fixed
//! server counts a prompt's whitespace-separated words, so it agrees with the word-level
//! fixture and disagrees with the BPE one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use exp::plan::Plan;
use exp::record::RequestRecord;
use exp::serve::{self, FixedTiming};
use exp::store::RunDir;
use exp::workload::work::Prompt;
use exp::workload::{Datasets, ModelTokenizer};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tokenizer")
        .join(name)
}

fn scenario(base_url: &str, tokenizer: &Path) -> String {
    format!(
        r#"
[experiment]
name = "tok"
description = "exact prompt lengths"
seed = 5
repetitions = 2
[target]
kind = "openai-completions"
base_url = "{base_url}"
model = "exp-fixed"
tokenizer = "{}"
[vars.fixed]
prompt_tokens = 60
output_tokens = 3
requests = 12
concurrency = 4
[workload]
arrival = "closed"
prompt_dist = {{ lognormal = 0.5 }}
warmup = 2
"#,
        tokenizer.display()
    )
}

/// Runs the scenario and returns the plan, every (round, record) and the report's text.
async fn run(tokenizer: &Path) -> (Plan, Vec<(u32, RequestRecord)>, String) {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let timing = FixedTiming::new(Duration::from_millis(2), Duration::from_millis(1));
    let srv = serve::spawn_fixed(addr, timing).await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let text = scenario(&srv.base_url(), tokenizer);
    let scenario =
        exp::scenario::parse(&text, Path::new("tok.toml"), &[]).unwrap_or_else(|e| panic!("{e}"));
    let plan = Plan::build(scenario).unwrap();
    let manifest = exp::app::new_manifest(&plan, Path::new("tok.toml"), &Default::default());
    let dir = RunDir::create(out.path(), &manifest, &plan.scenario.text).unwrap();
    let end = exp::run::execute(&plan, &dir, false).await.unwrap();
    assert_eq!(end, exp::run::RunEnd::Complete);
    exp::app::finish_run(&dir, &manifest, &plan, None, true).unwrap();
    let report = std::fs::read_to_string(dir.root().join("report.md")).unwrap();
    let id = &manifest.cells[0].id;
    let records = (0..2)
        .flat_map(|round| {
            let recs = dir.records(id, round).unwrap();
            recs.into_iter().map(move |r| (round, r))
        })
        .collect();
    srv.shutdown().await.unwrap();
    (plan, records, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_prompt_lengths_are_the_tokenizers_exact_counts() {
    let path = fixture("bpe.json");
    let (plan, records, report) = run(&path).await;
    assert_eq!(records.len(), 24);
    let tok = ModelTokenizer::load(&path).unwrap();
    let cache = Datasets::new();
    let mut lengths = std::collections::BTreeSet::new();
    for (round, rec) in &records {
        assert!(rec.outcome.is_ok(), "{:?}", rec.outcome);
        // The same request, rebuilt: its text has exactly the recorded number of tokens.
        let seeds = exp::run::workload_seeds(5, *round);
        let work = cache
            .build_with(&plan.configs[0].workload, &seeds, Some(&path))
            .unwrap();
        let spec = work.source.request(rec.index);
        let Prompt::Text(text) = &spec.prompt else {
            panic!("completions prompts are text")
        };
        let requested = rec.requested_input_tokens.unwrap();
        assert_eq!(requested, spec.input_tokens);
        assert_eq!(tok.count(text).unwrap(), requested, "{text}");
        // The server counts words, which this BPE splits: its usage is lower.
        assert!(rec.input_tokens.unwrap() < requested);
        lengths.insert(requested);
    }
    assert!(lengths.len() > 5, "lengths are drawn: {lengths:?}");
    assert!(
        !report.contains("prompt lengths are approximate"),
        "{report}"
    );
    assert!(
        report.contains("prompts were counted differently by the server"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_counts_like_the_tokenizer_raises_no_warning() {
    let (_, records, report) = run(&fixture("words.json")).await;
    assert_eq!(records.len(), 24);
    for (_, rec) in &records {
        assert_eq!(rec.input_tokens, rec.requested_input_tokens);
    }
    assert!(
        !report.contains("prompt lengths are approximate"),
        "{report}"
    );
    assert!(!report.contains("counted differently"), "{report}");
}
