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

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::matrix::Slot;
use crate::shard::{Shard, rounds_text};
use crate::shell;
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

/// Why shards cannot be merged: every problem found, each with what to do.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// The shards do not form one whole experiment.
    #[error("cannot merge these shards:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Problems(Vec<String>),
    /// Reading a shard or writing the merged run failed.
    #[error(transparent)]
    Store(#[from] StoreError),
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

/// Checks that `parts` are every shard of one experiment, each once and finished; `expected`
/// is the unsharded schedule (rebuilt from the first shard's saved scenario), which each
/// shard's schedule must equal on its own rounds. `problems` (from [`open`]) come first.
pub fn check(parts: &[Part], expected: &[Slot], problems: Vec<String>) -> Result<(), MergeError> {
    let mut problems = problems;
    let Some(first) = parts.iter().find(|p| p.manifest.shard.is_some()) else {
        if problems.is_empty() && parts.is_empty() {
            problems.push("no shard given".into());
        }
        for part in parts {
            problems.push(not_a_shard(part));
        }
        return Err(MergeError::Problems(problems));
    };
    let mut by_index: BTreeMap<u32, Vec<&Part>> = BTreeMap::new();
    for part in parts {
        let Some(shard) = &part.manifest.shard else {
            problems.push(not_a_shard(part));
            continue;
        };
        let differences = differences(&first.manifest, &part.manifest);
        if !differences.is_empty() {
            problems.push(format!(
                "{} does not belong with {}: {} (every shard must run the same scenario file with the same --set and --target, on the same exp)",
                part.given.display(),
                first.given.display(),
                differences.join("; ")
            ));
            continue;
        }
        let planned: Vec<Slot> = expected
            .iter()
            .copied()
            .filter(|s| shard.shard().owns(s.round))
            .collect();
        if shard.rounds != shard.shard().rounds(part.manifest.repetitions)
            || part.manifest.schedule != planned
        {
            problems.push(format!(
                "{}: its schedule is not shard {}/{}'s share of the experiment's (was it edited, or planned by another exp?)",
                part.given.display(),
                shard.index,
                shard.count
            ));
            continue;
        }
        by_index.entry(shard.index).or_default().push(part);
    }
    let count = first.manifest.shard.as_ref().map_or(0, |s| s.count);
    for (index, given) in &by_index {
        if given.len() > 1 {
            problems.push(format!(
                "shard {index}/{count} is given {} times ({}): it holds the same rounds each time; give one of them",
                given.len(),
                given
                    .iter()
                    .map(|p| p.given.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    for index in 1..=count {
        if !by_index.contains_key(&index) {
            let shard = Shard { index, count };
            problems.push(missing_text(first, shard));
        }
    }
    for given in by_index.values() {
        if let Some(text) = unfinished_text(given[0])? {
            problems.push(text);
        }
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(MergeError::Problems(problems)),
    }
}

fn not_a_shard(part: &Part) -> String {
    format!(
        "{}: not a shard (it ran without --shard); only the shards of one `exp run --shard K/N` experiment merge",
        part.given.display()
    )
}

/// What differs between two shards' manifests that makes them parts of different
/// experiments.
fn differences(a: &Manifest, b: &Manifest) -> Vec<String> {
    let mut out = Vec::new();
    let mut differ = |what: &str, x: String, y: String| {
        if x != y {
            out.push(format!("{what} {y} ≠ {x}"));
        }
    };
    let short = |h: &str| h.chars().take(12).collect::<String>();
    differ(
        "scenario SHA-256",
        short(&a.scenario_sha256),
        short(&b.scenario_sha256),
    );
    differ("seed", a.seed.to_string(), b.seed.to_string());
    differ("exp version", a.exp_version.clone(), b.exp_version.clone());
    let count = |m: &Manifest| m.shard.as_ref().map_or(0, |s| s.count);
    differ("shard count", count(a).to_string(), count(b).to_string());
    differ(
        "rounds",
        a.repetitions.to_string(),
        b.repetitions.to_string(),
    );
    differ(
        "--set",
        format!("{:?}", a.overrides),
        format!("{:?}", b.overrides),
    );
    differ(
        "--target",
        format!("{:?}", a.target_override),
        format!("{:?}", b.target_override),
    );
    let ids = |m: &Manifest| {
        m.cells
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    differ("cells", ids(a), ids(b));
    out
}

/// The problem of a missing shard, with the command that runs it into the folder its
/// siblings are in (and the run id they suggest).
fn missing_text(sibling: &Part, shard: Shard) -> String {
    let m = &sibling.manifest;
    let rounds = shard.rounds(m.repetitions);
    let out = sibling
        .given
        .parent()
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut words: Vec<String> = vec![
        "exp".into(),
        "run".into(),
        m.scenario_file.clone(),
        "--shard".into(),
        shard.to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    let sibling_shard = m.shard.as_ref().map(|s| s.shard());
    if let Some(prefix) = sibling_shard.and_then(|s| m.run_id.strip_suffix(&s.suffix())) {
        words.push("--run-id".into());
        words.push(format!("{prefix}{}", shard.suffix()));
    }
    if let Some(t) = &m.target_override {
        words.push("--target".into());
        words.push(t.clone());
    }
    for o in &m.overrides {
        words.push("--set".into());
        words.push(o.clone());
    }
    format!(
        "shard {shard} is missing (rounds {}): run it with `{}`, then merge again with its run directory",
        rounds_text(&rounds),
        shell::join(&words)
    )
}

/// The problem of a shard whose rounds are not all finished (complete or failed), with the
/// command that finishes it; `None` when it is finished.
fn unfinished_text(part: &Part) -> Result<Option<String>, MergeError> {
    let marked = part.dir.markers()?;
    let m = &part.manifest;
    let ids: Vec<&str> = m.cells.iter().map(|c| c.id.as_str()).collect();
    let missing: BTreeSet<u32> = m
        .schedule
        .iter()
        .filter(|s| (ids.get(s.cell)).is_none_or(|id| !marked.contains(&(id.to_string(), s.round))))
        .map(|s| s.round)
        .collect();
    if missing.is_empty() && matches!(m.status, RunStatus::Complete | RunStatus::Partial) {
        return Ok(None);
    }
    let rounds = m.shard.as_ref().map_or(0, |s| s.rounds.len());
    let shard = m.shard.as_ref().map(|s| s.shard());
    let shard = shard.map_or("?".into(), |s| s.to_string());
    let given = part.given.display();
    let resume = shell::join(["exp", "run", "--resume", &given.to_string()]);
    let complete = rounds.saturating_sub(missing.len());
    Ok(Some(match m.status {
        RunStatus::Running => format!(
            "shard {shard} ({given}) is still running ({complete} of {rounds} rounds complete): wait for it, or if its process died, finish it with `{resume}`; then merge again"
        ),
        status => format!(
            "shard {shard} ({given}) is not finished: {status}, {complete} of {rounds} rounds complete; finish it with `{resume}`, then merge again"
        ),
    }))
}

/// Copies every shard's repetitions and server logs into `out` (which must not exist) and
/// writes the merged manifest: `schedule` is the unsharded `expected` one, `launches` every
/// shard's in shard order (renumbered, logs under `servers/shard-K/`), `merged` each shard.
pub fn write(parts: &[Part], out: &Path, expected: Vec<Slot>) -> Result<Manifest, MergeError> {
    if out.exists() {
        return Err(MergeError::Problems(vec![format!(
            "{}: already exists; merge into a new directory",
            out.display()
        )]));
    }
    let mut parts: Vec<&Part> = parts.iter().collect();
    parts.sort_by_key(|p| p.manifest.shard.as_ref().map_or(0, |s| s.index));
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "merged".into());
    let staging = out.with_file_name(format!(".{name}.merging-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
    }
    fs::create_dir_all(staging.join("records")).map_err(|e| StoreError::io(&staging, e))?;
    let first = &parts[0];
    let mut manifest = first.manifest.clone();
    let mut failed = false;
    manifest.launches.clear();
    manifest.merged.clear();
    for part in &parts {
        let shard = part.manifest.shard.clone().expect("checked: a shard");
        for (cell, round) in part.dir.markers()? {
            let failure = part.dir.marker(&cell, round)?.failure.is_some();
            failed |= failure;
            for rel in part.dir.repetition_files(&cell, round) {
                let (from, to) = (part.dir.root().join(&rel), staging.join(&rel));
                // A finished repetition's files are never written again (a redo replaces
                // the marker by rename), so they are shared, not copied; a failed one's
                // records file is truncated when `--resume` redoes it, so it is copied.
                match failure {
                    true => copy(&from, &to)?,
                    false => link(&from, &to)?,
                }
            }
        }
        for launch in &part.manifest.launches {
            let mut launch = launch.clone();
            launch.index = manifest.launches.len();
            if let Some(log) = &launch.log {
                let to = format!(
                    "servers/shard-{}/{}",
                    shard.index,
                    Path::new(log)
                        .file_name()
                        .map_or("launch.log".into(), |n| n.to_string_lossy())
                );
                let from = part.dir.root().join(log);
                if from.exists() {
                    copy(&from, &staging.join(&to))?;
                }
                launch.log = Some(to);
            }
            manifest.launches.push(launch);
        }
        manifest.merged.push(MergedShard {
            shard,
            run_id: part.manifest.run_id.clone(),
            source: part.given.display().to_string(),
            node: part.manifest.node.clone(),
            started: part.manifest.started.clone(),
            ended: part.manifest.ended.clone(),
            status: part.manifest.status,
        });
    }
    manifest.run_id = name;
    manifest.host = None;
    manifest.node = None;
    manifest.shard = None;
    manifest.session = None;
    manifest.schedule = expected;
    manifest.started = (parts.iter().map(|p| p.manifest.started.clone()))
        .min()
        .unwrap_or_default();
    manifest.ended = parts.iter().filter_map(|p| p.manifest.ended.clone()).max();
    manifest.status = match failed {
        true => RunStatus::Partial,
        false => RunStatus::Complete,
    };
    let scenario = first.dir.scenario_text()?;
    write_atomic(&staging.join("scenario.toml"), scenario.as_bytes())?;
    let text = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    write_atomic(&staging.join("manifest.json"), &text)?;
    fs::rename(&staging, out).map_err(|e| StoreError::io(out, e))?;
    Ok(manifest)
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
