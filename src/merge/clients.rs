//! `exp merge --clients`: the run directories of one fanned-out load (`exp run --client K/N`)
//! joined into one run directory whose every repetition holds all N clients' records.
//!
//! The checks are `exp merge`'s (same scenario, overrides, target, seed, rounds, cells and exp
//! version; see [`super::check`]) plus the client count and the shared `--start-at`; every
//! client 1..=N given exactly once, each with the whole schedule. Then each repetition is
//! joined: when all N clients finished it, their records are put on one timeline (each
//! client's instants shifted by its origin's distance from the earliest client origin, on the
//! wall clock; latencies, which are differences on one client's monotonic clock, unchanged)
//! and sorted by request index, so the existing summary sees one repetition and computes its
//! percentiles from every value and its window from the earliest scheduled send to the last
//! finish. A repetition some client failed, or has no marker for (it died), is failed in the
//! merged run with the clients' reasons: it never enters the statistics.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{MergeError, Part};
use crate::matrix::Slot;
use crate::record::RequestRecord;
use crate::store::{
    Manifest, MarkerDetails, MergedClient, RepMarker, RunDir, RunStatus, SCHEMA_VERSION,
    StoreError, write_atomic,
};

/// Checks that `parts` are every client of one fanned-out load, each once; `expected` is the
/// schedule rebuilt from the first client's saved scenario. `problems` (from
/// [`super::open`]) come first. A client that stopped early is not refused: the repetitions
/// it did not finish are failed in the merge.
pub fn check_clients(
    parts: &[Part],
    expected: &[Slot],
    problems: Vec<String>,
) -> Result<(), MergeError> {
    let mut problems = problems;
    let Some(first) = parts.iter().find(|p| p.manifest.client.is_some()) else {
        if problems.is_empty() && parts.is_empty() {
            problems.push("no client given".into());
        }
        problems.extend(parts.iter().map(not_a_client));
        return Err(MergeError::ClientProblems(problems));
    };
    let by_index = super::group(parts, |part| belongs(first, part, expected), &mut problems);
    let count = first.manifest.client.as_ref().map_or(0, |c| c.count);
    let hint = "give its run directory once";
    problems.extend(super::given_twice("client", count, &by_index, hint));
    for index in (1..=count).filter(|i| !by_index.contains_key(i)) {
        problems.push(format!(
            "client {index}/{count} is missing: give its run directory (its id ends in `client-{index}-of-{count}`); a client that never ran cannot be made up afterwards: run all {count} clients again with a new --start-at"
        ));
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(MergeError::ClientProblems(problems)),
    }
}

/// The client number of `part` when it is a client of `first`'s load; else the problem.
fn belongs(first: &Part, part: &Part, expected: &[Slot]) -> Result<u32, String> {
    let Some(client) = &part.manifest.client else {
        return Err(not_a_client(part));
    };
    let ours = first.manifest.client.as_ref().expect("found as a client");
    let mut differences = super::check::differences(&first.manifest, &part.manifest);
    if client.count != ours.count {
        differences.push(format!("client count {} ≠ {}", client.count, ours.count));
    }
    if client.start_at != ours.start_at {
        differences.push(format!(
            "--start-at {} ≠ {}",
            client.start_at, ours.start_at
        ));
    }
    if !differences.is_empty() {
        return Err(format!(
            "{} does not belong with {}: {} (every client must run the same scenario file with the same --set, --target and --start-at, on the same exp)",
            part.given.display(),
            first.given.display(),
            differences.join("; ")
        ));
    }
    if part.manifest.schedule != expected {
        return Err(format!(
            "{}: its schedule is not the experiment's (was it edited, or planned by another exp?)",
            part.given.display()
        ));
    }
    Ok(client.index)
}

fn not_a_client(part: &Part) -> String {
    format!(
        "{}: not a client (it ran without --client); only the clients of one `exp run --client K/N` load merge with --clients",
        part.given.display()
    )
}

/// Writes the merged run into `out` (which must not exist): every repetition of `expected`
/// joined from the clients, the scenario, and a manifest with each client in
/// `merged_clients`.
pub fn write_clients(
    parts: &[Part],
    out: &Path,
    expected: Vec<Slot>,
) -> Result<Manifest, MergeError> {
    let mut parts: Vec<&Part> = parts.iter().collect();
    parts.sort_by_key(|p| p.manifest.client.as_ref().map_or(0, |c| c.index));
    super::into_place(out, |staging, name| fill(&parts, staging, name, expected)).map_err(|e| {
        match e {
            MergeError::Problems(problems) => MergeError::ClientProblems(problems),
            e => e,
        }
    })
}

fn fill(
    parts: &[&Part],
    staging: &Path,
    name: String,
    expected: Vec<Slot>,
) -> Result<Manifest, StoreError> {
    std::fs::create_dir_all(staging.join("records")).map_err(|e| StoreError::io(staging, e))?;
    let first = parts[0];
    let mut manifest = super::merged_manifest(parts, name, expected.clone());
    manifest.merged_clients = (parts.iter())
        .map(|p| MergedClient {
            index: p.manifest.client.as_ref().map_or(0, |c| c.index),
            count: p.manifest.client.as_ref().map_or(0, |c| c.count),
            run_id: p.manifest.run_id.clone(),
            source: p.given.display().to_string(),
            node: p.manifest.node.clone(),
            status: p.manifest.status,
        })
        .collect();
    let scenario = first.dir.scenario_text()?;
    write_atomic(&staging.join("scenario.toml"), scenario.as_bytes())?;
    super::write_manifest(staging, &manifest)?;
    let (dir, _) = RunDir::open(staging)?;
    // Each client's markers, read once (not once per slot).
    let marked: Vec<_> = (parts.iter())
        .map(|p| p.dir.markers())
        .collect::<Result<_, _>>()?;
    let mut failed = false;
    for slot in &expected {
        let cell_id = manifest.cells[slot.cell].id.clone();
        failed |= !join(parts, &marked, &dir, &cell_id, slot.round)?;
    }
    manifest.status = match failed {
        true => RunStatus::Partial,
        false => RunStatus::Complete,
    };
    super::write_manifest(staging, &manifest)?;
    Ok(manifest)
}

/// Joins one repetition of every client into `dir` (`marked`: each client's completion
/// markers, in the order of `parts`); false when it is failed there.
fn join(
    parts: &[&Part],
    marked: &[std::collections::BTreeSet<(String, u32)>],
    dir: &RunDir,
    cell_id: &str,
    round: u32,
) -> Result<bool, StoreError> {
    let mut markers = Vec::new();
    let mut reasons = Vec::new();
    let key = (cell_id.to_string(), round);
    for (part, marked) in parts.iter().zip(marked) {
        let c = part.manifest.client.as_ref().expect("checked: a client");
        if !marked.contains(&key) {
            reasons.push(format!(
                "client {}/{} did not finish it (no completion marker in {}: the client died or was stopped)",
                c.index,
                c.count,
                part.given.display()
            ));
            continue;
        }
        let marker = part.dir.marker(cell_id, round)?;
        if let Some(why) = &marker.failure {
            // A client's own reasons (late, barrier) already name it.
            let name = format!("client {}/{}", c.index, c.count);
            reasons.push(match why.starts_with(&name) {
                true => why.clone(),
                false => format!("{name}: {why}"),
            });
        }
        markers.push(marker);
    }
    let writer = dir.start_repetition(cell_id, round)?;
    if !reasons.is_empty() {
        let mut marker = joined_marker(cell_id, round, &markers);
        marker.failure = Some(reasons.join("; "));
        writer.finish(marker)?;
        return Ok(false);
    }
    let origins: Vec<SystemTime> = markers.iter().map(origin).collect::<Result<_, _>>()?;
    let earliest = *origins.iter().min().expect("one client at least");
    let mut records: Vec<RequestRecord> = Vec::new();
    for (part, at) in parts.iter().zip(&origins) {
        let shift = at.duration_since(earliest).unwrap_or(Duration::ZERO);
        let shift = u64::try_from(shift.as_nanos()).unwrap_or(u64::MAX);
        part.dir.for_each_record(cell_id, round, |mut rec| {
            rebase(&mut rec, shift);
            records.push(rec);
        })?;
    }
    records.sort_by_key(|r| (r.index, r.turn));
    let mut writer = writer;
    for rec in &records {
        writer.append(rec)?;
    }
    let mut marker = joined_marker(cell_id, round, &markers);
    marker.origin_wall = humantime::format_rfc3339_nanos(earliest).to_string();
    writer.finish(marker)?;
    // Probes and quality items are not per client: the first client's stand for the load.
    for ext in ["probes.jsonl", "quality.jsonl"] {
        let rel = Path::new("records")
            .join(cell_id)
            .join(format!("rep-{round:03}.{ext}"));
        let from = parts[0].dir.root().join(&rel);
        if from.exists() {
            std::fs::copy(&from, dir.root().join(&rel)).map_err(|e| StoreError::io(&from, e))?;
        }
    }
    Ok(true)
}

/// A client marker's origin.
fn origin(marker: &RepMarker) -> Result<SystemTime, StoreError> {
    humantime::parse_rfc3339(&marker.origin_wall).map_err(|e| StoreError::Format {
        path: format!("{}/rep-{:03}.done.json", marker.cell_id, marker.round).into(),
        message: format!("origin_wall `{}`: {e}", marker.origin_wall),
    })
}

/// Shifts every instant of `rec` by `ns` (its client's origin after the earliest one).
fn rebase(rec: &mut RequestRecord, ns: u64) {
    rec.scheduled_ns += ns;
    for t in [&mut rec.sent_ns, &mut rec.first_sent_ns, &mut rec.done_ns]
        .into_iter()
        .flatten()
    {
        *t += ns;
    }
    for chunk in &mut rec.chunks {
        chunk.at_ns += ns;
    }
}

/// The merged marker of one repetition from its clients' markers: the longest wall time, the
/// clients' CPU and cores summed, each client's start in `clients`.
fn joined_marker(cell_id: &str, round: u32, markers: &[RepMarker]) -> RepMarker {
    let sum = |f: &dyn Fn(&RepMarker) -> Option<f64>| -> Option<f64> {
        markers.iter().map(f).sum::<Option<f64>>()
    };
    let details = MarkerDetails {
        client_window_seconds: (markers.iter())
            .filter_map(|m| m.details.client_window_seconds)
            .reduce(f64::max),
        client_cores: markers.iter().map(|m| m.details.client_cores).sum(),
        client_cpu_wait_seconds: sum(&|m| m.details.client_cpu_wait_seconds),
        probes_absent: (markers.iter())
            .flat_map(|m| m.details.probes_absent.clone())
            .collect(),
        token_counting: markers
            .iter()
            .find_map(|m| m.details.token_counting.clone()),
        clients: markers
            .iter()
            .filter_map(|m| m.details.client.clone())
            .collect(),
        ..Default::default()
    };
    RepMarker {
        schema_version: SCHEMA_VERSION,
        cell_id: cell_id.to_string(),
        round,
        records: 0,
        origin_wall: (markers.first())
            .map_or_else(crate::store::now_rfc3339, |m| m.origin_wall.clone()),
        wall_seconds: markers.iter().map(|m| m.wall_seconds).fold(0.0, f64::max),
        client_cpu_seconds: sum(&|m| m.client_cpu_seconds),
        details,
        failure: None,
    }
}
