//! The work of one repetition, as data: which requests, and when or how they are released.
//! Both executors (the HTTP driver and the simulated engine) consume exactly this, so a
//! scenario means the same thing on a real server and in simulation.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use crate::fanout::{self, Client, Share};

/// One chat message for `openai-chat` targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The message text.
    pub content: String,
}

/// The prompt of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// A completion prompt (`/v1/completions`); chat targets wrap it as one user message.
    Text(String),
    /// A chat conversation (`/v1/chat/completions`); completion targets join the contents.
    Chat(Vec<ChatMessage>),
}

/// One request to send: its prompt and its length targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    /// The prompt text.
    pub prompt: Prompt,
    /// Prompt tokens: the target tokenizer's exact count of `prompt` when it has one (special
    /// tokens not included), else its words, an approximation (the server's usage gives the
    /// truth).
    pub input_tokens: u32,
    /// `max_tokens` to ask for (with `ignore_eos` where the target honours it).
    pub max_tokens: u32,
}

/// Deterministic source of the requests of one repetition: request `i` is always the same for
/// a given (seed, repetition), whatever the cell, so cells see common random numbers.
pub trait RequestSource: Send + Sync {
    /// Token lengths of request `i` (input, max output) without building its text; the
    /// simulated engine needs only these.
    fn lengths(&self, i: u64) -> (u32, u32);
    /// The full request `i`.
    fn request(&self, i: u64) -> RequestSpec;
    /// Turns of unit `i` (≥ 1). A multi-turn source makes unit `i` a conversation whose turns
    /// are sent one after another, turn `t + 1` once turn `t` has finished; every other
    /// source has one turn, request `i` itself.
    fn turns(&self, _i: u64) -> u32 {
        1
    }
    /// Token lengths of turn `t` of unit `i`; turn 0 is [`Self::lengths`].
    fn turn_lengths(&self, i: u64, t: u32) -> (u32, u32) {
        debug_assert_eq!(t, 0, "single-turn source");
        self.lengths(i)
    }
    /// The full turn `t` of unit `i`; turn 0 is [`Self::request`].
    fn turn(&self, i: u64, t: u32) -> RequestSpec {
        debug_assert_eq!(t, 0, "single-turn source");
        self.request(i)
    }
    /// Pause between a turn's completion and the next turn's scheduled send.
    fn think_time(&self) -> Duration {
        Duration::ZERO
    }
}

/// How requests are released to the target.
///
/// With a multi-turn source the unit released is a conversation: its first turn is released
/// as a request is below, and the conversation holds its slot (`max_concurrency`,
/// `concurrency`, batch place) until its last turn finishes; each later turn is scheduled at
/// the previous turn's completion plus the source's think time, and is not sent at or after
/// the repetition's `duration`.
#[derive(Debug, Clone, PartialEq)]
pub enum Arrivals {
    /// Open loop: request `i` is scheduled at `offsets_ns[i]` (ns from the repetition origin,
    /// non-decreasing, first one 0). With `max_concurrency`, a request due while that many are
    /// in flight waits for a free slot (the wait shows in `queue_delay` and `ttft_sched`).
    Open {
        /// Scheduled send offsets, one per measured request.
        offsets_ns: Vec<u64>,
        /// Optional cap on requests in flight.
        max_concurrency: Option<NonZeroU32>,
    },
    /// Closed loop: keep exactly `concurrency` requests in flight; each completion releases
    /// the next request at once (its scheduled time is the completion instant).
    Closed {
        /// Requests in flight.
        concurrency: NonZeroU32,
    },
    /// Batch mode: send `size` requests together, wait for all of them, repeat.
    Batch {
        /// Requests per batch (BS).
        size: NonZeroU32,
    },
}

/// Everything an executor needs to run one repetition of one cell.
#[derive(Clone)]
pub struct RepetitionWork {
    /// Requests sent first and discarded (not recorded), in order, closed-loop at the
    /// repetition's concurrency (or one at a time for open loop).
    pub warmup: u32,
    /// Source of measured requests (index 0..) and of warm-up requests (separate stream).
    pub source: Arc<dyn RequestSource>,
    /// Source of warm-up requests.
    pub warmup_source: Arc<dyn RequestSource>,
    /// Measured requests to release; `None` means "until `duration` ends" (closed/batch).
    pub requests: Option<u64>,
    /// Stop releasing requests this long after the origin; requests in flight then are
    /// drained for `grace` and counted; unsent ones are not recorded.
    pub duration: Option<Duration>,
    /// How long in-flight requests may finish after `duration`.
    pub grace: Duration,
    /// The release process.
    pub arrivals: Arrivals,
    /// `exp run --client K/N`: only this client's share of the measured requests is sent
    /// (request `i` keeps its index, offset and prompt); `None` sends them all.
    pub share: Option<Share>,
}

impl RepetitionWork {
    /// This repetition as `client` sends it: its share of the planned requests (whole batches
    /// in batch mode) and, in a closed loop, its share of the places ([`fanout::slots`]).
    /// Warm-up is not shared: every client warms its own connections. Refused when a closed
    /// loop has fewer places than there are clients.
    pub fn for_client(mut self, client: Client) -> Result<RepetitionWork, String> {
        let block = match &mut self.arrivals {
            Arrivals::Open { .. } => 1,
            Arrivals::Batch { size } => u64::from(size.get()),
            Arrivals::Closed { concurrency } => {
                *concurrency = fanout::closed_share(concurrency.get(), client)?;
                1
            }
        };
        self.share = Some(Share { client, block });
        Ok(self)
    }
}

impl std::fmt::Debug for RepetitionWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepetitionWork")
            .field("warmup", &self.warmup)
            .field("requests", &self.requests)
            .field("duration", &self.duration)
            .field("grace", &self.grace)
            .field("arrivals", &self.arrivals)
            .field("share", &self.share)
            .finish_non_exhaustive()
    }
}
