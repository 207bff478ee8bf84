//! The end of a run (and all of `exp report`): read the saved repetitions back, summarise,
//! analyse, write `summary.json`, `report.md` and its SVG charts, and print the terminal
//! summary.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::analysis::nodes::{NodeEffects, NodeShards};
use crate::analysis::{self, Analysis, CellResults, RepResult};
use crate::cli::TargetArgs;
use crate::matrix::Slot;
use crate::metrics::{self, Metric, MetricKey, Stat};
use crate::plan::Plan;
use crate::report;
use crate::scenario::model::{ArrivalConfig, TargetKind};
use crate::shard::ShardBy;
use crate::store::{self, CellEntry, Manifest, RunDir, RunStatus, SCHEMA_VERSION};
use crate::units;

/// The manifest of a new run.
pub fn new_manifest(plan: &Plan, path: &Path, target: &TargetArgs) -> Manifest {
    use sha2::{Digest, Sha256};
    let exp = &plan.scenario.experiment;
    let hash = Sha256::digest(plan.scenario.text.as_bytes());
    let started = store::now_rfc3339();
    Manifest {
        schema_version: SCHEMA_VERSION,
        exp_version: env!("CARGO_PKG_VERSION").into(),
        git_revision: git_revision(),
        host: hostname(),
        run_id: match plan.shard {
            Some(shard) => shard.run_id(&started),
            None => started.replace(':', "-"),
        },
        scenario_name: exp.name.clone(),
        scenario_file: path.display().to_string(),
        scenario_sha256: hash.iter().map(|b| format!("{b:02x}")).collect(),
        overrides: (target.set.iter())
            .map(|s| plan.scenario.redact_override(s))
            .collect(),
        target_override: target.target.clone(),
        seed: exp.seed,
        repetitions: exp.repetitions.get(),
        order: exp.order,
        executor: executor_text(plan),
        cells: (plan.cells.iter())
            .map(|c| {
                let mut entry = CellEntry::from(c);
                entry.vars = plan.scenario.redact_vars(&entry.vars);
                entry.swept = plan.scenario.redact_vars(&entry.swept);
                entry
            })
            .collect(),
        schedule: plan.schedule.clone(),
        started,
        ended: None,
        status: RunStatus::Running,
        warnings: plan.scenario.warnings.clone(),
        launches: vec![],
        adaptive: exp.adaptive.map(|a| store::AdaptiveRecord {
            min: exp.repetitions.get(),
            max: a.max.get(),
            target_ci: a.target_ci,
            looks: Vec::new(),
            stop: None,
        }),
        sequential: None,
        session: Some(super::session::current()),
        baseline: None,
        node: Some(crate::shard::node::Node::detect()),
        shard: plan.shard.map(|s| store::ShardRecord {
            index: s.index,
            count: s.count,
            by: s.by,
            rounds: s.rounds(exp.repetitions.get()),
        }),
        merged: Vec::new(),
        client: None,
        merged_clients: Vec::new(),
    }
}

fn executor_text(plan: &Plan) -> String {
    let t = &plan.configs[0].target;
    match t.kind {
        TargetKind::Sim => simulated_text(plan).map_or("simulated engine".into(), |s| {
            format!("simulated engine: {s}")
        }),
        kind @ TargetKind::Http(_) => format!("{kind} at {}", t.base_url.as_deref().unwrap_or("?")),
    }
}

/// `llama-3.1-8b on h100-sxm, preset calibrated` for simulated runs.
fn simulated_text(plan: &Plan) -> Option<String> {
    let t = &plan.configs.first()?.target;
    if t.kind != TargetKind::Sim {
        return None;
    }
    let hw = t.hardware.as_ref()?;
    let preset = t.sim.as_ref().map_or("calibrated", |s| s.preset.as_str());
    Some(format!(
        "{} on {}, preset `{preset}`",
        hw.model_config, hw.gpu
    ))
}

fn git_revision() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub(super) fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
}

/// Reads every finished repetition back and has `metrics` summarise it.
pub fn load_results(
    dir: &RunDir,
    manifest: &Manifest,
    plan: &Plan,
) -> anyhow::Result<Vec<CellResults>> {
    let done = dir.completed()?;
    let mut cells = Vec::new();
    for (index, entry) in manifest.cells.iter().enumerate() {
        let config = &plan.configs[index];
        // No model or GPU named (or one that no longer loads): no MFU/MBU, as before.
        let deployment = crate::theory::deployment(config).ok().flatten();
        let cell = metrics::CellInputs {
            slo: &plan.scenario.slo,
            batch: matches!(config.workload.arrival, ArrivalConfig::Batch { .. }),
            deployment: deployment.as_ref(),
            cost: config.cost,
        };
        let mut reps = Vec::new();
        for round in 0..manifest.repetitions {
            if !done.contains(&(entry.id.clone(), round)) {
                continue;
            }
            let marker = dir.marker(&entry.id, round)?;
            let records = dir.rep_records(&entry.id, round);
            let probes_path = dir.probes_path(&entry.id, round);
            let probes = match probes_path.exists() {
                true => Some(
                    crate::probe::read(&probes_path)
                        .with_context(|| format!("cannot read {}", probes_path.display()))?,
                ),
                false => None,
            };
            let quality = dir.quality(&entry.id, round)?;
            let summary = metrics::summarize_repetition(metrics::RepetitionInputs {
                records: &records,
                marker: &marker,
                probes: probes.as_deref(),
                quality: quality.as_deref(),
                cell: &cell,
            })?;
            let order = manifest
                .schedule
                .iter()
                .position(|s| *s == Slot { round, cell: index })
                .unwrap_or(usize::MAX);
            reps.push(RepResult {
                round,
                order,
                summary,
                wall_seconds: marker.wall_seconds,
                client_cpu_seconds: marker.client_cpu_seconds,
            });
        }
        cells.push(CellResults {
            id: entry.id.clone(),
            vars: entry.vars.clone(),
            swept: entry.swept.clone(),
            reps,
        });
    }
    Ok(cells)
}

#[derive(Serialize)]
struct SummaryFile<'a> {
    schema_version: u32,
    run_id: &'a str,
    repetitions: Vec<RepetitionEntry<'a>>,
    /// Adaptive repetitions: every look and why the run stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    adaptive: Option<&'a store::AdaptiveRecord>,
    /// Capacity at the SLO, per searched cell (`[search]` runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    search: Option<Vec<crate::search::Outcome>>,
    /// A merged run's nodes and their effects on the primary metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    nodes: Option<&'a NodeEffects>,
    #[serde(flatten)]
    analysis: &'a Analysis,
}

#[derive(Serialize)]
struct RepetitionEntry<'a> {
    cell_id: &'a str,
    #[serde(flatten)]
    rep: &'a RepResult,
}

/// Reads a run back and analyses it, with the warnings that depend on the whole run; for a
/// merged run, also the nodes' effects (their warnings are among the analysis's).
fn analyze_run(
    dir: &RunDir,
    manifest: &Manifest,
    plan: &Plan,
) -> anyhow::Result<(Vec<CellResults>, Analysis, Option<NodeEffects>)> {
    let cells = load_results(dir, manifest, plan)?;
    let mut analysis = analysis::analyze(&plan.scenario, &cells);
    let targets: Vec<_> = plan.configs.iter().map(|c| &c.target).collect();
    analysis
        .warnings
        .extend(super::prompt_lengths::warnings(&targets, &cells));
    if let Some(shard) = &manifest.shard {
        let holds = match shard.by {
            ShardBy::Rounds => format!("rounds {}", crate::shard::rounds_text(&shard.rounds)),
            ShardBy::Cells => format!("{} of its cells, every round", cells.len()),
        };
        analysis.warnings.insert(
            0,
            format!(
                "this run is shard {}/{} of the experiment ({holds}): its statistics cover those only; `exp merge` joins it with the other shards",
                shard.index, shard.count,
            ),
        );
    }
    for (i, w) in super::fanout::warnings(dir, manifest)?
        .into_iter()
        .enumerate()
    {
        analysis.warnings.insert(i, w);
    }
    let by_cells = (manifest.merged.iter()).any(|s| s.shard.by == ShardBy::Cells);
    if by_cells {
        analysis
            .warnings
            .insert(0, cells_on_nodes(manifest, &analysis.comparisons));
    }
    let nodes = (!manifest.merged.is_empty() && !by_cells)
        .then(|| analysis::nodes::effects(&plan.scenario.analysis, &cells, nodes_of(manifest)));
    if let Some(n) = &nodes {
        analysis.warnings.extend(n.warnings.iter().cloned());
    }
    Ok((cells, analysis, nodes))
}

/// The warning of a run merged from shards by cells: which node ran which cells, and how many
/// comparisons set cells of different nodes against each other (their differences include
/// the nodes', which the design cannot separate from the variable).
fn cells_on_nodes(manifest: &Manifest, comparisons: &[analysis::ComparisonRow]) -> String {
    let ids: Vec<&str> = manifest.cells.iter().map(|c| c.id.as_str()).collect();
    let mut node_of: std::collections::HashMap<&str, String> = Default::default();
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for s in &manifest.merged {
        let node = (s.node.as_ref().map(|n| n.name.clone()))
            .unwrap_or_else(|| format!("unknown (shard {})", s.shard.index));
        let mine: Vec<&str> = (s.shard.shard().cells(ids.len()).into_iter())
            .filter_map(|c| ids.get(c).copied())
            .collect();
        for id in &mine {
            node_of.insert(id, node.clone());
        }
        match groups.iter_mut().find(|(n, _)| *n == node) {
            Some((_, cells)) => cells.extend(mine),
            None => groups.push((node, mine)),
        }
    }
    let pairs: std::collections::BTreeSet<(&str, &str)> = (comparisons.iter())
        .map(|c| (c.baseline_cell.as_str(), c.candidate_cell.as_str()))
        .collect();
    let crossing = (pairs.iter())
        .filter(|(a, b)| node_of.get(a) != node_of.get(b))
        .count();
    let placed = (groups.iter())
        .map(|(node, cells)| format!("{node}: {}", cells.join(", ")))
        .collect::<Vec<_>>()
        .join("; ");
    let compared = match crossing {
        0 => format!(
            "none of the {} compared cell pairs crosses nodes, but any comparison of cells from different nodes (here or in `exp compare`) includes",
            pairs.len()
        ),
        n => format!(
            "{n} of {} compared cell pairs ran on different nodes and their differences include",
            pairs.len()
        ),
    };
    format!(
        "SHARDED BY CELLS: each cell ran on one node ({placed}); {compared} the nodes' own difference, which this design cannot separate from the variable; shard by rounds (the default) to keep every comparison within one node"
    )
}

/// The nodes of a merged run's shards, in order of their first shard (a shard whose node
/// was not recorded counts as a node of its own).
fn nodes_of(manifest: &Manifest) -> Vec<NodeShards> {
    let mut nodes: Vec<NodeShards> = Vec::new();
    for s in &manifest.merged {
        let name = (s.node.as_ref().map(|n| n.name.clone()))
            .unwrap_or_else(|| format!("unknown (shard {})", s.shard.index));
        let i = match nodes.iter().position(|n| n.name == name) {
            Some(i) => i,
            None => {
                nodes.push(NodeShards {
                    name,
                    shards: Vec::new(),
                    rounds: Vec::new(),
                    hardware: s.node.clone(),
                });
                nodes.len() - 1
            }
        };
        nodes[i].shards.push(s.shard.index);
        nodes[i].rounds.extend(&s.shard.rounds);
    }
    nodes
}

/// `exp report --format json|csv`: writes `export.json`, or `repetitions.csv` and
/// `cells.csv`, into the run directory (or prints them).
pub(super) fn export(
    dir: &RunDir,
    manifest: &Manifest,
    plan: &Plan,
    format: crate::cli::ReportFormat,
    stdout: bool,
) -> anyhow::Result<()> {
    use crate::report::export;
    let (cells, analysis, _) = analyze_run(dir, manifest, plan)?;
    let tables = export::tables(&cells, &analysis);
    let files: Vec<(&str, String)> = match format {
        crate::cli::ReportFormat::Json => {
            vec![("export.json", serde_json::to_string_pretty(&tables)? + "\n")]
        }
        _ => vec![
            ("repetitions.csv", export::repetitions_csv(&tables)),
            ("cells.csv", export::cells_csv(&tables)),
        ],
    };
    for (name, text) in files {
        if stdout {
            print!("{}", crate::secrets::scrub(&text));
        } else {
            println!("{}", dir.write_file(name, text.as_bytes())?.display());
        }
    }
    Ok(())
}

/// Summarises, analyses and reports a run directory; returns whether a check failed.
/// With `write`, `summary.json`, `report.md` and `charts/*.svg` are (re)written; otherwise the
/// report goes to standard output (without SVG links).
pub fn finish_run(
    dir: &RunDir,
    manifest: &Manifest,
    plan: &Plan,
    template: Option<&Path>,
    write: bool,
) -> anyhow::Result<bool> {
    report_run(dir, manifest, plan, template, write, true)
}

/// Writes `summary.json` and `report.md` again, quietly: after `exp run --baseline` has
/// compared the run, so that its report states the verdict.
pub(super) fn rewrite_report(dir: &RunDir, manifest: &Manifest, plan: &Plan) -> anyhow::Result<()> {
    report_run(dir, manifest, plan, None, true, false).map(|_| ())
}

fn report_run(
    dir: &RunDir,
    manifest: &Manifest,
    plan: &Plan,
    template: Option<&Path>,
    write: bool,
    announce: bool,
) -> anyhow::Result<bool> {
    let (cells, mut analysis, nodes) = analyze_run(dir, manifest, plan)?;
    analysis.warnings.extend(server_warnings(dir, manifest)?);
    let summary = SummaryFile {
        schema_version: SCHEMA_VERSION,
        run_id: &manifest.run_id,
        repetitions: cells
            .iter()
            .flat_map(|c| {
                c.reps.iter().map(move |rep| RepetitionEntry {
                    cell_id: &c.id,
                    rep,
                })
            })
            .collect(),
        adaptive: manifest.adaptive.as_ref(),
        search: plan
            .scenario
            .search
            .as_ref()
            .map(|spec| crate::search::summarize(spec, &cells)),
        nodes: nodes.as_ref(),
        analysis: &analysis,
    };
    let mut model = report::build(
        manifest,
        &plan.scenario,
        &cells,
        &analysis,
        simulated_text(plan),
    );
    model.nodes = report::nodes::build(manifest, nodes.as_ref());
    // `--stdout` writes no files, so its report links no SVGs.
    let svgs = match write {
        true => report::svg::render(&mut model).context("cannot draw the report's charts")?,
        false => Vec::new(),
    };
    let template = template
        .map(Path::to_path_buf)
        .or_else(|| plan.scenario.report.template.clone());
    let text = report::render(&model, template.as_deref()).context("cannot render the report")?;
    if !write {
        print!("{}", crate::secrets::scrub(&text));
        return Ok(analysis.checks_failed());
    }
    dir.write_file("summary.json", &serde_json::to_vec_pretty(&summary)?)?;
    super::charts::write(dir.root(), &svgs)?;
    let path = dir.write_file("report.md", text.as_bytes())?;
    if !announce {
        return Ok(analysis.checks_failed());
    }
    print_summary(&analysis);
    for o in summary.search.iter().flatten() {
        let load =
            |x: Option<f64>| x.map_or("—".into(), |x| crate::search::load_text(&o.variable, x));
        println!(
            "capacity at the SLO ({}): {} ({}; first failing load {})",
            o.cell,
            load(o.capacity),
            o.status.as_str(),
            load(o.first_failing)
        );
    }
    println!("report: {}", path.display());
    Ok(analysis.checks_failed())
}

/// Rounds as ascending ranges: `0–9`, `2, 5–7`.
fn round_ranges(rounds: &[u32]) -> String {
    let mut sorted = rounds.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        parts.push(match j - i {
            0 => sorted[i].to_string(),
            1 => format!("{}, {}", sorted[i], sorted[j]),
            _ => format!("{}–{}", sorted[i], sorted[j]),
        });
        i = j + 1;
    }
    parts.join(", ")
}

/// What the report must say about servers and probes: failed repetitions with their
/// reasons, probes that gave nothing, launches that failed or had to be killed.
fn server_warnings(dir: &RunDir, manifest: &Manifest) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    // One line per cell and reason: a server that never started fails every repetition it
    // was to run (all of them under `order = "grouped"`) for the same reason.
    let mut failed: Vec<(String, String, Vec<u32>)> = Vec::new();
    for f in dir.failed()? {
        match (failed.iter_mut()).find(|(c, r, _)| *c == *f.cell_id && *r == f.reason) {
            Some((_, _, rounds)) => rounds.push(f.round),
            None => failed.push((f.cell_id.to_string(), f.reason, vec![f.round])),
        }
    }
    for (cell, reason, rounds) in failed {
        let (noun, verb) = match rounds.len() {
            1 => ("repetition", "is"),
            _ => ("repetitions", "are"),
        };
        out.push(format!(
            "cell {cell} {noun} {} FAILED and {verb} left out of the statistics (`exp run --resume` retries {}): {reason}",
            round_ranges(&rounds),
            if rounds.len() == 1 { "it" } else { "them" }
        ));
    }
    let mut absent = std::collections::BTreeSet::new();
    for (cell, round) in dir.completed()? {
        absent.extend(dir.marker(&cell, round)?.details.probes_absent);
    }
    for note in absent {
        out.push(format!(
            "probe absent in some repetitions (its figures are missing, not zero): {note}"
        ));
    }
    let failed = manifest
        .launches
        .iter()
        .filter(|l| l.failure.is_some())
        .count();
    if failed > 0 {
        out.push(format!(
            "{failed} of {} server launches failed (see `launches` in manifest.json and the logs under servers/)",
            manifest.launches.len()
        ));
    }
    for l in manifest.launches.iter().filter(|l| l.killed) {
        out.push(format!(
            "server launch {} ignored SIGTERM for the grace period and was killed (SIGKILL)",
            l.index
        ));
    }
    Ok(out)
}

/// A compact terminal summary: one line per cell with the headline numbers.
fn print_summary(analysis: &Analysis) {
    let width = analysis
        .cells
        .iter()
        .map(|c| c.label.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:<width$}  {:>4}  {:>20}  {:>20}  {:>20}  {:>8}",
        "cell", "n", "output tok/s", "TTFT p99", "TPOT mean", "errors"
    );
    // `CV` is the run-to-run coefficient of variation (the report's ± is a std).
    for c in &analysis.cells {
        let cell = |m: MetricKey| {
            c.metrics.get(&m).map_or("—".to_string(), |d| {
                format!(
                    "{} CV {}",
                    units::metric_value(m, d.mean),
                    d.std.map_or("—".into(), |s| units::sig(
                        100.0 * s / d.mean.abs().max(f64::MIN_POSITIVE),
                        2
                    ) + "%")
                )
            })
        };
        let errors = c
            .metrics
            .get(&Metric::ErrorRate.key())
            .map_or("—".into(), |d| units::percent(d.mean));
        println!(
            "{:<width$}  {:>4}  {:>20}  {:>20}  {:>20}  {:>8}",
            c.label,
            c.n,
            cell(Metric::OutputThroughput.key()),
            cell(Metric::Ttft.at(Stat::P99)),
            cell(Metric::Tpot.at(Stat::Mean)),
            errors
        );
    }
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for c in &analysis.comparisons {
        *counts.entry(c.verdict.to_string()).or_default() += 1;
    }
    if !counts.is_empty() {
        let text: Vec<String> = counts.iter().map(|(v, n)| format!("{n} {v}")).collect();
        println!("comparisons: {}", text.join(", "));
    }
    for c in analysis.checks.iter().filter(|c| !c.passed) {
        println!("check FAILED: {} `{} {}`", c.cell, c.metric, c.condition);
    }
    if !analysis.warnings.is_empty() {
        println!("{} warning(s) in the report", analysis.warnings.len());
    }
}

#[cfg(test)]
mod tests {
    use super::round_ranges;

    #[test]
    fn rounds_read_as_ranges() {
        assert_eq!(round_ranges(&[3]), "3");
        assert_eq!(round_ranges(&[9, 0, 1, 2, 3, 4, 5, 6, 7, 8]), "0–9");
        assert_eq!(round_ranges(&[2, 5, 6, 7, 9, 10]), "2, 5–7, 9, 10");
    }
}
