//! `exp serve --sim` arguments, and `exp run --target` against the simulated server.

use clap::Parser;

use super::*;
use crate::cli::{Cli, Command};
use crate::record::{Outcome, RequestRecord};

fn serve_args(extra: &[&str]) -> ServeArgs {
    let argv = ["exp", "serve", "--sim"].iter().chain(extra);
    match Cli::try_parse_from(argv).unwrap().command {
        Command::Serve(args) => args,
        other => panic!("{other:?}"),
    }
}

#[test]
fn sim_args_build_the_deployment_and_engine_settings() {
    let args = serve_args(&[
        "--tp",
        "2",
        "--max-num-seqs",
        "64",
        "--preset",
        "ideal",
        "--noise-cv",
        "0.05",
        "--gpu-memory-utilization",
        "0.8",
        "--served-model-name",
        "llama",
    ]);
    let (config, deployment) = sim_config(&args).unwrap();
    assert_eq!(deployment.tp(), 2);
    let p = config.params;
    assert_eq!((p.max_num_seqs, p.max_num_batched_tokens), (64, 8192));
    // Issue 13: `ideal` draws no noise whatever --noise-cv says (its times are floors).
    assert_eq!(p.noise_cv, 0.0);
    assert_eq!(
        p.kv_capacity_tokens,
        deployment.kv_capacity_tokens(0.8).unwrap()
    );
    assert_eq!(config.model, "llama");
    assert_eq!(
        sim_config(&serve_args(&[])).unwrap().0.model,
        "llama-3.1-8b"
    );
}

#[test]
fn bad_sim_args_name_the_flag() {
    for (extra, needle) in [
        (&["--model", "no-such-model"][..], "--model no-such-model"),
        (&["--gpu", "no-such-gpu"], "--gpu no-such-gpu"),
        (&["--preset", "/no/such/profile.toml"], "--preset"),
        (&["--noise-cv=-1"], "noise_cv"),
        (&["--max-num-seqs", "0"], "max_num_seqs"),
    ] {
        let err = format!("{:#}", sim_config(&serve_args(extra)).unwrap_err());
        assert!(err.contains(needle), "{extra:?}: {err}");
    }
}

const SCENARIO: &str = r#"
[experiment]
name = "sim_serve_e2e"
description = "exp run --target against exp serve --sim."
seed = 7
repetitions = 2

[target]
kind = "sim"
model_config = "llama-3.1-8b"
gpu = "h100-sxm"

[vars.fixed]
prompt_tokens = 64
output_tokens = 8
requests = 12
concurrency = 4

[workload]
arrival = "closed"
warmup = 2
"#;

/// Every record under `dir`'s `records/` folders.
fn records(dir: &std::path::Path) -> Vec<RequestRecord> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir) {
        let path = entry.unwrap().into_path();
        let in_records = path.components().any(|c| c.as_os_str() == "records");
        if in_records && path.extension().is_some_and(|e| e == "jsonl") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.extend(
                text.lines()
                    .map(|l| serde_json::from_str::<RequestRecord>(l).unwrap()),
            );
        }
    }
    out
}

#[test]
fn exp_run_with_target_measures_exp_serve_sim() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (config, _) = sim_config(&serve_args(&["--noise-cv", "0"])).unwrap();
    let srv = rt
        .block_on(sim::spawn_sim("127.0.0.1:0".parse().unwrap(), config))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("e2e.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let out = tmp.path().join("reports");
    let cli = Cli::try_parse_from([
        "exp".as_ref(),
        "run".as_ref(),
        scenario.as_os_str(),
        "--target".as_ref(),
        srv.base_url().as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
        "--no-progress".as_ref(),
    ])
    .unwrap();
    let status = crate::app::run(cli).unwrap();
    assert_eq!(status, crate::app::Status::Ok);
    let records = records(&out);
    assert_eq!(
        records.len(),
        2 * 12,
        "two repetitions of 12 measured requests"
    );
    for r in &records {
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        assert_eq!(r.output_tokens, Some(8));
        assert_eq!(r.chunks.len(), 8, "one chunk per token");
        assert_eq!(r.input_tokens, r.requested_input_tokens, "whitespace words");
        let sent = r.sent_ns.unwrap();
        let first = r.chunks[0].at_ns;
        assert!(first > sent && r.done_ns.unwrap() >= first);
        assert!(r.chunks.windows(2).all(|w| w[0].at_ns <= w[1].at_ns));
    }
    let stats = srv.stats();
    // Warm-up requests reach the server too: 2 repetitions × (12 + 2).
    assert_eq!(stats.finished, 28);
    assert_eq!(stats.generation_tokens, 28 * 8);
    assert_eq!((stats.running, stats.waiting, stats.aborted), (0, 0, 0));
    drop(srv);
}
