//! What executes a cell's repetitions: the simulated engine (virtual time, on a blocking
//! thread) or the OpenAI client behind the tokio driver. Both produce the same records, which
//! are written as they arrive.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use tokio::sync::mpsc;

use super::driver::{self, Sender};
use crate::backend::{BackendError, Client, ClientConfig};
use crate::hw::{Deployment, HwError};
use crate::record::RequestRecord;
use crate::scenario::model::{CellConfig, TargetKind};
use crate::sim::{self, EngineParams, SimError};
use crate::store::{RepWriter, StoreError};
use crate::workload::work::{RepetitionWork, RequestSpec};

/// A cell's target could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The hardware model refused the cell (unknown model or GPU, weights do not fit, …).
    #[error("{0}")]
    Hardware(#[from] HwError),
    /// The simulated engine refused its parameters.
    #[error("simulated engine: {0}")]
    Sim(#[from] SimError),
    /// The HTTP client could not be built or the server could not be asked for its model.
    #[error("{0}")]
    Backend(#[from] BackendError),
    /// Something the scenario must say.
    #[error("{0}")]
    Config(String),
}

/// A finished repetition, ready for its completion marker.
pub struct RepOutcome {
    /// The writer holding the repetition's records.
    pub writer: RepWriter,
    /// Wall-clock time of the records' origin.
    pub origin_wall: SystemTime,
    /// Executor details for the marker (simulator statistics).
    pub details: crate::store::MarkerDetails,
    /// For HTTP runs: where the measured part began, for the client's own CPU accounting.
    pub measured: Option<Measured>,
    /// For HTTP runs: measured requests released (arrivals a divert took not counted).
    pub released: Option<u64>,
    /// A fanned-out client's start, and why it sent nothing when it did not (late).
    pub client: Option<(crate::fanout::ClientMark, Option<String>)>,
}

/// What an HTTP repetition adds to its load: quality items that take some arrivals
/// (`[quality] when = "under-load"`), and a fanned-out client's start gate (`--client`).
#[derive(Default)]
pub struct Hooks {
    /// Takes some arrivals for quality items.
    pub divert: Option<Arc<dyn driver::Divert>>,
    /// Holds the measured requests until the clients' shared instant.
    pub gate: Option<super::gate::Gate>,
}

/// The start of a repetition's measured part (after warm-up).
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// The records' origin.
    pub origin: std::time::Instant,
    /// The process's CPU time and run-queue wait at that point.
    pub at_origin: super::usage::Snapshot,
}

/// The executor of one cell.
pub enum CellExecutor {
    /// The simulated engine with its step-cost model.
    Sim {
        /// Model × GPU × TP with the preset's efficiencies.
        deployment: Arc<Deployment>,
        /// Scheduler and memory settings.
        params: EngineParams,
    },
    /// An OpenAI-compatible server.
    Http(Arc<Client>),
}

impl Sender for Client {
    async fn send(
        &self,
        req: RequestSpec,
        index: u64,
        origin: std::time::Instant,
        scheduled_ns: u64,
    ) -> RequestRecord {
        Client::send(self, &req, index, origin, scheduled_ns).await
    }
}

impl CellExecutor {
    /// Sets up the executor of a cell: builds the deployment and engine parameters for the
    /// simulator, or the client (asking the server for its model when none is named).
    pub async fn new(
        cell: &CellConfig,
        planned_requests: Option<u64>,
    ) -> Result<Self, ExecutorError> {
        let t = &cell.target;
        match t.kind {
            TargetKind::Sim => {
                let deployment = crate::theory::deployment(cell)?.ok_or_else(|| {
                    ExecutorError::Config(
                        "kind = \"sim\" needs `model_config` and `gpu` in [target]".into(),
                    )
                })?;
                let sim = t
                    .sim
                    .as_ref()
                    .ok_or_else(|| ExecutorError::Config("missing simulator settings".into()))?;
                let batched = cell.engine.max_num_batched_tokens.get();
                let kv = crate::theory::kv_capacity_tokens(
                    &deployment,
                    sim.gpu_memory_utilization,
                    batched,
                )?;
                let mut params = EngineParams::new(cell.engine.max_num_seqs.get(), batched, kv);
                params.block_size = sim.block_size;
                params.noise_cv = crate::theory::noise_cv(sim);
                params.validate()?;
                Ok(CellExecutor::Sim {
                    deployment: Arc::new(deployment),
                    params,
                })
            }
            TargetKind::Http(protocol) => {
                let api_key = match &t.api_key_env {
                    Some(var) => Some(std::env::var(var).map_err(|_| {
                        ExecutorError::Config(format!(
                            "[target] api_key_env = \"{var}\", but the environment variable {var} is not set"
                        ))
                    })?),
                    None => None,
                };
                // Whatever is sent as a credential is hidden from every file and message.
                crate::secrets::remember(api_key.as_deref());
                crate::secrets::remember(
                    (t.headers.iter())
                        .filter(|h| h.secret || crate::secrets::is_secret_header(&h.name))
                        .map(|h| h.value.as_str()),
                );
                let mut cfg = ClientConfig {
                    protocol,
                    base_url: t.base_url.clone().unwrap_or_default(),
                    model: t.model.clone().unwrap_or_default(),
                    headers: t
                        .headers
                        .iter()
                        .map(|h| (h.name.clone(), h.value.clone()))
                        .collect(),
                    api_key,
                    timeout: t.timeout,
                    idle_timeout: t.idle_timeout,
                    token_timeout: t.token_timeout,
                    ignore_eos: t.ignore_eos,
                    continuous_usage_stats: false,
                    max_connections: in_flight_hint(cell, planned_requests),
                };
                allow_connections(cfg.max_connections);
                if cfg.model.is_empty() {
                    let probe = Client::new(cfg.clone())?;
                    let models = probe.list_models().await?;
                    cfg.model = models.into_iter().next().ok_or_else(|| {
                        ExecutorError::Config(format!(
                            "{}/{} lists no model; set `model` in [target]",
                            cfg.base_url.trim_end_matches('/'),
                            protocol.models_route()
                        ))
                    })?;
                }
                Ok(CellExecutor::Http(Arc::new(Client::new(cfg)?)))
            }
        }
    }

    /// True for the simulated engine.
    pub fn is_simulated(&self) -> bool {
        matches!(self, CellExecutor::Sim { .. })
    }

    /// The HTTP client, for requests outside a repetition (a server's warm-up).
    pub fn client(&self) -> Option<&Arc<Client>> {
        match self {
            CellExecutor::Http(c) => Some(c),
            CellExecutor::Sim { .. } => None,
        }
    }

    /// Runs one repetition, appending its records to `writer` as they complete.
    pub async fn run(
        &self,
        work: &RepetitionWork,
        writer: RepWriter,
        seed: u64,
        finished: Arc<AtomicU64>,
    ) -> Result<RepOutcome, StoreError> {
        let never = std::future::pending::<()>();
        Ok(self
            .run_until(work, writer, seed, finished, never, Hooks::default())
            .await?
            .0)
    }

    /// [`CellExecutor::run`], cut short when `stop` resolves first (its server died): requests
    /// in flight are abandoned, finished ones are kept. The flag says whether it was cut.
    /// The simulated engine is never cut. `divert` (HTTP only) takes some of the arrivals. A
    /// fanned-out client's measured requests wait for `gate` (HTTP only: the plan refuses
    /// `--client` on a simulated target).
    pub async fn run_until(
        &self,
        work: &RepetitionWork,
        writer: RepWriter,
        seed: u64,
        finished: Arc<AtomicU64>,
        stop: impl std::future::Future<Output = ()> + Send,
        hooks: Hooks,
    ) -> Result<(RepOutcome, bool), StoreError> {
        let Hooks { divert, gate } = hooks;
        match self {
            CellExecutor::Sim { deployment, params } => {
                let (work, deployment, params) = (work.clone(), deployment.clone(), *params);
                let out = run_simulated(work, deployment, params, writer, seed, finished);
                Ok((out.await?, false))
            }
            CellExecutor::Http(client) => {
                let (tx, mut rx) = mpsc::unbounded_channel::<RequestRecord>();
                let mut writer = writer;
                let writer_task = tokio::spawn(async move {
                    // Records that finish before a quiet spell still reach the file.
                    let mut tick = tokio::time::interval(crate::store::FLUSH_EVERY);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tokio::select! {
                            rec = rx.recv() => match rec {
                                Some(rec) => {
                                    writer.append(&rec)?;
                                    finished.fetch_add(1, Ordering::Relaxed);
                                }
                                None => break,
                            },
                            _ = tick.tick() => writer.flush()?,
                        }
                    }
                    Ok::<_, StoreError>(writer)
                });
                let started = SystemTime::now();
                // The driver runs as a task on a runtime worker, not on the thread that
                // awaits the run: its sends then start on the worker's own queue instead of
                // crossing threads, which would add a wake-up to every request's queue delay.
                let (client, work) = (client.clone(), work.clone());
                let mut drive = tokio::spawn(async move {
                    driver::drive_with(client, &work, tx, divert, gate.as_ref()).await
                });
                // Cutting the driver short drops its sender, which ends the writer task. The
                // writer can only end before the driver by failing (the driver holds the
                // sender): then stop sending at once, since going on would spend the rest of
                // the repetition measuring what cannot be kept.
                let mut writer_task = std::pin::pin!(writer_task);
                let mut drained = None;
                let (report, stopped) = tokio::select! {
                    biased;
                    report = &mut drive => (Some(report.expect("the driver does not panic")), false),
                    () = stop => {
                        drive.abort();
                        (None, true)
                    }
                    early = &mut writer_task => match early.expect("the writer task does not panic") {
                        Err(e) => {
                            drive.abort();
                            return Err(e);
                        }
                        // The driver finished and dropped its sender, and the writer drained
                        // before this select saw the driver's end.
                        Ok(writer) => {
                            drained = Some(writer);
                            let report = (&mut drive).await.expect("the driver does not panic");
                            (Some(report), false)
                        }
                    },
                };
                let writer = match drained {
                    Some(writer) => writer,
                    None => writer_task.await.expect("the writer task does not panic")?,
                };
                let mut details = crate::store::MarkerDetails::default();
                let released = report.as_ref().map(|r| r.released);
                let client_start = report.as_ref().and_then(|r| r.client.clone());
                let (origin_wall, measured) = match report {
                    Some(report) => {
                        if let Some(anchor) = crate::clock::Anchor::now() {
                            // Lets records be lined up with other logs on this host.
                            let ns = anchor.ns_of(report.origin);
                            details.origin_monotonic_ns = Some(ns);
                        }
                        let measured = Measured {
                            origin: report.origin,
                            at_origin: report.at_origin,
                        };
                        (report.origin_wall, Some(measured))
                    }
                    None => (started, None),
                };
                let outcome = RepOutcome {
                    writer,
                    origin_wall,
                    details,
                    measured,
                    released,
                    client: client_start,
                };
                Ok((outcome, stopped))
            }
        }
    }
}

/// One repetition on the simulated engine (a blocking thread), its records appended as they
/// finish (in send order).
async fn run_simulated(
    work: RepetitionWork,
    deployment: Arc<Deployment>,
    params: EngineParams,
    writer: RepWriter,
    seed: u64,
    finished: Arc<AtomicU64>,
) -> Result<RepOutcome, StoreError> {
    let origin_wall = SystemTime::now();
    let result = tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        let mut written = Ok(());
        let mut sink = |rec: RequestRecord| {
            if written.is_ok() {
                written = writer.append(&rec);
                finished.fetch_add(1, Ordering::Relaxed);
            }
        };
        let run = sim::run_repetition_into(&work, &params, deployment.as_ref(), seed, &mut sink);
        (run, written, writer)
    })
    .await
    .expect("the simulator does not panic");
    let (run, written, writer) = result;
    written?;
    let stats = run.map_err(|e| StoreError::Format {
        path: "simulated engine".into(),
        message: e.to_string(),
    })?;
    let details = crate::store::MarkerDetails {
        sim: Some(crate::store::SimDetails {
            sim_steps: stats.steps,
            sim_preemptions: stats.preemptions,
            sim_rejected: stats.rejected,
            sim_peak_running: stats.peak_running,
            sim_peak_kv_usage: stats.peak_kv_usage,
            sim_window_ns: stats.window_ns,
        }),
        ..Default::default()
    };
    Ok(RepOutcome {
        writer,
        origin_wall,
        details,
        measured: None,
        released: None,
        client: None,
    })
}

/// Requests likely in flight at once, so the connection pool never caps them.
fn in_flight_hint(cell: &CellConfig, planned: Option<u64>) -> usize {
    let w = &cell.workload;
    let from_arrival = match w.arrival.in_flight_bound() {
        Some(bound) => u64::from(bound.get()),
        None => w
            .max_concurrency
            .map_or(planned.unwrap_or(1024).min(10_000), |c| u64::from(c.get())),
    };
    from_arrival.max(1) as usize
}

/// Descriptors kept free for files, the runtime and the listener side of tests.
const FD_RESERVE: u64 = 64;

/// Raises the open-file limit so `in_flight` connections fit (one descriptor each); where the
/// hard limit is lower, says so, since connects beyond it fail with "too many open files".
fn allow_connections(in_flight: usize) {
    if let Some(lim) = crate::fdlimit::raise()
        && lim.soft < in_flight as u64 + FD_RESERVE
    {
        eprintln!(
            "warning: the open-file limit is {} (hard limit {}): at most about {} requests can be in flight at once; raise it with `ulimit -Hn` (as root) for more",
            lim.soft,
            lim.hard,
            lim.soft.saturating_sub(FD_RESERVE)
        );
    }
}
