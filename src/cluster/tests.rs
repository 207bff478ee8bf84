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
