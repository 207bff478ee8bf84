//! Virtual-time driver tests: arrival modes, warm-up, deadlines, conservation, determinism, and
//! textbook queueing behaviour with a linear cost model.

use std::time::Duration;

use super::tests::{FLAT, Fixed, Listed, nz, open, params, poisson, work};
use super::*;
use crate::record::{FailureReason, Outcome, RequestRecord};
use crate::workload::work::{Arrivals, RepetitionWork};

/// 2 ms per step plus 20 µs per token computed.
const LINEAR: LinearCost = LinearCost {
    per_step_s: 2e-3,
    per_token_s: 20e-6,
    per_context_token_s: 0.0,
};

fn ttft(r: &RequestRecord) -> u64 {
    r.chunks[0].at_ns - r.sent_ns.unwrap()
}

fn mean(xs: impl Iterator<Item = u64>) -> f64 {
    let v: Vec<u64> = xs.collect();
    v.iter().sum::<u64>() as f64 / v.len() as f64
}

/// Checks what must hold for every run: records in index order, chunks ordered and after the
/// send, ok requests complete with all their tokens, others cancelled or rejected.
fn check_conservation(run: &SimRun) {
    for (i, r) in run.records.iter().enumerate() {
        assert_eq!(r.index, i as u64);
        let sent = r.sent_ns.unwrap();
        assert!(sent >= r.scheduled_ns);
        assert!(r.chunks.windows(2).all(|w| w[0].at_ns <= w[1].at_ns));
        assert!(r.chunks.first().is_none_or(|c| c.at_ns > sent));
        assert_eq!(r.done_ns, r.chunks.last().map(|c| c.at_ns));
        let want = r.requested_output_tokens.unwrap();
        match &r.outcome {
            Outcome::Ok => {
                assert_eq!(r.chunks.len() as u32, want);
                assert_eq!(r.output_tokens, Some(want));
                assert_eq!(r.input_tokens, r.requested_input_tokens);
                assert_eq!(r.finish_reason.as_deref(), Some("length"));
            }
            Outcome::Failed {
                reason: FailureReason::Cancelled,
                ..
            } => {
                assert!((r.chunks.len() as u32) < want);
            }
            Outcome::Failed {
                reason: FailureReason::Rejected,
                ..
            } => assert!(r.chunks.is_empty()),
            other => panic!("unexpected outcome {other:?}"),
        }
    }
}

fn run(w: &RepetitionWork, p: EngineParams, seed: u64) -> SimRun {
    run_with(&LINEAR, w, p, seed)
}

fn run_with(cost: &LinearCost, w: &RepetitionWork, p: EngineParams, seed: u64) -> SimRun {
    let run = run_repetition(w, &p, cost, seed).unwrap();
    check_conservation(&run);
    run
}

#[test]
fn open_loop_records_are_relative_to_the_origin_and_sent_on_schedule() {
    let w = work(open(vec![0, 10_000_000]), Fixed(100, 3), None);
    let r = run_repetition(&w, &params(8, 8192, 1 << 20), &FLAT, 0).unwrap();
    let at = |i: usize| {
        r.records[i]
            .chunks
            .iter()
            .map(|c| c.at_ns)
            .collect::<Vec<_>>()
    };
    assert_eq!(at(0), vec![1_000_000, 2_000_000, 3_000_000]);
    assert_eq!(at(1), vec![11_000_000, 12_000_000, 13_000_000]);
    assert_eq!(r.records[1].sent_ns, Some(10_000_000));
    assert_eq!(
        (r.stats.steps, r.stats.window_ns, r.stats.peak_running),
        (6, 13_000_000, 1)
    );
    check_conservation(&r);
}

#[test]
fn open_loop_with_a_cap_waits_client_side_for_a_free_slot() {
    let arrivals = Arrivals::Open {
        offsets_ns: vec![0, 0, 500_000],
        max_concurrency: Some(nz(1)),
    };
    let w = work(arrivals, Fixed(10, 2), None);
    let r = run_repetition(&w, &params(8, 8192, 1 << 20), &FLAT, 0).unwrap();
    let sends: Vec<_> = r
        .records
        .iter()
        .map(|x| (x.scheduled_ns, x.sent_ns.unwrap()))
        .collect();
    assert_eq!(sends, vec![(0, 0), (0, 2_000_000), (500_000, 4_000_000)]);
    assert_eq!(r.stats.peak_running, 1);
}

#[test]
fn closed_loop_releases_the_next_request_at_each_completion() {
    let w = work(
        Arrivals::Closed { concurrency: nz(2) },
        Fixed(10, 3),
        Some(6),
    );
    let r = run(&w, params(8, 8192, 1 << 20), 0);
    assert_eq!(r.records.len(), 6);
    let dones: Vec<u64> = r.records.iter().map(|x| x.done_ns.unwrap()).collect();
    for (i, rec) in r.records.iter().enumerate() {
        assert_eq!(rec.sent_ns, Some(rec.scheduled_ns));
        if i >= 2 {
            assert!(
                dones[..i].contains(&rec.scheduled_ns),
                "request {i} starts at a completion"
            );
        } else {
            assert_eq!(rec.scheduled_ns, 0);
        }
    }
    assert_eq!(r.stats.peak_running, 2);
}

#[test]
fn batch_mode_waits_for_the_whole_batch() {
    let w = work(Arrivals::Batch { size: nz(3) }, Fixed(10, 4), Some(7));
    let r = run_with(&FLAT, &w, params(8, 8192, 1 << 20), 0);
    let sched: Vec<u64> = r.records.iter().map(|x| x.scheduled_ns).collect();
    // Each batch: 1 prefill step + 3 decode steps = 4 ms.
    assert_eq!(
        sched,
        vec![0, 0, 0, 4_000_000, 4_000_000, 4_000_000, 8_000_000]
    );
    assert_eq!(r.stats.window_ns, 12_000_000);
}

#[test]
fn warmup_is_not_recorded_and_moves_the_origin() {
    let mut w = work(
        Arrivals::Closed { concurrency: nz(2) },
        Fixed(50, 5),
        Some(4),
    );
    let cold = run(&w, params(8, 8192, 1 << 20), 3);
    w.warmup = 3;
    let warm = run(&w, params(8, 8192, 1 << 20), 3);
    assert!(warm.stats.warmup_ns > 0);
    assert_eq!(warm.records.len(), 4);
    // Without noise the engine is empty after warm-up, so the measured window is identical.
    assert_eq!(
        cold,
        SimRun {
            stats: SimStats {
                warmup_ns: 0,
                ..warm.stats.clone()
            },
            ..warm
        }
    );
}

#[test]
fn duration_stops_releases_and_grace_cancels_what_is_left() {
    let mut w = work(
        Arrivals::Closed { concurrency: nz(4) },
        Fixed(100, 200),
        None,
    );
    w.duration = Some(Duration::from_millis(500));
    w.grace = Duration::from_millis(100);
    let r = run(&w, params(64, 8192, 1 << 20), 0);
    assert_eq!(r.stats.window_ns, 600_000_000);
    assert!(r.records.iter().all(|x| x.sent_ns.unwrap() < 500_000_000));
    let cancelled = r.records.iter().filter(|x| !x.outcome.is_ok()).count();
    assert_eq!(cancelled, 4, "the four in flight at the deadline");
    let last_chunk = r.records.iter().filter_map(|x| x.done_ns).max().unwrap();
    assert!(last_chunk <= 600_000_000);
}

#[test]
fn open_loop_duration_drops_requests_scheduled_after_it() {
    let mut w = work(
        open((0..10).map(|i| i * 100_000_000).collect()),
        Fixed(10, 2),
        None,
    );
    w.duration = Some(Duration::from_millis(450));
    let r = run_with(&FLAT, &w, params(8, 8192, 1 << 20), 0);
    assert_eq!(r.records.len(), 5);
    assert!(
        r.records.iter().all(|x| x.outcome.is_ok()),
        "each finishes long before the deadline"
    );
    assert_eq!(r.stats.window_ns, 402_000_000);
}

#[test]
fn oversized_requests_are_rejected_and_unbounded_work_is_refused() {
    let w = work(
        Arrivals::Closed { concurrency: nz(2) },
        Fixed(5000, 10),
        Some(3),
    );
    let r = run(&w, params(8, 8192, 4096), 0);
    assert_eq!(r.stats.rejected, 3);
    assert!(r.records.iter().all(|x| matches!(
        x.outcome,
        Outcome::Failed {
            reason: FailureReason::Rejected,
            ..
        }
    )));
    let mut forever = w.clone();
    forever.requests = None;
    assert_eq!(
        run_repetition(&forever, &params(8, 8192, 4096), &LINEAR, 0),
        Err(SimError::Unbounded)
    );
    forever.duration = Some(Duration::from_secs(1));
    let err = run_repetition(&forever, &params(8, 8192, 4096), &LINEAR, 0);
    assert!(matches!(err, Err(SimError::NoProgress { .. })), "{err:?}");
}

#[test]
fn throughput_saturates_and_ttft_climbs_past_capacity() {
    let p = params(64, 2048, 1 << 22);
    let at = |rate: f64| {
        let w = work(open(poisson(rate, 1500, 9)), Fixed(256, 64), None);
        let r = run(&w, p, 1);
        let thr = r.records.len() as f64 / (r.stats.window_ns as f64 / 1e9);
        (thr, mean(r.records.iter().map(ttft)))
    };
    // Capacity is about 118 requests/s here (measured by the overloaded runs).
    let points: Vec<(f64, f64)> = [10.0, 60.0, 300.0, 3_000.0].into_iter().map(at).collect();
    let thr: Vec<f64> = points.iter().map(|p| p.0).collect();
    let ttfts: Vec<f64> = points.iter().map(|p| p.1).collect();
    assert!(
        (thr[0] / 10.0 - 1.0).abs() < 0.1,
        "below capacity throughput follows the rate: {thr:?}"
    );
    assert!((thr[1] / 60.0 - 1.0).abs() < 0.1, "{thr:?}");
    assert!(thr[2] < 300.0 * 0.5 && thr[2] > thr[1], "{thr:?}");
    assert!((thr[3] / thr[2] - 1.0).abs() < 0.1, "plateau: {thr:?}");
    assert!(ttfts.windows(2).all(|w| w[1] > w[0]), "{ttfts:?}");
    assert!(ttfts[3] > 100.0 * ttfts[0], "{ttfts:?}");
}

#[test]
fn ttft_grows_with_prompt_length() {
    let ttfts: Vec<f64> = [128, 1024, 4096]
        .iter()
        .map(|&prompt| {
            let w = work(open(poisson(2.0, 40, 4)), Fixed(prompt, 16), None);
            mean(
                run(&w, params(64, 8192, 1 << 22), 0)
                    .records
                    .iter()
                    .map(ttft),
            )
        })
        .collect();
    assert!(ttfts.windows(2).all(|w| w[1] > w[0] * 1.5), "{ttfts:?}");
}

#[test]
fn max_num_seqs_caps_concurrency_under_overload() {
    let w = work(open(poisson(5_000.0, 500, 2)), Fixed(64, 32), None);
    let r = run(&w, params(16, 8192, 1 << 22), 0);
    assert_eq!(r.stats.peak_running, 16);
    assert!(r.stats.samples.iter().all(|s| s.running <= 16));
    assert!(r.stats.samples.iter().any(|s| s.waiting > 0));
}

#[test]
fn tiny_kv_cache_forces_preemptions_yet_everything_finishes() {
    let w = work(
        Arrivals::Closed {
            concurrency: nz(32),
        },
        Fixed(200, 300),
        Some(100),
    );
    let r = run(&w, params(64, 8192, 4_000), 0);
    assert!(r.stats.preemptions > 0);
    assert!(r.stats.peak_kv_usage > 0.95);
    assert!(r.records.iter().all(|x| x.outcome.is_ok()));
    let roomy = run(&w, params(64, 8192, 1 << 22), 0);
    assert_eq!(roomy.stats.preemptions, 0);
}

#[test]
fn runs_are_deterministic_per_seed_and_noise_makes_seeds_differ() {
    let w = work(open(poisson(300.0, 300, 5)), Fixed(256, 32), None);
    let quiet = params(32, 2048, 1 << 20);
    assert_eq!(run(&w, quiet, 1), run(&w, quiet, 1));
    assert_eq!(
        run(&w, quiet, 1),
        run(&w, quiet, 2),
        "no noise: the seed does not matter"
    );
    let noisy = EngineParams {
        noise_cv: 0.02,
        ..quiet
    };
    assert_eq!(run(&w, noisy, 1), run(&w, noisy, 1));
    assert_ne!(run(&w, noisy, 1).records, run(&w, noisy, 2).records);
}

#[test]
fn gauges_are_sampled_every_interval_of_the_window() {
    let w = work(open(poisson(200.0, 400, 6)), Fixed(256, 64), None);
    let r = run(&w, params(32, 2048, 1 << 20), 0);
    let s = &r.stats.samples;
    assert_eq!(s.len() as u64, r.stats.window_ns / SAMPLE_INTERVAL_NS + 1);
    assert!(
        s.iter()
            .enumerate()
            .all(|(k, g)| g.t_ns == k as u64 * SAMPLE_INTERVAL_NS)
    );
    assert!(s.iter().all(|g| (0.0..=1.0).contains(&g.kv_usage)));
    assert!(s.iter().any(|g| g.running > 0));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Whatever the settings and lengths, every request sent finishes with all its tokens
    /// (nothing is lost or duplicated by chunking, admission or preemption), or is rejected
    /// exactly when it could never fit.
    #[test]
    fn every_request_finishes_or_is_rejected(
        lengths in proptest::collection::vec((1u32..300, 1u32..80), 1..40),
        seqs in 1u32..12,
        budget in 1u32..400,
        kv_blocks in 1u64..40,
        mode in 0u8..3,
        watermark in 0.0f64..0.2,
    ) {
        let n = lengths.len();
        let arrivals = match mode {
            0 => open((0..n as u64).map(|i| i * 3_000_000).collect()),
            1 => Arrivals::Closed { concurrency: nz(3) },
            _ => Arrivals::Batch { size: nz(4) },
        };
        let p = EngineParams { watermark, ..params(seqs, budget, kv_blocks * 16) };
        let w = work(arrivals, Listed(lengths.clone()), Some(n as u64));
        let r = run(&w, p, 0);
        proptest::prop_assert_eq!(r.records.len(), n);
        let wm = (watermark * kv_blocks as f64) as u64;
        for (rec, &(input, output)) in r.records.iter().zip(&lengths) {
            let fits = u64::from(input + output - 1).div_ceil(16) + wm <= kv_blocks;
            proptest::prop_assert_eq!(rec.outcome.is_ok(), fits);
        }
        proptest::prop_assert!(r.stats.peak_running <= seqs);
    }
}

/// Simulated requests per wall-clock second (run with `--release -- --ignored --nocapture`).
#[test]
#[ignore = "benchmark"]
fn bench_throughput() {
    let n = 200_000;
    let w = work(open(poisson(2_000.0, n, 1)), Fixed(512, 128), None);
    let p = EngineParams::new(256, 8192, 2_000_000);
    let t0 = std::time::Instant::now();
    let r = run_repetition(&w, &p, &LINEAR, 1).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(r.records.len(), n);
    println!(
        "linear cost: simulated {n} requests in {secs:.3} s: {:.0} requests/s",
        n as f64 / secs
    );
}

/// [`FLAT`] behind an API server that spends 1 ms + 1 µs per prompt token on each request.
struct Served;

impl StepCost for Served {
    fn step_seconds(&self, prefill: &[PrefillWork], decode_contexts: &[u32]) -> f64 {
        FLAT.step_seconds(prefill, decode_contexts)
    }
    fn admission_seconds(&self, prompt_tokens: u32) -> f64 {
        1e-3 + 1e-6 * f64::from(prompt_tokens)
    }
}

#[test]
fn the_api_server_handles_one_request_at_a_time_before_the_engine_sees_it() {
    // A batch of 3 sent together: the server takes 1.1 ms each, in turn, so they reach the
    // engine at 1.1, 2.2 and 3.3 ms. Steps take 1 ms: the first prefills at 1.1–2.1 and
    // decodes at 2.1–3.1; the second, there at 2.2, waits for the step at 3.1–4.1; the third,
    // there at 3.3, for the one at 4.1–5.1.
    let w = work(Arrivals::Batch { size: nz(3) }, Fixed(100, 2), Some(3));
    let r = run_repetition(&w, &params(8, 8192, 1 << 20), &Served, 0).unwrap();
    check_conservation(&r);
    let ttfts: Vec<u64> = r.records.iter().map(ttft).collect();
    assert_eq!(ttfts, [2_100_000, 4_100_000, 5_100_000]);
    // With no admission cost (the default) the same batch prefills in one step.
    let flat = run_repetition(&w, &params(8, 8192, 1 << 20), &FLAT, 0).unwrap();
    assert!(flat.records.iter().all(|x| ttft(x) == 1_000_000));
}

#[test]
fn requests_the_engine_rejects_after_the_api_server_are_recorded_as_rejected() {
    let w = work(
        Arrivals::Closed { concurrency: nz(2) },
        Fixed(5000, 10),
        Some(3),
    );
    let r = run_repetition(&w, &params(8, 8192, 4096), &Served, 0).unwrap();
    check_conservation(&r);
    assert_eq!(r.stats.rejected, 3);
    assert_eq!(r.records.len(), 3);
}
