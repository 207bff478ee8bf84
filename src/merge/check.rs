//! Whether shards make one experiment: every problem found, each with what to do.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{MergeError, Part};
use crate::matrix::Slot;
use crate::shard::{Shard, ShardBy, rounds_text};
use crate::shell;
use crate::store::{Manifest, RunStatus};

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
    let by_index = super::group(parts, |part| belongs(first, part, expected), &mut problems);
    let count = first.manifest.shard.as_ref().map_or(0, |s| s.count);
    problems.extend(coverage(first, &by_index, count));
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

/// The shard number of `part` when it is a shard of `first`'s experiment whose schedule is
/// its share of `expected`; else the problem.
fn belongs(first: &Part, part: &Part, expected: &[Slot]) -> Result<u32, String> {
    let Some(shard) = &part.manifest.shard else {
        return Err(not_a_shard(part));
    };
    let differences = differences(&first.manifest, &part.manifest);
    if !differences.is_empty() {
        return Err(format!(
            "{} does not belong with {}: {} (every shard must run the same scenario file with the same --set and --target, on the same exp)",
            part.given.display(),
            first.given.display(),
            differences.join("; ")
        ));
    }
    let planned: Vec<Slot> = (expected.iter().copied())
        .filter(|s| shard.shard().owns(s))
        .collect();
    if shard.rounds != shard.shard().rounds(part.manifest.repetitions)
        || part.manifest.schedule != planned
    {
        return Err(format!(
            "{}: its schedule is not shard {}/{}'s share of the experiment's (was it edited, or planned by another exp?)",
            part.given.display(),
            shard.index,
            shard.count
        ));
    }
    Ok(shard.index)
}

/// Shards given more than once, and shards of 1..=`count` not given.
fn coverage(first: &Part, by_index: &BTreeMap<u32, Vec<&Part>>, count: u32) -> Vec<String> {
    let hint = "it holds the same rounds each time; give one of them";
    let mut problems = super::given_twice("shard", count, by_index, hint);
    for index in (1..=count).filter(|i| !by_index.contains_key(i)) {
        let by = first
            .manifest
            .shard
            .as_ref()
            .map_or(ShardBy::Rounds, |s| s.by);
        problems.push(missing_text(first, Shard::of_rounds(index, count).by(by)));
    }
    problems
}

fn not_a_shard(part: &Part) -> String {
    if part.manifest.client.is_some() {
        return format!(
            "{}: a client of a fanned-out load (`exp run --client`), not a shard; merge clients with `exp merge --clients DIR… --out DIR`",
            part.given.display()
        );
    }
    format!(
        "{}: not a shard (it ran without --shard); only the shards of one `exp run --shard K/N` experiment merge",
        part.given.display()
    )
}

/// What differs between two shards' manifests that makes them parts of different
/// experiments.
pub(super) fn differences(a: &Manifest, b: &Manifest) -> Vec<String> {
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
    let by = |m: &Manifest| m.shard.as_ref().map_or("", |s| s.by.name());
    differ("--shard-by", by(a).into(), by(b).into());
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
    let holds = match shard.by {
        ShardBy::Rounds => format!("rounds {}", rounds_text(&shard.rounds(m.repetitions))),
        ShardBy::Cells => {
            let ids: Vec<&str> = (shard.cells(m.cells.len()).into_iter())
                .filter_map(|c| m.cells.get(c).map(|c| c.id.as_str()))
                .collect();
            format!("cells {}", ids.join(", "))
        }
    };
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
    if shard.by == ShardBy::Cells {
        words.extend(["--shard-by".into(), "cells".into()]);
    }
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
        "shard {shard} is missing ({holds}): run it with `{}`, then merge again with its run directory",
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
