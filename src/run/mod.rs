//! Running a plan: every (round, cell) slot of the schedule becomes one repetition, executed
//! by the simulated engine or the HTTP driver, written to the run directory as it completes,
//! and marked complete only after its records are durable. Ctrl-C stops between records:
//! finished repetitions stay, the partial one is redone by `--resume`.

pub mod driver;
mod executor;
mod progress;
mod timer;
pub mod usage;

pub use executor::{CellExecutor, ExecutorError};
pub use usage::process_cpu_seconds;

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::Instant;

use crate::plan::Plan;
use crate::scenario::model::TargetKind;
use crate::seed;
use crate::store::{RepMarker, RunDir, SCHEMA_VERSION, StoreError};
use crate::workload::{self, Datasets, WorkloadSeeds};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Every slot of the schedule is complete.
    Complete,
    /// Ctrl-C arrived; finished repetitions are on disk.
    Interrupted,
}

/// Errors that stop a run (a failing request never does: it is recorded).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Writing results failed; nothing after this point can be trusted to be kept.
    #[error("cannot write results: {0}")]
    Store(#[from] StoreError),
    /// The workload of a cell could not be built (dataset unreadable, …).
    #[error("cell {cell}: {source}")]
    Workload {
        /// The cell id.
        cell: String,
        /// What went wrong.
        source: workload::WorkloadError,
    },
    /// The target could not be set up for a cell (no model, bad hardware, …).
    #[error("cell {cell}: {source}")]
    Executor {
        /// The cell id.
        cell: String,
        /// What went wrong.
        source: ExecutorError,
    },
}

/// Derives the seeds of a repetition's workload streams: they ignore the cell, so within one
/// round every cell sees the same requests at the same offsets (common random numbers).
pub fn workload_seeds(experiment_seed: u64, round: u32) -> WorkloadSeeds {
    WorkloadSeeds {
        arrivals: seed::derive(experiment_seed, None, round, "arrivals"),
        prompts: seed::derive(experiment_seed, None, round, "prompts"),
        lengths: seed::derive(experiment_seed, None, round, "lengths"),
        warmup: seed::derive(experiment_seed, None, round, "warmup"),
    }
}

/// Executes every slot of `plan` that `dir` does not already hold as complete.
pub async fn execute(plan: &Plan, dir: &RunDir, show_progress: bool) -> Result<RunEnd, RunError> {
    let done: BTreeSet<(String, u32)> = dir.completed()?;
    let todo: Vec<_> = plan
        .schedule
        .iter()
        .filter(|s| !done.contains(&(plan.cells[s.cell].id.to_string(), s.round)))
        .collect();
    let mut progress = progress::Progress::new(show_progress, plan.schedule.len(), done.len());
    // Validation already resolved dataset and trace paths against the scenario's directory;
    // joining that directory again broke relative scenario paths (`scenarios/x.toml`).
    let base_dir = Path::new("");
    let datasets = Datasets::new();
    let mut executors: HashMap<usize, CellExecutor> = HashMap::new();
    let seed = plan.scenario.experiment.seed;
    // One Ctrl-C listener for the whole run, polled once now: tokio installs the handler on
    // the first poll and from then on remembers a signal even while no repetition is being
    // awaited (while its records are synced, say). A listener made per repetition missed
    // those, and the default handler was gone, so Ctrl-C was ignored.
    let mut interrupt = std::pin::pin!(tokio::signal::ctrl_c());
    if futures_util::FutureExt::now_or_never(&mut interrupt).is_some() {
        return Ok(RunEnd::Interrupted);
    }

    for slot in todo {
        let cell = &plan.cells[slot.cell];
        let cell_id = cell.id.to_string();
        let config = &plan.configs[slot.cell];
        // The simulated engine counts a prompt's tokens as given: its prompts stay in words.
        let tokenizer = match config.target.kind {
            TargetKind::Sim => None,
            _ => config.target.tokenizer.as_deref(),
        };
        let work = datasets
            .build_with(
                &config.workload,
                &workload_seeds(seed, slot.round),
                base_dir,
                tokenizer,
            )
            .map_err(|source| RunError::Workload {
                cell: cell_id.clone(),
                source,
            })?;
        if let Entry::Vacant(entry) = executors.entry(slot.cell) {
            let exec = CellExecutor::new(config, work.requests)
                .await
                .map_err(|source| RunError::Executor {
                    cell: cell_id.clone(),
                    source,
                })?;
            entry.insert(exec);
        }
        let exec = &executors[&slot.cell];
        progress.start(&cell_id, slot.round, work.requests);
        let writer = dir.start_repetition(&cell_id, slot.round)?;
        let engine_seed = seed::derive(seed, Some(&cell_id), slot.round, "engine");
        let started = Instant::now();
        let outcome = tokio::select! {
            biased;
            _ = &mut interrupt => {
                progress.abandon("interrupted: finished repetitions are kept");
                return Ok(RunEnd::Interrupted);
            }
            out = exec.run(&work, writer, engine_seed, progress.counter()) => out?,
        };
        let mut details = outcome.details;
        let client_cpu_seconds = outcome
            .measured
            .and_then(|m| usage::close_window(&m, &mut details));
        let marker = RepMarker {
            schema_version: SCHEMA_VERSION,
            cell_id: cell_id.clone(),
            round: slot.round,
            records: 0,
            origin_wall: humantime::format_rfc3339_nanos(outcome.origin_wall).to_string(),
            wall_seconds: started.elapsed().as_secs_f64(),
            client_cpu_seconds,
            details,
        };
        outcome.writer.finish(marker)?;
        progress.finish_one();
    }
    progress.done();
    Ok(RunEnd::Complete)
}
