//! The report's "Shards and nodes" section of a merged run (`exp merge`): which shard ran
//! which rounds on which machine, and each node's effect on the primary metrics
//! (`analysis::nodes`).

use serde::Serialize;

use crate::analysis::nodes::NodeEffects;
use crate::shard::rounds_text;
use crate::store::Manifest;
use crate::units;

/// Shards, their nodes and the per-node effects.
#[derive(Debug, Clone, Serialize)]
pub struct NodesView {
    /// One row per shard.
    pub shards: Vec<ShardRow>,
    /// Primary metrics with a per-node effect (the effect table's columns).
    pub metrics: Vec<String>,
    /// One row per node: its effect on each metric.
    pub rows: Vec<NodeRow>,
    /// The F-test across nodes per metric (`p = 0.41`, or `—` with one node).
    pub tests: Vec<String>,
}

/// A shard of a merged run.
#[derive(Debug, Clone, Serialize)]
pub struct ShardRow {
    /// `2/4`.
    pub shard: String,
    /// Node name.
    pub node: String,
    /// CPUs, memory and GPUs.
    pub hardware: String,
    /// Its rounds (`1, 3, 5`).
    pub rounds: String,
    /// Its run id.
    pub run_id: String,
    /// Its start and end (wall clock).
    pub time: String,
}

/// A node's effect on each primary metric.
#[derive(Debug, Clone, Serialize)]
pub struct NodeRow {
    /// Node name.
    pub node: String,
    /// Its shards (`1, 3`).
    pub shards: String,
    /// Rounds it ran.
    pub rounds: usize,
    /// Effect per metric (`+1.20 %`), same order as `metrics`.
    pub effects: Vec<String>,
}

/// The section of a merged run; `None` for any other run.
pub fn build(manifest: &Manifest, effects: Option<&NodeEffects>) -> Option<NodesView> {
    let effects = effects?;
    let shards = (manifest.merged.iter())
        .map(|s| ShardRow {
            shard: format!("{}/{}", s.shard.index, s.shard.count),
            node: s.node.as_ref().map_or("unknown".into(), |n| n.name.clone()),
            hardware: s
                .node
                .as_ref()
                .map_or("not recorded".into(), |n| n.hardware_text()),
            rounds: rounds_text(&s.shard.rounds),
            run_id: s.run_id.clone(),
            time: format!("{} → {}", s.started, s.ended.as_deref().unwrap_or("?")),
        })
        .collect();
    let rows = (effects.nodes.iter().enumerate())
        .map(|(i, n)| NodeRow {
            node: n.name.clone(),
            shards: (n.shards.iter().map(u32::to_string))
                .collect::<Vec<_>>()
                .join(", "),
            rounds: n.rounds.len(),
            effects: effects.metrics.iter().map(|t| t.effect_text(i)).collect(),
        })
        .collect();
    Some(NodesView {
        shards,
        metrics: effects
            .metrics
            .iter()
            .map(|t| t.metric.to_string())
            .collect(),
        rows,
        tests: (effects.metrics.iter())
            .map(|t| match t.p {
                Some(p) => format!(
                    "p = {}{}",
                    units::p_value(p),
                    if t.differs { " ⚠" } else { "" }
                ),
                None => "—".into(),
            })
            .collect(),
    })
}
