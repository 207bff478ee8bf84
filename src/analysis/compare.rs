//! Controlled comparisons (statistics.md §2.4–2.6): for each treatment factor, adjacent levels
//! with every other variable fixed (so at each load level), and every cell against a declared
//! baseline. One family for Holm: every (pair, primary metric) of the run.
//!
//! Every comparison between two cells of one run is paired by round (statistics.md §2.4
//! item 6): the workload seeds depend on the experiment seed and the round, never on the cell,
//! so round r of every cell draws the same arrival variates, lengths and prompts. When the
//! swept variable is a workload variable (`prompt_tokens`, `request_rate`, a dataset) the
//! requests themselves differ, but they still come from the same draws (the same arrival
//! gaps, scaled; the same length quantiles), so the round's luck is shared. A paired t needs
//! only that rounds are independent of each other, which holds either way; the sharing decides
//! how much it gains. Only rounds present in both cells pair.

use serde::Serialize;

use super::quality::QUALITY_METRICS;
use super::{CellResults, cell_label, rep_rounds};
use crate::metrics::MetricKey;
use crate::scenario::model::{Scenario, Value, Vars};
use crate::stats::{self, Comparison, Verdict};

/// Why two cells are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComparisonKind {
    /// Adjacent levels of one treatment factor, all else fixed.
    Adjacent,
    /// A cell against the scenario's declared baseline cell.
    Baseline,
}

/// One comparison of one metric between two cells.
#[derive(Debug, Clone, Serialize)]
pub struct ComparisonRow {
    /// Adjacent levels or against the baseline.
    pub kind: ComparisonKind,
    /// The factor that changes (a variable, or a linked group's name).
    pub factor: String,
    /// `tp=4 → tp=8`.
    pub change: String,
    /// The other swept variables, held fixed (`request_rate=10`), or `—`.
    pub at: String,
    /// Baseline cell id.
    pub baseline_cell: String,
    /// Candidate cell id.
    pub candidate_cell: String,
    /// Metric.
    pub metric: MetricKey,
    /// The statistics.
    pub comparison: Comparison,
    /// The primary p (paired t) adjusted by Holm over the whole family.
    pub p_holm: f64,
    /// Practical-significance threshold used (fraction).
    pub tau: f64,
    /// The verdict of statistics.md §2.6.
    pub verdict: Verdict,
}

/// A treatment factor: one swept variable, or a linked group moving together.
struct Factor {
    name: String,
    vars: Vec<String>,
    /// Level i = the values of `vars` at position i.
    levels: Vec<Vec<Value>>,
}

fn factors(scenario: &Scenario) -> Vec<Factor> {
    let load = &scenario.analysis.load;
    let mut out: Vec<Factor> = scenario
        .vars
        .sweep
        .iter()
        .filter(|(name, _)| !load.contains(name))
        .map(|(name, values)| Factor {
            name: name.clone(),
            vars: vec![name.clone()],
            levels: values.iter().map(|v| vec![v.clone()]).collect(),
        })
        .collect();
    for group in &scenario.vars.linked {
        if group.vars.iter().any(|(name, _)| load.contains(name)) {
            continue;
        }
        let len = group.vars.first().map_or(0, |(_, v)| v.len());
        out.push(Factor {
            name: group.name.clone(),
            vars: group.vars.iter().map(|(n, _)| n.clone()).collect(),
            levels: (0..len)
                .map(|i| group.vars.iter().map(|(_, v)| v[i].clone()).collect())
                .collect(),
        });
    }
    out
}

fn level_of(factor: &Factor, swept: &Vars) -> Option<usize> {
    let values: Vec<&Value> = factor
        .vars
        .iter()
        .map(|v| swept.get(v))
        .collect::<Option<_>>()?;
    factor
        .levels
        .iter()
        .position(|lvl| lvl.iter().zip(&values).all(|(a, b)| a == *b))
}

fn others(swept: &Vars, exclude: &[String]) -> Vars {
    swept
        .iter()
        .filter(|(k, _)| !exclude.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The pairs (baseline index, candidate index, kind, factor name) to compare.
fn pairs(
    scenario: &Scenario,
    cells: &[CellResults],
) -> Vec<(usize, usize, ComparisonKind, String)> {
    let mut out = Vec::new();
    for factor in factors(scenario) {
        // Groups of cells equal in every other swept variable, in matrix order.
        let mut groups: Vec<(Vars, Vec<(usize, usize)>)> = Vec::new();
        for (i, cell) in cells.iter().enumerate() {
            if let Some(level) = level_of(&factor, &cell.swept) {
                let key = others(&cell.swept, &factor.vars);
                match groups.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, members)) => members.push((level, i)),
                    None => groups.push((key, vec![(level, i)])),
                }
            }
        }
        for (_, members) in &mut groups {
            members.sort();
            for w in members.windows(2) {
                out.push((
                    w[0].1,
                    w[1].1,
                    ComparisonKind::Adjacent,
                    factor.name.clone(),
                ));
            }
        }
    }
    if let Some(base) = &scenario.analysis.baseline {
        // The baseline replaces the variables it names; load levels are never crossed.
        let named: Vec<String> = base.keys().cloned().collect();
        let load = &scenario.analysis.load;
        let is_base = |c: &CellResults| base.iter().all(|(k, v)| c.vars.get(k) == Some(v));
        let loads = |c: &CellResults| -> Vars {
            c.swept
                .iter()
                .filter(|(k, _)| load.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        for (j, cand) in cells.iter().enumerate() {
            if is_base(cand) {
                continue;
            }
            let context = others(&cand.swept, &named);
            let found = cells.iter().position(|c| {
                is_base(c) && others(&c.swept, &named) == context && loads(c) == loads(cand)
            });
            if let Some(i) = found {
                out.push((i, j, ComparisonKind::Baseline, "baseline".into()));
            }
        }
    }
    out
}

/// Compares cells on every primary metric and applies Holm across the whole family.
pub(super) fn compare_cells(scenario: &Scenario, cells: &[CellResults]) -> Vec<ComparisonRow> {
    let analysis = &scenario.analysis;
    let mut rows = Vec::new();
    for (i, j, kind, factor) in pairs(scenario, cells) {
        let (a, b) = (&cells[i], &cells[j]);
        let changed: Vec<String> = b
            .swept
            .iter()
            .filter(|(k, v)| a.swept.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .collect();
        let change = changed
            .iter()
            .map(|k| format!("{k}={} → {}", a.swept[k], b.swept[k]))
            .collect::<Vec<_>>()
            .join(", ");
        let at = cell_label(&others(&b.swept, &changed));
        let at = if at == "default" {
            "—".to_string()
        } else {
            at
        };
        // Quality metrics join the family whenever both cells measured them; they are
        // paired by item (the same documents, the same retrieval items), not by round.
        let quality = QUALITY_METRICS
            .into_iter()
            .filter(|m| !analysis.primary.contains(m));
        for metric in analysis.primary.iter().copied().chain(quality) {
            let result = match QUALITY_METRICS.contains(&metric) {
                true => match super::quality::compare(a, b, metric, analysis.alpha) {
                    Some(r) => r,
                    None => continue,
                },
                false => {
                    let (va, vb) = (rep_rounds(a, metric), rep_rounds(b, metric));
                    let (direction, scale) = (metric.direction(), metric.scale());
                    stats::compare_paired(&va, &vb, direction, analysis.alpha, scale)
                }
            };
            let Ok(comparison) = result else {
                continue;
            };
            let tau = analysis.threshold(metric);
            rows.push(ComparisonRow {
                kind,
                factor: factor.clone(),
                change: change.clone(),
                at: at.clone(),
                baseline_cell: a.id.clone(),
                candidate_cell: b.id.clone(),
                metric,
                comparison,
                p_holm: 1.0,
                tau,
                verdict: Verdict::Invalid,
            });
        }
    }
    let raw: Vec<f64> = rows
        .iter()
        .map(|r| r.comparison.p_value().unwrap_or(1.0))
        .collect();
    for (row, p) in rows.iter_mut().zip(stats::holm(&raw)) {
        row.p_holm = p;
        row.verdict = stats::verdict(&row.comparison, p, row.tau, analysis.alpha);
    }
    rows
}
