//! Which cells of two runs measure the same thing. A cell is identified by the values of every
//! variable that is swept in either run: cells whose values agree on those variables are
//! matched, the rest are listed as present on one side only. Variables fixed in both runs are
//! not part of the key; when their values differ between the runs (the change under test, e.g.
//! `max_num_seqs = 128 → 256`) they are reported as [`VarDifference`]s.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::analysis::{CellResults, cell_label};
use crate::scenario::model::Vars;

/// A cell present in both runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatchedCell {
    /// `request_rate=4 · tp=2`, or `default` when nothing is swept.
    pub label: String,
    /// Index of the cell in the baseline's cells.
    pub baseline: usize,
    /// Index of the cell in the candidate's cells.
    pub candidate: usize,
}

/// A variable fixed in each run whose value differs between the runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VarDifference {
    /// Variable name.
    pub name: String,
    /// Its baseline value, or `None` when the baseline does not define it.
    pub baseline: Option<String>,
    /// Its candidate value, or `None` when the candidate does not define it.
    pub candidate: Option<String>,
}

/// The outcome of matching two runs' cells.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Matching {
    /// Cells present in both runs, in the candidate's matrix order.
    pub matched: Vec<MatchedCell>,
    /// Labels of baseline cells without a candidate counterpart.
    pub only_baseline: Vec<String>,
    /// Labels of candidate cells without a baseline counterpart.
    pub only_candidate: Vec<String>,
    /// Fixed variables whose values differ between the runs.
    pub fixed_differences: Vec<VarDifference>,
}

/// Matches the cells of `baseline` and `candidate` by their variables.
pub fn match_cells(baseline: &[CellResults], candidate: &[CellResults]) -> Matching {
    let swept: BTreeSet<&str> = baseline
        .iter()
        .chain(candidate)
        .flat_map(|c| c.swept.keys().map(String::as_str))
        .collect();
    let key = |c: &CellResults| -> Vars {
        c.vars
            .iter()
            .filter(|(k, _)| swept.contains(k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let base_keys: Vec<Vars> = baseline.iter().map(key).collect();
    let mut used = vec![false; baseline.len()];
    let mut out = Matching::default();
    for (j, cand) in candidate.iter().enumerate() {
        let k = key(cand);
        match base_keys.iter().position(|b| *b == k) {
            Some(i) if !used[i] => {
                used[i] = true;
                out.matched.push(MatchedCell {
                    label: cell_label(&k),
                    baseline: i,
                    candidate: j,
                });
            }
            _ => out.only_candidate.push(cell_label(&k)),
        }
    }
    out.only_baseline = base_keys
        .iter()
        .zip(&used)
        .filter(|(_, used)| !**used)
        .map(|(k, _)| cell_label(k))
        .collect();
    out.fixed_differences = fixed_differences(baseline, candidate, &swept);
    out
}

/// Variables outside the key whose values differ (they are fixed within each run).
fn fixed_differences(
    baseline: &[CellResults],
    candidate: &[CellResults],
    swept: &BTreeSet<&str>,
) -> Vec<VarDifference> {
    let (Some(b), Some(c)) = (baseline.first(), candidate.first()) else {
        return Vec::new();
    };
    let names: BTreeSet<&String> = b.vars.keys().chain(c.vars.keys()).collect();
    names
        .into_iter()
        .filter(|name| !swept.contains(name.as_str()))
        .filter(|name| b.vars.get(*name) != c.vars.get(*name))
        .map(|name| VarDifference {
            name: name.clone(),
            baseline: b.vars.get(name).map(ToString::to_string),
            candidate: c.vars.get(name).map(ToString::to_string),
        })
        .collect()
}
