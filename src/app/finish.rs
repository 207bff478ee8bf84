//! The end of a run (and all of `exp report`): read the saved repetitions back, summarise,
//! analyse, write `summary.json` and `report.md`, and print the terminal summary.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::analysis::{self, Analysis, CellResults, RepResult};
use crate::cli::TargetArgs;
use crate::metrics;
use crate::plan::Plan;
use crate::report;
use crate::scenario::model::TargetKind;
use crate::store::{self, CellEntry, Manifest, RunDir, SCHEMA_VERSION};
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
        run_id: started.replace(':', "-"),
        scenario_name: exp.name.clone(),
        scenario_file: path.display().to_string(),
        scenario_sha256: hash.iter().map(|b| format!("{b:02x}")).collect(),
        overrides: target.set.iter().map(|s| redact(s)).collect(),
        target_override: target.target.clone(),
        seed: exp.seed,
        repetitions: exp.repetitions.get(),
        order: exp.order,
        executor: executor_text(plan),
        cells: plan
            .cells
            .iter()
            .map(|c| CellEntry {
                index: c.index,
                id: c.id.to_string(),
                vars: c.vars.clone(),
                swept: c.swept.clone(),
            })
            .collect(),
        schedule: plan.schedule.iter().map(|s| (s.round, s.cell)).collect(),
        started,
        ended: None,
        status: "running".into(),
        warnings: plan.scenario.warnings.clone(),
    }
}

/// `--set` values under `target.headers` may be secrets: keep the key, hide the value.
fn redact(set: &str) -> String {
    match set.split_once('=') {
        Some((key, _)) if key.contains("headers") || key.contains("api_key") => {
            format!("{key}=<redacted>")
        }
        _ => set.to_string(),
    }
}

fn executor_text(plan: &Plan) -> String {
    let t = &plan.configs[0].target;
    match t.kind {
        TargetKind::Sim => simulated_text(plan).map_or("simulated engine".into(), |s| {
            format!("simulated engine: {s}")
        }),
        kind => format!("{kind} at {}", t.base_url.as_deref().unwrap_or("?")),
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

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
}

/// Reads every finished repetition back and summarises it.
pub fn load_results(
    dir: &RunDir,
    manifest: &Manifest,
    plan: &Plan,
) -> anyhow::Result<Vec<CellResults>> {
    let done = dir.completed()?;
    let mut cells = Vec::new();
    for (index, entry) in manifest.cells.iter().enumerate() {
        let mut reps = Vec::new();
        for round in 0..manifest.repetitions {
            if !done.contains(&(entry.id.clone(), round)) {
                continue;
            }
            let records = dir.records(&entry.id, round)?;
            let mut summary = metrics::summarize(&records, &plan.scenario.slo);
            crate::theory::add_utilization(&plan.configs[index], &records, &mut summary);
            let marker = dir.marker(&entry.id, round)?;
            crate::run::usage::add_client_usage(&marker, &mut summary);
            let order = manifest
                .schedule
                .iter()
                .position(|s| *s == (round, index))
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
    #[serde(flatten)]
    analysis: &'a Analysis,
}

#[derive(Serialize)]
struct RepetitionEntry<'a> {
    cell_id: &'a str,
    #[serde(flatten)]
    rep: &'a RepResult,
}

/// Reads a run back and analyses it, with the warnings that depend on the whole run.
fn analyze_run(
    dir: &RunDir,
    manifest: &Manifest,
    plan: &Plan,
) -> anyhow::Result<(Vec<CellResults>, Analysis)> {
    let cells = load_results(dir, manifest, plan)?;
    let mut analysis = analysis::analyze(&plan.scenario, &cells);
    let targets: Vec<_> = plan.configs.iter().map(|c| &c.target).collect();
    analysis
        .warnings
        .extend(super::prompt_lengths::warnings(&targets, &cells));
    Ok((cells, analysis))
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
    let (cells, analysis) = analyze_run(dir, manifest, plan)?;
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
            print!("{text}");
        } else {
            println!("{}", dir.write_file(name, text.as_bytes())?.display());
        }
    }
    Ok(())
}

/// Summarises, analyses and reports a run directory; returns whether a check failed.
/// With `write`, `summary.json` and `report.md` are (re)written; otherwise the report goes to
/// standard output.
pub fn finish_run(
    dir: &RunDir,
    manifest: &Manifest,
    plan: &Plan,
    template: Option<&Path>,
    write: bool,
) -> anyhow::Result<bool> {
    let (cells, analysis) = analyze_run(dir, manifest, plan)?;
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
        analysis: &analysis,
    };
    let model = report::build(
        manifest,
        &plan.scenario,
        &cells,
        &analysis,
        simulated_text(plan),
    );
    let template = template
        .map(Path::to_path_buf)
        .or_else(|| plan.scenario.report.template.clone());
    let text = report::render(&model, template.as_deref()).context("cannot render the report")?;
    if !write {
        print!("{text}");
        return Ok(analysis.checks_failed());
    }
    dir.write_file("summary.json", &serde_json::to_vec_pretty(&summary)?)?;
    let path = dir.write_file("report.md", text.as_bytes())?;
    print_summary(&analysis);
    println!("report: {}", path.display());
    Ok(analysis.checks_failed())
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
        "{:<width$}  {:>4}  {:>18}  {:>18}  {:>18}  {:>8}",
        "cell", "n", "output tok/s", "TTFT p99", "TPOT mean", "errors"
    );
    for c in &analysis.cells {
        let cell = |m: &str| {
            c.metrics.get(m).map_or("—".to_string(), |d| {
                format!(
                    "{} ± {}",
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
            .get("error_rate")
            .map_or("—".into(), |d| units::percent(d.mean));
        println!(
            "{:<width$}  {:>4}  {:>18}  {:>18}  {:>18}  {:>8}",
            c.label,
            c.n,
            cell("output_throughput"),
            cell("ttft.p99"),
            cell("tpot.mean"),
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
