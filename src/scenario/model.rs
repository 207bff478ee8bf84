//! Validated scenario types. Only these leave `scenario/`: every value here has been checked
//! (ranges, units, references), so later stages never re-validate.
//!
//! Two levels: [`Scenario`] is the whole file (with templates and sweeps unexpanded), and
//! [`CellConfig`] is what one cell of the matrix means once its variables are substituted
//! (see `Scenario::resolve`).

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use crate::backend::Protocol;
use crate::metrics::{Metric, MetricKey};

pub use super::arrival::ArrivalConfig;
pub use super::launch::*;
pub use super::repetitions::Adaptive;
pub use super::search::SearchSpec;

/// A variable's value in a cell. TOML integers, floats, strings and booleans.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float (never NaN or infinite).
    Float(f64),
    /// A string.
    Str(String),
}

impl Value {
    /// The value as a number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => write!(f, "{s}"),
        }
    }
}

/// The variables of one cell, by name (ordered, so ids and tables are deterministic).
pub type Vars = BTreeMap<String, Value>;

/// A whole validated scenario file.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file it came from.
    pub source: PathBuf,
    /// The file's text as read (copied into every run directory, hashed in the manifest).
    pub text: String,
    /// `[experiment]`.
    pub experiment: Experiment,
    /// `[vars]`: fixed values, sweeps, linked groups, exclusions, labels.
    pub vars: VarSpec,
    /// `[slo]`: per-request thresholds, by per-request metric name (`ttft`, `tpot`, `e2e`, …).
    pub slo: BTreeMap<Metric, Duration>,
    /// `[checks]`: cell-level assertions, in file order.
    pub checks: Vec<Check>,
    /// `[analysis]`.
    pub analysis: Analysis,
    /// `[report]`.
    pub report: ReportSpec,
    /// `[search]`: find the highest load meeting the SLOs instead of running the matrix's
    /// load levels.
    pub search: Option<SearchSpec>,
    /// Warnings found while validating (e.g. fewer than 10 repetitions); they go in the report.
    pub warnings: Vec<String>,
    /// The `--set` overrides applied, as typed (`key=value`), in order; record them with the
    /// run, since `text` does not include them.
    pub overrides: Vec<String>,
    /// `[target]`, validated, templates unrendered (see `Scenario::resolve`).
    pub(super) target: super::target::TargetSpec,
    /// `[workload]`, validated, before the cell's variables fill it in.
    pub(super) workload: super::workload::WorkloadSpec,
    /// `[server]`, validated, templates unrendered.
    pub(super) server: Option<super::server::ServerSpec>,
    /// `[probes]`, validated, templates unrendered.
    pub(super) probes: Option<super::probes::ProbeSpec>,
    /// `[cost] gpu_hour`.
    pub(super) gpu_hour: Option<f64>,
    /// `[quality]`, before the cell's `context_tokens` fills it in.
    pub(super) quality: Option<super::quality::QualitySpec>,
    /// Where each key was written, for errors found after validation.
    pub(super) locs: super::error::Locs,
}

/// `[experiment]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    /// Slug used for the run directory (`[a-z0-9_-]`, 1–64 chars).
    pub name: String,
    /// Free text: what this scenario tests.
    pub description: String,
    /// Root of every random stream.
    pub seed: u64,
    /// Repetitions per cell (≥ 1; fewer than 10 is warned about). With `adaptive`, the
    /// minimum: the rounds run before the first look.
    pub repetitions: NonZeroU32,
    /// `repetitions = { min, max, target_ci }`: add rounds until the primary metrics are
    /// precise enough (statistics.md §2.8); `None` for a fixed number.
    pub adaptive: Option<Adaptive>,
    /// Order in which (cell, repetition) pairs run.
    pub order: RunOrder,
}

/// Order of (cell, repetition) pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunOrder {
    /// Each repetition round visits every cell once, in a fresh seeded order (default).
    RandomizedBlocks,
    /// Rounds visit cells in matrix order (for debugging; confounds drift with variables).
    Sequential,
    /// With a `[server]`: all repetitions of a server configuration on one launch, for
    /// expensive launches (confounds drift with the server's variables; the report says so).
    Grouped,
}

/// The scenario spelling (`randomized-blocks`, `sequential`), for plans and reports.
impl std::fmt::Display for RunOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunOrder::RandomizedBlocks => "randomized-blocks",
            RunOrder::Sequential => "sequential",
            RunOrder::Grouped => "grouped",
        })
    }
}

/// `[vars]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VarSpec {
    /// `[vars.fixed]`: the same value in every cell.
    pub fixed: Vars,
    /// `[vars.sweep]`: each variable's levels, in declaration order (ranges expanded).
    pub sweep: Vec<(String, Vec<Value>)>,
    /// `[vars.linked.<group>]`: variables that move together; every list in a group has the
    /// same length and position `i` of each forms one level of the group.
    pub linked: Vec<LinkedGroup>,
    /// `exclude = ["concurrency > max_num_seqs", …]`: minijinja expressions; a cell where
    /// any is true is skipped.
    pub exclude: Vec<String>,
    /// `labels = ["tp"]`: engine variables that only label cells (nothing acts on them).
    pub labels: Vec<String>,
}

/// A group of linked variables.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedGroup {
    /// The group's name (`shape` in `[vars.linked.shape]`).
    pub name: String,
    /// Variable name → its levels (all lists the same length).
    pub vars: Vec<(String, Vec<Value>)>,
}

/// One `[checks]` entry: `"ttft.p99" = "< 800ms"`.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Summary metric (`ttft.p99`, `error_rate`, `output_throughput`…).
    pub metric: MetricKey,
    /// Comparison.
    pub op: CheckOp,
    /// Threshold in the metric's base unit (seconds for latencies, 1/s for rates, fraction for
    /// ratios).
    pub threshold: f64,
    /// The text as written, for messages.
    pub text: String,
}

/// Comparison of a check. `<`/`<=` are judged on the upper 95 % confidence bound of the cell's
/// mean, `>`/`>=` on the lower bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// The `[analysis] thresholds` key of the capacity at the SLO: τ of `exp compare`'s capacity
/// comparison of two `[search]` runs (not a summary metric).
pub const CAPACITY_THRESHOLD: &str = "capacity";

/// `[analysis]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// Significance level (default 0.05).
    pub alpha: f64,
    /// Primary metrics (summary names); default `output_throughput`, `ttft.mean`, `ttft.p99`,
    /// `tpot.mean`, `itl.p99`, `e2e.mean`.
    pub primary: Vec<MetricKey>,
    /// Practical-significance thresholds τ as fractions, overriding the defaults per metric.
    pub thresholds: BTreeMap<MetricKey, f64>,
    /// τ of the capacity at the SLO (`exp compare` of two `[search]` runs): the
    /// [`CAPACITY_THRESHOLD`] key of `thresholds`.
    pub capacity_threshold: Option<f64>,
    /// Variables that are load levels (default `request_rate`, `concurrency`).
    pub load: Vec<String>,
    /// A baseline cell, by variable values; every other cell is compared with it.
    pub baseline: Option<Vars>,
    /// CV above which a cell is warned about, as a fraction (default 0.05 for means and
    /// throughput; tails use twice this).
    pub cv_warn: f64,
}

impl Analysis {
    /// Practical-significance threshold τ of a metric: the scenario's, else the metric's
    /// default (statistics.md §2.6).
    pub fn threshold(&self, metric: MetricKey) -> f64 {
        (self.thresholds.get(&metric).copied()).unwrap_or_else(|| metric.default_threshold())
    }
}

/// `[report]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReportSpec {
    /// A template to render instead of the embedded `templates/report.md.j2`.
    pub template: Option<PathBuf>,
}

/// What one cell means: the scenario with the cell's variables substituted.
#[derive(Debug, Clone, PartialEq)]
pub struct CellConfig {
    /// The target to measure.
    pub target: TargetConfig,
    /// The load and the prompts.
    pub workload: WorkloadConfig,
    /// Engine variables (act on the simulated engine or a launched server).
    pub engine: EngineConfig,
    /// The server exp launches (or waits for) for this cell.
    pub server: Option<ServerConfig>,
    /// What to sample while a repetition runs.
    pub probes: Option<ProbeConfig>,
    /// Price of the deployment.
    pub cost: Option<CostConfig>,
    /// What is scored beside the load (`[quality]`).
    pub quality: Option<QualityConfig>,
}

/// `[quality]` of one cell: perplexity of the user's corpus and retrieval accuracy on seeded
/// items, scored on the cell's server after each repetition's load (`when =
/// "after-repetition"`) or mixed into it (`when = "under-load"`).
#[derive(Debug, Clone, PartialEq)]
pub struct QualityConfig {
    /// Perplexity of a corpus, from the server's prompt log-probs.
    pub perplexity: Option<PerplexityConfig>,
    /// Long-context retrieval on seeded items.
    pub retrieval: Option<RetrievalConfig>,
    /// When the items are scored.
    pub when: QualityWhen,
}

/// `[quality] when`: after each repetition's load, or mixed into it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QualityWhen {
    /// On the same server right after the repetition's load (the default).
    AfterRepetition,
    /// Mixed into the measured load: this fraction of arrivals, in (0, 0.5], are quality
    /// items instead of measured requests.
    UnderLoad {
        /// Fraction of arrivals.
        share: f64,
    },
}

/// `[quality] perplexity`.
#[derive(Debug, Clone, PartialEq)]
pub struct PerplexityConfig {
    /// The user's text: `.jsonl` (`{"text": …}` per line) or `.txt` (documents separated by
    /// blank lines).
    pub corpus: std::path::PathBuf,
    /// Documents scored, from the corpus's start (`None`: all).
    pub documents: Option<u32>,
    /// Longest prompt scored at once; longer documents are scored in overlapping windows.
    pub window_tokens: Option<u32>,
}

/// `[quality] retrieval` of one cell.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievalConfig {
    /// Which items.
    pub task: RetrievalTask,
    /// Length of each item's prompt, in tokens.
    pub context_tokens: u32,
    /// Items per repetition.
    pub trials: u32,
    /// Where the key sits in the filler (0 = start, 1 = end); item i at `depths[i % len]`.
    pub depths: Vec<f64>,
    /// Tokens generated per answer.
    pub max_tokens: u32,
}

/// The retrieval task (`passkey`, `niah`): the items themselves are `quality`'s.
pub use crate::quality::Task as RetrievalTask;

/// Kind of target: the simulator, or a server spoken to in one of the wire protocols. The
/// scenario spellings are `sim` and each [`Protocol::name`] (`openai-completions`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// The built-in simulated engine, in virtual time.
    Sim,
    /// A server over HTTP, in this protocol.
    Http(Protocol),
}

impl TargetKind {
    /// Every kind, in the order hints and error messages list them: `sim`, then the protocols.
    pub fn all() -> impl Iterator<Item = TargetKind> {
        std::iter::once(TargetKind::Sim).chain(Protocol::ALL.map(TargetKind::Http))
    }

    /// The scenario spelling (`sim`, `openai-completions`, `openai-chat`).
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Sim => "sim",
            TargetKind::Http(protocol) => protocol.name(),
        }
    }

    /// The kind `name` selects, if any.
    pub fn parse(name: &str) -> Option<TargetKind> {
        TargetKind::all().find(|k| k.name() == name)
    }
}

/// The scenario spelling, for plans and reports.
impl std::fmt::Display for TargetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `[target]`, rendered for one cell.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetConfig {
    /// Which protocol (or the simulator).
    pub kind: TargetKind,
    /// Base URL including `/v1` (HTTP kinds).
    pub base_url: Option<String>,
    /// Model name to send; `None` means the first one the server lists at `/v1/models`.
    pub model: Option<String>,
    /// Name of the environment variable holding the API key (the key is never stored).
    pub api_key_env: Option<String>,
    /// Extra headers: (name, value, secret). Secret values are never written anywhere.
    pub headers: Vec<Header>,
    /// Total time limit per request.
    pub timeout: Duration,
    /// Longest silence allowed mid-stream (any byte, keep-alive comments included, resets it).
    pub idle_timeout: Duration,
    /// Longest wait between generated tokens once the first has arrived, which keep-alive
    /// comments do not reset (`None`: only `idle_timeout` and `timeout` apply).
    pub token_timeout: Option<Duration>,
    /// Send `ignore_eos: true` so the output length is forced (default true).
    pub ignore_eos: bool,
    /// A local `tokenizer.json` for exact prompt lengths, if given.
    pub tokenizer: Option<PathBuf>,
    /// The hardware the target runs on, for theory (MFU/MBU) and the simulator.
    pub hardware: Option<HardwareConfig>,
    /// Simulator settings (only for `kind = "sim"`).
    pub sim: Option<SimConfig>,
}

/// An extra HTTP header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name.
    pub name: String,
    /// Header value (rendered).
    pub value: String,
    /// Never written to disk or printed when true.
    pub secret: bool,
}

/// Model and GPU of a deployment: `[target] model_config`, `gpu`, `gpus`.
#[derive(Debug, Clone, PartialEq)]
pub struct HardwareConfig {
    /// Catalog name (`llama-3.1-8b`) or path to a Hugging Face `config.json`.
    pub model_config: String,
    /// Catalog name (`h100-sxm`) or path to a GPU TOML file.
    pub gpu: String,
    /// GPUs serving one replica (tensor parallel group × replicas).
    pub gpus: NonZeroU32,
}

/// `[target]` settings specific to the simulated engine.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// `ideal`, `calibrated`, or a path to a profile written by `exp calibrate`.
    pub preset: String,
    /// Coefficient of variation of step-time noise (default 0.02; 0 = bit-identical runs).
    pub noise_cv: f64,
    /// Share of GPU memory the engine may use (default 0.9).
    pub gpu_memory_utilization: f64,
    /// KV-cache block size in tokens (default 16).
    pub block_size: u32,
}

/// Engine variables of a cell (`tp`, `max_num_seqs`, `max_num_batched_tokens`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// Tensor-parallel degree (default 1).
    pub tp: NonZeroU32,
    /// Most sequences in one batch (default 256).
    pub max_num_seqs: NonZeroU32,
    /// Token budget per step (default 8192).
    pub max_num_batched_tokens: NonZeroU32,
}

/// The workload of one cell.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadConfig {
    /// Where prompts come from.
    pub prompts: PromptSource,
    /// Mean prompt length in tokens (`prompt_tokens`).
    pub prompt_tokens: u32,
    /// How prompt lengths vary around the mean.
    pub prompt_dist: LengthDist,
    /// Requested output length (`output_tokens`).
    pub output_tokens: u32,
    /// How output lengths vary around the mean.
    pub output_dist: LengthDist,
    /// The release process.
    pub arrival: ArrivalConfig,
    /// Cap on in-flight requests for open-loop arrivals.
    pub max_concurrency: Option<NonZeroU32>,
    /// Measured requests per repetition (`requests`); at least one of this and `duration`.
    pub requests: Option<u64>,
    /// Length of a repetition (`duration`).
    pub duration: Option<Duration>,
    /// Warm-up requests per repetition, sent and discarded.
    pub warmup: u32,
    /// Drain time for requests in flight at the deadline.
    pub grace: Duration,
}

/// Where prompts come from.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptSource {
    /// Seeded synthetic text of the requested length.
    Synthetic,
    /// Groups of prompts sharing a prefix (system-prompt / RAG traffic).
    SharedPrefix {
        /// Number of distinct prefixes.
        groups: NonZeroU32,
        /// Tokens in each shared prefix (part of `prompt_tokens`).
        prefix_tokens: u32,
    },
    /// One JSON object per line with a `prompt` string (optional `output_tokens`).
    Jsonl(PathBuf),
    /// A ShareGPT-format JSON array (first human turn is the prompt).
    ShareGpt(PathBuf),
    /// A ShareGPT-format JSON array replayed as multi-turn conversations, turn by turn.
    Conversations {
        /// The dataset.
        path: PathBuf,
        /// Pause between a turn's completion and the next turn (`think_time`, default 0).
        think_time: Duration,
    },
}

/// Distribution of a length around its mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LengthDist {
    /// Every request has exactly the mean.
    Fixed,
    /// Uniform in [mean·(1−spread), mean·(1+spread)].
    Uniform {
        /// Relative half-width.
        spread: f64,
    },
    /// Normal with this coefficient of variation, truncated at 1.
    Normal {
        /// std / mean.
        cv: f64,
    },
    /// Lognormal with this σ of the log, scaled so the mean is the mean.
    Lognormal {
        /// σ of ln(length).
        sigma: f64,
    },
}
