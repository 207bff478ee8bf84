//! Running a plan: every (round, cell) slot of the schedule becomes one repetition, executed
//! by the simulated engine or the HTTP driver, written to the run directory as it completes,
//! and marked complete only after its records are durable. Ctrl-C stops between records:
//! finished repetitions stay, the partial one is redone by `--resume`.

mod count;
pub mod driver;
mod executor;
pub mod gate;
pub mod health;
mod interrupt;
mod prefetch;
mod progress;
mod quality;
mod served;
mod slot;
mod timer;
mod under_load;
pub mod usage;

pub use executor::{CellExecutor, ExecutorError};
pub use usage::process_cpu_seconds;

use std::collections::{BTreeSet, HashMap};

use crate::matrix::Slot;
use crate::plan::Plan;
use crate::seed;
use crate::store::{RunDir, StoreError};
use crate::workload::{self, Datasets, WorkloadSeeds};
use interrupt::Interrupt;
use slot::{Runner, SlotEnd};

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
        /// What went wrong (boxed: hardware errors are large, and every run result carries
        /// this type).
        source: Box<ExecutorError>,
    },
    /// A server could not be prepared (an external one never became ready, no free port).
    #[error("{0}")]
    Server(String),
    /// `[quality]` cannot be prepared (an unreadable corpus, …).
    #[error("cell {cell}: {why}")]
    Quality {
        /// The cell id.
        cell: String,
        /// What went wrong, naming the file.
        why: String,
    },
    /// The target is not there ([`health::check_target`]).
    #[error("cell {cell}: {why}")]
    Target {
        /// The first cell that names it.
        cell: String,
        /// What the check found, with the URL.
        why: String,
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

/// Checks, before anything is written, what would otherwise stop a run part-way: every
/// cell's workload settings, and that its dataset and trace files read and parse (they stay
/// in the process-wide cache for the run). The first problem is returned, named by cell.
///
/// The caller runs it once per run (`exp run` before creating the run directory, `--resume`
/// before executing); [`execute`] does not repeat it, since adaptive rounds, extra looks and
/// search probes call `execute` many times for one run.
pub fn preflight(plan: &Plan) -> Result<(), RunError> {
    for (cell, config) in plan.cells.iter().zip(&plan.configs) {
        Datasets::global()
            .check(&config.workload)
            .map_err(|source| RunError::Workload {
                cell: cell.id.to_string(),
                source,
            })?;
        slot::segments(config).map_err(|why| RunError::Quality {
            cell: cell.id.to_string(),
            why,
        })?;
    }
    Ok(())
}

/// Checks that every `[target] api_key_env` names a variable set in this environment, so a
/// run is refused before its directory exists rather than stopped at its first repetition.
/// (`exp validate` does not ask: a scenario is valid wherever its key lives.)
pub fn check_api_keys(plan: &Plan) -> Result<(), RunError> {
    for (cell, config) in plan.cells.iter().zip(&plan.configs) {
        if let Some(var) = &config.target.api_key_env
            && std::env::var_os(var).is_none()
        {
            return Err(RunError::Target {
                cell: cell.id.to_string(),
                why: format!(
                    "[target] api_key_env = \"{var}\", but the environment variable {var} is not set (export it, then run again)"
                ),
            });
        }
    }
    Ok(())
}

/// Checks every distinct HTTP target of the slots to run ([`health::check_target`]): one that
/// is not there stops the run before its first repetition, naming the URL.
async fn check_targets(r: &Runner<'_>, todo: &[Slot]) -> Result<(), RunError> {
    let mut checked: Vec<(Option<String>, Option<String>)> = Vec::new();
    for slot in todo {
        let config = &r.plan.configs[slot.cell];
        let target = (config.target.base_url.clone(), config.target.model.clone());
        if checked.contains(&target) {
            continue;
        }
        checked.push(target);
        let cell = r.plan.cells[slot.cell].id.to_string();
        let exec = CellExecutor::new(config, None)
            .await
            .map_err(|source| RunError::Executor {
                cell: cell.clone(),
                source: Box::new(source),
            })?;
        let Some(client) = exec.client() else {
            continue;
        };
        match health::check_target(client).await {
            Ok(None) => {}
            Ok(Some(warning)) => eprintln!("warning: cell {cell}: {warning}"),
            Err(why) => return Err(RunError::Target { cell, why }),
        }
    }
    Ok(())
}

/// Executes every slot of `plan` that `dir` does not already hold as complete (or failed).
///
/// Without a `[server]` the slots run in schedule order against the plan's target; with one,
/// launch by launch (see `served`). An external server (`restart = "never"`) is waited for
/// first and reset between repetitions.
pub async fn execute(plan: &Plan, dir: &RunDir, show_progress: bool) -> Result<RunEnd, RunError> {
    let done: BTreeSet<(String, u32)> = dir.completed()?;
    let is_done = |s: &Slot| done.contains(&(plan.cells[s.cell].id.to_string(), s.round));
    let mut runner = Runner {
        plan,
        dir,
        progress: progress::Progress::new(show_progress, plan.schedule.len(), done.len()),
        datasets: Datasets::global(),
        executors: HashMap::new(),
        interrupt: Interrupt::install(),
        gpu_fields: None,
        quality: Default::default(),
        segments: HashMap::new(),
    };
    if runner.interrupt.fired() {
        return Ok(RunEnd::Interrupted);
    }
    let end = if plan.launches.is_empty() {
        let todo: Vec<Slot> = plan
            .schedule
            .iter()
            .copied()
            .filter(|s| !is_done(s))
            .collect();
        run_unlaunched(&mut runner, todo).await?
    } else {
        served::run_launches(&mut runner, &is_done).await?
    };
    if end == RunEnd::Complete {
        runner.progress.done();
    }
    Ok(end)
}

/// Runs slots in order against the plan's target (and an external server, if declared).
async fn run_unlaunched(r: &mut Runner<'_>, todo: Vec<Slot>) -> Result<RunEnd, RunError> {
    let external = (r.plan.configs.first())
        .and_then(|c| c.server.clone())
        .filter(|s| !s.launched());
    if let (Some(server), Some(_)) = (&external, todo.first()) {
        let waited = tokio::select! {
            biased;
            () = r.interrupt.wait() => return Ok(RunEnd::Interrupted),
            w = crate::server::wait_external(server) => w,
        };
        waited.map_err(|e| RunError::Server(e.to_string()))?;
    }
    check_targets(r, &todo).await?;
    let reset = external.and_then(|s| s.reset_url);
    for (i, slot) in todo.into_iter().enumerate() {
        if i > 0
            && let Some(url) = &reset
            && let Err(e) = crate::server::reset(url).await
        {
            eprintln!("server reset failed: {e}");
        }
        let config = r.plan.configs[slot.cell].clone();
        if r.run_slot(slot, &config, None).await? == SlotEnd::Interrupted {
            return Ok(RunEnd::Interrupted);
        }
    }
    Ok(RunEnd::Complete)
}
