//! The raw per-request record: what happened to one request, as instants, never as derived
//! durations (metrics are derived later, in `metrics`, from these instants).
//!
//! Instants are integer nanoseconds from the repetition's origin (a monotonic clock for real
//! runs, virtual time for the simulated engine). The wall-clock time of every origin is kept in
//! the repetition's completion marker, so instants never depend on the system clock.
//!
//! Records are written as one JSON object per line (`records/<cell>/rep-NNN.jsonl`); field
//! names are short because a long run writes millions of chunks.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use serde::{Deserialize, Serialize};

/// One streamed event that carried generated content (text or reasoning text).
///
/// Role-only deltas, keep-alive comments, the trailing usage chunk and `[DONE]` are not chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Arrival instant of the network read that completed this event (ns from the origin).
    #[serde(rename = "t")]
    pub at_ns: u64,
    /// Tokens this event carried, when the server or the engine says so.
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u32>,
    /// True when the event carried only reasoning content (`reasoning`/`reasoning_content`).
    #[serde(rename = "r", default, skip_serializing_if = "is_false")]
    pub reasoning: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Everything observed about one measured request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Index of the request in the repetition's workload (0-based, measured requests only);
    /// for a multi-turn workload, the index of its conversation. Under `[quality] when =
    /// "under-load"` the quality items take some indices, which then have no record.
    #[serde(rename = "i")]
    pub index: u64,
    /// Turn of a multi-turn conversation (0-based; `index` is then the conversation's index).
    /// Always 0 for single-turn workloads, and left out of the file when 0, so their records
    /// are unchanged.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub turn: u32,
    /// When the arrival process said the request should be sent.
    pub scheduled_ns: u64,
    /// When the request was handed to the connection; `None` if it never was (e.g. the
    /// repetition's deadline passed first).
    #[serde(default)]
    pub sent_ns: Option<u64>,
    /// Set only when the request was retried: when its first attempt was sent, whose
    /// connection closed after taking the request and before any response (a keep-alive
    /// connection the server closed just as it was reused). `sent_ns` is then the retry's
    /// send, on a fresh connection; the time lost in between shows in `queue_delay`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_sent_ns: Option<u64>,
    /// Every content chunk, in arrival order.
    #[serde(default)]
    pub chunks: Vec<Chunk>,
    /// The stream ended after a finish reason but without `data: [DONE]` (an OpenAI stream
    /// ends with it): kept as ok, counted and warned about. Left out of the file when false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_done: bool,
    /// Arrival of the last content chunk (`None` when no content arrived).
    #[serde(default)]
    pub done_ns: Option<u64>,
    /// Prompt tokens as counted by the server (`usage.prompt_tokens`).
    #[serde(default)]
    pub input_tokens: Option<u32>,
    /// Generated tokens as counted by the server (`usage.completion_tokens`).
    #[serde(default)]
    pub output_tokens: Option<u32>,
    /// Prompt tokens the workload intended to send (exact with a tokenizer, else approximate).
    #[serde(default)]
    pub requested_input_tokens: Option<u32>,
    /// The `max_tokens` asked for. Never used as the count of generated tokens.
    #[serde(default)]
    pub requested_output_tokens: Option<u32>,
    /// `finish_reason` of the last choice, when the server gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// Success, or the failure with its reason.
    pub outcome: Outcome,
    /// The generated text, kept only when the server sent no usage, and only until its
    /// tokens are counted after the repetition ([`RequestRecord::counted`]): a finished
    /// repetition's file never holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Generated tokens counted by exp because the server sent no usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted: Option<Counted>,
}

#[cfg(test)]
impl RequestRecord {
    /// A request scheduled and sent at `at_ns` that finished ok with nothing else recorded:
    /// the base tests fill in.
    pub(crate) fn sent_ok(index: u64, at_ns: u64) -> Self {
        RequestRecord {
            index,
            turn: 0,
            scheduled_ns: at_ns,
            sent_ns: Some(at_ns),
            first_sent_ns: None,
            no_done: false,
            text: None,
            counted: None,
            chunks: vec![],
            done_ns: None,
            input_tokens: None,
            output_tokens: None,
            requested_input_tokens: None,
            requested_output_tokens: None,
            finish_reason: None,
            outcome: Outcome::Ok,
        }
    }
}

/// Generated tokens counted from a request's text, and by what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counted {
    /// Tokens in the generated text.
    pub tokens: u32,
    /// What counted them.
    pub by: CountedBy,
    /// The prompt's tokens by the server's `/tokenize`, when the server sent no usage and
    /// no `[target] tokenizer` counted the prompt exactly before it was sent (the client's
    /// own count is then words, an approximation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<u32>,
}

/// What counted a request's generated tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CountedBy {
    /// The scenario's `[target] tokenizer`.
    Tokenizer,
    /// The server's `/tokenize` endpoint.
    Server,
}

/// A repetition's records, readable as many times as needed, one record at a time: a
/// records file on disk (`store`), or a slice in memory. Summaries stream them in a bounded
/// number of passes instead of holding them.
pub trait RecordSource {
    /// What reading them can fail with.
    type Error;

    /// Calls `f` on every record, in the order written.
    fn replay(&self, f: &mut dyn FnMut(&RequestRecord)) -> Result<(), Self::Error>;
}

impl RecordSource for [RequestRecord] {
    type Error = std::convert::Infallible;

    fn replay(&self, f: &mut dyn FnMut(&RequestRecord)) -> Result<(), Self::Error> {
        self.iter().for_each(f);
        Ok(())
    }
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// The stream completed (`[DONE]` or a finish reason) with content.
    Ok,
    /// The request failed; it still counts in error rate and goodput.
    Failed {
        /// What kind of failure.
        reason: FailureReason,
        /// HTTP status, when the server answered with one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        http_status: Option<u16>,
        /// The server's or the transport's own words (truncated, secrets redacted).
        message: String,
    },
}

impl Outcome {
    /// True for [`Outcome::Ok`].
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok)
    }
}

/// Why a request failed. Closed set so reports can count by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// Could not connect (refused, DNS, TLS).
    Connect,
    /// The server answered with a non-2xx status.
    Http,
    /// The whole request took longer than the scenario's request timeout.
    Timeout,
    /// No bytes arrived for longer than the idle timeout mid-stream.
    IdleTimeout,
    /// The server sent an error object inside the stream.
    StreamError,
    /// The reply broke the protocol (malformed JSON, wrong content type, not a stream).
    Protocol,
    /// The connection closed before `[DONE]` or a finish reason.
    Incomplete,
    /// The stream finished without any generated content.
    Empty,
    /// The request was still running when the repetition's grace period ended, or the run was
    /// interrupted.
    Cancelled,
    /// The simulated engine could never fit the request (prompt larger than the KV cache).
    Rejected,
}

impl FailureReason {
    /// The snake_case name used in files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Connect => "connect",
            FailureReason::Http => "http",
            FailureReason::Timeout => "timeout",
            FailureReason::IdleTimeout => "idle_timeout",
            FailureReason::StreamError => "stream_error",
            FailureReason::Protocol => "protocol",
            FailureReason::Incomplete => "incomplete",
            FailureReason::Empty => "empty",
            FailureReason::Cancelled => "cancelled",
            FailureReason::Rejected => "rejected",
        }
    }
}

/// Which sampler took a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// One GPU, from `nvidia-smi`.
    Gpu,
    /// The server's Prometheus metrics.
    Metrics,
    /// CPU of the server's processes and of exp, network bytes.
    Host,
}

/// One sample of one source (of one GPU), in SI units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeSample {
    /// When it was taken, in Unix seconds.
    pub ts: f64,
    /// Its source.
    pub probe: ProbeKind,
    /// The GPU's index, for GPU samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<u32>,
    /// Gauges and counters by name (see each sampler).
    pub values: BTreeMap<String, f64>,
}

/// Which quality measurement a [`QualityRecord`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityKind {
    /// Perplexity of the corpus.
    Perplexity,
    /// Long-context retrieval.
    Retrieval,
}

impl QualityKind {
    /// The name in messages: `perplexity`, `retrieval`.
    pub fn name(self) -> &'static str {
        match self {
            QualityKind::Perplexity => "perplexity",
            QualityKind::Retrieval => "retrieval",
        }
    }
}

/// One line of a repetition's quality file (`records/<cell>/rep-NNN.quality.jsonl`): a
/// scored item, or why one could not be scored. Written whole before the repetition's
/// completion marker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QualityRecord {
    /// One scored segment of the corpus: a document, or one window of a long one.
    Perplexity {
        /// The document's position in the corpus (0-based).
        document: u32,
        /// The window within the document (0 for a document scored whole).
        window: u32,
        /// Tokens scored (those with a log-prob).
        tokens: u64,
        /// Σ −ln p over them.
        nll: f64,
        /// The document text's digest (first 16 hex digits of its SHA-256), so that runs
        /// that scored different text under one corpus name are not paired; absent in runs
        /// recorded before it was.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        digest: Option<String>,
        /// Under load: the arrival it took the place of, and its timing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        under_load: Option<LoadArrival>,
    },
    /// One retrieval item, answered.
    Retrieval {
        /// The item's position in the round's items.
        item: u32,
        /// Where its key sat in the filler (0 = start, 1 = end).
        depth: f64,
        /// The prompt length asked for.
        context_tokens: u32,
        /// The server's count of the prompt (`usage.prompt_tokens`), when sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt_tokens: Option<u32>,
        /// The expected answer.
        answer: String,
        /// The start of the generated text.
        reply: String,
        /// Exact match of the answer.
        correct: bool,
        /// Under load: the arrival it took the place of, and its timing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        under_load: Option<LoadArrival>,
    },
    /// The server cannot do what this measurement needs (e.g. score prompts): nothing was
    /// computed, and the report says so with this reason.
    Unsupported {
        /// Which measurement.
        what: QualityKind,
        /// What the server answered, and why that cannot be used.
        reason: String,
    },
    /// One item whose request failed: the repetition has no value for this measurement.
    Failed {
        /// Which measurement.
        what: QualityKind,
        /// The document or item.
        index: u32,
        /// What went wrong.
        reason: String,
        /// Under load: the arrival it took the place of, and its timing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        under_load: Option<LoadArrival>,
    },
    /// Under load (`when = "under-load"`): how the items were mixed into the repetition's
    /// arrivals. The first line of such a file.
    Mix {
        /// The fraction of arrivals asked for.
        share: f64,
        /// Arrivals released in the measured window: measured requests and quality items.
        arrivals: u64,
        /// Of them, quality items.
        quality_arrivals: u64,
        /// Items there were to mix in (those not reached were not scored).
        items: u64,
        /// Quality arrivals still running at the end of the grace period: not scored.
        #[serde(default, skip_serializing_if = "is_zero_u64")]
        unfinished: u64,
    },
}

impl QualityRecord {
    /// Under load: the arrival this item took and its timing.
    pub fn arrival(&self) -> Option<&LoadArrival> {
        match self {
            QualityRecord::Perplexity { under_load, .. }
            | QualityRecord::Retrieval { under_load, .. }
            | QualityRecord::Failed { under_load, .. } => under_load.as_ref(),
            QualityRecord::Unsupported { .. } | QualityRecord::Mix { .. } => None,
        }
    }

    /// This record, tagged as sent under load at `arrival`.
    pub fn under_load(mut self, arrival: LoadArrival) -> Self {
        match &mut self {
            QualityRecord::Perplexity { under_load, .. }
            | QualityRecord::Retrieval { under_load, .. }
            | QualityRecord::Failed { under_load, .. } => *under_load = Some(arrival),
            QualityRecord::Unsupported { .. } | QualityRecord::Mix { .. } => {}
        }
        self
    }
}

/// A quality item sent under load: the arrival it took the place of and its timing, in ns
/// after the repetition's origin (like a request record's instants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadArrival {
    /// The arrival index (the measured requests have the others).
    pub arrival: u64,
    /// When the arrival process released it.
    pub scheduled_ns: u64,
    /// When it was sent.
    pub sent_ns: u64,
    /// From its send to its answer.
    pub latency_ns: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_through_json_with_short_chunk_fields() {
        let rec = RequestRecord {
            index: 3,
            turn: 0,
            scheduled_ns: 1_000,
            sent_ns: Some(1_200),
            first_sent_ns: None,
            no_done: false,
            text: None,
            counted: None,
            chunks: vec![
                Chunk {
                    at_ns: 50_000,
                    tokens: Some(1),
                    reasoning: false,
                },
                Chunk {
                    at_ns: 60_000,
                    tokens: None,
                    reasoning: true,
                },
            ],
            done_ns: Some(60_000),
            input_tokens: Some(512),
            output_tokens: Some(2),
            requested_input_tokens: Some(512),
            requested_output_tokens: Some(2),
            finish_reason: Some("length".into()),
            outcome: Outcome::Ok,
        };
        let line = serde_json::to_string(&rec).unwrap();
        assert!(line.contains(r#"{"t":50000,"n":1}"#), "{line}");
        assert!(line.contains(r#"{"t":60000,"r":true}"#), "{line}");
        assert!(
            !line.contains("turn"),
            "single-turn records are unchanged: {line}"
        );
        assert_eq!(serde_json::from_str::<RequestRecord>(&line).unwrap(), rec);
        let later = RequestRecord { turn: 2, ..rec };
        let line = serde_json::to_string(&later).unwrap();
        assert!(line.starts_with(r#"{"i":3,"turn":2,"#), "{line}");
        assert_eq!(serde_json::from_str::<RequestRecord>(&line).unwrap(), later);
    }

    #[test]
    fn failure_serialises_with_reason_and_status() {
        let out = Outcome::Failed {
            reason: FailureReason::Http,
            http_status: Some(429),
            message: "rate limited".into(),
        };
        let s = serde_json::to_string(&out).unwrap();
        assert_eq!(
            s,
            r#"{"status":"failed","reason":"http","http_status":429,"message":"rate limited"}"#
        );
    }
}

/// What a repetition's records say about whether its server was there: kept by the records'
/// writer as they are appended, so a repetition whose server went away can be failed without
/// reading its records back (see `run::health`).
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Records of sent requests.
    pub sent: u64,
    /// Of those, requests that finished ok.
    pub ok: u64,
    /// The latest send of a request the server answered (ok, or an HTTP error, an error in the
    /// stream, a reply that broke the protocol).
    pub last_answered_ns: Option<u64>,
    /// Sends of requests that found no server (`connect`) or lost it before the end
    /// (`incomplete`) after the latest answered send so far, earliest first: those before it
    /// are dropped as the latest answer moves on, so only the current outage is held.
    lost_ns: BinaryHeap<Reverse<u64>>,
    /// The first failure's message, for the reason a repetition is failed.
    pub first_failure: Option<String>,
    /// Records that carry their generated text, to be counted before the marker.
    pub with_text: u64,
}

impl Tally {
    /// Counts one record.
    pub fn push(&mut self, rec: &RequestRecord) {
        self.with_text += u64::from(rec.text.is_some());
        let Some(sent) = rec.sent_ns else { return };
        self.sent += 1;
        let answered = match &rec.outcome {
            Outcome::Ok => {
                self.ok += 1;
                true
            }
            Outcome::Failed {
                reason, message, ..
            } => {
                self.first_failure.get_or_insert_with(|| message.clone());
                match reason {
                    FailureReason::Connect | FailureReason::Incomplete => {
                        if self.last_answered_ns.is_none_or(|last| sent > last) {
                            self.lost_ns.push(Reverse(sent));
                        }
                        false
                    }
                    FailureReason::Http
                    | FailureReason::StreamError
                    | FailureReason::Protocol
                    | FailureReason::Empty => true,
                    FailureReason::Timeout
                    | FailureReason::IdleTimeout
                    | FailureReason::Cancelled
                    | FailureReason::Rejected => false,
                }
            }
        };
        if answered {
            self.last_answered_ns = self.last_answered_ns.max(Some(sent));
            while self.lost_ns.peek().is_some_and(|Reverse(t)| *t <= sent) {
                self.lost_ns.pop();
            }
        }
    }

    /// Requests sent after the server's last answer that found no server or lost it.
    pub fn lost_after_last_answer(&self) -> usize {
        self.lost_ns.len()
    }
}
