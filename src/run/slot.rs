//! One repetition of one cell: build its workload, run it on the cell's executor while the
//! probes sample, write its records and its completion marker. A repetition whose server
//! died (or never started) gets a marker with the reason, so it is kept but not counted.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::Instant;

use super::interrupt::Interrupt;
use super::progress::Progress;
use super::{CellExecutor, RunError, workload_seeds};
use crate::matrix::Slot;
use crate::plan::Plan;
use crate::probe;
use crate::quality::perplexity::{self, Segment};
use crate::scenario::model::{CellConfig, GpuProbe, TargetKind};
use crate::seed;
use crate::server::Server;
use crate::store::{RepMarker, RunDir, SCHEMA_VERSION, StoreError};
use crate::workload::Datasets;
use crate::workload::work::RepetitionWork;
use std::sync::Arc;

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
    /// The process-wide cache that `preflight` filled: files are read once per run, not on
    /// every `execute` (adaptive rounds, extra looks and search probes call it many times).
    pub datasets: &'static Datasets,
    /// Executors by cell; cleared when a new server (a new URL) comes up.
    pub executors: HashMap<usize, CellExecutor>,
    pub interrupt: Interrupt,
    /// The `nvidia-smi` fields this machine accepts, or why it has none; found on the first
    /// repetition that samples GPUs.
    pub gpu_fields: Option<Result<&'static [&'static str], String>>,
    /// What each target answered about scoring prompts (`[quality]`).
    pub quality: super::quality::Support,
    /// The perplexity segments of each cell, read on its first quality pass.
    pub segments: HashMap<usize, Arc<Vec<Segment>>>,
}

/// The perplexity segments of a cell with `[quality] perplexity` (corpus read, documents
/// tokenized and windowed), or `None` without; an error names the file and what is wrong.
pub(super) fn segments(config: &CellConfig) -> Result<Option<Vec<Segment>>, String> {
    let Some(p) = config.quality.as_ref().and_then(|q| q.perplexity.as_ref()) else {
        return Ok(None);
    };
    let tokenizer = match &config.target.tokenizer {
        Some(path) => Some(
            Datasets::global()
                .tokenizer(path)
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    if p.window_tokens.is_some() && tokenizer.is_none() {
        return Err(format!(
            "[quality] perplexity.window_tokens = {} needs [target] tokenizer, to cut long documents into windows of token ids (hint: set `tokenizer = \"path/to/tokenizer.json\"` in [target], or drop window_tokens to send each document whole)",
            p.window_tokens.unwrap_or_default()
        ));
    }
    let docs = perplexity::load(&p.corpus, p.documents).map_err(|e| e.to_string())?;
    perplexity::segments(&docs, p.window_tokens, tokenizer.as_deref())
        .map(Some)
        .map_err(|e| e.to_string())
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
        let work = self.prepare(slot, config, &cell_id).await?;
        let quality_seed = seed::derive(seed, None, slot.round, "quality");
        let under_load = self.under_load(slot, config, &cell_id, quality_seed);
        let under_load = under_load.await?;
        let (sampling, mut absent) = self
            .start_probes(config, &serving, &cell_id, slot.round)
            .await?;
        let exec = &self.executors[&slot.cell];
        // A fanned-out client counts its own share.
        let requests = match work.share {
            Some(share) => work.requests.map(|n| share.count(n)),
            None => work.requests,
        };
        self.progress.start(&cell_id, slot.round, requests);
        let writer = self.dir.start_repetition(&cell_id, slot.round)?;
        let engine_seed = seed::derive(seed, Some(&cell_id), slot.round, "engine");
        let started = Instant::now();
        let died = serving.as_ref().map(|s| s.server.exited());
        let stop = async move {
            match died {
                Some(died) => died.await,
                None => std::future::pending().await,
            }
        };
        let counter = self.progress.counter();
        let divert = (under_load.clone()).map(|u| u as Arc<dyn super::driver::Divert>);
        let first = self.plan.schedule.first() == Some(&slot);
        let gate = (self.plan.client.as_ref())
            .map(|c| super::gate::Gate::of_slot(c, first, &cell_id, slot.round, &work));
        let hooks = super::executor::Hooks { divert, gate };
        let run = exec.run_until(&work, writer, engine_seed, counter, stop, hooks);
        let (outcome, _cut) = tokio::select! {
            biased;
            () = self.interrupt.wait() => {
                self.progress.abandon("interrupted: finished repetitions are kept");
                return Ok(SlotEnd::Interrupted);
            }
            out = run => out?,
        };
        let exited = match &serving {
            Some(s) => s.server.exit_after_run().await.map(|status| {
                format!(
                    "the server exited ({status}) during the repetition; its log: {}",
                    s.log
                )
            }),
            None => None,
        };
        // A server that stayed up but was not there for the requests (refused them, or none
        // answered) fails the repetition too; the simulated engine is always there.
        let mut failure = exited.or_else(|| match exec.is_simulated() {
            true => None,
            false => super::health::failure(outcome.writer.tally()),
        });
        if let Some(sampling) = sampling {
            let path = self.dir.probes_path(&cell_id, slot.round);
            absent.extend(
                sampling
                    .finish()
                    .await
                    .map_err(|e| StoreError::io(&path, e))?,
            );
        }
        let mut details = outcome.details;
        if let Some((mark, refused)) = outcome.client {
            details.client = Some(mark);
            // A late client's repetition fails for that, not for the requests it never sent.
            failure = refused.or(failure);
        }
        // The client's CPU over the measured part only (warm-up excluded), with its cores
        // and run-queue wait (`run::usage`).
        let client_cpu_seconds = outcome
            .measured
            .and_then(|m| super::usage::close_window(&m, &mut details));
        details.probes_absent = absent;
        // The repetition's own time: its load, not the quality pass after it.
        let wall_seconds = started.elapsed().as_secs_f64();
        let client = exec.client().cloned().filter(|_| under_load.is_none());
        if let Some(u) = &under_load {
            if let (Some(Ok(cannot)), Some(c)) = (u.scoring(), exec.client()) {
                self.quality.remember_scoring(&c.config().base_url, cannot);
            }
            if failure.is_none() {
                let records = u.finish(outcome.released.unwrap_or(0));
                self.dir.write_quality(&cell_id, slot.round, &records)?;
            }
        } else if config.quality.is_some() && failure.is_none() {
            self.progress.quality(&cell_id, slot.round);
        }
        let state = QualityState {
            support: &mut self.quality,
            segments: &mut self.segments,
            interrupt: &self.interrupt,
            datasets: self.datasets,
        };
        if failure.is_none()
            && let Some(client) = client
            && let Some(records) =
                quality_pass(state, &client, slot.cell, config, &cell_id, quality_seed).await?
        {
            self.dir.write_quality(&cell_id, slot.round, &records)?;
            // A server that died during the pass (a long prompt's log-probs, say) fails this
            // repetition, not the next one.
            if let Some(s) = &serving
                && let Some(status) = s.server.exit_after_run().await
            {
                failure = Some(format!(
                    "the server exited ({status}) during the repetition's quality pass; its log: {}",
                    s.log
                ));
            }
        }
        if self.interrupt.fired() {
            self.progress
                .abandon("interrupted: finished repetitions are kept");
            return Ok(SlotEnd::Interrupted);
        }
        let mut writer = outcome.writer;
        let prompts = Some(std::sync::Arc::clone(&work.source));
        details.token_counting =
            super::count::count_texts(&mut writer, self.counter(config, exec), prompts).await?;
        let marker = RepMarker {
            schema_version: SCHEMA_VERSION,
            cell_id,
            round: slot.round,
            records: 0,
            origin_wall: humantime::format_rfc3339_nanos(outcome.origin_wall).to_string(),
            wall_seconds,
            client_cpu_seconds,
            details,
            failure: failure.clone(),
        };
        writer.finish(marker)?;
        self.progress.finish_one();
        Ok(failure.map_or(SlotEnd::Done, SlotEnd::ServerDied))
    }

    /// What counts the generated tokens of responses without usage: the scenario's
    /// `[target] tokenizer`, else the server's `/tokenize`.
    fn counter(&self, config: &CellConfig, exec: &CellExecutor) -> Option<super::count::Counter> {
        let client = exec.client()?;
        let tokenizer = (config.target.tokenizer.as_deref())
            .and_then(|path| self.datasets.tokenizer(path).ok());
        Some(match tokenizer {
            Some(t) => super::count::Counter::Tokenizer(t),
            None => super::count::Counter::Server(std::sync::Arc::clone(client)),
        })
    }

    /// Builds the repetition's workload and, on first use, the cell's executor.
    async fn prepare(
        &mut self,
        slot: Slot,
        config: &CellConfig,
        cell_id: &str,
    ) -> Result<RepetitionWork, RunError> {
        let seeds = workload_seeds(self.plan.scenario.experiment.seed, slot.round);
        // The simulated engine counts a prompt's tokens as given: its prompts stay in words.
        let tokenizer = match config.target.kind {
            TargetKind::Sim => None,
            TargetKind::Http(_) => config.target.tokenizer.as_deref(),
        };
        let work = (self.datasets)
            .build_with(&config.workload, &seeds, tokenizer)
            .map_err(|source| RunError::Workload {
                cell: cell_id.to_string(),
                source,
            })?;
        let work = match &self.plan.client {
            Some(c) => work
                .for_client(c.client)
                .map_err(|why| RunError::Workload {
                    cell: cell_id.to_string(),
                    source: crate::workload::WorkloadError::Invalid(why),
                })?,
            None => work,
        };
        if let Entry::Vacant(entry) = self.executors.entry(slot.cell) {
            let exec = CellExecutor::new(config, work.requests)
                .await
                .map_err(|source| RunError::Executor {
                    cell: cell_id.to_string(),
                    source: Box::new(source),
                })?;
            entry.insert(exec);
        }
        Ok(work)
    }

    /// Starts the probes of a repetition (HTTP targets with `[probes]` only), with notes on
    /// sources that are absent; the first time GPUs are to be sampled, finds out whether
    /// `nvidia-smi` works here.
    async fn start_probes(
        &mut self,
        config: &CellConfig,
        serving: &Option<Serving<'_>>,
        cell_id: &str,
        round: u32,
    ) -> Result<(Option<probe::Sampling>, Vec<String>), RunError> {
        let Some(cfg) = config.probes.as_ref() else {
            return Ok((None, vec![]));
        };
        if config.target.kind == TargetKind::Sim {
            return Ok((None, vec![]));
        }
        let mut absent = vec![];
        if cfg.gpu != GpuProbe::Off && self.gpu_fields.is_none() {
            self.gpu_fields = Some(probe::gpu::detect().await);
        }
        let gpu = match (cfg.gpu, &self.gpu_fields) {
            (GpuProbe::Off, _) | (_, None) => None,
            (_, Some(Ok(fields))) => Some(*fields),
            (GpuProbe::On, Some(Err(why))) => {
                return Err(RunError::Server(format!(
                    "[probes] gpu = true, but GPUs cannot be sampled: {why} (hint: gpu = \"auto\" samples them only where nvidia-smi works)"
                )));
            }
            (GpuProbe::Auto, Some(Err(why))) => {
                absent.push(format!("gpu: {why}"));
                None
            }
        };
        let path = self.dir.probes_path(cell_id, round);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        let pgid = serving.as_ref().map(|s| s.server.pid());
        Ok((Some(probe::start(cfg, gpu, pgid, path)), absent))
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

/// The perplexity segments of `cell`, read on first use and kept for the run.
pub(super) fn cell_segments(
    cache: &mut HashMap<usize, Arc<Vec<Segment>>>,
    cell: usize,
    config: &CellConfig,
    cell_id: &str,
) -> Result<Option<Arc<Vec<Segment>>>, RunError> {
    if let Some(s) = cache.get(&cell) {
        return Ok(Some(Arc::clone(s)));
    }
    let read = segments(config).map_err(|why| RunError::Quality {
        cell: cell_id.to_string(),
        why,
    })?;
    Ok(read.map(|s| {
        let s = Arc::new(s);
        cache.insert(cell, Arc::clone(&s));
        s
    }))
}

/// The run's state a quality pass reads and extends.
struct QualityState<'r> {
    support: &'r mut super::quality::Support,
    segments: &'r mut HashMap<usize, Arc<Vec<Segment>>>,
    interrupt: &'r Interrupt,
    datasets: &'static Datasets,
}

/// The repetition's quality pass (`[quality]`, HTTP targets), or `None` without one or when
/// Ctrl-C stopped it (the repetition is then redone by `--resume`).
async fn quality_pass(
    state: QualityState<'_>,
    client: &crate::backend::Client,
    cell: usize,
    config: &CellConfig,
    cell_id: &str,
    seed: u64,
) -> Result<Option<Vec<crate::record::QualityRecord>>, RunError> {
    let Some(quality) = &config.quality else {
        return Ok(None);
    };
    let segments = cell_segments(state.segments, cell, config, cell_id)?;
    let tokenizer =
        (config.target.tokenizer.as_deref()).and_then(|path| state.datasets.tokenizer(path).ok());
    let pass = super::quality::Pass {
        client,
        config: quality,
        segments,
        tokenizer,
        seed,
    };
    let run = super::quality::run(pass, state.support);
    tokio::select! {
        biased;
        () = state.interrupt.wait() => Ok(None),
        records = run => records.map(Some).map_err(|why| RunError::Quality {
            cell: cell_id.to_string(),
            why,
        }),
    }
}
