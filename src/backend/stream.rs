//! One request/response exchange, the same for every protocol: status and content-type
//! checks, then the SSE stream read chunk by chunk under the total and idle limits, each
//! event read by the target's [`Protocol`] into the common event, filling a
//! [`RequestRecord`].
//!
//! Classification (first match wins): no connection → `connect`; total limit passed →
//! `timeout`; no bytes for the idle limit once the body has started, or no token for
//! `token_timeout` once one has arrived (keep-alive comments reset only the idle limit) →
//! `idle_timeout`;
//! non-2xx → `http`; a 2xx that is not `text/event-stream` → `protocol`; an error event in
//! the stream → `stream_error`; a payload the protocol cannot read (not JSON) → `protocol`;
//! the stream ended with neither `[DONE]` nor a `finish_reason` → `incomplete`; it finished
//! without content → `empty`. A stream that ended after its finish reason but without
//! `[DONE]` is ok, with `no_done` set in the record.

use std::time::{Duration, Instant};

use futures_util::FutureExt;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use tokio::time::{Instant as TokioInstant, timeout_at};

use super::failure::{Failure, error_chain, truncate};
use super::protocol::{Content, Protocol};
use super::sse::{SseDecoder, SseEvent};
use crate::record::{Chunk, FailureReason, RequestRecord};

/// Most bytes of an error reply read for its message.
const ERROR_BODY_BYTES: usize = 8 * 1024;

/// Largest event accepted; a stream that never completes a line fails instead of growing.
const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// The time limits of one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Whole request.
    pub timeout: Duration,
    /// Silence while reading the body.
    pub idle: Duration,
    /// Wait between generated tokens, after the first.
    pub token: Option<Duration>,
}

/// Nanoseconds from `origin` to `at` (0 if `at` is earlier).
pub(crate) fn ns_since(origin: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(origin).as_nanos()).unwrap_or(u64::MAX)
}

/// Classifies an error from sending the request (before any response).
pub(crate) fn send_error(e: &reqwest::Error) -> Failure {
    let reason = if e.is_connect() {
        FailureReason::Connect
    } else if e.is_timeout() {
        FailureReason::Timeout
    } else {
        FailureReason::Incomplete
    };
    Failure::new(reason, error_chain(e))
}

/// A request that got no response.
#[derive(Debug)]
pub(crate) struct NoResponse {
    /// What happened.
    pub failure: Failure,
    /// The connection closed (EOF or reset) after taking the request and before a response
    /// head arrived: what a keep-alive connection closed by the server just as it was reused
    /// looks like. Never set for a connect failure or a timeout.
    pub closed_early: bool,
}

/// Hands `req` to the pool and waits for the response head, until `deadline`.
pub(crate) async fn send(
    http: &reqwest::Client,
    req: reqwest::Request,
    deadline: TokioInstant,
    limit: Duration,
) -> Result<reqwest::Response, NoResponse> {
    match timeout_at(deadline, http.execute(req)).await {
        Err(_) => Err(NoResponse {
            failure: Failure::new(FailureReason::Timeout, timeout_text(limit)),
            closed_early: false,
        }),
        Ok(Err(e)) => Err(NoResponse {
            failure: send_error(&e),
            closed_early: closed_before_response(&e),
        }),
        Ok(Ok(r)) => Ok(r),
    }
}

/// Whether a send error is the connection closing before any response: hyper's "connection
/// closed before message completed" or "operation was canceled", or a reset or broken pipe
/// from the socket. A timeout or a failed connect is not.
pub(crate) fn closed_before_response(e: &reqwest::Error) -> bool {
    use std::io::ErrorKind;
    if e.is_timeout() || e.is_connect() {
        return false;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>()
            && (h.is_incomplete_message() || h.is_canceled())
        {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                ErrorKind::ConnectionReset
                    | ErrorKind::BrokenPipe
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::UnexpectedEof
            )
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// Checks the response head of a request, then reads its stream of `protocol` events into
/// `rec`, until `deadline` (the whole-request limit).
pub(crate) async fn receive(
    response: reqwest::Response,
    deadline: TokioInstant,
    limits: Limits,
    origin: Instant,
    protocol: Protocol,
    keep_text: bool,
    rec: &mut RequestRecord,
) -> Result<(), Failure> {
    let status = response.status();
    if !status.is_success() {
        return Err(http_failure(response, deadline).await);
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let content_type = content_type.unwrap_or("").to_ascii_lowercase();
    if !content_type.starts_with("text/event-stream") {
        return Err(not_a_stream(response, &content_type, deadline).await);
    }
    let mut state = StreamState::new(protocol);
    if keep_text {
        state.text = Some(String::new());
    }
    read_stream(response, deadline, limits, origin, state, rec).await
}

fn timeout_text(limit: Duration) -> String {
    format!("request did not finish within the {limit:?} timeout")
}

/// A non-2xx reply: status, `Retry-After` when given, and the start of the body.
async fn http_failure(mut response: reqwest::Response, deadline: TokioInstant) -> Failure {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok());
    let retry_after = retry_after
        .map(|v| format!(" (retry-after: {v})"))
        .unwrap_or_default();
    let body = read_some(&mut response, deadline).await;
    Failure {
        reason: FailureReason::Http,
        http_status: Some(status.as_u16()),
        message: format!("{status}{retry_after}: {}", truncate(body.trim(), 500)),
    }
}

/// A 2xx reply that is not an event stream (e.g. the server ignored `stream: true`).
async fn not_a_stream(
    mut response: reqwest::Response,
    content_type: &str,
    deadline: TokioInstant,
) -> Failure {
    let body = read_some(&mut response, deadline).await;
    let what = if content_type.contains("json") {
        "a non-streaming JSON reply"
    } else if content_type.is_empty() {
        "a reply without a content type"
    } else {
        "a reply that is not an event stream"
    };
    let message = format!(
        "expected text/event-stream, got {what} ({content_type}): {}",
        truncate(body.trim(), 300)
    );
    Failure::new(FailureReason::Protocol, message)
}

/// Up to [`ERROR_BODY_BYTES`] of the body as text, stopping at the deadline or any error.
async fn read_some(response: &mut reqwest::Response, deadline: TokioInstant) -> String {
    let mut buf = Vec::new();
    while buf.len() < ERROR_BODY_BYTES {
        match timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(bytes))) => buf.extend_from_slice(&bytes),
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// What the stream has told so far, beyond the chunks themselves.
#[derive(Debug)]
struct StreamState {
    /// Reads the events.
    protocol: Protocol,
    /// `[DONE]` arrived.
    done: bool,
    /// Every content chunk so far carried a cumulative `completion_tokens` (vLLM's
    /// `continuous_usage_stats`), so per-chunk token counts are known.
    continuous: bool,
    /// Highest cumulative `completion_tokens` seen.
    cumulative: u32,
    /// The generated text so far, when it is kept (the server may send no usage).
    text: Option<String>,
}

impl StreamState {
    fn new(protocol: Protocol) -> Self {
        StreamState {
            protocol,
            done: false,
            continuous: true,
            cumulative: 0,
            text: None,
        }
    }
}

/// Reads the event stream until it ends, filling `rec`.
///
/// The idle and total limits share one timer that is set lazily: a read only notes its
/// instant, and the timer, when it fires, moves itself to the current idle deadline unless
/// that has passed. A timer per read (what `timeout_at` around every read does) cost a
/// timer-wheel insertion and removal per chunk; this costs one per idle period.
async fn read_stream(
    mut response: reqwest::Response,
    deadline: TokioInstant,
    limits: Limits,
    origin: Instant,
    mut state: StreamState,
    rec: &mut RequestRecord,
) -> Result<(), Failure> {
    let mut decoder = SseDecoder::new();
    // The idle limit starts with the first byte of the body. Before it the server is queueing
    // or prefilling the request, which is what TTFT measures (servers send headers at once and
    // the body at the first token): only the total limit bounds that wait, or every request
    // queued past the idle limit under overload would be failed instead of measured.
    let mut last_read: Option<TokioInstant> = None;
    // `token_timeout`, once a token has arrived: bytes without a token do not reset it.
    let mut token_at: Option<TokioInstant> = None;
    let limit = tokio::time::sleep_until(deadline);
    let mut limit = std::pin::pin!(limit);
    loop {
        let read = tokio::select! {
            biased;
            read = response.chunk() => read,
            () = &mut limit => {
                let now = TokioInstant::now();
                if now >= deadline {
                    let text = timeout_text(limits.timeout);
                    return Err(Failure::new(FailureReason::Timeout, text));
                }
                let Some(last) = last_read else {
                    limit.as_mut().reset(deadline);
                    continue;
                };
                let idle_at = last + limits.idle;
                if now >= idle_at {
                    return Err(idle_failure(limits.idle));
                }
                if let (Some(at), Some(wait)) = (token_at, limits.token)
                    && now >= at
                {
                    return Err(token_failure(wait));
                }
                let next = token_at.map_or(idle_at, |t| t.min(idle_at));
                limit.as_mut().reset(next.min(deadline));
                continue;
            }
        };
        // The arrival instant: taken as soon as the HTTP stack hands over the bytes, before
        // any decoding.
        let now = Instant::now();
        let bytes = match read {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                decoder.finish();
                drain(&mut decoder, &mut state, ns_since(origin, now), rec)?;
                return finish(&mut state, rec, None);
            }
            Err(e) => return finish(&mut state, rec, Some(error_chain(&e))),
        };
        let first_byte = last_read.is_none();
        last_read = Some(TokioInstant::from_std(now));
        if first_byte {
            limit
                .as_mut()
                .reset((TokioInstant::from_std(now) + limits.idle).min(deadline));
        }
        decoder.feed(&bytes);
        let tokens_before = rec.chunks.len();
        drain(&mut decoder, &mut state, ns_since(origin, now), rec)?;
        if let Some(wait) = limits.token
            && rec.chunks.len() > tokens_before
        {
            let at = TokioInstant::from_std(now) + wait;
            token_at = Some(at);
            // The timer is lazy: make sure it fires by the token deadline.
            if at < limit.deadline() {
                limit.as_mut().reset(at);
            }
        }
        if decoder.buffered() > MAX_EVENT_BYTES {
            let message = format!("an event exceeded {MAX_EVENT_BYTES} bytes without ending");
            return Err(Failure::new(FailureReason::Protocol, message));
        }
        if state.done {
            // Read the end of the body if it is already here, so the connection goes back
            // to the pool; never wait for it (the measurement is over).
            while let Some(Ok(Some(_))) = response.chunk().now_or_never() {}
            return finish(&mut state, rec, None);
        }
    }
}

fn token_failure(wait: Duration) -> Failure {
    Failure::new(
        FailureReason::IdleTimeout,
        format!("no token for {wait:?} (token_timeout: keep-alive comments do not count)"),
    )
}

fn idle_failure(idle: Duration) -> Failure {
    Failure::new(
        FailureReason::IdleTimeout,
        format!("no bytes for {idle:?} mid-stream"),
    )
}

/// Applies every complete event in the decoder, all stamped `at_ns`.
fn drain(
    decoder: &mut SseDecoder,
    state: &mut StreamState,
    at_ns: u64,
    rec: &mut RequestRecord,
) -> Result<(), Failure> {
    while let Some(event) = decoder.next_event() {
        match event {
            SseEvent::Done => state.done = true,
            SseEvent::Data(_) if state.done => {}
            SseEvent::Data(payload) => apply(payload, state, at_ns, rec)?,
        }
    }
    Ok(())
}

/// Applies one `data:` payload.
fn apply(
    payload: &[u8],
    state: &mut StreamState,
    at_ns: u64,
    rec: &mut RequestRecord,
) -> Result<(), Failure> {
    let event = state.protocol.decode(payload)?;
    let mut delta = None;
    // The last non-null count wins: some servers send zeros before the real usage.
    if let Some(p) = event.prompt_tokens {
        rec.input_tokens = Some(p);
    }
    if let Some(c) = event.completion_tokens {
        rec.output_tokens = Some(c);
        delta = Some(c.saturating_sub(state.cumulative));
        state.cumulative = state.cumulative.max(c);
    }
    let content = event.content;
    if content != Content::None
        && let Some(text) = &mut state.text
        && let Some(part) = state.protocol.text(payload)
    {
        text.push_str(&part);
    }
    if content != Content::None {
        // A count that did not grow (e.g. Ollama's zeros) says nothing about this chunk.
        state.continuous &= delta.is_some();
        let tokens = delta.filter(|&d| state.continuous && d > 0);
        rec.chunks.push(Chunk {
            at_ns,
            tokens,
            reasoning: content == Content::Reasoning,
        });
    }
    if let Some(reason) = event.finish_reason
        && rec.finish_reason.as_deref() != Some(&*reason)
    {
        rec.finish_reason = Some(reason.into_owned());
    }
    Ok(())
}

/// The outcome once the stream has ended (`broken` carries a transport error, if any). The
/// text kept, if any, goes into the record when the server sent no usage.
fn finish(
    state: &mut StreamState,
    rec: &mut RequestRecord,
    broken: Option<String>,
) -> Result<(), Failure> {
    if !state.done && rec.finish_reason.is_none() {
        let message = match broken {
            Some(e) => format!("stream broke before [DONE] or a finish reason: {e}"),
            None => "stream closed before [DONE] or a finish reason".to_owned(),
        };
        return Err(Failure::new(FailureReason::Incomplete, message));
    }
    if rec.chunks.is_empty() {
        let message = "stream finished without generated content";
        return Err(Failure::new(FailureReason::Empty, message));
    }
    // Finished by its finish reason, but the stream's terminator never came: a measurement,
    // with a note (the usage chunk that usually precedes `[DONE]` may be missing too).
    rec.no_done = !state.done;
    if rec.output_tokens.is_none() {
        rec.text = state.text.take();
    }
    Ok(())
}

#[cfg(test)]
#[path = "fuzz_tests.rs"]
mod fuzz_tests;
