//! `exp merge`: the run directories of one experiment's shards (`exp run --shard K/N`) joined
//! into one run directory that reads as if every round had run on one machine.
//!
//! First every shard is checked to belong ([`check`]): same scenario (SHA-256), overrides,
//! target, seed, rounds, cells, exp version and shard count; every shard 1..=N given exactly
//! once; every round of each shard finished (complete, or failed as its report says). Every
//! problem is listed, each with what to do: a missing shard with the exact `exp run` that runs
//! it, an unfinished one with the `exp run --resume` that finishes it. Then [`write`] links
//! (or copies) each shard's repetitions (records, markers, probes) and copies its server logs
//! into a new directory,
//! beside it first and renamed into place at the end, so a merge that stops half-way leaves
//! nothing that looks like a run. The merged manifest carries the unsharded schedule, the
//! launches of every shard and, in `merged`, each shard's node and rounds.

mod check;
mod clients;

pub use check::check;
pub use clients::{check_clients, write_clients};

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::matrix::Slot;
use crate::store::{Manifest, MergedShard, RunDir, RunStatus, StoreError, write_atomic};

/// One shard's run directory, opened.
#[derive(Debug)]
pub struct Part {
    /// The directory as given on the command line.
    pub given: PathBuf,
    /// The run directory.
    pub dir: RunDir,
    /// Its manifest.
    pub manifest: Manifest,
}

/// Why shards (or clients) cannot be merged: every problem found, each with what to do.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// The shards do not form one whole experiment.
    #[error("cannot merge these shards:\n{}", list(.0))]
    Problems(Vec<String>),
    /// The clients do not form one whole fanned-out load (`exp merge --clients`).
    #[error("cannot merge these clients:\n{}", list(.0))]
    ClientProblems(Vec<String>),
    /// Reading a shard or writing the merged run failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The problems as an indented list, one a line.
fn list(problems: &[String]) -> String {
    (problems.iter().map(|p| format!("  - {p}")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The parts that belong (`belongs` gives a part's number, or its problem, which goes into
/// `problems`), grouped by number.
fn group<'p>(
    parts: &'p [Part],
    belongs: impl Fn(&Part) -> Result<u32, String>,
    problems: &mut Vec<String>,
) -> BTreeMap<u32, Vec<&'p Part>> {
    let mut by_index: BTreeMap<u32, Vec<&Part>> = BTreeMap::new();
    for part in parts {
        match belongs(part) {
            Ok(index) => by_index.entry(index).or_default().push(part),
            Err(problem) => problems.push(problem),
        }
    }
    by_index
}

/// A problem for each number of `by_index` given more than once: `{what} K/{count} is given
/// n times (DIR, …): {hint}`.
fn given_twice(
    what: &str,
    count: u32,
    by_index: &BTreeMap<u32, Vec<&Part>>,
    hint: &str,
) -> Vec<String> {
    (by_index.iter().filter(|(_, g)| g.len() > 1))
        .map(|(index, given)| {
            format!(
                "{what} {index}/{count} is given {} times ({}): {hint}",
                given.len(),
                (given.iter().map(|p| p.given.display().to_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect()
}

/// Opens every directory; those that are not run directories are returned as problems, to
/// be listed with those [`check`] finds in the others.
pub fn open(paths: &[PathBuf]) -> (Vec<Part>, Vec<String>) {
    let mut parts = Vec::new();
    let mut problems = Vec::new();
    for given in paths {
        if !given.join("manifest.json").exists() {
            let why = match given.exists() {
                true => "no manifest.json",
                false => "no such folder",
            };
            problems.push(format!("{}: not a run directory ({why})", given.display()));
            continue;
        }
        match RunDir::open(given) {
            Ok((dir, manifest)) => parts.push(Part {
                given: given.clone(),
                dir,
                manifest,
            }),
            Err(e) => problems.push(e.to_string()),
        }
    }
    (parts, problems)
}

/// Copies every shard's repetitions and server logs into `out` (which must not exist) and
/// writes the merged manifest: `schedule` is the unsharded `expected` one, `launches` every
/// shard's in shard order (renumbered, logs under `servers/shard-K/`), `merged` each shard.
pub fn write(parts: &[Part], out: &Path, expected: Vec<Slot>) -> Result<Manifest, MergeError> {
    let mut parts: Vec<&Part> = parts.iter().collect();
    parts.sort_by_key(|p| p.manifest.shard.as_ref().map_or(0, |s| s.index));
    into_place(out, |staging, name| fill(&parts, staging, name, expected))
}

/// Has `fill` write a merged run into a folder beside `out` (which must not exist), named
/// after it, then renames it into place: a merge that stops half-way leaves nothing that
/// looks like a run.
fn into_place(
    out: &Path,
    fill: impl FnOnce(&Path, String) -> Result<Manifest, StoreError>,
) -> Result<Manifest, MergeError> {
    if out.exists() {
        return Err(MergeError::Problems(vec![format!(
            "{}: already exists; merge into a new directory",
            out.display()
        )]));
    }
    let name = (out.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "merged".into());
    let staging = out.with_file_name(format!(".{name}.merging-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
    }
    let written = fill(&staging, name).and_then(|m| {
        fs::rename(&staging, out)
            .map_err(|e| StoreError::io(out, e))
            .map(|()| m)
    });
    if written.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    Ok(written?)
}

/// Writes the merged run into `staging`: every shard's repetitions and logs, the scenario and
/// the merged manifest (run id `name`, schedule `expected`).
fn fill(
    parts: &[&Part],
    staging: &Path,
    name: String,
    expected: Vec<Slot>,
) -> Result<Manifest, StoreError> {
    fs::create_dir_all(staging.join("records")).map_err(|e| StoreError::io(staging, e))?;
    let mut manifest = merged_manifest(parts, name, expected);
    let mut failed = false;
    manifest.launches.clear();
    manifest.merged.clear();
    for part in parts {
        failed |= share_repetitions(part, staging)?;
        copy_launches(part, staging, &mut manifest.launches)?;
        manifest.merged.push(MergedShard {
            shard: part.manifest.shard.clone().expect("checked: a shard"),
            run_id: part.manifest.run_id.clone(),
            source: part.given.display().to_string(),
            node: part.manifest.node.clone(),
            started: part.manifest.started.clone(),
            ended: part.manifest.ended.clone(),
            status: part.manifest.status,
        });
    }
    manifest.status = match failed {
        true => RunStatus::Partial,
        false => RunStatus::Complete,
    };
    let scenario = parts[0].dir.scenario_text()?;
    write_atomic(&staging.join("scenario.toml"), scenario.as_bytes())?;
    write_manifest(staging, &manifest)?;
    Ok(manifest)
}

/// The merged manifest as far as shards and clients merge alike: the first part's, named
/// `name`, with the whole `schedule`, no host, node, session, shard or client of its own,
/// from the parts' earliest start to their latest end.
fn merged_manifest(parts: &[&Part], name: String, schedule: Vec<Slot>) -> Manifest {
    let mut manifest = parts[0].manifest.clone();
    manifest.run_id = name;
    manifest.host = None;
    manifest.node = None;
    manifest.shard = None;
    manifest.client = None;
    manifest.session = None;
    manifest.schedule = schedule;
    manifest.started = (parts.iter().map(|p| p.manifest.started.clone()))
        .min()
        .unwrap_or_default();
    manifest.ended = parts.iter().filter_map(|p| p.manifest.ended.clone()).max();
    manifest
}

/// Writes `manifest` into `staging`.
fn write_manifest(staging: &Path, manifest: &Manifest) -> Result<(), StoreError> {
    let text = serde_json::to_vec_pretty(manifest).expect("manifest serialises");
    write_atomic(&staging.join("manifest.json"), &text)
}

/// Puts a shard's repetitions (records, marker, probes) into `staging`; true when one of
/// them failed.
fn share_repetitions(part: &Part, staging: &Path) -> Result<bool, StoreError> {
    let mut failed = false;
    for (cell, round) in part.dir.markers()? {
        let failure = part.dir.marker(&cell, round)?.failure.is_some();
        failed |= failure;
        for rel in part.dir.repetition_files(&cell, round) {
            let (from, to) = (part.dir.root().join(&rel), staging.join(&rel));
            // A finished repetition's files are never written again (a redo replaces the
            // marker by rename), so they are shared, not copied; a failed one's records file
            // is truncated when `--resume` redoes it, so it is copied.
            match failure {
                true => copy(&from, &to)?,
                false => link(&from, &to)?,
            }
        }
    }
    Ok(failed)
}

/// Appends a shard's launches to `launches`, renumbered, with their logs copied to
/// `servers/shard-K/`.
fn copy_launches(
    part: &Part,
    staging: &Path,
    launches: &mut Vec<crate::store::LaunchRecord>,
) -> Result<(), StoreError> {
    let index = part.manifest.shard.as_ref().map_or(0, |s| s.index);
    for launch in &part.manifest.launches {
        let mut launch = launch.clone();
        launch.index = launches.len();
        if let Some(log) = &launch.log {
            let file = Path::new(log)
                .file_name()
                .map_or("launch.log".into(), |n| n.to_string_lossy());
            let to = format!("servers/shard-{index}/{file}");
            let from = part.dir.root().join(log);
            if from.exists() {
                copy(&from, &staging.join(&to))?;
            }
            launch.log = Some(to);
        }
        launches.push(launch);
    }
    Ok(())
}

/// Hard-links one file (records can be gigabytes), or copies it where links cannot be made
/// (another file system).
fn link(from: &Path, to: &Path) -> Result<(), StoreError> {
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
    }
    match fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(_) => copy(from, to),
    }
}

/// Copies one file, creating its folder.
fn copy(from: &Path, to: &Path) -> Result<(), StoreError> {
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
    }
    fs::copy(from, to).map_err(|e| StoreError::io(from, e))?;
    Ok(())
}
