//! The node as a blocking factor of a merged run (`exp merge`): every round ran on one node,
//! so the rounds' common level — how much every cell of a round sat above or below its own
//! mean — can be grouped by node and tested. A node that differs does not bias a comparison
//! between cells (each round's cells ran together, on one node), but it does move every
//! cell's absolute figures, and it says something is off with that machine.
//!
//! Model, per primary metric: the round effect e_r is the mean over the cells of
//! ln(v_cr / g_c) (g_c the cell's geometric mean over rounds; for proportions v_cr − mean_c,
//! in the metric's unit), over rounds where every cell has a value. A node's effect is the
//! mean of its rounds' e_r, shown as exp(ē) − 1 (or ē); the nodes are compared with a one-way
//! F-test on the e_r, Holm-adjusted over the primary metrics. A node is flagged when the test
//! is significant at `[analysis] alpha` and some node's effect exceeds the metric's τ.

use std::collections::BTreeMap;

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, FisherSnedecor};

use super::CellResults;
use crate::metrics::MetricKey;
use crate::scenario::model::Analysis as Settings;
use crate::shard::node::Node;
use crate::stats::Scale;
use crate::units;

/// A node and the shards that ran on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeShards {
    /// The node's name.
    pub name: String,
    /// Its shards (numbers from 1).
    pub shards: Vec<u32>,
    /// Its rounds (from 0).
    pub rounds: Vec<u32>,
    /// Its hardware, as the shards recorded it.
    pub hardware: Option<Node>,
}

/// Per-node effects of every primary metric, and what they warn about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeEffects {
    /// The nodes, in order of their first shard.
    pub nodes: Vec<NodeShards>,
    /// One row per primary metric with a value in every cell.
    pub metrics: Vec<NodeTest>,
    /// Nodes that differ, or hardware that does.
    pub warnings: Vec<String>,
}

/// One primary metric across nodes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeTest {
    /// The metric.
    pub metric: MetricKey,
    /// Each node's effect (same order as `nodes`): a fraction of the level (relative
    /// metrics) or in the metric's unit (proportions); `None` for a node with no complete
    /// round.
    pub effects: Vec<Option<f64>>,
    /// F-test p across nodes, Holm-adjusted over the metrics; `None` with one node or too
    /// few rounds.
    pub p: Option<f64>,
    /// True when the nodes differ significantly and beyond τ.
    pub differs: bool,
}

impl NodeTest {
    /// A node's effect as text: `+1.20 %`, `−0.40 pp`, or `—`.
    pub fn effect_text(&self, i: usize) -> String {
        match (self.effects.get(i).copied().flatten(), self.metric.scale()) {
            (None, _) => "—".into(),
            (Some(e), Scale::Relative) => units::signed_percent(e),
            (Some(e), Scale::Absolute) => units::signed_change(self.metric, e),
        }
    }
}

/// Per-node effects of a run whose rounds ran on `nodes` (each round on exactly one).
pub fn effects(settings: &Settings, cells: &[CellResults], nodes: Vec<NodeShards>) -> NodeEffects {
    let node_of: BTreeMap<u32, usize> = (nodes.iter().enumerate())
        .flat_map(|(i, n)| n.rounds.iter().map(move |&r| (r, i)))
        .collect();
    let mut metrics: Vec<(NodeTest, f64)> = Vec::new();
    for &metric in &settings.primary {
        let Some(rounds) = round_effects(metric, cells) else {
            continue;
        };
        let mut groups: Vec<Vec<f64>> = vec![Vec::new(); nodes.len()];
        for (round, e) in rounds {
            if let Some(&i) = node_of.get(&round) {
                groups[i].push(e);
            }
        }
        let effects = groups
            .iter()
            .map(|g| {
                (!g.is_empty()).then(|| {
                    let m = g.iter().sum::<f64>() / g.len() as f64;
                    match metric.scale() {
                        Scale::Relative => m.exp() - 1.0,
                        Scale::Absolute => m,
                    }
                })
            })
            .collect();
        let test = NodeTest {
            metric,
            effects,
            p: anova_p(&groups),
            differs: false,
        };
        metrics.push((test, settings.threshold(metric)));
    }
    let raw: Vec<f64> = metrics.iter().map(|(t, _)| t.p.unwrap_or(1.0)).collect();
    let holm = crate::stats::holm(&raw);
    let mut warnings = hardware_warnings(&nodes);
    for ((test, tau), p) in metrics.iter_mut().zip(holm) {
        if test.p.is_none() {
            continue;
        }
        test.p = Some(p);
        let worst = (test.effects.iter().enumerate())
            .filter_map(|(i, e)| e.map(|e| (i, e)))
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()));
        if let Some((i, e)) = worst
            && p < settings.alpha
            && e.abs() > *tau
        {
            test.differs = true;
            warnings.push(format!(
                "node `{}` (shard {}) differs from the other nodes: {} {} against the mean of all rounds (F-test across {} nodes: p = {}, Holm; τ {}); comparisons between cells stay within a round and so within a node, but every cell's figures mix nodes: check that machine",
                nodes[i].name,
                nodes[i]
                    .shards
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                test.metric,
                test.effect_text(i),
                nodes.len(),
                units::p_value(p),
                units::threshold(test.metric, *tau),
            ));
        }
    }
    NodeEffects {
        nodes,
        metrics: metrics.into_iter().map(|(t, _)| t).collect(),
        warnings,
    }
}

/// (round, e_r) for every round where every cell has a value of `metric`; `None` when a
/// relative metric has a value ≤ 0 (no logarithm) or no round is complete.
fn round_effects(metric: MetricKey, cells: &[CellResults]) -> Option<Vec<(u32, f64)>> {
    let relative = metric.scale() == Scale::Relative;
    let mut per_cell: Vec<BTreeMap<u32, f64>> = Vec::new();
    for cell in cells {
        let values: BTreeMap<u32, f64> = (cell.reps.iter())
            .filter_map(|r| Some((r.round, *r.summary.values.get(&metric)?)))
            .collect();
        if relative && values.values().any(|&v| v <= 0.0 || !v.is_finite()) {
            return None;
        }
        let transformed: BTreeMap<u32, f64> = values
            .into_iter()
            .map(|(r, v)| (r, if relative { v.ln() } else { v }))
            .collect();
        if transformed.is_empty() {
            return None;
        }
        let centre = transformed.values().sum::<f64>() / transformed.len() as f64;
        per_cell.push(
            transformed
                .into_iter()
                .map(|(r, v)| (r, v - centre))
                .collect(),
        );
    }
    let first = per_cell.first()?;
    let rounds: Vec<(u32, f64)> = first
        .keys()
        .filter(|r| per_cell.iter().all(|c| c.contains_key(r)))
        .map(|&r| {
            (
                r,
                per_cell.iter().map(|c| c[&r]).sum::<f64>() / per_cell.len() as f64,
            )
        })
        .collect();
    (!rounds.is_empty()).then_some(rounds)
}

/// One-way ANOVA p across groups; `None` with fewer than two non-empty groups or no
/// degrees of freedom within them.
fn anova_p(groups: &[Vec<f64>]) -> Option<f64> {
    let groups: Vec<&Vec<f64>> = groups.iter().filter(|g| !g.is_empty()).collect();
    let k = groups.len();
    let n: usize = groups.iter().map(|g| g.len()).sum();
    if k < 2 || n <= k {
        return None;
    }
    let all = groups.iter().flat_map(|g| g.iter()).sum::<f64>() / n as f64;
    let (mut between, mut within) = (0.0, 0.0);
    for g in &groups {
        let m = g.iter().sum::<f64>() / g.len() as f64;
        between += g.len() as f64 * (m - all).powi(2);
        within += g.iter().map(|x| (x - m).powi(2)).sum::<f64>();
    }
    let (df1, df2) = ((k - 1) as f64, (n - k) as f64);
    if within <= 0.0 {
        return Some(if between > 0.0 { 0.0 } else { 1.0 });
    }
    let f = (between / df1) / (within / df2);
    let p = FisherSnedecor::new(df1, df2).ok()?.sf(f);
    p.is_finite().then_some(p.clamp(0.0, 1.0))
}

/// Shards whose nodes are built differently: named, with each hardware.
fn hardware_warnings(nodes: &[NodeShards]) -> Vec<String> {
    let known: Vec<(&str, &Node)> = (nodes.iter())
        .filter_map(|n| Some((n.name.as_str(), n.hardware.as_ref()?)))
        .collect();
    let Some((_, first)) = known.first() else {
        return Vec::new();
    };
    if known.iter().all(|(_, h)| h.same_hardware(first)) {
        return Vec::new();
    }
    vec![format!(
        "the shards ran on different hardware ({}): absolute figures depend on which node ran a round; comparisons between cells stay within a node",
        known
            .iter()
            .map(|(n, h)| format!("`{n}`: {}", h.hardware_text()))
            .collect::<Vec<_>>()
            .join("; ")
    )]
}

#[cfg(test)]
mod tests;
