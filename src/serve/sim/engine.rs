//! The engine thread: owns the simulated [`Engine`] and paces it in real time.
//!
//! Handlers send [`Command`]s; the thread admits requests at once (answering
//! [`Event::Admitted`] or [`Event::Refused`] on the request's own channel), runs a step with
//! [`Engine::next_step`], waits for commands until the step's end instant, then hands each of
//! the step's tokens to its request's channel. Steps follow each other back to back in
//! simulated time (the next starts at the previous one's `end_ns`, whatever the thread's wake-up
//! latency was), so lateness never accumulates: a server that cannot keep up shows growing
//! emission lag instead of a slower simulated GPU.
//!
//! It is an OS thread rather than a tokio task because tokio's timer rounds deadlines up to
//! the next millisecond, which alone would spend half of a 2 ms lag budget; a thread waiting
//! on a channel with a timeout (and 1 ns timer slack on Linux) wakes within tens of
//! microseconds. Requests that arrive during a step join the next one, as in vLLM; ones that
//! arrive in the microseconds between a step's end and the thread computing the next step
//! join that step although it nominally started just before them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::stats::Stats;
use crate::sim::{AddError, Emission, Engine, StepCost};

/// The server's clock: nanoseconds since the server started.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    origin: Instant,
}

impl Clock {
    pub(super) fn start() -> Self {
        Clock {
            origin: Instant::now(),
        }
    }

    /// Now, in ns since the start.
    pub(super) fn now_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// How long ago the instant `ns` after the start was (0 if it is still ahead).
    pub(super) fn since(&self, ns: u64) -> u64 {
        self.now_ns().saturating_sub(ns)
    }
}

/// What handlers ask of the engine thread.
pub(super) enum Command {
    /// Queue a request; its events go to `events`.
    Submit {
        id: u64,
        input: u32,
        output: u32,
        events: UnboundedSender<Event>,
    },
    /// The client went away: drop the request wherever it is.
    Cancel(u64),
    /// Stop the thread; every open stream ends.
    Stop,
}

/// What the engine thread tells one request.
#[derive(Debug)]
pub(super) enum Event {
    /// The request is queued.
    Admitted,
    /// The engine refused the request.
    Refused(AddError),
    /// A token, emitted at simulated instant `at_ns`.
    Token {
        at_ns: u64,
        first: bool,
        finished: bool,
    },
}

/// A request the engine holds: where its tokens go, and its prompt length for the counters.
struct Stream {
    events: UnboundedSender<Event>,
    input: u32,
}

/// The engine thread's state.
pub(super) struct EngineLoop<C> {
    engine: Engine<C>,
    inbox: Receiver<Command>,
    clock: Clock,
    stats: Arc<Stats>,
    streams: HashMap<u64, Stream>,
    /// Tokens of the step in progress, handed over at `step_end`.
    pending: Vec<Emission>,
    /// Streams whose last token is being handed over, with whether it is also their first
    /// (kept to avoid an allocation per step).
    done: Vec<(Stream, bool)>,
    step_end: Option<u64>,
}

impl<C: StepCost> EngineLoop<C> {
    pub(super) fn new(
        engine: Engine<C>,
        inbox: Receiver<Command>,
        clock: Clock,
        stats: Arc<Stats>,
    ) -> Self {
        EngineLoop {
            engine,
            inbox,
            clock,
            stats,
            streams: HashMap::new(),
            pending: Vec::new(),
            done: Vec::new(),
            step_end: None,
        }
    }

    /// Runs until [`Command::Stop`] or until every sender is gone.
    pub(super) fn run(mut self) {
        set_fine_timer_slack();
        // `Some(end)` right after a step ended: the next step starts exactly there.
        let mut back_to_back: Option<u64> = None;
        loop {
            if self.step_end.is_none() {
                let now = back_to_back.take().unwrap_or_else(|| self.clock.now_ns());
                self.start_step(now);
            }
            let received = match self.step_end {
                None => self
                    .inbox
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected),
                Some(end) => {
                    let wait = end.saturating_sub(self.clock.now_ns());
                    self.inbox.recv_timeout(Duration::from_nanos(wait))
                }
            };
            match received {
                Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(command) => self.handle(command),
                Err(RecvTimeoutError::Timeout) => {
                    // recv_timeout never returns early; check anyway, as the deadline is the
                    // whole point.
                    let end = self.step_end.expect("a timeout needs a step in progress");
                    if self.clock.now_ns() >= end {
                        self.deliver(end);
                        back_to_back = Some(end);
                    }
                }
            }
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Submit {
                id,
                input,
                output,
                events,
            } => match self.engine.add(id, input, output) {
                Ok(()) => {
                    self.streams.insert(id, Stream { events, input });
                    // Gauges first, so a client that sees its reply start sees itself counted.
                    self.publish();
                    let _ = self.streams[&id].events.send(Event::Admitted);
                }
                Err(e) => {
                    let _ = events.send(Event::Refused(e));
                }
            },
            Command::Cancel(id) => {
                self.engine.cancel(id);
                if self.streams.remove(&id).is_some() {
                    self.stats.aborted.fetch_add(1, Relaxed);
                }
                self.publish();
            }
            Command::Stop => unreachable!("handled by the loop"),
        }
    }

    /// Runs the next step from `now_ns`, if there is work.
    fn start_step(&mut self, now_ns: u64) {
        let Some(step) = self.engine.next_step(now_ns) else {
            return;
        };
        self.pending.clear();
        self.pending.extend_from_slice(step.emitted);
        self.step_end = Some(step.end_ns);
        self.stats.steps.fetch_add(1, Relaxed);
        self.publish();
    }

    /// Hands the step's tokens to their streams. Counters and gauges are updated first, so a
    /// client that has read its last token finds itself counted as finished.
    fn deliver(&mut self, end: u64) {
        self.step_end = None;
        let (mut tokens, mut prompt) = (0u64, 0u64);
        for e in &self.pending {
            // A stream is missing when it was cancelled during the step.
            let Some(stream) = self.streams.get(&e.id) else {
                continue;
            };
            tokens += 1;
            if e.first {
                prompt += u64::from(stream.input);
            }
            if e.finished {
                let stream = self.streams.remove(&e.id).expect("just found");
                self.done.push((stream, e.first));
            }
        }
        self.stats.generation_tokens.fetch_add(tokens, Relaxed);
        self.stats.prompt_tokens.fetch_add(prompt, Relaxed);
        let finished = self.done.len() as u64;
        self.stats.finished.fetch_add(finished, Relaxed);
        self.publish();
        // A send fails only when the stream is gone; its Cancel is on its way.
        for e in self.pending.iter().filter(|e| !e.finished) {
            if let Some(stream) = self.streams.get(&e.id) {
                let _ = stream.events.send(Event::Token {
                    at_ns: end,
                    first: e.first,
                    finished: false,
                });
            }
        }
        for (stream, first) in self.done.drain(..) {
            let _ = stream.events.send(Event::Token {
                at_ns: end,
                first,
                finished: true,
            });
        }
    }

    /// Updates the gauges. Running = held requests not waiting, so a request counts as running
    /// until its last token has been handed over.
    fn publish(&self) {
        let waiting = self.engine.waiting() as u64;
        let held = self.streams.len() as u64;
        let s = &self.stats;
        s.waiting.store(waiting, Relaxed);
        s.running.store(held.saturating_sub(waiting), Relaxed);
        s.kv_usage.store(self.engine.kv_usage().to_bits(), Relaxed);
        s.preemptions.store(self.engine.preemptions(), Relaxed);
    }
}

/// Asks Linux for 1 ns timer slack on this thread (the default 50 µs would add to every
/// wake-up); elsewhere a no-op.
fn set_fine_timer_slack() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and only affects this thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
}
