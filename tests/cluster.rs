//! Issue 14: what `exp slurm` and `exp k8s` write runs the experiment's shards and merges
//! them. Without a cluster here, each job's command runs locally with the environment its
//! scheduler would give it (`SLURM_ARRAY_TASK_ID`, `JOB_COMPLETION_INDEX`); the real Slurm
//! run is `scripts/slurm-ci.sh` in `.ci/run`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{fixture, json, root, run, spawn};

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
        common::statistics(&merged),
        common::statistics(&unsharded(tmp.path(), &scenario))
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
    // A fan-out's refusal names the flag given here, not `exp run`'s `--client 1/N`.
    let sim = refused(&[&tiny, "--clients", "2"]);
    assert!(
        sim.starts_with("error: tests/fixtures/cli/tiny_sim.toml: --clients 2: cell "),
        "{sim}"
    );
    assert!(!dir.exists());
}

/// The command and environment of a pod of `job`, as the kubelet would run it: the
/// container's command, `EXP_NODE` from the pod's node (the downward API), and for an
/// Indexed Job `JOB_COMPLETION_INDEX`.
fn pod_command(job: &k8s_openapi::api::batch::v1::Job, index: Option<u32>) -> Command {
    let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let container = &pod.containers[0];
    let words = container.command.as_ref().unwrap();
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..]).current_dir(root());
    for env in container.env.iter().flatten() {
        let field = env.value_from.as_ref().and_then(|v| v.field_ref.as_ref());
        assert_eq!(field.unwrap().field_path, "spec.nodeName", "{env:?}");
        cmd.env(&env.name, format!("node-{}", index.unwrap_or(9)));
    }
    if let Some(i) = index {
        cmd.env("JOB_COMPLETION_INDEX", i.to_string());
    }
    cmd
}

#[test]
fn kubernetes_manifests_are_api_objects_whose_pods_run_the_experiment() {
    use k8s_openapi::api::batch::v1::Job;
    use k8s_openapi::api::core::v1::ConfigMap;

    let tmp = tempfile::tempdir().unwrap();
    let scenario = fixture("tiny_sim.toml");
    let dir = tmp.path().join("k8s");
    // The volumes' mount points, here: the kubelet's part is played below.
    let runs = tmp.path().join("runs");
    let mounted = tmp.path().join("scenario");
    let written = run([
        "k8s",
        &scenario,
        "--shards",
        "2",
        "--image",
        "registry.example/exp:1",
        "--claim",
        "bench-runs",
        "--namespace",
        "bench",
        "--runs-path",
        runs.to_str().unwrap(),
        "--scenario-path",
        mounted.to_str().unwrap(),
        "--exp",
        env!("CARGO_BIN_EXE_exp"),
        "--dir",
        dir.to_str().unwrap(),
    ])
    .expect_code(0);
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let config: ConfigMap = serde_json::from_str(&read("configmap.json")).unwrap();
    let shards: Job = serde_json::from_str(&read("shards-job.json")).unwrap();
    let merge: Job = serde_json::from_str(&read("merge-job.json")).unwrap();
    // A shard failed past its retries never finishes: the merge gives up after a day.
    let merge_spec = merge.spec.as_ref().unwrap();
    assert_eq!(merge_spec.active_deadline_seconds, Some(24 * 3600));

    let spec = shards.spec.as_ref().unwrap();
    assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
    assert_eq!((spec.completions, spec.parallelism), (Some(2), Some(2)));
    assert_eq!(shards.metadata.namespace.as_deref(), Some("bench"));
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(
        pod.containers[0].image.as_deref(),
        Some("registry.example/exp:1")
    );
    let volumes = pod.volumes.as_ref().unwrap();
    let claim = volumes[0].persistent_volume_claim.as_ref().unwrap();
    assert_eq!(claim.claim_name, "bench-runs");
    let map = volumes[1].config_map.as_ref().unwrap();
    assert_eq!(Some(&map.name), config.metadata.name.as_ref());

    // The kubelet mounts the ConfigMap: its one key is the scenario file.
    let data = config.data.unwrap();
    assert_eq!(data.len(), 1);
    std::fs::create_dir_all(&mounted).unwrap();
    for (file, text) in &data {
        assert_eq!(file, "tiny_sim.toml");
        assert_eq!(text, &common::text(&root().join(&scenario)));
        std::fs::write(mounted.join(file), text).unwrap();
    }
    for index in [1, 0] {
        let o = spawn(pod_command(&shards, Some(index))).wait();
        assert_eq!(o.code(), 0, "{o:?}");
        let m = json(&o.run_dir().join("manifest.json"));
        assert_eq!(m["shard"]["index"], index + 1);
        assert_eq!(m["node"]["name"], format!("node-{index}"));
    }
    let o = spawn(pod_command(&merge, None)).wait();
    assert_eq!(o.code(), 0, "{o:?}");
    let merged = merged_dir(&written.stdout);
    assert_eq!(o.run_dir(), merged);
    assert_eq!(
        common::statistics(&merged),
        common::statistics(&unsharded(tmp.path(), &scenario))
    );
}
