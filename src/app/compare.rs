//! `exp compare` and `exp run --baseline`: read two run directories back (saved plan +
//! repetitions, exactly as `exp report` does), compare them (cells, and the capacities at the
//! SLO of two `[search]` runs) under the candidate's `[analysis]`, write the Markdown (with its
//! forest plot SVG next to it), and map the outcome to an exit status (0 ok, 1 `--fail-on`
//! met, 2 invalid comparison).

use std::path::Path;

use anyhow::Context;

use super::{Status, load_results, saved_plan};
use crate::analysis::CellResults;
use crate::cli::{self, CompareArgs};
use crate::compare::{
    self, CompareResult, Environment, FailOn, RunWorkload, SearchRun, Severity, Workloads,
};
use crate::plan::Plan;
use crate::scenario::model::Scenario;
use crate::stats::Verdict;
use crate::store::{Manifest, RunDir};

/// A finished comparison, its Markdown and its forest plot (when one is written).
pub(super) struct Compared {
    /// The verdicts.
    pub result: CompareResult,
    env: Environment,
    markdown: String,
    forest: Option<String>,
}

fn fail_on(arg: cli::FailOn) -> FailOn {
    match arg {
        cli::FailOn::Regression => FailOn::Regression,
        cli::FailOn::AnyChange => FailOn::AnyChange,
    }
}

/// Opens a run directory and reads its repetitions back, with the scenario they ran.
fn load(run_dir: &Path) -> anyhow::Result<(Manifest, Plan, Vec<CellResults>)> {
    let (dir, mut manifest) = RunDir::open(run_dir)
        .with_context(|| format!("{}: not a readable run directory", run_dir.display()))?;
    super::session::settle(&mut manifest);
    let plan = saved_plan(&dir, &manifest)?;
    let cells = load_results(&dir, &manifest, &plan)?;
    Ok((manifest, plan, cells))
}

/// What pairing by round needs of a run: its seed and its cells' resolved workloads (the
/// configurations are in the order of its cells, as [`load_results`] reads them).
fn workload<'a>(manifest: &Manifest, plan: &'a Plan) -> RunWorkload<'a> {
    RunWorkload {
        seed: manifest.seed,
        configs: &plan.configs,
    }
}

/// What the comparison reads of a run: its cells, `[search]` and `[slo]`.
fn side<'a>(scenario: &'a Scenario, cells: &'a [CellResults]) -> SearchRun<'a> {
    SearchRun {
        cells,
        search: scenario.search.as_ref(),
        slo: &scenario.slo,
    }
}

/// One look of a group-sequential comparison (`exp run --baseline --extra-looks`): the
/// nominal level every verdict is judged at, and the line the Markdown states about it.
pub(super) struct LookLevel {
    /// Pocock's nominal α for the planned looks.
    pub alpha: f64,
    /// What the comparison says about the looks.
    pub note: String,
}

/// Compares two run directories (at `level` for one look of several); with `markdown_path`,
/// also draws the forest plot that [`write`] puts next to it (and the Markdown links).
fn compare_dirs(
    baseline: &Path,
    candidate: &Path,
    level: Option<&LookLevel>,
    markdown_path: Option<&Path>,
) -> anyhow::Result<Compared> {
    let (base_manifest, base_plan, base_cells) = load(baseline)?;
    let (cand_manifest, cand_plan, cand_cells) = load(candidate)?;
    let mut settings = cand_plan.scenario.analysis.clone();
    if let Some(level) = level {
        settings.alpha = level.alpha;
    }
    let workloads = Workloads {
        baseline: Some(workload(&base_manifest, &base_plan)),
        candidate: Some(workload(&cand_manifest, &cand_plan)),
    };
    let result = compare::compare_runs(
        side(&base_plan.scenario, &base_cells),
        side(&cand_plan.scenario, &cand_cells),
        workloads,
        &settings,
    );
    let env = compare::environment(
        &base_manifest,
        &cand_manifest,
        &result.matching.fixed_differences,
    );
    let mut model = compare::report::build(&result, &env, &base_manifest, &cand_manifest);
    if let Some(level) = level {
        model.notes.push(level.note.clone());
    }
    let forest = match markdown_path {
        Some(path) => {
            let rows = compare::report::forest_rows(&result);
            let svg = crate::report::svg::forest(&model.title, &rows)?;
            model.forest_svg = svg.as_ref().map(|_| forest_name(path));
            svg
        }
        None => None,
    };
    let markdown = compare::report::render(&model).context("cannot render the comparison")?;
    Ok(Compared {
        result,
        env,
        markdown,
        forest,
    })
}

/// `compare.md` → `compare.forest.svg`, next to it.
fn forest_name(markdown: &Path) -> String {
    let stem = markdown
        .file_stem()
        .map_or("compare".into(), |s| s.to_string_lossy());
    format!("{stem}.forest.svg")
}

/// Writes the forest plot next to the Markdown (or removes one an earlier comparison left
/// when this one has none), then the Markdown itself.
fn write(path: &Path, c: &Compared) -> anyhow::Result<()> {
    let forest = path.with_file_name(forest_name(path));
    match &c.forest {
        Some(svg) => crate::store::write_atomic(&forest, svg.as_bytes())?,
        None if forest.exists() => std::fs::remove_file(&forest)
            .with_context(|| format!("cannot remove {}", forest.display()))?,
        None => {}
    }
    crate::store::write_atomic(path, c.markdown.as_bytes())?;
    Ok(())
}

/// The exit status of a comparison: invalid first, then `--fail-on`.
fn status(result: &CompareResult, fail_on: Option<FailOn>) -> Status {
    if result.invalid_reason().is_some() {
        Status::CompareInvalid
    } else if fail_on.is_some_and(|f| result.fails(f)) {
        Status::CompareFailed
    } else {
        Status::Ok
    }
}

/// Environment problems and statistical warnings, on stderr.
fn warn(c: &Compared) {
    for d in &c.env.differences {
        match d.severity {
            Severity::Invalidates => {
                eprintln!("warning: the runs may not be comparable: {}", d.message)
            }
            Severity::Warning => eprintln!("warning: {}", d.message),
            Severity::Note => {}
        }
    }
    for w in &c.result.warnings {
        eprintln!("warning: {w}");
    }
}

/// The terminal summary: warnings on stderr, the verdict and the changes on stdout.
fn announce(c: &Compared) {
    warn(c);
    println!("{}", compare::report::verdict_line(&c.result));
    let changed = |v: Verdict| {
        !matches!(
            v,
            Verdict::NoChange | Verdict::Inconclusive | Verdict::WithinNoise | Verdict::Invalid
        )
    };
    for r in c.result.capacity.iter().filter(|r| changed(r.verdict)) {
        let delta = compare::capacity_view::delta_text(r);
        println!(
            "  capacity at the SLO · {}: {delta} → {}",
            r.cell, r.verdict
        );
    }
    for r in c.result.rows.iter().filter(|r| changed(r.verdict)) {
        let delta = match r.comparison.as_ref() {
            None => "—".into(),
            Some(c) if c.scale == crate::stats::Scale::Absolute => {
                crate::units::change(c, r.metric)
            }
            Some(c) => c
                .change()
                .map_or("—".into(), |(d, _)| crate::units::signed_percent(d)),
        };
        println!("  {} · {}: {delta} → {}", r.cell, r.metric, r.verdict);
    }
}

/// `exp compare <baseline> <candidate> [--out FILE] [--fail-on …]`.
pub(super) fn command(args: &CompareArgs) -> anyhow::Result<Status> {
    let c = compare_dirs(&args.baseline, &args.candidate, None, args.out.as_deref())?;
    match &args.out {
        Some(path) => {
            write(path, &c)?;
            announce(&c);
            println!("comparison: {}", path.display());
        }
        None => {
            print!("{}", crate::secrets::scrub(&c.markdown));
            warn(&c);
            eprintln!("{}", compare::report::verdict_line(&c.result));
        }
    }
    Ok(status(&c.result, args.fail_on.map(fail_on)))
}

/// Fails early, before a run starts, when `--baseline` is not a run directory.
pub(super) fn check_baseline(path: &Path) -> anyhow::Result<()> {
    RunDir::open(path).map(|_| ()).with_context(|| {
        format!(
            "--baseline {}: not a readable run directory",
            path.display()
        )
    })
}

/// `exp run --baseline`: compares the run so far with the baseline, at `level` when the
/// comparison is one look of several.
pub(super) fn look(
    dir: &RunDir,
    baseline: &Path,
    level: Option<&LookLevel>,
) -> anyhow::Result<Compared> {
    let path = dir.root().join("compare.md");
    compare_dirs(baseline, dir.root(), level, Some(&path))
}

/// `exp run --baseline`: writes the final comparison `c` as `compare.md` into the run
/// directory. An invalid comparison only fails the run under `--fail-on`.
pub(super) fn conclude(
    dir: &RunDir,
    manifest: &mut crate::store::Manifest,
    plan: &crate::plan::Plan,
    baseline: &Path,
    c: &Compared,
    fail: Option<cli::FailOn>,
) -> anyhow::Result<Status> {
    let path = dir.root().join("compare.md");
    write(&path, c)?;
    // The run's own report states the verdict too.
    manifest.baseline = Some(crate::store::BaselineRecord {
        run_dir: baseline.display().to_string(),
        verdict: compare::report::verdict_line(&c.result),
    });
    dir.write_manifest(manifest)?;
    super::finish::rewrite_report(dir, manifest, plan)?;
    announce(c);
    println!("comparison: {}", path.display());
    Ok(match (status(&c.result, fail.map(fail_on)), fail) {
        (Status::CompareInvalid, None) => Status::Ok,
        (s, _) => s,
    })
}
