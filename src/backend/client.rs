//! The HTTP client, whatever the protocol: one connection pool per target, one streaming
//! request per [`Client::send`], one [`RequestRecord`] back, never an error. The target's
//! [`Protocol`] gives the route, the body and the reading of each stream event; the pool,
//! limits, retry and timing here are the same for every protocol. One retry only: a request
//! whose connection closed after taking it and before any response (a keep-alive connection
//! the server closed just as it was reused) is sent once more on a fresh connection, and the
//! record says so (`first_sent_ns`). Nothing else is retried: not a timeout, not an HTTP
//! error, not a stream that broke after its response began.
//!
//! Every request carries its index in [`REQUEST_HEADER`]. Timing follows `reference/metrics.md`: `sent` is taken immediately before the request is
//! handed to the connection pool, and every content event gets the arrival instant of the
//! network read that completed it (taken before parsing). Plain `http://` only: this build has
//! no TLS, and a benchmark should not measure a TLS stack by accident.

pub mod quality;

use std::time::{Duration, Instant};

use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, USER_AGENT};

use super::BackendError;
use super::failure::{Failure, Redactor, error_chain, is_secret_header, truncate};
use super::protocol::{BodyOptions, Protocol};
use super::stream;
use crate::record::RequestRecord;
use crate::workload::work::RequestSpec;

/// Header carrying the request's index in its repetition's workload (the conversation's, for
/// multi-turn workloads), so a server's logs can be lined up with exp's records; the fixed
/// server records it with `exp serve --fixed …,echo=x-exp-request`.
pub const REQUEST_HEADER: &str = "x-exp-request";

/// Everything a [`Client`] needs; built from the scenario's target.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The wire protocol: route, body and stream events.
    pub protocol: Protocol,
    /// Base URL including the API prefix, e.g. `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    /// `model` sent in every request.
    pub model: String,
    /// Extra headers sent with every request (name, value).
    pub headers: Vec<(String, String)>,
    /// Sent as `Authorization: Bearer …`; never written to records or messages.
    pub api_key: Option<String>,
    /// Limit for a whole request, from send to the end of the stream.
    pub timeout: Duration,
    /// Limit on silence once the response body has started (no bytes at all; keep-alive
    /// comments count as bytes). The wait for headers and for the first body byte (queueing
    /// and prefill: the TTFT being measured) is bounded by `timeout` only.
    pub idle_timeout: Duration,
    /// Longest wait between generated tokens after the first: unlike `idle_timeout`, bytes
    /// that carry no token (keep-alive comments) do not reset it. `None`: not applied.
    pub token_timeout: Option<Duration>,
    /// Ask the server to ignore EOS and generate exactly `max_tokens` (`ignore_eos`, plus
    /// `min_tokens` for servers that need it).
    pub ignore_eos: bool,
    /// Ask for vLLM's `stream_options.continuous_usage_stats` (cumulative usage on every chunk,
    /// which gives tokens per chunk). Only for servers that accept it (vLLM, SGLang, TRT-LLM).
    pub continuous_usage_stats: bool,
    /// Most requests expected in flight at once: the pool keeps at least this many idle
    /// connections, and nothing in the client limits concurrency.
    pub max_connections: usize,
}

/// A client for one target. Cheap to share behind an `Arc`; all requests share one pool.
pub struct Client {
    http: reqwest::Client,
    /// Keeps no idle connection, so every request on it opens a new one: for the retry.
    fresh: reqwest::Client,
    url: Url,
    models_url: Url,
    cfg: ClientConfig,
    redactor: Redactor,
    /// Whether the server sends usage: [`USAGE_UNKNOWN`] until a request finishes, then
    /// [`USAGE_SENT`], or [`USAGE_MISSING`] for good once an ok request came without it.
    /// Generated text is kept (the slow path) unless usage is known to come.
    usage: std::sync::atomic::AtomicU8,
}

const USAGE_UNKNOWN: u8 = 0;
const USAGE_SENT: u8 = 1;
const USAGE_MISSING: u8 = 2;

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url.as_str())
            .field("model", &self.cfg.model)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Validates the configuration and builds the connection pool.
    pub fn new(cfg: ClientConfig) -> Result<Client, BackendError> {
        let base = parse_base(&cfg.base_url)?;
        let url = join(&base, cfg.protocol.route())?;
        let models_url = join(&base, cfg.protocol.models_route())?;
        let (headers, redactor) = default_headers(&cfg, &base)?;
        let pool = |idle: usize| {
            reqwest::Client::builder()
                .default_headers(headers.clone())
                .tcp_nodelay(true)
                .pool_max_idle_per_host(idle)
                .no_proxy()
                .build()
                .map_err(|e| BackendError::Build(error_chain(&e)))
        };
        let http = pool(cfg.max_connections.max(1))?;
        let fresh = pool(0)?;
        Ok(Client {
            http,
            fresh,
            url,
            models_url,
            cfg,
            redactor,
            usage: std::sync::atomic::AtomicU8::new(USAGE_UNKNOWN),
        })
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// Sends one streaming request and records what happened. Instants in the record are
    /// nanoseconds from `origin`; `scheduled_ns` is copied in. Failures are recorded in
    /// [`RequestRecord::outcome`]; only a connection closed before any response is retried,
    /// once, on a fresh connection (see the module's documentation).
    pub async fn send(
        &self,
        req: &RequestSpec,
        index: u64,
        origin: Instant,
        scheduled_ns: u64,
    ) -> RequestRecord {
        let body = bytes::Bytes::from(self.cfg.protocol.render(
            req,
            BodyOptions {
                model: &self.cfg.model,
                ignore_eos: self.cfg.ignore_eos,
                continuous_usage_stats: self.cfg.continuous_usage_stats,
            },
        ));
        let mut record = RequestRecord {
            index,
            turn: 0,
            scheduled_ns,
            sent_ns: None,
            first_sent_ns: None,
            no_done: false,
            text: None,
            counted: None,
            chunks: Vec::with_capacity(req.max_tokens.min(4096) as usize),
            done_ns: None,
            input_tokens: None,
            output_tokens: None,
            requested_input_tokens: Some(req.input_tokens),
            requested_output_tokens: Some(req.max_tokens),
            finish_reason: None,
            outcome: crate::record::Outcome::Ok,
        };
        if let Err(failure) = self.exchange(body, index, origin, &mut record).await {
            record.outcome = self.redactor.outcome(failure);
        }
        self.note_usage(&record);
        record.done_ns = record.chunks.last().map(|c| c.at_ns);
        record
    }

    /// Learns from a finished request whether the server sends usage.
    fn note_usage(&self, record: &RequestRecord) {
        use std::sync::atomic::Ordering::Relaxed;
        if !record.outcome.is_ok() {
            return;
        }
        match record.output_tokens {
            Some(_) => {
                let _ = (self.usage).compare_exchange(USAGE_UNKNOWN, USAGE_SENT, Relaxed, Relaxed);
            }
            None => self.usage.store(USAGE_MISSING, Relaxed),
        }
    }

    /// Whether the server was seen to finish a request without usage (its records then
    /// carry their text, for [`crate::run`] to count).
    pub fn usage_missing(&self) -> bool {
        self.usage.load(std::sync::atomic::Ordering::Relaxed) == USAGE_MISSING
    }

    /// Sends `body` (retrying once on a fresh connection when the first connection closed
    /// before any response) and reads the reply into `record`. The whole-request limit
    /// counts from the first attempt; `sent_ns` is the send of the attempt that was answered.
    async fn exchange(
        &self,
        body: bytes::Bytes,
        index: u64,
        origin: Instant,
        record: &mut RequestRecord,
    ) -> Result<(), Failure> {
        let limits = stream::Limits {
            timeout: self.cfg.timeout,
            idle: self.cfg.idle_timeout,
            token: self.cfg.token_timeout,
        };
        let http_req = self.request(&self.http, index, body.clone())?;
        let sent = Instant::now();
        record.sent_ns = Some(stream::ns_since(origin, sent));
        let deadline = tokio::time::Instant::from_std(sent + limits.timeout);
        let response = match stream::send(&self.http, http_req, deadline, limits.timeout).await {
            Ok(response) => response,
            Err(no) if no.closed_early => {
                let retry = self.request(&self.fresh, index, body)?;
                record.first_sent_ns = record.sent_ns;
                record.sent_ns = Some(stream::ns_since(origin, Instant::now()));
                let sent = stream::send(&self.fresh, retry, deadline, limits.timeout).await;
                sent.map_err(|again| Failure {
                    message: format!(
                        "{} (retried once on a fresh connection; the first attempt: {})",
                        again.failure.message, no.failure.message
                    ),
                    ..again.failure
                })?
            }
            Err(no) => return Err(no.failure),
        };
        let protocol = self.cfg.protocol;
        let keep_text = self.usage.load(std::sync::atomic::Ordering::Relaxed) != USAGE_SENT;
        stream::receive(
            response, deadline, limits, origin, protocol, keep_text, record,
        )
        .await
    }

    /// The streaming request for `body` on `http`.
    fn request(
        &self,
        http: &reqwest::Client,
        index: u64,
        body: bytes::Bytes,
    ) -> Result<reqwest::Request, Failure> {
        http.post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .header(REQUEST_HEADER, index)
            .body(body)
            .build()
            .map_err(|e| stream::send_error(&e))
    }

    /// The model ids the server lists at its protocol's models route (`GET {base}/models` for
    /// the OpenAI protocols), in its order (the first is the usual default).
    pub async fn list_models(&self) -> Result<Vec<String>, BackendError> {
        let request = (self.http.get(self.models_url.clone())).timeout(self.cfg.timeout);
        let bytes = self.side_request(request).await?;
        let models = self.cfg.protocol.models(&bytes);
        models.map_err(|e| BackendError::Decode(format!("{}: {e}", self.models_url)))
    }

    /// Sends a request outside the measurement (the model list, `/tokenize`) and returns its
    /// body; a transport error or a non-2xx status (with the start of its body) is an error,
    /// secrets redacted.
    async fn side_request(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<bytes::Bytes, BackendError> {
        let clean = |e: &reqwest::Error| self.redactor.clean(&error_chain(e));
        let resp = request
            .send()
            .await
            .map_err(|e| BackendError::Request(clean(&e)))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| BackendError::Request(clean(&e)))?;
        if !status.is_success() {
            let body = truncate(&self.redactor.clean(&String::from_utf8_lossy(&bytes)), 500);
            return Err(BackendError::Status {
                status: status.as_u16(),
                body,
            });
        }
        Ok(bytes)
    }

    /// The server's `/tokenize` endpoint: at the server's root, beside the API prefix
    /// (`http://host:8000/v1` → `http://host:8000/tokenize`), as vLLM, SGLang and llama.cpp
    /// serve it.
    pub fn tokenize_url(&self) -> String {
        let base = self.cfg.base_url.trim_end_matches('/');
        let root = base.strip_suffix("/v1").unwrap_or(base);
        format!("{root}/tokenize")
    }

    /// Tokens in `text` by the server's own tokenizer, without special tokens. The body names
    /// the text both ways (`prompt`: vLLM, SGLang; `content`: llama.cpp); the reply's
    /// `tokens` list is counted (or its `count` read).
    pub async fn tokenize(&self, text: &str) -> Result<u32, BackendError> {
        #[derive(serde::Deserialize)]
        struct Reply {
            #[serde(default)]
            tokens: Option<Vec<serde_json::Value>>,
            #[serde(default)]
            count: Option<u32>,
        }
        let url = self.tokenize_url();
        let body = serde_json::json!({
            "model": self.cfg.model,
            "prompt": text,
            "content": text,
            "add_special_tokens": false,
        });
        let request = (self.http.post(&url)).timeout(self.cfg.timeout).json(&body);
        let bytes = self.side_request(request).await?;
        let reply: Reply = serde_json::from_slice(&bytes)
            .map_err(|e| BackendError::Decode(format!("{url}: {e}")))?;
        match (reply.tokens, reply.count) {
            (Some(tokens), _) => u32::try_from(tokens.len())
                .map_err(|_| BackendError::Decode(format!("{url}: too many tokens"))),
            (None, Some(count)) => Ok(count),
            (None, None) => Err(BackendError::Decode(format!(
                "{url}: the reply has neither `tokens` nor `count`"
            ))),
        }
    }
}

/// Parses the base URL and refuses what this build cannot or should not talk to.
fn parse_base(base_url: &str) -> Result<Url, BackendError> {
    let trimmed = base_url.trim_end_matches('/');
    let url = Url::parse(trimmed).map_err(|e| BackendError::InvalidUrl {
        url: base_url.to_owned(),
        reason: e.to_string(),
    })?;
    match url.scheme() {
        "http" => Ok(url),
        "https" => Err(BackendError::TlsUnsupported {
            url: base_url.to_owned(),
        }),
        other => Err(BackendError::InvalidUrl {
            url: base_url.to_owned(),
            reason: format!("scheme `{other}` is not http"),
        }),
    }
}

/// `{base}/{route}` (the base keeps its path, e.g. `/v1`).
fn join(base: &Url, route: &str) -> Result<Url, BackendError> {
    let joined = format!("{}/{route}", base.as_str().trim_end_matches('/'));
    Url::parse(&joined).map_err(|e| BackendError::InvalidUrl {
        url: joined,
        reason: e.to_string(),
    })
}

/// Headers sent with every request, and the redactor that knows their secrets.
fn default_headers(cfg: &ClientConfig, base: &Url) -> Result<(HeaderMap, Redactor), BackendError> {
    let mut redactor = Redactor::default();
    if let Some(pw) = base.password() {
        redactor.add(pw);
    }
    let mut map = HeaderMap::new();
    map.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("exp/", env!("CARGO_PKG_VERSION"))),
    );
    for (name, value) in &cfg.headers {
        let invalid = |reason: String| BackendError::InvalidHeader {
            name: name.clone(),
            reason,
        };
        let hname = HeaderName::from_bytes(name.as_bytes()).map_err(|e| invalid(e.to_string()))?;
        let mut hvalue = HeaderValue::from_str(value)
            .map_err(|_| invalid("value has characters not allowed in a header".into()))?;
        if is_secret_header(name) {
            hvalue.set_sensitive(true);
            redactor.add(value);
        }
        map.insert(hname, hvalue);
    }
    if let Some(key) = &cfg.api_key {
        let mut v = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
            BackendError::InvalidHeader {
                name: "authorization".into(),
                reason: "the API key has characters not allowed in a header".into(),
            }
        })?;
        v.set_sensitive(true);
        redactor.add(key);
        map.insert(AUTHORIZATION, v);
    }
    Ok((map, redactor))
}
