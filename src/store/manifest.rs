//! `manifest.json` and the per-repetition completion markers: what was run, where, with which
//! versions and seeds. Every file carries `schema_version`; later versions of exp read every
//! earlier one (fields added since then have serde defaults).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::scenario::model::{RunOrder, Vars};

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
    /// Execution order: (round, cell index).
    pub schedule: Vec<(u32, usize)>,
    /// Wall-clock start (RFC 3339, UTC).
    pub started: String,
    /// Wall-clock end of the last session that worked on the run.
    #[serde(default)]
    pub ended: Option<String>,
    /// `running`, `complete` or `interrupted`.
    pub status: String,
    /// Warnings of the scenario (e.g. fewer than 10 repetitions).
    #[serde(default)]
    pub warnings: Vec<String>,
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
    /// Free-form details from the executor (simulator statistics, probe summaries).
    #[serde(default)]
    pub details: serde_json::Map<String, serde_json::Value>,
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
