//! Routes and handlers of the fixed-timing server, and the token stream that paces a reply.
//!
//! Token `k` (0-based) is handed to the HTTP layer at the absolute deadline
//! `received + ttft + k·itl` (both scaled by the slowdown), so timer jitter never accumulates.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use tokio::time::Sleep;

use super::frames::{self, DONE, Frames, RouteFrames};
use super::referee::{Referee, Verdict};
use super::request::GenRequest;
use super::truth::{Route, TruthEntry, TruthLog, TruthRecorder};

/// Largest request body read (long prompts given as token ids are large).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Effective time to first token (slowdown applied).
    pub ttft: Duration,
    /// Effective gap between tokens (slowdown applied).
    pub itl: Duration,
    /// Tokens per streamed event.
    pub chunk: u32,
    /// Usage is sent when asked.
    pub usage: bool,
    /// `POST /tokenize` is served.
    pub tokenize: bool,
    /// Known answers and log-probs, when on (`None` keeps replies on the pre-rendered path).
    pub referee: Option<Referee>,
    /// Model name in replies and `/v1/models`.
    pub model: String,
    /// Header recorded in the truth log and echoed in the reply.
    pub echo: Option<HeaderName>,
    /// Where truth entries go, when kept.
    pub truth: Option<Arc<TruthLog>>,
    /// Pre-rendered frames.
    pub frames: Frames,
    /// Next request sequence number.
    pub seq: AtomicU64,
}

impl Shared {
    /// Deadline of token `k` for a request received at `received`.
    fn deadline(&self, received: Instant, k: u32) -> tokio::time::Instant {
        tokio::time::Instant::from_std(received + self.ttft + self.itl * k)
    }
}

/// The server's routes.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let router = match shared.tokenize {
        true => Router::new().route("/tokenize", post(tokenize)),
        false => Router::new(),
    };
    router
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/models", get(models))
        .route("/health", get(|| async { StatusCode::OK }))
        .with_state(shared)
}

async fn completions(State(s): State<Arc<Shared>>, req: Request) -> Response {
    generate(s, Route::Completions, req).await
}

async fn chat(State(s): State<Arc<Shared>>, req: Request) -> Response {
    generate(s, Route::Chat, req).await
}

/// `POST /tokenize` with `prompt` (vLLM, SGLang) or `content` (llama.cpp): one token per
/// whitespace-separated word, exact for this server's text (one [`frames::TOKEN_TEXT`] per
/// token).
async fn tokenize(body: axum::body::Bytes) -> Response {
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(format!("invalid JSON: {e}")),
    };
    let Some(text) =
        (value.get("prompt").or_else(|| value.get("content"))).and_then(|t| t.as_str())
    else {
        return bad_request("`prompt` (a string) is required".into());
    };
    let n = text.split_whitespace().count();
    let tokens = vec![0u32; n];
    axum::Json(serde_json::json!({"tokens": tokens, "count": n, "max_model_len": 1_000_000}))
        .into_response()
}

async fn models(State(s): State<Arc<Shared>>) -> Response {
    axum::Json(frames::models_body(&s.model)).into_response()
}

/// An OpenAI-shaped error reply.
fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(frames::error_body(&message)),
    )
        .into_response()
}

async fn generate(s: Arc<Shared>, route: Route, req: Request) -> Response {
    // Taking the request whole avoids copying its header map, as the `HeaderMap` extractor does.
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) => return bad_request(format!("could not read the body: {e}")),
    };
    let headers = parts.headers;
    let received = Instant::now();
    let req: GenRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(format!("invalid JSON body: {e}")),
    };
    let chat = route == Route::Chat;
    let Some(prompt_tokens) = req.prompt_tokens(chat) else {
        let field = if chat { "messages" } else { "prompt" };
        return bad_request(format!("`{field}` is required"));
    };
    let verdict = match &s.referee {
        None => None,
        Some(r) => match Verdict::judge(r, route, &body) {
            Ok(v) => Some(v).filter(|v| !v.is_empty()),
            Err(message) => return bad_request(message),
        },
    };
    let echoed = s
        .echo
        .as_ref()
        .and_then(|h| Some((h.clone(), headers.get(h)?.clone())));
    let entry = TruthEntry {
        seq: s.seq.fetch_add(1, Ordering::Relaxed),
        request_id: echoed
            .as_ref()
            .and_then(|(_, v)| v.to_str().ok().map(str::to_owned)),
        route,
        stream: req.stream(),
        received,
        first_token: None,
        last_token: None,
        prompt_tokens,
        tokens_written: 0,
        completed: false,
    };
    let truth = TruthRecorder::new(s.truth.clone(), entry);
    let mut response = if req.stream() {
        stream_reply(s, route, &req, truth, verdict)
    } else {
        whole_reply(s, route, &req, truth, verdict).await
    };
    if let Some((name, value)) = echoed {
        response.headers_mut().insert(name, value);
    }
    response
}

fn stream_reply(
    s: Arc<Shared>,
    route: Route,
    req: &GenRequest,
    truth: TruthRecorder,
    verdict: Option<Verdict>,
) -> Response {
    let received = truth.entry.received;
    let n = req.output_tokens();
    // The first event is written when its last token is due.
    let first_tokens = s.chunk.min(n).max(1);
    let first = Box::pin(tokio::time::sleep_until(
        s.deadline(received, first_tokens - 1),
    ));
    let answer = verdict.and_then(|v| v.first).filter(|_| n > 0).map(|text| {
        s.frames
            .route(route)
            .first_event(&text, first_tokens, first_tokens >= n)
    });
    let stream = TokenStream {
        answer,
        role_pending: route == Route::Chat,
        route,
        n,
        k: 0,
        include_usage: req.include_usage() && s.usage,
        continuous: req.continuous_usage() && s.usage,
        phase: Phase::Tokens,
        sleep: first,
        truth,
        shared: s,
    };
    let mut response = Response::new(Body::from_stream(stream));
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A non-streaming reply, handed over when the last token would have been.
async fn whole_reply(
    s: Arc<Shared>,
    route: Route,
    req: &GenRequest,
    mut truth: TruthRecorder,
    verdict: Option<Verdict>,
) -> Response {
    let n = req.output_tokens();
    // Built before the wait: a scored long prompt takes milliseconds to write out.
    let mut body = frames::whole_reply(route, &s.model, "fixed", truth.entry.prompt_tokens, n);
    if let Some(v) = verdict {
        v.apply(&mut body, route, n);
    }
    tokio::time::sleep_until(s.deadline(truth.entry.received, n.saturating_sub(1))).await;
    let response = axum::Json(body).into_response();
    let now = Instant::now();
    if n > 0 {
        truth.entry.first_token = Some(now);
        truth.entry.last_token = Some(now);
    }
    truth.entry.tokens_written = n;
    truth.complete();
    response
}

/// Where a stream is after its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Tokens,
    Usage,
    Done,
    End,
}

/// The body of a streamed reply: role delta (chat), paced tokens, usage, `[DONE]`.
struct TokenStream {
    shared: Arc<Shared>,
    route: Route,
    /// Tokens to write.
    n: u32,
    /// Next token.
    k: u32,
    /// The first event when the referee answers a retrieval prompt in it.
    answer: Option<Bytes>,
    role_pending: bool,
    include_usage: bool,
    continuous: bool,
    phase: Phase,
    sleep: Pin<Box<Sleep>>,
    truth: TruthRecorder,
}

impl TokenStream {
    fn frames(&self) -> &RouteFrames {
        self.shared.frames.route(self.route)
    }

    /// Tokens the next event carries: a chunk, or what is left of the reply.
    fn event_tokens(&self) -> u32 {
        self.shared.chunk.min(self.n.saturating_sub(self.k)).max(1)
    }

    /// The event of tokens `k..k + event_tokens()` (or the finish-only frame when no token is
    /// asked for).
    fn token_frame(&self) -> Bytes {
        let f = self.frames();
        let end = self.k + self.event_tokens();
        let last = end >= self.n;
        let tokens = self.event_tokens() as usize;
        let base = match (&self.answer, self.n, last) {
            (_, 0, _) => &f.empty_last,
            (Some(answer), _, _) if self.k == 0 => answer,
            (_, _, true) => f.last_short.get(tokens.wrapping_sub(1)).unwrap_or(&f.last),
            _ => &f.token,
        };
        if self.continuous {
            let written = end.min(self.n);
            f.with_usage(base, self.truth.entry.prompt_tokens, written)
        } else {
            base.clone()
        }
    }
}

impl Stream for TokenStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.role_pending {
            this.role_pending = false;
            return Poll::Ready(this.frames().role.clone().map(Ok));
        }
        match this.phase {
            Phase::Tokens => {
                // With itl = 0 every token is due with the first: once that deadline has
                // passed the rest skip the timer wheel (a registration per token otherwise).
                if this.k == 0 || !this.shared.itl.is_zero() {
                    ready!(this.sleep.as_mut().poll(cx));
                }
                let frame = this.token_frame();
                let tokens = this.event_tokens();
                if this.n > 0 {
                    let now = Instant::now();
                    (0..tokens).for_each(|_| this.truth.token(now));
                }
                this.k += tokens;
                if this.k >= this.n {
                    this.phase = if this.include_usage {
                        Phase::Usage
                    } else {
                        Phase::Done
                    };
                } else if !this.shared.itl.is_zero() {
                    // The next event is written when its last token is due.
                    let last = this.k + this.event_tokens() - 1;
                    let next = this.shared.deadline(this.truth.entry.received, last);
                    this.sleep.as_mut().reset(next);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Phase::Usage => {
                this.phase = Phase::Done;
                let usage = this.frames().usage(this.truth.entry.prompt_tokens, this.n);
                Poll::Ready(Some(Ok(usage)))
            }
            Phase::Done => {
                this.phase = Phase::End;
                this.truth.complete();
                Poll::Ready(Some(Ok(Bytes::from_static(DONE))))
            }
            Phase::End => Poll::Ready(None),
        }
    }
}
