//! The report's "Shards and nodes" section of a merged run (`exp merge`): which shard ran
//! which rounds on which machine, and each node's effect on the primary metrics
//! (`analysis::nodes`).

use serde::Serialize;

use crate::analysis::nodes::NodeEffects;
use crate::shard::{ShardBy, rounds_text};
use crate::store::Manifest;
use crate::units;

/// Shards, their nodes and the per-node effects.
#[derive(Debug, Clone, Serialize)]
pub struct NodesView {
    /// The shards held whole cells (`--shard-by cells`): no per-node effects, since each
    /// cell's node is confounded with the cell.
    pub by_cells: bool,
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
    /// What it held: its rounds (`1, 3, 5`), or its cells by cells.
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

/// The section of a merged run (its node effects when sharded by rounds); `None` for any
/// other run.
pub fn build(manifest: &Manifest, effects: Option<&NodeEffects>) -> Option<NodesView> {
    if manifest.merged.is_empty() {
        return None;
    }
    let ids: Vec<&str> = manifest.cells.iter().map(|c| c.id.as_str()).collect();
    let holds = |s: &crate::store::ShardRecord| match s.by {
        ShardBy::Rounds => rounds_text(&s.rounds),
        ShardBy::Cells => (s.shard().cells(ids.len()).into_iter())
            .filter_map(|c| ids.get(c).map(|id| format!("`{id}`")))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let shards = (manifest.merged.iter())
        .map(|s| ShardRow {
            shard: format!("{}/{}", s.shard.index, s.shard.count),
            node: s.node.as_ref().map_or("unknown".into(), |n| n.name.clone()),
            hardware: s
                .node
                .as_ref()
                .map_or("not recorded".into(), |n| n.hardware_text()),
            rounds: holds(&s.shard),
            run_id: s.run_id.clone(),
            time: format!("{} → {}", s.started, s.ended.as_deref().unwrap_or("?")),
        })
        .collect();
    let by_cells = manifest.merged.iter().any(|s| s.shard.by == ShardBy::Cells);
    let Some(effects) = effects.filter(|_| !by_cells) else {
        return Some(NodesView {
            by_cells,
            shards,
            metrics: Vec::new(),
            rows: Vec::new(),
            tests: Vec::new(),
        });
    };
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
        by_cells,
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
