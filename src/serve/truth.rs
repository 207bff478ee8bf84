//! The fixed server's truth log: for every request, when the server itself wrote its first and
//! last token. Tests compare a client's measurements against these instants (not against the
//! configured timing, which the timer only approximates).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::clock::Anchor;

/// The route a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /v1/completions`.
    Completions,
    /// `POST /v1/chat/completions`.
    Chat,
}

/// What the server did for one generation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruthEntry {
    /// Order in which the server received its generation requests (0-based).
    pub seq: u64,
    /// Value of the request's echo header ([`FixedTiming::echo_header`]), when configured and
    /// sent.
    ///
    /// [`FixedTiming::echo_header`]: super::FixedTiming::echo_header
    pub request_id: Option<String>,
    /// Route of the request.
    pub route: Route,
    /// Whether the reply was streamed.
    pub stream: bool,
    /// When the handler started (the request's body had been read); token deadlines count
    /// from here.
    pub received: Instant,
    /// When the first token's frame was handed to the HTTP layer, which writes it to the
    /// socket in the same task poll (microseconds later). For non-streaming replies, when the
    /// whole reply was handed over.
    pub first_token: Option<Instant>,
    /// Same for the last token.
    pub last_token: Option<Instant>,
    /// Prompt tokens by the server's whitespace tokenizer.
    pub prompt_tokens: u32,
    /// Tokens handed over before the stream ended.
    pub tokens_written: u32,
    /// The reply was handed over in full (`[DONE]` included); false when the client left.
    pub completed: bool,
}

/// A [`TruthEntry`] as written by `exp serve --fixed … --truth-log FILE`: one JSON object per
/// line, instants as raw `CLOCK_MONOTONIC` nanoseconds (see [`crate::clock`]), so another
/// process on the same host can compare them with its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthLine {
    /// Order of arrival (0-based).
    pub seq: u64,
    /// Value of the echo header, when configured and sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// When the handler started (the body had been read).
    pub received_ns: u64,
    /// When the first token was handed to the HTTP layer.
    pub first_token_ns: Option<u64>,
    /// When the last token was handed to the HTTP layer.
    pub last_token_ns: Option<u64>,
    /// Tokens handed over.
    pub tokens: u32,
    /// The reply was handed over in full.
    pub completed: bool,
}

impl TruthLine {
    /// `entry` with its instants converted through `anchor`.
    pub fn new(entry: &TruthEntry, anchor: &Anchor) -> TruthLine {
        TruthLine {
            seq: entry.seq,
            request_id: entry.request_id.clone(),
            received_ns: anchor.ns_of(entry.received),
            first_token_ns: entry.first_token.map(|t| anchor.ns_of(t)),
            last_token_ns: entry.last_token.map(|t| anchor.ns_of(t)),
            tokens: entry.tokens_written,
            completed: entry.completed,
        }
    }
}

/// Writes `entries` as JSON lines (see [`TruthLine`]).
pub fn write_lines(
    entries: &[TruthEntry],
    anchor: &Anchor,
    out: &mut impl Write,
) -> std::io::Result<()> {
    for entry in entries {
        serde_json::to_writer(&mut *out, &TruthLine::new(entry, anchor))?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Shared, append-only list of [`TruthEntry`]s.
#[derive(Debug, Default)]
pub(crate) struct TruthLog {
    entries: Mutex<Vec<TruthEntry>>,
}

impl TruthLog {
    /// All entries so far, ordered by `seq`.
    pub fn snapshot(&self) -> Vec<TruthEntry> {
        let mut v = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        v.sort_by_key(|e| e.seq);
        v
    }

    fn push(&self, entry: TruthEntry) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(entry);
    }
}

/// Holds one request's entry while it is served and files it on completion, or when dropped
/// so that requests whose client went away are logged too.
#[derive(Debug)]
pub(crate) struct TruthRecorder {
    log: Option<Arc<TruthLog>>,
    /// The entry being filled in.
    pub entry: TruthEntry,
}

impl TruthRecorder {
    /// Starts an entry; with `log == None` nothing is kept.
    pub fn new(log: Option<Arc<TruthLog>>, entry: TruthEntry) -> Self {
        TruthRecorder { log, entry }
    }

    /// Notes that a token was handed over at `at`.
    pub fn token(&mut self, at: Instant) {
        if self.entry.first_token.is_none() {
            self.entry.first_token = Some(at);
        }
        self.entry.last_token = Some(at);
        self.entry.tokens_written += 1;
    }
}

impl TruthRecorder {
    /// Marks the reply as handed over in full and files the entry now, before the client can
    /// have seen the end of the stream.
    pub fn complete(&mut self) {
        self.entry.completed = true;
        if let Some(log) = self.log.take() {
            log.push(self.entry.clone());
        }
    }
}

impl Drop for TruthRecorder {
    fn drop(&mut self) {
        if let Some(log) = self.log.take() {
            let entry = self.entry.clone();
            log.push(entry);
        }
    }
}
