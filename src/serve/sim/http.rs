//! Routes and handlers of the simulated server, and the response stream that turns engine
//! events into SSE frames.
//!
//! A generation request is parsed (the fixed server's [`GenRequest`] and whitespace
//! tokenizer), submitted to the engine thread, and answered once the engine has admitted or
//! refused it: a refusal is a 400, an admission starts the SSE stream (or, without `stream`,
//! waits for the last token and replies with one JSON body). Each request holds a [`Ticket`]
//! whose drop cancels it in the engine, so a client that disconnects frees its slot and its
//! KV blocks at the next engine event.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::{BufMut, BytesMut};
use futures_util::Stream;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::engine::{Clock, Command, Event};
use super::stats::{CacheInfo, Stats, render};
use crate::serve::frames::{self, DONE, Frames, RouteFrames};
use crate::serve::request::GenRequest;
use crate::serve::truth::Route;

/// Largest request body read (long prompts given as token ids are large).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// Id tag of replies (`cmpl-sim`, `chatcmpl-sim`).
const TAG: &str = "sim";
/// Most tokens put into one write when a stream has fallen behind.
const MAX_COALESCED: usize = 64;

/// Everything the handlers share.
pub(super) struct Shared {
    /// The engine thread's inbox.
    pub inbox: Sender<Command>,
    pub clock: Clock,
    pub stats: Arc<Stats>,
    pub frames: Frames,
    pub model: String,
    pub cache: CacheInfo,
    pub next_id: AtomicU64,
}

/// The server's routes.
pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/models", get(models))
        .route("/health", get(|| async { StatusCode::OK }))
        .route("/metrics", get(metrics))
        .with_state(shared)
}

async fn completions(State(s): State<Arc<Shared>>, req: Request) -> Response {
    generate(s, Route::Completions, req).await
}

async fn chat(State(s): State<Arc<Shared>>, req: Request) -> Response {
    generate(s, Route::Chat, req).await
}

async fn models(State(s): State<Arc<Shared>>) -> Response {
    axum::Json(frames::models_body(&s.model)).into_response()
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    let body = render(&s.stats, &s.model, &s.cache);
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(frames::error_body(message)),
    )
        .into_response()
}

/// Cancels its request in the engine when dropped before the request finished.
struct Ticket {
    id: u64,
    shared: Arc<Shared>,
    live: bool,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.live {
            // Fails only when the engine thread has stopped, which ends every request anyway.
            let _ = self.shared.inbox.send(Command::Cancel(self.id));
        }
    }
}

async fn generate(s: Arc<Shared>, route: Route, req: Request) -> Response {
    let body = match axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) => return bad_request(&format!("could not read the body: {e}")),
    };
    let req: GenRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(&format!("invalid JSON body: {e}")),
    };
    let chat = route == Route::Chat;
    let Some(prompt) = req.prompt_tokens(chat) else {
        let field = if chat { "messages" } else { "prompt" };
        return bad_request(&format!("`{field}` is required"));
    };
    let output = req.output_tokens();
    let id = s.next_id.fetch_add(1, Ordering::Relaxed);
    let (events, mut rx) = unbounded_channel();
    let submit = Command::Submit {
        id,
        input: prompt,
        output,
        events,
    };
    if s.inbox.send(submit).is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "the engine has stopped").into_response();
    }
    // Made before the admission answer: a client gone while waiting for it is cancelled too.
    let mut ticket = Ticket {
        id,
        shared: s.clone(),
        live: true,
    };
    match rx.recv().await {
        Some(Event::Admitted) => {}
        Some(Event::Refused(e)) => {
            ticket.live = false;
            return bad_request(&e.to_string());
        }
        _ => return (StatusCode::SERVICE_UNAVAILABLE, "the engine has stopped").into_response(),
    }
    if req.stream() {
        stream_reply(route, &req, prompt, rx, ticket)
    } else {
        whole_reply(route, prompt, output, rx, ticket).await
    }
}

/// Waits for the last token, then replies with the whole completion. Only the last token's
/// lag is recorded: it is the only one written.
async fn whole_reply(
    route: Route,
    prompt: u32,
    output: u32,
    mut rx: UnboundedReceiver<Event>,
    mut ticket: Ticket,
) -> Response {
    while let Some(event) = rx.recv().await {
        if let Event::Token {
            at_ns,
            finished: true,
            ..
        } = event
        {
            ticket.live = false;
            let s = &ticket.shared;
            s.stats.lag.record(s.clock.since(at_ns));
            let body = frames::whole_reply(route, &s.model, TAG, prompt, output);
            return axum::Json(body).into_response();
        }
    }
    (StatusCode::SERVICE_UNAVAILABLE, "the engine has stopped").into_response()
}

fn stream_reply(
    route: Route,
    req: &GenRequest,
    prompt: u32,
    rx: UnboundedReceiver<Event>,
    ticket: Ticket,
) -> Response {
    let stream = TokenStream {
        rx,
        route,
        prompt,
        written: 0,
        include_usage: req.include_usage(),
        continuous: req.continuous_usage(),
        ended: false,
        ticket,
    };
    let mut response = Response::new(Body::from_stream(stream));
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The body of a streamed reply: each engine token becomes one frame (the role delta joins
/// the first token of a chat stream; usage and `[DONE]` join the last token), handed over as
/// it arrives. Frames that queued up while the stream was behind go out in one write.
struct TokenStream {
    rx: UnboundedReceiver<Event>,
    route: Route,
    prompt: u32,
    written: u32,
    include_usage: bool,
    continuous: bool,
    ended: bool,
    ticket: Ticket,
}

impl TokenStream {
    fn frames(&self) -> &RouteFrames {
        self.ticket.shared.frames.route(self.route)
    }

    /// The frames of one token: the token's own frame (a reference-count increment), joined
    /// with the role delta for a chat stream's first token, and with usage and `[DONE]` for
    /// the last.
    fn token_bytes(&mut self, first: bool, finished: bool) -> Bytes {
        self.written += 1;
        let f = self.frames();
        let base = if finished { &f.last } else { &f.token };
        let frame = if self.continuous {
            f.with_usage(base, self.prompt, self.written)
        } else {
            base.clone()
        };
        let role = f.role.as_ref().filter(|_| first);
        if role.is_none() && !finished {
            return frame;
        }
        let mut buf = BytesMut::new();
        if let Some(role) = role {
            buf.put_slice(role);
        }
        buf.put_slice(&frame);
        if finished {
            if self.include_usage {
                buf.put_slice(&f.usage(self.prompt, self.written));
            }
            buf.put_slice(DONE);
        }
        buf.freeze()
    }
}

impl Stream for TokenStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        let mut out: Option<Bytes> = None;
        let mut joined: Option<BytesMut> = None;
        for _ in 0..MAX_COALESCED {
            let Poll::Ready(event) = this.rx.poll_recv(cx) else {
                break;
            };
            let Some(Event::Token {
                at_ns,
                first,
                finished,
            }) = event
            else {
                // The engine stopped: end the stream without `[DONE]`.
                this.ended = true;
                break;
            };
            let s = &this.ticket.shared;
            s.stats.lag.record(s.clock.since(at_ns));
            let bytes = this.token_bytes(first, finished);
            match (&out, &mut joined) {
                (None, _) => out = Some(bytes),
                (Some(prev), None) => {
                    let mut buf = BytesMut::from(&prev[..]);
                    buf.put_slice(&bytes);
                    joined = Some(buf);
                }
                (Some(_), Some(buf)) => buf.put_slice(&bytes),
            }
            if finished {
                this.ticket.live = false;
                this.ended = true;
                break;
            }
        }
        match joined.map(BytesMut::freeze).or(out) {
            Some(bytes) => Poll::Ready(Some(Ok(bytes))),
            None if this.ended => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}
