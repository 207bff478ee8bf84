//! One run of a release process (the warm-up, or the measured window): which requests may be
//! sent when, per [`Arrivals`] mode, with the request count, the deadline and the grace period.
//! Instants are absolute virtual time.

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
    /// Requests released so far (the next one's index).
    pub(super) sent: u64,
    /// Requests released and not yet finished.
    pub(super) in_flight: u32,
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
            rejected_in_a_row: 0,
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
