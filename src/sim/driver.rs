//! The virtual-time driver: runs one [`RepetitionWork`] through an [`Engine`] and writes the
//! same [`RequestRecord`]s as the HTTP driver, with instants relative to the measured origin.
//!
//! Events at one instant are taken in Vidur's order: client arrivals first, then the end of
//! the step in flight (its tokens, completions, and the releases they trigger), then the next
//! step's start. Warm-up requests run first, closed-loop at the arrivals' concurrency (one at a
//! time for open loop), and are not recorded; the measured origin is the instant the last one
//! finishes, so the engine (and its noise stream) carries over but no request does.
//!
//! A multi-turn source's conversation sends its next turn when a turn's last token is
//! delivered (after the think time, as a timed event like an arrival), with the longer input
//! the source gives it; see [`Phase`] for how conversations hold their slot.
//!
//! A sent request reaches the engine through [`ApiServer`], one thread that spends the cost
//! model's [`StepCost::admission_seconds`] on each request in turn; its hand-overs are timed
//! events like arrivals. With a cost of 0 (the `ideal` preset, [`super::LinearCost`]) a
//! request reaches the engine the instant it is sent.

use std::collections::VecDeque;

use crate::record::{Chunk, FailureReason, Outcome, RequestRecord};
use crate::workload::work::RepetitionWork;

use super::engine::{Emission, Engine};
use super::phase::{Phase, Release};
use super::{EngineParams, SimError, StepCost};

/// Interval of the gauge time series in [`SimStats::samples`] (100 ms of virtual time).
pub const SAMPLE_INTERVAL_NS: u64 = 100_000_000;

/// Rejections in a row with nothing in flight (so virtual time cannot move) before giving up.
const MAX_REJECTIONS_IN_A_ROW: u64 = 100_000;

/// Engine gauges at one instant of the measured window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GaugeSample {
    /// Instant (ns from the measured origin), a multiple of [`SAMPLE_INTERVAL_NS`].
    pub t_ns: u64,
    /// Requests running.
    pub running: u32,
    /// Requests waiting in the engine's queue (not the client's).
    pub waiting: u32,
    /// KV-cache usage in [0, 1].
    pub kv_usage: f64,
}

/// What the engine did during the measured window.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SimStats {
    /// Steps that ended inside the window.
    pub steps: u64,
    /// Preemptions (recompute) inside the window.
    pub preemptions: u64,
    /// Measured requests refused because they could never fit in the KV cache.
    pub rejected: u64,
    /// Most requests running in one step.
    pub peak_running: u32,
    /// Highest KV-cache usage in one step, in [0, 1].
    pub peak_kv_usage: f64,
    /// Virtual time the warm-up took (ns), before the measured origin.
    pub warmup_ns: u64,
    /// Length of the measured window (ns): until the last completion, or the end of grace.
    pub window_ns: u64,
    /// Gauges every [`SAMPLE_INTERVAL_NS`] from the origin to the end of the window.
    pub samples: Vec<GaugeSample>,
}

/// The result of one simulated repetition.
#[derive(Debug, Clone, PartialEq)]
pub struct SimRun {
    /// One record per measured request (turn) that was sent, in the order they were sent
    /// (index order for single-turn sources).
    pub records: Vec<RequestRecord>,
    /// Engine statistics over the measured window.
    pub stats: SimStats,
}

/// Runs one repetition in virtual time. `seed` pins the step-time noise; with the same
/// arguments the result is always identical.
pub fn run_repetition<C: StepCost + ?Sized>(
    work: &RepetitionWork,
    params: &EngineParams,
    cost: &C,
    seed: u64,
) -> Result<SimRun, SimError> {
    let mut records = Vec::new();
    let stats = run_repetition_into(work, params, cost, seed, &mut |r| records.push(r))?;
    Ok(SimRun { records, stats })
}

/// [`run_repetition`], handing each record to `sink` as soon as it and every request sent
/// before it have finished (so in send order, as [`SimRun::records`]): memory holds the
/// requests in flight and those finished behind the oldest of them, not the repetition's.
pub fn run_repetition_into<C: StepCost + ?Sized>(
    work: &RepetitionWork,
    params: &EngineParams,
    cost: &C,
    seed: u64,
    sink: &mut dyn FnMut(RequestRecord),
) -> Result<SimStats, SimError> {
    let mut measured = Phase::measured(work)?;
    let mut d = Driver {
        engine: Engine::new(*params, cost, seed)?,
        server: ApiServer::default(),
        emitted: Vec::new(),
        pending: VecDeque::new(),
        front: 0,
        sink,
        stats: SimStats::default(),
        recording: false,
        next_sample: 0,
        sample_origin: 0,
    };
    let origin = d.run_phase(&mut Phase::warmup(work), 0)?;
    let preemptions_before = d.engine.preemptions();
    d.recording = true;
    d.next_sample = origin;
    d.sample_origin = origin;
    measured.set_origin(origin);
    let end = d.run_phase(&mut measured, origin)?;
    d.sample_until(end);
    // Requests still running at the end of grace stay `Cancelled`.
    for p in d.pending.drain(..) {
        (d.sink)(p.rec);
    }
    d.stats.preemptions = d.engine.preemptions() - preemptions_before;
    d.stats.warmup_ns = origin;
    d.stats.window_ns = end - origin;
    Ok(d.stats)
}

/// The API server in front of the engine: one thread that takes sent requests in order and
/// spends [`StepCost::admission_seconds`] on each (HTTP, tokenisation, admission) before the
/// engine sees it, so a burst queues here. With a cost of 0 requests skip it.
#[derive(Default)]
struct ApiServer {
    /// When the thread is next free (ns).
    free_ns: u64,
    /// Requests being handled, in order; their `ready_ns` never decrease.
    queue: VecDeque<Admission>,
}

impl ApiServer {
    /// Queues `a`, sent at `a.ready_ns`, behind the requests already there.
    fn enqueue(&mut self, mut a: Admission, seconds: f64) {
        // Saturating float-to-int cast; at least 1 ns.
        let cost_ns = ((seconds * 1e9).round() as u64).max(1);
        a.ready_ns = a.ready_ns.max(self.free_ns).saturating_add(cost_ns);
        self.free_ns = a.ready_ns;
        self.queue.push_back(a);
    }
}

/// A request on its way to the engine.
#[derive(Debug, Clone, Copy)]
struct Admission {
    /// When the engine gets it (ns).
    ready_ns: u64,
    /// Engine id.
    id: u64,
    /// Its unit (request or conversation) and turn.
    index: u64,
    turn: u32,
    /// Prompt and output tokens.
    input: u32,
    output: u32,
}

/// A sent request's record until it and every earlier one are handed over.
struct Pending {
    rec: RequestRecord,
    done: bool,
}

struct Driver<'c, 's, C: ?Sized> {
    engine: Engine<&'c C>,
    server: ApiServer,
    emitted: Vec<Emission>,
    /// Records of the measured requests from the oldest not handed over, by submission.
    pending: VecDeque<Pending>,
    /// Submission number (id − the phase's id base) of `pending[0]`.
    front: u64,
    sink: &'s mut dyn FnMut(RequestRecord),
    stats: SimStats,
    recording: bool,
    next_sample: u64,
    sample_origin: u64,
}

impl<C: StepCost + ?Sized> Driver<'_, '_, C> {
    /// Runs a phase from `now` to its end; returns the end instant.
    fn run_phase(&mut self, p: &mut Phase<'_>, mut now: u64) -> Result<u64, SimError> {
        self.fill(p, now)?;
        let mut step_end: Option<u64> = None;
        loop {
            if step_end.is_none() && !self.engine.is_idle() {
                if now >= p.grace_end {
                    return Ok(p.grace_end);
                }
                step_end = Some(self.step(now));
            }
            let external = self.next_event(p);
            let next = match (step_end, external) {
                (Some(end), Some(a)) => Some(end.min(a)),
                (end, a) => end.or(a),
            };
            match next {
                None => return Ok(now),
                Some(t) if t > p.grace_end => return Ok(p.grace_end),
                Some(t) if external == Some(t) => {
                    if step_end.is_none() {
                        now = t;
                    }
                    self.arrive(p, t)?;
                }
                Some(t) => {
                    self.complete(p, t)?;
                    step_end = None;
                    now = t;
                }
            }
        }
    }

    /// The next instant something reaches the engine from outside: an open-loop release, a
    /// queued turn, or a request the API server has finished with.
    fn next_event(&self, p: &Phase<'_>) -> Option<u64> {
        let admitted = self.server.queue.front().map(|a| a.ready_ns);
        match (p.next_event(), admitted) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The events at `t`: requests the API server hands to the engine, an open-loop arrival
    /// (sent now if a slot is free, else it waits), and the conversations' turns due then.
    fn arrive(&mut self, p: &mut Phase<'_>, t: u64) -> Result<(), SimError> {
        self.sample_until(t);
        while let Some(a) = self.server.queue.front().filter(|a| a.ready_ns <= t) {
            let a = *a;
            self.server.queue.pop_front();
            self.admit(p, a)?;
        }
        let due = p.next_arrival().is_some_and(|a| a <= t);
        if let (Release::Open { arrived, .. }, true) = (&mut p.release, due) {
            *arrived += 1;
        }
        self.release_turns(p, t)?;
        self.fill(p, t)
    }

    /// Sends every queued turn due at or before `t`.
    fn release_turns(&mut self, p: &mut Phase<'_>, t: u64) -> Result<(), SimError> {
        while let Some((due, index, turn)) = p.pop_due_turn(t) {
            self.submit(p, index, turn, due, t)?;
        }
        Ok(())
    }

    /// Starts a step at `now`; returns its end. Its tokens are kept for [`Self::complete`].
    fn step(&mut self, now: u64) -> u64 {
        self.sample_until(now);
        let report = self.engine.next_step(now).expect("the engine has work");
        self.emitted.clear();
        self.emitted.extend_from_slice(report.emitted);
        if self.recording {
            self.stats.peak_running = self.stats.peak_running.max(report.running);
            self.stats.peak_kv_usage = self.stats.peak_kv_usage.max(report.kv_usage);
        }
        report.end_ns
    }

    /// Delivers the tokens of the step that ended at `t`, then releases what completions allow.
    fn complete(&mut self, p: &mut Phase<'_>, t: u64) -> Result<(), SimError> {
        self.sample_until(t);
        if self.recording {
            self.stats.steps += 1;
        }
        for e in &self.emitted {
            if self.recording {
                let pending = &mut self.pending[(e.id - p.id_base - self.front) as usize];
                deliver(&mut pending.rec, e, t - p.origin);
                pending.done |= e.finished;
            }
            if e.finished && !p.finished(e.id, t) {
                p.in_flight -= 1;
            }
        }
        self.hand_over();
        self.release_turns(p, t)?;
        self.fill(p, t)
    }

    /// Releases every request the arrival process allows at `t`.
    fn fill(&mut self, p: &mut Phase<'_>, t: u64) -> Result<(), SimError> {
        loop {
            let want = match p.release {
                Release::Open { arrived, cap, .. } => {
                    u64::from(p.in_flight < cap && p.sent < arrived)
                }
                Release::Closed { concurrency } => {
                    u64::from(concurrency.saturating_sub(p.in_flight))
                }
                Release::Batch { size } => u64::from(size) * u64::from(p.in_flight == 0),
            };
            let n = want.min(p.releasable(t));
            if n == 0 {
                return Ok(());
            }
            for _ in 0..n {
                self.start(p, t)?;
            }
        }
    }

    /// Releases the next unit at `t`: sends its first request.
    fn start(&mut self, p: &mut Phase<'_>, t: u64) -> Result<(), SimError> {
        let index = p.sent;
        p.sent += 1;
        let scheduled = match p.release {
            Release::Open { offsets, .. } => p.origin + offsets[index as usize],
            _ => t,
        };
        self.submit(p, index, 0, scheduled, t)
    }

    /// Sends turn `turn` of unit `index` at `t` (recording it when measuring): it goes through
    /// the API server (see [`ApiServer`]), then to the engine. A later turn's conversation
    /// already holds its slot; a first turn takes one.
    fn submit(
        &mut self,
        p: &mut Phase<'_>,
        index: u64,
        turn: u32,
        scheduled: u64,
        t: u64,
    ) -> Result<(), SimError> {
        let (input, output) = p.source.turn_lengths(index, turn);
        let id = p.id_base + p.submitted;
        p.submitted += 1;
        if self.recording {
            let mut rec = new_record(index, scheduled - p.origin, t - p.origin, input, output);
            rec.turn = turn;
            self.pending.push_back(Pending { rec, done: false });
        }
        if turn == 0 {
            p.in_flight += 1;
        }
        let a = Admission {
            ready_ns: t,
            id,
            index,
            turn,
            input,
            output,
        };
        let seconds = self.engine.cost().admission_seconds(input);
        if seconds > 0.0 {
            self.server.enqueue(a, seconds);
            return Ok(());
        }
        self.admit(p, a)
    }

    /// Hands a request to the engine. If the engine rejects it, its unit ends there.
    fn admit(&mut self, p: &mut Phase<'_>, a: Admission) -> Result<(), SimError> {
        match self.engine.add(a.id, a.input, a.output) {
            Ok(()) => {
                p.track(a.id, a.index, a.turn);
                p.rejected_in_a_row = 0;
            }
            Err(e) => {
                if self.recording {
                    let pending = &mut self.pending[(a.id - p.id_base - self.front) as usize];
                    pending.rec.outcome = failed(FailureReason::Rejected, e.to_string());
                    pending.done = true;
                    self.stats.rejected += 1;
                    self.hand_over();
                }
                p.in_flight -= 1;
                if a.turn == 0 && p.in_flight == 0 {
                    p.rejected_in_a_row += 1;
                    if p.rejected_in_a_row >= MAX_REJECTIONS_IN_A_ROW && p.limit == u64::MAX {
                        return Err(SimError::NoProgress {
                            rejected: p.rejected_in_a_row,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Hands every finished record at the front of `pending` to the sink.
    fn hand_over(&mut self) {
        while self.pending.front().is_some_and(|p| p.done) {
            let p = self.pending.pop_front().expect("a front");
            (self.sink)(p.rec);
            self.front += 1;
        }
    }

    /// Records gauge samples for every sample instant up to `t` (state just before `t`).
    fn sample_until(&mut self, t: u64) {
        if !self.recording {
            return;
        }
        while self.next_sample <= t {
            self.stats.samples.push(GaugeSample {
                t_ns: self.next_sample - self.sample_origin,
                running: self.engine.running() as u32,
                waiting: self.engine.waiting() as u32,
                kv_usage: self.engine.kv_usage(),
            });
            self.next_sample += SAMPLE_INTERVAL_NS;
        }
    }
}

/// A freshly sent request's record; it stays `Cancelled` unless its last token arrives.
fn new_record(
    index: u64,
    scheduled_ns: u64,
    sent_ns: u64,
    input: u32,
    output: u32,
) -> RequestRecord {
    RequestRecord {
        index,
        turn: 0,
        scheduled_ns,
        sent_ns: Some(sent_ns),
        first_sent_ns: None,
        no_done: false,
        text: None,
        counted: None,
        chunks: Vec::with_capacity(output as usize),
        done_ns: None,
        input_tokens: None,
        output_tokens: None,
        requested_input_tokens: Some(input),
        requested_output_tokens: Some(output),
        finish_reason: None,
        outcome: failed(FailureReason::Cancelled, CANCELLED.to_owned()),
    }
}

const CANCELLED: &str = "still running when the repetition's grace period ended";

fn failed(reason: FailureReason, message: String) -> Outcome {
    Outcome::Failed {
        reason,
        http_status: None,
        message,
    }
}

/// Adds one token at `t_ns` (relative) to a record, and closes it on the last token.
fn deliver(rec: &mut RequestRecord, e: &Emission, t_ns: u64) {
    rec.chunks.push(Chunk {
        at_ns: t_ns,
        tokens: Some(1),
        reasoning: false,
    });
    rec.done_ns = Some(t_ns);
    if e.finished {
        rec.input_tokens = rec.requested_input_tokens;
        rec.output_tokens = Some(rec.chunks.len() as u32);
        rec.finish_reason = Some("length".to_owned());
        rec.outcome = Outcome::Ok;
    }
}
