//! Engine-core tests with hand-computed answers, and helpers shared with `tests_driver`.

use std::cell::RefCell;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};

use super::*;
use crate::workload::work::{Arrivals, Prompt, RepetitionWork, RequestSource, RequestSpec};

/// 1 ms per step, nothing else: step counts read directly as milliseconds.
pub(super) const FLAT: LinearCost = LinearCost {
    per_step_s: 1e-3,
    per_token_s: 0.0,
    per_context_token_s: 0.0,
};

/// Params without noise or watermark.
pub(super) fn params(seqs: u32, budget: u32, kv_tokens: u64) -> EngineParams {
    EngineParams {
        noise_cv: 0.0,
        watermark: 0.0,
        ..EngineParams::new(seqs, budget, kv_tokens)
    }
}

/// Every request has the same lengths.
pub(super) struct Fixed(pub u32, pub u32);

impl RequestSource for Fixed {
    fn lengths(&self, _i: u64) -> (u32, u32) {
        (self.0, self.1)
    }
    fn request(&self, i: u64) -> RequestSpec {
        let (input_tokens, max_tokens) = self.lengths(i);
        RequestSpec {
            prompt: Prompt::Text("x".repeat(input_tokens as usize)),
            input_tokens,
            max_tokens,
        }
    }
}

/// Request `i` has the lengths `self.0[i]`.
pub(super) struct Listed(pub Vec<(u32, u32)>);

impl RequestSource for Listed {
    fn lengths(&self, i: u64) -> (u32, u32) {
        self.0[i as usize]
    }
    fn request(&self, i: u64) -> RequestSpec {
        Fixed(self.0[i as usize].0, self.0[i as usize].1).request(i)
    }
}

/// Poisson offsets (ns) at `rate` per second, first one 0.
pub(super) fn poisson(rate: f64, n: usize, seed: u64) -> Vec<u64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let exp = Exp::new(rate).unwrap();
    let mut t = 0.0;
    (0..n)
        .map(|i| {
            if i > 0 {
                t += exp.sample(&mut rng);
            }
            (t * 1e9) as u64
        })
        .collect()
}

/// Work with the given arrivals and source, no warm-up, no duration.
pub(super) fn work(
    arrivals: Arrivals,
    source: impl RequestSource + 'static,
    requests: Option<u64>,
) -> RepetitionWork {
    let source: Arc<dyn RequestSource> = Arc::new(source);
    RepetitionWork {
        warmup: 0,
        warmup_source: source.clone(),
        source,
        requests,
        duration: None,
        grace: Duration::ZERO,
        arrivals,
        share: None,
    }
}

pub(super) fn open(offsets_ns: Vec<u64>) -> Arrivals {
    Arrivals::Open {
        offsets_ns,
        max_concurrency: None,
    }
}

pub(super) fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// A cost model that remembers what each step asked for.
#[derive(Default)]
struct Spy {
    calls: RefCell<Vec<(Vec<PrefillWork>, Vec<u32>)>>,
}

impl StepCost for Spy {
    fn step_seconds(&self, prefill: &[PrefillWork], decode_contexts: &[u32]) -> f64 {
        self.calls
            .borrow_mut()
            .push((prefill.to_vec(), decode_contexts.to_vec()));
        1e-3
    }
}

fn pw(new_tokens: u32, context_before: u32) -> PrefillWork {
    PrefillWork {
        new_tokens,
        context_before,
    }
}

/// Runs the engine until idle; returns (end_ns, emissions) per step.
fn drain<C: StepCost>(e: &mut Engine<C>) -> Vec<(u64, Vec<Emission>)> {
    let mut out = Vec::new();
    let mut now = 0;
    while let Some(r) = e.next_step(now) {
        now = r.end_ns;
        out.push((r.end_ns, r.emitted.to_vec()));
    }
    out
}

#[test]
fn one_request_prefills_then_decodes_one_token_per_step() {
    let spy = Spy::default();
    let mut e = Engine::new(params(8, 8192, 10_000), &spy, 0).unwrap();
    e.add(7, 100, 3).unwrap();
    let steps = drain(&mut e);
    let em = |first, finished| {
        vec![Emission {
            id: 7,
            first,
            finished,
        }]
    };
    assert_eq!(
        steps,
        vec![
            (1_000_000, em(true, false)),
            (2_000_000, em(false, false)),
            (3_000_000, em(false, true))
        ]
    );
    // Decode contexts count the KV before the step: the 100 prompt tokens, then + 1.
    let calls = spy.calls.borrow();
    assert_eq!(
        *calls,
        vec![
            (vec![pw(100, 0)], vec![]),
            (vec![], vec![100]),
            (vec![], vec![101])
        ]
    );
    assert!(e.is_idle());
    assert_eq!(e.kv_usage(), 0.0);
}

#[test]
fn long_prompts_are_prefilled_in_budget_sized_chunks() {
    let spy = Spy::default();
    let mut e = Engine::new(params(8, 64, 10_000), &spy, 0).unwrap();
    e.add(1, 150, 1).unwrap();
    let steps = drain(&mut e);
    assert_eq!(steps.len(), 3);
    assert!(
        steps[..2].iter().all(|(_, em)| em.is_empty()),
        "no token before the prompt is done"
    );
    assert_eq!(
        steps[2].1,
        vec![Emission {
            id: 1,
            first: true,
            finished: true
        }]
    );
    let prefills: Vec<_> = spy.calls.borrow().iter().map(|c| c.0.clone()).collect();
    assert_eq!(
        prefills,
        vec![vec![pw(64, 0)], vec![pw(64, 64)], vec![pw(22, 128)]]
    );
}

#[test]
fn decodes_go_first_and_a_new_prompt_takes_the_rest_of_the_budget() {
    let spy = Spy::default();
    let mut e = Engine::new(params(8, 50, 10_000), &spy, 0).unwrap();
    e.add(1, 10, 5).unwrap();
    let r = e.next_step(0).unwrap();
    assert_eq!((r.prefill_tokens, r.decodes), (10, 0));
    e.add(2, 100, 5).unwrap();
    let r = e.next_step(0).unwrap();
    assert_eq!(
        (r.start_ns, r.end_ns),
        (1_000_000, 2_000_000),
        "a step waits for the previous one"
    );
    assert_eq!(
        (r.prefill_tokens, r.decodes, r.scheduled, r.running),
        (49, 1, 2, 2)
    );
    assert_eq!(spy.calls.borrow()[1], (vec![pw(49, 0)], vec![10]));
}

#[test]
fn max_num_seqs_caps_the_running_set() {
    let mut e = Engine::new(params(2, 8192, 10_000), FLAT, 0).unwrap();
    for id in 0..3 {
        e.add(id, 10, 4).unwrap();
    }
    let r = e.next_step(0).unwrap();
    assert_eq!((r.running, r.scheduled), (2, 2));
    assert_eq!((e.running(), e.waiting()), (2, 1));
    let steps = drain(&mut e);
    // Requests 0 and 1 finish at step 4; request 2 is admitted at step 5 and ends at step 8.
    let last = steps.last().unwrap();
    assert_eq!(
        last,
        &(
            8_000_000,
            vec![Emission {
                id: 2,
                first: false,
                finished: true
            }]
        )
    );
}

#[test]
fn kv_exhaustion_preempts_the_newest_request_which_recomputes_later() {
    // 5 blocks of 16 tokens; each request grows to 16 + 40 − 1 = 55 tokens = 4 blocks.
    let spy = Spy::default();
    let mut e = Engine::new(params(8, 8192, 80), &spy, 0).unwrap();
    e.add(1, 16, 40).unwrap();
    e.add(2, 16, 40).unwrap();
    let steps = drain(&mut e);
    assert!(
        e.preemptions() >= 1,
        "two 4-block sequences cannot share 5 blocks"
    );
    let count = |id, pred: fn(&Emission) -> bool| {
        steps
            .iter()
            .flat_map(|s| &s.1)
            .filter(|x| x.id == id && pred(x))
            .count()
    };
    for id in [1, 2] {
        assert_eq!(
            count(id, |_| true),
            40,
            "every token is emitted exactly once"
        );
        assert_eq!(count(id, |x| x.first), 1);
        assert_eq!(count(id, |x| x.finished), 1);
    }
    // Request 1 (oldest) is never preempted: it finishes after 40 steps.
    let done1 = steps
        .iter()
        .position(|s| s.1.iter().any(|x| x.id == 1 && x.finished));
    assert_eq!(done1, Some(39));
    // The victim recomputes its prompt plus the tokens it had generated, in one prefill.
    let recompute = spy
        .calls
        .borrow()
        .iter()
        .flat_map(|c| c.0.clone())
        .find(|p| p.new_tokens > 16);
    assert!(
        recompute.is_some_and(|p| p.context_before == 0),
        "{recompute:?}"
    );
    assert_eq!(e.kv_usage(), 0.0);
}

#[test]
fn requests_that_can_never_fit_are_rejected() {
    let mut e = Engine::new(params(8, 8192, 160), FLAT, 0).unwrap();
    assert_eq!(
        e.add(1, 150, 20),
        Err(AddError::Rejected {
            needed_tokens: 169,
            capacity_tokens: 160
        })
    );
    assert_eq!(e.add(2, 0, 5), Err(AddError::Empty));
    assert_eq!(e.add(3, 150, 11), Ok(())); // 160 tokens at its longest: fits exactly
    assert_eq!(e.add(3, 1, 1), Err(AddError::DuplicateId(3)));
    assert_eq!(drain(&mut e).len(), 11);
}

#[test]
fn cancel_removes_waiting_and_running_requests_and_frees_their_blocks() {
    let mut e = Engine::new(params(1, 8192, 1600), FLAT, 0).unwrap();
    e.add(1, 100, 10).unwrap();
    e.add(2, 100, 10).unwrap();
    e.next_step(0).unwrap();
    assert!(e.kv_usage() > 0.0);
    assert!(e.cancel(2) && e.cancel(1));
    assert!(!e.cancel(1));
    assert!(e.is_idle());
    assert_eq!(e.kv_usage(), 0.0);
    assert!(e.next_step(0).is_none());
    e.add(1, 100, 1).unwrap(); // the id is free again
}

#[test]
fn invalid_params_are_refused() {
    let bad = |p: EngineParams| Engine::new(p, FLAT, 0).err();
    assert_eq!(
        bad(params(0, 1, 1)),
        Some(SimError::Zero {
            name: "max_num_seqs"
        })
    );
    assert_eq!(
        bad(EngineParams {
            block_size: 0,
            ..params(1, 1, 1)
        }),
        Some(SimError::Zero { name: "block_size" })
    );
    assert_eq!(
        bad(EngineParams {
            noise_cv: -0.1,
            ..params(1, 1, 1)
        }),
        Some(SimError::NoiseCv(-0.1))
    );
    assert_eq!(
        bad(EngineParams {
            watermark: 1.0,
            ..params(1, 1, 1)
        }),
        Some(SimError::Watermark(1.0))
    );
}

#[test]
fn noise_scales_step_times_around_the_model() {
    let p = EngineParams {
        noise_cv: 0.2,
        ..params(1, 8192, 1 << 20)
    };
    let mut e = Engine::new(p, FLAT, 5).unwrap();
    e.add(1, 1, 2001).unwrap();
    let steps = drain(&mut e);
    let mean_ms = steps.last().unwrap().0 as f64 / 1e6 / steps.len() as f64;
    // Mean factor 1 within 4 standard errors (0.2 / √2001 ≈ 0.0045).
    assert!((mean_ms - 1.0).abs() < 0.018, "{mean_ms}");
    let gaps: Vec<u64> = steps.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(gaps.iter().any(|&g| g != gaps[0]), "steps vary");
}
