//! `exp compare` end to end on run directories built by hand with the store API (fixed,
//! seeded per-request timings, so every number is reproducible): the exit codes 0/1/2, the
//! Markdown as a snapshot (`UPDATE_SNAPSHOTS=1 cargo test --test compare` rewrites it), and
//! `exp run --baseline` on the simulated engine.

use std::path::{Path, PathBuf};
use std::process::Command;

use exp::plan::Plan;
use exp::record::{Chunk, Outcome, RequestRecord};
use exp::scenario::RunOrder;
use exp::store::{CellEntry, Manifest, RepMarker, RunDir, SCHEMA_VERSION};
use sha2::{Digest, Sha256};

const SNAPSHOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/compare/slow_ttft.md"
);

/// Two load levels, 10 repetitions, 20 requests each.
fn scenario(rates: &str, repetitions: u32) -> String {
    format!(
        r#"[experiment]
name = "pr-check"
description = "Fixture for exp compare."
repetitions = {repetitions}

[target]
kind = "sim"
model_config = "llama-3.1-8b"
gpu = "h100-sxm"

[vars.fixed]
requests = 20

[vars.sweep]
request_rate = {rates}

[analysis]
primary = ["ttft.mean", "e2e.mean", "output_throughput"]
"#
    )
}

/// How a fixture run's requests behave.
struct Shape {
    /// Multiplies every TTFT (1.10 = 10 % slower).
    ttft_factor: f64,
    /// Seeds the run-to-run and request-to-request noise.
    seed: u64,
}

/// SplitMix64 → uniform in [−1, 1].
fn noise(mut x: u64) -> f64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// 20 requests at `rate`/s: TTFT ≈ 100 ms × factor (2 % run noise, 5 % request noise), then
/// 10 tokens 20 ms apart.
fn records(shape: &Shape, cell: usize, round: u32, rate: f64) -> Vec<RequestRecord> {
    let key = shape.seed * 1_000_003 + cell as u64 * 1009 + u64::from(round);
    let run = 1.0 + 0.02 * noise(key);
    (0..20u64)
        .map(|i| {
            let sent = (i as f64 / rate * 1e9) as u64;
            let request = 1.0 + 0.05 * noise(key * 131 + i + 7);
            let ttft = (0.1 * shape.ttft_factor * run * request * 1e9) as u64;
            let chunks: Vec<Chunk> = (0..10u64)
                .map(|k| Chunk {
                    at_ns: sent + ttft + k * 20_000_000,
                    tokens: Some(1),
                    reasoning: false,
                })
                .collect();
            RequestRecord {
                index: i,
                turn: 0,
                scheduled_ns: sent,
                sent_ns: Some(sent),
                first_sent_ns: None,
                no_done: false,
                text: None,
                counted: None,
                done_ns: chunks.last().map(|c| c.at_ns),
                chunks,
                input_tokens: Some(100),
                output_tokens: Some(10),
                requested_input_tokens: Some(100),
                requested_output_tokens: Some(10),
                finish_reason: Some("length".into()),
                outcome: Outcome::Ok,
            }
        })
        .collect()
}

/// Writes a complete run directory `<out>/pr-check/<run_id>/` and returns its path.
fn write_run(out: &Path, run_id: &str, git: &str, text: &str, shape: &Shape) -> PathBuf {
    let path = Path::new("pr-check.toml");
    let plan = Plan::build(exp::scenario::parse(text, path, &[]).unwrap()).unwrap();
    let hash = Sha256::digest(text.as_bytes());
    let manifest = Manifest {
        schema_version: SCHEMA_VERSION,
        exp_version: "0.1.0".into(),
        git_revision: Some(git.into()),
        host: Some("bench-1".into()),
        run_id: run_id.into(),
        scenario_name: "pr-check".into(),
        scenario_file: "pr-check.toml".into(),
        scenario_sha256: hash.iter().map(|b| format!("{b:02x}")).collect(),
        overrides: vec![],
        target_override: None,
        seed: 42,
        repetitions: plan.scenario.experiment.repetitions.get(),
        order: RunOrder::RandomizedBlocks,
        executor: "simulated engine: llama-3.1-8b on h100-sxm, preset `calibrated`".into(),
        cells: plan
            .cells
            .iter()
            .map(|c| CellEntry {
                index: c.index,
                id: c.id.to_string(),
                vars: c.vars.clone(),
                swept: c.swept.clone(),
            })
            .collect(),
        schedule: plan.schedule.clone(),
        started: "2026-11-21T10:00:00Z".into(),
        ended: Some("2026-11-21T10:05:00Z".into()),
        status: exp::store::RunStatus::Complete,
        warnings: vec![],
        launches: vec![],
        adaptive: None,
        sequential: None,
        session: None,
        baseline: None,
        node: None,
        shard: None,
        merged: Vec::new(),
        client: None,
        merged_clients: Vec::new(),
    };
    let dir = RunDir::create(out, &manifest, text).unwrap();
    for (index, cell) in plan.cells.iter().enumerate() {
        let rate = cell.vars["request_rate"].as_f64().unwrap();
        for round in 0..manifest.repetitions {
            let id = cell.id.to_string();
            let mut writer = dir.start_repetition(&id, round).unwrap();
            for rec in records(shape, index, round, rate) {
                writer.append(&rec).unwrap();
            }
            writer
                .finish(RepMarker {
                    schema_version: SCHEMA_VERSION,
                    cell_id: id,
                    round,
                    records: 0,
                    origin_wall: "2026-11-21T10:00:00Z".into(),
                    wall_seconds: 10.0,
                    client_cpu_seconds: None,
                    details: Default::default(),
                    failure: None,
                })
                .unwrap();
        }
    }
    dir.root().to_path_buf()
}

/// The fixture runs, built once per test in a temporary folder.
struct Runs {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    aa: PathBuf,
    slow: PathBuf,
    fast: PathBuf,
    disjoint: PathBuf,
    few: PathBuf,
}

fn runs() -> Runs {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    let main = scenario("[2, 4]", 10);
    let same = |ttft_factor, seed| Shape { ttft_factor, seed };
    Runs {
        base: write_run(out, "main", "1111aaaa", &main, &same(1.0, 1)),
        aa: write_run(out, "main-again", "1111aaaa", &main, &same(1.0, 2)),
        slow: write_run(out, "branch-slow", "2222bbbb", &main, &same(1.1, 3)),
        fast: write_run(out, "branch-fast", "3333cccc", &main, &same(0.9, 4)),
        disjoint: write_run(
            out,
            "other-rates",
            "4444dddd",
            &scenario("[8, 16]", 10),
            &same(1.0, 5),
        ),
        few: write_run(
            out,
            "few",
            "5555eeee",
            &scenario("[2, 4]", 3),
            &same(1.0, 6),
        ),
        _tmp: tmp,
    }
}

/// Runs `exp compare` and returns (exit code, stdout, stderr).
fn exp_compare(base: &Path, cand: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_exp"))
        .arg("compare")
        .arg(base)
        .arg(cand)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exit_codes_follow_the_verdicts() {
    let r = runs();
    let fail = ["--fail-on", "regression"];
    let any = ["--fail-on", "any-change"];
    let cases: [(&str, &Path, &[&str], i32); 8] = [
        ("A/A", &r.aa, &fail, 0),
        ("A/A any change", &r.aa, &any, 0),
        ("10 % slower TTFT", &r.slow, &fail, 1),
        ("10 % slower TTFT without --fail-on", &r.slow, &[], 0),
        ("10 % faster TTFT", &r.fast, &fail, 0),
        ("10 % faster TTFT, any change", &r.fast, &any, 1),
        ("no matched cell", &r.disjoint, &fail, 2),
        ("every verdict invalid (3 runs)", &r.few, &[], 2),
    ];
    for (name, cand, extra, want) in cases {
        let (code, stdout, stderr) = exp_compare(&r.base, cand, extra);
        assert_eq!(code, want, "{name}\n{stdout}\n{stderr}");
    }
    let (code, _, stderr) = exp_compare(&r.base, Path::new("/no/such/run"), &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("/no/such/run"), "{stderr}");
}

#[test]
fn the_verdicts_of_the_fixture_pairs() {
    let r = runs();
    let (_, aa, _) = exp_compare(&r.base, &r.aa, &[]);
    assert!(
        aa.contains("**✅ no change beyond the noise thresholds"),
        "{aa}"
    );
    assert!(!aa.contains("regression"), "{aa}");

    let (_, slow, _) = exp_compare(&r.base, &r.slow, &[]);
    for cell in ["request_rate=2", "request_rate=4"] {
        assert!(slow.contains(&format!("| {cell} | ttft.mean | ")), "{slow}");
    }
    let ttft_rows: Vec<&str> = slow
        .lines()
        .filter(|l| l.contains("| ttft.mean |") && l.contains("**regression**"))
        .collect();
    assert_eq!(ttft_rows.len(), 4, "2 cells, top table and fold:\n{slow}");

    let (_, disjoint, stderr) = exp_compare(&r.base, &r.disjoint, &[]);
    assert!(disjoint.contains("⛔ invalid comparison: no cell is present in both runs"));
    assert!(disjoint.contains("baseline only: `request_rate=2`, `request_rate=4`."));
    assert!(disjoint.contains("> [!CAUTION]"), "scenario hash differs");
    assert!(stderr.contains("the scenario files differ"), "{stderr}");
}

#[test]
fn the_markdown_matches_the_snapshot() {
    let r = runs();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("compare.md");
    let (code, stdout, _) = exp_compare(
        &r.base,
        &r.slow,
        &["--out", out.to_str().unwrap(), "--fail-on", "regression"],
    );
    assert_eq!(code, 1);
    assert!(stdout.starts_with("❌ regression"), "{stdout}");
    let got = std::fs::read_to_string(&out).unwrap();
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(SNAPSHOT, &got).unwrap();
    }
    let want = std::fs::read_to_string(SNAPSHOT)
        .expect("snapshot missing: run with UPDATE_SNAPSHOTS=1 to create it");
    assert_eq!(
        got, want,
        "rerun with UPDATE_SNAPSHOTS=1 if the change is intended"
    );
    // The forest plot next to it: one point per valid (cell, metric) comparison, each with
    // its CI whisker and ±τ band, the four TTFT and E2E regressions in red.
    let svg = std::fs::read_to_string(tmp.path().join("compare.forest.svg")).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let count = |tag: &str, fill: Option<&str>| {
        doc.descendants()
            .filter(|n| n.has_tag_name(tag) && fill.is_none_or(|f| n.attribute("fill") == Some(f)))
            .count()
    };
    assert_eq!(count("circle", None), 6);
    assert_eq!(count("circle", Some("#D62728")), 4);
    assert_eq!(
        count("rect", Some("#787878")),
        6 + 1,
        "a τ band per row, one in the legend"
    );
    let labels = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter(|n| {
            n.text()
                .is_some_and(|t| t.trim() == "request_rate=2 · ttft.mean")
        })
        .count();
    assert_eq!(labels, 1);
}

/// A tiny simulated scenario in a temporary folder, run with `exp run … --out <folder>/<out>`.
struct Tiny {
    tmp: tempfile::TempDir,
    path: PathBuf,
}

impl Tiny {
    fn new(description: &str) -> Tiny {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("tiny.toml");
        std::fs::write(
            &path,
            format!("[experiment]\nname = \"tiny\"\ndescription = \"{description}\"\nrepetitions = 5\n[target]\nkind = \"sim\"\nmodel_config = \"llama-3.1-8b\"\ngpu = \"h100-sxm\"\n[vars.fixed]\nrequests = 20\nrequest_rate = 5\n"),
        )
        .unwrap();
        Tiny { tmp, path }
    }

    fn run(&self, out: &str, extra: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_exp"))
            .arg("run")
            .arg(&self.path)
            .args(["--no-progress", "--out"])
            .arg(self.tmp.path().join(out))
            .args(extra)
            .output()
            .unwrap()
    }

    /// The one run directory under `out`.
    fn dir(&self, out: &str) -> PathBuf {
        std::fs::read_dir(self.tmp.path().join(out).join("tiny"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
    }
}

#[test]
fn run_with_a_baseline_writes_compare_md_into_the_new_run() {
    let tiny = Tiny::new("run --baseline");
    let run = |out: &str, extra: &[&str]| tiny.run(out, extra);
    let first = run("main", &[]);
    assert!(first.status.success(), "{first:?}");
    let base = tiny.dir("main");
    let second = run(
        "branch",
        &[
            "--baseline",
            base.to_str().unwrap(),
            "--fail-on",
            "regression",
        ],
    );
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert_eq!(second.status.code(), Some(0), "{second:?}");
    let new = tiny.dir("branch");
    let md = std::fs::read_to_string(new.join("compare.md")).unwrap();
    // Same scenario, same seed, same simulated engine: identical numbers, so no change.
    assert!(
        md.contains("✅ no change beyond the noise thresholds"),
        "{md}"
    );
    assert!(stdout.contains("comparison: "), "{stdout}");

    let missing = run("x", &["--baseline", "/no/such/run"]);
    assert_eq!(missing.status.code(), Some(2));
}

/// `--extra-looks 2` on a candidate too noisy to judge from 5 repetitions: it adds 5 rounds
/// per look while a verdict stays open, records every look, and judges all of them at one
/// nominal α′: Pocock's for 3 looks of a 5-run baseline against 5, 10, 15 candidate runs.
#[test]
fn extra_looks_add_rounds_while_verdicts_are_open() {
    let tiny = Tiny::new("extra looks");
    let run = |out: &str, extra: &[&str]| tiny.run(out, extra);
    let only_dir = |out: &str| tiny.dir(out);
    assert!(run("main", &[]).status.success());
    let base = only_dir("main");
    // Step-time noise of 30 % makes most verdicts inconclusive at n = 5. Another seed gives
    // the candidate other workloads, so the runs are compared unpaired (Welch), where the
    // rounds a look adds count.
    let out = run(
        "branch",
        &[
            "--set",
            "target.noise_cv=0.3",
            "--set",
            "experiment.seed=43",
            "--baseline",
            base.to_str().unwrap(),
            "--extra-looks",
            "2",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let info = exp::stats::sequential::fixed_baseline(5, &[5, 10, 15]);
    let nominal = exp::stats::sequential::pocock_alpha(&info, 0.05).unwrap();
    // Between Pocock's equally spaced 0.0221 and the unadjusted 0.05.
    assert!(nominal > 0.0221 && nominal < 0.05, "{nominal}");
    let shown = format!("{nominal:.4}");
    assert!(
        stderr.contains("look 1 of 3 at the baseline: ")
            && stderr.contains(&format!("at nominal α = {shown}; adding 5 rounds")),
        "{stderr}"
    );
    let dir = only_dir("branch");
    let md = std::fs::read_to_string(dir.join("compare.md")).unwrap();
    assert!(
        md.contains("unpaired (Welch's t, Fieller's CI): the runs have different seeds (0 and 43)"),
        "{md}"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let seq = &manifest["sequential"];
    assert_eq!(seq["planned"], 3);
    assert_eq!(seq["nominal_alpha"].as_f64(), Some(nominal));
    let looks = seq["looks"].as_array().unwrap();
    assert!(looks.len() >= 2, "the first look was open: {looks:?}");
    for (i, look) in looks.iter().enumerate() {
        assert_eq!(look["rounds"], 5 + 5 * i as u64);
        let last = i + 1 == looks.len();
        let open = look["open"].as_u64().unwrap();
        if last {
            assert!(open == 0 || looks.len() == 3, "{look}");
            assert_eq!(look["added"], 0);
        } else {
            assert!(open > 0, "{look}");
            assert_eq!(look["added"], 5);
        }
    }
    assert_eq!(manifest["repetitions"], 5 * looks.len() as u64);
    let md = std::fs::read_to_string(dir.join("compare.md")).unwrap();
    assert!(
        md.contains(&format!(
            "Group-sequential comparison: look {} of at most 3",
            looks.len()
        )) && md.contains(&format!("Pocock's nominal α = {shown}"))
            && md.contains(&format!("and α = {}. Percentiles", &shown[..5])),
        "{md}"
    );
    // Out of range, and without a baseline, clap refuses.
    let three = run(
        "y",
        &["--baseline", base.to_str().unwrap(), "--extra-looks", "3"],
    );
    assert_eq!(three.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&three.stderr).contains("3 is not in 0..=2"));
    let alone = run("y", &["--extra-looks", "1"]);
    assert_eq!(alone.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&alone.stderr).contains("--baseline <RUN_DIR>"));
}

/// Issue 15: a candidate of the same scenario and seed saw the same workload round by round,
/// so `compare.md` pairs its rounds with the baseline's and says so; with every baseline round
/// paired, `--extra-looks` adds no rounds (they would have no baseline partner) and says why.
#[test]
fn a_candidate_with_the_baselines_seed_is_compared_round_by_round() {
    let tiny = Tiny::new("paired");
    let run = |out: &str, extra: &[&str]| tiny.run(out, extra);
    assert!(run("main", &[]).status.success());
    let base = tiny.dir("main");
    let out = run(
        "branch",
        &[
            "--set",
            "target.noise_cv=0.3",
            "--baseline",
            base.to_str().unwrap(),
            "--extra-looks",
            "2",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let dir = tiny.dir("branch");
    let md = std::fs::read_to_string(dir.join("compare.md")).unwrap();
    assert!(md.contains("paired by round over 5 pairs"), "{md}");
    assert!(md.contains("| 5 / 5 (5 pairs) |"), "{md}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let looks = manifest["sequential"]["looks"].as_array().unwrap();
    assert_eq!(looks.len(), 1, "{looks:?}");
    assert_eq!(looks[0]["added"], 0);
    if looks[0]["open"].as_u64() != Some(0) {
        assert!(
            stderr.contains("paired by round over every baseline round"),
            "{stderr}"
        );
    }
}
