//! What the simulator predicts for one request that runs alone, from the same step-time model
//! it runs on ([`Deployment::step_time`]): its TTFT is the API server's cost for it
//! ([`crate::hw::Efficiency::admission_seconds`]) plus the prefill steps (chunks of at most the
//! token budget), its TPOT the mean decode step over its contexts. Pure.

use crate::hw::{Bound, Deployment, PrefillWork};

/// Most decode contexts evaluated per request: longer outputs are sampled evenly (first and
/// last included), which is exact while the step time is linear in the context.
const MAX_DECODE_SAMPLES: u32 = 256;

/// A predicted latency and whether compute bound any of its steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Predicted {
    /// Seconds.
    pub seconds: f64,
    /// True when at least one step was compute-bound.
    pub compute_bound: bool,
}

/// TTFT of a `prompt`-token request alone on the engine: one prefill step per chunk of at most
/// `chunk_budget` tokens (vLLM's chunked prefill; the first token is sampled at the end of the
/// last chunk).
pub fn ttft(deployment: &Deployment, prompt: u32, chunk_budget: u32) -> Predicted {
    let budget = chunk_budget.max(1);
    let (mut done, mut compute_bound) = (0u32, false);
    let mut seconds = deployment.efficiency().admission_seconds(prompt);
    while done < prompt {
        let new_tokens = (prompt - done).min(budget);
        let work = PrefillWork {
            new_tokens,
            context_before: done,
        };
        let step = deployment.step_time(&[work], &[]);
        seconds += step.seconds;
        compute_bound |= step.bound == Bound::Compute;
        done += new_tokens;
    }
    Predicted {
        seconds,
        compute_bound,
    }
}

/// TPOT of a request alone on the engine: the mean of its decode steps, at contexts `prompt`
/// through `prompt + output − 2` (token 1 comes from the prefill). `None` below 2 outputs.
pub fn tpot(deployment: &Deployment, prompt: u32, output: u32) -> Option<Predicted> {
    let decodes = output.checked_sub(1).filter(|&d| d > 0)?;
    let samples = decodes.min(MAX_DECODE_SAMPLES);
    let (mut total, mut compute_bound) = (0.0, false);
    for i in 0..samples {
        let offset = if samples == 1 {
            0
        } else {
            (u64::from(i) * u64::from(decodes - 1) / u64::from(samples - 1)) as u32
        };
        let step = deployment.step_time(&[], &[prompt + offset]);
        total += step.seconds;
        compute_bound |= step.bound == Bound::Compute;
    }
    Some(Predicted {
        seconds: total / f64::from(samples),
        compute_bound,
    })
}
