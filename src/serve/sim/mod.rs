//! `exp serve --sim`: the simulated engine ([`crate::sim::Engine`]) behind an
//! OpenAI-compatible streaming server, in real time.
//!
//! Routes: `POST /v1/completions` and `POST /v1/chat/completions` (SSE when `stream: true`,
//! in vLLM's shape, with the usage chunk for `stream_options.include_usage`, continuous usage
//! for vLLM's `continuous_usage_stats`, and `[DONE]`; one JSON reply otherwise),
//! `GET /v1/models`, `GET /health`, and `GET /metrics` (Prometheus text with vLLM's metric
//! names, plus `exp:emission_lag_seconds`).
//!
//! A request's prompt length is its whitespace-word count (the fixed server's tokenizer, see
//! [`crate::serve::request`]) and it generates exactly `max_tokens` (default 16) tokens of text
//! `" tok"`. Requests the engine can never hold (prompt + output beyond the KV cache), and
//! empty prompts or `max_tokens: 0`, get a 400.
//!
//! One OS thread owns the engine and its clock (`engine.rs`); each request has its own
//! channel of events from it (`http.rs`). A token emitted at simulated instant `t` is written
//! as soon after the server's clock reaches `t` as the thread and the HTTP layer manage; the
//! difference is the *emission lag*, recorded per token ([`SimServerStats::lag`]).

mod engine;
mod http;
mod stats;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use stats::{LagSummary, SimServerStats};

use super::ServeError;
use super::frames::Frames;
use crate::sim::{Engine, EngineParams, SimError, StepCost};

/// What a simulated server runs.
#[derive(Clone)]
pub struct SimServeConfig {
    /// Time model of one engine step: the hardware model ([`crate::hw::Deployment`]) for
    /// `exp serve --sim`, or [`crate::sim::LinearCost`].
    pub cost: Arc<dyn StepCost + Send + Sync>,
    /// Scheduler and memory settings.
    pub params: EngineParams,
    /// Seed of the step-time noise.
    pub seed: u64,
    /// Model name in replies, `/v1/models` and the `model_name` label.
    pub model: String,
}

impl std::fmt::Debug for SimServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimServeConfig")
            .field("params", &self.params)
            .field("seed", &self.seed)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

/// Errors of the simulated server.
#[derive(Debug, thiserror::Error)]
pub enum SimServeError {
    /// The engine refused its settings.
    #[error("simulated engine: {0}")]
    Engine(#[from] SimError),
    /// Binding or serving failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// A running simulated server. Dropping the handle stops it.
pub struct SimServerHandle {
    addr: SocketAddr,
    shared: Arc<http::Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    engine: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for SimServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimServerHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SimServerHandle {
    /// The bound address (the real port when port 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://{addr}/v1`, ready for a client's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The server's figures so far.
    pub fn stats(&self) -> SimServerStats {
        self.shared.stats.snapshot()
    }

    /// Stops the engine (open streams end without `[DONE]`), stops accepting, and waits for
    /// the server and the engine thread to end.
    pub async fn shutdown(mut self) -> Result<(), ServeError> {
        self.signal_stop();
        let task = self.task.take().expect("the task is taken only here");
        let served = match task.await {
            Ok(result) => result.map_err(ServeError::Io),
            Err(e) => Err(ServeError::Task(e.to_string())),
        };
        if let Some(engine) = self.engine.take() {
            tokio::task::spawn_blocking(move || engine.join())
                .await
                .map_err(|e| ServeError::Task(e.to_string()))?
                .map_err(|_| ServeError::Task("the engine thread panicked".into()))?;
        }
        served
    }

    fn signal_stop(&mut self) {
        let _ = self.shared.inbox.send(engine::Command::Stop);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for SimServerHandle {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

/// Binds `addr` (port 0 picks a free port), starts the engine thread, and serves on the
/// current tokio runtime until the handle is shut down or dropped.
pub async fn spawn_sim(
    addr: SocketAddr,
    config: SimServeConfig,
) -> Result<SimServerHandle, SimServeError> {
    let params = config.params;
    let kv_tokens = params.kv_capacity_tokens;
    let engine = Engine::new(params, config.cost, config.seed)?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let bound = listener.local_addr().map_err(ServeError::Io)?;
    let (inbox, commands) = mpsc::channel();
    let clock = engine::Clock::start();
    let stats = Arc::new(stats::Stats::new());
    let shared = Arc::new(http::Shared {
        inbox,
        clock,
        stats: stats.clone(),
        frames: Frames::tagged(&config.model, "sim"),
        cache: stats::CacheInfo {
            block_size: params.block_size,
            num_gpu_blocks: kv_tokens / u64::from(params.block_size),
        },
        model: config.model,
        next_id: AtomicU64::new(0),
    });
    let engine_loop = engine::EngineLoop::new(engine, commands, clock, stats);
    let engine = std::thread::Builder::new()
        .name("exp-sim-engine".into())
        .spawn(move || engine_loop.run())
        .map_err(ServeError::Io)?;
    // Small frames every few milliseconds: Nagle's algorithm would hold them back.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let app = http::router(shared.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    Ok(SimServerHandle {
        addr: bound,
        shared,
        stop: Some(stop),
        task: Some(task),
        engine: Some(engine),
    })
}
