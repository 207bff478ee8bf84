//! Batch mode's own figures (metrics.md, `request_throughput`; the seed documents' samples/s):
//! the client sends a whole batch at one scheduled instant and waits for all of it, so each
//! batch is one step of the deployment.
//!
//! * `step_time`: a batch's first send to its last token, averaged over the repetition's
//!   batches;
//! * `samples_per_s`: samples finished ok over the summed step times, = BS·N / step time,
//!   where BS·N is the batch the client sends (BS per replica × N replicas of the deployment;
//!   GPUs joined by tensor parallelism serve one replica). Unlike `request_throughput` it
//!   leaves out the client's time between batches.
//!
//! Pure: records in, numbers out.

use std::collections::BTreeMap;

use super::registry::{Metric, MetricKey};
use crate::record::RequestRecord;

/// One batch so far.
#[derive(Debug, Clone, Copy)]
struct Step {
    first_sent: u64,
    last_token: Option<u64>,
    ok: u64,
}

/// The batches of one repetition, one record at a time.
#[derive(Debug, Default)]
pub struct Steps {
    /// By scheduled instant: a batch's requests share it, and no two batches do.
    by_batch: BTreeMap<u64, Step>,
}

impl Steps {
    /// Adds one record (one that was never sent is not part of a step).
    pub fn push(&mut self, rec: &RequestRecord) {
        let Some(sent) = rec.sent_ns else { return };
        let step = self.by_batch.entry(rec.scheduled_ns).or_insert(Step {
            first_sent: sent,
            last_token: None,
            ok: 0,
        });
        step.first_sent = step.first_sent.min(sent);
        step.last_token = step.last_token.max(rec.done_ns);
        step.ok += u64::from(rec.outcome.is_ok());
    }

    /// Adds `step_time` and `samples_per_s` when at least one batch produced a token.
    pub fn finish(self, values: &mut BTreeMap<MetricKey, f64>) {
        let steps: Vec<(f64, u64)> = (self.by_batch.values())
            .filter_map(|s| {
                let ns = s.last_token?.checked_sub(s.first_sent)?;
                (ns > 0).then(|| (ns as f64 / 1e9, s.ok))
            })
            .collect();
        if steps.is_empty() {
            return;
        }
        let total: f64 = steps.iter().map(|(t, _)| t).sum();
        let samples: u64 = steps.iter().map(|(_, ok)| ok).sum();
        values.insert(Metric::StepTime.key(), total / steps.len() as f64);
        values.insert(Metric::SamplesPerS.key(), samples as f64 / total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Chunk;

    /// A request of the batch scheduled at `batch` ms, sent at `sent` ms, whose last token
    /// came at `done` ms.
    fn rec(batch: u64, sent: u64, done: Option<u64>, ok: bool) -> RequestRecord {
        let ms = 1_000_000;
        let mut r: RequestRecord = serde_json::from_value(serde_json::json!({
            "i": 0, "scheduled_ns": batch * ms, "sent_ns": sent * ms,
            "outcome": {"status": "ok"}
        }))
        .unwrap();
        r.done_ns = done.map(|d| d * ms);
        r.chunks = r
            .done_ns
            .map(|t| Chunk {
                at_ns: t,
                tokens: None,
                reasoning: false,
            })
            .into_iter()
            .collect();
        if !ok {
            r.outcome = serde_json::from_value(serde_json::json!({
                "status": "failed", "reason": "http", "message": "500"
            }))
            .unwrap();
        }
        r
    }

    #[test]
    fn steps_run_from_a_batchs_first_send_to_its_last_token() {
        let mut s = Steps::default();
        // Batch at 0 ms: 3 requests sent at 1–2 ms, the last token at 101 ms → 100 ms.
        for (sent, done) in [(1, 80), (1, 101), (2, 95)] {
            s.push(&rec(0, sent, Some(done), true));
        }
        // Batch at 200 ms: sent at 201 ms, one fails, the last token at 501 ms → 300 ms.
        s.push(&rec(200, 201, Some(501), true));
        s.push(&rec(200, 201, Some(300), true));
        s.push(&rec(200, 201, None, false));
        let mut v = BTreeMap::new();
        s.finish(&mut v);
        assert!(
            (v[&Metric::StepTime.key()] - 0.2).abs() < 1e-12,
            "mean of 0.1 and 0.3 s"
        );
        // 5 samples finished ok in 0.4 s of steps (the gap between batches is not counted).
        assert!((v[&Metric::SamplesPerS.key()] - 12.5).abs() < 1e-9);
    }

    #[test]
    fn no_batch_with_a_token_gives_no_values() {
        let mut s = Steps::default();
        s.push(&rec(0, 1, None, false));
        let mut v = BTreeMap::new();
        s.finish(&mut v);
        assert!(v.is_empty());
    }
}
