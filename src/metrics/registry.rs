//! The metric registry: every metric exp publishes, declared once with its name, unit, better
//! direction, kind, how it is computed and its default practical threshold. Validation
//! (`[slo]`, `[checks]`, `[analysis]`), summaries, analysis, warnings, report tables and
//! `summary.json` all read from here (see README, "Metrics").
//!
//! Code names a metric with a [`Metric`] variant, so a misspelled metric is a compile error;
//! a scenario names it with text, parsed by [`MetricKey::parse`] (unknown names get a located
//! error with a did-you-mean hint from [`MetricKey::all`]). Adding a metric: one row of the
//! `metrics!` table below (its variant, declaration and, for a per-request metric, the field
//! of `RequestMetrics` it reads) and its producer.

use std::fmt;

use super::request::RequestMetrics;
use crate::stats::Scale;

#[cfg(test)]
pub(crate) use super::key::k;
pub use super::key::{DEFAULT_PRIMARY, MetricKey, REPORTED};

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
    /// Samples (batched requests) per second.
    SamplesPerSecond,
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

/// What a metric is a number of, which decides how a repetition reduces it to one value and
/// how repetitions are compared ([`Kind::scale`], [`Kind::default_threshold`]). Every kind is
/// compared on its per-repetition values (statistics.md §2); a kind with another sample unit
/// (a per-document paired perplexity) adds its own test here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// One value per request, summarised per repetition by every [`Stat`] (`ttft.p99`).
    Distribution,
    /// A rate, a length of time or a count of one repetition.
    Repetition,
    /// A share of the repetition's requests (error rate, SLO attainment).
    Proportion,
    /// What the deployment or the client used, from probes, the hardware model or the
    /// completion marker.
    Resource,
    /// A price, from `[cost]`.
    Cost,
    /// Perplexity of the corpus (`[quality]`): compared by paired differences of the same
    /// documents' log-likelihoods between cells, not by its per-repetition values.
    Perplexity,
    /// Share of the same retrieval items answered exactly (`[quality]`): Wilson intervals,
    /// and exact McNemar on the items that two cells answered differently.
    Accuracy,
}

impl Kind {
    /// The scale changes are measured on: a proportion can be 0 (no errors, every request
    /// within the SLO), where a ratio to the baseline does not exist, so it changes by
    /// percentage points (Welch's CI of the difference); everything else is positive and
    /// changes by a fraction of the baseline (Fieller's CI of the ratio).
    pub const fn scale(self) -> Scale {
        match self {
            Kind::Proportion | Kind::Accuracy => Scale::Absolute,
            Kind::Distribution
            | Kind::Repetition
            | Kind::Resource
            | Kind::Cost
            | Kind::Perplexity => Scale::Relative,
        }
    }

    /// Default practical-significance threshold τ on [`Kind::scale`] (statistics.md §2.6):
    /// one percentage point for proportions, 1 % for perplexity, two points for accuracy;
    /// otherwise 5 % for tail statistics, 3 % for other times (mean and median latencies,
    /// durations) and 2 % for everything else.
    pub fn default_threshold(self, unit: Unit, tail: bool) -> f64 {
        match (self, tail, unit) {
            (Kind::Proportion, _, _) => 0.01,
            (Kind::Perplexity, _, _) => 0.01,
            (Kind::Accuracy, _, _) => 0.02,
            (_, true, _) => 0.05,
            (_, false, Unit::Seconds) => 0.03,
            _ => 0.02,
        }
    }
}

/// Statistics of a [`Kind::Distribution`] metric over one repetition's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stat {
    /// Arithmetic mean.
    Mean,
    /// Sample standard deviation (n − 1).
    Std,
    /// Smallest value.
    Min,
    /// Median (type 7).
    P50,
    /// 90th percentile (type 7).
    P90,
    /// 95th percentile (type 7).
    P95,
    /// 99th percentile (type 7).
    P99,
    /// Largest value.
    Max,
}

impl Stat {
    /// Every statistic, in the order summaries list them.
    pub const ALL: [Stat; 8] = [
        Stat::Mean,
        Stat::Std,
        Stat::Min,
        Stat::P50,
        Stat::P90,
        Stat::P95,
        Stat::P99,
        Stat::Max,
    ];

    /// The suffix in `ttft.p99`.
    pub const fn name(self) -> &'static str {
        match self {
            Stat::Mean => "mean",
            Stat::Std => "std",
            Stat::Min => "min",
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P95 => "p95",
            Stat::P99 => "p99",
            Stat::Max => "max",
        }
    }

    /// Tail statistics (p90 and above, max) get wider default thresholds.
    pub const fn is_tail(self) -> bool {
        matches!(self, Stat::P90 | Stat::P95 | Stat::P99 | Stat::Max)
    }

    /// Parses the suffix of `ttft.p99`.
    pub fn parse(s: &str) -> Option<Stat> {
        Stat::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// Everything declared about one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// Name as published (`ttft`, `output_throughput`).
    pub name: &'static str,
    /// Unit of stored values.
    pub unit: Unit,
    /// Better direction.
    pub better: Better,
    /// What it is a number of.
    pub kind: Kind,
    /// May bound a request in `[slo]`.
    pub slo: bool,
}

const fn spec(name: &'static str, unit: Unit, better: Better, kind: Kind) -> Spec {
    Spec {
        name,
        unit,
        better,
        kind,
        slo: false,
    }
}

/// A per-request latency that `[slo]` may bound.
const fn latency(name: &'static str, slo: bool) -> Spec {
    Spec {
        slo,
        ..spec(name, Unit::Seconds, Better::Lower, Kind::Distribution)
    }
}

/// The field of `RequestMetrics` a per-request metric reads, or `None`.
macro_rules! request_field {
    ($m:ident) => {
        None
    };
    ($m:ident, $field:ident) => {
        $m.$field
    };
}

/// Declares [`Metric`], [`Metric::ALL`], [`Metric::spec`] and [`Metric::request_value`] from
/// one table, so a metric cannot be declared in one and forgotten in another. A row is
/// `Variant => spec; request_field` (the field only for metrics with one value per request).
macro_rules! metrics {
    ($($variant:ident => $spec:expr $(; $field:ident)?),* $(,)?) => {
        /// Every metric exp publishes. See README, "Metrics", for the definitions.
        #[allow(missing_docs)] // each variant is the metric of the same name in README's tables
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Metric {
            $($variant,)*
        }

        impl Metric {
            /// Every metric, in the order hints and lists show them: per-request ones first.
            pub const ALL: [Metric; [$(stringify!($variant)),*].len()] = [$(Metric::$variant),*];

            /// The declaration of this metric.
            pub const fn spec(self) -> Spec {
                use Better::{Higher, Lower};
                use Kind::{
                    Accuracy, Cost, Distribution, Perplexity, Proportion, Repetition, Resource,
                };
                use Unit::*;
                match self {
                    $(Metric::$variant => $spec,)*
                }
            }

            /// The value of a per-request metric for one request (`None` when undefined for
            /// it, and for every metric that is not per-request). `itl` has one value per
            /// token, and `chunk_gap` one per gap: [`super::request::itl_values`],
            /// [`super::request::chunk_gaps`].
            pub fn request_value(self, m: &RequestMetrics) -> Option<f64> {
                match self {
                    $(Metric::$variant => request_field!(m $(, $field)?),)*
                }
            }
        }
    };
}

metrics! {
    Ttft => latency("ttft", true); ttft,
    TtftSched => latency("ttft_sched", true); ttft_sched,
    Ttfo => latency("ttfo", true); ttfo,
    E2e => latency("e2e", true); e2e,
    E2eSched => latency("e2e_sched", true); e2e_sched,
    QueueDelay => latency("queue_delay", false); queue_delay,
    Tpot => latency("tpot", true); tpot,
    Ntpot => latency("ntpot", true); ntpot,
    Itl => latency("itl", true),
    ChunkGap => latency("chunk_gap", false),
    Tps => spec("tps", TokensPerSecond, Higher, Distribution); tps,
    DecodeTps => spec("decode_tps", TokensPerSecond, Higher, Distribution); decode_tps,
    Duration => spec("duration", Seconds, Lower, Repetition),
    Requests => spec("requests", Count, Higher, Repetition),
    Completed => spec("completed", Count, Higher, Repetition),
    Failed => spec("failed", Count, Lower, Repetition),
    Conversations => spec("conversations", Count, Higher, Repetition),
    RequestThroughput => spec("request_throughput", RequestsPerSecond, Higher, Repetition),
    SamplesPerS => spec("samples_per_s", SamplesPerSecond, Higher, Repetition),
    StepTime => spec("step_time", Seconds, Lower, Repetition),
    OutputThroughput => spec("output_throughput", TokensPerSecond, Higher, Repetition),
    TotalThroughput => spec("total_throughput", TokensPerSecond, Higher, Repetition),
    Goodput => spec("goodput", RequestsPerSecond, Higher, Repetition),
    SloAttainment => spec("slo_attainment", Fraction, Higher, Proportion),
    ErrorRate => spec("error_rate", Fraction, Lower, Proportion),
    AchievedRate => spec("achieved_rate", RequestsPerSecond, Higher, Repetition),
    ScheduledRate => spec("scheduled_rate", RequestsPerSecond, Higher, Repetition),
    Concurrency => spec("concurrency", Count, Higher, Repetition),
    TokensPerChunk => spec("tokens_per_chunk", Count, Higher, Repetition),
    OutputLengthShortfall => spec("output_length_shortfall", Fraction, Lower, Proportion),
    Mfu => spec("mfu", Fraction, Higher, Resource),
    Mbu => spec("mbu", Fraction, Higher, Resource),
    GpuMemUtil => spec("gpu_mem_util", Fraction, Lower, Resource),
    GpuMemUtilMax => spec("gpu_mem_util_max", Fraction, Lower, Resource),
    SmUtil => spec("sm_util", Fraction, Higher, Resource),
    SmUtilMax => spec("sm_util_max", Fraction, Higher, Resource),
    Power => spec("power", Watts, Lower, Resource),
    PowerMax => spec("power_max", Watts, Lower, Resource),
    Energy => spec("energy", Joules, Lower, Resource),
    EnergyPerToken => spec("energy_per_token", JoulesPerToken, Lower, Resource),
    KvCacheUsage => spec("kv_cache_usage", Fraction, Lower, Resource),
    KvCacheUsageMax => spec("kv_cache_usage_max", Fraction, Lower, Resource),
    ServerRunning => spec("server_running", Count, Higher, Resource),
    ServerWaiting => spec("server_waiting", Count, Lower, Resource),
    Preemptions => spec("preemptions", Count, Lower, Resource),
    PrefixCacheHitRate => spec("prefix_cache_hit_rate", Fraction, Higher, Resource),
    NetUtil => spec("net_util", Fraction, Lower, Resource),
    ClientCpu => spec("client_cpu", Cores, Lower, Resource),
    ServerCpu => spec("server_cpu", Cores, Lower, Resource),
    CostPer1kTokens => spec("cost_per_1k_tokens", PricePer1kTokens, Lower, Cost),
    CostPer1kOutputTokens => spec("cost_per_1k_output_tokens", PricePer1kTokens, Lower, Cost),
    // What the load generator itself cost (the completion marker): less is better.
    ClientCpuPerRequest => spec("client_cpu_per_request", Seconds, Lower, Resource),
    ClientCpuUtil => spec("client_cpu_util", Fraction, Lower, Resource),
    ClientCpuWait => spec("client_cpu_wait", Fraction, Lower, Resource),
    ClientCores => spec("client_cores", Count, Higher, Resource),
    // `[quality]`: from the repetition's quality pass.
    Ppl => spec("ppl", Count, Lower, Perplexity),
    RetrievalAccuracy => spec("retrieval_accuracy", Fraction, Higher, Accuracy),
}

impl Metric {
    /// Name as published.
    pub const fn name(self) -> &'static str {
        self.spec().name
    }

    /// The per-request metrics a scenario's `[slo]` may bound.
    pub fn slo_metrics() -> impl Iterator<Item = Metric> {
        Metric::ALL.into_iter().filter(|m| m.spec().slo)
    }

    /// Parses a bare metric name (`ttft`).
    pub fn parse(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl Ord for Metric {
    /// By name, so maps keyed by metric list them as text would.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name().cmp(other.name())
    }
}

impl PartialOrd for Metric {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl serde::Serialize for Metric {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Metric {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Metric::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown metric `{text}`")))
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The definitions a report's footnote gives, in its order (README, "Metrics", has them all).
pub const DEFINED: [(Metric, &str); 9] = [
    (Metric::Ttft, "first content chunk − sent"),
    (
        Metric::TtftSched,
        "first content chunk − scheduled send (includes client queueing)",
    ),
    (
        Metric::Tpot,
        "(e2e − ttft) / (output tokens − tokens of the first chunk)",
    ),
    (
        Metric::Itl,
        "gap between consecutive content chunks / tokens of the later chunk, once per token",
    ),
    (Metric::ChunkGap, "gap between consecutive content chunks"),
    (Metric::E2e, "last content chunk − sent"),
    (Metric::QueueDelay, "sent − scheduled (client lateness)"),
    (
        Metric::OutputThroughput,
        "Σ output tokens (server usage) / window",
    ),
    (Metric::Goodput, "requests ok and within every SLO / window"),
];

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
