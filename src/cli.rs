//! Command-line interface: clap types, converted into `app` requests here and nowhere else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// exp: did this change make LLM serving faster, cheaper or worse — and is the difference real?
#[derive(Debug, Parser)]
#[command(name = "exp", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check scenario files (every *.toml under each folder) and list every problem.
    Validate {
        /// Scenario files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print the expanded matrix, run order, request count and estimated time; sends nothing.
    Plan {
        /// The scenario file.
        scenario: PathBuf,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Run a scenario and write its run directory and report.
    Run(RunArgs),
    /// Re-render the report of a run directory from its saved results.
    Report {
        /// The run directory (reports/<scenario>/<run-id>/).
        run_dir: PathBuf,
        /// A minijinja template to render instead of the embedded one.
        #[arg(long)]
        template: Option<PathBuf>,
        /// Print to standard output instead of writing into the run directory.
        #[arg(long)]
        stdout: bool,
        /// `md` renders report.md; `json` and `csv` export the per-repetition and per-cell
        /// tables (export.json; repetitions.csv and cells.csv) for plotting elsewhere.
        #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
        format: ReportFormat,
    },
    /// Join the run directories of `exp run --shard K/N` (every K of one N) into one run
    /// directory, checked to belong together, and report it as if it had run on one machine.
    Merge(MergeArgs),
    /// Write a Slurm batch script: a job array with one task per shard and a merge job that
    /// runs when every shard succeeded (`afterok`).
    Slurm(SlurmArgs),
    /// Write Kubernetes manifests: an Indexed Job with one pod per shard and a merge Job.
    K8s(K8sArgs),
    /// Roofline estimate of a model on a GPU: parameters, FLOPs, memory, TTFT/TPOT floors.
    Estimate(EstimateArgs),
    /// Compare a candidate run with a baseline run: every cell present in both, every primary
    /// metric, with Δ, Fieller CI, Welch p (Holm-adjusted) and a verdict; writes Markdown for a
    /// pull request. Exit 0 ok, 1 when --fail-on is met, 2 when nothing valid could be compared.
    Compare(CompareArgs),
    /// Serve an OpenAI-compatible streaming endpoint: the simulated engine in real time, or a
    /// server with fixed timing (to measure a proxy, or exp itself).
    Serve(ServeArgs),
    /// Capacity at the SLO: the highest load at which SLO attainment stays at or above the
    /// scenario's `[search]` target, by bracketing and bisection, each probe repeated
    /// (`exp run` does the same for a scenario with `[search]`; resume with `exp run --resume`).
    Search(SearchArgs),
    /// Self-tests: `exp selftest stats` proves the statistics are calibrated (A/A false
    /// positives near α, detection near the analytical power); `exp selftest fidelity` sets the
    /// simulated engine against published measurements; `exp selftest steps` sets its step
    /// times against steps timed on a GPU. Exit 1 when a figure is out of range.
    Selftest {
        /// Which self-test.
        #[command(subcommand)]
        which: Selftest,
    },
    /// Fit the simulator's efficiency factors and step overhead to a run's low-load TTFT and
    /// TPOT, and write a profile for `[target] sim_preset`.
    Calibrate {
        /// The run directory (reports/<scenario>/<run-id>/), e.g. of
        /// scenarios/calibrate_low_load.toml run against your server.
        run_dir: PathBuf,
        /// Where to write the profile (default: <run-dir>/profile.toml).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Model (catalog name or config.json path); overrides `[target] model_config`.
        #[arg(long)]
        model: Option<String>,
        /// GPU (catalog name or GPU TOML path); overrides `[target] gpu`.
        #[arg(long)]
        gpu: Option<String>,
    },
}

/// `--target` and `--set`, shared by `plan` and `run`.
#[derive(Debug, Args, Clone, Default)]
pub struct TargetArgs {
    /// Base URL of an OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1); overrides
    /// `[target] base_url` and switches a simulated scenario to `openai-completions`.
    #[arg(long)]
    pub target: Option<String>,
    /// Override a scenario value for this run, e.g. `--set experiment.repetitions=3` or
    /// `--set vars.sweep.request_rate=[5,10]`; recorded in the manifest.
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub set: Vec<String>,
}

/// `exp run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario file (omit with --resume).
    #[arg(required_unless_present = "resume")]
    pub scenario: Option<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Where run directories go.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// Continue an interrupted run without redoing finished repetitions. A run given secrets
    /// (which exp never saves) takes them again with `--set`, as the first run did.
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["scenario", "target"])]
    pub resume: Option<PathBuf>,
    /// Do not draw the progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// After the run, compare it with this earlier run directory (the baseline) and write
    /// compare.md into the new run directory.
    #[arg(long, value_name = "RUN_DIR")]
    pub baseline: Option<PathBuf>,
    /// With --baseline: exit 1 when the comparison finds this (and 2 when it is invalid).
    #[arg(long, value_enum, requires = "baseline")]
    pub fail_on: Option<FailOn>,
    /// With --baseline: while a verdict is inconclusive or `possible …`, add 5 rounds and
    /// compare again, at most this many times (0–2). Every look is then judged at Pocock's
    /// nominal α (0.0294 for 2 looks, 0.0221 for 3 at α = 0.05), so looking again does not
    /// raise the false-positive rate.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "baseline",
          value_parser = clap::value_parser!(u32).range(0..=2))]
    pub extra_looks: u32,
    /// Run shard K of N: the rounds r with r mod N = K − 1, each whole (every cell, in the
    /// round's seeded order), into an ordinary run directory. `exp merge` joins the shards.
    #[arg(long, value_name = "K/N", value_parser = parse_shard, conflicts_with = "resume")]
    pub shard: Option<crate::shard::Shard>,
    /// With --shard: deal out whole cells instead of rounds (cell c on shard c mod N + 1,
    /// every round of it). Comparisons between cells of different shards then include the
    /// nodes' difference, and the report says so; use it only when cells must stay on one
    /// node (e.g. each server configuration launched on its own machine).
    #[arg(
        long,
        value_enum,
        value_name = "WHAT",
        requires = "shard",
        default_value = "rounds"
    )]
    pub shard_by: ShardByArg,
    /// Send client K of N's share of every repetition's load (request i when i mod N = K − 1;
    /// batches whole; a closed loop's places split), from the shared --start-at instant. Every
    /// client runs every repetition; `exp merge --clients` joins them into one run.
    #[arg(long, value_name = "K/N", value_parser = parse_client,
          conflicts_with_all = ["resume", "shard"], requires = "start_at")]
    pub client: Option<crate::fanout::Client>,
    /// With --client: the UTC instant every client starts its first repetition at, e.g.
    /// 2025-06-01T12:00:00.250Z (the same on every client; leave time for warm-up).
    #[arg(long, value_name = "INSTANT", value_parser = parse_start_at, requires = "client")]
    pub start_at: Option<std::time::SystemTime>,
    /// With --client: a client whose measured requests would start more than this after the
    /// shared instant sends none and fails the repetition.
    #[arg(long, value_name = "DURATION", default_value = "50ms", value_parser = parse_skew,
          requires = "client")]
    pub max_skew: std::time::Duration,
    /// Name the run directory `<out>/<scenario>/<ID>` instead of by the start time (a
    /// shard's default ends in `-shard-K-of-N`).
    #[arg(long, value_name = "ID", conflicts_with = "resume")]
    pub run_id: Option<String>,
}

fn parse_shard(text: &str) -> Result<crate::shard::Shard, String> {
    crate::shard::Shard::parse(text).map_err(|e| e.reason().to_string())
}

fn parse_client(text: &str) -> Result<crate::fanout::Client, String> {
    crate::fanout::Client::parse(text).map_err(|e| e.reason().to_string())
}

fn parse_start_at(text: &str) -> Result<std::time::SystemTime, String> {
    crate::fanout::parse_start_at(text).map_err(|e| e.reason().to_string())
}

fn parse_skew(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (write e.g. `50ms` or `60s`)"))
}

/// `exp merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' run directories (`exp run --shard K/N`), one per shard, in any order.
    #[arg(required_unless_present = "clients")]
    pub shards: Vec<PathBuf>,
    /// Join fanned-out clients instead (`exp run --client K/N`): their run directories, one
    /// per client, in any order; each repetition's shares become one repetition.
    #[arg(long, value_name = "DIR", num_args = 1.., conflicts_with = "shards")]
    pub clients: Vec<PathBuf>,
    /// The merged run directory to create (it must not exist yet).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// What `exp slurm` and `exp k8s` fan out: rounds (or cells) over shards, or one load over
/// clients.
#[derive(Debug, Args)]
pub struct FanoutArgs {
    /// Number of shards (array tasks, or completions of the Indexed Job, all in parallel).
    #[arg(long, required_unless_present = "clients", conflicts_with = "clients")]
    pub shards: Option<u32>,
    /// Fan one load out over this many clients instead (`exp run --client K/N` in N `srun`
    /// tasks or pods, all from one start instant), then `exp merge --clients`.
    #[arg(long, value_name = "N")]
    pub clients: Option<u32>,
    /// What each shard holds: whole rounds (default) or, confounding cells with nodes, whole
    /// cells (as `exp run --shard-by`).
    #[arg(
        long,
        value_enum,
        value_name = "WHAT",
        default_value = "rounds",
        conflicts_with = "clients"
    )]
    pub shard_by: ShardByArg,
}

/// `exp slurm`.
#[derive(Debug, Args)]
pub struct SlurmArgs {
    /// The scenario file, as the cluster's nodes will read it (a shared file system).
    pub scenario: PathBuf,
    #[command(flatten)]
    pub fanout: FanoutArgs,
    /// With --clients: how long after the job starts the clients' load starts (`--start-at`
    /// is computed when the job starts; leave room for every task to start and warm up).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_skew,
          requires = "clients")]
    pub start_delay: std::time::Duration,
    /// Slurm partition for the shards and the merge.
    #[arg(long)]
    pub partition: Option<String>,
    /// Where run directories go, on the shared file system (as `exp run --out`).
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// Folder to write the scripts into (default: slurm/<scenario name>).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The exp program the nodes run (default: this one's path).
    #[arg(long, value_name = "PATH")]
    pub exp: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Further sbatch options for the shards' job, after `--` (e.g. `-- --gres=gpu:1
    /// --time=02:00:00`).
    #[arg(last = true, value_name = "SBATCH_OPTION")]
    pub sbatch: Vec<String>,
}

/// `exp k8s`.
#[derive(Debug, Args)]
pub struct K8sArgs {
    /// The scenario file (put into a ConfigMap mounted at --scenario-path in every pod).
    pub scenario: PathBuf,
    #[command(flatten)]
    pub fanout: FanoutArgs,
    /// With --clients: how long after the first client pod starts the load starts (leave
    /// room for every pod to be scheduled, pull the image and warm up).
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = parse_skew,
          requires = "clients")]
    pub start_delay: std::time::Duration,
    /// The container image with exp in it.
    #[arg(long)]
    pub image: String,
    /// PersistentVolumeClaim (ReadWriteMany) that holds the run directories.
    #[arg(long, default_value = "exp-runs")]
    pub claim: String,
    /// Where the claim is mounted in the pods: run directories go under it.
    #[arg(long, default_value = "/runs")]
    pub runs_path: String,
    /// Where the scenario's ConfigMap is mounted in the pods.
    #[arg(long, default_value = "/scenario")]
    pub scenario_path: String,
    /// The exp program in the image.
    #[arg(long, default_value = "exp")]
    pub exp: String,
    /// Folder to write the manifests into (default: k8s/<scenario name>/<id>).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Kubernetes namespace of every object.
    #[arg(long)]
    pub namespace: Option<String>,
    /// How long the merge Job may wait for the shards (or clients) and merge before
    /// Kubernetes stops it (`activeDeadlineSeconds`): one that failed past its retries never
    /// finishes. Allow the whole experiment's time.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_skew)]
    pub merge_deadline: std::time::Duration,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `exp search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The scenario file (with a `[search]` table and `[slo]`).
    pub scenario: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Where run directories go.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// Do not draw the progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// `exp compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline run directory (e.g. the run on main).
    pub baseline: PathBuf,
    /// The candidate run directory (e.g. the run on the branch).
    pub candidate: PathBuf,
    /// Write the Markdown here instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 1 when the comparison finds this.
    #[arg(long, value_enum)]
    pub fail_on: Option<FailOn>,
}

/// What `--shard` deals out (`--shard-by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShardByArg {
    /// Whole rounds, every cell of each (the default: every comparison within one node).
    Rounds,
    /// Whole cells, every round of each (comparisons across nodes are confounded).
    Cells,
}

impl From<ShardByArg> for crate::shard::ShardBy {
    fn from(arg: ShardByArg) -> Self {
        match arg {
            ShardByArg::Rounds => crate::shard::ShardBy::Rounds,
            ShardByArg::Cells => crate::shard::ShardBy::Cells,
        }
    }
}

/// What makes a comparison fail (`--fail-on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Any `regression` verdict.
    Regression,
    /// Any regression, improvement, possible regression or possible improvement.
    AnyChange,
}

/// `exp estimate`.
#[derive(Debug, Args)]
pub struct EstimateArgs {
    /// Model: catalog name (llama-3.1-8b, qwen2.5-32b, …) or path to a config.json.
    #[arg(long)]
    pub model: String,
    /// GPU: catalog name (h100-sxm, h20, a100-80gb, …) or path to a GPU TOML file.
    #[arg(long)]
    pub gpu: String,
    /// Prompt tokens.
    #[arg(long, default_value_t = 1024)]
    pub prompt: u32,
    /// Output tokens.
    #[arg(long, default_value_t = 1024)]
    pub output: u32,
    /// Concurrent sequences in a decode batch.
    #[arg(long, default_value_t = 1)]
    pub batch: u32,
    /// Tensor-parallel degree.
    #[arg(long, default_value_t = 1)]
    pub tp: u32,
    /// `full` counts everything and applies the memory bound; `seed` reproduces the seed
    /// documents' simplified formulas.
    #[arg(long, value_enum, default_value_t = EstimateMethod::Full)]
    pub method: EstimateMethod,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Estimation method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EstimateMethod {
    /// Count norms, head and attention; apply compute and memory bounds.
    Full,
    /// The seed documents' simplified formulas, unrounded.
    Seed,
}

/// `exp serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Fixed timing, e.g. `ttft=100ms,itl=10ms`.
    #[arg(long, conflicts_with = "sim")]
    pub fixed: Option<String>,
    /// With --fixed: on exit, write when each request's first and last token were written
    /// to this file (JSON lines, raw CLOCK_MONOTONIC nanoseconds).
    #[arg(long, value_name = "FILE", requires = "fixed")]
    pub truth_log: Option<PathBuf>,
    /// Serve the simulated engine in real time.
    #[arg(long)]
    pub sim: bool,
    /// Model for --sim (catalog name or config.json).
    #[arg(long, default_value = "llama-3.1-8b")]
    pub model: String,
    /// GPU for --sim (catalog name or GPU TOML).
    #[arg(long, default_value = "h100-sxm")]
    pub gpu: String,
    /// Tensor-parallel degree for --sim.
    #[arg(long, default_value_t = 1)]
    pub tp: u32,
    /// Most concurrent sequences for --sim.
    #[arg(long, default_value_t = 256)]
    pub max_num_seqs: u32,
    /// Token budget per step for --sim.
    #[arg(long, default_value_t = 8192)]
    pub max_num_batched_tokens: u32,
    /// Efficiency preset for --sim: `ideal`, `calibrated`, or a profile TOML written by
    /// `exp calibrate`.
    #[arg(long, default_value = "calibrated")]
    pub preset: String,
    /// Coefficient of variation of the step-time noise for --sim (0 = exact model times).
    #[arg(long, default_value_t = 0.02)]
    pub noise_cv: f64,
    /// Share of GPU memory the simulated engine may use (weights + KV cache) for --sim.
    #[arg(long, default_value_t = 0.9)]
    pub gpu_memory_utilization: f64,
    /// Seed of the step-time noise for --sim.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Model name in --sim replies and /v1/models (default: the --model value).
    #[arg(long)]
    pub served_model_name: Option<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on.
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
}

/// `exp selftest`.
#[derive(Debug, Subcommand)]
pub enum Selftest {
    /// ≥ 1000 simulated A/A comparisons (n = 10 per side, lognormal noise CV 3 %): Welch's
    /// false-positive rate must be 3.5–6.5 % at α = 0.05, and the detection rate of a true
    /// 5 % shift within 5 points of the analytical power; the same for the paired t on rounds
    /// that share a workload effect (CV 20 %, own noise 1 %, shift 1 %).
    Stats {
        /// Comparisons of each kind.
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1000..))]
        trials: u32,
        /// Seed of the simulated noise.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Replays published serving measurements (TTFT, TPOT, throughput; src/selftest/fidelity/
    /// cases.toml, each with its source) in the simulated engine and prints published vs exp
    /// vs error, then the median and worst absolute error per metric for the fit and held-out
    /// cases. Exit 1 when a metric misses the goal (median ≤ 10 %, worst ≤ 20 %).
    Fidelity {
        /// Efficiency preset: `calibrated`, `ideal`, or a profile written by `exp calibrate`.
        #[arg(long, default_value = "calibrated")]
        preset: String,
        /// Another fixture with the same keys (default: the one built in).
        #[arg(long)]
        cases: Option<PathBuf>,
    },
    /// Sets exp's step-time model against forward steps measured on a GPU by
    /// `scripts/gpu-step-times.py` (prefill and decode of a random-weight model): measured vs
    /// the `ideal` floor vs the preset, the error, and the MFU and MBU each measurement implies.
    /// Exit 1 when a measurement is faster than the floor (a lower bound broken) or a point
    /// failed in the script.
    Steps {
        /// The JSON the script wrote.
        file: PathBuf,
        /// GPU to model: catalog name or GPU TOML file (default: the measured device's name).
        #[arg(long)]
        gpu: Option<String>,
        /// Efficiency preset: `calibrated`, `ideal`, or a profile written by `exp calibrate`.
        #[arg(long, default_value = "calibrated")]
        preset: String,
    },
}

/// Output of `exp report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// The Markdown report.
    Md,
    /// Per-repetition and per-cell tables as JSON.
    Json,
    /// Per-repetition and per-cell tables as CSV.
    Csv,
}
