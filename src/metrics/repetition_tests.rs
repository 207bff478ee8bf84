use super::*;
use crate::metrics::registry::{self, Metric, Stat, k};
use crate::record::{Chunk, FailureReason, Outcome, RecordSource, RequestRecord};

const MS: u64 = 1_000_000;

/// Request `i` scheduled at i·100 ms, sent 1 ms late, first token 50 ms later, then
/// `tokens − 1` more tokens 10 ms apart.
fn ok(i: u64, tokens: u32) -> RequestRecord {
    let sched = i * 100 * MS;
    let sent = sched + MS;
    let chunks: Vec<Chunk> = (0..u64::from(tokens))
        .map(|k| Chunk {
            at_ns: sent + 50 * MS + k * 10 * MS,
            tokens: Some(1),
            reasoning: false,
        })
        .collect();
    RequestRecord {
        index: i,
        turn: 0,
        scheduled_ns: sched,
        sent_ns: Some(sent),
        first_sent_ns: None,
        no_done: false,
        text: None,
        counted: None,
        done_ns: chunks.last().map(|c| c.at_ns),
        chunks,
        input_tokens: Some(100),
        output_tokens: Some(tokens),
        requested_input_tokens: Some(100),
        requested_output_tokens: Some(4),
        finish_reason: Some("length".into()),
        outcome: Outcome::Ok,
    }
}

fn failed(i: u64) -> RequestRecord {
    RequestRecord {
        chunks: vec![],
        done_ns: None,
        output_tokens: None,
        outcome: Outcome::Failed {
            reason: FailureReason::Http,
            http_status: Some(500),
            message: "boom".into(),
        },
        ..ok(i, 1)
    }
}

#[test]
fn throughputs_and_rates_follow_the_definitions() {
    // 4 ok requests of 4 tokens, one failure sent at 401 ms. Window: 0 → max(last done =
    // 301+50+30 = 381 ms, the failure's send at 401 ms).
    let recs = vec![ok(0, 4), ok(1, 4), ok(2, 4), ok(3, 4), failed(4)];
    let s = summarize(&recs, &BTreeMap::new());
    let v = &s.values;
    let dur = 0.401;
    let close = |k: &str, want: f64| {
        let got = v[&registry::k(k)];
        assert!((got - want).abs() < 1e-9, "{k}: got {got}, want {want}");
    };
    close("duration", dur);
    close("request_throughput", 4.0 / dur);
    close("output_throughput", 16.0 / dur);
    close("total_throughput", (16.0 + 400.0) / dur);
    close("error_rate", 0.2);
    close("ttft.mean", 0.050);
    close("ttft_sched.p50", 0.051);
    close("tpot.mean", 0.010);
    close("itl.p99", 0.010);
    close("e2e.max", 0.080);
    close("queue_delay.p99", 0.001);
    // 5 sends at 1, 101, …, 401 ms: (5 − 1) / 0.4 s.
    close("achieved_rate", 10.0);
    close("scheduled_rate", 10.0);
    // Little's law: 4 × 80 ms of e2e over the window.
    close("concurrency", 0.320 / dur);
    close("tokens_per_chunk", 1.0);
    assert_eq!(s.failures["http"], 1);
    assert_eq!(s.failure_examples, vec!["boom".to_string()]);
}

#[test]
fn goodput_counts_only_ok_requests_within_every_slo() {
    let recs = vec![ok(0, 4), ok(1, 2), failed(2)];
    let slo = BTreeMap::from([(Metric::E2e, Duration::from_millis(70))]);
    let s = summarize(&recs, &slo);
    // Only the 2-token request (e2e 60 ms) meets e2e ≤ 70 ms; the failure never counts.
    assert!((s.values[&k("slo_attainment")] - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(s.short_outputs, 1);
    assert!((s.values[&k("output_length_shortfall")] - 0.5).abs() < 1e-12);
}

#[test]
fn single_token_requests_leave_tpot_absent_not_nan() {
    let s = summarize(&[ok(0, 1), ok(1, 1)], &BTreeMap::new());
    assert!(!s.values.contains_key(&k("tpot.mean")));
    assert!(s.values.values().all(|x| x.is_finite()));
}

#[test]
fn percentiles_are_type_7() {
    // TTFTs of 1..=10 ms: p90 by linear interpolation is 9.1 ms.
    let recs: Vec<RequestRecord> = (1..=10u64)
        .map(|k| {
            let mut r = ok(k, 1);
            r.chunks[0].at_ns = r.sent_ns.unwrap() + k * MS;
            r.done_ns = Some(r.chunks[0].at_ns);
            r
        })
        .collect();
    let s = summarize(&recs, &BTreeMap::new());
    assert!((s.values[&k("ttft.p90")] - 0.0091).abs() < 1e-12);
}

#[test]
fn per_chunk_counts_that_disagree_with_usage_are_flagged() {
    let mut r = ok(0, 4);
    r.output_tokens = Some(5);
    let s = summarize(&[r], &BTreeMap::new());
    assert_eq!(s.token_mismatches, 1);
}

#[test]
fn server_prompt_counts_beyond_the_tolerance_are_counted_by_direction() {
    let with = |server: Option<u32>, client: Option<u32>| {
        let mut r = ok(0, 4);
        (r.input_tokens, r.requested_input_tokens) = (server, client);
        r
    };
    // Client count 100: 104 and 96 are within 4 tokens, 105 is over, 95 under.
    let recs = [
        with(Some(100), Some(100)),
        with(Some(104), Some(100)),
        with(Some(96), Some(100)),
        with(Some(105), Some(100)),
        with(Some(95), Some(100)),
        with(Some(95), None),
        with(None, Some(100)),
        failed(1),
    ];
    let s = summarize(&recs, &BTreeMap::new());
    assert_eq!(s.prompt_counts_compared, 5);
    assert_eq!((s.prompt_tokens_over, s.prompt_tokens_under), (1, 1));
}

#[test]
fn conversations_are_counted_only_for_multi_turn_records() {
    let single = summarize(&[ok(0, 4), ok(1, 4)], &BTreeMap::new());
    assert!(!single.values.contains_key(&k("conversations")));
    // Conversation 0 with three turns, conversation 1 with one: four requests, two
    // conversations.
    let turn = |i: u64, t: u32| RequestRecord {
        turn: t,
        ..ok(i, 4)
    };
    let recs = [turn(0, 0), turn(0, 1), turn(0, 2), turn(1, 0)];
    let s = summarize(&recs, &BTreeMap::new());
    assert_eq!(s.values[&k("requests")], 4.0);
    assert_eq!(s.values[&k("conversations")], 2.0);
}

#[test]
fn a_retried_request_is_counted_and_its_lost_time_is_queue_delay() {
    // Request 1's first attempt went at 101 ms and its connection closed; the retry went at
    // 111 ms: TTFT counts from the retry, the 11 ms since its schedule are queue delay.
    let retried = RequestRecord {
        first_sent_ns: Some(101 * MS),
        no_done: false,
        text: None,
        counted: None,
        sent_ns: Some(111 * MS),
        chunks: vec![Chunk {
            at_ns: 161 * MS,
            tokens: Some(1),
            reasoning: false,
        }],
        done_ns: Some(161 * MS),
        output_tokens: Some(1),
        ..ok(1, 1)
    };
    let s = summarize(&[ok(0, 1), retried, failed(2)], &BTreeMap::new());
    assert_eq!((s.sent, s.completed, s.retried), (3, 2, 1));
    assert!((s.values[&k("ttft.max")] - 0.050).abs() < 1e-9);
    assert!((s.values[&k("queue_delay.max")] - 0.011).abs() < 1e-9);
}

#[test]
fn streams_ended_without_done_are_counted_among_the_ok_ones() {
    let mut cut = ok(1, 4);
    cut.no_done = true;
    let mut failed_cut = failed(2);
    failed_cut.no_done = true;
    let s = summarize(&[ok(0, 4), cut, failed_cut], &BTreeMap::new());
    assert_eq!((s.completed, s.no_done), (2, 1));
}

/// Issue 12: 4 chunks and no usage for 16 requested tokens is not a shortfall (the server may
/// write 4 tokens per chunk); the length is flagged as counted from chunks instead.
#[test]
fn a_length_counted_from_chunks_is_not_a_shortfall() {
    let mut r = ok(0, 4);
    r.output_tokens = None;
    r.requested_output_tokens = Some(16);
    let s = summarize(&[r], &BTreeMap::new());
    assert_eq!((s.estimated_lengths, s.short_outputs), (1, 0));
}

/// Summarises `records` with columns that hold at most `budget` values in memory, counting
/// the passes over the records.
fn summarize_within(records: &[RequestRecord], budget: usize) -> (RepetitionSummary, usize) {
    struct Counted<'a>(&'a [RequestRecord], std::cell::Cell<usize>);
    impl RecordSource for Counted<'_> {
        type Error = std::convert::Infallible;
        fn replay(&self, f: &mut dyn FnMut(&RequestRecord)) -> Result<(), Self::Error> {
            self.1.set(self.1.get() + 1);
            self.0.replay(f)
        }
    }
    let slo = BTreeMap::from([(Metric::Ttft, Duration::from_millis(60))]);
    let source = Counted(records, std::cell::Cell::new(1));
    let mut summarizer = Summarizer::with_budget(&slo, budget);
    records.iter().for_each(|r| summarizer.push(r));
    let summary = summarizer.finish(&source).unwrap();
    (summary, source.1.get())
}

/// Issue 12: a summary streamed in bounded memory equals the one sorted in memory: every
/// percentile, minimum and maximum to the bit, every count and rate, means within 1e-12.
/// Random timelines with ties (instants on a coarse grid), failures, one and two records.
#[test]
fn streamed_summary_equals_the_in_memory_one() {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    let mut random = |n: u64| -> Vec<RequestRecord> {
        (0..n)
            .map(|i| {
                if rng.random_range(0..10) == 0 {
                    return failed(i);
                }
                let mut r = ok(i, rng.random_range(1..40));
                let grid = [1_000, MS][rng.random_range(0..2)];
                let mut t = r.sent_ns.unwrap() + rng.random_range(1..80) * grid;
                for c in &mut r.chunks {
                    c.at_ns = t;
                    t += rng.random_range(0..20) * grid;
                    c.tokens = Some(rng.random_range(1..4));
                }
                r.output_tokens = Some(r.chunks.iter().filter_map(|c| c.tokens).sum());
                r.done_ns = r.chunks.last().map(|c| c.at_ns);
                r
            })
            .collect()
    };
    for n in [1, 2, 3, 50, 400] {
        let records = random(n);
        let (held, passes) = summarize_within(&records, usize::MAX);
        assert_eq!(passes, 1, "held in memory: one pass");
        let (streamed, passes) = summarize_within(&records, 0);
        assert!(passes <= 4, "{passes} passes");
        assert_eq!(held.values.len(), streamed.values.len());
        for (key, want) in &held.values {
            let got = streamed.values[key];
            match key.stat() {
                Some(Stat::Mean | Stat::Std) => {
                    assert!((want - got).abs() <= 1e-12 * want.abs().max(1.0), "{key}")
                }
                _ => assert_eq!(want.to_bits(), got.to_bits(), "n = {n}, {key}"),
            }
        }
        let (mut a, mut b) = (held, streamed);
        (a.values, b.values) = (BTreeMap::new(), BTreeMap::new());
        assert_eq!(a, b);
    }
}
