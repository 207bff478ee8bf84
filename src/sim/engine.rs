//! The engine core: request state, the per-step scheduler (vLLM V1 order), and token emission.
//!
//! Each step: running sequences first, in admission order, each taking `min(remaining, budget)`
//! tokens (1 for a decode, a chunk for a partial prefill); a running sequence that needs KV
//! blocks when none are free preempts the most recently admitted one (recompute: its blocks
//! are freed, its generated tokens join its prompt, and it goes back to the front of the
//! queue). Then, if nothing was preempted, waiting requests are admitted FCFS while the token
//! budget, the sequence cap and the KV watermark allow. A sequence whose computed tokens catch
//! up with its known tokens samples one token at the step's end.
//!
//! The engine never reads a clock: the caller passes `now` and gets the step's end instant.

use std::collections::{HashMap, VecDeque};

use super::kv::KvCache;
use super::noise::Noise;
use super::{AddError, EngineParams, PrefillWork, SimError, StepCost};

/// A token produced at the end of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Emission {
    /// The request's id, as given to [`Engine::add`].
    pub id: u64,
    /// True for the request's first generated token.
    pub first: bool,
    /// True when this was the request's last token (it has left the engine).
    pub finished: bool,
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport<'a> {
    /// When the step started (ns): `max(now, end of the previous step)`.
    pub start_ns: u64,
    /// When the step ended and its tokens were emitted (ns).
    pub end_ns: u64,
    /// Sequences running during the step (scheduled or not, finishing ones included).
    pub running: u32,
    /// Sequences that computed tokens in the step.
    pub scheduled: u32,
    /// Prompt (or recomputed) tokens processed.
    pub prefill_tokens: u32,
    /// Sequences that decoded one token.
    pub decodes: u32,
    /// Sequences preempted while scheduling the step.
    pub preempted: u32,
    /// KV-cache usage during the step, in [0, 1].
    pub kv_usage: f64,
    /// Tokens emitted at `end_ns`, in scheduling order.
    pub emitted: &'a [Emission],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Waiting,
    Running,
    Free,
}

/// One request inside the engine. `known` = prompt + generated tokens; `computed` of them are
/// in the KV cache. A decode computes the last sampled token (`known − computed == 1`).
#[derive(Debug, Clone)]
struct Seq {
    id: u64,
    max_out: u32,
    known: u32,
    computed: u32,
    generated: u32,
    blocks: u32,
    place: Place,
}

/// The continuous-batching engine. `C` is the step-cost model.
#[derive(Debug)]
pub struct Engine<C> {
    params: EngineParams,
    cost: C,
    noise: Noise,
    kv: KvCache,
    seqs: Vec<Seq>,
    free_slots: Vec<u32>,
    slot_of: HashMap<u64, u32>,
    running: Vec<u32>,
    waiting: VecDeque<u32>,
    batch: Vec<(u32, u32)>,
    prefill: Vec<PrefillWork>,
    decode: Vec<u32>,
    emitted: Vec<Emission>,
    busy_until: u64,
    steps: u64,
    preemptions: u64,
}

impl<C: StepCost> Engine<C> {
    /// An empty engine; `seed` pins the step-time noise.
    pub fn new(params: EngineParams, cost: C, seed: u64) -> Result<Self, SimError> {
        params.validate()?;
        Ok(Engine {
            params,
            cost,
            noise: Noise::new(params.noise_cv, seed),
            kv: KvCache::new(
                params.kv_capacity_tokens,
                params.block_size,
                params.watermark,
            ),
            seqs: Vec::new(),
            free_slots: Vec::new(),
            slot_of: HashMap::new(),
            running: Vec::new(),
            waiting: VecDeque::new(),
            batch: Vec::new(),
            prefill: Vec::new(),
            decode: Vec::new(),
            emitted: Vec::new(),
            busy_until: 0,
            steps: 0,
            preemptions: 0,
        })
    }

    /// Queues a request (FCFS) with its prompt length and the tokens it will generate. Refuses
    /// one that could never fit in the KV cache, even alone.
    pub fn add(&mut self, id: u64, input_tokens: u32, output_tokens: u32) -> Result<(), AddError> {
        if input_tokens == 0 || output_tokens == 0 {
            return Err(AddError::Empty);
        }
        // The last token is sampled but never written to the cache.
        let needed = u64::from(input_tokens) + u64::from(output_tokens) - 1;
        if !self.kv.can_ever_hold(needed) || needed >= u64::from(u32::MAX) {
            let capacity_tokens = self.kv.capacity_tokens();
            return Err(AddError::Rejected {
                needed_tokens: needed,
                capacity_tokens,
            });
        }
        if self.slot_of.contains_key(&id) {
            return Err(AddError::DuplicateId(id));
        }
        let seq = Seq {
            id,
            max_out: output_tokens,
            known: input_tokens,
            computed: 0,
            generated: 0,
            blocks: 0,
            place: Place::Waiting,
        };
        let slot = match self.free_slots.pop() {
            Some(s) => {
                self.seqs[s as usize] = seq;
                s
            }
            None => {
                self.seqs.push(seq);
                (self.seqs.len() - 1) as u32
            }
        };
        self.slot_of.insert(id, slot);
        self.waiting.push_back(slot);
        Ok(())
    }

    /// Removes a request wherever it is (a client went away); false if it is not in the engine.
    /// Linear in the queue length.
    pub fn cancel(&mut self, id: u64) -> bool {
        let Some(slot) = self.slot_of.get(&id).copied() else {
            return false;
        };
        match self.seqs[slot as usize].place {
            Place::Waiting => self.waiting.retain(|&s| s != slot),
            Place::Running => self.running.retain(|&s| s != slot),
            Place::Free => unreachable!("indexed sequences are never free"),
        }
        self.retire(slot);
        true
    }

    /// Runs one step starting at `max(now_ns, end of the previous step)`; `None` when the
    /// engine has nothing to do. The step's effects are applied at once; its tokens belong to
    /// `end_ns`, and requests added before then wait for the next step.
    pub fn next_step(&mut self, now_ns: u64) -> Option<StepReport<'_>> {
        if self.is_idle() {
            return None;
        }
        let start_ns = now_ns.max(self.busy_until);
        let preempted = self.schedule();
        let running = self.running.len() as u32;
        let kv_usage = self.kv.usage();
        let (prefill_tokens, decodes) = self.fill_work();
        let seconds = self.cost.step_seconds(&self.prefill, &self.decode) * self.noise.factor();
        debug_assert!(seconds.is_finite() && seconds >= 0.0, "step cost {seconds}");
        // Saturating float-to-int cast; a step takes at least 1 ns so time always moves.
        let dur_ns = ((seconds * 1e9).round() as u64).max(1);
        let end_ns = start_ns.saturating_add(dur_ns);
        self.busy_until = end_ns;
        self.steps += 1;
        self.emit();
        Some(StepReport {
            start_ns,
            end_ns,
            running,
            scheduled: self.batch.len() as u32,
            prefill_tokens,
            decodes,
            preempted,
            kv_usage,
            emitted: &self.emitted,
        })
    }

    /// Fills `batch` for this step; returns how many sequences were preempted.
    fn schedule(&mut self) -> u32 {
        self.batch.clear();
        let mut budget = self.params.max_num_batched_tokens;
        let mut preempted = 0;
        let mut i = 0;
        'running: while i < self.running.len() && budget > 0 {
            let slot = self.running[i];
            let s = &self.seqs[slot as usize];
            let n = (s.known - s.computed).min(budget);
            let target = u64::from(s.computed + n);
            while !self.kv.grow(&mut self.seqs[slot as usize].blocks, target) {
                let victim = self.running.pop().expect("the current sequence is running");
                self.preempt(victim);
                preempted += 1;
                if victim == slot {
                    break 'running;
                }
            }
            self.batch.push((slot, n));
            budget -= n;
            i += 1;
        }
        if preempted == 0 {
            self.admit(budget);
        }
        preempted
    }

    /// Admits waiting requests FCFS into the step while budget, cap and watermark allow.
    fn admit(&mut self, mut budget: u32) {
        let cap = self.params.max_num_seqs as usize;
        while budget > 0 && self.running.len() < cap {
            let Some(&slot) = self.waiting.front() else {
                break;
            };
            let s = &mut self.seqs[slot as usize];
            let n = (s.known - s.computed).min(budget);
            if !self.kv.admit(&mut s.blocks, u64::from(s.computed + n)) {
                break;
            }
            s.place = Place::Running;
            self.waiting.pop_front();
            self.running.push(slot);
            self.batch.push((slot, n));
            budget -= n;
        }
    }

    /// Recompute preemption: free the blocks, forget the computed tokens, requeue at the front.
    fn preempt(&mut self, slot: u32) {
        let s = &mut self.seqs[slot as usize];
        self.kv.release(&mut s.blocks);
        s.computed = 0;
        s.place = Place::Waiting;
        self.waiting.push_front(slot);
        self.preemptions += 1;
    }

    /// Splits the batch into prefill work and decode contexts for the cost model.
    fn fill_work(&mut self) -> (u32, u32) {
        self.prefill.clear();
        self.decode.clear();
        let mut prefill_tokens = 0;
        for &(slot, n) in &self.batch {
            let s = &self.seqs[slot as usize];
            if s.generated > 0 && s.known - s.computed == 1 {
                self.decode.push(s.computed);
            } else {
                self.prefill.push(PrefillWork {
                    new_tokens: n,
                    context_before: s.computed,
                });
                prefill_tokens += n;
            }
        }
        (prefill_tokens, self.decode.len() as u32)
    }

    /// Advances every scheduled sequence, samples tokens, and retires finished sequences.
    fn emit(&mut self) {
        self.emitted.clear();
        let mut any_finished = false;
        for &(slot, n) in &self.batch {
            let s = &mut self.seqs[slot as usize];
            s.computed += n;
            if s.computed < s.known {
                continue;
            }
            let first = s.generated == 0;
            s.generated += 1;
            s.known += 1;
            let finished = s.generated == s.max_out;
            any_finished |= finished;
            self.emitted.push(Emission {
                id: s.id,
                first,
                finished,
            });
        }
        if any_finished {
            let seqs = &self.seqs;
            self.running.retain(|&slot| {
                let s = &seqs[slot as usize];
                s.generated < s.max_out
            });
            for i in 0..self.batch.len() {
                let slot = self.batch[i].0;
                let s = &self.seqs[slot as usize];
                if s.place == Place::Running && s.generated == s.max_out {
                    self.retire(slot);
                }
            }
        }
    }

    /// Frees a sequence's blocks and slot (already removed from the queues).
    fn retire(&mut self, slot: u32) {
        let s = &mut self.seqs[slot as usize];
        self.kv.release(&mut s.blocks);
        s.place = Place::Free;
        self.slot_of.remove(&s.id);
        self.free_slots.push(slot);
    }

    /// True when no request is running or waiting.
    pub fn is_idle(&self) -> bool {
        self.running.is_empty() && self.waiting.is_empty()
    }

    /// Requests admitted and not finished (`vllm:num_requests_running`).
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Requests queued, preempted ones included (`vllm:num_requests_waiting`).
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Share of KV blocks in use, in [0, 1] (`vllm:kv_cache_usage_perc`).
    pub fn kv_usage(&self) -> f64 {
        self.kv.usage()
    }

    /// Preemptions so far (`vllm:num_preemptions_total`).
    pub fn preemptions(&self) -> u64 {
        self.preemptions
    }

    /// Steps run so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// End of the last step (ns); the next step cannot start before it.
    pub fn busy_until(&self) -> u64 {
        self.busy_until
    }

    /// Tokens the KV cache holds (whole blocks).
    pub fn kv_capacity_tokens(&self) -> u64 {
        self.kv.capacity_tokens()
    }

    /// The settings the engine runs with.
    pub fn params(&self) -> &EngineParams {
        &self.params
    }

    /// The step-cost model.
    pub fn cost(&self) -> &C {
        &self.cost
    }
}
