//! The one tokio driver: releases a repetition's requests to a [`Sender`] according to its
//! arrival process, and hands every finished record to a channel (the writer lives off the hot
//! path). Send times are computed ahead from the seeded process; lateness is never hidden: a
//! request the driver releases late keeps its `scheduled` instant, and the gap shows as
//! `queue_delay`.
//!
//! Requests are built ahead of need off the async workers ([`super::prefetch`]), so building a
//! long prompt never stalls a stream's reads. A closed-loop or batch request's scheduled
//! instant is when its place became free, taken before its prompt is handed over: if building
//! falls behind, the wait shows as `queue_delay` like any other client lateness.
//!
//! With a multi-turn source the arrival process releases conversations: one task sends a
//! conversation's turns one after another, turn `t + 1` scheduled when turn `t`'s last token
//! arrived (plus the source's think time). Every turn is a request under the usual rules (no
//! send at or after the release deadline, cancelled at the hard deadline); a turn that fails or
//! is not sent ends its conversation, so no later turn is sent with a history it never had.
//!
//! A [`Divert`] (quality items under load) may take some arrivals: it is asked once per
//! arrival, and an arrival it takes is its to send instead of a measured request (its prompt,
//! built already, is dropped), so it never reaches the records. It is prepared after warm-up,
//! outside the measured window.

use std::future::Future;

use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::prefetch::{self, Prefetch};
use super::timer::SendTimer;
use crate::record::{FailureReason, Outcome, RequestRecord};
use crate::workload::work::{Arrivals, RepetitionWork, RequestSource, RequestSpec};

/// Sends one request and observes it. Implemented by the OpenAI client; tests use fakes.
pub trait Sender: Send + Sync + 'static {
    /// Sends `req` now; `scheduled_ns` is its scheduled instant (ns after `origin`). The
    /// returned record's instants are relative to `origin`.
    fn send(
        &self,
        req: RequestSpec,
        index: u64,
        origin: std::time::Instant,
        scheduled_ns: u64,
    ) -> impl Future<Output = RequestRecord> + Send;
}

/// Takes some arrivals of the measured load for something else than a measured request
/// (quality items under load), without changing when they arrive.
pub trait Divert: Send + Sync + 'static {
    /// Runs once after warm-up, before the measured window opens.
    fn prepare(&self) -> BoxFuture<'_, ()>;
    /// Whether arrival `index` is taken (asked once per arrival, after `prepare`).
    fn takes(&self, index: u64) -> bool;
    /// Sends arrival `index` now, released at `scheduled_ns` after `origin`. Dropped
    /// unfinished at the repetition's hard deadline.
    fn run(
        self: Arc<Self>,
        index: u64,
        origin: std::time::Instant,
        scheduled_ns: u64,
    ) -> BoxFuture<'static, ()>;
}

/// What the driver observed about the repetition as a whole.
#[derive(Debug, Clone)]
pub struct DriveReport {
    /// The origin of every instant in the records.
    pub origin: std::time::Instant,
    /// Wall-clock time of the origin.
    pub origin_wall: SystemTime,
    /// Measured requests released (conversations, for a multi-turn source); arrivals a
    /// [`Divert`] took are not counted.
    pub released: u64,
    /// This process's CPU time and run-queue wait when warm-up ended (only the measured
    /// requests are charged to the client's own use).
    pub at_origin: super::usage::Snapshot,
    /// A fanned-out client's start (`exp run --client`): the marker's record of it and,
    /// when it sent nothing, why.
    pub client: Option<(crate::fanout::ClientMark, Option<String>)>,
}

/// Lead time between preparing the schedule and its first send, so the first request is not
/// late by construction.
const LEAD: Duration = Duration::from_millis(5);

/// Runs warm-up, then the measured requests of `work`, sending each finished record to `out`.
pub async fn drive<S: Sender>(
    sender: Arc<S>,
    work: &RepetitionWork,
    out: mpsc::UnboundedSender<RequestRecord>,
) -> DriveReport {
    drive_with(sender, work, out, None, None).await
}

/// [`drive`], with `divert` taking some of the measured arrivals (quality items under load)
/// and, for a fanned-out client, `gate`: after warm-up the measured requests wait for its
/// shared instant, and are not sent at all when it refuses (a late client).
pub async fn drive_with<S: Sender>(
    sender: Arc<S>,
    work: &RepetitionWork,
    out: mpsc::UnboundedSender<RequestRecord>,
    divert: Option<Arc<dyn Divert>>,
    gate: Option<&super::gate::Gate>,
) -> DriveReport {
    // Started before warm-up, so the first requests are built by the origin.
    let prompts = measured_prompts(work);
    warm_up(&sender, work).await;
    if let Some(d) = &divert {
        d.prepare().await;
    }
    let (origin, origin_wall, client) = match gate {
        None => (Instant::now() + LEAD, SystemTime::now() + LEAD, None),
        Some(gate) => {
            let began = gate.wait().await;
            (
                began.origin,
                began.origin_wall,
                Some((began.mark, began.refused)),
            )
        }
    };
    let at_origin = super::usage::Snapshot::take();
    if let Some((_, Some(_))) = &client {
        return DriveReport {
            origin: origin.into_std(),
            origin_wall,
            released: 0,
            at_origin,
            client,
        };
    }
    let release_end = work.duration.map(|d| origin + d);
    let ctx = Ctx {
        sender,
        origin,
        release_end,
        hard_end: release_end.map(|end| end + work.grace),
        out,
        divert,
    };
    let released = match &work.arrivals {
        Arrivals::Open {
            offsets_ns,
            max_concurrency,
        } => {
            let cap = max_concurrency.map(|c| Arc::new(Semaphore::new(c.get() as usize)));
            open_loop(&ctx, work, prompts, offsets_ns, cap, release_end).await
        }
        Arrivals::Closed { concurrency } => {
            closed_loop(&ctx, work, prompts, concurrency.get(), release_end).await
        }
        Arrivals::Batch { size } => batch_loop(&ctx, work, prompts, size.get(), release_end).await,
    };
    DriveReport {
        origin: origin.into_std(),
        origin_wall,
        released,
        at_origin,
        client,
    }
}

/// How many requests can be in flight at once: what the prompt builders keep ready.
fn width(arrivals: &Arrivals) -> usize {
    match arrivals {
        Arrivals::Closed { concurrency } => concurrency.get() as usize,
        Arrivals::Batch { size } => size.get() as usize,
        Arrivals::Open {
            max_concurrency, ..
        } => max_concurrency.map_or(prefetch::OPEN_DEPTH, |c| c.get() as usize),
    }
}

/// The builders of a repetition's measured requests, up to its request limit.
fn measured_prompts(work: &RepetitionWork) -> Prefetch {
    let mut limit = work.requests.unwrap_or(u64::MAX);
    if let Arrivals::Open { offsets_ns, .. } = &work.arrivals {
        limit = limit.min(offsets_ns.len() as u64);
    }
    Prefetch::start_share(
        work.source.clone(),
        limit,
        width(&work.arrivals),
        work.share,
    )
}

struct Ctx<S> {
    sender: Arc<S>,
    origin: Instant,
    release_end: Option<Instant>,
    hard_end: Option<Instant>,
    out: mpsc::UnboundedSender<RequestRecord>,
    divert: Option<Arc<dyn Divert>>,
}

impl<S> Clone for Ctx<S> {
    fn clone(&self) -> Self {
        Ctx {
            sender: self.sender.clone(),
            origin: self.origin,
            release_end: self.release_end,
            hard_end: self.hard_end,
            out: self.out.clone(),
            divert: self.divert.clone(),
        }
    }
}

impl<S: Sender> Ctx<S> {
    fn ns_since_origin(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.origin).as_nanos() as u64
    }

    /// Whether arrival `index` is the divert's (asked once per arrival).
    fn diverts(&self, index: u64) -> bool {
        self.divert.as_ref().is_some_and(|d| d.takes(index))
    }

    /// Runs arrival `index`: the divert's when `diverted`, else the unit of `source` from its
    /// first request `first`. The divert's is dropped at the hard deadline.
    async fn run_arrival(
        &self,
        source: &dyn RequestSource,
        first: RequestSpec,
        index: u64,
        scheduled_ns: u64,
        diverted: bool,
    ) {
        let Some(divert) = self.divert.clone().filter(|_| diverted) else {
            return self.run_unit(source, first, index, scheduled_ns).await;
        };
        let fut = divert.run(index, self.origin.into_std(), scheduled_ns);
        match self.hard_end {
            None => fut.await,
            Some(end) => {
                let _unfinished = tokio::time::timeout_at(end, fut).await;
            }
        }
    }

    /// Runs unit `index` of `source` from its first request `first`, scheduled at
    /// `scheduled_ns`: the request itself, or every turn of a conversation in order.
    async fn run_unit(
        &self,
        source: &dyn RequestSource,
        first: RequestSpec,
        index: u64,
        scheduled_ns: u64,
    ) {
        let turns = source.turns(index);
        let think = u64::try_from(source.think_time().as_nanos()).unwrap_or(u64::MAX);
        let (mut req, mut scheduled) = (first, scheduled_ns);
        for turn in 0..turns {
            let Some(done) = self.run_one(req, index, turn, scheduled).await else {
                return;
            };
            if turn + 1 == turns {
                return;
            }
            scheduled = done.saturating_add(think);
            let at = self.origin + Duration::from_nanos(scheduled);
            if self.release_end.is_some_and(|end| at >= end) {
                return;
            }
            req = source.turn(index, turn + 1);
            tokio::time::sleep_until(at).await;
        }
    }

    /// Sends one request (turn `turn` of unit `index`) and forwards its record; past the hard
    /// deadline (duration + grace) the request is cancelled and recorded as such. Returns the
    /// arrival of its last token when it succeeded.
    async fn run_one(
        &self,
        req: RequestSpec,
        index: u64,
        turn: u32,
        scheduled_ns: u64,
    ) -> Option<u64> {
        let started = self.ns_since_origin(Instant::now());
        let (requested_in, requested_out) = (req.input_tokens, req.max_tokens);
        let fut = self
            .sender
            .send(req, index, self.origin.into_std(), scheduled_ns);
        let rec = match self.hard_end {
            None => fut.await,
            Some(end) => match tokio::time::timeout_at(end, fut).await {
                Ok(rec) => rec,
                Err(_) => RequestRecord {
                    index,
                    turn,
                    scheduled_ns,
                    sent_ns: Some(started),
                    first_sent_ns: None,
                    no_done: false,
                    text: None,
                    counted: None,
                    chunks: Vec::new(),
                    done_ns: None,
                    input_tokens: None,
                    output_tokens: None,
                    requested_input_tokens: Some(requested_in),
                    requested_output_tokens: Some(requested_out),
                    finish_reason: None,
                    outcome: Outcome::Failed {
                        reason: FailureReason::Cancelled,
                        http_status: None,
                        message: "still running when the repetition's grace period ended".into(),
                    },
                },
            },
        };
        let rec = RequestRecord { turn, ..rec };
        let done = rec.done_ns.filter(|_| rec.outcome.is_ok());
        // The receiver only goes away when the run is being torn down.
        let _ = self.out.send(rec);
        done
    }
}

async fn open_loop<S: Sender>(
    ctx: &Ctx<S>,
    work: &RepetitionWork,
    mut prompts: Prefetch,
    offsets_ns: &[u64],
    cap: Option<Arc<Semaphore>>,
    release_end: Option<Instant>,
) -> u64 {
    let mut tasks = JoinSet::new();
    let mut released = 0;
    let mut timer = SendTimer::new();
    // Take each request before waiting, so handing it over never delays a send. Request `i`
    // is sent at offset `i` (a client's share skips the others' indices).
    while let Some((i, req)) = prompts.next().await {
        let offset = offsets_ns[i as usize];
        let at = ctx.origin + Duration::from_nanos(offset);
        if release_end.is_some_and(|end| at >= end) {
            break;
        }
        timer.sleep_until(at).await;
        let permit = match &cap {
            Some(sem) => Some(sem.clone().acquire_owned().await.expect("semaphore open")),
            None => None,
        };
        let (ctx, source) = (ctx.clone(), work.source.clone());
        let diverted = ctx.diverts(i);
        tasks.spawn(async move {
            (ctx.run_arrival(source.as_ref(), req, i, offset, diverted)).await;
            drop(permit);
        });
        released += u64::from(!diverted);
        reap(&mut tasks);
    }
    while tasks.join_next().await.is_some() {}
    released
}

async fn closed_loop<S: Sender>(
    ctx: &Ctx<S>,
    work: &RepetitionWork,
    prompts: Prefetch,
    concurrency: u32,
    release_end: Option<Instant>,
) -> u64 {
    let prompts = Arc::new(tokio::sync::Mutex::new(prompts));
    let released = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    // Instants before the origin saturate to 0: a request sent during the lead time would be
    // recorded as sent later than it was, and its TTFT understated by up to LEAD.
    tokio::time::sleep_until(ctx.origin).await;
    for _ in 0..concurrency {
        let (ctx, prompts, released) = (ctx.clone(), prompts.clone(), released.clone());
        let source = work.source.clone();
        tasks.spawn(async move {
            loop {
                if release_end.is_some_and(|end| Instant::now() >= end) {
                    break;
                }
                let scheduled = ctx.ns_since_origin(Instant::now());
                // The lock is fair (FIFO), so places take requests in the order they freed.
                let Some((i, req)) = prompts.lock().await.next().await else {
                    break;
                };
                let diverted = ctx.diverts(i);
                released.fetch_add(u64::from(!diverted), Ordering::Relaxed);
                (ctx.run_arrival(source.as_ref(), req, i, scheduled, diverted)).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    released.load(Ordering::Relaxed)
}

async fn batch_loop<S: Sender>(
    ctx: &Ctx<S>,
    work: &RepetitionWork,
    mut prompts: Prefetch,
    size: u32,
    release_end: Option<Instant>,
) -> u64 {
    let mut released = 0u64;
    // As in the closed loop: nothing is sent before the origin.
    tokio::time::sleep_until(ctx.origin).await;
    'batches: while release_end.is_none_or(|end| Instant::now() < end) {
        let scheduled = ctx.ns_since_origin(Instant::now());
        let mut tasks = JoinSet::new();
        for _ in 0..size {
            let Some((i, req)) = prompts.next().await else {
                while tasks.join_next().await.is_some() {}
                break 'batches;
            };
            let (ctx, source) = (ctx.clone(), work.source.clone());
            let diverted = ctx.diverts(i);
            tasks.spawn(async move {
                (ctx.run_arrival(source.as_ref(), req, i, scheduled, diverted)).await;
            });
            released += u64::from(!diverted);
        }
        while tasks.join_next().await.is_some() {}
    }
    released
}

/// Drops finished task handles so a long open-loop run does not accumulate them.
fn reap(tasks: &mut JoinSet<()>) {
    while tasks.try_join_next().is_some() {}
}

/// Sends the warm-up requests and discards them: closed-loop at the repetition's concurrency
/// (batch size for batch mode, one at a time for open loop).
async fn warm_up<S: Sender>(sender: &Arc<S>, work: &RepetitionWork) {
    if work.warmup == 0 {
        return;
    }
    let width = match &work.arrivals {
        Arrivals::Open { .. } => 1,
        other => width(other),
    }
    .min(work.warmup as usize);
    let total = u64::from(work.warmup);
    let prompts = Prefetch::start(work.warmup_source.clone(), total, width);
    let prompts = Arc::new(tokio::sync::Mutex::new(prompts));
    let origin = std::time::Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..width {
        let (sender, prompts) = (sender.clone(), prompts.clone());
        tasks.spawn(async move {
            loop {
                let Some((i, req)) = prompts.lock().await.next().await else {
                    break;
                };
                let _discarded = sender.send(req, i, origin, 0).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "driver_turn_tests.rs"]
mod turn_tests;

#[cfg(test)]
#[path = "driver_share_tests.rs"]
mod share_tests;
