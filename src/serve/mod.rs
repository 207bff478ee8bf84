//! An OpenAI-compatible streaming server with fixed, known timing (`exp serve --fixed
//! ttft=100ms,itl=10ms`): a target whose latencies are known in advance, for checking `exp`
//! itself and for trying scenarios without a GPU.
//!
//! Routes: `POST /v1/completions` and `POST /v1/chat/completions` (streamed as vLLM does
//! when `stream: true`, one JSON reply otherwise), `GET /v1/models`, `GET /health`.
//! Every request generates exactly its `max_tokens` (default 16) tokens of text `" tok"`;
//! prompt tokens are counted by a whitespace tokenizer (see [`request`]). With the referee on
//! (`accuracy=P`, `logprob=L`), a retrieval prompt's first token is its answer, right for a
//! share `P` of items, and completions can carry log-probs, all `L` (see [`Referee`]).
//!
//! Token `k` (0-based) is written at `received + ttft + k·itl`, scaled by
//! [`FixedTiming::slowdown`]. The tokio timer has millisecond granularity, so writes land up
//! to about a millisecond after their deadline; the truth log ([`FixedServerHandle::truth`])
//! records when each request's first and last token were actually written.

mod fixed;
mod frames;
mod listen;
mod referee;
pub mod request;
pub mod sim;
mod truth;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::http::HeaderName;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use frames::TOKEN_TEXT;
pub use referee::{Referee, Scoring, answers_correctly, word_id};
pub use truth::{Route, TruthEntry, TruthLine, write_lines as write_truth_lines};

/// The timing and identity of a fixed server.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedTiming {
    /// Time from receiving a request to writing its first token.
    pub ttft: Duration,
    /// Time between consecutive tokens.
    pub itl: Duration,
    /// Multiplies `ttft` and `itl` (1.0 = as given; 1.1 = a server 10% slower).
    pub slowdown: f64,
    /// Model name in replies and `/v1/models`.
    pub model: String,
    /// Request header (e.g. `x-request-id`) whose value is recorded in the truth log and
    /// echoed in the reply.
    pub echo_header: Option<String>,
    /// Keep a truth entry per request. Tests want it; a long-running `exp serve` should turn
    /// it off, as the log grows by one entry per request.
    pub keep_truth: bool,
    /// Tokens per streamed event (1 = token by token): an engine that batches its writes
    /// (speculative decoding, multi-token prediction). Each event is written when its last
    /// token is due; usage counts every token, the events carry no count of their own. An
    /// event's text is one [`TOKEN_TEXT`] per token it carries.
    pub chunk: u32,
    /// Send usage when asked (`stream_options.include_usage`); `usage=none` never does, as
    /// older servers and some proxies.
    pub usage: bool,
    /// Serve `POST /tokenize` (as vLLM, SGLang and llama.cpp do), counting one token per
    /// whitespace-separated word, which is exact for this server's own text; `tokenize=none`
    /// leaves it out (404).
    pub tokenize: bool,
    /// Known answers to retrieval prompts and known log-probabilities (`accuracy=P`,
    /// `logprob=L`, `scoring=prompt|generated`), for checking exp's quality pass: a retrieval
    /// prompt is answered right for a share `P` of items (the same items every time), and every
    /// scored token has log-prob `L`, so perplexity is `e^(−L)`. Off by default. See
    /// [`Referee`].
    pub referee: Referee,
}

impl FixedTiming {
    /// `ttft` and `itl` as given, model `exp-fixed`, no echo header, truth log kept.
    pub fn new(ttft: Duration, itl: Duration) -> Self {
        FixedTiming {
            ttft,
            itl,
            slowdown: 1.0,
            model: "exp-fixed".to_owned(),
            echo_header: None,
            keep_truth: true,
            chunk: 1,
            usage: true,
            tokenize: true,
            referee: Referee::default(),
        }
    }

    /// Checks the values a user can get wrong.
    pub fn validate(&self) -> Result<(), ServeError> {
        if !(self.slowdown.is_finite() && self.slowdown > 0.0) {
            return Err(spec_error(format!(
                "slowdown must be > 0, got {}",
                self.slowdown
            )));
        }
        self.effective()?;
        if !(1..=1000).contains(&self.chunk) {
            return Err(spec_error(format!(
                "chunk must be 1 to 1000 tokens per event, got {}",
                self.chunk
            )));
        }
        self.referee.validate().map_err(spec_error)?;
        if let Some(h) = &self.echo_header {
            HeaderName::from_bytes(h.as_bytes())
                .map_err(|_| spec_error(format!("`{h}` is not a valid header name")))?;
        }
        Ok(())
    }
}

impl FixedTiming {
    /// `(ttft, itl)` with the slowdown applied, each at most [`MAX_DELAY`].
    fn effective(&self) -> Result<(Duration, Duration), ServeError> {
        let scale = |d: Duration, name: &str| {
            Duration::try_from_secs_f64(d.as_secs_f64() * self.slowdown)
                .ok()
                .filter(|d| *d <= MAX_DELAY)
                .ok_or_else(|| spec_error(format!("{name} × slowdown must be at most 1h")))
        };
        Ok((scale(self.ttft, "ttft")?, scale(self.itl, "itl")?))
    }
}

/// Longest `ttft` or `itl` a fixed server accepts (after the slowdown).
pub const MAX_DELAY: Duration = Duration::from_secs(3600);

impl FromStr for FixedTiming {
    type Err = ServeError;

    /// Parses `ttft=100ms,itl=10ms[,slowdown=1.1][,model=NAME][,echo=HEADER][,chunk=N]
    /// [,usage=none][,tokenize=none][,accuracy=P][,logprob=L][,scoring=prompt|generated]`
    /// (durations in `ns`, `us`, `ms` or `s`; fractions allowed; `P` in 0..=1, `L` ≤ 0).
    fn from_str(spec: &str) -> Result<Self, ServeError> {
        let mut timing = FixedTiming::new(Duration::ZERO, Duration::ZERO);
        let (mut ttft, mut itl) = (false, false);
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(spec_error(format!("`{part}` is not key=value")));
            };
            match key.trim() {
                "ttft" => (timing.ttft, ttft) = (parse_duration(value)?, true),
                "itl" => (timing.itl, itl) = (parse_duration(value)?, true),
                "slowdown" => {
                    timing.slowdown = value
                        .trim()
                        .parse()
                        .map_err(|_| spec_error(format!("slowdown `{value}` is not a number")))?
                }
                "model" => timing.model = value.trim().to_owned(),
                "echo" => timing.echo_header = Some(value.trim().to_owned()),
                "chunk" => {
                    timing.chunk = value.trim().parse().map_err(|_| {
                        spec_error(format!("chunk `{value}` is not a whole number of tokens"))
                    })?
                }
                key @ ("usage" | "tokenize") => {
                    let on = match value.trim() {
                        "none" | "off" | "no" | "false" => false,
                        "yes" | "on" | "true" => true,
                        v => {
                            return Err(spec_error(format!("{key} `{v}` is not `none` or `yes`")));
                        }
                    };
                    match key {
                        "usage" => timing.usage = on,
                        _ => timing.tokenize = on,
                    }
                }
                other => {
                    if !timing.referee.set(other, value).map_err(spec_error)? {
                        return Err(spec_error(format!(
                            "unknown key `{other}` (expected ttft, itl, slowdown, model, echo, chunk, usage, tokenize, accuracy, logprob or scoring)"
                        )));
                    }
                }
            }
        }
        if !(ttft && itl) {
            return Err(spec_error(
                "both ttft and itl are required, e.g. ttft=100ms,itl=10ms",
            ));
        }
        timing.validate()?;
        Ok(timing)
    }
}

/// Parses `100ms`, `1.5s`, `250us`, `10ns`.
fn parse_duration(text: &str) -> Result<Duration, ServeError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale = match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        _ => return Err(spec_error(format!("`{t}`: give a unit (ns, us, ms or s)"))),
    };
    let value: f64 = num
        .parse()
        .map_err(|_| spec_error(format!("`{t}` is not a duration")))?;
    Duration::try_from_secs_f64(value * scale)
        .map_err(|_| spec_error(format!("`{t}` is out of range")))
}

/// Errors of the fixed server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A `--fixed` spec or a [`FixedTiming`] value is wrong.
    #[error("invalid fixed-server timing: {0}")]
    Spec(String),
    /// The address could not be bound.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The server stopped with an I/O error.
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
    /// The server task panicked or was cancelled.
    #[error("server task ended abnormally: {0}")]
    Task(String),
}

fn spec_error(message: impl Into<String>) -> ServeError {
    ServeError::Spec(message.into())
}

/// A running fixed server. Dropping the handle asks the server to stop.
#[derive(Debug)]
pub struct FixedServerHandle {
    addr: SocketAddr,
    truth: Option<Arc<truth::TruthLog>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl FixedServerHandle {
    /// The bound address (the real port when port 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://{addr}/v1`, ready for a client's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request's truth entry so far, by arrival order (empty when `keep_truth` is off).
    /// A request appears once its reply has been handed over in full (before the client can
    /// read its end) or its client has gone.
    pub fn truth(&self) -> Vec<TruthEntry> {
        self.truth
            .as_ref()
            .map(|t| t.snapshot())
            .unwrap_or_default()
    }

    /// Stops accepting, lets replies in progress finish, and waits for the server to end.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        self.finish().await.map(|_| ())
    }

    /// Like [`shutdown`](Self::shutdown), then returns the whole truth log, including the
    /// replies that finished during the shutdown.
    pub async fn finish(mut self) -> Result<Vec<TruthEntry>, ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("the task is taken only here");
        match task.await {
            Ok(result) => result.map_err(ServeError::Io)?,
            Err(e) => return Err(ServeError::Task(e.to_string())),
        }
        Ok(self.truth())
    }
}

impl Drop for FixedServerHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Binds `addr` (port 0 picks a free port) and serves with `timing` on the current tokio
/// runtime until the handle is shut down or dropped.
pub async fn spawn_fixed(
    addr: SocketAddr,
    timing: FixedTiming,
) -> Result<FixedServerHandle, ServeError> {
    timing.validate()?;
    let (ttft, itl) = timing.effective()?;
    let listener = listen::bind(addr).map_err(|source| ServeError::Bind { addr, source })?;
    let bound = listener.local_addr()?;
    let truth = timing
        .keep_truth
        .then(|| Arc::new(truth::TruthLog::default()));
    let shared = Arc::new(fixed::Shared {
        ttft,
        itl,
        echo: timing
            .echo_header
            .as_deref()
            .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok()),
        frames: frames::Frames::chunked(&timing.model, timing.chunk),
        chunk: timing.chunk,
        usage: timing.usage,
        tokenize: timing.tokenize,
        referee: timing.referee.is_on().then_some(timing.referee),
        model: timing.model,
        truth: truth.clone(),
        seq: AtomicU64::new(0),
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let app = fixed::router(shared);
    let task = tokio::spawn(listen::serve(listener, app, stopped));
    Ok(FixedServerHandle {
        addr: bound,
        truth,
        stop: Some(stop),
        task: Some(task),
    })
}
