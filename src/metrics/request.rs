//! Per-request metrics derived from a raw record (metrics.md, "Per request"). Pure.
//!
//! Values are seconds (latencies) or tokens per second (`tps`, `decode_tps`) as `f64`, because
//! they feed straight into `stats`; names follow the registry (`registry.rs`).

use crate::record::{Chunk, RequestRecord};

const NS_PER_S: f64 = 1e9;

/// The derived metrics of one successful request. Undefined metrics are `None` (e.g. `tpot`
/// with fewer than 2 output tokens).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RequestMetrics {
    /// First content chunk − sent.
    pub ttft: Option<f64>,
    /// First content chunk − scheduled.
    pub ttft_sched: Option<f64>,
    /// First answer (non-reasoning) chunk − sent.
    pub ttfo: Option<f64>,
    /// done − sent.
    pub e2e: Option<f64>,
    /// done − scheduled.
    pub e2e_sched: Option<f64>,
    /// sent − scheduled.
    pub queue_delay: Option<f64>,
    /// (e2e − ttft) / (output_tokens − 1).
    pub tpot: Option<f64>,
    /// e2e / output_tokens.
    pub ntpot: Option<f64>,
    /// output_tokens / e2e.
    pub tps: Option<f64>,
    /// 1 / tpot.
    pub decode_tps: Option<f64>,
    /// Generated tokens used for the above: the server's usage, else the chunk count.
    pub output_tokens: u32,
    /// True when `output_tokens` came from counting chunks (the server sent no usage).
    pub output_tokens_estimated: bool,
}

fn secs(ns: u64) -> f64 {
    ns as f64 / NS_PER_S
}

fn diff(later: Option<u64>, earlier: Option<u64>) -> Option<f64> {
    Some(secs(later?.checked_sub(earlier?)?))
}

/// Prompt tokens of a record: the server's usage, else its `/tokenize` count made after the
/// repetition, else the client's own count (exact with a tokenizer, else words).
pub fn prompt_tokens(rec: &RequestRecord) -> Option<u32> {
    (rec.input_tokens)
        .or(rec.counted.and_then(|c| c.prompt))
        .or(rec.requested_input_tokens)
}

/// Generated tokens of a record, and whether the count is an estimate: usage if the server
/// sent it, else exp's count of the generated text (`[target] tokenizer` or the server's
/// `/tokenize`), else the sum of per-chunk counts where known, else the number of content
/// chunks (both estimates).
pub fn output_tokens(rec: &RequestRecord) -> (u32, bool) {
    if let Some(n) = rec.output_tokens {
        return (n, false);
    }
    if let Some(c) = rec.counted {
        return (c.tokens, false);
    }
    let counted: u32 = rec.chunks.iter().map(|c| c.tokens.unwrap_or(1)).sum();
    (counted, true)
}

/// Derives the per-request metrics of one record (successful or not: a failed request still
/// has a `queue_delay`).
pub fn derive(rec: &RequestRecord) -> RequestMetrics {
    let first = rec.chunks.first().map(|c| c.at_ns);
    let first_answer = rec.chunks.iter().find(|c| !c.reasoning).map(|c| c.at_ns);
    let sched = Some(rec.scheduled_ns);
    let (out, estimated) = output_tokens(rec);
    let ttft = diff(first, rec.sent_ns);
    let e2e = diff(rec.done_ns, rec.sent_ns);
    // Decode time per token after the first chunk, whatever that chunk carried.
    let after_first = f64::from(out) - first_chunk_tokens(rec, out);
    let tpot = match (e2e, ttft) {
        (Some(e), Some(t)) if after_first >= 1.0 => Some((e - t) / after_first),
        _ => None,
    };
    let positive = |x: f64| (x > 0.0).then_some(x);
    RequestMetrics {
        ttft,
        ttft_sched: diff(first, sched),
        ttfo: diff(first_answer, rec.sent_ns),
        e2e,
        e2e_sched: diff(rec.done_ns, sched),
        queue_delay: diff(rec.sent_ns, sched),
        tpot,
        ntpot: e2e.filter(|_| out > 0).map(|e| e / f64::from(out)),
        tps: e2e.and_then(positive).map(|e| f64::from(out) / e),
        decode_tps: tpot.and_then(positive).map(|t| 1.0 / t),
        output_tokens: out,
        output_tokens_estimated: estimated,
    }
}

/// Tokens a chunk carried: its own count when the server or engine gave one, else the
/// request's mean over its chunks (`output_tokens` / chunks, which is 1 for a token-by-token
/// stream and exact for evenly chunked ones).
fn chunk_tokens(chunk: &Chunk, mean: f64) -> f64 {
    chunk.tokens.map_or(mean, f64::from)
}

/// Mean tokens per content chunk of a request that generated `out` tokens (at least 1).
fn mean_tokens_per_chunk(rec: &RequestRecord, out: u32) -> f64 {
    match rec.chunks.len() {
        0 => 1.0,
        n => (f64::from(out) / n as f64).max(1.0),
    }
}

/// Tokens the first content chunk carried ([`chunk_tokens`]).
fn first_chunk_tokens(rec: &RequestRecord, out: u32) -> f64 {
    let mean = mean_tokens_per_chunk(rec, out);
    rec.chunks.first().map_or(1.0, |c| chunk_tokens(c, mean))
}

/// Gaps between consecutive content chunks of a record, in seconds (`chunk_gap`: what a
/// reader sees, one value per gap).
pub fn chunk_gaps(chunks: &[Chunk]) -> impl Iterator<Item = f64> + '_ {
    chunks
        .windows(2)
        .map(|w| secs(w[1].at_ns.saturating_sub(w[0].at_ns)))
}

/// Per-token inter-token latencies of a record, in seconds (`itl`): each gap between
/// consecutive content chunks divided by the tokens of the later chunk, once per token, so
/// their mean is the request's `tpot`. A chunk's tokens are its own count, else the request's
/// mean per chunk (then counted as many times as that rounds to).
pub fn itl_values(rec: &RequestRecord) -> impl Iterator<Item = f64> + '_ {
    let mean = mean_tokens_per_chunk(rec, output_tokens(rec).0);
    rec.chunks.windows(2).flat_map(move |w| {
        let tokens = chunk_tokens(&w[1], mean).max(1.0);
        let per_token = secs(w[1].at_ns.saturating_sub(w[0].at_ns)) / tokens;
        std::iter::repeat_n(per_token, tokens.round() as usize)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Outcome;

    fn rec(chunk_ns: &[u64], output_tokens: Option<u32>) -> RequestRecord {
        RequestRecord {
            index: 0,
            turn: 0,
            scheduled_ns: 1_000_000,
            sent_ns: Some(3_000_000),
            first_sent_ns: None,
            no_done: false,
            text: None,
            counted: None,
            chunks: chunk_ns
                .iter()
                .map(|&t| Chunk {
                    at_ns: t,
                    tokens: None,
                    reasoning: false,
                })
                .collect(),
            done_ns: chunk_ns.last().copied(),
            input_tokens: Some(10),
            output_tokens,
            requested_input_tokens: Some(10),
            requested_output_tokens: Some(5),
            finish_reason: None,
            outcome: Outcome::Ok,
        }
    }

    #[test]
    fn known_timeline_gives_known_metrics() {
        // sent at 3 ms, first token at 53 ms, then 4 more tokens every 5 ms: done at 73 ms.
        let r = rec(
            &[53_000_000, 58_000_000, 63_000_000, 68_000_000, 73_000_000],
            Some(5),
        );
        let m = derive(&r);
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-12;
        assert!(close(m.ttft, 0.050));
        assert!(close(m.ttft_sched, 0.052));
        assert!(close(m.queue_delay, 0.002));
        assert!(close(m.e2e, 0.070));
        assert!(close(m.e2e_sched, 0.072));
        assert!(close(m.tpot, 0.005));
        assert!(close(m.ntpot, 0.014));
        assert!(close(m.tps, 5.0 / 0.070));
        assert!(close(m.decode_tps, 200.0));
        let gaps: Vec<f64> = chunk_gaps(&r.chunks).collect();
        assert_eq!(gaps.len(), 4);
        assert!(gaps.iter().all(|g| (g - 0.005).abs() < 1e-12));
        let itl: Vec<f64> = itl_values(&r).collect();
        assert_eq!(itl, gaps, "token by token, itl is the chunk gap");
    }

    /// Issue 12's measured case: 64 tokens in chunks of 4, 10 ms per token, so a chunk every
    /// 40 ms. TPOT is (e2e − ttft) / (64 − 4) = 600 ms / 60 = 10 ms, not 600 / 63 = 9.52 ms;
    /// per-token ITL is 10 ms, 60 times; the chunk gap is 40 ms, 15 times.
    #[test]
    fn several_tokens_per_chunk_give_exact_tpot_and_per_token_itl() {
        let chunk_ns: Vec<u64> = (0..16).map(|i| 53_000_000 + i * 40_000_000).collect();
        let counted = {
            let mut r = rec(&chunk_ns, Some(64));
            r.chunks.iter_mut().for_each(|c| c.tokens = Some(4));
            r
        };
        // The same stream without per-chunk counts: usage / chunks = 4 per chunk.
        let uncounted = rec(&chunk_ns, Some(64));
        for r in [&counted, &uncounted] {
            let m = derive(r);
            assert!((m.tpot.unwrap() - 0.010).abs() < 1e-12, "{:?}", m.tpot);
            let itl: Vec<f64> = itl_values(r).collect();
            assert_eq!(itl.len(), 60);
            assert!(itl.iter().all(|x| (x - 0.010).abs() < 1e-12));
            let mean = itl.iter().sum::<f64>() / itl.len() as f64;
            assert!((mean - m.tpot.unwrap()).abs() < 1e-12, "mean itl = tpot");
            let gaps: Vec<f64> = chunk_gaps(&r.chunks).collect();
            assert_eq!(gaps.len(), 15);
            assert!(gaps.iter().all(|g| (g - 0.040).abs() < 1e-12));
        }
        // Uneven chunks with counts: a first chunk of 1, then 3, 2 and 6 tokens.
        let mut uneven = rec(
            &[50_000_000, 80_000_000, 100_000_000, 160_000_000],
            Some(12),
        );
        for (c, n) in uneven.chunks.iter_mut().zip([1, 3, 2, 6]) {
            c.tokens = Some(n);
        }
        let m = derive(&uneven);
        assert!((m.tpot.unwrap() - 0.110 / 11.0).abs() < 1e-12);
        let itl: Vec<f64> = itl_values(&uneven).collect();
        assert_eq!(itl.len(), 11);
        assert!((itl[0] - 0.010).abs() < 1e-12 && (itl[10] - 0.010).abs() < 1e-12);
    }

    #[test]
    fn tpot_is_undefined_below_two_tokens_and_usage_wins_over_chunks() {
        let one = derive(&rec(&[53_000_000], Some(1)));
        assert_eq!(one.tpot, None);
        assert_eq!(one.decode_tps, None);
        // Two chunks carrying 6 tokens per usage: tpot uses usage, not the chunk count.
        // Two chunks carrying 6 tokens per usage, 3 each on average: the first chunk's 3 are
        // not decode time, so tpot = 30 ms / 3.
        let m = derive(&rec(&[50_000_000, 80_000_000], Some(6)));
        assert!((m.tpot.unwrap() - 0.030 / 3.0).abs() < 1e-12);
        let est = derive(&rec(&[50_000_000, 80_000_000], None));
        assert_eq!((est.output_tokens, est.output_tokens_estimated), (2, true));
    }

    #[test]
    fn ttfo_skips_reasoning_chunks() {
        let mut r = rec(&[50_000_000, 60_000_000], Some(2));
        r.chunks[0].reasoning = true;
        let m = derive(&r);
        assert!((m.ttfo.unwrap() - 0.057).abs() < 1e-12);
        assert!((m.ttft.unwrap() - 0.047).abs() < 1e-12);
    }
}
