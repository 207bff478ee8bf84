//! The search run mode (`[search]`, `exp search`): for every cell of the matrix, probes of the
//! load variable are made on the fly — cells resolved with the load overridden, appended to
//! the plan and the manifest, run by the ordinary executor — until `search::next_probe` says
//! the capacity is bracketed. Each probe is in the manifest before it runs, so
//! `exp run --resume` rebuilds the probes from it and the search continues where it stopped.
//! With a launched `[server]`, every probe gets its own launch (or one per repetition under
//! `restart = "per-repetition"`): the server starts fresh for each probe, exactly as a
//! planned run starts it for each cell.

use anyhow::Context;

use std::ops::Range;

use crate::matrix::{self, Cell, CellId, PlannedLaunch, Slot};
use crate::plan::Plan;
use crate::run::{self, RunEnd};
use crate::scenario::model::{SearchSpec, Value};
use crate::search;
use crate::store::{CellEntry, Manifest, RunDir};

/// Turns a new run's plan and manifest into an empty search: no cells yet, `repetitions`
/// per probe; the matrix's cells become the searched cells.
pub(super) fn start(plan: Plan, manifest: &mut Manifest, spec: &SearchSpec) -> Plan {
    manifest.cells.clear();
    manifest.schedule.clear();
    manifest.repetitions = spec.repetitions.get();
    manifest.adaptive = None;
    empty_search(plan)
}

/// A search with no probes yet, searching the cells of `matrix` (the scenario's plan).
fn empty_search(matrix: Plan) -> Plan {
    Plan {
        scenario: matrix.scenario,
        cells: Vec::new(),
        configs: Vec::new(),
        schedule: Vec::new(),
        servers: Vec::new(),
        server_of: Vec::new(),
        launches: Vec::new(),
        searched: matrix.cells,
        shard: None,
        client: None,
    }
}

/// The plan of a search run: the probes recorded in its manifest, resolved again, searching
/// the cells of `matrix` (the scenario's plan).
pub(super) fn probe_plan(matrix: Plan, manifest: &Manifest) -> anyhow::Result<Plan> {
    let mut plan = empty_search(matrix);
    for entry in &manifest.cells {
        let config = plan
            .scenario
            .resolve(&entry.vars)
            .map_err(|e| anyhow::anyhow!("probe {}: {e}", entry.id))?;
        plan.cells.push(Cell {
            index: entry.index,
            id: CellId::new(&entry.swept),
            vars: entry.vars.clone(),
            swept: entry.swept.clone(),
        });
        plan.configs.push(config);
    }
    plan.schedule = manifest.schedule.clone();
    // Each probe's repetitions are consecutive in the schedule: one block of launches each.
    let mut start = 0;
    while start < plan.schedule.len() {
        let cell = plan.schedule[start].cell;
        let end = (start..plan.schedule.len())
            .find(|&i| plan.schedule[i].cell != cell)
            .unwrap_or(plan.schedule.len());
        plan_launches(&mut plan, cell, start..end);
        start = end;
    }
    Ok(plan)
}

/// With a launched `[server]`: the launches of probe `cell`, whose repetitions are the
/// schedule positions `slots`; its server configuration is added to the plan's if new.
fn plan_launches(plan: &mut Plan, cell: usize, slots: Range<usize>) {
    if !plan.scenario.launches_server() {
        return;
    }
    let Some(server) = plan.configs[cell].server.clone() else {
        return;
    };
    let key = server.launch_key();
    let restart = server.restart;
    let config = match plan.servers.iter().position(|s| s.launch_key() == key) {
        Some(i) => i,
        None => {
            plan.servers.push(server);
            plan.servers.len() - 1
        }
    };
    if plan.server_of.len() <= cell {
        plan.server_of.resize(cell + 1, config);
    }
    plan.server_of[cell] = config;
    plan.launches.extend(matrix::split_launches(
        vec![PlannedLaunch { config, slots }],
        restart,
    ));
}

/// Runs the search of every matrix cell to the end (or to Ctrl-C).
pub(super) async fn execute(
    plan: &mut Plan,
    dir: &RunDir,
    manifest: &mut Manifest,
    show_progress: bool,
) -> anyhow::Result<RunEnd> {
    let spec = plan
        .scenario
        .search
        .clone()
        .context("not a search scenario")?;
    let bases = plan.searched.clone();
    // Finish probes an interrupted session left half done.
    if run::execute(plan, dir, show_progress).await? == RunEnd::Interrupted {
        return Ok(RunEnd::Interrupted);
    }
    for base in &bases {
        let label = crate::analysis::cell_label(&base.swept);
        loop {
            let cells = super::load_results(dir, manifest, plan)?;
            let probes = search::probes_by_cell(&spec, &cells)
                .into_iter()
                .find(|(b, _)| *b == base.swept)
                .map(|(_, p)| p)
                .unwrap_or_default();
            let Some(load) = search::next_probe(&spec, &probes) else {
                break;
            };
            eprintln!(
                "search {label}: probing {}",
                search::load_text(&spec.variable, load)
            );
            add_probe(plan, manifest, base, &spec, load)?;
            super::manifest_sync::save(dir, manifest)?;
            if run::execute(plan, dir, show_progress).await? == RunEnd::Interrupted {
                return Ok(RunEnd::Interrupted);
            }
        }
    }
    Ok(RunEnd::Complete)
}

/// Appends the probe of `base` at `load` to the plan and the manifest.
fn add_probe(
    plan: &mut Plan,
    manifest: &mut Manifest,
    base: &Cell,
    spec: &SearchSpec,
    load: f64,
) -> anyhow::Result<()> {
    let value = if spec.integer {
        Value::Int(load as i64)
    } else {
        Value::Float(load)
    };
    let (mut vars, mut swept) = (base.vars.clone(), base.swept.clone());
    vars.insert(spec.variable.clone(), value.clone());
    swept.insert(spec.variable.clone(), value);
    let config = plan
        .scenario
        .resolve(&vars)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let index = plan.cells.len();
    let cell = Cell {
        index,
        id: CellId::new(&swept),
        vars,
        swept,
    };
    manifest.cells.push(CellEntry::from(&cell));
    let first = plan.schedule.len();
    for round in 0..spec.repetitions.get() {
        let slot = Slot { round, cell: index };
        plan.schedule.push(slot);
        manifest.schedule.push(slot);
    }
    plan.cells.push(cell);
    plan.configs.push(config);
    plan_launches(plan, index, first..plan.schedule.len());
    Ok(())
}
