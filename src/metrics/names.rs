//! The names of every metric exp publishes, their units and which direction is better.
//! One table, used by validation (`[slo]`, `[checks]`, `[analysis]`), summaries and reports,
//! so a name means the same thing everywhere (see README, "Metrics").

/// Per-request latency metrics that are summarised with [`LATENCY_STATS`].
pub const LATENCY_METRICS: &[&str] = &[
    "ttft",
    "ttft_sched",
    "ttfo",
    "e2e",
    "e2e_sched",
    "queue_delay",
    "tpot",
    "ntpot",
    "itl",
];

/// Per-request rate metrics (tokens per second of one request), summarised like latencies.
pub const PER_REQUEST_RATES: &[&str] = &["tps", "decode_tps"];

/// Statistics computed over one repetition's per-request values (`ttft.p99`, …).
pub const LATENCY_STATS: &[&str] = &["mean", "std", "min", "p50", "p90", "p95", "p99", "max"];

/// Per-repetition scalar metrics.
pub const REPETITION_METRICS: &[&str] = &[
    "duration",
    "requests",
    "completed",
    "failed",
    "conversations",
    "request_throughput",
    "output_throughput",
    "total_throughput",
    "goodput",
    "slo_attainment",
    "error_rate",
    "achieved_rate",
    "scheduled_rate",
    "concurrency",
    "tokens_per_chunk",
    "output_length_shortfall",
    "mfu",
    "mbu",
    "gpu_mem_util",
    "gpu_mem_util_max",
    "sm_util",
    "sm_util_max",
    "power",
    "power_max",
    "energy",
    "energy_per_token",
    "kv_cache_usage",
    "kv_cache_usage_max",
    "server_running",
    "server_waiting",
    "preemptions",
    "net_util",
    "client_cpu",
    "server_cpu",
    "cost_per_1k_tokens",
    "cost_per_1k_output_tokens",
    "client_cpu_per_request",
    "client_cpu_util",
    "client_cpu_wait",
    "client_cores",
];

/// The metrics a scenario's `[slo]` may bound (per-request latencies).
pub const SLO_METRICS: &[&str] = &[
    "ttft",
    "ttft_sched",
    "ttfo",
    "e2e",
    "e2e_sched",
    "tpot",
    "ntpot",
    "itl",
];

/// Default primary metrics of `[analysis]`.
pub const DEFAULT_PRIMARY: &[&str] = &[
    "output_throughput",
    "ttft.mean",
    "ttft.p99",
    "tpot.mean",
    "itl.p99",
    "e2e.mean",
];

/// Unit of a metric's value as stored (SI base units).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Seconds (shown as ms or s).
    Seconds,
    /// Tokens per second.
    TokensPerSecond,
    /// Requests per second.
    RequestsPerSecond,
    /// A fraction in [0, 1] (shown as %).
    Fraction,
    /// A count or a dimensionless number.
    Count,
    /// Watts (GPU power draw).
    Watts,
    /// Joules (GPU energy over the window).
    Joules,
    /// Joules per output token.
    JoulesPerToken,
    /// CPU cores busy on average (CPU seconds per second).
    Cores,
    /// Price per 1000 tokens, in the currency of `[cost] gpu_hour`.
    PricePer1kTokens,
}

/// Which direction is better for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// Larger values are better (throughputs, attainment).
    Higher,
    /// Smaller values are better (latencies, error rate).
    Lower,
}

/// Everything known about one summary metric name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricInfo {
    /// Unit of stored values.
    pub unit: Unit,
    /// Better direction.
    pub better: Better,
    /// True for tail statistics (p90 and above, max), which get wider thresholds.
    pub tail: bool,
}

/// Looks up a summary metric name (`ttft.p99`, `output_throughput`, `tps.mean`…).
///
/// Returns `None` for unknown names; [`all_summary_names`] lists the known ones for
/// "did you mean" hints.
pub fn info(name: &str) -> Option<MetricInfo> {
    if let Some((base, stat)) = name.split_once('.') {
        if !LATENCY_STATS.contains(&stat) {
            return None;
        }
        let tail = matches!(stat, "p90" | "p95" | "p99" | "max");
        if LATENCY_METRICS.contains(&base) {
            return Some(MetricInfo {
                unit: Unit::Seconds,
                better: Better::Lower,
                tail,
            });
        }
        if PER_REQUEST_RATES.contains(&base) {
            return Some(MetricInfo {
                unit: Unit::TokensPerSecond,
                better: Better::Higher,
                tail,
            });
        }
        return None;
    }
    let (unit, better) = match name {
        "duration" => (Unit::Seconds, Better::Lower),
        "requests" | "completed" | "conversations" => (Unit::Count, Better::Higher),
        "failed" => (Unit::Count, Better::Lower),
        "request_throughput" | "goodput" | "achieved_rate" | "scheduled_rate" => {
            (Unit::RequestsPerSecond, Better::Higher)
        }
        "output_throughput" | "total_throughput" => (Unit::TokensPerSecond, Better::Higher),
        "slo_attainment" | "mfu" | "mbu" => (Unit::Fraction, Better::Higher),
        "error_rate" | "output_length_shortfall" => (Unit::Fraction, Better::Lower),
        "concurrency" | "tokens_per_chunk" => (Unit::Count, Better::Higher),
        "gpu_mem_util" | "gpu_mem_util_max" | "kv_cache_usage" | "kv_cache_usage_max"
        | "net_util" => (Unit::Fraction, Better::Lower),
        "sm_util" | "sm_util_max" => (Unit::Fraction, Better::Higher),
        "power" | "power_max" => (Unit::Watts, Better::Lower),
        "energy" => (Unit::Joules, Better::Lower),
        "energy_per_token" => (Unit::JoulesPerToken, Better::Lower),
        "server_running" => (Unit::Count, Better::Higher),
        "server_waiting" | "preemptions" => (Unit::Count, Better::Lower),
        "client_cpu" | "server_cpu" => (Unit::Cores, Better::Lower),
        "cost_per_1k_tokens" | "cost_per_1k_output_tokens" => {
            (Unit::PricePer1kTokens, Better::Lower)
        }
        // What the load generator itself cost (run::usage): less is better.
        "client_cpu_per_request" => (Unit::Seconds, Better::Lower),
        "client_cpu_util" | "client_cpu_wait" => (Unit::Fraction, Better::Lower),
        "client_cores" => (Unit::Count, Better::Higher),
        _ => return None,
    };
    Some(MetricInfo {
        unit,
        better,
        tail: false,
    })
}

/// Every known summary metric name, for hints.
pub fn all_summary_names() -> Vec<String> {
    let mut out: Vec<String> = REPETITION_METRICS.iter().map(|s| s.to_string()).collect();
    for base in LATENCY_METRICS.iter().chain(PER_REQUEST_RATES) {
        for stat in LATENCY_STATS {
            out.push(format!("{base}.{stat}"));
        }
    }
    out
}

/// Default practical-significance threshold τ (statistics.md §2.6): 2 % for throughputs and
/// other scalars, 3 % for mean/median latencies, 5 % for tails.
pub fn default_threshold(name: &str) -> f64 {
    match info(name) {
        Some(MetricInfo { tail: true, .. }) => 0.05,
        Some(MetricInfo {
            unit: Unit::Seconds,
            ..
        }) => 0.03,
        _ => 0.02,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_tails_are_lower_better_seconds_with_tail_flag() {
        let i = info("ttft.p99").unwrap();
        assert_eq!(
            (i.unit, i.better, i.tail),
            (Unit::Seconds, Better::Lower, true)
        );
        assert_eq!(default_threshold("ttft.p99"), 0.05);
        assert_eq!(default_threshold("ttft.mean"), 0.03);
        assert_eq!(default_threshold("output_throughput"), 0.02);
    }

    #[test]
    fn every_repetition_metric_has_a_unit_and_a_direction() {
        for name in REPETITION_METRICS {
            assert!(info(name).is_some(), "{name}");
        }
        let e = info("energy_per_token").unwrap();
        assert_eq!((e.unit, e.better), (Unit::JoulesPerToken, Better::Lower));
        let c = info("cost_per_1k_output_tokens").unwrap();
        assert_eq!((c.unit, c.better), (Unit::PricePer1kTokens, Better::Lower));
        assert_eq!(info("sm_util").unwrap().better, Better::Higher);
    }

    #[test]
    fn unknown_names_are_rejected() {
        assert!(info("ttft.p42").is_none());
        assert!(info("latency").is_none());
        assert!(all_summary_names().contains(&"itl.p99".to_string()));
        for name in DEFAULT_PRIMARY {
            assert!(info(name).is_some(), "{name}");
        }
    }
}
