use super::*;

fn fanout(name: &str) -> Fanout {
    Fanout {
        name: name.into(),
        id: "2025-06-01T12-00-00Z".into(),
        shards: 3,
        by: crate::shard::ShardBy::Rounds,
        exp: "/opt/exp bin/exp".into(),
        scenario: "scenarios/x.toml".into(),
        out: "reports".into(),
        options: vec!["--set".into(), "vars.sweep.request_rate=[5,10]".into()],
    }
}

#[test]
fn run_directories_are_named_before_anything_runs() {
    let f = fanout("x");
    assert_eq!(
        f.shard_dir("2"),
        "reports/x/2025-06-01T12-00-00Z-shard-2-of-3"
    );
    assert_eq!(f.merged_dir(), "reports/x/2025-06-01T12-00-00Z");
    assert_eq!(
        f.shard_script("$k"),
        "dir=\"reports/x/2025-06-01T12-00-00Z-shard-$k-of-3\"\n\
         if [ -f \"$dir/manifest.json\" ]; then\n  \
         exec '/opt/exp bin/exp' run --no-progress --resume \"$dir\"\n\
         else\n  \
         exec '/opt/exp bin/exp' run scenarios/x.toml --out reports --no-progress --set 'vars.sweep.request_rate=[5,10]' --shard \"$k/3\" --run-id \"2025-06-01T12-00-00Z-shard-$k-of-3\"\n\
         fi\n"
    );
}

#[test]
fn shards_by_cells_are_started_with_shard_by_cells() {
    let f = Fanout {
        by: crate::shard::ShardBy::Cells,
        ..fanout("x")
    };
    assert!(
        f.shard_script("$k")
            .contains(" --set 'vars.sweep.request_rate=[5,10]' --shard-by cells --shard \"$k/3\""),
        "{}",
        f.shard_script("$k")
    );
    let each: Vec<_> = f.each().map(|s| (s.index, s.by)).collect();
    assert_eq!(each[2], (3, crate::shard::ShardBy::Cells));
}

#[test]
fn kubernetes_names_are_dns_labels_short_enough_for_pods() {
    for name in ["x", "short_ctx_high_qps", &"long_name_".repeat(10)] {
        let base = k8s::base_name(&fanout(name));
        assert!(base.len() + "-shards".len() <= 52, "{base}");
        assert!(
            base.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{base}"
        );
        assert!(base.starts_with("exp-") && base.ends_with("-2025-06-01t12-00-00z"));
    }
}

#[test]
fn a_load_fan_out_is_one_job_of_srun_tasks_then_the_merge() {
    let f = Fanout {
        shards: 2,
        ..fanout("x")
    };
    assert_eq!(
        f.client_script("$k", "$at"),
        "exec '/opt/exp bin/exp' run scenarios/x.toml --out reports --no-progress --set 'vars.sweep.request_rate=[5,10]' --client \"$k/2\" --start-at \"$at\" --run-id \"2025-06-01T12-00-00Z-client-$k-of-2\"\n"
    );
    // Unless the options place the tasks, one client per node.
    let mut o = slurm::Options {
        partition: None,
        sbatch: vec![],
        dir: "/shared/slurm".into(),
        chdir: "/shared".into(),
    };
    let default = slurm::client_files(&f, &o, 60);
    assert!(
        default[0]
            .1
            .contains("#SBATCH --ntasks=2\n#SBATCH --ntasks-per-node=1\n")
    );
    o.sbatch = vec!["--ntasks-per-node=2".into()];
    let packed = slurm::client_files(&f, &o, 60);
    assert!(
        !packed[0].1.contains("--ntasks-per-node=1"),
        "{}",
        packed[0].1
    );
    o.sbatch = vec!["--ntasks-per-node=1".into()];
    let files = slurm::client_files(&f, &o, 60);
    assert_eq!(files[0].1.matches("--ntasks-per-node=1").count(), 1);
    let names: Vec<&str> = files.iter().map(|(n, _, _)| *n).collect();
    assert_eq!(names, ["clients.sbatch", "client.sh", "submit.sh"]);
    let job = &files[0].1;
    for line in [
        "#SBATCH --ntasks=2\n",
        "#SBATCH --ntasks-per-node=1\n",
        "at=$(date -u -d '+60 seconds' +%Y-%m-%dT%H:%M:%S.%3NZ)\n",
        "srun --ntasks=2 --kill-on-bad-exit=0 sh /shared/slurm/client.sh \"$at\"",
        "exec '/opt/exp bin/exp' merge --clients reports/x/2025-06-01T12-00-00Z-client-1-of-2 reports/x/2025-06-01T12-00-00Z-client-2-of-2 --out reports/x/2025-06-01T12-00-00Z\n",
    ] {
        assert!(job.contains(line), "{line} missing:\n{job}");
    }
    assert!(files[1].1.contains("k=$((SLURM_PROCID + 1))\nat=$1\nexec "));
    assert!(
        files[2]
            .1
            .contains("job=$(sbatch --parsable /shared/slurm/clients.sbatch)")
    );
}

/// A client pod is not retried, and `exp merge --clients` fails the repetitions a stopped
/// client did not finish: the clients' merge waits for any ending, not only a finished one
/// (a shard's waits for complete or partial, since a shard is retried).
#[test]
fn a_kubernetes_clients_merge_waits_for_a_client_that_stopped() {
    let options = super::k8s::Options {
        image: "exp:1".into(),
        claim: "exp-runs".into(),
        runs_path: "/runs".into(),
        scenario_path: "/scenario".into(),
        scenario_file: ("x.toml".into(), String::new()),
        namespace: None,
        merge_deadline_s: 60,
    };
    let merge_script = |objects: Vec<(String, serde_json::Value)>| {
        let (_, job) = objects
            .into_iter()
            .find(|(name, _)| name == "merge-job.json")
            .expect("a merge Job");
        job.to_string()
    };
    let clients = merge_script(super::k8s::client_manifests(&fanout("x"), &options, 5));
    assert!(
        clients.contains(r#"(complete|partial|interrupted|failed)"#),
        "{clients}"
    );
    let shards = merge_script(super::k8s::manifests(&fanout("x"), &options));
    assert!(shards.contains(r#"(complete|partial)\""#), "{shards}");
}
