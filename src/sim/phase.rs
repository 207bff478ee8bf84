//! One run of a release process (the warm-up, or the measured window): which requests may be
//! sent when, per [`Arrivals`] mode, with the request count, the deadline and the grace period.
//! Instants are absolute virtual time.
//!
//! In the measured phase a multi-turn source's unit is a conversation: it holds its slot
//! (`in_flight`) from its first turn's release until its last turn finishes, and each finished
//! turn queues the next one, due after the think time, unless that falls at or after the
//! deadline (the conversation then ends). The warm-up sends first turns only.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::workload::work::{Arrivals, RepetitionWork, RequestSource};

use super::SimError;

/// How a phase releases requests.
#[derive(Debug, Clone, Copy)]
pub(super) enum Release<'w> {
    /// Scheduled offsets; `arrived` of them are due, `cap` bounds requests in flight.
    Open {
        offsets: &'w [u64],
        arrived: u64,
        cap: u32,
    },
    /// Keep `concurrency` in flight.
    Closed { concurrency: u32 },
    /// Release `size` together whenever none is in flight.
    Batch { size: u32 },
}

/// One run of the release process (the warm-up, or the measured window). Instants are absolute.
pub(super) struct Phase<'w> {
    pub(super) source: &'w dyn RequestSource,
    pub(super) release: Release<'w>,
    /// Most requests to release.
    pub(super) limit: u64,
    /// No release at or after this instant.
    pub(super) deadline: u64,
    /// Requests still running at this instant are cancelled.
    pub(super) grace_end: u64,
    /// Instant records are relative to.
    pub(super) origin: u64,
    /// Engine id of request 0 (warm-up ids live apart from measured ones).
    pub(super) id_base: u64,
    /// Units (requests or conversations) released so far (the next one's index).
    pub(super) sent: u64,
    /// Units released and not yet finished.
    pub(super) in_flight: u32,
    /// Requests (turns) handed to the engine so far; request `k` has engine id `id_base + k`.
    pub(super) submitted: u64,
    /// Whether finished turns lead to their conversation's next turn (measured phase only).
    multi_turn: bool,
    /// Pause between a turn's completion and the next turn (ns).
    think_ns: u64,
    /// Engine id → (conversation, turn) of turns in the engine (multi-turn only).
    live: HashMap<u64, (u64, u32)>,
    /// Next turns waiting for their due instant: (due, conversation, turn).
    pending: BinaryHeap<Reverse<(u64, u64, u32)>>,
    /// Rejections in a row while nothing was in flight.
    pub(super) rejected_in_a_row: u64,
}

impl<'w> Phase<'w> {
    pub(super) fn warmup(work: &'w RepetitionWork) -> Self {
        let concurrency = match &work.arrivals {
            Arrivals::Open { .. } => 1,
            Arrivals::Closed { concurrency } => concurrency.get(),
            Arrivals::Batch { size } => size.get(),
        };
        let release = Release::Closed { concurrency };
        Phase::new(
            work.warmup_source.as_ref(),
            release,
            u64::from(work.warmup),
            1 << 63,
        )
    }

    pub(super) fn measured(work: &'w RepetitionWork) -> Result<Self, SimError> {
        let requests = work.requests.unwrap_or(u64::MAX);
        let (release, limit) = match &work.arrivals {
            Arrivals::Open {
                offsets_ns,
                max_concurrency,
            } => {
                let cap = max_concurrency.map_or(u32::MAX, |c| c.get());
                let open = Release::Open {
                    offsets: offsets_ns,
                    arrived: 0,
                    cap,
                };
                (open, requests.min(offsets_ns.len() as u64))
            }
            _ if work.requests.is_none() && work.duration.is_none() => {
                return Err(SimError::Unbounded);
            }
            Arrivals::Closed { concurrency } => (
                Release::Closed {
                    concurrency: concurrency.get(),
                },
                requests,
            ),
            Arrivals::Batch { size } => (Release::Batch { size: size.get() }, requests),
        };
        let mut phase = Phase::new(work.source.as_ref(), release, limit, 0);
        phase.multi_turn = true;
        phase.think_ns = nanos(work.source.think_time());
        if let Some(duration) = work.duration {
            phase.deadline = nanos(duration);
            phase.grace_end = phase.deadline.saturating_add(nanos(work.grace));
        }
        Ok(phase)
    }

    pub(super) fn new(
        source: &'w dyn RequestSource,
        release: Release<'w>,
        limit: u64,
        id_base: u64,
    ) -> Self {
        Phase {
            source,
            release,
            limit,
            deadline: u64::MAX,
            grace_end: u64::MAX,
            origin: 0,
            id_base,
            sent: 0,
            in_flight: 0,
            submitted: 0,
            multi_turn: false,
            think_ns: 0,
            live: HashMap::new(),
            pending: BinaryHeap::new(),
            rejected_in_a_row: 0,
        }
    }

    /// Notes that engine request `id` is turn `turn` of conversation `index`, when a later
    /// turn follows it (single-turn sources never pay for the map).
    pub(super) fn track(&mut self, id: u64, index: u64, turn: u32) {
        if self.multi_turn && turn + 1 < self.source.turns(index) {
            self.live.insert(id, (index, turn));
        }
    }

    /// Engine request `id` finished at `t`. Returns true when its conversation goes on (its
    /// next turn is queued), false when the unit is over.
    pub(super) fn finished(&mut self, id: u64, t: u64) -> bool {
        let Some((index, turn)) = self.live.remove(&id) else {
            return false;
        };
        let due = t.saturating_add(self.think_ns);
        if due >= self.deadline {
            return false;
        }
        self.pending.push(Reverse((due, index, turn + 1)));
        true
    }

    /// The next queued turn due at or before `t`, as (due, conversation, turn).
    pub(super) fn pop_due_turn(&mut self, t: u64) -> Option<(u64, u64, u32)> {
        match self.pending.peek() {
            Some(Reverse((due, ..))) if *due <= t => self.pending.pop().map(|Reverse(x)| x),
            _ => None,
        }
    }

    /// The next instant something arrives from outside the engine: an open-loop release or a
    /// queued turn.
    pub(super) fn next_event(&self) -> Option<u64> {
        let turn = self.pending.peek().map(|Reverse((due, ..))| *due);
        match (self.next_arrival(), turn) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next open-loop arrival that will be released, if any.
    pub(super) fn next_arrival(&self) -> Option<u64> {
        let Release::Open {
            offsets, arrived, ..
        } = self.release
        else {
            return None;
        };
        if arrived >= self.limit {
            return None;
        }
        let t = self.origin.saturating_add(offsets[arrived as usize]);
        (t < self.deadline).then_some(t)
    }

    /// Moves the phase to start at `origin` (its deadlines were set relative to 0).
    pub(super) fn set_origin(&mut self, origin: u64) {
        self.origin = origin;
        self.deadline = self.deadline.saturating_add(origin);
        self.grace_end = self.grace_end.saturating_add(origin);
    }

    /// Requests that may still be released at `t`.
    pub(super) fn releasable(&self, t: u64) -> u64 {
        if t >= self.deadline {
            0
        } else {
            self.limit - self.sent
        }
    }
}

/// Converts a duration to ns, saturating.
fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
