//! The checks that need the expanded matrix: every cell must resolve, and
//! `[analysis] baseline` must pick exactly one cell. They run once, in [`Plan::build`]
//! (`exp validate`, `exp plan` and `exp run` all plan), and report at the scenario's
//! lines like the checks of `scenario::load`.
//!
//! [`Plan::build`]: super::Plan::build

use std::collections::BTreeMap;

use crate::matrix::Cell;
use crate::scenario::model::{CellConfig, Scenario, Value, Vars};
use crate::scenario::{ScenarioError, quoted_list, same_value};

/// Resolves every cell (in matrix order) and checks the baseline. A key that fails in several
/// cells is reported once, with the first cell's message and how many more share it.
pub(super) fn resolve_cells(
    scenario: &Scenario,
    cells: &[Cell],
) -> Result<Vec<CellConfig>, Vec<ScenarioError>> {
    let mut configs = Vec::with_capacity(cells.len());
    let mut found: BTreeMap<String, (ScenarioError, String, usize)> = BTreeMap::new();
    for cell in cells {
        match scenario.resolve(&cell.vars) {
            Ok(config) => configs.push(config),
            Err(e) => {
                let entry = found.entry(e.key.clone());
                entry.or_insert_with(|| (e, cell.id.to_string(), 0)).2 += 1;
            }
        }
    }
    let mut errors: Vec<ScenarioError> = found
        .into_values()
        .map(|(mut e, first, n)| {
            let more = if n > 1 {
                format!(" and {} more", n - 1)
            } else {
                String::new()
            };
            e.message = format!("{} (in cell `{first}`{more})", e.message);
            e
        })
        .collect();
    if let Some(baseline) = &scenario.analysis.baseline {
        errors.extend(check_baseline(scenario, baseline, cells));
    }
    if errors.is_empty() {
        Ok(configs)
    } else {
        Err(errors)
    }
}

/// The baseline must pick exactly one cell.
fn check_baseline(scenario: &Scenario, baseline: &Vars, cells: &[Cell]) -> Option<ScenarioError> {
    let matches = |c: &&Cell| {
        baseline
            .iter()
            .all(|(k, v)| c.vars.get(k).is_some_and(|cv| same_value(cv, v)))
    };
    let n = cells.iter().filter(matches).count();
    if n == 1 {
        return None;
    }
    let hint = if n == 0 {
        let values = |name: &String| {
            let mut seen: Vec<&Value> = vec![];
            for v in cells.iter().filter_map(|c| c.vars.get(name)) {
                if !seen.iter().any(|s| same_value(s, v)) {
                    seen.push(v);
                }
            }
            let list = seen
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            format!("`{name}` takes {list}")
        };
        baseline.keys().map(values).collect::<Vec<_>>().join("; ")
    } else {
        let swept: Vec<&String> = cells[0]
            .swept
            .keys()
            .filter(|k| !baseline.contains_key(*k))
            .collect();
        format!("add {} to pick one", quoted_list(swept))
    };
    let message = format!("matches {n} cells, but must match exactly one");
    Some(scenario.error_at("analysis.baseline", message, Some(hint)))
}
