use super::*;
use crate::analysis::RepResult;
use crate::metrics::RepetitionSummary;
use crate::metrics::registry::k;

fn settings() -> Settings {
    let text = r#"
[experiment]
name = "t"
description = "test"
[target]
kind = "sim"
model_config = "llama-3.1-8b"
gpu = "h100-sxm"
[vars.fixed]
request_rate = 10
[analysis]
primary = ["output_throughput", "error_rate"]
"#;
    crate::scenario::parse(text, std::path::Path::new("t.toml"), &[])
        .unwrap()
        .analysis
}

/// Two cells × `rounds` rounds: throughput 100 and 200 times (1 + noise), times `slow` on
/// odd rounds (the second node's).
fn cells(rounds: u32, slow: f64) -> Vec<CellResults> {
    let noise = [
        0.004, -0.006, 0.002, 0.0, -0.003, 0.005, -0.001, 0.003, -0.004, 0.001,
    ];
    [100.0, 200.0]
        .iter()
        .enumerate()
        .map(|(c, level)| CellResults {
            id: format!("c{c}"),
            vars: Default::default(),
            swept: Default::default(),
            reps: (0..rounds)
                .map(|r| {
                    let mut summary = RepetitionSummary::default();
                    let node = if r % 2 == 1 { slow } else { 1.0 };
                    let jitter = noise[(r as usize + 3 * c) % noise.len()];
                    summary
                        .values
                        .insert(k("output_throughput"), level * node * (1.0 + jitter));
                    summary.values.insert(k("error_rate"), 0.0);
                    RepResult {
                        round: r,
                        order: r as usize,
                        summary,
                        wall_seconds: 1.0,
                        client_cpu_seconds: None,
                    }
                })
                .collect(),
        })
        .collect()
}

fn two_nodes(rounds: u32) -> Vec<NodeShards> {
    (1..=2)
        .map(|i| NodeShards {
            name: format!("n{i}"),
            shards: vec![i],
            rounds: (0..rounds).filter(|r| r % 2 == i - 1).collect(),
            hardware: Some(Node {
                name: format!("n{i}"),
                cpu_model: Some("EPYC".into()),
                cpus: Some(8),
                ..Default::default()
            }),
        })
        .collect()
}

#[test]
fn a_node_ten_percent_slower_is_flagged_by_name() {
    let e = effects(&settings(), &cells(10, 0.9), two_nodes(10));
    let tput = &e.metrics[0];
    assert_eq!(tput.metric, k("output_throughput"));
    // Geometric mean of 1 and 0.9 is 0.949: node 1 sits +5.4 % above it, node 2 −5.1 %.
    let n1 = tput.effects[0].unwrap();
    let n2 = tput.effects[1].unwrap();
    assert!((n1 - (1.0 / 0.9f64.sqrt() - 1.0)).abs() < 0.003, "{n1}");
    assert!((n2 - (0.9f64.sqrt() - 1.0)).abs() < 0.003, "{n2}");
    assert!(tput.differs && tput.p.unwrap() < 1e-6);
    assert_eq!(e.warnings.len(), 1, "{:?}", e.warnings);
    assert!(
        e.warnings[0]
            .starts_with("node `n1` (shard 1) differs from the other nodes: output_throughput +5."),
        "{}",
        e.warnings[0]
    );
    // error_rate is a proportion: an absolute effect, 0 on both nodes, not flagged.
    assert_eq!(e.metrics[1].effect_text(0), "+0 pp");
    assert!(!e.metrics[1].differs);
}

#[test]
fn equal_nodes_are_not_flagged_and_one_node_is_not_tested() {
    let e = effects(&settings(), &cells(10, 1.0), two_nodes(10));
    assert!(e.warnings.is_empty(), "{:?}", e.warnings);
    assert!(!e.metrics[0].differs);
    let one = vec![NodeShards {
        name: "n".into(),
        shards: vec![1, 2],
        rounds: (0..10).collect(),
        hardware: None,
    }];
    let e = effects(&settings(), &cells(10, 0.9), one);
    assert_eq!(e.metrics[0].p, None);
    assert!(e.warnings.is_empty());
}

#[test]
fn different_hardware_is_named() {
    let mut nodes = two_nodes(10);
    nodes[1].hardware.as_mut().unwrap().gpus = vec!["NVIDIA A100".into()];
    let e = effects(&settings(), &cells(10, 1.0), nodes);
    assert_eq!(
        e.warnings,
        vec![
            "the shards ran on different hardware (`n1`: 8 × EPYC; `n2`: 8 × EPYC, 1 × NVIDIA A100): absolute figures depend on which node ran a round; comparisons between cells stay within a node"
        ]
    );
}
