//! Issue 14: what `exp slurm` and `exp k8s` write runs the experiment's shards and merges
//! them. Without a cluster here, each job's command runs locally with the environment its
//! scheduler would give it (`SLURM_ARRAY_TASK_ID`, `JOB_COMPLETION_INDEX`); the real Slurm
//! run is `scripts/slurm-ci.sh` in `.ci/run`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{fixture, json, root, run, spawn};

fn statistics(dir: &Path) -> serde_json::Value {
    let mut s = json(&dir.join("summary.json"));
    let o = s.as_object_mut().unwrap();
    o.remove("run_id");
    o.remove("nodes");
    for rep in o["repetitions"].as_array_mut().unwrap() {
        rep.as_object_mut().unwrap().remove("wall_seconds");
    }
    s
}

fn unsharded(tmp: &Path, scenario: &str) -> PathBuf {
    let out = tmp.join("whole");
    run([
        "run",
        scenario,
        "--out",
        out.to_str().unwrap(),
        "--no-progress",
    ])
    .expect_code(0)
    .run_dir()
}

/// `merged run directory: <path>` from `exp slurm`/`exp k8s`.
fn merged_dir(stdout: &str) -> PathBuf {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("merged run directory: "))
        .unwrap_or_else(|| panic!("no merged run directory in:\n{stdout}"));
    root().join(line.trim())
}

fn bash(script: &Path, env: &[(&str, &str)]) -> common::Outcome {
    let mut cmd = Command::new("bash");
    cmd.arg(script).current_dir(root());
    for (k, v) in env {
        cmd.env(k, v);
    }
    spawn(cmd).wait()
}

#[test]
fn slurm_scripts_run_each_shard_and_the_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = fixture("tiny_sim.toml");
    let dir = tmp.path().join("slurm");
    let out = tmp.path().join("reports");
    let written = run([
        "slurm",
        &scenario,
        "--shards",
        "2",
        "--partition",
        "gpu",
        "--out",
        out.to_str().unwrap(),
        "--dir",
        dir.to_str().unwrap(),
        "--",
        "--gres=gpu:1",
        "--time=01:00:00",
    ])
    .expect_code(0);
    let shards = common::text(&dir.join("shards.sbatch"));
    for line in [
        "#SBATCH --array=1-2",
        "#SBATCH --partition=gpu",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --time=01:00:00",
    ] {
        assert!(shards.contains(line), "{line} missing:\n{shards}");
    }
    let submit = common::text(&dir.join("submit.sh"));
    assert!(
        submit.contains("--dependency=afterok:\"$shards\""),
        "{submit}"
    );
    let merged = merged_dir(&written.stdout);

    // Array task 2 first, then 1: each is `exp run --shard K/2`.
    for k in ["2", "1"] {
        let o = bash(&dir.join("shards.sbatch"), &[("SLURM_ARRAY_TASK_ID", k)]);
        assert_eq!(o.code(), 0, "{o:?}");
        assert!(o.stderr.contains(&format!("shard {k}/2 complete")), "{o:?}");
    }
    // A task run again (a requeued or resubmitted task) resumes its directory.
    let again = bash(&dir.join("shards.sbatch"), &[("SLURM_ARRAY_TASK_ID", "1")]);
    assert_eq!(again.code(), 0, "{again:?}");
    let first = merged.with_file_name(format!(
        "{}-shard-1-of-2",
        merged.file_name().unwrap().to_string_lossy()
    ));
    assert_eq!(again.run_dir(), first);
    let o = bash(&dir.join("merge.sbatch"), &[]);
    assert_eq!(o.code(), 0, "{o:?}");
    assert_eq!(
        statistics(&merged),
        statistics(&unsharded(tmp.path(), &scenario))
    );
}

#[test]
fn slurm_refuses_what_cannot_be_sharded_or_would_leak() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let d = dir.to_str().unwrap();
    let refused = |args: &[&str]| {
        let mut all = vec!["slurm", "--dir", d];
        all.extend(args);
        run(all).expect_code(2).stderr.trim_end().to_string()
    };
    let tiny = fixture("tiny_sim.toml");
    assert_eq!(
        refused(&[&tiny, "--shards", "11"]),
        "error: --shards 11: each shard runs whole rounds and the scenario plans 10, so 1 to 10 shards (or raise [experiment] repetitions)"
    );
    assert_eq!(
        refused(&[&tiny, "--shards", "2", "--", "gres=gpu:1"]),
        "error: sbatch option \"gres=gpu:1\": each option after `--` is one `#SBATCH` line and starts with `-` (e.g. `-- --gres=gpu:1 --time=02:00:00`)"
    );
    assert_eq!(
        refused(&[&fixture("adaptive_sim.toml"), "--shards", "2"]),
        "error: tests/fixtures/cli/adaptive_sim.toml: adaptive repetitions decide after each look whether to add rounds, from every round so far, which no single shard holds; fan out a fixed number of rounds (e.g. `--set experiment.repetitions=12`)"
    );
    assert!(!dir.exists());
}
