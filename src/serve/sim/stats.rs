//! The simulated server's counters, gauges and emission-lag histogram: written by the engine
//! thread and the response streams with relaxed atomics, read by `/metrics` and
//! [`SimServerHandle::stats`](super::SimServerHandle::stats).
//!
//! Emission lag is the time a token's frame was handed to the HTTP layer minus the simulated
//! instant the engine emitted it (both on the server's monotonic clock). It is kept in 10 µs
//! buckets up to 50 ms (and one overflow bucket), so quantiles are exact to 10 µs.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Width of one lag bucket, ns.
const BUCKET_NS: u64 = 10_000;
/// Buckets below the overflow bucket (10 µs × 5000 = 50 ms).
const BUCKETS: usize = 5_000;
/// Bucket bounds (seconds) of the Prometheus histogram `exp:emission_lag_seconds`.
const PROM_BOUNDS_S: [f64; 9] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05,
];

/// Histogram of emission lags.
pub(super) struct LagHistogram {
    buckets: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl LagHistogram {
    fn new() -> Self {
        LagHistogram {
            buckets: (0..=BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }

    /// Counts one lag.
    pub(super) fn record(&self, lag_ns: u64) {
        let i = ((lag_ns / BUCKET_NS) as usize).min(BUCKETS);
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(lag_ns, Relaxed);
        self.max_ns.fetch_max(lag_ns, Relaxed);
    }

    fn counts(&self) -> Vec<u64> {
        self.buckets.iter().map(|b| b.load(Relaxed)).collect()
    }

    /// Count, quantiles, mean and max of the lags so far.
    pub(super) fn summary(&self) -> LagSummary {
        let counts = self.counts();
        let count: u64 = counts.iter().sum();
        let max = Duration::from_nanos(self.max_ns.load(Relaxed));
        let q = |q: f64| quantile(&counts, count, q).min(max);
        LagSummary {
            count,
            mean: Duration::from_nanos(self.sum_ns.load(Relaxed) / count.max(1)),
            p50: q(0.50),
            p99: q(0.99),
            p999: q(0.999),
            max,
        }
    }
}

/// Nearest-rank quantile over the buckets: the upper edge of the bucket holding the
/// `ceil(q·count)`-th smallest lag (the overflow bucket answers `Duration::MAX`).
fn quantile(counts: &[u64], count: u64, q: f64) -> Duration {
    if count == 0 {
        return Duration::ZERO;
    }
    let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
    let mut seen = 0;
    for (i, c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return if i == BUCKETS {
                Duration::MAX
            } else {
                Duration::from_nanos((i as u64 + 1) * BUCKET_NS)
            };
        }
    }
    Duration::MAX
}

/// Emission lags so far. Quantiles are nearest-rank over 10 µs buckets (so they are upper
/// bounds, exact to 10 µs), capped at the largest lag seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LagSummary {
    /// Tokens whose lag was recorded.
    pub count: u64,
    /// Mean lag.
    pub mean: Duration,
    /// Median lag.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Largest lag.
    pub max: Duration,
}

/// Live figures of the server, shared by the engine thread and the HTTP side.
pub(super) struct Stats {
    pub running: AtomicU64,
    pub waiting: AtomicU64,
    /// `f64::to_bits` of the KV usage share.
    pub kv_usage: AtomicU64,
    pub preemptions: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub generation_tokens: AtomicU64,
    pub finished: AtomicU64,
    pub aborted: AtomicU64,
    pub steps: AtomicU64,
    pub lag: LagHistogram,
}

impl Stats {
    pub(super) fn new() -> Self {
        Stats {
            running: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
            kv_usage: AtomicU64::new(0f64.to_bits()),
            preemptions: AtomicU64::new(0),
            prompt_tokens: AtomicU64::new(0),
            generation_tokens: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            aborted: AtomicU64::new(0),
            steps: AtomicU64::new(0),
            lag: LagHistogram::new(),
        }
    }

    /// A consistent-enough copy (each field is read once, relaxed).
    pub(super) fn snapshot(&self) -> SimServerStats {
        SimServerStats {
            running: self.running.load(Relaxed),
            waiting: self.waiting.load(Relaxed),
            kv_usage: f64::from_bits(self.kv_usage.load(Relaxed)),
            preemptions: self.preemptions.load(Relaxed),
            prompt_tokens: self.prompt_tokens.load(Relaxed),
            generation_tokens: self.generation_tokens.load(Relaxed),
            finished: self.finished.load(Relaxed),
            aborted: self.aborted.load(Relaxed),
            steps: self.steps.load(Relaxed),
            lag: self.lag.summary(),
        }
    }
}

/// What the simulated server has done so far (the figures `/metrics` shows).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SimServerStats {
    /// Requests in the running batch, including ones whose last token is still to be written
    /// (`vllm:num_requests_running`).
    pub running: u64,
    /// Requests queued, preempted ones included (`vllm:num_requests_waiting`).
    pub waiting: u64,
    /// Share of KV-cache blocks in use, in [0, 1] (`vllm:kv_cache_usage_perc`).
    pub kv_usage: f64,
    /// Preemptions so far (`vllm:num_preemptions_total`).
    pub preemptions: u64,
    /// Prompt tokens of requests whose prefill finished (`vllm:prompt_tokens_total`).
    pub prompt_tokens: u64,
    /// Tokens generated and handed to their streams (`vllm:generation_tokens_total`).
    pub generation_tokens: u64,
    /// Requests that generated all their tokens (`finished_reason="length"`).
    pub finished: u64,
    /// Requests cancelled because their client went away (`finished_reason="abort"`).
    pub aborted: u64,
    /// Engine steps run.
    pub steps: u64,
    /// Emission lag of every token handed to a stream so far.
    pub lag: LagSummary,
}

/// Static facts shown by `vllm:cache_config_info`.
pub(super) struct CacheInfo {
    pub block_size: u32,
    pub num_gpu_blocks: u64,
}

/// One metric family: name, type, help text, and samples as (extra labels, value).
type Family = (
    &'static str,
    &'static str,
    &'static str,
    Vec<(String, String)>,
);

/// The families vLLM exposes that the simulated engine can fill, from one snapshot.
fn families(s: &SimServerStats, cache: &CacheInfo) -> Vec<Family> {
    let num = |v: u64| format!("{v}.0");
    let one = |v: String| vec![(String::new(), v)];
    let reason = |r: &str, v: u64| (format!(r#",finished_reason="{r}""#), num(v));
    let info = format!(
        r#",block_size="{}",num_gpu_blocks="{}""#,
        cache.block_size, cache.num_gpu_blocks
    );
    vec![
        (
            "vllm:num_requests_running",
            "gauge",
            "Number of requests in model execution batches.",
            one(num(s.running)),
        ),
        (
            "vllm:num_requests_waiting",
            "gauge",
            "Number of requests waiting to be processed.",
            one(num(s.waiting)),
        ),
        (
            "vllm:kv_cache_usage_perc",
            "gauge",
            "KV-cache usage. 1 means 100 percent usage.",
            one(format!("{:?}", s.kv_usage)),
        ),
        (
            "vllm:num_preemptions_total",
            "counter",
            "Cumulative number of preemption from the engine.",
            one(num(s.preemptions)),
        ),
        (
            "vllm:prompt_tokens_total",
            "counter",
            "Number of prefill tokens processed.",
            one(num(s.prompt_tokens)),
        ),
        (
            "vllm:generation_tokens_total",
            "counter",
            "Number of generation tokens processed.",
            one(num(s.generation_tokens)),
        ),
        (
            "vllm:request_success_total",
            "counter",
            "Count of successfully processed requests.",
            vec![reason("length", s.finished), reason("abort", s.aborted)],
        ),
        (
            "vllm:cache_config_info",
            "gauge",
            "Information of the KV cache configuration.",
            vec![(info, "1.0".into())],
        ),
    ]
}

/// The Prometheus text exposition (format 0.0.4) of `stats`, with vLLM's metric names and
/// `model_name` / `engine` labels.
pub(super) fn render(stats: &Stats, model: &str, cache: &CacheInfo) -> String {
    let labels = format!(r#"model_name="{}",engine="0""#, escape_label(model));
    let mut out = String::with_capacity(4096);
    for (name, kind, help, samples) in families(&stats.snapshot(), cache) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (extra, value) in samples {
            let _ = writeln!(out, "{name}{{{labels}{extra}}} {value}");
        }
    }
    render_lag(&mut out, stats, &labels);
    out
}

/// `exp:emission_lag_seconds`: how late tokens were written relative to simulated time.
fn render_lag(out: &mut String, stats: &Stats, labels: &str) {
    let name = "exp:emission_lag_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time a token was written minus its simulated emission instant.\n# TYPE {name} histogram"
    );
    let counts = stats.lag.counts();
    let mut cumulative = 0u64;
    let mut next = 0usize;
    for bound in PROM_BOUNDS_S {
        // Bucket i holds lags in [i, i+1) × 10 µs, so it is below `bound` when i+1 ≤ bound/10 µs.
        let end = ((bound * 1e9).round() as u64 / BUCKET_NS) as usize;
        cumulative += counts[next..end].iter().sum::<u64>();
        next = end;
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}.0"
        );
    }
    let total: u64 = counts.iter().sum();
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {total}.0");
    let sum = stats.lag.sum_ns.load(Relaxed) as f64 / 1e9;
    let _ = writeln!(out, "{name}_sum{{{labels}}} {sum:?}");
    let _ = writeln!(out, "{name}_count{{{labels}}} {total}.0");
}

/// Escapes a Prometheus label value (`\`, `"` and newlines).
fn escape_label(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', r#"\""#)
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_quantiles_are_bucket_upper_edges_capped_at_the_max() {
        let h = LagHistogram::new();
        // 98 lags of 5 µs, one of 1.234 ms, one of 60 ms (overflow).
        for _ in 0..98 {
            h.record(5_000);
        }
        h.record(1_234_000);
        h.record(60_000_000);
        let s = h.summary();
        assert_eq!(s.count, 100);
        assert_eq!(s.p50, Duration::from_micros(10));
        assert_eq!(s.p99, Duration::from_micros(1_240));
        assert_eq!(
            s.p999,
            Duration::from_millis(60),
            "overflow answers the max"
        );
        assert_eq!(s.max, Duration::from_millis(60));
        assert_eq!(
            s.mean,
            Duration::from_nanos((98 * 5_000 + 61_234_000) / 100)
        );
        assert_eq!(LagHistogram::new().summary(), LagSummary::default());
    }

    #[test]
    fn prometheus_lag_buckets_are_cumulative() {
        let stats = Stats::new();
        for lag_us in [50, 99, 100, 300, 1_500, 70_000] {
            stats.lag.record(lag_us * 1_000);
        }
        let mut out = String::new();
        render_lag(&mut out, &stats, r#"model_name="m""#);
        for (le, n) in [
            ("0.0001", 2),
            ("0.00025", 3),
            ("0.002", 5),
            ("0.05", 5),
            ("+Inf", 6),
        ] {
            let line =
                format!("exp:emission_lag_seconds_bucket{{model_name=\"m\",le=\"{le}\"}} {n}.0");
            assert!(out.contains(&line), "{line} missing in\n{out}");
        }
        assert!(out.contains("exp:emission_lag_seconds_count{model_name=\"m\"} 6.0"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
    }
}
