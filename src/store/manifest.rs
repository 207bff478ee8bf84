//! `manifest.json` and the per-repetition completion markers: what was run, where, with which
//! versions and seeds. Every file carries `schema_version`; later versions of exp read every
//! earlier one (fields added since then have serde defaults).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::matrix::{Cell, Slot};
use crate::scenario::model::{RunOrder, Vars};
use crate::shard::node::Node;
use crate::shard::{Shard, ShardBy};

/// Version of the run-directory layout and of every JSON file in it.
pub const SCHEMA_VERSION: u32 = 1;

/// One cell of the matrix as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellEntry {
    /// Position in the matrix.
    pub index: usize,
    /// Stable id (directory name under `records/`).
    pub id: String,
    /// Every variable of the cell.
    pub vars: Vars,
    /// The variables that differ between cells.
    pub swept: Vars,
}

impl From<&Cell> for CellEntry {
    fn from(c: &Cell) -> CellEntry {
        CellEntry {
            index: c.index,
            id: c.id.to_string(),
            vars: c.vars.clone(),
            swept: c.swept.clone(),
        }
    }
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version.
    pub schema_version: u32,
    /// exp's version.
    pub exp_version: String,
    /// `git rev-parse HEAD` of the working directory, when it is a repository.
    #[serde(default)]
    pub git_revision: Option<String>,
    /// Host name.
    #[serde(default)]
    pub host: Option<String>,
    /// Run id (directory name).
    pub run_id: String,
    /// `[experiment] name`.
    pub scenario_name: String,
    /// The scenario path as given.
    pub scenario_file: String,
    /// SHA-256 of the scenario text.
    pub scenario_sha256: String,
    /// `--set` overrides, with secret values redacted.
    #[serde(default)]
    pub overrides: Vec<String>,
    /// `--target` given on the command line.
    #[serde(default)]
    pub target_override: Option<String>,
    /// Experiment seed.
    pub seed: u64,
    /// Repetitions per cell.
    pub repetitions: u32,
    /// Run order.
    pub order: RunOrder,
    /// What executed the requests (`sim: …` or `http: <base url>`).
    pub executor: String,
    /// Cells of the matrix.
    pub cells: Vec<CellEntry>,
    /// Execution order; each slot is written `[round, cell index]`.
    pub schedule: Vec<Slot>,
    /// Wall-clock start (RFC 3339, UTC).
    pub started: String,
    /// Wall-clock end of the last session that worked on the run.
    #[serde(default)]
    pub ended: Option<String>,
    /// How far the run got.
    pub status: RunStatus,
    /// Warnings of the scenario (e.g. fewer than 10 repetitions).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Every server launch of the run, in order (empty without a `[server]`).
    #[serde(default)]
    pub launches: Vec<LaunchRecord>,
    /// Adaptive repetitions: every look at the precision and why the run stopped adding
    /// rounds. `None` for a fixed number of repetitions. `repetitions` and `schedule` above
    /// always hold the rounds planned so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adaptive: Option<AdaptiveRecord>,
    /// `exp run --baseline … --extra-looks N`: the planned looks at the comparison and what
    /// each found. `None` without extra looks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential: Option<SequentialRecord>,
    /// The exp process of the latest session that ran it: with `status = running`, whether
    /// that process is still there tells a live run from one that was killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
    /// `exp run --baseline`: the baseline run and the comparison's verdict line, so the run's
    /// own report states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineRecord>,
    /// The machine that ran it (name and hardware). `None` for runs of exp before shards,
    /// and for a merged run (its shards' nodes are in `merged`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Node>,
    /// `exp run --shard K/N`: this run holds shard K's rounds only (`schedule` lists them);
    /// `exp merge` joins it with the other shards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardRecord>,
    /// `exp merge`: the shards this run was merged from, in shard order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<MergedShard>,
    /// `exp run --client K/N`: this run holds client K's share of every repetition;
    /// `exp merge --clients` joins it with the other clients'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientRecord>,
    /// `exp merge --clients`: the clients this run was merged from, in client order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_clients: Vec<MergedClient>,
}

/// A fanned-out client's share of the load (`exp run --client K/N`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    /// Client number, from 1.
    pub index: u32,
    /// Number of clients.
    pub count: u32,
    /// The shared instant of the first repetition (`--start-at`, RFC 3339 UTC).
    pub start_at: String,
    /// `--max-skew` in milliseconds.
    pub max_skew_ms: u64,
}

/// One client of a merged run, as it was when merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergedClient {
    /// Client number, from 1.
    pub index: u32,
    /// Number of clients.
    pub count: u32,
    /// The client's run id.
    pub run_id: String,
    /// The client's run directory, as given to `exp merge --clients`.
    pub source: String,
    /// The machine it ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Node>,
    /// Its status when merged.
    pub status: RunStatus,
}

/// Which share of the experiment a sharded run holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// Shard number, from 1.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
    /// What the shards split: rounds (absent in the file), or cells (`--shard-by cells`).
    #[serde(default, skip_serializing_if = "is_rounds")]
    pub by: ShardBy,
    /// Its rounds (from 0): by rounds, round r belongs to shard r mod count + 1; by cells,
    /// every round.
    pub rounds: Vec<u32>,
}

fn is_rounds(by: &ShardBy) -> bool {
    *by == ShardBy::Rounds
}

impl ShardRecord {
    /// The shard this record describes.
    pub fn shard(&self) -> Shard {
        Shard {
            index: self.index,
            count: self.count,
            by: self.by,
        }
    }
}

/// One shard of a merged run, as it was when merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergedShard {
    /// The shard and its rounds.
    pub shard: ShardRecord,
    /// The shard's run id.
    pub run_id: String,
    /// The shard's run directory, as given to `exp merge`.
    pub source: String,
    /// The machine it ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Node>,
    /// Its wall-clock start and end.
    pub started: String,
    /// Its end, when recorded.
    #[serde(default)]
    pub ended: Option<String>,
    /// Its status when merged (`complete` or `partial`).
    pub status: RunStatus,
}

/// The comparison an `exp run --baseline` made (its table is `compare.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineRecord {
    /// The baseline run directory, as given.
    pub run_dir: String,
    /// The comparison's verdict line (`❌ regression (6 comparisons in 2 matched cells: …)`).
    pub verdict: String,
}

/// The exp process running a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Host name.
    pub host: Option<String>,
    /// Process id.
    pub pid: u32,
    /// When it started (clock ticks after boot, `/proc/<pid>/stat`): with the pid, it names
    /// one process.
    pub start_ticks: Option<u64>,
}

/// How far a run got (`status` in `manifest.json`, written in lowercase: `"running"`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// A session is executing it, or one died without recording how it ended (`kill -9`).
    Running,
    /// Every repetition of the schedule ran and none failed.
    Complete,
    /// Ctrl-C stopped it; the repetitions marked complete are kept and `exp run --resume`
    /// continues it.
    Interrupted,
    /// The run ended with failed repetitions (a server that did not start or died), which
    /// are left out of the statistics; `exp run --resume` retries them.
    Partial,
    /// The run stopped on an error (a server or target that failed the whole run, a file that
    /// could not be written); the repetitions marked complete are kept and
    /// `exp run --resume` continues it once the cause is fixed.
    Failed,
}

impl RunStatus {
    /// The word written in `manifest.json` and shown in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Complete => "complete",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Group-sequential comparison with a baseline (statistics.md §2.8): up to `planned` looks,
/// each tested at Pocock's nominal level so that all of them together keep `[analysis] alpha`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequentialRecord {
    /// Looks planned (1 + extra looks).
    pub planned: u32,
    /// Overall significance level (`[analysis] alpha`).
    pub alpha: f64,
    /// Pocock's nominal level used at every look.
    pub nominal_alpha: f64,
    /// Every look taken, in order.
    #[serde(default)]
    pub looks: Vec<SequentialLook>,
}

/// One look at the comparison with the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequentialLook {
    /// Candidate rounds complete at this look.
    pub rounds: u32,
    /// Comparisons still `inconclusive` or `possible …` at this look.
    pub open: usize,
    /// The headline of the comparison at this look (`no_change`, `regression`, …).
    pub outcome: String,
    /// Rounds added after this look (0 at the last look).
    pub added: u32,
}

/// One launch of a `[server]` (or the wait for an external one), as it happened.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LaunchRecord {
    /// Launch number in the run (`servers/launch-NNN.log`).
    pub index: usize,
    /// The server configuration of the plan it served.
    pub config: usize,
    /// Program and arguments as run (values of secret-looking options redacted); empty for an
    /// external server.
    pub command: Vec<String>,
    /// Extra environment (values of secret-looking names redacted).
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// Working directory.
    #[serde(default)]
    pub cwd: Option<String>,
    /// The port it listened on.
    #[serde(default)]
    pub port: Option<u16>,
    /// Process id (and process group id) of the launched command.
    #[serde(default)]
    pub pid: Option<u32>,
    /// When that process started (clock ticks after boot, `/proc/<pid>/stat`): with the pid,
    /// it tells `--resume` whether a process with that pid is still this launch's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start_ticks: Option<u64>,
    /// Its log, relative to the run directory (`servers/launch-000.log`).
    #[serde(default)]
    pub log: Option<String>,
    /// Wall-clock launch time (RFC 3339, UTC).
    pub started: String,
    /// Seconds from launch until the readiness probe passed.
    #[serde(default)]
    pub ready_seconds: Option<f64>,
    /// What the engine says its version is (`/version`, `/v1/models`, `version_command`).
    #[serde(default)]
    pub engine_version: Option<String>,
    /// Server warm-up requests that failed (of `[server] warmup_requests`).
    #[serde(default)]
    pub warmup_failed: u32,
    /// Resets (`reset_url`) that failed.
    #[serde(default)]
    pub reset_failed: u32,
    /// The repetitions that ran on this launch, each written `[round, cell index]`.
    #[serde(default)]
    pub repetitions: Vec<Slot>,
    /// Wall-clock time it was stopped or found dead.
    #[serde(default)]
    pub stopped: Option<String>,
    /// How the process ended (`exit status: 0`, `signal: 15 (SIGTERM)`).
    #[serde(default)]
    pub exit: Option<String>,
    /// It outlived SIGTERM by the grace period and was killed.
    #[serde(default)]
    pub killed: bool,
    /// Why the launch failed (did not start, died during a repetition), if it did.
    #[serde(default)]
    pub failure: Option<String>,
}

/// How an adaptive run chose its number of rounds (statistics.md §2.8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveRecord {
    /// Rounds before the first look.
    pub min: u32,
    /// Most rounds.
    pub max: u32,
    /// `target_ci` as a fraction, when one target applies to every primary metric; `None`
    /// for the per-metric defaults (2 %, tails 5 %).
    #[serde(default)]
    pub target_ci: Option<f64>,
    /// Every look, in order.
    #[serde(default)]
    pub looks: Vec<Look>,
    /// Set when the run stopped adding rounds.
    #[serde(default)]
    pub stop: Option<Stop>,
}

/// One look at the precision after a batch of whole rounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Look {
    /// Rounds complete in every cell at this look.
    pub rounds: u32,
    /// The (cell, metric) whose half-width was furthest above (or closest to) its target.
    pub worst: Option<HalfWidth>,
    /// Rounds added after this look (0 at the last look).
    pub added: u32,
}

/// Why an adaptive run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Every primary metric's relative half-width was within target in every cell.
    Precision,
    /// `max` rounds ran before that.
    Cap,
}

/// The end of an adaptive run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stop {
    /// Why.
    pub reason: StopReason,
    /// Rounds run.
    pub rounds: u32,
    /// The (cell, metric) pairs still above target when the cap stopped the run, worst
    /// first (empty when precision was reached).
    #[serde(default)]
    pub above_target: Vec<HalfWidth>,
}

/// The achieved relative 95 % CI half-width of one metric in one cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HalfWidth {
    /// Cell id.
    pub cell: String,
    /// Primary metric.
    pub metric: String,
    /// `t·s/(√n·|mean|)`; `None` when undefined (mean 0 with spread).
    pub half_width: Option<f64>,
    /// Its target.
    pub target: f64,
}

/// `rep-NNN.done.json`: written only after the repetition's records are synced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepMarker {
    /// Layout version.
    pub schema_version: u32,
    /// Cell id.
    pub cell_id: String,
    /// Repetition round (0-based).
    pub round: u32,
    /// Records in the file.
    pub records: u64,
    /// Wall-clock time of the repetition's origin (RFC 3339, UTC): instants in the records are
    /// nanoseconds after it (virtual time for simulated runs).
    pub origin_wall: String,
    /// Wall-clock seconds the repetition took.
    pub wall_seconds: f64,
    /// Client process CPU seconds spent on the repetition's measured requests, from the end
    /// of warm-up to the last record (HTTP runs; `details` holds the window's wall seconds
    /// and the client's cores, see `run::usage`).
    #[serde(default)]
    pub client_cpu_seconds: Option<f64>,
    /// What the executor, the client and the probes noted about the repetition.
    #[serde(default)]
    pub details: MarkerDetails,
    /// Why the repetition failed (its server did not start, or died while it ran). A failed
    /// repetition is kept on disk with whatever records it has until `--resume` redoes it,
    /// and is left out of the statistics; the report lists it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// The `details` of a completion marker. Every field is optional: a marker holds those its
/// executor wrote (HTTP runs the client's, simulated runs the engine's), and markers written
/// by earlier versions hold fewer. Keys this version does not know are kept in `other`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MarkerDetails {
    /// Wall-clock seconds of the measured window (end of warm-up to the last record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_window_seconds: Option<f64>,
    /// Cores the client process could use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cores: Option<u32>,
    /// Seconds the client's threads waited for a CPU in the window (Linux `schedstat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cpu_wait_seconds: Option<f64>,
    /// The origin on this host's monotonic clock (ns), to line records up with other logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_monotonic_ns: Option<u64>,
    /// Probes that could not be read during the repetition (what and why).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes_absent: Vec<String>,
    /// The server sent no usage: how the generated tokens were counted instead (or why
    /// they could not be, and chunks were counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_counting: Option<String>,
    /// Simulated engine: what its scheduler did.
    #[serde(default, flatten, skip_serializing_if = "Option::is_none")]
    pub sim: Option<SimDetails>,
    /// `exp run --client K/N`: this client's start (node, shared instant, skew).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<crate::fanout::ClientMark>,
    /// `exp merge --clients`: every client's start, in client order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<crate::fanout::ClientMark>,
    /// Keys written by another version of exp.
    #[serde(default, flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// The simulated engine's statistics of one repetition (`sim_*` keys of a marker).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct SimDetails {
    /// Engine steps.
    pub sim_steps: u64,
    /// Sequences preempted for KV-cache space.
    pub sim_preemptions: u64,
    /// Requests rejected (longer than the context or the KV cache).
    pub sim_rejected: u64,
    /// Most sequences running in one step.
    pub sim_peak_running: u32,
    /// Highest KV-cache use (fraction).
    pub sim_peak_kv_usage: f64,
    /// Virtual nanoseconds the engine ran.
    pub sim_window_ns: u64,
}

pub(super) fn read(path: &Path) -> Result<Manifest, StoreError> {
    let text = std::fs::read(path).map_err(|e| StoreError::io(path, e))?;
    let probe: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| StoreError::Format {
            path: path.to_path_buf(),
            message: format!("not JSON: {e}"),
        })?;
    let version = probe.get("schema_version").and_then(|v| v.as_u64());
    match version {
        Some(v) if v <= u64::from(SCHEMA_VERSION) => {}
        Some(v) => {
            return Err(StoreError::Format {
                path: path.to_path_buf(),
                message: format!(
                    "written by a newer exp (schema_version {v}, this exp reads ≤ {SCHEMA_VERSION}); upgrade exp"
                ),
            });
        }
        None => {
            return Err(StoreError::Format {
                path: path.to_path_buf(),
                message: "no schema_version: not an exp run directory".into(),
            });
        }
    }
    serde_json::from_value(probe).map_err(|e| StoreError::Format {
        path: path.to_path_buf(),
        message: format!("unreadable manifest: {e}"),
    })
}

/// Now, as RFC 3339 UTC with seconds.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
