//! The experiment matrix: which cells a scenario has ([`expand`]) and in which order the
//! (cell, repetition) pairs run ([`schedule()`]).
//!
//! Expansion order: the Cartesian product of the axes, the first axis varying slowest. Axes
//! are the `[vars.sweep]` variables in declaration order, then the `[vars.linked.*]` groups
//! in declaration order (a group is one axis; its lists move together). Fixed variables are
//! merged into every cell; cells where any `vars.exclude` expression is true are dropped and
//! the rest renumbered from 0.

mod cell;
mod launches;
mod schedule;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use crate::scenario::template_eval;
use crate::scenario::{Scenario, ScenarioError, Value, Vars};

pub use cell::{Cell, CellId};
pub use launches::{PlannedLaunch, schedule_with_servers, split as split_launches};
pub use schedule::{Slot, schedule};

/// Most cells a matrix may have (before exclusions).
pub const MAX_CELLS: u64 = 10_000;

/// One axis of the matrix: its levels, each a list of (variable, value) set together.
type Axis<'a> = Vec<Vec<(&'a str, &'a Value)>>;

/// Expands a scenario's variables into its cells.
pub fn expand(scenario: &Scenario) -> Result<Vec<Cell>, ScenarioError> {
    let spec = &scenario.vars;
    check_duplicates(scenario)?;
    let axes = axes(scenario)?;
    let exact = axes
        .iter()
        .try_fold(1u64, |acc, a| acc.checked_mul(a.len() as u64));
    let count = exact.unwrap_or(u64::MAX);
    if count > MAX_CELLS {
        let message = format!(
            "the matrix has {} cells, more than the limit of {MAX_CELLS}",
            count_text(exact, &axes)
        );
        let hint = "sweep fewer values, move variables that change together into [vars.linked.<group>], or drop cells with `exclude`";
        let key = if spec.sweep.is_empty() {
            "vars.linked"
        } else {
            "vars.sweep"
        };
        return Err(scenario.error_at(key, message, Some(hint.into())));
    }
    if count == 0 {
        return Err(scenario.error_at("vars", "a sweep has no values", None));
    }
    let mut cells = Vec::new();
    let mut pos = vec![0usize; axes.len()];
    for _ in 0..count {
        let swept: Vars = axes
            .iter()
            .zip(&pos)
            .flat_map(|(axis, &i)| axis[i].iter())
            .map(|(n, v)| (n.to_string(), (*v).clone()))
            .collect();
        let mut vars = spec.fixed.clone();
        vars.extend(swept.clone());
        if !excluded(scenario, &vars)? {
            cells.push(Cell {
                index: cells.len(),
                // A swept secret names its cell by its marker, never by its value.
                id: CellId::new(&scenario.redact_vars(&swept)),
                vars,
                swept,
            });
        }
        // Odometer: the last axis turns fastest.
        for (p, axis) in pos.iter_mut().zip(&axes).rev() {
            *p += 1;
            if *p < axis.len() {
                break;
            }
            *p = 0;
        }
    }
    if cells.is_empty() {
        let exprs = spec
            .exclude
            .iter()
            .map(|e| format!("{e:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let message = format!("every one of the {count} cells is excluded by [{exprs}]");
        let hint = "loosen the expressions; a cell is skipped when any of them is true";
        return Err(scenario.error_at("vars.exclude", message, Some(hint.into())));
    }
    check_unique_ids(scenario, &cells)?;
    Ok(cells)
}

/// The cell count as a number, or as a power of ten when it does not fit in 64 bits (a
/// saturated `u64::MAX` would print as a wrong exact count).
fn count_text(exact: Option<u64>, axes: &[Axis<'_>]) -> String {
    match exact {
        Some(n) => n.to_string(),
        None => {
            let log10: f64 = axes.iter().map(|a| (a.len() as f64).log10()).sum();
            format!("about 10^{}", log10.floor())
        }
    }
}

/// Sweeps then linked groups, in declaration order.
fn axes(scenario: &Scenario) -> Result<Vec<Axis<'_>>, ScenarioError> {
    let spec = &scenario.vars;
    let mut axes: Vec<Axis<'_>> = spec
        .sweep
        .iter()
        .map(|(name, levels)| levels.iter().map(|v| vec![(name.as_str(), v)]).collect())
        .collect();
    for group in &spec.linked {
        let len = group.vars.first().map_or(0, |(_, l)| l.len());
        if let Some((name, _)) = group.vars.iter().find(|(_, l)| l.len() != len) {
            let key = format!("vars.linked.{}.{name}", group.name);
            return Err(scenario.error_at(&key, "linked lists have different lengths", None));
        }
        let level = |i: usize| {
            group
                .vars
                .iter()
                .map(|(n, l)| (n.as_str(), &l[i]))
                .collect()
        };
        axes.push((0..len).map(level).collect());
    }
    Ok(axes)
}

fn check_duplicates(scenario: &Scenario) -> Result<(), ScenarioError> {
    let spec = &scenario.vars;
    let mut seen = BTreeSet::new();
    let names = spec
        .fixed
        .keys()
        .chain(spec.sweep.iter().map(|(n, _)| n))
        .chain(
            spec.linked
                .iter()
                .flat_map(|g| g.vars.iter().map(|(n, _)| n)),
        );
    for name in names {
        if !seen.insert(name) {
            let hint = "a variable takes its values from exactly one of [vars.fixed], [vars.sweep] or [vars.linked.<group>]";
            let key = scenario_var_key(scenario, name);
            return Err(scenario.error_at(
                &key,
                format!("duplicate variable: `{name}`"),
                Some(hint.into()),
            ));
        }
    }
    Ok(())
}

fn scenario_var_key(scenario: &Scenario, name: &str) -> String {
    if scenario.vars.sweep.iter().any(|(n, _)| n == name) {
        format!("vars.sweep.{name}")
    } else {
        format!("vars.fixed.{name}")
    }
}

fn excluded(scenario: &Scenario, vars: &Vars) -> Result<bool, ScenarioError> {
    for (i, expr) in scenario.vars.exclude.iter().enumerate() {
        match template_eval(expr, vars) {
            Ok(true) => return Ok(true),
            Ok(false) => {}
            Err(e) => {
                let message = format!("cannot evaluate {expr:?}: {e}");
                return Err(scenario.error_at(&format!("vars.exclude[{i}]"), message, None));
            }
        }
    }
    Ok(false)
}

fn check_unique_ids(scenario: &Scenario, cells: &[Cell]) -> Result<(), ScenarioError> {
    let mut seen = BTreeSet::new();
    for c in cells {
        if !seen.insert(&c.id) {
            let message = format!("two cells get the same id `{}`", c.id);
            let hint = "a sweep lists the same value twice in different forms (e.g. 10 and \"10\")";
            return Err(scenario.error_at("vars", message, Some(hint.into())));
        }
    }
    Ok(())
}
