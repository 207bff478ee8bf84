//! The run directory: everything a run writes, and everything `exp report` and
//! `exp run --resume` read back. Results are on disk first; reports are a pure function of
//! what is here.
//!
//! Layout (documented in README, "Run directory"):
//! ```text
//! reports/<scenario>/<run-id>/
//!   scenario.toml                 the scenario file as given
//!   manifest.json                 versions, host, seeds, overrides, cells, schedule, times
//!   records/<cell-id>/rep-NNN.jsonl       one RequestRecord per line, appended as they complete
//!   records/<cell-id>/rep-NNN.done.json   completion marker, written after the records are synced
//!   records/<cell-id>/rep-NNN.probes.jsonl  probe samples (GPU, server metrics, host), with [probes]
//!   records/<cell-id>/rep-NNN.quality.jsonl scored quality items, with [quality]
//!   servers/launch-NNN.log        stdout and stderr of each server launch, with [server]
//!   summary.json                  per repetition and per cell (atomically replaced)
//!   report.md                     rendered report (atomically replaced)
//! ```
//! A repetition counts only once its marker exists; a records file without a marker is a
//! partial repetition from an interrupted run and is redone by `--resume`.

mod files;
mod manifest;

pub use files::{FLUSH_EVERY, RepWriter, write_atomic};
pub use manifest::{
    AdaptiveRecord, BaselineRecord, CellEntry, ClientRecord, HalfWidth, LaunchRecord, Look,
    Manifest, MarkerDetails, MergedClient, MergedShard, RepMarker, RunStatus, SCHEMA_VERSION,
    SequentialLook, SequentialRecord, Session, ShardRecord, SimDetails, Stop, StopReason,
    now_rfc3339,
};

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::record::{RecordSource, RequestRecord};

/// Errors reading or writing a run directory. Each names the path.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O error on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file that is not what this version of exp expects.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what to do.
        message: String,
    },
}

impl StoreError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A repetition whose marker records a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRepetition {
    /// Cell id.
    pub cell_id: String,
    /// Repetition round.
    pub round: u32,
    /// Why it failed.
    pub reason: String,
}

/// An open run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// Creates `<out>/<scenario>/<run_id>/` (refusing an existing one) and writes the scenario
    /// copy and the manifest.
    pub fn create(
        out: &Path,
        manifest: &Manifest,
        scenario_text: &str,
    ) -> Result<Self, StoreError> {
        // The scenario loader already restricts names to [a-z0-9_-]; this is the last line of
        // defence for any other caller: a run directory never lands outside `out`.
        for part in [&manifest.scenario_name, &manifest.run_id] {
            if !is_plain_component(part) {
                return Err(StoreError::Format {
                    path: out.join(part),
                    message: format!(
                        "{part:?} is not a plain folder name, so the run directory could land \
                         outside {}",
                        out.display()
                    ),
                });
            }
        }
        let root = out.join(&manifest.scenario_name).join(&manifest.run_id);
        if root.exists() {
            return Err(StoreError::Format {
                path: root,
                message: "run directory already exists; pick another --out or wait a second".into(),
            });
        }
        fs::create_dir_all(root.join("records")).map_err(|e| StoreError::io(&root, e))?;
        let dir = RunDir { root };
        write_atomic(&dir.root.join("scenario.toml"), scenario_text.as_bytes())?;
        dir.write_manifest(manifest)?;
        Ok(dir)
    }

    /// Opens an existing run directory (for `report` and `--resume`).
    pub fn open(root: &Path) -> Result<(Self, Manifest), StoreError> {
        let dir = RunDir {
            root: root.to_path_buf(),
        };
        let manifest = manifest::read(&dir.manifest_path())?;
        Ok((dir, manifest))
    }

    /// The directory's path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn manifest_path(&self) -> PathBuf {
        self.root.join("manifest.json")
    }

    /// Reads the manifest as it is on disk now.
    pub fn read_manifest(&self) -> Result<Manifest, StoreError> {
        manifest::read(&self.manifest_path())
    }

    /// Reads the manifest, changes it and writes it back atomically.
    pub fn update_manifest(&self, change: impl FnOnce(&mut Manifest)) -> Result<(), StoreError> {
        let mut m = self.read_manifest()?;
        change(&mut m);
        self.write_manifest(&m)
    }

    /// `servers/launch-NNN.log` (relative to the run directory) for launch `index`.
    pub fn server_log(&self, index: usize) -> String {
        format!("servers/launch-{index:03}.log")
    }

    /// The probe samples of a repetition (`records/<cell>/rep-NNN.probes.jsonl`).
    pub fn probes_path(&self, cell_id: &str, round: u32) -> PathBuf {
        self.rep_stem(cell_id, round).with_extension("probes.jsonl")
    }

    /// The quality items of a repetition (`records/<cell>/rep-NNN.quality.jsonl`).
    pub fn quality_path(&self, cell_id: &str, round: u32) -> PathBuf {
        self.rep_stem(cell_id, round)
            .with_extension("quality.jsonl")
    }

    /// Writes a repetition's quality items (atomically: before its marker, so a marker
    /// always has its whole quality file).
    pub fn write_quality(
        &self,
        cell_id: &str,
        round: u32,
        items: &[crate::record::QualityRecord],
    ) -> Result<(), StoreError> {
        let mut text = Vec::new();
        for item in items {
            serde_json::to_writer(&mut text, item).expect("quality records serialise");
            text.push(b'\n');
        }
        write_atomic(&self.quality_path(cell_id, round), &text)
    }

    /// The quality items of a finished repetition; `None` when it has no quality file.
    pub fn quality(
        &self,
        cell_id: &str,
        round: u32,
    ) -> Result<Option<Vec<crate::record::QualityRecord>>, StoreError> {
        let path = self.quality_path(cell_id, round);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        let mut out = Vec::new();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let item = serde_json::from_str(line).map_err(|e| StoreError::Format {
                path: path.clone(),
                message: format!("line {}: unreadable quality item: {e}", i + 1),
            })?;
            out.push(item);
        }
        Ok(Some(out))
    }

    /// Replaces the manifest atomically.
    pub fn write_manifest(&self, manifest: &Manifest) -> Result<(), StoreError> {
        let text = serde_json::to_vec_pretty(manifest).expect("manifest serialises");
        write_atomic(&self.manifest_path(), &text)
    }

    /// The scenario text saved with the run.
    pub fn scenario_text(&self) -> Result<String, StoreError> {
        let path = self.root.join("scenario.toml");
        fs::read_to_string(&path).map_err(|e| StoreError::io(&path, e))
    }

    fn rep_stem(&self, cell_id: &str, round: u32) -> PathBuf {
        self.root
            .join("records")
            .join(cell_id)
            .join(format!("rep-{round:03}"))
    }

    /// Starts writing repetition `round` of a cell (truncating a partial file left by an
    /// interrupted run).
    pub fn start_repetition(&self, cell_id: &str, round: u32) -> Result<RepWriter, StoreError> {
        RepWriter::create(self.rep_stem(cell_id, round))
    }

    /// Every (cell id, round) whose completion marker exists and records no failure. Failed
    /// repetitions ([`RunDir::failed`]) are not complete: `--resume` redoes them.
    pub fn completed(&self) -> Result<BTreeSet<(String, u32)>, StoreError> {
        let mut done = BTreeSet::new();
        for (cell, round) in self.markers()? {
            if self.marker(&cell, round)?.failure.is_none() {
                done.insert((cell, round));
            }
        }
        Ok(done)
    }

    /// Every failed repetition (its server did not start or died) with the reason.
    pub fn failed(&self) -> Result<Vec<FailedRepetition>, StoreError> {
        let mut out = Vec::new();
        for (cell_id, round) in self.markers()? {
            if let Some(reason) = self.marker(&cell_id, round)?.failure {
                out.push(FailedRepetition {
                    cell_id,
                    round,
                    reason,
                });
            }
        }
        Ok(out)
    }

    /// Every (cell id, round) with a marker, complete or failed.
    pub fn markers(&self) -> Result<BTreeSet<(String, u32)>, StoreError> {
        let mut done = BTreeSet::new();
        let records = self.root.join("records");
        let Ok(cells) = fs::read_dir(&records) else {
            return Ok(done);
        };
        for cell in cells {
            let cell = cell.map_err(|e| StoreError::io(&records, e))?;
            let cell_id = cell.file_name().to_string_lossy().into_owned();
            let entries = fs::read_dir(cell.path()).map_err(|e| StoreError::io(&cell.path(), e))?;
            for entry in entries {
                let name = entry
                    .map_err(|e| StoreError::io(&cell.path(), e))?
                    .file_name();
                let name = name.to_string_lossy();
                if let Some(round) = name
                    .strip_prefix("rep-")
                    .and_then(|rest| rest.strip_suffix(".done.json"))
                    .and_then(|n| n.parse::<u32>().ok())
                {
                    done.insert((cell_id.clone(), round));
                }
            }
        }
        Ok(done)
    }

    /// The files of a repetition that exist, relative to the run directory: its records, its
    /// completion marker and its probe samples (`records/<cell>/rep-NNN.*`).
    pub fn repetition_files(&self, cell_id: &str, round: u32) -> Vec<PathBuf> {
        let stem = self.rep_stem(cell_id, round);
        ["jsonl", "done.json", "probes.jsonl", "quality.jsonl"]
            .into_iter()
            .map(|ext| stem.with_extension(ext))
            .filter(|p| p.exists())
            .filter_map(|p| p.strip_prefix(&self.root).ok().map(Path::to_path_buf))
            .collect()
    }

    /// The completion marker of a finished repetition.
    pub fn marker(&self, cell_id: &str, round: u32) -> Result<RepMarker, StoreError> {
        let path = self.rep_stem(cell_id, round).with_extension("done.json");
        let text = fs::read(&path).map_err(|e| StoreError::io(&path, e))?;
        serde_json::from_slice(&text).map_err(|e| StoreError::Format {
            path,
            message: format!("unreadable completion marker: {e}"),
        })
    }

    /// Reads the records of a finished repetition, calling `f` on each (streamed, not held).
    pub fn for_each_record(
        &self,
        cell_id: &str,
        round: u32,
        mut f: impl FnMut(RequestRecord),
    ) -> Result<(), StoreError> {
        self.rep_records(cell_id, round)
            .replay(&mut |rec| f(rec.clone()))
    }

    /// The records file of a finished repetition, as a [`RecordSource`] that reads it from
    /// disk on every pass.
    pub fn rep_records(&self, cell_id: &str, round: u32) -> RepRecords {
        RepRecords {
            path: self.rep_stem(cell_id, round).with_extension("jsonl"),
        }
    }

    /// Reads all records of a finished repetition.
    pub fn records(&self, cell_id: &str, round: u32) -> Result<Vec<RequestRecord>, StoreError> {
        let mut out = Vec::new();
        self.for_each_record(cell_id, round, |r| out.push(r))?;
        Ok(out)
    }

    /// Writes `name` (e.g. `summary.json`, `report.md`) atomically inside the run directory.
    pub fn write_file(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, StoreError> {
        let path = self.root.join(name);
        write_atomic(&path, bytes)?;
        Ok(path)
    }
}

/// A repetition's records file (`records/<cell>/rep-NNN.jsonl`), read one line at a time on
/// every [`RecordSource::replay`]: memory holds one record, whatever the file's length.
#[derive(Debug, Clone)]
pub struct RepRecords {
    path: PathBuf,
}

impl RepRecords {
    /// A records file at `path`.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        RepRecords { path: path.into() }
    }
}

impl RecordSource for RepRecords {
    type Error = StoreError;

    fn replay(&self, f: &mut dyn FnMut(&RequestRecord)) -> Result<(), StoreError> {
        let path = &self.path;
        let file = fs::File::open(path).map_err(|e| StoreError::io(path, e))?;
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let mut line = String::new();
        for n in 1.. {
            line.clear();
            if reader
                .read_line(&mut line)
                .map_err(|e| StoreError::io(path, e))?
                == 0
            {
                return Ok(());
            }
            if line.trim().is_empty() {
                continue;
            }
            let rec = serde_json::from_str(&line).map_err(|e| StoreError::Format {
                path: path.clone(),
                message: format!("line {n}: not a request record: {e}"),
            })?;
            f(&rec);
        }
        Ok(())
    }
}

/// True when `name` is exactly one ordinary path component (not empty, `.`, `..`, absolute,
/// or containing a separator).
fn is_plain_component(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    matches!(
        (parts.next(), parts.next()),
        (Some(std::path::Component::Normal(_)), None)
    ) && !name.contains(['/', '\\'])
}

#[cfg(test)]
mod tests;
