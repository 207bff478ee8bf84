//! Issue 14: an experiment fanned out by rounds (`exp run --shard K/N`) and merged back
//! (`exp merge`) is the experiment run on one machine — with the seeded simulated engine,
//! the same summary numbers — and every way shards fail to make one experiment is named,
//! with the command that fixes it. A killed shard is resumed alone and then merged.

mod common;

use std::path::{Path, PathBuf};

use common::{count_markers, exp, fixture, json, run, spawn, text, wait_until};

/// Runs `exp run` with these arguments (plus `--no-progress`) and returns its run directory.
fn run_into(args: &[&str]) -> PathBuf {
    let mut all = vec!["run"];
    all.extend(args);
    all.push("--no-progress");
    run(all).expect_code(0).run_dir()
}

fn merge(shards: &[&Path], out: &Path) -> common::Outcome {
    let mut args = vec!["merge".to_string()];
    args.extend(shards.iter().map(|p| p.display().to_string()));
    args.extend(["--out".into(), out.display().to_string()]);
    run(args)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn merged_shards_have_the_statistics_of_the_unsharded_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("reports");
    let scenario = fixture("tiny_sim.toml");
    let whole = run_into(&[&scenario, "--out", s(&tmp.path().join("whole"))]);
    // Three shards of ten rounds: 4, 3 and 3 rounds, on two "nodes".
    let shards: Vec<PathBuf> = (1..=3)
        .map(|k| {
            let mut cmd = exp([
                "run",
                &scenario,
                "--shard",
                &format!("{k}/3"),
                "--out",
                s(&out),
                "--no-progress",
            ]);
            cmd.env("EXP_NODE", if k == 2 { "node-b" } else { "node-a" });
            let dir = spawn(cmd).wait().expect_code(0).run_dir();
            assert!(
                dir.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .ends_with(&format!("-shard-{k}-of-3")),
                "{}",
                dir.display()
            );
            dir
        })
        .collect();
    let m = json(&shards[1].join("manifest.json"));
    assert_eq!(m["shard"]["index"], 2);
    assert_eq!(m["shard"]["count"], 3);
    assert_eq!(m["shard"]["rounds"], serde_json::json!([1, 4, 7]));
    assert_eq!(m["node"]["name"], "node-b");
    assert!(m["node"]["cpus"].as_u64().unwrap() >= 1);
    // Every slot of the shard's rounds, in the unsharded run's order.
    let whole_schedule = json(&whole.join("manifest.json"))["schedule"].clone();
    let mine: Vec<&serde_json::Value> = (whole_schedule.as_array().unwrap().iter())
        .filter(|slot| [1, 4, 7].contains(&slot[0].as_u64().unwrap()))
        .collect();
    assert_eq!(
        m["schedule"].as_array().unwrap().iter().collect::<Vec<_>>(),
        mine
    );
    assert!(text(&shards[1].join("report.md")).contains("this run is shard 2/3"));

    // Given in any order.
    let merged = tmp.path().join("merged");
    let refs: Vec<&Path> = [2, 0, 1].iter().map(|&i| shards[i].as_path()).collect();
    let outcome = merge(&refs, &merged).expect_code(0);
    assert_eq!(outcome.run_dir(), merged);
    assert_eq!(common::statistics(&merged), common::statistics(&whole));
    let manifest = json(&merged.join("manifest.json"));
    assert_eq!(manifest["status"], "complete");
    assert_eq!(manifest["schedule"], whole_schedule);
    assert_eq!(manifest["merged"].as_array().unwrap().len(), 3);
    assert_eq!(manifest["merged"][1]["node"]["name"], "node-b");
    let report = text(&merged.join("report.md"));
    assert!(report.contains("## Shards and nodes"), "{report}");
    assert!(report.contains("| 2/3 | node-b |"), "{report}");
    let nodes = json(&merged.join("summary.json"))["nodes"].clone();
    assert_eq!(nodes["nodes"][0]["name"], "node-a");
    assert_eq!(nodes["nodes"][0]["shards"], serde_json::json!([1, 3]));

    // `exp report` and `exp compare` read it as any run.
    run(["report", s(&merged)]).expect_code(0);
    assert_eq!(common::statistics(&merged), common::statistics(&whole));
    let compare = run(["compare", s(&whole), s(&merged)]).expect_code(0);
    assert!(!compare.stdout.contains("regression"), "{}", compare.stdout);
}

#[test]
fn a_missing_or_doubled_shard_is_named_with_the_command_that_fixes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("runs");
    let scenario = fixture("tiny_sim.toml");
    let one = run_into(&[
        &scenario,
        "--shard",
        "1/3",
        "--out",
        s(&out),
        "--run-id",
        "job7-shard-1-of-3",
        "--set",
        "experiment.repetitions=6",
    ]);
    assert_eq!(one, out.join("tiny_sim/job7-shard-1-of-3"));
    let merged = tmp.path().join("merged");
    let missing = |k: u32, rounds: &str| {
        format!(
            "  - shard {k}/3 is missing (rounds {rounds}): run it with `exp run tests/fixtures/cli/tiny_sim.toml --shard {k}/3 --out {} --run-id job7-shard-{k}-of-3 --set experiment.repetitions=6`, then merge again with its run directory",
            out.display()
        )
    };
    let outcome = merge(&[&one, &one], &merged).expect_code(2);
    assert_eq!(
        outcome.stderr.trim_end(),
        format!(
            "error: cannot merge these shards:\n  - shard 1/3 is given 2 times ({0}, {0}): it holds the same rounds each time; give one of them\n{1}\n{2}",
            one.display(),
            missing(2, "1, 4"),
            missing(3, "2, 5")
        )
    );
    assert!(!merged.exists());

    // The suggested command, run as printed, gives the missing shard; a folder that is not
    // there is named too.
    let two = run_into(&[
        &scenario,
        "--shard",
        "2/3",
        "--out",
        s(&out),
        "--run-id",
        "job7-shard-2-of-3",
        "--set",
        "experiment.repetitions=6",
    ]);
    let nowhere = out.join("tiny_sim/job7-shard-3-of-3");
    let outcome = merge(&[&one, &two, &nowhere], &merged).expect_code(2);
    assert_eq!(
        outcome.stderr.trim_end(),
        format!(
            "error: cannot merge these shards:\n  - {}: not a run directory (no such folder)\n{}",
            nowhere.display(),
            missing(3, "2, 5")
        )
    );

    // A shard of another experiment (another seed) does not belong.
    let other = run_into(&[
        &scenario,
        "--shard",
        "3/3",
        "--out",
        s(&tmp.path().join("other")),
        "--set",
        "experiment.repetitions=6",
        "--set",
        "experiment.seed=8",
    ]);
    let outcome = merge(&[&one, &two, &other], &merged).expect_code(2);
    assert_eq!(
        outcome.stderr.trim_end(),
        format!(
            "error: cannot merge these shards:\n  - {} does not belong with {}: seed 8 ≠ 7; --set [\"experiment.repetitions=6\", \"experiment.seed=8\"] ≠ [\"experiment.repetitions=6\"] (every shard must run the same scenario file with the same --set and --target, on the same exp)\n{}",
            other.display(),
            one.display(),
            missing(3, "2, 5")
        )
    );

    // An unsharded run is not a shard.
    let whole = run_into(&[
        &scenario,
        "--out",
        s(&tmp.path().join("whole")),
        "--set",
        "experiment.repetitions=6",
    ]);
    let outcome = merge(&[&whole], &merged).expect_code(2);
    assert_eq!(
        outcome.stderr.trim_end(),
        format!(
            "error: cannot merge these shards:\n  - {}: not a shard (it ran without --shard); only the shards of one `exp run --shard K/N` experiment merge",
            whole.display()
        )
    );
}

#[test]
fn what_a_shard_cannot_decide_alone_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().display().to_string();
    let refused = |args: &[&str]| {
        let mut all = vec!["run", "--out", &out, "--no-progress"];
        all.extend(args);
        let o = run(all).expect_code(2);
        o.stderr.trim_end().to_string()
    };
    let adaptive = fixture("adaptive_sim.toml");
    assert_eq!(
        refused(&[&adaptive, "--shard", "1/2"]),
        "error: tests/fixtures/cli/adaptive_sim.toml: --shard 1/2: adaptive repetitions decide after each look whether to add rounds, from every round so far, which no single shard holds; shard a fixed number of rounds instead (e.g. `--set experiment.repetitions=12`, the adaptive maximum, on every shard), or run without --shard"
    );
    let search = fixture("search_sim.toml");
    assert_eq!(
        refused(&[&search, "--shard", "1/2"]),
        "error: tests/fixtures/cli/search_sim.toml: --shard 1/2: a [search] chooses each next load from the probes measured so far, which no single shard sees; run the search without --shard"
    );
    let tiny = fixture("tiny_sim.toml");
    let baseline = run_into(&[&tiny, "--out", &out, "--set", "experiment.repetitions=2"]);
    assert_eq!(
        refused(&[&tiny, "--shard", "1/2", "--baseline", s(&baseline)]),
        "error: --shard 1/2: --baseline compares a whole run and a shard holds only some of its rounds; merge the shards (`exp merge`), then `exp compare BASELINE MERGED` (extra looks need the whole run too: run them without --shard)"
    );
    assert_eq!(
        refused(&[&tiny, "--shard", "1/11"]),
        "error: --shard 1/11: the scenario plans 10 rounds, so at most 10 shards can each run one; use --shard K/10 or fewer shards (or raise [experiment] repetitions)"
    );
    assert!(refused(&[&tiny, "--shard", "3/2"]).starts_with(
        "error: invalid value '3/2' for '--shard <K/N>': shard 3 of 2 does not exist (K is 1 ..= 2)"
    ),);
}

#[test]
fn a_killed_shard_is_resumed_alone_and_merged() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("runs");
    let scenario = fixture("resume.toml");
    let reps = "experiment.repetitions=4";
    let one = run_into(&[&scenario, "--shard", "1/2", "--out", s(&out), "--set", reps]);
    // Shard 2 is killed after its first repetition.
    let running = spawn(exp([
        "run",
        &scenario,
        "--shard",
        "2/2",
        "--out",
        s(&out),
        "--run-id",
        "r-shard-2-of-2",
        "--set",
        reps,
        "--no-progress",
    ]));
    let two = out.join("resume/r-shard-2-of-2");
    wait_until("a finished repetition of shard 2", || {
        count_markers(&two) >= 1
    });
    running.signal(libc::SIGKILL);
    let killed = running.wait();
    assert!(killed.status.code().is_none(), "{killed:?}");
    let done = count_markers(&two);
    assert!(
        done < 6,
        "shard 2 finished before it was killed ({done} repetitions)"
    );

    let merged = tmp.path().join("merged");
    let outcome = merge(&[&one, &two], &merged).expect_code(2);
    let rounds_done = if done >= 3 { 1 } else { 0 };
    assert_eq!(
        outcome.stderr.trim_end(),
        format!(
            "error: cannot merge these shards:\n  - shard 2/2 ({0}) is not finished: interrupted, {rounds_done} of 2 rounds complete; finish it with `exp run --resume {0}`, then merge again",
            two.display()
        )
    );
    run(["run", "--resume", s(&two), "--no-progress"]).expect_code(0);
    merge(&[&one, &two], &merged).expect_code(0);
    let whole = run_into(&[
        &scenario,
        "--out",
        s(&tmp.path().join("whole")),
        "--set",
        reps,
    ]);
    assert_eq!(common::statistics(&merged), common::statistics(&whole));
}

/// On request a shard holds whole cells instead (`--shard-by cells`): the merge is still the
/// unsharded run's statistics, and the report says loudly that cells on different nodes are
/// compared across nodes. A missing shard is named with its cells and the command with
/// `--shard-by cells`.
#[test]
fn shards_by_cells_merge_exactly_and_the_report_warns_of_the_confounding() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("reports");
    let scenario = fixture("tiny_sim.toml");
    let reps = "experiment.repetitions=3";
    // Four cells in matrix order: output 8 and 16 at rate 5, then at rate 10. By cells over
    // two shards, node-a gets the outputs of 8 and node-b those of 16, so both comparisons of
    // output_tokens (one per rate) cross nodes.
    let sweep = "vars.sweep.output_tokens=[8,16]";
    let whole = run_into(&[
        &scenario,
        "--out",
        s(&tmp.path().join("whole")),
        "--set",
        reps,
        "--set",
        sweep,
    ]);
    let shards: Vec<PathBuf> = (1..=2)
        .map(|k| {
            let mut cmd = exp([
                "run",
                &scenario,
                "--shard",
                &format!("{k}/2"),
                "--shard-by",
                "cells",
                "--run-id",
                &format!("job9-shard-{k}-of-2"),
                "--out",
                s(&out),
                "--set",
                reps,
                "--set",
                sweep,
                "--no-progress",
            ]);
            cmd.env("EXP_NODE", if k == 2 { "node-b" } else { "node-a" });
            spawn(cmd).wait().expect_code(0).run_dir()
        })
        .collect();
    let m = json(&shards[1].join("manifest.json"));
    assert_eq!(m["shard"]["by"], "cells");
    assert_eq!(m["shard"]["rounds"], serde_json::json!([0, 1, 2]));
    let cells: Vec<u64> = (m["schedule"].as_array().unwrap().iter())
        .map(|slot| slot[1].as_u64().unwrap())
        .collect();
    let mut held = cells.clone();
    held.sort();
    assert_eq!(
        held,
        vec![1, 1, 1, 3, 3, 3],
        "shard 2 holds cells 1 and 3, every round"
    );

    let missing = merge(&[&shards[0]], &tmp.path().join("half")).expect_code(2);
    assert!(
        missing.stderr.contains(&format!(
            "  - shard 2/2 is missing (cells output_tokens-16_request_rate-5, output_tokens-16_request_rate-10): run it with `exp run tests/fixtures/cli/tiny_sim.toml --shard 2/2 --out {} --shard-by cells --run-id job9-shard-2-of-2 --set {reps} --set '{sweep}'`, then merge again with its run directory",
            out.display()
        )),
        "{}",
        missing.stderr
    );

    let merged = tmp.path().join("merged");
    merge(&[&shards[1], &shards[0]], &merged).expect_code(0);
    // The same numbers; one more warning, first.
    let mut stats = common::statistics(&merged);
    let warnings = stats["warnings"].as_array_mut().unwrap();
    let loud = warnings.remove(0);
    assert!(
        loud.as_str().unwrap().starts_with("SHARDED BY CELLS"),
        "{loud}"
    );
    assert_eq!(stats, common::statistics(&whole));
    let report = text(&merged.join("report.md"));
    assert!(report.contains("⚠ **Sharded by cells**"), "{report}");
    assert!(
        report.contains("- ⚠ SHARDED BY CELLS: each cell ran on one node (node-a: output_tokens-8_request_rate-5, output_tokens-8_request_rate-10; node-b: output_tokens-16_request_rate-5, output_tokens-16_request_rate-10); 2 of 2 compared cell pairs ran on different nodes and their differences include the nodes' own difference"),
        "{report}"
    );
    assert!(report.contains("| 2/2 | node-b |"), "{report}");
    assert!(json(&merged.join("summary.json"))["nodes"].is_null());
}
