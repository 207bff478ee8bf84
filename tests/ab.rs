//! Interleaved A/B (issue 5): a `variant` variable whose values are two server commands, run
//! in randomized blocks in one session and compared like any treatment. The two "builds" are
//! exp's fixed-timing server at TTFT 20 ms and 26 ms, so the answer is known: the candidate
//! regresses TTFT by ≈ 30 % and nothing else beyond noise.

mod common;

use common::{json, run};

#[test]
fn two_server_commands_run_interleaved_and_are_compared_like_any_treatment() {
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("ab.toml");
    std::fs::write(
        &path,
        format!(
            r#"[experiment]
name = "ab"
description = "Two builds side by side."
repetitions = 10
seed = 11

[target]
kind = "openai-completions"
base_url = "http://127.0.0.1:{{{{ port }}}}/v1"
model = "exp-fixed"

[vars.fixed]
requests = 12
concurrency = 4
prompt_tokens = 16
output_tokens = 4

[vars.linked.build]
variant = ["main", "pr"]
ttft = ["20ms", "26ms"]

[workload]
arrival = "closed"
warmup = 1

[analysis]
primary = ["ttft.mean", "e2e.mean"]
baseline = {{ variant = "main" }}

[server]
command = ["{exe}", "serve", "--fixed", "ttft={{{{ ttft }}}},itl=1ms", "--port", "{{{{ port }}}}"]
ready_timeout = "30s"
"#,
            exe = env!("CARGO_BIN_EXE_exp")
        ),
    )
    .unwrap();
    let dir = run([
        "run",
        path.to_str().unwrap(),
        "--no-progress",
        "--out",
        out.path().to_str().unwrap(),
    ])
    .expect_code(0)
    .run_dir();

    // Randomized blocks: every round launches each variant once, and the order varies.
    let manifest = json(&dir.join("manifest.json"));
    let cells = manifest["cells"].as_array().unwrap();
    let variant_of = |cell: u64| cells[cell as usize]["swept"]["variant"].as_str().unwrap();
    let launches = manifest["launches"].as_array().unwrap();
    assert_eq!(launches.len(), 20);
    let mut firsts = std::collections::BTreeSet::new();
    for (round, pair) in launches.chunks(2).enumerate() {
        let mut seen: Vec<&str> = pair
            .iter()
            .map(|l| {
                let reps = l["repetitions"].as_array().unwrap();
                assert_eq!(reps.len(), 1);
                assert_eq!(reps[0][0], round as u64);
                variant_of(reps[0][1].as_u64().unwrap())
            })
            .collect();
        firsts.insert(seen[0].to_string());
        seen.sort();
        assert_eq!(seen, ["main", "pr"], "round {round}");
    }
    assert_eq!(firsts.len(), 2, "both variants go first in some round");

    // Compared like any treatment: main → pr, TTFT +30 % is a regression.
    let summary = json(&dir.join("summary.json"));
    let ttft = summary["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "adjacent" && c["metric"] == "ttft.mean")
        .unwrap();
    assert_eq!(ttft["verdict"], "regression", "{ttft}");
    let change = ttft["comparison"]["relative"]["change"].as_f64().unwrap();
    assert!((0.15..0.45).contains(&change), "Δ TTFT {change}");
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("variant=main → pr"), "{report}");
}
