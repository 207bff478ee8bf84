//! One repetition of one cell: build its workload, run it on the cell's executor while the
//! probes sample, write its records and its completion marker. A repetition whose server
//! died (or never started) gets a marker with the reason, so it is kept but not counted.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::PathBuf;
use std::time::Instant;

use super::interrupt::Interrupt;
use super::progress::Progress;
use super::{CellExecutor, RunError, process_cpu_seconds, workload_seeds};
use crate::matrix::Slot;
use crate::plan::Plan;
use crate::scenario::model::CellConfig;
use crate::seed;
use crate::server::Server;
use crate::store::{RepMarker, RunDir, SCHEMA_VERSION, StoreError};
use crate::workload::Datasets;

/// How a repetition ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SlotEnd {
    /// Records and marker written.
    Done,
    /// Its server died while it ran; it is recorded as failed with this reason.
    ServerDied(String),
    /// Ctrl-C: the partial repetition has no marker and is redone by `--resume`.
    Interrupted,
}

/// The server a repetition runs against, when exp launched one.
pub(super) struct Serving<'s> {
    /// The process group.
    pub server: &'s Server,
    /// Its log, relative to the run directory.
    pub log: &'s str,
}

/// State shared by every repetition of a run.
pub(super) struct Runner<'a> {
    pub plan: &'a Plan,
    pub dir: &'a RunDir,
    pub progress: Progress,
    pub datasets: Datasets,
    /// Executors by cell; cleared when a new server (a new URL) comes up.
    pub executors: HashMap<usize, CellExecutor>,
    pub interrupt: Interrupt,
    pub base_dir: PathBuf,
}

impl Runner<'_> {
    /// Runs one repetition with `config` (the plan's, or the one rendered at the server's
    /// port).
    pub async fn run_slot(
        &mut self,
        slot: Slot,
        config: &CellConfig,
        serving: Option<Serving<'_>>,
    ) -> Result<SlotEnd, RunError> {
        let cell_id = self.plan.cells[slot.cell].id.to_string();
        let seed = self.plan.scenario.experiment.seed;
        let work = self
            .datasets
            .build(
                &config.workload,
                &workload_seeds(seed, slot.round),
                &self.base_dir,
            )
            .map_err(|source| RunError::Workload {
                cell: cell_id.clone(),
                source,
            })?;
        if let Entry::Vacant(entry) = self.executors.entry(slot.cell) {
            let exec = CellExecutor::new(config, work.requests)
                .await
                .map_err(|source| RunError::Executor {
                    cell: cell_id.clone(),
                    source,
                })?;
            entry.insert(exec);
        }
        let exec = &self.executors[&slot.cell];
        self.progress.start(&cell_id, slot.round, work.requests);
        let writer = self.dir.start_repetition(&cell_id, slot.round)?;
        let engine_seed = seed::derive(seed, Some(&cell_id), slot.round, "engine");
        let started = Instant::now();
        let cpu_before = process_cpu_seconds();
        let died = serving.as_ref().map(|s| s.server.exited());
        let stop = async move {
            match died {
                Some(died) => died.await,
                None => std::future::pending().await,
            }
        };
        let counter = self.progress.counter();
        let run = exec.run_until(&work, writer, engine_seed, counter, stop);
        let (outcome, _cut) = tokio::select! {
            biased;
            () = self.interrupt.wait() => {
                self.progress.abandon("interrupted: finished repetitions are kept");
                return Ok(SlotEnd::Interrupted);
            }
            out = run => out?,
        };
        let failure = serving.as_ref().and_then(|s| {
            let status = s.server.exit()?;
            Some(format!(
                "the server exited ({status}) during the repetition; its log: {}",
                s.log
            ))
        });
        let marker = RepMarker {
            schema_version: SCHEMA_VERSION,
            cell_id,
            round: slot.round,
            records: 0,
            origin_wall: humantime::format_rfc3339_nanos(outcome.origin_wall).to_string(),
            wall_seconds: started.elapsed().as_secs_f64(),
            client_cpu_seconds: match (cpu_before, process_cpu_seconds()) {
                (Some(a), Some(b)) if !exec.is_simulated() => Some(b - a),
                _ => None,
            },
            details: outcome.details,
            failure: failure.clone(),
        };
        outcome.writer.finish(marker)?;
        self.progress.finish_one();
        Ok(failure.map_or(SlotEnd::Done, SlotEnd::ServerDied))
    }

    /// Records a repetition that could not run (its server did not start): no records, a
    /// marker with the reason.
    pub fn fail_slot(&mut self, slot: Slot, reason: &str) -> Result<(), StoreError> {
        let cell_id = self.plan.cells[slot.cell].id.to_string();
        let writer = self.dir.start_repetition(&cell_id, slot.round)?;
        let marker = RepMarker {
            schema_version: SCHEMA_VERSION,
            cell_id,
            round: slot.round,
            records: 0,
            origin_wall: crate::store::now_rfc3339(),
            wall_seconds: 0.0,
            client_cpu_seconds: None,
            details: Default::default(),
            failure: Some(reason.to_string()),
        };
        writer.finish(marker)?;
        self.progress.finish_one();
        Ok(())
    }
}
