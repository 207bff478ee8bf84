//! Step-cost models for the simulated engine: the analytical hardware model
//! ([`Deployment::step_time`]) and a linear model with explicit coefficients (for tests and
//! quick what-ifs).

use super::{PrefillWork, StepCost};
use crate::hw::Deployment;

/// The roofline step time of the deployment (model × GPU × TP × efficiency preset), and its
/// preset's API-server cost per request.
impl StepCost for Deployment {
    fn step_seconds(&self, prefill: &[PrefillWork], decode_contexts: &[u32]) -> f64 {
        self.step_time(prefill, decode_contexts).seconds
    }

    fn admission_seconds(&self, prompt_tokens: u32) -> f64 {
        self.efficiency().admission_seconds(prompt_tokens)
    }
}

/// Step time = `per_step_s` + `per_token_s` × tokens computed + `per_context_token_s` × KV
/// tokens attended, where tokens computed = Σ prefill `new_tokens` + number of decodes, and
/// KV tokens attended = Σ decode contexts + Σ prefill (`context_before` + `new_tokens`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearCost {
    /// Fixed seconds per step (launch and scheduling overhead, weight reads at small batch).
    pub per_step_s: f64,
    /// Seconds per token computed.
    pub per_token_s: f64,
    /// Seconds per KV-cache token attended.
    pub per_context_token_s: f64,
}

impl StepCost for LinearCost {
    fn step_seconds(&self, prefill: &[PrefillWork], decode_contexts: &[u32]) -> f64 {
        let mut tokens = decode_contexts.len() as u64;
        let mut context: u64 = decode_contexts.iter().map(|&c| u64::from(c)).sum();
        for p in prefill {
            tokens += u64::from(p.new_tokens);
            context += u64::from(p.context_before) + u64::from(p.new_tokens);
        }
        self.per_step_s
            + self.per_token_s * tokens as f64
            + self.per_context_token_s * context as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_cost_adds_its_three_terms() {
        let c = LinearCost {
            per_step_s: 1.0,
            per_token_s: 0.1,
            per_context_token_s: 0.001,
        };
        let prefill = [PrefillWork {
            new_tokens: 10,
            context_before: 5,
        }];
        // tokens = 10 + 2 decodes = 12; context = (5 + 10) + 100 + 200 = 315.
        let t = c.step_seconds(&prefill, &[100, 200]);
        assert!((t - (1.0 + 1.2 + 0.315)).abs() < 1e-12, "{t}");
        assert_eq!(c.step_seconds(&[], &[]), 1.0);
    }
}
