//! The rows and blocks of the report's view model: plain serialisable structs whose fields
//! are the template contract (README, "Report templates").

use serde::Serialize;

/// Scenario identity.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioView {
    /// Path as given.
    pub file: String,
    /// First 12 hex digits of its SHA-256.
    pub sha256_short: String,
}

/// Run identity.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    /// Run id.
    pub id: String,
    /// `complete`, `interrupted`, …
    pub status: String,
    /// Start (RFC 3339).
    pub started: String,
    /// End, if finished.
    pub ended: Option<String>,
    /// What executed the requests.
    pub executor: String,
    /// exp version.
    pub exp_version: String,
    /// git revision of the working directory.
    pub git_revision: Option<String>,
    /// Host name.
    pub host: Option<String>,
    /// `--set` overrides (secrets redacted).
    pub overrides: Vec<String>,
}

/// Design summary.
#[derive(Debug, Clone, Serialize)]
pub struct DesignView {
    /// Cells.
    pub cells: usize,
    /// Planned repetitions per cell.
    pub repetitions: u32,
    /// Run order, in words.
    pub order: String,
    /// Experiment seed.
    pub seed: u64,
    /// Adaptive repetitions: the rule and why the run stopped adding rounds
    /// (`adaptive, 10 to 30 rounds until …; precision reached after 14 rounds`).
    pub adaptive: Option<String>,
}

/// A name and a text.
#[derive(Debug, Clone, Serialize)]
pub struct NameValue {
    /// Name.
    pub name: String,
    /// Value or text.
    pub value: String,
    /// Same as value (definitions read better as `text`).
    pub text: String,
}

impl NameValue {
    pub(super) fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        let value = value.into();
        NameValue {
            name: name.into(),
            text: value.clone(),
            value,
        }
    }
}

/// One check outcome.
#[derive(Debug, Clone, Serialize)]
pub struct CheckView {
    /// Cell label.
    pub cell: String,
    /// Metric.
    pub metric: String,
    /// Condition as written.
    pub condition: String,
    /// The CI bound judged, formatted.
    pub bound: String,
    /// `pass` or `**FAIL**` (with the reason).
    pub result: String,
}

/// A metric across cells.
#[derive(Debug, Clone, Serialize)]
pub struct MetricTable {
    /// Metric name.
    pub name: String,
    /// Readable title (`TTFT p99`).
    pub title: String,
    /// Unit in words.
    pub unit: String,
    /// `↓ better` or `↑ better`.
    pub better: String,
    /// One row per cell.
    pub rows: Vec<MetricRow>,
}

/// One cell's description of a metric.
#[derive(Debug, Clone, Serialize)]
pub struct MetricRow {
    /// Cell label.
    pub cell: String,
    /// Repetitions.
    pub n: usize,
    /// `mean ± std`.
    pub mean_std: String,
    /// `[low, high]`.
    pub ci: String,
    /// CV in %.
    pub cv: String,
}

/// One comparison row.
#[derive(Debug, Clone, Serialize)]
pub struct ComparisonView {
    /// What changed.
    pub change: String,
    /// What was held fixed.
    pub at: String,
    /// Metric.
    pub metric: String,
    /// Baseline mean ± std.
    pub base: String,
    /// Candidate mean ± std.
    pub cand: String,
    /// Relative change and its CI.
    pub delta: String,
    /// Primary p (paired t, or Welch).
    pub p: String,
    /// Holm-adjusted p.
    pub p_holm: String,
    /// Hedges' g.
    pub g: String,
    /// Minimum detectable effect at the achieved n (α, power 0.8), relative to the baseline.
    pub mde: String,
    /// Verdict, bold when it is a change, with τ and the MDE when useful.
    pub verdict: String,
    /// The bare verdict label.
    pub label: String,
}

/// Key values of one repetition.
#[derive(Debug, Clone, Serialize)]
pub struct RepetitionView {
    /// Cell label.
    pub cell: String,
    /// Round.
    pub round: u32,
    /// Requests sent.
    pub requests: u64,
    /// Requests that succeeded.
    pub ok: u64,
    /// Output throughput.
    pub output_throughput: String,
    /// Mean TTFT.
    pub ttft_mean: String,
    /// p99 TTFT.
    pub ttft_p99: String,
    /// Mean TPOT.
    pub tpot_mean: String,
    /// Mean E2E.
    pub e2e_mean: String,
    /// p99 queue delay.
    pub queue_delay_p99: String,
}
